//! Discovery: a live inventory of the production network, with no agents.
//!
//! Passive first: the classifier flows (`flows`) copy ARP, DHCP, LLDP and TCP
//! SYN-ACKs to the controller; `frames` reads them and `inventory` turns them into
//! hosts, segments and services. Links come from LLDP probes gemelo sends out of
//! every switch port. Active probing (`active`) runs from a probe port gemelo owns
//! on the fabric (a namespace such as `gm-probe`), scoped to the configured CIDRs:
//! an ARP sweep whose answers the passive path records, then connect scans and
//! protocol-aware banner grabs (`probe`). The inventory and its history live in
//! the store and survive restarts.

pub mod active;
pub mod flows;
pub mod frames;
pub mod inventory;
pub mod probe;

use crate::fabric::{dpid_str, reconcile, rfc3339, ReconcileReport};
use crate::openflow::{port, Action, Message, PacketIn, PacketOut, Port, NO_BUFFER};
use crate::pipeline::{Cookie, CookieKind};
use crate::store::{Kind, Store};
use crate::switch::{SwitchError, SwitchHandle};
use gemelo_hypervisor::tunnel::TUNNEL_PORT;
use inventory::{Change, Host, Inventory};
use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// Where `gemelo lab up` records the lab's segments as the default scope.
pub const DEFAULT_SCOPE_FILE: &str = "/run/gemelo/discovery-scope";
/// The probe namespace used when it exists and none is configured.
pub const DEFAULT_PROBE_NETNS: &str = "gm-probe";

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// CIDRs active probing may touch; nothing outside is ever probed.
    pub scope: Vec<Ipv4Network>,
    /// Network namespace of gemelo's probe port (None: no active probing).
    pub probe_netns: Option<String>,
    /// How often LLDP link probes go out of every port.
    pub lldp_interval: Duration,
    /// Cap on packet-ins per second per switch (OpenFlow controller meter).
    pub packet_in_rate: u32,
    /// How often the whole scope is swept again.
    pub sweep_interval: Duration,
    /// TCP ports active probing checks (empty: the probe module's defaults).
    pub ports: Vec<u16>,
    /// A host not seen for this long is marked vanished.
    pub vanish_after: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            scope: Vec::new(),
            probe_netns: None,
            lldp_interval: Duration::from_secs(5),
            packet_in_rate: 1000,
            sweep_interval: Duration::from_secs(300),
            ports: Vec::new(),
            vanish_after: Duration::from_secs(600),
        }
    }
}

/// Reads a scope file: one CIDR (or address) per line, `#` comments.
pub fn read_scope_file(path: &std::path::Path) -> Result<Vec<Ipv4Network>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| parse_cidr(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// A CIDR or a single address, with the error a user should see.
pub fn parse_cidr(s: &str) -> Result<Ipv4Network, String> {
    let net: Ipv4Network = s
        .parse()
        .map_err(|e| format!("{s:?} is not an IPv4 CIDR ({e}); write e.g. 10.10.1.0/24"))?;
    Ipv4Network::new(net.network(), net.prefix()).map_err(|e| format!("{s:?}: {e}"))
}

/// A switch as the inventory shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SwitchPorts {
    pub dpid: String,
    pub name: String,
    pub ports: Vec<PortInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortInfo {
    pub no: u32,
    pub name: String,
    pub mac: String,
    pub up: bool,
}

/// One history entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    pub time: String,
    #[serde(flatten)]
    pub change: Change,
}

/// The inventory as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryView {
    pub hosts: Vec<Host>,
    pub segments: Vec<inventory::Segment>,
    pub switches: Vec<SwitchPorts>,
    pub links: Vec<inventory::Link>,
}

/// An active scan requested through the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub state: String,
    pub targets: Vec<String>,
    pub ports: Vec<u16>,
    pub found: usize,
    pub started: String,
    pub finished: Option<String>,
    pub error: Option<String>,
}

pub struct Discovery {
    pub config: DiscoveryConfig,
    inv: Mutex<Inventory>,
    switches: Mutex<BTreeMap<u64, (SwitchHandle, SwitchPorts)>>,
    store: Store,
    dirty: Mutex<(BTreeSet<String>, Vec<HistoryEntry>)>,
    jobs: Mutex<BTreeMap<String, Job>>,
    next_job: std::sync::atomic::AtomicU64,
    /// In-scope addresses that appeared since the last new-host probe.
    new_ips: Mutex<BTreeSet<std::net::Ipv4Addr>>,
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

fn port_info(p: &Port) -> PortInfo {
    PortInfo {
        no: p.port_no,
        name: p.name.clone(),
        mac: inventory::mac_str(&p.hw_addr),
        up: p.is_up(),
    }
}

impl Discovery {
    /// Loads the stored inventory (hosts and segments) and starts empty otherwise.
    pub fn new(config: DiscoveryConfig, store: Store) -> Arc<Discovery> {
        let mut inv = Inventory::default();
        inv.scope = config.scope.clone();
        match store.list::<serde_json::Value>(Kind::Inventory) {
            Ok(list) => {
                for (k, v) in list {
                    if k.starts_with("host/") {
                        match serde_json::from_value::<Host>(v) {
                            Ok(h) => {
                                inv.hosts.insert(h.id.clone(), h);
                            }
                            Err(e) => {
                                warn!(key = %k, error = %e, "stored host unreadable; skipped")
                            }
                        }
                    } else if k.starts_with("segment/") {
                        if let Ok(s) = serde_json::from_value::<inventory::Segment>(v) {
                            inv.segments.insert(s.cidr.clone(), s);
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "stored inventory unreadable; starting empty"),
        }
        info!(hosts = inv.hosts.len(), scope = ?config.scope, probe = ?config.probe_netns, "discovery ready");
        Arc::new(Discovery {
            config,
            inv: Mutex::new(inv),
            switches: Mutex::new(BTreeMap::new()),
            store,
            dirty: Mutex::new((BTreeSet::new(), Vec::new())),
            jobs: Mutex::new(BTreeMap::new()),
            next_job: std::sync::atomic::AtomicU64::new(1),
            new_ips: Mutex::new(BTreeSet::new()),
        })
    }

    pub fn set_own_macs(&self, macs: impl IntoIterator<Item = frames::Mac>) {
        self.inv
            .lock()
            .expect("inventory lock")
            .own_macs
            .extend(macs);
    }

    /// Whether `mac` is gemelo's own (its probe port, its link probes).
    pub fn is_own_mac(&self, mac: &frames::Mac) -> bool {
        *mac == frames::PROBE_SRC
            || self
                .inv
                .lock()
                .expect("inventory lock")
                .own_macs
                .contains(mac)
    }

    fn record(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let t = now();
        {
            let mut new_ips = self.new_ips.lock().expect("new ips lock");
            for c in &changes {
                if let Change::Changed {
                    field,
                    from: None,
                    to: Some(ip),
                    ..
                } = c
                {
                    if field == "ips" {
                        if let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() {
                            if self.config.scope.iter().any(|n| n.contains(ip)) {
                                new_ips.insert(ip);
                            }
                        }
                    }
                }
            }
        }
        let mut d = self.dirty.lock().expect("dirty lock");
        for c in changes {
            match &c {
                Change::Appeared { host }
                | Change::Changed { host, .. }
                | Change::Vanished { host } => {
                    d.0.insert(host.clone());
                }
                _ => {}
            }
            d.1.push(HistoryEntry {
                time: t.clone(),
                change: c,
            });
        }
    }

    /// Writes changed hosts, segments and history to the store (called periodically).
    pub fn flush(&self) {
        let (hosts, history) = std::mem::take(&mut *self.dirty.lock().expect("dirty lock"));
        if hosts.is_empty() && history.is_empty() {
            return;
        }
        let (host_rows, segment_rows) = {
            let inv = self.inv.lock().expect("inventory lock");
            let hosts: Vec<(String, Host)> = hosts
                .iter()
                .filter_map(|id| Some((format!("host/{id}"), inv.hosts.get(id)?.clone())))
                .collect();
            let segments: Vec<(String, inventory::Segment)> = inv
                .segments
                .values()
                .map(|s| (format!("segment/{}", s.cidr), s.clone()))
                .collect();
            (hosts, segments)
        };
        let base = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let history_rows: Vec<(String, &HistoryEntry)> = history
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("history/{base:024}-{i:06}"), e))
            .collect();
        // One batch and one fsync per kind of row, not one per host.
        let written = self
            .store
            .put_all(
                Kind::Inventory,
                host_rows.iter().map(|(k, h)| (k.clone(), h)),
            )
            .and_then(|()| {
                self.store.put_all(
                    Kind::Inventory,
                    segment_rows.iter().map(|(k, s)| (k.clone(), s)),
                )
            })
            .and_then(|()| self.store.put_all(Kind::Inventory, history_rows));
        if let Err(e) = written {
            warn!(hosts = hosts.len(), error = %e, "could not store the inventory");
        }
    }

    /// A switch connected: classifier flows, the packet-in meter, link probes.
    pub async fn switch_connected(
        &self,
        handle: SwitchHandle,
        name: String,
        ports: &[Port],
    ) -> Result<ReconcileReport, SwitchError> {
        let dpid = handle.dpid();
        let view = SwitchPorts {
            dpid: dpid_str(dpid),
            name,
            ports: ports.iter().map(port_info).collect(),
        };
        self.switches
            .lock()
            .expect("switches lock")
            .insert(dpid, (handle.clone(), view));
        match handle
            .transact(vec![flows::controller_meter(
                flows::METER_ADD,
                self.config.packet_in_rate,
            )])
            .await
        {
            Ok(()) => {}
            Err(SwitchError::Rejected { .. }) => {
                // Already there (a restart): modify it to the configured rate.
                if let Err(e) = handle
                    .transact(vec![flows::controller_meter(
                        flows::METER_MODIFY,
                        self.config.packet_in_rate,
                    )])
                    .await
                {
                    warn!(dpid = %dpid_str(dpid), error = %e, "switch refused the packet-in meter; discovery runs without it");
                }
            }
            Err(e) => return Err(e),
        }
        let report = reconcile(
            &handle,
            &flows::classifier(),
            Cookie::of_kind(CookieKind::Discovery),
            Cookie::KIND_MASK,
        )
        .await?;
        self.send_link_probes(&handle, ports).await;
        Ok(report)
    }

    pub fn switch_gone(&self, dpid: u64) {
        self.switches.lock().expect("switches lock").remove(&dpid);
    }

    pub fn port_changed(&self, dpid: u64, port: &Port, deleted: bool) {
        if let Some((_, view)) = self.switches.lock().expect("switches lock").get_mut(&dpid) {
            view.ports.retain(|p| p.no != port.port_no);
            if !deleted {
                view.ports.push(port_info(port));
                view.ports.sort_by_key(|p| p.no);
            }
        }
    }

    async fn send_link_probes(&self, handle: &SwitchHandle, ports: &[Port]) {
        for p in ports
            .iter()
            .filter(|p| p.port_no < port::MAX && p.is_up() && p.name != TUNNEL_PORT)
        {
            let out = PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: vec![Action::Output {
                    port: p.port_no,
                    max_len: 0,
                }],
                data: frames::link_probe(handle.dpid(), p.port_no),
            };
            if handle.send(Message::PacketOut(out)).await.is_err() {
                return;
            }
        }
    }

    /// One copied frame from a switch.
    pub fn packet_in(&self, dpid: u64, pi: &PacketIn) {
        let Some(in_port) = pi.in_port() else { return };
        if let Some(frame) = frames::parse(&pi.data) {
            self.frame_in(dpid, in_port, &frame);
        }
    }

    /// One copied frame, already parsed (the controller parses each once for
    /// discovery and the detectors).
    pub fn frame_in(&self, dpid: u64, in_port: u32, frame: &frames::Frame) {
        let t = now();
        let changes = {
            let mut inv = self.inv.lock().expect("inventory lock");
            match &frame.kind {
                frames::Kind::Lldp(l) => match frames::probe_origin(l) {
                    Some(from) => inv.observe_link(from, (dpid, in_port), &t),
                    None => inv.observe(dpid, in_port, frame, &t),
                },
                _ => inv.observe(dpid, in_port, frame, &t),
            }
        };
        self.record(changes);
    }

    /// Link probes on every port of every switch, expiry of links and hosts; forever.
    pub async fn run_periodic(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.lldp_interval);
        loop {
            tick.tick().await;
            let switches: Vec<(SwitchHandle, Vec<u32>)> = self
                .switches
                .lock()
                .expect("switches lock")
                .values()
                .map(|(h, v)| {
                    (
                        h.clone(),
                        v.ports
                            .iter()
                            .filter(|p| p.up && p.no < port::MAX && p.name != TUNNEL_PORT)
                            .map(|p| p.no)
                            .collect(),
                    )
                })
                .collect();
            for (h, ports) in switches {
                for p in ports {
                    let out = PacketOut {
                        buffer_id: NO_BUFFER,
                        in_port: port::CONTROLLER,
                        actions: vec![Action::Output {
                            port: p,
                            max_len: 0,
                        }],
                        data: frames::link_probe(h.dpid(), p),
                    };
                    let _ = h.send(Message::PacketOut(out)).await;
                }
            }
            let link_cutoff = rfc3339(SystemTime::now() - self.config.lldp_interval * 4);
            let host_cutoff = rfc3339(SystemTime::now() - self.config.vanish_after);
            let changes = {
                let mut inv = self.inv.lock().expect("inventory lock");
                let mut c = inv.expire_links(&link_cutoff);
                c.extend(inv.expire(&host_cutoff));
                c
            };
            self.record(changes);
            self.flush();
        }
    }

    /// Runs `f` on the inventory under its lock, without copying it.
    pub fn read<R>(&self, f: impl FnOnce(&Inventory) -> R) -> R {
        f(&self.inv.lock().expect("inventory lock"))
    }

    pub fn view(&self) -> InventoryView {
        let inv = self.inv.lock().expect("inventory lock");
        InventoryView {
            hosts: inv.hosts.values().cloned().collect(),
            segments: inv.segments.values().cloned().collect(),
            switches: self
                .switches
                .lock()
                .expect("switches lock")
                .values()
                .map(|(_, v)| v.clone())
                .collect(),
            links: inv.links.values().cloned().collect(),
        }
    }

    pub fn host(&self, id: &str) -> Option<Host> {
        self.inv
            .lock()
            .expect("inventory lock")
            .hosts
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    pub fn history(&self, limit: usize) -> Vec<HistoryEntry> {
        let mut out: Vec<HistoryEntry> = self
            .store
            .list::<serde_json::Value>(Kind::Inventory)
            .map(|v| {
                v.into_iter()
                    .filter(|(k, _)| k.starts_with("history/"))
                    .filter_map(|(_, e)| serde_json::from_value(e).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.extend(self.dirty.lock().expect("dirty lock").1.iter().cloned());
        let skip = out.len().saturating_sub(limit);
        out.split_off(skip)
    }

    pub fn job(&self, id: &str) -> Option<Job> {
        self.jobs.lock().expect("jobs lock").get(id).cloned()
    }

    fn put_job(&self, job: Job) {
        self.jobs
            .lock()
            .expect("jobs lock")
            .insert(job.id.clone(), job);
    }

    fn take_new_ips(&self) -> Vec<std::net::Ipv4Addr> {
        std::mem::take(&mut *self.new_ips.lock().expect("new ips lock"))
            .into_iter()
            .collect()
    }

    fn forget_new_ips(&self, ips: &[std::net::Ipv4Addr]) {
        let mut q = self.new_ips.lock().expect("new ips lock");
        for ip in ips {
            q.remove(ip);
        }
    }

    fn has_switches(&self) -> bool {
        self.switch_count() > 0
    }

    /// Switches connected now.
    fn switch_count(&self) -> usize {
        self.switches.lock().expect("switches lock").len()
    }

    pub(crate) fn inventory(&self) -> std::sync::MutexGuard<'_, Inventory> {
        self.inv.lock().expect("inventory lock")
    }

    pub(crate) fn record_changes(&self, changes: Vec<Change>) {
        self.record(changes)
    }
}
