//! Discovery against the real office lab: the inventory gemelo learns from the
//! wire matches the ground truth read from each host namespace itself.
//!
//! Ground truth: interfaces, MACs and IPv4 addresses from `ip -j addr` in each
//! host, its hostname from `hostname` in its UTS namespace, every listening TCP
//! port (not bound to loopback) from `ss`, product versions from `dpkg-query`,
//! attachment from the switch's own port table (`ovs-ofctl show`). Nothing is
//! compared with the topology file.

use anyhow::Result;
use gemelo::lab::{self, LabStatus};
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::truth::{host_identity, ofports, upstream};
use gemelo_tests::{in_host, lab_session_or_skip, topology};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];

#[derive(Debug)]
struct Truth {
    host: String,
    hostname: String,
    /// (mac, ipv4 without prefix, switch dpid, ofport)
    interfaces: Vec<(String, String, String, u32)>,
    tcp_ports: Vec<u16>,
}

fn ground_truth(status: &LabStatus) -> Result<Vec<Truth>> {
    let ports = ofports(status)?;
    let mut out = Vec::new();
    for h in &status.hosts {
        let (hostname, interfaces) = host_identity(status, &h.name, &ports)?;
        let ss = in_host(status, &h.name, &["ss", "-Hltn"])?;
        let mut tcp_ports: Vec<u16> = ss
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .filter(|local| !local.starts_with("127.") && !local.starts_with("[::1]"))
            .filter_map(|local| local.rsplit_once(':')?.1.parse().ok())
            .collect();
        tcp_ports.sort();
        tcp_ports.dedup();
        out.push(Truth {
            host: h.name.clone(),
            hostname,
            interfaces,
            tcp_ports,
        });
    }
    Ok(out)
}

fn mismatches(inv: &Value, truth: &[Truth]) -> Vec<String> {
    let hosts: BTreeMap<String, &Value> = inv["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["id"].as_str().unwrap_or("").to_string(), h))
        .collect();
    let mut bad = Vec::new();
    for t in truth {
        for (mac, ip, dpid, ofport) in &t.interfaces {
            let Some(h) = hosts.get(mac) else {
                bad.push(format!("{}: MAC {mac} not in the inventory", t.host));
                continue;
            };
            if !h["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i == ip.as_str())
            {
                bad.push(format!("{}: {mac} lacks IP {ip}: {}", t.host, h["ips"]));
            }
            if h["hostname"] != t.hostname.as_str() {
                bad.push(format!(
                    "{}: {mac} hostname {} != {}",
                    t.host, h["hostname"], t.hostname
                ));
            }
            if h["switch"] != dpid.as_str() || h["port"] != *ofport {
                bad.push(format!(
                    "{}: {mac} attached at {}:{} != {dpid}:{ofport}",
                    t.host, h["switch"], h["port"]
                ));
            }
            let found: Vec<u64> = h["services"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["proto"] == "tcp")
                .filter_map(|s| s["port"].as_u64())
                .collect();
            for p in &t.tcp_ports {
                if !found.contains(&(*p as u64)) {
                    bad.push(format!("{}: {mac} misses tcp/{p} (has {found:?})", t.host));
                }
            }
        }
    }
    bad
}

#[test]
fn office_inventory_matches_the_ground_truth() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let truth = ground_truth(&status).expect("ground truth");
    let dir = temp_dir("discovery");
    let started = Instant::now();
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let health = ctl.get("/api/v1/health").unwrap();
    assert_eq!(
        health["discovery"]["probe_netns"], "gm-probe",
        "the lab's probe port is used: {health}"
    );
    assert!(
        !health["discovery"]["scope"].as_array().unwrap().is_empty(),
        "the lab's scope is used: {health}"
    );

    // A workstation talks to the router's far address: the router then ARPs out of
    // its workstation interface with that address (ARP flux), which must not move it.
    let _ = in_host(&status, "ws02", &["ssh-keyscan", "-T", "5", "10.10.1.1"]);

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last;
    let inv = loop {
        let inv = ctl.get("/api/v1/inventory").unwrap();
        last = mismatches(&inv, &truth);
        if last.is_empty() {
            break inv;
        }
        assert!(
            Instant::now() < deadline,
            "inventory incomplete after 90 s:\n{}\n{}",
            last.join("\n"),
            serde_json::to_string_pretty(&inv).unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "complete inventory after {:.1} s ({} hosts)",
        started.elapsed().as_secs_f64(),
        inv["hosts"].as_array().unwrap().len()
    );
    assert!(last.is_empty());

    // Products and versions are the real ones.
    let web_mac = status
        .hosts
        .iter()
        .find(|h| h.name == "web01")
        .unwrap()
        .mac
        .clone();
    let web = ctl.get(&format!("/api/v1/hosts/{web_mac}")).unwrap();
    let svc = |port: u64| {
        web["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["port"] == port)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(svc(22)["name"], "ssh");
    assert_eq!(svc(22)["product"], "OpenSSH");
    assert!(
        svc(22)["version"]
            .as_str()
            .unwrap_or("")
            .starts_with(&upstream("openssh-server")),
        "{}",
        svc(22)
    );
    assert!(
        svc(22)["banner"]
            .as_str()
            .unwrap_or("")
            .starts_with("SSH-2.0-OpenSSH_"),
        "{}",
        svc(22)
    );
    assert_eq!(svc(80)["name"], "http");
    assert_eq!(svc(80)["product"], "lighttpd");
    assert_eq!(svc(80)["version"], upstream("lighttpd").as_str());
    assert_eq!(web["role"], "IT");
    assert_eq!(web["os"]["family"], "Linux");

    // An SNMP agent's system group and its v3 engine (net-snmp: enterprise 8072).
    let gw_mac = &status.hosts.iter().find(|h| h.name == "gw01").unwrap().mac;
    let gw = ctl.get(&format!("/api/v1/hosts/{gw_mac}")).unwrap();
    let snmp = gw["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "snmp")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(snmp["product"], "net-snmp", "{snmp}");
    assert!(snmp["details"]["sys_name"].is_string(), "{snmp}");
    let engine = snmp["details"]["engine_id"].as_str().unwrap_or("");
    assert!(
        engine.starts_with("80001f88") && engine.len() >= 10,
        "{snmp}"
    );
    assert!(
        snmp["details"]["engine_boots"].as_i64().unwrap_or(0) >= 1,
        "{snmp}"
    );

    // The link between the two switches and both segments with their gateways.
    let links = inv["links"].as_array().unwrap();
    let sw1 = &status
        .switches
        .iter()
        .find(|s| s.name == "sw1")
        .unwrap()
        .dpid;
    let sw2 = &status
        .switches
        .iter()
        .find(|s| s.name == "sw2")
        .unwrap()
        .dpid;
    assert!(
        links.iter().any(|l| (l["a"]["dpid"] == sw1.as_str()
            && l["a"]["port"] == 5
            && l["b"]["dpid"] == sw2.as_str()
            && l["b"]["port"] == 1)
            || (l["b"]["dpid"] == sw1.as_str()
                && l["b"]["port"] == 5
                && l["a"]["dpid"] == sw2.as_str()
                && l["a"]["port"] == 1)),
        "sw1:5 <-> sw2:1 not found: {links:?}"
    );
    let segs: BTreeMap<String, Value> = inv["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["cidr"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    for seg in &status.segments {
        let s = segs
            .get(&seg.cidr)
            .unwrap_or_else(|| panic!("segment {} not found: {segs:?}", seg.cidr));
        assert_eq!(s["gateway"], seg.gateway.as_str(), "{s}");
    }
    let topo = ctl.get("/api/v1/topology").unwrap();
    assert!(topo["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "link"));

    // Scan requests: bad input gets a clear 4xx; a good one runs to completion.
    let post = |body: &str| -> (u16, String) {
        match ureq::post(&format!("{}/api/v1/discovery/scan", ctl.api))
            .set("content-type", "application/json")
            .send_string(body)
        {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (code, body) = post(r#"{"targets": ["192.168.7.0/24"]}"#);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("outside the discovery scope"), "{body}");
    let (code, body) = post(r#"{"targets": ["10.10.1.0/33"]}"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(r#"{"targets": "#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(r#"{"targets": ["10.10.1.0/24"], "ports": [22, 80]}"#);
    assert_eq!(code, 202, "{body}");
    let job: Value = serde_json::from_str(&body).unwrap();
    let url = job["status_url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = ctl.get(&url).unwrap();
        if j["state"] == "done" {
            assert!(j["found"].as_u64().unwrap() >= 3, "{j}");
            break;
        }
        assert_ne!(j["state"], "failed", "{j}");
        assert!(Instant::now() < deadline, "scan did not finish: {j}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, _) = ctl.get_status("/api/v1/hosts/not-a-mac").unwrap();
    assert_eq!(code, 400);
    let (code, _) = ctl.get_status("/api/v1/hosts/02:00:00:00:00:99").unwrap();
    assert_eq!(code, 404);

    // The inventory survives a restart: the store answers before the wire does.
    drop(ctl);
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller again");
    let inv2 = ctl.get("/api/v1/inventory").unwrap();
    assert!(
        inv2["hosts"].as_array().unwrap().len() >= truth.len(),
        "stored inventory lost: {inv2}"
    );
    let history = ctl.get("/api/v1/inventory/history").unwrap();
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["change"] == "appeared"),
        "no history: {history}"
    );
}
