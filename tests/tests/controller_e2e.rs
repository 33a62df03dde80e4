//! The real controller against the real office lab: userspace Open vSwitch,
//! network namespaces, real daemons.
//!
//! - gemelo programs both switches; TCP crosses both switches and the gateway;
//!   every flow it installed carries its cookie; the REST API shows the flows.
//! - A controller killed (SIGKILL) and restarted during a TCP stream and a fast
//!   ping loses nothing, and rewrites no flow that was right (durations keep growing).
//! - A restarted ovs-vswitchd (flows lost) is fully re-synced.
//! - The learning forwarding mode carries TCP with flows gemelo learned.

use anyhow::{bail, Context, Result};
use gemelo::lab::{self, LabStatus};
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{in_host, in_prod, lab_session_or_skip, topology};
use std::process::Stdio;
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];
/// Flows gemelo puts on every switch: 3 of the pipeline's skeleton, 6 classifier copies for discovery.
const FLOWS_PER_SWITCH: usize = 10;
/// The tunnel guard on the switch holding the GRE port to the twin (the lab's
/// first switch): tunnel packets skip discovery, unkeyed ones are dropped.
const TUNNEL_GUARD_FLOWS: usize = 2;

/// Flows of every kind gemelo keeps on `sw` with no redirection active.
fn flows_on(status: &lab::LabStatus, sw: &lab::SwitchStatus) -> usize {
    if status.switches.first().is_some_and(|f| f.name == sw.name) {
        FLOWS_PER_SWITCH + TUNNEL_GUARD_FLOWS
    } else {
        FLOWS_PER_SWITCH
    }
}

fn host<'a>(status: &'a LabStatus, name: &str) -> &'a lab::HostStatus {
    status
        .hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("office.toml has no host {name}"))
}

fn ip(status: &LabStatus, name: &str) -> String {
    host(status, name).ips[0]
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// One dumped flow: (cookie, table, priority, duration_s, text).
type FlowRow = (u64, u8, u16, f64, String);

/// `ovs-ofctl dump-flows` of one lab bridge, one row per flow.
fn dump_flows(status: &LabStatus, sw: &lab::SwitchStatus) -> Result<Vec<FlowRow>> {
    let text = in_prod(
        status,
        &[
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "--no-names",
            "dump-flows",
            &sw.mgmt,
        ],
    )?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.contains("cookie=")) {
        let field = |name: &str| -> Option<&str> {
            line.split([',', ' '])
                .find_map(|f| f.trim().strip_prefix(name))
        };
        let cookie = u64::from_str_radix(field("cookie=0x").context("cookie")?, 16)?;
        let table = field("table=").context("table")?.parse()?;
        let priority = field("priority=")
            .map(|p| p.parse())
            .transpose()?
            .unwrap_or(32768);
        let duration = field("duration=")
            .context("duration")?
            .trim_end_matches('s')
            .parse()?;
        rows.push((cookie, table, priority, duration, line.trim().to_string()));
    }
    Ok(rows)
}

fn curl_web(status: &LabStatus, from: &str) -> Result<()> {
    let url = format!("http://{}/", ip(status, "web01"));
    let code = in_host(
        status,
        from,
        &[
            "curl",
            "-sS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
    )?;
    if code.trim() != "200" {
        bail!("curl {url} from {from}: HTTP {code}");
    }
    Ok(())
}

#[test]
fn gemelo_programs_the_office_lab() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("programs");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let switches = ctl
        .wait_switches(2, Duration::from_secs(20))
        .expect("switches");

    for sw in &switches {
        assert_eq!(
            sw["reconciled"]["added"], FLOWS_PER_SWITCH,
            "a fresh switch gets all of gemelo's flows: {sw}"
        );
        let lab_sw = status
            .switches
            .iter()
            .find(|s| s.dpid == sw["dpid"])
            .expect("lab switch with that dpid");
        assert_eq!(sw["name"], lab_sw.bridge.as_str());
        let ports = sw["ports"].as_array().unwrap();
        assert!(ports.len() >= 3, "ports of {}: {ports:?}", lab_sw.bridge);
    }

    // TCP across sw2 -> link -> sw1 -> gateway -> sw1, and within sw1.
    curl_web(&status, "ws01").expect("http from ws01 (sw2, workstations) to web01 (sw1, servers)");
    let keys = in_host(
        &status,
        "ws02",
        &["ssh-keyscan", "-T", "5", &ip(&status, "bastion01")],
    )
    .expect("ssh-keyscan");
    assert!(keys.contains("ssh-ed25519"), "{keys}");

    // Every flow on the lab bridges is gemelo's, and the API shows the same flows.
    for sw in &status.switches {
        let rows = dump_flows(&status, sw).unwrap();
        assert_eq!(rows.len(), flows_on(&status, sw), "{rows:?}");
        for (cookie, ..) in &rows {
            assert_eq!(
                cookie >> 48,
                0x676d,
                "flow without gemelo's cookie: {rows:?}"
            );
        }
        let api_flows = ctl
            .get(&format!("/api/v1/switches/{}/flows", sw.dpid))
            .unwrap();
        let api_flows = api_flows.as_array().unwrap();
        assert_eq!(api_flows.len(), flows_on(&status, sw));
        let forward = api_flows
            .iter()
            .find(|f| f["table"] == 2)
            .expect("forward table flow");
        assert_eq!(forward["actions"], "NORMAL");
        assert_eq!(forward["cookie"], "0x676d010000000000");
        let (code, text) = ctl
            .get_status(&format!("/api/v1/switches/{}/flows?format=ofctl", sw.dpid))
            .unwrap();
        assert_eq!(code, 200);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("cookie=0x676d010000000000"))
                .count(),
            3,
            "{text}"
        );
        assert!(text.contains("actions=goto_table:1"), "{text}");
    }
    // Traffic was counted by gemelo's flows.
    let sw1 = &status.switches[0];
    let forwarded: u64 = ctl
        .get(&format!("/api/v1/switches/{}/flows", sw1.dpid))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["packets"].as_u64().unwrap())
        .sum();
    assert!(forwarded > 0, "no packet counted on {}", sw1.bridge);

    // Errors name the problem.
    let (code, body) = ctl
        .get_status("/api/v1/switches/00000000000000ff/flows")
        .unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("00000000000000ff"), "{body}");
    let (code, body) = ctl.get_status("/api/v1/switches/not-a-dpid").unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, _) = ctl
        .get_status("/api/v1/switches/0000000000000001/flows?format=yaml")
        .unwrap();
    assert_eq!(code, 400);
}

#[test]
fn controller_restart_during_tcp_stream_loses_nothing() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("restart");
    let mut ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    ctl.wait_switches(2, Duration::from_secs(20))
        .expect("switches");
    curl_web(&status, "ws01").expect("path works before the test");

    // A rate-limited TCP stream and a 20 ms ping, both across the two switches and the gateway.
    let web = ip(&status, "web01");
    let mut server = lab::host_command(&status, "web01", &["iperf3", "-s", "-1", "-p", "5201"])
        .unwrap()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let client = lab::host_command(
        &status,
        "ws01",
        &[
            "iperf3", "-c", &web, "-p", "5201", "-t", "8", "-b", "20M", "-J",
        ],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("iperf3 client");
    let ping = lab::host_command(
        &status,
        "ws02",
        &["ping", "-q", "-i", "0.02", "-c", "350", "-W", "1", &web],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("ping");

    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<_> = status
        .switches
        .iter()
        .map(|sw| dump_flows(&status, sw).unwrap())
        .collect();
    ctl.crash();
    let crashed = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let ctl2 = ControllerProc::start(&dir, &LISTEN).expect("controller again, same store");
    let switches = ctl2
        .wait_switches(2, Duration::from_secs(20))
        .expect("switches reconnect");
    for sw in &switches {
        let r = &sw["reconciled"];
        assert_eq!(
            (
                r["added"].as_u64(),
                r["deleted"].as_u64(),
                r["unchanged"].as_u64()
            ),
            (Some(0), Some(0), Some(FLOWS_PER_SWITCH as u64)),
            "a restart must not rewrite flows that are right: {sw}"
        );
    }
    let after: Vec<_> = status
        .switches
        .iter()
        .map(|sw| dump_flows(&status, sw).unwrap())
        .collect();
    let waited = crashed.elapsed().as_secs_f64();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.len(), a.len());
        for (fb, fa) in b.iter().zip(a) {
            assert_eq!((fb.0, fb.1, fb.2), (fa.0, fa.1, fa.2));
            assert!(
                fa.3 >= fb.3 + waited - 0.5,
                "flow was rewritten (duration reset): before {} after {}",
                fb.4,
                fa.4
            );
        }
    }

    let out = client.wait_with_output().unwrap();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "iperf3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    assert!(report.get("error").is_none(), "iperf3: {}", report["error"]);
    let sent = report["end"]["sum_sent"]["bytes"].as_u64().unwrap();
    let received = report["end"]["sum_received"]["bytes"].as_u64().unwrap();
    assert!(
        received > 10_000_000,
        "stream carried only {received} bytes"
    );
    assert!(
        received * 100 >= sent * 99,
        "stream lost data: sent {sent}, received {received}"
    );

    let ping = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        text.contains("350 packets transmitted"),
        "ping did not run: {text}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(
        text.contains(" 0% packet loss"),
        "pings lost across the controller restart: {text}"
    );
}

#[test]
fn restarted_vswitchd_is_fully_resynced() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("resync");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    ctl.wait_switches(2, Duration::from_secs(20))
        .expect("switches");

    let rundir = status.rundir.display().to_string();
    let pid: u32 = std::fs::read_to_string(status.rundir.join("ovs-vswitchd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "ovs-vswitchd"
    );
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    in_prod(
        &status,
        &[
            "ovs-vswitchd",
            &format!("unix:{rundir}/db.sock"),
            &format!("--pidfile={rundir}/ovs-vswitchd.pid"),
            &format!("--unixctl={rundir}/ovs-vswitchd.ctl"),
            &format!("--log-file={rundir}/ovs-vswitchd.log"),
            "--detach",
        ],
    )
    .expect("restart ovs-vswitchd");

    // The new vswitchd starts with no flows; gemelo must notice and put all of them back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sws = ctl.get("/api/v1/switches").unwrap();
        let done = sws
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["connected"] == true
                    && s["reconciled"]["added"] == FLOWS_PER_SWITCH
                    && s["peer"].is_string()
            })
            .count();
        let flows: usize = status
            .switches
            .iter()
            .map(|sw| dump_flows(&status, sw).map(|r| r.len()).unwrap_or(0))
            .sum();
        let want: usize = status.switches.iter().map(|sw| flows_on(&status, sw)).sum();
        if done == 2 && flows == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no full re-sync after vswitchd restart: {sws}\n{}",
            ctl.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    curl_web(&status, "ws01").expect("TCP works again after the re-sync");
}

#[test]
fn learning_mode_forwards_with_learned_flows() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("learning");
    let mut args = LISTEN.to_vec();
    args.extend(["--forwarding", "learning"]);
    let ctl = ControllerProc::start(&dir, &args).expect("controller");
    ctl.wait_switches(2, Duration::from_secs(20))
        .expect("switches");
    assert_eq!(ctl.get("/api/v1/health").unwrap()["forwarding"], "learning");

    curl_web(&status, "ws01").expect("http through learned flows");
    curl_web(&status, "ws01").expect("http again, now on installed flows");
    let sw1 = status.switches.iter().find(|s| s.name == "sw1").unwrap();
    let rows = dump_flows(&status, sw1).unwrap();
    let learned: Vec<_> = rows.iter().filter(|r| r.0 >> 40 == 0x676d02).collect();
    assert!(!learned.is_empty(), "no learned flow on sw1: {rows:?}");
    assert!(
        learned
            .iter()
            .all(|r| r.1 == 2 && r.2 == 100 && r.4.contains("idle_timeout=60")),
        "{learned:?}"
    );
    let miss = rows
        .iter()
        .find(|r| r.1 == 2 && r.2 == 0)
        .expect("table-miss flow");
    assert!(miss.4.contains("CONTROLLER:65535"), "{}", miss.4);
}
