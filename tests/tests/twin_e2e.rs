//! The digital twin of the office lab, end to end: discovery's inventory becomes
//! a twin plan, the netns backend builds it on the twin's own OVS instance (programmed
//! by gemelo), and from the observer namespace each twin host answers as its
//! production original did; an SSH login to the twin lands in the recording
//! persona shell and its commands arrive as decoy events.

use gemelo::lab;
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{in_host, lab_session_or_skip, topology};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];

fn observer(argv: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", "gm-twin-observer"])
        .args(argv)
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        });
    String::from_utf8_lossy(&out.unwrap().stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

struct TwinGuard<'a>(&'a ControllerProc);
impl Drop for TwinGuard<'_> {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/api/v1/twin", self.0.api))
            .timeout(Duration::from_secs(60))
            .call();
    }
}

#[test]
fn office_twin_answers_like_production_and_records() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("twin");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let _twin = TwinGuard(&ctl);

    // Wait for discovery to have identified web01's services.
    let web_mac = status
        .hosts
        .iter()
        .find(|h| h.name == "web01")
        .unwrap()
        .mac
        .clone();
    let deadline = Instant::now() + Duration::from_secs(90);
    let printer_mac = status
        .hosts
        .iter()
        .find(|h| h.name == "printer01")
        .unwrap()
        .mac
        .clone();
    let web = loop {
        let h = ctl
            .get(&format!("/api/v1/hosts/{web_mac}"))
            .unwrap_or(Value::Null);
        let p = ctl
            .get(&format!("/api/v1/hosts/{printer_mac}"))
            .unwrap_or(Value::Null);
        let identified = h["services"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| !s["product"].is_null()).count());
        let printer_snmp = p["services"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "snmp" && !s["product"].is_null())
        });
        if identified >= 2 && !h["hostname"].is_null() && printer_snmp {
            break h;
        }
        assert!(Instant::now() < deadline, "web01 not identified: {h}");
        std::thread::sleep(Duration::from_millis(500));
    };

    // Errors first: a malformed config is refused.
    let bad = ureq::post(&format!("{}/api/v1/twin", ctl.api)).send_string("{\"segments\": 7}");
    assert!(matches!(bad, Err(ureq::Error::Status(400, _))), "{bad:?}");

    let t = Instant::now();
    let r = ureq::post(&format!("{}/api/v1/twin", ctl.api))
        .send_string("")
        .expect("POST /api/v1/twin");
    assert_eq!(r.status(), 202);
    let twin = loop {
        let s = ctl.get("/api/v1/twin").unwrap();
        if s["state"] != "building" && s["state"] != "absent" {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "twin not built: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("twin built in {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(twin["state"], "ready", "{twin}");
    assert_eq!(twin["switch"]["namespace"], "gm-twin");
    assert_eq!(twin["observer_namespace"], "gm-twin-observer");
    let hosts = twin["hosts"].as_array().unwrap();
    let twin_web = hosts
        .iter()
        .find(|h| h["name"] == "web01")
        .expect("web01 twin");
    assert_eq!(twin_web["mac"], web_mac.as_str());
    assert_eq!(twin_web["ips"][0], "10.10.1.10/24");
    assert_eq!(twin_web["backend"], "netns");
    assert!(hosts.iter().all(|h| h["state"] == "ready"), "{hosts:?}");

    // The twin switch is gemelo's: connected, with twin flows only.
    let sws = ctl.get("/api/v1/switches").unwrap();
    let twin_sw = sws
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "gm-twin0")
        .expect("twin switch connected");
    let flows = ctl
        .get(&format!(
            "/api/v1/switches/{}/flows",
            twin_sw["dpid"].as_str().unwrap()
        ))
        .unwrap();
    assert!(
        flows
            .as_array()
            .unwrap()
            .iter()
            // The twin's own flows, and the tunnel guard (no redirection active).
            .all(|f| {
                let c = f["cookie"].as_str().unwrap();
                c.starts_with("0x676d04") || c == "0x676d030000000000"
            }),
        "{flows}"
    );
    // And discovery did not mistake twin hosts for production ones.
    let inv = ctl.get("/api/v1/inventory").unwrap();
    assert!(
        inv["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["switch"] != twin_sw["dpid"]),
        "twin hosts in the inventory"
    );

    // Fidelity from the observer: same HTTP body, same SSH identification, same hostname.
    let http = web["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == 80)
        .unwrap();
    let body = Command::new("ip")
        .args([
            "netns",
            "exec",
            "gm-twin-observer",
            "curl",
            "-s",
            "-m",
            "5",
            "http://10.10.1.10/",
        ])
        .output()
        .unwrap()
        .stdout;
    let prod_body = in_host(
        &status,
        "ws02",
        &["curl", "-s", "-m", "5", "http://10.10.1.10/"],
    )
    .unwrap();
    assert_eq!(
        sha256_hex(&body),
        sha256_hex(prod_body.as_bytes()),
        "twin page differs from production's"
    );
    if let Some(h) = http["details"]["body_sha256"].as_str() {
        assert_eq!(sha256_hex(&body), h);
    }
    let ssh = web["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == 22)
        .unwrap();
    let scan = Command::new("ip")
        .args([
            "netns",
            "exec",
            "gm-twin-observer",
            "ssh-keyscan",
            "-T",
            "5",
            "10.10.1.10",
        ])
        .output()
        .unwrap();
    let banner = String::from_utf8_lossy(&scan.stderr);
    assert!(
        banner.contains(ssh["banner"].as_str().unwrap().trim()),
        "twin SSH banner {banner} != {}",
        ssh["banner"]
    );
    let name = observer(&[
        "snmpget",
        "-v2c",
        "-c",
        "public",
        "-Oqv",
        "-t",
        "2",
        "10.10.2.30",
        "1.3.6.1.2.1.1.5.0",
    ]);
    assert_eq!(
        name.trim().trim_matches('"'),
        "printer01",
        "printer01's twin names itself over SNMP"
    );

    // An SSH login to the twin lands in the persona shell; its commands become events.
    let askpass = dir.join("askpass.sh");
    std::fs::write(&askpass, "#!/bin/sh\necho admin\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&askpass)
        .status()
        .unwrap();
    let since = gemelo::fabric::rfc3339(std::time::SystemTime::now() - Duration::from_secs(1));
    let login = Command::new("setsid")
        .args([
            "-w",
            "ip",
            "netns",
            "exec",
            "gm-twin-observer",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "ConnectTimeout=5",
            "admin@10.10.1.10",
            "whoami; uname -a",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&login.stdout);
    assert!(
        said.contains("admin"),
        "persona shell answered: {said} / {}",
        String::from_utf8_lossy(&login.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let evs = ctl
            .get(&format!("/api/v1/events?kind=decoy&since={since}"))
            .unwrap();
        let cmd = evs
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "command" && e["twin_host"] == "web01");
        if let Some(e) = cmd {
            assert!(
                e["data"]["command"].as_str().unwrap().contains("whoami"),
                "{e}"
            );
            assert!(
                e["peer"].as_str().unwrap().starts_with("10.10.1.254"),
                "{e}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no command event: {evs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = ctl.get_status("/api/v1/events?since=yesterday").unwrap();
    assert_eq!(code, 400);

    // Destroy removes the twin.
    let r = ureq::delete(&format!("{}/api/v1/twin", ctl.api))
        .timeout(Duration::from_secs(60))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(ctl.get("/api/v1/twin").unwrap()["state"], "absent");
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(!ns.lines().any(|l| l.starts_with("gm-twin")), "{ns}");
}
