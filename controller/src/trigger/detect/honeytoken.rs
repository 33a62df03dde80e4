//! Honeytoken detector: nothing legitimate touches a decoy-only address, a
//! decoy-only port on a real address, or a planted credential, so the first
//! touch fires.
//!
//! The caller owns the honeytoken set (`Honeytokens::from_plan`: the twin
//! plan's decoy-only hosts and the credentials its personas plant) and
//! replaces it when that changes.
//!
//! A router asks ARP for a decoy address on behalf of whoever sent it a packet
//! for it: that request is not the router's doing, so it does not fire (a TCP
//! sender is still caught by its SYN, copied where it enters the fabric).

use super::{Action, Finding, Observation};
use gemelo_hypervisor::TwinPlan;
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
    /// Segment gateways: their ARP requests are asked on others' behalf.
    #[serde(default)]
    pub routers: Vec<Ipv4Addr>,
}

impl Honeytokens {
    /// What a twin plan makes a honeytoken: the addresses of its decoy-only
    /// hosts (production has none of them) and the credentials its personas
    /// plant, with the segments' gateways as routers. A plan has no decoy-only
    /// port on a real address: a mirrored host offers what production offers.
    pub fn from_plan(plan: &TwinPlan) -> Honeytokens {
        let addresses = plan
            .hosts
            .iter()
            .filter(|h| h.honeytoken)
            .flat_map(|h| h.interfaces.iter().flat_map(|i| &i.ips))
            .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
            .collect();
        let routers = plan
            .segments
            .iter()
            .filter_map(|s| s.gateway.as_deref()?.parse().ok())
            .collect();
        Honeytokens {
            addresses,
            ports: Vec::new(),
            credentials: gemelo_hypervisor::decoy::persona::planted_credentials(plan),
            routers,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.ports.is_empty() && self.credentials.is_empty()
    }
}

/// `Honeytokens` arranged for lookup.
#[derive(Debug, Clone, Default)]
pub(super) struct HoneytokenIndex {
    addresses: HashSet<Ipv4Addr>,
    ports: HashSet<(Ipv4Addr, u16)>,
    /// User → planted passwords.
    credentials: HashMap<String, HashSet<String>>,
    routers: HashSet<Ipv4Addr>,
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
            routers: tokens.routers.iter().copied().collect(),
        }
    }

    /// A honeytoken address is gemelo's own decoy: what it sends is not an intrusion.
    pub fn is_decoy_address(&self, ip: Ipv4Addr) -> bool {
        self.addresses.contains(&ip)
    }

    pub fn observe(&self, obs: &Observation) -> Option<Finding> {
        match obs {
            Observation::ArpRequest {
                src_ip, target_ip, ..
            } if self.addresses.contains(target_ip) && !self.routers.contains(src_ip) => {
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
    const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 1);

    fn tokens() -> Honeytokens {
        Honeytokens {
            addresses: vec![DECOY],
            ports: vec![(WEB, 2222)],
            credentials: vec![("backup".into(), "Backup2024!".into())],
            routers: vec![GATEWAY],
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

    #[test]
    fn a_gateway_asking_for_a_decoy_is_not_the_intruder() {
        let mut d = detectors();
        let routed = Observation::ArpRequest {
            time: at(1.0),
            src_mac: "02:00:0a:0a:01:01".into(),
            src_ip: GATEWAY,
            target_ip: DECOY,
        };
        assert!(d.observe(&routed).is_empty());
        // Whoever sent the gateway that packet shows up with its SYN.
        assert_eq!(d.observe(&syn(1.0, DECOY, 22)).len(), 1);
    }

    /// The office twin with one decoy-only host, as the planner writes it.
    fn office_plan() -> TwinPlan {
        use gemelo_hypervisor::{
            Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinSegment, TwinSwitch,
        };
        let host = |name: &str, mac: &str, ip: &str, honeytoken: bool, daemon: bool| TwinHost {
            name: name.into(),
            mirrors: if honeytoken { vec![] } else { vec![mac.into()] },
            hostname: name.into(),
            interfaces: vec![TwinInterface {
                mac: mac.into(),
                ips: vec![ip.into()],
                segment: "10.10.1.0/24".into(),
                vlan: Some(10),
            }],
            gateway: Some("10.10.1.1".into()),
            ip_forward: false,
            backend: Backend::Netns,
            services: vec![DecoySpec {
                port: 22,
                proto: "tcp".into(),
                name: "ssh".into(),
                product: None,
                version: None,
                banner: None,
                mode: if daemon {
                    DecoyMode::Daemon {
                        product: "OpenSSH".into(),
                    }
                } else {
                    DecoyMode::Emulated
                },
                details: serde_json::Value::Null,
            }],
            honeytoken,
        };
        TwinPlan {
            switch: TwinSwitch {
                namespace: "gm-twin".into(),
                rundir: "/run/gemelo/twin/ovs".into(),
                bridge: "gm-twin0".into(),
                dpid: 1,
            },
            observer_namespace: "gm-twin-observer".into(),
            segments: vec![
                TwinSegment {
                    cidr: "10.10.1.0/24".into(),
                    vlan: Some(10),
                    gateway: Some("10.10.1.1".into()),
                },
                TwinSegment {
                    cidr: "10.10.3.0/24".into(),
                    vlan: None,
                    gateway: None,
                },
            ],
            hosts: vec![
                host("web01", "02:00:0a:0a:01:0a", "10.10.1.10/24", false, true),
                host(
                    "backup-srv",
                    "02:67:6d:0a:01:63",
                    "10.10.1.99/24",
                    true,
                    false,
                ),
            ],
        }
    }

    #[test]
    fn a_plan_gives_its_decoy_hosts_credentials_and_gateways() {
        let mut plan = office_plan();
        let tokens = Honeytokens::from_plan(&plan);
        assert_eq!(
            tokens,
            Honeytokens {
                addresses: vec![DECOY],
                ports: vec![],
                credentials: vec![("admin".into(), "admin".into())],
                routers: vec![GATEWAY],
            }
        );
        assert!(!tokens.is_empty());
        // Mirrored hosts are never honeytokens; without a real sshd no
        // persona plants its account.
        plan.hosts.retain(|h| !h.honeytoken);
        plan.hosts[0].services[0].mode = gemelo_hypervisor::DecoyMode::Emulated;
        let tokens = Honeytokens::from_plan(&plan);
        assert!(tokens.is_empty(), "{tokens:?}");
        assert!(Honeytokens::default().is_empty());
    }
}
