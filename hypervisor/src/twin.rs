//! Building, checking and removing the whole twin, whatever backend each host
//! has: what the controller calls.
//!
//! `build` validates the plan, then brings the fabric (`fabric`: the twin
//! switch, its tunnel and controller, the observer, the run dir) and every
//! backend (`netns::Netns`, `libvirt::Lxc`, `libvirt::Qemu`, each behind
//! `backend::HostBackend`) in line with it, in the same way for all:
//! - Incremental: when the running switch is kept (`fabric::keeps_switch`),
//!   a host whose plan is unchanged and that its backend says still runs is
//!   left alone; every other host of the last status (changed, failed, no
//!   longer planned, moved to another backend, or left `starting` by an
//!   interrupted build) is stopped by its backend before anything starts (a
//!   host's MAC must not be on the bridge twice). When the switch starts
//!   over, everything attached to it goes first (libvirt's domains and the
//!   libvirtd gemelo started, which live in the switch's namespace; then the
//!   fabric with every namespace under the twin's names).
//! - Parallel: the fabric starts on a thread of its own while the backends
//!   start their new hosts one after the other (netns first: its hosts are
//!   built on worker threads meanwhile); each backend waits on the switch's
//!   start (`backend::SwitchStart`) before it touches the bridge.
//! - Recorded: before any host starts, `status.json` lists every host of the
//!   plan (`building`; new ones `starting`), so a build that is cut short
//!   leaves the next one (or `destroy`) the names of what it was making.
//!   When the build ends, `status.json` holds the outcome.
//!
//! libvirtd is started only when the plan has libvirt hosts to start, and
//! stopped when it has none left.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::backend::{digest, host_status, HostBackend, HostContext, Launches, SwitchStart};
use crate::fabric::{self, Fabric, FabricError};
use crate::libvirt::{self, daemon, LibvirtError, Lxc, Qemu};
use crate::netns::{self, Netns};
use crate::plan::{parse_cidr, Backend, TwinHost, TwinPlan};
use crate::status::{HostState, TwinHostStatus, TwinState, TwinStatus};

pub struct TwinOptions {
    /// Controller target for the twin bridge, e.g. `unix:/run/gemelo/openflow.sock`.
    pub controller: String,
    /// Run state, host dirs, UTS namespaces (default `fabric::DEFAULT_RUN_DIR`); under /run.
    pub run_dir: PathBuf,
    /// The processes each twin host runs (the decoy module's).
    pub launches: Launches,
    /// `gemelo-decoy`, copied into every QEMU guest (and each guest's event
    /// relay on this machine).
    pub decoy_exe: PathBuf,
    /// The controller's decoy event socket (the one the launches name):
    /// bound into LXC containers, where the QEMU guests' relays send.
    pub events: PathBuf,
}

impl TwinOptions {
    /// `gemelo-decoy` next to the running binary (where `cargo build` and
    /// packages put it).
    pub fn decoy_next_to(exe: &Path) -> PathBuf {
        exe.with_file_name("gemelo-decoy")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error("invalid twin plan: {0}")]
    Plan(String),
    #[error(transparent)]
    Fabric(#[from] FabricError),
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot remove twin host {host}: {message}")]
    Stop { host: String, message: String },
}

fn backends(decoy_exe: &Path, events: &Path) -> Vec<Box<dyn HostBackend>> {
    // netns first: its worker threads overlap the switch's start.
    vec![
        Box::new(Netns),
        Box::new(Lxc {
            events: events.into(),
            programs: decoy_exe.parent().unwrap_or(Path::new("/")).into(),
        }),
        Box::new(Qemu {
            decoy_exe: decoy_exe.into(),
            events: events.into(),
        }),
    ]
}

fn backend_for(all: &[Box<dyn HostBackend>], kind: Backend) -> Option<&dyn HostBackend> {
    all.iter().find(|b| b.kind() == kind).map(|b| b.as_ref())
}

fn lock_file(run_dir: &Path) -> Result<fs::File, TwinError> {
    let path = run_dir.with_extension("lock");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| TwinError::Io(parent.into(), e))?;
    }
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| TwinError::Io(path, e))
}

/// One build or destroy at a time per run dir.
fn lock(run_dir: &Path) -> Result<fs::File, TwinError> {
    let file = lock_file(run_dir)?;
    file.lock()
        .map_err(|e| TwinError::Io(run_dir.with_extension("lock"), e))?;
    Ok(file)
}

fn status_file(run_dir: &Path) -> PathBuf {
    run_dir.join("status.json")
}

fn overall(hosts: &[TwinHostStatus]) -> TwinState {
    if hosts.iter().any(|h| h.state == HostState::Failed) {
        TwinState::Degraded
    } else {
        TwinState::Ready
    }
}

/// Whether `plan` can be built at all; what to fix if not.
fn validate(plan: &TwinPlan) -> Result<(), TwinError> {
    let bad = |m: String| Err(TwinError::Plan(m));
    fabric::validate(plan).map_err(TwinError::Plan)?;
    let sw = &plan.switch;
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
        if netns::host_namespace(&h.name) == plan.observer_namespace
            || netns::host_namespace(&h.name) == sw.namespace
        {
            return bad(format!(
                "host name '{}' collides with the switch or observer namespace",
                h.name
            ));
        }
        if !names.insert(&h.name) {
            return bad(format!("host '{}' appears twice", h.name));
        }
        if let Some(other) = prefixes.insert(netns::port_prefix(&h.name), &h.name) {
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

/// Builds the twin of `plan`, or brings a running one in line with it.
/// `progress` hears the state of each host it (re)builds as it changes;
/// hosts left running as they were are not reported.
pub fn build(
    plan: &TwinPlan,
    opts: &TwinOptions,
    progress: &mut dyn FnMut(&str, HostState),
) -> Result<TwinStatus, TwinError> {
    let run_dir = opts.run_dir.as_path();
    fabric::require_root()?;
    validate(plan)?;
    fabric::check_run_dir(run_dir)?;
    let _lock = lock(run_dir)?;
    let all = backends(&opts.decoy_exe, &opts.events);
    let previous: Option<TwinStatus> = fabric::read_json(&status_file(run_dir)).ok().flatten();
    let reuse = fabric::keeps_switch(plan, run_dir, previous.is_some());

    let mut keep = match previous.filter(|_| reuse) {
        Some(previous) => keep_running(&all, plan, opts, previous)?,
        None => {
            // The switch (and its namespace, where libvirtd runs) starts over.
            libvirt::destroy_all(run_dir)?;
            fabric::destroy(run_dir)?;
            BTreeMap::new()
        }
    };

    let mut fabric = Fabric::prepare(plan, &opts.controller, run_dir, reuse)?;
    let fresh: Vec<&TwinHost> = plan
        .hosts
        .iter()
        .filter(|h| !keep.contains_key(&h.name))
        .collect();
    let intent: Vec<TwinHostStatus> = plan
        .hosts
        .iter()
        .map(|h| keep.get(&h.name).cloned().unwrap_or_else(|| host_status(h)))
        .collect();
    fabric::write_json(
        &status_file(run_dir),
        &fabric.status(TwinState::Building, intent),
    )?;

    let switch = if fabric.reused() {
        SwitchStart::up()
    } else {
        SwitchStart::pending()
    };
    let cx = HostContext {
        plan,
        run_dir,
        launches: &opts.launches,
        switch: &switch,
    };
    let (mut started, fabric_started) = std::thread::scope(|s| {
        let fabric_side = s.spawn(|| {
            // Backends waiting on the switch hear of a panic here too.
            struct Settle<'a>(&'a SwitchStart);
            impl Drop for Settle<'_> {
                fn drop(&mut self) {
                    self.0.settle(Err("its start was cut short".into()));
                }
            }
            let _settle = Settle(&switch);
            let r = fabric.start();
            switch.settle(r.as_ref().map(drop).map_err(|e| e.to_string()));
            r
        });
        let started = start_hosts(&all, &cx, &fresh, progress);
        let fabric_started = fabric_side
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (started, fabric_started)
    });
    fabric_started?;

    if !plan
        .hosts
        .iter()
        .any(|h| matches!(h.backend, Backend::Lxc | Backend::Qemu))
    {
        // No libvirt host left: the libvirtd gemelo started has nothing to do.
        daemon::stop(run_dir);
    }
    let hosts: Vec<TwinHostStatus> = plan
        .hosts
        .iter()
        .map(|h| {
            keep.remove(&h.name)
                .or_else(|| started.remove(&h.name))
                .unwrap_or_else(|| {
                    let why = format!("no backend here builds {:?} hosts", h.backend);
                    libvirt::failed(host_status(h), why.to_lowercase(), progress)
                })
        })
        .collect();
    let status = fabric.status(overall(&hosts), hosts);
    fabric::write_json(&status_file(run_dir), &status)?;
    Ok(status)
}

/// With the switch kept: the hosts of `previous` that stay as they are
/// (same backend and plan, ready, and still running as their backend sees
/// it); every other host of `previous` is stopped by its backend.
fn keep_running(
    all: &[Box<dyn HostBackend>],
    plan: &TwinPlan,
    opts: &TwinOptions,
    previous: TwinStatus,
) -> Result<BTreeMap<String, TwinHostStatus>, TwinError> {
    let up = SwitchStart::up();
    let cx = HostContext {
        plan,
        run_dir: &opts.run_dir,
        launches: &opts.launches,
        switch: &up,
    };
    let before: BTreeMap<String, TwinHostStatus> = previous
        .hosts
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect();
    let mut keep = BTreeMap::new();
    for h in &plan.hosts {
        let (Some(old), Some(b)) = (before.get(&h.name), backend_for(all, h.backend)) else {
            continue;
        };
        if old.backend == h.backend
            && old.state == HostState::Ready
            && old.built_from == digest(h)
            && b.check(old).is_none()
        {
            keep.insert(h.name.clone(), old.clone());
        }
    }
    for (name, old) in before.iter().filter(|(n, _)| !keep.contains_key(*n)) {
        if let Some(b) = backend_for(all, old.backend) {
            b.stop(&cx, name).map_err(|message| TwinError::Stop {
                host: name.clone(),
                message,
            })?;
        }
    }
    Ok(keep)
}

/// Starts `fresh` hosts, backend by backend; their statuses by name.
fn start_hosts(
    all: &[Box<dyn HostBackend>],
    cx: &HostContext<'_>,
    fresh: &[&TwinHost],
    progress: &mut dyn FnMut(&str, HostState),
) -> BTreeMap<String, TwinHostStatus> {
    let mut started: BTreeMap<String, TwinHostStatus> = BTreeMap::new();
    // libvirtd, which both libvirt backends need, once and only if needed.
    let mut libvirtd: Option<Result<(), String>> = None;
    for b in all {
        let mine: Vec<&TwinHost> = fresh
            .iter()
            .copied()
            .filter(|h| h.backend == b.kind())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let statuses = if b.kind() == Backend::Netns {
            b.start(cx, &mine, progress)
        } else {
            let (ok, bad): (Vec<&TwinHost>, Vec<&TwinHost>) =
                mine.into_iter().partition(|h| !h.interfaces.is_empty());
            let mut out: Vec<TwinHostStatus> = bad
                .into_iter()
                .map(|h| {
                    let why = format!("host '{}' needs at least one interface", h.name);
                    libvirt::failed(libvirt::starting_status(cx, h), why, progress)
                })
                .collect();
            let ready = libvirtd.get_or_insert_with(|| match daemon::unavailable() {
                Some(why) => Err(why),
                None => {
                    daemon::ensure_running(&cx.plan.switch, cx.run_dir).map_err(|e| e.to_string())
                }
            });
            if !ok.is_empty() {
                out.extend(match ready {
                    Ok(()) => b.start(cx, &ok, progress),
                    Err(why) => ok
                        .iter()
                        .map(|h| {
                            libvirt::failed(libvirt::starting_status(cx, h), why.clone(), progress)
                        })
                        .collect(),
                });
            }
            out
        };
        started.extend(statuses.into_iter().map(|s| (s.name.clone(), s)));
    }
    started
}

/// The twin as last built, every host checked against what runs now; `None`
/// when there is none. A build that was cut short (its status still
/// `building` while no build holds the lock) shows its unfinished hosts as
/// failed.
pub fn status(run_dir: &Path) -> Result<Option<TwinStatus>, TwinError> {
    let Some(mut status) = fabric::read_json::<TwinStatus>(&status_file(run_dir))? else {
        if fabric::has_state(run_dir) {
            return Err(FabricError::State {
                path: run_dir.into(),
                message: "a twin was partly built (no status.json): `destroy` removes it, `build` starts over".into(),
            }
            .into());
        }
        return Ok(None);
    };
    if status.state == TwinState::Building {
        let idle = lock_file(run_dir).is_ok_and(|f| f.try_lock().is_ok());
        if !idle {
            return Ok(Some(status));
        }
        for h in status
            .hosts
            .iter_mut()
            .filter(|h| h.state == HostState::Starting)
        {
            h.state = HostState::Failed;
            h.error = Some("its build was cut short; build the twin again".into());
        }
    }
    let switch_down = fabric::switch_down(&status.switch);
    // Checking needs no decoy binary nor event socket.
    let all = backends(Path::new(""), Path::new(""));
    for h in status
        .hosts
        .iter_mut()
        .filter(|h| h.state == HostState::Ready)
    {
        let problem = switch_down
            .clone()
            .or_else(|| backend_for(&all, h.backend).and_then(|b| b.check(h)));
        if let Some(p) = problem {
            h.state = HostState::Failed;
            h.error = Some(p);
        }
    }
    status.state = overall(&status.hosts);
    Ok(Some(status))
}

/// Removes the whole twin: every `gm-twin-*` domain and the libvirtd gemelo
/// started, then the fabric with everything still attached to it (switch,
/// every `gm-twin*` namespace and so every netns host, run dir). Does
/// nothing when there is no twin.
pub fn destroy(run_dir: &Path) -> Result<(), TwinError> {
    fabric::require_root()?;
    let _lock = lock(run_dir)?;
    let libvirt = libvirt::destroy_all(run_dir);
    // Whatever libvirt left still runs in the switch's namespace: the fabric stops it.
    fabric::destroy(run_dir)?;
    libvirt?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::host_with;
    use crate::status::SwitchStatus;

    /// A twin whose build was cut short while `web1` was starting.
    fn cut_short(run_dir: &Path) {
        let mut web = host_status(&host_with("http", 80, "lighttpd", serde_json::Value::Null));
        web.name = "web1".into();
        let status = TwinStatus {
            state: TwinState::Building,
            switch: SwitchStatus {
                namespace: "gm-twin".into(),
                bridge: "gm-twin0".into(),
                dpid: "0000000000000001".into(),
                rundir: run_dir.join("ovs").display().to_string(),
            },
            observer_namespace: "gm-twin-observer".into(),
            observer_addresses: vec![],
            hosts: vec![web],
        };
        fs::create_dir_all(run_dir).unwrap();
        fabric::write_json(&status_file(run_dir), &status).unwrap();
    }

    #[test]
    fn a_build_cut_short_shows_its_unfinished_hosts_failed_unless_it_still_runs() {
        let base = std::env::temp_dir().join(format!("gemelo-twin-status-{}", std::process::id()));
        let run_dir = base.join("twin");
        cut_short(&run_dir);

        // A build holds the lock: it is under way, as it says.
        let held = lock(&run_dir).unwrap();
        let s = status(&run_dir).unwrap().unwrap();
        assert_eq!(s.state, TwinState::Building);
        assert_eq!(s.hosts[0].state, HostState::Starting);
        drop(held);

        let s = status(&run_dir).unwrap().unwrap();
        assert_eq!(s.state, TwinState::Degraded);
        assert_eq!(s.hosts[0].state, HostState::Failed);
        assert!(s.hosts[0].error.as_deref().unwrap().contains("cut short"));
        fs::remove_dir_all(&base).unwrap();
    }
}
