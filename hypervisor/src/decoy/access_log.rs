//! Events from a real daemon's access log: a twin host's lighttpd pipes each
//! access-log line (in `LIGHTTPD_FORMAT`) into `gemelo access-log`, which turns
//! it into a decoy event (`action: "request"`), so requests served by the real
//! daemon are recorded like those an emulated decoy answers.

use std::io::BufRead;
use std::path::Path;

use serde_json::{json, Value};

use super::events::EventSink;

/// Tab-separated: client address, client port, request line, final status,
/// body bytes, User-Agent (lighttpd `accesslog.format`; `\t` is its escape).
pub const LIGHTTPD_FORMAT: &str = "%h\\t%{remote}p\\t%r\\t%>s\\t%b\\t%{User-Agent}i";

/// One log line as (peer, event data); `None` for a line of another shape.
pub fn parse_line(line: &str) -> Option<(String, Value)> {
    let f: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('\t').collect();
    if f.len() < 5 {
        return None;
    }
    let peer = format!("{}:{}", f[0], f[1]);
    let mut req = f[2].splitn(3, ' ');
    let method = req.next().unwrap_or("");
    let path = req.next().unwrap_or("");
    let version = req.next().unwrap_or("");
    let status: u16 = f[3].parse().ok()?;
    let bytes: u64 = f[4].parse().unwrap_or(0);
    let agent = f.get(5).copied().unwrap_or("");
    Some((
        peer,
        json!({"method": method, "path": path, "version": version, "status": status, "bytes": bytes, "user_agent": agent}),
    ))
}

/// Reads log lines from stdin until it closes, one event each.
pub fn run(events: &Path, twin_host: &str, protocol: &str) -> std::io::Result<()> {
    let sink = EventSink::new(events, twin_host);
    for line in std::io::stdin().lock().lines() {
        if let Some((peer, data)) = parse_line(&line?) {
            sink.emit(&peer, protocol, "request", data);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_lighttpd_line() {
        // As lighttpd 1.4.69 wrote it with LIGHTTPD_FORMAT.
        let (peer, d) =
            parse_line("10.10.2.66\t34440\tGET /admin HTTP/1.1\t404\t341\tcurl/7.88.1\n").unwrap();
        assert_eq!(peer, "10.10.2.66:34440");
        assert_eq!(d["method"], "GET");
        assert_eq!(d["path"], "/admin");
        assert_eq!(d["status"], 404);
        assert_eq!(d["user_agent"], "curl/7.88.1");
        assert!(parse_line("garbage").is_none());
    }
}
