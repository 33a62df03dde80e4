//! The netns backend: twin hosts as network + UTS namespaces on the twin
//! switch (`fabric`), running real daemons (or decoys). The embedded default,
//! and the fastest.
//!
//! Each twin host is namespace `gm-twin-<name>` with its own UTS namespace
//! (its hostname), one veth per interface (host side `gm-eth<i>` with the
//! plan's MAC and addresses; switch side an access port `gmt<id><i>` of the
//! bridge, tagged with the interface's VLAN), its own `/etc/netns` files and
//! the processes the decoy module asks for (`Launch`), started with the same
//! machinery as the lab's hosts (`host::daemon`: foreground, private `/run`).
//!
//! Isolation: a twin host's only links are its veths into the twin bridge,
//! which forwards nothing without the controller (see `fabric` for the
//! switch's own isolation). Each daemon runs in a mount namespace whose
//! `/run` is its host's private one, so the twin switch's sockets (`db.sock`,
//! `BRIDGE.mgmt`) and the controller's `/run/gemelo/openflow.sock` do not
//! exist for it.
//!
//! Limit: a netns host shares the machine's kernel, PID space and (outside
//! `/run`) filesystem. It isolates the network, not code execution: services
//! that hand an attacker a shell belong on the LXC / QEMU backends (libvirt),
//! or behind an emulated decoy.
//!
//! Speed: `Netns::start` builds its hosts all at once. Worker threads
//! (`host::ns`) make each host's namespaces and network from Rust
//! (rtnetlink, no `ip` process) and start its daemons while the switch is
//! still starting (its namespace exists before: the veths' peers are made
//! straight into it); once the switch is up, one `ovs-vsctl` transaction
//! plugs every port, and one loop waits for every host's sockets (sock_diag,
//! as `ss`). A host that fails (its network refused by the kernel, a port
//! that cannot be added, a daemon that dies or never listens) ends `failed`
//! with the reason, and what was made of it is removed when it cannot serve;
//! the others come up and the twin is `degraded`.
//!
//! The backend keeps no record of its own: a host is found again by its
//! names (namespace, port prefix, dirs under the run dir), its daemons by
//! what runs in its namespace, so `stop` removes a host an interrupted build
//! left as well as one the twin's status lists.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::{host_status, HostBackend, HostContext};
use crate::fabric::{list_ports, NAMESPACE_PREFIX};
use crate::host::daemon::{self, log_tail, HostPlace, Started};
use crate::host::network::{self, HostNetwork, Interface};
use crate::host::ns;
use crate::host::system::{
    create_dir, in_namespace, mount_points, ovs_vsctl, private_mount_dir, remove_etc_netns,
    run_args, stop_namespaces, write_file, ETC_NETNS,
};
use crate::host::HostError;
use crate::launch::Launch;
use crate::plan::{parse_cidr, Backend, TwinHost, TwinPlan, TwinSwitch};
use crate::status::{DaemonStatus, HostState, TwinHostStatus, TwinStatus};

/// A twin host's interfaces inside its namespace: `gm-eth0`, `gm-eth1`, ...
pub const HOST_IFNAME_PREFIX: &str = "gm-eth";
/// How long `start` waits for every service of a host to listen.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(15);

/// The netns backend.
pub struct Netns;

/// FNV-1a: a stable short digest (port names).
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
pub fn port_prefix(host: &str) -> String {
    format!("gmt{:08x}", fnv(host.as_bytes()) as u32)
}

/// The bridge side of a host's interface `index` (at most 15 characters).
pub fn switch_port(host: &str, index: usize) -> String {
    format!("{}{index}", port_prefix(host))
}

/// Where a host's persistent UTS namespace is bound.
fn uts_path(run_dir: &Path, host: &str) -> PathBuf {
    run_dir.join("uts").join(host)
}

/// A netns host's status before it starts: where it will live.
fn starting_status(h: &TwinHost, run_dir: &Path) -> TwinHostStatus {
    let mut s = host_status(h);
    s.namespace = Some(host_namespace(&h.name));
    s.uts = Some(uts_path(run_dir, &h.name));
    s.dir = Some(run_dir.join("hosts").join(&h.name));
    s
}

/// A failed host whose pieces were removed: nothing of it exists.
fn discard(hs: &mut TwinHostStatus, why: String) {
    hs.state = HostState::Failed;
    hs.error = Some(why);
    hs.namespace = None;
    hs.uts = None;
    hs.dir = None;
}

/// Removes what was made of a host that failed with `why`; the reason,
/// with the trouble of the removal if there was some.
fn remove_failed(cx: &HostContext<'_>, name: &str, ports: &[String], why: String) -> String {
    match remove_host(&cx.plan.switch, cx.run_dir, name, ports) {
        Ok(()) => why,
        Err(e) => format!("{why}; removing what was made of it failed too: {e}"),
    }
}

/// A daemon a host's worker started.
#[derive(Debug, Clone)]
struct DaemonRecord {
    name: String,
    started: Started,
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

impl HostBackend for Netns {
    fn kind(&self) -> Backend {
        Backend::Netns
    }

    /// New and changed hosts, all at once, alongside the switch's start:
    /// each host's namespace, network, files and daemons on worker threads;
    /// then, the switch up, one transaction for every switch port; then one
    /// wait for every service.
    fn start(
        &self,
        cx: &HostContext<'_>,
        hosts: &[&TwinHost],
        progress: &mut dyn FnMut(&str, HostState),
    ) -> Vec<TwinHostStatus> {
        let mut statuses: BTreeMap<String, TwinHostStatus> = hosts
            .iter()
            .map(|h| (h.name.clone(), starting_status(h, cx.run_dir)))
            .collect();
        for h in hosts {
            progress(&h.name, HostState::Starting);
        }
        let fresh = clear_leftovers(cx, hosts, &mut statuses, progress);
        let switch_ns = ns::prepare_netns_dir()
            .and_then(|()| private_mount_dir(&cx.run_dir.join("uts")))
            .and_then(|()| ns::open_netns(&cx.plan.switch.namespace));
        let switch_ns = match switch_ns {
            Ok(f) => f,
            Err(e) => {
                let why = format!("the twin switch's namespace: {e}");
                for hs in statuses.values_mut() {
                    discard(hs, why.clone());
                    progress(&hs.name, HostState::Failed);
                }
                return order(hosts, statuses);
            }
        };
        let built = build_hosts(&fresh, cx, &switch_ns);
        let switch_up = cx.switch_up();

        let mut on_switch: Vec<&TwinHost> = Vec::new();
        let mut waiting: Vec<(String, Vec<Launch>, Vec<DaemonRecord>)> = Vec::new();
        for (h, b) in fresh.iter().zip(built) {
            let hs = statuses.get_mut(&h.name).expect("ours");
            hs.daemons = daemon_statuses(&b.records);
            match (b.result, &switch_up) {
                (_, Err(why)) => {
                    // The build fails as a whole; the next one starts over.
                    hs.state = HostState::Failed;
                    hs.error = Some(why.clone());
                    progress(&h.name, HostState::Failed);
                }
                (Ok(list), Ok(())) => {
                    on_switch.push(h);
                    waiting.push((h.name.clone(), list, b.records));
                }
                (Err(HostFailure::Services(e)), Ok(())) => {
                    on_switch.push(h);
                    hs.state = HostState::Failed;
                    hs.error = Some(e);
                    progress(&h.name, HostState::Failed);
                }
                (Err(HostFailure::Setup(e)), Ok(())) => {
                    // Half a host must not sit on the twin's segments.
                    let why = remove_failed(cx, &h.name, &[], e);
                    discard(hs, why);
                    progress(&h.name, HostState::Failed);
                }
            }
        }
        let unplugged = add_ports(cx.plan, &on_switch);
        if !unplugged.is_empty() {
            let ports = list_ports(&cx.plan.switch).unwrap_or_default();
            for (name, why) in unplugged {
                let why = remove_failed(cx, &name, &ports, why);
                discard(statuses.get_mut(&name).expect("ours"), why);
                waiting.retain(|(n, _, _)| *n != name);
                progress(&name, HostState::Failed);
            }
        }

        let ready = wait_listening(&waiting, Instant::now() + SERVICE_TIMEOUT, progress);
        for (name, result) in ready {
            let hs = statuses.get_mut(&name).expect("ours");
            match result {
                Ok(()) => hs.state = HostState::Ready,
                Err(e) => {
                    hs.state = HostState::Failed;
                    hs.error = Some(e);
                }
            }
        }
        order(hosts, statuses)
    }

    fn stop(&self, cx: &HostContext<'_>, host: &str) -> Result<(), String> {
        let ports = list_ports(&cx.plan.switch).map_err(|e| e.to_string())?;
        remove_host(&cx.plan.switch, cx.run_dir, host, &ports).map_err(|e| e.to_string())
    }

    fn check(&self, host: &TwinHostStatus) -> Option<String> {
        let ns = host.namespace.as_deref()?;
        if !ns::netns_path(ns).is_ok_and(|p| p.exists()) {
            return Some(format!("namespace {ns} is gone"));
        }
        daemons_alive(host)
    }
}

/// The hosts of `hosts` that can be built: what an interrupted build left
/// of one (its namespace, found by name) goes first; a host whose leftovers
/// cannot be removed fails.
fn clear_leftovers<'h>(
    cx: &HostContext<'_>,
    hosts: &[&'h TwinHost],
    statuses: &mut BTreeMap<String, TwinHostStatus>,
    progress: &mut dyn FnMut(&str, HostState),
) -> Vec<&'h TwinHost> {
    let mut fresh = Vec::new();
    for h in hosts {
        let left = ns::netns_path(&host_namespace(&h.name)).is_ok_and(|p| p.exists());
        let removed = if left {
            list_ports(&cx.plan.switch)
                .map_err(|e| e.to_string())
                .and_then(|ports| {
                    remove_host(&cx.plan.switch, cx.run_dir, &h.name, &ports)
                        .map_err(|e| e.to_string())
                })
        } else {
            Ok(())
        };
        match removed {
            Ok(()) => fresh.push(*h),
            Err(e) => {
                let hs = statuses.get_mut(&h.name).expect("ours");
                hs.state = HostState::Failed;
                hs.error = Some(format!(
                    "what an earlier build left of it could not be removed: {e}"
                ));
                progress(&h.name, HostState::Failed);
            }
        }
    }
    fresh
}

/// The statuses in the order of `hosts`.
fn order(
    hosts: &[&TwinHost],
    mut statuses: BTreeMap<String, TwinHostStatus>,
) -> Vec<TwinHostStatus> {
    hosts
        .iter()
        .filter_map(|h| statuses.remove(&h.name))
        .collect()
}

/// Builds `hosts` on worker threads (twice as many as cores: most of the
/// time goes to the kernel and to process starts), one result per host.
fn build_hosts(hosts: &[&TwinHost], cx: &HostContext<'_>, switch_ns: &fs::File) -> Vec<HostBuild> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    ns::on_own_threads(hosts, threads, |h| {
        if let Err(e) = set_up_host(h, cx.run_dir, switch_ns) {
            return HostBuild {
                records: Vec::new(),
                result: Err(HostFailure::Setup(e)),
            };
        }
        let mut records = Vec::new();
        let result = start_host(h, cx, &mut records).map_err(HostFailure::Services);
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
    cx: &HostContext<'_>,
    records: &mut Vec<DaemonRecord>,
) -> Result<Vec<Launch>, String> {
    let dir = &cx.host_dir(&h.name);
    let uts = &uts_path(cx.run_dir, &h.name);
    let ns = &host_namespace(&h.name);
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    create_dir(dir).map_err(|e| e.to_string())?;
    let list =
        (cx.launches)(h, dir).map_err(|e| format!("its services could not be prepared: {e}"))?;
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
            name: l.name.clone(),
            started,
        });
    }
    Ok(list)
}

fn daemon_statuses(records: &[DaemonRecord]) -> Vec<DaemonStatus> {
    records
        .iter()
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
    waiting: &[(String, Vec<Launch>, Vec<DaemonRecord>)],
    deadline: Instant,
    progress: &mut dyn FnMut(&str, HostState),
) -> BTreeMap<String, Result<(), String>> {
    let mut done = BTreeMap::new();
    let mut pending: Vec<&(String, Vec<Launch>, Vec<DaemonRecord>)> = waiting.iter().collect();
    while !pending.is_empty() {
        let namespaces: Vec<String> = pending.iter().map(|(n, _, _)| host_namespace(n)).collect();
        let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        let late = Instant::now() > deadline;
        let mut still = Vec::new();
        for (entry, seen) in pending.into_iter().zip(daemon::listening_in(&names)) {
            let (name, list, records) = entry;
            match look_at(list, records, seen, late) {
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
    list: &[Launch],
    records: &[DaemonRecord],
    seen: Result<Vec<(&'static str, u16)>, HostError>,
    late: bool,
) -> Option<Result<(), String>> {
    let listening = match seen {
        Ok(l) => l,
        Err(e) => return Some(Err(e.to_string())),
    };
    let record = |name: &str| {
        records
            .iter()
            .rev()
            .find(|r| r.name == name)
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

/// Stops whatever runs in a host's namespace (its daemons and their
/// children), removes its switch ports (among `ports`, the bridge's),
/// namespace, `/etc/netns` entry, UTS namespace and dir. What does not
/// exist is skipped.
fn remove_host(
    switch: &TwinSwitch,
    run_dir: &Path,
    name: &str,
    ports: &[String],
) -> Result<(), HostError> {
    let ns = host_namespace(name);
    let exists = ns::netns_path(&ns).is_ok_and(|p| p.exists());
    if exists {
        stop_namespaces(&[&ns]);
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
            switch.bridge.clone(),
            p.clone(),
        ]);
    }
    if !args.is_empty() {
        ovs_vsctl(Path::new(&switch.rundir), &args[1..])?;
    }
    if exists {
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
        fs::remove_dir_all(&dir).map_err(crate::host::system::io_err(&dir))?;
    }
    Ok(())
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
}
