//! net-snmp's snmpd answering the captured system group (sysDescr, sysObjectID,
//! sysContact, sysName, sysLocation) to the captured community. SMUX stays on
//! 127.0.0.1 (else it opens 0.0.0.0:199, which production did not show) and
//! the persistent dir is the host's own.

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
    c.push_str("smuxsocket 127.0.0.1\n");
    c
}

pub fn launch(cx: &Context, spec: &DecoySpec) -> Launch {
    let conf = cx.path("snmpd.conf");
    let script = format!(
        "set -e\nmkdir -p {}\nexec {SNMPD} -f -Lo -C -c {} -p {}\n",
        crate::decoy::shq(&cx.p("snmp")),
        crate::decoy::shq(&conf.display().to_string()),
        crate::decoy::shq(&cx.p("snmpd.pid"))
    );
    Launch {
        name: "snmpd".into(),
        argv: super::sh(script),
        env: vec![
            ("SNMP_PERSISTENT_DIR".into(), cx.p("snmp")),
            ("MIBS".into(), String::new()),
        ],
        files: vec![(conf, config(cx, spec).into_bytes(), 0o644)],
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
        assert!(l.env.contains(&(
            "SNMP_PERSISTENT_DIR".to_string(),
            "/tmp/gemelo-x/web1/snmp".to_string()
        )));
    }
}
