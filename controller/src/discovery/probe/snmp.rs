//! SNMP over UDP: the MIB-2 system group, and the agent's v3 engine.
//!
//! One v2c GET of sysDescr, sysObjectID, sysUpTime, sysContact, sysName and
//! sysLocation (community "public"), then a second GET of net-snmp's versionTag
//! (kept apart so an agent that rejects unknown OIDs still answers the first),
//! then a v3 engine discovery (RFC 3414 4.). Messages are encoded and decoded
//! by the twin's SNMP codec (`gemelo_hypervisor::decoy::emulate::snmp::wire`),
//! the one the decoy agent answers with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use gemelo_hypervisor::decoy::emulate::snmp::wire::{
    self, CommunityMessage, Message, Oid, Pdu, PduType, ScopedPdu, Usm, V3Message, VarBind, Version,
};
use serde_json::json;
use tokio::net::UdpSocket;

use super::{conn, hex, ProbeConfig, ServiceInfo};

pub(super) use wire::Value;

pub(super) const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
pub(super) const SYS_OBJECT_ID: &str = "1.3.6.1.2.1.1.2.0";
pub(super) const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
pub(super) const SYS_CONTACT: &str = "1.3.6.1.2.1.1.4.0";
pub(super) const SYS_NAME: &str = "1.3.6.1.2.1.1.5.0";
pub(super) const SYS_LOCATION: &str = "1.3.6.1.2.1.1.6.0";
/// UCD-SNMP-MIB::versionTag.0, net-snmp's own version.
pub(super) const NET_SNMP_VERSION: &str = "1.3.6.1.4.1.2021.100.2.0";
/// The largest UDP payload, as msgMaxSize.
const MAX_SIZE: i64 = 65507;

/// A varbind value as the inventory records it.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Integer(i) => json!(i),
        Value::OctetString(b) => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({"hex": hex(b)}),
        },
        Value::Null => serde_json::Value::Null,
        Value::ObjectId(o) => json!(o.to_string()),
        Value::IpAddress(a) => json!(Ipv4Addr::from(*a).to_string()),
        Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => json!(v),
        Value::Counter64(v) => json!(v),
        Value::Opaque(b) => json!({"opaque": hex(b)}),
        Value::NoSuchObject => json!({"exception": "noSuchObject"}),
        Value::NoSuchInstance => json!({"exception": "noSuchInstance"}),
        Value::EndOfMibView => json!({"exception": "endOfMibView"}),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::OctetString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::ObjectId(o) => Some(o.to_string()),
        _ => None,
    }
}

fn get_pdu(request_id: i32, oids: &[&str]) -> Pdu {
    Pdu {
        kind: PduType::Get,
        request_id: i64::from(request_id),
        error_status: 0,
        error_index: 0,
        varbinds: oids
            .iter()
            .filter_map(|o| Oid::parse(o))
            .map(|oid| VarBind {
                oid,
                value: Value::Null,
            })
            .collect(),
    }
}

/// A v2c GetRequest for `oids` (with NULL values).
pub(super) fn get_request(community: &str, request_id: i32, oids: &[&str]) -> Vec<u8> {
    Message::Community(CommunityMessage {
        version: Version::V2c,
        community: community.as_bytes().to_vec(),
        pdu: get_pdu(request_id, oids),
    })
    .emit()
}

/// An SNMPv3 engine discovery (RFC 3414 4.): noAuthNoPriv, reportable, an
/// empty engine ID and user, an empty GetRequest. The agent answers with a
/// Report carrying its authoritative engine ID, boots and time.
pub(super) fn discovery_request(msg_id: i32, request_id: i32) -> Vec<u8> {
    Message::V3(V3Message {
        msg_id: i64::from(msg_id),
        max_size: MAX_SIZE,
        flags: wire::FLAG_REPORTABLE,
        usm: Usm::default(),
        scoped: ScopedPdu::Plain {
            context_engine_id: Vec::new(),
            context_name: Vec::new(),
            pdu: get_pdu(request_id, &[]),
        },
    })
    .emit()
}

/// A decoded GetResponse.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    pub version: Version,
    pub community: Vec<u8>,
    pub request_id: i64,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<(String, Value)>,
}

pub(super) fn parse_response(bytes: &[u8]) -> Result<Response, &'static str> {
    let Ok(Message::Community(m)) = Message::parse(bytes) else {
        return Err("SNMP: not a v1/v2c message");
    };
    if m.pdu.kind != PduType::Response {
        return Err("SNMP: not a GetResponse");
    }
    Ok(Response {
        version: m.version,
        community: m.community,
        request_id: m.pdu.request_id,
        error_status: m.pdu.error_status,
        error_index: m.pdu.error_index,
        varbinds: m
            .pdu
            .varbinds
            .into_iter()
            .map(|vb| (vb.oid.to_string(), vb.value))
            .collect(),
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
    let Ok(Message::V3(m)) = Message::parse(bytes) else {
        return Err("SNMP: not a v3 message");
    };
    if m.msg_id != i64::from(msg_id) {
        return Err("SNMP: another message's answer");
    }
    let ScopedPdu::Plain { pdu, .. } = &m.scoped else {
        return Err("SNMP: v3 answer is encrypted");
    };
    if !matches!(pdu.kind, PduType::Report | PduType::Response) {
        return Err("SNMP: v3 answer is not a Report");
    }
    if m.usm.engine_id.is_empty() || m.usm.engine_id.len() > 32 {
        return Err("SNMP: engine ID is not 1-32 bytes");
    }
    Ok(Engine {
        id: m.usm.engine_id,
        boots: m.usm.engine_boots,
        time: m.usm.engine_time,
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
    let text = |oid: &str| get(system, oid).and_then(|v| value_text(&v));
    let object_id = text(SYS_OBJECT_ID);
    info.product = object_id
        .as_deref()
        .and_then(enterprise_product)
        .map(str::to_string);
    if info.product.as_deref() == Some("net-snmp") {
        info.version = version
            .and_then(|r| get(r, NET_SNMP_VERSION))
            .and_then(|v| value_text(&v));
    }
    info.banner = text(SYS_DESCR);
    let all: serde_json::Map<_, _> = system
        .varbinds
        .iter()
        .chain(version.map(|r| r.varbinds.iter()).into_iter().flatten())
        .map(|(o, v)| (o.clone(), to_json(v)))
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
            ("1.3.6.1.2.1.1.9.9.0".to_string(), Value::NoSuchObject)
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
    fn enterprises() {
        assert_eq!(enterprise_product("1.3.6.1.4.1.9.1.516"), Some("Cisco"));
        assert_eq!(
            enterprise_product("1.3.6.1.4.1.8072.3.2.10"),
            Some("net-snmp")
        );
        assert_eq!(enterprise_product("1.3.6.1.2.1"), None);
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
            // Inside a SEQUENCE, as a message starts (long length form).
            let mut framed = vec![0x30, 0x82];
            framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            framed.extend_from_slice(&bytes);
            let _ = parse_response(&framed);
            let _ = parse_engine(&framed, 1);
        }
    }
}
