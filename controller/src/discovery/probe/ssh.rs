//! SSH (RFC 4253): the server's identification line and its KEXINIT.
//!
//! The identification line names the software (`SSH-2.0-OpenSSH_9.2p1
//! Debian-2+deb12u3`); the KEXINIT's name-lists (kex, host key, cipher, MAC,
//! compression, in the server's order) are what scanners fingerprint next, so the
//! twin must offer the same. We send our own identification line, as a client
//! must before the server's KEXINIT is worth reading, and leave after it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::{conn, hex, ProbeConfig, ServiceInfo};

/// What we announce: honest, and a valid RFC 4253 identification line.
const CLIENT_ID: &[u8] = b"SSH-2.0-gemelo_probe\r\n";
const MSG_KEXINIT: u8 = 20;
const NAME_LISTS: [&str; 10] = [
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_algorithms_client_to_server",
    "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server",
    "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server",
    "compression_algorithms_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
];

/// The identification line, split as RFC 4253 §4.2 defines it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ident {
    /// The whole line without CR LF.
    pub line: String,
    pub proto_version: String,
    pub software: String,
    pub comments: Option<String>,
    /// Lines the server sent before it (allowed by the RFC), verbatim.
    pub pre_banner: Vec<String>,
    /// Bytes after the line's LF (the start of the binary protocol).
    pub rest: Vec<u8>,
}

/// Finds the `SSH-` line in what the server sent first. None until a whole
/// line starting with `SSH-` arrived.
pub(super) fn parse_ident(bytes: &[u8]) -> Option<Ident> {
    let mut pre_banner = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..].iter().position(|&b| b == b'\n')? + at;
        let raw = &bytes[at..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw).into_owned();
        if let Some(after) = line.strip_prefix("SSH-") {
            let (proto_version, rest) = after.split_once('-')?;
            let (software, comments) = match rest.split_once(' ') {
                Some((s, c)) => (s.to_string(), Some(c.to_string())),
                None => (rest.to_string(), None),
            };
            return Some(Ident {
                line: line.clone(),
                proto_version: proto_version.to_string(),
                software,
                comments,
                pre_banner,
                rest: bytes[end + 1..].to_vec(),
            });
        }
        pre_banner.push(line);
        if pre_banner.len() > 32 {
            return None;
        }
        at = end + 1;
    }
    None
}

/// Product and version as inventories write them: `OpenSSH_9.2p1` with comment
/// `Debian-2+deb12u3` → ("OpenSSH", "9.2p1 Debian 2+deb12u3").
pub(super) fn product_version(ident: &Ident) -> (String, Option<String>) {
    let (product, version) = match ident.software.split_once('_') {
        Some((p, v)) => (p.to_string(), Some(v.to_string())),
        None => match ident.software.split_once('-') {
            Some((p, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => {
                (p.to_string(), Some(v.to_string()))
            }
            _ => (ident.software.clone(), None),
        },
    };
    let version = match (version, &ident.comments) {
        (Some(v), Some(c)) => Some(format!("{v} {}", c.replacen('-', " ", 1))),
        (v, _) => v,
    };
    (product, version)
}

/// A parsed SSH_MSG_KEXINIT payload.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct KexInit {
    pub cookie: [u8; 16],
    /// The ten name-lists in wire order, each split on commas.
    pub lists: Vec<Vec<String>>,
    pub first_kex_packet_follows: bool,
}

/// One unencrypted binary packet (RFC 4253 §6): `Ok(Some((payload, consumed)))`,
/// `Ok(None)` if more bytes are needed, `Err` if it cannot be a packet.
pub(super) fn parse_packet(bytes: &[u8]) -> Result<Option<(&[u8], usize)>, &'static str> {
    if bytes.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if !(5..=256 * 1024).contains(&len) {
        return Err("SSH packet length out of range");
    }
    let pad = bytes[4] as usize;
    if pad + 1 > len {
        return Err("SSH padding longer than packet");
    }
    if bytes.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((&bytes[5..4 + len - pad], 4 + len)))
}

/// Parses a KEXINIT payload (starting with its message number 20).
pub(super) fn parse_kexinit(payload: &[u8]) -> Result<KexInit, &'static str> {
    if payload.first() != Some(&MSG_KEXINIT) {
        return Err("not a KEXINIT");
    }
    let cookie: [u8; 16] = payload
        .get(1..17)
        .ok_or("KEXINIT truncated in cookie")?
        .try_into()
        .map_err(|_| "cookie")?;
    let mut at = 17;
    let mut lists = Vec::with_capacity(10);
    for _ in 0..10 {
        let len_bytes = payload
            .get(at..at + 4)
            .ok_or("KEXINIT truncated in a name-list length")?;
        let len = u32::from_be_bytes(len_bytes.try_into().map_err(|_| "len")?) as usize;
        at += 4;
        let raw = payload
            .get(at..at.checked_add(len).ok_or("overflow")?)
            .ok_or("KEXINIT truncated in a name-list")?;
        at += len;
        let text = String::from_utf8_lossy(raw);
        lists.push(if text.is_empty() {
            Vec::new()
        } else {
            text.split(',').map(str::to_string).collect()
        });
    }
    let first_kex_packet_follows = *payload
        .get(at)
        .ok_or("KEXINIT truncated at first_kex_packet_follows")?
        != 0;
    Ok(KexInit {
        cookie,
        lists,
        first_kex_packet_follows,
    })
}

/// `ServiceInfo` from the bytes the server sent (id line, then its packets).
pub(super) fn service_from(port: u16, ident: &Ident, kexinit: Option<&[u8]>) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", "ssh");
    let (product, version) = product_version(ident);
    info.product = Some(product);
    info.version = version;
    info.banner = Some(ident.line.clone());
    let mut details = json!({
        "proto_version": ident.proto_version,
        "software": ident.software,
        "comments": ident.comments,
    });
    if !ident.pre_banner.is_empty() {
        details["pre_banner"] = json!(ident.pre_banner);
    }
    if let Some(payload) = kexinit {
        details["kexinit_hex"] = json!(hex(payload));
        match parse_kexinit(payload) {
            Ok(k) => {
                for (name, list) in NAME_LISTS.iter().zip(&k.lists) {
                    details[*name] = json!(list);
                }
                details["first_kex_packet_follows"] = Value::Bool(k.first_kex_packet_follows);
            }
            Err(e) => details["kexinit_error"] = json!(e),
        }
    }
    info.details = details;
    info
}

/// True if `first` is text lines that could precede an SSH id line (some
/// servers print a notice first); only trusted once an `SSH-` line follows.
pub(super) fn looks_like_pre_banner(first: &[u8]) -> bool {
    first.windows(5).any(|w| w == b"\nSSH-")
}

/// Completes the exchange on a connection whose first bytes are `first`.
pub(super) async fn exchange(
    mut stream: TcpStream,
    first: Vec<u8>,
    port: u16,
    cfg: &ProbeConfig,
) -> ServiceInfo {
    let deadline = Instant::now() + cfg.read_timeout;
    let mut buf = first;
    conn::read_until(&mut stream, &mut buf, deadline, 8192, |b| {
        parse_ident(b).is_some()
    })
    .await;
    let Some(ident) = parse_ident(&buf) else {
        return super::unknown_with(port, &buf, "banner");
    };
    conn::send(&mut stream, CLIENT_ID, cfg).await;
    let mut rest = ident.rest.clone();
    let deadline = Instant::now() + cfg.read_timeout.max(Duration::from_millis(500));
    conn::read_until(&mut stream, &mut rest, deadline, 300 * 1024, |b| {
        !matches!(parse_packet(b), Ok(None))
    })
    .await;
    let kexinit = match parse_packet(&rest) {
        Ok(Some((payload, _))) => Some(payload.to_vec()),
        _ => None,
    };
    service_from(port, &ident, kexinit.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// What Debian 12's sshd (openssh-server 1:9.2p1-2+deb12u10) sent after our id line.
    pub(crate) const OPENSSH_DEBIAN12: &str = "5353482d322e302d4f70656e5353485f392e3270312044656269616e2d322b64656231327531300d0a0000045407146bb166bfeda86184860f7c40feee1fb00000013d736e747275703736317832353531392d7368613531322c736e747275703736317832353531392d736861353132406f70656e7373682e636f6d2c637572766532353531392d7368613235362c637572766532353531392d736861323536406c69627373682e6f72672c656364682d736861322d6e697374703235362c656364682d736861322d6e697374703338342c656364682d736861322d6e697374703532312c6469666669652d68656c6c6d616e2d67726f75702d65786368616e67652d7368613235362c6469666669652d68656c6c6d616e2d67726f757031362d7368613531322c6469666669652d68656c6c6d616e2d67726f757031382d7368613531322c6469666669652d68656c6c6d616e2d67726f757031342d7368613235362c6b65782d7374726963742d732d763030406f70656e7373682e636f6d000000257373682d656432353531392c7273612d736861322d3531322c7273612d736861322d3235360000006c63686163686132302d706f6c7931333035406f70656e7373682e636f6d2c6165733132382d6374722c6165733139322d6374722c6165733235362d6374722c6165733132382d67636d406f70656e7373682e636f6d2c6165733235362d67636d406f70656e7373682e636f6d0000006c63686163686132302d706f6c7931333035406f70656e7373682e636f6d2c6165733132382d6374722c6165733139322d6374722c6165733235362d6374722c6165733132382d67636d406f70656e7373682e636f6d2c6165733235362d67636d406f70656e7373682e636f6d000000d5756d61632d36342d65746d406f70656e7373682e636f6d2c756d61632d3132382d65746d406f70656e7373682e636f6d2c686d61632d736861322d3235362d65746d406f70656e7373682e636f6d2c686d61632d736861322d3531322d65746d406f70656e7373682e636f6d2c686d61632d736861312d65746d406f70656e7373682e636f6d2c756d61632d3634406f70656e7373682e636f6d2c756d61632d313238406f70656e7373682e636f6d2c686d61632d736861322d3235362c686d61632d736861322d3531322c686d61632d73686131000000d5756d61632d36342d65746d406f70656e7373682e636f6d2c756d61632d3132382d65746d406f70656e7373682e636f6d2c686d61632d736861322d3235362d65746d406f70656e7373682e636f6d2c686d61632d736861322d3531322d65746d406f70656e7373682e636f6d2c686d61632d736861312d65746d406f70656e7373682e636f6d2c756d61632d3634406f70656e7373682e636f6d2c756d61632d313238406f70656e7373682e636f6d2c686d61632d736861322d3235362c686d61632d736861322d3531322c686d61632d73686131000000156e6f6e652c7a6c6962406f70656e7373682e636f6d000000156e6f6e652c7a6c6962406f70656e7373682e636f6d0000000000000000000000000000000000000000";

    #[test]
    fn openssh_debian_identification_and_kexinit() {
        let bytes = unhex(OPENSSH_DEBIAN12);
        let ident = parse_ident(&bytes).unwrap();
        assert_eq!(ident.line, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10");
        assert_eq!(ident.proto_version, "2.0");
        assert_eq!(
            product_version(&ident),
            ("OpenSSH".into(), Some("9.2p1 Debian 2+deb12u10".into()))
        );
        let (payload, used) = parse_packet(&ident.rest).unwrap().unwrap();
        assert_eq!(used, ident.rest.len());
        let info = service_from(22, &ident, Some(payload));
        assert_eq!(
            info.details["server_host_key_algorithms"],
            json!(["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"])
        );
        assert_eq!(info.details["kex_algorithms"][0], "sntrup761x25519-sha512");
        assert_eq!(
            info.details["kex_algorithms"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            "kex-strict-s-v00@openssh.com"
        );
        assert_eq!(
            info.details["compression_algorithms_server_to_client"],
            json!(["none", "zlib@openssh.com"])
        );
        assert_eq!(info.details["languages_client_to_server"], json!([]));
        assert_eq!(info.details["first_kex_packet_follows"], false);
    }

    #[test]
    fn other_servers_and_pre_banner() {
        let ident = parse_ident(b"SSH-2.0-dropbear_2022.83\r\n").unwrap();
        assert_eq!(
            product_version(&ident),
            ("dropbear".into(), Some("2022.83".into()))
        );
        let ident = parse_ident(b"Welcome\r\nSSH-2.0-Cisco-1.25\r\n").unwrap();
        assert_eq!(ident.pre_banner, vec!["Welcome".to_string()]);
        assert_eq!(
            product_version(&ident),
            ("Cisco".into(), Some("1.25".into()))
        );
        let ident = parse_ident(b"SSH-1.99-OpenSSH_3.9p1\n").unwrap();
        assert_eq!(ident.proto_version, "1.99");
        assert!(
            parse_ident(b"SSH-2.0-OpenSSH_9.2p1").is_none(),
            "needs a whole line"
        );
    }

    #[test]
    fn truncated_captures_never_panic() {
        let bytes = unhex(OPENSSH_DEBIAN12);
        for n in 0..bytes.len() {
            if let Some(ident) = parse_ident(&bytes[..n]) {
                if let Ok(Some((payload, _))) = parse_packet(&ident.rest) {
                    let _ = service_from(22, &ident, Some(payload));
                }
                let _ = parse_kexinit(&ident.rest[5.min(ident.rest.len())..]);
            }
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_packet(&bytes);
            let _ = parse_kexinit(&bytes);
            let mut kex = vec![MSG_KEXINIT];
            kex.extend_from_slice(&bytes);
            let _ = parse_kexinit(&kex);
            let mut line = b"SSH-".to_vec();
            line.extend_from_slice(&bytes);
            if let Some(ident) = parse_ident(&line) { let _ = service_from(22, &ident, Some(&kex)); }
        }
    }
}
