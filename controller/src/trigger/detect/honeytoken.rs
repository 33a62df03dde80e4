//! Honeytoken detector: nothing legitimate touches a decoy-only address, a
//! decoy-only port on a real address, or a planted credential, so the first
//! touch fires.
//!
//! The caller owns the honeytoken set (it comes from the twin plan and the
//! seeded personas) and replaces it when that changes.

use super::{Action, Finding, Observation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoneytokenConfig {
    pub enabled: bool,
    pub action: Action,
}

impl Default for HoneytokenConfig {
    fn default() -> Self {
        HoneytokenConfig {
            enabled: true,
            action: Action::Alert,
        }
    }
}

/// What only an intruder touches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Honeytokens {
    /// Addresses no real host uses: an ARP request for one, or a SYN to any of its ports.
    pub addresses: Vec<Ipv4Addr>,
    /// Ports no real service listens on, on real addresses.
    pub ports: Vec<(Ipv4Addr, u16)>,
    /// Planted (user, password) pairs: any login attempt with one, successful or not.
    pub credentials: Vec<(String, String)>,
}

/// `Honeytokens` arranged for lookup.
#[derive(Debug, Clone, Default)]
pub(super) struct HoneytokenIndex {
    addresses: HashSet<Ipv4Addr>,
    ports: HashSet<(Ipv4Addr, u16)>,
    /// User → planted passwords.
    credentials: HashMap<String, HashSet<String>>,
}

impl HoneytokenIndex {
    pub fn new(tokens: &Honeytokens) -> Self {
        let mut credentials: HashMap<String, HashSet<String>> = HashMap::new();
        for (user, password) in &tokens.credentials {
            credentials
                .entry(user.clone())
                .or_default()
                .insert(password.clone());
        }
        HoneytokenIndex {
            addresses: tokens.addresses.iter().copied().collect(),
            ports: tokens.ports.iter().copied().collect(),
            credentials,
        }
    }

    /// A honeytoken address is gemelo's own decoy: what it sends is not an intrusion.
    pub fn is_decoy_address(&self, ip: Ipv4Addr) -> bool {
        self.addresses.contains(&ip)
    }

    pub fn observe(&self, obs: &Observation) -> Option<Finding> {
        match obs {
            Observation::ArpRequest { target_ip, .. } if self.addresses.contains(target_ip) => {
                Some(Finding {
                    reason: format!("asked ARP for decoy address {target_ip}"),
                    evidence: json!({"kind": "address", "address": target_ip, "via": "arp"}),
                })
            }
            Observation::Syn {
                dst_ip, dst_port, ..
            } if self.addresses.contains(dst_ip) => Some(Finding {
                reason: format!("connected to decoy address {dst_ip} (port {dst_port})"),
                evidence: json!({"kind": "address", "address": dst_ip, "port": dst_port, "via": "syn"}),
            }),
            Observation::Syn {
                dst_ip, dst_port, ..
            } if self.ports.contains(&(*dst_ip, *dst_port)) => Some(Finding {
                reason: format!("connected to decoy port {dst_port} on {dst_ip}"),
                evidence: json!({"kind": "port", "address": dst_ip, "port": dst_port, "via": "syn"}),
            }),
            Observation::Login {
                twin_host,
                protocol,
                user,
                password: Some(password),
                success,
                ..
            } if self
                .credentials
                .get(user)
                .is_some_and(|planted| planted.contains(password)) =>
            {
                let verb = if *success {
                    "logged in"
                } else {
                    "tried to log in"
                };
                Some(Finding {
                    reason: format!(
                        "{verb} with honeytoken credential {user:?} on {twin_host} ({protocol})"
                    ),
                    evidence: json!({
                        "kind": "credential",
                        "user": user,
                        "twin_host": twin_host,
                        "protocol": protocol,
                        "success": success,
                    }),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, syn, ATTACKER};
    use super::super::{Detector, Detectors, DetectorsConfig};
    use super::*;

    const DECOY: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 99);
    const WEB: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 10);

    fn tokens() -> Honeytokens {
        Honeytokens {
            addresses: vec![DECOY],
            ports: vec![(WEB, 2222)],
            credentials: vec![("backup".into(), "Backup2024!".into())],
        }
    }

    fn detectors() -> Detectors {
        Detectors::new(DetectorsConfig::default(), tokens()).unwrap()
    }

    fn login(time: f64, user: &str, password: Option<&str>, success: bool) -> Observation {
        Observation::Login {
            time: at(time),
            src_ip: ATTACKER,
            twin_host: "web01".into(),
            protocol: "ssh".into(),
            user: user.into(),
            password: password.map(String::from),
            success,
        }
    }

    #[test]
    fn arp_for_a_decoy_address_fires_at_once() {
        let mut d = detectors();
        let alerts = d.observe(&Observation::ArpRequest {
            time: at(1.0),
            src_mac: "52:54:00:66:66:66".into(),
            src_ip: ATTACKER,
            target_ip: DECOY,
        });
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].detector, Detector::Honeytoken);
        assert_eq!(alerts[0].reason, "asked ARP for decoy address 10.10.1.99");
        assert_eq!(alerts[0].evidence["via"], "arp");
    }

    #[test]
    fn a_syn_to_a_decoy_address_or_port_fires() {
        let mut d = detectors();
        let alerts = d.observe(&syn(1.0, DECOY, 445));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            alerts[0].reason,
            "connected to decoy address 10.10.1.99 (port 445)"
        );

        let mut d = detectors();
        assert!(d.observe(&syn(1.0, WEB, 22)).is_empty());
        let alerts = d.observe(&syn(1.0, WEB, 2222));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            alerts[0].reason,
            "connected to decoy port 2222 on 10.10.1.10"
        );
        assert_eq!(alerts[0].evidence["kind"], "port");
    }

    #[test]
    fn a_planted_credential_fires_whether_or_not_it_worked() {
        for success in [false, true] {
            let mut d = detectors();
            let alerts = d.observe(&login(1.0, "backup", Some("Backup2024!"), success));
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].detector, Detector::Honeytoken);
            assert!(alerts[0].reason.contains("\"backup\" on web01 (ssh)"));
            // A login carries no MAC.
            assert_eq!(alerts[0].source_mac, None);
        }
    }

    #[test]
    fn other_credentials_do_not() {
        let mut d = detectors();
        assert!(d
            .observe(&login(1.0, "backup", Some("backup"), false))
            .is_empty());
        assert!(d.observe(&login(1.0, "backup", None, false)).is_empty());
        assert!(d
            .observe(&login(1.0, "root", Some("Backup2024!"), false))
            .is_empty());
    }

    #[test]
    fn the_set_can_be_replaced() {
        let mut d = detectors();
        let elsewhere = Ipv4Addr::new(10, 10, 2, 99);
        assert!(d.observe(&syn(1.0, elsewhere, 80)).is_empty());
        d.set_honeytokens(Honeytokens {
            addresses: vec![elsewhere],
            ..Honeytokens::default()
        });
        assert_eq!(d.observe(&syn(2.0, elsewhere, 80)).len(), 1);
        d.forget(ATTACKER);
        // The old decoy address is no longer one.
        assert!(d.observe(&syn(3.0, DECOY, 80)).is_empty());
    }

    #[test]
    fn what_a_decoy_address_sends_is_not_an_intrusion() {
        let mut d = detectors();
        let from_decoy = Observation::Syn {
            time: at(1.0),
            src_mac: "52:54:00:00:00:99".into(),
            src_ip: DECOY,
            src_port: 40000,
            dst_ip: WEB,
            dst_port: 2222,
        };
        assert!(d.observe(&from_decoy).is_empty());
    }
}
