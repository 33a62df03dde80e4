//! The twin's fabric: the switch every twin host attaches to, whatever its
//! backend, and what surrounds it (underlay plug and GRE port, controller,
//! observer, run dir, run state). Not a backend: it builds no host.
//!
//! DESIGN.md "Lab": the twin hypervisor is a second OVS instance
//! (`datapath_type=netdev`) in namespace `plan.switch.namespace` (`gm-twin`),
//! run dir `plan.switch.rundir`, started by the operators' own
//! `ovs-scripts/ovs-instance.sh`; one bridge (`gm-twin0`), OpenFlow 1.3 only,
//! fail-mode secure, pointed at the controller, which programs every flow.
//! An observer namespace (`gm-twin-observer`) has a trunk port plus one access
//! port per VLAN (`ovs-scripts/add-probe-port.sh`, as the lab's probe) and an
//! unused address on every segment: operators and tests reach twin hosts from
//! there, never from production.
//!
//! Isolation: the twin OVS instance lives in its own namespace and no link
//! joins that namespace to anything else (no veth to the machine or to
//! `gm-prod`; the GRE underlay arrives with redirection). The bridge's LOCAL
//! port is kept down and unaddressed, `gm-twin` has no address and no route
//! (no IPv6 either, not even link-locals on the ports), so no twin host can
//! reach the switch's management (`db.sock` and `BRIDGE.mgmt` are Unix
//! sockets in the run dir, outside every twin host's network). With no
//! controller the bridge forwards nothing (fail-mode secure).
//!
//! `twin::build` drives it in two steps: `Fabric::prepare` (synchronous and
//! quick: the run dir, the run state, the switch's namespace, which backends
//! make their veths into) and `Fabric::start` (on a thread of its own while
//! the backends build their hosts: the OVS instance, its tunnel and
//! controller, the observer). A switch that runs as the plan wants is kept
//! (`keeps_switch`); anything else starts over. The run state
//! (`RUN_DIR/state.json`) is written before anything is made, so `destroy`
//! removes exactly what was made, also after a crash, and falls back to the
//! `gm-twin` / `gm-twin-*` names (and stops whatever runs in them, netns twin
//! hosts included).

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::ns;
use crate::host::system::{
    create_dir, in_namespace, io_err, ip_batch, mount_points, namespaces, ovs_vsctl, proc_id,
    remove_etc_netns, run_args, run_script, stop_namespaces, write_file, ADD_PROBE_PORT_SH,
    ATTACH_CONTROLLER_SH, ETC_NETNS, OVS_INSTANCE_SH,
};
use crate::host::HostError;
use crate::plan::{parse_cidr, TwinPlan, TwinSwitch};
use crate::status::{SwitchStatus, TwinHostStatus, TwinState, TwinStatus};
use crate::tunnel;

/// Where the twin keeps its run state by default.
pub const DEFAULT_RUN_DIR: &str = "/run/gemelo/twin";
/// Namespace prefix of everything the twin creates (`gm-twin`, `gm-twin-*`).
pub const NAMESPACE_PREFIX: &str = "gm-twin";
/// The observer's trunk interface (VLAN segments: `gm-probe0.<vid>`), as made by `add-probe-port.sh`.
pub const OBSERVER_IFNAME: &str = "gm-probe0";

#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("invalid twin plan: {0}")]
    Plan(String),
    #[error("{path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("{path}: twin host dirs must lie under /run (each daemon's private /run shows them again there)")]
    RunDir { path: PathBuf },
    #[error("the twin needs root (network namespaces, mounts, Open vSwitch)")]
    NotRoot,
}

/// What `destroy` needs even when `status.json` was never written. (Files
/// written before the backends were split out also list the netns hosts'
/// namespaces and daemons: the namespaces are removed like any other, the
/// daemons go with them.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    switch: Option<TwinSwitch>,
    controller: String,
    /// Every namespace the fabric created or is about to create.
    namespaces: Vec<String>,
    /// The observer as built: (interface, `IP/PREFIX`) per segment.
    #[serde(default)]
    observer: Option<Vec<(String, String)>>,
    /// The switch is being (re)started: until it is up, it is not kept.
    #[serde(default)]
    starting: bool,
}

pub fn require_root() -> Result<(), FabricError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(FabricError::NotRoot);
    }
    Ok(())
}

/// Host dirs must lie under /run (see `FabricError::RunDir`).
pub fn check_run_dir(run_dir: &Path) -> Result<(), FabricError> {
    if !run_dir.starts_with("/run") {
        return Err(FabricError::RunDir {
            path: run_dir.into(),
        });
    }
    Ok(())
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FabricError> {
    let text = serde_json::to_string_pretty(value).expect("twin state serializes");
    let tmp = path.with_extension("json.tmp");
    write_file(&tmp, &text)?;
    Ok(fs::rename(&tmp, path).map_err(io_err(path))?)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, FabricError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| FabricError::State {
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

fn state_file(run_dir: &Path) -> PathBuf {
    run_dir.join("state.json")
}

/// Whether a build left run state behind.
pub fn has_state(run_dir: &Path) -> bool {
    state_file(run_dir).exists()
}

/// Problems with the plan's switch, observer and segments, as a user fixes them.
pub fn validate(plan: &TwinPlan) -> Result<(), String> {
    let sw = &plan.switch;
    if sw.namespace != NAMESPACE_PREFIX && !sw.namespace.starts_with("gm-twin-") {
        return Err(format!(
            "switch namespace '{}' must be gm-twin or start with gm-twin-",
            sw.namespace
        ));
    }
    if !sw.bridge.starts_with("gm-") || sw.bridge.len() > 15 {
        return Err(format!(
            "bridge '{}' must start with gm- and have at most 15 characters",
            sw.bridge
        ));
    }
    if !sw.rundir.starts_with('/') {
        return Err(format!("switch rundir '{}' must be absolute", sw.rundir));
    }
    if !plan.observer_namespace.starts_with("gm-twin-") {
        return Err(format!(
            "observer namespace '{}' must start with gm-twin-",
            plan.observer_namespace
        ));
    }
    for s in &plan.segments {
        if parse_cidr(&s.cidr).is_none() {
            return Err(format!(
                "segment cidr '{}' is not IPv4 ADDRESS/PREFIX",
                s.cidr
            ));
        }
    }
    observer_layout(plan).map(drop)
}

/// Whether network namespace `name` exists (as `ip netns list` would show it).
fn namespace_exists(name: &str) -> bool {
    ns::netns_path(name).is_ok_and(|p| p.exists())
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

/// Why the twin switch a status names no longer runs; `None` while it does.
pub fn switch_down(switch: &SwitchStatus) -> Option<String> {
    let sw = TwinSwitch {
        namespace: switch.namespace.clone(),
        rundir: switch.rundir.clone(),
        bridge: switch.bridge.clone(),
        dpid: u64::from_str_radix(&switch.dpid, 16).unwrap_or_default(),
    };
    (!ovs_alive(&sw)).then(|| {
        format!(
            "the twin switch (ovs-vswitchd of {}) is not running",
            sw.rundir
        )
    })
}

/// Whether a build of `plan` keeps the running twin switch of `run_dir`
/// (`built`: a previous build wrote its status): the same switch, fully
/// started, still running. Otherwise the twin starts over, and everything
/// attached to the switch goes first.
pub fn keeps_switch(plan: &TwinPlan, run_dir: &Path, built: bool) -> bool {
    let state: Option<RunState> = read_json(&state_file(run_dir)).ok().flatten();
    built
        && state.is_some_and(|s| !s.starting && s.switch.as_ref() == Some(&plan.switch))
        && ovs_alive(&plan.switch)
}

/// The fabric of one build, between `prepare` and `start`.
pub struct Fabric {
    switch: TwinSwitch,
    observer_namespace: String,
    /// The segments' VLANs: the observer's access ports.
    vlans: BTreeSet<u16>,
    controller: String,
    run_dir: PathBuf,
    /// The switch runs already and is kept.
    reuse: bool,
    /// The observer's (interface, `IP/PREFIX`) per segment, in plan order.
    observer: Vec<(String, String)>,
    /// `start` (re)makes the observer: it is missing or laid out differently.
    rebuild_observer: bool,
    state: RunState,
}

impl Fabric {
    /// Gets the run dir, run state and switch namespace ready for `plan`;
    /// `reuse`: the switch runs and is kept (`keeps_switch`), else whatever
    /// was there is gone (`destroy`) and everything is made anew. On reuse, a
    /// changed controller is attached here.
    pub fn prepare(
        plan: &TwinPlan,
        controller: &str,
        run_dir: &Path,
        reuse: bool,
    ) -> Result<Fabric, FabricError> {
        let mut state: RunState = if reuse {
            read_json(&state_file(run_dir))
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            RunState::default()
        };
        if reuse && state.controller != controller {
            run_script(
                "attach-controller.sh",
                ATTACH_CONTROLLER_SH,
                &[&plan.switch.rundir, &plan.switch.bridge, controller],
            )?;
        }
        create_dir(run_dir)?;
        if !reuse {
            mount_run_dir(run_dir)?;
        }
        state.switch = Some(plan.switch.clone());
        state.controller = controller.to_owned();
        state.starting = !reuse;
        for ns in [&plan.switch.namespace, &plan.observer_namespace] {
            if !state.namespaces.contains(ns) {
                state.namespaces.push(ns.clone());
            }
        }
        // The underlay is the production side's (the lab's, or the operator's);
        // one the twin has to create is the twin's to remove.
        if !reuse && !namespace_exists(tunnel::UNDERLAY_NAMESPACE) {
            state.namespaces.push(tunnel::UNDERLAY_NAMESPACE.to_owned());
        }
        write_json(&state_file(run_dir), &state)?;
        ns::prepare_netns_dir()?;
        if !reuse {
            // Before the hosts: their veths' peers are made inside it.
            ns::on_own_thread(|| create_switch_namespace(&plan.switch.namespace))?;
        }
        let observer = observer_layout(plan).map_err(FabricError::Plan)?;
        let rebuild_observer = !(reuse
            && state.observer.as_ref() == Some(&observer)
            && namespace_exists(&plan.observer_namespace));
        Ok(Fabric {
            switch: plan.switch.clone(),
            observer_namespace: plan.observer_namespace.clone(),
            vlans: plan.segments.iter().filter_map(|s| s.vlan).collect(),
            controller: controller.to_owned(),
            run_dir: run_dir.to_owned(),
            reuse,
            observer,
            rebuild_observer,
            state,
        })
    }

    /// Whether the switch was kept running (nothing to wait for).
    pub fn reused(&self) -> bool {
        self.reuse
    }

    /// Starts the switch (unless kept), then its tunnel neighbour beside the
    /// observer (the bridge forwards nothing meanwhile); records it.
    pub fn start(&mut self) -> Result<(), FabricError> {
        // A new switch gets the observer's trunk port in its initial
        // configuration, its links made beforehand; where that cannot be
        // (no 8021q for the VLAN subinterfaces), the observer is made on
        // the running switch as on a reused one.
        let mut observer_done = false;
        if !self.reuse {
            observer_done = self.start_switch()?;
        }
        let (connected, observed) = std::thread::scope(|s| {
            let connected = (!self.reuse).then(|| s.spawn(|| connect_switch(&self.switch)));
            let observed = if self.rebuild_observer && !observer_done {
                build_observer(
                    &self.switch,
                    &self.observer_namespace,
                    &self.vlans,
                    &self.observer,
                )
            } else {
                Ok(())
            };
            let connected = connected.map_or(Ok(()), |t| {
                t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            });
            (connected, observed)
        });
        connected?;
        observed?;
        self.state.starting = false;
        if self.rebuild_observer {
            self.state.observer = Some(self.observer.clone());
        }
        write_json(&state_file(&self.run_dir), &self.state)
    }

    /// The OVS instance with its bridge, GRE port and controller, and its
    /// plug into the underlay. The bridge, its settings, the tunnel port and
    /// the controller go into the instance's database before ovs-vswitchd
    /// starts (`ovs-instance.sh start-db ... COMMANDS`, then
    /// `start-vswitchd`): ovs-vswitchd comes up with them made, so the
    /// switch connects to gemelo with its tunnel port already there, and no
    /// command waits for a reconfiguration of its own. The bridge forwards
    /// nothing before the controller programs it (fail-mode secure from its
    /// creation).
    ///
    /// When the observer is to be made, its links are made beside the
    /// database and its trunk port is in the initial configuration; true
    /// when the observer is then complete (else `build_observer` makes it,
    /// replacing that port).
    fn start_switch(&self) -> Result<bool, FabricError> {
        let sw = &self.switch;
        let br = &sw.bridge;
        let rundir = Path::new(&sw.rundir);
        let target = controller_target(rundir, &self.controller)?;
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
        let port = observer_port(br);
        if self.rebuild_observer {
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
            let links = self
                .rebuild_observer
                .then(|| s.spawn(|| self.observer_links()));
            let started = run_script("ovs-instance.sh", OVS_INSTANCE_SH, &args)
                .map_err(FabricError::from)
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

    /// The observer namespace for a switch about to start, made as
    /// `add-probe-port.sh` makes it (trunk veth `gm-probe0`, a VLAN
    /// subinterface per tagged segment, the layout's addresses, no routes)
    /// but without the switch, whose initial configuration has the port
    /// (`observer_port`). False (and nothing left of it) when this kernel
    /// cannot make VLAN subinterfaces: `build_observer` then makes access
    /// ports.
    fn observer_links(&self) -> Result<bool, FabricError> {
        let obs = &self.observer_namespace;
        let sw_ns = &self.switch.namespace;
        if namespace_exists(obs) {
            run_args("ip", &["netns", "del", obs])?;
        }
        let port = observer_port(&self.switch.bridge);
        ns::on_own_thread(|| ns::create_netns(obs))?;
        ip_batch(
            None,
            &[format!(
                "link add {OBSERVER_IFNAME} netns {obs} type veth peer name {port} netns {sw_ns}"
            )],
        )?;
        ip_batch(Some(sw_ns), &[format!("link set {port} up")])?;
        let mut lines = vec![
            "link set lo up".to_owned(),
            format!("link set {OBSERVER_IFNAME} up"),
        ];
        for v in &self.vlans {
            lines.push(format!(
                "link add link {OBSERVER_IFNAME} name {OBSERVER_IFNAME}.{v} type vlan id {v}"
            ));
            lines.push(format!("link set {OBSERVER_IFNAME}.{v} up"));
        }
        if let Err(e) = ip_batch(Some(obs), &lines) {
            if self.vlans.is_empty() {
                return Err(e.into());
            }
            run_args("ip", &["netns", "del", obs])?;
            let _ = run_args("ip", &["-n", sw_ns, "link", "del", &port]);
            return Ok(false);
        }
        let addresses: Vec<String> = self
            .observer
            .iter()
            .map(|(dev, addr)| format!("addr add {addr} dev {dev}"))
            .collect();
        ip_batch(Some(obs), &addresses)?;
        observer_etc(obs)?;
        Ok(true)
    }

    /// The twin's status with `hosts`.
    pub fn status(&self, state: TwinState, hosts: Vec<TwinHostStatus>) -> TwinStatus {
        let sw = &self.switch;
        TwinStatus {
            state,
            switch: SwitchStatus {
                namespace: sw.namespace.clone(),
                bridge: sw.bridge.clone(),
                dpid: format!("{:016x}", sw.dpid),
                rundir: sw.rundir.clone(),
            },
            observer_namespace: self.observer_namespace.clone(),
            observer_addresses: self.observer.iter().map(|(_, a)| a.clone()).collect(),
            hosts,
        }
    }
}

/// Makes the run dir a file system of its own in memory (tmpfs, at most
/// 10 % of RAM, as Debian sizes /run), unless it is a mount point already.
/// Every host dir, config, log, pid file and UTS namespace file of a build
/// lives there; where /run is a disk file system, making and removing those
/// thousands of files cost the kernel's inode allocator more time than
/// building the hosts' networks (ext4: ~40 % of the build threads' time).
/// `destroy` unmounts it.
fn mount_run_dir(run_dir: &Path) -> Result<(), FabricError> {
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
fn create_switch_namespace(namespace: &str) -> Result<(), FabricError> {
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
fn controller_target(rundir: &Path, target: &str) -> Result<String, FabricError> {
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
fn connect_switch(sw: &TwinSwitch) -> Result<(), FabricError> {
    tunnel::set_tunnel_neighbour(Path::new(&sw.rundir), tunnel::PRODUCTION)?;
    // The LOCAL port is the switch's own interface: never up, never addressed.
    run_args(
        "ip",
        &["-n", &sw.namespace, "link", "set", &sw.bridge, "down"],
    )?;
    Ok(())
}

/// The ports of the twin bridge.
pub fn list_ports(sw: &TwinSwitch) -> Result<Vec<String>, HostError> {
    let out = ovs_vsctl(
        Path::new(&sw.rundir),
        &["list-ports".to_owned(), sw.bridge.clone()],
    )?;
    Ok(out.lines().map(str::to_owned).collect())
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
fn observer_layout(plan: &TwinPlan) -> Result<Vec<(String, String)>, String> {
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
            return Err(format!(
                "segment {} has no free address for the observer",
                s.cidr
            ));
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

/// The observer namespace, (re)made with `add-probe-port.sh`: a trunk port
/// plus an access port per VLAN (this kernel may lack 8021q), no routes.
fn build_observer(
    sw: &TwinSwitch,
    obs: &str,
    vids: &BTreeSet<u16>,
    layout: &[(String, String)],
) -> Result<(), FabricError> {
    if namespace_exists(obs) {
        run_args("ip", &["netns", "del", obs])?;
    }
    let mut args: Vec<String> = Vec::new();
    for p in list_ports(sw)?
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
    let mut script_args: Vec<String> = vids
        .iter()
        .flat_map(|v| ["-v".to_owned(), v.to_string()])
        .collect();
    script_args.extend([
        sw.rundir.clone(),
        sw.bridge.clone(),
        obs.to_owned(),
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

/// The observer's switch port (trunk) toward `gm-probe0`, as
/// `add-probe-port.sh` names it.
fn observer_port(bridge: &str) -> String {
    let mut port = format!("gmpr-{}", bridge.strip_prefix("gm-").unwrap_or(bridge));
    port.truncate(15);
    port
}

/// The observer's own `/etc/hosts` and `resolv.conf`.
fn observer_etc(obs: &str) -> Result<(), FabricError> {
    let etc = Path::new(ETC_NETNS).join(obs);
    create_dir(&etc)?;
    write_file(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    write_file(&etc.join("resolv.conf"), "")?;
    Ok(())
}

/// A command that runs `argv` in the observer namespace, e.g. `["curl", "http://10.10.1.10/"]`.
pub fn observer_command(status: &TwinStatus, argv: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &status.observer_namespace])
        .args(argv);
    cmd
}

fn is_twin_namespace(ns: &str) -> bool {
    ns == NAMESPACE_PREFIX || ns.starts_with("gm-twin-")
}

/// Removes the fabric and whatever is still attached to it: the OVS instance
/// (by its pid files), every `gm-twin` / `gm-twin-*` namespace (netns twin
/// hosts' too, after stopping whatever runs in them) and `/etc/netns`
/// entry, the mounts under the run dir (UTS namespaces, the tmpfs) and
/// `run_dir`; the underlay if nothing else uses it. The caller holds the
/// twin's lock and has stopped the libvirt domains (they run in the switch's
/// namespace). Does nothing when there is no twin.
pub fn destroy(run_dir: &Path) -> Result<(), FabricError> {
    // A corrupt state file must not block the cleanup: fall back to names.
    let state: RunState = read_json(&state_file(run_dir))
        .ok()
        .flatten()
        .unwrap_or_default();

    // 1. The OVS instance, by its pid files.
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

    // 2. Whatever still runs in a twin namespace, then the namespaces.
    let existing = namespaces()?;
    let ours: Vec<&String> = existing
        .iter()
        .filter(|ns| is_twin_namespace(ns) || state.namespaces.contains(ns))
        .collect();
    stop_namespaces(&ours.iter().map(|n| n.as_str()).collect::<Vec<_>>());
    for ns in &ours {
        run_args("ip", &["netns", "del", ns])?;
    }
    // 3. /etc/netns entries, by name.
    if let Ok(entries) = fs::read_dir(ETC_NETNS) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_twin_namespace(&name) || state.namespaces.contains(&name) {
                remove_etc_netns(&name)?;
            }
        }
    }
    // 4. Mounts under the run dir (UTS namespaces, then their dir), the run
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
    // 5. The underlay, if the twin was the last thing plugged into it.
    tunnel::remove_underlay_if_unused()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn run_state_of_the_single_backend_build_still_reads() {
        // As written before the fabric was split from the netns backend.
        let old = r#"{
  "switch": {"namespace": "gm-twin", "rundir": "/run/gemelo/twin/ovs", "bridge": "gm-twin0", "dpid": 1},
  "controller": "unix:/run/gemelo/openflow.sock",
  "namespaces": ["gm-twin", "gm-twin-observer", "gm-twin-web01"],
  "daemons": [{"host": "web01", "name": "httpd", "namespace": "gm-twin-web01",
               "started": {"pid": 42, "start": 7, "log": "/run/gemelo/twin/hosts/web01/httpd.log"}}],
  "observer": [["gm-probe0", "10.0.1.254/24"]]
}"#;
        let s: RunState = serde_json::from_str(old).unwrap();
        assert_eq!(s.switch.unwrap().bridge, "gm-twin0");
        assert!(!s.starting, "a twin the old build finished is kept");
        assert_eq!(s.namespaces.len(), 3);
        assert_eq!(
            s.observer,
            Some(vec![("gm-probe0".into(), "10.0.1.254/24".into())])
        );
    }
}
