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

    /// Stores `value` under `key` and flushes it to disk.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&Versioned {
            v: SCHEMA_VERSION,
            data: value,
        })
        .expect("gemelo's own types always serialize");
        self.tree(kind)?.insert(key, bytes)?;
        self.db.flush()?;
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
        self.db.flush()?;
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
        let d =
            std::env::temp_dir().join(format!("gemelo-store-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
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
