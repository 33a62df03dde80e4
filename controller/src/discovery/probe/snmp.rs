//! SNMP v2c over UDP: the MIB-2 system group, with a minimal BER codec.
//!
//! One GET of sysDescr, sysObjectID, sysUpTime, sysContact, sysName and
//! sysLocation (community "public"), then a second GET of net-snmp's versionTag
//! (kept apart so an agent that rejects unknown OIDs still answers the first).
//! The codec covers what these messages use: INTEGER, OCTET STRING, NULL,
//! OBJECT IDENTIFIER, SEQUENCE, the application types (IpAddress, Counter32,
//! Gauge32, TimeTicks, Counter64) and the v2 exceptions (noSuchObject...).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use tokio::net::UdpSocket;

use super::{conn, hex, ProbeConfig, ServiceInfo};

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const IP_ADDRESS: u8 = 0x40;
const COUNTER32: u8 = 0x41;
const GAUGE32: u8 = 0x42;
const TIMETICKS: u8 = 0x43;
const COUNTER64: u8 = 0x46;
const GET_REQUEST: u8 = 0xA0;
const GET_RESPONSE: u8 = 0xA2;
const REPORT: u8 = 0xA8;

pub(super) const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
pub(super) const SYS_OBJECT_ID: &str = "1.3.6.1.2.1.1.2.0";
pub(super) const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
pub(super) const SYS_CONTACT: &str = "1.3.6.1.2.1.1.4.0";
pub(super) const SYS_NAME: &str = "1.3.6.1.2.1.1.5.0";
pub(super) const SYS_LOCATION: &str = "1.3.6.1.2.1.1.6.0";
/// UCD-SNMP-MIB::versionTag.0, net-snmp's own version.
pub(super) const NET_SNMP_VERSION: &str = "1.3.6.1.4.1.2021.100.2.0";

/// A decoded varbind value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    Oid(String),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    /// noSuchObject (0x80), noSuchInstance (0x81), endOfMibView (0x82), or a
    /// type we do not decode: (tag, raw bytes).
    Other(u8, Vec<u8>),
}

impl Value {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Integer(i) => json!(i),
            Value::OctetString(b) => match std::str::from_utf8(b) {
                Ok(s) => json!(s),
                Err(_) => json!({"hex": hex(b)}),
            },
            Value::Null => serde_json::Value::Null,
            Value::Oid(o) => json!(o),
            Value::IpAddress(a) => json!(Ipv4Addr::from(*a).to_string()),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => json!(v),
            Value::Counter64(v) => json!(v),
            Value::Other(tag, raw) => json!({"tag": tag, "hex": hex(raw)}),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Value::OctetString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Oid(o) => Some(o.clone()),
            _ => None,
        }
    }
}

// ---- encoding ----

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

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

fn integer(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    // Minimal two's complement: drop redundant leading 0x00 / 0xff bytes.
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(INTEGER, &bytes[start..])
}

/// BER of a dotted OID; None if it is not one.
pub(super) fn encode_oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 {
        return None;
    }
    let mut body = Vec::new();
    for arc in std::iter::once(arcs[0] * 40 + arcs[1]).chain(arcs[2..].iter().copied()) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        chunk.reverse();
        body.extend_from_slice(&chunk);
    }
    Some(tlv(OID, &body))
}

/// A v2c GetRequest for `oids` (with NULL values).
pub(super) fn get_request(community: &str, request_id: i32, oids: &[&str]) -> Vec<u8> {
    let mut varbinds = Vec::new();
    for oid in oids {
        let mut vb = encode_oid(oid).unwrap_or_default();
        vb.extend_from_slice(&[NULL, 0]);
        varbinds.extend(tlv(SEQUENCE, &vb));
    }
    let mut pdu = integer(request_id as i64);
    pdu.extend(integer(0));
    pdu.extend(integer(0));
    pdu.extend(tlv(SEQUENCE, &varbinds));
    let mut msg = integer(1); // version: 1 = v2c
    msg.extend(tlv(OCTET_STRING, community.as_bytes()));
    msg.extend(tlv(GET_REQUEST, &pdu));
    tlv(SEQUENCE, &msg)
}

/// An SNMPv3 engine discovery (RFC 3414 4.): noAuthNoPriv, reportable, an
/// empty engine ID and user, an empty GetRequest. The agent answers with a
/// Report carrying its authoritative engine ID, boots and time.
pub(super) fn discovery_request(msg_id: i32, request_id: i32) -> Vec<u8> {
    let mut header = integer(msg_id as i64);
    header.extend(integer(65507)); // msgMaxSize: the largest UDP payload
    header.extend(tlv(OCTET_STRING, &[0x04])); // msgFlags: reportable
    header.extend(integer(3)); // msgSecurityModel: USM
    let mut usm = tlv(OCTET_STRING, &[]); // msgAuthoritativeEngineID
    usm.extend(integer(0)); // boots
    usm.extend(integer(0)); // time
    for _ in 0..3 {
        usm.extend(tlv(OCTET_STRING, &[])); // user, auth and priv parameters
    }
    let mut pdu = integer(request_id as i64);
    pdu.extend(integer(0));
    pdu.extend(integer(0));
    pdu.extend(tlv(SEQUENCE, &[]));
    let mut scoped = tlv(OCTET_STRING, &[]); // contextEngineID
    scoped.extend(tlv(OCTET_STRING, &[])); // contextName
    scoped.extend(tlv(GET_REQUEST, &pdu));
    let mut msg = integer(3);
    msg.extend(tlv(SEQUENCE, &header));
    msg.extend(tlv(OCTET_STRING, &tlv(SEQUENCE, &usm)));
    msg.extend(tlv(SEQUENCE, &scoped));
    tlv(SEQUENCE, &msg)
}

// ---- decoding ----

/// One TLV at the start of `bytes`: (tag, value, rest).
pub(super) fn read_tlv(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let tag = *bytes.first().ok_or("BER: empty")?;
    let first = *bytes.get(1).ok_or("BER: no length")?;
    let (len, at) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("BER: unsupported length form");
        }
        let raw = bytes.get(2..2 + n).ok_or("BER: truncated length")?;
        (
            raw.iter().fold(0usize, |acc, &b| acc << 8 | b as usize),
            2 + n,
        )
    };
    let end = at.checked_add(len).ok_or("BER: length overflow")?;
    let value = bytes.get(at..end).ok_or("BER: truncated value")?;
    Ok((tag, value, &bytes[end..]))
}

fn expect(bytes: &[u8], want: u8) -> Result<(&[u8], &[u8]), &'static str> {
    let (tag, value, rest) = read_tlv(bytes)?;
    if tag != want {
        return Err("BER: unexpected tag");
    }
    Ok((value, rest))
}

fn decode_int(value: &[u8]) -> Result<i64, &'static str> {
    if value.is_empty() || value.len() > 8 {
        return Err("BER: bad INTEGER length");
    }
    let mut v: i64 = if value[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in value {
        v = v << 8 | b as i64;
    }
    Ok(v)
}

fn decode_unsigned(value: &[u8]) -> Result<u64, &'static str> {
    if value.is_empty() || value.len() > 9 {
        return Err("BER: bad unsigned length");
    }
    Ok(value
        .iter()
        .fold(0u64, |acc, &b| acc.wrapping_shl(8) | b as u64))
}

/// Dotted text of an OID's value bytes.
pub(super) fn decode_oid(value: &[u8]) -> Result<String, &'static str> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in value {
        if acc > u64::MAX >> 7 {
            return Err("BER: OID arc too large");
        }
        acc = acc << 7 | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if arcs.is_empty() {
        return Err("BER: empty OID");
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

fn decode_value(tag: u8, value: &[u8]) -> Result<Value, &'static str> {
    Ok(match tag {
        INTEGER => Value::Integer(decode_int(value)?),
        OCTET_STRING => Value::OctetString(value.to_vec()),
        NULL => Value::Null,
        OID => Value::Oid(decode_oid(value)?),
        IP_ADDRESS => Value::IpAddress(value.try_into().map_err(|_| "BER: bad IpAddress")?),
        COUNTER32 => Value::Counter32(decode_unsigned(value)? as u32),
        GAUGE32 => Value::Gauge32(decode_unsigned(value)? as u32),
        TIMETICKS => Value::TimeTicks(decode_unsigned(value)? as u32),
        COUNTER64 => Value::Counter64(decode_unsigned(value)?),
        other => Value::Other(other, value.to_vec()),
    })
}

/// A decoded GetResponse.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    pub version: i64,
    pub community: Vec<u8>,
    pub request_id: i64,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<(String, Value)>,
}

pub(super) fn parse_response(bytes: &[u8]) -> Result<Response, &'static str> {
    let (msg, _) = expect(bytes, SEQUENCE)?;
    let (version, rest) = expect(msg, INTEGER)?;
    let (community, rest) = expect(rest, OCTET_STRING)?;
    let (pdu, _) = expect(rest, GET_RESPONSE)?;
    let (request_id, rest) = expect(pdu, INTEGER)?;
    let (error_status, rest) = expect(rest, INTEGER)?;
    let (error_index, rest) = expect(rest, INTEGER)?;
    let (mut list, _) = expect(rest, SEQUENCE)?;
    let mut varbinds = Vec::new();
    while !list.is_empty() && varbinds.len() < 64 {
        let (vb, rest) = expect(list, SEQUENCE)?;
        list = rest;
        let (oid, vrest) = expect(vb, OID)?;
        let (tag, value, _) = read_tlv(vrest)?;
        varbinds.push((decode_oid(oid)?, decode_value(tag, value)?));
    }
    Ok(Response {
        version: decode_int(version)?,
        community: community.to_vec(),
        request_id: decode_int(request_id)?,
        error_status: decode_int(error_status)?,
        error_index: decode_int(error_index)?,
        varbinds,
    })
}

/// An agent's SNMPv3 engine, as its discovery Report gives it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Engine {
    pub id: Vec<u8>,
    pub boots: i64,
    pub time: i64,
}

/// The engine of a v3 answer to `discovery_request(msg_id, ..)`; the message
/// must be a Report (or Response) with that message id.
pub(super) fn parse_engine(bytes: &[u8], msg_id: i32) -> Result<Engine, &'static str> {
    let (msg, _) = expect(bytes, SEQUENCE)?;
    let (version, rest) = expect(msg, INTEGER)?;
    if decode_int(version)? != 3 {
        return Err("SNMP: not a v3 message");
    }
    let (header, rest) = expect(rest, SEQUENCE)?;
    let (id, _) = expect(header, INTEGER)?;
    if decode_int(id)? != msg_id as i64 {
        return Err("SNMP: another message's answer");
    }
    let (params, rest) = expect(rest, OCTET_STRING)?;
    let (usm, _) = expect(params, SEQUENCE)?;
    let (engine_id, usm) = expect(usm, OCTET_STRING)?;
    let (boots, usm) = expect(usm, INTEGER)?;
    let (time, _) = expect(usm, INTEGER)?;
    // The scoped PDU is plaintext at noAuthNoPriv: a Report (or a Response).
    let (scoped, _) = expect(rest, SEQUENCE)?;
    let (_, scoped) = expect(scoped, OCTET_STRING)?;
    let (_, scoped) = expect(scoped, OCTET_STRING)?;
    let (tag, _, _) = read_tlv(scoped)?;
    if tag != REPORT && tag != GET_RESPONSE {
        return Err("SNMP: v3 answer is not a Report");
    }
    if engine_id.is_empty() || engine_id.len() > 32 {
        return Err("SNMP: engine ID is not 1-32 bytes");
    }
    Ok(Engine {
        id: engine_id.to_vec(),
        boots: decode_int(boots)?,
        time: decode_int(time)?,
    })
}

/// Agent product from sysObjectID's enterprise number (IANA registry, the
/// vendors met in data centers and plants).
pub(super) fn enterprise_product(sys_object_id: &str) -> Option<&'static str> {
    let rest = sys_object_id.strip_prefix("1.3.6.1.4.1.")?;
    let number: u32 = rest.split('.').next()?.parse().ok()?;
    Some(match number {
        8072 => "net-snmp",
        9 => "Cisco",
        311 => "Microsoft",
        2636 => "Juniper",
        11 => "HP",
        674 => "Dell",
        4329 => "Siemens",
        14988 => "MikroTik",
        41112 => "Ubiquiti",
        2011 => "Huawei",
        12356 => "Fortinet",
        6876 => "VMware",
        1916 => "Extreme Networks",
        25506 => "H3C",
        _ => return None,
    })
}

/// `ServiceInfo` from the system-group answer and the optional version answer.
pub(super) fn service_from(
    community: &str,
    system: &Response,
    version: Option<&Response>,
    engine: Option<&Engine>,
) -> ServiceInfo {
    let mut info = ServiceInfo::new(161, "udp", "snmp");
    let get = |r: &Response, oid: &str| {
        r.varbinds
            .iter()
            .find(|(o, _)| o == oid)
            .map(|(_, v)| v.clone())
    };
    let text = |oid: &str| get(system, oid).and_then(|v| v.text());
    let object_id = text(SYS_OBJECT_ID);
    info.product = object_id
        .as_deref()
        .and_then(enterprise_product)
        .map(str::to_string);
    if info.product.as_deref() == Some("net-snmp") {
        info.version = version
            .and_then(|r| get(r, NET_SNMP_VERSION))
            .and_then(|v| v.text());
    }
    info.banner = text(SYS_DESCR);
    let all: serde_json::Map<_, _> = system
        .varbinds
        .iter()
        .chain(version.map(|r| r.varbinds.iter()).into_iter().flatten())
        .map(|(o, v)| (o.clone(), v.to_json()))
        .collect();
    let uptime = match get(system, SYS_UPTIME) {
        Some(Value::TimeTicks(t)) => Some(t),
        _ => None,
    };
    info.details = json!({
        "community": community,
        "version": "2c",
        "sys_descr": text(SYS_DESCR),
        "sys_object_id": object_id,
        "sys_uptime_ticks": uptime,
        "sys_contact": text(SYS_CONTACT),
        "sys_name": text(SYS_NAME),
        "sys_location": text(SYS_LOCATION),
        "error_status": system.error_status,
        "varbinds": all,
        "engine_id": engine.map(|e| hex(&e.id)),
        "engine_boots": engine.map(|e| e.boots),
        "engine_time": engine.map(|e| e.time),
    });
    info
}

/// A request id that differs per call (a clock and a counter: no rand crate needed).
fn next_request_id() -> i32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    ((nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9))
        & 0x7fff_ffff) as i32
}

/// One request with one retry: `request(id)` is sent, and the first datagram
/// from the agent that `answer(bytes, id)` accepts is the result.
async fn exchange<T>(
    socket: &UdpSocket,
    agent: SocketAddr,
    cfg: &ProbeConfig,
    request: impl Fn(i32) -> Vec<u8>,
    answer: impl Fn(&[u8], i32) -> Option<T>,
) -> Option<T> {
    let wait = (cfg.read_timeout / 2).max(Duration::from_millis(300));
    for _attempt in 0..2 {
        let id = next_request_id();
        conn::rate_limit(cfg).await;
        socket.send_to(&request(id), agent).await.ok()?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            if from != agent {
                continue;
            }
            if let Some(t) = answer(&buf[..n], id) {
                return Some(t);
            }
        }
    }
    None
}

/// One GET; the matching response or None.
async fn get(
    socket: &UdpSocket,
    agent: SocketAddr,
    community: &str,
    oids: &[&str],
    cfg: &ProbeConfig,
) -> Option<Response> {
    exchange(
        socket,
        agent,
        cfg,
        |id| get_request(community, id, oids),
        |bytes, id| {
            parse_response(bytes)
                .ok()
                .filter(|r| r.request_id == id as i64)
        },
    )
    .await
}

/// The agent's v3 engine (ID, boots, time); None from a v1/v2c-only agent.
async fn engine(socket: &UdpSocket, agent: SocketAddr, cfg: &ProbeConfig) -> Option<Engine> {
    exchange(
        socket,
        agent,
        cfg,
        |msg_id| discovery_request(msg_id, next_request_id()),
        |bytes, msg_id| parse_engine(bytes, msg_id).ok(),
    )
    .await
}

/// The system group (and net-snmp's version, and v3 engine) of the agent at `agent`.
pub(super) async fn probe(
    agent: SocketAddr,
    community: &str,
    cfg: &ProbeConfig,
) -> Option<ServiceInfo> {
    let local: SocketAddr = match agent.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    let oids = [
        SYS_DESCR,
        SYS_OBJECT_ID,
        SYS_UPTIME,
        SYS_CONTACT,
        SYS_NAME,
        SYS_LOCATION,
    ];
    let system = get(&socket, agent, community, &oids, cfg).await?;
    let version = get(&socket, agent, community, &[NET_SNMP_VERSION], cfg).await;
    let engine = engine(&socket, agent, cfg).await;
    let mut info = service_from(community, &system, version.as_ref(), engine.as_ref());
    info.port = agent.port();
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// `snmpget -d -v2c -c public` against Debian 12 snmpd 5.9.3: request and answer.
    const REQUEST: &str = "306f02010104067075626c6963a0620204282ba43c0201000201003054300c06082b060102010101000500300c06082b060102010105000500300c06082b060102010102000500300c06082b060102010104000500300c06082b060102010106000500300c06082b060102010103000500";
    const RESPONSE: &str = "3081d402010104067075626c6963a281c60204282ba43c0201000201003081b7304506082b0601020101010004394c696e757820766d20362e31382e34342d66632d7635393520233120534d5020505245454d50545f44594e414d4943204030207838365f3634301506082b060102010105000409706c632d67772d3031301606082b06010201010200060a2b06010401bf0803020a301b06082b06010201010400040f6f7073406578616d706c652e6e6574301206082b06010201010600040648616c6c2033300e06082b0601020101030043020f4a";
    const VERSION_RESPONSE: &str = "303f02010104067075626c6963a23202047892fb4002010002010030243013060a2b060104018f656402000405352e392e33300d06092b06010201010909008000";

    #[test]
    fn request_matches_net_snmp_client() {
        let oids = [
            SYS_DESCR,
            SYS_NAME,
            SYS_OBJECT_ID,
            SYS_CONTACT,
            SYS_LOCATION,
            SYS_UPTIME,
        ];
        assert_eq!(get_request("public", 0x282ba43c, &oids), unhex(REQUEST));
    }

    #[test]
    fn net_snmp_response() {
        let r = parse_response(&unhex(RESPONSE)).unwrap();
        assert_eq!(r.request_id, 0x282ba43c);
        assert_eq!(r.varbinds.len(), 6);
        let v = parse_response(&unhex(VERSION_RESPONSE)).unwrap();
        assert_eq!(
            v.varbinds[1],
            (
                "1.3.6.1.2.1.1.9.9.0".to_string(),
                Value::Other(0x80, vec![])
            )
        );
        let info = service_from("public", &r, Some(&v), None);
        assert_eq!(info.product.as_deref(), Some("net-snmp"));
        assert_eq!(info.version.as_deref(), Some("5.9.3"));
        assert_eq!(
            info.banner.as_deref(),
            Some("Linux vm 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 x86_64")
        );
        assert_eq!(info.details["sys_name"], "plc-gw-01");
        assert_eq!(info.details["sys_object_id"], "1.3.6.1.4.1.8072.3.2.10");
        assert_eq!(info.details["sys_uptime_ticks"], 3914);
        assert_eq!(info.details["sys_location"], "Hall 3");
    }

    /// `snmpget -d -v3 -l noAuthNoPriv -u gemelo` against Debian 12 snmpd 5.9.3
    /// (exactEngineID 0x80001f8880aabbccdd11223344000000, 7th boot): the
    /// discovery and its Report.
    const DISCOVERY: &str = "303e0201033011020404f94157020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e02047ef4cfa50201000201003000";
    const REPORT_ANSWER: &str = "306f0201033011020404f94157020300ffe30401000201030420301e041080001f8880aabbccdd112233440000000201070201010400040004003035041080001f8880aabbccdd112233440000000400a81f02047ef4cfa50201000201003011300f060a2b060106030f01010400410101";

    #[test]
    fn engine_discovery_matches_net_snmp() {
        assert_eq!(discovery_request(0x04f94157, 0x7ef4cfa5), unhex(DISCOVERY));
        let e = parse_engine(&unhex(REPORT_ANSWER), 0x04f94157).unwrap();
        assert_eq!(hex(&e.id), "80001f8880aabbccdd11223344000000");
        assert_eq!((e.boots, e.time), (7, 1));
        assert!(parse_engine(&unhex(REPORT_ANSWER), 0x04f94158).is_err());
        // A v2c answer is no engine.
        assert!(parse_engine(&unhex(RESPONSE), 0x282ba43c).is_err());
        let bytes = unhex(REPORT_ANSWER);
        for n in 0..bytes.len() {
            assert!(parse_engine(&bytes[..n], 0x04f94157).is_err());
        }
        let r = parse_response(&unhex(RESPONSE)).unwrap();
        let info = service_from("public", &r, None, Some(&e));
        assert_eq!(
            info.details["engine_id"],
            "80001f8880aabbccdd11223344000000"
        );
        assert_eq!(info.details["engine_boots"], 7);
    }

    #[test]
    fn ber_corner_cases() {
        assert_eq!(integer(0), vec![2, 1, 0]);
        assert_eq!(integer(128), vec![2, 2, 0, 128]);
        assert_eq!(integer(-1), vec![2, 1, 0xff]);
        assert_eq!(decode_int(&[0xff, 0x7f]).unwrap(), -129);
        let long = tlv(OCTET_STRING, &[b'x'; 300]);
        assert_eq!(long[..4], [4, 0x82, 1, 44]);
        assert_eq!(read_tlv(&long).unwrap().1.len(), 300);
        assert_eq!(
            decode_oid(&encode_oid("1.3.6.1.4.1.2021.100.2.0").unwrap()[2..]).unwrap(),
            "1.3.6.1.4.1.2021.100.2.0"
        );
        assert_eq!(enterprise_product("1.3.6.1.4.1.9.1.516"), Some("Cisco"));
    }

    #[test]
    fn truncated_capture_never_panics() {
        let bytes = unhex(RESPONSE);
        for n in 0..bytes.len() {
            assert!(parse_response(&bytes[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_response(&bytes);
            let _ = parse_engine(&bytes, 1);
            let _ = decode_oid(&bytes);
            let _ = read_tlv(&bytes);
            let mut framed = vec![SEQUENCE];
            push_len(&mut framed, bytes.len());
            framed.extend_from_slice(&bytes);
            let _ = parse_response(&framed);
        }
    }
}
