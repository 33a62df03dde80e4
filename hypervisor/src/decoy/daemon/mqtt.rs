//! mosquitto listening on all addresses for anonymous clients, plus a
//! publisher for every captured topic (except the broker's own `$SYS` tree):
//! a topic production's broker retains is published once, retained, so a
//! subscriber to `#` sees it at once; a live one (published by some client
//! and not retained) is published again at the period discovery saw, so a
//! subscriber waits for it as long as in production.

use base64::Engine;
use serde_json::Value;

use super::super::{shq, Context, Launch};
use crate::plan::DecoySpec;

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
pub const MOSQUITTO_PUB: &str = "/usr/bin/mosquitto_pub";

pub fn config(cx: &Context, spec: &DecoySpec) -> String {
    format!(
        "# gemelo twin host {}: mosquitto as discovery saw it\nlistener {} 0.0.0.0\nallow_anonymous true\npersistence false\nlog_dest stderr\n",
        cx.host.name, spec.port
    )
}

/// A captured topic as the twin's publisher sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The broker retains it: published once, retained.
    pub retained: bool,
    /// Otherwise published live, every this many ms.
    pub period_ms: u64,
}

/// A live topic seen once gives no period: it is published as often as the
/// probe listened without seeing it again, and never more than once a second.
const MIN_PERIOD_MS: u64 = 1000;

/// The captured topics (but the broker's own `$SYS` tree), in captured order.
/// A capture that does not say whether a topic is retained (older probes)
/// counts as retained.
pub fn topics(d: &Value) -> Vec<Captured> {
    let listened = d.get("listened_ms").and_then(Value::as_u64);
    d.get("topics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let topic = t.get("topic")?.as_str()?;
            if topic.starts_with('$') || topic.is_empty() {
                return None;
            }
            let payload = t.get("payload")?.as_str()?;
            let bytes = match t.get("encoding").and_then(Value::as_str) {
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .ok()?,
                _ => payload.as_bytes().to_vec(),
            };
            // An empty retained message deletes a topic: nothing to show.
            if bytes.is_empty() {
                return None;
            }
            let period = t.get("period_ms").and_then(Value::as_u64).or(listened);
            Some(Captured {
                topic: topic.to_string(),
                payload: bytes,
                retained: t.get("retained").and_then(Value::as_bool).unwrap_or(true),
                period_ms: period.unwrap_or(MIN_PERIOD_MS).max(MIN_PERIOD_MS),
            })
        })
        .collect()
}

pub fn launches(cx: &Context, spec: &DecoySpec) -> Vec<Launch> {
    let conf = cx.path("mosquitto.conf");
    let broker = Launch {
        name: "mosquitto".into(),
        argv: vec![MOSQUITTO.into(), "-c".into(), conf.display().to_string()],
        env: vec![],
        files: vec![(conf, config(cx, spec).into_bytes(), 0o644)],
        listens: vec![("tcp".into(), spec.port)],
    };
    let topics = topics(&spec.details);
    if topics.is_empty() {
        return vec![broker];
    }
    let mut files = Vec::new();
    let mut script = String::from(
        "# Waits for the broker, publishes each retained topic once and each live one\n\
         # at its period, as production's publishers do; stays (a launch that exits\n\
         # is a failed host).\n\
         trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT\n",
    );
    let port = spec.port;
    let mut live = false;
    for (i, t) in topics.iter().enumerate() {
        let file = cx.path(&format!("mqtt/{i}.payload"));
        let publish = format!(
            "{MOSQUITTO_PUB} -h 127.0.0.1 -p {port} -q 1{} -t {} -f {}",
            if t.retained { " -r" } else { "" },
            shq(&t.topic),
            shq(&file.display().to_string())
        );
        if i == 0 {
            script.push_str(&format!("n=0\nuntil {publish} 2>/dev/null; do\n  n=$((n + 1)); [ $n -lt 100 ] || exit 1; sleep 0.1\ndone\n"));
        } else if t.retained {
            script.push_str(&format!("{publish}\n"));
        }
        if !t.retained {
            live = true;
            // (The first topic went out with the wait for the broker.)
            let first = if i == 0 {
                ""
            } else {
                &format!("{publish} 2>/dev/null; ")
            };
            script.push_str(&format!(
                "({first}while :; do sleep {}; {publish} 2>/dev/null; done) &\n",
                seconds(t.period_ms)
            ));
        }
        files.push((file, t.payload.clone(), 0o644));
    }
    script.push_str(if live {
        "wait\n"
    } else {
        "exec sleep infinity\n"
    });
    let retain = Launch {
        name: "mqtt-retain".into(),
        argv: super::sh(script),
        env: vec![],
        files,
        listens: vec![],
    };
    vec![broker, retain]
}

/// `sleep`'s argument for `ms` (busybox and coreutils take decimals).
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::{context_for, host_with};
    use serde_json::json;

    #[test]
    fn broker_and_retained_topics() {
        // The probe's mosquitto_session shape, plus a sensor topic and a binary one.
        let d = json!({"accepted": true, "topics": [
            {"topic": "$SYS/broker/clients/total", "payload": "0", "encoding": "utf-8"},
            {"topic": "$SYS/broker/version", "payload": "mosquitto version 2.0.11", "encoding": "utf-8"},
            {"topic": "plant/line1/temp", "payload": "{\"host\":\"plc1\",\"seq\":4,\"value\":204}", "encoding": "utf-8"},
            {"topic": "plant/raw", "payload": "/wA=", "encoding": "base64"}]});
        let host = host_with("mqtt", 1883, "Mosquitto", d);
        let cx = context_for(&host);
        let l = launches(&cx, &host.services[0]);
        assert_eq!(std::str::from_utf8(&l[0].files[0].1).unwrap(), "# gemelo twin host web1: mosquitto as discovery saw it\nlistener 1883 0.0.0.0\nallow_anonymous true\npersistence false\nlog_dest stderr\n");
        assert_eq!(l[1].files.len(), 2);
        assert_eq!(l[1].files[1].1, vec![0xff, 0]);
        assert!(l[1].argv[2]
            .contains("-r -t 'plant/line1/temp' -f '/tmp/gemelo-x/web1/mqtt/0.payload'"));
        assert!(l[1].listens.is_empty());
        assert!(l[1].argv[2].ends_with("exec sleep infinity\n"));
    }

    #[test]
    fn live_topics_are_published_at_their_period() {
        let d = json!({"accepted": true, "listened_ms": 12000, "topics": [
            {"topic": "w7/setpoint", "payload": "21", "encoding": "utf-8", "retained": true, "count": 1},
            {"topic": "w7/temp", "payload": "{\"seq\":2}", "encoding": "utf-8", "retained": false, "count": 2, "period_ms": 5000},
            {"topic": "w7/rare", "payload": "x", "encoding": "utf-8", "retained": false, "count": 1}]});
        let t = topics(&d);
        assert_eq!(
            (t[0].retained, t[1].retained, t[1].period_ms, t[2].period_ms),
            (true, false, 5000, 12000)
        );
        let host = host_with("mqtt", 1883, "Mosquitto", d);
        let cx = context_for(&host);
        let script = &launches(&cx, &host.services[0])[1].argv[2];
        assert!(script.contains("-q 1 -r -t 'w7/setpoint'"), "{script}");
        let temp = "/usr/bin/mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t 'w7/temp' -f '/tmp/gemelo-x/web1/mqtt/1.payload'";
        assert!(
            script.contains(&format!(
                "({temp} 2>/dev/null; while :; do sleep 5.000; {temp} 2>/dev/null; done) &\n"
            )),
            "{script}"
        );
        assert!(script.contains("sleep 12.000"));
        assert!(script.ends_with("wait\n"));
    }
}
