//! The digital twin: planned from the inventory (`plan`, pure), built by the
//! hypervisor crate's backends, adopted across controller restarts.
//!
//! `Twin` owns the lifecycle behind `POST/GET/DELETE /api/v1/twin`: a build runs
//! in the background (the hypervisor's backends do blocking work) and
//! reports each host's progress; a rebuild is incremental (the backend restarts
//! only hosts whose plan changed); a controller that restarts finds the running
//! twin through the backend's run state and adopts it instead of rebuilding.
//! Whoever depends on the plan (the detectors' honeytokens) is told of each
//! new plan, of the adopted one, and of the destroy.

pub mod flows;
pub mod plan;

use crate::discovery::InventoryView;
use crate::store::{Kind, Store};
use gemelo_hypervisor::twin::{self as backends, TwinOptions};
use gemelo_hypervisor::{HostState, TwinPlan, TwinStatus};
use plan::TwinConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// Run state of the twin backend.
pub const TWIN_RUN_DIR: &str = "/run/gemelo/twin";

/// Debian packages whose daemons a twin host can run, with the product name discovery reports.
const RUNNABLE: [(&str, &str); 6] = [
    ("openssh-server", "OpenSSH"),
    ("lighttpd", "lighttpd"),
    ("vsftpd", "vsftpd"),
    ("inetutils-telnetd", "inetutils telnetd"),
    ("snmpd", "net-snmp"),
    ("mosquitto", "Mosquitto"),
];

/// Products installed here, as `TwinConfig::installed` wants them.
pub fn installed_products() -> BTreeMap<String, String> {
    RUNNABLE
        .iter()
        .filter_map(|(pkg, product)| {
            let out = std::process::Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", pkg])
                .output()
                .ok()?;
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !v.is_empty()).then(|| (product.to_string(), v))
        })
        .collect()
}

/// Names of the twin hosts that `next` adds, drops or changes against
/// `built`, seen steady (`TwinPlan::steady`).
pub fn changed_hosts(built: &TwinPlan, next: &TwinPlan) -> Vec<String> {
    let (built, next) = (&built.steady(), &next.steady());
    let old: BTreeMap<&str, &gemelo_hypervisor::TwinHost> =
        built.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let new: BTreeMap<&str, &gemelo_hypervisor::TwinHost> =
        next.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let mut names: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| n.to_string())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() && built != next {
        // Segments or the switch changed: the whole twin.
        names.push("(fabric)".into());
    }
    names
}

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error("a twin build is already running")]
    Busy,
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("twin backend: {0}")]
    Backend(String),
}

/// Told the twin's plan whenever it changes: a build or update starts, a
/// running twin is adopted (`Some`), the twin is destroyed (`None`).
pub type PlanWatcher = Box<dyn Fn(Option<&TwinPlan>) + Send + Sync>;

#[derive(Default)]
struct Progress {
    building: bool,
    hosts: BTreeMap<String, HostState>,
    error: Option<String>,
}

pub struct Twin {
    store: Store,
    pub config: TwinConfig,
    controller: String,
    events_socket: PathBuf,
    exe: PathBuf,
    progress: Arc<Mutex<Progress>>,
    watcher: PlanWatcher,
}

impl Twin {
    pub fn new(
        store: Store,
        mut config: TwinConfig,
        controller: String,
        events_socket: PathBuf,
        watcher: PlanWatcher,
    ) -> Arc<Twin> {
        if config.installed.is_empty() {
            config.installed = installed_products();
        }
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gemelo"));
        let twin = Twin {
            store,
            config,
            controller,
            events_socket,
            exe,
            progress: Arc::new(Mutex::new(Progress::default())),
            watcher,
        };
        if let Ok(Some(status)) = backends::status(std::path::Path::new(TWIN_RUN_DIR)) {
            info!(hosts = status.hosts.len(), "adopting the running twin");
            match twin.stored_plan() {
                Some(plan) => (twin.watcher)(Some(&plan)),
                None => warn!("the running twin has no stored plan: its honeytokens are unknown until it is rebuilt"),
            }
        }
        Arc::new(twin)
    }

    /// The plan for the current inventory (no I/O beyond what the caller passed).
    pub fn plan(&self, inv: &InventoryView) -> Result<TwinPlan, TwinError> {
        Ok(plan::plan(inv, &self.config)?)
    }

    /// Starts building (or updating) the twin from `inv`; returns at once.
    /// `config` replaces the configured one for this build when given.
    pub fn start_build(
        self: &Arc<Self>,
        inv: &InventoryView,
        config: Option<TwinConfig>,
    ) -> Result<TwinPlan, TwinError> {
        let config = match config {
            Some(mut c) => {
                if c.installed.is_empty() {
                    c.installed = self.config.installed.clone();
                }
                c
            }
            None => self.config.clone(),
        };
        let plan = plan::plan(inv, &config)?;
        {
            let mut p = self.progress.lock().expect("progress lock");
            if p.building {
                return Err(TwinError::Busy);
            }
            *p = Progress {
                building: true,
                hosts: plan
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), HostState::Pending))
                    .collect(),
                error: None,
            };
        }
        if let Err(e) = self.store.put(Kind::Twin, "plan", &plan) {
            warn!(error = %e, "could not store the twin plan");
        }
        // Updates that follow the inventory plan with the same configuration.
        if let Err(e) = self.store.put(Kind::Twin, "config", &config) {
            warn!(error = %e, "could not store the twin configuration");
        }
        (self.watcher)(Some(&plan));
        let this = self.clone();
        let job_plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let exe = this.exe.clone();
            let events = this.events_socket.clone();
            let decoy_exe = TwinOptions::decoy_next_to(&exe);
            let relays_to = events.clone();
            let opts = TwinOptions {
                controller: this.controller.clone(),
                run_dir: PathBuf::from(TWIN_RUN_DIR),
                launches: Box::new(move |host, dir| {
                    gemelo_hypervisor::decoy::launches(host, dir, &exe, &events)
                        .map_err(|e| e.to_string())
                }),
                decoy_exe,
                events: relays_to,
            };
            let progress = this.progress.clone();
            let mut report = |name: &str, state: HostState| {
                progress
                    .lock()
                    .expect("progress lock")
                    .hosts
                    .insert(name.to_string(), state);
            };
            let result = backends::build(&job_plan, &opts, &mut report);
            let mut p = this.progress.lock().expect("progress lock");
            p.building = false;
            match result {
                Ok(status) => {
                    info!(state = ?status.state, hosts = status.hosts.len(), "twin built")
                }
                Err(e) => {
                    warn!(error = %e, "twin build failed");
                    p.error = Some(e.to_string());
                }
            }
        });
        Ok(plan)
    }

    /// Removes the twin.
    pub fn destroy(&self) -> Result<(), TwinError> {
        if self.progress.lock().expect("progress lock").building {
            return Err(TwinError::Busy);
        }
        backends::destroy(std::path::Path::new(TWIN_RUN_DIR))
            .map_err(|e| TwinError::Backend(e.to_string()))?;
        let _ = self.store.remove(Kind::Twin, "plan");
        let _ = self.store.remove(Kind::Twin, "config");
        *self.progress.lock().expect("progress lock") = Progress::default();
        (self.watcher)(None);
        Ok(())
    }

    /// What `GET /api/v1/twin` returns.
    pub fn status(&self) -> Value {
        let p = self.progress.lock().expect("progress lock");
        let backend: Option<TwinStatus> = backends::status(std::path::Path::new(TWIN_RUN_DIR))
            .ok()
            .flatten();
        let mut v = match &backend {
            Some(s) => serde_json::to_value(s).unwrap_or_else(|_| json!({})),
            None => json!({"state": "absent", "hosts": []}),
        };
        if p.building {
            v["state"] = json!("building");
            v["progress"] = json!(p
                .hosts
                .iter()
                .map(|(k, s)| (k.clone(), json!(s)))
                .collect::<serde_json::Map<_, _>>());
        }
        if let Some(e) = &p.error {
            v["error"] = json!(e);
        }
        v
    }

    /// Keeps the twin in step with the inventory: every `every`, while a twin
    /// exists and no build runs, plans it again from the current inventory with
    /// the configuration of its last build; a plan that differs from the built
    /// one, and still reads the same one period later (discovery has settled:
    /// a new host's services are identified), is built. The backends rebuild
    /// only the hosts whose plan changed; the others keep running untouched.
    pub async fn follow(
        self: Arc<Self>,
        discovery: Arc<crate::discovery::Discovery>,
        every: std::time::Duration,
    ) {
        let mut candidate: Option<TwinPlan> = None;
        loop {
            tokio::time::sleep(every).await;
            let Some(built) = self.stored_plan() else {
                candidate = None;
                continue;
            };
            if self.progress.lock().expect("progress lock").building {
                continue;
            }
            let config: TwinConfig = self
                .store
                .get(Kind::Twin, "config")
                .ok()
                .flatten()
                .unwrap_or_else(|| self.config.clone());
            let view = discovery.view();
            let Ok(next) = plan::plan(&view, &config) else {
                continue;
            };
            // Changes that hold: in the steady view, the same at two looks.
            let next_steady = next.steady();
            if next_steady == built.steady() {
                candidate = None;
                continue;
            }
            if candidate.as_ref() != Some(&next_steady) {
                candidate = Some(next_steady);
                continue;
            }
            candidate = None;
            let changed = changed_hosts(&built, &next);
            info!(hosts = %changed.join(","), "the inventory changed: updating the twin");
            match self.start_build(&view, Some(config)) {
                Ok(_) | Err(TwinError::Busy) => {}
                Err(e) => warn!(error = %e, "twin update not started"),
            }
        }
    }

    /// The stored plan of the twin that was last built.
    pub fn stored_plan(&self) -> Option<TwinPlan> {
        self.store.get(Kind::Twin, "plan").ok().flatten()
    }
}
