//! Scan detector: one source touching many ports of one host (a vertical scan)
//! or many hosts (a sweep) within a short window.
//!
//! A source's window keeps, per destination host, when it was last touched and
//! when each of its ports was last touched; entries older than the window are
//! pruned on every observation of that source. Reaching a threshold fires and
//! the caller clears the window, so at rest a window holds fewer than
//! `distinct_hosts` hosts of fewer than `distinct_ports` ports each.

use super::{rfc3339, secs_between, within, Action, Finding, Observation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    pub enabled: bool,
    pub action: Action,
    /// Distinct ports of one destination host that make a port scan.
    pub distinct_ports: usize,
    /// Distinct destination hosts that make a host sweep.
    pub distinct_hosts: usize,
    /// The window both counts are taken in, in seconds.
    pub window_s: u64,
    /// Whether ARP requests count as touching their target host (an ARP sweep
    /// is how a scanner finds hosts on its own segment). A router ARPs for
    /// many hosts too: put it on the ignore list.
    pub count_arp: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            action: Action::Alert,
            distinct_ports: 20,
            distinct_hosts: 10,
            window_s: 10,
            count_arp: true,
        }
    }
}

impl ScanConfig {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_s)
    }
}

/// When one destination host, and each of its ports, was last touched.
#[derive(Debug, Clone)]
struct Touches {
    last: SystemTime,
    ports: HashMap<u16, SystemTime>,
}

/// One source's recent touches.
#[derive(Debug, Clone, Default)]
pub(super) struct ScanWindow {
    hosts: HashMap<Ipv4Addr, Touches>,
}

impl ScanWindow {
    pub fn observe(&mut self, obs: &Observation, config: &ScanConfig) -> Option<Finding> {
        let now = obs.time();
        let (dst_ip, dst_port) = match *obs {
            Observation::Syn {
                dst_ip, dst_port, ..
            } => (dst_ip, Some(dst_port)),
            Observation::ArpRequest { target_ip, .. } if config.count_arp => (target_ip, None),
            _ => return None,
        };
        let touches = self.hosts.entry(dst_ip).or_insert(Touches {
            last: now,
            ports: HashMap::new(),
        });
        touches.last = touches.last.max(now);
        if let Some(port) = dst_port {
            let seen = touches.ports.entry(port).or_insert(now);
            *seen = (*seen).max(now);
        }

        let window = config.window();
        self.hosts.retain(|_, touches| {
            touches.ports.retain(|_, t| within(*t, now, window));
            within(touches.last, now, window)
        });

        if let Some(touches) = self.hosts.get(&dst_ip) {
            if touches.ports.len() >= config.distinct_ports {
                let first = touches.ports.values().min().copied().unwrap_or(now);
                let mut ports: Vec<u16> = touches.ports.keys().copied().collect();
                ports.sort_unstable();
                let span_s = secs_between(first, now);
                return Some(Finding {
                    reason: format!("scanned {} ports on {dst_ip} in {span_s:.1} s", ports.len()),
                    evidence: json!({
                        "kind": "ports",
                        "target": dst_ip,
                        "ports": ports,
                        "first": rfc3339(first),
                        "last": rfc3339(now),
                        "span_s": span_s,
                        "threshold": config.distinct_ports,
                        "window_s": config.window_s,
                    }),
                });
            }
        }
        if self.hosts.len() >= config.distinct_hosts {
            let first = self.hosts.values().map(|t| t.last).min().unwrap_or(now);
            let mut hosts: Vec<Ipv4Addr> = self.hosts.keys().copied().collect();
            hosts.sort_unstable();
            let span_s = secs_between(first, now);
            return Some(Finding {
                reason: format!("probed {} hosts in {span_s:.1} s", hosts.len()),
                evidence: json!({
                    "kind": "hosts",
                    "hosts": hosts,
                    "first": rfc3339(first),
                    "last": rfc3339(now),
                    "span_s": span_s,
                    "threshold": config.distinct_hosts,
                    "window_s": config.window_s,
                }),
            });
        }
        None
    }

    pub fn clear(&mut self) {
        self.hosts.clear();
    }

    /// Entries held (hosts plus ports), for the memory bound's tests.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.hosts.values().map(|t| 1 + t.ports.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, syn, ATTACKER};
    use super::super::{Detector, Detectors, DetectorsConfig, Honeytokens, Observation};
    use super::*;

    const WEB: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 10);

    fn detectors(scan: ScanConfig) -> Detectors {
        let config = DetectorsConfig {
            scan,
            ..DetectorsConfig::default()
        };
        Detectors::new(config, Honeytokens::default()).unwrap()
    }

    #[test]
    fn twenty_ports_on_one_host_is_a_port_scan() {
        let mut d = detectors(ScanConfig::default());
        for (i, port) in (1000..1019).enumerate() {
            let alerts = d.observe(&syn(0.1 * i as f64, WEB, port));
            assert!(alerts.is_empty(), "fired at {} ports", i + 1);
        }
        let alerts = d.observe(&syn(3.2, WEB, 1019));
        assert_eq!(alerts.len(), 1);
        let alert = &alerts[0];
        assert_eq!(alert.detector, Detector::Scan);
        assert_eq!(alert.source_ip, ATTACKER);
        assert_eq!(alert.source_mac.as_deref(), Some("52:54:00:66:66:66"));
        assert_eq!(alert.action, Action::Alert);
        assert_eq!(alert.reason, "scanned 20 ports on 10.10.1.10 in 3.2 s");
        assert_eq!(alert.evidence["kind"], "ports");
        assert_eq!(alert.evidence["ports"].as_array().unwrap().len(), 20);
        assert_eq!(alert.evidence["target"], "10.10.1.10");
    }

    #[test]
    fn a_port_touched_again_counts_once() {
        let mut d = detectors(ScanConfig::default());
        for i in 0..100 {
            assert!(d.observe(&syn(0.01 * i as f64, WEB, 443)).is_empty());
        }
        for port in 1..19 {
            assert!(d.observe(&syn(1.0, WEB, port)).is_empty());
        }
        // 443 plus 18 others = 19 distinct.
        assert!(d.observe(&syn(1.0, WEB, 8443)).len() == 1);
    }

    #[test]
    fn ports_spread_over_exactly_the_window_still_count() {
        let mut d = detectors(ScanConfig::default());
        for i in 0..19u16 {
            assert!(d
                .observe(&syn(0.5 * f64::from(i), WEB, 2000 + i))
                .is_empty());
        }
        // First port at 0.0 s, twentieth at 10.0 s: within 10 s.
        assert_eq!(d.observe(&syn(10.0, WEB, 2019)).len(), 1);
    }

    #[test]
    fn ports_spread_over_more_than_the_window_do_not() {
        let mut d = detectors(ScanConfig::default());
        for i in 0..19u16 {
            assert!(d
                .observe(&syn(0.5 * f64::from(i), WEB, 2000 + i))
                .is_empty());
        }
        // The first port (at 0.0 s) is 10.001 s old: 19 remain.
        assert!(d.observe(&syn(10.001, WEB, 2019)).is_empty());
        // One more inside the window makes 20 again.
        assert_eq!(d.observe(&syn(10.002, WEB, 2020)).len(), 1);
    }

    #[test]
    fn ten_hosts_is_a_sweep() {
        let mut d = detectors(ScanConfig::default());
        for host in 1..10 {
            assert!(d
                .observe(&syn(
                    0.2 * f64::from(host),
                    Ipv4Addr::new(10, 10, 1, host),
                    22
                ))
                .is_empty());
        }
        let alerts = d.observe(&syn(4.1, Ipv4Addr::new(10, 10, 1, 10), 22));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].reason, "probed 10 hosts in 3.9 s");
        assert_eq!(alerts[0].evidence["kind"], "hosts");
        assert_eq!(alerts[0].evidence["hosts"].as_array().unwrap().len(), 10);
    }

    fn arp(time: f64, target: u8) -> Observation {
        Observation::ArpRequest {
            time: at(time),
            src_mac: "52:54:00:66:66:66".into(),
            src_ip: ATTACKER,
            target_ip: Ipv4Addr::new(10, 10, 1, target),
        }
    }

    #[test]
    fn an_arp_sweep_is_a_sweep_unless_arp_is_not_counted() {
        let mut d = detectors(ScanConfig::default());
        let fired: usize = (1..=10).map(|h| d.observe(&arp(0.1, h)).len()).sum();
        assert_eq!(fired, 1);

        let mut d = detectors(ScanConfig {
            count_arp: false,
            ..ScanConfig::default()
        });
        let fired: usize = (1..=200).map(|h| d.observe(&arp(0.1, h)).len()).sum();
        assert_eq!(fired, 0);
    }

    #[test]
    fn a_window_holds_less_than_the_thresholds() {
        let mut window = ScanWindow::default();
        let config = ScanConfig::default();
        // 9 hosts × 19 ports, slowly enough to never fire: the window never
        // holds more than the touches of the last 10 s.
        let mut fired = 0;
        for step in 0..10_000u32 {
            let host = Ipv4Addr::new(10, 10, 1, (step % 9) as u8);
            let port = 1 + (step / 9 % 19) as u16;
            let obs = syn(f64::from(step) * 0.6, host, port);
            if window.observe(&obs, &config).is_some() {
                fired += 1;
                window.clear();
            }
            assert!(window.len() <= 9 * 20, "{} entries", window.len());
        }
        assert_eq!(fired, 0);
    }
}
