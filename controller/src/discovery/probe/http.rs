//! HTTP/1.x: `GET / HTTP/1.1` and everything the answer shows a client.
//!
//! Kept for the twin: the status line, every header in order (names as sent),
//! the `Server` header split into product/version, the page `<title>`, and the
//! body (first 64 KiB, de-chunked, UTF-8 or base64) with its SHA-256.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{conn, text_or_base64, ProbeConfig, ServiceInfo};

/// How much body we keep (and hash).
pub(super) const MAX_BODY: usize = 64 * 1024;

/// A parsed response head plus the body bytes that followed it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    /// The body as the server meant it (chunked encoding undone), up to `MAX_BODY`.
    pub body: Vec<u8>,
    /// True if the body was cut (by us, the timeout or the connection).
    pub truncated: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Index just past the blank line ending the head, if it has arrived.
fn head_end(bytes: &[u8]) -> Option<usize> {
    if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(i + 4);
    }
    bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// Parses a response: `None` if `bytes` does not start like HTTP or the head
/// is incomplete.
pub(super) fn parse_response(bytes: &[u8]) -> Option<Response> {
    if !bytes.starts_with(b"HTTP/") {
        return None;
    }
    let end = head_end(bytes)?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next()?.to_string();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.to_string();
    let status = parts.next()?.trim().parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        version,
        status,
        reason,
        status_line,
        headers,
        body: Vec::new(),
        truncated: false,
    };
    let raw_body = &bytes[end..];
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (body, complete) = if chunked {
        dechunk(raw_body)
    } else {
        (raw_body.to_vec(), body_complete(&response, raw_body))
    };
    response.truncated = !complete || body.len() > MAX_BODY;
    response.body = body;
    response.body.truncate(MAX_BODY);
    Some(response)
}

fn body_complete(response: &Response, raw_body: &[u8]) -> bool {
    match response
        .header("Content-Length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => raw_body.len() >= n,
        None => true,
    }
}

/// Undoes chunked transfer coding: (body, whether the last chunk arrived).
pub(super) fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (body, false);
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if raw.len() < size {
            body.extend_from_slice(raw);
            return (body, false);
        }
        body.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
        if body.len() > MAX_BODY {
            return (body, false);
        }
    }
}

/// Whether a buffer holds a whole response (head, and the body it announces or
/// `MAX_BODY` of it).
fn response_complete(bytes: &[u8]) -> bool {
    let Some(end) = head_end(bytes) else {
        return false;
    };
    match parse_response(bytes) {
        Some(r) if !r.truncated => true,
        Some(_) => bytes.len() - end > MAX_BODY + 4096,
        None => true, // not HTTP: nothing more to wait for
    }
}

/// The text of the first `<title>` element, whitespace collapsed.
pub(super) fn title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let t = text
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(t)
}

/// `Server` header → (product, version): `lighttpd/1.4.69` → lighttpd 1.4.69,
/// `Apache/2.4.57 (Debian)` → Apache 2.4.57, `nginx` → nginx.
pub(super) fn server_product(server: &str) -> (Option<String>, Option<String>) {
    let first = server.split_whitespace().next().unwrap_or("");
    match first.split_once('/') {
        Some((p, v)) => (
            Some(p.to_string()),
            Some(v.to_string()).filter(|v| !v.is_empty()),
        ),
        None if !first.is_empty() => (Some(first.to_string()), None),
        None => (None, None),
    }
}

/// `ServiceInfo` from a whole response.
pub(super) fn service_from(port: u16, bytes: &[u8]) -> Option<ServiceInfo> {
    let r = parse_response(bytes)?;
    let mut info = ServiceInfo::new(port, "tcp", "http");
    let server = r.header("Server").map(str::to_string);
    if let Some(s) = &server {
        (info.product, info.version) = server_product(s);
    }
    info.banner = Some(match &server {
        Some(s) => format!("{}\r\nServer: {s}", r.status_line),
        None => r.status_line.clone(),
    });
    let head_len = head_end(bytes).unwrap_or(bytes.len());
    let (encoding, body) = text_or_base64(&r.body);
    info.details = json!({
        "http_version": r.version,
        "status": r.status,
        "reason": r.reason,
        "headers": r.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
        "head_raw": String::from_utf8_lossy(&bytes[..head_len]),
        "title": title(&r.body),
        "body": body,
        "body_encoding": encoding,
        "body_len": r.body.len(),
        "body_sha256": super::hex(&Sha256::digest(&r.body)),
        "body_truncated": r.truncated,
    });
    Some(info)
}

/// The request we send: what a plain browser-less client would.
pub(super) fn request(addr: SocketAddr) -> Vec<u8> {
    let host = match addr {
        SocketAddr::V4(a) if a.port() == 80 => a.ip().to_string(),
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) if a.port() == 80 => format!("[{}]", a.ip()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gemelo-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n").into_bytes()
}

/// GET / on a new connection. None if the answer is not HTTP (a TLS alert is
/// reported as name "tls").
pub(super) async fn probe(addr: SocketAddr, cfg: &ProbeConfig) -> Option<ServiceInfo> {
    let mut stream = conn::connect(addr, cfg).await.ok()?;
    if !conn::send(&mut stream, &request(addr), cfg).await {
        return None;
    }
    let mut buf = Vec::new();
    let deadline = Instant::now() + cfg.read_timeout;
    conn::read_until(
        &mut stream,
        &mut buf,
        deadline,
        MAX_BODY + 64 * 1024,
        response_complete,
    )
    .await;
    if let Some(info) = service_from(addr.port(), &buf) {
        return Some(info);
    }
    if buf.len() >= 3 && buf[0] == 0x15 && buf[1] == 0x03 {
        let mut info = ServiceInfo::new(addr.port(), "tcp", "tls");
        info.details = json!({"alert_hex": super::hex(&buf[..buf.len().min(64)]), "after": "http"});
        return Some(info);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// Debian 12 lighttpd 1.4.69 answering our GET / for a small index.html.
    const LIGHTTPD: &str = "485454502f312e3120323030204f4b0d0a436f6e74656e742d547970653a20746578742f68746d6c0d0a455461673a202231363135373937383637220d0a4c6173742d4d6f6469666965643a205765642c203235204e6f7620323032362031383a34303a333420474d540d0a436f6e74656e742d4c656e6774683a2036390d0a4163636570742d52616e6765733a2062797465730d0a436f6e6e656374696f6e3a20636c6f73650d0a446174653a205765642c203235204e6f7620323032362031383a34303a343720474d540d0a5365727665723a206c696768747470642f312e342e36390d0a0d0a3c68746d6c3e3c686561643e3c7469746c653e506c616e7420484d493c2f7469746c653e3c2f686561643e3c626f64793e68656c6c6f3c2f626f64793e3c2f68746d6c3e0a";

    #[test]
    fn lighttpd_response() {
        let bytes = unhex(LIGHTTPD);
        assert!(response_complete(&bytes));
        let info = service_from(80, &bytes).unwrap();
        assert_eq!(info.product.as_deref(), Some("lighttpd"));
        assert_eq!(info.version.as_deref(), Some("1.4.69"));
        assert_eq!(
            info.banner.as_deref(),
            Some("HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69")
        );
        assert_eq!(info.details["title"], "Plant HMI");
        assert_eq!(info.details["status"], 200);
        assert_eq!(
            info.details["headers"][0],
            json!(["Content-Type", "text/html"])
        );
        assert_eq!(info.details["body_len"], 69);
        assert_eq!(info.details["body_truncated"], false);
        let body = b"<html><head><title>Plant HMI</title></head><body>hello</body></html>\n";
        assert_eq!(info.details["body"], std::str::from_utf8(body).unwrap());
        assert_eq!(
            info.details["body_sha256"],
            crate::discovery::probe::hex(&Sha256::digest(body))
        );
    }

    #[test]
    fn incomplete_body_is_not_complete() {
        let bytes = unhex(LIGHTTPD);
        assert!(!response_complete(&bytes[..bytes.len() - 5]));
        assert!(parse_response(&bytes[..bytes.len() - 5]).unwrap().truncated);
    }

    #[test]
    fn chunked_and_servers() {
        let raw = b"HTTP/1.1 404 Not Found\r\nServer: Apache/2.4.57 (Debian)\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.body, b"hello world");
        assert!(!r.truncated);
        assert_eq!(
            server_product("Apache/2.4.57 (Debian)"),
            (Some("Apache".into()), Some("2.4.57".into()))
        );
        assert_eq!(server_product("nginx"), (Some("nginx".into()), None));
        assert_eq!(
            title(b"<HTML><TITLE>\n  Camera  Login </TITLE>"),
            Some("Camera Login".into())
        );
        assert_eq!(request("10.0.0.1:8080".parse().unwrap()), b"GET / HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: gemelo-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn truncated_capture_never_panics() {
        let bytes = unhex(LIGHTTPD);
        for n in 0..bytes.len() {
            let _ = service_from(80, &bytes[..n]);
            let _ = response_complete(&bytes[..n]);
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            b.extend_from_slice(&bytes);
            let _ = service_from(80, &b);
            let _ = service_from(80, &bytes);
            let _ = dechunk(&bytes);
            let _ = title(&bytes);
        }
    }
}
