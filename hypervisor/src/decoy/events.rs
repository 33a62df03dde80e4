//! The decoy event stream: one JSON line per attacker interaction, sent as a
//! datagram to the twin's Unix datagram socket (forensics reads it).
//!
//! Sending never blocks and never fails a decoy: with nobody listening the
//! event is dropped (the pcap of the mirror port still has the traffic).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

/// Biggest datagram we send; bigger `data` is cut to fit.
pub const MAX_EVENT: usize = 60 * 1024;

/// Where a twin host's decoys send their events.
#[derive(Debug)]
pub struct EventSink {
    socket: Option<UnixDatagram>,
    path: PathBuf,
    twin_host: String,
}

impl EventSink {
    pub fn new(path: &Path, twin_host: &str) -> EventSink {
        let socket = UnixDatagram::unbound().ok();
        if let Some(s) = &socket {
            let _ = s.set_nonblocking(true);
        }
        EventSink { socket, path: path.to_path_buf(), twin_host: twin_host.to_string() }
    }

    /// The event as it goes on the wire.
    pub fn event(&self, peer: &str, protocol: &str, action: &str, data: Value) -> Value {
        json!({
            "time": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            "kind": "decoy",
            "twin_host": self.twin_host,
            "peer": peer,
            "protocol": protocol,
            "action": action,
            "data": data,
        })
    }

    /// Sends one event (errors ignored: nobody listening is normal).
    pub fn emit(&self, peer: &str, protocol: &str, action: &str, data: Value) {
        let mut line = self.event(peer, protocol, action, data).to_string();
        if line.len() > MAX_EVENT {
            line = self.event(peer, protocol, action, json!({"truncated": true, "len": line.len()})).to_string();
        }
        line.push('\n');
        if let Some(s) = &self.socket {
            let _ = s.send_to(line.as_bytes(), &self.path);
        }
    }
}

/// Client bytes as event data: text when UTF-8, else base64 (bounded by the caller).
pub fn bytes_json(bytes: &[u8]) -> Value {
    use base64::Engine;
    match std::str::from_utf8(bytes) {
        Ok(s) => json!({"text": s}),
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_reaches_a_datagram_socket() {
        let dir = std::env::temp_dir().join(format!("gemelo-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ev.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let sink = EventSink::new(&path, "plc1");
        sink.emit("10.0.0.9:4242", "modbus", "read", json!({"function": 3}));
        let mut buf = [0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        let v: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(v["twin_host"], "plc1");
        assert_eq!(v["kind"], "decoy");
        assert_eq!(v["data"]["function"], 3);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        std::fs::remove_dir_all(&dir).unwrap();
        // Nobody listening: silently dropped.
        sink.emit("x", "y", "z", json!({}));
    }
}
