//! The twin follows the inventory, end to end on the office lab.
//!
//! A controller serving with `--twin-follow 2` builds the twin; then a new host
//! appears in production (a visitor on sw2). Once discovery has located it, the
//! twin grows a host mirroring it — same MAC, same address, answering from the
//! observer — while every other twin host keeps running untouched (its daemons
//! keep their pids): the update is incremental. A host that leaves production
//! (the visitor unplugged, forgotten by discovery) is not part of this test:
//! discovery keeps a vanished host for `vanish_after`.

use gemelo::lab;
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{topology, twin_session_or_skip};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VISITOR_IP: &str = "10.10.2.88";
const VISITOR_MAC: &str = "02:66:0a:0a:02:58";

fn ping_once(ns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c1", "-W1", ip])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Twin host name → its daemons' (name, pid, start), from `GET /api/v1/twin`.
fn daemons(twin: &Value) -> BTreeMap<String, Vec<(String, u64, u64)>> {
    twin["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let d = h["daemons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or("").to_string(),
                        d["pid"].as_u64().unwrap_or(0),
                        d["start"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            (h["name"].as_str().unwrap().to_string(), d)
        })
        .collect()
}

/// Host names from the controller's "updating the twin" log lines.
fn updated_hosts(log: &str) -> std::collections::BTreeSet<String> {
    let mut plain = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI colour sequence: ESC [ ... letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .filter(|l| l.contains("the inventory changed: updating the twin"))
        .filter_map(|l| l.split("hosts=").nth(1))
        .flat_map(|h| h.split_whitespace().next().unwrap_or("").split(','))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_new_production_host_joins_the_twin_and_nothing_else_restarts() {
    let _session = twin_session_or_skip!();
    let t0 = Instant::now();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("twin-follow");
    let ctl = ControllerProc::start(
        &dir,
        &[
            "--no-default-listeners",
            "--listen",
            lab::DEFAULT_CONTROLLER,
            "--twin-follow",
            "2",
        ],
    )
    .expect("controller");
    ctl.wait_identified(&status, Duration::from_secs(90))
        .expect("lab identified");
    let twin = ctl.build_twin(Duration::from_secs(60)).expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    let before = daemons(&twin);
    assert!(
        before.values().any(|d| !d.is_empty()),
        "twin hosts run daemons: {twin}"
    );
    assert!(
        !twin["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["mac"] == VISITOR_MAC),
        "no twin of the visitor before it exists: {twin}"
    );
    eprintln!("twin ready at {:.1} s", t0.elapsed().as_secs_f64());

    // A new host in production.
    let ns = lab::add_visitor(
        &status,
        "newcomer",
        "sw2",
        "workstations",
        VISITOR_IP.parse().unwrap(),
    )
    .expect("visitor");
    let t_plug = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    let grown = loop {
        ping_once(&ns, "10.10.2.1");
        let t = ctl.get("/api/v1/twin").unwrap();
        let joined = t["hosts"].as_array().unwrap().iter().any(|h| {
            h["mac"] == VISITOR_MAC
                && h["state"] == "ready"
                && h["ips"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|a| a == &format!("{VISITOR_IP}/24")))
        });
        if joined && t["state"] != "building" {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the twin did not follow the new host within 60 s: {t}\nlog:\n{}",
            ctl.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "newcomer in the twin {:.1} s after it was plugged in",
        t_plug.elapsed().as_secs_f64()
    );
    // Each update names the hosts it rebuilds; discovery may still refine a
    // host of the lab meanwhile (that host is then rebuilt too, rightly).
    let updated = updated_hosts(&ctl.log_text());
    let newcomer = grown["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["mac"] == VISITOR_MAC)
        .and_then(|h| h["name"].as_str())
        .unwrap()
        .to_string();
    assert!(
        updated.contains(&newcomer),
        "the update names the newcomer: {updated:?}\nlog:\n{}",
        ctl.log_text()
    );

    // Every host no update named kept its daemons: the update is incremental.
    let after = daemons(&grown);
    let kept: Vec<&String> = before.keys().filter(|n| !updated.contains(*n)).collect();
    assert!(!kept.is_empty(), "updates named every host: {updated:?}");
    for name in kept {
        assert_eq!(
            after.get(name),
            before.get(name),
            "twin host {name} was restarted though no update named it ({updated:?})"
        );
    }
    eprintln!("updated: {updated:?}");
    assert_eq!(after.len(), before.len() + 1, "{grown}");

    // The twin's newcomer answers from the observer, with the production MAC.
    let observer = grown["observer_namespace"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ping_once(&observer, VISITOR_IP) {
        assert!(
            Instant::now() < deadline,
            "the twin's newcomer does not answer the observer"
        );
    }
    let neigh = Command::new("ip")
        .args(["-n", &observer, "neigh", "show", VISITOR_IP])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(neigh.contains(VISITOR_MAC), "observer's ARP entry: {neigh}");
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}
