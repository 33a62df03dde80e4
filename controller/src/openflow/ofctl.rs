//! `ovs-ofctl` flow syntax: renders matches, actions, instructions and flow
//! statistics exactly as `ovs-ofctl -O OpenFlow13 dump-flows` prints them,
//! so an engineer can compare gemelo's view of a switch with the switch's own.
//!
//! OVS prints match fields in a fixed order (not the order they were sent)
//! and folds `dl_type`/`nw_proto` into shorthands such as `tcp` or `arp`;
//! [`Match`]'s `Display` follows the same rules.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::action::{instruction_type, Action, Instruction};
use super::multipart::FlowStats;
use super::oxm::{ethertype, Match, OxmField, VID_PRESENT};
use super::port as port_no;
use super::{flow_flags, DEFAULT_PRIORITY};

/// A port number as OVS names it (`LOCAL`, `CONTROLLER`, or the number).
pub fn format_port(port: u32) -> String {
    match port {
        port_no::IN_PORT => "IN_PORT".into(),
        port_no::TABLE => "TABLE".into(),
        port_no::NORMAL => "NORMAL".into(),
        port_no::FLOOD => "FLOOD".into(),
        port_no::ALL => "ALL".into(),
        port_no::CONTROLLER => "CONTROLLER".into(),
        port_no::LOCAL => "LOCAL".into(),
        port_no::ANY => "ANY".into(),
        p => p.to_string(),
    }
}

fn mac(a: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        a[0], a[1], a[2], a[3], a[4], a[5]
    )
}

fn mac_masked(a: &[u8; 6], m: &Option<[u8; 6]>) -> String {
    match m {
        Some(m) if *m != [0xff; 6] => format!("{}/{}", mac(a), mac(m)),
        _ => mac(a),
    }
}

fn v4_masked(a: &Ipv4Addr, m: &Option<Ipv4Addr>) -> String {
    match m {
        None => a.to_string(),
        Some(m) => {
            let bits = u32::from(*m);
            if bits == u32::MAX {
                a.to_string()
            } else if bits.leading_ones() + bits.trailing_zeros() == 32 {
                format!("{a}/{}", bits.leading_ones())
            } else {
                format!("{a}/{m}")
            }
        }
    }
}

fn v6_masked(a: &Ipv6Addr, m: &Option<Ipv6Addr>) -> String {
    match m {
        None => a.to_string(),
        Some(m) => {
            let bits = u128::from(*m);
            if bits == u128::MAX {
                a.to_string()
            } else if bits.leading_ones() + bits.trailing_zeros() == 128 {
                format!("{a}/{}", bits.leading_ones())
            } else {
                format!("{a}/{m}")
            }
        }
    }
}

fn hex_masked(v: u64, m: Option<u64>) -> String {
    match m {
        Some(m) if m != u64::MAX => format!("{v:#x}/{m:#x}"),
        _ => format!("{v:#x}"),
    }
}

/// TCP flag names in the order OVS prints them.
const TCP_FLAG_NAMES: [(u16, &str); 12] = [
    (0x001, "fin"),
    (0x002, "syn"),
    (0x004, "rst"),
    (0x008, "psh"),
    (0x010, "ack"),
    (0x020, "urg"),
    (0x040, "ece"),
    (0x080, "cwr"),
    (0x100, "ns"),
    (0x200, "[200]"),
    (0x400, "[400]"),
    (0x800, "[800]"),
];

fn tcp_flags(flags: u16, mask: Option<u16>) -> String {
    let mask = mask.unwrap_or(0xffff);
    if mask & 0x0fff == 0x0fff {
        // Exact match: OVS lists the set flags, `syn|ack`, or `0`.
        let set: Vec<&str> = TCP_FLAG_NAMES
            .iter()
            .filter(|(b, _)| flags & b != 0)
            .map(|(_, n)| *n)
            .collect();
        return if set.is_empty() {
            "0".into()
        } else {
            set.join("|")
        };
    }
    let mut s = String::new();
    for (bit, name) in TCP_FLAG_NAMES {
        if mask & bit != 0 {
            s.push(if flags & bit != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&match_parts(self).join(","))
    }
}

/// A match as `ovs-ofctl dump-flows` prints it (empty for match-all).
pub fn format_match(m: &Match) -> String {
    match_parts(m).join(",")
}

/// The comma-separated pieces of a match, in OVS's order.
fn match_parts(m: &Match) -> Vec<String> {
    let find = |pred: &dyn Fn(&OxmField) -> bool| m.fields.iter().find(|f| pred(f));
    let eth_type = m.fields.iter().find_map(|f| {
        if let OxmField::EthType(t) = f {
            Some(*t)
        } else {
            None
        }
    });
    let ip_proto = m.fields.iter().find_map(|f| {
        if let OxmField::IpProto(p) = f {
            Some(*p)
        } else {
            None
        }
    });
    let mut out = Vec::new();

    // Shorthands for dl_type (and nw_proto when it folds in).
    let (short, proto_folded) = match (eth_type, ip_proto) {
        (Some(ethertype::IPV4), Some(1)) => (Some("icmp"), true),
        (Some(ethertype::IPV4), Some(6)) => (Some("tcp"), true),
        (Some(ethertype::IPV4), Some(17)) => (Some("udp"), true),
        (Some(ethertype::IPV4), Some(132)) => (Some("sctp"), true),
        (Some(ethertype::IPV4), _) => (Some("ip"), false),
        (Some(ethertype::IPV6), Some(58)) => (Some("icmp6"), true),
        (Some(ethertype::IPV6), Some(6)) => (Some("tcp6"), true),
        (Some(ethertype::IPV6), Some(17)) => (Some("udp6"), true),
        (Some(ethertype::IPV6), Some(132)) => (Some("sctp6"), true),
        (Some(ethertype::IPV6), _) => (Some("ipv6"), false),
        (Some(ethertype::ARP), _) => (Some("arp"), false),
        (Some(0x8035), _) => (Some("rarp"), false),
        _ => (None, false),
    };
    if let Some(s) = short {
        out.push(s.to_string());
    }
    if let Some(OxmField::TunnelId { id, mask }) = find(&|f| matches!(f, OxmField::TunnelId { .. }))
    {
        out.push(format!("tun_id={}", hex_masked(*id, *mask)));
    }
    if let Some(OxmField::Metadata { value, mask }) =
        find(&|f| matches!(f, OxmField::Metadata { .. }))
    {
        out.push(format!("metadata={}", hex_masked(*value, *mask)));
    }
    if let Some(p) = m.get_in_port() {
        out.push(format!("in_port={}", format_port(p)));
    }
    let pcp = m.fields.iter().find_map(|f| {
        if let OxmField::VlanPcp(p) = f {
            Some(*p)
        } else {
            None
        }
    });
    match find(&|f| matches!(f, OxmField::VlanVid { .. })) {
        Some(OxmField::VlanVid { vid, mask: None }) if vid & VID_PRESENT != 0 => {
            out.push(format!("dl_vlan={}", vid & 0x0fff));
        }
        Some(OxmField::VlanVid { vid, mask: None }) => {
            // OFPVID_NONE: "no tag"; OVS shows the TCI bits it constrains.
            out.push(format!("vlan_tci={:#06x}/0x1fff", vid & 0x0fff));
        }
        Some(OxmField::VlanVid {
            vid,
            mask: Some(mask),
        }) => {
            out.push(format!(
                "vlan_tci={:#06x}/{:#06x}",
                vid & 0x1fff,
                mask & 0x1fff
            ));
        }
        _ => {}
    }
    if let Some(p) = pcp {
        out.push(format!("dl_vlan_pcp={p}"));
    }
    for f in &m.fields {
        if let OxmField::EthSrc { addr, mask } = f {
            out.push(format!("dl_src={}", mac_masked(addr, mask)));
        }
    }
    for f in &m.fields {
        if let OxmField::EthDst { addr, mask } = f {
            out.push(format!("dl_dst={}", mac_masked(addr, mask)));
        }
    }
    if let (None, Some(t)) = (short, eth_type) {
        out.push(format!("dl_type={t:#06x}"));
    }
    for f in &m.fields {
        match f {
            OxmField::Ipv6Src { addr, mask } => {
                out.push(format!("ipv6_src={}", v6_masked(addr, mask)))
            }
            OxmField::Ipv6Dst { addr, mask } => {
                out.push(format!("ipv6_dst={}", v6_masked(addr, mask)))
            }
            _ => {}
        }
    }
    for f in &m.fields {
        match f {
            OxmField::ArpSpa { addr, mask } => {
                out.push(format!("arp_spa={}", v4_masked(addr, mask)))
            }
            OxmField::ArpTpa { addr, mask } => {
                out.push(format!("arp_tpa={}", v4_masked(addr, mask)))
            }
            _ => {}
        }
    }
    for f in &m.fields {
        if let OxmField::Ipv4Src { addr, mask } = f {
            out.push(format!("nw_src={}", v4_masked(addr, mask)));
        }
    }
    for f in &m.fields {
        if let OxmField::Ipv4Dst { addr, mask } = f {
            out.push(format!("nw_dst={}", v4_masked(addr, mask)));
        }
    }
    if let (false, Some(p)) = (proto_folded, ip_proto) {
        out.push(format!("nw_proto={p}"));
    }
    for f in &m.fields {
        if let OxmField::ArpOp(op) = f {
            out.push(format!("arp_op={op}"));
        }
    }
    for f in &m.fields {
        match f {
            OxmField::ArpSha { addr, mask } => {
                out.push(format!("arp_sha={}", mac_masked(addr, mask)))
            }
            OxmField::ArpTha { addr, mask } => {
                out.push(format!("arp_tha={}", mac_masked(addr, mask)))
            }
            _ => {}
        }
    }
    for f in &m.fields {
        if let OxmField::IpDscp(d) = f {
            out.push(format!("nw_tos={}", u16::from(*d) << 2));
        }
    }
    for f in &m.fields {
        match f {
            OxmField::Icmpv4Type(t) => out.push(format!("icmp_type={t}")),
            OxmField::Icmpv4Code(c) => out.push(format!("icmp_code={c}")),
            _ => {}
        }
    }
    for f in &m.fields {
        match f {
            OxmField::TcpSrc(p) | OxmField::UdpSrc(p) => out.push(format!("tp_src={p}")),
            _ => {}
        }
    }
    for f in &m.fields {
        match f {
            OxmField::TcpDst(p) | OxmField::UdpDst(p) => out.push(format!("tp_dst={p}")),
            _ => {}
        }
    }
    for f in &m.fields {
        if let OxmField::TcpFlags { flags, mask } = f {
            out.push(format!("tcp_flags={}", tcp_flags(*flags, *mask)));
        }
    }
    for f in &m.fields {
        if let OxmField::Unknown {
            class,
            field,
            hasmask,
            body,
        } = f
        {
            let mut hex = String::new();
            for b in body {
                let _ = write!(hex, "{b:02x}");
            }
            out.push(format!(
                "oxm({class:#06x}:{field}{}=0x{hex})",
                if *hasmask { "/w" } else { "" }
            ));
        }
    }
    out
}

/// `value->field` as OVS writes a set_field action.
fn set_field(f: &OxmField) -> String {
    match f {
        OxmField::InPort(p) => format!("{}->in_port", format_port(*p)),
        OxmField::Metadata { value, mask } => format!("{}->metadata", hex_masked(*value, *mask)),
        OxmField::EthDst { addr, mask } => format!("{}->eth_dst", mac_masked(addr, mask)),
        OxmField::EthSrc { addr, mask } => format!("{}->eth_src", mac_masked(addr, mask)),
        OxmField::EthType(t) => format!("{t:#06x}->eth_type"),
        OxmField::VlanVid { vid, mask } => match mask {
            Some(m) => format!("{vid}/{m:#x}->vlan_vid"),
            None => format!("{vid}->vlan_vid"),
        },
        OxmField::VlanPcp(p) => format!("{p}->vlan_pcp"),
        OxmField::IpDscp(d) => format!("{d}->ip_dscp"),
        OxmField::IpProto(p) => format!("{p}->nw_proto"),
        OxmField::Ipv4Src { addr, mask } => format!("{}->ip_src", v4_masked(addr, mask)),
        OxmField::Ipv4Dst { addr, mask } => format!("{}->ip_dst", v4_masked(addr, mask)),
        OxmField::Ipv6Src { addr, mask } => format!("{}->ipv6_src", v6_masked(addr, mask)),
        OxmField::Ipv6Dst { addr, mask } => format!("{}->ipv6_dst", v6_masked(addr, mask)),
        OxmField::TcpSrc(p) => format!("{p}->tcp_src"),
        OxmField::TcpDst(p) => format!("{p}->tcp_dst"),
        OxmField::UdpSrc(p) => format!("{p}->udp_src"),
        OxmField::UdpDst(p) => format!("{p}->udp_dst"),
        OxmField::Icmpv4Type(t) => format!("{t}->icmp_type"),
        OxmField::Icmpv4Code(c) => format!("{c}->icmp_code"),
        OxmField::ArpOp(o) => format!("{o}->arp_op"),
        OxmField::ArpSpa { addr, mask } => format!("{}->arp_spa", v4_masked(addr, mask)),
        OxmField::ArpTpa { addr, mask } => format!("{}->arp_tpa", v4_masked(addr, mask)),
        OxmField::ArpSha { addr, mask } => format!("{}->arp_sha", mac_masked(addr, mask)),
        OxmField::ArpTha { addr, mask } => format!("{}->arp_tha", mac_masked(addr, mask)),
        OxmField::TunnelId { id, mask } => format!("{}->tun_id", hex_masked(*id, *mask)),
        OxmField::TcpFlags { flags, mask } => match mask {
            Some(m) => format!("{flags:#05x}/{m:#05x}->tcp_flags"),
            None => format!("{flags:#05x}->tcp_flags"),
        },
        OxmField::Unknown { .. } => {
            let m = Match {
                fields: vec![f.clone()],
            };
            format!("{m}")
        }
    }
}

fn format_action(a: &Action) -> String {
    match a {
        Action::Output { port, max_len } => match *port {
            port_no::CONTROLLER => format!("CONTROLLER:{max_len}"),
            p if p < port_no::MAX => format!("output:{p}"),
            p => format_port(p),
        },
        Action::SetField(f) => format!("set_field:{}", set_field(f)),
        Action::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::Group(g) => format!("group:{g}"),
        Action::SetQueue(q) => format!("set_queue:{q}"),
        Action::DecNwTtl => "dec_ttl".into(),
        Action::Unknown { kind, .. } => format!("unknown_action({kind})"),
    }
}

/// A list of actions, comma-separated, as inside `actions=`.
pub fn format_actions(actions: &[Action]) -> String {
    actions
        .iter()
        .map(format_action)
        .collect::<Vec<_>>()
        .join(",")
}

/// What follows `actions=` in `dump-flows` for these instructions
/// (`drop` when there are none).
pub fn format_instructions(instructions: &[Instruction]) -> String {
    // OVS prints instructions in the order the pipeline executes them,
    // whatever order they were sent in.
    let rank = |i: &&Instruction| match i {
        Instruction::Unknown {
            kind: instruction_type::METER,
            ..
        } => 0,
        Instruction::ApplyActions(_) => 1,
        Instruction::ClearActions => 2,
        Instruction::WriteActions(_) => 3,
        Instruction::WriteMetadata { .. } => 4,
        Instruction::GotoTable(_) => 5,
        Instruction::Unknown { .. } => 6,
    };
    let mut sorted: Vec<&Instruction> = instructions.iter().collect();
    sorted.sort_by_key(rank);
    let mut parts = Vec::new();
    for i in sorted {
        match i {
            Instruction::ApplyActions(a) => parts.extend(a.iter().map(format_action)),
            Instruction::ClearActions => parts.push("clear_actions".into()),
            Instruction::WriteActions(a) => {
                parts.push(format!("write_actions({})", format_actions(a)))
            }
            Instruction::WriteMetadata { value, mask } => parts.push(format!(
                "write_metadata:{}",
                hex_masked(*value, Some(*mask))
            )),
            Instruction::GotoTable(t) => parts.push(format!("goto_table:{t}")),
            Instruction::Unknown {
                kind: instruction_type::METER,
                body,
            } if body.len() >= 4 => {
                let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                parts.push(format!("meter:{id}"));
            }
            Instruction::Unknown { kind, .. } => parts.push(format!("unknown_instruction({kind})")),
        }
    }
    if parts.is_empty() {
        "drop".into()
    } else {
        parts.join(",")
    }
}

/// `12.345s` as OVS prints durations: nanoseconds with trailing zeros
/// dropped, no fraction at all when it is zero.
fn duration(sec: u32, nsec: u32) -> String {
    if nsec == 0 {
        return format!("{sec}s");
    }
    let frac = format!("{nsec:09}");
    format!("{sec}.{}s", frac.trim_end_matches('0'))
}

impl FlowStats {
    /// One `ovs-ofctl -O OpenFlow13 dump-flows` line for this flow.
    pub fn to_ofctl_line(&self) -> String {
        let mut s = format!(
            " cookie={:#x}, duration={}, table={}, n_packets={}, n_bytes={}, ",
            self.cookie,
            duration(self.duration_sec, self.duration_nsec),
            self.table_id,
            self.packet_count,
            self.byte_count
        );
        if self.idle_timeout != 0 {
            let _ = write!(s, "idle_timeout={}, ", self.idle_timeout);
        }
        if self.hard_timeout != 0 {
            let _ = write!(s, "hard_timeout={}, ", self.hard_timeout);
        }
        for (bit, name) in [
            (flow_flags::SEND_FLOW_REM, "send_flow_rem"),
            (flow_flags::CHECK_OVERLAP, "check_overlap"),
            (flow_flags::RESET_COUNTS, "reset_counts"),
            (flow_flags::NO_PKT_COUNTS, "no_packet_counts"),
            (flow_flags::NO_BYT_COUNTS, "no_byte_counts"),
        ] {
            if self.flags & bit != 0 {
                let _ = write!(s, "{name} ");
            }
        }
        let mut m = Vec::new();
        if self.priority != DEFAULT_PRIORITY {
            m.push(format!("priority={}", self.priority));
        }
        m.extend(match_parts(&self.r#match));
        s.push_str(&m.join(","));
        if !s.ends_with(' ') {
            s.push(' ');
        }
        let _ = write!(s, "actions={}", format_instructions(&self.instructions));
        s
    }
}
