//! An SNMP agent over UDP from what discovery captured, answering as
//! net-snmp's snmpd with a read-only community does.
//!
//! Its MIB is the MIB-2 system group under the keys the probe writes and
//! `daemon::snmp` configures snmpd with (`sys_descr`, `sys_object_id`,
//! `sys_uptime_ticks`, `sys_contact`, `sys_name`, `sys_location`; sysName
//! falls back to the host name, as snmpd's does), plus any other object the
//! probe captured as text (`varbinds`, e.g. net-snmp's versionTag). sysUpTime
//! advances from the captured value while the decoy runs.
//!
//! - v1 / v2c GET, GETNEXT, GETBULK with the captured `community` (default
//!   `public`): values, or v2c's noSuchObject / noSuchInstance /
//!   endOfMibView, or v1's noSuchName, byte for byte as snmpd 5.9 sends them
//!   (the tests replay its captures). Any other community gets no answer.
//! - SET: noAccess (v2c) or noSuchName (v1) on the first binding; nothing
//!   changes.
//! - v3: a request without this engine's ID (discovery) gets a Report of
//!   usmStatsUnknownEngineIDs with msgAuthoritativeEngineID/Boots/Time
//!   (`engine_id` as captured, hex; else a stable net-snmp-style ID from the
//!   host name); any user then gets usmStatsUnknownUserNames: the twin
//!   knows no production credentials.
//!
//! Every datagram is an event: `read` (get, getnext, getbulk) or `write`
//! (set) with the version, community or user and the OIDs asked; `data` for
//! what is not SNMP. Parsing (`wire`) never panics on what a client sends.

pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokio::net::UdpSocket;

use crate::decoy::events::bytes_json;
use crate::decoy::{s, unhex, EventSink};
use wire::{
    CommunityMessage, Message, Oid, Pdu, PduType, ScopedPdu, Usm, V3Message, Value, VarBind,
    Version, FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE, MAX_MESSAGE,
};

/// error-status values (RFC 3416 §3).
const TOO_BIG: i64 = 1;
const NO_SUCH_NAME: i64 = 2;
const NO_ACCESS: i64 = 6;
/// Repetitions of one GetBulk served at most, and bindings in its answer.
const MAX_REPETITIONS: i64 = 100;
const MAX_BULK_BINDINGS: usize = 1000;
/// OIDs an event lists (a request may carry thousands).
const EVENT_OIDS: usize = 64;
/// usmStatsUnknownUserNames.0 and usmStatsUnknownEngineIDs.0 (RFC 3414 §5).
const UNKNOWN_USER_NAMES: [u32; 10] = [1, 3, 6, 1, 6, 3, 15, 1, 1, 3];
const UNKNOWN_ENGINE_IDS: [u32; 10] = [1, 3, 6, 1, 6, 3, 15, 1, 1, 4];
/// The system group, 1.3.6.1.2.1.1.
const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
/// net-snmp's engine ID prefix: enterprise 8072 with the high bit, then
/// format 128 (net-snmp's own, random octets).
const NET_SNMP_ENGINE_PREFIX: [u8; 5] = [0x80, 0x00, 0x1f, 0x88, 0x80];

#[derive(Debug)]
enum Object {
    Fixed(Value),
    /// sysUpTime: the captured ticks plus the decoy's own running time.
    Uptime,
}

/// The emulated agent: its MIB, community, engine, and the counters its
/// reports carry.
#[derive(Debug)]
pub struct Agent {
    community: Vec<u8>,
    objects: BTreeMap<Oid, Object>,
    uptime_ticks: u32,
    pub engine_id: Vec<u8>,
    engine_boots: i64,
    started: Instant,
    unknown_engine_ids: AtomicU32,
    unknown_user_names: AtomicU32,
}

/// What one datagram gets: the reply (if any) and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub reply: Option<Vec<u8>>,
    pub action: &'static str,
    pub data: Json,
}

fn system(arc: u32) -> Oid {
    let mut arcs = SYSTEM.to_vec();
    arcs.extend([arc, 0]);
    Oid::new(arcs).expect("a system group OID")
}

fn oid_of(arcs: &[u32]) -> Oid {
    Oid::new(arcs.to_vec()).expect("a constant OID")
}

/// A stable engine ID in net-snmp's format for a host without a captured one.
pub fn engine_id_for(hostname: &str) -> Vec<u8> {
    let h = hostname.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut id = NET_SNMP_ENGINE_PREFIX.to_vec();
    id.extend_from_slice(&h.to_be_bytes());
    id.extend_from_slice(&[0; 4]);
    id
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A binding's value as event data.
fn value_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => json!(i),
        Value::OctetString(b) | Value::Opaque(b) => match std::str::from_utf8(b) {
            Ok(t) => json!(t),
            Err(_) => json!({"hex": hex(b)}),
        },
        Value::Null => Json::Null,
        Value::ObjectId(o) => json!(o.to_string()),
        Value::IpAddress(a) => json!(std::net::Ipv4Addr::from(*a).to_string()),
        Value::Counter32(n) | Value::Gauge32(n) | Value::TimeTicks(n) => json!(n),
        Value::Counter64(n) => json!(n),
        Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => Json::Null,
    }
}

/// The event data every request shares.
fn request_data(pdu: &Pdu) -> Json {
    let mut data = json!({
        "pdu": pdu.kind.name(),
        "request_id": pdu.request_id,
        "oids": pdu.varbinds.iter().take(EVENT_OIDS).map(|v| v.oid.to_string()).collect::<Vec<_>>(),
    });
    if pdu.varbinds.len() > EVENT_OIDS {
        data["oids_total"] = json!(pdu.varbinds.len());
    }
    match pdu.kind {
        PduType::GetBulk => {
            data["non_repeaters"] = json!(pdu.error_status);
            data["max_repetitions"] = json!(pdu.error_index);
        }
        PduType::Set => {
            data["values"] = pdu
                .varbinds
                .iter()
                .take(EVENT_OIDS)
                .map(|v| value_json(&v.value))
                .collect();
        }
        _ => {}
    }
    data
}

fn action_of(kind: Option<PduType>) -> &'static str {
    match kind {
        Some(PduType::Set) => "write",
        Some(PduType::Get | PduType::GetNext | PduType::GetBulk) | None => "read",
        Some(_) => "data",
    }
}

/// A Response carrying an error on the request's own bindings.
fn error_response(request: &Pdu, status: i64, index: usize) -> Pdu {
    Pdu {
        kind: PduType::Response,
        request_id: request.request_id,
        error_status: status,
        error_index: index as i64,
        varbinds: request.varbinds.clone(),
    }
}

impl Agent {
    /// From an SNMP service's `details`; `hostname` stands in for a
    /// missing sysName and names the generated engine ID.
    pub fn from_details(d: &Json, hostname: &str) -> Agent {
        let mut objects = BTreeMap::new();
        for (arc, key) in [
            (1, "sys_descr"),
            (4, "sys_contact"),
            (5, "sys_name"),
            (6, "sys_location"),
        ] {
            if let Some(t) = s(d, key) {
                objects.insert(system(arc), Object::Fixed(Value::OctetString(t.into())));
            }
        }
        if let Some(o) = s(d, "sys_object_id").and_then(Oid::parse) {
            objects.insert(system(2), Object::Fixed(Value::ObjectId(o)));
        }
        objects.insert(system(3), Object::Uptime);
        objects
            .entry(system(5))
            .or_insert_with(|| Object::Fixed(Value::OctetString(hostname.into())));
        // Other captured objects with text values (typed ones are above).
        let system_group = oid_of(&SYSTEM);
        for (key, v) in d
            .get("varbinds")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            let Some(oid) = Oid::parse(key).filter(|o| !o.starts_with(&system_group)) else {
                continue;
            };
            let bytes = match v {
                Json::String(t) => Some(t.as_bytes().to_vec()),
                Json::Object(o) if o.len() == 1 => {
                    o.get("hex").and_then(Json::as_str).and_then(unhex)
                }
                _ => None,
            };
            if let Some(b) = bytes {
                objects.insert(oid, Object::Fixed(Value::OctetString(b)));
            }
        }
        let community = s(d, "community")
            .filter(|c| !c.is_empty())
            .unwrap_or("public");
        let engine_id = s(d, "engine_id")
            .map(|h| h.trim_start_matches("0x").to_ascii_lowercase())
            .and_then(|h| unhex(&h))
            .filter(|id| (5..=32).contains(&id.len()))
            .unwrap_or_else(|| engine_id_for(hostname));
        Agent {
            community: community.as_bytes().to_vec(),
            objects,
            uptime_ticks: d
                .get("sys_uptime_ticks")
                .and_then(Json::as_u64)
                .map(|t| t as u32)
                .unwrap_or(0),
            engine_id,
            engine_boots: d
                .get("engine_boots")
                .and_then(Json::as_i64)
                .filter(|b| (1..=i64::from(i32::MAX)).contains(b))
                .unwrap_or(1),
            started: Instant::now(),
            unknown_engine_ids: AtomicU32::new(0),
            unknown_user_names: AtomicU32::new(0),
        }
    }

    /// sysUpTime after the decoy ran `up`.
    fn uptime(&self, up: Duration) -> u32 {
        self.uptime_ticks.wrapping_add((up.as_millis() / 10) as u32)
    }

    /// snmpEngineTime: net-snmp's engine starts with its agent.
    fn engine_time(&self, up: Duration) -> i64 {
        i64::from(self.uptime(up) / 100)
    }

    fn value(&self, o: &Object, up: Duration) -> Value {
        match o {
            Object::Fixed(v) => v.clone(),
            Object::Uptime => Value::TimeTicks(self.uptime(up)),
        }
    }

    fn get(&self, oid: &Oid, up: Duration) -> Option<Value> {
        self.objects.get(oid).map(|o| self.value(o, up))
    }

    /// The first object after `oid`.
    fn next(&self, oid: &Oid, up: Duration) -> Option<VarBind> {
        self.objects
            .range((Bound::Excluded(oid.clone()), Bound::Unbounded))
            .next()
            .map(|(k, o)| VarBind {
                oid: k.clone(),
                value: self.value(o, up),
            })
    }

    /// v2c's exception for a missing object: an instance of an object we
    /// have, or nothing we know.
    fn missing(&self, oid: &Oid) -> Value {
        let known_object = self
            .objects
            .keys()
            .filter_map(Oid::parent)
            .any(|object| oid.starts_with(&object));
        if known_object {
            Value::NoSuchInstance
        } else {
            Value::NoSuchObject
        }
    }

    fn respond(request: &Pdu, varbinds: Vec<VarBind>) -> Pdu {
        Pdu {
            kind: PduType::Response,
            request_id: request.request_id,
            error_status: 0,
            error_index: 0,
            varbinds,
        }
    }

    fn answer_get(&self, version: Version, pdu: &Pdu, up: Duration) -> Pdu {
        let mut out = Vec::with_capacity(pdu.varbinds.len());
        for (i, vb) in pdu.varbinds.iter().enumerate() {
            let value = match (self.get(&vb.oid, up), version) {
                (Some(v), _) => v,
                (None, Version::V1) => return error_response(pdu, NO_SUCH_NAME, i + 1),
                (None, Version::V2c) => self.missing(&vb.oid),
            };
            out.push(VarBind {
                oid: vb.oid.clone(),
                value,
            });
        }
        Agent::respond(pdu, out)
    }

    fn next_or_end(&self, oid: &Oid, up: Duration) -> VarBind {
        self.next(oid, up).unwrap_or_else(|| VarBind {
            oid: oid.clone(),
            value: Value::EndOfMibView,
        })
    }

    fn answer_get_next(&self, version: Version, pdu: &Pdu, up: Duration) -> Pdu {
        let mut out = Vec::with_capacity(pdu.varbinds.len());
        for (i, vb) in pdu.varbinds.iter().enumerate() {
            match (self.next(&vb.oid, up), version) {
                (Some(next), _) => out.push(next),
                (None, Version::V1) => return error_response(pdu, NO_SUCH_NAME, i + 1),
                (None, Version::V2c) => out.push(self.next_or_end(&vb.oid, up)),
            }
        }
        Agent::respond(pdu, out)
    }

    /// RFC 3416 §4.2.3; like snmpd, the repetitions stop after the first
    /// row in which a binding reached the end of the MIB.
    fn answer_get_bulk(&self, pdu: &Pdu, up: Duration) -> Pdu {
        let n = pdu.error_status.clamp(0, pdu.varbinds.len() as i64) as usize;
        let m = pdu.error_index.clamp(0, MAX_REPETITIONS);
        let (single, repeated) = pdu.varbinds.split_at(n);
        let mut out: Vec<VarBind> = single
            .iter()
            .map(|vb| self.next_or_end(&vb.oid, up))
            .collect();
        let mut cursors: Vec<Oid> = repeated.iter().map(|vb| vb.oid.clone()).collect();
        if !cursors.is_empty() {
            for _ in 0..m {
                let mut ended = false;
                for c in cursors.iter_mut() {
                    let next = self.next_or_end(c, up);
                    ended |= next.value == Value::EndOfMibView;
                    *c = next.oid.clone();
                    out.push(next);
                }
                if ended || out.len() >= MAX_BULK_BINDINGS {
                    break;
                }
            }
        }
        Agent::respond(pdu, out)
    }

    /// Answers one datagram (the decoy has run `up`).
    pub fn answer(&self, request: &[u8], up: Duration) -> Answer {
        match Message::parse(request) {
            Err(e) => Answer {
                reply: None,
                action: "data",
                data: json!({"error": format!("not SNMP: {e}"), "bytes": bytes_json(&request[..request.len().min(256)])}),
            },
            Ok(Message::Community(m)) => self.answer_community(m, up),
            Ok(Message::V3(m)) => self.answer_v3(m, up),
        }
    }

    fn answer_community(&self, m: CommunityMessage, up: Duration) -> Answer {
        let mut data = request_data(&m.pdu);
        data["version"] = json!(m.version.name());
        data["community"] = json!(text(&m.community));
        let action = action_of(Some(m.pdu.kind));
        let refuse = |mut data: Json, why: &str| {
            data["error"] = json!(why);
            Answer {
                reply: None,
                action,
                data,
            }
        };
        if m.community != self.community {
            // snmpd drops it (snmpInBadCommunityNames); a guess is worth recording.
            return refuse(data, "unknown community");
        }
        let pdu = match (m.pdu.kind, m.version) {
            (PduType::Get, v) => self.answer_get(v, &m.pdu, up),
            (PduType::GetNext, v) => self.answer_get_next(v, &m.pdu, up),
            (PduType::GetBulk, Version::V2c) => self.answer_get_bulk(&m.pdu, up),
            (PduType::Set, Version::V1) => {
                error_response(&m.pdu, NO_SUCH_NAME, 1.min(m.pdu.varbinds.len()))
            }
            (PduType::Set, Version::V2c) => {
                error_response(&m.pdu, NO_ACCESS, 1.min(m.pdu.varbinds.len()))
            }
            _ => return refuse(data, "not a request an agent answers"),
        };
        let mut reply = CommunityMessage {
            version: m.version,
            community: m.community,
            pdu,
        };
        let mut bytes = Message::Community(reply.clone()).emit();
        while bytes.len() > MAX_MESSAGE {
            if m.pdu.kind == PduType::GetBulk && reply.pdu.varbinds.len() > 1 {
                // A GetBulk answer may lose bindings at its end (RFC 3416 §4.2.3).
                let keep = reply.pdu.varbinds.len() / 2;
                reply.pdu.varbinds.truncate(keep);
            } else {
                reply.pdu = error_response(&m.pdu, TOO_BIG, 0);
                reply.pdu.varbinds.clear();
            }
            bytes = Message::Community(reply.clone()).emit();
        }
        Answer {
            reply: Some(bytes),
            action,
            data,
        }
    }

    fn answer_v3(&self, m: V3Message, up: Duration) -> Answer {
        let (kind, context_name, request_id, mut data) = match &m.scoped {
            ScopedPdu::Plain {
                context_name, pdu, ..
            } => (
                Some(pdu.kind),
                context_name.clone(),
                pdu.request_id,
                request_data(pdu),
            ),
            ScopedPdu::Encrypted(_) => (None, Vec::new(), 0, json!({"pdu": "encrypted"})),
        };
        let level = match m.flags & (FLAG_AUTH | FLAG_PRIV) {
            0 => "noAuthNoPriv",
            FLAG_AUTH => "authNoPriv",
            _ => "authPriv",
        };
        data["version"] = json!("3");
        data["user"] = json!(text(&m.usm.user));
        data["engine_id"] = json!(hex(&m.usm.engine_id));
        data["security_level"] = json!(level);
        let action = action_of(kind);
        let invalid = m.flags & FLAG_PRIV != 0 && m.flags & FLAG_AUTH == 0;
        if invalid || m.flags & FLAG_REPORTABLE == 0 {
            // snmpd drops both (snmpInvalidMsgs, or nothing to report to).
            data["error"] = json!(if invalid {
                "privacy without authentication"
            } else {
                "not reportable"
            });
            return Answer {
                reply: None,
                action,
                data,
            };
        }
        let (stat, counter, name) = if m.usm.engine_id != self.engine_id {
            (
                &UNKNOWN_ENGINE_IDS,
                &self.unknown_engine_ids,
                "usmStatsUnknownEngineIDs",
            )
        } else {
            (
                &UNKNOWN_USER_NAMES,
                &self.unknown_user_names,
                "usmStatsUnknownUserNames",
            )
        };
        let count = counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        data["report"] = json!(name);
        let mut stat_oid = stat.to_vec();
        stat_oid.push(0);
        let report = V3Message {
            msg_id: m.msg_id,
            max_size: MAX_MESSAGE as i64,
            flags: 0,
            usm: Usm {
                engine_id: self.engine_id.clone(),
                engine_boots: self.engine_boots,
                engine_time: self.engine_time(up),
                user: m.usm.user,
                auth_params: Vec::new(),
                priv_params: Vec::new(),
            },
            scoped: ScopedPdu::Plain {
                context_engine_id: self.engine_id.clone(),
                context_name,
                pdu: Pdu {
                    kind: PduType::Report,
                    request_id,
                    error_status: 0,
                    error_index: 0,
                    varbinds: vec![VarBind {
                        oid: oid_of(&stat_oid),
                        value: Value::Counter32(count),
                    }],
                },
            },
        };
        Answer {
            reply: Some(Message::V3(report).emit()),
            action,
            data,
        }
    }
}

/// Serves one UDP port until the decoy stops.
pub async fn serve(socket: UdpSocket, agent: Arc<Agent>, protocol: String, sink: Arc<EventSink>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer): (usize, SocketAddr) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let a = agent.answer(&buf[..n], agent.started.elapsed());
        sink.emit(&peer.to_string(), &protocol, a.action, a.data);
        if let Some(reply) = a.reply {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wire::tests::*;
    use super::*;

    /// `details` as the probe captured plc-gw-01 (its net_snmp_response
    /// test), with the engine of the v3 captures.
    fn plc_gw() -> Json {
        json!({"community": "public", "version": "2c",
            "sys_descr": "Linux vm 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 x86_64",
            "sys_object_id": "1.3.6.1.4.1.8072.3.2.10", "sys_uptime_ticks": 3914,
            "sys_contact": "netops@example.net", "sys_name": "plc-gw-01", "sys_location": "Hall 3",
            "engine_id": "80001f888094a8fd427999076b00000000",
            "varbinds": {"1.3.6.1.2.1.1.5.0": "plc-gw-01", "1.3.6.1.4.1.2021.100.2.0": "5.9.3",
                "1.3.6.1.2.1.1.9.9.0": {"tag": 128, "hex": ""}}})
    }

    fn agent() -> Agent {
        Agent::from_details(&plc_gw(), "plc-gw-01")
    }

    fn replay(a: &Agent, (request, response): (&str, &str), up: Duration) -> Answer {
        let got = a.answer(&bytes(request), up);
        assert_eq!(
            got.reply.as_deref().map(hex),
            Some(response.to_string()),
            "answer to {request}"
        );
        got
    }

    #[test]
    fn answers_equal_snmpds_to_the_same_requests() {
        let a = agent();
        let up = Duration::ZERO;
        for exchange in [
            GET_SYS_NAME,
            GETNEXT_SYSTEM,
            GETBULK,
            GETBULK_END,
            V1_GET_MISSING,
            V2_GETNEXT_END,
            V1_GETNEXT_END,
            V2_SET,
            V1_SET,
        ] {
            replay(&a, exchange, up);
        }
    }

    #[test]
    fn missing_objects_and_instances_differ_as_in_snmpd() {
        // snmpd also has 1.3.6.1.2.1.1.99 unknown; 1.3.6.1.4.1.99999.0 is
        // outside the versionTag object the capture adds.
        replay(&agent(), V2_GET_MISSING, Duration::ZERO);
    }

    #[test]
    fn uptime_advances_from_the_capture() {
        // The probe's GET of the whole group, 3914 ticks in, as the lab's snmpd sent it.
        let mut d = plc_gw();
        d["sys_contact"] = json!("ops@example.net");
        let a = Agent::from_details(&d, "plc-gw-01");
        replay(&a, PROBE_SYSTEM, Duration::ZERO);
        let later = a.answer(&bytes(PROBE_SYSTEM.0), Duration::from_millis(12_345));
        let Ok(Message::Community(m)) = Message::parse(&later.reply.unwrap()) else {
            panic!("a v2c answer")
        };
        assert_eq!(m.pdu.varbinds[5].value, Value::TimeTicks(3914 + 1234));
    }

    #[test]
    fn v3_discovery_then_an_unknown_user() {
        let mut d = plc_gw();
        d["sys_uptime_ticks"] = json!(0);
        let a = Agent::from_details(&d, "plc-gw-01");
        let up = Duration::from_secs(11);
        let disc = replay(&a, V3_DISCOVERY, up);
        assert_eq!(disc.action, "read");
        assert_eq!(disc.data["report"], "usmStatsUnknownEngineIDs");
        assert_eq!(disc.data["engine_id"], "");
        let user = replay(&a, V3_UNKNOWN_USER, up);
        assert_eq!(user.data["user"], "nobody");
        assert_eq!(user.data["oids"], json!(["1.3.6.1.2.1.1.5.0"]));
        assert_eq!(user.data["report"], "usmStatsUnknownUserNames");
        // An authenticated request: the same report, the counter goes on.
        let auth = a.answer(&bytes(V3_AUTH_REQUEST), up);
        assert_eq!(auth.data["security_level"], "authNoPriv");
        let Ok(Message::V3(r)) = Message::parse(&auth.reply.unwrap()) else {
            panic!("v3")
        };
        assert_eq!(r.usm.user, b"admin");
        let ScopedPdu::Plain { pdu, .. } = r.scoped else {
            panic!("plain")
        };
        assert_eq!(pdu.varbinds[0].value, Value::Counter32(2));
        assert_eq!(pdu.request_id, 0x7be40a41);
    }

    #[test]
    fn a_wrong_community_gets_nothing_but_is_recorded() {
        let a = agent();
        let req = "302a020101040770726976617465a01c02044e2932b3020100020100300e300c06082b060102010105000500";
        let got = a.answer(&bytes(req), Duration::ZERO);
        assert_eq!(got.reply, None);
        assert_eq!(got.action, "read");
        assert_eq!(
            got.data,
            json!({"version": "2c", "community": "private", "pdu": "get", "request_id": 0x4e2932b3_i64,
                "oids": ["1.3.6.1.2.1.1.5.0"], "error": "unknown community"})
        );
    }

    #[test]
    fn events_say_what_was_asked_and_written() {
        let a = agent();
        let get = a.answer(&bytes(GET_SYS_NAME.0), Duration::ZERO);
        assert_eq!(
            get.data,
            json!({"version": "2c", "community": "public", "pdu": "get", "request_id": 0x221aca5a,
                "oids": ["1.3.6.1.2.1.1.5.0"]})
        );
        let set = a.answer(&bytes(V2_SET.0), Duration::ZERO);
        assert_eq!(set.action, "write");
        assert_eq!(set.data["values"], json!(["hacked"]));
        let bulk = a.answer(&bytes(GETBULK.0), Duration::ZERO);
        assert_eq!(
            (&bulk.data["non_repeaters"], &bulk.data["max_repetitions"]),
            (&json!(1), &json!(3))
        );
        let junk = a.answer(b"GET / HTTP/1.0\r\n\r\n", Duration::ZERO);
        assert_eq!((junk.reply, junk.action), (None, "data"));
        assert_eq!(junk.data["bytes"]["text"], "GET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn captured_text_objects_are_served_and_the_rest_defaults() {
        let a = agent();
        let version = Oid::parse("1.3.6.1.4.1.2021.100.2.0").unwrap();
        assert_eq!(
            a.get(&version, Duration::ZERO),
            Some(Value::OctetString(b"5.9.3".to_vec()))
        );
        // The probe's noSuchObject capture is no object.
        assert_eq!(
            a.get(&Oid::parse("1.3.6.1.2.1.1.9.9.0").unwrap(), Duration::ZERO),
            None
        );
        // Nothing captured: sysName is the host's, the engine ID net-snmp-like and stable.
        let bare = Agent::from_details(&Json::Null, "plc-gw-02");
        assert_eq!(
            bare.get(&system(5), Duration::ZERO),
            Some(Value::OctetString(b"plc-gw-02".to_vec()))
        );
        assert_eq!(bare.get(&system(1), Duration::ZERO), None);
        assert_eq!(bare.community, b"public");
        assert_eq!(bare.engine_id.len(), 17);
        assert!(bare.engine_id.starts_with(&NET_SNMP_ENGINE_PREFIX));
        assert_eq!(bare.engine_id, engine_id_for("plc-gw-02"));
        assert_ne!(bare.engine_id, engine_id_for("plc-gw-01"));
        let odd = Agent::from_details(&json!({"engine_id": "0x80001F8880AABB"}), "x");
        assert_eq!(odd.engine_id, bytes("80001f8880aabb"));
        let short = Agent::from_details(&json!({"engine_id": "8000"}), "x");
        assert_eq!(short.engine_id, engine_id_for("x"));
    }

    #[test]
    fn a_bulk_is_bounded() {
        let a = agent();
        let req = Message::Community(CommunityMessage {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu {
                kind: PduType::GetBulk,
                request_id: 1,
                error_status: -5,
                error_index: i64::MAX,
                varbinds: vec![VarBind {
                    oid: Oid::parse("1.3").unwrap(),
                    value: Value::Null,
                }],
            },
        });
        let got = a.answer(&req.emit(), Duration::ZERO);
        let Ok(Message::Community(m)) = Message::parse(&got.reply.unwrap()) else {
            panic!("v2c")
        };
        // Every object once, then the end of the view.
        assert_eq!(m.pdu.varbinds.len(), a.objects.len() + 1);
        assert_eq!(m.pdu.varbinds.last().unwrap().value, Value::EndOfMibView);
        // v1 has no GetBulk: snmpd ignores it.
        let mut v1 = bytes(GETBULK.0);
        v1[4] = 0;
        assert_eq!(a.answer(&v1, Duration::ZERO).reply, None);
    }

    /// The datagram loop on 127.0.0.1, asked by net-snmp's own tools when
    /// installed (`snmp` package), each request an event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn net_snmp_tools_read_the_agent_and_each_request_is_an_event() {
        let dir = std::env::temp_dir().join(format!("gm-snmp-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ev.sock");
        let _ = std::fs::remove_file(&path);
        let events = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        events
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        let sink = Arc::new(EventSink::new(&path, "plc1"));
        let server = tokio::spawn(serve(socket, Arc::new(agent()), "snmp".into(), sink));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(&bytes(GET_SYS_NAME.0), at).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(hex(&buf[..n]), GET_SYS_NAME.1);
        let mut ev = [0u8; 4096];
        let n = events.recv(&mut ev).unwrap();
        let v: Json = serde_json::from_slice(&ev[..n]).unwrap();
        assert_eq!(
            (&v["twin_host"], &v["protocol"], &v["action"]),
            (&json!("plc1"), &json!("snmp"), &json!("read"))
        );
        assert_eq!(v["data"]["oids"], json!(["1.3.6.1.2.1.1.5.0"]));
        assert_eq!(v["peer"], json!(client.local_addr().unwrap().to_string()));

        // `tool ARGS... OID`: the agent goes before the OID.
        let tool = |args: &[&str]| {
            let target = at.to_string();
            let (oid, args) = args.split_last().expect("an OID");
            std::process::Command::new(args[0])
                .args(&args[1..])
                .args(["-r0", "-t1", "-On", target.as_str(), oid])
                .env("MIBS", "")
                .output()
        };
        let Ok(out) = tool(&["snmpget", "-v2c", "-c", "public", "1.3.6.1.2.1.1.5.0"]) else {
            eprintln!("net-snmp's tools are not installed: not asked");
            server.abort();
            return;
        };
        let text = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(text(out).contains("STRING: \"plc-gw-01\""));
        let walk = text(tool(&["snmpwalk", "-v1", "-c", "public", "1.3.6.1.2.1.1"]).unwrap());
        assert_eq!(walk.lines().count(), 6, "{walk}");
        assert!(
            walk.contains(".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.8072.3.2.10"),
            "{walk}"
        );
        let bulk = text(tool(&["snmpbulkwalk", "-v2c", "-c", "public", "1.3.6.1"]).unwrap());
        // Every object, then the end of the view.
        assert_eq!(bulk.lines().count(), 8, "{bulk}");
        assert!(bulk.ends_with("past the end of the MIB tree)\n"), "{bulk}");
        assert!(
            bulk.contains(".1.3.6.1.4.1.2021.100.2.0 = STRING: \"5.9.3\""),
            "{bulk}"
        );
        let v3 = tool(&[
            "snmpget",
            "-v3",
            "-l",
            "noAuthNoPriv",
            "-u",
            "admin",
            "1.3.6.1.2.1.1.5.0",
        ])
        .unwrap();
        assert!(
            String::from_utf8_lossy(&v3.stderr).contains("Unknown user name"),
            "{v3:?}"
        );
        let wrong = tool(&["snmpget", "-v2c", "-c", "private", "1.3.6.1.2.1.1.5.0"]).unwrap();
        assert!(
            String::from_utf8_lossy(&wrong.stderr).contains("Timeout"),
            "{wrong:?}"
        );
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_and_mutated_requests_never_panic() {
        let a = agent();
        let mut rng = Noise::new(0xa9e);
        let captures: Vec<Vec<u8>> = all_captures()
            .into_iter()
            .map(|(q, _)| bytes(q))
            .chain([bytes(V3_AUTH_REQUEST)])
            .collect();
        for _ in 0..20_000 {
            let mut b = captures[rng.below(captures.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            let got = a.answer(&b, Duration::from_secs(rng.next() % 1_000_000));
            if let Some(r) = got.reply {
                assert!(r.len() <= MAX_MESSAGE);
                assert!(Message::parse(&r).is_ok(), "{}", hex(&r));
            }
        }
    }
}
