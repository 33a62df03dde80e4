//! What a running lab is: the record `up` writes, `status` reads and
//! `gemelo lab status --json` prints, plus the run state `down` cleans up from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::topology::{Proto, Topology};
use super::{PROBE_IFNAME, PROBE_NAMESPACE, PROD_NAMESPACE, PROD_RUNDIR, UTS_DIR};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabStatus {
    pub lab: String,
    /// The topology file it was built from.
    pub topology: PathBuf,
    /// Namespace of the production OVS instance.
    pub namespace: String,
    /// Run dir of the production OVS instance (`OVS_RUNDIR`, `db.sock`, `BRIDGE.mgmt`).
    pub rundir: PathBuf,
    pub controller: String,
    pub switches: Vec<SwitchStatus>,
    pub links: Vec<LinkStatus>,
    pub segments: Vec<SegmentStatus>,
    pub hosts: Vec<HostStatus>,
    /// gemelo's own port on the fabric.
    #[serde(default)]
    pub probe: ProbeStatus,
}

/// The probe port: `gm-probe0` in namespace `gm-probe`, a trunk port of the
/// first switch, with an address on every segment (a VLAN subinterface for
/// VLAN segments) and no default route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub namespace: String,
    pub switch: String,
    pub bridge: String,
    /// The OVS port (bridge side of the veth).
    pub port: String,
    pub ofport: u16,
    /// `gm-probe0`, inside `namespace`.
    pub interface: String,
    pub mac: String,
    /// `IP/PREFIX` on every segment, in segment order.
    pub addresses: Vec<String>,
    pub interfaces: Vec<ProbeInterface>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeInterface {
    pub segment: String,
    /// `gm-probe0`, or `gm-probe0.<vid>` on a VLAN segment.
    pub name: String,
    pub address: String,
    pub vlan: Option<u16>,
    /// The switch port its frames enter by: the trunk's for `gm-probe0` (and
    /// for an 802.1Q subinterface); without 8021q in the kernel a VLAN
    /// interface is a veth on an access port of its own.
    pub ofport: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    pub name: String,
    pub namespace: String,
    pub rundir: PathBuf,
    pub bridge: String,
    /// 16 hex digits, as in `other-config:datapath-id`.
    pub dpid: String,
    pub controller: String,
    /// `ovs-ofctl` target of the bridge: `unix:RUNDIR/BRIDGE.mgmt`.
    pub mgmt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub a: String,
    pub b: String,
    /// OVS port names of the two ends (patch ports).
    pub ports: [String; 2],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentStatus {
    pub name: String,
    pub cidr: String,
    pub vlan: Option<u16>,
    pub gateway: String,
    /// The host running the segment's DHCP server (none: no DHCP there).
    #[serde(default)]
    pub dhcp_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    pub name: String,
    pub hostname: String,
    pub namespace: String,
    /// Its persistent UTS namespace (`nsenter --uts=PATH`).
    pub uts: PathBuf,
    /// Its configs, keys, pid files and daemon logs.
    pub dir: PathBuf,
    /// Switch, ofport and MAC of its first interface.
    pub switch: String,
    pub ofport: u16,
    pub mac: String,
    /// Every interface address, `IP/PREFIX`.
    pub ips: Vec<String>,
    pub gateway: Option<String>,
    pub ip_forward: bool,
    pub interfaces: Vec<InterfaceStatus>,
    pub services: Vec<ServiceStatus>,
    pub lldp: bool,
    /// Takes part in DHCP (serves its segments as their gateway, or is a client).
    #[serde(default)]
    pub dhcp: bool,
    pub daemons: Vec<DaemonStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub segment: String,
    pub switch: String,
    pub ofport: u16,
    /// The OVS port (veth end in the switch namespace).
    pub port_name: String,
    pub mac: String,
    pub ip: String,
    pub vlan: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub port: u16,
    pub proto: Proto,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

impl LabStatus {
    pub fn host(&self, name: &str) -> Option<&HostStatus> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn switch(&self, name: &str) -> Option<&SwitchStatus> {
        self.switches.iter().find(|s| s.name == name)
    }

    /// The status of a topology about to be built (no daemons yet).
    pub(crate) fn planned(
        topology: &Topology,
        source: PathBuf,
        controller: &str,
        hosts_dir: &std::path::Path,
    ) -> LabStatus {
        let rundir = PathBuf::from(PROD_RUNDIR);
        LabStatus {
            lab: topology.name.clone(),
            topology: source,
            namespace: PROD_NAMESPACE.to_owned(),
            rundir: rundir.clone(),
            controller: controller.to_owned(),
            switches: topology
                .switches
                .iter()
                .map(|s| SwitchStatus {
                    name: s.name.clone(),
                    namespace: PROD_NAMESPACE.to_owned(),
                    rundir: rundir.clone(),
                    bridge: s.bridge(),
                    dpid: format!("{:016x}", s.dpid),
                    controller: controller.to_owned(),
                    mgmt: format!("unix:{}/{}.mgmt", rundir.display(), s.bridge()),
                })
                .collect(),
            links: topology
                .links
                .iter()
                .map(|l| LinkStatus {
                    a: l.a.to_string(),
                    b: l.b.to_string(),
                    ports: [l.a.port_name(), l.b.port_name()],
                })
                .collect(),
            segments: topology
                .segments
                .iter()
                .map(|s| SegmentStatus {
                    name: s.name.clone(),
                    cidr: s.cidr.to_string(),
                    vlan: s.vlan,
                    gateway: s.gateway.to_string(),
                    dhcp_server: topology.dhcp_server(&s.name).map(|(h, _)| h.name.clone()),
                })
                .collect(),
            hosts: topology
                .hosts
                .iter()
                .map(|h| {
                    let first = &h.interfaces[0];
                    HostStatus {
                        name: h.name.clone(),
                        hostname: h.hostname.clone(),
                        namespace: topology.host_namespace(&h.name),
                        uts: PathBuf::from(UTS_DIR).join(&h.name),
                        dir: hosts_dir.join(&h.name),
                        switch: first.attach.switch.clone(),
                        ofport: first.attach.port,
                        mac: first.mac.clone(),
                        ips: h
                            .interfaces
                            .iter()
                            .map(|i| format!("{}/{}", i.ip, i.prefix))
                            .collect(),
                        gateway: h.default_gateway.map(|g| g.to_string()),
                        ip_forward: h.ip_forward,
                        interfaces: h
                            .interfaces
                            .iter()
                            .map(|i| InterfaceStatus {
                                name: i.name.clone(),
                                segment: i.segment.clone(),
                                switch: i.attach.switch.clone(),
                                ofport: i.attach.port,
                                port_name: i.attach.port_name(),
                                mac: i.mac.clone(),
                                ip: format!("{}/{}", i.ip, i.prefix),
                                vlan: i.vlan,
                            })
                            .collect(),
                        services: h
                            .services
                            .iter()
                            .map(|s| ServiceStatus {
                                port: s.port,
                                proto: s.proto,
                                name: s.kind.name().to_owned(),
                            })
                            .collect(),
                        lldp: h.lldp,
                        dhcp: !topology.dhcp_roles(h).is_empty(),
                        daemons: Vec::new(),
                    }
                })
                .collect(),
            probe: planned_probe(topology),
        }
    }
}

fn planned_probe(topology: &Topology) -> ProbeStatus {
    let first = &topology.switches[0];
    let interfaces: Vec<ProbeInterface> = topology
        .segments
        .iter()
        .map(|s| ProbeInterface {
            segment: s.name.clone(),
            name: match s.vlan {
                Some(vid) => format!("{PROBE_IFNAME}.{vid}"),
                None => PROBE_IFNAME.to_owned(),
            },
            address: format!("{}/{}", s.probe_ip, s.cidr.prefix()),
            vlan: s.vlan,
            ofport: 0,
        })
        .collect();
    let port: String = format!("gmpr-{}", first.name)
        .chars()
        .take(super::topology::MAX_IFNAME)
        .collect();
    ProbeStatus {
        namespace: PROBE_NAMESPACE.to_owned(),
        switch: first.name.clone(),
        bridge: first.bridge(),
        port,
        ofport: 0,
        interface: PROBE_IFNAME.to_owned(),
        mac: String::new(),
        addresses: interfaces.iter().map(|i| i.address.clone()).collect(),
        interfaces,
    }
}

/// What `down` needs to undo a lab, written before `up` creates anything and
/// extended as it goes, so a crash half way still leaves a complete list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub lab: String,
    /// Every namespace `up` creates (gm-prod first).
    pub namespaces: Vec<String>,
    /// `up` created /etc/netns itself (so `down` removes it once empty).
    #[serde(default)]
    pub etc_netns_created: bool,
    /// `up` wrote the default discovery scope file (so `down` removes it).
    #[serde(default)]
    pub scope_file: bool,
    pub daemons: Vec<DaemonRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    pub host: String,
    pub name: String,
    pub namespace: String,
    pub pid: u32,
    /// /proc start time, so a recycled pid is never mistaken for the daemon.
    pub start: Option<u64>,
    pub log: PathBuf,
}
