//! The few socket moves every probe makes: a rate-limited connect with a timeout,
//! and reads bounded by a deadline, a size and a protocol's "reply complete" test.
//!
//! The rate limit is process-wide (one schedule of connection slots shared by all
//! probes and all namespace threads), so however many hosts are probed at once the
//! fabric sees at most `max_rate_per_s` new connections per second.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProbeConfig;

/// The next free connection slot, shared by every probe in the process.
static NEXT_SLOT: Mutex<Option<Instant>> = Mutex::new(None);

/// Waits for this caller's turn under `max_rate_per_s` (0 = unlimited).
pub(super) async fn rate_limit(cfg: &ProbeConfig) {
    if cfg.max_rate_per_s == 0 {
        return;
    }
    let gap = Duration::from_secs(1) / cfg.max_rate_per_s;
    let slot = {
        let mut next = NEXT_SLOT.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let slot = match *next {
            Some(t) if t > now => t,
            _ => now,
        };
        *next = Some(slot + gap);
        slot
    };
    tokio::time::sleep_until(slot.into()).await;
}

/// A TCP connection to `addr`, after waiting for a rate slot.
pub(super) async fn connect(addr: SocketAddr, cfg: &ProbeConfig) -> std::io::Result<TcpStream> {
    rate_limit(cfg).await;
    match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect to {addr} timed out"),
        )),
    }
}

/// Whatever arrives within `wait`, then whatever follows within a short idle gap
/// (a banner often comes in two segments). Empty if silent, closed or failed.
pub(super) async fn read_some(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
        _ => return buf,
    }
    buf.extend(read_idle(stream, Duration::from_millis(150), 16 * 1024).await);
    buf
}

/// Reads until the peer is quiet for `idle`, closes, or `max` bytes arrived.
pub(super) async fn read_idle(stream: &mut TcpStream, idle: Duration, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < max {
        match tokio::time::timeout(idle, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf.truncate(max);
    buf
}

/// Appends to `buf` until `complete(buf)`, EOF, `max` bytes or `deadline`.
/// Returns whether the reply was complete.
pub(super) async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    max: usize,
    complete: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        if complete(buf) {
            return true;
        }
        if buf.len() >= max {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return complete(buf),
        }
    }
}

/// Writes `bytes`, ignoring failures the following read will show anyway.
pub(super) async fn send(stream: &mut TcpStream, bytes: &[u8], cfg: &ProbeConfig) -> bool {
    matches!(
        tokio::time::timeout(cfg.read_timeout, stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// New connection, send `bytes`, read what comes back. None if the connect failed.
pub(super) async fn send_and_read(
    addr: SocketAddr,
    bytes: &[u8],
    cfg: &ProbeConfig,
) -> Option<Vec<u8>> {
    let mut stream = connect(addr, cfg).await.ok()?;
    if !send(&mut stream, bytes, cfg).await {
        return Some(Vec::new());
    }
    Some(
        read_some(
            &mut stream,
            cfg.read_timeout.min(Duration::from_millis(1000)),
        )
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limit_spaces_slots() {
        let cfg = ProbeConfig {
            max_rate_per_s: 100,
            ..ProbeConfig::default()
        };
        let start = Instant::now();
        for _ in 0..11 {
            rate_limit(&cfg).await;
        }
        // 11 slots at 10 ms apart: at least 100 ms from the first to the last.
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }
}
