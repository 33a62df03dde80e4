//! The twin's netns backend against real Open vSwitch, namespaces and daemons:
//! a 3-host twin (two VLAN segments joined by a twin gateway) built from a
//! `TwinPlan` by `twin::build` (the fabric and the netns backend), reached
//! from the observer namespace, rebuilt incrementally, isolated from
//! everything outside it, and destroyed without a trace.
//! Root only; skipped with a printed reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use gemelo_hypervisor::plan::{
    Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinPlan, TwinSegment, TwinSwitch,
};
use gemelo_hypervisor::twin::{self, TwinOptions};
use gemelo_hypervisor::{fabric, netns};
use gemelo_hypervisor::{HostState, Launch, TwinState, TwinStatus};
use gemelo_tests::{namespaces_with_prefix, pid_alive, twin_session_or_skip, TWIN_RUN_DIR};

/// No controller listens here: the bridge stays fail-secure and the test
/// installs its own NORMAL flow (a real `gemelo serve` must not program it).
const NO_CONTROLLER: &str = "unix:/run/gemelo/twin-test-no-controller.sock";

fn service(name: &str, port: u16) -> DecoySpec {
    DecoySpec {
        port,
        proto: "tcp".into(),
        name: name.into(),
        product: None,
        version: None,
        banner: None,
        mode: DecoyMode::Daemon {
            product: name.into(),
        },
        details: serde_json::Value::Null,
    }
}

fn iface(mac: &str, ip: &str, segment: &str, vlan: u16) -> TwinInterface {
    TwinInterface {
        mac: mac.into(),
        ips: vec![ip.into()],
        segment: segment.into(),
        vlan: Some(vlan),
    }
}

fn host(
    name: &str,
    hostname: &str,
    interfaces: Vec<TwinInterface>,
    gateway: Option<&str>,
    services: Vec<DecoySpec>,
) -> TwinHost {
    TwinHost {
        name: name.into(),
        mirrors: interfaces.iter().map(|i| i.mac.clone()).collect(),
        hostname: hostname.into(),
        interfaces,
        gateway: gateway.map(str::to_owned),
        ip_forward: false,
        backend: Backend::Netns,
        services,
        honeytoken: false,
    }
}

fn plan() -> TwinPlan {
    let mut gw = host(
        "gw01",
        "core-gw01",
        vec![
            iface("02:77:00:00:01:01", "10.77.1.1/24", "10.77.1.0/24", 10),
            iface("02:77:00:00:02:01", "10.77.2.1/24", "10.77.2.0/24", 20),
        ],
        None,
        vec![service("ssh", 22)],
    );
    gw.ip_forward = true;
    TwinPlan {
        switch: TwinSwitch {
            namespace: "gm-twin".into(),
            rundir: format!("{TWIN_RUN_DIR}/ovs"),
            bridge: "gm-twin0".into(),
            dpid: 0x0000_7477_696e_0001,
        },
        observer_namespace: "gm-twin-observer".into(),
        segments: vec![
            TwinSegment {
                cidr: "10.77.1.0/24".into(),
                vlan: Some(10),
                gateway: Some("10.77.1.1".into()),
            },
            TwinSegment {
                cidr: "10.77.2.0/24".into(),
                vlan: Some(20),
                gateway: Some("10.77.2.1".into()),
            },
        ],
        hosts: vec![
            host(
                "web01",
                "intranet-web01",
                vec![iface(
                    "02:77:00:00:01:10",
                    "10.77.1.10/24",
                    "10.77.1.0/24",
                    10,
                )],
                Some("10.77.1.1"),
                vec![service("http", 80), service("ssh", 22)],
            ),
            gw,
            host(
                "plc01",
                "plc01",
                vec![iface(
                    "02:77:00:00:02:20",
                    "10.77.2.20/24",
                    "10.77.2.0/24",
                    20,
                )],
                Some("10.77.2.1"),
                vec![service("http", 80)],
            ),
        ],
    }
}

/// The test's stand-in for the decoy module: busybox httpd and a real sshd.
fn launches(host: &TwinHost, dir: &Path) -> Result<Vec<Launch>, String> {
    let d = |p: &str| dir.join(p).display().to_string();
    let mut out = Vec::new();
    for s in &host.services {
        match s.name.as_str() {
            "http" => out.push(Launch {
                name: "httpd".into(),
                argv: [
                    "/bin/busybox",
                    "httpd",
                    "-f",
                    "-p",
                    &s.port.to_string(),
                    "-h",
                    &d("www"),
                ]
                .map(str::to_owned)
                .to_vec(),
                env: vec![],
                files: vec![(
                    PathBuf::from("www/index.html"),
                    format!("<h1>{}</h1>\n", host.hostname).into_bytes(),
                    0o644,
                )],
                listens: vec![("tcp".into(), s.port)],
            }),
            "ssh" => {
                let key = dir.join("ssh_host_ed25519_key");
                let st = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
                    .arg(&key)
                    .status()
                    .map_err(|e| e.to_string())?;
                if !st.success() {
                    return Err(format!("ssh-keygen: {st}"));
                }
                let conf = format!(
                    "Port {}\nListenAddress 0.0.0.0\nHostKey {}\nPidFile {}\nUsePAM no\n",
                    s.port,
                    key.display(),
                    d("sshd.pid")
                );
                out.push(Launch {
                    name: "sshd".into(),
                    argv: ["/usr/sbin/sshd", "-D", "-e", "-f", &d("sshd_config")]
                        .map(str::to_owned)
                        .to_vec(),
                    env: vec![],
                    files: vec![
                        (PathBuf::from("sshd_config"), conf.into_bytes(), 0o600),
                        // The host dir's run/ is the daemon's /run: sshd needs /run/sshd.
                        (PathBuf::from("run/sshd/.gemelo"), Vec::new(), 0o644),
                    ],
                    listens: vec![("tcp".into(), s.port)],
                });
            }
            // A daemon that dies at once: its host must fail, the others not.
            "broken" => out.push(Launch {
                name: "broken".into(),
                argv: ["/bin/sh", "-c", "echo 'broken: no config' >&2; exit 3"]
                    .map(str::to_owned)
                    .to_vec(),
                env: vec![],
                files: vec![],
                listens: vec![("tcp".into(), s.port)],
            }),
            other => return Err(format!("no test launch for {other}")),
        }
    }
    Ok(out)
}

fn options() -> TwinOptions {
    TwinOptions {
        controller: NO_CONTROLLER.into(),
        run_dir: TWIN_RUN_DIR.into(),
        launches: Box::new(launches),
        // Only libvirt hosts need these: this twin has none.
        decoy_exe: PathBuf::new(),
        events: PathBuf::new(),
    }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn in_ns(ns: &str, argv: &[&str]) -> Result<String> {
    output(Command::new("ip").args(["netns", "exec", ns]).args(argv))
}

fn observe(status: &TwinStatus, argv: &[&str]) -> Result<String> {
    output(&mut fabric::observer_command(status, argv))
}

fn install_normal_flow(status: &TwinStatus) -> Result<()> {
    let mgmt = format!(
        "unix:{}/{}.mgmt",
        status.switch.rundir, status.switch.bridge
    );
    output(Command::new("ovs-ofctl").args([
        "-O",
        "OpenFlow13",
        "add-flow",
        &mgmt,
        "priority=0,actions=NORMAL",
    ]))?;
    Ok(())
}

fn daemon_pids(status: &TwinStatus, host: &str) -> Vec<u32> {
    status
        .host(host)
        .expect("host in status")
        .daemons
        .iter()
        .map(|d| d.pid)
        .collect()
}

/// A build's status, the progress it reported and how long it took (s).
type Built = (TwinStatus, Vec<(String, HostState)>, f64);

fn build(plan: &TwinPlan) -> Result<Built> {
    let mut seen = Vec::new();
    let t = Instant::now();
    let status = twin::build(plan, &options(), &mut |h, s| seen.push((h.to_owned(), s)))?;
    Ok((status, seen, t.elapsed().as_secs_f64()))
}

fn tools_missing() -> Option<&'static str> {
    [
        "curl",
        "ssh-keyscan",
        "/usr/sbin/sshd",
        "/bin/busybox",
        "ssh-keygen",
    ]
    .into_iter()
    .find(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map_or(true, |o| !o.status.success())
    })
}

#[test]
fn three_host_twin_serves_routes_rebuilds_incrementally_and_destroys_cleanly() {
    let _session = twin_session_or_skip!();
    if let Some(tool) = tools_missing() {
        eprintln!("skipping: {tool} is not installed");
        return;
    }
    let plan = plan();
    let (status, seen, secs) = build(&plan).expect("build the twin");
    eprintln!("3-host twin built in {secs:.2} s");
    let result = check_twin(&plan, &status, &seen)
        .and_then(|()| check_isolation(&status))
        .and_then(|()| check_rebuild(&plan, &status))
        .and_then(|()| check_failed_host(&plan, &status))
        .and_then(|()| check_unbuildable_host(&plan, &status));
    let ovs: Vec<u32> = ["ovsdb-server.pid", "ovs-vswitchd.pid"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(Path::new(&status.switch.rundir).join(f)).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let daemons: Vec<u32> = status
        .hosts
        .iter()
        .flat_map(|h| h.daemons.iter().map(|d| d.pid))
        .collect();
    result.unwrap();

    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
    assert_eq!(
        namespaces_with_prefix("gm-twin"),
        Vec::<String>::new(),
        "namespaces left after destroy"
    );
    assert_eq!(ovs.len(), 2, "both OVS pid files were there");
    assert!(
        ovs.iter().chain(&daemons).all(|p| !pid_alive(*p)),
        "a twin process survived destroy"
    );
    assert!(
        !Path::new(TWIN_RUN_DIR).exists(),
        "run dir left after destroy"
    );
    let etc: Vec<String> = std::fs::read_dir("/etc/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("gm-twin"))
                .collect()
        })
        .unwrap_or_default();
    assert!(etc.is_empty(), "/etc/netns entries left: {etc:?}");
    assert!(twin::status(Path::new(TWIN_RUN_DIR)).unwrap().is_none());
    // Idempotent: nothing to remove is not an error.
    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy again");
}

fn check_twin(plan: &TwinPlan, status: &TwinStatus, seen: &[(String, HostState)]) -> Result<()> {
    ensure!(
        status.state == TwinState::Ready,
        "twin state {:?}: {:#?}",
        status.state,
        status.hosts
    );
    ensure!(
        status.switch.dpid == "00007477696e0001",
        "dpid {}",
        status.switch.dpid
    );
    for name in ["web01", "gw01", "plc01"] {
        ensure!(
            seen.contains(&(name.to_owned(), HostState::Starting))
                && seen.contains(&(name.to_owned(), HostState::Ready)),
            "progress {seen:?}"
        );
    }
    // Observer: the highest free address of each segment, no default route.
    ensure!(
        status.observer_addresses == ["10.77.1.254/24", "10.77.2.254/24"],
        "observer {:?}",
        status.observer_addresses
    );
    ensure!(
        observe(status, &["ip", "route", "show", "default"])?
            .trim()
            .is_empty(),
        "observer has a default route"
    );
    let back = twin::status(Path::new(TWIN_RUN_DIR))?.context("status after build")?;
    ensure!(back == *status, "status() differs from build()'s");

    install_normal_flow(status)?;
    for (ip, hostname) in [("10.77.1.10", "intranet-web01"), ("10.77.2.20", "plc01")] {
        let page = observe(
            status,
            &["curl", "-sS", "--max-time", "5", &format!("http://{ip}/")],
        )?;
        ensure!(page.contains(hostname), "http://{ip}/ served {page:?}");
    }
    for ip in ["10.77.1.10", "10.77.1.1", "10.77.2.1"] {
        let keys = observe(status, &["ssh-keyscan", "-T", "5", "-t", "ed25519", ip])?;
        ensure!(keys.contains("ssh-ed25519"), "ssh-keyscan {ip}: {keys:?}");
    }
    for h in plan.hosts.iter().filter(|h| h.backend == Backend::Netns) {
        let hs = status.host(&h.name).context("host")?;
        let ns = hs.namespace.as_deref().context("namespace")?;
        let name = output(
            &mut netns::host_command(status, &h.name, &["hostname"]).context("host_command")?,
        )?;
        ensure!(name.trim() == h.hostname, "{}: hostname {name:?}", h.name);
        let addrs: serde_json::Value = serde_json::from_str(&output(
            Command::new("ip").args(["-n", ns, "-j", "addr", "show"]),
        )?)?;
        for (i, want) in h.interfaces.iter().enumerate() {
            let dev = addrs
                .as_array()
                .and_then(|a| a.iter().find(|d| d["ifname"] == format!("gm-eth{i}")))
                .with_context(|| format!("{}: no gm-eth{i}", h.name))?;
            ensure!(
                dev["address"] == want.mac.as_str(),
                "{}: gm-eth{i} MAC {}",
                h.name,
                dev["address"]
            );
            let ips: Vec<String> = dev["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["family"] == "inet")
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
                .collect();
            ensure!(ips == want.ips, "{}: gm-eth{i} addresses {ips:?}", h.name);
        }
        let forward = in_ns(ns, &["sysctl", "-n", "net.ipv4.ip_forward"])?;
        ensure!(
            forward.trim() == if h.ip_forward { "1" } else { "0" },
            "{}: ip_forward {forward}",
            h.name
        );
    }
    // Segment 2 → segment 1 through the twin gateway, over TCP.
    let page = in_ns(
        "gm-twin-plc01",
        &["curl", "-sS", "--max-time", "5", "http://10.77.1.10/"],
    )?;
    ensure!(
        page.contains("intranet-web01"),
        "plc01 → web01 served {page:?}"
    );
    Ok(())
}

/// Nothing leaves the twin: no route out of it, no address on the twin
/// switch's namespace, nothing but bridge ports there.
fn check_isolation(status: &TwinStatus) -> Result<()> {
    for (ns, target) in [
        ("gm-twin-web01", "192.0.2.1"),
        ("gm-twin-plc01", "10.10.1.10"),
        ("gm-twin-gw01", "198.51.100.1"),
    ] {
        let ping = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", target])
            .output()?;
        ensure!(!ping.status.success(), "{ns} pinged {target}");
        let tcp = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "curl",
                "-sS",
                "--max-time",
                "2",
                &format!("http://{target}/"),
            ])
            .output()?;
        ensure!(!tcp.status.success(), "{ns} reached http://{target}/");
    }
    // A daemon's /run is its host's: the switch's and the controller's sockets are not there.
    let sshd = status
        .host("web01")
        .context("web01")?
        .daemons
        .iter()
        .find(|d| d.name == "sshd")
        .context("sshd")?
        .pid;
    for path in [
        format!("{}/db.sock", status.switch.rundir),
        "/run/gemelo/openflow.sock".to_owned(),
        format!("{TWIN_RUN_DIR}/status.json"),
    ] {
        let seen = Command::new("nsenter")
            .args(["-t", &sshd.to_string(), "-m", "test", "-e", &path])
            .status()?;
        ensure!(!seen.success(), "web01's sshd sees {path}");
    }
    let sw = &status.switch.namespace;
    let addrs: serde_json::Value = serde_json::from_str(&output(
        Command::new("ip").args(["-n", sw, "-j", "addr", "show"]),
    )?)?;
    for dev in addrs.as_array().into_iter().flatten() {
        let name = dev["ifname"].as_str().unwrap_or("");
        let inet = dev["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["family"] == "inet" && a["local"] != "127.0.0.1");
        // The one address: the tunnel end on the underlay bridge.
        let underlay = name == "gm-ul" || name == "gm-ul-twin";
        ensure!(!inet || name == "gm-ul", "{sw}: {name} has an address");
        // No IPv6 at all, not even a link-local.
        let inet6 = dev["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["family"] == "inet6");
        ensure!(!inet6, "{sw}: {name} has an IPv6 address");
        let allowed = name == "lo"
            || underlay
            || name == "ovs-netdev"
            || name == status.switch.bridge
            || name.starts_with("gmt")
            || name.starts_with("gmp");
        ensure!(allowed, "{sw}: unexpected link {name}");
        if name == status.switch.bridge {
            ensure!(
                dev["operstate"] == "DOWN",
                "the bridge's LOCAL port is {}",
                dev["operstate"]
            );
        }
    }
    // One route: the underlay subnet, on the tunnel end's bridge.
    let routes = output(Command::new("ip").args(["-n", sw, "route", "show"]))?;
    ensure!(
        routes
            .lines()
            .all(|r| r.starts_with("198.18.0.0/24 dev gm-ul ")),
        "{sw} has routes besides the underlay's: {routes}"
    );
    Ok(())
}

/// Changing one host rebuilds it alone; the others keep their daemons.
fn check_rebuild(plan: &TwinPlan, status: &TwinStatus) -> Result<()> {
    let mut changed = plan.clone();
    let plc = changed
        .hosts
        .iter_mut()
        .find(|h| h.name == "plc01")
        .context("plc01")?;
    plc.hostname = "plc01-line2".into();
    let (after, seen, secs) = build(&changed)?;
    eprintln!("rebuild with one host changed took {secs:.2} s");
    ensure!(
        after.state == TwinState::Ready,
        "after rebuild: {:#?}",
        after.hosts
    );
    for kept in ["web01", "gw01"] {
        ensure!(
            daemon_pids(&after, kept) == daemon_pids(status, kept),
            "{kept} was restarted"
        );
        ensure!(
            daemon_pids(status, kept).iter().all(|p| pid_alive(*p)),
            "{kept}'s daemons died"
        );
        ensure!(
            !seen.iter().any(|(h, _)| h == kept),
            "{kept} was rebuilt: {seen:?}"
        );
    }
    let old = daemon_pids(status, "plc01");
    ensure!(
        daemon_pids(&after, "plc01") != old && old.iter().all(|p| !pid_alive(*p)),
        "plc01 was not restarted"
    );
    // The NORMAL flow survives (same switch); the new plc01 serves its new name, via the gateway too.
    let page = observe(
        &after,
        &["curl", "-sS", "--max-time", "5", "http://10.77.2.20/"],
    )?;
    ensure!(
        page.contains("plc01-line2"),
        "rebuilt plc01 served {page:?}"
    );
    let page = in_ns(
        "gm-twin-plc01",
        &["curl", "-sS", "--max-time", "5", "http://10.77.1.10/"],
    )?;
    ensure!(
        page.contains("intranet-web01"),
        "rebuilt plc01 → web01 served {page:?}"
    );

    // A host dropped from the plan is removed.
    let mut smaller = changed.clone();
    smaller.hosts.retain(|h| h.name != "plc01");
    let (after, _, _) = build(&smaller)?;
    ensure!(after.host("plc01").is_none(), "plc01 still in status");
    ensure!(
        !namespaces_with_prefix("gm-twin-plc01").contains(&"gm-twin-plc01".to_owned()),
        "plc01's namespace is left"
    );
    ensure!(
        daemon_pids(&after, "web01") == daemon_pids(status, "web01"),
        "web01 was restarted"
    );
    Ok(())
}

/// A host whose daemon dies is `failed` with its log; the rest of the twin runs (`degraded`).
fn check_failed_host(plan: &TwinPlan, status: &TwinStatus) -> Result<()> {
    let mut with_bad = plan.clone();
    with_bad.hosts.retain(|h| h.name != "plc01");
    with_bad.hosts.push(host(
        "bad01",
        "bad01",
        vec![iface(
            "02:77:00:00:02:66",
            "10.77.2.66/24",
            "10.77.2.0/24",
            20,
        )],
        Some("10.77.2.1"),
        vec![service("broken", 81)],
    ));
    let (after, seen, _) = build(&with_bad)?;
    ensure!(
        after.state == TwinState::Degraded,
        "state {:?}",
        after.state
    );
    let bad = after.host("bad01").context("bad01")?;
    let error = bad.error.as_deref().unwrap_or("");
    ensure!(
        bad.state == HostState::Failed
            && error.contains("bad01/broken.log")
            && error.contains("no config"),
        "bad01: {bad:?}"
    );
    ensure!(
        seen.contains(&("bad01".to_owned(), HostState::Failed)),
        "progress {seen:?}"
    );
    ensure!(
        after.host("web01").context("web01")?.state == HostState::Ready,
        "web01 not ready"
    );
    ensure!(
        daemon_pids(&after, "web01") == daemon_pids(status, "web01"),
        "web01 was restarted"
    );
    let back = twin::status(Path::new(TWIN_RUN_DIR))?.context("status")?;
    ensure!(
        back.state == TwinState::Degraded,
        "status() says {:?}",
        back.state
    );
    Ok(())
}

/// A host whose network the kernel refuses (a gateway off its subnet:
/// "Nexthop has invalid gateway") is `failed` with that reason and leaves
/// nothing behind (no namespace, veth, switch port, `/etc/netns` entry);
/// the other hosts come up (`degraded`). With the plan fixed, it is built.
fn check_unbuildable_host(plan: &TwinPlan, status: &TwinStatus) -> Result<()> {
    let mut with_bad = plan.clone();
    with_bad.hosts.retain(|h| h.name != "plc01");
    with_bad.hosts.push(host(
        "net01",
        "net01",
        vec![iface(
            "02:77:00:00:02:67",
            "10.77.2.67/24",
            "10.77.2.0/24",
            20,
        )],
        Some("10.77.9.1"),
        vec![service("http", 80)],
    ));
    let (after, seen, _) = build(&with_bad)?;
    ensure!(
        after.state == TwinState::Degraded,
        "state {:?}",
        after.state
    );
    let bad = after.host("net01").context("net01")?;
    let error = bad.error.as_deref().unwrap_or("");
    ensure!(
        bad.state == HostState::Failed
            && bad.namespace.is_none()
            && error.contains("route add default via 10.77.9.1")
            && error.contains("gateway"),
        "net01: {bad:?}"
    );
    ensure!(
        seen.contains(&("net01".to_owned(), HostState::Failed)),
        "progress {seen:?}"
    );
    ensure!(
        !namespaces_with_prefix("gm-twin-net01").contains(&"gm-twin-net01".to_owned()),
        "net01's namespace is left"
    );
    ensure!(
        !Path::new("/etc/netns/gm-twin-net01").exists(),
        "net01's /etc/netns entry is left"
    );
    let port = netns::switch_port("net01", 0);
    let links = output(Command::new("ip").args(["-n", &status.switch.namespace, "-o", "link"]))?;
    ensure!(!links.contains(&port), "net01's veth peer {port} is left");
    let ports = output(
        Command::new("ovs-vsctl")
            .env("OVS_RUNDIR", &status.switch.rundir)
            .arg(format!("--db=unix:{}/db.sock", status.switch.rundir))
            .args(["list-ports", &status.switch.bridge]),
    )?;
    ensure!(!ports.contains(&port), "net01's switch port is left");
    for name in ["web01", "gw01"] {
        ensure!(
            after.host(name).context("host")?.state == HostState::Ready,
            "{name} not ready"
        );
    }
    ensure!(
        daemon_pids(&after, "web01") == daemon_pids(status, "web01"),
        "web01 was restarted"
    );

    let net01 = with_bad
        .hosts
        .iter_mut()
        .find(|h| h.name == "net01")
        .context("net01")?;
    net01.gateway = Some("10.77.2.1".into());
    let (fixed, _, _) = build(&with_bad)?;
    ensure!(
        fixed.host("net01").context("net01")?.state == HostState::Ready,
        "net01 after the fix: {:?}",
        fixed.host("net01")
    );
    let page = observe(
        &fixed,
        &["curl", "-sS", "--max-time", "5", "http://10.77.2.67/"],
    )?;
    ensure!(page.contains("net01"), "fixed net01 served {page:?}");
    Ok(())
}

#[test]
fn destroy_clears_a_twin_whose_run_state_was_lost() {
    let _session = twin_session_or_skip!();
    if let Some(tool) = tools_missing() {
        eprintln!("skipping: {tool} is not installed");
        return;
    }
    let mut small = plan();
    small.hosts.retain(|h| h.name == "web01");
    let (status, _, _) = build(&small).expect("build");
    let mut pids: Vec<u32> = status
        .hosts
        .iter()
        .flat_map(|h| h.daemons.iter().map(|d| d.pid))
        .collect();
    assert!(!pids.is_empty());
    pids.extend(
        ["ovsdb-server.pid", "ovs-vswitchd.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(Path::new(&status.switch.rundir).join(f)).ok())
            .filter_map(|s| s.trim().parse::<u32>().ok()),
    );
    // A crash that lost the run state: destroy must go by the gm-twin names.
    for f in ["state.json", "status.json"] {
        std::fs::remove_file(Path::new(TWIN_RUN_DIR).join(f)).unwrap();
    }
    assert!(twin::status(Path::new(TWIN_RUN_DIR)).unwrap().is_none());
    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
    assert_eq!(namespaces_with_prefix("gm-twin"), Vec::<String>::new());
    // The underlay the twin made goes too: nothing else is plugged into it.
    assert_eq!(namespaces_with_prefix("gm-underlay"), Vec::<String>::new());
    assert!(pids.iter().all(|p| !pid_alive(*p)), "a daemon survived");
    assert!(!Path::new(TWIN_RUN_DIR).exists());
}
