//! Building and tearing down the lab on this machine.
//!
//! `up` writes the run state (the list of namespaces it is about to create)
//! before creating anything and adds every daemon as it starts, so `down`
//! always knows what to remove, even after a crash half way.

use std::fs;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use super::daemons::{self, Daemon};
use super::status::{DaemonRecord, DaemonStatus, LabStatus, RunState};
use super::system::{
    checksum_in_software, create_dir, create_uts, in_namespace, io_err, ip_batch, mount_points,
    namespaces, ovs_vsctl, private_mount_dir, proc_id, run_args, run_script, stop_all, write_file,
    ADD_PROBE_PORT_SH, ATTACH_CONTROLLER_SH, OVS_INSTANCE_SH,
};
use super::topology::Topology;
use super::{
    LabError, DEFAULT_SCOPE_FILE, HOSTS_DIR, LAB_DIR, PROBE_IFNAME, PROBE_NAMESPACE,
    PROD_NAMESPACE, PROD_RUNDIR, UTS_DIR,
};
use gemelo_hypervisor::tunnel;

const STATE_FILE: &str = "/run/gemelo/lab/state.json";
const STATUS_FILE: &str = "/run/gemelo/lab/status.json";
const ETC_NETNS: &str = "/etc/netns";
/// How long `up` waits for every service to listen.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(20);

fn require_root() -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    Ok(())
}

fn write_json<T: serde::Serialize>(path: &str, value: &T) -> Result<(), LabError> {
    let text = serde_json::to_string_pretty(value).expect("lab state serializes");
    let tmp = format!("{path}.tmp");
    write_file(Path::new(&tmp), &text)?;
    Ok(fs::rename(&tmp, path).map_err(io_err(path))?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &str) -> Result<Option<T>, LabError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::State {
                path: path.into(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LabError::Io {
            path: path.into(),
            source: e,
        }),
    }
}

/// Held for the whole of an `up` or `down`: there is one lab per machine, and
/// two builders (a test and `gemelo lab up`, say) would tear each other's work apart.
const LOCK_FILE: &str = "/run/gemelo/lab.lock";

fn lock() -> Result<fs::File, LabError> {
    create_dir(Path::new("/run/gemelo"))?;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(io_err(LOCK_FILE))?;
    file.lock().map_err(io_err(LOCK_FILE))?;
    Ok(file)
}

pub fn up(path: &Path, controller: &str) -> Result<LabStatus, LabError> {
    require_root()?;
    let topology = Topology::load(path)?;
    let _lock = lock()?;
    let source = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut status = LabStatus::planned(&topology, source, controller, Path::new(HOSTS_DIR));
    let mut state = RunState {
        lab: topology.name.clone(),
        namespaces: [
            PROD_NAMESPACE.to_owned(),
            PROBE_NAMESPACE.to_owned(),
            tunnel::UNDERLAY_NAMESPACE.to_owned(),
        ]
        .into_iter()
        .chain(status.hosts.iter().map(|h| h.namespace.clone()))
        .collect(),
        etc_netns_created: false,
        scope_file: false,
        daemons: Vec::new(),
    };
    // Leftovers: a previous lab, or a crashed one whose run state is gone (then
    // the namespaces this topology is about to create are the ones to clear).
    let existing = namespaces()?;
    if Path::new(LAB_DIR).exists() || state.namespaces.iter().any(|n| existing.contains(n)) {
        down_including(&state.namespaces)?;
    }
    if Path::new(LAB_DIR).exists() {
        return Err(LabError::State {
            path: LAB_DIR.into(),
            message: "still exists after removing the previous lab".into(),
        });
    }
    state.etc_netns_created = !Path::new(ETC_NETNS).exists();
    create_dir(Path::new(LAB_DIR))?;
    write_json(STATE_FILE, &state)?;

    start_switches(&topology, &status)?;
    build_hosts(&topology, &status)?;
    plug_ports(&topology)?;
    // The GRE tunnel toward the twin hypervisor ends on the first switch, as an
    // operator would add it (`add-underlay.sh`, `add-gre-port.sh`); after the
    // host ports, which have their numbers from the topology.
    if let Some(sw) = status.switches.first() {
        tunnel::attach(
            Path::new(PROD_RUNDIR),
            PROD_NAMESPACE,
            &sw.bridge,
            tunnel::PRODUCTION,
            tunnel::TWIN,
        )?;
    }
    build_probe(&topology, &mut status)?;

    // Daemons: host keys for every SSH host at once, then configs and launches.
    let mut keygens = Vec::new();
    for (host, hs) in topology.hosts.iter().zip(&status.hosts) {
        create_dir(&hs.dir)?;
        if host.service(super::topology::ServiceKind::Ssh).is_some() {
            keygens.extend(daemons::start_ssh_keygen(&hs.dir)?);
        }
    }
    daemons::wait_children(keygens)?;
    let mut planned: Vec<(usize, Vec<Daemon>)> = Vec::new();
    for (i, (host, hs)) in topology.hosts.iter().zip(&status.hosts).enumerate() {
        let list = daemons::prepare(&topology, host, hs)?;
        for d in &list {
            let record = daemons::launch(hs, d)?;
            state.daemons.push(record);
            write_json(STATE_FILE, &state)?;
        }
        planned.push((i, list));
    }
    wait_ready(&status, &planned, &state.daemons)?;
    // One DHCP exchange now that every server runs (the clients' first
    // DISCOVER may have gone out before their server started, or before a
    // controller let anything across the bridges).
    for r in state
        .daemons
        .iter()
        .filter(|r| r.name.starts_with(daemons::DHCP_CLIENT))
    {
        if alive(r) {
            // SAFETY: kill(2) with a pid we started and just checked against /proc.
            unsafe { libc::kill(r.pid as i32, libc::SIGUSR1) };
        }
    }

    // The default discovery scope: this lab's segments.
    state.scope_file = true;
    write_json(STATE_FILE, &state)?;
    let scope: String = topology
        .segments
        .iter()
        .map(|s| format!("{}\n", s.cidr))
        .collect();
    write_file(Path::new(DEFAULT_SCOPE_FILE), &scope)?;

    for hs in &mut status.hosts {
        hs.daemons = state
            .daemons
            .iter()
            .filter(|d| d.host == hs.name)
            .map(|d| DaemonStatus {
                name: d.name.clone(),
                pid: d.pid,
                log: d.log.clone(),
            })
            .collect();
    }
    write_json(STATUS_FILE, &status)?;
    Ok(status)
}

/// The OVS instance, its bridges and their controller.
fn start_switches(topology: &Topology, status: &LabStatus) -> Result<(), LabError> {
    run_script(
        "ovs-instance.sh",
        OVS_INSTANCE_SH,
        &["start", PROD_NAMESPACE, PROD_RUNDIR],
    )?;
    let rundir = Path::new(PROD_RUNDIR);
    let mut args: Vec<String> = Vec::new();
    for sw in &topology.switches {
        let br = sw.bridge();
        args.extend(
            [
                "--",
                "add-br",
                &br,
                "--",
                "set",
                "bridge",
                &br,
                "datapath_type=netdev",
                &format!("other-config:datapath-id={:016x}", sw.dpid),
                // LLDP (a BPDU-class address) is dropped between ports without it.
                "other-config:forward-bpdu=true",
            ]
            .map(str::to_owned),
        );
    }
    ovs_vsctl(rundir, &args[1..])?;
    for sw in &status.switches {
        run_script(
            "attach-controller.sh",
            ATTACH_CONTROLLER_SH,
            &[PROD_RUNDIR, &sw.bridge, &sw.controller],
        )?;
    }
    Ok(())
}

/// Host namespaces (network + UTS), their interfaces, addresses and routes.
fn build_hosts(topology: &Topology, status: &LabStatus) -> Result<(), LabError> {
    // Persistent UTS namespaces are bind mounts: their directory must be a
    // private mount point, as ip-netns does for /run/netns.
    private_mount_dir(Path::new(UTS_DIR))?;

    let mut root = Vec::new();
    for (host, hs) in topology.hosts.iter().zip(&status.hosts) {
        root.push(format!("netns add {}", hs.namespace));
        for i in &host.interfaces {
            // Created straight into their namespaces: nothing appears in the root namespace.
            root.push(format!(
                "link add {} address {} netns {} type veth peer name {} netns {PROD_NAMESPACE}",
                i.name,
                i.mac,
                hs.namespace,
                i.attach.port_name()
            ));
        }
    }
    ip_batch(None, &root)?;

    let hosts_file = hosts_file(topology);
    for (host, hs) in topology.hosts.iter().zip(&status.hosts) {
        let mut lines = vec!["link set lo up".to_owned()];
        for i in &host.interfaces {
            lines.push(format!("addr add {}/{} dev {}", i.ip, i.prefix, i.name));
            lines.push(format!("link set {} up", i.name));
        }
        if let Some(gw) = host.default_gateway {
            lines.push(format!("route add default via {gw}"));
        }
        ip_batch(Some(&hs.namespace), &lines)?;
        let ifaces: Vec<String> = host.interfaces.iter().map(|i| i.name.clone()).collect();
        checksum_in_software(&hs.namespace, &ifaces)?;
        if host.ip_forward {
            run_args(
                "ip",
                &[
                    "netns",
                    "exec",
                    &hs.namespace,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
        }

        // Its own /etc/hosts and resolv.conf (ip netns exec binds them over /etc):
        // with the machine's resolver, daemons stall on reverse lookups.
        let etc = Path::new(ETC_NETNS).join(&hs.namespace);
        create_dir(&etc)?;
        write_file(
            &etc.join("hosts"),
            &hosts_file.replace("@SELF@", &host.hostname),
        )?;
        write_file(&etc.join("resolv.conf"), "# gemelo lab: no DNS server; names come from /etc/hosts\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n")?;
        write_file(&etc.join("hostname"), &format!("{}\n", host.hostname))?;

        // Its hostname, in a UTS namespace of its own (never the machine's).
        create_uts(&hs.uts, &host.hostname)?;
    }
    Ok(())
}

/// gemelo's probe port: `add-probe-port.sh` on the first switch, then an
/// address on every segment (VLAN subinterfaces for VLAN segments), no routes.
fn build_probe(topology: &Topology, status: &mut LabStatus) -> Result<(), LabError> {
    let probe = &mut status.probe;
    let mut args: Vec<String> = Vec::new();
    for vid in topology.segments.iter().filter_map(|s| s.vlan) {
        args.extend(["-v".to_owned(), vid.to_string()]);
    }
    args.extend([
        PROD_RUNDIR.to_owned(),
        probe.bridge.clone(),
        probe.namespace.clone(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_script("add-probe-port.sh", ADD_PROBE_PORT_SH, &args)?;
    // "NAME OFPORT" per interface made.
    let ofport_of = |name: &str| -> Result<u16, LabError> {
        let got = out
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or("none")
            .trim();
        got.parse().map_err(|_| LabError::Ofport {
            switch: probe.switch.clone(),
            port: name.to_owned(),
            wanted: 0,
            got: got.to_owned(),
        })
    };
    probe.ofport = ofport_of(PROBE_IFNAME)?;
    let mut lines = Vec::new();
    for i in &mut probe.interfaces {
        i.ofport = ofport_of(&i.name)?;
        // The connected route is how the probe reaches each segment directly.
        lines.push(format!("addr add {} dev {}", i.address, i.name));
    }
    ip_batch(Some(&probe.namespace), &lines)?;
    let link = run_args(
        "ip",
        &[
            "-n",
            &probe.namespace,
            "-o",
            "link",
            "show",
            "dev",
            PROBE_IFNAME,
        ],
    )?;
    probe.mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_owned();

    // Its own resolver files, like the hosts': no DNS, and no names of the
    // lab's hosts either (discovery learns those from the wire).
    let etc = Path::new(ETC_NETNS).join(&probe.namespace);
    create_dir(&etc)?;
    write_file(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    write_file(&etc.join("resolv.conf"), "")?;
    Ok(())
}

fn hosts_file(topology: &Topology) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n127.0.1.1\t@SELF@\n::1\tlocalhost ip6-localhost ip6-loopback\n\n",
    );
    for h in &topology.hosts {
        for i in &h.interfaces {
            if h.name == h.hostname {
                s.push_str(&format!("{}\t{}\n", i.ip, h.hostname));
            } else {
                s.push_str(&format!("{}\t{} {}\n", i.ip, h.hostname, h.name));
            }
        }
    }
    s
}

/// Host veths and inter-switch patch ports onto the bridges, at the ofports the topology says.
fn plug_ports(topology: &Topology) -> Result<(), LabError> {
    let mut args: Vec<String> = Vec::new();
    let mut wanted: Vec<(String, String, u16)> = Vec::new();
    let mut up_lines = Vec::new();
    let push = |args: &mut Vec<String>, parts: &[&str]| {
        args.push("--".into());
        args.extend(parts.iter().map(|s| s.to_string()));
    };
    for h in &topology.hosts {
        for i in &h.interfaces {
            let name = i.attach.port_name();
            let br = format!("gm-{}", i.attach.switch);
            push(&mut args, &["add-port", &br, &name]);
            push(
                &mut args,
                &[
                    "set",
                    "interface",
                    &name,
                    &format!("ofport_request={}", i.attach.port),
                ],
            );
            if let Some(vlan) = i.vlan {
                push(&mut args, &["set", "port", &name, &format!("tag={vlan}")]);
            }
            up_lines.push(format!("link set {name} up"));
            wanted.push((i.attach.switch.clone(), name, i.attach.port));
        }
    }
    for l in &topology.links {
        for (me, peer) in [(&l.a, &l.b), (&l.b, &l.a)] {
            let name = me.port_name();
            let br = format!("gm-{}", me.switch);
            push(&mut args, &["add-port", &br, &name]);
            push(
                &mut args,
                &[
                    "set",
                    "interface",
                    &name,
                    "type=patch",
                    &format!("options:peer={}", peer.port_name()),
                    &format!("ofport_request={}", me.port),
                ],
            );
            wanted.push((me.switch.clone(), name, me.port));
        }
    }
    ip_batch(Some(PROD_NAMESPACE), &up_lines)?;
    if args.is_empty() {
        return Ok(());
    }
    let rundir = Path::new(PROD_RUNDIR);
    ovs_vsctl(rundir, &args[1..])?;
    let listing = ovs_vsctl(
        rundir,
        &[
            "-f",
            "csv",
            "--no-headings",
            "--columns=name,ofport",
            "list",
            "Interface",
        ]
        .map(str::to_owned),
    )?;
    for (switch, name, port) in wanted {
        let got = listing
            .lines()
            .filter_map(|l| l.split_once(','))
            .find(|(n, _)| n.trim_matches('"') == name)
            .map(|(_, p)| p.trim().to_owned())
            .unwrap_or_else(|| "none".into());
        if got != port.to_string() {
            return Err(LabError::Ofport {
                switch,
                port: name,
                wanted: port,
                got,
            });
        }
    }
    Ok(())
}

fn alive(record: &DaemonRecord) -> bool {
    matches!(proc_id(record.pid), Some(p) if record.start.is_none_or(|s| s == p.start))
}

/// Waits until every service listens and every other daemon still runs.
fn wait_ready(
    status: &LabStatus,
    planned: &[(usize, Vec<Daemon>)],
    records: &[DaemonRecord],
) -> Result<(), LabError> {
    let started = Instant::now();
    let record = |host: &str, daemon: &str| {
        records
            .iter()
            .find(|r| r.host == host && r.name == daemon)
            .expect("launched")
    };
    for (i, list) in planned {
        let hs = &status.hosts[*i];
        loop {
            let listening = daemons::listening(&hs.namespace)?;
            let missing = list
                .iter()
                .filter_map(|d| d.listens.map(|l| (d, l)))
                .find(|(_, (proto, port, _))| !listening.contains(&(*proto, *port)));
            let Some((d, (proto, port, service))) = missing else {
                break;
            };
            let r = record(&hs.name, &d.name);
            if !alive(r) {
                return Err(LabError::DaemonDied {
                    host: hs.name.clone(),
                    daemon: d.name.to_owned(),
                    log: r.log.clone(),
                    detail: gemelo_hypervisor::host::daemon::log_tail(&r.log),
                });
            }
            if started.elapsed() > SERVICE_TIMEOUT {
                return Err(LabError::ServiceTimeout {
                    host: hs.name.clone(),
                    service: format!("{service} ({proto}/{port}, daemon {})", d.name),
                    secs: SERVICE_TIMEOUT.as_secs(),
                    log: r.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for r in records {
        if !alive(r) {
            return Err(LabError::DaemonDied {
                host: r.host.clone(),
                daemon: r.name.clone(),
                log: r.log.clone(),
                detail: gemelo_hypervisor::host::daemon::log_tail(&r.log),
            });
        }
    }
    Ok(())
}

pub fn status() -> Result<Option<LabStatus>, LabError> {
    if let Some(status) = read_json::<LabStatus>(STATUS_FILE)? {
        return Ok(Some(status));
    }
    if Path::new(LAB_DIR).exists() {
        return Err(LabError::Incomplete {
            dir: LAB_DIR.into(),
        });
    }
    Ok(None)
}

pub fn down() -> Result<(), LabError> {
    require_root()?;
    let _lock = lock()?;
    down_including(&[])
}

/// `down`, also clearing `extra` namespaces (ones a new `up` is about to
/// create, hence the lab's by name) that the run state may not list.
fn down_including(extra: &[String]) -> Result<(), LabError> {
    // A corrupt state file must not block the cleanup: fall back to names.
    let state: RunState = read_json(STATE_FILE).ok().flatten().unwrap_or_default();
    let existing = namespaces()?;
    let mut ours: Vec<String> = state.namespaces.clone();
    for ns in extra {
        if !ours.contains(ns) {
            ours.push(ns.clone());
        }
    }
    for ns in &existing {
        let is_lab = ns == PROD_NAMESPACE
            || ns == PROBE_NAMESPACE
            || (!state.lab.is_empty() && ns.starts_with(&format!("gm-{}-", state.lab)));
        if is_lab && !ours.contains(ns) {
            ours.push(ns.clone());
        }
    }

    // 1. Daemons, by recorded pid, if they are still that process in that namespace.
    let records = state.daemons.clone();
    let pids: Vec<u32> = records.iter().map(|r| r.pid).collect();
    stop_all(
        &pids,
        |pid| {
            records.iter().any(|r| {
                r.pid == pid
                    && matches!(proc_id(pid), Some(p) if r.start.is_none_or(|s| s == p.start))
                    && in_namespace(pid, &r.namespace)
            })
        },
        Duration::from_secs(3),
    );

    // 2. The OVS instance, by its pid files.
    if Path::new(PROD_RUNDIR).exists() {
        run_script(
            "ovs-instance.sh",
            OVS_INSTANCE_SH,
            &["stop", PROD_NAMESPACE, PROD_RUNDIR],
        )?;
    }

    // 3. Anything still inside a lab namespace was started there by the lab
    //    (a daemon's children, a launch interrupted before its pid was recorded).
    //    Not the probe namespace: the lab starts nothing there, whatever runs
    //    there is gemelo's or an operator's (removing the namespace is enough).
    for ns in ours
        .iter()
        .filter(|ns| existing.contains(ns) && *ns != PROBE_NAMESPACE)
    {
        let out = run_args("ip", &["netns", "pids", ns]).unwrap_or_default();
        let pids: Vec<u32> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        stop_all(&pids, |pid| in_namespace(pid, ns), Duration::from_secs(2));
    }

    // 4. Namespaces and their /etc/netns entries.
    for ns in &ours {
        if existing.contains(ns) {
            run_args("ip", &["netns", "del", ns])?;
        }
        let etc = Path::new(ETC_NETNS).join(ns);
        if etc.exists() {
            fs::remove_dir_all(&etc).map_err(io_err(etc))?;
        }
    }

    if state.etc_netns_created {
        // Only if empty: someone else may have put entries there since.
        let _ = fs::remove_dir(ETC_NETNS);
    }

    // 5. The default discovery scope the lab wrote.
    if state.scope_file {
        match fs::remove_file(DEFAULT_SCOPE_FILE) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LabError::Io {
                    path: DEFAULT_SCOPE_FILE.into(),
                    source: e,
                })
            }
            _ => {}
        }
    }

    // 6. UTS namespace mounts, then the run state.
    let mounts = mount_points();
    let uts_prefix = format!("{UTS_DIR}/");
    for m in mounts.iter().filter(|m| m.starts_with(&uts_prefix)) {
        run_args("umount", &[m.as_str()])?;
    }
    if mounts.contains(UTS_DIR) {
        run_args("umount", &[UTS_DIR])?;
    }
    if Path::new(LAB_DIR).exists() {
        fs::remove_dir_all(LAB_DIR).map_err(io_err(PathBuf::from(LAB_DIR)))?;
    }
    Ok(())
}
