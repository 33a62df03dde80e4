//! What a built twin is: the record `twin::build` writes (first what it is
//! about to build, then the outcome), `twin::status` reads back (each host
//! checked by its backend against what runs now) and the REST API serves.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwinState {
    /// A build is under way, or was cut short (`twin::status` then shows the
    /// hosts it did not finish as failed).
    Building,
    /// Every host is ready.
    Ready,
    /// At least one host failed; the others run.
    Degraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Not started yet (a build's progress before it reaches the host).
    Pending,
    Starting,
    Ready,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinStatus {
    pub state: TwinState,
    pub switch: SwitchStatus,
    pub observer_namespace: String,
    /// `IP/PREFIX` of the observer on every segment, in plan order.
    pub observer_addresses: Vec<String>,
    pub hosts: Vec<TwinHostStatus>,
}

impl TwinStatus {
    pub fn host(&self, name: &str) -> Option<&TwinHostStatus> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    pub namespace: String,
    pub bridge: String,
    /// 16 hex digits, as in `other-config:datapath-id`.
    pub dpid: String,
    /// `OVS_RUNDIR` of the twin OVS instance (`db.sock`, `BRIDGE.mgmt`).
    pub rundir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinHostStatus {
    pub name: String,
    pub mirrors: Vec<String>,
    pub hostname: String,
    /// Every interface address, `IP/PREFIX`.
    pub ips: Vec<String>,
    /// MAC of its first interface.
    pub mac: String,
    pub backend: Backend,
    /// Its network namespace (netns backend), else null.
    pub namespace: Option<String>,
    /// Its libvirt domain (lxc / qemu backends), else null.
    pub domain: Option<String>,
    pub state: HostState,
    pub services: Vec<ServiceStatus>,
    pub daemons: Vec<DaemonStatus>,
    /// Why it failed; on a ready host, what it does not serve (if anything).
    pub error: Option<String>,
    /// Its persistent UTS namespace (`nsenter --uts=PATH`), netns backend.
    #[serde(default)]
    pub uts: Option<PathBuf>,
    /// Its dir: configs, keys, pid files, daemon logs.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// A digest of the `TwinHost` it was built from: a rebuild leaves the
    /// host alone while this is unchanged.
    #[serde(default)]
    pub built_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub port: u16,
    pub proto: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    /// Start time of `pid` (clock ticks since boot): a recycled pid is not it.
    #[serde(default)]
    pub start: Option<u64>,
}
