//! The twin plan: what the digital twin should run, as data.
//!
//! Produced by the controller's pure planner from the discovered inventory and
//! consumed by the backends that build twin hosts (network namespaces, libvirt
//! LXC / QEMU). Nothing here does I/O.

use serde::{Deserialize, Serialize};

/// Everything the twin consists of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinPlan {
    pub switch: TwinSwitch,
    /// Namespace from which operators and tests reach twin hosts (never production).
    pub observer_namespace: String,
    pub segments: Vec<TwinSegment>,
    pub hosts: Vec<TwinHost>,
}

/// The twin's own userspace OVS instance (the "twin hypervisor" switch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinSwitch {
    pub namespace: String,
    pub rundir: String,
    pub bridge: String,
    pub dpid: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinSegment {
    pub cidr: String,
    pub vlan: Option<u16>,
    pub gateway: Option<String>,
}

/// Where a twin host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A network + UTS namespace on the twin switch (embedded default).
    #[default]
    Netns,
    /// A libvirt LXC container.
    Lxc,
    /// A libvirt QEMU virtual machine.
    Qemu,
}

/// One twin host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinHost {
    /// Short name, unique in the plan (`[a-z0-9-]`, at most 20 characters).
    pub name: String,
    /// MACs of the production host(s) this twin host mirrors; empty for a honeytoken.
    pub mirrors: Vec<String>,
    pub hostname: String,
    pub interfaces: Vec<TwinInterface>,
    /// Default route, when the host has one.
    pub gateway: Option<String>,
    /// Routes between its interfaces (a twin gateway).
    pub ip_forward: bool,
    pub backend: Backend,
    pub services: Vec<DecoySpec>,
    /// A decoy-only host production does not have (attracts and detects attackers).
    pub honeytoken: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinInterface {
    pub mac: String,
    /// Addresses with prefix length, e.g. "10.10.1.10/24".
    pub ips: Vec<String>,
    pub segment: String,
    pub vlan: Option<u16>,
}

/// How a service is provided in the twin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DecoyMode {
    /// The same daemon production runs (same product and version available here),
    /// configured from what discovery saw.
    Daemon { product: String },
    /// gemelo's emulation answering byte for byte what discovery captured.
    Emulated,
}

/// One service of a twin host and everything discovery captured of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoySpec {
    pub port: u16,
    pub proto: String,
    pub name: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub banner: Option<String>,
    pub mode: DecoyMode,
    /// Protocol specifics captured by discovery (SSH algorithm lists, HTTP status,
    /// headers and body, Modbus device id and registers, MQTT topics, SNMP system group).
    pub details: serde_json::Value,
}

/// An IPv4 `ADDRESS/PREFIX` as the plan writes segments and addresses.
pub fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((ip.parse().ok()?, len))
}
