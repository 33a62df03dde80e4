//! The event stream: decoy interactions (and, later, redirections and alerts).
//!
//! Decoys inside twin hosts send one JSON object per datagram to a Unix socket
//! the controller listens on; each becomes a stored event, read back with
//! `GET /api/v1/events?since=RFC3339&kind=KIND`. Events are kept in the store in
//! arrival order and survive restarts. Each stored decoy event is also handed
//! to the detectors (`detection`), which judge login attempts.

use crate::fabric::rfc3339;
use crate::store::{Kind, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tracing::{debug, info, warn};

/// Where decoys send their events, inside `--data`: outside `/run`, because twin
/// daemons run with a private `/run`, and writable by the decoy user (the persona
/// shell does not run as root).
pub const EVENTS_SOCKET_NAME: &str = "events.sock";
/// Largest event accepted.
const MAX_EVENT: usize = 64 * 1024;

pub struct Events {
    store: Store,
    seq: AtomicU64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event is not a JSON object: {0}")]
    NotJson(String),
    #[error("event lacks a string \"{0}\" field")]
    Missing(&'static str),
}

impl Events {
    pub fn new(store: Store) -> Arc<Events> {
        let seq = store
            .list::<Value>(Kind::Events)
            .map(|v| v.len() as u64)
            .unwrap_or(0);
        Arc::new(Events {
            store,
            seq: AtomicU64::new(seq),
        })
    }

    /// Validates and stores one event; a missing time is set to now.
    pub fn record(&self, mut ev: Value) -> Result<(), EventError> {
        let obj = ev
            .as_object_mut()
            .ok_or_else(|| EventError::NotJson("not an object".into()))?;
        if !obj.get("kind").is_some_and(Value::is_string) {
            return Err(EventError::Missing("kind"));
        }
        if !obj.get("time").is_some_and(|t| {
            t.as_str()
                .is_some_and(|t| humantime::parse_rfc3339_weak(t).is_ok())
        }) {
            obj.insert("time".into(), Value::String(rfc3339(SystemTime::now())));
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let micros = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        if let Err(e) = self
            .store
            .put_soon(Kind::Events, &format!("{micros:020}-{n:010}"), &ev)
        {
            warn!(error = %e, "could not store event");
        }
        Ok(())
    }

    /// Events at or after `since`, of `kind` if given, oldest first, at most `limit`.
    pub fn list(&self, since: Option<SystemTime>, kind: Option<&str>, limit: usize) -> Vec<Value> {
        let all = self.store.list::<Value>(Kind::Events).unwrap_or_default();
        let mut out: Vec<Value> = all
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| kind.is_none_or(|k| v["kind"] == k))
            .filter(|v| match since {
                None => true,
                Some(s) => v["time"]
                    .as_str()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .is_some_and(|t| t >= s),
            })
            .collect();
        let skip = out.len().saturating_sub(limit);
        out.split_off(skip)
    }
}

/// Where decoy events go when `serve` is not told: `DATA/events.sock` if the
/// twin's daemons can reach it, otherwise `/tmp/gm-events-HASH/events.sock`
/// (HASH names DATA). They reach it when every directory above it lets other
/// users through (the daemons drop privileges: lighttpd's access-log pipe runs
/// as www-data, a persona shell as its user) and it is not under /run, which
/// each daemon sees replaced by its host's own (`gemelo_hypervisor::host`). A
/// private (0700) data directory thus stays private and events still arrive.
pub fn default_socket(data: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    if traversable_by_others(&abs) && !abs.starts_with("/run") {
        return data.join(EVENTS_SOCKET_NAME);
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    PathBuf::from(format!("/tmp/gm-events-{:016x}", h.finish())).join(EVENTS_SOCKET_NAME)
}

/// Whether every existing directory from `dir` up to / has the others' x bit.
fn traversable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().all(|d| match std::fs::metadata(d) {
        Ok(m) => m.permissions().mode() & 0o001 != 0,
        // Not created yet: create_dir_all makes it 0755 under the usual umask.
        Err(_) => true,
    })
}

/// Receives decoy events on a Unix datagram socket until the task is dropped;
/// each one stored is also handed to `judge` (the detectors read logins).
pub async fn listen(
    path: &Path,
    events: Arc<Events>,
    judge: impl Fn(&Value) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // Others may pass through (to reach the socket), not list.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        }
    }
    let _ = std::fs::remove_file(path);
    let sock = tokio::net::UnixDatagram::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    }
    info!(socket = %path.display(), "listening for decoy events");
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_EVENT];
        loop {
            match sock.recv(&mut buf).await {
                Ok(n) => match serde_json::from_slice::<Value>(&buf[..n]) {
                    Ok(v) => match events.record(v.clone()) {
                        Ok(()) => judge(&v),
                        Err(e) => debug!(error = %e, "event refused"),
                    },
                    Err(e) => debug!(error = %e, "undecodable event datagram"),
                },
                Err(e) => {
                    warn!(error = %e, "event socket");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (Store, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!("gm-events-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        (Store::open(&d).unwrap(), d)
    }

    #[test]
    fn a_private_data_dir_keeps_its_socket_elsewhere() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("gm-events-perm-{}", std::process::id()));
        let open = base.join("open");
        let private = base.join("private");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::create_dir_all(&private).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(default_socket(&open), open.join(EVENTS_SOCKET_NAME));
        let elsewhere = default_socket(&private);
        let in_tmp = |p: &Path| p.to_string_lossy().starts_with("/tmp/gm-events-");
        assert!(in_tmp(&elsewhere), "{elsewhere:?}");
        assert!(in_tmp(&default_socket(Path::new("/run/gemelo/data"))));
        assert_eq!(default_socket(&private), elsewhere, "stable per data dir");
        assert_ne!(default_socket(&private.join("sub")), elsewhere);
        let _ = std::fs::remove_dir_all(&base);
    }
    #[test]
    fn records_filters_and_refuses() {
        let (s, d) = store("filter");
        let ev = Events::new(s);
        ev.record(serde_json::json!({"kind": "decoy", "time": "2026-11-25T10:00:00Z", "protocol": "modbus", "action": "read"})).unwrap();
        ev.record(serde_json::json!({"kind": "redirection", "time": "2026-11-25T11:00:00Z"}))
            .unwrap();
        ev.record(serde_json::json!({"kind": "decoy", "protocol": "http"}))
            .unwrap();
        assert_eq!(
            ev.record(serde_json::json!({"protocol": "x"})),
            Err(EventError::Missing("kind"))
        );
        assert!(ev.record(serde_json::json!([1, 2])).is_err());
        assert_eq!(ev.list(None, None, 100).len(), 3);
        assert_eq!(ev.list(None, Some("decoy"), 100).len(), 2);
        let since = humantime::parse_rfc3339("2026-11-25T10:30:00Z").unwrap();
        let later = ev.list(Some(since), None, 100);
        assert_eq!(later.len(), 2, "{later:?}");
        assert!(later[1]["time"].is_string(), "time filled in");
        assert_eq!(ev.list(None, None, 1).len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn datagrams_become_events() {
        let (s, d) = store("socket");
        let ev = Events::new(s);
        let path = d.join("events.sock");
        let judged = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = judged.clone();
        let task = listen(&path, ev.clone(), move |v| {
            seen.lock().unwrap().push(v["twin_host"].clone())
        })
        .await
        .unwrap();
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        tx.send_to(b"not json", &path).unwrap();
        tx.send_to(br#"{"twin_host":"kindless"}"#, &path).unwrap();
        tx.send_to(br#"{"kind":"decoy","twin_host":"plc01","protocol":"modbus","action":"write","data":{"address":1}}"#, &path).unwrap();
        for _ in 0..50 {
            if !judged.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let got = ev.list(None, Some("decoy"), 10);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["twin_host"], "plc01");
        // Only what was stored is judged (the datagrams arrive in order).
        assert_eq!(*judged.lock().unwrap(), vec![Value::from("plc01")]);
        task.abort();
        let _ = std::fs::remove_dir_all(&d);
    }
}
