//! HTTP/1.x emulation of a captured site: `GET /` (and `HEAD /`) answers the
//! captured status line, headers in their order and body; any other path gets
//! 404 with the same `Server`. Each request is an event with method, path,
//! headers and body.
//!
//! Only `Date` is refreshed (a frozen date is a tell); a de-chunked or cut
//! capture gets a `Content-Length` that matches the body we send.

use std::net::SocketAddr;
use std::time::SystemTime;

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::IDLE;
use crate::decoy::events::bytes_json;
use crate::decoy::EventSink;

/// Biggest request head and body we read.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;
/// Requests per connection before we close it.
const MAX_REQUESTS: usize = 100;

/// The captured page.
#[derive(Debug, Clone)]
pub struct Site {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Site {
    /// From `ServiceInfo.details` of an HTTP service (see the probe's `http.rs`).
    pub fn from_details(d: &Value) -> Result<Site, String> {
        let status = d
            .get("status")
            .and_then(Value::as_u64)
            .ok_or("no captured status")?;
        let version = d
            .get("http_version")
            .and_then(Value::as_str)
            .unwrap_or("HTTP/1.1");
        let reason = d.get("reason").and_then(Value::as_str).unwrap_or("");
        let mut status_line = format!("{version} {status}");
        if !reason.is_empty() || d.get("reason").is_some() {
            status_line.push(' ');
            status_line.push_str(reason);
        }
        let headers: Vec<(String, String)> = d
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|h| {
                Some((
                    h.get(0)?.as_str()?.to_string(),
                    h.get(1)?.as_str()?.to_string(),
                ))
            })
            .collect();
        let body = match (
            d.get("body").and_then(Value::as_str),
            d.get("body_encoding").and_then(Value::as_str),
        ) {
            (Some(b), Some("base64")) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("captured body is not base64: {e}"))?,
            (Some(b), _) => b.as_bytes().to_vec(),
            (None, _) => Vec::new(),
        };
        Ok(Site {
            status_line,
            headers,
            body,
        })
    }

    fn server(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("server"))
            .map(|(_, v)| v.as_str())
    }

    /// The captured response, `Date` set to `now`.
    pub fn index(&self, now: SystemTime, head_only: bool) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.status_line).into_bytes();
        let mut has_length = false;
        for (name, value) in &self.headers {
            let value = if name.eq_ignore_ascii_case("date") {
                httpdate::fmt_http_date(now)
            } else if name.eq_ignore_ascii_case("content-length") {
                has_length = true;
                self.body.len().to_string()
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // The capture is de-chunked: send it with a length instead.
                continue;
            } else {
                value.clone()
            };
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !has_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// 404 for any other path.
    pub fn not_found(&self, now: SystemTime, head_only: bool) -> Vec<u8> {
        let body = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n         \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n </body>\n</html>\n";
        let version = self.status_line.split(' ').next().unwrap_or("HTTP/1.1");
        let mut out = format!("{version} 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nDate: {}\r\n", body.len(), httpdate::fmt_http_date(now));
        if let Some(s) = self.server() {
            out.push_str(&format!("Server: {s}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if !head_only {
            out.extend_from_slice(body);
        }
        out
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub head_len: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request head at the start of `buf`: `Ok(None)` until it is whole.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, &'static str> {
    let Some(end) = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
    else {
        return if buf.len() > MAX_HEAD {
            Err("request head too long")
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err("not an HTTP request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("not an HTTP request line");
    }
    let version = parts.next().unwrap_or("HTTP/0.9").to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .take(100)
        .collect();
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        version,
        headers,
        head_len: end,
    }))
}

/// One client: requests in order, keep-alive as HTTP/1.1 allows.
pub async fn serve(mut stream: TcpStream, peer: SocketAddr, site: &Site, sink: &EventSink) {
    let peer_s = peer.to_string();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 8192];
    for _ in 0..MAX_REQUESTS {
        let req = loop {
            match parse_request(&buf) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(e) => {
                    sink.emit(
                        &peer_s,
                        "http",
                        "data",
                        json!({"error": e, "bytes": bytes_json(&buf[..buf.len().min(4096)])}),
                    );
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                    return;
                }
            }
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => {
                    if !buf.is_empty() {
                        sink.emit(
                            &peer_s,
                            "http",
                            "data",
                            json!({"bytes": bytes_json(&buf[..buf.len().min(4096)])}),
                        );
                    }
                    return;
                }
            }
        };
        let want = req
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_BODY);
        while buf.len() < req.head_len + want {
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let body_end = (req.head_len + want).min(buf.len());
        let body = &buf[req.head_len..body_end];
        sink.emit(
            &peer_s,
            "http",
            "request",
            json!({
                "method": req.method,
                "path": req.path,
                "version": req.version,
                "headers": req.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
                "body": bytes_json(body),
            }),
        );
        let head_only = req.method == "HEAD";
        let now = SystemTime::now();
        let answer = if (req.method == "GET" || head_only)
            && (req.path == "/" || req.path.starts_with("/?"))
        {
            site.index(now, head_only)
        } else {
            site.not_found(now, head_only)
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        let close = req
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || site.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
            })
            || req.version != "HTTP/1.1";
        buf.drain(..body_end);
        if close {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `details` the probe wrote for Debian 12 lighttpd 1.4.69 (its test capture).
    pub(crate) fn lighttpd_details() -> Value {
        json!({
            "http_version": "HTTP/1.1", "status": 200, "reason": "OK",
            "headers": [["Content-Type", "text/html"], ["ETag", "\"1615797867\""], ["Last-Modified", "Wed, 25 Nov 2026 18:40:34 GMT"],
                ["Content-Length", "69"], ["Accept-Ranges", "bytes"], ["Connection", "close"], ["Date", "Wed, 25 Nov 2026 18:40:47 GMT"],
                ["Server", "lighttpd/1.4.69"]],
            "title": "Plant HMI",
            "body": "<html><head><title>Plant HMI</title></head><body>hello</body></html>\n",
            "body_encoding": "utf-8", "body_len": 69, "body_truncated": false
        })
    }

    /// The probe's LIGHTTPD capture, as text.
    pub(crate) const CAPTURE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"1615797867\"\r\nLast-Modified: Wed, 25 Nov 2026 18:40:34 GMT\r\nContent-Length: 69\r\nAccept-Ranges: bytes\r\nConnection: close\r\nDate: Wed, 25 Nov 2026 18:40:47 GMT\r\nServer: lighttpd/1.4.69\r\n\r\n<html><head><title>Plant HMI</title></head><body>hello</body></html>\n";

    #[test]
    fn index_is_the_capture_with_a_fresh_date() {
        let site = Site::from_details(&lighttpd_details()).unwrap();
        let then = httpdate::parse_http_date("Wed, 25 Nov 2026 18:40:47 GMT").unwrap();
        assert_eq!(String::from_utf8(site.index(then, false)).unwrap(), CAPTURE);
        let head = String::from_utf8(site.index(then, true)).unwrap();
        assert!(head.ends_with("Server: lighttpd/1.4.69\r\n\r\n"));
        let nf = String::from_utf8(site.not_found(then, false)).unwrap();
        assert!(
            nf.starts_with("HTTP/1.1 404 Not Found\r\n")
                && nf.contains("Server: lighttpd/1.4.69\r\n")
        );
    }

    #[test]
    fn binary_and_chunked_captures() {
        let d = json!({"status": 403, "reason": "Forbidden", "headers": [["Transfer-Encoding", "chunked"]], "body": "/wA=", "body_encoding": "base64"});
        let site = Site::from_details(&d).unwrap();
        let out = site.index(SystemTime::UNIX_EPOCH, false);
        assert_eq!(
            out,
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n\xff\x00".to_vec()
        );
        assert!(Site::from_details(&json!({})).is_err());
    }

    #[test]
    fn requests() {
        let r = parse_request(b"GET /admin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.head_len),
            ("GET", "/admin", 51)
        );
        assert_eq!(r.header("host"), Some("x"));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost"), Ok(None));
        assert!(parse_request(b"\x16\x03\x01\x02\x00\r\n\r\n").is_err());
        assert!(parse_request(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }
}
