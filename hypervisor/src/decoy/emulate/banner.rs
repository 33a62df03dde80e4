//! A banner decoy for any TCP service that speaks first: sends exactly the
//! bytes discovery captured (SSH id line then its KEXINIT, FTP/SMTP/POP3/IMAP
//! greeting and the captured answers to the same commands, telnet negotiation
//! and login prompt, an unknown talker's raw bytes), then records what the
//! client sends.

use std::net::SocketAddr;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::IDLE;
use crate::decoy::events::bytes_json;
use crate::decoy::{s, unhex, EventSink};
use crate::plan::DecoySpec;

/// Client bytes recorded per connection; then we hang up.
const MAX_CLIENT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    pub protocol: String,
    /// Sent on connect.
    pub greeting: Vec<u8>,
    /// SSH only: the server's KEXINIT packet, sent after the client's id line.
    pub after_client_line: Option<Vec<u8>>,
    /// Line protocols: (command verb upper-case, captured reply).
    pub replies: Vec<(String, Vec<u8>)>,
}

impl Banner {
    pub fn from_spec(spec: &DecoySpec) -> Banner {
        let d = &spec.details;
        let hexed = |k: &str| s(d, k).and_then(unhex);
        let banner = spec.banner.clone().unwrap_or_default();
        let mut after_client_line = None;
        let greeting = match spec.name.as_str() {
            "ssh" => {
                let mut g = Vec::new();
                for line in crate::decoy::list(d, "pre_banner") {
                    g.extend_from_slice(line.as_bytes());
                    g.extend_from_slice(b"\r\n");
                }
                g.extend_from_slice(banner.as_bytes());
                g.extend_from_slice(b"\r\n");
                after_client_line = hexed("kexinit_hex").map(|payload| ssh_packet(&payload));
                g
            }
            "telnet" => hexed("server_bytes_hex").unwrap_or_else(|| banner.into_bytes()),
            _ => hexed("greeting_hex")
                .or_else(|| hexed("raw_hex").filter(|_| s(d, "after") == Some("banner")))
                .unwrap_or_else(|| banner.into_bytes()),
        };
        let replies = d
            .get("replies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let verb = r
                    .get("command")?
                    .as_str()?
                    .split(' ')
                    .find(|w| !w.is_empty() && !w.starts_with('g'))?
                    .to_ascii_uppercase();
                Some((verb, r.get("reply")?.as_str()?.as_bytes().to_vec()))
            })
            .collect();
        Banner {
            protocol: spec.name.clone(),
            greeting,
            after_client_line,
            replies,
        }
    }

    /// The captured reply to a client line, if we have one for its verb.
    pub fn reply_to(&self, line: &[u8]) -> Option<&[u8]> {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_whitespace();
        let mut verb = words.next()?.to_ascii_uppercase();
        // IMAP lines start with a tag.
        if self.protocol == "imap" {
            verb = words.next()?.to_ascii_uppercase();
        }
        self.replies
            .iter()
            .find(|(v, _)| *v == verb)
            .map(|(_, r)| r.as_slice())
    }
}

/// An unencrypted SSH binary packet around `payload` (RFC 4253 §6, block 8).
pub fn ssh_packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (payload.len() + 5) % 8;
    if pad < 4 {
        pad += 8;
    }
    let len = (payload.len() + pad + 1) as u32;
    let mut out = len.to_be_bytes().to_vec();
    out.push(pad as u8);
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0u8, pad));
    out
}

pub async fn serve(mut stream: TcpStream, peer: SocketAddr, banner: &Banner, sink: &EventSink) {
    let peer_s = peer.to_string();
    let proto = banner.protocol.as_str();
    sink.emit(&peer_s, proto, "connect", json!({}));
    if stream.write_all(&banner.greeting).await.is_err() {
        return;
    }
    let mut total = 0usize;
    let mut pending: Vec<u8> = Vec::new();
    let mut kex_sent = banner.after_client_line.is_none();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        let data = &chunk[..n];
        total += n;
        sink.emit(&peer_s, proto, "data", bytes_json(data));
        pending.extend_from_slice(data);
        if !kex_sent && pending.contains(&b'\n') {
            kex_sent = true;
            if let Some(kex) = &banner.after_client_line {
                if stream.write_all(kex).await.is_err() {
                    break;
                }
            }
        }
        // Line protocols: answer each whole line we have a captured reply for.
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            if let Some(reply) = banner.reply_to(&line) {
                if stream.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
        if pending.len() > 4096 {
            pending.clear();
        }
        if total >= MAX_CLIENT_BYTES {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DecoyMode;

    fn spec(name: &str, banner: &str, details: Value) -> DecoySpec {
        DecoySpec {
            port: 21,
            proto: "tcp".into(),
            name: name.into(),
            product: None,
            version: None,
            banner: Some(banner.into()),
            mode: DecoyMode::Emulated,
            details,
        }
    }

    #[test]
    fn ftp_greeting_and_replies() {
        let b = Banner::from_spec(&spec(
            "ftp",
            "220 (vsFTPd 3.0.3)\r\n",
            json!({"greeting_hex": "323230202876734654506420332e302e33290d0a", "replies": [{"command": "SYST", "reply": "215 UNIX Type: L8\r\n"}, {"command": "QUIT", "reply": "221 Goodbye.\r\n"}]}),
        ));
        assert_eq!(b.greeting, b"220 (vsFTPd 3.0.3)\r\n");
        assert_eq!(b.reply_to(b"syst\r\n"), Some(&b"215 UNIX Type: L8\r\n"[..]));
        assert_eq!(b.reply_to(b"USER x\r\n"), None);
    }

    #[test]
    fn telnet_and_ssh() {
        let t = Banner::from_spec(&spec(
            "telnet",
            "vm login: ",
            json!({"server_bytes_hex": "fffb25fffb26"}),
        ));
        assert_eq!(t.greeting, vec![0xff, 0xfb, 0x25, 0xff, 0xfb, 0x26]);
        let s = Banner::from_spec(&spec(
            "ssh",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            json!({"kexinit_hex": "14"}),
        ));
        assert_eq!(s.greeting, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        let p = s.after_client_line.unwrap();
        assert_eq!(p.len() % 8, 0);
        assert_eq!(p[..6], [0, 0, 0, 12, 10, 0x14]);
        let u = Banner::from_spec(&spec(
            "unknown",
            "ERR\r\n",
            json!({"raw_hex": "00ff", "after": "banner"}),
        ));
        assert_eq!(u.greeting, vec![0, 0xff]);
    }
}
