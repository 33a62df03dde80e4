//! What the lab gives discovery to learn from, the way a real network does:
//! hosts announce their hostnames in DHCP (option 12) to a real server on their
//! gateway, and gemelo gets a probe port (namespace gm-probe) with an address
//! on every segment, plus the default discovery scope file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gemelo::lab::{self, DEFAULT_CONTROLLER, DEFAULT_SCOPE_FILE, PROBE_NAMESPACE};
use gemelo_tests::{
    in_host, in_probe, install_normal_flows, lab_session_or_skip, namespaces_with_prefix, topology,
};

fn probe_namespace_exists() -> bool {
    namespaces_with_prefix(PROBE_NAMESPACE)
        .iter()
        .any(|n| n == PROBE_NAMESPACE)
}

#[test]
fn office_hosts_send_their_hostnames_in_dhcp_and_the_probe_reaches_each_segment_directly() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("office"), DEFAULT_CONTROLLER).expect("lab up");

    // The probe port: a trunk of sw1, an address per segment, no default route.
    let probe = &status.probe;
    assert_eq!(probe.namespace, "gm-probe");
    assert_eq!(probe.switch, "sw1");
    assert_eq!(probe.addresses, ["10.10.1.254/24", "10.10.2.254/24"]);
    let ports = gemelo_tests::in_prod(
        &status,
        &[
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "show",
            &status.switches[0].mgmt,
        ],
    )
    .unwrap();
    assert!(
        ports.contains(&format!(" {}({})", probe.ofport, probe.port)),
        "no probe port {} {}:\n{ports}",
        probe.ofport,
        probe.port
    );
    let routes = in_probe(&status, &["ip", "route"]).unwrap();
    assert!(
        !routes.contains("default"),
        "the probe has a default route:\n{routes}"
    );
    assert_eq!(lab::status().unwrap().unwrap().probe, status.probe);
    assert_eq!(
        std::fs::read_to_string(DEFAULT_SCOPE_FILE).unwrap(),
        "10.10.1.0/24\n10.10.2.0/24\n"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/netns/gm-probe/resolv.conf").unwrap(),
        ""
    );

    install_normal_flows(&status).unwrap();

    // (a) DHCP requests on the wire carry every host's hostname (option 12).
    let gw = status.host("gw01").unwrap();
    let capture = lab::host_command(
        &status,
        "gw01",
        &[
            "tshark",
            "-l",
            "-n",
            "-i",
            "gm-eth0",
            "-i",
            "gm-eth1",
            "-f",
            "udp dst port 67",
            "-a",
            "duration:14",
            "-T",
            "fields",
            "-e",
            "dhcp.option.hostname",
        ],
    )
    .unwrap()
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("tshark");
    std::thread::sleep(Duration::from_secs(4));
    // Kick every client now (they also retry on their own every few seconds).
    for h in &status.hosts {
        for d in h.daemons.iter().filter(|d| d.name.starts_with("udhcpc-")) {
            assert!(Command::new("kill")
                .args(["-USR1", &d.pid.to_string()])
                .status()
                .unwrap()
                .success());
        }
    }
    let out = capture.wait_with_output().unwrap();
    let seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let clients: Vec<&str> = status
        .hosts
        .iter()
        .filter(|h| h.name != gw.name)
        .map(|h| h.hostname.as_str())
        .collect();
    assert_eq!(clients.len(), 6);
    for name in &clients {
        assert!(
            seen.iter().any(|s| s == name),
            "no DHCP request with hostname {name}; seen {seen:?}"
        );
    }

    // The server leased each host its topology address, under its hostname.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut leases = String::new();
        for i in ["gm-eth0", "gm-eth1"] {
            let file = gw.dir.join(format!("udhcpd-{i}.leases"));
            let out = Command::new("busybox")
                .args(["dumpleases", "-f"])
                .arg(&file)
                .output()
                .unwrap();
            leases.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        let missing: Vec<&&str> = clients
            .iter()
            .filter(|n| !leases.contains(&format!(" {n} ")))
            .collect();
        if missing.is_empty() {
            assert!(
                leases.contains("02:00:0a:0a:02:15 10.10.2.21      ws-acct-01"),
                "{leases}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lease for {missing:?}:\n{leases}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // DHCP never took a host's static address away.
    for h in status.hosts.iter().filter(|h| h.name != "gw01") {
        let addr = in_host(
            &status,
            &h.name,
            &["ip", "-o", "-4", "addr", "show", "dev", "gm-eth0"],
        )
        .unwrap();
        assert!(
            addr.contains(&format!("inet {} ", h.ips[0])),
            "{}: {addr}",
            h.name
        );
    }

    // (b) From the probe: web01's page (VLAN 10) and ws01 (VLAN 20) on its own
    // segment, ARP-resolved directly rather than through the gateway.
    let page = in_probe(&status, &["curl", "-sS", "-m", "10", "http://10.10.1.10/"]).unwrap();
    assert!(page.contains("<title>web01</title>"), "{page}");
    in_probe(&status, &["ping", "-c", "1", "-W", "3", "10.10.2.21"]).unwrap();
    let route = in_probe(&status, &["ip", "route", "get", "10.10.2.21"]).unwrap();
    assert!(
        route.contains("dev gm-probe0.20") && !route.contains(" via "),
        "{route}"
    );
    let neigh = in_probe(&status, &["ip", "neigh", "show", "10.10.2.21"]).unwrap();
    assert!(
        neigh.contains("lladdr 02:00:0a:0a:02:15"),
        "ws01's MAC not learned directly: {neigh}"
    );

    // (c) down removes the probe and the scope file too.
    lab::down().unwrap();
    assert!(!probe_namespace_exists(), "gm-probe survived down");
    assert!(
        !Path::new(DEFAULT_SCOPE_FILE).exists(),
        "{DEFAULT_SCOPE_FILE} survived down"
    );
    assert!(!Path::new("/etc/netns/gm-probe").exists());
}

#[test]
fn plant_probe_sits_on_both_untagged_segments() {
    let _session = lab_session_or_skip!();
    let status = lab::up(&topology("plant"), DEFAULT_CONTROLLER).expect("lab up");
    assert_eq!(status.probe.switch, "ctrl");
    assert_eq!(status.probe.addresses, ["10.20.1.254/24", "10.20.2.254/24"]);
    assert!(status
        .probe
        .interfaces
        .iter()
        .all(|i| i.name == "gm-probe0" && i.ofport == status.probe.ofport));
    assert_eq!(
        std::fs::read_to_string(DEFAULT_SCOPE_FILE).unwrap(),
        "10.20.1.0/24\n10.20.2.0/24\n"
    );
    install_normal_flows(&status).unwrap();
    // plc01 sits behind the firewall for the hosts, but the probe is on its segment.
    let page = in_probe(&status, &["curl", "-sS", "-m", "10", "http://10.20.2.11/"]).unwrap();
    assert!(page.contains("Modicon M221"), "{page}");
    let neigh = in_probe(&status, &["ip", "neigh", "show", "10.20.2.11"]).unwrap();
    assert!(neigh.contains("lladdr 02:00:0a:14:02:0b"), "{neigh}");
    lab::down().unwrap();
    assert!(!probe_namespace_exists());
    assert!(!Path::new(DEFAULT_SCOPE_FILE).exists());
}
