//! What a twin host backend does: start hosts of the plan on the twin switch,
//! stop them, and tell whether one still runs.
//!
//! Three backends implement `HostBackend`: `netns::Netns` (network + UTS
//! namespaces, the embedded default), `libvirt::Lxc` and `libvirt::Qemu`.
//! None of them owns the twin switch: `fabric` does (the switch, its
//! underlay and controller, the observer, the run dir), and `twin::build`
//! starts it on a thread of its own while it drives every backend through
//! this trait. A backend prepares what needs no switch (namespaces, files,
//! processes, guest images) at once and waits on `HostContext::switch` before
//! it touches the bridge, so a cold build overlaps the two. A backend only
//! ever sees its own hosts and the shared context; it reports each host
//! through a `TwinHostStatus` (`Ready`, or `Failed` with the reason a user
//! can act on) and never fails a whole build for one host.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::launch::Launch;
use crate::plan::{Backend, TwinHost, TwinPlan};
use crate::status::{HostState, ServiceStatus, TwinHostStatus};

/// The processes a twin host runs, from the decoy module: called with the
/// host and its dir (created, empty) when the host is (re)built.
pub type Launches = Box<dyn Fn(&TwinHost, &Path) -> Result<Vec<Launch>, String> + Send + Sync>;

/// What every backend gets from the build.
pub struct HostContext<'a> {
    pub plan: &'a TwinPlan,
    /// The twin's run dir (under /run): host dirs are `RUN_DIR/hosts/NAME`.
    pub run_dir: &'a Path,
    /// The decoy module's processes for a host.
    pub launches: &'a Launches,
    /// The twin switch's start: wait on it before touching the bridge.
    pub switch: &'a SwitchStart,
}

impl HostContext<'_> {
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.run_dir.join("hosts").join(host)
    }

    /// Waits until the twin switch is up; why a host cannot go on it if
    /// the switch did not start.
    pub fn switch_up(&self) -> Result<(), String> {
        self.switch
            .wait()
            .map_err(|why| format!("the twin switch did not start: {why}"))
    }
}

/// The twin switch coming up on another thread: backends wait on it before
/// they add ports to its bridge (or have libvirt add them); the thread that
/// starts the switch settles it once, with why not if it failed.
pub struct SwitchStart {
    outcome: Mutex<Option<Result<(), String>>>,
    settled: Condvar,
}

impl SwitchStart {
    /// A switch still starting.
    pub fn pending() -> SwitchStart {
        SwitchStart {
            outcome: Mutex::new(None),
            settled: Condvar::new(),
        }
    }

    /// A switch that runs already.
    pub fn up() -> SwitchStart {
        let s = SwitchStart::pending();
        s.settle(Ok(()));
        s
    }

    /// Says how the start ended; only the first word counts.
    pub fn settle(&self, outcome: Result<(), String>) {
        let mut o = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        if o.is_none() {
            *o = Some(outcome);
            self.settled.notify_all();
        }
    }

    /// Blocks until the switch is up (`Ok`) or its start failed (why).
    pub fn wait(&self) -> Result<(), String> {
        let mut o = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = o.as_ref() {
                return outcome.clone();
            }
            o = self.settled.wait(o).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub trait HostBackend {
    /// The plan's backend this one builds.
    fn kind(&self) -> Backend;

    /// Starts `hosts` (this backend's new or changed ones; none of them runs)
    /// and waits until their services listen; one status per host, in order.
    /// Waits on `cx.switch` before touching the bridge; a host it cannot
    /// start is `Failed` with why, and nothing of it is left on the bridge.
    fn start(
        &self,
        cx: &HostContext<'_>,
        hosts: &[&TwinHost],
        progress: &mut dyn FnMut(&str, HostState),
    ) -> Vec<TwinHostStatus>;

    /// Removes a host this backend built (as recorded in the twin's status,
    /// or left by an interrupted build), running or not, and its dir. The
    /// switch runs.
    fn stop(&self, cx: &HostContext<'_>, host: &str) -> Result<(), String>;

    /// Why a host it built (as recorded) no longer runs; `None` while it does.
    fn check(&self, host: &TwinHostStatus) -> Option<String>;
}

/// FNV-1a of the host as planned, seen steady (`TwinHost::steady`): a
/// rebuild leaves a host alone while this is unchanged.
pub fn digest(host: &TwinHost) -> String {
    let json = serde_json::to_string(&host.steady()).expect("plan serializes");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DecoyMode, DecoySpec};
    use serde_json::json;

    fn plc(setpoint: u64, pv: u64, payload: &str) -> TwinHost {
        let spec = |port: u16, name: &str, details| DecoySpec {
            port,
            proto: "tcp".into(),
            name: name.into(),
            product: None,
            version: None,
            banner: None,
            mode: DecoyMode::Emulated,
            details,
        };
        TwinHost {
            name: "plc01".into(),
            mirrors: vec![],
            hostname: "plc01".into(),
            interfaces: vec![],
            gateway: None,
            ip_forward: false,
            backend: Default::default(),
            services: vec![
                spec(
                    502,
                    "modbus",
                    json!({"holding_registers": [{"start": 0, "count": 2, "values": [setpoint, pv]}],
                    "live_registers": [{"address": 1, "samples": [pv, pv + 1]}]}),
                ),
                spec(
                    1883,
                    "mqtt",
                    json!({"listened_ms": pv, "topics": [{"topic": "t", "payload": payload, "retained": false}]}),
                ),
            ],
            honeytoken: false,
        }
    }

    #[test]
    fn new_readings_do_not_rebuild_a_host() {
        assert_eq!(
            digest(&plc(100, 98, "{\"seq\":1}")),
            digest(&plc(100, 7, "{\"seq\":9}"))
        );
        assert_ne!(
            digest(&plc(100, 98, "x")),
            digest(&plc(120, 98, "x")),
            "a setting changed"
        );
        let steady = plc(100, 98, "x").steady();
        assert_eq!(
            steady.services[0].details["holding_registers"][0]["values"],
            json!([100, null])
        );
        assert_eq!(
            steady.services[1].details["topics"][0],
            json!({"topic": "t", "retained": false})
        );
    }
}
