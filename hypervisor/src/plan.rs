//! The twin plan: what the digital twin should run, as data.
//!
//! Produced by the controller's pure planner from the discovered inventory and
//! consumed by the backends that build twin hosts (network namespaces, libvirt
//! LXC / QEMU). Nothing here does I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

impl TwinPlan {
    /// The plan without what production changes by itself (`TwinHost::steady`).
    pub fn steady(&self) -> TwinPlan {
        TwinPlan {
            hosts: self.hosts.iter().map(TwinHost::steady).collect(),
            ..self.clone()
        }
    }
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

impl TwinHost {
    /// The host without what production changes by itself while it runs: the
    /// values of live Modbus registers (and the samples that found them) and
    /// MQTT payloads. The twin moves those on its own (decoy::emulate::modbus,
    /// decoy::daemon::mqtt), so a new reading of them is no reason to rebuild
    /// a twin host (and lose what an attacker wrote to it): rebuilds and the
    /// twin following the inventory compare hosts this way.
    pub fn steady(&self) -> TwinHost {
        let mut host = self.clone();
        for svc in &mut host.services {
            let d = &mut svc.details;
            match svc.name.as_str() {
                "modbus" => {
                    let live: Vec<u64> = d
                        .get("live_registers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.get("address")?.as_u64())
                        .collect();
                    let blocks = d
                        .get_mut("holding_registers")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten();
                    for block in blocks {
                        let start = block.get("start").and_then(Value::as_u64).unwrap_or(0);
                        let values = block
                            .get_mut("values")
                            .and_then(Value::as_array_mut)
                            .into_iter()
                            .flatten();
                        for (i, v) in values.enumerate() {
                            if live.contains(&(start + i as u64)) {
                                *v = Value::Null;
                            }
                        }
                    }
                    if let Some(obj) = d.as_object_mut() {
                        obj.insert("live_registers".into(), live.into());
                    }
                }
                "mqtt" => {
                    if let Some(obj) = d.as_object_mut() {
                        obj.remove("listened_ms");
                    }
                    let topics = d
                        .get_mut("topics")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_object_mut);
                    for t in topics {
                        for key in ["payload", "encoding", "count", "period_ms"] {
                            t.remove(key);
                        }
                    }
                }
                _ => {}
            }
        }
        host
    }
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
