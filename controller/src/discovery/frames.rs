//! What a copied frame tells discovery: ARP, DHCP, LLDP, TCP SYN-ACK, IPv4 sources.
//!
//! Ethernet, 802.1Q, IPv4, TCP and UDP are sliced by etherparse; DHCP options and
//! LLDP TLVs, which it does not parse, are read here. Pure and panic-free: every
//! frame yields a `Frame`, unparseable parts become `Kind::Other`.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::net::Ipv4Addr;

pub type Mac = [u8; 6];

pub const ETH_LLDP: u16 = 0x88cc;
pub const LLDP_MULTICAST: Mac = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub src: Mac,
    pub dst: Mac,
    pub vlan: Option<u16>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Arp {
        op: u16,
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    Dhcp(Dhcp),
    Lldp(Lldp),
    /// A TCP SYN-ACK: `src_ip:src_port` accepts connections.
    SynAck {
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        src_port: u16,
        ttl: u8,
    },
    /// A TCP SYN without ACK: `src_ip` opens a connection to `dst_ip:dst_port`
    /// (the detectors' input; discovery learns nothing from it).
    Syn {
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
    },
    Ipv4 {
        src_ip: Ipv4Addr,
        ttl: u8,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp {
    /// 1 = from a client, 2 = from a server.
    pub op: u8,
    /// Option 53 (1 DISCOVER, 2 OFFER, 3 REQUEST, 5 ACK, ...).
    pub msg_type: Option<u8>,
    pub chaddr: Mac,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (first router).
    pub router: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
}

impl Default for Dhcp {
    fn default() -> Self {
        Dhcp {
            op: 0,
            msg_type: None,
            chaddr: [0; 6],
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            hostname: None,
            requested_ip: None,
            subnet_mask: None,
            router: None,
            server_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lldp {
    pub chassis_subtype: u8,
    pub chassis_id: Vec<u8>,
    pub port_subtype: u8,
    pub port_id: Vec<u8>,
    pub ttl: u16,
    pub system_name: Option<String>,
    pub system_description: Option<String>,
    pub mgmt_ipv4: Option<Ipv4Addr>,
}

fn mac(b: &[u8]) -> Option<Mac> {
    b.get(..6)?.try_into().ok()
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

/// Reads one copied frame.
pub fn parse(data: &[u8]) -> Option<Frame> {
    let src = mac(data.get(6..12)?)?;
    let dst = mac(data.get(0..6)?)?;
    // LLDP first: etherparse does not slice it.
    let (ethertype, payload_off, vlan) = {
        let t = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
        if t == 0x8100 {
            let tci = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            (
                u16::from_be_bytes([*data.get(16)?, *data.get(17)?]),
                18,
                Some(tci & 0x0fff),
            )
        } else {
            (t, 14, None)
        }
    };
    if ethertype == ETH_LLDP {
        let kind = parse_lldp(data.get(payload_off..)?)
            .map(Kind::Lldp)
            .unwrap_or(Kind::Other);
        return Some(Frame {
            src,
            dst,
            vlan,
            kind,
        });
    }
    let kind = match SlicedPacket::from_ethernet(data) {
        Ok(p) => classify(&p),
        Err(_) => Kind::Other,
    };
    Some(Frame {
        src,
        dst,
        vlan,
        kind,
    })
}

fn classify(p: &SlicedPacket<'_>) -> Kind {
    match &p.net {
        Some(NetSlice::Arp(arp)) => {
            let (Some(sender_mac), Some(sender_ip), Some(target_ip)) = (
                mac(arp.sender_hw_addr()),
                ipv4(arp.sender_protocol_addr()),
                ipv4(arp.target_protocol_addr()),
            ) else {
                return Kind::Other;
            };
            Kind::Arp {
                op: arp.operation().0,
                sender_mac,
                sender_ip,
                target_ip,
            }
        }
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let (src_ip, dst_ip, ttl) = (h.source_addr(), h.destination_addr(), h.ttl());
            match &p.transport {
                Some(TransportSlice::Tcp(tcp)) if tcp.syn() && tcp.ack() => Kind::SynAck {
                    src_ip,
                    dst_ip,
                    src_port: tcp.source_port(),
                    ttl,
                },
                Some(TransportSlice::Tcp(tcp)) if tcp.syn() => Kind::Syn {
                    src_ip,
                    dst_ip,
                    src_port: tcp.source_port(),
                    dst_port: tcp.destination_port(),
                },
                Some(TransportSlice::Udp(udp))
                    if matches!(
                        (udp.source_port(), udp.destination_port()),
                        (68, 67) | (67, 68)
                    ) =>
                {
                    parse_dhcp(udp.payload())
                        .map(Kind::Dhcp)
                        .unwrap_or(Kind::Ipv4 { src_ip, ttl })
                }
                _ => Kind::Ipv4 { src_ip, ttl },
            }
        }
        _ => Kind::Other,
    }
}

/// BOOTP header + options (RFC 2131/2132).
pub fn parse_dhcp(b: &[u8]) -> Option<Dhcp> {
    if b.len() < 240 || b.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let mut d = Dhcp {
        op: b[0],
        chaddr: mac(&b[28..34])?,
        ciaddr: ipv4(&b[12..16])?,
        yiaddr: ipv4(&b[16..20])?,
        ..Dhcp::default()
    };
    let mut i = 240;
    while i < b.len() {
        let code = b[i];
        if code == 0 {
            i += 1;
            continue;
        }
        if code == 255 {
            break;
        }
        let len = *b.get(i + 1)? as usize;
        let v = b.get(i + 2..i + 2 + len)?;
        match code {
            53 => d.msg_type = v.first().copied(),
            12 => {
                d.hostname = Some(
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string(),
                )
                .filter(|s| !s.is_empty())
            }
            50 => d.requested_ip = ipv4(v),
            1 => d.subnet_mask = ipv4(v),
            3 => d.router = ipv4(v),
            54 => d.server_id = ipv4(v),
            _ => {}
        }
        i += 2 + len;
    }
    Some(d)
}

/// LLDPDU TLVs (IEEE 802.1AB): type 7 bits, length 9 bits.
pub fn parse_lldp(b: &[u8]) -> Option<Lldp> {
    let mut l = Lldp::default();
    let mut i = 0;
    let mut seen_chassis = false;
    while i + 2 <= b.len() {
        let h = u16::from_be_bytes([b[i], b[i + 1]]);
        let (t, len) = ((h >> 9) as u8, (h & 0x1ff) as usize);
        let v = b.get(i + 2..i + 2 + len)?;
        match t {
            0 => break,
            1 if !v.is_empty() => {
                l.chassis_subtype = v[0];
                l.chassis_id = v[1..].to_vec();
                seen_chassis = true;
            }
            2 if !v.is_empty() => {
                l.port_subtype = v[0];
                l.port_id = v[1..].to_vec();
            }
            3 if v.len() >= 2 => l.ttl = u16::from_be_bytes([v[0], v[1]]),
            5 => l.system_name = Some(String::from_utf8_lossy(v).into_owned()),
            6 => l.system_description = Some(String::from_utf8_lossy(v).into_owned()),
            8 if v.len() >= 6 && v[1] == 1 && v[0] == 5 => l.mgmt_ipv4 = ipv4(&v[2..6]),
            _ => {}
        }
        i += 2 + len;
    }
    seen_chassis.then_some(l)
}

fn tlv(out: &mut Vec<u8>, t: u8, v: &[u8]) {
    let h = ((t as u16) << 9) | (v.len() as u16 & 0x1ff);
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(v);
}

/// Source MAC of gemelo's own link probes (locally administered, "gm").
pub const PROBE_SRC: Mac = [0x0e, 0x67, 0x6d, 0x00, 0x00, 0x01];
const PROBE_CHASSIS_PREFIX: &str = "gemelo:";

/// The LLDP frame gemelo sends out of `port` of switch `dpid` to find links.
pub fn link_probe(dpid: u64, port: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&LLDP_MULTICAST);
    f.extend_from_slice(&PROBE_SRC);
    f.extend_from_slice(&ETH_LLDP.to_be_bytes());
    let mut chassis = vec![7u8];
    chassis.extend_from_slice(format!("{PROBE_CHASSIS_PREFIX}{dpid:016x}").as_bytes());
    tlv(&mut f, 1, &chassis);
    let mut p = vec![7u8];
    p.extend_from_slice(port.to_string().as_bytes());
    tlv(&mut f, 2, &p);
    tlv(&mut f, 3, &120u16.to_be_bytes());
    tlv(&mut f, 5, b"gemelo");
    tlv(&mut f, 0, &[]);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

/// The (dpid, port) a link probe left from, if `l` is one of gemelo's.
pub fn probe_origin(l: &Lldp) -> Option<(u64, u32)> {
    if l.chassis_subtype != 7 || l.port_subtype != 7 {
        return None;
    }
    let chassis = std::str::from_utf8(&l.chassis_id)
        .ok()?
        .strip_prefix(PROBE_CHASSIS_PREFIX)?;
    let dpid = u64::from_str_radix(chassis, 16).ok()?;
    let port = std::str::from_utf8(&l.port_id).ok()?.parse().ok()?;
    Some((dpid, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn arp_request() {
        // who-has 10.10.1.1 tell 10.10.1.10, from 02:00:0a:0a:01:0a
        let f = hex("ffffffffffff 02000a0a010a 0806 0001 0800 06 04 0001 02000a0a010a 0a0a010a 000000000000 0a0a0101");
        let fr = parse(&f).unwrap();
        assert_eq!(
            fr.kind,
            Kind::Arp {
                op: 1,
                sender_mac: [2, 0, 10, 10, 1, 10],
                sender_ip: Ipv4Addr::new(10, 10, 1, 10),
                target_ip: Ipv4Addr::new(10, 10, 1, 1)
            }
        );
    }

    fn dhcp_frame(op: u8, opts: &[u8]) -> Vec<u8> {
        let mut bootp = vec![0u8; 240];
        bootp[0] = op;
        bootp[1] = 1;
        bootp[2] = 6;
        bootp[16..20].copy_from_slice(&[10, 10, 2, 21]);
        bootp[28..34].copy_from_slice(&[2, 0, 10, 10, 2, 21]);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(opts);
        bootp.push(255);
        let udp_len = 8 + bootp.len();
        let mut f = hex("ffffffffffff 02000a0a0215 0800");
        let total = 20 + udp_len;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0,
            0,
            0,
            0,
            0,
            0,
            255,
            255,
            255,
            255,
        ]);
        let (sp, dp) = if op == 1 { (68u16, 67u16) } else { (67, 68) };
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&bootp);
        f
    }

    #[test]
    fn dhcp_request_carries_hostname() {
        let f = dhcp_frame(
            1,
            &[
                53, 1, 3, 12, 10, b'w', b's', b'-', b'a', b'c', b'c', b't', b'-', b'0', b'1', 50,
                4, 10, 10, 2, 21,
            ],
        );
        match parse(&f).unwrap().kind {
            Kind::Dhcp(d) => {
                assert_eq!(d.op, 1);
                assert_eq!(d.msg_type, Some(3));
                assert_eq!(d.hostname.as_deref(), Some("ws-acct-01"));
                assert_eq!(d.requested_ip, Some(Ipv4Addr::new(10, 10, 2, 21)));
                assert_eq!(d.chaddr, [2, 0, 10, 10, 2, 21]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dhcp_ack_carries_segment() {
        let f = dhcp_frame(
            2,
            &[
                53, 1, 5, 1, 4, 255, 255, 255, 0, 3, 4, 10, 10, 2, 1, 54, 4, 10, 10, 2, 1,
            ],
        );
        match parse(&f).unwrap().kind {
            Kind::Dhcp(d) => {
                assert_eq!(d.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
                assert_eq!(d.router, Some(Ipv4Addr::new(10, 10, 2, 1)));
                assert_eq!(d.yiaddr, Ipv4Addr::new(10, 10, 2, 21));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn link_probe_round_trip() {
        let f = link_probe(0x2, 5);
        let fr = parse(&f).unwrap();
        assert_eq!(fr.src, PROBE_SRC);
        match fr.kind {
            Kind::Lldp(l) => {
                assert_eq!(probe_origin(&l), Some((2, 5)));
                assert_eq!(l.system_name.as_deref(), Some("gemelo"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_lldp_gives_system_name() {
        let mut f = hex("0180c200000e 02000a0a010a 88cc");
        let mut chassis = vec![4u8];
        chassis.extend_from_slice(&[2, 0, 10, 10, 1, 10]);
        tlv(&mut f, 1, &chassis);
        tlv(&mut f, 2, &[3, 2, 0, 10, 10, 1, 10]);
        tlv(&mut f, 3, &[0, 120]);
        tlv(&mut f, 5, b"web01");
        tlv(&mut f, 8, &[5, 1, 10, 10, 1, 10, 2, 0, 0, 0, 2, 0]);
        tlv(&mut f, 0, &[]);
        match parse(&f).unwrap().kind {
            Kind::Lldp(l) => {
                assert_eq!(l.system_name.as_deref(), Some("web01"));
                assert_eq!(l.mgmt_ipv4, Some(Ipv4Addr::new(10, 10, 1, 10)));
                assert_eq!(probe_origin(&l), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syn_ack_is_a_service() {
        // 10.10.1.10:22 -> 10.10.2.21:40000, SYN+ACK, ttl 64, behind a VLAN 10 tag
        let mut f = hex("02000a0a0215 02000a0a010a 8100 000a 0800");
        f.extend_from_slice(&hex("4500 0028 0000 4000 40 06 0000 0a0a010a 0a0a0215"));
        f.extend_from_slice(&hex("0016 9c40 00000001 00000002 5012 ffff 0000 0000"));
        let fr = parse(&f).unwrap();
        assert_eq!(fr.vlan, Some(10));
        assert_eq!(
            fr.kind,
            Kind::SynAck {
                src_ip: Ipv4Addr::new(10, 10, 1, 10),
                dst_ip: Ipv4Addr::new(10, 10, 2, 21),
                src_port: 22,
                ttl: 64
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..120 {
            let f: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse(&f);
            let _ = parse_dhcp(&f);
            let _ = parse_lldp(&f);
        }
        let mut lldp = link_probe(1, 1);
        lldp.truncate(20);
        let _ = parse(&lldp);
    }
}
