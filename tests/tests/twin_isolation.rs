//! The office twin is isolated from production, proven on the wire.
//!
//! Lab up, `gemelo serve`, discovery, `POST /api/v1/twin`; then packet captures
//! (`tcpdump -i any`) run in every production host namespace, in the production
//! OVS namespace `gm-prod` (which holds the host side of every switch port, so it
//! sees every frame the production switches carry) and in the probe namespace.
//! From inside every twin host the test then tries everything it can to reach
//! production: ARP + ping, TCP (`nc -z`, `curl`) and UDP (`nc -u`) to every
//! production address (which the twin also has: twin hosts mirror production's
//! IPs and MACs), to an unused address of every segment, to the probe's
//! addresses, and to the IPv6 link-local addresses of the production OVS
//! namespace's ports; and the TCP/UDP management ports of OVS and OpenFlow.
//!
//! Twin hosts carry production's very IPs and MACs, so twin traffic is marked:
//! every TCP/UDP probe uses a source port in 31000-31999 (below the ephemeral
//! range, a port nothing in the lab uses), every ping a payload size nothing
//! else sends (IPv4 total length 1139, IPv6 payload 1119), and the unused
//! addresses (.250) are ARPed for by nobody in production. Production captures
//! must hold 0 marked packets. A control run from the probe namespace (source
//! ports 30000-30099, ping length 1140) proves the captures see what crosses.
//!
//! Unix-socket management paths (OVS db.sock/`.mgmt`, the OpenFlow socket) are
//! not network paths: a netns twin host shares the machine's filesystem, so a
//! process running as root there can open them. The test records which ones a
//! twin host can open (a documented limit of the netns backend) but asserts
//! only network isolation.

use gemelo::lab;
use gemelo_hypervisor::{netns, tunnel, twin};
use gemelo_tests::capture::Capture;
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::{lab_session_or_skip, topology, TWIN_RUN_DIR};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];

/// What twin hosts send (see the module doc). The probe namespace's own ARP
/// sweep (gemelo's active discovery) also asks for the unused addresses: its
/// MACs are excluded when the capture is read (`twin_mark`).
const TWIN_MARK: &str = "src portrange 31000-31999 or dst portrange 31000-31999 or (icmp and ip[2:2] = 1139) \
                         or (icmp6 and ip6[4:2] = 1119) or (arp and (arp host 10.10.1.250 or arp host 10.10.2.250))";

/// `TWIN_MARK` minus ARP sent by the production MACs in `exclude`.
fn twin_mark(exclude: &[String]) -> String {
    let not: String = exclude
        .iter()
        .map(|m| format!(" and not ether src {m}"))
        .collect();
    format!(
        "src portrange 31000-31999 or dst portrange 31000-31999 or (icmp and ip[2:2] = 1139) \
         or (icmp6 and ip6[4:2] = 1119) or (arp and (arp host 10.10.1.250 or arp host 10.10.2.250){not})"
    )
}

fn macs(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ip", "-j", "link"])
        .output()
        .expect("ip link");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut m: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["ifname"] != "lo")
        .filter_map(|l| l["address"].as_str().map(str::to_owned))
        .collect();
    m.sort();
    m.dedup();
    m
}
/// What the production control run sends.
const CONTROL_MARK: &str =
    "src portrange 30000-30099 or dst portrange 30000-30099 or (icmp and ip[2:2] = 1140)";

struct TwinGuard<'a>(&'a ControllerProc);
impl Drop for TwinGuard<'_> {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/api/v1/twin", self.0.api))
            .timeout(Duration::from_secs(60))
            .call();
    }
}

fn ips_of(status: &lab::LabStatus) -> Vec<String> {
    let mut v: Vec<String> = status
        .hosts
        .iter()
        .flat_map(|h| {
            h.ips
                .iter()
                .map(|ip| ip.split('/').next().unwrap().to_string())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn link_locals(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ip", "-j", "addr"])
        .output()
        .expect("ip addr");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["family"] == "inet6" && a["scope"] == "link")
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect()
}

/// Global or host-scope addresses other than loopback's in a namespace.
fn non_loopback_addresses(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ip", "-j", "addr"])
        .output()
        .expect("ip addr");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["ifname"] != "lo")
        .flat_map(|l| {
            let name = l["ifname"].as_str().unwrap_or("").to_string();
            l["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |a| format!("{name}: {}", a["local"]))
        })
        .collect()
}

/// The shell script a twin host runs: every probe, each target in parallel
/// with its own block of 20 marked source ports.
fn probe_script(targets: &[String], v6: &[String]) -> String {
    let tcp = [
        21u16, 22, 23, 80, 443, 502, 1883, 6633, 6640, 6653, 8080, 31999,
    ];
    let udp = [53u16, 67, 161, 5353, 31999];
    let mut s = String::from("IF=$(ls /sys/class/net | grep -v '^lo$' | head -1)\n");
    for (i, t) in targets.iter().enumerate() {
        let base = 31000 + 20 * i as u16;
        s.push_str(&format!("( ping -c1 -W1 -s1111 {t} >/dev/null 2>&1\n"));
        for (j, p) in tcp.iter().enumerate() {
            s.push_str(&format!(
                "nc -z -n -w1 -p {} {t} {p} >/dev/null 2>&1\n",
                base + j as u16
            ));
        }
        for (j, p) in udp.iter().enumerate() {
            s.push_str(&format!(
                "echo gm-twin-mark | nc -u -n -w1 -p {} {t} {p} >/dev/null 2>&1\n",
                base + 12 + j as u16
            ));
        }
        s.push_str(&format!(
            "curl -s -m1 --local-port {} http://{t}/ >/dev/null 2>&1 ) &\n",
            base + 17
        ));
    }
    for a in v6 {
        s.push_str(&format!(
            "ping -6 -c1 -W1 -s1111 {a}%$IF >/dev/null 2>&1 &\n"
        ));
    }
    s.push_str("wait\n");
    s
}

#[test]
fn twin_sends_nothing_to_production() {
    let _session = lab_session_or_skip!();
    let t0 = Instant::now();
    let status = lab::up(&topology("office"), lab::DEFAULT_CONTROLLER).expect("lab up");
    let dir = temp_dir("twin-isolation");
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let _twin = TwinGuard(&ctl);

    ctl.wait_identified(&status, Duration::from_secs(90))
        .expect("discovery");
    eprintln!("discovery done at {:.1} s", t0.elapsed().as_secs_f64());

    let twin = ctl.build_twin(Duration::from_secs(45)).expect("twin");
    assert_eq!(twin["state"], "ready", "{twin}");
    let tstatus = twin::status(Path::new(TWIN_RUN_DIR))
        .expect("twin status")
        .expect("a twin");
    let twin_hosts: Vec<String> = tstatus
        .hosts
        .iter()
        .filter(|h| h.namespace.is_some())
        .map(|h| h.name.clone())
        .collect();
    eprintln!(
        "twin built at {:.1} s: {twin_hosts:?}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        twin_hosts.len() >= status.hosts.len() - 1,
        "twin hosts {twin_hosts:?} vs lab {}",
        status.hosts.len()
    );

    // The twin switch's namespace has one address: its tunnel endpoint on the
    // underlay (no host port is on that bridge).
    let sw_addrs = non_loopback_addresses(&tstatus.switch.namespace);
    let sw_addrs: Vec<&String> = sw_addrs.iter().filter(|a| !a.contains("fe80:")).collect();
    assert_eq!(
        sw_addrs,
        [&format!("gm-ul: \"{}\"", tunnel::TWIN.ip())],
        "twin switch namespace has addresses besides its tunnel end: {sw_addrs:?}"
    );
    let ll_twin_sw = link_locals(&tstatus.switch.namespace);

    // Captures on the production side.
    let filter = format!("({TWIN_MARK}) or ({CONTROL_MARK})");
    let mut caps = Vec::new();
    for h in &status.hosts {
        let cmd = lab::host_command(&status, &h.name, &[]).expect("host command");
        caps.push(Capture::start(
            &h.name,
            cmd,
            dir.join(format!("{}.pcap", h.name)),
            &filter,
        ));
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &status.namespace]);
    caps.push(Capture::start(
        &status.namespace,
        cmd,
        dir.join("prod.pcap"),
        &filter,
    ));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", tunnel::UNDERLAY_NAMESPACE]);
    caps.push(Capture::start(
        tunnel::UNDERLAY_NAMESPACE,
        cmd,
        dir.join("underlay.pcap"),
        &filter,
    ));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &status.probe.namespace]);
    caps.push(Capture::start(
        &status.probe.namespace,
        cmd,
        dir.join("probe.pcap"),
        &filter,
    ));
    Capture::settle();
    caps.iter_mut().for_each(Capture::assert_running);

    // Every twin host tries to reach production.
    let mut targets = ips_of(&status);
    targets.extend(
        [
            "10.10.1.250",
            "10.10.2.250",
            "10.10.1.254",
            "10.10.2.254",
            "127.0.0.1",
            tunnel::PRODUCTION.ip(),
            tunnel::TWIN.ip(),
        ]
        .map(str::to_owned),
    );
    let mut v6 = link_locals(&status.namespace);
    v6.extend(link_locals(&status.probe.namespace));
    v6.extend(ll_twin_sw);
    let script = probe_script(&targets, &v6);
    let started = Instant::now();
    let children: Vec<(String, Child)> = twin_hosts
        .iter()
        .map(|h| {
            let mut c = netns::host_command(&tstatus, h, &["sh", "-c", &script])
                .expect("twin host command");
            (
                h.clone(),
                c.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn probes"),
            )
        })
        .collect();
    for (_, mut c) in children {
        let _ = c.wait();
    }
    eprintln!(
        "{} twin hosts probed {} targets + {} link-locals in {:.1} s",
        twin_hosts.len(),
        targets.len(),
        v6.len(),
        started.elapsed().as_secs_f64()
    );

    // Unix-socket management paths: recorded, not asserted (shared filesystem).
    let socks = [
        status.rundir.join("db.sock"),
        status.rundir.join("gm-sw1.mgmt"),
        PathBuf::from("/run/gemelo/openflow.sock"),
        PathBuf::from(&tstatus.switch.rundir).join("db.sock"),
    ];
    for s in &socks {
        let p = s.display().to_string();
        let ok = netns::host_command(&tstatus, &twin_hosts[0], &["nc", "-U", "-z", "-w1", &p])
            .unwrap()
            .status()
            .is_ok_and(|s| s.success());
        eprintln!(
            "unix socket {p} from twin host {}: {}",
            twin_hosts[0],
            if ok {
                "OPENABLE (shared filesystem)"
            } else {
                "not openable"
            }
        );
    }

    // Control: production traffic with the control mark is seen.
    let ctl_run = lab::probe_command(&status, &["sh", "-c", "ping -c1 -W1 -s1112 10.10.1.10; nc -z -n -w1 -p 30001 10.10.1.10 80; nc -z -n -w1 -p 30002 10.10.2.30 22"]).output();
    assert!(ctl_run.is_ok());
    std::thread::sleep(Duration::from_millis(1000));
    for c in caps.iter_mut() {
        c.stop();
    }

    let mark = twin_mark(&macs(&status.probe.namespace));
    let mut leaks = Vec::new();
    for c in &caps {
        let twin_pkts = c.read(&mark);
        let control = c.read(CONTROL_MARK);
        eprintln!(
            "capture {}: {} twin-marked packets, {} control packets",
            c.name,
            twin_pkts.len(),
            control.len()
        );
        leaks.extend(twin_pkts.into_iter().map(|l| format!("{}: {l}", c.name)));
        if c.name == status.namespace || c.name == "web01" {
            assert!(
                !control.is_empty(),
                "capture in {} saw no control packet: captures do not work",
                c.name
            );
        }
    }
    assert!(
        leaks.is_empty(),
        "twin traffic reached production:\n{}",
        leaks.join("\n")
    );

    // And the twin answers its own hosts (the probes ran where they should):
    // twin web01 answers on 80 from twin bastion01's namespace.
    let b_mac = &status.host("bastion01").expect("bastion01").mac;
    let b = tstatus
        .hosts
        .iter()
        .find(|h| h.mirrors.contains(b_mac))
        .expect("bastion01's twin")
        .name
        .clone();
    if let Some(mut c) = netns::host_command(
        &tstatus,
        &b,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "3",
            "http://10.10.1.10/",
        ],
    ) {
        let code = String::from_utf8_lossy(&c.output().unwrap().stdout).to_string();
        if code != "200" {
            let w = tstatus
                .hosts
                .iter()
                .find(|h| h.ips.iter().any(|a| a.starts_with("10.10.1.10/")))
                .map(|h| h.name.clone());
            let ss = w
                .as_ref()
                .and_then(|w| netns::host_command(&tstatus, w, &["ss", "-ltnp"]))
                .and_then(|mut c| c.output().ok());
            let neigh = netns::host_command(&tstatus, &b, &["ip", "neigh"])
                .and_then(|mut c| c.output().ok());
            eprintln!(
                "twin web01 = {w:?}\nlisteners: {}\nbastion01 neighbours: {}",
                ss.map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default(),
                neigh
                    .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                    .unwrap_or_default()
            );
        }
        assert_eq!(code, "200", "twin bastion01 -> twin web01");
    }
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}
