//! OpenFlow 1.3 flow match (`ofp_match`) and its OXM TLV fields.
//!
//! A [`Match`] is the OXM-typed match structure carried by FLOW_MOD,
//! PACKET_IN, FLOW_REMOVED and flow statistics. Each [`OxmField`] is one
//! OpenFlow-basic TLV (class 0x8000), except TCP flags, which OVS only
//! accepts on OpenFlow 1.3 as the ONF experimenter OXM (class 0xffff,
//! experimenter `0x4f4e4600`, field 42). Fields gemelo does not model
//! survive a decode/encode round trip as [`OxmField::Unknown`].

use std::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{pad8, put_u16, put_u32, put_zeros, Reader};
use super::Error;

/// `OFPMT_OXM`, the only match type OpenFlow 1.3 defines for use.
pub const MATCH_TYPE_OXM: u16 = 1;
/// OXM class of the standard fields.
pub const OXM_CLASS_OPENFLOW_BASIC: u16 = 0x8000;
/// OXM class of experimenter fields; the body starts with a 32-bit experimenter id.
pub const OXM_CLASS_EXPERIMENTER: u16 = 0xffff;
/// The ONF experimenter id (also used by the bundle extension).
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
/// `ONFOXM_ET_TCP_FLAGS`: field number of TCP flags in the ONF class.
pub const ONF_OXM_TCP_FLAGS: u8 = 42;
/// `OFPVID_PRESENT`: set in `VlanVid::vid` when a VLAN tag is present.
pub const VID_PRESENT: u16 = 0x1000;
/// `OFPVID_NONE`: matches packets without a VLAN tag.
pub const VID_NONE: u16 = 0x0000;

/// OpenFlow-basic field numbers (`OFPXMT_OFB_*`).
pub mod field {
    pub const IN_PORT: u8 = 0;
    pub const METADATA: u8 = 2;
    pub const ETH_DST: u8 = 3;
    pub const ETH_SRC: u8 = 4;
    pub const ETH_TYPE: u8 = 5;
    pub const VLAN_VID: u8 = 6;
    pub const VLAN_PCP: u8 = 7;
    pub const IP_DSCP: u8 = 8;
    pub const IP_PROTO: u8 = 10;
    pub const IPV4_SRC: u8 = 11;
    pub const IPV4_DST: u8 = 12;
    pub const TCP_SRC: u8 = 13;
    pub const TCP_DST: u8 = 14;
    pub const UDP_SRC: u8 = 15;
    pub const UDP_DST: u8 = 16;
    pub const ICMPV4_TYPE: u8 = 19;
    pub const ICMPV4_CODE: u8 = 20;
    pub const ARP_OP: u8 = 21;
    pub const ARP_SPA: u8 = 22;
    pub const ARP_TPA: u8 = 23;
    pub const ARP_SHA: u8 = 24;
    pub const ARP_THA: u8 = 25;
    pub const IPV6_SRC: u8 = 26;
    pub const IPV6_DST: u8 = 27;
    pub const TUNNEL_ID: u8 = 38;
}

/// Ethernet types OVS abbreviates in its flow syntax.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
}

/// One OXM TLV.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OxmField {
    InPort(u32),
    Metadata {
        value: u64,
        mask: Option<u64>,
    },
    EthDst {
        addr: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    EthSrc {
        addr: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    EthType(u16),
    /// `vid` includes [`VID_PRESENT`] when a tag is required.
    VlanVid {
        vid: u16,
        mask: Option<u16>,
    },
    VlanPcp(u8),
    IpDscp(u8),
    IpProto(u8),
    Ipv4Src {
        addr: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    Ipv4Dst {
        addr: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    Ipv6Src {
        addr: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    Ipv6Dst {
        addr: Ipv6Addr,
        mask: Option<Ipv6Addr>,
    },
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    Icmpv4Type(u8),
    Icmpv4Code(u8),
    ArpOp(u16),
    ArpSpa {
        addr: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpTpa {
        addr: Ipv4Addr,
        mask: Option<Ipv4Addr>,
    },
    ArpSha {
        addr: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    ArpTha {
        addr: [u8; 6],
        mask: Option<[u8; 6]>,
    },
    TunnelId {
        id: u64,
        mask: Option<u64>,
    },
    /// ONF experimenter OXM on the wire (see module docs).
    TcpFlags {
        flags: u16,
        mask: Option<u16>,
    },
    /// Any other TLV, kept verbatim. For the experimenter class `body`
    /// starts with the experimenter id.
    Unknown {
        class: u16,
        field: u8,
        hasmask: bool,
        body: Vec<u8>,
    },
}

fn get_mac(b: &[u8]) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    m
}
fn get_v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}
fn get_v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}
fn get_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn get_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn get_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

impl OxmField {
    /// Parses one TLV from the front of `r`.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<OxmField, Error> {
        let header = r.u32("OXM header")?;
        let class = (header >> 16) as u16;
        let field = ((header >> 9) & 0x7f) as u8;
        let hasmask = header & 0x100 != 0;
        let len = (header & 0xff) as u8;
        let body = r.take(usize::from(len), "OXM payload")?;
        let bad = Error::BadOxm { class, field, len };
        // Payload size for the unmasked form; masked forms carry twice that.
        let check = |width: usize, maskable: bool| -> Result<(), Error> {
            let want = if hasmask { width * 2 } else { width };
            if (hasmask && !maskable) || body.len() != want {
                Err(bad.clone())
            } else {
                Ok(())
            }
        };
        use field::*;
        if class == OXM_CLASS_OPENFLOW_BASIC {
            let f = match field {
                IN_PORT => {
                    check(4, false)?;
                    OxmField::InPort(get_u32(body))
                }
                METADATA => {
                    check(8, true)?;
                    OxmField::Metadata {
                        value: get_u64(body),
                        mask: hasmask.then(|| get_u64(&body[8..])),
                    }
                }
                ETH_DST | ETH_SRC | ARP_SHA | ARP_THA => {
                    check(6, true)?;
                    let addr = get_mac(body);
                    let mask = hasmask.then(|| get_mac(&body[6..]));
                    match field {
                        ETH_DST => OxmField::EthDst { addr, mask },
                        ETH_SRC => OxmField::EthSrc { addr, mask },
                        ARP_SHA => OxmField::ArpSha { addr, mask },
                        _ => OxmField::ArpTha { addr, mask },
                    }
                }
                ETH_TYPE => {
                    check(2, false)?;
                    OxmField::EthType(get_u16(body))
                }
                VLAN_VID => {
                    check(2, true)?;
                    OxmField::VlanVid {
                        vid: get_u16(body),
                        mask: hasmask.then(|| get_u16(&body[2..])),
                    }
                }
                VLAN_PCP | IP_DSCP | IP_PROTO | ICMPV4_TYPE | ICMPV4_CODE => {
                    check(1, false)?;
                    let v = body[0];
                    match field {
                        VLAN_PCP => OxmField::VlanPcp(v),
                        IP_DSCP => OxmField::IpDscp(v),
                        IP_PROTO => OxmField::IpProto(v),
                        ICMPV4_TYPE => OxmField::Icmpv4Type(v),
                        _ => OxmField::Icmpv4Code(v),
                    }
                }
                IPV4_SRC | IPV4_DST | ARP_SPA | ARP_TPA => {
                    check(4, true)?;
                    let addr = get_v4(body);
                    let mask = hasmask.then(|| get_v4(&body[4..]));
                    match field {
                        IPV4_SRC => OxmField::Ipv4Src { addr, mask },
                        IPV4_DST => OxmField::Ipv4Dst { addr, mask },
                        ARP_SPA => OxmField::ArpSpa { addr, mask },
                        _ => OxmField::ArpTpa { addr, mask },
                    }
                }
                TCP_SRC | TCP_DST | UDP_SRC | UDP_DST | ARP_OP => {
                    check(2, false)?;
                    let v = get_u16(body);
                    match field {
                        TCP_SRC => OxmField::TcpSrc(v),
                        TCP_DST => OxmField::TcpDst(v),
                        UDP_SRC => OxmField::UdpSrc(v),
                        UDP_DST => OxmField::UdpDst(v),
                        _ => OxmField::ArpOp(v),
                    }
                }
                IPV6_SRC | IPV6_DST => {
                    check(16, true)?;
                    let addr = get_v6(body);
                    let mask = hasmask.then(|| get_v6(&body[16..]));
                    if field == IPV6_SRC {
                        OxmField::Ipv6Src { addr, mask }
                    } else {
                        OxmField::Ipv6Dst { addr, mask }
                    }
                }
                TUNNEL_ID => {
                    check(8, true)?;
                    OxmField::TunnelId {
                        id: get_u64(body),
                        mask: hasmask.then(|| get_u64(&body[8..])),
                    }
                }
                _ => OxmField::Unknown {
                    class,
                    field,
                    hasmask,
                    body: body.to_vec(),
                },
            };
            return Ok(f);
        }
        if class == OXM_CLASS_EXPERIMENTER {
            // Every experimenter OXM carries at least its experimenter id.
            if body.len() < 4 {
                return Err(bad);
            }
            if get_u32(body) == ONF_EXPERIMENTER_ID && field == ONF_OXM_TCP_FLAGS {
                let v = &body[4..];
                let want = if hasmask { 4 } else { 2 };
                if v.len() != want {
                    return Err(bad);
                }
                return Ok(OxmField::TcpFlags {
                    flags: get_u16(v),
                    mask: hasmask.then(|| get_u16(&v[2..])),
                });
            }
        }
        Ok(OxmField::Unknown {
            class,
            field,
            hasmask,
            body: body.to_vec(),
        })
    }

    /// (class, field, hasmask) of this TLV.
    pub fn key(&self) -> (u16, u8, bool) {
        use field::*;
        let b = OXM_CLASS_OPENFLOW_BASIC;
        match self {
            OxmField::InPort(_) => (b, IN_PORT, false),
            OxmField::Metadata { mask, .. } => (b, METADATA, mask.is_some()),
            OxmField::EthDst { mask, .. } => (b, ETH_DST, mask.is_some()),
            OxmField::EthSrc { mask, .. } => (b, ETH_SRC, mask.is_some()),
            OxmField::EthType(_) => (b, ETH_TYPE, false),
            OxmField::VlanVid { mask, .. } => (b, VLAN_VID, mask.is_some()),
            OxmField::VlanPcp(_) => (b, VLAN_PCP, false),
            OxmField::IpDscp(_) => (b, IP_DSCP, false),
            OxmField::IpProto(_) => (b, IP_PROTO, false),
            OxmField::Ipv4Src { mask, .. } => (b, IPV4_SRC, mask.is_some()),
            OxmField::Ipv4Dst { mask, .. } => (b, IPV4_DST, mask.is_some()),
            OxmField::Ipv6Src { mask, .. } => (b, IPV6_SRC, mask.is_some()),
            OxmField::Ipv6Dst { mask, .. } => (b, IPV6_DST, mask.is_some()),
            OxmField::TcpSrc(_) => (b, TCP_SRC, false),
            OxmField::TcpDst(_) => (b, TCP_DST, false),
            OxmField::UdpSrc(_) => (b, UDP_SRC, false),
            OxmField::UdpDst(_) => (b, UDP_DST, false),
            OxmField::Icmpv4Type(_) => (b, ICMPV4_TYPE, false),
            OxmField::Icmpv4Code(_) => (b, ICMPV4_CODE, false),
            OxmField::ArpOp(_) => (b, ARP_OP, false),
            OxmField::ArpSpa { mask, .. } => (b, ARP_SPA, mask.is_some()),
            OxmField::ArpTpa { mask, .. } => (b, ARP_TPA, mask.is_some()),
            OxmField::ArpSha { mask, .. } => (b, ARP_SHA, mask.is_some()),
            OxmField::ArpTha { mask, .. } => (b, ARP_THA, mask.is_some()),
            OxmField::TunnelId { mask, .. } => (b, TUNNEL_ID, mask.is_some()),
            OxmField::TcpFlags { mask, .. } => {
                (OXM_CLASS_EXPERIMENTER, ONF_OXM_TCP_FLAGS, mask.is_some())
            }
            OxmField::Unknown {
                class,
                field,
                hasmask,
                ..
            } => (*class, *field, *hasmask),
        }
    }

    /// Payload bytes (value then mask), without the 4-byte TLV header.
    fn payload(&self) -> Vec<u8> {
        fn opt<const N: usize>(v: [u8; N], m: Option<[u8; N]>) -> Vec<u8> {
            let mut out = v.to_vec();
            if let Some(m) = m {
                out.extend_from_slice(&m);
            }
            out
        }
        match self {
            OxmField::InPort(p) => p.to_be_bytes().to_vec(),
            OxmField::Metadata { value, mask } => {
                opt(value.to_be_bytes(), mask.map(u64::to_be_bytes))
            }
            OxmField::EthDst { addr, mask }
            | OxmField::EthSrc { addr, mask }
            | OxmField::ArpSha { addr, mask }
            | OxmField::ArpTha { addr, mask } => opt(*addr, *mask),
            OxmField::EthType(v)
            | OxmField::TcpSrc(v)
            | OxmField::TcpDst(v)
            | OxmField::UdpSrc(v)
            | OxmField::UdpDst(v)
            | OxmField::ArpOp(v) => v.to_be_bytes().to_vec(),
            OxmField::VlanVid { vid, mask } => opt(vid.to_be_bytes(), mask.map(u16::to_be_bytes)),
            OxmField::VlanPcp(v)
            | OxmField::IpDscp(v)
            | OxmField::IpProto(v)
            | OxmField::Icmpv4Type(v)
            | OxmField::Icmpv4Code(v) => vec![*v],
            OxmField::Ipv4Src { addr, mask }
            | OxmField::Ipv4Dst { addr, mask }
            | OxmField::ArpSpa { addr, mask }
            | OxmField::ArpTpa { addr, mask } => opt(addr.octets(), mask.map(|m| m.octets())),
            OxmField::Ipv6Src { addr, mask } | OxmField::Ipv6Dst { addr, mask } => {
                opt(addr.octets(), mask.map(|m| m.octets()))
            }
            OxmField::TunnelId { id, mask } => opt(id.to_be_bytes(), mask.map(u64::to_be_bytes)),
            OxmField::TcpFlags { flags, mask } => {
                let mut out = ONF_EXPERIMENTER_ID.to_be_bytes().to_vec();
                out.extend(opt(flags.to_be_bytes(), mask.map(u16::to_be_bytes)));
                out
            }
            OxmField::Unknown { body, .. } => body.clone(),
        }
    }

    /// Appends the TLV (header + payload, no padding).
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let (class, field, hasmask) = self.key();
        let payload = self.payload();
        // An Unknown body longer than 255 bytes cannot be expressed; clamp it
        // so the TLV stays self-consistent.
        let len = payload.len().min(255);
        let header = (u32::from(class) << 16)
            | (u32::from(field & 0x7f) << 9)
            | (u32::from(hasmask) << 8)
            | len as u32;
        put_u32(out, header);
        out.extend_from_slice(&payload[..len]);
    }

    /// Encoded size of the TLV including its header.
    pub fn wire_len(&self) -> usize {
        4 + self.payload().len().min(255)
    }
}

/// An OXM match (`ofp_match` with `type = OFPMT_OXM`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Match {
    pub fields: Vec<OxmField>,
}

impl Match {
    /// A match with no fields; same as [`Match::any`].
    pub fn new() -> Match {
        Match::default()
    }
    /// Matches every packet.
    pub fn any() -> Match {
        Match::default()
    }

    /// Adds an arbitrary field.
    pub fn with(mut self, f: OxmField) -> Match {
        self.fields.push(f);
        self
    }
    pub fn in_port(self, port: u32) -> Match {
        self.with(OxmField::InPort(port))
    }
    // The `*_masked` builders clear value bits outside the mask: OVS rejects
    // a masked OXM whose value has 1-bits where the mask has 0-bits.

    pub fn metadata(self, value: u64, mask: Option<u64>) -> Match {
        self.with(OxmField::Metadata {
            value: value & mask.unwrap_or(u64::MAX),
            mask,
        })
    }
    pub fn eth_type(self, t: u16) -> Match {
        self.with(OxmField::EthType(t))
    }
    pub fn eth_src(self, addr: [u8; 6]) -> Match {
        self.with(OxmField::EthSrc { addr, mask: None })
    }
    pub fn eth_dst(self, addr: [u8; 6]) -> Match {
        self.with(OxmField::EthDst { addr, mask: None })
    }
    pub fn eth_dst_masked(self, addr: [u8; 6], mask: [u8; 6]) -> Match {
        let mut a = addr;
        a.iter_mut().zip(mask).for_each(|(b, m)| *b &= m);
        self.with(OxmField::EthDst {
            addr: a,
            mask: Some(mask),
        })
    }
    /// Matches VLAN id `vid` (the `OFPVID_PRESENT` bit is added).
    pub fn vlan_vid(self, vid: u16) -> Match {
        self.with(OxmField::VlanVid {
            vid: vid | VID_PRESENT,
            mask: None,
        })
    }
    pub fn vlan_pcp(self, pcp: u8) -> Match {
        self.with(OxmField::VlanPcp(pcp))
    }
    pub fn ip_dscp(self, dscp: u8) -> Match {
        self.with(OxmField::IpDscp(dscp))
    }
    pub fn ip_proto(self, p: u8) -> Match {
        self.with(OxmField::IpProto(p))
    }
    pub fn ipv4_src(self, addr: Ipv4Addr) -> Match {
        self.with(OxmField::Ipv4Src { addr, mask: None })
    }
    pub fn ipv4_dst(self, addr: Ipv4Addr) -> Match {
        self.with(OxmField::Ipv4Dst { addr, mask: None })
    }
    pub fn ipv4_src_masked(self, addr: Ipv4Addr, mask: Ipv4Addr) -> Match {
        self.with(OxmField::Ipv4Src {
            addr: addr & mask,
            mask: Some(mask),
        })
    }
    pub fn ipv4_dst_masked(self, addr: Ipv4Addr, mask: Ipv4Addr) -> Match {
        self.with(OxmField::Ipv4Dst {
            addr: addr & mask,
            mask: Some(mask),
        })
    }
    pub fn ipv6_src(self, addr: Ipv6Addr) -> Match {
        self.with(OxmField::Ipv6Src { addr, mask: None })
    }
    pub fn ipv6_dst(self, addr: Ipv6Addr) -> Match {
        self.with(OxmField::Ipv6Dst { addr, mask: None })
    }
    pub fn tcp_src(self, p: u16) -> Match {
        self.with(OxmField::TcpSrc(p))
    }
    pub fn tcp_dst(self, p: u16) -> Match {
        self.with(OxmField::TcpDst(p))
    }
    pub fn udp_src(self, p: u16) -> Match {
        self.with(OxmField::UdpSrc(p))
    }
    pub fn udp_dst(self, p: u16) -> Match {
        self.with(OxmField::UdpDst(p))
    }
    pub fn icmpv4_type(self, t: u8) -> Match {
        self.with(OxmField::Icmpv4Type(t))
    }
    pub fn icmpv4_code(self, c: u8) -> Match {
        self.with(OxmField::Icmpv4Code(c))
    }
    pub fn arp_op(self, op: u16) -> Match {
        self.with(OxmField::ArpOp(op))
    }
    pub fn arp_spa(self, addr: Ipv4Addr) -> Match {
        self.with(OxmField::ArpSpa { addr, mask: None })
    }
    pub fn arp_tpa(self, addr: Ipv4Addr) -> Match {
        self.with(OxmField::ArpTpa { addr, mask: None })
    }
    pub fn tunnel_id(self, id: u64) -> Match {
        self.with(OxmField::TunnelId { id, mask: None })
    }
    pub fn tcp_flags(self, flags: u16, mask: Option<u16>) -> Match {
        self.with(OxmField::TcpFlags {
            flags: flags & mask.unwrap_or(u16::MAX),
            mask,
        })
    }

    /// The `IN_PORT` value, if the match carries one (e.g. in a PACKET_IN).
    pub fn get_in_port(&self) -> Option<u32> {
        self.fields.iter().find_map(|f| match f {
            OxmField::InPort(p) => Some(*p),
            _ => None,
        })
    }

    /// Size on the wire including trailing padding.
    pub fn wire_len(&self) -> usize {
        pad8(4 + self.fields.iter().map(OxmField::wire_len).sum::<usize>())
    }

    /// Parses an `ofp_match` including its padding from the front of `r`.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Match, Error> {
        let kind = r.u16("match type")?;
        let len = usize::from(r.u16("match length")?);
        if kind != MATCH_TYPE_OXM {
            return Err(Error::BadMatchType(kind));
        }
        if len < 4 {
            return Err(Error::BadLength { what: "match", len });
        }
        let mut fields_r = Reader::new(r.take(len - 4, "match fields")?);
        r.skip(pad8(len) - len, "match padding")?;
        let mut fields = Vec::new();
        while !fields_r.is_empty() {
            fields.push(OxmField::parse(&mut fields_r)?);
        }
        Ok(Match { fields })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, MATCH_TYPE_OXM);
        put_u16(out, 0);
        for f in &self.fields {
            f.emit(out);
        }
        let len = out.len() - start;
        super::wire::patch_u16(out, start + 2, super::wire::len16(len));
        put_zeros(out, pad8(len) - len);
    }
}
