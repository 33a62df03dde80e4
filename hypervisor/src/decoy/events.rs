//! The decoy event stream: one JSON line per attacker interaction, sent as a
//! datagram to the twin's Unix datagram socket (forensics reads it). In a
//! QEMU guest that socket is the guest's end of its event channel, which
//! carries the events out of the virtual machine (`libvirt::channel`).
//!
//! Sending never blocks a decoy and never fails it: events go through a
//! bounded queue to one sender thread, which waits briefly when the reader's
//! socket queue is full (Linux keeps only ~10 datagrams per socket) and drops
//! them when nobody listens (the pcap of the mirror port still has the traffic).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

/// Biggest datagram we send; bigger `data` is cut to fit.
pub const MAX_EVENT: usize = 60 * 1024;

/// Events waiting to be sent; more are dropped.
const QUEUE: usize = 4096;
/// How long one datagram may wait for room in the reader's queue.
const SEND_WAIT: Duration = Duration::from_millis(200);

/// A decoy event as it goes on the wire (and as the controller stores it).
pub fn decoy_event(
    time: SystemTime,
    twin_host: &str,
    peer: &str,
    protocol: &str,
    action: &str,
    data: Value,
) -> Value {
    json!({
        "time": humantime::format_rfc3339_micros(time).to_string(),
        "kind": "decoy",
        "twin_host": twin_host,
        "peer": peer,
        "protocol": protocol,
        "action": action,
        "data": data,
    })
}

/// Where a twin host's decoys send their events.
#[derive(Debug)]
pub struct EventSink {
    queue: Option<SyncSender<Vec<u8>>>,
    sender: Option<JoinHandle<()>>,
    twin_host: String,
}

impl EventSink {
    pub fn new(path: &Path, twin_host: &str) -> EventSink {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let path = path.to_path_buf();
        let sender = std::thread::Builder::new()
            .name("decoy-events".into())
            .spawn(move || {
                let Ok(socket) = UnixDatagram::unbound() else {
                    return;
                };
                let _ = socket.set_write_timeout(Some(SEND_WAIT));
                for line in rx {
                    let _ = socket.send_to(&line, &path);
                }
            })
            .ok();
        EventSink {
            queue: Some(tx),
            sender,
            twin_host: twin_host.to_string(),
        }
    }

    /// The event as it goes on the wire.
    pub fn event(&self, peer: &str, protocol: &str, action: &str, data: Value) -> Value {
        decoy_event(
            SystemTime::now(),
            &self.twin_host,
            peer,
            protocol,
            action,
            data,
        )
    }

    /// Sends one event (errors ignored: nobody listening is normal).
    pub fn emit(&self, peer: &str, protocol: &str, action: &str, data: Value) {
        let mut line = self.event(peer, protocol, action, data).to_string();
        if line.len() > MAX_EVENT {
            line = self
                .event(
                    peer,
                    protocol,
                    action,
                    json!({"truncated": true, "len": line.len()}),
                )
                .to_string();
        }
        line.push('\n');
        if let Some(q) = &self.queue {
            let _ = q.try_send(line.into_bytes());
        }
    }
}

impl Drop for EventSink {
    /// Sends what is queued before the process goes (the persona shell is short-lived).
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
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
        let dir = std::env::temp_dir().join(format!("gm-events-{}", std::process::id()));
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
