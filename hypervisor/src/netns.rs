//! The netns backend: twin hosts as network + UTS namespaces on the twin's
//! own userspace Open vSwitch instance, running real daemons (or decoys).
//!
//! DESIGN.md "Lab": the twin hypervisor is a second OVS instance
//! (`datapath_type=netdev`) in namespace `plan.switch.namespace` (`gm-twin`),
//! run dir `plan.switch.rundir`, started by the operators' own
//! `ovs-scripts/ovs-instance.sh`; one bridge (`gm-twin0`), OpenFlow 1.3 only,
//! fail-mode secure, pointed at the controller, which programs every flow.
//! Each twin host is namespace `gm-twin-<name>` with its own UTS namespace
//! (its hostname), one veth per interface (host side `gm-eth<i>` with the
//! plan's MAC and addresses; switch side an access port `gmt<id><i>` of the
//! bridge, tagged with the interface's VLAN), its own `/etc/netns` files and
//! the processes the decoy module asks for (`Launch`), started with the same
//! machinery as the lab's hosts (`host::daemon`: foreground, private `/run`).
//! An observer namespace (`gm-twin-observer`) has a trunk port plus one access
//! port per VLAN (`ovs-scripts/add-probe-port.sh`, as the lab's probe) and an
//! unused address on every segment: operators and tests reach twin hosts from
//! there, never from production.
//!
//! Isolation: the twin OVS instance lives in its own namespace and no link
//! joins that namespace to anything else (no veth to the machine or to
//! `gm-prod`; the GRE underlay arrives with redirection). The bridge's LOCAL
//! port is kept down and unaddressed, `gm-twin` has no address and no route
//! (no IPv6 either, not even link-locals on the ports), so no twin host can reach the switch's management (`db.sock` and
//! `BRIDGE.mgmt` are Unix sockets in the run dir, outside every twin host's
//! network). Twin hosts' only links are their veths into the bridge; with no
//! controller the bridge forwards nothing (fail-mode secure). Each daemon runs
//! in a mount namespace whose `/run` is its host's private one, so the twin
//! switch's sockets (`db.sock`, `BRIDGE.mgmt`) and the controller's
//! `/run/gemelo/openflow.sock` do not exist for it.
//!
//! Limit: a netns host shares the machine's kernel, PID space and (outside
//! `/run`) filesystem. It isolates the network, not code execution: services
//! that hand an attacker a shell belong on the LXC / QEMU backends (libvirt),
//! or behind an emulated decoy.
//!
//! `build` is incremental: a host whose `TwinHost` is unchanged (same digest)
//! and still alive is left running; changed, failed or dead hosts are rebuilt;
//! hosts no longer in the plan are removed. `build` writes its run state
//! (`RUN_DIR/state.json`: namespaces, then daemons) as it goes, so `destroy`
//! removes exactly what it made, also after a crash, and falls back to the
//! `gm-twin` / `gm-twin-*` names (and stops whatever runs in them).
//!
//! Speed: new hosts are built all at once. Worker threads (`host::ns`) make
//! each host's namespaces and network from Rust (rtnetlink, no `ip` process)
//! and start its daemons, while the switch starts and the observer is made;
//! one `ovs-vsctl` transaction then plugs every port, and one loop waits for
//! every host's sockets (sock_diag, as `ss`). A host that fails
//! (its network refused by the kernel, a port that cannot be added, a daemon
//! that dies or never listens) ends `failed` with the reason, and what was
//! made of it is removed when it cannot serve; the others come up and the
//! twin is `degraded`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::daemon::{self, log_tail, HostPlace, Started};
use crate::host::network::{self, HostNetwork, Interface};
use crate::host::ns;
use crate::host::system::{
    create_dir, in_namespace, io_err, ip_batch, mount_points, namespaces, ovs_vsctl,
    private_mount_dir, proc_id, run_args, run_script, stop_all, write_file, ADD_PROBE_PORT_SH,
    ATTACH_CONTROLLER_SH, OVS_INSTANCE_SH,
};
use crate::host::HostError;
use crate::launch::Launch;
use crate::plan::{Backend, TwinHost, TwinPlan, TwinSwitch};
use crate::status::{
    DaemonStatus, HostState, ServiceStatus, SwitchStatus, TwinHostStatus, TwinState, TwinStatus,
};
use crate::tunnel;

/// Where the twin keeps its run state by default.
pub const DEFAULT_RUN_DIR: &str = "/run/gemelo/twin";
/// Namespace prefix of everything this backend creates (`gm-twin`, `gm-twin-*`).
pub const NAMESPACE_PREFIX: &str = "gm-twin";
/// A twin host's interfaces inside its namespace: `gm-eth0`, `gm-eth1`, ...
pub const HOST_IFNAME_PREFIX: &str = "gm-eth";
/// The observer's trunk interface (VLAN segments: `gm-probe0.<vid>`), as made by `add-probe-port.sh`.
pub const OBSERVER_IFNAME: &str = "gm-probe0";
/// How long `build` waits for every service of a host to listen.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(15);
const ETC_NETNS: &str = "/etc/netns";

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("invalid twin plan: {0}")]
    Plan(String),
    #[error("{path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("{path}: twin host dirs must lie under /run (each daemon's private /run shows them again there)")]
    RunDir { path: PathBuf },
    #[error("the twin's netns backend needs root (network namespaces, mounts, Open vSwitch)")]
    NotRoot,
}

/// The processes a twin host runs, from the decoy module: called with the
/// host and its dir (created, empty) when the host is (re)built.
pub type Launches = Box<dyn Fn(&TwinHost, &Path) -> Result<Vec<Launch>, String> + Send + Sync>;

pub struct BuildOptions {
    /// Controller target for the twin bridge, e.g. `unix:/run/gemelo/openflow.sock`.
    pub controller: String,
    /// Run state, host dirs, UTS namespaces (default `DEFAULT_RUN_DIR`); under /run.
    pub run_dir: PathBuf,
    pub launches: Launches,
}

/// What `destroy` needs even when `status.json` was never written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    switch: Option<TwinSwitch>,
    controller: String,
    /// Every namespace build created or is about to create.
    namespaces: Vec<String>,
    daemons: Vec<DaemonRecord>,
    /// The observer as built: (interface, `IP/PREFIX`) per segment.
    #[serde(default)]
    observer: Option<Vec<(String, String)>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DaemonRecord {
    host: String,
    name: String,
    namespace: String,
    started: Started,
}

fn require_root() -> Result<(), TwinError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(TwinError::NotRoot);
    }
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TwinError> {
    let text = serde_json::to_string_pretty(value).expect("twin state serializes");
    let tmp = path.with_extension("json.tmp");
    write_file(&tmp, &text)?;
    Ok(fs::rename(&tmp, path).map_err(io_err(path))?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, TwinError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TwinError::State {
                path: path.into(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HostError::Io {
            path: path.into(),
            source: e,
        }
        .into()),
    }
}

/// One builder or destroyer at a time per run dir.
fn lock(run_dir: &Path) -> Result<fs::File, TwinError> {
    let path = run_dir.with_extension("lock");
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.lock().map_err(io_err(&path))?;
    Ok(file)
}

/// FNV-1a: a stable short digest (port names, "built from").
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Namespace of a twin host.
pub fn host_namespace(host: &str) -> String {
    format!("{NAMESPACE_PREFIX}-{host}")
}

/// Prefix of a host's switch ports: `gmt` + 8 hex digits of its name.
fn port_prefix(host: &str) -> String {
    format!("gmt{:08x}", fnv(host.as_bytes()) as u32)
}

/// The bridge side of a host's interface `index` (at most 15 characters).
pub fn switch_port(host: &str, index: usize) -> String {
    format!("{}{index}", port_prefix(host))
}

fn digest(host: &TwinHost) -> String {
    format!(
        "{:016x}",
        fnv(serde_json::to_string(host)
            .expect("plan serializes")
            .as_bytes())
    )
}

fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((ip.parse().ok()?, len))
}

fn validate(plan: &TwinPlan) -> Result<(), TwinError> {
    let bad = |m: String| Err(TwinError::Plan(m));
    let sw = &plan.switch;
    if sw.namespace != NAMESPACE_PREFIX && !sw.namespace.starts_with("gm-twin-") {
        return bad(format!(
            "switch namespace '{}' must be gm-twin or start with gm-twin-",
            sw.namespace
        ));
    }
    if !sw.bridge.starts_with("gm-") || sw.bridge.len() > 15 {
        return bad(format!(
            "bridge '{}' must start with gm- and have at most 15 characters",
            sw.bridge
        ));
    }
    if !sw.rundir.starts_with('/') {
        return bad(format!("switch rundir '{}' must be absolute", sw.rundir));
    }
    if !plan.observer_namespace.starts_with("gm-twin-") {
        return bad(format!(
            "observer namespace '{}' must start with gm-twin-",
            plan.observer_namespace
        ));
    }
    for s in &plan.segments {
        if parse_cidr(&s.cidr).is_none() {
            return bad(format!(
                "segment cidr '{}' is not IPv4 ADDRESS/PREFIX",
                s.cidr
            ));
        }
    }
    let mut names = BTreeSet::new();
    let mut prefixes = BTreeMap::new();
    for h in &plan.hosts {
        let ok = !h.name.is_empty()
            && h.name.len() <= 20
            && h.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return bad(format!(
                "host name '{}' must be 1-20 characters of [a-z0-9-]",
                h.name
            ));
        }
        if host_namespace(&h.name) == plan.observer_namespace
            || host_namespace(&h.name) == sw.namespace
        {
            return bad(format!(
                "host name '{}' collides with the switch or observer namespace",
                h.name
            ));
        }
        if !names.insert(&h.name) {
            return bad(format!("host '{}' appears twice", h.name));
        }
        if let Some(other) = prefixes.insert(port_prefix(&h.name), &h.name) {
            return bad(format!(
                "hosts '{other}' and '{}' get the same switch port names; rename one",
                h.name
            ));
        }
        if h.backend == Backend::Netns && (h.interfaces.is_empty() || h.interfaces.len() > 99) {
            return bad(format!("host '{}' needs 1-99 interfaces", h.name));
        }
        for i in &h.interfaces {
            for ip in &i.ips {
                if parse_cidr(ip).is_none() {
                    return bad(format!(
                        "host '{}': address '{ip}' is not IPv4 ADDRESS/PREFIX",
                        h.name
                    ));
                }
            }
            if i.vlan.is_some_and(|v| !(1..=4094).contains(&v)) {
                return bad(format!(
                    "host '{}': VLAN {:?} is not 1-4094",
                    h.name, i.vlan
                ));
            }
        }
    }
    Ok(())
}

fn ovs_alive(switch: &TwinSwitch) -> bool {
    let pidfile = Path::new(&switch.rundir).join("ovs-vswitchd.pid");
    let Some(pid) = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return false;
    };
    proc_id(pid).is_some()
        && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ovs-vswitchd")
        && in_namespace(pid, &switch.namespace)
}

/// Builds the twin of `plan`, or brings an existing one in line with it.
/// `progress` hears the state of each host it (re)builds or skips as it
/// changes; hosts left running as they were are not reported.
pub fn build(
    plan: &TwinPlan,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str, HostState),
) -> Result<TwinStatus, TwinError> {
    require_root()?;
    validate(plan)?;
    let run_dir = opts.run_dir.as_path();
    if !run_dir.starts_with("/run") {
        return Err(TwinError::RunDir {
            path: run_dir.into(),
        });
    }
    let _lock = lock(run_dir)?;
    let state_file = run_dir.join("state.json");
    let status_file = run_dir.join("status.json");

    let previous: Option<TwinStatus> = read_json(&status_file).ok().flatten();
    let mut state: RunState = read_json(&state_file).ok().flatten().unwrap_or_default();
    let reuse = previous.is_some()
        && state.switch.as_ref() == Some(&plan.switch)
        && ovs_alive(&plan.switch);
    let previous = if reuse {
        if state.controller != opts.controller {
            run_script(
                "attach-controller.sh",
                ATTACH_CONTROLLER_SH,
                &[&plan.switch.rundir, &plan.switch.bridge, &opts.controller],
            )?;
        }
        previous
    } else {
        // A different switch, a dead one or a crashed build: start over.
        destroy_locked(run_dir)?;
        state = RunState::default();
        None
    };
    create_dir(run_dir)?;
    if !reuse {
        mount_run_dir(run_dir)?;
    }
    state.switch = Some(plan.switch.clone());
    state.controller = opts.controller.clone();
    for ns in [&plan.switch.namespace, &plan.observer_namespace] {
        if !state.namespaces.contains(ns) {
            state.namespaces.push(ns.clone());
        }
    }
    // The underlay is the production side's (the lab's, or the operator's);
    // one the twin has to create is the twin's to remove.
    if !reuse
        && !namespaces()?
            .iter()
            .any(|n| n == tunnel::UNDERLAY_NAMESPACE)
    {
        state.namespaces.push(tunnel::UNDERLAY_NAMESPACE.to_owned());
    }
    write_json(&state_file, &state)?;

    // Which hosts stay as they are.
    let existing = namespaces()?;
    let before: BTreeMap<String, TwinHostStatus> = previous
        .map(|p| p.hosts.into_iter().map(|h| (h.name.clone(), h)).collect())
        .unwrap_or_default();
    let mut keep: BTreeMap<String, TwinHostStatus> = BTreeMap::new();
    for h in plan.hosts.iter().filter(|h| h.backend == Backend::Netns) {
        if let Some(old) = before.get(&h.name) {
            let alive = old
                .namespace
                .as_ref()
                .is_some_and(|ns| existing.contains(ns))
                && daemons_alive(old).is_none();
            if old.state == HostState::Ready && old.built_from == digest(h) && alive {
                keep.insert(h.name.clone(), old.clone());
            }
        }
    }
    // Everything else a previous build made (its status, or a crashed build's run state) goes.
    let mut gone: BTreeSet<String> = before
        .values()
        .filter(|h| h.namespace.is_some())
        .map(|h| h.name.clone())
        .collect();
    gone.extend(state.daemons.iter().map(|d| d.host.clone()));
    gone.extend(
        state
            .namespaces
            .iter()
            .filter(|ns| **ns != plan.switch.namespace && **ns != plan.observer_namespace)
            .filter_map(|ns| ns.strip_prefix("gm-twin-").map(str::to_owned)),
    );
    // (Nothing is gone when the switch starts over: the old twin went with it.)
    let gone: Vec<&String> = gone.iter().filter(|n| !keep.contains_key(*n)).collect();
    if !gone.is_empty() {
        let ports = list_ports(plan)?;
        for name in gone {
            remove_host(plan, run_dir, name, &ports, &mut state)?;
            write_json(&state_file, &state)?;
        }
    }

    // New and changed hosts, all at once, and alongside the switch (when it
    // starts over) and the observer: each host's namespace, network, files
    // and daemons on worker threads; then one transaction for every switch
    // port; then one wait for every service.
    let fresh: Vec<&TwinHost> = plan
        .hosts
        .iter()
        .filter(|h| h.backend == Backend::Netns && !keep.contains_key(&h.name))
        .collect();
    for h in &fresh {
        let ns = host_namespace(&h.name);
        if !state.namespaces.contains(&ns) {
            state.namespaces.push(ns);
        }
    }
    write_json(&state_file, &state)?;
    ns::prepare_netns_dir()?;
    if !reuse {
        // Before the hosts: their veths' peers are made inside it.
        ns::on_own_thread(|| create_switch_namespace(&plan.switch.namespace))?;
    }
    if !fresh.is_empty() {
        private_mount_dir(&run_dir.join("uts"))?;
    }
    let switch_ns = ns::open_netns(&plan.switch.namespace)?;
    let observer = observer_layout(plan)?;
    let rebuild_observer = !(reuse
        && state.observer.as_ref() == Some(&observer)
        && namespaces()?.contains(&plan.observer_namespace));
    for h in &fresh {
        progress(&h.name, HostState::Starting);
    }
    let (switch_side, built) = std::thread::scope(|s| {
        // The switch (when it starts over), then its tunnel and controller
        // beside the observer (the bridge forwards nothing meanwhile).
        let switch_side = s.spawn(|| -> Result<(), TwinError> {
            // A new switch gets the observer's trunk port in its initial
            // configuration, its links made beforehand; where that cannot be
            // (no 8021q for the VLAN subinterfaces), the observer is made on
            // the running switch as on a reused one.
            let mut observer_done = false;
            if !reuse {
                observer_done =
                    start_switch(plan, opts, rebuild_observer.then_some(&observer[..]))?;
            }
            std::thread::scope(|s| {
                let connected = (!reuse).then(|| s.spawn(|| connect_switch(plan)));
                let observed = if rebuild_observer && !observer_done {
                    build_observer(plan, &observer)
                } else {
                    Ok(())
                };
                connected
                    .map_or(Ok(()), |t| {
                        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                    })
                    .and(observed)
            })
        });
        let built = build_hosts(&fresh, run_dir, opts, &switch_ns);
        let switch_side = switch_side
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (switch_side, built)
    });
    for b in &built {
        state.daemons.extend(b.records.iter().cloned());
    }
    // Daemons are recorded only now: a crash before this point leaves them
    // to `destroy`, which stops whatever runs in a twin namespace.
    write_json(&state_file, &state)?;
    switch_side?;
    if rebuild_observer {
        state.observer = Some(observer.clone());
    }

    let mut statuses: BTreeMap<String, TwinHostStatus> = BTreeMap::new();
    let mut on_switch: Vec<&TwinHost> = Vec::new();
    let mut waiting: Vec<(String, Vec<Launch>)> = Vec::new();
    for (h, b) in fresh.iter().zip(built) {
        let mut hs = host_status(h, run_dir);
        match b.result {
            Ok(list) => {
                on_switch.push(h);
                waiting.push((h.name.clone(), list));
            }
            Err(HostFailure::Services(e)) => {
                on_switch.push(h);
                hs.state = HostState::Failed;
                hs.error = Some(e);
                progress(&h.name, HostState::Failed);
            }
            Err(HostFailure::Setup(e)) => {
                // Half a host must not sit on the twin's segments.
                let why = remove_failed(plan, run_dir, &h.name, &[], &mut state, e);
                discard(&mut hs, why);
                progress(&h.name, HostState::Failed);
            }
        }
        statuses.insert(h.name.clone(), hs);
    }
    let unplugged = add_ports(plan, &on_switch);
    if !unplugged.is_empty() {
        let ports = list_ports(plan)?;
        for (name, why) in unplugged {
            let why = remove_failed(plan, run_dir, &name, &ports, &mut state, why);
            discard(statuses.get_mut(&name).expect("fresh host"), why);
            waiting.retain(|(n, _)| *n != name);
            progress(&name, HostState::Failed);
        }
    }
    write_json(&state_file, &state)?;

    let ready = wait_listening(&waiting, &state, Instant::now() + SERVICE_TIMEOUT, progress);
    for (name, result) in ready {
        let hs = statuses.get_mut(&name).expect("fresh host");
        match result {
            Ok(()) => hs.state = HostState::Ready,
            Err(e) => {
                hs.state = HostState::Failed;
                hs.error = Some(e);
            }
        }
    }
    for hs in statuses.values_mut() {
        hs.daemons = daemon_statuses(&state, &hs.name);
    }
    let observer_addresses = observer.into_iter().map(|(_, addr)| addr).collect();

    let hosts: Vec<TwinHostStatus> = plan
        .hosts
        .iter()
        .map(|h| {
            if let Some(k) = keep.remove(&h.name) {
                return k;
            }
            if let Some(s) = statuses.remove(&h.name) {
                return s;
            }
            let mut s = host_status(h, run_dir);
            s.namespace = None;
            s.uts = None;
            s.dir = None;
            s.state = HostState::Pending;
            s.error = Some(
                format!(
                    "backend {:?} is not built by the netns backend (libvirt backends come later)",
                    h.backend
                )
                .to_lowercase(),
            );
            progress(&h.name, HostState::Pending);
            s
        })
        .collect();
    let status = TwinStatus {
        state: overall(&hosts),
        switch: SwitchStatus {
            namespace: plan.switch.namespace.clone(),
            bridge: plan.switch.bridge.clone(),
            dpid: format!("{:016x}", plan.switch.dpid),
            rundir: plan.switch.rundir.clone(),
        },
        observer_namespace: plan.observer_namespace.clone(),
        observer_addresses,
        hosts,
    };
    write_json(&status_file, &status)?;
    Ok(status)
}

fn overall(hosts: &[TwinHostStatus]) -> TwinState {
    if hosts.iter().any(|h| h.state == HostState::Failed) {
        TwinState::Degraded
    } else {
        TwinState::Ready
    }
}

/// Makes the run dir a file system of its own in memory (tmpfs, at most
/// 10 % of RAM, as Debian sizes /run), unless it is a mount point already.
/// Every host dir, config, log, pid file and UTS namespace file of a build
/// lives there; where /run is a disk file system, making and removing those
/// thousands of files cost the kernel's inode allocator more time than
/// building the hosts' networks (ext4: ~40 % of the build threads' time).
/// `destroy` unmounts it.
fn mount_run_dir(run_dir: &Path) -> Result<(), TwinError> {
    let dir = run_dir.display().to_string();
    if !mount_points().contains(&dir) {
        run_args(
            "mount",
            &["-t", "tmpfs", "-o", "mode=0755,size=10%", "gm-twin", &dir],
        )?;
    }
    Ok(())
}

/// The switch's namespace, made before the switch (its ports' veths are
/// made straight into it) and without IPv6: a switch port needs no address,
/// and ovs-vswitchd re-reads every port's addresses on each address change
/// (a link-local appearing on each new port), which with a hundred ports
/// kept it busy for seconds before it forwarded anything. Runs on a thread
/// of its own (it enters the namespace).
fn create_switch_namespace(namespace: &str) -> Result<(), TwinError> {
    ns::create_netns(namespace)?;
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    for conf in ["all", "default"] {
        write_file(
            &Path::new("/proc/sys/net/ipv6/conf")
                .join(conf)
                .join("disable_ipv6"),
            "1\n",
        )?;
    }
    Ok(())
}

/// The OVS instance with its bridge, GRE port and controller, and its plug
/// into the underlay. The bridge, its settings, the tunnel port and the
/// controller go into the instance's database before ovs-vswitchd starts
/// (`ovs-instance.sh start ... -- COMMANDS`): ovs-vswitchd returns once it
/// has made them, so the switch connects to gemelo with its tunnel port
/// already there, and no command waits for a reconfiguration of its own. The
/// bridge forwards nothing before the controller programs it (fail-mode
/// secure from its creation).
///
/// With an observer `layout`, the observer's links are made beside the
/// database and its trunk port is in the initial configuration; true when
/// the observer is then complete (else `build_observer` makes it, replacing
/// that port).
fn start_switch(
    plan: &TwinPlan,
    opts: &BuildOptions,
    observer: Option<&[(String, String)]>,
) -> Result<bool, TwinError> {
    let sw = &plan.switch;
    let br = &sw.bridge;
    let rundir = Path::new(&sw.rundir);
    let target = controller_target(rundir, &opts.controller)?;
    let mut initial: Vec<String> = [
        "--",
        "add-br",
        br,
        "--",
        "set",
        "bridge",
        br,
        "datapath_type=netdev",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        "other-config:disable-in-band=true",
        &format!("other-config:datapath-id={:016x}", sw.dpid),
        // LLDP (a BPDU-class address) is dropped between ports without it.
        "other-config:forward-bpdu=true",
    ]
    .map(str::to_owned)
    .to_vec();
    // The only way in or out: the tunnel, which carries nothing until a
    // redirection's flows use it.
    initial.extend(tunnel::tunnel_port_commands(
        br,
        tunnel::TWIN,
        tunnel::PRODUCTION,
    ));
    let port = observer_port(plan);
    if observer.is_some() {
        initial.extend(
            [
                "--",
                "add-port",
                br,
                &port,
                "--",
                "set",
                "port",
                &port,
                "vlan_mode=trunk",
            ]
            .map(str::to_owned),
        );
    }
    initial.extend(["--", "set-controller", br, &target].map(str::to_owned));
    let mut args = vec!["start-db", &sw.namespace, &sw.rundir];
    args.extend(initial.iter().map(String::as_str));
    // The underlay plug needs the database only, the observer's links need
    // nothing of the switch: both beside the database's start; ovs-vswitchd
    // starts once the observer's port exists.
    let (started, underlay) = std::thread::scope(|s| {
        let underlay = s.spawn(|| {
            wait_for_db(rundir)?;
            // The root record, which ovs-instance.sh may not have made yet.
            ovs_vsctl(rundir, &["--no-wait".to_owned(), "init".to_owned()])?;
            tunnel::plug_underlay(rundir, &sw.namespace, tunnel::TWIN)
        });
        let links = observer.map(|layout| s.spawn(|| observer_links(plan, layout)));
        let started = run_script("ovs-instance.sh", OVS_INSTANCE_SH, &args)
            .map_err(TwinError::from)
            .and_then(|_| {
                let links = links
                    .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .transpose()?
                    .unwrap_or(false);
                run_script(
                    "ovs-instance.sh",
                    OVS_INSTANCE_SH,
                    &["start-vswitchd", &sw.namespace, &sw.rundir],
                )?;
                Ok(links)
            });
        let underlay = underlay
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (started, underlay)
    });
    let observer_done = started?;
    underlay?;
    Ok(observer_done)
}

/// Waits (at most 10 s) until the instance's ovsdb-server listens.
fn wait_for_db(rundir: &Path) -> Result<(), HostError> {
    let sock = rundir.join("db.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        if Instant::now() > deadline {
            return Err(HostError::Io {
                path: sock,
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "ovsdb-server did not listen within 10 s",
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The controller target as the switch reaches it: a Unix socket outside
/// the run dir through a symlink in it (as `attach-controller.sh` does).
fn controller_target(rundir: &Path, target: &str) -> Result<String, TwinError> {
    let Some(path) = target.strip_prefix("unix:") else {
        return Ok(target.to_owned());
    };
    if Path::new(path).starts_with(rundir) {
        return Ok(target.to_owned());
    }
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let link = rundir.join(format!("controller-{name}"));
    create_dir(rundir)?;
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(path, &link).map_err(|source| HostError::Io {
        path: link.clone(),
        source,
    })?;
    Ok(format!("unix:{}", link.display()))
}

/// The started switch: its static tunnel neighbour, its LOCAL port down.
fn connect_switch(plan: &TwinPlan) -> Result<(), TwinError> {
    let sw = &plan.switch;
    tunnel::set_tunnel_neighbour(Path::new(&sw.rundir), tunnel::PRODUCTION)?;
    // The LOCAL port is the switch's own interface: never up, never addressed.
    run_args(
        "ip",
        &["-n", &sw.namespace, "link", "set", &sw.bridge, "down"],
    )?;
    Ok(())
}

fn list_ports(plan: &TwinPlan) -> Result<Vec<String>, TwinError> {
    let out = ovs_vsctl(
        Path::new(&plan.switch.rundir),
        &["list-ports".to_owned(), plan.switch.bridge.clone()],
    )?;
    Ok(out.lines().map(str::to_owned).collect())
}

fn host_status(h: &TwinHost, run_dir: &Path) -> TwinHostStatus {
    TwinHostStatus {
        name: h.name.clone(),
        mirrors: h.mirrors.clone(),
        hostname: h.hostname.clone(),
        ips: h
            .interfaces
            .iter()
            .flat_map(|i| i.ips.iter().cloned())
            .collect(),
        mac: h
            .interfaces
            .first()
            .map(|i| i.mac.clone())
            .unwrap_or_default(),
        backend: h.backend,
        namespace: Some(host_namespace(&h.name)),
        domain: None,
        state: HostState::Starting,
        services: h
            .services
            .iter()
            .map(|s| ServiceStatus {
                port: s.port,
                proto: s.proto.clone(),
                name: s.name.clone(),
            })
            .collect(),
        daemons: Vec::new(),
        error: None,
        uts: Some(run_dir.join("uts").join(&h.name)),
        dir: Some(run_dir.join("hosts").join(&h.name)),
        built_from: digest(h),
    }
}

/// Removes what was made of a host that failed with `why`; the reason,
/// with the trouble of the removal if there was some.
fn remove_failed(
    plan: &TwinPlan,
    run_dir: &Path,
    name: &str,
    ports: &[String],
    state: &mut RunState,
    why: String,
) -> String {
    match remove_host(plan, run_dir, name, ports, state) {
        Ok(()) => why,
        Err(e) => format!("{why}; removing what was made of it failed too: {e}"),
    }
}

/// A failed host whose pieces were removed: nothing of it exists.
fn discard(hs: &mut TwinHostStatus, why: String) {
    hs.state = HostState::Failed;
    hs.error = Some(why);
    hs.namespace = None;
    hs.uts = None;
    hs.dir = None;
}

/// What became of a new host on its worker thread.
struct HostBuild {
    /// The daemons it started (also when a later one failed).
    records: Vec<DaemonRecord>,
    result: Result<Vec<Launch>, HostFailure>,
}

enum HostFailure {
    /// Its namespace, network, `/etc/netns` files or UTS namespace could
    /// not be made (what was made of its network is gone again).
    Setup(String),
    /// It exists, but its services could not be started.
    Services(String),
}

/// Builds `hosts` on worker threads (twice as many as cores: most of the
/// time goes to the kernel and to process starts), one result per host.
fn build_hosts(
    hosts: &[&TwinHost],
    run_dir: &Path,
    opts: &BuildOptions,
    switch_ns: &fs::File,
) -> Vec<HostBuild> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    ns::on_own_threads(hosts, threads, |h| {
        if let Err(e) = set_up_host(h, run_dir, switch_ns) {
            return HostBuild {
                records: Vec::new(),
                result: Err(HostFailure::Setup(e)),
            };
        }
        let mut records = Vec::new();
        let result = start_host(h, &host_status(h, run_dir), opts, &mut records)
            .map_err(HostFailure::Services);
        HostBuild { records, result }
    })
}

/// The network namespace of `h` as the plan describes it.
fn host_network(h: &TwinHost) -> Result<HostNetwork, String> {
    let interfaces = h
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let mac = network::parse_mac(&iface.mac).ok_or_else(|| {
                format!(
                    "interface {i}: MAC '{}' is not six hex bytes (aa:bb:cc:dd:ee:ff)",
                    iface.mac
                )
            })?;
            let addresses = iface
                .ips
                .iter()
                .map(|ip| {
                    parse_cidr(ip)
                        .ok_or_else(|| format!("interface {i}: '{ip}' is not IPv4 ADDRESS/PREFIX"))
                })
                .collect::<Result<_, _>>()?;
            Ok(Interface {
                name: format!("{HOST_IFNAME_PREFIX}{i}"),
                mac,
                peer: switch_port(&h.name, i),
                addresses,
            })
        })
        .collect::<Result<_, String>>()?;
    let gateway = h
        .gateway
        .as_deref()
        .map(|g| {
            g.parse::<Ipv4Addr>()
                .map_err(|_| format!("gateway '{g}' is not an IPv4 address"))
        })
        .transpose()?;
    Ok(HostNetwork {
        namespace: host_namespace(&h.name),
        interfaces,
        gateway,
        ip_forward: h.ip_forward,
    })
}

/// On a worker thread (left in the host's namespaces): namespace, veths
/// (peers straight into the switch's namespace, up), addresses, routes,
/// `/etc/netns` files and UTS namespace of `h`; why not, if it fails.
fn set_up_host(h: &TwinHost, run_dir: &Path, switch_ns: &fs::File) -> Result<(), String> {
    let net = host_network(h)?;
    network::create(&net, switch_ns)
        .map_err(|e| format!("its network could not be set up: {e}"))?;
    // Its own /etc/hosts and resolv.conf (ip netns exec binds them over
    // /etc): only itself, no resolver, nothing of the machine's.
    let etc = Path::new(ETC_NETNS).join(&net.namespace);
    let files = (|| -> Result<(), HostError> {
        create_dir(&etc)?;
        write_file(
            &etc.join("hosts"),
            &format!(
                "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                h.hostname
            ),
        )?;
        write_file(&etc.join("resolv.conf"), "")?;
        write_file(&etc.join("hostname"), &format!("{}\n", h.hostname))?;
        ns::create_uts(&run_dir.join("uts").join(&h.name), &h.hostname)
    })();
    files.map_err(|e| format!("it could not be set up: {e}"))
}

/// Plugs the switch side of the hosts' veths into the bridge (access ports
/// tagged with their VLAN) in one transaction; if that fails, host by host,
/// so that only hosts whose ports cannot be added fail. Those, with why.
fn add_ports(plan: &TwinPlan, hosts: &[&TwinHost]) -> BTreeMap<String, String> {
    let sw = &plan.switch;
    let args = |hosts: &[&TwinHost], may_exist: bool| {
        let mut vsctl: Vec<String> = Vec::new();
        for h in hosts {
            for (i, iface) in h.interfaces.iter().enumerate() {
                let port = switch_port(&h.name, i);
                vsctl.push("--".into());
                if may_exist {
                    vsctl.push("--may-exist".into());
                }
                vsctl.extend(["add-port".into(), sw.bridge.clone(), port.clone()]);
                if let Some(vlan) = iface.vlan {
                    vsctl.extend([
                        "--".into(),
                        "set".into(),
                        "port".into(),
                        port.clone(),
                        format!("tag={vlan}"),
                    ]);
                }
            }
        }
        vsctl.split_off(1)
    };
    let rundir = Path::new(&sw.rundir);
    if hosts.is_empty() || ovs_vsctl(rundir, &args(hosts, false)).is_ok() {
        return BTreeMap::new();
    }
    hosts
        .iter()
        .filter_map(|h| {
            ovs_vsctl(rundir, &args(&[h], true)).err().map(|e| {
                (
                    h.name.clone(),
                    format!("its switch ports could not be added: {e}"),
                )
            })
        })
        .collect()
}

/// Writes the host's files and starts its launches (recording each daemon
/// in `records` as it starts); the launches, or why not.
fn start_host(
    h: &TwinHost,
    hs: &TwinHostStatus,
    opts: &BuildOptions,
    records: &mut Vec<DaemonRecord>,
) -> Result<Vec<Launch>, String> {
    let dir = hs.dir.as_deref().expect("netns host has a dir");
    let uts = hs.uts.as_deref().expect("netns host has a uts");
    let ns = hs.namespace.as_deref().expect("netns host has a namespace");
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    create_dir(dir).map_err(|e| e.to_string())?;
    let list =
        (opts.launches)(h, dir).map_err(|e| format!("its services could not be prepared: {e}"))?;
    for l in &list {
        for (path, contents, mode) in &l.files {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                dir.join(path)
            };
            if let Some(parent) = path.parent() {
                create_dir(parent).map_err(|e| e.to_string())?;
            }
            fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let place = HostPlace {
        namespace: ns,
        uts,
        dir,
    };
    for l in &list {
        let started = daemon::launch(place, &l.name, &l.argv, &l.env)
            .map_err(|e| format!("{}: {e}", l.name))?;
        records.push(DaemonRecord {
            host: h.name.clone(),
            name: l.name.clone(),
            namespace: ns.to_owned(),
            started,
        });
    }
    Ok(list)
}

fn daemon_statuses(state: &RunState, host: &str) -> Vec<DaemonStatus> {
    state
        .daemons
        .iter()
        .filter(|d| d.host == host)
        .map(|d| DaemonStatus {
            name: d.name.clone(),
            pid: d.started.pid,
            log: d.started.log.clone(),
            start: d.started.start,
        })
        .collect()
}

/// The first daemon of `h` that no longer runs, as an error message.
fn daemons_alive(h: &TwinHostStatus) -> Option<String> {
    h.daemons.iter().find_map(|d| {
        let started = Started {
            pid: d.pid,
            start: d.start,
            log: d.log.clone(),
        };
        let ours = started.alive()
            && h.namespace
                .as_deref()
                .is_some_and(|ns| in_namespace(d.pid, ns));
        (!ours).then(|| {
            format!(
                "{} (pid {}) is not running; see {}",
                d.name,
                d.pid,
                d.log.display()
            )
        })
    })
}

/// Waits until the services of every host in `waiting` listen, looking at
/// all of them in each round; reports each host as it gets ready or fails
/// (a daemon exited, or time ran out).
fn wait_listening(
    waiting: &[(String, Vec<Launch>)],
    state: &RunState,
    deadline: Instant,
    progress: &mut dyn FnMut(&str, HostState),
) -> BTreeMap<String, Result<(), String>> {
    let mut done = BTreeMap::new();
    let mut pending: Vec<&(String, Vec<Launch>)> = waiting.iter().collect();
    while !pending.is_empty() {
        let namespaces: Vec<String> = pending.iter().map(|(n, _)| host_namespace(n)).collect();
        let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        let late = Instant::now() > deadline;
        let mut still = Vec::new();
        for (entry, seen) in pending.into_iter().zip(daemon::listening_in(&names)) {
            let (name, list) = entry;
            match look_at(name, list, seen, state, late) {
                Some(result) => {
                    progress(
                        name,
                        if result.is_ok() {
                            HostState::Ready
                        } else {
                            HostState::Failed
                        },
                    );
                    done.insert(name.clone(), result);
                }
                None => still.push(entry),
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    done
}

/// One look at a host whose daemons run: `Some` once it is ready or has
/// failed, `None` while it may still come up.
fn look_at(
    host: &str,
    list: &[Launch],
    seen: Result<Vec<(&'static str, u16)>, HostError>,
    state: &RunState,
    late: bool,
) -> Option<Result<(), String>> {
    let listening = match seen {
        Ok(l) => l,
        Err(e) => return Some(Err(e.to_string())),
    };
    let record = |name: &str| {
        state
            .daemons
            .iter()
            .rev()
            .find(|r| r.host == host && r.name == name)
            .expect("launched")
    };
    let missing = list
        .iter()
        .flat_map(|l| l.listens.iter().map(move |(proto, port)| (l, proto, *port)))
        .find(|(_, proto, port)| !listening.iter().any(|(p, n)| p == proto && n == port));
    if let Some((l, proto, port)) = missing {
        let r = record(&l.name);
        if !r.started.alive() {
            return Some(Err(format!(
                "{} exited before listening on {proto}/{port}; see {} ({})",
                l.name,
                r.started.log.display(),
                log_tail(&r.started.log)
            )));
        }
        if late {
            return Some(Err(format!(
                "{} did not listen on {proto}/{port} within {} s; see {}",
                l.name,
                SERVICE_TIMEOUT.as_secs(),
                r.started.log.display()
            )));
        }
        return None;
    }
    for l in list {
        let r = record(&l.name);
        if !r.started.alive() {
            return Some(Err(format!(
                "{} exited; see {} ({})",
                l.name,
                r.started.log.display(),
                log_tail(&r.started.log)
            )));
        }
    }
    Some(Ok(()))
}

/// Stops a host's daemons (by recorded pid), then whatever else runs in its
/// namespace, removes its switch ports, namespace, `/etc/netns` entry, UTS
/// namespace and dir.
fn remove_host(
    plan: &TwinPlan,
    run_dir: &Path,
    name: &str,
    ports: &[String],
    state: &mut RunState,
) -> Result<(), TwinError> {
    let ns = host_namespace(name);
    let records: Vec<DaemonRecord> = state
        .daemons
        .iter()
        .filter(|d| d.host == name)
        .cloned()
        .collect();
    stop_records(&records);
    state.daemons.retain(|d| d.host != name);
    let existing = namespaces()?;
    if existing.contains(&ns) {
        stop_namespace(&ns);
    }
    let prefix = port_prefix(name);
    let mut args: Vec<String> = Vec::new();
    for p in ports.iter().filter(|p| {
        p.strip_prefix(&prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    }) {
        args.extend([
            "--".into(),
            "--if-exists".into(),
            "del-port".into(),
            plan.switch.bridge.clone(),
            p.clone(),
        ]);
    }
    if !args.is_empty() {
        ovs_vsctl(Path::new(&plan.switch.rundir), &args[1..])?;
    }
    if existing.contains(&ns) {
        run_args("ip", &["netns", "del", &ns])?;
    }
    remove_etc_netns(&ns)?;
    let uts = run_dir.join("uts").join(name);
    if mount_points().contains(&uts.display().to_string()) {
        run_args("umount", &[&uts.display().to_string()])?;
    }
    let _ = fs::remove_file(&uts);
    let dir = run_dir.join("hosts").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    state.namespaces.retain(|n| *n != ns);
    Ok(())
}

fn stop_records(records: &[DaemonRecord]) {
    let pids: Vec<u32> = records.iter().map(|r| r.started.pid).collect();
    stop_all(
        &pids,
        |pid| {
            records.iter().any(|r| {
                r.started.pid == pid && r.started.alive() && in_namespace(pid, &r.namespace)
            })
        },
        Duration::from_secs(3),
    );
}

/// Anything still inside a twin namespace was started there by the twin
/// (a daemon's children, a launch interrupted before its pid was recorded).
fn stop_namespace(ns: &str) {
    let out = run_args("ip", &["netns", "pids", ns]).unwrap_or_default();
    let pids: Vec<u32> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    stop_all(&pids, |pid| in_namespace(pid, ns), Duration::from_secs(2));
}

fn remove_etc_netns(ns: &str) -> Result<(), TwinError> {
    let etc = Path::new(ETC_NETNS).join(ns);
    if etc.exists() {
        fs::remove_dir_all(&etc).map_err(io_err(etc))?;
    }
    Ok(())
}

/// The highest address of `cidr` not in `used` (nor network, broadcast).
fn highest_free(cidr: &str, used: &BTreeSet<Ipv4Addr>) -> Option<String> {
    let (ip, len) = parse_cidr(cidr)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let net = u32::from(ip) & mask;
    let bcast = net | !mask;
    (net.checked_add(1)?..bcast)
        .rev()
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
        .map(|a| format!("{a}/{len}"))
}

/// The observer's interface and address on every segment (the highest
/// address no host, gateway or earlier segment uses), in plan order.
fn observer_layout(plan: &TwinPlan) -> Result<Vec<(String, String)>, TwinError> {
    let mut used: BTreeSet<Ipv4Addr> = plan
        .hosts
        .iter()
        .flat_map(|h| h.interfaces.iter().flat_map(|i| i.ips.iter()))
        .filter_map(|ip| parse_cidr(ip).map(|(a, _)| a))
        .collect();
    used.extend(plan.segments.iter().filter_map(|s| {
        s.gateway
            .as_deref()?
            .split('/')
            .next()?
            .parse::<Ipv4Addr>()
            .ok()
    }));
    let mut layout = Vec::new();
    for s in &plan.segments {
        let Some(addr) = highest_free(&s.cidr, &used) else {
            return Err(TwinError::Plan(format!(
                "segment {} has no free address for the observer",
                s.cidr
            )));
        };
        used.insert(
            addr.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("formatted by highest_free"),
        );
        let dev = match s.vlan {
            Some(v) => format!("{OBSERVER_IFNAME}.{v}"),
            None => OBSERVER_IFNAME.to_owned(),
        };
        layout.push((dev, addr));
    }
    Ok(layout)
}

/// The observer's switch port (trunk) toward `gm-probe0`, as
/// `add-probe-port.sh` names it.
fn observer_port(plan: &TwinPlan) -> String {
    let bridge = &plan.switch.bridge;
    let mut port = format!("gmpr-{}", bridge.strip_prefix("gm-").unwrap_or(bridge));
    port.truncate(15);
    port
}

/// The observer namespace for a switch about to start, made as
/// `add-probe-port.sh` makes it (trunk veth `gm-probe0`, a VLAN subinterface
/// per tagged segment, the layout's addresses, no routes) but without the
/// switch, whose initial configuration has the port (`observer_port`).
/// False (and nothing left of it) when this kernel cannot make VLAN
/// subinterfaces: `build_observer` then makes access ports.
fn observer_links(plan: &TwinPlan, layout: &[(String, String)]) -> Result<bool, TwinError> {
    let obs = &plan.observer_namespace;
    if namespaces()?.contains(obs) {
        run_args("ip", &["netns", "del", obs])?;
    }
    let port = observer_port(plan);
    ns::on_own_thread(|| ns::create_netns(obs))?;
    ip_batch(
        None,
        &[format!(
            "link add {OBSERVER_IFNAME} netns {obs} type veth peer name {port} netns {}",
            plan.switch.namespace
        )],
    )?;
    ip_batch(
        Some(&plan.switch.namespace),
        &[format!("link set {port} up")],
    )?;
    let mut lines = vec![
        "link set lo up".to_owned(),
        format!("link set {OBSERVER_IFNAME} up"),
    ];
    let vids: BTreeSet<u16> = plan.segments.iter().filter_map(|s| s.vlan).collect();
    for v in &vids {
        lines.push(format!(
            "link add link {OBSERVER_IFNAME} name {OBSERVER_IFNAME}.{v} type vlan id {v}"
        ));
        lines.push(format!("link set {OBSERVER_IFNAME}.{v} up"));
    }
    if let Err(e) = ip_batch(Some(obs), &lines) {
        if vids.is_empty() {
            return Err(e.into());
        }
        run_args("ip", &["netns", "del", obs])?;
        let _ = run_args("ip", &["-n", &plan.switch.namespace, "link", "del", &port]);
        return Ok(false);
    }
    let addresses: Vec<String> = layout
        .iter()
        .map(|(dev, addr)| format!("addr add {addr} dev {dev}"))
        .collect();
    ip_batch(Some(obs), &addresses)?;
    observer_etc(obs)?;
    Ok(true)
}

fn observer_etc(obs: &str) -> Result<(), TwinError> {
    let etc = Path::new(ETC_NETNS).join(obs);
    create_dir(&etc)?;
    write_file(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    write_file(&etc.join("resolv.conf"), "")?;
    Ok(())
}

/// The observer namespace, (re)made with `add-probe-port.sh`: a trunk port
/// plus an access port per VLAN (this kernel may lack 8021q), no routes.
fn build_observer(plan: &TwinPlan, layout: &[(String, String)]) -> Result<(), TwinError> {
    let sw = &plan.switch;
    let obs = &plan.observer_namespace;
    if namespaces()?.contains(obs) {
        run_args("ip", &["netns", "del", obs])?;
    }
    let mut args: Vec<String> = Vec::new();
    for p in list_ports(plan)?
        .iter()
        .filter(|p| p.starts_with("gmpr-") || p.starts_with("gmpv"))
    {
        args.extend([
            "--".into(),
            "--if-exists".into(),
            "del-port".into(),
            sw.bridge.clone(),
            p.clone(),
        ]);
    }
    if !args.is_empty() {
        ovs_vsctl(Path::new(&sw.rundir), &args[1..])?;
    }
    let vids: BTreeSet<u16> = plan.segments.iter().filter_map(|s| s.vlan).collect();
    let mut script_args: Vec<String> = vids
        .iter()
        .flat_map(|v| ["-v".to_owned(), v.to_string()])
        .collect();
    script_args.extend([
        sw.rundir.clone(),
        sw.bridge.clone(),
        obs.clone(),
        sw.namespace.clone(),
    ]);
    let script_args: Vec<&str> = script_args.iter().map(String::as_str).collect();
    run_script("add-probe-port.sh", ADD_PROBE_PORT_SH, &script_args)?;
    let lines: Vec<String> = layout
        .iter()
        .map(|(dev, addr)| format!("addr add {addr} dev {dev}"))
        .collect();
    ip_batch(Some(obs), &lines)?;
    observer_etc(obs)
}

/// The twin as last built, checked against what runs now; `None` when there is none.
pub fn status(run_dir: &Path) -> Result<Option<TwinStatus>, TwinError> {
    let Some(mut status) = read_json::<TwinStatus>(&run_dir.join("status.json"))? else {
        if run_dir.join("state.json").exists() {
            return Err(TwinError::State {
                path: run_dir.into(),
                message: "a twin was partly built (no status.json): `destroy` removes it, `build` starts over".into(),
            });
        }
        return Ok(None);
    };
    let existing = namespaces()?;
    let switch = TwinSwitch {
        namespace: status.switch.namespace.clone(),
        rundir: status.switch.rundir.clone(),
        bridge: status.switch.bridge.clone(),
        dpid: u64::from_str_radix(&status.switch.dpid, 16).unwrap_or_default(),
    };
    let switch_up = ovs_alive(&switch);
    for h in status
        .hosts
        .iter_mut()
        .filter(|h| h.state == HostState::Ready)
    {
        let Some(ns) = h.namespace.clone() else {
            continue;
        };
        let problem = if !switch_up {
            Some(format!(
                "the twin switch (ovs-vswitchd of {}) is not running",
                switch.rundir
            ))
        } else if !existing.contains(&ns) {
            Some(format!("namespace {ns} is gone"))
        } else {
            daemons_alive(h)
        };
        if let Some(p) = problem {
            h.state = HostState::Failed;
            h.error = Some(p);
        }
    }
    status.state = overall(&status.hosts);
    Ok(Some(status))
}

/// A command that runs `argv` inside twin host `host` (its network
/// namespace with its `/etc/netns` files, and its UTS namespace); `None` when
/// the status has no such netns host.
pub fn host_command(
    status: &TwinStatus,
    host: &str,
    argv: &[&str],
) -> Option<std::process::Command> {
    let h = status.host(host)?;
    let (ns, uts) = (h.namespace.as_ref()?, h.uts.as_ref()?);
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", ns, "nsenter"])
        .arg(format!("--uts={}", uts.display()))
        .arg("--")
        .args(argv);
    Some(cmd)
}

/// A command that runs `argv` in the observer namespace, e.g. `["curl", "http://10.10.1.10/"]`.
pub fn observer_command(status: &TwinStatus, argv: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &status.observer_namespace])
        .args(argv);
    cmd
}

/// Removes the twin: daemons (by recorded pid), the OVS instance (by its pid
/// files), every `gm-twin` / `gm-twin-*` namespace and `/etc/netns` entry,
/// the UTS mounts and `run_dir`. Does nothing when there is no twin.
pub fn destroy(run_dir: &Path) -> Result<(), TwinError> {
    require_root()?;
    let _lock = lock(run_dir)?;
    destroy_locked(run_dir)
}

fn is_twin_namespace(ns: &str) -> bool {
    ns == NAMESPACE_PREFIX || ns.starts_with("gm-twin-")
}

fn destroy_locked(run_dir: &Path) -> Result<(), TwinError> {
    // A corrupt state file must not block the cleanup: fall back to names.
    let state: RunState = read_json(&run_dir.join("state.json"))
        .ok()
        .flatten()
        .unwrap_or_default();
    // 1. Daemons, by recorded pid, if still that process in that namespace.
    stop_records(&state.daemons);

    // 2. The OVS instance, by its pid files.
    let (ovs_ns, ovs_rundir) = match &state.switch {
        Some(s) => (s.namespace.clone(), PathBuf::from(&s.rundir)),
        None => (NAMESPACE_PREFIX.to_owned(), run_dir.join("ovs")),
    };
    if ovs_rundir.exists() {
        run_script(
            "ovs-instance.sh",
            OVS_INSTANCE_SH,
            &["stop", &ovs_ns, &ovs_rundir.display().to_string()],
        )?;
    }

    // 3. Whatever still runs in a twin namespace, then the namespaces.
    let existing = namespaces()?;
    let ours: Vec<&String> = existing
        .iter()
        .filter(|ns| is_twin_namespace(ns) || state.namespaces.contains(ns))
        .collect();
    for ns in &ours {
        stop_namespace(ns);
    }
    for ns in &ours {
        run_args("ip", &["netns", "del", ns])?;
    }
    // 4. /etc/netns entries, by name.
    if let Ok(entries) = fs::read_dir(ETC_NETNS) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_twin_namespace(&name) || state.namespaces.contains(&name) {
                remove_etc_netns(&name)?;
            }
        }
    }
    // 5. Mounts under the run dir (UTS namespaces, then their dir), the run
    // dir's own, the run state.
    let prefix = format!("{}/", run_dir.display());
    let mut mounts: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&prefix) || Path::new(m) == run_dir)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &mounts {
        run_args("umount", &[m.as_str()])?;
    }
    if run_dir.exists() {
        fs::remove_dir_all(run_dir).map_err(io_err(run_dir))?;
    }
    if ovs_rundir.exists() {
        fs::remove_dir_all(&ovs_rundir).map_err(io_err(&ovs_rundir))?;
    }
    // 6. The underlay, if the twin was the last thing plugged into it.
    tunnel::remove_underlay_if_unused()?;
    Ok(())
}

/// Whether `build` would keep the running twin switch of `run_dir` for
/// `plan`; otherwise it starts over and removes everything attached to the
/// switch (the libvirt backends stop their domains first).
pub fn keeps_switch(plan: &TwinPlan, run_dir: &Path) -> bool {
    let state: Option<RunState> = read_json(&run_dir.join("state.json")).ok().flatten();
    let built = read_json::<TwinStatus>(&run_dir.join("status.json"))
        .ok()
        .flatten()
        .is_some();
    built && state.and_then(|s| s.switch).as_ref() == Some(&plan.switch) && ovs_alive(&plan.switch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_ports_fit_in_an_interface_name() {
        let p = switch_port("a-twenty-char-host-x", 98);
        assert!(p.len() <= 15, "{p}");
        assert!(p.starts_with("gmt"));
        assert_eq!(switch_port("plc01", 0), switch_port("plc01", 0));
        assert_ne!(port_prefix("plc01"), port_prefix("plc02"));
    }

    fn host(mac: &str, ips: &[&str], gateway: Option<&str>) -> TwinHost {
        TwinHost {
            name: "web01".into(),
            mirrors: vec![],
            hostname: "web01".into(),
            interfaces: vec![crate::plan::TwinInterface {
                mac: mac.into(),
                ips: ips.iter().map(|s| s.to_string()).collect(),
                segment: "10.0.1.0/24".into(),
                vlan: Some(10),
            }],
            gateway: gateway.map(str::to_owned),
            ip_forward: true,
            backend: Backend::Netns,
            services: vec![],
            honeytoken: false,
        }
    }

    #[test]
    fn a_host_network_is_the_plan_s() {
        let net = host_network(&host(
            "02:00:00:00:01:0a",
            &["10.0.1.10/24", "10.0.1.11/24"],
            Some("10.0.1.1"),
        ))
        .unwrap();
        assert_eq!(net.namespace, "gm-twin-web01");
        assert_eq!(
            net.interfaces,
            [Interface {
                name: "gm-eth0".into(),
                mac: [2, 0, 0, 0, 1, 0x0a],
                peer: switch_port("web01", 0),
                addresses: vec![
                    ("10.0.1.10".parse().unwrap(), 24),
                    ("10.0.1.11".parse().unwrap(), 24)
                ],
            }]
        );
        assert_eq!(net.gateway, Some("10.0.1.1".parse().unwrap()));
        assert!(net.ip_forward);
    }

    #[test]
    fn bad_host_fields_are_that_host_s_failure() {
        let bad_mac = host_network(&host("02:00:00:00:01", &["10.0.1.10/24"], None));
        assert!(bad_mac.unwrap_err().contains("MAC '02:00:00:00:01'"));
        let bad_gw = host_network(&host("02:00:00:00:01:0a", &[], Some("10.0.1.1/24")));
        assert!(bad_gw.unwrap_err().contains("gateway '10.0.1.1/24'"));
        let bad_ip = host_network(&host("02:00:00:00:01:0a", &["10.0.1.300/24"], None));
        assert!(bad_ip.unwrap_err().contains("'10.0.1.300/24'"));
    }

    #[test]
    fn observer_takes_the_highest_free_address() {
        let used: BTreeSet<Ipv4Addr> = ["10.0.1.254".parse().unwrap()].into();
        assert_eq!(
            highest_free("10.0.1.0/24", &used).as_deref(),
            Some("10.0.1.253/24")
        );
        assert_eq!(
            highest_free("10.0.2.7/30", &BTreeSet::new()).as_deref(),
            Some("10.0.2.6/30")
        );
        assert_eq!(highest_free("10.0.2.0/32", &BTreeSet::new()), None);
    }
}
