//! MQTT 3.1.1: whether a broker lets anonymous clients in, and what it carries.
//!
//! CONNECT → CONNACK return code. If accepted, SUBSCRIBE `#` and `$SYS/#` (a
//! broker's `$SYS` tree is not matched by `#`) and keep, for about two seconds,
//! each topic's last payload (bounded), so the twin's broker can retain the same
//! topics. `$SYS/broker/version` names the product. Each topic also says
//! whether the broker retains it (a retained message comes with RETAIN set
//! when a subscription starts; a live one never does) and how often it was
//! seen: a topic published live but seen once makes the probe listen longer
//! (up to `COLLECT_LIVE`) for its period, which the twin publishes it at.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{conn, hex, text_or_base64, ProbeConfig, ServiceInfo};

const CONNACK: u8 = 0x20;
const PUBLISH: u8 = 0x30;
const SUBACK: u8 = 0x90;
/// Topics we keep, and payload bytes per topic.
const MAX_TOPICS: usize = 256;
const MAX_PAYLOAD: usize = 512;
/// How long we listen for retained and periodic messages.
const COLLECT: Duration = Duration::from_secs(2);
/// How long, in all, while a live topic has been seen only once.
const COLLECT_LIVE: Duration = Duration::from_secs(12);

/// CONNECT with a clean session, keep-alive 60 s, no credentials.
pub(super) fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    frame(0x10, &body)
}

/// SUBSCRIBE (packet id 1) to `topics` at QoS 0.
pub(super) fn subscribe_packet(topics: &[&str]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    for t in topics {
        body.extend_from_slice(&(t.len() as u16).to_be_bytes());
        body.extend_from_slice(t.as_bytes());
        body.push(0);
    }
    frame(0x82, &body)
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// (first byte, body, bytes consumed) of one control packet.
pub(super) type Packet<'a> = (u8, &'a [u8], usize);

/// The control packet at the start of `bytes`: `Ok(None)` if more bytes are
/// needed, `Err` if the length field is malformed.
pub(super) fn parse_packet(bytes: &[u8]) -> Result<Option<Packet<'_>>, &'static str> {
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut at = 1;
    for shift in 0..4 {
        let Some(&b) = bytes.get(at) else {
            return Ok(None);
        };
        at += 1;
        len |= ((b & 0x7f) as usize) << (7 * shift);
        if b & 0x80 == 0 {
            return match bytes.get(at..at + len) {
                Some(body) => Ok(Some((first, body, at + len))),
                None => Ok(None),
            };
        }
    }
    Err("MQTT remaining length longer than 4 bytes")
}

/// (topic, payload) of a PUBLISH body, given its first byte (for the QoS bits).
pub(super) fn parse_publish(first: u8, body: &[u8]) -> Option<(String, &[u8])> {
    let tlen = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let topic = String::from_utf8_lossy(body.get(2..2 + tlen)?).into_owned();
    let qos = (first >> 1) & 3;
    let payload_at = 2 + tlen + if qos > 0 { 2 } else { 0 };
    Some((topic, body.get(payload_at..)?))
}

/// "mosquitto version 2.0.11" → (Mosquitto, 2.0.11); other brokers by name.
pub(super) fn product_version(sys_version: &str) -> (Option<String>, Option<String>) {
    let lower = sys_version.to_ascii_lowercase();
    let version = sys_version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string);
    let product = if lower.contains("mosquitto") {
        "Mosquitto"
    } else if lower.contains("emqx") {
        "EMQX"
    } else if lower.contains("hivemq") {
        "HiveMQ"
    } else if lower.contains("vernemq") {
        "VerneMQ"
    } else {
        return (
            sys_version.split_whitespace().next().map(str::to_string),
            version,
        );
    };
    (Some(product.to_string()), version)
}

/// What the broker said, as the exchange collected it.
#[derive(Debug, Default)]
pub(super) struct Session {
    pub connack: Vec<u8>,
    pub suback: Option<Vec<u8>>,
    pub topics: BTreeMap<String, Topic>,
    pub topics_dropped: usize,
    /// Milliseconds since the subscription, as the caller last set it: when
    /// the packets `feed` gets arrived.
    pub now_ms: u64,
}

/// One topic as collected.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Topic {
    /// The last payload (bounded).
    pub payload: Vec<u8>,
    /// A message of it came with RETAIN set: the broker keeps it.
    pub retained: bool,
    /// Messages seen, and when the first and the last came (ms).
    pub count: u32,
    pub first_ms: u64,
    pub last_ms: u64,
}

impl Topic {
    /// Published live (never retained) and seen once: its period is unknown yet.
    fn wants_period(&self, name: &str) -> bool {
        !self.retained && self.count < 2 && !name.starts_with('$')
    }
}

impl Session {
    /// Feeds packets from `buf` (consumed ones are drained); false on garbage.
    pub fn feed(&mut self, buf: &mut Vec<u8>) -> bool {
        loop {
            let (first, body, used) = match parse_packet(buf) {
                Ok(Some(p)) => p,
                Ok(None) => return true,
                Err(_) => return false,
            };
            match first & 0xf0 {
                CONNACK => self.connack = body.to_vec(),
                SUBACK => self.suback = Some(body.to_vec()),
                PUBLISH => {
                    if let Some((topic, payload)) = parse_publish(first, body) {
                        let payload = payload[..payload.len().min(MAX_PAYLOAD)].to_vec();
                        if self.topics.len() < MAX_TOPICS || self.topics.contains_key(&topic) {
                            let now = self.now_ms;
                            let t = self.topics.entry(topic).or_insert_with(|| Topic {
                                first_ms: now,
                                ..Topic::default()
                            });
                            t.payload = payload;
                            t.retained |= first & 0x01 != 0;
                            t.count += 1;
                            t.last_ms = now;
                        } else {
                            self.topics_dropped += 1;
                        }
                    }
                }
                _ => {}
            }
            buf.drain(..used);
        }
    }

    /// CONNACK return code (0 = accepted, 4 = bad credentials, 5 = not authorized).
    pub fn return_code(&self) -> Option<u8> {
        self.connack.get(1).copied()
    }
}

/// `ServiceInfo` from a session.
pub(super) fn service_from(port: u16, s: &Session) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", "mqtt");
    if let Some(v) = s.topics.get("$SYS/broker/version") {
        let v = String::from_utf8_lossy(&v.payload).into_owned();
        (info.product, info.version) = product_version(&v);
        info.banner = Some(v);
    }
    let topics: Vec<_> = s
        .topics
        .iter()
        .map(|(name, t)| {
            let (enc, value) = text_or_base64(&t.payload);
            let mut topic = json!({"topic": name, "payload": value, "encoding": enc,
                "retained": t.retained, "count": t.count});
            if t.count >= 2 && t.last_ms > t.first_ms {
                topic["period_ms"] = json!((t.last_ms - t.first_ms) / u64::from(t.count - 1));
            }
            topic
        })
        .collect();
    let rc = s.return_code();
    info.details = json!({
        "connack_hex": if s.connack.is_empty() { String::new() } else { format!("20{:02x}{}", s.connack.len(), hex(&s.connack)) },
        "return_code": rc,
        "accepted": rc == Some(0),
        "auth_required": matches!(rc, Some(4 | 5)),
        "suback_hex": s.suback.as_deref().map(hex),
        "topics": topics,
        "topics_dropped": s.topics_dropped,
        "listened_ms": s.now_ms,
    });
    info
}

/// CONNECT, and if accepted, subscribe and collect. None if no CONNACK came.
pub(super) async fn probe(addr: SocketAddr, cfg: &ProbeConfig) -> Option<ServiceInfo> {
    let mut stream = conn::connect(addr, cfg).await.ok()?;
    let client_id = format!("gemelo-probe-{}", std::process::id());
    if !conn::send(&mut stream, &connect_packet(&client_id), cfg).await {
        return None;
    }
    let mut buf = Vec::new();
    let deadline = Instant::now() + cfg.read_timeout;
    conn::read_until(&mut stream, &mut buf, deadline, 64, |b| {
        !matches!(parse_packet(b), Ok(None))
    })
    .await;
    let mut session = Session::default();
    if !matches!(parse_packet(&buf), Ok(Some((first, body, _))) if first == CONNACK && body.len() == 2)
    {
        return None;
    }
    session.feed(&mut buf);
    if session.return_code() == Some(0) {
        conn::send(&mut stream, &subscribe_packet(&["#", "$SYS/#"]), cfg).await;
        let subscribed = Instant::now();
        let collect = COLLECT.min(cfg.read_timeout * 2);
        loop {
            // Past the first window, only while a live topic waits for its period.
            let waiting = session.topics.iter().any(|(n, t)| t.wants_period(n));
            let until = subscribed + if waiting { COLLECT_LIVE } else { collect };
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let more = conn::read_some(&mut stream, left).await;
            session.now_ms = subscribed.elapsed().as_millis() as u64;
            if more.is_empty() {
                break;
            }
            buf.extend_from_slice(&more);
            if !session.feed(&mut buf) || session.topics_dropped > 0 {
                break;
            }
        }
        session.now_ms = subscribed.elapsed().as_millis() as u64;
        conn::send(&mut stream, &[0xe0, 0x00], cfg).await; // DISCONNECT
    }
    Some(service_from(addr.port(), &session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// Debian 12 mosquitto 2.0.11: CONNACK, then SUBACK and the first $SYS publishes.
    const MOSQUITTO: &str = "20020000900400010000312d0013245359532f62726f6b65722f76657273696f6e6d6f7371756974746f2076657273696f6e20322e302e3131311e0012245359532f62726f6b65722f757074696d653333207365636f6e6473311c0019245359532f62726f6b65722f636c69656e74732f746f74616c30";

    #[test]
    fn mosquitto_session() {
        let mut buf = unhex(MOSQUITTO);
        let mut s = Session::default();
        assert!(s.feed(&mut buf));
        assert!(buf.is_empty());
        assert_eq!(s.return_code(), Some(0));
        let info = service_from(1883, &s);
        assert_eq!(info.product.as_deref(), Some("Mosquitto"));
        assert_eq!(info.version.as_deref(), Some("2.0.11"));
        assert_eq!(info.banner.as_deref(), Some("mosquitto version 2.0.11"));
        assert_eq!(info.details["accepted"], true);
        assert_eq!(info.details["topics"].as_array().unwrap().len(), 3);
        assert_eq!(
            info.details["topics"][0],
            json!({"topic": "$SYS/broker/clients/total", "payload": "0", "encoding": "utf-8",
                "retained": true, "count": 1})
        );
    }

    #[test]
    fn live_topics_have_a_period() {
        // A sensor's live publish (RETAIN clear) at 1.2 s and 6.2 s, a retained one at 0.
        let publish = |first: u8, topic: &str, payload: &str| {
            let mut body = (topic.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(topic.as_bytes());
            body.extend_from_slice(payload.as_bytes());
            frame(first, &body)
        };
        let mut s = Session::default();
        let mut buf = publish(0x31, "plant/setpoint", "21");
        s.feed(&mut buf);
        s.now_ms = 1200;
        let mut buf = publish(0x30, "plant/temp", "{\"seq\":1}");
        s.feed(&mut buf);
        assert!(s.topics["plant/temp"].wants_period("plant/temp"));
        assert!(!s.topics["plant/setpoint"].wants_period("plant/setpoint"));
        s.now_ms = 6200;
        let mut buf = publish(0x30, "plant/temp", "{\"seq\":2}");
        s.feed(&mut buf);
        assert!(!s.topics["plant/temp"].wants_period("plant/temp"));
        let info = service_from(1883, &s);
        let topics = info.details["topics"].as_array().unwrap();
        assert_eq!(
            topics[0],
            json!({"topic": "plant/setpoint", "payload": "21", "encoding": "utf-8", "retained": true, "count": 1})
        );
        assert_eq!(
            topics[1],
            json!({"topic": "plant/temp", "payload": "{\"seq\":2}", "encoding": "utf-8",
            "retained": false, "count": 2, "period_ms": 5000})
        );
        assert_eq!(info.details["listened_ms"], 6200);
    }

    #[test]
    fn packets_we_send() {
        assert_eq!(
            hex(&connect_packet("gemelo-probe")),
            "101800044d5154540402003c000c67656d656c6f2d70726f6265"
        );
        assert_eq!(hex(&subscribe_packet(&["#"])), "8206000100012300");
        assert_eq!(frame(0x30, &[0; 200])[..3], [0x30, 0xc8, 0x01]);
    }

    #[test]
    fn refused_and_truncated() {
        let mut buf = unhex("20020005");
        let mut s = Session::default();
        s.feed(&mut buf);
        assert_eq!(service_from(1883, &s).details["auth_required"], true);
        let bytes = unhex(MOSQUITTO);
        for n in 0..bytes.len() {
            let mut b = bytes[..n].to_vec();
            let mut s = Session::default();
            s.feed(&mut b);
            let _ = service_from(1883, &s);
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut b = bytes.clone();
            let mut s = Session::default();
            s.feed(&mut b);
            let _ = service_from(1883, &s);
            let _ = parse_publish(0x32, &bytes);
            let _ = product_version(&String::from_utf8_lossy(&bytes));
        }
    }
}
