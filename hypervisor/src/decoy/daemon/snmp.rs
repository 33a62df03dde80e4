//! net-snmp's snmpd answering the captured system group (sysDescr, sysObjectID,
//! sysContact, sysName, sysLocation) to the captured community, with the
//! captured SNMPv3 engine: its engine ID (`exactEngineID`), which any v3
//! discovery sees and which a production agent keeps for life, and its boot
//! count (the persistent file snmpd reads at start says one boot less, with
//! the same engine ID, so this start is the captured one). SMUX stays on
//! 127.0.0.1 (else it opens 0.0.0.0:199, which production did not show); the
//! persistent dir is the host's own and the only config path besides the
//! generated file.

use super::super::{one_line, s, Context, Launch};
use crate::plan::DecoySpec;

pub const SNMPD: &str = "/usr/sbin/snmpd";

pub fn config(cx: &Context, spec: &DecoySpec) -> String {
    let d = &spec.details;
    let community = s(d, "community")
        .filter(|c| !c.is_empty() && !c.contains(char::is_whitespace))
        .unwrap_or("public");
    let mut c = format!(
        "# gemelo twin host {}: snmpd as discovery saw it\nagentaddress udp:0.0.0.0:{}\nrocommunity {community}\n",
        cx.host.name, spec.port
    );
    for (option, key) in [
        ("sysName", "sys_name"),
        ("sysDescr", "sys_descr"),
        ("sysContact", "sys_contact"),
        ("sysLocation", "sys_location"),
        ("sysObjectID", "sys_object_id"),
    ] {
        if let Some(v) = s(d, key) {
            c.push_str(&format!("{option} {}\n", one_line(v)));
        }
    }
    if let Some(id) = engine_id(spec) {
        c.push_str(&format!("exactEngineID 0x{id}\n"));
    }
    c.push_str("smuxsocket 127.0.0.1\n");
    c
}

/// The captured engine ID as hex, when it is one an agent can have (RFC 3411:
/// 5-32 octets).
fn engine_id(spec: &DecoySpec) -> Option<String> {
    let id = s(&spec.details, "engine_id")?.to_ascii_lowercase();
    let ok = id.len() % 2 == 0
        && (10..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(id)
}

/// What snmpd's persistent file holds before its first start in the twin:
/// the captured engine one boot before the captured boot count.
pub fn persistent(spec: &DecoySpec) -> Option<String> {
    let id = engine_id(spec)?;
    let boots = spec.details.get("engine_boots")?.as_i64()?;
    (1..=i64::from(i32::MAX))
        .contains(&boots)
        .then(|| format!("engineBoots {}\noldEngineID 0x{id}\n", boots - 1))
}

pub fn launch(cx: &Context, spec: &DecoySpec) -> Launch {
    let conf = cx.path("snmpd.conf");
    let shq = crate::decoy::shq;
    let mut files = vec![(conf.clone(), config(cx, spec).into_bytes(), 0o644)];
    let mut seed = String::new();
    if let Some(p) = persistent(spec) {
        let file = cx.path("snmpd.persist");
        seed = format!(
            "cp {} {}\n",
            shq(&file.display().to_string()),
            shq(&cx.p("snmp/snmpd.conf"))
        );
        files.push((file, p.into_bytes(), 0o644));
    }
    // SNMPCONFPATH: the persistent dir only (not /etc/snmp, not ~/.snmp).
    let script = format!(
        "set -e\nmkdir -p {}\n{seed}exec {SNMPD} -f -Lo -c {} -p {}\n",
        shq(&cx.p("snmp")),
        shq(&conf.display().to_string()),
        shq(&cx.p("snmpd.pid"))
    );
    Launch {
        name: "snmpd".into(),
        argv: super::sh(script),
        env: vec![
            ("SNMP_PERSISTENT_DIR".into(), cx.p("snmp")),
            ("SNMPCONFPATH".into(), cx.p("snmp")),
            ("MIBS".into(), String::new()),
        ],
        files,
        listens: vec![("udp".into(), spec.port)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::{context_for, host_with};
    use serde_json::json;

    #[test]
    fn config_from_net_snmp_capture() {
        // The probe's net_snmp_response test: the lab's plc-gw-01.
        let d = json!({"community": "public", "version": "2c",
            "sys_descr": "Linux vm 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 x86_64", "sys_object_id": "1.3.6.1.4.1.8072.3.2.10",
            "sys_uptime_ticks": 3914, "sys_contact": "netops@example.net", "sys_name": "plc-gw-01", "sys_location": "Hall 3"});
        let mut host = host_with("snmp", 161, "net-snmp", d);
        host.services[0].proto = "udp".into();
        let cx = context_for(&host);
        assert_eq!(
            config(&cx, &host.services[0]),
            "# gemelo twin host web1: snmpd as discovery saw it\nagentaddress udp:0.0.0.0:161\nrocommunity public\nsysName plc-gw-01\n\
sysDescr Linux vm 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 x86_64\nsysContact netops@example.net\nsysLocation Hall 3\n\
sysObjectID 1.3.6.1.4.1.8072.3.2.10\nsmuxsocket 127.0.0.1\n"
        );
        let l = launch(&cx, &host.services[0]);
        assert_eq!(l.listens, vec![("udp".to_string(), 161)]);
        assert_eq!(l.files.len(), 1, "no engine captured: snmpd makes its own");
        assert!(l.env.contains(&(
            "SNMP_PERSISTENT_DIR".to_string(),
            "/tmp/gemelo-x/web1/snmp".to_string()
        )));
    }

    #[test]
    fn the_captured_engine_is_kept() {
        let d = json!({"community": "public", "sys_name": "plc-gw-01",
            "engine_id": "80001F8880AABBCCDD11223344000000", "engine_boots": 7});
        let mut host = host_with("snmp", 161, "net-snmp", d);
        host.services[0].proto = "udp".into();
        let cx = context_for(&host);
        let spec = &host.services[0];
        assert!(config(&cx, spec).contains("exactEngineID 0x80001f8880aabbccdd11223344000000\n"));
        assert_eq!(
            persistent(spec).unwrap(),
            "engineBoots 6\noldEngineID 0x80001f8880aabbccdd11223344000000\n"
        );
        let l = launch(&cx, spec);
        assert_eq!(l.files[1].0, cx.path("snmpd.persist"));
        assert!(
            l.argv[2].contains(
                "cp '/tmp/gemelo-x/web1/snmpd.persist' '/tmp/gemelo-x/web1/snmp/snmpd.conf'\n"
            ),
            "{:?}",
            l.argv
        );
        // Not an engine ID: left to snmpd; and no boots without one.
        for bad in ["80001f88", "zz001f8880aabbccdd", "80001f8880aabbccdd1"] {
            let mut s = spec.clone();
            s.details["engine_id"] = json!(bad);
            assert!(!config(&cx, &s).contains("exactEngineID"), "{bad}");
            assert!(persistent(&s).is_none());
        }
    }
}
