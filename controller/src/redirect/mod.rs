//! Redirection: swapping hostile sources into the twin.
//!
//! `plan` turns a redirection into flows (pure). `Redirections` is the applier:
//! it resolves a source (IP, MAC or CIDR) to the hosts discovery knows, installs
//! the twin's return path, then each production switch's flows as one atomic
//! ONF bundle (confirmed by a barrier) — the switch holding the member last, so
//! the swap happens in one step — and stores the redirection. Release removes
//! them in the reverse order. A switch that (re)connects gets the flows of
//! every active redirection by reconciliation, so a controller restart neither
//! reinstalls nor interrupts anything. Redirections and releases are events.

pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::discovery::inventory::parse_mac;
use crate::discovery::Discovery;
use crate::events::Events;
use crate::fabric::{dpid_str, reconcile, rfc3339, Fabric};
use crate::flowset::FlowSet;
use crate::openflow::{FlowMod, Match, Message, TABLE_ALL};
use crate::pipeline::{Cookie, CookieKind};
use crate::store::{Kind, Store};
use crate::switch::{SwitchError, SwitchHandle};
use crate::trigger::source::Source;
use crate::twin::plan::TWIN_DPID;
use gemelo_hypervisor::tunnel::TUNNEL_PORT;

use plan::{LinkPorts, Member, Spec, Tunnel};

/// The widest CIDR a redirection accepts: a typo must not swallow a data center.
pub const MIN_PREFIX: u8 = 16;

/// A redirected host, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    pub mac: String,
    pub ips: Vec<Ipv4Addr>,
    pub switch: String,
    pub port: u32,
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Other hosts were discovered behind the same switch port.
    #[serde(default)]
    pub shared_port: bool,
}

/// One redirection, as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redirection {
    pub id: String,
    pub number: u64,
    pub source: String,
    pub reason: String,
    /// Who asked: `api`, `webhook:NAME`, `detector:NAME`.
    pub trigger: String,
    pub key: u64,
    /// `active` or `released`.
    pub state: String,
    pub created: String,
    pub ttl_s: Option<u64>,
    pub expires: Option<String>,
    pub members: Vec<MemberView>,
    /// Production switches holding its flows (the twin switch not counted).
    pub switches: Vec<String>,
    /// Flows on production switches plus the twin switch.
    pub flows: usize,
    pub install_ms: f64,
    pub released: Option<String>,
    pub release_ms: Option<f64>,
    pub release_reason: Option<String>,
    /// Where the tunnel ended and which links the paths used, when installed:
    /// reconciliation after a restart replays exactly these flows.
    pub tunnel: (u64, u32),
    pub twin_tunnel_port: u32,
    pub links: Vec<LinkPorts>,
}

impl Redirection {
    fn spec(&self) -> Result<Spec, RedirectError> {
        let members = self
            .members
            .iter()
            .map(|m| {
                Ok(Member {
                    mac: parse_mac(&m.mac)
                        .ok_or_else(|| RedirectError::Stored(format!("bad MAC {}", m.mac)))?,
                    ips: m.ips.clone(),
                    dpid: crate::fabric::parse_dpid(&m.switch).map_err(RedirectError::Stored)?,
                    port: m.port,
                    vlan: m.vlan,
                    shared_port: m.shared_port,
                })
            })
            .collect::<Result<Vec<_>, RedirectError>>()?;
        Ok(Spec {
            number: self.number,
            members,
        })
    }

    fn tunnel(&self) -> Tunnel {
        Tunnel {
            dpid: self.tunnel.0,
            port: self.tunnel.1,
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

/// What went wrong; each maps to one HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedirectError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{what} is already redirected by {id}")]
    AlreadyRedirected { what: String, id: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("a switch refused the change: {0}")]
    Switch(#[from] SwitchError),
    #[error("stored redirection is corrupt: {0}")]
    Stored(String),
    #[error("store: {0}")]
    Store(String),
}

impl RedirectError {
    pub fn status(&self) -> u16 {
        match self {
            RedirectError::BadRequest(_) => 400,
            RedirectError::NotFound(_) => 404,
            RedirectError::AlreadyRedirected { .. } | RedirectError::Conflict(_) => 409,
            RedirectError::Unavailable(_) => 503,
            RedirectError::Switch(_) => 502,
            RedirectError::Stored(_) | RedirectError::Store(_) => 500,
        }
    }
}

/// A request to redirect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectRequest {
    pub source: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

pub struct Redirections {
    store: Store,
    fabric: Arc<Fabric>,
    discovery: Arc<Discovery>,
    events: Arc<Events>,
    /// One change at a time: numbers, conflicts and bundles stay consistent.
    lock: tokio::sync::Mutex<()>,
    /// Every stored redirection by number, written through to the store, so a
    /// swap reads no disk before its bundles go out.
    known: std::sync::Mutex<BTreeMap<u64, Redirection>>,
}

fn now_str() -> String {
    rfc3339(SystemTime::now())
}

fn delete_by_cookie(c: Cookie) -> Message {
    Message::FlowMod(FlowMod::delete(TABLE_ALL, Match::new()).with_cookie(c.0, Cookie::EXACT_MASK))
}

fn adds(set: &FlowSet) -> Vec<Message> {
    set.iter().map(|f| Message::FlowMod(f.add())).collect()
}

impl Redirections {
    pub fn new(
        store: Store,
        fabric: Arc<Fabric>,
        discovery: Arc<Discovery>,
        events: Arc<Events>,
    ) -> Result<Arc<Self>, crate::store::StoreError> {
        let known = store
            .list::<Redirection>(Kind::Redirections)?
            .into_iter()
            .map(|(_, r)| (r.number, r))
            .collect();
        Ok(Arc::new(Redirections {
            store,
            fabric,
            discovery,
            events,
            lock: tokio::sync::Mutex::new(()),
            known: std::sync::Mutex::new(known),
        }))
    }

    /// Every redirection, active and released, oldest first.
    pub fn list(&self) -> Vec<Redirection> {
        self.known
            .lock()
            .expect("redirections lock")
            .values()
            .cloned()
            .collect()
    }

    /// Redirection `id` ("r" and its number).
    pub fn get(&self, id: &str) -> Option<Redirection> {
        let number: u64 = id.strip_prefix('r')?.parse().ok()?;
        let known = self.known.lock().expect("redirections lock");
        known.get(&number).filter(|r| r.id == id).cloned()
    }

    /// The active redirections (released ones are history: not copied).
    pub fn active(&self) -> Vec<Redirection> {
        self.known
            .lock()
            .expect("redirections lock")
            .values()
            .filter(|r| r.is_active())
            .cloned()
            .collect()
    }

    /// The number the next redirection gets.
    fn next_number(&self) -> u64 {
        let known = self.known.lock().expect("redirections lock");
        known.keys().next_back().map_or(1, |n| n + 1)
    }

    fn save(&self, r: &Redirection) -> Result<(), RedirectError> {
        self.store
            .put(Kind::Redirections, &r.id, r)
            .map_err(|e| RedirectError::Store(e.to_string()))?;
        self.known
            .lock()
            .expect("redirections lock")
            .insert(r.number, r.clone());
        Ok(())
    }

    /// The production switch and port holding the tunnel.
    fn production_tunnel(&self) -> Option<(Tunnel, SwitchHandle)> {
        self.fabric
            .snapshot()
            .into_iter()
            .filter(|s| s.dpid != TWIN_DPID)
            .find_map(|s| {
                let port = s.ports.values().find(|p| p.name == TUNNEL_PORT)?.port_no;
                Some((Tunnel { dpid: s.dpid, port }, s.handle.clone()?))
            })
    }

    fn twin_tunnel(&self) -> Option<(u32, SwitchHandle)> {
        let s = self.fabric.get(TWIN_DPID)?;
        let port = s.ports.values().find(|p| p.name == TUNNEL_PORT)?.port_no;
        Some((port, s.handle.clone()?))
    }

    /// The hosts `source` names, where production sees them.
    fn resolve(&self, source: &Source) -> Result<Vec<MemberView>, RedirectError> {
        self.discovery.read(|inv| Self::resolve_in(inv, source))
    }

    fn resolve_in(
        inv: &crate::discovery::inventory::Inventory,
        source: &Source,
    ) -> Result<Vec<MemberView>, RedirectError> {
        let located = |h: &crate::discovery::inventory::Host| -> Option<MemberView> {
            let ips: Vec<Ipv4Addr> = h.ips.iter().filter_map(|i| i.parse().ok()).collect();
            let segment_vlan = inv
                .segments
                .values()
                .find(|s| {
                    crate::discovery::parse_cidr(&s.cidr)
                        .is_ok_and(|n| ips.iter().any(|i| n.contains(*i)))
                })
                .and_then(|s| s.vlan);
            let (switch, port) = (h.switch.clone()?, h.port?);
            let shared_port = inv.hosts.values().any(|o| {
                o.mac != h.mac
                    && o.switch.as_deref() == Some(switch.as_str())
                    && o.port == Some(port)
            }) || inv.links.values().any(|l| {
                [&l.a, &l.b]
                    .iter()
                    .any(|e| e.dpid == switch && e.port == port)
            });
            Some(MemberView {
                mac: h.mac.clone(),
                switch,
                port,
                vlan: h.vlan.or(segment_vlan),
                ips,
                shared_port,
            })
        };
        let hosts: Vec<&crate::discovery::inventory::Host> = match source {
            Source::Ip(ip) => inv
                .hosts
                .values()
                .filter(|h| h.ips.iter().any(|i| i == &ip.to_string()))
                .collect(),
            Source::Mac(mac) => inv.hosts.values().filter(|h| &h.mac == mac).collect(),
            Source::Cidr(net) => {
                if net.prefix() < MIN_PREFIX {
                    return Err(RedirectError::BadRequest(format!(
                        "{net} is wider than /{MIN_PREFIX}: redirect a narrower range"
                    )));
                }
                inv.hosts
                    .values()
                    .filter(|h| {
                        h.ips
                            .iter()
                            .any(|i| i.parse::<Ipv4Addr>().is_ok_and(|a| net.contains(a)))
                    })
                    .collect()
            }
        };
        if hosts.is_empty() {
            return Err(RedirectError::NotFound(format!(
                "{source} is not in the inventory: no discovered host has it (GET /api/v1/inventory)"
            )));
        }
        let members: Vec<MemberView> = hosts.iter().filter_map(|h| located(h)).collect();
        if members.len() < hosts.len() {
            return Err(RedirectError::Unavailable(format!(
                "{source}: discovery has not located every host on a switch port yet; try again shortly"
            )));
        }
        Ok(members)
    }

    /// Redirects `req.source` into the twin; returns once every switch confirmed.
    pub async fn create(
        &self,
        req: RedirectRequest,
        trigger: &str,
    ) -> Result<Redirection, RedirectError> {
        let source: Source =
            req.source
                .parse()
                .map_err(|e: crate::trigger::source::SourceError| {
                    RedirectError::BadRequest(e.to_string())
                })?;
        if req.ttl_s == Some(0) {
            return Err(RedirectError::BadRequest(
                "ttl_s must be at least 1 (or left out)".into(),
            ));
        }
        let start = Instant::now();
        let _guard = self.lock.lock().await;
        let canonical = source.to_string();
        let active = self.active();
        if let Some(r) = active.iter().find(|r| r.source == canonical) {
            return Err(RedirectError::AlreadyRedirected {
                what: canonical,
                id: r.id.clone(),
            });
        }
        let members = self.resolve(&source)?;
        for m in &members {
            if let Some(r) = active
                .iter()
                .find(|r| r.members.iter().any(|x| x.mac == m.mac))
            {
                return Err(RedirectError::AlreadyRedirected {
                    what: format!("{canonical} (host {})", m.mac),
                    id: r.id.clone(),
                });
            }
        }
        let (tunnel, _) = self.production_tunnel().ok_or_else(|| {
            RedirectError::Unavailable(format!(
                "no connected production switch has a tunnel port named {TUNNEL_PORT} (ovs-scripts/add-gre-port.sh)"
            ))
        })?;
        let (twin_port, twin_handle) = self.twin_tunnel().ok_or_else(|| {
            RedirectError::Conflict(format!(
                "no twin to redirect into: build it first (POST /api/v1/twin); its switch must be connected with port {TUNNEL_PORT}"
            ))
        })?;
        let number = self.next_number();
        let links: Vec<LinkPorts> = self.discovery.read(|inv| {
            inv.links
                .values()
                .filter_map(|l| {
                    Some((
                        (crate::fabric::parse_dpid(&l.a.dpid).ok()?, l.a.port),
                        (crate::fabric::parse_dpid(&l.b.dpid).ok()?, l.b.port),
                    ))
                })
                .collect()
        });
        let created = SystemTime::now();
        let mut r = Redirection {
            id: format!("r{number}"),
            number,
            source: canonical,
            reason: req.reason.unwrap_or_default(),
            trigger: trigger.to_string(),
            key: plan::key(number),
            state: "active".into(),
            created: rfc3339(created),
            ttl_s: req.ttl_s,
            expires: req.ttl_s.map(|t| rfc3339(created + Duration::from_secs(t))),
            members,
            switches: Vec::new(),
            flows: 0,
            install_ms: 0.0,
            released: None,
            release_ms: None,
            release_reason: None,
            tunnel: (tunnel.dpid, tunnel.port),
            twin_tunnel_port: twin_port,
            links,
        };
        let spec = r.spec()?;
        let sets = plan::production(&spec, tunnel, &r.links)
            .map_err(|e| RedirectError::Unavailable(e.to_string()))?;
        let twin_set = plan::twin(&spec, twin_port);
        // Members' switches last: the swap is the moment their bundle commits.
        let member_switches: BTreeSet<u64> = spec.members.iter().map(|m| m.dpid).collect();
        let mut order: Vec<u64> = sets
            .keys()
            .copied()
            .filter(|d| !member_switches.contains(d))
            .collect();
        order.extend(member_switches.iter().copied());
        let mut handles = Vec::new();
        for d in &order {
            let h = self.fabric.handle(*d).ok_or_else(|| {
                RedirectError::Unavailable(format!(
                    "switch {} on the path is not connected",
                    dpid_str(*d)
                ))
            })?;
            handles.push((*d, h));
        }

        let planned = start.elapsed();
        // Two waves, each switch of a wave at once: first the twin's return path
        // and the transit switches, then (the swap itself) the members' switches.
        let (members_wave, transit): (Vec<_>, Vec<_>) = handles
            .iter()
            .partition(|(d, _)| member_switches.contains(d));
        let timed = |label: String, h: SwitchHandle, msgs: Vec<Message>| async move {
            let t = Instant::now();
            let r = h.bundle(msgs).await;
            (label, t.elapsed().as_secs_f64() * 1e3, r)
        };
        let mut steps: Vec<String> = vec![format!("plan {:.2}", planned.as_secs_f64() * 1e3)];
        let mut attempted: Vec<SwitchHandle> = Vec::new();
        let mut failure: Option<SwitchError> = None;
        let first = std::iter::once(timed("twin".into(), twin_handle.clone(), adds(&twin_set)))
            .chain(
                transit
                    .iter()
                    .map(|(d, h)| timed(dpid_str(*d), h.clone(), adds(&sets[d]))),
            );
        attempted.push(twin_handle.clone());
        attempted.extend(transit.iter().map(|(_, h)| h.clone()));
        for (label, ms, res) in futures_util::future::join_all(first).await {
            steps.push(format!("{label} {ms:.2}"));
            if let Err(e) = res {
                failure.get_or_insert(e);
            }
        }
        if failure.is_none() {
            let second = members_wave
                .iter()
                .map(|(d, h)| timed(dpid_str(*d), h.clone(), adds(&sets[d])));
            attempted.extend(members_wave.iter().map(|(_, h)| h.clone()));
            for (label, ms, res) in futures_util::future::join_all(second).await {
                steps.push(format!("{label} {ms:.2}"));
                if let Err(e) = res {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            // All or nothing: take back whatever may have been installed (a switch
            // that timed out may still have committed).
            let undo = attempted
                .iter()
                .map(|h| h.bundle(vec![delete_by_cookie(plan::cookie(number))]));
            futures_util::future::join_all(undo).await;
            warn!(redirection = %r.id, error = %e, "redirection failed; rolled back");
            return Err(e.into());
        }
        r.install_ms = start.elapsed().as_secs_f64() * 1e3;
        r.switches = order.iter().map(|d| dpid_str(*d)).collect();
        r.flows = sets.values().map(FlowSet::len).sum::<usize>() + twin_set.len();
        self.save(&r)?;
        info!(redirection = %r.id, source = %r.source, key = r.key, flows = r.flows, ms = r.install_ms, steps = %steps.join(", "), "redirected into the twin");
        self.event(
            "redirect",
            &r,
            json!({"reason": r.reason, "install_ms": r.install_ms}),
        );
        Ok(r)
    }

    /// Restores production forwarding for redirection `id`.
    pub async fn release(&self, id: &str, why: &str) -> Result<Redirection, RedirectError> {
        let start = Instant::now();
        let _guard = self.lock.lock().await;
        let mut r = self.get(id).ok_or_else(|| {
            RedirectError::NotFound(format!("no redirection {id} (GET /api/v1/redirections)"))
        })?;
        if !r.is_active() {
            return Err(RedirectError::Conflict(format!(
                "{id} was already released at {}",
                r.released.clone().unwrap_or_default()
            )));
        }
        let c = plan::cookie(r.number);
        let mut order: Vec<u64> = Vec::new();
        for s in r.members.iter().map(|m| &m.switch).chain(&r.switches) {
            if let Ok(d) = crate::fabric::parse_dpid(s) {
                if !order.contains(&d) {
                    order.push(d);
                }
            }
        }
        // The members' switches first (the release happens where they are), then
        // the transit switches and the twin, each wave at once.
        let members: BTreeSet<u64> = r
            .members
            .iter()
            .filter_map(|m| crate::fabric::parse_dpid(&m.switch).ok())
            .collect();
        let connected = |d: &u64| match self.fabric.handle(*d) {
            Some(h) => Some(h),
            None => {
                // Reconciliation removes them when it reconnects.
                warn!(redirection = %r.id, dpid = %dpid_str(*d), "switch not connected; its flows go when it reconnects");
                None
            }
        };
        let delete = |h: SwitchHandle| async move { h.bundle(vec![delete_by_cookie(c)]).await };
        let first: Vec<_> = order
            .iter()
            .filter(|d| members.contains(d))
            .filter_map(connected)
            .map(delete)
            .collect();
        for res in futures_util::future::join_all(first).await {
            res?;
        }
        let second: Vec<_> = order
            .iter()
            .filter(|d| !members.contains(d))
            .filter_map(connected)
            .chain(self.fabric.handle(TWIN_DPID))
            .map(delete)
            .collect();
        for res in futures_util::future::join_all(second).await {
            res?;
        }
        r.state = "released".into();
        r.released = Some(now_str());
        r.release_ms = Some(start.elapsed().as_secs_f64() * 1e3);
        r.release_reason = Some(why.to_string());
        self.save(&r)?;
        info!(redirection = %r.id, source = %r.source, ms = r.release_ms, "released");
        self.event(
            "release",
            &r,
            json!({"why": why, "release_ms": r.release_ms}),
        );
        Ok(r)
    }

    fn event(&self, action: &str, r: &Redirection, extra: serde_json::Value) {
        let mut ev = json!({
            "kind": "redirection",
            "action": action,
            "id": r.id,
            "source": r.source,
            "key": r.key,
            "trigger": r.trigger,
            "members": r.members,
            "switches": r.switches,
        });
        if let (Some(o), Some(e)) = (ev.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        if let Err(e) = self.events.record(ev) {
            warn!(error = %e, "could not record redirection event");
        }
    }

    /// What a (re)connected switch must hold under the redirection cookie kind.
    pub fn desired(&self, dpid: u64, tunnel_port: Option<u32>) -> FlowSet {
        let mut want = FlowSet::new();
        if dpid == TWIN_DPID {
            if let Some(p) = tunnel_port {
                want.extend(plan::twin_guard(p));
            }
        } else if let Some(p) = tunnel_port {
            want.extend(plan::production_guard(p));
        }
        for r in self.active() {
            let Ok(spec) = r.spec() else { continue };
            if dpid == TWIN_DPID {
                want.extend(plan::twin(&spec, r.twin_tunnel_port));
            } else if let Ok(sets) = plan::production(&spec, r.tunnel(), &r.links) {
                if let Some(s) = sets.get(&dpid) {
                    want.extend(s.clone());
                }
            }
        }
        want
    }

    /// Brings a (re)connected switch's redirection flows in line: flows already
    /// right stay untouched, so traffic of active redirections never stops.
    pub async fn switch_connected(&self, handle: &SwitchHandle, tunnel_port: Option<u32>) {
        let _guard = self.lock.lock().await;
        let want = self.desired(handle.dpid(), tunnel_port);
        match reconcile(
            handle,
            &want,
            Cookie::of_kind(CookieKind::Redirection),
            Cookie::KIND_MASK,
        )
        .await
        {
            Ok(rep) => {
                info!(dpid = %dpid_str(handle.dpid()), added = rep.added, deleted = rep.deleted,
                             unchanged = rep.unchanged, "redirection flows reconciled")
            }
            Err(e) => {
                warn!(dpid = %dpid_str(handle.dpid()), error = %e, "redirection reconcile failed")
            }
        }
    }

    /// Releases redirections whose TTL passed; forever.
    pub async fn run_expiry(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let now = SystemTime::now();
            for r in self.active() {
                let due = r
                    .expires
                    .as_deref()
                    .and_then(|e| humantime::parse_rfc3339_weak(e).ok())
                    .is_some_and(|e| e <= now);
                if due {
                    if let Err(e) = self.release(&r.id, "ttl expired").await {
                        warn!(redirection = %r.id, error = %e, "TTL release failed");
                    }
                }
            }
        }
    }
}
