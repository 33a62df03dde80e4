//! SNMP messages as bytes: the community messages of SNMPv1 (RFC 1157) and
//! SNMPv2c (RFC 1901) and the SNMPv3 message with its user-based security
//! parameters (RFC 3412 §6, RFC 3414 §2.4), around the PDUs of RFC 3416, in
//! BER. Parsing and emitting only; what an agent answers is `super`.
//!
//! Input is an attacker's datagram: every length is checked against what is
//! there before anything is read, so malformed bytes are an `Err`, never a
//! panic. The nesting is fixed by the message layout (no recursion), object
//! identifiers have at most `MAX_ARCS` arcs of 32 bits, integers at most 64
//! bits. Emitting writes minimal definite lengths and minimal integers, as
//! net-snmp does, so a message parsed from net-snmp's bytes emits the same
//! bytes again (the tests hold captures of `snmpget` against snmpd 5.9.3).

use std::fmt;

/// Longest message an agent sends over UDP (net-snmp's msgMaxSize).
pub const MAX_MESSAGE: usize = 65507;
/// Arcs an OBJECT IDENTIFIER may have (RFC 2578 §3.5).
pub const MAX_ARCS: usize = 128;

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OBJECT_IDENTIFIER: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const IP_ADDRESS: u8 = 0x40;
const COUNTER32: u8 = 0x41;
const GAUGE32: u8 = 0x42;
const TIMETICKS: u8 = 0x43;
const OPAQUE: u8 = 0x44;
const COUNTER64: u8 = 0x46;
const NO_SUCH_OBJECT: u8 = 0x80;
const NO_SUCH_INSTANCE: u8 = 0x81;
const END_OF_MIB_VIEW: u8 = 0x82;

/// The user-based security model, the only one SNMPv3 agents commonly run.
pub const USM: i64 = 3;
/// msgFlags bits (RFC 3412 §6.4).
pub const FLAG_AUTH: u8 = 0x01;
pub const FLAG_PRIV: u8 = 0x02;
pub const FLAG_REPORTABLE: u8 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("message ends inside a field")]
    Truncated,
    #[error("tag 0x{0:02x} where another was expected")]
    Tag(u8),
    #[error("length form SNMP does not use")]
    Length,
    #[error("integer of more than 64 bits, or empty")]
    Integer,
    #[error("malformed object identifier")]
    Oid,
    #[error("value of unknown type 0x{0:02x} or wrong size")]
    Value(u8),
    #[error("SNMP version {0} is not 1, 2c or 3")]
    Version(i64),
    #[error("PDU type 0x{0:02x} is not one of RFC 3416's")]
    Pdu(u8),
    #[error("security model {0} is not the user-based one")]
    SecurityModel(i64),
    #[error("bytes after the end of a field")]
    Trailing,
}

/// An OBJECT IDENTIFIER; ordered as SNMP orders them (arc by arc, a prefix first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(Vec<u32>);

impl Oid {
    /// From arcs; `None` unless BER can carry them (2 to `MAX_ARCS` arcs,
    /// the first 0..=2, the second below 40 unless the first is 2).
    pub fn new(arcs: Vec<u32>) -> Option<Oid> {
        let ok =
            (2..=MAX_ARCS).contains(&arcs.len()) && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40);
        ok.then_some(Oid(arcs))
    }

    /// From dotted text (`1.3.6.1.2.1.1.5.0`).
    pub fn parse(dotted: &str) -> Option<Oid> {
        let arcs: Option<Vec<u32>> = dotted.split('.').map(|a| a.parse().ok()).collect();
        Oid::new(arcs?)
    }

    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This OID without its last arc (an object's instance → the object).
    pub fn parent(&self) -> Option<Oid> {
        Oid::new(self.0[..self.0.len() - 1].to_vec())
    }

    fn decode(value: &[u8]) -> Result<Oid, Error> {
        let mut arcs = Vec::new();
        let mut acc: u64 = 0;
        let mut fresh = true;
        for &b in value {
            // A sub-identifier's first octet is never 0x80 (X.690 §8.19.2).
            if fresh && b == 0x80 {
                return Err(Error::Oid);
            }
            fresh = false;
            acc = (acc << 7) | u64::from(b & 0x7f);
            if acc > u64::from(u32::MAX) + 80 {
                return Err(Error::Oid);
            }
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first as u32);
                    arcs.push(u32::try_from(acc - first * 40).map_err(|_| Error::Oid)?);
                } else {
                    arcs.push(u32::try_from(acc).map_err(|_| Error::Oid)?);
                }
                if arcs.len() > MAX_ARCS {
                    return Err(Error::Oid);
                }
                acc = 0;
                fresh = true;
            }
        }
        if !fresh || arcs.is_empty() {
            return Err(Error::Oid);
        }
        Ok(Oid(arcs))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let first = u64::from(self.0[0]) * 40 + u64::from(self.0[1]);
        for arc in std::iter::once(first).chain(self.0[2..].iter().map(|a| u64::from(*a))) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push(0x80 | (rest & 0x7f) as u8);
                rest >>= 7;
            }
            body.extend(groups.iter().rev());
        }
        tlv(out, OBJECT_IDENTIFIER, &body);
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// A variable binding's value (RFC 3416 §3, the SMIv2 types and the three
/// exceptions of a v2 response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    fn decode(tag: u8, v: &[u8]) -> Result<Value, Error> {
        let unsigned32 =
            |v: &[u8]| u32::try_from(decode_integer(v, 5)?).map_err(|_| Error::Value(tag));
        let empty = |x: Value| {
            if v.is_empty() {
                Ok(x)
            } else {
                Err(Error::Value(tag))
            }
        };
        match tag {
            INTEGER => Ok(Value::Integer(decode_integer(v, 8)?)),
            OCTET_STRING => Ok(Value::OctetString(v.to_vec())),
            NULL => empty(Value::Null),
            OBJECT_IDENTIFIER => Ok(Value::ObjectId(Oid::decode(v)?)),
            IP_ADDRESS => Ok(Value::IpAddress(
                v.try_into().map_err(|_| Error::Value(tag))?,
            )),
            COUNTER32 => Ok(Value::Counter32(unsigned32(v)?)),
            GAUGE32 => Ok(Value::Gauge32(unsigned32(v)?)),
            TIMETICKS => Ok(Value::TimeTicks(unsigned32(v)?)),
            OPAQUE => Ok(Value::Opaque(v.to_vec())),
            COUNTER64 => Ok(Value::Counter64(decode_unsigned64(v)?)),
            NO_SUCH_OBJECT => empty(Value::NoSuchObject),
            NO_SUCH_INSTANCE => empty(Value::NoSuchInstance),
            END_OF_MIB_VIEW => empty(Value::EndOfMibView),
            other => Err(Error::Value(other)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(i) => integer(out, INTEGER, *i),
            Value::OctetString(b) => tlv(out, OCTET_STRING, b),
            Value::Null => tlv(out, NULL, &[]),
            Value::ObjectId(o) => o.encode(out),
            Value::IpAddress(a) => tlv(out, IP_ADDRESS, a),
            Value::Counter32(v) => integer(out, COUNTER32, i64::from(*v)),
            Value::Gauge32(v) => integer(out, GAUGE32, i64::from(*v)),
            Value::TimeTicks(v) => integer(out, TIMETICKS, i64::from(*v)),
            Value::Opaque(b) => tlv(out, OPAQUE, b),
            Value::Counter64(v) => unsigned64(out, COUNTER64, *v),
            Value::NoSuchObject => tlv(out, NO_SUCH_OBJECT, &[]),
            Value::NoSuchInstance => tlv(out, NO_SUCH_INSTANCE, &[]),
            Value::EndOfMibView => tlv(out, END_OF_MIB_VIEW, &[]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

/// The PDU types of RFC 3416 (the v1 Trap, 0xA4, has another layout and is
/// not parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduType {
    Get,
    GetNext,
    Response,
    Set,
    GetBulk,
    Inform,
    TrapV2,
    Report,
}

impl PduType {
    fn from_tag(tag: u8) -> Result<PduType, Error> {
        Ok(match tag {
            0xA0 => PduType::Get,
            0xA1 => PduType::GetNext,
            0xA2 => PduType::Response,
            0xA3 => PduType::Set,
            0xA5 => PduType::GetBulk,
            0xA6 => PduType::Inform,
            0xA7 => PduType::TrapV2,
            0xA8 => PduType::Report,
            other => return Err(Error::Pdu(other)),
        })
    }

    fn tag(self) -> u8 {
        match self {
            PduType::Get => 0xA0,
            PduType::GetNext => 0xA1,
            PduType::Response => 0xA2,
            PduType::Set => 0xA3,
            PduType::GetBulk => 0xA5,
            PduType::Inform => 0xA6,
            PduType::TrapV2 => 0xA7,
            PduType::Report => 0xA8,
        }
    }

    /// Lower-case name, as events carry it.
    pub fn name(self) -> &'static str {
        match self {
            PduType::Get => "get",
            PduType::GetNext => "getnext",
            PduType::Response => "response",
            PduType::Set => "set",
            PduType::GetBulk => "getbulk",
            PduType::Inform => "inform",
            PduType::TrapV2 => "trap",
            PduType::Report => "report",
        }
    }
}

/// A PDU. In a GetBulk, `error_status` carries non-repeaters and
/// `error_index` max-repetitions (RFC 3416 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub kind: PduType,
    pub request_id: i64,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<VarBind>,
}

impl Pdu {
    fn decode(tag: u8, body: &[u8]) -> Result<Pdu, Error> {
        let kind = PduType::from_tag(tag)?;
        let mut r = Reader(body);
        let request_id = decode_integer(r.expect(INTEGER)?, 8)?;
        let error_status = decode_integer(r.expect(INTEGER)?, 8)?;
        let error_index = decode_integer(r.expect(INTEGER)?, 8)?;
        let mut list = Reader(r.expect(SEQUENCE)?);
        r.end()?;
        let mut varbinds = Vec::new();
        while !list.0.is_empty() {
            let mut vb = Reader(list.expect(SEQUENCE)?);
            let oid = Oid::decode(vb.expect(OBJECT_IDENTIFIER)?)?;
            let (tag, v) = vb.tlv()?;
            vb.end()?;
            varbinds.push(VarBind {
                oid,
                value: Value::decode(tag, v)?,
            });
        }
        Ok(Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut list = Vec::new();
        for vb in &self.varbinds {
            let mut one = Vec::new();
            vb.oid.encode(&mut one);
            vb.value.encode(&mut one);
            tlv(&mut list, SEQUENCE, &one);
        }
        let mut body = Vec::new();
        integer(&mut body, INTEGER, self.request_id);
        integer(&mut body, INTEGER, self.error_status);
        integer(&mut body, INTEGER, self.error_index);
        tlv(&mut body, SEQUENCE, &list);
        tlv(out, self.kind.tag(), &body);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2c,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "1",
            Version::V2c => "2c",
        }
    }
}

/// An SNMPv1 or SNMPv2c message: a community and one PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityMessage {
    pub version: Version,
    pub community: Vec<u8>,
    pub pdu: Pdu,
}

/// UsmSecurityParameters (RFC 3414 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usm {
    pub engine_id: Vec<u8>,
    pub engine_boots: i64,
    pub engine_time: i64,
    pub user: Vec<u8>,
    pub auth_params: Vec<u8>,
    pub priv_params: Vec<u8>,
}

impl Usm {
    fn decode(bytes: &[u8]) -> Result<Usm, Error> {
        let mut outer = Reader(bytes);
        let mut r = Reader(outer.expect(SEQUENCE)?);
        outer.end()?;
        let usm = Usm {
            engine_id: r.expect(OCTET_STRING)?.to_vec(),
            engine_boots: decode_integer(r.expect(INTEGER)?, 8)?,
            engine_time: decode_integer(r.expect(INTEGER)?, 8)?,
            user: r.expect(OCTET_STRING)?.to_vec(),
            auth_params: r.expect(OCTET_STRING)?.to_vec(),
            priv_params: r.expect(OCTET_STRING)?.to_vec(),
        };
        r.end()?;
        Ok(usm)
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        tlv(&mut body, OCTET_STRING, &self.engine_id);
        integer(&mut body, INTEGER, self.engine_boots);
        integer(&mut body, INTEGER, self.engine_time);
        tlv(&mut body, OCTET_STRING, &self.user);
        tlv(&mut body, OCTET_STRING, &self.auth_params);
        tlv(&mut body, OCTET_STRING, &self.priv_params);
        let mut out = Vec::new();
        tlv(&mut out, SEQUENCE, &body);
        out
    }
}

/// A v3 message's data: a plaintext ScopedPDU, or one encrypted with a
/// privacy key the agent may not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopedPdu {
    Plain {
        context_engine_id: Vec<u8>,
        context_name: Vec<u8>,
        pdu: Pdu,
    },
    Encrypted(Vec<u8>),
}

/// An SNMPv3 message with the user-based security model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Message {
    pub msg_id: i64,
    pub max_size: i64,
    pub flags: u8,
    pub usm: Usm,
    pub scoped: ScopedPdu,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Community(CommunityMessage),
    V3(V3Message),
}

impl Message {
    pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
        let mut outer = Reader(bytes);
        let mut r = Reader(outer.expect(SEQUENCE)?);
        outer.end()?;
        let version = decode_integer(r.expect(INTEGER)?, 8)?;
        let msg = match version {
            0 | 1 => {
                let community = r.expect(OCTET_STRING)?.to_vec();
                let (tag, body) = r.tlv()?;
                Message::Community(CommunityMessage {
                    version: if version == 0 {
                        Version::V1
                    } else {
                        Version::V2c
                    },
                    community,
                    pdu: Pdu::decode(tag, body)?,
                })
            }
            3 => {
                let mut global = Reader(r.expect(SEQUENCE)?);
                let msg_id = decode_integer(global.expect(INTEGER)?, 8)?;
                let max_size = decode_integer(global.expect(INTEGER)?, 8)?;
                let flags = match global.expect(OCTET_STRING)? {
                    [f] => *f,
                    _ => return Err(Error::Value(OCTET_STRING)),
                };
                let model = decode_integer(global.expect(INTEGER)?, 8)?;
                global.end()?;
                if model != USM {
                    return Err(Error::SecurityModel(model));
                }
                let usm = Usm::decode(r.expect(OCTET_STRING)?)?;
                let scoped = match r.tlv()? {
                    (OCTET_STRING, sealed) => ScopedPdu::Encrypted(sealed.to_vec()),
                    (SEQUENCE, body) => {
                        let mut s = Reader(body);
                        let context_engine_id = s.expect(OCTET_STRING)?.to_vec();
                        let context_name = s.expect(OCTET_STRING)?.to_vec();
                        let (tag, pdu) = s.tlv()?;
                        s.end()?;
                        ScopedPdu::Plain {
                            context_engine_id,
                            context_name,
                            pdu: Pdu::decode(tag, pdu)?,
                        }
                    }
                    (other, _) => return Err(Error::Tag(other)),
                };
                Message::V3(V3Message {
                    msg_id,
                    max_size,
                    flags,
                    usm,
                    scoped,
                })
            }
            other => return Err(Error::Version(other)),
        };
        r.end()?;
        Ok(msg)
    }

    pub fn emit(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Message::Community(m) => {
                integer(
                    &mut body,
                    INTEGER,
                    match m.version {
                        Version::V1 => 0,
                        Version::V2c => 1,
                    },
                );
                tlv(&mut body, OCTET_STRING, &m.community);
                m.pdu.encode(&mut body);
            }
            Message::V3(m) => {
                integer(&mut body, INTEGER, 3);
                let mut global = Vec::new();
                integer(&mut global, INTEGER, m.msg_id);
                integer(&mut global, INTEGER, m.max_size);
                tlv(&mut global, OCTET_STRING, &[m.flags]);
                integer(&mut global, INTEGER, USM);
                tlv(&mut body, SEQUENCE, &global);
                tlv(&mut body, OCTET_STRING, &m.usm.encode());
                match &m.scoped {
                    ScopedPdu::Encrypted(sealed) => tlv(&mut body, OCTET_STRING, sealed),
                    ScopedPdu::Plain {
                        context_engine_id,
                        context_name,
                        pdu,
                    } => {
                        let mut s = Vec::new();
                        tlv(&mut s, OCTET_STRING, context_engine_id);
                        tlv(&mut s, OCTET_STRING, context_name);
                        pdu.encode(&mut s);
                        tlv(&mut body, SEQUENCE, &s);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        tlv(&mut out, SEQUENCE, &body);
        out
    }
}

// ---- BER primitives ----

/// The unread rest of a constructed value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next TLV: (tag, contents). Only one-octet tags and definite
    /// lengths of up to four octets (SNMP's messages fit in 64 KiB).
    fn tlv(&mut self) -> Result<(u8, &'a [u8]), Error> {
        let buf = self.0;
        let (&tag, rest) = buf.split_first().ok_or(Error::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(Error::Tag(tag));
        }
        let (&first, rest) = rest.split_first().ok_or(Error::Truncated)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(Error::Length);
            }
            if rest.len() < n {
                return Err(Error::Truncated);
            }
            let (digits, rest) = rest.split_at(n);
            let len = digits
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        };
        if rest.len() < len {
            return Err(Error::Truncated);
        }
        let (contents, rest) = rest.split_at(len);
        self.0 = rest;
        Ok((tag, contents))
    }

    fn expect(&mut self, want: u8) -> Result<&'a [u8], Error> {
        match self.tlv()? {
            (tag, contents) if tag == want => Ok(contents),
            (tag, _) => Err(Error::Tag(tag)),
        }
    }

    fn end(&self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Trailing)
        }
    }
}

/// A two's complement integer of at most `max` (≤ 8) octets.
fn decode_integer(v: &[u8], max: usize) -> Result<i64, Error> {
    if v.is_empty() || v.len() > max.min(8) {
        return Err(Error::Integer);
    }
    let init: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
    Ok(v.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Counter64: up to eight value octets after an optional leading zero.
fn decode_unsigned64(v: &[u8]) -> Result<u64, Error> {
    let v = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if v.is_empty() || v.len() > 8 {
        return Err(Error::Value(COUNTER64));
    }
    Ok(v.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    push_len(out, contents.len());
    out.extend_from_slice(contents);
}

/// Minimal two's complement (unsigned types below 2^63 too).
fn integer(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(out, tag, &bytes[start..]);
}

fn unsigned64(out: &mut Vec<u8>, tag: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut contents = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        contents.push(0);
    }
    contents.extend_from_slice(&bytes[skip..]);
    tlv(out, tag, &contents);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decoy::unhex;

    pub(crate) fn bytes(hex: &str) -> Vec<u8> {
        unhex(hex).expect("test hex")
    }

    /// Exchanges of net-snmp 5.9.3's `snmpget`/`snmpgetnext`/`snmpbulkget`/
    /// `snmpset` (Debian 12) with its snmpd on 127.0.0.1, configured as the
    /// lab's plc-gw-01 (`rocommunity public`, the system group below), each
    /// (request, response) as `-d` dumped them.
    pub(crate) const GET_SYS_NAME: (&str, &str) = (
        "302902010104067075626c6963a01c0204221aca5a020100020100300e300c06082b060102010105000500",
        "303202010104067075626c6963a2250204221aca5a0201000201003017301506082b060102010105000409706c632d67772d3031",
    );
    pub(crate) const GETNEXT_SYSTEM: (&str, &str) = (
        "302702010104067075626c6963a11a02045ef3b9c8020100020100300c300a06062b06010201010500",
        "306202010104067075626c6963a25502045ef3b9c80201000201003047304506082b0601020101010004394c696e757820766d20362e31382e34342d66632d7635393520233120534d5020505245454d50545f44594e414d4943204030207838365f3634",
    );
    /// -Cn1 -Cr3 sysDescr.0 sysContact
    pub(crate) const GETBULK: (&str, &str) = (
        "303602010104067075626c6963a5290204388b59f5020101020103301b300c06082b060102010101000500300b06072b0601020101040500",
        "307e02010104067075626c6963a2710204388b59f50201000201003063301606082b06010201010200060a2b06010401bf0803020a301e06082b0601020101040004126e65746f7073406578616d706c652e6e6574301506082b060102010105000409706c632d67772d3031301206082b06010201010600040648616c6c2033",
    );
    /// -Cn0 -Cr3 1.3.6.1.6.3.99 sysName.0: the first row ends the MIB view.
    pub(crate) const GETBULK_END: (&str, &str) = (
        "303502010104067075626c6963a5280204418c3cfc020100020103301a300a06062b06010603630500300c06082b060102010105000500",
        "303b02010104067075626c6963a22e0204418c3cfc0201000201003020300a06062b06010603638200301206082b06010201010600040648616c6c2033",
    );
    /// v1: sysName.0 and a missing 1.3.6.1.2.1.1.99.0 → noSuchName, index 2.
    pub(crate) const V1_GET_MISSING: (&str, &str) = (
        "303702010004067075626c6963a02a0204010d23e4020100020100301c300c06082b060102010105000500300c06082b060102010163000500",
        "303702010004067075626c6963a22a0204010d23e4020102020102301c300c06082b060102010105000500300c06082b060102010163000500",
    );
    /// v2c: sysName, sysName.1, 1.3.6.1.2.1.1.99.0, 1.3.6.1.4.1.99999.0.
    pub(crate) const V2_GET_MISSING: (&str, &str) = (
        "305302010104067075626c6963a04602040357eca80201000201003038300b06072b0601020101050500300c06082b060102010105010500300c06082b060102010163000500300d06092b06010401868d1f000500",
        "305302010104067075626c6963a24602040357eca80201000201003038300b06072b0601020101058100300c06082b060102010105018100300c06082b060102010163008000300d06092b06010401868d1f008000",
    );
    pub(crate) const V2_GETNEXT_END: (&str, &str) = (
        "302702010104067075626c6963a11a020478dc6243020100020100300c300a06062b06010603630500",
        "302702010104067075626c6963a21a020478dc6243020100020100300c300a06062b06010603638200",
    );
    pub(crate) const V1_GETNEXT_END: (&str, &str) = (
        "302702010004067075626c6963a11a020445c054ab020100020100300c300a06062b06010603630500",
        "302702010004067075626c6963a21a020445c054ab020102020101300c300a06062b06010603630500",
    );
    /// `snmpset ... sysName.0 s hacked` with the read-only community.
    pub(crate) const V2_SET: (&str, &str) = (
        "302f02010104067075626c6963a3220204453c81e30201000201003014301206082b0601020101050004066861636b6564",
        "302f02010104067075626c6963a2220204453c81e30201060201013014301206082b0601020101050004066861636b6564",
    );
    pub(crate) const V1_SET: (&str, &str) = (
        "302f02010004067075626c6963a3220204195ce21b0201000201003014301206082b0601020101050004066861636b6564",
        "302f02010004067075626c6963a2220204195ce21b0201020201013014301206082b0601020101050004066861636b6564",
    );
    /// `snmpget -v3 -l noAuthNoPriv -u nobody`: engine ID discovery, then
    /// the request as that user. snmpd had run 11 s, engine ID
    /// 80001f888094a8fd427999076b00000000, boots 1.
    pub(crate) const V3_DISCOVERY: (&str, &str) = (
        "303e020103301102045dfb0336020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e020417dc0bbf0201000201003000",
        "3071020103301102045dfb0336020300ffe30401000201030421301f041180001f888094a8fd427999076b0000000002010102010b0400040004003036041180001f888094a8fd427999076b000000000400a81f020417dc0bbf0201000201003011300f060a2b060106030f01010400410101",
    );
    pub(crate) const V3_UNKNOWN_USER: (&str, &str) = (
        "3074020103301102045dfb0335020300ffe304010402010304273025041180001f888094a8fd427999076b0000000002010102010b04066e6f626f6479040004003033041180001f888094a8fd427999076b000000000400a01c020417dc0bbe020100020100300e300c06082b060102010105000500",
        "3077020103301102045dfb0335020300ffe304010002010304273025041180001f888094a8fd427999076b0000000002010102010b04066e6f626f6479040004003036041180001f888094a8fd427999076b000000000400a81f020417dc0bbe0201000201003011300f060a2b060106030f01010300410101",
    );
    /// authNoPriv as `admin` (SHA): the request carries an HMAC.
    pub(crate) const V3_AUTH_REQUEST: &str = "307f020103301102043f039fb1020300ffe304010502010304323030041180001f888094a8fd427999076b0000000002010102010b040561646d696e040c5698870c37e1068099b0bf0c04003033041180001f888094a8fd427999076b000000000400a01c02047be40a41020100020100300e300c06082b060102010105000500";
    /// The probe's GET of the whole system group (controller's discovery).
    pub(crate) const PROBE_SYSTEM: (&str, &str) = (
        "306f02010104067075626c6963a0620204282ba43c0201000201003054300c06082b060102010101000500300c06082b060102010105000500300c06082b060102010102000500300c06082b060102010104000500300c06082b060102010106000500300c06082b060102010103000500",
        "3081d402010104067075626c6963a281c60204282ba43c0201000201003081b7304506082b0601020101010004394c696e757820766d20362e31382e34342d66632d7635393520233120534d5020505245454d50545f44594e414d4943204030207838365f3634301506082b060102010105000409706c632d67772d3031301606082b06010201010200060a2b06010401bf0803020a301b06082b06010201010400040f6f7073406578616d706c652e6e6574301206082b06010201010600040648616c6c2033300e06082b0601020101030043020f4a",
    );

    pub(crate) fn all_captures() -> Vec<(&'static str, &'static str)> {
        vec![
            GET_SYS_NAME,
            GETNEXT_SYSTEM,
            GETBULK,
            GETBULK_END,
            V1_GET_MISSING,
            V2_GET_MISSING,
            V2_GETNEXT_END,
            V1_GETNEXT_END,
            V2_SET,
            V1_SET,
            V3_DISCOVERY,
            V3_UNKNOWN_USER,
            PROBE_SYSTEM,
        ]
    }

    fn oid(s: &str) -> Oid {
        Oid::parse(s).unwrap()
    }

    #[test]
    fn every_capture_parses_and_emits_the_same_bytes() {
        let mut all: Vec<&str> = all_captures()
            .into_iter()
            .flat_map(|(a, b)| [a, b])
            .collect();
        all.push(V3_AUTH_REQUEST);
        for hex in all {
            let b = bytes(hex);
            let m = Message::parse(&b).unwrap_or_else(|e| panic!("{hex}: {e}"));
            assert_eq!(m.emit(), b, "{m:#?}");
        }
    }

    #[test]
    fn a_get_decodes_to_its_fields() {
        let Message::Community(m) = Message::parse(&bytes(GET_SYS_NAME.0)).unwrap() else {
            panic!("v2c")
        };
        assert_eq!(m.version, Version::V2c);
        assert_eq!(m.community, b"public");
        assert_eq!(m.pdu.kind, PduType::Get);
        assert_eq!(m.pdu.request_id, 0x221aca5a);
        assert_eq!(
            m.pdu.varbinds,
            [VarBind {
                oid: oid("1.3.6.1.2.1.1.5.0"),
                value: Value::Null
            }]
        );
        let Message::Community(r) = Message::parse(&bytes(GETBULK.1)).unwrap() else {
            panic!("v2c")
        };
        assert_eq!(
            r.pdu.varbinds[0].value,
            Value::ObjectId(oid("1.3.6.1.4.1.8072.3.2.10"))
        );
        let Message::Community(b) = Message::parse(&bytes(GETBULK.0)).unwrap() else {
            panic!("v2c")
        };
        assert_eq!(
            (b.pdu.kind, b.pdu.error_status, b.pdu.error_index),
            (PduType::GetBulk, 1, 3)
        );
    }

    #[test]
    fn a_v3_discovery_decodes_to_its_fields() {
        let Message::V3(q) = Message::parse(&bytes(V3_DISCOVERY.0)).unwrap() else {
            panic!("v3")
        };
        assert_eq!(
            (q.msg_id, q.max_size, q.flags),
            (0x5dfb0336, 65507, FLAG_REPORTABLE)
        );
        assert_eq!(q.usm, Usm::default());
        let ScopedPdu::Plain { pdu, .. } = &q.scoped else {
            panic!("plain")
        };
        assert!(pdu.varbinds.is_empty());
        let Message::V3(r) = Message::parse(&bytes(V3_DISCOVERY.1)).unwrap() else {
            panic!("v3")
        };
        assert_eq!(r.usm.engine_id, bytes("80001f888094a8fd427999076b00000000"));
        assert_eq!((r.usm.engine_boots, r.usm.engine_time), (1, 11));
        let ScopedPdu::Plain { pdu, .. } = &r.scoped else {
            panic!("plain")
        };
        assert_eq!(pdu.kind, PduType::Report);
        assert_eq!(
            pdu.varbinds[0],
            VarBind {
                oid: oid("1.3.6.1.6.3.15.1.1.4.0"),
                value: Value::Counter32(1)
            }
        );
        let Message::V3(a) = Message::parse(&bytes(V3_AUTH_REQUEST)).unwrap() else {
            panic!("v3")
        };
        assert_eq!(a.flags, FLAG_AUTH | FLAG_REPORTABLE);
        assert_eq!(a.usm.user, b"admin");
        assert_eq!(a.usm.auth_params.len(), 12);
    }

    #[test]
    fn values_round_trip() {
        let values = [
            Value::Integer(0),
            Value::Integer(-1),
            Value::Integer(128),
            Value::Integer(i64::MIN),
            Value::Integer(i64::MAX),
            Value::OctetString(vec![b'x'; 300]),
            Value::OctetString(Vec::new()),
            Value::Null,
            Value::ObjectId(oid("2.999.4294967295")),
            Value::IpAddress([10, 78, 1, 20]),
            Value::Counter32(u32::MAX),
            Value::Gauge32(0),
            Value::TimeTicks(0x8000_0000),
            Value::Opaque(vec![1, 2, 3]),
            Value::Counter64(u64::MAX),
            Value::Counter64(0),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ];
        for v in values {
            let m = Message::Community(CommunityMessage {
                version: Version::V2c,
                community: b"public".to_vec(),
                pdu: Pdu {
                    kind: PduType::Response,
                    request_id: -7,
                    error_status: 0,
                    error_index: 0,
                    varbinds: vec![VarBind {
                        oid: oid("1.3.6.1.2.1.1.3.0"),
                        value: v.clone(),
                    }],
                },
            });
            assert_eq!(Message::parse(&m.emit()).unwrap(), m, "{v:?}");
        }
        // Minimal encodings, as net-snmp writes them.
        let mut out = Vec::new();
        integer(&mut out, INTEGER, 65507);
        assert_eq!(out, [2, 3, 0, 0xff, 0xe3]);
        let mut out = Vec::new();
        Value::Counter32(0x8000_0000).encode(&mut out);
        assert_eq!(out, [0x41, 5, 0, 0x80, 0, 0, 0]);
    }

    #[test]
    fn oids_order_and_print_as_snmp_does() {
        assert!(oid("1.3.6.1.2.1.1") < oid("1.3.6.1.2.1.1.1.0"));
        assert!(oid("1.3.6.1.2.1.1.9") > oid("1.3.6.1.2.1.1.1.0"));
        assert_eq!(
            oid("1.3.6.1.4.1.8072.3.2.10").to_string(),
            "1.3.6.1.4.1.8072.3.2.10"
        );
        assert_eq!(
            oid("1.3.6.1.2.1.1.5.0").parent(),
            Some(oid("1.3.6.1.2.1.1.5"))
        );
        assert!(Oid::parse("1").is_none());
        assert!(Oid::parse("3.1").is_none());
        assert!(Oid::parse("1.40").is_none());
        assert!(Oid::parse("1.3.x").is_none());
        assert!(
            Oid::decode(&[0x2b, 0x80, 0x01]).is_err(),
            "padded sub-identifier"
        );
        assert!(Oid::decode(&[0x2b, 0x86]).is_err(), "unterminated");
        assert!(
            Oid::decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err(),
            "too big"
        );
        let long = vec![0x2b; MAX_ARCS + 1];
        assert!(Oid::decode(&long).is_err());
    }

    #[test]
    fn malformed_lengths_and_tags_are_errors() {
        // Indefinite length, five length octets, high tag numbers.
        assert_eq!(Message::parse(&[0x30, 0x80, 0, 0]), Err(Error::Length));
        assert_eq!(
            Message::parse(&[0x30, 0x85, 0, 0, 0, 0, 1]),
            Err(Error::Length)
        );
        assert_eq!(Message::parse(&[0x3f, 0x01, 0]), Err(Error::Tag(0x3f)));
        // A length beyond the datagram.
        assert_eq!(
            Message::parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Truncated)
        );
        // Bytes after the message.
        let mut b = bytes(GET_SYS_NAME.0);
        b.push(0);
        assert_eq!(Message::parse(&b), Err(Error::Trailing));
        // Version 2 (v2u/v2*) and the v1 Trap are not parsed.
        let mut v = bytes(GET_SYS_NAME.0);
        v[4] = 2;
        assert_eq!(Message::parse(&v), Err(Error::Version(2)));
        let mut t = bytes(GET_SYS_NAME.0);
        t[13] = 0xa4;
        assert_eq!(Message::parse(&t), Err(Error::Pdu(0xa4)));
    }

    #[test]
    fn every_truncation_of_a_capture_is_an_error() {
        for (q, r) in all_captures() {
            for hex in [q, r] {
                let b = bytes(hex);
                for n in 0..b.len() {
                    assert!(Message::parse(&b[..n]).is_err(), "{hex} cut at {n}");
                }
            }
        }
    }

    /// A small deterministic generator (xorshift64*), so the test needs no crate.
    pub(crate) struct Noise(u64);

    impl Noise {
        pub(crate) fn new(seed: u64) -> Noise {
            Noise(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn garbage_and_mutated_captures_never_panic() {
        let mut rng = Noise::new(0x5eed);
        for _ in 0..20_000 {
            let len = rng.below(300);
            let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = Message::parse(&b);
        }
        let captures: Vec<Vec<u8>> = all_captures()
            .into_iter()
            .flat_map(|(a, b)| [bytes(a), bytes(b)])
            .collect();
        for _ in 0..20_000 {
            let mut b = captures[rng.below(captures.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            if let Ok(m) = Message::parse(&b) {
                // Whatever parses emits something that parses to the same.
                assert_eq!(Message::parse(&m.emit()).as_ref(), Ok(&m));
            }
        }
    }
}
