//! Telnet (RFC 854): the option negotiation a server opens with, and its prompt.
//!
//! The exact IAC sequence a telnetd sends first fingerprints it, so it is kept
//! verbatim (hex). We refuse every option (DO → WONT, WILL → DONT), which every
//! server accepts, and read on until the login prompt shows.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;

use super::{conn, hex, ProbeConfig, ServiceInfo};

pub(super) const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Known first negotiations → product. inetutils-telnetd 2.4 (Debian 12) under inetd.
const FINGERPRINTS: &[(&str, &str)] = &[(
    "fffb25fffb26fffd18fffd20fffd23fffd27fffd24",
    "inetutils telnetd",
)];

/// A server's bytes split into option commands and the text a user sees.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Stream {
    /// ("DO", option) ..., in order; subnegotiations as ("SB", option).
    pub commands: Vec<(&'static str, u8)>,
    pub text: Vec<u8>,
}

/// Splits telnet bytes; an IAC sequence cut at the end is ignored.
pub(super) fn split(bytes: &[u8]) -> Stream {
    let mut out = Stream::default();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != IAC {
            out.text.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(&cmd) = bytes.get(i + 1) else { break };
        match cmd {
            IAC => {
                out.text.push(IAC);
                i += 2;
            }
            DO | DONT | WILL | WONT => {
                let Some(&opt) = bytes.get(i + 2) else { break };
                let name = match cmd {
                    DO => "DO",
                    DONT => "DONT",
                    WILL => "WILL",
                    _ => "WONT",
                };
                out.commands.push((name, opt));
                i += 3;
            }
            SB => {
                let Some(&opt) = bytes.get(i + 2) else { break };
                out.commands.push(("SB", opt));
                // Skip to IAC SE.
                match bytes[i + 2..].windows(2).position(|w| w == [IAC, SE]) {
                    Some(p) => i = i + 2 + p + 2,
                    None => break,
                }
            }
            _ => i += 2,
        }
    }
    out
}

/// The leading run of whole IAC sequences (the opening negotiation).
pub(super) fn leading_negotiation(bytes: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < bytes.len() && bytes[i] == IAC {
        let len = match bytes.get(i + 1) {
            Some(&(DO | DONT | WILL | WONT)) => 3,
            Some(&SB) => match bytes[i..].windows(2).position(|w| w == [IAC, SE]) {
                Some(p) => p + 2,
                None => break,
            },
            Some(&IAC) | None => break,
            Some(_) => 2,
        };
        if i + len > bytes.len() {
            break;
        }
        i += len;
    }
    &bytes[..i]
}

/// Our refusals for the options the server asked about.
pub(super) fn refusals(commands: &[(&'static str, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(cmd, opt) in commands {
        match cmd {
            "DO" => out.extend_from_slice(&[IAC, WONT, opt]),
            "WILL" => out.extend_from_slice(&[IAC, DONT, opt]),
            _ => {}
        }
    }
    out
}

/// Whether the text so far ends in something a user is asked to type into.
pub(super) fn prompt_seen(text: &[u8]) -> bool {
    let t = String::from_utf8_lossy(text);
    let t = t.trim_end_matches([' ', '\t']);
    t.ends_with(':') || t.ends_with('>') || t.ends_with('#') || t.ends_with('$')
}

/// `ServiceInfo` from the server's first burst and everything it sent.
pub(super) fn service_from(port: u16, first: &[u8], all: &[u8]) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", "telnet");
    let first_iac = leading_negotiation(first);
    let s = split(all);
    let fp = hex(first_iac);
    info.product = FINGERPRINTS
        .iter()
        .find(|(h, _)| *h == fp)
        .map(|(_, p)| p.to_string());
    let text = String::from_utf8_lossy(&s.text).into_owned();
    info.details = json!({
        "negotiation_hex": fp,
        "server_bytes_hex": hex(all),
        "commands": s.commands.iter().map(|(c, o)| format!("{c} {o}")).collect::<Vec<_>>(),
        "prompt_seen": prompt_seen(&s.text),
    });
    info.banner = Some(text);
    info
}

/// Negotiates (refusing everything) until a prompt or the timeout.
pub(super) async fn exchange(
    mut stream: TcpStream,
    first: Vec<u8>,
    port: u16,
    cfg: &ProbeConfig,
) -> ServiceInfo {
    let mut all = first.clone();
    let mut answered = 0; // commands already answered
    let deadline = Instant::now() + cfg.read_timeout.max(Duration::from_millis(1500));
    loop {
        let s = split(&all);
        let reply = refusals(&s.commands[answered.min(s.commands.len())..]);
        answered = s.commands.len();
        if !reply.is_empty() && !conn::send(&mut stream, &reply, cfg).await {
            break;
        }
        if prompt_seen(&s.text) || all.len() > 16 * 1024 || Instant::now() >= deadline {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let more = conn::read_some(&mut stream, left).await;
        if more.is_empty() {
            break;
        }
        all.extend_from_slice(&more);
    }
    service_from(port, &first, &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// inetutils-telnetd 2.4 under openbsd-inetd, Debian 12: the server's bursts
    /// while we refused every option.
    const BURSTS: [&str; 5] = [
        "fffb25fffb26fffd18fffd20fffd23fffd27fffd24",
        "fffb03fffd01fffd22fffd1ffffb05fffd21",
        "fffb01fffd06fffd00",
        "0d0a4c696e757820362e31382e34342d66632d763539352028766d2920287074732f30290d0a0d0a",
        "fffb03fffb01766d206c6f67696e3a20",
    ];

    #[test]
    fn inetutils_telnetd() {
        let first = unhex(BURSTS[0]);
        let all: Vec<u8> = BURSTS.iter().flat_map(|b| unhex(b)).collect();
        let s = split(&first);
        assert_eq!(s.commands[0], ("WILL", 37));
        assert_eq!(refusals(&s.commands)[..6], [IAC, DONT, 37, IAC, DONT, 38]);
        let info = service_from(23, &first, &all);
        assert_eq!(info.product.as_deref(), Some("inetutils telnetd"));
        assert_eq!(
            info.banner.as_deref(),
            Some("\r\nLinux 6.18.44-fc-v595 (vm) (pts/0)\r\n\r\nvm login: ")
        );
        assert_eq!(info.details["negotiation_hex"], BURSTS[0]);
        assert_eq!(info.details["prompt_seen"], true);
    }

    #[test]
    fn subnegotiation_and_escaped_iac() {
        let s = split(&[IAC, SB, 24, 1, IAC, SE, b'a', IAC, IAC, b'b', IAC]);
        assert_eq!(s.commands, vec![("SB", 24)]);
        assert_eq!(s.text, vec![b'a', IAC, b'b']);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = split(&bytes);
            let _ = refusals(&s.commands);
            let _ = service_from(23, &bytes, &bytes);
            let _ = prompt_seen(&bytes);
        }
    }
}
