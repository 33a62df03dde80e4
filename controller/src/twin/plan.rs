//! The twin planner: inventory in, twin plan out. Pure, no I/O.
//!
//! Every discovered host in a mirrored segment becomes a twin host with the same
//! MAC(s), IPs, hostname, segment and gateway; hosts that share a hostname across
//! segments (a router's interfaces) become one multi-homed twin host that routes
//! like production. A segment whose gateway address no discovered host owns gets
//! a synthesized twin router, so traffic inside the twin takes the same hops.
//! Each captured service becomes a decoy: the very daemon production runs when the
//! same product and version is installed here, gemelo's byte-for-byte emulation
//! otherwise. Honeytokens (decoy-only hosts) come from the configuration.

use crate::discovery::inventory::Host;
use crate::discovery::InventoryView;
use gemelo_hypervisor::{
    Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinPlan, TwinSegment, TwinSwitch,
};
use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Datapath id of the twin switch: "gm" + "twin".
pub const TWIN_DPID: u64 = 0x676d_7477_696e_0001;
pub const TWIN_NAMESPACE: &str = "gm-twin";
pub const TWIN_BRIDGE: &str = "gm-twin0";
pub const TWIN_RUNDIR: &str = "/run/gemelo/twin/ovs";
pub const OBSERVER_NAMESPACE: &str = "gm-twin-observer";

/// A decoy-only host production does not have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Honeytoken {
    pub hostname: String,
    /// Address with prefix, inside a mirrored segment, e.g. "10.10.1.99/24".
    pub ip: String,
    /// Ports with the service name to emulate, e.g. [[22, "ssh"], [502, "modbus"]].
    #[serde(default)]
    pub services: Vec<(u16, String)>,
}

/// What to mirror and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TwinConfig {
    /// Segments (CIDRs) to mirror; empty = all discovered segments.
    #[serde(default)]
    pub segments: Vec<String>,
    /// Hosts (MAC or hostname) not to mirror.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Backend per role class ("IT", "OT", "IoT"); others get netns.
    #[serde(default)]
    pub backend_by_role: BTreeMap<String, Backend>,
    /// Backend per hostname (wins over the role).
    #[serde(default)]
    pub backend_by_host: BTreeMap<String, Backend>,
    #[serde(default)]
    pub honeytokens: Vec<Honeytoken>,
    /// Products this machine can run, with their versions (filled by the caller,
    /// e.g. from dpkg): a service whose product and version match runs the real daemon.
    #[serde(default)]
    pub installed: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("twin config: segment {0:?} is not a CIDR")]
    BadSegment(String),
    #[error("honeytoken {hostname}: {why}")]
    BadHoneytoken { hostname: String, why: String },
    #[error("nothing to mirror: the inventory has no host with an address in a mirrored segment")]
    Empty,
}

/// `[a-z0-9-]`, at most 20 characters, never empty.
fn short_name(s: &str) -> String {
    let mut n: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(20)
        .collect();
    if n.is_empty() {
        n = "host".into();
    }
    n
}

fn version_matches(installed: &str, seen: &str) -> bool {
    // Discovery writes "9.2p1 Debian 2+deb12u3"; dpkg "1:9.2p1-2+deb12u3". Compare the upstream part.
    let upstream = |v: &str| {
        let v = v.split_once(':').map(|(_, r)| r).unwrap_or(v);
        v.split(['-', ' ', '+', '~'])
            .next()
            .unwrap_or(v)
            .to_string()
    };
    upstream(installed) == upstream(seen)
}

fn decoy(
    s: &crate::discovery::probe::ServiceInfo,
    installed: &BTreeMap<String, String>,
) -> DecoySpec {
    let mode = match (&s.product, &s.version) {
        (Some(p), Some(v)) if installed.get(p).is_some_and(|iv| version_matches(iv, v)) => {
            DecoyMode::Daemon { product: p.clone() }
        }
        (Some(p), None) if installed.contains_key(p) => DecoyMode::Daemon { product: p.clone() },
        _ => DecoyMode::Emulated,
    };
    DecoySpec {
        port: s.port,
        proto: s.proto.clone(),
        name: s.name.clone(),
        product: s.product.clone(),
        version: s.version.clone(),
        banner: s.banner.clone(),
        mode,
        details: without_clocks(&s.name, &s.details),
    }
}

/// `details` without the counters that only tell when discovery looked (an
/// SNMP agent's sysUpTime and engine time): they differ at every probe, would
/// make every re-probe a changed plan, and a twin's agent keeps its own clock.
fn without_clocks(service: &str, details: &serde_json::Value) -> serde_json::Value {
    let mut d = details.clone();
    if service == "snmp" {
        if let Some(map) = d.as_object_mut() {
            map.remove("sys_uptime_ticks");
            map.remove("engine_time");
            if let Some(vb) = map.get_mut("varbinds").and_then(|v| v.as_object_mut()) {
                vb.remove("1.3.6.1.2.1.1.3.0");
            }
        }
    }
    d
}

/// Services a twin can offer: TCP ones and SNMP (DHCP and other passively seen UDP
/// are not mirrored), once active probing has captured what a client sees — a port
/// only seen open (a SYN-ACK) has nothing to answer with yet; a later rebuild adds it.
fn mirrorable(s: &crate::discovery::probe::ServiceInfo) -> bool {
    let captured = s.product.is_some() || s.banner.is_some() || !s.details.is_null();
    captured && (s.proto == "tcp" || (s.proto == "udp" && s.name == "snmp"))
}

/// Turns the inventory into a twin plan.
pub fn plan(inv: &InventoryView, cfg: &TwinConfig) -> Result<TwinPlan, PlanError> {
    let wanted: Vec<Ipv4Network> = cfg
        .segments
        .iter()
        .map(|c| c.parse().map_err(|_| PlanError::BadSegment(c.clone())))
        .collect::<Result<_, _>>()?;
    let segments: Vec<(Ipv4Network, &crate::discovery::inventory::Segment)> = inv
        .segments
        .iter()
        .filter_map(|s| s.cidr.parse::<Ipv4Network>().ok().map(|n| (n, s)))
        .filter(|(n, _)| wanted.is_empty() || wanted.contains(n))
        .collect();
    let segment_of = |ip: Ipv4Addr| segments.iter().find(|(n, _)| n.contains(ip));

    // Group the discovered hosts by hostname (a router's interfaces share one), else by MAC.
    let mut groups: BTreeMap<String, Vec<&Host>> = BTreeMap::new();
    for h in inv.hosts.iter().filter(|h| h.state == "active") {
        if cfg
            .exclude
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&h.mac) || Some(e.as_str()) == h.hostname.as_deref())
        {
            continue;
        }
        if !h
            .ips
            .iter()
            .filter_map(|i| i.parse::<Ipv4Addr>().ok())
            .any(|ip| segment_of(ip).is_some())
        {
            continue;
        }
        let key = h.hostname.clone().unwrap_or_else(|| h.mac.clone());
        groups.entry(key).or_default().push(h);
    }

    let mut hosts: Vec<TwinHost> = Vec::new();
    let mut used_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut unique = |base: String| {
        let n = used_names.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            base
        } else {
            format!("{}-{}", &base[..base.len().min(17)], n)
        }
    };
    for (key, members) in &groups {
        let hostname = members[0].hostname.clone().unwrap_or_else(|| {
            members[0]
                .ips
                .first()
                .cloned()
                .unwrap_or_else(|| key.clone())
        });
        let mut interfaces = Vec::new();
        let mut services: Vec<DecoySpec> = Vec::new();
        for h in members {
            let ips: Vec<(Ipv4Addr, Ipv4Network)> = h
                .ips
                .iter()
                .filter_map(|i| i.parse::<Ipv4Addr>().ok())
                .filter_map(|ip| segment_of(ip).map(|(n, _)| (ip, *n)))
                .collect();
            let Some((_, net)) = ips.first() else {
                continue;
            };
            let seg = segment_of(net.network()).map(|(_, s)| *s);
            interfaces.push(TwinInterface {
                mac: h.mac.clone(),
                ips: ips
                    .iter()
                    .filter(|(_, n)| n == net)
                    .map(|(ip, n)| format!("{ip}/{}", n.prefix()))
                    .collect(),
                segment: net.to_string(),
                vlan: seg.and_then(|s| s.vlan),
            });
            for s in h.services.iter().filter(|s| mirrorable(s)) {
                if !services
                    .iter()
                    .any(|d| d.port == s.port && d.proto == s.proto)
                {
                    services.push(decoy(s, &cfg.installed));
                }
            }
        }
        if interfaces.is_empty() {
            continue;
        }
        interfaces.sort_by(|a, b| a.segment.cmp(&b.segment));
        services.sort_by(|a, b| (a.proto.as_str(), a.port).cmp(&(b.proto.as_str(), b.port)));
        let own: Vec<String> = interfaces
            .iter()
            .flat_map(|i| {
                i.ips
                    .iter()
                    .map(|a| a.split('/').next().unwrap_or("").to_string())
            })
            .collect();
        let owns_gateway = segments
            .iter()
            .any(|(_, s)| s.gateway.as_ref().is_some_and(|g| own.contains(g)));
        let gateway = if interfaces.len() == 1 {
            segments
                .iter()
                .find(|(n, _)| n.to_string() == interfaces[0].segment)
                .and_then(|(n, s)| {
                    s.gateway
                        .clone()
                        .filter(|g| g.parse::<Ipv4Addr>().is_ok_and(|g| n.contains(g)))
                })
                .filter(|g| !own.contains(g))
        } else {
            None
        };
        let role = members
            .iter()
            .map(|h| h.role.as_str())
            .next()
            .unwrap_or("IT");
        let backend = cfg
            .backend_by_host
            .get(&hostname)
            .or_else(|| cfg.backend_by_role.get(role))
            .copied()
            .unwrap_or_default();
        hosts.push(TwinHost {
            name: unique(short_name(&hostname)),
            mirrors: members.iter().map(|h| h.mac.clone()).collect(),
            hostname,
            interfaces,
            gateway,
            ip_forward: owns_gateway && members.len() > 1,
            backend,
            services,
            honeytoken: false,
        });
    }
    if hosts.is_empty() {
        return Err(PlanError::Empty);
    }

    // Gateways nobody owns get a twin router, so routing inside the twin matches production.
    let owned: Vec<String> = hosts
        .iter()
        .flat_map(|h| {
            h.interfaces.iter().flat_map(|i| {
                i.ips
                    .iter()
                    .map(|a| a.split('/').next().unwrap_or("").to_string())
            })
        })
        .collect();
    let orphan: Vec<&(Ipv4Network, &crate::discovery::inventory::Segment)> = segments
        .iter()
        .filter(|(_, s)| s.gateway.as_ref().is_some_and(|g| !owned.contains(g)))
        .collect();
    if !orphan.is_empty() {
        let interfaces = orphan
            .iter()
            .filter_map(|(n, s)| {
                let g: Ipv4Addr = s.gateway.as_ref()?.parse().ok()?;
                let o = g.octets();
                Some(TwinInterface {
                    mac: format!("0e:67:6d:{:02x}:{:02x}:{:02x}", o[1], o[2], o[3]),
                    ips: vec![format!("{g}/{}", n.prefix())],
                    segment: n.to_string(),
                    vlan: s.vlan,
                })
            })
            .collect::<Vec<_>>();
        if !interfaces.is_empty() {
            hosts.push(TwinHost {
                name: unique("gw-twin".into()),
                mirrors: Vec::new(),
                hostname: "gateway".into(),
                ip_forward: interfaces.len() > 1,
                interfaces,
                gateway: None,
                backend: Backend::Netns,
                services: Vec::new(),
                honeytoken: false,
            });
        }
    }

    for t in &cfg.honeytokens {
        let bad = |why: &str| PlanError::BadHoneytoken {
            hostname: t.hostname.clone(),
            why: why.into(),
        };
        let net: Ipv4Network =
            t.ip.parse()
                .map_err(|_| bad("ip must be an address with prefix, e.g. 10.10.1.99/24"))?;
        let (seg_net, seg) =
            segment_of(net.ip()).ok_or_else(|| bad("its address is in no mirrored segment"))?;
        if owned.contains(&net.ip().to_string()) {
            return Err(bad("its address is already used by a mirrored host"));
        }
        let o = net.ip().octets();
        hosts.push(TwinHost {
            name: unique(short_name(&t.hostname)),
            mirrors: Vec::new(),
            hostname: t.hostname.clone(),
            interfaces: vec![TwinInterface {
                mac: format!("02:67:6d:{:02x}:{:02x}:{:02x}", o[1], o[2], o[3]),
                ips: vec![format!("{}/{}", net.ip(), seg_net.prefix())],
                segment: seg_net.to_string(),
                vlan: seg.vlan,
            }],
            gateway: seg.gateway.clone(),
            ip_forward: false,
            backend: Backend::Netns,
            services: t
                .services
                .iter()
                .map(|(port, name)| DecoySpec {
                    port: *port,
                    proto: "tcp".into(),
                    name: name.clone(),
                    product: None,
                    version: None,
                    banner: None,
                    mode: DecoyMode::Emulated,
                    details: serde_json::Value::Null,
                })
                .collect(),
            honeytoken: true,
        });
    }

    Ok(TwinPlan {
        switch: TwinSwitch {
            namespace: TWIN_NAMESPACE.into(),
            rundir: TWIN_RUNDIR.into(),
            bridge: TWIN_BRIDGE.into(),
            dpid: TWIN_DPID,
        },
        observer_namespace: OBSERVER_NAMESPACE.into(),
        segments: segments
            .iter()
            .map(|(n, s)| TwinSegment {
                cidr: n.to_string(),
                vlan: s.vlan,
                gateway: s.gateway.clone(),
            })
            .collect(),
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::inventory::{Host, Segment};
    use crate::discovery::probe::ServiceInfo;

    fn svc(port: u16, name: &str, product: Option<&str>, version: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            port,
            proto: "tcp".into(),
            name: name.into(),
            product: product.map(Into::into),
            version: version.map(Into::into),
            banner: None,
            details: serde_json::json!({"captured": true}),
        }
    }

    fn host(mac: &str, ip: &str, name: &str, services: Vec<ServiceInfo>) -> Host {
        Host {
            id: mac.into(),
            mac: mac.into(),
            ips: vec![ip.into()],
            hostname: Some(name.into()),
            hostname_source: Some("dhcp".into()),
            switch: Some("0000000000000001".into()),
            port: Some(3),
            vlan: None,
            first_seen: "t".into(),
            last_seen: "t".into(),
            state: "active".into(),
            os: None,
            role: "IT".into(),
            services,
            ttl: Some(64),
        }
    }

    fn office() -> InventoryView {
        let mut snmp = svc(161, "snmp", Some("net-snmp"), Some("5.9.3"));
        snmp.proto = "udp".into();
        let mut dhcp = svc(67, "dhcp", None, None);
        dhcp.proto = "udp".into();
        InventoryView {
            hosts: vec![
                host(
                    "02:00:0a:0a:01:01",
                    "10.10.1.1",
                    "gw01",
                    vec![
                        svc(22, "ssh", Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u3")),
                        dhcp,
                    ],
                ),
                host(
                    "02:00:0a:0a:02:01",
                    "10.10.2.1",
                    "gw01",
                    vec![svc(
                        22,
                        "ssh",
                        Some("OpenSSH"),
                        Some("9.2p1 Debian 2+deb12u3"),
                    )],
                ),
                host(
                    "02:00:0a:0a:01:0a",
                    "10.10.1.10",
                    "web01",
                    vec![
                        svc(80, "http", Some("lighttpd"), Some("1.4.69")),
                        svc(22, "ssh", Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u3")),
                    ],
                ),
                host("02:00:0a:0a:02:15", "10.10.2.21", "ws-acct-01", vec![snmp]),
                host("02:00:0a:0a:05:05", "10.10.5.5", "elsewhere", vec![]),
            ],
            segments: vec![
                Segment {
                    cidr: "10.10.1.0/24".into(),
                    vlan: Some(10),
                    gateway: Some("10.10.1.1".into()),
                },
                Segment {
                    cidr: "10.10.2.0/24".into(),
                    vlan: Some(20),
                    gateway: Some("10.10.2.1".into()),
                },
            ],
            switches: vec![],
            links: vec![],
        }
    }

    fn installed() -> BTreeMap<String, String> {
        [
            ("OpenSSH".to_string(), "1:9.2p1-2+deb12u3".to_string()),
            ("lighttpd".to_string(), "1.4.69-1".to_string()),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn mirrors_hosts_with_their_identity() {
        let p = plan(
            &office(),
            &TwinConfig {
                installed: installed(),
                ..TwinConfig::default()
            },
        )
        .unwrap();
        assert_eq!(p.switch.dpid, TWIN_DPID);
        let web = p.hosts.iter().find(|h| h.name == "web01").unwrap();
        assert_eq!(web.mirrors, vec!["02:00:0a:0a:01:0a"]);
        assert_eq!(web.interfaces[0].mac, "02:00:0a:0a:01:0a");
        assert_eq!(web.interfaces[0].ips, vec!["10.10.1.10/24"]);
        assert_eq!(web.interfaces[0].vlan, Some(10));
        assert_eq!(web.gateway.as_deref(), Some("10.10.1.1"));
        assert_eq!(
            web.services.iter().map(|s| s.port).collect::<Vec<_>>(),
            vec![22, 80]
        );
        assert!(
            web.services
                .iter()
                .all(|s| matches!(s.mode, DecoyMode::Daemon { .. })),
            "{:?}",
            web.services
        );
        assert_eq!(
            web.services[0].details,
            serde_json::json!({"captured": true})
        );
        assert!(
            p.hosts.iter().all(|h| h.hostname != "elsewhere"),
            "hosts outside mirrored segments are left out"
        );
    }

    #[test]
    fn router_interfaces_become_one_routing_host() {
        let p = plan(&office(), &TwinConfig::default()).unwrap();
        let gw = p.hosts.iter().find(|h| h.name == "gw01").unwrap();
        assert_eq!(gw.interfaces.len(), 2);
        assert!(gw.ip_forward);
        assert_eq!(gw.gateway, None);
        assert_eq!(gw.services.len(), 1, "ssh once; dhcp is not mirrored");
        assert!(
            !p.hosts.iter().any(|h| h.name.starts_with("gw-twin")),
            "no synthesized router when production's is mirrored"
        );
    }

    #[test]
    fn other_versions_are_emulated_and_snmp_kept() {
        let p = plan(&office(), &TwinConfig::default()).unwrap();
        let web = p.hosts.iter().find(|h| h.name == "web01").unwrap();
        assert!(web.services.iter().all(|s| s.mode == DecoyMode::Emulated));
        let ws = p.hosts.iter().find(|h| h.name == "ws-acct-01").unwrap();
        assert_eq!(ws.services[0].name, "snmp");
    }

    #[test]
    fn orphan_gateways_get_a_twin_router() {
        let mut inv = office();
        inv.hosts.retain(|h| h.hostname.as_deref() != Some("gw01"));
        let p = plan(&inv, &TwinConfig::default()).unwrap();
        let gw = p.hosts.iter().find(|h| h.name == "gw-twin").unwrap();
        assert_eq!(gw.interfaces.len(), 2);
        assert!(gw.ip_forward);
        assert!(gw.mirrors.is_empty());
    }

    #[test]
    fn config_filters_backends_and_honeytokens() {
        let cfg = TwinConfig {
            segments: vec!["10.10.1.0/24".into()],
            exclude: vec!["web01".into()],
            backend_by_host: [("gw01".to_string(), Backend::Lxc)].into_iter().collect(),
            honeytokens: vec![Honeytoken {
                hostname: "backup-srv".into(),
                ip: "10.10.1.99/24".into(),
                services: vec![(22, "ssh".into())],
            }],
            ..TwinConfig::default()
        };
        let p = plan(&office(), &cfg).unwrap();
        assert!(p.hosts.iter().all(|h| h.name != "web01"));
        assert!(
            p.hosts.iter().all(|h| h.name != "ws-acct-01"),
            "segment 2 is not mirrored"
        );
        assert_eq!(
            p.hosts.iter().find(|h| h.name == "gw01").unwrap().backend,
            Backend::Lxc
        );
        let ht = p.hosts.iter().find(|h| h.honeytoken).unwrap();
        assert_eq!(ht.interfaces[0].ips, vec!["10.10.1.99/24"]);
        assert_eq!(ht.gateway.as_deref(), Some("10.10.1.1"));
        let bad = TwinConfig {
            honeytokens: vec![Honeytoken {
                hostname: "x".into(),
                ip: "10.10.1.10/24".into(),
                services: vec![],
            }],
            ..TwinConfig::default()
        };
        assert!(plan(&office(), &bad)
            .unwrap_err()
            .to_string()
            .contains("already used"));
        let bad = TwinConfig {
            segments: vec!["nope".into()],
            ..TwinConfig::default()
        };
        assert_eq!(
            plan(&office(), &bad),
            Err(PlanError::BadSegment("nope".into()))
        );
    }

    #[test]
    fn unidentified_ports_wait_for_a_capture() {
        let mut inv = office();
        let mut bare = svc(8080, "http", None, None);
        bare.details = serde_json::Value::Null;
        inv.hosts[2].services.push(bare);
        let p = plan(&inv, &TwinConfig::default()).unwrap();
        let web = p.hosts.iter().find(|h| h.name == "web01").unwrap();
        assert!(web.services.iter().all(|s| s.port != 8080));
    }

    #[test]
    fn names_are_short_and_unique() {
        assert_eq!(
            short_name("WS_Acct.01.example.com-very-long"),
            "ws-acct-01-example-c"
        );
        assert_eq!(short_name("__"), "host");
        assert!(version_matches(
            "1:9.2p1-2+deb12u3",
            "9.2p1 Debian 2+deb12u3"
        ));
        assert!(!version_matches("1:9.2p1-2", "8.4p1 Debian 5"));
        assert!(
            version_matches("5.9.3+dfsg-2", "5.9.3"),
            "Debian repack suffixes are not part of the upstream version"
        );
    }

    #[test]
    fn an_update_names_only_the_hosts_that_changed() {
        let cfg = TwinConfig::default();
        let inv = office();
        // Time passing changes nothing: neither last_seen nor an SNMP agent's clocks.
        let snmp_at = |ticks: u32, inv: &mut InventoryView| {
            for s in inv.hosts.iter_mut().flat_map(|h| h.services.iter_mut()) {
                if s.name == "snmp" {
                    s.details = serde_json::json!({"sys_name": "ws-acct-01", "sys_uptime_ticks": ticks,
                        "engine_id": "80001f8880aabbccdd11223344000000", "engine_boots": 7, "engine_time": ticks / 100,
                        "varbinds": {"1.3.6.1.2.1.1.3.0": ticks, "1.3.6.1.2.1.1.5.0": "ws-acct-01"}});
                }
            }
        };
        let mut inv = inv;
        snmp_at(3914, &mut inv);
        let built = plan(&inv, &cfg).unwrap();
        let mut later = inv.clone();
        for h in &mut later.hosts {
            h.last_seen = "later".into();
        }
        snmp_at(93914, &mut later);
        assert_eq!(plan(&later, &cfg).unwrap(), built);
        let snmp = built
            .hosts
            .iter()
            .flat_map(|h| &h.services)
            .find(|s| s.name == "snmp")
            .unwrap();
        assert_eq!(
            snmp.details["engine_id"],
            "80001f8880aabbccdd11223344000000"
        );
        assert_eq!(snmp.details["varbinds"]["1.3.6.1.2.1.1.5.0"], "ws-acct-01");
        assert!(crate::twin::changed_hosts(&built, &built).is_empty());
        // A newcomer, and a host that renamed itself.
        let mut grown = inv.clone();
        grown
            .hosts
            .push(host("02:66:0a:0a:02:58", "10.10.2.88", "newcomer", vec![]));
        let web = grown
            .hosts
            .iter_mut()
            .find(|h| h.hostname.as_deref() == Some("web01"))
            .unwrap();
        web.hostname = Some("web02".into());
        let next = plan(&grown, &cfg).unwrap();
        let changed = crate::twin::changed_hosts(&built, &next);
        assert!(changed.contains(&"newcomer".to_string()), "{changed:?}");
        assert!(changed.iter().any(|n| n.starts_with("web0")), "{changed:?}");
        assert!(!changed.contains(&"gw01".to_string()), "{changed:?}");
    }

    #[test]
    fn live_values_are_no_change() {
        let cfg = TwinConfig::default();
        let plc_at = |pv: u64, counter: u64, temp: &str, setpoint: u64| {
            let mut inv = office();
            let mut modbus = svc(502, "modbus", Some("PLC 5000"), Some("2.1"));
            modbus.details = serde_json::json!({"unit_id": 1,
                "holding_registers": [{"start": 0, "count": 3, "values": [setpoint, pv, counter]}],
                "live_registers": [{"address": 1, "samples": [pv, pv + 1, pv]}, {"address": 2, "samples": [counter, counter + 1, counter + 2]}],
                "sample_interval_ms": 1000});
            let mut mqtt = svc(1883, "mqtt", Some("Mosquitto"), Some("2.0.11"));
            mqtt.details = serde_json::json!({"accepted": true, "listened_ms": 6000 + pv,
                "topics": [{"topic": "w7/temp", "payload": temp, "encoding": "utf-8", "retained": false, "count": 2, "period_ms": 5000 + pv}]});
            inv.hosts.push(host(
                "02:66:0a:0a:02:59",
                "10.10.2.89",
                "plc01",
                vec![modbus, mqtt],
            ));
            plan(&inv, &cfg).unwrap()
        };
        let built = plc_at(98, 7, "{\"seq\":2}", 100);
        // Production moved on: the same twin.
        let later = plc_at(95, 9000, "{\"seq\":77}", 100);
        assert_ne!(later, built);
        assert!(crate::twin::changed_hosts(&built, &later).is_empty());
        // A setting changed: that host.
        let changed = crate::twin::changed_hosts(&built, &plc_at(95, 9000, "{}", 120));
        assert_eq!(changed, vec!["plc01".to_string()]);
    }
}
