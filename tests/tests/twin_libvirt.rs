//! The libvirt backends against real libvirtd, Open vSwitch and decoys: a twin
//! with one LXC host and one QEMU host (TCG) on a VLAN of the twin bridge,
//! each answering with its decoy's banner from the observer namespace, the
//! QEMU host also SNMP (`snmpget`); both hosts' decoys report to the event
//! socket, the QEMU guest's through its virtio-serial channel and relay,
//! stamped with its name; both hosts reach nothing but the twin bridge; a
//! rebuild leaves them (and the relay) running; destroy leaves nothing
//! (`gm-` namespaces, domains, relays, libvirtd). Root only; skipped with a
//! printed reason when libvirt cannot run here.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gemelo_hypervisor::fabric;
use gemelo_hypervisor::libvirt::{daemon, qemu};
use gemelo_hypervisor::plan::{
    Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinPlan, TwinSegment, TwinSwitch,
};
use gemelo_hypervisor::twin::{self, TwinOptions};
use gemelo_hypervisor::{HostState, TwinState, TwinStatus};
use gemelo_tests::controller::{gemelo_bin, temp_dir};
use gemelo_tests::{namespaces_with_prefix, pid_alive, twin_session_or_skip, TWIN_RUN_DIR};

/// No controller listens here: the test installs the bridge's NORMAL flow.
const NO_CONTROLLER: &str = "unix:/run/gemelo/twin-test-no-controller.sock";
const SSH_BANNER: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3";
const FTP_BANNER: &str = "220 (vsFTPd 3.0.3)";
const COMMUNITY: &str = "gm-plant-ro";

/// OpenSSH as discovery would have captured it: this machine's sshd runs it
/// for real (with the persona and its login hook) when its release matches,
/// else the decoy emulates it; either way the banner is `SSH_BANNER`.
fn ssh_service() -> DecoySpec {
    let mut s = banner_service("ssh", 22, SSH_BANNER);
    s.product = Some("OpenSSH".into());
    s.mode = DecoyMode::Daemon {
        product: "OpenSSH".into(),
    };
    s.details = serde_json::json!({
        "proto_version": "2.0", "software": "OpenSSH_9.2p1", "comments": "Debian-2+deb12u3",
        "server_host_key_algorithms": ["ssh-ed25519", "ecdsa-sha2-nistp256"],
    });
    s
}

/// Whether the LXC host runs the real sshd (whose PAM hook reports logins).
fn real_sshd() -> bool {
    gemelo_hypervisor::decoy::Installed::detect()
        .sshd_software
        .as_deref()
        == Some("OpenSSH_9.2p1")
}

/// An emulated SNMP agent as discovery would have captured it.
fn snmp_service() -> DecoySpec {
    DecoySpec {
        port: 161,
        proto: "udp".into(),
        name: "snmp".into(),
        product: Some("net-snmp".into()),
        version: None,
        banner: None,
        mode: DecoyMode::Emulated,
        details: serde_json::json!({
            "community": COMMUNITY,
            "sys_descr": "Linux plc-gw 6.1.0-56-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.153-1 x86_64",
            "sys_object_id": "1.3.6.1.4.1.8072.3.2.10",
            "sys_uptime_ticks": 123456,
            "sys_name": "plc-gw-07",
            "sys_location": "Hall 3",
        }),
    }
}

fn banner_service(name: &str, port: u16, banner: &str) -> DecoySpec {
    DecoySpec {
        port,
        proto: "tcp".into(),
        name: name.into(),
        product: None,
        version: None,
        banner: Some(banner.into()),
        mode: DecoyMode::Emulated,
        details: serde_json::Value::Null,
    }
}

fn host(name: &str, mac: &str, ip: &str, backend: Backend, service: DecoySpec) -> TwinHost {
    TwinHost {
        name: name.into(),
        mirrors: vec![mac.into()],
        hostname: format!("{name}-twin"),
        interfaces: vec![TwinInterface {
            mac: mac.into(),
            ips: vec![ip.into()],
            segment: "10.78.1.0/24".into(),
            vlan: Some(10),
        }],
        gateway: Some("10.78.1.1".into()),
        ip_forward: false,
        backend,
        services: vec![service],
        honeytoken: false,
    }
}

fn plan() -> TwinPlan {
    TwinPlan {
        switch: TwinSwitch {
            namespace: "gm-twin".into(),
            rundir: format!("{TWIN_RUN_DIR}/ovs"),
            bridge: "gm-twin0".into(),
            dpid: 0x0000_7477_696e_0078,
        },
        observer_namespace: "gm-twin-observer".into(),
        segments: vec![TwinSegment {
            cidr: "10.78.1.0/24".into(),
            vlan: Some(10),
            gateway: Some("10.78.1.1".into()),
        }],
        hosts: vec![
            host(
                "web1",
                "02:78:00:00:01:10",
                "10.78.1.10/24",
                Backend::Lxc,
                ssh_service(),
            ),
            {
                let mut vm = host(
                    "vm1",
                    "02:78:00:00:01:20",
                    "10.78.1.20/24",
                    Backend::Qemu,
                    banner_service("ftp", 21, FTP_BANNER),
                );
                vm.services.push(snmp_service());
                vm
            },
        ],
    }
}

fn options(events: &Path) -> TwinOptions {
    let exe = gemelo_bin();
    let socket = events.to_path_buf();
    let decoy_exe = TwinOptions::decoy_next_to(&exe);
    TwinOptions {
        controller: NO_CONTROLLER.into(),
        run_dir: TWIN_RUN_DIR.into(),
        launches: Box::new(move |h, dir| {
            gemelo_hypervisor::decoy::launches(h, dir, &exe, &socket).map_err(|e| e.to_string())
        }),
        decoy_exe,
        events: events.to_path_buf(),
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

/// The first line a TCP service sends, read from the observer (then a
/// client line is sent, so the decoy records an exchange); returns as soon
/// as the line arrives.
fn banner_from_observer(status: &TwinStatus, ip: &str, port: u16) -> Result<String> {
    let script = format!(
        "exec 3<>/dev/tcp/{ip}/{port} || exit 1; IFS= read -r -t 3 line <&3; \\
         printf 'SSH-2.0-gemelo-test\\r\\n' >&3; printf '%s' \"$line\""
    );
    let out = fabric::observer_command(status, &["timeout", "5", "bash", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .context("bash /dev/tcp")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn banner_eventually(status: &TwinStatus, ip: &str, port: u16, want: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = banner_from_observer(status, ip, port)?;
        if got.contains(want) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{ip}:{port} answered {got:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The container's init: the child of its libvirt_lxc controller.
fn lxc_init_pid(domain: &str) -> Result<u32> {
    let controller: u32 = std::fs::read_to_string(format!("/run/libvirt/lxc/{domain}.pid"))
        .context("libvirt_lxc pid file")?
        .trim()
        .parse()?;
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(controller) {
            return Ok(pid);
        }
    }
    bail!("no child of libvirt_lxc {controller}")
}

/// The QEMU guest's event relay on this machine, as its backend recorded it.
fn relay_pid(host: &str) -> Result<u32> {
    let record = Path::new(TWIN_RUN_DIR)
        .join("hosts")
        .join(host)
        .join("relay.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record)?)?;
    v["pid"]
        .as_u64()
        .map(|p| p as u32)
        .with_context(|| format!("{}: {v}", record.display()))
}

fn qemu_pids() -> Vec<u32> {
    daemon::processes("qemu-system-x86")
        .into_iter()
        .chain(daemon::processes("qemu-system-x86_64"))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("guest=gm-twin-"))
        })
        .collect()
}

#[test]
fn lxc_and_qemu_hosts_serve_stay_isolated_and_leave_nothing() {
    let _session = twin_session_or_skip!();
    if let Some(why) = daemon::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let exe = gemelo_bin();
    let decoy = TwinOptions::decoy_next_to(&exe);
    for bin in [&exe, &decoy] {
        assert!(
            bin.exists(),
            "{} is missing: cargo build --workspace --bins (or set GEMELO_BIN)",
            bin.display()
        );
    }
    let kernel = qemu::find_kernel().expect("a kernel for QEMU guests");
    eprintln!("QEMU guests boot {}", kernel.image.display());

    let tmp = temp_dir("libvirt");
    let events_path = tmp.join("events.sock");
    let events = UnixDatagram::bind(&events_path).expect("event socket");
    events
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let plan = plan();
    let opts = options(&events_path);
    let t = Instant::now();
    let mut seen = Vec::new();
    let status = twin::build(&plan, &opts, &mut |h, s| seen.push((h.to_owned(), s)))
        .expect("build the twin");
    eprintln!(
        "LXC + QEMU twin built in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let libvirtd = std::fs::read_to_string(daemon::libvirtd_pidfile(Path::new(TWIN_RUN_DIR)))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let qemu = qemu_pids();
    let relay = relay_pid("vm1").ok();

    let result = check_twin(&status, &seen)
        .and_then(|()| check_services(&status, &events))
        .and_then(|()| check_isolation(&status))
        .and_then(|()| check_rebuild(&plan, &opts, &qemu));
    let lxc_init = lxc_init_pid("gm-twin-web1").ok();
    if let Err(e) = &result {
        for h in ["web1", "vm1"] {
            for f in ["init.log", "console.log", "decoy.log", "relay.log"] {
                let p = Path::new(TWIN_RUN_DIR).join("hosts").join(h).join(f);
                if let Ok(text) = std::fs::read_to_string(&p) {
                    eprintln!("--- {}\n{text}", p.display());
                }
            }
        }
        panic!("{e:#}");
    }

    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
    assert_eq!(
        namespaces_with_prefix("gm-twin"),
        Vec::<String>::new(),
        "namespaces left"
    );
    let libvirtd = libvirtd.expect("gemelo started libvirtd");
    assert!(!pid_alive(libvirtd), "libvirtd {libvirtd} survived destroy");
    assert!(
        daemon::processes("libvirtd").is_empty(),
        "a libvirtd still runs"
    );
    assert!(qemu.iter().all(|p| !pid_alive(*p)), "a QEMU guest survived");
    let relay = relay.expect("the QEMU guest had an event relay");
    assert!(
        !pid_alive(relay),
        "the event relay {relay} survived destroy"
    );
    assert!(qemu_pids().is_empty(), "a gm- QEMU guest still runs");
    if let Some(init) = lxc_init {
        assert!(!pid_alive(init), "the LXC container's init survived");
    }
    let libvirt_state: Vec<String> = [
        "/run/libvirt/lxc",
        "/run/libvirt/qemu",
        "/var/log/libvirt/lxc",
        "/var/log/libvirt/qemu",
    ]
    .iter()
    .flat_map(|dir| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("gm-twin-"))
            })
            .map(|p| p.display().to_string())
    })
    .collect();
    assert!(
        libvirt_state.is_empty(),
        "libvirt state left: {libvirt_state:?}"
    );
    assert!(!Path::new(TWIN_RUN_DIR).exists(), "run dir left");
    assert!(twin::status(Path::new(TWIN_RUN_DIR)).unwrap().is_none());
    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy again");
    let _ = std::fs::remove_dir_all(&tmp);
}

fn check_twin(status: &TwinStatus, seen: &[(String, HostState)]) -> Result<()> {
    ensure!(
        status.state == TwinState::Ready,
        "twin {:?}: {:#?}",
        status.state,
        status.hosts
    );
    for (name, backend, domain) in [
        ("web1", Backend::Lxc, "gm-twin-web1"),
        ("vm1", Backend::Qemu, "gm-twin-vm1"),
    ] {
        let h = status.host(name).context(name)?;
        ensure!(
            h.state == HostState::Ready
                && h.backend == backend
                && h.domain.as_deref() == Some(domain)
                && h.namespace.is_none()
                && h.error.is_none(),
            "{name}: {h:#?}"
        );
        ensure!(
            seen.contains(&(name.to_owned(), HostState::Starting))
                && seen.contains(&(name.to_owned(), HostState::Ready)),
            "progress {seen:?}"
        );
    }
    let back = twin::status(Path::new(TWIN_RUN_DIR))?.context("status after build")?;
    ensure!(back == *status, "status() differs from build()'s");
    Ok(())
}

/// `snmpget` of sysName from the observer (a few tries: the first datagram
/// may meet a cold path).
fn snmp_sys_name(status: &TwinStatus, ip: &str, community: &str, tries: u8) -> Result<String> {
    let retries = (tries.max(1) - 1).to_string();
    let out = fabric::observer_command(
        status,
        &[
            "snmpget",
            "-v2c",
            "-c",
            community,
            "-r",
            &retries,
            "-t",
            "2",
            "-On",
            ip,
            "1.3.6.1.2.1.1.5.0",
        ],
    )
    .env("MIBS", "")
    .stdin(Stdio::null())
    .output()
    .context("snmpget")?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// What an awaited event must be, and how the test names it.
type Wanted<'a> = (&'a str, &'a dyn Fn(&serde_json::Value) -> bool);

/// An SSH password login from the observer (the password typed by
/// SSH_ASKPASS); whether it succeeded, and what ssh said.
fn ssh_login(status: &TwinStatus, ip: &str, user: &str, password: &str) -> Result<(bool, String)> {
    let dir = std::env::temp_dir().join(format!("gm-test-askpass-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let askpass = dir.join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{password}'\n"))?;
    output(Command::new("chmod").arg("755").arg(&askpass))?;
    let out = Command::new("setsid")
        .args([
            "-w",
            "ip",
            "netns",
            "exec",
            &status.observer_namespace,
            "ssh",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=5",
            &format!("{user}@{ip}"),
            "true",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .context("ssh")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Events on `events` until `wanted` has matched one of each, or `limit`.
fn events_until(
    events: &UnixDatagram,
    wanted: &[Wanted<'_>],
    limit: Duration,
) -> Result<Vec<serde_json::Value>> {
    let mut buf = vec![0u8; 65536];
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(_, f)| !seen.iter().any(f))
            .map(|(what, _)| *what)
            .collect();
        if missing.is_empty() {
            return Ok(seen);
        }
        ensure!(
            Instant::now() < deadline,
            "no event for {missing:?} within {limit:?}; seen {seen:#?}"
        );
        if let Ok(n) = events.recv(&mut buf) {
            seen.push(serde_json::from_slice(&buf[..n]).context("an event is JSON")?);
        }
    }
}

fn check_services(status: &TwinStatus, events: &UnixDatagram) -> Result<()> {
    install_normal_flow(status)?;
    banner_eventually(status, "10.78.1.10", 22, SSH_BANNER)?;
    banner_eventually(status, "10.78.1.20", 21, FTP_BANNER)?;
    // The QEMU guest's SNMP agent answers the captured community only.
    let name = snmp_sys_name(status, "10.78.1.20", COMMUNITY, 4)?;
    ensure!(
        name.contains(".1.3.6.1.2.1.1.5.0 = STRING: \"plc-gw-07\""),
        "snmpget answered {name:?}"
    );
    let wrong = snmp_sys_name(status, "10.78.1.20", "public", 1)?;
    ensure!(wrong.contains("Timeout"), "a wrong community got {wrong:?}");
    // A wrong password on the LXC host's real sshd (when it runs one).
    let sshd = real_sshd();
    if sshd {
        let (ok, said) = ssh_login(status, "10.78.1.10", "admin", "not-the-password")?;
        ensure!(!ok, "a wrong password logged in: {said}");
    } else {
        eprintln!("this sshd is not OpenSSH_9.2p1: web1 emulates SSH, no login to report");
    }
    // Every interaction is an event: the LXC host's decoys and login hook
    // reach the event socket bound into it, the QEMU guest's decoy through
    // its channel.
    let from = |host: &'static str, protocol: &'static str, action: &'static str| {
        move |e: &serde_json::Value| {
            e["kind"] == "decoy"
                && e["twin_host"] == host
                && e["protocol"] == protocol
                && e["action"] == action
                && e["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("10.78.1."))
        }
    };
    let web1_ssh_data = from("web1", "ssh", "data");
    let web1_login = from("web1", "ssh", "login");
    let web1_failed = |e: &serde_json::Value| {
        web1_login(e)
            && e["data"]
                == serde_json::json!({"user": "admin", "password": "not-the-password",
                    "success": false, "service": "sshd"})
    };
    let web1_ssh: Wanted<'_> = if sshd {
        ("web1 failed ssh login", &web1_failed)
    } else {
        ("web1 ssh data", &web1_ssh_data)
    };
    let vm1_ftp = from("vm1", "ftp", "connect");
    let vm1_snmp = from("vm1", "snmp", "read");
    let guessed = |e: &serde_json::Value| {
        vm1_snmp(e)
            && e["data"]["community"] == "public"
            && e["data"]["error"] == "unknown community"
    };
    let seen = events_until(
        events,
        &[
            web1_ssh,
            ("vm1 ftp connect", &vm1_ftp),
            ("vm1 snmp read", &vm1_snmp),
            ("vm1 snmp community guess", &guessed),
        ],
        Duration::from_secs(15),
    )?;
    let reads: Vec<&serde_json::Value> = seen.iter().filter(|e| vm1_snmp(e)).collect();
    ensure!(
        reads.iter().any(|e| e["data"]["community"] == COMMUNITY
            && e["data"]["oids"] == serde_json::json!(["1.3.6.1.2.1.1.5.0"])
            && e["data"]["error"].is_null()),
        "the SNMP read's event: {reads:#?}"
    );
    let relay = std::fs::read_to_string(Path::new(TWIN_RUN_DIR).join("hosts/vm1/relay.log"))?;
    ensure!(
        relay.contains("relaying vm1's events"),
        "relay log: {relay}"
    );
    // Hostnames are the plan's.
    let init = lxc_init_pid("gm-twin-web1")?;
    let name = output(Command::new("nsenter").args(["-t", &init.to_string(), "-u", "hostname"]))?;
    ensure!(name.trim() == "web1-twin", "LXC hostname {name:?}");
    let console = std::fs::read_to_string(Path::new(TWIN_RUN_DIR).join("hosts/vm1/console.log"))?;
    ensure!(
        console.contains("gemelo-init: ready"),
        "QEMU console: {console}"
    );
    Ok(())
}

fn check_isolation(status: &TwinStatus) -> Result<()> {
    // LXC: one NIC on the twin bridge, no route out, no way to the machine's files.
    let init = lxc_init_pid("gm-twin-web1")?.to_string();
    let links: serde_json::Value = serde_json::from_str(&output(
        Command::new("nsenter").args(["-t", &init, "-n", "ip", "-j", "link"]),
    )?)?;
    let names: Vec<&str> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    ensure!(
        names.len() == 2 && names.contains(&"lo"),
        "LXC links {names:?}"
    );
    // Its NIC computes checksums in software: the userspace datapath (and so
    // a redirection's GRE tunnel) drops packets that leave them to offload.
    let nic = names.iter().find(|n| **n != "lo").copied().unwrap_or("");
    let features = output(Command::new("nsenter").args(["-t", &init, "-n", "ethtool", "-k", nic]))?;
    ensure!(
        features.contains("tx-checksumming: off"),
        "LXC NIC {nic}: {features}"
    );
    for target in ["192.0.2.1", "10.10.1.10", "198.51.100.1"] {
        let ping = Command::new("nsenter")
            .args(["-t", &init, "-n", "ping", "-c", "1", "-W", "1", target])
            .output()?;
        ensure!(!ping.status.success(), "the LXC host pinged {target}");
        let tcp = Command::new("nsenter")
            .args(["-t", &init, "-n", "nc", "-z", "-w", "1", target, "22"])
            .output()?;
        ensure!(!tcp.status.success(), "the LXC host reached {target}:22");
    }
    for path in [
        format!("{}/db.sock", status.switch.rundir),
        format!("{TWIN_RUN_DIR}/status.json"),
        "/run/gemelo/openflow.sock".to_owned(),
        "/root".to_owned(),
        env!("CARGO_MANIFEST_DIR").to_owned(),
    ] {
        let seen = Command::new("nsenter")
            .args(["-t", &init, "-m", "test", "-e", &path])
            .status()?;
        ensure!(!seen.success(), "the LXC host sees {path}");
    }
    let usr = Command::new("nsenter")
        .args(["-t", &init, "-m", "touch", "/usr/gm-write-test"])
        .output()?;
    ensure!(!usr.status.success(), "the LXC host can write /usr");

    // Both domains' NICs are ports of the twin bridge, in the switch's namespace.
    let ports = output(
        Command::new("ovs-vsctl")
            .env("OVS_RUNDIR", &status.switch.rundir)
            .arg(format!("--db=unix:{}/db.sock", status.switch.rundir))
            .args(["list-ports", &status.switch.bridge]),
    )?;
    let libvirt_ports: Vec<&str> = ports
        .lines()
        .filter(|p| {
            !p.starts_with("gmt")
                && !p.starts_with("gmp")
                && *p != gemelo_hypervisor::tunnel::TUNNEL_PORT
        })
        .collect();
    ensure!(libvirt_ports.len() == 2, "bridge ports {ports:?}");
    for p in &libvirt_ports {
        let tag = output(
            Command::new("ovs-vsctl")
                .env("OVS_RUNDIR", &status.switch.rundir)
                .arg(format!("--db=unix:{}/db.sock", status.switch.rundir))
                .args(["get", "port", p, "tag"]),
        )?;
        ensure!(tag.trim() == "10", "port {p} has tag {tag:?}");
        let here = Command::new("ip")
            .args(["-n", &status.switch.namespace, "link", "show", p])
            .output()?;
        ensure!(
            here.status.success(),
            "{p} is not in {}",
            status.switch.namespace
        );
        let root = Command::new("ip").args(["link", "show", p]).output()?;
        ensure!(
            !root.status.success(),
            "{p} is on the machine's own network"
        );
    }
    // QEMU: exactly that one NIC, no other network of any kind.
    let xml = output(Command::new("virsh").args(["-c", qemu::URI, "dumpxml", "gm-twin-vm1"]))?;
    ensure!(xml.matches("<interface ").count() == 1, "{xml}");
    ensure!(
        xml.contains("<interface type='bridge'>") && xml.contains("<source bridge='gm-twin0'/>"),
        "{xml}"
    );
    ensure!(!xml.contains("<disk"), "the guest has a disk: {xml}");
    // Its one way out besides: the event channel, a Unix socket on this machine.
    ensure!(
        xml.matches("<channel ").count() == 1 && xml.contains("<channel type='unix'>"),
        "{xml}"
    );
    Ok(())
}

/// The same plan again leaves both hosts as they are.
fn check_rebuild(plan: &TwinPlan, opts: &TwinOptions, qemu: &[u32]) -> Result<()> {
    let init = lxc_init_pid("gm-twin-web1")?;
    let relay = relay_pid("vm1")?;
    let t = Instant::now();
    let mut seen = Vec::new();
    let status = twin::build(plan, opts, &mut |h, s| seen.push((h.to_owned(), s)))?;
    eprintln!("unchanged rebuild in {:.2} s", t.elapsed().as_secs_f64());
    ensure!(status.state == TwinState::Ready, "{:#?}", status.hosts);
    ensure!(
        !seen
            .iter()
            .any(|(h, s)| (h == "web1" || h == "vm1") && *s != HostState::Pending),
        "rebuild touched a libvirt host: {seen:?}"
    );
    ensure!(
        lxc_init_pid("gm-twin-web1")? == init,
        "the container restarted"
    );
    ensure!(qemu_pids() == qemu, "the guest restarted");
    ensure!(
        relay_pid("vm1")? == relay && pid_alive(relay),
        "the event relay restarted or stopped"
    );
    Ok(())
}

/// Time to service-ready of N libvirt hosts (run by
/// `benches/twin/libvirt.sh`; ignored in CI). For each backend and N: a twin
/// with the switch and observer only, then `twin::build` of N hosts of that
/// backend, each with one banner decoy (cold: libvirtd starts with them),
/// until every banner answers from the observer; then every host rebuilt
/// with a new hostname (warm: libvirtd runs; includes stopping the old
/// domains). Prints one JSON line per measurement.
///
/// Environment: `GEMELO_LIBVIRT_SIZES` (default "1,4"),
/// `GEMELO_LIBVIRT_BACKENDS` (default "lxc,qemu"), `GEMELO_LIBVIRT_REPS` (default 1).
#[test]
#[ignore]
fn libvirt_ready_time() {
    let _session = twin_session_or_skip!();
    if let Some(why) = daemon::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let sizes: Vec<usize> = env("GEMELO_LIBVIRT_SIZES", "1,4")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reps: usize = env("GEMELO_LIBVIRT_REPS", "1").parse().unwrap_or(1);
    let tmp = temp_dir("libvirt-bench");
    let opts = options(&tmp.join("events.sock"));
    for backend in env("GEMELO_LIBVIRT_BACKENDS", "lxc,qemu").split(',') {
        let kind = match backend.trim() {
            "lxc" => Backend::Lxc,
            "qemu" => Backend::Qemu,
            other => panic!("unknown backend {other}"),
        };
        for &n in &sizes {
            for rep in 0..reps {
                twin::destroy(Path::new(TWIN_RUN_DIR)).expect("clear");
                let mut p = plan();
                p.hosts.clear();
                let status = twin::build(&p, &opts, &mut |_, _| {}).expect("switch");
                install_normal_flow(&status).expect("flow");
                for phase in ["cold", "warm"] {
                    p.hosts = (0..n)
                        .map(|i| {
                            let mut h = host(
                                &format!("b{i}"),
                                &format!("02:78:00:00:02:{:02x}", i + 1),
                                &format!("10.78.1.{}/24", 101 + i),
                                kind,
                                banner_service("ssh", 22, SSH_BANNER),
                            );
                            h.hostname = format!("b{i}-{phase}");
                            h
                        })
                        .collect();
                    let t = Instant::now();
                    let status = twin::build(&p, &opts, &mut |_, _| {}).expect("build");
                    let built = t.elapsed().as_secs_f64();
                    assert_eq!(status.state, TwinState::Ready, "{:#?}", status.hosts);
                    for i in 0..n {
                        banner_eventually(&status, &format!("10.78.1.{}", 101 + i), 22, SSH_BANNER)
                            .expect("banner");
                    }
                    let ready = t.elapsed().as_secs_f64();
                    let rss: u64 = qemu_pids()
                        .iter()
                        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
                        .filter_map(|s| {
                            s.lines()
                                .find(|l| l.starts_with("VmRSS:"))
                                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                        })
                        .sum();
                    println!(
                        "{{\"backend\":\"{backend}\",\"hosts\":{n},\"rep\":{rep},\"phase\":\"{phase}\",\"build_s\":{built:.2},\"ready_s\":{ready:.2},\"qemu_rss_mib\":{}}}",
                        rss / 1024
                    );
                }
            }
        }
    }
    twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
    let _ = std::fs::remove_dir_all(&tmp);
}
