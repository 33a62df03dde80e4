//! The inventory: what discovery knows about the production network, and how
//! each observation changes it.
//!
//! Pure: `Inventory::observe` takes one copied frame (with the switch and port it
//! entered on) and returns the changes it caused; the discovery service persists
//! them as history. Rules that keep the inventory truthful:
//! - a MAC is attached to the edge port it was seen on, never to an inter-switch
//!   link port (those are known from LLDP);
//! - an IP is bound to a MAC only by ARP, DHCP or LLDP, which are link-local; a
//!   routed packet carries the router's MAC with a remote IP and binds nothing;
//! - a service seen in a SYN-ACK belongs to the host owning its source IP.

use super::frames::{Frame, Kind, Mac, PROBE_SRC};
use super::probe::ServiceInfo;
use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

pub fn mac_str(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Os {
    pub family: String,
    pub guess: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The MAC in lower case.
    pub id: String,
    pub mac: String,
    pub ips: Vec<String>,
    pub hostname: Option<String>,
    /// Where the hostname came from: dhcp, lldp, snmp.
    pub hostname_source: Option<String>,
    pub switch: Option<String>,
    pub port: Option<u32>,
    pub vlan: Option<u16>,
    pub first_seen: String,
    pub last_seen: String,
    /// active, or vanished (not seen for a while).
    pub state: String,
    pub os: Option<Os>,
    pub role: String,
    pub services: Vec<ServiceInfo>,
    /// IP TTL of the last SYN-ACK seen from this host (for the OS guess).
    pub ttl: Option<u8>,
}

impl Host {
    fn new(mac: &Mac, now: &str) -> Host {
        Host {
            id: mac_str(mac),
            mac: mac_str(mac),
            ips: Vec::new(),
            hostname: None,
            hostname_source: None,
            switch: None,
            port: None,
            vlan: None,
            first_seen: now.to_string(),
            last_seen: now.to_string(),
            state: "active".into(),
            os: None,
            role: "IT".into(),
            services: Vec::new(),
            ttl: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub cidr: String,
    pub vlan: Option<u16>,
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkEnd {
    pub dpid: String,
    pub port: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub a: LinkEnd,
    pub b: LinkEnd,
    pub last_seen: String,
}

/// One change, kept as history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Appeared {
        host: String,
    },
    Changed {
        host: String,
        field: String,
        from: Option<String>,
        to: Option<String>,
    },
    Vanished {
        host: String,
    },
    LinkUp {
        a: LinkEnd,
        b: LinkEnd,
    },
    LinkDown {
        a: LinkEnd,
        b: LinkEnd,
    },
    SegmentFound {
        cidr: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub hosts: BTreeMap<String, Host>,
    pub segments: BTreeMap<String, Segment>,
    pub links: BTreeMap<(LinkEnd, LinkEnd), Link>,
    /// Services seen for IPs no host owns yet.
    pending: BTreeMap<Ipv4Addr, Vec<(u16, u8)>>,
    /// MACs that are gemelo's own (the probe port), never inventoried.
    pub own_macs: BTreeSet<Mac>,
    /// The configured scope, used to name segments.
    pub scope: Vec<Ipv4Network>,
}

/// Service name commonly behind a port (until active probing identifies it).
pub fn port_name(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 => "smtp",
        53 => "dns",
        80 | 8000 | 8080 | 8081 | 8888 => "http",
        102 => "s7comm",
        161 => "snmp",
        443 | 8443 => "https",
        502 => "modbus",
        554 => "rtsp",
        1883 => "mqtt",
        8883 => "mqtts",
        20000 => "dnp3",
        44818 => "enip",
        _ => "unknown",
    }
}

impl Inventory {
    /// Addresses that answered connections but whose owner is not known yet
    /// (its one ARP copy was lost, say): worth asking for again.
    pub fn unowned_addresses(&self) -> Vec<Ipv4Addr> {
        self.pending.keys().copied().collect()
    }

    pub fn host_by_ip(&self, ip: Ipv4Addr) -> Option<&Host> {
        let s = ip.to_string();
        self.hosts.values().find(|h| h.ips.contains(&s))
    }

    fn host_mut(&mut self, mac: &Mac, now: &str, changes: &mut Vec<Change>) -> &mut Host {
        let id = mac_str(mac);
        if !self.hosts.contains_key(&id) {
            changes.push(Change::Appeared { host: id.clone() });
        }
        let h = self.hosts.entry(id).or_insert_with(|| Host::new(mac, now));
        if h.state != "active" {
            h.state = "active".into();
        }
        h.last_seen = now.to_string();
        h
    }

    fn set<T: PartialEq + Clone + ToString>(
        h: &mut Host,
        field: &str,
        slot: impl FnOnce(&mut Host) -> &mut Option<T>,
        v: T,
        changes: &mut Vec<Change>,
    ) {
        let id = h.id.clone();
        let s = slot(h);
        if s.as_ref() != Some(&v) {
            changes.push(Change::Changed {
                host: id,
                field: field.into(),
                from: s.as_ref().map(T::to_string),
                to: Some(v.to_string()),
            });
            *s = Some(v);
        }
    }

    /// Binds `ip` to `mac` (and unbinds it from any other host).
    fn bind_ip(&mut self, mac: &Mac, ip: Ipv4Addr, now: &str, changes: &mut Vec<Change>) {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return;
        }
        let id = mac_str(mac);
        let s = ip.to_string();
        // ARP flux: a multi-homed host (a router) sends ARP out of one interface with
        // the address of another. An address owned elsewhere does not move to a MAC
        // whose own addresses all lie in other segments.
        let owned_elsewhere = self
            .hosts
            .values()
            .any(|h| h.id != id && h.ips.contains(&s));
        if owned_elsewhere {
            if let Some(h) = self.hosts.get(&id) {
                let mine: Vec<Ipv4Addr> = h.ips.iter().filter_map(|i| i.parse().ok()).collect();
                let same_segment = |a: Ipv4Addr| self.segment_of(a).is_some_and(|n| n.contains(ip));
                if !mine.is_empty()
                    && self.segment_of(ip).is_some()
                    && !mine.iter().any(|a| same_segment(*a))
                {
                    return;
                }
            }
        }
        for h in self
            .hosts
            .values_mut()
            .filter(|h| h.id != id && h.ips.contains(&s))
        {
            h.ips.retain(|i| i != &s);
            changes.push(Change::Changed {
                host: h.id.clone(),
                field: "ips".into(),
                from: Some(s.clone()),
                to: None,
            });
        }
        let h = self.host_mut(mac, now, changes);
        if !h.ips.contains(&s) {
            h.ips.push(s.clone());
            h.ips.sort();
            changes.push(Change::Changed {
                host: h.id.clone(),
                field: "ips".into(),
                from: None,
                to: Some(s),
            });
        }
        if let Some(ports) = self.pending.remove(&ip) {
            let h = self.hosts.get_mut(&id).expect("just inserted");
            for (port, ttl) in ports {
                add_seen_service(h, port, ttl, changes);
            }
        }
        self.note_segment(ip, None, None, changes);
    }

    /// The known segment (or scope range) holding `ip`.
    fn segment_of(&self, ip: Ipv4Addr) -> Option<Ipv4Network> {
        self.segments
            .keys()
            .filter_map(|c| c.parse::<Ipv4Network>().ok())
            .chain(self.scope.iter().copied())
            .find(|n| n.contains(ip))
    }

    fn note_segment(
        &mut self,
        ip: Ipv4Addr,
        net: Option<Ipv4Network>,
        gateway: Option<Ipv4Addr>,
        changes: &mut Vec<Change>,
    ) {
        let net = net.or_else(|| self.scope.iter().find(|n| n.contains(ip)).copied());
        let Some(net) = net else { return };
        let cidr = format!("{}/{}", net.network(), net.prefix());
        let seg = self.segments.entry(cidr.clone()).or_insert_with(|| {
            changes.push(Change::SegmentFound { cidr: cidr.clone() });
            Segment {
                cidr: cidr.clone(),
                vlan: None,
                gateway: None,
            }
        });
        // A router outside the segment is another segment's (two DHCP servers answering
        // on one shared broadcast domain): it cannot be this segment's gateway.
        if let Some(g) = gateway.filter(|g| net.contains(*g)) {
            seg.gateway = Some(g.to_string());
        }
    }

    fn note_vlan(&mut self, ip: Ipv4Addr, vlan: u16) {
        if let Some(seg) = self
            .segments
            .values_mut()
            .find(|s| s.cidr.parse::<Ipv4Network>().is_ok_and(|n| n.contains(ip)))
        {
            seg.vlan = Some(vlan);
        }
    }

    /// Takes one copied frame that entered switch `dpid` on `in_port`.
    pub fn observe(&mut self, dpid: u64, in_port: u32, frame: &Frame, now: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        if frame.src == PROBE_SRC || self.own_macs.contains(&frame.src) {
            // gemelo's own link probes are handled by the link tracker; the probe port is not a host.
            return changes;
        }
        let dpid_s = format!("{dpid:016x}");
        // Per packet-in: look the port up in the links without building a set.
        let at = |e: &LinkEnd| e.dpid == dpid_s && e.port == in_port;
        let on_link = self.links.keys().any(|(a, b)| at(a) || at(b));
        let src = frame.src;
        let learns_attachment = !on_link && src[0] & 1 == 0;
        match &frame.kind {
            // With a scope configured, only in-scope addresses make hosts: a flood of
            // invented ARP senders cannot fill the inventory.
            Kind::Arp { sender_ip, .. }
                if !self.scope.is_empty() && !self.scope.iter().any(|n| n.contains(*sender_ip)) => {
            }
            Kind::Arp {
                sender_mac,
                sender_ip,
                ..
            } if *sender_mac == src => {
                self.bind_ip(&src, *sender_ip, now, &mut changes);
                if let Some(v) = frame.vlan {
                    self.note_vlan(*sender_ip, v);
                }
            }
            Kind::Dhcp(d) if d.op == 1 && d.chaddr == src => {
                let h = self.host_mut(&src, now, &mut changes);
                if let Some(name) = &d.hostname {
                    Self::set(
                        h,
                        "hostname",
                        |h| &mut h.hostname,
                        name.clone(),
                        &mut changes,
                    );
                    h.hostname_source = Some("dhcp".into());
                }
                if let Some(ip) = d
                    .requested_ip
                    .or(Some(d.ciaddr))
                    .filter(|i| !i.is_unspecified())
                {
                    self.bind_ip(&src, ip, now, &mut changes);
                }
            }
            Kind::Dhcp(d) if d.op == 2 => {
                if !d.yiaddr.is_unspecified() {
                    self.bind_ip(&d.chaddr, d.yiaddr, now, &mut changes);
                    if let Some(mask) = d.subnet_mask {
                        if let Ok(net) = Ipv4Network::with_netmask(d.yiaddr, mask) {
                            let net = Ipv4Network::new(net.network(), net.prefix()).unwrap_or(net);
                            self.note_segment(d.yiaddr, Some(net), d.router, &mut changes);
                        }
                    }
                }
                if let Some(server) = d.server_id {
                    if !on_link {
                        self.bind_ip(&src, server, now, &mut changes);
                        let h = self.host_mut(&src, now, &mut changes);
                        if !h.services.iter().any(|s| s.port == 67 && s.proto == "udp") {
                            h.services.push(ServiceInfo {
                                port: 67,
                                proto: "udp".into(),
                                name: "dhcp".into(),
                                product: None,
                                version: None,
                                banner: None,
                                details: serde_json::json!({"seen": "DHCP server reply"}),
                            });
                            changes.push(Change::Changed {
                                host: h.id.clone(),
                                field: "service udp/67".into(),
                                from: None,
                                to: Some("dhcp".into()),
                            });
                        }
                    }
                }
            }
            Kind::Lldp(l) => {
                let h = self.host_mut(&src, now, &mut changes);
                if let Some(name) = l.system_name.as_ref().filter(|n| !n.is_empty()) {
                    if h.hostname_source.as_deref() != Some("dhcp") {
                        Self::set(
                            h,
                            "hostname",
                            |h| &mut h.hostname,
                            name.clone(),
                            &mut changes,
                        );
                        h.hostname_source = Some("lldp".into());
                    }
                }
                if let Some(ip) = l.mgmt_ipv4 {
                    self.bind_ip(&src, ip, now, &mut changes);
                }
            }
            Kind::SynAck {
                src_ip,
                src_port,
                ttl,
                ..
            } => match self.host_by_ip(*src_ip).map(|h| h.id.clone()) {
                Some(id) => {
                    let h = self.hosts.get_mut(&id).expect("found above");
                    add_seen_service(h, *src_port, *ttl, &mut changes);
                }
                None => self
                    .pending
                    .entry(*src_ip)
                    .or_default()
                    .push((*src_port, *ttl)),
            },
            _ => {}
        }
        if learns_attachment && self.hosts.contains_key(&mac_str(&src)) {
            let h = self.hosts.get_mut(&mac_str(&src)).expect("checked");
            h.last_seen = now.to_string();
            if h.switch.as_deref() != Some(dpid_s.as_str()) || h.port != Some(in_port) {
                changes.push(Change::Changed {
                    host: h.id.clone(),
                    field: "attachment".into(),
                    from: h
                        .switch
                        .as_ref()
                        .map(|s| format!("{s}:{}", h.port.unwrap_or(0))),
                    to: Some(format!("{dpid_s}:{in_port}")),
                });
                h.switch = Some(dpid_s);
                h.port = Some(in_port);
            }
        }
        changes
    }

    /// A link probe that left (from_dpid, from_port) arrived at (dpid, port).
    pub fn observe_link(&mut self, from: (u64, u32), to: (u64, u32), now: &str) -> Vec<Change> {
        let a = LinkEnd {
            dpid: format!("{:016x}", from.0),
            port: from.1,
        };
        let b = LinkEnd {
            dpid: format!("{:016x}", to.0),
            port: to.1,
        };
        let key = if a <= b { (a, b) } else { (b, a) };
        let mut changes = Vec::new();
        if !self.links.contains_key(&key) {
            changes.push(Change::LinkUp {
                a: key.0.clone(),
                b: key.1.clone(),
            });
            // Hosts provisionally attached to what turned out to be a link port lose that attachment.
            for h in self.hosts.values_mut() {
                let here = |e: &LinkEnd| {
                    h.switch.as_deref() == Some(e.dpid.as_str()) && h.port == Some(e.port)
                };
                if here(&key.0) || here(&key.1) {
                    h.switch = None;
                    h.port = None;
                }
            }
        }
        let entry = self.links.entry(key.clone()).or_insert_with(|| Link {
            a: key.0.clone(),
            b: key.1.clone(),
            last_seen: now.into(),
        });
        entry.last_seen = now.into();
        changes
    }

    /// Records what active probing identified on `ip`.
    pub fn set_services(
        &mut self,
        ip: Ipv4Addr,
        services: Vec<ServiceInfo>,
        os: Option<Os>,
        role: &str,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let Some(id) = self.host_by_ip(ip).map(|h| h.id.clone()) else {
            return changes;
        };
        let h = self.hosts.get_mut(&id).expect("found");
        for s in services {
            match h
                .services
                .iter_mut()
                .find(|x| x.port == s.port && x.proto == s.proto)
            {
                Some(x) if *x == s => {}
                Some(x) => {
                    changes.push(Change::Changed {
                        host: id.clone(),
                        field: format!("service {}/{}", s.proto, s.port),
                        from: Some(x.name.clone()),
                        to: Some(s.name.clone()),
                    });
                    *x = s;
                }
                None => {
                    changes.push(Change::Changed {
                        host: id.clone(),
                        field: format!("service {}/{}", s.proto, s.port),
                        from: None,
                        to: Some(s.name.clone()),
                    });
                    h.services.push(s);
                }
            }
        }
        h.services
            .sort_by(|a, b| (a.proto.as_str(), a.port).cmp(&(b.proto.as_str(), b.port)));
        if let Some(os) = os {
            h.os = Some(os);
        }
        h.role = role.to_string();
        changes
    }

    /// Hostname learned from SNMP sysName, unless DHCP or LLDP already named the host.
    pub fn set_snmp_name(&mut self, ip: Ipv4Addr, name: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        let Some(id) = self.host_by_ip(ip).map(|h| h.id.clone()) else {
            return changes;
        };
        let h = self.hosts.get_mut(&id).expect("found");
        if h.hostname.is_none() {
            Self::set(
                h,
                "hostname",
                |h| &mut h.hostname,
                name.to_string(),
                &mut changes,
            );
            h.hostname_source = Some("snmp".into());
        }
        changes
    }

    /// Marks hosts not seen since `cutoff` (RFC 3339, compared as text) vanished.
    pub fn expire(&mut self, cutoff: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        for h in self.hosts.values_mut() {
            if h.state == "active" && h.last_seen.as_str() < cutoff {
                h.state = "vanished".into();
                changes.push(Change::Vanished { host: h.id.clone() });
            }
        }
        changes
    }

    /// Removes links not refreshed since `cutoff`.
    pub fn expire_links(&mut self, cutoff: &str) -> Vec<Change> {
        let gone: Vec<_> = self
            .links
            .iter()
            .filter(|(_, l)| l.last_seen.as_str() < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        gone.into_iter()
            .map(|k| {
                self.links.remove(&k);
                Change::LinkDown { a: k.0, b: k.1 }
            })
            .collect()
    }
}

fn add_seen_service(h: &mut Host, port: u16, ttl: u8, changes: &mut Vec<Change>) {
    h.ttl = Some(ttl);
    if !h
        .services
        .iter()
        .any(|s| s.port == port && s.proto == "tcp")
    {
        h.services.push(ServiceInfo {
            port,
            proto: "tcp".into(),
            name: port_name(port).into(),
            product: None,
            version: None,
            banner: None,
            details: serde_json::Value::Null,
        });
        h.services
            .sort_by(|a, b| (a.proto.as_str(), a.port).cmp(&(b.proto.as_str(), b.port)));
        changes.push(Change::Changed {
            host: h.id.clone(),
            field: format!("service tcp/{port}"),
            from: None,
            to: Some(port_name(port).into()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::frames::{Dhcp, Lldp};

    const WEB: Mac = [2, 0, 10, 10, 1, 10];
    const GW_SERVERS: Mac = [2, 0, 10, 10, 1, 1];
    const NOW: &str = "2026-11-25T10:00:00Z";

    fn frame(src: Mac, kind: Kind) -> Frame {
        Frame {
            src,
            dst: [0xff; 6],
            vlan: None,
            kind,
        }
    }

    fn arp(mac: Mac, ip: [u8; 4]) -> Frame {
        frame(
            mac,
            Kind::Arp {
                op: 1,
                sender_mac: mac,
                sender_ip: Ipv4Addr::from(ip),
                target_ip: Ipv4Addr::new(10, 10, 1, 1),
            },
        )
    }

    fn scoped() -> Inventory {
        Inventory {
            scope: vec![
                "10.10.1.0/24".parse().unwrap(),
                "10.10.2.0/24".parse().unwrap(),
            ],
            ..Inventory::default()
        }
    }

    #[test]
    fn arp_creates_an_attached_host_in_a_segment() {
        let mut inv = scoped();
        let ch = inv.observe(1, 3, &arp(WEB, [10, 10, 1, 10]), NOW);
        assert!(matches!(ch[0], Change::Appeared { .. }));
        let h = &inv.hosts["02:00:0a:0a:01:0a"];
        assert_eq!(h.ips, vec!["10.10.1.10"]);
        assert_eq!(
            (h.switch.as_deref(), h.port),
            (Some("0000000000000001"), Some(3))
        );
        assert!(inv.segments.contains_key("10.10.1.0/24"));
    }

    #[test]
    fn routed_packets_bind_nothing() {
        let mut inv = scoped();
        inv.observe(1, 1, &arp(GW_SERVERS, [10, 10, 1, 1]), NOW);
        // A SYN-ACK from a remote server arrives with the gateway's MAC.
        let synack = frame(
            GW_SERVERS,
            Kind::SynAck {
                src_ip: Ipv4Addr::new(10, 10, 2, 99),
                dst_ip: Ipv4Addr::new(10, 10, 1, 10),
                src_port: 80,
                ttl: 63,
            },
        );
        inv.observe(1, 1, &synack, NOW);
        let gw = &inv.hosts["02:00:0a:0a:01:01"];
        assert_eq!(gw.ips, vec!["10.10.1.1"]);
        assert!(
            gw.services.is_empty(),
            "a routed SYN-ACK is not the gateway's service"
        );
        // When the real owner shows up, the pending service lands on it.
        let owner = [2, 0, 10, 10, 2, 99];
        inv.observe(2, 4, &arp(owner, [10, 10, 2, 99]), NOW);
        assert_eq!(inv.hosts["02:00:0a:0a:02:63"].services[0].port, 80);
        assert_eq!(inv.hosts["02:00:0a:0a:02:63"].services[0].name, "http");
    }

    #[test]
    fn arp_flux_of_a_router_does_not_move_addresses() {
        let mut inv = scoped();
        let gw_ws: Mac = [2, 0, 10, 10, 2, 1];
        inv.observe(1, 1, &arp(GW_SERVERS, [10, 10, 1, 1]), NOW);
        inv.observe(1, 2, &arp(gw_ws, [10, 10, 2, 1]), NOW);
        // The router answers a workstation from 10.10.1.1 out of its workstation interface.
        inv.observe(1, 2, &arp(gw_ws, [10, 10, 1, 1]), NOW);
        assert_eq!(inv.hosts["02:00:0a:0a:01:01"].ips, vec!["10.10.1.1"]);
        assert_eq!(inv.hosts["02:00:0a:0a:02:01"].ips, vec!["10.10.2.1"]);
        // A real move within a segment still happens.
        let new_mac: Mac = [2, 0, 10, 10, 1, 99];
        inv.observe(1, 7, &arp(new_mac, [10, 10, 1, 1]), NOW);
        assert!(inv.hosts["02:00:0a:0a:01:01"].ips.is_empty());
        assert_eq!(inv.hosts["02:00:0a:0a:01:63"].ips, vec!["10.10.1.1"]);
    }

    #[test]
    fn link_ports_never_attach_hosts() {
        let mut inv = scoped();
        inv.observe(2, 1, &arp(WEB, [10, 10, 1, 10]), NOW);
        assert_eq!(
            inv.hosts["02:00:0a:0a:01:0a"].port,
            Some(1),
            "provisional before the link is known"
        );
        let ch = inv.observe_link((1, 5), (2, 1), NOW);
        assert!(matches!(ch[0], Change::LinkUp { .. }));
        assert_eq!(
            inv.hosts["02:00:0a:0a:01:0a"].port, None,
            "link port attachment dropped"
        );
        inv.observe(2, 1, &arp(WEB, [10, 10, 1, 10]), NOW);
        assert_eq!(inv.hosts["02:00:0a:0a:01:0a"].port, None);
        inv.observe(1, 3, &arp(WEB, [10, 10, 1, 10]), NOW);
        assert_eq!(inv.hosts["02:00:0a:0a:01:0a"].port, Some(3));
        assert!(
            inv.observe_link((2, 1), (1, 5), NOW).is_empty(),
            "same link seen from the other side"
        );
        assert_eq!(inv.links.len(), 1);
    }

    #[test]
    fn dhcp_names_hosts_and_segments() {
        let mut inv = Inventory::default();
        let ws: Mac = [2, 0, 10, 10, 2, 21];
        let req = Dhcp {
            op: 1,
            msg_type: Some(3),
            chaddr: ws,
            hostname: Some("ws-acct-01".into()),
            requested_ip: Some(Ipv4Addr::new(10, 10, 2, 21)),
            ..Dhcp::default()
        };
        inv.observe(2, 3, &frame(ws, Kind::Dhcp(req)), NOW);
        let ack = Dhcp {
            op: 2,
            msg_type: Some(5),
            chaddr: ws,
            yiaddr: Ipv4Addr::new(10, 10, 2, 21),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            router: Some(Ipv4Addr::new(10, 10, 2, 1)),
            server_id: Some(Ipv4Addr::new(10, 10, 2, 1)),
            ..Dhcp::default()
        };
        let gw_ws: Mac = [2, 0, 10, 10, 2, 1];
        inv.observe(1, 2, &frame(gw_ws, Kind::Dhcp(ack)), NOW);
        let h = &inv.hosts["02:00:0a:0a:02:15"];
        assert_eq!(h.hostname.as_deref(), Some("ws-acct-01"));
        assert_eq!(h.hostname_source.as_deref(), Some("dhcp"));
        assert_eq!(h.ips, vec!["10.10.2.21"]);
        assert_eq!(
            inv.segments["10.10.2.0/24"].gateway.as_deref(),
            Some("10.10.2.1")
        );
        assert_eq!(inv.hosts["02:00:0a:0a:02:01"].ips, vec!["10.10.2.1"]);
    }

    #[test]
    fn off_segment_routers_are_not_gateways() {
        let mut inv = Inventory::default();
        let plc: Mac = [2, 0, 10, 20, 2, 11];
        let ack = Dhcp {
            op: 2,
            msg_type: Some(5),
            chaddr: plc,
            yiaddr: Ipv4Addr::new(10, 20, 2, 11),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            router: Some(Ipv4Addr::new(10, 20, 1, 1)),
            ..Dhcp::default()
        };
        inv.observe(1, 2, &frame([2, 0, 10, 20, 1, 1], Kind::Dhcp(ack)), NOW);
        assert_eq!(inv.segments["10.20.2.0/24"].gateway, None);
    }

    #[test]
    fn lldp_names_but_dhcp_wins() {
        let mut inv = Inventory::default();
        let l = Lldp {
            system_name: Some("web01".into()),
            mgmt_ipv4: Some(Ipv4Addr::new(10, 10, 1, 10)),
            ..Lldp::default()
        };
        inv.observe(1, 3, &frame(WEB, Kind::Lldp(l)), NOW);
        assert_eq!(
            inv.hosts["02:00:0a:0a:01:0a"].hostname.as_deref(),
            Some("web01")
        );
        assert_eq!(
            inv.set_snmp_name(Ipv4Addr::new(10, 10, 1, 10), "other"),
            vec![]
        );
    }

    #[test]
    fn out_of_scope_arp_senders_make_no_hosts() {
        let mut inv = scoped();
        assert!(inv
            .observe(2, 4, &arp([2, 9, 9, 9, 9, 9], [192, 0, 2, 7]), NOW)
            .is_empty());
        assert!(inv.hosts.is_empty());
        inv.observe(2, 4, &arp([2, 9, 9, 9, 9, 9], [10, 10, 2, 7]), NOW);
        assert_eq!(inv.hosts.len(), 1);
    }

    #[test]
    fn own_macs_and_probes_are_ignored() {
        let mut inv = Inventory::default();
        inv.own_macs.insert(WEB);
        assert!(inv
            .observe(1, 3, &arp(WEB, [10, 10, 1, 10]), NOW)
            .is_empty());
        assert!(inv.hosts.is_empty());
    }

    #[test]
    fn hosts_vanish_and_come_back() {
        let mut inv = Inventory::default();
        inv.observe(1, 3, &arp(WEB, [10, 10, 1, 10]), "2026-11-25T10:00:00Z");
        assert_eq!(inv.expire("2026-11-25T10:05:00Z").len(), 1);
        assert_eq!(inv.hosts["02:00:0a:0a:01:0a"].state, "vanished");
        inv.observe(1, 3, &arp(WEB, [10, 10, 1, 10]), "2026-11-25T10:06:00Z");
        assert_eq!(inv.hosts["02:00:0a:0a:01:0a"].state, "active");
    }
}
