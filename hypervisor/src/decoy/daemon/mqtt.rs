//! mosquitto listening on all addresses for anonymous clients, plus a one-shot
//! publisher that re-publishes every captured topic (except the broker's own
//! `$SYS` tree) as retained, so a subscriber to `#` sees the same topics and
//! payloads at once.

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

/// (topic, payload) to retain, in captured order.
pub fn topics(d: &Value) -> Vec<(String, Vec<u8>)> {
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
            (!bytes.is_empty()).then(|| (topic.to_string(), bytes))
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
    let mut script =
        String::from("# Waits for the broker, publishes each captured topic retained, stays.\n");
    let port = spec.port;
    for (i, (topic, payload)) in topics.iter().enumerate() {
        let file = cx.path(&format!("mqtt/{i}.payload"));
        let publish = format!(
            "{MOSQUITTO_PUB} -h 127.0.0.1 -p {port} -q 1 -r -t {} -f {}",
            shq(topic),
            shq(&file.display().to_string())
        );
        if i == 0 {
            script.push_str(&format!("n=0\nuntil {publish} 2>/dev/null; do\n  n=$((n + 1)); [ $n -lt 100 ] || exit 1; sleep 0.1\ndone\n"));
        } else {
            script.push_str(&format!("{publish}\n"));
        }
        files.push((file, payload.clone(), 0o644));
    }
    // A launch that exits is a failed host (to the build and to every later
    // check): once published, it stays, idle.
    script.push_str("exec sleep infinity\n");
    let retain = Launch {
        name: "mqtt-retain".into(),
        argv: super::sh(script),
        env: vec![],
        files,
        listens: vec![],
    };
    vec![broker, retain]
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
    }
}
