//! What a twin host backend does: start hosts of the plan on the twin switch,
//! stop them, and tell whether one still runs.
//!
//! `twin::build` drives the backends: the netns backend (`netns::build`)
//! first, because it also owns the twin switch and the observer every other
//! backend attaches to and builds its namespaces in one batch; then each
//! `HostBackend` (libvirt LXC, libvirt QEMU) for its hosts of the plan. A
//! backend only ever sees its own hosts and the shared context; it reports
//! each host through a `TwinHostStatus` (`Ready`, or `Failed` with the reason
//! a user can act on) and never fails a whole build for one host.

use std::path::{Path, PathBuf};

use crate::netns::Launches;
use crate::plan::{Backend, TwinHost, TwinPlan};
use crate::status::{HostState, ServiceStatus, TwinHostStatus};

/// What every backend gets from the build.
pub struct HostContext<'a> {
    pub plan: &'a TwinPlan,
    /// The twin's run dir (under /run): host dirs are `RUN_DIR/hosts/NAME`.
    pub run_dir: &'a Path,
    /// The decoy module's processes for a host (as the netns backend gets them).
    pub launches: &'a Launches,
}

impl HostContext<'_> {
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.run_dir.join("hosts").join(host)
    }
}

pub trait HostBackend {
    /// The plan's backend this one builds.
    fn kind(&self) -> Backend;

    /// Starts `hosts` (this backend's new or changed ones; none of them runs)
    /// and waits until their services listen; one status per host, in order.
    fn start(
        &self,
        cx: &HostContext<'_>,
        hosts: &[&TwinHost],
        progress: &mut dyn FnMut(&str, HostState),
    ) -> Vec<TwinHostStatus>;

    /// Removes a host this backend built, running or not, and its dir.
    fn stop(&self, cx: &HostContext<'_>, host: &str) -> Result<(), String>;

    /// Why a host it built (as recorded) no longer runs; `None` while it does.
    fn check(&self, host: &TwinHostStatus) -> Option<String>;
}

/// FNV-1a of the host as planned: a rebuild leaves a host alone while this
/// is unchanged (the netns backend computes the same digest).
pub fn digest(host: &TwinHost) -> String {
    let json = serde_json::to_string(host).expect("plan serializes");
    let h = json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// A host's status before its backend fills in where it runs.
pub fn host_status(h: &TwinHost) -> TwinHostStatus {
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
        namespace: None,
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
        uts: None,
        dir: None,
        built_from: digest(h),
    }
}
