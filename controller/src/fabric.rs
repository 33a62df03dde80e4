//! The fabric: every switch gemelo knows, and what it does when one (re)connects.
//!
//! Consumes `SwitchEvent`s. On connect it records the switch, then reconciles the
//! baseline pipeline: it reads back the switch's baseline flows by cookie mask,
//! compares them with what it wants (`FlowSet::diff`) and sends only the
//! difference, as one atomic bundle. A controller restart therefore changes
//! nothing that was already right, and a switch that lost its flows (ovs-vswitchd
//! restarted) gets all of them back.

use crate::discovery::Discovery;
use crate::flowset::FlowSet;
use crate::openflow::{self, Message, Port};
use crate::pipeline::{self, Cookie, CookieKind, ForwardingMode};
use crate::store::{Kind, Store};
use crate::switch::{SwitchError, SwitchEvent, SwitchHandle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Formats a datapath id the way paths and JSON carry it: 16 hex digits.
pub fn dpid_str(dpid: u64) -> String {
    format!("{dpid:016x}")
}

/// Parses a datapath id as users type it (1 to 16 hex digits, optional `0x`).
pub fn parse_dpid(s: &str) -> Result<u64, String> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.is_empty() || hex.len() > 16 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "bad datapath id {s:?}: expected up to 16 hex digits, e.g. 0000000000000001"
        ));
    }
    u64::from_str_radix(hex, 16).map_err(|e| format!("bad datapath id {s:?}: {e}"))
}

/// What the last reconcile of a switch did.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ReconcileReport {
    pub unchanged: usize,
    pub added: usize,
    pub deleted: usize,
    pub ms: f64,
}

/// One switch as gemelo sees it.
#[derive(Debug, Clone)]
pub struct SwitchState {
    pub dpid: u64,
    pub name: String,
    pub session: u64,
    pub handle: Option<SwitchHandle>,
    pub peer: String,
    pub ports: BTreeMap<u32, Port>,
    pub desc: Option<openflow::Desc>,
    pub connected_at: SystemTime,
    pub reconciled: Option<ReconcileReport>,
}

impl SwitchState {
    pub fn connected(&self) -> bool {
        self.handle.as_ref().is_some_and(SwitchHandle::is_connected)
    }
}

/// What the store keeps of a switch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchRecord {
    pub dpid: String,
    pub name: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// The switches, shared between the event loop and the API.
#[derive(Default)]
pub struct Fabric {
    switches: RwLock<BTreeMap<u64, SwitchState>>,
}

impl Fabric {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn snapshot(&self) -> Vec<SwitchState> {
        self.switches
            .read()
            .expect("fabric lock")
            .values()
            .cloned()
            .collect()
    }
    pub fn get(&self, dpid: u64) -> Option<SwitchState> {
        self.switches
            .read()
            .expect("fabric lock")
            .get(&dpid)
            .cloned()
    }
    /// A connected switch's handle, by dpid or bridge name.
    pub fn handle(&self, dpid: u64) -> Option<SwitchHandle> {
        self.get(dpid)
            .filter(SwitchState::connected)
            .and_then(|s| s.handle)
    }
    fn update(&self, dpid: u64, f: impl FnOnce(&mut SwitchState)) {
        if let Some(s) = self.switches.write().expect("fabric lock").get_mut(&dpid) {
            f(s)
        }
    }
}

/// RFC 3339 time, seconds precision, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Applies the difference between `want` and the flows the switch holds under
/// `cookie`/`mask`, atomically. Flows already right are not touched.
pub async fn reconcile(
    handle: &SwitchHandle,
    want: &FlowSet,
    cookie: Cookie,
    mask: u64,
) -> Result<ReconcileReport, SwitchError> {
    let start = Instant::now();
    let actual = handle.flows(cookie.0, mask).await?;
    let diff = want.diff(&actual);
    let mut report = ReconcileReport {
        unchanged: diff.unchanged,
        added: diff.add.len(),
        deleted: diff.delete.len(),
        ms: 0.0,
    };
    if !diff.is_empty() {
        let msgs: Vec<Message> = diff
            .into_flow_mods()
            .into_iter()
            .map(Message::FlowMod)
            .collect();
        handle.bundle(msgs).await?;
    }
    report.ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

/// The event loop of the controller.
pub struct Controller {
    pub fabric: Arc<Fabric>,
    pub store: Store,
    pub forwarding: ForwardingMode,
    pub discovery: Arc<Discovery>,
    pub redirections: Arc<crate::redirect::Redirections>,
    pub detection: Arc<crate::detection::Detection>,
}

impl Controller {
    /// Feeds a copied frame (a TCP SYN or an ARP request from a production
    /// host) to the detectors.
    fn detect(&self, frame: &crate::discovery::frames::Frame) {
        use crate::discovery::frames::Kind;
        use crate::trigger::detect::Observation;
        if !matches!(frame.kind, Kind::Syn { .. } | Kind::Arp { op: 1, .. })
            || self.discovery.is_own_mac(&frame.src)
        {
            return;
        }
        let time = SystemTime::now();
        let src_mac = || crate::discovery::inventory::mac_str(&frame.src);
        let obs = match frame.kind {
            Kind::Syn {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
            } => Observation::Syn {
                time,
                src_mac: src_mac(),
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            },
            Kind::Arp {
                op: 1,
                sender_ip,
                target_ip,
                ..
            } => Observation::ArpRequest {
                time,
                src_mac: src_mac(),
                src_ip: sender_ip,
                target_ip,
            },
            _ => return,
        };
        self.detection.observe(&obs);
    }

    pub async fn run(self, mut events: mpsc::Receiver<SwitchEvent>) {
        let this = Arc::new(self);
        while let Some(ev) = events.recv().await {
            match ev {
                SwitchEvent::Connected {
                    session,
                    handle,
                    peer,
                    features,
                    ports,
                    desc,
                } => {
                    let dpid = features.datapath_id;
                    let ports_list = ports.clone();
                    let name = ports
                        .iter()
                        .find(|p| p.port_no == openflow::port::LOCAL)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| dpid_str(dpid));
                    let now = SystemTime::now();
                    this.fabric.switches.write().expect("fabric lock").insert(
                        dpid,
                        SwitchState {
                            dpid,
                            name: name.clone(),
                            session,
                            handle: Some(handle.clone()),
                            peer,
                            ports: ports.iter().map(|p| (p.port_no, p.clone())).collect(),
                            desc,
                            connected_at: now,
                            reconciled: None,
                        },
                    );
                    this.remember(dpid, &name, now);
                    let this = this.clone();
                    tokio::spawn(async move { this.switch_ready(handle, name, ports_list).await });
                }
                SwitchEvent::Disconnected {
                    session,
                    dpid,
                    reason,
                } => {
                    let mut current = false;
                    this.fabric.update(dpid, |s| {
                        if s.session == session {
                            s.handle = None;
                            current = true;
                        }
                    });
                    if current {
                        this.discovery.switch_gone(dpid);
                    }
                    info!(dpid = %dpid_str(dpid), %reason, "switch gone");
                }
                SwitchEvent::PortStatus { dpid, status } => {
                    // A tunnel port that appears later: its guard (and any
                    // active redirection's flows) go in now.
                    if status.reason == openflow::port_reason::ADD
                        && status.port.name == gemelo_hypervisor::tunnel::TUNNEL_PORT
                    {
                        if let Some(handle) = this.fabric.handle(dpid) {
                            let this = this.clone();
                            let port_no = status.port.port_no;
                            tokio::spawn(async move {
                                this.redirections
                                    .switch_connected(&handle, Some(port_no))
                                    .await
                            });
                        }
                    }
                    this.discovery.port_changed(
                        dpid,
                        &status.port,
                        status.reason == openflow::port_reason::DELETE,
                    );
                    this.fabric.update(dpid, |s| {
                        if status.reason == openflow::port_reason::DELETE {
                            s.ports.remove(&status.port.port_no);
                        } else {
                            s.ports.insert(status.port.port_no, status.port.clone());
                        }
                    });
                }
                SwitchEvent::PacketIn { dpid, packet_in }
                    if dpid != crate::twin::plan::TWIN_DPID =>
                {
                    // Parsed once, for discovery and the detectors.
                    if let (Some(in_port), Some(frame)) = (
                        packet_in.in_port(),
                        crate::discovery::frames::parse(&packet_in.data),
                    ) {
                        this.discovery.frame_in(dpid, in_port, &frame);
                        this.detect(&frame);
                    }
                }
                SwitchEvent::PacketIn { .. } => {}
                SwitchEvent::FlowRemoved { .. } => {}
                SwitchEvent::Error { dpid, xid, error } => {
                    warn!(dpid = %dpid_str(dpid), xid, error = %error.kind, "switch reported an error");
                }
            }
        }
    }

    fn remember(&self, dpid: u64, name: &str, now: SystemTime) {
        let key = dpid_str(dpid);
        let first_seen = match self.store.get::<SwitchRecord>(Kind::Switches, &key) {
            Ok(Some(r)) => r.first_seen,
            _ => rfc3339(now),
        };
        let rec = SwitchRecord {
            dpid: key.clone(),
            name: name.to_string(),
            first_seen,
            last_seen: rfc3339(now),
        };
        if let Err(e) = self.store.put(Kind::Switches, &key, &rec) {
            warn!(dpid = %key, error = %e, "could not record switch");
        }
    }

    /// Baseline pipeline, then discovery's classifier flows, each reconciled by its cookie.
    async fn switch_ready(&self, handle: SwitchHandle, name: String, ports: Vec<Port>) {
        let dpid = handle.dpid();
        let tunnel_port = ports
            .iter()
            .find(|p| p.name == gemelo_hypervisor::tunnel::TUNNEL_PORT)
            .map(|p| p.port_no);
        if dpid == crate::twin::plan::TWIN_DPID {
            // The twin's own switch: twin flows only; discovery never looks at the twin.
            match reconcile(
                &handle,
                &crate::twin::flows::baseline(),
                Cookie::of_kind(CookieKind::Twin),
                Cookie::KIND_MASK,
            )
            .await
            {
                Ok(report) => {
                    info!(dpid = %dpid_str(dpid), added = report.added, unchanged = report.unchanged, "twin switch reconciled");
                    self.fabric.update(dpid, |s| s.reconciled = Some(report));
                }
                Err(e) => warn!(dpid = %dpid_str(dpid), error = %e, "twin switch reconcile failed"),
            }
            self.redirections
                .switch_connected(&handle, tunnel_port)
                .await;
            return;
        }
        let want = pipeline::baseline(self.forwarding);
        let baseline = reconcile(
            &handle,
            &want,
            Cookie::of_kind(CookieKind::Baseline),
            Cookie::KIND_MASK,
        )
        .await;
        let discovery = match &baseline {
            Ok(_) => Some(
                self.discovery
                    .switch_connected(handle.clone(), name, &ports)
                    .await,
            ),
            Err(_) => None,
        };
        match (baseline, discovery) {
            (Ok(b), Some(Ok(d))) => {
                let report = ReconcileReport {
                    unchanged: b.unchanged + d.unchanged,
                    added: b.added + d.added,
                    deleted: b.deleted + d.deleted,
                    ms: b.ms + d.ms,
                };
                info!(dpid = %dpid_str(dpid), unchanged = report.unchanged, added = report.added,
                      deleted = report.deleted, ms = report.ms, "flows reconciled");
                self.fabric.update(dpid, |s| s.reconciled = Some(report));
            }
            (Err(e), _) | (_, Some(Err(e))) => {
                warn!(dpid = %dpid_str(dpid), error = %e, "reconcile failed")
            }
            (Ok(_), None) => {}
        }
        self.redirections
            .switch_connected(&handle, tunnel_port)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpids_parse_and_print() {
        assert_eq!(parse_dpid("0000000000000001"), Ok(1));
        assert_eq!(parse_dpid("0x1f"), Ok(31));
        assert_eq!(dpid_str(31), "000000000000001f");
        assert!(parse_dpid("xyz").unwrap_err().contains("16 hex digits"));
        assert!(parse_dpid("00000000000000001").is_err());
        assert!(parse_dpid("").is_err());
    }
}
