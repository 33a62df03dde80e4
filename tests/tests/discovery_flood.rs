//! A flood of new source MACs on the discovery path spares production traffic
//! and the controller's API.
//!
//! Office lab + `gemelo serve` (forwarding normal). A legitimate rate-limited TCP
//! stream (iperf3, 20 Mbit/s, 15 s) runs from files01 (sw2) to web01 (sw1), across
//! both switches. During it, ws02 sends ~8000 ARP requests per second, each from a
//! new source MAC and sender IP (`benches/discovery/arpflood.py`): ARP is what the
//! classifier copies to the controller, so every frame takes the packet-in path,
//! capped by the OpenFlow controller meter. (`pktflood.py` of the shared bench
//! harness sends UDP/4789, which the classifier does not copy: it would load the
//! datapath, not gemelo.) Asserts: the stream survives (iperf3 exit 0, received ≈
//! sent), `/api/v1/health` answers throughout, and the flood did reach gemelo.

use gemelo::lab;
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{lab_session_or_skip, topology};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];
const FLOOD_PPS: u32 = 8000;
const FLOOD_SECS: u32 = 8;

#[test]
fn arp_flood_spares_tcp_stream_and_api() {
    let _session = lab_session_or_skip!();
    let flood = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/discovery/arpflood.py");
    if !flood.is_file() {
        eprintln!("skipping: {} is missing", flood.display());
        return;
    }
    // gemelo first: the lab's bridges connect at once (no OVS reconnect backoff).
    let dir = temp_dir("flood");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    ctl.wait_switches(2, Duration::from_secs(30))
        .expect("switches");
    let host = |n: &str| status.hosts.iter().find(|h| h.name == n).unwrap().clone();
    let web = host("web01");
    let ws02 = host("ws02");
    assert_ne!(
        host("files01").switch,
        web.switch,
        "the stream must cross both switches"
    );
    eprintln!("lab up, switches ready");
    let before = ctl.get("/api/v1/inventory").unwrap()["hosts"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);

    let mut server = lab::host_command(&status, "web01", &["iperf3", "-s", "-1", "-p", "5201"])
        .unwrap()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let web_ip = web.ips[0].split('/').next().unwrap().to_string();
    let client = lab::host_command(
        &status,
        "files01",
        &[
            "iperf3", "-c", &web_ip, "-p", "5201", "-t", "15", "-b", "20M", "-J",
        ],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("iperf3 client");
    std::thread::sleep(Duration::from_secs(3));

    let count = (FLOOD_PPS * FLOOD_SECS).to_string();
    let rate = FLOOD_PPS.to_string();
    let flooder = lab::host_command(
        &status,
        "ws02",
        &[
            "python3",
            flood.to_str().unwrap(),
            "-i",
            &ws02.interfaces[0].name,
            "--rate",
            &rate,
            "-n",
            &count,
            "--json",
        ],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("arpflood");
    eprintln!("stream and flood started");
    // The API answers during the whole flood.
    let flood_start = Instant::now();
    let mut worst = Duration::ZERO;
    let mut polls = 0;
    while flood_start.elapsed() < Duration::from_secs(FLOOD_SECS as u64) {
        let t = Instant::now();
        let (code, body) = ctl
            .get_status("/api/v1/health")
            .expect("health answers during the flood");
        assert_eq!(code, 200, "{body}");
        worst = worst.max(t.elapsed());
        polls += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("flood window over ({polls} health polls, worst {worst:?})");
    let f = flooder.wait_with_output().unwrap();
    eprintln!("flooder done");
    let fr: serde_json::Value = serde_json::from_slice(&f.stdout)
        .unwrap_or_else(|_| panic!("arpflood: {}", String::from_utf8_lossy(&f.stderr)));
    let after = ctl.get("/api/v1/inventory").unwrap()["hosts"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let out = client.wait_with_output().unwrap();
    if !out.status.success() {
        let _ = server.kill(); // the one-shot server still waits when the client failed
    }
    let _ = server.wait();
    eprintln!(
        "flood: {} frames at {:.0} pps; inventory {before} -> {after} hosts; health {polls} polls, worst {:.0} ms",
        fr["sent"], fr["pps"].as_f64().unwrap_or(0.0), worst.as_secs_f64() * 1000.0
    );
    assert!(
        out.status.success(),
        "iperf3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    assert!(report.get("error").is_none(), "iperf3: {}", report["error"]);
    let sent = report["end"]["sum_sent"]["bytes"].as_u64().unwrap();
    let received = report["end"]["sum_received"]["bytes"].as_u64().unwrap();
    eprintln!(
        "iperf3: sent {sent} received {received} bytes, retransmits {}",
        report["end"]["sum_sent"]["retransmits"]
    );
    assert!(
        received > 30_000_000,
        "stream carried only {received} bytes (20 Mbit/s for 15 s is 37.5 MB)"
    );
    assert!(
        received * 100 >= sent * 99,
        "stream lost data: sent {sent}, received {received}"
    );
    assert!(
        worst < Duration::from_secs(2),
        "health took {worst:?} during the flood"
    );
    assert!(
        fr["sent"].as_u64().unwrap_or(0) >= (FLOOD_PPS * FLOOD_SECS) as u64 * 9 / 10,
        "the flood did not run: {fr}"
    );
    // The flood reached gemelo (through the meter): many new MACs were inventoried.
    assert!(
        after >= before + 1000,
        "the ARP flood did not reach the controller: {before} -> {after} hosts"
    );
}
