//! Active discovery from gemelo's probe port, never outside the scope.
//!
//! A sweep makes every address of the targets answer ARP (the probe's kernel asks
//! for each one; the switches copy the answers to gemelo, so the passive path
//! records MAC, IP and attachment exactly as for any other ARP), then scans and
//! identifies the services of every host that answered. Runs inside the probe's
//! network namespace, rate-limited by the probe module.

use super::probe::{self, ProbeConfig};
use super::{now, parse_cidr, Discovery, Job};
use ipnetwork::Ipv4Network;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Largest number of addresses one request may sweep.
pub const MAX_TARGET_ADDRESSES: u64 = 4096;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScanError {
    #[error("{0}")]
    BadTarget(String),
    #[error("target {target} is outside the discovery scope ({scope}); only configured ranges are ever probed")]
    OutOfScope { target: String, scope: String },
    #[error("no discovery scope is configured: start gemelo serve with --scope CIDR")]
    NoScope,
    #[error("no probe port: active discovery needs gemelo's probe namespace (--probe-netns, default gm-probe)")]
    NoProbe,
    #[error("{0} addresses requested; at most {MAX_TARGET_ADDRESSES} per scan")]
    TooLarge(u64),
    #[error("bad port {0}: ports are 1-65535")]
    BadPort(u32),
}

/// Checks targets against the scope and returns them as networks.
pub fn validate_targets(
    targets: &[String],
    scope: &[Ipv4Network],
) -> Result<Vec<Ipv4Network>, ScanError> {
    if scope.is_empty() {
        return Err(ScanError::NoScope);
    }
    if targets.is_empty() {
        return Err(ScanError::BadTarget(
            "no targets given: name at least one CIDR, e.g. \"10.10.1.0/24\"".into(),
        ));
    }
    let scope_text = scope
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut nets = Vec::new();
    let mut total = 0u64;
    for t in targets {
        let net = parse_cidr(t).map_err(ScanError::BadTarget)?;
        if !scope
            .iter()
            .any(|s| s.contains(net.network()) && s.contains(net.broadcast()))
        {
            return Err(ScanError::OutOfScope {
                target: t.clone(),
                scope: scope_text,
            });
        }
        total += net.size() as u64;
        nets.push(net);
    }
    if total > MAX_TARGET_ADDRESSES {
        return Err(ScanError::TooLarge(total));
    }
    Ok(nets)
}

/// Host addresses of a network (no network/broadcast address for prefixes < 31).
fn addresses(net: &Ipv4Network) -> Vec<Ipv4Addr> {
    let all: Vec<Ipv4Addr> = net.iter().collect();
    if net.prefix() < 31 && all.len() > 2 {
        all[1..all.len() - 1].to_vec()
    } else {
        all
    }
}

impl Discovery {
    fn probe_config(&self) -> ProbeConfig {
        ProbeConfig {
            connect_timeout: Duration::from_millis(800),
            read_timeout: Duration::from_millis(1500),
            concurrency: 64,
            max_rate_per_s: 500,
        }
    }

    /// Starts a scan job; returns it at once (state "running").
    pub fn start_scan(
        self: &Arc<Self>,
        targets: Vec<String>,
        ports: Option<Vec<u32>>,
    ) -> Result<Job, ScanError> {
        let nets = validate_targets(&targets, &self.config.scope)?;
        let ports: Vec<u16> = match ports {
            Some(p) => p
                .into_iter()
                .map(|p| {
                    u16::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or(ScanError::BadPort(p))
                })
                .collect::<Result<_, _>>()?,
            None if !self.config.ports.is_empty() => self.config.ports.clone(),
            None => probe::DEFAULT_PORTS.to_vec(),
        };
        let ns = self.config.probe_netns.clone().ok_or(ScanError::NoProbe)?;
        let id = format!("scan-{}", self.next_job.fetch_add(1, Ordering::Relaxed));
        let job = Job {
            id: id.clone(),
            state: "running".into(),
            targets: nets.iter().map(|n| n.to_string()).collect(),
            ports: ports.clone(),
            found: 0,
            started: now(),
            finished: None,
            error: None,
        };
        self.put_job(job.clone());
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.clone().sweep(ns, nets, ports).await;
            let mut job = this.job(&id).expect("job registered above");
            job.finished = Some(now());
            match result {
                Ok(found) => {
                    job.state = "done".into();
                    job.found = found;
                }
                Err(e) => {
                    job.state = "failed".into();
                    job.error = Some(e);
                }
            }
            info!(job = %job.id, state = %job.state, found = job.found, "scan finished");
            this.put_job(job);
        });
        Ok(job)
    }

    /// ARP sweep + identify; returns how many hosts answered.
    async fn sweep(
        self: Arc<Self>,
        ns: String,
        nets: Vec<Ipv4Network>,
        ports: Vec<u16>,
    ) -> Result<usize, String> {
        let addrs: Vec<Ipv4Addr> = nets.iter().flat_map(addresses).collect();
        // 1. Make every address ARP-visible: the kernel of the probe resolves each one.
        let to_touch = addrs.clone();
        run_in(&ns, move || async move { touch(&to_touch).await }).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // 2. Who answered is what the passive path learned.
        let alive: Vec<Ipv4Addr> = {
            let inv = self.inventory();
            addrs
                .iter()
                .copied()
                .filter(|ip| inv.host_by_ip(*ip).is_some())
                .collect()
        };
        // 3. Identify the services of each (the new-host prober can skip them).
        self.forget_new_ips(&alive);
        self.identify(&ns, alive.clone(), ports).await?;
        Ok(alive.len())
    }

    /// Scans and identifies the services of `ips` (from the probe namespace) and records them.
    pub(crate) async fn identify(
        self: &Arc<Self>,
        ns: &str,
        ips: Vec<Ipv4Addr>,
        ports: Vec<u16>,
    ) -> Result<(), String> {
        let cfg = self.probe_config();
        let results = run_in(ns, move || async move {
            let probes = ips.into_iter().map(|ip| {
                let ports = ports.clone();
                let cfg = cfg.clone();
                async move { (ip, probe::probe_host(IpAddr::V4(ip), &ports, &cfg).await) }
            });
            futures_util::future::join_all(probes).await
        })
        .await?;
        for (ip, services) in results {
            let os = probe::guess_os(
                &services,
                self.inventory().host_by_ip(ip).and_then(|h| h.ttl),
            )
            .map(|(family, guess)| super::inventory::Os { family, guess });
            let role = probe::classify_role(&services);
            let sys_name: Option<String> = services
                .iter()
                .find(|s| s.name == "snmp")
                .and_then(|s| s.details.get("sys_name"))
                .and_then(|v| v.as_str())
                .map(|v| v.to_string());
            let mut changes = self.inventory().set_services(ip, services, os, role);
            if let Some(name) = sys_name {
                changes.extend(self.inventory().set_snmp_name(ip, &name));
            }
            self.record_changes(changes);
        }
        self.flush();
        Ok(())
    }

    /// Probes hosts as they appear (new IPs in scope), in small batches.
    pub async fn run_new_host_probes(self: Arc<Self>) {
        let Some(ns) = self.config.probe_netns.clone() else {
            return;
        };
        let ports = if self.config.ports.is_empty() {
            probe::DEFAULT_PORTS.to_vec()
        } else {
            self.config.ports.clone()
        };
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let batch = self.take_new_ips();
            // Addresses that answered connections but have no owner yet: ask for them
            // (ARP) so the passive path learns MAC and attachment.
            let unowned: Vec<Ipv4Addr> = {
                let inv = self.inventory();
                inv.unowned_addresses()
                    .into_iter()
                    .filter(|ip| self.config.scope.iter().any(|n| n.contains(*ip)))
                    .collect()
            };
            if !unowned.is_empty() {
                let _ = run_in(&ns, move || async move { touch(&unowned).await }).await;
            }
            if batch.is_empty() {
                continue;
            }
            info!(hosts = batch.len(), "probing new hosts");
            if let Err(e) = self.identify(&ns, batch, ports.clone()).await {
                warn!(error = %e, "probing new hosts failed");
            }
        }
    }

    /// Sweeps the whole scope now, then every `sweep_interval`, and again soon after
    /// a switch connects that the last sweep could not see through.
    pub async fn run_sweeps(self: Arc<Self>, first_delay: Duration) {
        if self.config.scope.is_empty() || self.config.probe_netns.is_none() {
            info!("no scope or no probe port: active discovery off (passive discovery runs)");
            return;
        }
        // The first sweep waits for the fabric: until a switch is programmed nothing is copied to gemelo.
        while !self.has_switches() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(first_delay).await;
        loop {
            let targets: Vec<String> = self.config.scope.iter().map(|n| n.to_string()).collect();
            let seen = self.switch_count();
            match self.start_scan(targets, None) {
                Ok(job) => info!(job = %job.id, "periodic sweep started"),
                Err(e) => warn!(error = %e, "periodic sweep not started"),
            }
            // Until the next sweep is due; a switch that connects meanwhile brings
            // hosts the last sweep could not see (its replies were never copied to
            // gemelo): sweep again once it is programmed.
            let due = tokio::time::Instant::now() + self.config.sweep_interval;
            while tokio::time::Instant::now() < due && self.switch_count() <= seen {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if tokio::time::Instant::now() < due {
                info!("a new switch connected: sweeping again");
                tokio::time::sleep(first_delay).await;
            }
        }
    }
}

/// Makes the probe's kernel resolve each address (one empty UDP datagram to the
/// discard port): the ARP answers are what the switches copy to gemelo.
async fn touch(addrs: &[Ipv4Addr]) {
    for chunk in addrs.chunks(64) {
        for ip in chunk {
            if let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") {
                let _ = s.send_to(b"", (*ip, 9));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a future inside the probe namespace (on its own thread) and awaits it.
async fn run_in<T, F, Fut>(ns: &str, f: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let ns = ns.to_string();
    tokio::task::spawn_blocking(move || {
        probe::in_netns(&ns, f).map_err(|e| format!("probe namespace {ns}: {e}"))
    })
    .await
    .map_err(|e| format!("probe task: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Vec<Ipv4Network> {
        vec![
            "10.10.1.0/24".parse().unwrap(),
            "10.10.2.0/24".parse().unwrap(),
        ]
    }

    #[test]
    fn targets_must_be_in_scope() {
        assert_eq!(
            validate_targets(&["10.10.1.0/24".into()], &scope())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            validate_targets(&["10.10.2.7".into()], &scope()).unwrap()[0].prefix(),
            32
        );
        assert!(matches!(
            validate_targets(&["10.10.0.0/16".into()], &scope()),
            Err(ScanError::OutOfScope { .. })
        ));
        assert!(matches!(
            validate_targets(&["192.168.1.0/24".into()], &scope()),
            Err(ScanError::OutOfScope { .. })
        ));
        let bad = validate_targets(&["10.10.1.0/33".into()], &scope())
            .unwrap_err()
            .to_string();
        assert!(bad.contains("10.10.1.0/33"), "{bad}");
        assert_eq!(
            validate_targets(&["10.10.1.0/24".into()], &[]),
            Err(ScanError::NoScope)
        );
        assert!(matches!(
            validate_targets(&[], &scope()),
            Err(ScanError::BadTarget(_))
        ));
        let wide: Vec<Ipv4Network> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(matches!(
            validate_targets(&["10.0.0.0/16".into()], &wide),
            Err(ScanError::TooLarge(65536))
        ));
    }

    #[test]
    fn sweeps_skip_network_and_broadcast() {
        let a = addresses(&"10.10.1.0/30".parse().unwrap());
        assert_eq!(
            a,
            vec![Ipv4Addr::new(10, 10, 1, 1), Ipv4Addr::new(10, 10, 1, 2)]
        );
        assert_eq!(
            addresses(&"10.10.1.7/32".parse().unwrap()),
            vec![Ipv4Addr::new(10, 10, 1, 7)]
        );
    }
}
