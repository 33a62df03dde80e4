//! Topology files: the production network a lab builds, as TOML.
//!
//! `Topology::load` parses a file (schema in `topologies/README.md`), fills in
//! what the file may leave out (ofports, MACs, hostnames, service ports) and
//! validates it, so the builder in `lab::build` never meets a name that does not
//! resolve. Every error names the offending field (`host[web01].ip`) and why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;
/// Highest ofport OVS accepts in `ofport_request` (OFPP_MAX of OpenFlow 1.0).
pub const MAX_OFPORT: u16 = 0xfeff;
/// Name of a host's first interface inside its namespace (`gm-eth1`, ... follow).
pub const HOST_IFNAME_PREFIX: &str = "gm-eth";

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("topology {path} is not a valid topology file: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("topology {path}: {field}: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

/// A validated topology with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub name: String,
    pub description: Option<String>,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub segments: Vec<Segment>,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub name: String,
    pub dpid: u64,
}

impl Switch {
    /// The OVS bridge that plays this switch.
    pub fn bridge(&self) -> String {
        format!("gm-{}", self.name)
    }
}

/// One end of something plugged into a switch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwitchPort {
    pub switch: String,
    pub port: u16,
}

impl SwitchPort {
    /// Name of the OVS port (and, for hosts, of the veth end) in the switch namespace.
    pub fn port_name(&self) -> String {
        port_name(&self.switch, self.port)
    }
}

impl fmt::Display for SwitchPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.switch, self.port)
    }
}

fn port_name(switch: &str, port: u16) -> String {
    format!("gm{switch}p{port}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: SwitchPort,
    pub b: SwitchPort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub cidr: Ipv4Network,
    pub vlan: Option<u16>,
    pub gateway: Ipv4Addr,
    /// The address gemelo's probe port takes on this segment: the highest
    /// usable one that is neither a host's nor the gateway's.
    pub probe_ip: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub hostname: String,
    pub interfaces: Vec<Interface>,
    /// Routes between its segments (a gateway).
    pub ip_forward: bool,
    /// Where its default route points; `None` when it is its segments' gateway.
    pub default_gateway: Option<Ipv4Addr>,
    pub services: Vec<Service>,
    /// Runs lldpd (service name `lldp`), so the fabric learns its name.
    pub lldp: bool,
    pub device: Option<Device>,
    pub publish: Option<Publish>,
    /// Takes part in DHCP (key `dhcp`, default true): a gateway serves its
    /// segments, every other host runs a DHCP client that announces its hostname.
    pub dhcp: bool,
}

impl Host {
    pub fn service(&self, kind: ServiceKind) -> Option<&Service> {
        self.services.iter().find(|s| s.kind == kind)
    }
}

/// What a host's interface does in DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpRole {
    /// It owns the segment's gateway address: it runs the segment's server.
    Server,
    /// It asks the segment's server for its (static) lease, sending its hostname.
    Client,
}

impl Topology {
    /// The host (and its interface) that serves DHCP on a segment: the one
    /// owning the gateway address, unless it opted out with `dhcp = false`.
    pub fn dhcp_server(&self, segment: &str) -> Option<(&Host, &Interface)> {
        let seg = self.segment(segment)?;
        self.hosts.iter().filter(|h| h.dhcp).find_map(|h| {
            h.interfaces
                .iter()
                .find(|i| i.segment == seg.name && i.ip == seg.gateway)
                .map(|i| (h, i))
        })
    }

    /// The DHCP role of every interface of `host` that has one.
    pub fn dhcp_roles<'a>(&'a self, host: &'a Host) -> Vec<(&'a Interface, DhcpRole)> {
        if !host.dhcp {
            return Vec::new();
        }
        host.interfaces
            .iter()
            .filter_map(|i| match self.dhcp_server(&i.segment) {
                Some((server, si)) if server.name == host.name && si.name == i.name => {
                    Some((i, DhcpRole::Server))
                }
                Some(_) => Some((i, DhcpRole::Client)),
                None => None,
            })
            .collect()
    }

    /// The static leases of a segment's DHCP server: (MAC, IP, hostname) of
    /// every host in its broadcast domain. That is the segment's own hosts, and
    /// for an untagged segment also the hosts of the other untagged segments
    /// (they share VLAN 0 on the bridges, so the server hears their requests
    /// too): it leases them their own topology address rather than one of its
    /// pool, so no DHCP answer ever binds a host to a wrong address.
    pub fn dhcp_static_leases(&self, segment: &str) -> Vec<(&str, Ipv4Addr, &str)> {
        let Some(seg) = self.segment(segment) else {
            return Vec::new();
        };
        let domain: Vec<&str> = self
            .segments
            .iter()
            .filter(|s| s.name == seg.name || (seg.vlan.is_none() && s.vlan.is_none()))
            .map(|s| s.name.as_str())
            .collect();
        self.hosts
            .iter()
            .flat_map(|h| {
                let domain = domain.clone();
                h.interfaces
                    .iter()
                    .filter(move |i| domain.contains(&i.segment.as_str()))
                    .map(move |i| (i.mac.as_str(), i.ip, h.hostname.as_str()))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name inside the host's namespace (`gm-eth0`).
    pub name: String,
    pub segment: String,
    pub attach: SwitchPort,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    pub vlan: Option<u16>,
}

/// What a host says it is (Modbus device identification, SNMP sysDescr).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
}

/// A sensor that publishes a reading to an MQTT broker every `interval_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub broker: String,
    pub broker_ip: Ipv4Addr,
    pub broker_port: u16,
    pub topic: String,
    pub interval_secs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// The services a lab host can run, each by a real daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    Ssh,
    Http,
    Ftp,
    Telnet,
    Snmp,
    Mqtt,
    Modbus,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 7] = [
        ServiceKind::Ssh,
        ServiceKind::Http,
        ServiceKind::Ftp,
        ServiceKind::Telnet,
        ServiceKind::Snmp,
        ServiceKind::Mqtt,
        ServiceKind::Modbus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Ssh => "ssh",
            ServiceKind::Http => "http",
            ServiceKind::Ftp => "ftp",
            ServiceKind::Telnet => "telnet",
            ServiceKind::Snmp => "snmp",
            ServiceKind::Mqtt => "mqtt",
            ServiceKind::Modbus => "modbus",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ServiceKind::Ssh => 22,
            ServiceKind::Http => 80,
            ServiceKind::Ftp => 21,
            ServiceKind::Telnet => 23,
            ServiceKind::Snmp => 161,
            ServiceKind::Mqtt => 1883,
            ServiceKind::Modbus => 502,
        }
    }

    pub fn proto(self) -> Proto {
        match self {
            ServiceKind::Snmp => Proto::Udp,
            _ => Proto::Tcp,
        }
    }

    fn parse(name: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub kind: ServiceKind,
    pub port: u16,
    pub proto: Proto,
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    lab: RawLab,
    #[serde(default)]
    switch: Vec<RawSwitch>,
    #[serde(default)]
    link: Vec<RawLink>,
    #[serde(default)]
    segment: Vec<RawSegment>,
    #[serde(default)]
    host: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    name: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitch {
    name: String,
    dpid: RawDpid,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDpid {
    Number(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    a: String,
    b: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    name: String,
    cidr: String,
    vlan: Option<i64>,
    gateway: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    hostname: Option<String>,
    switch: Option<String>,
    port: Option<i64>,
    segment: Option<String>,
    ip: Option<String>,
    mac: Option<String>,
    interfaces: Option<Vec<RawInterface>>,
    ip_forward: Option<bool>,
    #[serde(default)]
    services: Vec<RawService>,
    device: Option<Device>,
    publish: Option<RawPublish>,
    dhcp: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    segment: String,
    ip: String,
    switch: String,
    port: Option<i64>,
    mac: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    port: Option<i64>,
    proto: Option<Proto>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    broker: String,
    topic: String,
    interval_secs: Option<i64>,
}

// ---------------------------------------------------------------------------

impl Topology {
    /// Reads, parses and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Topology::parse(&text, path)
    }

    /// Parses and validates topology text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Topology, TopologyError> {
        let raw: RawTopology = toml::from_str(text).map_err(|e| TopologyError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Validator { path }.validate(raw)
    }

    /// Namespace of a host of this lab.
    pub fn host_namespace(&self, host: &str) -> String {
        format!("gm-{}-{}", self.name, host)
    }

    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }
}

/// `02:00:` followed by the four bytes of the IPv4 address.
pub fn mac_from_ip(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

struct Validator<'a> {
    path: &'a Path,
}

type Res<T> = Result<T, TopologyError>;

fn is_name(s: &str, allow_dash: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || (allow_dash && c == '-'))
        && !s.ends_with('-')
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn parse_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    let bytes = bytes?;
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

impl Validator<'_> {
    fn err<T>(&self, field: impl Into<String>, reason: impl Into<String>) -> Res<T> {
        Err(TopologyError::Invalid {
            path: self.path.to_owned(),
            field: field.into(),
            reason: reason.into(),
        })
    }

    fn port(&self, field: &str, port: i64) -> Res<u16> {
        if (1..=i64::from(MAX_OFPORT)).contains(&port) {
            Ok(port as u16)
        } else {
            self.err(
                field,
                format!("ofport {port} is out of range 1..={MAX_OFPORT}"),
            )
        }
    }

    fn ipv4(&self, field: &str, text: &str) -> Res<Ipv4Addr> {
        match text.parse() {
            Ok(ip) => Ok(ip),
            Err(_) => self.err(field, format!("'{text}' is not an IPv4 address")),
        }
    }

    fn validate(&self, raw: RawTopology) -> Res<Topology> {
        let lab = raw.lab.name;
        if !is_name(&lab, false) || lab.len() > 12 {
            return self.err(
                "lab.name",
                format!("'{lab}' must be 1-12 lowercase letters/digits starting with a letter (it names namespaces gm-<lab>-<host>)"),
            );
        }
        if lab == "prod" || lab == "twin" {
            return self.err(
                "lab.name",
                format!("'{lab}' is reserved (gm-{lab} namespaces belong to gemelo itself)"),
            );
        }

        // Switches.
        let mut switches = Vec::new();
        let mut dpids = HashMap::new();
        for (i, s) in raw.switch.iter().enumerate() {
            let field = format!("switch[{i}]");
            if !is_name(&s.name, false) {
                return self.err(
                    format!("{field}.name"),
                    format!(
                        "'{}' must be lowercase letters/digits starting with a letter",
                        s.name
                    ),
                );
            }
            if format!("gm-{}", s.name).len() > MAX_IFNAME {
                return self.err(
                    format!("switch[{}].name", s.name),
                    format!(
                        "bridge name gm-{} is longer than {MAX_IFNAME} characters",
                        s.name
                    ),
                );
            }
            if switches.iter().any(|o: &Switch| o.name == s.name) {
                return self.err(format!("switch[{}].name", s.name), "duplicate switch name");
            }
            let dpid = match &s.dpid {
                RawDpid::Number(n) if *n > 0 => *n as u64,
                RawDpid::Number(n) => {
                    return self.err(
                        format!("switch[{}].dpid", s.name),
                        format!("{n} must be positive"),
                    )
                }
                RawDpid::Text(t) => {
                    let hex: String = t
                        .trim_start_matches("0x")
                        .chars()
                        .filter(|c| *c != ':')
                        .collect();
                    match u64::from_str_radix(&hex, 16) {
                        Ok(v) if v > 0 && hex.len() <= 16 => v,
                        _ => {
                            return self.err(
                                format!("switch[{}].dpid", s.name),
                                format!("'{t}' is not a non-zero 64-bit hex datapath id"),
                            )
                        }
                    }
                }
            };
            if let Some(other) = dpids.insert(dpid, s.name.clone()) {
                return self.err(
                    format!("switch[{}].dpid", s.name),
                    format!("datapath id {dpid:016x} is also switch {other}'s"),
                );
            }
            switches.push(Switch {
                name: s.name.clone(),
                dpid,
            });
        }
        if switches.is_empty() {
            return self.err("switch", "a topology needs at least one [[switch]]");
        }

        // Ports in use, per switch: explicit ones first, then assigned.
        let mut used: BTreeMap<String, BTreeSet<u16>> = switches
            .iter()
            .map(|s| (s.name.clone(), BTreeSet::new()))
            .collect();
        let claim = |used: &mut BTreeMap<String, BTreeSet<u16>>,
                     field: &str,
                     sp: &SwitchPort|
         -> Res<()> {
            let Some(set) = used.get_mut(&sp.switch) else {
                return self.err(field, format!("unknown switch '{}'", sp.switch));
            };
            if !set.insert(sp.port) {
                return self.err(
                    field,
                    format!("port {} of switch {} is used twice", sp.port, sp.switch),
                );
            }
            if sp.port_name().len() > MAX_IFNAME {
                return self.err(field, format!("port name {} is longer than {MAX_IFNAME} characters (shorten the switch name)", sp.port_name()));
            }
            Ok(())
        };

        // Links.
        let mut links = Vec::new();
        for (i, l) in raw.link.iter().enumerate() {
            let mut ends = Vec::new();
            for (side, text) in [("a", &l.a), ("b", &l.b)] {
                let field = format!("link[{i}].{side}");
                let Some((sw, port)) = text.split_once(':') else {
                    return self.err(field, format!("'{text}' must be SWITCH:PORT, e.g. sw1:5"));
                };
                let Ok(port) = port.parse::<i64>() else {
                    return self.err(field, format!("'{port}' in '{text}' is not a port number"));
                };
                let sp = SwitchPort {
                    switch: sw.to_owned(),
                    port: self.port(&field, port)?,
                };
                claim(&mut used, &field, &sp)?;
                ends.push(sp);
            }
            let b = ends.pop().expect("two ends");
            let a = ends.pop().expect("two ends");
            if a.switch == b.switch {
                return self.err(format!("link[{i}]"), format!("links {a} to its own switch"));
            }
            links.push(Link { a, b });
        }

        // Segments.
        let mut segments: Vec<Segment> = Vec::new();
        let mut vlans = HashMap::new();
        for (i, s) in raw.segment.iter().enumerate() {
            if !is_name(&s.name, true) {
                return self.err(
                    format!("segment[{i}].name"),
                    format!("'{}' must be lowercase letters/digits/dashes", s.name),
                );
            }
            let field = format!("segment[{}]", s.name);
            if segments.iter().any(|o| o.name == s.name) {
                return self.err(format!("{field}.name"), "duplicate segment name");
            }
            let cidr: Ipv4Network = match s.cidr.parse() {
                Ok(c) => c,
                Err(_) => {
                    return self.err(
                        format!("{field}.cidr"),
                        format!("'{}' is not an IPv4 CIDR like 10.10.1.0/24", s.cidr),
                    )
                }
            };
            if cidr.network() != cidr.ip() {
                return self.err(
                    format!("{field}.cidr"),
                    format!(
                        "'{}' has host bits set (network is {}/{})",
                        s.cidr,
                        cidr.network(),
                        cidr.prefix()
                    ),
                );
            }
            if cidr.prefix() > 30 {
                return self.err(
                    format!("{field}.cidr"),
                    format!("/{} leaves no room for hosts", cidr.prefix()),
                );
            }
            if let Some(o) = segments.iter().find(|o| o.cidr.overlaps(cidr)) {
                return self.err(
                    format!("{field}.cidr"),
                    format!("{cidr} overlaps segment {} ({})", o.name, o.cidr),
                );
            }
            let vlan = match s.vlan {
                None => None,
                Some(v @ 1..=4094) => Some(v as u16),
                Some(v) => {
                    return self.err(
                        format!("{field}.vlan"),
                        format!("{v} is out of range 1..=4094"),
                    )
                }
            };
            if let Some(v) = vlan {
                if let Some(o) = vlans.insert(v, s.name.clone()) {
                    return self.err(
                        format!("{field}.vlan"),
                        format!("vlan {v} is also segment {o}'s"),
                    );
                }
            }
            let gateway = self.ipv4(&format!("{field}.gateway"), &s.gateway)?;
            self.host_ip_in(&format!("{field}.gateway"), gateway, &s.name, cidr)?;
            // probe_ip is chosen once the hosts are known.
            segments.push(Segment {
                name: s.name.clone(),
                cidr,
                vlan,
                gateway,
                probe_ip: gateway,
            });
        }

        // Hosts, first pass: names, interfaces with explicit ports.
        struct Pending {
            segment: String,
            switch: String,
            port: Option<u16>,
            ip: Ipv4Addr,
            mac: String,
            field: String,
        }
        let mut hosts: Vec<(Host, Vec<Pending>)> = Vec::new();
        let mut ips: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut macs: HashMap<String, String> = HashMap::new();
        let mut hostnames: HashMap<String, String> = HashMap::new();
        for (i, h) in raw.host.iter().enumerate() {
            if !is_name(&h.name, true) || h.name.len() > 32 {
                return self.err(
                    format!("host[{i}].name"),
                    format!(
                        "'{}' must be 1-32 lowercase letters/digits/dashes starting with a letter",
                        h.name
                    ),
                );
            }
            let hf = format!("host[{}]", h.name);
            if hosts.iter().any(|(o, _)| o.name == h.name) {
                return self.err(format!("{hf}.name"), "duplicate host name");
            }
            let hostname = h.hostname.clone().unwrap_or_else(|| h.name.clone());
            if !is_hostname(&hostname) {
                return self.err(format!("{hf}.hostname"), format!("'{hostname}' is not a valid hostname (letters, digits, dashes, dots; at most 63 characters)"));
            }
            if let Some(o) = hostnames.insert(hostname.to_lowercase(), h.name.clone()) {
                return self.err(
                    format!("{hf}.hostname"),
                    format!("'{hostname}' is also host {o}'s hostname"),
                );
            }

            let raw_ifaces: Vec<RawInterface> = match &h.interfaces {
                Some(list) => {
                    if h.switch.is_some()
                        || h.port.is_some()
                        || h.segment.is_some()
                        || h.ip.is_some()
                        || h.mac.is_some()
                    {
                        return self.err(format!("{hf}.interfaces"), "give either interfaces = [...] or switch/port/segment/ip/mac, not both");
                    }
                    if list.is_empty() {
                        return self.err(format!("{hf}.interfaces"), "is empty");
                    }
                    list.iter()
                        .map(|r| RawInterface {
                            segment: r.segment.clone(),
                            ip: r.ip.clone(),
                            switch: r.switch.clone(),
                            port: r.port,
                            mac: r.mac.clone(),
                        })
                        .collect()
                }
                None => {
                    let missing = [
                        ("switch", h.switch.is_none()),
                        ("segment", h.segment.is_none()),
                        ("ip", h.ip.is_none()),
                    ];
                    if let Some((name, _)) = missing.iter().find(|(_, m)| *m) {
                        return self.err(
                            format!("{hf}.{name}"),
                            "missing (or give interfaces = [...])",
                        );
                    }
                    vec![RawInterface {
                        segment: h.segment.clone().unwrap_or_default(),
                        ip: h.ip.clone().unwrap_or_default(),
                        switch: h.switch.clone().unwrap_or_default(),
                        port: h.port,
                        mac: h.mac.clone(),
                    }]
                }
            };
            let mut pending = Vec::new();
            for (n, r) in raw_ifaces.iter().enumerate() {
                let field = if h.interfaces.is_some() {
                    format!("{hf}.interfaces[{n}]")
                } else {
                    hf.clone()
                };
                if !switches.iter().any(|s| s.name == r.switch) {
                    return self.err(
                        format!("{field}.switch"),
                        format!("unknown switch '{}'", r.switch),
                    );
                }
                let Some(seg) = segments.iter().find(|s| s.name == r.segment) else {
                    return self.err(
                        format!("{field}.segment"),
                        format!("unknown segment '{}'", r.segment),
                    );
                };
                if pending.iter().any(|p: &Pending| p.segment == r.segment) {
                    return self.err(
                        format!("{field}.segment"),
                        format!("host has two interfaces on segment {}", r.segment),
                    );
                }
                let ip = self.ipv4(&format!("{field}.ip"), &r.ip)?;
                self.host_ip_in(&format!("{field}.ip"), ip, &seg.name, seg.cidr)?;
                if let Some(o) = ips.insert(ip, h.name.clone()) {
                    return self.err(
                        format!("{field}.ip"),
                        format!("{ip} is also host {o}'s address"),
                    );
                }
                let mac = match &r.mac {
                    None => mac_from_ip(ip),
                    Some(text) => match parse_mac(text) {
                        Some(m)
                            if u8::from_str_radix(&m[..2], 16).unwrap_or(1) & 1 == 0
                                && m != "00:00:00:00:00:00" =>
                        {
                            m
                        }
                        Some(_) => {
                            return self.err(
                                format!("{field}.mac"),
                                format!("'{text}' is not a unicast MAC address"),
                            )
                        }
                        None => {
                            return self.err(
                                format!("{field}.mac"),
                                format!("'{text}' is not a MAC address like 02:00:0a:0a:01:0a"),
                            )
                        }
                    },
                };
                if let Some(o) = macs.insert(mac.clone(), h.name.clone()) {
                    return self.err(
                        format!("{field}.mac"),
                        format!("{mac} is also host {o}'s MAC"),
                    );
                }
                let port = match r.port {
                    Some(p) => {
                        let port = self.port(&format!("{field}.port"), p)?;
                        claim(
                            &mut used,
                            &format!("{field}.port"),
                            &SwitchPort {
                                switch: r.switch.clone(),
                                port,
                            },
                        )?;
                        Some(port)
                    }
                    None => None,
                };
                pending.push(Pending {
                    segment: r.segment.clone(),
                    switch: r.switch.clone(),
                    port,
                    ip,
                    mac,
                    field,
                });
            }

            let mut services: Vec<Service> = Vec::new();
            let mut lldp = false;
            for (n, s) in h.services.iter().enumerate() {
                let field = format!("{hf}.services[{n}]");
                if s.name == "lldp" {
                    if s.port.is_some() || s.proto.is_some() {
                        return self
                            .err(field, "lldp is a link-layer service: give no port or proto");
                    }
                    lldp = true;
                    continue;
                }
                let Some(kind) = ServiceKind::parse(&s.name) else {
                    let known: Vec<&str> = ServiceKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .chain(["lldp"])
                        .collect();
                    return self.err(
                        format!("{field}.name"),
                        format!("unknown service '{}' (known: {})", s.name, known.join(", ")),
                    );
                };
                if services.iter().any(|o| o.kind == kind) {
                    return self.err(
                        format!("{field}.name"),
                        format!(
                            "service {} is listed twice (one daemon per service)",
                            s.name
                        ),
                    );
                }
                let proto = s.proto.unwrap_or(kind.proto());
                if proto != kind.proto() {
                    return self.err(
                        format!("{field}.proto"),
                        format!("{} runs over {}, not {proto}", s.name, kind.proto()),
                    );
                }
                let port = match s.port {
                    None => kind.default_port(),
                    Some(p @ 1..=65535) => p as u16,
                    Some(p) => {
                        return self.err(
                            format!("{field}.port"),
                            format!("{p} is out of range 1..=65535"),
                        )
                    }
                };
                if let Some(o) = services.iter().find(|o| o.port == port && o.proto == proto) {
                    return self.err(
                        format!("{field}.port"),
                        format!("{proto}/{port} is also used by {}", o.kind.name()),
                    );
                }
                services.push(Service { kind, port, proto });
            }

            // A host that owns its segment's gateway address routes; others
            // route through their first interface's gateway.
            let is_gateway = pending.iter().any(|p| {
                segments
                    .iter()
                    .any(|s| s.name == p.segment && s.gateway == p.ip)
            });
            let default_gateway = if is_gateway {
                None
            } else {
                segments
                    .iter()
                    .find(|s| s.name == pending[0].segment)
                    .map(|s| s.gateway)
            };
            let host = Host {
                name: h.name.clone(),
                hostname,
                interfaces: Vec::new(),
                ip_forward: h.ip_forward.unwrap_or(pending.len() > 1),
                default_gateway,
                services,
                lldp,
                device: h.device.clone(),
                publish: None,
                dhcp: h.dhcp.unwrap_or(true),
            };
            hosts.push((host, pending));
        }

        // Second pass: assign the ofports left out, in file order, lowest free first.
        for (host, pending) in &mut hosts {
            for (n, p) in pending.iter().enumerate() {
                let port = match p.port {
                    Some(port) => port,
                    None => {
                        let set = &used[&p.switch];
                        let free = (1..=MAX_OFPORT).find(|x| !set.contains(x));
                        let Some(port) = free else {
                            return self.err(
                                format!("{}.port", p.field),
                                format!("switch {} has no free port", p.switch),
                            );
                        };
                        claim(
                            &mut used,
                            &format!("{}.port", p.field),
                            &SwitchPort {
                                switch: p.switch.clone(),
                                port,
                            },
                        )?;
                        port
                    }
                };
                let seg = segments
                    .iter()
                    .find(|s| s.name == p.segment)
                    .expect("checked");
                host.interfaces.push(Interface {
                    name: format!("{HOST_IFNAME_PREFIX}{n}"),
                    segment: p.segment.clone(),
                    attach: SwitchPort {
                        switch: p.switch.clone(),
                        port,
                    },
                    ip: p.ip,
                    prefix: seg.cidr.prefix(),
                    mac: p.mac.clone(),
                    vlan: seg.vlan,
                });
            }
        }
        let mut hosts: Vec<Host> = hosts.into_iter().map(|(h, _)| h).collect();

        // The probe port's address on each segment: the highest usable one that
        // no host (and not the gateway) uses.
        for seg in &mut segments {
            let first = u32::from(seg.cidr.network()) + 1;
            let last = u32::from(seg.cidr.broadcast()) - 1;
            let free = (first..=last)
                .rev()
                .map(Ipv4Addr::from)
                .find(|ip| *ip != seg.gateway && !ips.contains_key(ip));
            match free {
                Some(ip) => seg.probe_ip = ip,
                None => {
                    return self.err(
                        format!("segment[{}].cidr", seg.name),
                        format!(
                            "hosts use every address of {}: leave one free for gemelo's probe port",
                            seg.cidr
                        ),
                    )
                }
            }
        }

        // Publishers need a broker that exists and speaks MQTT.
        for (i, h) in raw.host.iter().enumerate() {
            let Some(p) = &h.publish else { continue };
            let field = format!("host[{}].publish", h.name);
            let Some(broker) = hosts.iter().find(|b| b.name == p.broker) else {
                return self.err(
                    format!("{field}.broker"),
                    format!("unknown host '{}'", p.broker),
                );
            };
            let Some(mqtt) = broker.service(ServiceKind::Mqtt) else {
                return self.err(
                    format!("{field}.broker"),
                    format!("host {} runs no mqtt service", p.broker),
                );
            };
            if p.topic.is_empty() || p.topic.contains(['#', '+']) {
                return self.err(
                    format!("{field}.topic"),
                    format!("'{}' must be a non-empty topic without wildcards", p.topic),
                );
            }
            let interval_secs = match p.interval_secs {
                None => 5,
                Some(s @ 1..=3600) => s as u32,
                Some(s) => {
                    return self.err(
                        format!("{field}.interval_secs"),
                        format!("{s} is out of range 1..=3600"),
                    )
                }
            };
            let publish = Publish {
                broker: p.broker.clone(),
                broker_ip: broker.interfaces[0].ip,
                broker_port: mqtt.port,
                topic: p.topic.clone(),
                interval_secs,
            };
            hosts[i].publish = Some(publish);
        }

        Ok(Topology {
            name: lab,
            description: raw.lab.description,
            switches,
            links,
            segments,
            hosts,
        })
    }

    fn host_ip_in(&self, field: &str, ip: Ipv4Addr, segment: &str, cidr: Ipv4Network) -> Res<()> {
        if !cidr.contains(ip) {
            return self.err(field, format!("{ip} is outside segment {segment}'s {cidr}"));
        }
        if ip == cidr.network() || ip == cidr.broadcast() {
            return self.err(
                field,
                format!("{ip} is the network or broadcast address of {cidr}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[lab]
name = "t"

[[switch]]
name = "sw1"
dpid = 1

[[switch]]
name = "sw2"
dpid = "00000000000000a2"

[[link]]
a = "sw1:5"
b = "sw2:1"

[[segment]]
name = "servers"
cidr = "10.10.1.0/24"
vlan = 10
gateway = "10.10.1.1"

[[segment]]
name = "desks"
cidr = "10.10.2.0/24"
gateway = "10.10.2.1"

[[host]]
name = "gw"
interfaces = [
  { segment = "servers", ip = "10.10.1.1", switch = "sw1", port = 1 },
  { segment = "desks", ip = "10.10.2.1", switch = "sw2" },
]

[[host]]
name = "web01"
switch = "sw1"
segment = "servers"
ip = "10.10.1.10"
services = [{ name = "ssh" }, { name = "http", port = 8080 }, { name = "lldp" }]

[[host]]
name = "ws01"
hostname = "WS-01"
switch = "sw2"
port = 7
segment = "desks"
ip = "10.10.2.20"
mac = "02:AA:00:00:00:01"
"#;

    fn parse(text: &str) -> Result<Topology, TopologyError> {
        Topology::parse(text, Path::new("t.toml"))
    }

    fn field_of(text: &str) -> (String, String) {
        match parse(text) {
            Err(TopologyError::Invalid { field, reason, .. }) => (field, reason),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn good_topology_fills_defaults() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.switches[1].dpid, 0xa2);
        let gw = &t.hosts[0];
        assert!(gw.ip_forward);
        assert_eq!(gw.default_gateway, None);
        assert_eq!(
            gw.interfaces[0].attach,
            SwitchPort {
                switch: "sw1".into(),
                port: 1
            }
        );
        // sw2:1 is the link, so the first free port is 2.
        assert_eq!(gw.interfaces[1].attach.port, 2);
        assert_eq!(gw.interfaces[1].name, "gm-eth1");
        let web = &t.hosts[1];
        assert_eq!(web.hostname, "web01");
        assert_eq!(web.interfaces[0].mac, "02:00:0a:0a:01:0a");
        assert_eq!(web.interfaces[0].attach.port, 2);
        assert_eq!(web.interfaces[0].vlan, Some(10));
        assert_eq!(web.default_gateway, Some("10.10.1.1".parse().unwrap()));
        assert!(web.lldp);
        assert_eq!(
            web.services[1],
            Service {
                kind: ServiceKind::Http,
                port: 8080,
                proto: Proto::Tcp
            }
        );
        let ws = &t.hosts[2];
        assert_eq!(ws.interfaces[0].mac, "02:aa:00:00:00:01");
        assert_eq!(ws.hostname, "WS-01");
        assert!(!ws.ip_forward);
        assert_eq!(t.host_namespace("ws01"), "gm-t-ws01");
        assert_eq!(ws.interfaces[0].attach.port_name(), "gmsw2p7");
    }

    #[test]
    fn mac_is_derived_from_ip() {
        assert_eq!(
            mac_from_ip("10.10.1.10".parse().unwrap()),
            "02:00:0a:0a:01:0a"
        );
    }

    #[test]
    fn unknown_switch_in_host() {
        let (f, r) =
            field_of(&GOOD.replace("switch = \"sw2\"\nport = 7", "switch = \"sw9\"\nport = 7"));
        assert_eq!(f, "host[ws01].switch");
        assert!(r.contains("sw9"), "{r}");
    }

    #[test]
    fn ip_outside_segment() {
        let (f, r) = field_of(&GOOD.replace("ip = \"10.10.1.10\"", "ip = \"10.10.3.10\""));
        assert_eq!(f, "host[web01].ip");
        assert!(r.contains("outside segment servers"), "{r}");
    }

    #[test]
    fn duplicate_ip_mac_name_port() {
        let (f, _) = field_of(&GOOD.replace("ip = \"10.10.2.20\"", "ip = \"10.10.2.1\""));
        assert_eq!(f, "host[ws01].ip");
        let (f, _) = field_of(&GOOD.replace("02:AA:00:00:00:01", "02:00:0a:0a:01:0a"));
        assert_eq!(f, "host[ws01].mac");
        let (f, _) = field_of(&GOOD.replace("name = \"ws01\"", "name = \"web01\""));
        assert_eq!(f, "host[web01].name");
        let (f, r) = field_of(&GOOD.replace("port = 7", "port = 1"));
        assert_eq!(f, "host[ws01].port");
        assert!(r.contains("used twice"), "{r}");
    }

    #[test]
    fn bad_mac() {
        let (f, _) = field_of(&GOOD.replace("02:AA:00:00:00:01", "02:AA:00:00:00"));
        assert_eq!(f, "host[ws01].mac");
        let (f, r) = field_of(&GOOD.replace("02:AA:00:00:00:01", "01:00:5e:00:00:01"));
        assert_eq!(f, "host[ws01].mac");
        assert!(r.contains("unicast"), "{r}");
    }

    #[test]
    fn link_to_unknown_switch() {
        let (f, r) = field_of(&GOOD.replace("b = \"sw2:1\"", "b = \"sw3:1\""));
        assert_eq!(f, "link[0].b");
        assert!(r.contains("sw3"), "{r}");
        let (f, _) = field_of(&GOOD.replace("b = \"sw2:1\"", "b = \"sw2\""));
        assert_eq!(f, "link[0].b");
    }

    #[test]
    fn names_too_long() {
        let (f, r) = field_of(&GOOD.replace(
            "hostname = \"WS-01\"",
            &format!("hostname = \"{}\"", "a".repeat(64)),
        ));
        assert_eq!(f, "host[ws01].hostname");
        assert!(r.contains("63"), "{r}");
        let long = GOOD.replace("\"sw2", "\"switchtwo123");
        let (f, r) = field_of(&long);
        assert_eq!(f, "link[0].b");
        assert!(r.contains("gmswitchtwo123p1"), "{r}");
        let (f, _) = field_of(&GOOD.replace("name = \"sw1\"", "name = \"sw1234567890ab\""));
        assert_eq!(f, "switch[sw1234567890ab].name");
    }

    #[test]
    fn unknown_service_and_wrong_proto() {
        let (f, r) = field_of(&GOOD.replace("{ name = \"ssh\" }", "{ name = \"gopher\" }"));
        assert_eq!(f, "host[web01].services[0].name");
        assert!(r.contains("known: ssh"), "{r}");
        let (f, _) =
            field_of(&GOOD.replace("{ name = \"ssh\" }", "{ name = \"ssh\", proto = \"udp\" }"));
        assert_eq!(f, "host[web01].services[0].proto");
        let (f, _) = field_of(&GOOD.replace("port = 8080", "port = 22"));
        assert_eq!(f, "host[web01].services[1].port");
    }

    #[test]
    fn segment_errors() {
        let (f, _) = field_of(&GOOD.replace("gateway = \"10.10.1.1\"", "gateway = \"10.10.9.1\""));
        assert_eq!(f, "segment[servers].gateway");
        let (f, _) = field_of(&GOOD.replace("cidr = \"10.10.2.0/24\"", "cidr = \"10.10.0.0/16\""));
        assert_eq!(f, "segment[desks].cidr");
        let (f, _) = field_of(&GOOD.replace("vlan = 10", "vlan = 5000"));
        assert_eq!(f, "segment[servers].vlan");
        let (f, _) = field_of(&GOOD.replace("segment = \"desks\"\nip", "segment = \"nope\"\nip"));
        assert_eq!(f, "host[ws01].segment");
    }

    #[test]
    fn reserved_and_bad_lab_names() {
        let (f, _) = field_of(&GOOD.replace("name = \"t\"", "name = \"twin\""));
        assert_eq!(f, "lab.name");
        let (f, _) = field_of(&GOOD.replace("name = \"t\"", "name = \"Bad Lab\""));
        assert_eq!(f, "lab.name");
    }

    #[test]
    fn unknown_field_is_a_syntax_error_naming_it() {
        let err = parse(&GOOD.replace("vlan = 10", "vlan = 10\nvlna = 3")).unwrap_err();
        assert!(matches!(err, TopologyError::Syntax { .. }));
        assert!(err.to_string().contains("vlna"), "{err}");
    }

    #[test]
    fn duplicate_dpid() {
        let (f, _) = field_of(&GOOD.replace("\"00000000000000a2\"", "\"0000000000000001\""));
        assert_eq!(f, "switch[sw2].dpid");
    }

    #[test]
    fn publish_needs_an_mqtt_broker() {
        let text = format!("{GOOD}\npublish = {{ broker = \"web01\", topic = \"a/b\" }}\n");
        let (f, r) = field_of(&text);
        assert_eq!(f, "host[ws01].publish.broker");
        assert!(r.contains("no mqtt"), "{r}");
    }

    #[test]
    fn probe_takes_the_highest_free_address() {
        let t = parse(GOOD).unwrap();
        assert_eq!(
            t.segment("servers").unwrap().probe_ip,
            "10.10.1.254".parse::<Ipv4Addr>().unwrap()
        );
        let t = parse(&GOOD.replace("ip = \"10.10.2.20\"", "ip = \"10.10.2.254\"")).unwrap();
        assert_eq!(
            t.segment("desks").unwrap().probe_ip,
            "10.10.2.253".parse::<Ipv4Addr>().unwrap()
        );
    }

    #[test]
    fn a_segment_without_a_free_address_is_an_error() {
        // /30: two usable addresses, the gateway and one host.
        let text = GOOD
            .replace("cidr = \"10.10.2.0/24\"", "cidr = \"10.10.2.0/30\"")
            .replace("10.10.2.20", "10.10.2.2");
        let (f, r) = field_of(&text);
        assert_eq!(f, "segment[desks].cidr");
        assert!(r.contains("every address"), "{r}");
    }

    #[test]
    fn dhcp_roles_follow_the_gateway_and_the_dhcp_key() {
        let t = parse(GOOD).unwrap();
        let roles = |t: &Topology, h: &str| -> Vec<(String, DhcpRole)> {
            let host = t.hosts.iter().find(|x| x.name == h).unwrap();
            t.dhcp_roles(host)
                .into_iter()
                .map(|(i, r)| (i.name.clone(), r))
                .collect()
        };
        assert_eq!(
            roles(&t, "gw"),
            vec![
                ("gm-eth0".into(), DhcpRole::Server),
                ("gm-eth1".into(), DhcpRole::Server)
            ]
        );
        assert_eq!(
            roles(&t, "web01"),
            vec![("gm-eth0".into(), DhcpRole::Client)]
        );
        let leases = t.dhcp_static_leases("desks");
        assert_eq!(
            leases,
            vec![
                ("02:00:0a:0a:02:01", "10.10.2.1".parse().unwrap(), "gw"),
                ("02:aa:00:00:00:01", "10.10.2.20".parse().unwrap(), "WS-01")
            ]
        );
        // A host may opt out; a gateway that opts out leaves its segments without DHCP.
        let t = parse(&format!("{GOOD}dhcp = false\n")).unwrap();
        assert!(roles(&t, "ws01").is_empty());
        let t = parse(&GOOD.replace("name = \"gw\"\n", "name = \"gw\"\ndhcp = false\n")).unwrap();
        assert!(roles(&t, "gw").is_empty());
        assert!(roles(&t, "web01").is_empty());
        assert!(t.dhcp_server("servers").is_none());
    }

    #[test]
    fn shipped_topologies_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        for (name, probe) in [
            ("office", ["10.10.1.254", "10.10.2.254"]),
            ("plant", ["10.20.1.254", "10.20.2.254"]),
            ("iot", ["10.30.0.254", "10.30.1.254"]),
        ] {
            let t = Topology::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(t.name, name);
            let got: Vec<String> = t.segments.iter().map(|s| s.probe_ip.to_string()).collect();
            assert_eq!(got, probe, "{name}");
            // Every segment has a DHCP server: its gateway.
            assert!(
                t.segments.iter().all(|s| t.dhcp_server(&s.name).is_some()),
                "{name}"
            );
        }
    }
}
