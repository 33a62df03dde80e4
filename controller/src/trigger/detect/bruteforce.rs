//! Brute-force detector: many new connections from one source to one login
//! service (seen as SYNs in packet-in copies), or many failed logins (reported
//! by the twin's decoys), within a window.
//!
//! A new connection is a SYN from a source port not already counted for that
//! service in the window, so a client retransmitting one unanswered SYN is one
//! connection, not six.

use super::{rfc3339, secs_between, within, Action, Finding, Observation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

/// Login services one source is tracked against at most; past this the one
/// touched longest ago is dropped (a sweep of one port is the scan detector's).
pub const MAX_SERVICES_PER_SOURCE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceConfig {
    pub enabled: bool,
    pub action: Action,
    /// New connections to one (address, login port) that make a brute force.
    pub connections: usize,
    /// Failed logins on the twin's decoys that make a brute force.
    pub failed_logins: usize,
    /// The window both counts are taken in, in seconds.
    pub window_s: u64,
    /// TCP ports of login services.
    pub ports: Vec<u16>,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            enabled: true,
            action: Action::Alert,
            connections: 10,
            failed_logins: 10,
            window_s: 30,
            // ftp, ssh, telnet, pop3, imap, smb, mssql, mqtt, mysql, rdp, postgres, vnc
            ports: vec![
                21, 22, 23, 110, 143, 445, 1433, 1883, 3306, 3389, 5432, 5900,
            ],
        }
    }
}

impl BruteForceConfig {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_s)
    }
}

#[derive(Debug, Clone)]
struct FailedLogin {
    time: SystemTime,
    twin_host: String,
    protocol: String,
    user: String,
}

/// One source's recent connections to login services and failed logins.
#[derive(Debug, Clone, Default)]
pub(super) struct BruteForceWindow {
    /// (address, port) → (time, source port) of each new connection.
    connections: HashMap<(Ipv4Addr, u16), VecDeque<(SystemTime, u16)>>,
    failed: VecDeque<FailedLogin>,
}

impl BruteForceWindow {
    pub fn observe(&mut self, obs: &Observation, config: &BruteForceConfig) -> Option<Finding> {
        let window = config.window();
        match obs {
            Observation::Syn {
                time,
                src_port,
                dst_ip,
                dst_port,
                ..
            } if config.ports.contains(dst_port) => {
                let now = *time;
                let service = (*dst_ip, *dst_port);
                let seen = self.connections.entry(service).or_default();
                seen.retain(|(t, _)| within(*t, now, window));
                if !seen.iter().any(|(_, port)| port == src_port) {
                    seen.push_back((now, *src_port));
                }
                if seen.len() >= config.connections {
                    let first = seen.iter().map(|(t, _)| *t).min().unwrap_or(now);
                    let span_s = secs_between(first, now);
                    return Some(Finding {
                        reason: format!(
                            "opened {} connections to {dst_ip}:{dst_port} in {span_s:.1} s",
                            seen.len()
                        ),
                        evidence: json!({
                            "kind": "connections",
                            "target": dst_ip,
                            "port": dst_port,
                            "connections": seen.len(),
                            "first": rfc3339(first),
                            "last": rfc3339(now),
                            "span_s": span_s,
                            "threshold": config.connections,
                            "window_s": config.window_s,
                        }),
                    });
                }
                if self.connections.len() > MAX_SERVICES_PER_SOURCE {
                    self.drop_stalest_service(now, window);
                }
                None
            }
            Observation::Login {
                time,
                twin_host,
                protocol,
                user,
                success: false,
                ..
            } => {
                let now = *time;
                self.failed.retain(|f| within(f.time, now, window));
                self.failed.push_back(FailedLogin {
                    time: now,
                    twin_host: twin_host.clone(),
                    protocol: protocol.clone(),
                    user: user.clone(),
                });
                if self.failed.len() < config.failed_logins {
                    return None;
                }
                let first = self.failed.iter().map(|f| f.time).min().unwrap_or(now);
                let span_s = secs_between(first, now);
                let attempts: Vec<_> = self
                    .failed
                    .iter()
                    .map(|f| {
                        json!({
                            "time": rfc3339(f.time),
                            "twin_host": f.twin_host,
                            "protocol": f.protocol,
                            "user": f.user,
                        })
                    })
                    .collect();
                Some(Finding {
                    reason: format!(
                        "failed {} logins in {span_s:.1} s (last: {protocol} on {twin_host} as {user:?})",
                        self.failed.len()
                    ),
                    evidence: json!({
                        "kind": "failed_logins",
                        "attempts": attempts,
                        "span_s": span_s,
                        "threshold": config.failed_logins,
                        "window_s": config.window_s,
                    }),
                })
            }
            _ => None,
        }
    }

    /// Drops services with nothing left in the window, or else the one touched longest ago.
    fn drop_stalest_service(&mut self, now: SystemTime, window: Duration) {
        self.connections
            .retain(|_, seen| seen.iter().any(|(t, _)| within(*t, now, window)));
        while self.connections.len() > MAX_SERVICES_PER_SOURCE {
            let stalest = self
                .connections
                .iter()
                .map(|(service, seen)| (seen.iter().map(|(t, _)| *t).max(), *service))
                .min()
                .map(|(_, service)| service);
            match stalest {
                Some(service) => self.connections.remove(&service),
                None => break,
            };
        }
    }

    pub fn clear(&mut self) {
        self.connections.clear();
        self.failed.clear();
    }

    /// Services tracked, for the memory bound's tests.
    #[cfg(test)]
    pub fn services(&self) -> usize {
        self.connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, ATTACKER};
    use super::super::{Detector, Detectors, DetectorsConfig, Honeytokens};
    use super::*;

    const SSH: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 22);

    fn detectors() -> Detectors {
        Detectors::new(DetectorsConfig::default(), Honeytokens::default()).unwrap()
    }

    fn connect(time: f64, src_port: u16, dst_ip: Ipv4Addr, dst_port: u16) -> Observation {
        Observation::Syn {
            time: at(time),
            src_mac: "52:54:00:66:66:66".into(),
            src_ip: ATTACKER,
            src_port,
            dst_ip,
            dst_port,
        }
    }

    fn failed(time: f64, user: &str) -> Observation {
        Observation::Login {
            time: at(time),
            src_ip: ATTACKER,
            twin_host: "plc-gw".into(),
            protocol: "telnet".into(),
            user: user.into(),
            password: Some("123456".into()),
            success: false,
        }
    }

    #[test]
    fn ten_connections_to_ssh_fire() {
        let mut d = detectors();
        for i in 0..9u16 {
            assert!(d
                .observe(&connect(0.5 * f64::from(i), 40000 + i, SSH, 22))
                .is_empty());
        }
        let alerts = d.observe(&connect(5.0, 40009, SSH, 22));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].detector, Detector::BruteForce);
        assert_eq!(
            alerts[0].reason,
            "opened 10 connections to 10.10.1.22:22 in 5.0 s"
        );
        assert_eq!(alerts[0].evidence["connections"], 10);
    }

    #[test]
    fn retransmitted_syns_are_one_connection() {
        let mut d = detectors();
        for i in 0..50 {
            assert!(d
                .observe(&connect(0.1 * f64::from(i), 40000, SSH, 22))
                .is_empty());
        }
    }

    #[test]
    fn other_ports_and_other_services_do_not_add_up() {
        let mut d = detectors();
        // 10 connections to a web server: not a login service.
        for i in 0..10u16 {
            assert!(d.observe(&connect(0.1, 40000 + i, SSH, 80)).is_empty());
        }
        // 9 to ssh and 9 to telnet on the same host: two services, 9 each.
        for i in 0..9u16 {
            assert!(d.observe(&connect(0.2, 41000 + i, SSH, 22)).is_empty());
            assert!(d.observe(&connect(0.2, 42000 + i, SSH, 23)).is_empty());
        }
    }

    #[test]
    fn connections_over_exactly_the_window_count_and_past_it_do_not() {
        let mut d = detectors();
        for i in 0..9u16 {
            assert!(d
                .observe(&connect(f64::from(i), 40000 + i, SSH, 22))
                .is_empty());
        }
        // First at 0 s, tenth at 30 s.
        assert_eq!(d.observe(&connect(30.0, 40009, SSH, 22)).len(), 1);

        let mut d = detectors();
        for i in 0..9u16 {
            assert!(d
                .observe(&connect(f64::from(i), 40000 + i, SSH, 22))
                .is_empty());
        }
        // The one at 0 s is 30.5 s old: 9 remain.
        assert!(d.observe(&connect(30.5, 40009, SSH, 22)).is_empty());
    }

    #[test]
    fn ten_failed_logins_fire_and_successes_do_not_count() {
        let mut d = detectors();
        for i in 0..9 {
            assert!(d.observe(&failed(f64::from(i), "admin")).is_empty());
            let worked = Observation::Login {
                time: at(f64::from(i)),
                src_ip: ATTACKER,
                twin_host: "plc-gw".into(),
                protocol: "telnet".into(),
                user: "guest".into(),
                password: None,
                success: true,
            };
            assert!(d.observe(&worked).is_empty());
        }
        let alerts = d.observe(&failed(12.0, "root"));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            alerts[0].reason,
            "failed 10 logins in 12.0 s (last: telnet on plc-gw as \"root\")"
        );
        assert_eq!(alerts[0].evidence["attempts"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn failed_logins_past_the_window_do_not_count() {
        let mut d = detectors();
        for i in 0..20 {
            // One every 4 s: at most 8 in any 30 s.
            assert!(d.observe(&failed(4.0 * f64::from(i), "admin")).is_empty());
        }
    }

    #[test]
    fn services_per_source_are_bounded() {
        let mut window = BruteForceWindow::default();
        let config = BruteForceConfig::default();
        for i in 0..(MAX_SERVICES_PER_SOURCE as u32 + 500) {
            let host = Ipv4Addr::from(0x0a0a_0000 + i);
            let obs = connect(0.001 * f64::from(i), 40000, host, 22);
            assert!(window.observe(&obs, &config).is_none());
            assert!(window.services() <= MAX_SERVICES_PER_SOURCE);
        }
    }
}
