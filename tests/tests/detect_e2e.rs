//! The detectors fed by the twin, end to end on the office lab.
//!
//! Honeytokens: a twin built with a decoy-only host arms the honeytoken
//! detector with its address; a visitor that asks for it (an ARP request,
//! copied from its switch) raises an alert and, with `action = "redirect"`, is
//! swapped into the twin, where the decoy host answers it. A controller that
//! restarts re-arms the detector from the stored plan; destroying the twin
//! disarms it.
//!
//! Logins: full-size packets cross the tunnel; failed ssh logins of a
//! redirected attacker on the twin's real sshd (reported through PAM) raise a
//! brute-force alert; a login with the persona's planted credential raises a
//! honeytoken alert, and its redirect finds the attacker already in the twin
//! without complaint; a forged twin event naming a production host redirects
//! nothing.

use gemelo::lab::{self, LabStatus};
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{topology, twin_session_or_skip};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];
const DECOY: &str = "10.10.2.99";
const WEB01: &str = "10.10.1.10";

fn in_ns(ns: &str, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c.stdin(Stdio::null());
    c
}

fn ping_once(ns: &str, ip: &str) -> bool {
    in_ns(ns, &["ping", "-c1", "-W1", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn post(ctl: &ControllerProc, path: &str, body: &Value) -> (u16, Value) {
    reply(
        ureq::post(&format!("{}{path}", ctl.api))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    )
}

fn delete(ctl: &ControllerProc, path: &str) -> (u16, Value) {
    reply(
        ureq::delete(&format!("{}{path}", ctl.api))
            .timeout(Duration::from_secs(60))
            .call(),
    )
}

fn reply(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Plugs a visitor in and waits until discovery knows where it is.
fn visitor(
    ctl: &ControllerProc,
    status: &LabStatus,
    name: &str,
    switch: &str,
    segment: &str,
    ip: &str,
    gateway: &str,
) -> String {
    let ns =
        lab::add_visitor(status, name, switch, segment, ip.parse().unwrap()).expect("add visitor");
    let o: Vec<u8> = ip.split('.').map(|x| x.parse::<u8>().unwrap()).collect();
    let mac = format!("02:66:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        ping_once(&ns, gateway);
        let h = ctl
            .get(&format!("/api/v1/hosts/{mac}"))
            .unwrap_or(Value::Null);
        if !h["switch"].is_null() && h["ips"].as_array().is_some_and(|i| !i.is_empty()) {
            return ns;
        }
        assert!(
            Instant::now() < deadline,
            "visitor {name} not discovered: {h}"
        );
    }
}

/// Alerts of `detector` about `source`, oldest first.
fn alerts(ctl: &ControllerProc, detector: &str, source: &str) -> Vec<Value> {
    ctl.get("/api/v1/events?kind=alert")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["detector"] == detector && a["source_ip"] == source)
        .cloned()
        .collect()
}

/// Waits until `found` returns something, or fails saying `what`.
fn wait_for<T>(what: &str, limit: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The controller for the lab, with `detectors` (TOML) as its detector config.
fn controller(dir: &Path, detectors: &str) -> anyhow::Result<ControllerProc> {
    let path = dir.join("detectors.toml");
    std::fs::write(&path, detectors).unwrap();
    let path = path.display().to_string();
    let mut args: Vec<&str> = LISTEN.to_vec();
    args.extend(["--detectors", &path]);
    ControllerProc::start(dir, &args)
}

const HONEYTOKEN_REDIRECTS: &str =
    "[scan]\ncount_arp = false\n[honeytoken]\naction = \"redirect\"\n";

/// `ssh USER@HOST COMMAND` from a namespace, the password typed by SSH_ASKPASS.
fn ssh(dir: &Path, ns: &str, user: &str, password: &str, prompts: u32) -> (bool, String) {
    let askpass = dir.join(format!("askpass-{password}"));
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{password}'\n")).unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&askpass)
        .status()
        .unwrap();
    let out = Command::new("setsid")
        .args(["-w", "ip", "netns", "exec", ns, "ssh"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            &format!("NumberOfPasswordPrompts={prompts}"),
            "-o",
            "ConnectTimeout=5",
            &format!("{user}@{WEB01}"),
            "whoami",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_visitor_asking_for_a_decoy_address_is_swapped_into_the_twin() {
    let _session = twin_session_or_skip!();
    let t0 = Instant::now();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("detect-honeytoken");
    let mut ctl = controller(&dir, HONEYTOKEN_REDIRECTS).expect("controller");

    // The twin needs the workstations segment and its gateway; nothing else.
    let mut gw = status.clone();
    gw.hosts.retain(|h| h.name == "gw01");
    ctl.wait_identified(&gw, Duration::from_secs(60))
        .expect("gw01 discovered");
    let config = json!({"honeytokens": [
        {"hostname": "backup-srv", "ip": format!("{DECOY}/24"), "services": [[22, "ssh"]]}
    ]});
    let twin = ctl
        .build_twin_with(&config.to_string(), Duration::from_secs(60))
        .expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    eprintln!("twin ready at {:.1} s", t0.elapsed().as_secs_f64());

    // A visitor asks who has the decoy address: only an intruder would.
    let intr = visitor(
        &ctl,
        &status,
        "intr",
        "sw2",
        "workstations",
        "10.10.2.77",
        "10.10.2.1",
    );
    ping_once(&intr, DECOY);
    let alert = wait_for(
        "a honeytoken alert for the visitor",
        Duration::from_secs(10),
        || alerts(&ctl, "honeytoken", "10.10.2.77").pop(),
    );
    assert_eq!(alert["evidence"]["via"], "arp", "{alert}");
    assert_eq!(alert["evidence"]["address"], DECOY, "{alert}");
    assert_eq!(alert["action"], "redirect", "{alert}");
    assert_eq!(alert["source_mac"], "02:66:0a:0a:02:4d", "{alert}");
    let redirection = wait_for(
        "the detector's redirection",
        Duration::from_secs(10),
        || {
            ctl.get("/api/v1/redirections")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["trigger"] == "detector:honeytoken" && r["state"] == "active")
                .cloned()
        },
    );
    assert_eq!(redirection["source"], "10.10.2.77", "{redirection}");
    // Inside the twin the decoy host exists and answers.
    wait_for(
        "an answer from the decoy host inside the twin",
        Duration::from_secs(10),
        || ping_once(&intr, DECOY).then_some(()),
    );
    eprintln!(
        "visitor redirected by the honeytoken at {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // A restarted controller arms the detector from the stored plan.
    ctl.crash();
    let ctl = controller(&dir, HONEYTOKEN_REDIRECTS).expect("controller restart");
    ctl.wait_switches(3, Duration::from_secs(20))
        .expect("switches back");
    assert!(
        ctl.log_text().contains("honeytokens from the twin plan"),
        "{}",
        ctl.log_text()
    );
    let _ = in_ns(&intr, &["ip", "neigh", "flush", "all"]).status();
    wait_for(
        "a second honeytoken alert after the restart",
        Duration::from_secs(10),
        || {
            ping_once(&intr, DECOY);
            (alerts(&ctl, "honeytoken", "10.10.2.77").len() >= 2).then_some(())
        },
    );
    // Its redirect finds the visitor already in the twin: said calmly.
    wait_for(
        "the redirect of a redirected source",
        Duration::from_secs(5),
        || ctl.log_text().contains("already in the twin").then_some(()),
    );
    assert!(
        !ctl.log_text().contains("detector could not redirect"),
        "{}",
        ctl.log_text()
    );

    // Destroying the twin disarms it.
    let (code, r) = delete(
        &ctl,
        &format!(
            "/api/v1/redirections/{}",
            redirection["id"].as_str().unwrap()
        ),
    );
    assert_eq!(code, 200, "{r}");
    let (code, r) = delete(&ctl, "/api/v1/twin");
    assert_eq!(code, 200, "{r}");
    let late = visitor(
        &ctl,
        &status,
        "late",
        "sw2",
        "workstations",
        "10.10.2.78",
        "10.10.2.1",
    );
    for _ in 0..3 {
        assert!(!ping_once(&late, DECOY));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alerts(&ctl, "honeytoken", "10.10.2.78").is_empty(),
        "no honeytokens without a twin: {}",
        ctl.get("/api/v1/events?kind=alert").unwrap()
    );
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn logins_in_the_twin_feed_the_detectors() {
    let _session = twin_session_or_skip!();
    let t0 = Instant::now();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("detect-logins");
    let ctl = controller(
        &dir,
        "[honeytoken]\naction = \"redirect\"\n[bruteforce]\nfailed_logins = 3\n",
    )
    .expect("controller");

    // web01's sshd must be identified, so that its twin runs the real one.
    let mut web = status.clone();
    web.hosts.retain(|h| h.name == "web01");
    ctl.wait_identified(&web, Duration::from_secs(60))
        .expect("web01 discovered");
    let twin = ctl.build_twin(Duration::from_secs(60)).expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    eprintln!("twin ready at {:.1} s", t0.elapsed().as_secs_f64());

    // An attacker on the servers segment, swapped into the twin by an operator.
    let mole = visitor(
        &ctl,
        &status,
        "mole",
        "sw1",
        "servers",
        "10.10.1.77",
        "10.10.1.1",
    );
    let (code, r) = post(
        &ctl,
        "/api/v1/redirections",
        &json!({"source": "10.10.1.77", "reason": "e2e"}),
    );
    assert_eq!(code, 201, "{r}");
    let since = gemelo::fabric::rfc3339(std::time::SystemTime::now() - Duration::from_secs(1));
    // Full-size packets cross the tunnel (an SSH key exchange needs them).
    wait_for(
        "a 1500-byte ping through the tunnel",
        Duration::from_secs(10),
        || {
            in_ns(
                &mole,
                &["ping", "-c1", "-W1", "-M", "do", "-s", "1472", WEB01],
            )
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then_some(())
        },
    );

    // Three wrong passwords on the twin's real sshd.
    let (ok, said) = ssh(&dir, &mole, "admin", "letmein", 3);
    assert!(!ok, "a wrong password logged in: {said}");
    assert!(said.contains("Permission denied"), "{said}");
    let failed = wait_for("three failed login events", Duration::from_secs(10), || {
        let ev = ctl
            .get(&format!("/api/v1/events?kind=decoy&since={since}"))
            .unwrap();
        let failed: Vec<Value> = ev
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "login" && e["data"]["success"] == false)
            .cloned()
            .collect();
        (failed.len() >= 3).then_some(failed)
    });
    for e in &failed {
        assert_eq!(e["twin_host"], "web01", "{e}");
        assert_eq!(e["peer"], "10.10.1.77", "{e}");
        assert_eq!(e["protocol"], "ssh", "{e}");
        assert_eq!(e["data"]["user"], "admin", "{e}");
        assert_eq!(e["data"]["password"], "letmein", "{e}");
    }
    let brute = wait_for("a brute-force alert", Duration::from_secs(5), || {
        alerts(&ctl, "bruteforce", "10.10.1.77").pop()
    });
    assert_eq!(brute["evidence"]["kind"], "failed_logins", "{brute}");
    assert_eq!(
        brute["evidence"]["attempts"].as_array().map(Vec::len),
        Some(3),
        "{brute}"
    );
    eprintln!(
        "brute force alerted at {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        brute["reason"]
    );

    // The persona's planted credential works, and gives the attacker away.
    let (ok, said) = ssh(&dir, &mole, "admin", "admin", 1);
    assert!(ok && said.contains("admin"), "persona login: {said}");
    let planted = wait_for(
        "a honeytoken credential alert",
        Duration::from_secs(10),
        || alerts(&ctl, "honeytoken", "10.10.1.77").pop(),
    );
    assert_eq!(planted["evidence"]["kind"], "credential", "{planted}");
    assert_eq!(planted["evidence"]["success"], true, "{planted}");
    assert!(
        planted["reason"]
            .as_str()
            .unwrap()
            .starts_with("logged in with honeytoken credential \"admin\" on web01 (ssh)"),
        "{planted}"
    );
    wait_for(
        "the redirect of a redirected source",
        Duration::from_secs(5),
        || ctl.log_text().contains("already in the twin").then_some(()),
    );
    assert!(
        !ctl.log_text().contains("detector could not redirect"),
        "{}",
        ctl.log_text()
    );

    // Whoever controls a twin host can forge its events: one naming
    // production web01 raises an alert, and moves nothing into the twin.
    let forged = json!({"kind": "decoy", "twin_host": "web01", "peer": WEB01, "protocol": "ssh",
        "action": "login", "data": {"user": "admin", "password": "admin", "success": true}});
    std::os::unix::net::UnixDatagram::unbound()
        .unwrap()
        .send_to(
            forged.to_string().as_bytes(),
            gemelo::events::default_socket(&ctl.data.join("store")),
        )
        .expect("send to the event socket");
    wait_for(
        "an alert for the forged login",
        Duration::from_secs(5),
        || alerts(&ctl, "honeytoken", WEB01).pop(),
    );
    wait_for(
        "the forged source left alone",
        Duration::from_secs(5),
        || {
            ctl.log_text()
                .contains("which no redirection sent there")
                .then_some(())
        },
    );
    let list = ctl.get("/api/v1/redirections").unwrap();
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["source"] == WEB01),
        "a forged twin event redirected web01: {list}"
    );
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}
