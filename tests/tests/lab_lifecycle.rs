//! The lab against the real machine: `up` builds the office/plant/iot
//! networks with real OVS, namespaces and daemons; traffic flows once the
//! bridges get NORMAL flows; `down` leaves nothing, also after `up` twice and
//! after OVS was killed by hand.

use std::time::{Duration, Instant};

use gemelo::lab::{self, DEFAULT_CONTROLLER};
use gemelo_tests::{
    assert_lab_gone, assert_services_listen, in_host, in_prod, install_normal_flows,
    lab_session_or_skip, ovs_pids, pid_alive, topology,
};

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn office_up_carries_tcp_across_switches_and_gateway_then_down_leaves_nothing() {
    let _session = lab_session_or_skip!();
    let machine = machine_hostname();

    let t = Instant::now();
    let status = lab::up(&topology("office"), DEFAULT_CONTROLLER).expect("lab up");
    eprintln!("office up: {:?}", t.elapsed());
    assert_eq!(lab::status().unwrap().as_ref(), Some(&status));
    assert_eq!(status.lab, "office");
    assert_eq!(status.switches.len(), 2);
    assert_eq!(status.switches[0].dpid, "0000000000000001");
    assert_eq!(status.switches[0].controller, DEFAULT_CONTROLLER);
    assert_eq!(status.links[0].a, "sw1:5");

    // The bridges are what the topology says, pointed at the controller.
    let rundir = status.rundir.to_str().unwrap().to_owned();
    for sw in &status.switches {
        let get = |what: &[&str]| {
            let db = format!("--db=unix:{rundir}/db.sock");
            let mut argv = vec!["ovs-vsctl", db.as_str()];
            argv.extend_from_slice(what);
            in_prod(&status, &argv).unwrap().trim().to_owned()
        };
        assert_eq!(get(&["get", "bridge", &sw.bridge, "fail_mode"]), "secure");
        assert_eq!(
            get(&["get", "bridge", &sw.bridge, "datapath_type"]),
            "netdev"
        );
        assert_eq!(
            get(&["get", "bridge", &sw.bridge, "protocols"]),
            "[OpenFlow13]"
        );
        // ovs-vswitchd only connects to Unix sockets inside its run dir: the bridge
        // names a symlink there that leads to gemelo's socket.
        let target = get(&["get-controller", &sw.bridge]);
        let link = target.strip_prefix("unix:").expect("a unix: controller");
        assert!(link.starts_with(&format!("{rundir}/")), "{target}");
        assert_eq!(
            std::fs::read_link(link).unwrap().display().to_string(),
            DEFAULT_CONTROLLER.strip_prefix("unix:").unwrap()
        );
        assert_eq!(
            get(&["get", "bridge", &sw.bridge, "other-config:datapath-id"]),
            format!("\"{}\"", sw.dpid)
        );
    }
    let ports = in_prod(
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
        ports.contains(" 3(gmsw1p3)"),
        "web01 is not on sw1 port 3:\n{ports}"
    );
    assert!(
        ports.contains(" 5(gmsw1p5)"),
        "the link is not on sw1 port 5:\n{ports}"
    );

    // Every host: its namespace, hostname, addresses, MAC; every service listens.
    for h in &status.hosts {
        assert_eq!(
            in_host(&status, &h.name, &["hostname"]).unwrap().trim(),
            h.hostname,
            "hostname of {}",
            h.name
        );
        for i in &h.interfaces {
            let addr = in_host(
                &status,
                &h.name,
                &["ip", "-o", "-4", "addr", "show", "dev", &i.name],
            )
            .unwrap();
            assert!(
                addr.contains(&format!("inet {} ", i.ip)),
                "{}: {} lacks {}: {addr}",
                h.name,
                i.name,
                i.ip
            );
            let link = in_host(
                &status,
                &h.name,
                &["ip", "-o", "link", "show", "dev", &i.name],
            )
            .unwrap();
            assert!(
                link.contains(&format!("link/ether {} ", i.mac)),
                "{}: {} lacks {}: {link}",
                h.name,
                i.name,
                i.mac
            );
        }
    }
    assert_eq!(status.host("web01").unwrap().mac, "02:00:0a:0a:01:0a");
    assert_eq!(
        machine_hostname(),
        machine,
        "the machine's hostname changed"
    );
    assert_services_listen(&status).unwrap();

    // No controller + fail-mode secure = no forwarding; NORMAL makes them learning switches.
    install_normal_flows(&status).unwrap();
    // ws01 (sw2, workstations) -> sw2 -> link -> sw1 -> gw01 -> web01 (sw1, servers).
    let page = in_host(
        &status,
        "ws01",
        &["curl", "-sS", "-m", "10", "http://web01/"],
    )
    .unwrap();
    assert!(page.contains("<title>web01</title>"), "{page}");
    let keys = in_host(
        &status,
        "ws02",
        &["ssh-keyscan", "-T", "5", "-t", "ed25519", "10.10.1.11"],
    )
    .unwrap();
    assert!(keys.contains("ssh-ed25519"), "{keys}");
    // files01 sits on sw2 in the servers VLAN: reached across the link trunk.
    let file = in_host(
        &status,
        "web01",
        &["curl", "-sS", "-m", "10", "ftp://10.10.1.20/pub/README.txt"],
    )
    .unwrap();
    assert!(file.contains("files01"), "{file}");

    let ovs = ovs_pids(&status);
    assert_eq!(ovs.len(), 2);
    let t = Instant::now();
    lab::down().unwrap();
    eprintln!("office down: {:?}", t.elapsed());
    assert_lab_gone("office", &ovs).unwrap();
    assert!(!std::path::Path::new("/etc/netns/gm-office-web01").exists());
    for h in &status.hosts {
        for d in &h.daemons {
            assert!(
                !pid_alive(d.pid),
                "{} of {} (pid {}) survived down",
                d.name,
                h.name,
                d.pid
            );
        }
    }
    assert_eq!(machine_hostname(), machine);
}

#[test]
fn up_twice_replaces_the_lab_and_down_cleans_a_half_dead_one() {
    let _session = lab_session_or_skip!();
    let first = lab::up(&topology("office"), DEFAULT_CONTROLLER).expect("first up");
    let first_ovs = ovs_pids(&first);
    let second = lab::up(&topology("office"), "tcp:127.0.0.1:6653").expect("second up");
    assert_eq!(second.switches[0].controller, "tcp:127.0.0.1:6653");
    for pid in &first_ovs {
        assert!(
            !pid_alive(*pid),
            "the first lab's OVS pid {pid} survived the second up"
        );
    }
    for h in &first.hosts {
        for d in &h.daemons {
            assert!(
                !pid_alive(d.pid),
                "the first lab's {} on {} survived the second up",
                d.name,
                h.name
            );
        }
    }
    assert_services_listen(&second).unwrap();

    // Kill ovs-vswitchd by hand: a half-dead lab.
    let ovs = ovs_pids(&second);
    let vswitchd = std::fs::read_to_string(second.rundir.join("ovs-vswitchd.pid")).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", vswitchd.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(vswitchd.trim().parse().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    lab::down().expect("down of a half-dead lab");
    assert_lab_gone("office", &ovs).unwrap();
    // And down with nothing there is fine.
    lab::down().expect("down with no lab");
}

#[test]
fn up_clears_leftovers_of_a_crash_that_lost_its_run_state() {
    let _session = lab_session_or_skip!();
    // What a crash could leave: the OVS instance running, a host namespace
    // with its /etc/netns entry, and no run state to say so.
    let rundir = format!("{}/prod", lab::LAB_DIR);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ovs-scripts/ovs-instance.sh"
    );
    let out = std::process::Command::new("bash")
        .args([script, "start", "gm-prod", &rundir])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", "gm-office-web01"])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::create_dir_all("/etc/netns/gm-office-web01").unwrap();
    let stale_ovs: Vec<u32> = ["ovsdb-server.pid", "ovs-vswitchd.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(format!("{rundir}/{f}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();

    let status = lab::up(&topology("office"), DEFAULT_CONTROLLER).expect("up over leftovers");
    for pid in &stale_ovs {
        assert!(!pid_alive(*pid), "stale OVS pid {pid} survived up");
    }
    assert_services_listen(&status).unwrap();
    let ovs = ovs_pids(&status);
    lab::down().unwrap();
    assert_lab_gone("office", &ovs).unwrap();
    assert!(!std::path::Path::new("/etc/netns/gm-office-web01").exists());
}

#[test]
fn plant_plcs_answer_modbus_and_iot_broker_answers_mqtt() {
    let _session = lab_session_or_skip!();

    let plant = lab::up(&topology("plant"), DEFAULT_CONTROLLER).expect("plant up");
    assert_services_listen(&plant).unwrap();
    install_normal_flows(&plant).unwrap();
    // HMI (control segment, ctrl switch) -> fw01 -> PLC (field segment, cell switch).
    let regs = in_host(
        &plant,
        "hmi01",
        &["mbpoll", "-1", "-r", "1", "-c", "4", "10.20.2.11"],
    )
    .unwrap();
    assert!(regs.contains("[1]: \t100"), "{regs}");
    assert!(regs.contains("[3]: \t1450"), "{regs}");
    assert_eq!(
        in_host(&plant, "plc01", &["hostname"]).unwrap().trim(),
        "plc01"
    );

    // up on top of another lab removes it first.
    let iot = lab::up(&topology("iot"), DEFAULT_CONTROLLER).expect("iot up");
    assert!(gemelo_tests::namespaces_with_prefix("gm-plant-").is_empty());
    assert_services_listen(&iot).unwrap();
    install_normal_flows(&iot).unwrap();
    let version = in_host(
        &iot,
        "cam01",
        &[
            "mosquitto_sub",
            "-h",
            "10.30.0.10",
            "-C",
            "1",
            "-W",
            "10",
            "-t",
            "$SYS/broker/version",
        ],
    )
    .unwrap();
    assert!(version.contains("mosquitto version"), "{version}");
    // A sensor publishes every 5 s through the gateway.
    let reading = in_host(
        &iot,
        "nvr01",
        &[
            "mosquitto_sub",
            "-h",
            "10.30.0.10",
            "-C",
            "1",
            "-W",
            "15",
            "-t",
            "warehouse7/sensor01/temperature",
        ],
    )
    .unwrap();
    assert!(reading.contains("\"host\":\"sensor01\""), "{reading}");
    let page = in_host(
        &iot,
        "sensor02",
        &["curl", "-sS", "-m", "10", "http://10.30.1.11/"],
    )
    .unwrap();
    assert!(page.contains("Axis M3045-V"), "{page}");

    let ovs = ovs_pids(&iot);
    lab::down().unwrap();
    assert_lab_gone("iot", &ovs).unwrap();
}
