//! Redirection end to end, on the office lab with its twin: an attacker
//! plugged into sw2 (workstations) is swapped into the twin through the REST
//! API, works there (HTTP and SSH reach the twin's decoys, whose events
//! arrive), and none of its packets reaches production web01 or gw01 (tcpdump
//! in their namespaces). Errors are clear (400, 404, 409 with the id). Release
//! restores production, a TTL releases by itself, a signed webhook redirects
//! and releases (bad signatures and replays get 401). A controller crash and
//! restart keeps the redirection's flows as they were. While an attacker is
//! swapped in and out 10 times, a legitimate workstation keeps a 1 ms ping and
//! a TCP stream to the same server: no ping lost, the stream never breaks.

use gemelo::lab;
use gemelo_tests::capture::Capture;
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{topology, twin_session_or_skip};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];
const ATTACKER_IP: &str = "10.10.2.66";
const ATTACKER_MAC: &str = "02:66:0a:0a:02:42";
const WEB01: &str = "10.10.1.10";
const SECRET: &str = "a-test-secret-for-the-siem";

fn post(ctl: &ControllerProc, path: &str, body: &str) -> (u16, Value) {
    let r = ureq::post(&format!("{}{path}", ctl.api))
        .set("Content-Type", "application/json")
        .send_string(body);
    reply(r)
}

fn delete(ctl: &ControllerProc, path: &str) -> (u16, Value) {
    reply(ureq::delete(&format!("{}{path}", ctl.api)).call())
}

fn reply(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn signed(ctl: &ControllerProc, body: &str, ts: u64) -> ureq::Request {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    ureq::post(&format!("{}/api/v1/hooks/siem", ctl.api))
        .set("X-Gemelo-Timestamp", &ts.to_string())
        .set("X-Gemelo-Signature", &format!("sha256={sig}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn in_ns(ns: &str, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c
}

fn output(mut c: Command) -> String {
    let o = c.stdin(Stdio::null()).output().expect("run");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn http_code(ns: &str) -> String {
    output(in_ns(
        ns,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "5",
            &format!("http://{WEB01}/"),
        ],
    ))
}

/// Plugs the attacker into sw2 (workstations) and waits until discovery
/// knows it (its ARP for the gateway); its namespace.
fn plug_attacker(status: &lab::LabStatus, ctl: &ControllerProc) -> String {
    let atk = lab::add_visitor(
        status,
        "atk",
        "sw2",
        "workstations",
        ATTACKER_IP.parse().unwrap(),
    )
    .expect("attacker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = in_ns(&atk, &["ping", "-c1", "-W1", "10.10.2.1"])
            .stdout(Stdio::null())
            .status();
        let h = ctl
            .get(&format!("/api/v1/hosts/{ATTACKER_MAC}"))
            .unwrap_or(Value::Null);
        if !h["switch"].is_null() && h["ips"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "attacker not discovered: {h}");
    }
    atk
}

/// Flows of the redirection cookie kind on a production switch, as ovs-ofctl prints them.
fn redirection_flows(status: &lab::LabStatus, sw: &str, cookie: &str) -> Vec<String> {
    let s = status.switches.iter().find(|s| s.name == sw).unwrap();
    let out = lab::prod_command(
        status,
        &[
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "--no-names",
            "dump-flows",
            &s.mgmt,
            &format!("cookie={cookie}/-1"),
        ],
    )
    .output()
    .expect("dump-flows");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(str::to_owned)
        .collect()
}

fn duration_s(flow: &str) -> f64 {
    flow.split("duration=")
        .nth(1)
        .and_then(|d| d.split('s').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn attacker_is_swapped_into_the_twin_and_back() {
    let _session = twin_session_or_skip!();
    let t0 = Instant::now();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("redirect");
    let hooks = dir.join("hooks.toml");
    std::fs::write(
        &hooks,
        format!("[integration.siem]\nsecret = \"{SECRET}\"\n"),
    )
    .unwrap();
    let hooks_s = hooks.display().to_string();
    // The scan detector redirects (the default only alerts).
    let detectors = dir.join("detectors.toml");
    std::fs::write(
        &detectors,
        "[scan]\naction = \"redirect\"\ncount_arp = false\n",
    )
    .unwrap();
    let detectors_s = detectors.display().to_string();
    let mut args: Vec<&str> = LISTEN.to_vec();
    args.extend(["--hooks", &hooks_s, "--detectors", &detectors_s]);
    let mut ctl = ControllerProc::start(&dir, &args).expect("controller");
    ctl.wait_identified(&status, Duration::from_secs(90))
        .expect("discovery");
    let twin = ctl.build_twin(Duration::from_secs(60)).expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    eprintln!("twin ready at {:.1} s", t0.elapsed().as_secs_f64());

    // No redirection without a known source.
    let (code, body) = post(&ctl, "/api/v1/redirections", "{\"source\": \"10.10.2.99\"}");
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("10.10.2.99"),
        "{body}"
    );
    let (code, body) = post(&ctl, "/api/v1/redirections", "{\"source\": \"ten.ten\"}");
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(&ctl, "/api/v1/redirections", "{\"src\": \"10.10.2.66\"}");
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("src"), "{body}");
    let (code, _) = delete(&ctl, "/api/v1/redirections/r999");
    assert_eq!(code, 404);

    // The attacker plugs in and shows up (ARP for its gateway).
    let atk = plug_attacker(&status, &ctl);
    assert_eq!(
        http_code(&atk),
        "200",
        "attacker reaches production before the swap"
    );

    // Captures where production serves: web01 and the gateway.
    // `host` covers IPv4 and ARP (`ether host` is not available on `-i any`).
    let filter = format!("host {ATTACKER_IP}");
    let mut caps: Vec<Capture> = ["web01", "gw01"]
        .iter()
        .map(|h| {
            let cmd = lab::host_command(&status, h, &[]).unwrap();
            Capture::start(h, cmd, dir.join(format!("{h}.pcap")), &filter)
        })
        .collect();
    Capture::settle();
    caps.iter_mut().for_each(Capture::assert_running);

    // The swap.
    let since = gemelo::fabric::rfc3339(SystemTime::now());
    let (code, r) = post(
        &ctl,
        "/api/v1/redirections",
        &json!({"source": ATTACKER_IP, "reason": "e2e"}).to_string(),
    );
    assert_eq!(code, 201, "{r}");
    // From here on (the switches confirmed), nothing of the attacker reaches production.
    let swapped = SystemTime::now();
    eprintln!("redirection: {r}");
    assert_eq!(r["state"], "active");
    assert_eq!(r["key"], 4097);
    assert_eq!(r["source"], ATTACKER_IP);
    assert!(r["flows"].as_u64().unwrap() > 0);
    assert!(r["install_ms"].as_f64().unwrap() > 0.0);
    let switches: Vec<&str> = r["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(switches, ["0000000000000001", "0000000000000002"], "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let cookie = format!(
        "{:#x}",
        0x676d_0300_0000_0000u64 | r["number"].as_u64().unwrap()
    );
    let (code, dup) = post(
        &ctl,
        "/api/v1/redirections",
        &json!({"source": ATTACKER_IP}).to_string(),
    );
    assert_eq!(code, 409, "{dup}");
    assert_eq!(dup["id"], id.as_str());
    let sw2 = redirection_flows(&status, "sw2", &cookie);
    assert!(
        !sw2.is_empty() && sw2.iter().all(|f| f.contains("table=1")),
        "{sw2:#?}"
    );

    // The attacker works inside the twin.
    assert_eq!(http_code(&atk), "200", "attacker's HTTP after the swap");
    let banner = output(in_ns(
        &atk,
        &["sh", "-c", &format!("echo | nc -w3 {WEB01} 22")],
    ));
    assert!(
        banner.starts_with("SSH-2.0-"),
        "SSH banner from the twin: {banner:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let events = loop {
        let ev = ctl
            .get(&format!("/api/v1/events?kind=decoy&since={since}"))
            .unwrap();
        let from_atk: Vec<Value> = ev
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("{ATTACKER_IP}:")))
            })
            .cloned()
            .collect();
        if from_atk.iter().any(|e| e["protocol"] == "http") {
            break from_atk;
        }
        assert!(
            Instant::now() < deadline,
            "no decoy event from the attacker: {ev}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!("{} decoy events from the attacker", events.len());

    // Nothing of the attacker reached production meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    for c in caps.iter_mut() {
        c.stop();
    }
    for c in &caps {
        let leaked = c.read_since(&filter, swapped);
        assert!(
            leaked.is_empty(),
            "attacker's packets reached production {}:\n{}",
            c.name,
            leaked.join("\n")
        );
    }

    // A crash and restart of the controller: the redirection's flows stay as they were.
    let before = redirection_flows(&status, "sw2", &cookie);
    ctl.crash();
    std::thread::sleep(Duration::from_millis(1500));
    let ctl2 = ControllerProc::start(&dir, &args).expect("controller restart");
    ctl2.wait_switches(3, Duration::from_secs(20))
        .expect("switches back");
    std::thread::sleep(Duration::from_secs(2));
    let after = redirection_flows(&status, "sw2", &cookie);
    assert_eq!(
        before.len(),
        after.len(),
        "before {before:#?}\nafter {after:#?}"
    );
    let (b, a) = (duration_s(&before[0]), duration_s(&after[0]));
    assert!(
        a >= b + 1.0,
        "flows were reinstalled: duration {b} then {a}"
    );
    assert!(
        ctl2.log_text().contains("redirection flows reconciled"),
        "{}",
        ctl2.log_text()
    );
    assert_eq!(http_code(&atk), "200", "attacker's HTTP after the restart");
    let ctl = ctl2;

    // Release: production again (and captures there see the attacker: they work).
    let (code, rel) = delete(&ctl, &format!("/api/v1/redirections/{id}"));
    assert_eq!(code, 200, "{rel}");
    assert_eq!(rel["state"], "released");
    assert!(redirection_flows(&status, "sw2", &cookie).is_empty());
    let (code, _) = delete(&ctl, &format!("/api/v1/redirections/{id}"));
    assert_eq!(code, 409, "a second release conflicts");
    let mut web = Capture::start(
        "web01",
        lab::host_command(&status, "web01", &[]).unwrap(),
        dir.join("web01-after.pcap"),
        &filter,
    );
    Capture::settle();
    web.assert_running();
    assert_eq!(http_code(&atk), "200", "attacker's HTTP after release");
    std::thread::sleep(Duration::from_millis(300));
    web.stop();
    if web.read(&filter).is_empty() {
        for sw in ["sw1", "sw2"] {
            let s = status.switches.iter().find(|s| s.name == sw).unwrap();
            let out = lab::prod_command(
                &status,
                &[
                    "ovs-ofctl",
                    "-O",
                    "OpenFlow13",
                    "--no-names",
                    "dump-flows",
                    &s.mgmt,
                    "table=1",
                ],
            )
            .output()
            .unwrap();
            eprintln!("{sw} table 1:\n{}", String::from_utf8_lossy(&out.stdout));
        }
        eprintln!("capture: {:?}", web.read(""));
        for br in ["gm-sw1", "gm-sw2"] {
            let out = Command::new("ovs-appctl")
                .args([
                    "-t",
                    &format!("{}/ovs-vswitchd.ctl", status.rundir.display()),
                    "fdb/show",
                    br,
                ])
                .output()
                .unwrap();
            eprintln!("{br} fdb:\n{}", String::from_utf8_lossy(&out.stdout));
        }
        eprintln!(
            "decoy events: {}",
            ctl.get("/api/v1/events?kind=decoy").unwrap()
        );
        eprintln!(
            "log:\n{}",
            ctl.log_text()
                .lines()
                .filter(|l| l.contains("redirect") || l.contains("release"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        panic!("after release web01 does not see the attacker again");
    }

    // A TTL releases by itself.
    let (code, r) = post(
        &ctl,
        "/api/v1/redirections",
        &json!({"source": ATTACKER_MAC, "ttl_s": 1}).to_string(),
    );
    assert_eq!(code, 201, "{r}");
    let ttl_id = r["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ctl.get(&format!("/api/v1/redirections/{ttl_id}")).unwrap();
        if r["state"] == "released" {
            assert_eq!(r["release_reason"], "ttl expired", "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "TTL did not release: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The signed webhook.
    let body =
        json!({"action": "redirect", "source": ATTACKER_IP, "reason": "siem alert 42"}).to_string();
    let ts = unix_now();
    let bad = reply(
        signed(
            &ctl,
            "{\"action\": \"redirect\", \"source\": \"10.10.2.21\"}",
            ts,
        )
        .send_string(&body),
    );
    assert_eq!(bad.0, 401, "a signature of another body: {}", bad.1);
    let old = reply(signed(&ctl, &body, ts - 400).send_string(&body));
    assert_eq!(old.0, 401, "an old timestamp: {}", old.1);
    let (code, r) = reply(signed(&ctl, &body, ts).send_string(&body));
    assert_eq!(code, 201, "{r}");
    assert_eq!(r["trigger"], "webhook:siem");
    let replay = reply(signed(&ctl, &body, ts).send_string(&body));
    assert_eq!(replay.0, 401, "a replay: {}", replay.1);
    let release = json!({"action": "release", "id": r["id"]}).to_string();
    let (code, r) = reply(signed(&ctl, &release, unix_now()).send_string(&release));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["state"], "released");

    // Swaps while a legitimate workstation pings and streams to the same server.
    let iperf_srv = lab::host_command(&status, "web01", &["iperf3", "-s", "-1", "-p", "5299"])
        .unwrap()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(500));
    let swaps = 10;
    let stream_s = 8;
    let iperf = lab::host_command(
        &status,
        "ws01",
        &[
            "iperf3",
            "-c",
            WEB01,
            "-p",
            "5299",
            "-b",
            "5M",
            "-t",
            &stream_s.to_string(),
            "-J",
        ],
    )
    .unwrap()
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("iperf3 client");
    let ping = lab::host_command(
        &status,
        "ws01",
        &[
            // A count, not a deadline (-w): the last echo gets its reply.
            "ping", "-i", "0.001", "-c", "5000", "-W", "2", "-q", WEB01,
        ],
    )
    .unwrap()
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("ping");
    std::thread::sleep(Duration::from_millis(800));
    let mut install = Vec::new();
    for _ in 0..swaps {
        let (code, r) = post(
            &ctl,
            "/api/v1/redirections",
            &json!({"source": ATTACKER_IP, "reason": "swap loop"}).to_string(),
        );
        assert_eq!(code, 201, "{r}");
        install.push(r["install_ms"].as_f64().unwrap());
        let _ = in_ns(
            &atk,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "1",
                &format!("http://{WEB01}/"),
            ],
        )
        .status();
        let (code, r2) = delete(
            &ctl,
            &format!("/api/v1/redirections/{}", r["id"].as_str().unwrap()),
        );
        assert_eq!(code, 200, "{r2}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ping = ping.wait_with_output().unwrap();
    let iperf = iperf.wait_with_output().unwrap();
    gemelo_tests::controller::stop_child(iperf_srv);
    let ping_out = String::from_utf8_lossy(&ping.stdout);
    eprintln!(
        "ping during {swaps} swaps: {}",
        ping_out
            .lines()
            .filter(|l| l.contains("packets"))
            .collect::<String>()
    );
    eprintln!("install ms: {install:?}");
    assert!(
        ping_out.contains(" 0% packet loss"),
        "pings lost during swaps:\n{ping_out}"
    );
    let report: Value = serde_json::from_slice(&iperf.stdout).unwrap_or(Value::Null);
    assert!(
        iperf.status.success() && report["error"].is_null(),
        "TCP stream broke during swaps: {} {}",
        report["error"],
        String::from_utf8_lossy(&iperf.stderr)
    );
    let sent = report["end"]["sum_sent"]["bytes"].as_f64().unwrap_or(0.0);
    assert!(sent > 0.0, "no bytes streamed: {report}");

    // A port scan: the scan detector alerts and swaps the attacker in by itself.
    let nmap = output(in_ns(
        &atk,
        &["nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-200", WEB01],
    ));
    let deadline = Instant::now() + Duration::from_secs(15);
    let by_detector = loop {
        let list = ctl.get("/api/v1/redirections").unwrap();
        if let Some(r) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["trigger"] == "detector:scan" && r["state"] == "active")
        {
            break r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the scan detector did not redirect: {list}\nnmap: {nmap}\nalerts: {}",
            ctl.get("/api/v1/events?kind=alert").unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(by_detector["source"], ATTACKER_IP, "{by_detector}");
    let alerts = ctl.get("/api/v1/events?kind=alert").unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["detector"] == "scan" && a["source_ip"] == ATTACKER_IP),
        "{alerts}"
    );
    eprintln!("scan detector: {}", by_detector["reason"]);
    let (code, _) = delete(
        &ctl,
        &format!(
            "/api/v1/redirections/{}",
            by_detector["id"].as_str().unwrap()
        ),
    );
    assert_eq!(code, 200);

    // Every swap is an event.
    let ev = ctl.get("/api/v1/events?kind=redirection").unwrap();
    let n = |a: &str| {
        ev.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == a)
            .count()
    };
    assert!(
        n("redirect") >= swaps + 3 && n("release") >= swaps + 3,
        "{ev}"
    );
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}

/// A redirection into a twin host on another backend: web01's twin is an LXC
/// container. The attacker's HTTP crosses the GRE tunnel into the twin switch
/// and the container's veth, and is answered and recorded there.
#[test]
fn attacker_reaches_an_lxc_twin_host() {
    let _session = twin_session_or_skip!();
    if let Some(why) = gemelo_hypervisor::libvirt::daemon::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("redirect-lxc");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    ctl.wait_identified(&status, Duration::from_secs(90))
        .expect("discovery");
    let twin = ctl
        .build_twin_with(
            r#"{"backend_by_host": {"web01": "lxc"}}"#,
            Duration::from_secs(120),
        )
        .expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    let web = twin["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "web01")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(web["backend"], "lxc", "{twin}");

    let atk = plug_attacker(&status, &ctl);

    let since = gemelo::fabric::rfc3339(SystemTime::now());
    let (code, r) = post(
        &ctl,
        "/api/v1/redirections",
        &json!({"source": ATTACKER_IP, "reason": "e2e lxc"}).to_string(),
    );
    assert_eq!(code, 201, "{r}");
    assert_eq!(
        http_code(&atk),
        "200",
        "attacker's HTTP to the LXC twin host"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = ctl
            .get(&format!("/api/v1/events?kind=decoy&since={since}"))
            .unwrap();
        let answered_in_twin = ev.as_array().unwrap().iter().any(|e| {
            e["twin_host"] == "web01"
                && e["protocol"] == "http"
                && e["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("{ATTACKER_IP}:")))
        });
        if answered_in_twin {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no HTTP event from the LXC web01 for the attacker: {ev}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let id = r["id"].as_str().unwrap().to_string();
    let (code, _) = delete(&ctl, &format!("/api/v1/redirections/{id}"));
    assert_eq!(code, 200);
}
