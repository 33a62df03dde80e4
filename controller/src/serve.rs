//! `gemelo serve`: the controller process.
//!
//! Opens the store, binds the OpenFlow listeners and the REST API, starts
//! outbound connections, and runs the fabric's event loop until SIGINT/SIGTERM.

use crate::api::{self, ApiState};
use crate::detection::Detection;
use crate::discovery::{Discovery, DiscoveryConfig};
use crate::events::{self, Events};
use crate::fabric::{Controller, Fabric};
use crate::pipeline::ForwardingMode;
use crate::redirect::Redirections;
use crate::store::Store;
use crate::switch::{self, Endpoint, SessionConfig, SessionContext};
use crate::trigger::detect::Detectors;
use crate::twin::{plan::TwinConfig, Twin};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::info;

pub const DEFAULT_UNIX_LISTENER: &str = "unix:/run/gemelo/openflow.sock";
pub const DEFAULT_TCP_LISTENER: &str = "tcp:127.0.0.1:6653";
pub const DEFAULT_API: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA: &str = "/var/lib/gemelo";

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: Vec<Endpoint>,
    pub connect: Vec<Endpoint>,
    pub api: SocketAddr,
    pub data: PathBuf,
    pub session: SessionConfig,
    pub discovery: DiscoveryConfig,
    /// Unix datagram socket where decoys send their events (default: `events::default_socket`).
    pub events_socket: Option<PathBuf>,
    /// How often a built twin is checked against the inventory (`Twin::follow`); None = never.
    pub twin_follow: Option<std::time::Duration>,
    pub hooks: Option<crate::trigger::webhook::HooksConfig>,
    pub detectors: Option<crate::trigger::detect::DetectorsConfig>,
}

impl ServeConfig {
    pub fn forwarding(&self) -> ForwardingMode {
        self.session.forwarding
    }
}

pub async fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    let store = Store::open(&cfg.data)?;
    let (tx, rx) = mpsc::channel(8192);
    let ctx = SessionContext::new(cfg.session.clone(), tx);
    let fabric = Fabric::new();

    let mut unix_paths = Vec::new();
    for ep in &cfg.listen {
        switch::listen(ep, ctx.clone())
            .await
            .with_context(|| format!("cannot listen for switches on {ep} (is another controller running? pick another with --listen)"))?;
        if let Endpoint::Unix(p) = ep {
            unix_paths.push(p.clone());
        }
    }
    for ep in &cfg.connect {
        info!(endpoint = %ep, "connecting to switch");
        switch::connect(ep.clone(), ctx.clone());
    }

    let events = Events::new(store.clone());
    let discovery = Discovery::new(cfg.discovery.clone(), store.clone());
    if let Some(ns) = &cfg.discovery.probe_netns {
        discovery.set_own_macs(probe_macs(ns));
    }
    tokio::spawn(discovery.clone().run_periodic());
    tokio::spawn(
        discovery
            .clone()
            .run_sweeps(std::time::Duration::from_secs(2)),
    );
    tokio::spawn(discovery.clone().run_new_host_probes());
    let redirections = Redirections::new(
        store.clone(),
        fabric.clone(),
        discovery.clone(),
        events.clone(),
    )
    .context("stored redirections")?;
    tokio::spawn(redirections.clone().run_expiry());
    let detection = Detection::new(
        Detectors::new(
            cfg.detectors.clone().unwrap_or_default(),
            Default::default(),
        )
        .context("detectors")?,
        events.clone(),
        redirections.clone(),
    );
    let events_socket = cfg
        .events_socket
        .clone()
        .unwrap_or_else(|| events::default_socket(&cfg.data));
    let judge = detection.clone();
    events::listen(&events_socket, events.clone(), move |ev| {
        judge.decoy_event(ev)
    })
    .await
    .with_context(|| {
        format!(
            "cannot listen for decoy events on {}",
            events_socket.display()
        )
    })?;
    let controller = Controller {
        fabric: fabric.clone(),
        store: store.clone(),
        forwarding: cfg.forwarding(),
        discovery: discovery.clone(),
        redirections: redirections.clone(),
        detection: detection.clone(),
    };
    tokio::spawn(controller.run(rx));

    // The twin bridge connects to gemelo like any switch: through the first Unix listener.
    let twin_controller = cfg
        .listen
        .iter()
        .find(|e| matches!(e, Endpoint::Unix(_)))
        .or(cfg.listen.first())
        .map(|e| e.to_string())
        .unwrap_or_else(|| DEFAULT_UNIX_LISTENER.to_string());
    let twin = Twin::new(
        store.clone(),
        TwinConfig::default(),
        twin_controller,
        events_socket.clone(),
        Box::new(move |plan| detection.twin_planned(plan)),
    );
    if let Some(every) = cfg.twin_follow {
        tokio::spawn(twin.clone().follow(discovery.clone(), every));
    }
    let state = Arc::new(ApiState {
        fabric,
        discovery: discovery.clone(),
        events,
        twin,
        redirections,
        hooks: cfg
            .hooks
            .clone()
            .map(|h| std::sync::Mutex::new(crate::trigger::webhook::WebhookVerifier::new(h))),
        forwarding: cfg.forwarding(),
        started: Instant::now(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.api)
        .await
        .with_context(|| {
            format!(
                "cannot bind the REST API on {} (pick another with --api)",
                cfg.api
            )
        })?;
    info!(api = %cfg.api, forwarding = %cfg.forwarding(), data = %cfg.data.display(), "gemelo serving");
    let server = warp::serve(api::routes(state)).incoming(listener).run();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = server => {}
        _ = tokio::signal::ctrl_c() => info!("interrupted"),
        _ = term.recv() => info!("terminated"),
    }
    discovery.flush();
    let _ = std::fs::remove_file(&events_socket);
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// MAC addresses of the probe namespace's interfaces (gemelo's own, never inventoried).
fn probe_macs(ns: &str) -> Vec<crate::discovery::frames::Mac> {
    let out = match std::process::Command::new("ip")
        .args(["-n", ns, "-j", "link", "show"])
        .output()
    {
        Ok(o) if o.status.success() => o.stdout,
        _ => {
            tracing::warn!(netns = ns, "cannot list the probe namespace's interfaces");
            return Vec::new();
        }
    };
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap_or_default();
    links
        .iter()
        .filter_map(|l| l.get("address").and_then(|a| a.as_str()))
        .filter_map(crate::discovery::inventory::parse_mac)
        .filter(|m| *m != [0; 6])
        .collect()
}
