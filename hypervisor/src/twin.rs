//! Building, checking and removing the whole twin, whatever backend each host
//! has: what the controller calls.
//!
//! `build` runs the netns backend first (`netns::build`: the twin switch, the
//! observer and every netns host; it leaves other hosts `Pending`), then each
//! `HostBackend` (libvirt LXC, QEMU) for its hosts, and writes the merged
//! status to the same `status.json` (`netns::status` reads it). Like netns,
//! it is incremental: a libvirt host whose plan is unchanged and whose domain
//! still runs is left alone; changed hosts and hosts no longer planned are
//! stopped before the netns backend runs (a host may move between backends,
//! and its MAC must not be on the bridge twice). When the netns backend will
//! start the switch over, every domain and the libvirtd gemelo started go
//! first (libvirtd lives in the switch's namespace). libvirtd is started only
//! when the plan has libvirt hosts, and stopped when it has none left.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::backend::{digest, HostBackend, HostContext};
use crate::libvirt::{self, daemon, LibvirtError, Lxc, Qemu};
use crate::netns::{self, BuildOptions};
use crate::plan::{Backend, TwinHost, TwinPlan};
use crate::status::{HostState, TwinHostStatus, TwinState, TwinStatus};

pub struct TwinOptions {
    /// Controller, run dir and launches, as the netns backend takes them.
    pub netns: BuildOptions,
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
    #[error(transparent)]
    Netns(#[from] netns::TwinError),
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot remove twin host {host}: {message}")]
    Stop { host: String, message: String },
}

fn backends(decoy_exe: &Path, events: &Path) -> Vec<Box<dyn HostBackend>> {
    vec![
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

/// One build or destroy at a time (the netns backend has its own lock inside).
fn lock(run_dir: &Path) -> Result<fs::File, TwinError> {
    let path = run_dir.with_extension("backends.lock");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| TwinError::Io(parent.into(), e))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| TwinError::Io(path.clone(), e))?;
    file.lock().map_err(|e| TwinError::Io(path, e))?;
    Ok(file)
}

fn read_status(run_dir: &Path) -> Option<TwinStatus> {
    let text = fs::read_to_string(run_dir.join("status.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_status(run_dir: &Path, status: &TwinStatus) -> Result<(), TwinError> {
    let path = run_dir.join("status.json");
    let tmp = run_dir.join("status.json.tmp");
    let text = serde_json::to_string_pretty(status).expect("status serializes");
    fs::write(&tmp, text).map_err(|e| TwinError::Io(tmp.clone(), e))?;
    fs::rename(&tmp, &path).map_err(|e| TwinError::Io(path, e))
}

fn overall(hosts: &[TwinHostStatus]) -> TwinState {
    if hosts.iter().any(|h| h.state == HostState::Failed) {
        TwinState::Degraded
    } else {
        TwinState::Ready
    }
}

/// Builds the twin of `plan`, or brings a running one in line with it.
pub fn build(
    plan: &TwinPlan,
    opts: &TwinOptions,
    progress: &mut dyn FnMut(&str, HostState),
) -> Result<TwinStatus, TwinError> {
    let run_dir = opts.netns.run_dir.as_path();
    let _lock = lock(run_dir)?;
    let all = backends(&opts.decoy_exe, &opts.events);
    let cx = HostContext {
        plan,
        run_dir,
        launches: &opts.netns.launches,
    };
    let keeps_switch = netns::keeps_switch(plan, run_dir);
    let before: BTreeMap<String, TwinHostStatus> = read_status(run_dir)
        .map(|s| {
            s.hosts
                .into_iter()
                .filter(|h| h.domain.is_some())
                .map(|h| (h.name.clone(), h))
                .collect()
        })
        .unwrap_or_default();
    let mut keep: BTreeMap<String, TwinHostStatus> = BTreeMap::new();
    if keeps_switch {
        for h in plan.hosts.iter().filter(|h| h.backend != Backend::Netns) {
            let (Some(old), Some(b)) = (before.get(&h.name), backend_for(&all, h.backend)) else {
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
            if let Some(b) = backend_for(&all, old.backend) {
                b.stop(&cx, name).map_err(|message| TwinError::Stop {
                    host: name.clone(),
                    message,
                })?;
            }
        }
    } else {
        // The switch (and its namespace, where libvirtd runs) starts over.
        libvirt::destroy_all(run_dir)?;
    }

    let mut status = netns::build(plan, &opts.netns, progress)?;

    let fresh: Vec<&TwinHost> = plan
        .hosts
        .iter()
        .filter(|h| h.backend != Backend::Netns && !keep.contains_key(&h.name))
        .collect();
    let mut built: BTreeMap<String, TwinHostStatus> = keep;
    if !fresh.is_empty() {
        let ready = match daemon::unavailable() {
            Some(why) => Err(why),
            None => daemon::ensure_running(&plan.switch, run_dir).map_err(|e| e.to_string()),
        };
        for b in &all {
            let (ok, bad): (Vec<&TwinHost>, Vec<&TwinHost>) = fresh
                .iter()
                .copied()
                .filter(|h| h.backend == b.kind())
                .partition(|h| !h.interfaces.is_empty());
            for h in bad {
                let why = format!("host '{}' needs at least one interface", h.name);
                let hs = libvirt::failed(libvirt::starting_status(&cx, h), why, progress);
                built.insert(h.name.clone(), hs);
            }
            if ok.is_empty() {
                continue;
            }
            let statuses = match &ready {
                Ok(()) => b.start(&cx, &ok, progress),
                Err(why) => ok
                    .iter()
                    .map(|h| {
                        libvirt::failed(libvirt::starting_status(&cx, h), why.clone(), progress)
                    })
                    .collect(),
            };
            built.extend(statuses.into_iter().map(|s| (s.name.clone(), s)));
        }
    } else if built.is_empty() {
        // No libvirt host left: the libvirtd gemelo started has nothing to do.
        daemon::stop(run_dir);
    }
    for hs in status.hosts.iter_mut() {
        if let Some(b) = built.remove(&hs.name) {
            *hs = b;
        }
    }
    status.state = overall(&status.hosts);
    write_status(run_dir, &status)?;
    Ok(status)
}

/// The twin as last built, every host checked against what runs now.
pub fn status(run_dir: &Path) -> Result<Option<TwinStatus>, TwinError> {
    let Some(mut status) = netns::status(run_dir)? else {
        return Ok(None);
    };
    // Checking needs no decoy binary nor event socket.
    let all = backends(Path::new(""), Path::new(""));
    for h in status
        .hosts
        .iter_mut()
        .filter(|h| h.state == HostState::Ready && h.domain.is_some())
    {
        if let Some(problem) = backend_for(&all, h.backend).and_then(|b| b.check(h)) {
            h.state = HostState::Failed;
            h.error = Some(problem);
        }
    }
    status.state = overall(&status.hosts);
    Ok(Some(status))
}

/// Removes the whole twin: every `gm-twin-*` domain, the libvirtd gemelo
/// started, then everything of the netns backend (switch, namespaces, run
/// dir). Does nothing when there is no twin.
pub fn destroy(run_dir: &Path) -> Result<(), TwinError> {
    let _lock = lock(run_dir)?;
    let libvirt = libvirt::destroy_all(run_dir);
    // Whatever libvirt left still runs in the switch's namespace: netns stops it.
    netns::destroy(run_dir)?;
    libvirt?;
    Ok(())
}
