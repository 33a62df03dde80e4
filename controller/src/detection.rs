//! Detection: the built-in detectors (`trigger::detect`) at work in the
//! controller.
//!
//! Three feeds reach them: the fabric's packet-in copies (TCP SYNs, ARP
//! requests), the twin's decoy events (login attempts), and the twin's plan,
//! whose honeytokens (decoy-only addresses, planted credentials) replace the
//! detectors' set at every build or update and are cleared when the twin is
//! destroyed. Each alert is stored as an event (`kind: "alert"`); an alert
//! whose detector is set to redirect swaps its source into the twin
//! (trigger `detector:NAME`). A source already in the twin stays where it
//! is: that is no failure.
//!
//! What the twin reports never redirects anyone. Only redirected sources
//! reach a twin host, so a login's source is already in the twin; one that is
//! not is the operator's observer namespace or an event forged by whoever
//! controls a twin host, and obeying it would let the twin move production
//! hosts (the gateway, a server) into itself.

use crate::events::Events;
use crate::fabric::rfc3339;
use crate::redirect::{RedirectError, RedirectRequest, Redirections};
use crate::trigger::detect::{self, Action, Alert, Detectors, Honeytokens, Observation};
use gemelo_hypervisor::TwinPlan;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tracing::{debug, info, warn};

pub struct Detection {
    detectors: Mutex<Detectors>,
    events: Arc<Events>,
    redirections: Arc<Redirections>,
}

impl Detection {
    pub fn new(
        detectors: Detectors,
        events: Arc<Events>,
        redirections: Arc<Redirections>,
    ) -> Arc<Self> {
        Arc::new(Detection {
            detectors: Mutex::new(detectors),
            events,
            redirections,
        })
    }

    /// The honeytokens the detectors look for now.
    pub fn honeytokens(&self) -> Honeytokens {
        self.detectors
            .lock()
            .expect("detectors lock")
            .honeytokens()
            .clone()
    }

    /// The twin's plan changed: its honeytokens replace the old ones (none
    /// when the twin is gone).
    pub fn twin_planned(&self, plan: Option<&TwinPlan>) {
        let tokens = plan.map(Honeytokens::from_plan).unwrap_or_default();
        info!(
            addresses = ?tokens.addresses,
            credentials = tokens.credentials.len(),
            "honeytokens from the twin plan"
        );
        self.detectors
            .lock()
            .expect("detectors lock")
            .set_honeytokens(tokens);
    }

    /// Judges one decoy event (only login attempts are observations).
    pub fn decoy_event(self: &Arc<Self>, event: &Value) {
        match detect::decoy::observation(event, SystemTime::now()) {
            Ok(Some(obs)) => self.observe(&obs),
            Ok(None) => {}
            Err(e) => debug!(twin_host = %event["twin_host"], error = %e, "decoy event not judged"),
        }
    }

    /// Judges one observation; alerts become events, and redirections when
    /// their detector says so.
    pub fn observe(self: &Arc<Self>, obs: &Observation) {
        let from_twin = matches!(obs, Observation::Login { .. });
        let alerts = self.detectors.lock().expect("detectors lock").observe(obs);
        for alert in alerts {
            self.raise(alert, from_twin);
        }
    }

    fn raise(self: &Arc<Self>, alert: Alert, from_twin: bool) {
        let mut ev = serde_json::to_value(&alert).unwrap_or_else(|_| json!({}));
        ev["kind"] = json!("alert");
        ev["time"] = json!(rfc3339(alert.time));
        if let Err(e) = self.events.record(ev) {
            warn!(error = %e, "could not record alert");
        }
        info!(detector = alert.detector.name(), source = %alert.source_ip, reason = %alert.reason, "alert");
        if alert.action != Action::Redirect {
            return;
        }
        let trigger = format!("detector:{}", alert.detector.name());
        if from_twin {
            match self.redirection_of(alert.source_ip) {
                Some(id) => {
                    info!(source = %alert.source_ip, redirection = %id, %trigger, "already in the twin")
                }
                None => warn!(source = %alert.source_ip, %trigger,
                    "a twin host reports this source, which no redirection sent there (the observer namespace, or a forged event): not redirected"),
            }
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let req = RedirectRequest {
                source: alert.source_ip.to_string(),
                reason: Some(alert.reason.clone()),
                ttl_s: None,
            };
            match this.redirections.create(req, &trigger).await {
                Ok(r) => {
                    info!(redirection = %r.id, source = %r.source, %trigger, "detector redirected")
                }
                // A second detector, an operator, or a login inside the twin.
                Err(RedirectError::AlreadyRedirected { id, .. }) => {
                    info!(source = %alert.source_ip, redirection = %id, %trigger, "already in the twin")
                }
                Err(e) => {
                    warn!(source = %alert.source_ip, error = %e, %trigger, "detector could not redirect")
                }
            }
        });
    }

    /// The active redirection that holds `ip`, if any.
    fn redirection_of(&self, ip: Ipv4Addr) -> Option<String> {
        let source = ip.to_string();
        self.redirections
            .active()
            .into_iter()
            .find(|r| r.source == source || r.members.iter().any(|m| m.ips.contains(&ip)))
            .map(|r| r.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{Discovery, DiscoveryConfig};
    use crate::fabric::Fabric;
    use crate::store::Store;
    use crate::trigger::detect::DetectorsConfig;
    use std::path::PathBuf;

    fn store(name: &str) -> (Store, PathBuf) {
        let d =
            std::env::temp_dir().join(format!("gm-detection-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        (Store::open(&d).unwrap(), d)
    }

    fn detection(store: &Store) -> (Arc<Detection>, Arc<Events>) {
        let events = Events::new(store.clone());
        let discovery = Discovery::new(DiscoveryConfig::default(), store.clone());
        let redirections =
            Redirections::new(store.clone(), Fabric::new(), discovery, events.clone()).unwrap();
        let detectors = Detectors::new(DetectorsConfig::default(), Honeytokens::default()).unwrap();
        (
            Detection::new(detectors, events.clone(), redirections),
            events,
        )
    }

    fn plan_with_decoy() -> TwinPlan {
        serde_json::from_value(json!({
            "switch": {"namespace": "gm-twin", "rundir": "/run/gemelo/twin/ovs", "bridge": "gm-twin0", "dpid": 1},
            "observer_namespace": "gm-twin-observer",
            "segments": [{"cidr": "10.10.2.0/24", "vlan": 20, "gateway": "10.10.2.1"}],
            "hosts": [{
                "name": "backup-srv", "mirrors": [], "hostname": "backup-srv",
                "interfaces": [{"mac": "02:67:6d:0a:02:63", "ips": ["10.10.2.99/24"], "segment": "10.10.2.0/24", "vlan": 20}],
                "gateway": "10.10.2.1", "ip_forward": false, "backend": "netns", "services": [], "honeytoken": true
            }]
        }))
        .unwrap()
    }

    fn arp_for_decoy(time: SystemTime) -> Observation {
        Observation::ArpRequest {
            time,
            src_mac: "02:66:0a:0a:02:4d".into(),
            src_ip: Ipv4Addr::new(10, 10, 2, 77),
            target_ip: Ipv4Addr::new(10, 10, 2, 99),
        }
    }

    #[tokio::test]
    async fn the_twin_plan_arms_and_its_destroy_disarms_the_honeytokens() {
        let (s, dir) = store("plan");
        let (detection, events) = detection(&s);
        let t = SystemTime::now();
        detection.observe(&arp_for_decoy(t));
        assert!(events.list(None, Some("alert"), 10).is_empty());

        detection.twin_planned(Some(&plan_with_decoy()));
        assert_eq!(
            detection.honeytokens().addresses,
            vec![Ipv4Addr::new(10, 10, 2, 99)]
        );
        detection.observe(&arp_for_decoy(t));
        let alerts = events.list(None, Some("alert"), 10);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["detector"], "honeytoken");
        assert_eq!(alerts[0]["source_ip"], "10.10.2.77");
        assert_eq!(alerts[0]["evidence"]["via"], "arp");

        detection.twin_planned(None);
        assert!(detection.honeytokens().is_empty());
        let later = t + std::time::Duration::from_secs(3600);
        detection.observe(&arp_for_decoy(later));
        assert_eq!(events.list(None, Some("alert"), 10).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn failed_logins_in_the_twin_are_a_brute_force() {
        let (s, dir) = store("logins");
        let (detection, events) = detection(&s);
        let attempt = |password: &str| {
            json!({
                "kind": "decoy", "twin_host": "web01", "peer": "10.10.2.77", "protocol": "ssh",
                "action": "login",
                "data": {"user": "root", "password": password, "success": false, "service": "sshd"}
            })
        };
        for n in 0..9 {
            detection.decoy_event(&attempt(&format!("guess{n}")));
        }
        assert!(events.list(None, Some("alert"), 10).is_empty());
        detection.decoy_event(&json!({"kind": "decoy", "action": "login", "peer": "somewhere"}));
        detection.decoy_event(&attempt("guess9"));
        let alerts = events.list(None, Some("alert"), 10);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["detector"], "bruteforce");
        assert_eq!(alerts[0]["source_ip"], "10.10.2.77");
        assert_eq!(alerts[0]["evidence"]["kind"], "failed_logins");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_twin_login_finds_its_source_among_the_redirections() {
        let (s, dir) = store("lookup");
        let redirection = json!({
            "id": "r1", "number": 1, "source": "10.10.2.0/24", "reason": "", "trigger": "api",
            "key": 4097, "state": "active", "created": "2026-11-25T10:00:00Z", "ttl_s": null,
            "expires": null,
            "members": [{"mac": "02:66:0a:0a:02:4d", "ips": ["10.10.2.77"], "switch": "0000000000000002", "port": 6}],
            "switches": ["0000000000000002"], "flows": 9, "install_ms": 1.0, "released": null,
            "release_ms": null, "release_reason": null, "tunnel": [1, 9], "twin_tunnel_port": 2,
            "links": []
        });
        s.put(crate::store::Kind::Redirections, "r1", &redirection)
            .unwrap();
        let (active, _) = detection(&s);
        assert_eq!(
            active.redirection_of(Ipv4Addr::new(10, 10, 2, 77)),
            Some("r1".into())
        );
        assert_eq!(active.redirection_of(Ipv4Addr::new(10, 10, 2, 78)), None);
        let mut released = redirection.clone();
        released["state"] = json!("released");
        s.put(crate::store::Kind::Redirections, "r1", &released)
            .unwrap();
        let (after_release, _) = detection(&s);
        assert_eq!(
            after_release.redirection_of(Ipv4Addr::new(10, 10, 2, 77)),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
