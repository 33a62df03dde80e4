//! Built-in detectors: judge sources from what the controller observes.
//!
//! The controller feeds `Detectors::observe` with observations taken from
//! packet-in copies (TCP SYNs without ACK, ARP requests) and from the twin's
//! decoy events (logins, `decoy::observation`), each stamped with the time it
//! was seen. Three
//! detectors read them:
//! - `scan`: many ports of one host, or many hosts, from one source in a window;
//! - `honeytoken`: a decoy-only address or port, or a planted credential;
//! - `bruteforce`: many new connections to one login service, or many failed
//!   logins, from one source in a window.
//!
//! An alert names the source, says in words what it did, carries the evidence
//! as JSON, and asks for the configured action (alert only, or redirect).
//! A detector fires once per source, then stays quiet for that source until the
//! cooldown passes or the caller `forget`s the source: one attacker, one alert.
//!
//! Pure and bounded: time comes from the observations, nothing is read from a
//! clock; per-source windows are pruned by time, sources idle for longer than
//! every window and the cooldown are dropped, and at most `max_sources` are
//! tracked (the least recently seen is evicted first).

pub mod bruteforce;
pub mod decoy;
pub mod honeytoken;
pub mod scan;

pub use bruteforce::BruteForceConfig;
pub use honeytoken::{HoneytokenConfig, Honeytokens};
pub use scan::ScanConfig;

use super::ConfigError;
use bruteforce::BruteForceWindow;
use honeytoken::HoneytokenIndex;
use ipnetwork::Ipv4Network;
use scan::ScanWindow;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

const CONFIG: &str = "detectors config";

/// Something a source did, as the controller saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A TCP SYN without ACK (a connection attempt), copied from a switch.
    Syn {
        time: SystemTime,
        src_mac: String,
        src_ip: Ipv4Addr,
        src_port: u16,
        dst_ip: Ipv4Addr,
        dst_port: u16,
    },
    /// An ARP request, copied from a switch.
    ArpRequest {
        time: SystemTime,
        src_mac: String,
        src_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// A login attempt on a twin host, reported by its decoy.
    Login {
        time: SystemTime,
        src_ip: Ipv4Addr,
        twin_host: String,
        protocol: String,
        user: String,
        password: Option<String>,
        success: bool,
    },
}

impl Observation {
    pub fn time(&self) -> SystemTime {
        match self {
            Observation::Syn { time, .. }
            | Observation::ArpRequest { time, .. }
            | Observation::Login { time, .. } => *time,
        }
    }

    pub fn src_ip(&self) -> Ipv4Addr {
        match self {
            Observation::Syn { src_ip, .. }
            | Observation::ArpRequest { src_ip, .. }
            | Observation::Login { src_ip, .. } => *src_ip,
        }
    }

    pub fn src_mac(&self) -> Option<&str> {
        match self {
            Observation::Syn { src_mac, .. } | Observation::ArpRequest { src_mac, .. } => {
                Some(src_mac)
            }
            Observation::Login { .. } => None,
        }
    }
}

/// Which detector raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    Scan,
    Honeytoken,
    BruteForce,
}

impl Detector {
    pub const ALL: [Detector; 3] = [Detector::Scan, Detector::Honeytoken, Detector::BruteForce];

    /// The name used in alerts and configuration: scan, honeytoken, bruteforce.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Scan => "scan",
            Detector::Honeytoken => "honeytoken",
            Detector::BruteForce => "bruteforce",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What an alert asks the controller to do about its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Swap the source into the twin.
    Redirect,
    /// Report only.
    Alert,
}

/// A detector's judgement of one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub detector: Detector,
    pub source_mac: Option<String>,
    pub source_ip: Ipv4Addr,
    pub action: Action,
    /// The time of the observation that fired.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub time: SystemTime,
    /// In words: "scanned 20 ports on 10.10.1.10 in 3.2 s".
    pub reason: String,
    pub evidence: Value,
}

/// What a detector found, before it becomes an `Alert`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub reason: String,
    pub evidence: Value,
}

/// `[scan]`, `[honeytoken]`, `[bruteforce]` tables plus what they share; every
/// field has a default, so an empty file is a working configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsConfig {
    /// After a detector fires for a source, it stays quiet for that source this long.
    pub cooldown_s: u64,
    /// Sources tracked at most; the least recently seen is evicted first.
    pub max_sources: usize,
    /// Sources that never alert (gemelo's own probe address, scanners the operator runs).
    pub ignore: Vec<Ipv4Network>,
    pub scan: ScanConfig,
    pub honeytoken: HoneytokenConfig,
    pub bruteforce: BruteForceConfig,
}

impl Default for DetectorsConfig {
    fn default() -> Self {
        DetectorsConfig {
            cooldown_s: 300,
            max_sources: 65_536,
            ignore: Vec::new(),
            scan: ScanConfig::default(),
            honeytoken: HoneytokenConfig::default(),
            bruteforce: BruteForceConfig::default(),
        }
    }
}

impl DetectorsConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: DetectorsConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(CONFIG, text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses values that would make a detector fire on everything or never forget.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |field: &str, value: u64, min: u64, meaning: &str| {
            if value < min {
                Err(ConfigError::Invalid {
                    config: CONFIG,
                    field: field.to_string(),
                    why: format!("is {value}; it must be at least {min} ({meaning})"),
                })
            } else {
                Ok(())
            }
        };
        let n = |v: usize| v as u64;
        at_least("cooldown_s", self.cooldown_s, 1, "seconds")?;
        at_least(
            "max_sources",
            n(self.max_sources),
            1,
            "sources tracked at once",
        )?;
        at_least(
            "scan.distinct_ports",
            n(self.scan.distinct_ports),
            2,
            "one port is any connection",
        )?;
        at_least(
            "scan.distinct_hosts",
            n(self.scan.distinct_hosts),
            2,
            "one host is any connection",
        )?;
        at_least("scan.window_s", self.scan.window_s, 1, "seconds")?;
        at_least(
            "bruteforce.connections",
            n(self.bruteforce.connections),
            2,
            "one connection is any login",
        )?;
        at_least(
            "bruteforce.failed_logins",
            n(self.bruteforce.failed_logins),
            2,
            "one failed login is a typo",
        )?;
        at_least(
            "bruteforce.window_s",
            self.bruteforce.window_s,
            1,
            "seconds",
        )?;
        if self.bruteforce.ports.contains(&0) {
            return Err(ConfigError::Invalid {
                config: CONFIG,
                field: "bruteforce.ports".into(),
                why: "contains 0; TCP ports are 1-65535".into(),
            });
        }
        Ok(())
    }

    pub fn cooldown(&self) -> Duration {
        Duration::from_secs(self.cooldown_s)
    }

    /// How long an idle source is worth remembering: its longest window or cooldown.
    fn retention(&self) -> Duration {
        self.cooldown()
            .max(self.scan.window())
            .max(self.bruteforce.window())
    }
}

/// What is remembered about one source.
#[derive(Debug, Clone)]
struct Tracked {
    last_seen: SystemTime,
    mac: Option<String>,
    /// When each detector (by `Detector::index`) last fired for this source.
    fired: [Option<SystemTime>; 3],
    scan: ScanWindow,
    bruteforce: BruteForceWindow,
}

/// The detectors and what they remember, per source.
#[derive(Debug)]
pub struct Detectors {
    config: DetectorsConfig,
    honeytokens: Honeytokens,
    index: HoneytokenIndex,
    sources: HashMap<Ipv4Addr, Tracked>,
    /// (last seen, source), oldest first: for expiry and eviction.
    by_age: BTreeSet<(SystemTime, Ipv4Addr)>,
}

impl Detectors {
    pub fn new(config: DetectorsConfig, honeytokens: Honeytokens) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Detectors {
            config,
            index: HoneytokenIndex::new(&honeytokens),
            honeytokens,
            sources: HashMap::new(),
            by_age: BTreeSet::new(),
        })
    }

    pub fn config(&self) -> &DetectorsConfig {
        &self.config
    }

    pub fn honeytokens(&self) -> &Honeytokens {
        &self.honeytokens
    }

    /// Replaces the honeytoken set (the twin plan or a persona changed).
    pub fn set_honeytokens(&mut self, honeytokens: Honeytokens) {
        self.index = HoneytokenIndex::new(&honeytokens);
        self.honeytokens = honeytokens;
    }

    /// Never alerts on sources in `network` from now on, and forgets what was
    /// remembered about them.
    pub fn ignore(&mut self, network: Ipv4Network) {
        let ignored: Vec<Ipv4Addr> = self
            .sources
            .keys()
            .copied()
            .filter(|ip| network.contains(*ip))
            .collect();
        for ip in ignored {
            self.forget(ip);
        }
        self.config.ignore.push(network);
    }

    /// Forgets a source: its windows and its cooldowns (so it can alert again at once).
    pub fn forget(&mut self, source: Ipv4Addr) {
        if let Some(tracked) = self.sources.remove(&source) {
            self.by_age.remove(&(tracked.last_seen, source));
        }
    }

    /// Sources remembered now.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Reads one observation; returns the alerts it completes (at most one per detector).
    pub fn observe(&mut self, obs: &Observation) -> Vec<Alert> {
        let source = obs.src_ip();
        let now = obs.time();
        if !self.judges(obs) {
            return Vec::new();
        }
        self.expire(now);
        self.track(source, now, obs.src_mac());

        let Detectors {
            config,
            index,
            sources,
            ..
        } = self;
        let tracked = sources.get_mut(&source).expect("tracked above");
        let cooldown = config.cooldown();
        let mut alerts = Vec::new();
        for detector in Detector::ALL {
            let (enabled, action) = match detector {
                Detector::Scan => (config.scan.enabled, config.scan.action),
                Detector::Honeytoken => (config.honeytoken.enabled, config.honeytoken.action),
                Detector::BruteForce => (config.bruteforce.enabled, config.bruteforce.action),
            };
            let cooling = tracked.fired[detector.index()]
                .is_some_and(|fired| now < fired || within(fired, now, cooldown));
            if !enabled || cooling {
                continue;
            }
            let finding = match detector {
                Detector::Scan => tracked.scan.observe(obs, &config.scan),
                Detector::Honeytoken => index.observe(obs),
                Detector::BruteForce => tracked.bruteforce.observe(obs, &config.bruteforce),
            };
            let Some(Finding { reason, evidence }) = finding else {
                continue;
            };
            tracked.fired[detector.index()] = Some(now);
            // A fired window starts afresh once the cooldown is over.
            match detector {
                Detector::Scan => tracked.scan.clear(),
                Detector::Honeytoken => {}
                Detector::BruteForce => tracked.bruteforce.clear(),
            }
            alerts.push(Alert {
                detector,
                source_mac: tracked.mac.clone(),
                source_ip: source,
                action,
                time: now,
                reason,
                evidence,
            });
        }
        alerts
    }

    /// Whether this observation's source is one to judge at all.
    fn judges(&self, obs: &Observation) -> bool {
        let source = obs.src_ip();
        // 0.0.0.0 is a host probing for an address conflict, not a source.
        if source.is_unspecified() || source.is_broadcast() {
            return false;
        }
        // A gratuitous ARP announces the sender's own address.
        if let Observation::ArpRequest { target_ip, .. } = obs {
            if *target_ip == source {
                return false;
            }
        }
        !self.index.is_decoy_address(source)
            && !self.config.ignore.iter().any(|net| net.contains(source))
    }

    /// Drops sources idle for longer than any window or cooldown.
    fn expire(&mut self, now: SystemTime) {
        let retention = self.config.retention();
        while let Some(&(last_seen, source)) = self.by_age.first() {
            if within(last_seen, now, retention) {
                break;
            }
            self.by_age.pop_first();
            self.sources.remove(&source);
        }
    }

    /// Remembers that `source` was seen at `now`, evicting the least recently
    /// seen source when the table is full.
    fn track(&mut self, source: Ipv4Addr, now: SystemTime, mac: Option<&str>) {
        if let Some(tracked) = self.sources.get_mut(&source) {
            let seen = tracked.last_seen.max(now);
            if seen != tracked.last_seen {
                self.by_age.remove(&(tracked.last_seen, source));
                self.by_age.insert((seen, source));
                tracked.last_seen = seen;
            }
            if let Some(mac) = mac {
                if tracked.mac.as_deref() != Some(mac) {
                    tracked.mac = Some(mac.to_string());
                }
            }
            return;
        }
        while self.sources.len() >= self.config.max_sources {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.sources.remove(&oldest);
        }
        self.by_age.insert((now, source));
        self.sources.insert(
            source,
            Tracked {
                last_seen: now,
                mac: mac.map(String::from),
                fired: [None; 3],
                scan: ScanWindow::default(),
                bruteforce: BruteForceWindow::default(),
            },
        );
    }
}

/// Whether `t` is at most `window` before `now` (a `t` after `now` is within).
fn within(t: SystemTime, now: SystemTime, window: Duration) -> bool {
    now.duration_since(t).map_or(true, |age| age <= window)
}

/// Seconds from `earlier` to `later`, 0 if they are the other way round.
fn secs_between(earlier: SystemTime, later: SystemTime) -> f64 {
    later
        .duration_since(earlier)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn serialize_rfc3339<S: Serializer>(t: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*t))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 66);
    const DECOY: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 99);
    /// 2026-01-01T00:00:00Z, so evidence times read as real dates.
    const EPOCH_S: f64 = 1_767_225_600.0;

    pub fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(EPOCH_S + secs)
    }

    /// A SYN from the attacker.
    pub fn syn(time: f64, dst_ip: Ipv4Addr, dst_port: u16) -> Observation {
        syn_from(time, ATTACKER, dst_ip, dst_port)
    }

    fn syn_from(time: f64, src_ip: Ipv4Addr, dst_ip: Ipv4Addr, dst_port: u16) -> Observation {
        Observation::Syn {
            time: at(time),
            src_mac: "52:54:00:66:66:66".into(),
            src_ip,
            src_port: 40000,
            dst_ip,
            dst_port,
        }
    }

    fn with_decoy(config: DetectorsConfig) -> Detectors {
        Detectors::new(
            config,
            Honeytokens {
                addresses: vec![DECOY],
                ..Honeytokens::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn an_empty_config_is_the_defaults() {
        let config = DetectorsConfig::from_toml("").unwrap();
        assert_eq!(config, DetectorsConfig::default());
        assert_eq!(config.scan.distinct_ports, 20);
        assert_eq!(config.scan.distinct_hosts, 10);
        assert_eq!(config.scan.window_s, 10);
        assert_eq!(config.bruteforce.connections, 10);
        assert_eq!(config.bruteforce.window_s, 30);
        assert!(config.bruteforce.ports.contains(&22));
        assert_eq!(config.cooldown_s, 300);
        assert_eq!(config.max_sources, 65_536);
    }

    #[test]
    fn a_config_overrides_what_it_names() {
        let config = DetectorsConfig::from_toml(
            r#"
            cooldown_s = 60
            ignore = ["10.10.0.250/32", "192.168.77.0/24"]
            [scan]
            distinct_ports = 50
            [honeytoken]
            action = "redirect"
            [bruteforce]
            enabled = false
            ports = [22, 2222]
            "#,
        )
        .unwrap();
        assert_eq!(config.cooldown_s, 60);
        assert_eq!(config.ignore.len(), 2);
        assert_eq!(config.scan.distinct_ports, 50);
        assert_eq!(config.scan.distinct_hosts, 10);
        assert_eq!(config.honeytoken.action, Action::Redirect);
        assert!(!config.bruteforce.enabled);
        assert_eq!(config.bruteforce.ports, vec![22, 2222]);
        assert_eq!(config.bruteforce.connections, 10);
    }

    #[test]
    fn a_bad_config_names_the_field() {
        for (text, says) in [
            ("[scan]\ndistinct_ports = 1\n", "scan.distinct_ports is 1"),
            ("[scan]\nwindow_s = 0\n", "scan.window_s is 0"),
            ("cooldown_s = 0\n", "cooldown_s is 0"),
            ("max_sources = 0\n", "max_sources is 0"),
            (
                "[bruteforce]\nfailed_logins = 0\n",
                "bruteforce.failed_logins",
            ),
            (
                "[bruteforce]\nports = [22, 0]\n",
                "bruteforce.ports contains 0",
            ),
            (
                "[scan]\ndistinct_port = 5\n",
                "unknown field `distinct_port`",
            ),
            ("[scan]\naction = \"block\"\n", "unknown variant `block`"),
            ("ignore = [\"10.10.0.999/32\"]\n", "line 1"),
            ("[honeytokens]\n", "unknown field `honeytokens`"),
            ("[bruteforce]\nwindow_s = -5\n", "invalid value"),
        ] {
            let err = DetectorsConfig::from_toml(text).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("detectors config: "), "{message}");
            assert!(message.contains(says), "{message} lacks {says:?}");
        }
    }

    #[test]
    fn new_refuses_an_invalid_config() {
        let config = DetectorsConfig {
            max_sources: 0,
            ..DetectorsConfig::default()
        };
        assert!(Detectors::new(config, Honeytokens::default()).is_err());
    }

    #[test]
    fn a_detector_fires_once_until_the_cooldown_passes() {
        let mut d = with_decoy(DetectorsConfig::default());
        assert_eq!(d.observe(&syn(0.0, DECOY, 22)).len(), 1);
        assert!(d.observe(&syn(1.0, DECOY, 23)).is_empty());
        // Exactly 300 s later it is still cooling down.
        assert!(d.observe(&syn(300.0, DECOY, 80)).is_empty());
        assert_eq!(d.observe(&syn(300.5, DECOY, 80)).len(), 1);
    }

    #[test]
    fn forgetting_a_source_rearms_its_detectors() {
        let mut d = with_decoy(DetectorsConfig::default());
        assert_eq!(d.observe(&syn(0.0, DECOY, 22)).len(), 1);
        d.forget(ATTACKER);
        assert_eq!(d.tracked_sources(), 0);
        assert_eq!(d.observe(&syn(1.0, DECOY, 22)).len(), 1);
    }

    #[test]
    fn a_cooling_detector_does_not_silence_the_others() {
        let mut d = with_decoy(DetectorsConfig::default());
        // The honeytoken fires on the first decoy SYN ...
        assert_eq!(d.observe(&syn(0.0, DECOY, 1)).len(), 1);
        // ... and the scan detector still counts the ports that follow.
        let fired: Vec<Alert> = (2..=20)
            .flat_map(|p| d.observe(&syn(1.0, DECOY, p)))
            .collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].detector, Detector::Scan);
    }

    #[test]
    fn one_observation_can_complete_two_alerts() {
        let mut d = with_decoy(DetectorsConfig::default());
        for port in 1..20 {
            assert!(d
                .observe(&syn(0.0, Ipv4Addr::new(10, 10, 1, 10), port))
                .is_empty());
        }
        // The twentieth port is on the decoy: a new host, not a port scan ...
        assert_eq!(d.observe(&syn(0.0, DECOY, 20)).len(), 1);
        // ... but the twentieth port of 10.10.1.10 on a decoy port set is both.
        d.forget(ATTACKER);
        d.set_honeytokens(Honeytokens {
            ports: vec![(Ipv4Addr::new(10, 10, 1, 10), 20)],
            ..Honeytokens::default()
        });
        for port in 1..20 {
            assert!(d
                .observe(&syn(1.0, Ipv4Addr::new(10, 10, 1, 10), port))
                .is_empty());
        }
        let alerts = d.observe(&syn(1.0, Ipv4Addr::new(10, 10, 1, 10), 20));
        let detectors: Vec<Detector> = alerts.iter().map(|a| a.detector).collect();
        assert_eq!(detectors, vec![Detector::Scan, Detector::Honeytoken]);
    }

    #[test]
    fn a_disabled_detector_never_fires() {
        let mut config = DetectorsConfig::default();
        config.honeytoken.enabled = false;
        let mut d = with_decoy(config);
        assert!(d.observe(&syn(0.0, DECOY, 22)).is_empty());
    }

    #[test]
    fn the_action_comes_from_the_config() {
        let mut config = DetectorsConfig::default();
        config.honeytoken.action = Action::Redirect;
        let mut d = with_decoy(config);
        assert_eq!(d.observe(&syn(0.0, DECOY, 22))[0].action, Action::Redirect);
    }

    #[test]
    fn ignored_sources_never_alert() {
        let config = DetectorsConfig {
            ignore: vec!["10.10.0.0/24".parse().unwrap()],
            ..DetectorsConfig::default()
        };
        let mut d = with_decoy(config);
        let probe = Ipv4Addr::new(10, 10, 0, 250);
        for port in 1..=100 {
            assert!(d.observe(&syn_from(0.0, probe, DECOY, port)).is_empty());
        }
        assert_eq!(d.tracked_sources(), 0);
    }

    #[test]
    fn ignoring_a_network_later_forgets_its_sources() {
        let mut d = with_decoy(DetectorsConfig::default());
        for port in 1..20 {
            d.observe(&syn(0.0, Ipv4Addr::new(10, 10, 1, 10), port));
        }
        assert_eq!(d.tracked_sources(), 1);
        d.ignore("10.10.1.64/26".parse().unwrap());
        assert_eq!(d.tracked_sources(), 0);
        assert!(d
            .observe(&syn(0.0, Ipv4Addr::new(10, 10, 1, 10), 20))
            .is_empty());
        assert!(d.observe(&syn(0.0, DECOY, 22)).is_empty());
        assert_eq!(d.config().ignore.len(), 1);
    }

    #[test]
    fn address_probes_and_announcements_are_not_sources() {
        let mut d = with_decoy(DetectorsConfig::default());
        // A host checking that the decoy address is free before taking it (RFC 5227).
        let probe = Observation::ArpRequest {
            time: at(0.0),
            src_mac: "52:54:00:00:00:01".into(),
            src_ip: Ipv4Addr::UNSPECIFIED,
            target_ip: DECOY,
        };
        assert!(d.observe(&probe).is_empty());
        let announcement = Observation::ArpRequest {
            time: at(0.0),
            src_mac: "52:54:00:00:00:01".into(),
            src_ip: Ipv4Addr::new(10, 10, 1, 5),
            target_ip: Ipv4Addr::new(10, 10, 1, 5),
        };
        assert!(d.observe(&announcement).is_empty());
        assert_eq!(d.tracked_sources(), 0);
    }

    #[test]
    fn tracked_sources_are_capped_evicting_the_least_recently_seen() {
        let config = DetectorsConfig {
            max_sources: 3,
            ..DetectorsConfig::default()
        };
        let mut d = with_decoy(config);
        let web = Ipv4Addr::new(10, 10, 1, 10);
        let source = |n: u8| Ipv4Addr::new(10, 10, 2, n);
        // Source 1 scans 19 ports (one short), then sources 2-4 appear; 1 was
        // seen least recently and is evicted, so its 20th port starts afresh.
        for port in 1..20 {
            d.observe(&syn_from(0.0, source(1), web, port));
        }
        for n in 2..=4 {
            d.observe(&syn_from(1.0, source(n), web, 80));
            assert!(d.tracked_sources() <= 3);
        }
        assert!(d.observe(&syn_from(2.0, source(1), web, 20)).is_empty());
        assert_eq!(d.tracked_sources(), 3);
        // 2 was now the least recently seen; 3 and 4 stay.
        d.observe(&syn_from(3.0, source(3), web, 81));
        d.observe(&syn_from(3.0, source(5), web, 80));
        assert_eq!(d.tracked_sources(), 3);
        assert!(d.sources.contains_key(&source(3)));
        assert!(!d.sources.contains_key(&source(4)));
    }

    #[test]
    fn many_sources_stay_within_the_cap() {
        let config = DetectorsConfig {
            max_sources: 1000,
            ..DetectorsConfig::default()
        };
        let mut d = with_decoy(config);
        for i in 0..20_000u32 {
            let src = Ipv4Addr::from(0x0a14_0000 + i);
            d.observe(&syn_from(0.001 * f64::from(i), src, DECOY, 80));
        }
        assert_eq!(d.tracked_sources(), 1000);
        assert_eq!(d.by_age.len(), 1000);
    }

    #[test]
    fn idle_sources_are_dropped_after_the_longest_window_or_cooldown() {
        let mut d = with_decoy(DetectorsConfig::default());
        d.observe(&syn_from(0.0, Ipv4Addr::new(10, 10, 2, 1), DECOY, 80));
        d.observe(&syn_from(100.0, Ipv4Addr::new(10, 10, 2, 2), DECOY, 80));
        assert_eq!(d.tracked_sources(), 2);
        // At 300 s the first is still cooling down, so it is kept.
        d.observe(&syn_from(300.0, Ipv4Addr::new(10, 10, 2, 3), DECOY, 80));
        assert_eq!(d.tracked_sources(), 3);
        d.observe(&syn_from(300.5, Ipv4Addr::new(10, 10, 2, 3), DECOY, 80));
        assert_eq!(d.tracked_sources(), 2);
        assert!(!d.sources.contains_key(&Ipv4Addr::new(10, 10, 2, 1)));
    }

    #[test]
    fn observations_out_of_order_do_not_confuse_the_age_index() {
        let mut d = with_decoy(DetectorsConfig::default());
        d.observe(&syn(10.0, Ipv4Addr::new(10, 10, 1, 10), 80));
        d.observe(&syn(5.0, Ipv4Addr::new(10, 10, 1, 10), 81));
        assert_eq!(d.by_age.len(), 1);
        assert_eq!(d.sources[&ATTACKER].last_seen, at(10.0));
        d.forget(ATTACKER);
        assert!(d.by_age.is_empty());
    }

    #[test]
    fn an_alert_serializes_for_the_api_and_sinks() {
        let mut d = with_decoy(DetectorsConfig::default());
        let alert = d.observe(&syn(1.5, DECOY, 445)).remove(0);
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(
            json,
            json!({
                "detector": "honeytoken",
                "source_mac": "52:54:00:66:66:66",
                "source_ip": "10.10.1.66",
                "action": "alert",
                "time": "2026-01-01T00:00:01.500Z",
                "reason": "connected to decoy address 10.10.1.99 (port 445)",
                "evidence": {"kind": "address", "address": "10.10.1.99", "port": 445, "via": "syn"},
            })
        );
        assert_eq!(
            serde_json::to_value(Detector::BruteForce).unwrap(),
            "bruteforce"
        );
        assert_eq!(Detector::BruteForce.name(), "bruteforce");
    }

    #[test]
    fn a_login_alert_uses_the_mac_last_seen_for_its_source() {
        let mut config = DetectorsConfig::default();
        config.bruteforce.failed_logins = 2;
        let mut d = with_decoy(config);
        d.observe(&syn(0.0, Ipv4Addr::new(10, 10, 1, 10), 80));
        let failed = |time: f64| Observation::Login {
            time: at(time),
            src_ip: ATTACKER,
            twin_host: "web01".into(),
            protocol: "ssh".into(),
            user: "root".into(),
            password: Some("toor".into()),
            success: false,
        };
        assert!(d.observe(&failed(1.0)).is_empty());
        let alerts = d.observe(&failed(2.0));
        assert_eq!(alerts[0].source_mac.as_deref(), Some("52:54:00:66:66:66"));
    }
}
