//! Active service identification (being written on its own branch).

use serde::{Deserialize, Serialize};

/// What listens on one port, as a client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub port: u16,
    pub proto: String,
    pub name: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub banner: Option<String>,
    pub details: serde_json::Value,
}
