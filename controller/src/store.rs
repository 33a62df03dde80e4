//! The one store: sled under `--data DIR`, one tree per kind of state.
//!
//! Values are serde JSON wrapped with a schema version, so a later gemelo can
//! tell what it reads. Writes that must survive a crash are flushed before the
//! caller reports success. Nothing else in gemelo persists state.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the stored layout; bumped when a value's shape changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source} (is another gemelo using this --data directory?)")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store at {path} has schema version {found}, this gemelo knows {SCHEMA_VERSION}: use a newer gemelo or another --data directory")]
    Schema { path: PathBuf, found: u32 },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored value {tree}/{key} is unreadable: {source}")]
    Corrupt {
        tree: &'static str,
        key: String,
        source: serde_json::Error,
    },
}

/// The kinds of state, one sled tree each.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Switches,
    Inventory,
    Twin,
    Redirections,
    Events,
}

impl Kind {
    fn tree(self) -> &'static str {
        match self {
            Kind::Switches => "switches",
            Kind::Inventory => "inventory",
            Kind::Twin => "twin",
            Kind::Redirections => "redirections",
            Kind::Events => "events",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    v: u32,
    data: T,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.into(),
            source: e.into(),
        })?;
        let db = sled::open(dir.join("db")).map_err(|source| StoreError::Open {
            path: dir.into(),
            source,
        })?;
        match db.get("schema_version")? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        path: dir.into(),
                        found,
                    });
                }
            }
            None => {
                db.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        Ok(Store { db })
    }

    fn tree(&self, kind: Kind) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(kind.tree())?)
    }

    /// Stores `value` under `key` and flushes it to disk before returning.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), StoreError> {
        self.tree(kind)?.insert(key, encode(value))?;
        self.flush()
    }

    /// Stores `value` under `key`; sled's background flusher writes it to disk
    /// within half a second. For high-rate records (events) where one fsync
    /// each would cost more than the record.
    pub fn put_soon<T: Serialize>(
        &self,
        kind: Kind,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.tree(kind)?.insert(key, encode(value))?;
        Ok(())
    }

    /// Stores every `(key, value)` atomically, with one flush for all of them.
    pub fn put_all<'a, T: Serialize + 'a>(
        &self,
        kind: Kind,
        items: impl IntoIterator<Item = (String, &'a T)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut any = false;
        for (key, value) in items {
            batch.insert(key.as_bytes(), encode(value));
            any = true;
        }
        if !any {
            return Ok(());
        }
        self.tree(kind)?.apply_batch(batch)?;
        self.flush()
    }

    /// Waits until everything written so far is on disk. The fsync runs without
    /// holding up the async runtime's other tasks (switch sessions above all).
    pub fn flush(&self) -> Result<(), StoreError> {
        off_runtime(|| self.db.flush())?;
        Ok(())
    }

    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, StoreError> {
        match self.tree(kind)?.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(kind, key, &bytes).map(Some),
        }
    }

    pub fn remove(&self, kind: Kind, key: &str) -> Result<bool, StoreError> {
        let existed = self.tree(kind)?.remove(key)?.is_some();
        self.flush()?;
        Ok(existed)
    }

    /// Every value of one kind, in key order.
    pub fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(kind)?.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            out.push((key.clone(), decode(kind, &key, &v)?));
        }
        Ok(out)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: SCHEMA_VERSION,
        data: value,
    })
    .expect("gemelo's own types always serialize")
}

/// Runs blocking disk I/O. On a multi-threaded tokio runtime the worker hands
/// its other tasks to a fresh thread first, so an fsync never stalls them.
fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn decode<T: DeserializeOwned>(kind: Kind, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice::<Versioned<T>>(bytes)
        .map(|v| v.data)
        .map_err(|source| StoreError::Corrupt {
            tree: kind.tree(),
            key: key.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Rec {
        name: String,
        n: u32,
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gm-store-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn batches_land_whole_and_survive_reopen() {
        let dir = tmp("batch");
        {
            let s = Store::open(&dir).unwrap();
            let rows: Vec<Rec> = (0..50)
                .map(|n| Rec {
                    name: format!("host{n}"),
                    n,
                })
                .collect();
            s.put_all(
                Kind::Inventory,
                rows.iter().map(|r| (format!("host/{:03}", r.n), r)),
            )
            .unwrap();
            s.put_all::<Rec>(Kind::Inventory, std::iter::empty())
                .unwrap();
            s.put_soon(
                Kind::Events,
                "e1",
                &Rec {
                    name: "event".into(),
                    n: 1,
                },
            )
            .unwrap();
            s.flush().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let s = loop {
            match Store::open(&dir) {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => panic!("reopen: {e}"),
            }
        };
        let hosts = s.list::<Rec>(Kind::Inventory).unwrap();
        assert_eq!(hosts.len(), 50);
        assert_eq!(hosts[7].0, "host/007");
        assert_eq!(hosts[7].1.name, "host7");
        assert_eq!(s.list::<Rec>(Kind::Events).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flush_inside_the_runtime_does_not_panic() {
        let dir = tmp("runtime");
        let s = Store::open(&dir).unwrap();
        s.put(
            Kind::Twin,
            "plan",
            &Rec {
                name: "p".into(),
                n: 1,
            },
        )
        .unwrap();
        assert!(s.get::<Rec>(Kind::Twin, "plan").unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn values_survive_reopen() {
        let dir = tmp("reopen");
        {
            let s = Store::open(&dir).unwrap();
            s.put(
                Kind::Switches,
                "0000000000000001",
                &Rec {
                    name: "gm-sw1".into(),
                    n: 3,
                },
            )
            .unwrap();
        }
        // sled's background flusher may hold the file lock a moment after drop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let s = loop {
            match Store::open(&dir) {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("reopen: {e}"),
            }
        };
        let got: Option<Rec> = s.get(Kind::Switches, "0000000000000001").unwrap();
        assert_eq!(
            got,
            Some(Rec {
                name: "gm-sw1".into(),
                n: 3
            })
        );
        assert_eq!(s.list::<Rec>(Kind::Switches).unwrap().len(), 1);
        assert!(s.remove(Kind::Switches, "0000000000000001").unwrap());
        assert!(s.list::<Rec>(Kind::Switches).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_values_are_named_errors() {
        let dir = tmp("corrupt");
        let s = Store::open(&dir).unwrap();
        s.db.open_tree("switches")
            .unwrap()
            .insert("x", b"not json".to_vec())
            .unwrap();
        let err = s.get::<Rec>(Kind::Switches, "x").unwrap_err().to_string();
        assert!(err.contains("switches/x"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_schema_is_refused() {
        let dir = tmp("schema");
        {
            let s = Store::open(&dir).unwrap();
            s.db.insert("schema_version", &99u32.to_be_bytes()).unwrap();
            s.db.flush().unwrap();
        }
        let err = Store::open(&dir).err().expect("must refuse").to_string();
        assert!(err.contains("schema version 99"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
