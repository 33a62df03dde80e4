//! Active service identification: the probes that enter the fabric from the
//! controller's side and capture what a client of each production service sees.
//!
//! DESIGN.md ("Fidelity") asks decoys to answer byte for byte what discovery
//! captured, so every probe here records the raw first bytes of a service (SSH
//! identification line and KEXINIT lists, HTTP status line, headers and body,
//! FTP/SMTP/POP3/IMAP greetings, telnet option negotiation and prompt, MQTT topics,
//! Modbus device identification and registers, SNMP system group) next to the
//! product/version that an inventory shows. Each protocol lives in its own file as
//! pure parsers over bytes (tested on captures of the Debian daemons) plus one
//! small async exchange; this file holds the types, the scan and the dispatch.
//!
//! Probes never panic on what a server sends, honour `ProbeConfig`'s timeouts, and
//! share one process-wide rate limit on new connections (`max_rate_per_s`).
//! `in_netns` runs a probe inside a network namespace (the lab's, or a probe
//! namespace attached to the fabric).

mod conn;
mod greeting;
mod guess;
mod http;
mod modbus;
mod mqtt;
mod netns;
mod ports;
mod snmp;
mod ssh;
mod telnet;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use guess::{classify_role, guess_os};
pub use netns::in_netns;
pub use ports::{port_hint, DEFAULT_PORTS};

/// One open service on a host, as a client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub port: u16,
    /// "tcp" | "udp"
    pub proto: String,
    /// "ssh", "http", "ftp", "telnet", "smtp", "pop3", "imap", "mqtt", "modbus",
    /// "snmp", "tls"; "unknown" if open but unidentified.
    pub name: String,
    /// "OpenSSH", "lighttpd", "vsftpd", "Mosquitto", "net-snmp", ...
    pub product: Option<String>,
    /// "9.2p1 Debian 2+deb12u3", "1.4.69", ...
    pub version: Option<String>,
    /// The raw first thing a client sees (SSH id line, FTP/SMTP greeting, HTTP
    /// status line + Server, telnet prompt text), lossless where the bytes are text.
    pub banner: Option<String>,
    /// Protocol specifics (algorithm lists, headers, body, topics, registers...).
    pub details: serde_json::Value,
}

impl ServiceInfo {
    fn new(port: u16, proto: &str, name: &str) -> ServiceInfo {
        ServiceInfo {
            port,
            proto: proto.to_string(),
            name: name.to_string(),
            product: None,
            version: None,
            banner: None,
            details: json!({}),
        }
    }
}

/// How hard and how fast to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Per TCP connect attempt.
    pub connect_timeout: Duration,
    /// Per exchange (a banner, a reply); long collections (MQTT topics) use
    /// their own bound, never more than twice this.
    pub read_timeout: Duration,
    /// Connections in flight at once, per `connect_scan` / `probe_host` call.
    pub concurrency: usize,
    /// New connections (and UDP requests) per second, across the whole process.
    pub max_rate_per_s: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            connect_timeout: Duration::from_millis(1000),
            read_timeout: Duration::from_millis(2000),
            concurrency: 32,
            max_rate_per_s: 200,
        }
    }
}

/// TCP connect scan of `ports` on `ip`: the open ones, in ascending order.
pub async fn connect_scan(ip: IpAddr, ports: &[u16], cfg: &ProbeConfig) -> Vec<u16> {
    let mut open: Vec<u16> = stream::iter(ports.iter().copied())
        .map(|port| async move {
            let addr = SocketAddr::new(ip, port);
            conn::connect(addr, cfg).await.ok().map(|_| port)
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .filter_map(|p| async move { p })
        .collect()
        .await;
    open.sort_unstable();
    open.dedup();
    open
}

/// Identify what listens on an open TCP port: protocol-aware banner grab.
///
/// Client-first protocols on their well-known ports (HTTP, MQTT, Modbus) are
/// asked directly; otherwise the probe waits for a banner (SSH, telnet, FTP, SMTP,
/// POP3, IMAP speak first) and, if the service stays silent, tries an HTTP GET,
/// then MQTT and Modbus.
pub async fn identify_tcp(addr: SocketAddr, cfg: &ProbeConfig) -> ServiceInfo {
    let hint = port_hint(addr.port());
    let direct = match hint {
        Some("http") => http::probe(addr, cfg).await,
        Some("mqtt") => mqtt::probe(addr, cfg).await,
        Some("modbus") => modbus::probe(addr, cfg).await,
        _ => None,
    };
    if let Some(found) = direct {
        return found;
    }
    let mut info = match banner_first(addr, cfg).await {
        Some(info) => info,
        None => silent_service(addr, cfg).await,
    };
    if info.name == "unknown" {
        if let (Some(hint), Some(obj)) = (hint, info.details.as_object_mut()) {
            obj.insert("port_hint".into(), json!(hint));
        }
    }
    info
}

/// Waits for the server to speak first and follows the protocol it announces.
/// None if it stayed silent (or the connection failed before any byte).
async fn banner_first(addr: SocketAddr, cfg: &ProbeConfig) -> Option<ServiceInfo> {
    let mut stream = conn::connect(addr, cfg).await.ok()?;
    let wait = cfg.read_timeout.min(Duration::from_millis(1000));
    let first = conn::read_some(&mut stream, wait).await;
    if first.is_empty() {
        return None;
    }
    let info = if first.starts_with(b"SSH-") || ssh::looks_like_pre_banner(&first) {
        ssh::exchange(stream, first, addr.port(), cfg).await
    } else if first[0] == telnet::IAC {
        telnet::exchange(stream, first, addr.port(), cfg).await
    } else if let Some(kind) = greeting::kind_of(&first, addr.port()) {
        greeting::exchange(stream, first, kind, addr.port(), cfg).await
    } else {
        // Speaks first, but nothing we know: keep what it said.
        let more = conn::read_idle(&mut stream, Duration::from_millis(300), 4096).await;
        let mut all = first;
        all.extend_from_slice(&more);
        unknown_with(addr.port(), &all, "banner")
    };
    Some(info)
}

/// A service that said nothing on connect: try what clients of silent
/// protocols say first.
async fn silent_service(addr: SocketAddr, cfg: &ProbeConfig) -> ServiceInfo {
    let hint = port_hint(addr.port());
    // Guesses, not knowledge: give each one a short hearing.
    let cfg = &ProbeConfig {
        read_timeout: cfg.read_timeout.min(Duration::from_millis(1000)),
        ..cfg.clone()
    };
    if hint != Some("http") {
        if let Some(found) = http::probe(addr, cfg).await {
            return found;
        }
    }
    if let Some(raw) = conn::send_and_read(addr, b"\r\n\r\n", cfg).await {
        if !raw.is_empty() {
            return unknown_with(addr.port(), &raw, "crlf");
        }
    }
    if hint != Some("mqtt") {
        if let Some(found) = mqtt::probe(addr, cfg).await {
            return found;
        }
    }
    if hint != Some("modbus") {
        if let Some(found) = modbus::probe(addr, cfg).await {
            return found;
        }
    }
    let mut info = ServiceInfo::new(addr.port(), "tcp", "unknown");
    info.details = json!({"silent": true});
    info
}

/// An open port whose bytes matched nothing: record them (text and hex).
fn unknown_with(port: u16, raw: &[u8], after: &str) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", "unknown");
    let raw = &raw[..raw.len().min(4096)];
    info.banner = Some(String::from_utf8_lossy(raw).into_owned());
    info.details = json!({"raw_hex": hex(raw), "after": after});
    info
}

/// SNMP v2c GET of sysDescr/sysObjectID/sysUpTime/sysContact/sysName/sysLocation
/// (community "public") on UDP 161, then net-snmp's versionTag; None if no answer.
pub async fn probe_snmp(ip: IpAddr, cfg: &ProbeConfig) -> Option<ServiceInfo> {
    snmp::probe(SocketAddr::new(ip, 161), "public", cfg).await
}

/// Scan + identify one host (`ports`, plus SNMP): every open service identified,
/// TCP in port order, then UDP.
pub async fn probe_host(ip: IpAddr, ports: &[u16], cfg: &ProbeConfig) -> Vec<ServiceInfo> {
    let snmp = probe_snmp(ip, cfg);
    let tcp = async {
        let open = connect_scan(ip, ports, cfg).await;
        let mut found: Vec<ServiceInfo> = stream::iter(open)
            .map(|port| identify_tcp(SocketAddr::new(ip, port), cfg))
            .buffer_unordered(cfg.concurrency.max(1))
            .collect()
            .await;
        found.sort_by_key(|s| s.port);
        found
    };
    let (mut found, snmp) = tokio::join!(tcp, snmp);
    found.extend(snmp);
    found
}

/// Lower-case hex of bytes (how binary captures are kept in `details`).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Text as UTF-8 when it is, base64 otherwise: `(encoding, value)`.
fn text_or_base64(bytes: &[u8]) -> (&'static str, String) {
    use base64::Engine;
    match std::str::from_utf8(bytes) {
        Ok(s) => ("utf-8", s.to_string()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ),
    }
}

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_text() {
        assert_eq!(hex(&[0xff, 0x01]), "ff01");
        assert_eq!(unhex("ff 01"), vec![0xff, 0x01]);
        assert_eq!(text_or_base64(b"hi"), ("utf-8", "hi".to_string()));
        assert_eq!(text_or_base64(&[0xff]), ("base64", "/w==".to_string()));
    }

    #[test]
    fn unknown_keeps_raw_bytes() {
        let info = unknown_with(9999, b"\x00hello\xff", "banner");
        assert_eq!(info.name, "unknown");
        assert_eq!(info.details["raw_hex"], "0068656c6c6fff");
    }

    #[test]
    fn service_info_round_trips_through_json() {
        let mut info = ServiceInfo::new(22, "tcp", "ssh");
        info.product = Some("OpenSSH".into());
        info.details = json!({"kex_algorithms": ["curve25519-sha256"]});
        let back: ServiceInfo =
            serde_json::from_str(&serde_json::to_string(&info).unwrap()).unwrap();
        assert_eq!(back, info);
    }
}

#[cfg(test)]
mod loopback_tests {
    //! The dispatch against tiny servers on the host's loopback: unknown
    //! talkers are recorded, silent ports end within their time bounds.
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn quick() -> ProbeConfig {
        ProbeConfig {
            connect_timeout: Duration::from_millis(300),
            read_timeout: Duration::from_millis(300),
            concurrency: 8,
            max_rate_per_s: 0,
        }
    }

    #[tokio::test]
    async fn echo_after_request_is_unknown_with_banner() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 512];
                    if let Ok(n) = s.read(&mut buf).await {
                        if n > 0 {
                            let _ = s.write_all(b"ERR what?\r\n").await;
                        }
                    }
                });
            }
        });
        let info = identify_tcp(addr, &quick()).await;
        assert_eq!(info.name, "unknown");
        assert_eq!(info.banner.as_deref(), Some("ERR what?\r\n"));
        assert_eq!(
            connect_scan(addr.ip(), &[addr.port()], &quick()).await,
            vec![addr.port()]
        );
    }

    #[tokio::test]
    async fn silent_port_is_unknown_in_bounded_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s); // never answer
            }
        });
        let start = Instant::now();
        let info = identify_tcp(addr, &quick()).await;
        assert_eq!(info.name, "unknown");
        assert_eq!(info.details["silent"], true);
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn garbage_talker_never_panics() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            while let Ok((mut s, _)) = listener.accept().await {
                let junk: Vec<u8> = (0..300)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                tokio::spawn(async move {
                    let _ = s.write_all(&[0xff, 0xfd]).await; // a cut IAC, then junk
                    let _ = s.write_all(&junk).await;
                });
            }
        });
        let info = identify_tcp(addr, &quick()).await;
        assert_eq!(info.port, addr.port());
    }
}
