//! Decoy services: what runs inside a twin host so that a client sees what
//! discovery saw on the production host.
//!
//! DESIGN.md ("Fidelity"): where the twin can run the very daemon production
//! runs, it does (`daemon`: sshd, lighttpd, vsftpd, telnetd under inetd, snmpd,
//! mosquitto, each configured from the captured `DecoySpec::details`), and
//! gemelo adds the persona (a recording login shell) and the event stream.
//! Everything else is emulated in Rust (`emulate`: Modbus/TCP, HTTP, a banner
//! decoy for any talker) by `gemelo decoy --spec FILE`, answering byte for byte
//! what was captured. `launches` is pure: it only says what to start and which
//! files to place; a backend (netns, libvirt) starts them with a private `/run`
//! and the host dir visible at its real path. Every attacker interaction is an
//! event (`events`) sent as a JSON datagram to the twin's event socket; login
//! attempts on the real login daemons reach it through PAM (`login`).

pub mod access_log;
pub mod daemon;
pub mod emulate;
pub mod events;
pub mod login;
pub mod persona;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{DecoyMode, DecoySpec, TwinHost};

pub use emulate::{run_decoy, run_decoy_at};
pub use events::EventSink;

pub use crate::launch::Launch;

#[derive(Debug, thiserror::Error)]
pub enum DecoyError {
    #[error("cannot read decoy spec file {path} (the hypervisor writes it next to the host's other files)")]
    SpecIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a decoy spec (written by the hypervisor's `decoy::launches`)")]
    SpecParse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("decoy for {service} on port {port}: {detail}")]
    Service {
        service: String,
        port: u16,
        detail: String,
    },
    #[error("cannot listen on {proto} port {port} (is another service on it, or is the port privileged and we are not root?)")]
    Listen {
        proto: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot start the decoy runtime")]
    Runtime(#[source] std::io::Error),
}

/// The spec file `gemelo decoy --spec` reads: the services it emulates for one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoyFile {
    pub twin_host: String,
    pub hostname: String,
    pub services: Vec<DecoySpec>,
}

/// The file name of the emulation's spec inside the host dir.
pub const SPEC_FILE: &str = "decoy-spec.json";

/// Which real daemons this machine has (so a `Daemon` spec can run for real).
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// `OpenSSH_9.2p1` as this sshd announces it (without the Debian comment).
    pub sshd_software: Option<String>,
    pub lighttpd: bool,
    pub vsftpd: bool,
    pub telnetd: bool,
    pub snmpd: bool,
    pub mosquitto: bool,
}

impl Installed {
    /// Looks at this machine's Debian daemons.
    pub fn detect() -> Installed {
        let has = |p: &str| Path::new(p).exists();
        let sshd_software = if has(daemon::ssh::SSHD) {
            // `ssh -V` prints the same release as sshd (one source package).
            std::process::Command::new("ssh")
                .arg("-V")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stderr)
                        .split([' ', ','])
                        .next()
                        .map(str::to_string)
                })
                .filter(|s| s.starts_with("OpenSSH_"))
        } else {
            None
        };
        Installed {
            sshd_software,
            lighttpd: has(daemon::http::LIGHTTPD),
            vsftpd: has(daemon::ftp::VSFTPD),
            telnetd: has(daemon::telnet::INETD) && has(daemon::telnet::TELNETD),
            snmpd: has(daemon::snmp::SNMPD),
            mosquitto: has(daemon::mqtt::MOSQUITTO) && has(daemon::mqtt::MOSQUITTO_PUB),
        }
    }
}

/// Paths and names every generator needs.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub host: &'a TwinHost,
    /// The host's private directory (absolute).
    pub dir: &'a Path,
    pub gemelo_exe: &'a Path,
    pub events: &'a Path,
}

impl Context<'_> {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    pub fn p(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
}

/// For each service of `host`, the process(es) that provide it inside the twin
/// host, with every file they need placed under `dir`.
pub fn launches(
    host: &TwinHost,
    dir: &Path,
    gemelo_exe: &Path,
    events: &Path,
) -> Result<Vec<Launch>, DecoyError> {
    launches_with(host, dir, gemelo_exe, events, &Installed::detect())
}

/// `launches` for a given set of installed daemons (pure: no I/O).
pub fn launches_with(
    host: &TwinHost,
    dir: &Path,
    gemelo_exe: &Path,
    events: &Path,
    installed: &Installed,
) -> Result<Vec<Launch>, DecoyError> {
    let cx = Context {
        host,
        dir,
        gemelo_exe,
        events,
    };
    let mut out = Vec::new();
    let mut emulated = Vec::new();
    let mut persona_written = false;
    for spec in &host.services {
        let real = match &spec.mode {
            DecoyMode::Daemon { product } => daemon::for_spec(&cx, spec, product, installed)?,
            DecoyMode::Emulated => None,
        };
        match real {
            Some(mut launched) => {
                let needs_persona = launched
                    .iter()
                    .any(|l| l.name == "sshd" || l.name == "inetd");
                if needs_persona && !persona_written {
                    // The persona's files (passwd/shadow overlays, shell, home)
                    // go with the first login daemon.
                    if let Some(first) = launched.first_mut() {
                        first.files.extend(persona::files(&cx));
                    }
                    persona_written = true;
                }
                out.append(&mut launched);
            }
            None if emulate::can_emulate(spec) => emulated.push(spec.clone()),
            None => {}
        }
    }
    if !emulated.is_empty() {
        let file = DecoyFile {
            twin_host: host.name.clone(),
            hostname: host.hostname.clone(),
            services: emulated,
        };
        let spec_path = cx.path(SPEC_FILE);
        let json = serde_json::to_vec_pretty(&file).map_err(|e| DecoyError::SpecParse {
            path: spec_path.clone(),
            source: e,
        })?;
        out.push(Launch {
            name: "decoy".into(),
            argv: vec![
                gemelo_exe.display().to_string(),
                "decoy".into(),
                "--spec".into(),
                spec_path.display().to_string(),
                "--events".into(),
                events.display().to_string(),
            ],
            env: vec![],
            files: vec![(spec_path, json, 0o644)],
            listens: file
                .services
                .iter()
                .map(|s| (s.proto.clone(), s.port))
                .collect(),
        });
    }
    Ok(out)
}

/// `details[key]` as a string.
pub(crate) fn s<'a>(details: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    details.get(key).and_then(|v| v.as_str())
}

/// `details[key]` as a list of strings (missing or malformed → empty).
pub(crate) fn list(details: &serde_json::Value, key: &str) -> Vec<String> {
    details
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Lower-case hex → bytes (None if malformed).
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Text for a one-line config value: no line breaks, no NULs.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\0' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Single-quotes `s` for `sh`.
pub(crate) fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Backend, TwinInterface};
    use serde_json::Value;

    pub(crate) fn host_with(name: &str, port: u16, product: &str, details: Value) -> TwinHost {
        TwinHost {
            name: "web1".into(),
            mirrors: vec!["02:00:00:00:00:01".into()],
            hostname: "web1".into(),
            interfaces: vec![TwinInterface {
                mac: "02:00:00:00:00:01".into(),
                ips: vec!["10.10.1.10/24".into()],
                segment: "office".into(),
                vlan: None,
            }],
            gateway: None,
            ip_forward: false,
            backend: Backend::Netns,
            services: vec![DecoySpec {
                port,
                proto: "tcp".into(),
                name: name.into(),
                product: Some(product.into()),
                version: None,
                banner: None,
                mode: DecoyMode::Daemon {
                    product: product.into(),
                },
                details,
            }],
            honeytoken: false,
        }
    }

    pub(crate) fn context_for(host: &TwinHost) -> Context<'_> {
        Context {
            host,
            dir: Path::new("/tmp/gemelo-x/web1"),
            gemelo_exe: Path::new("/usr/bin/gemelo"),
            events: Path::new("/run/gemelo/twin/events.sock"),
        }
    }

    #[test]
    fn daemons_when_installed_emulation_otherwise() {
        let mut host = host_with("ssh", 22, "OpenSSH", daemon::ssh::tests::openssh_details());
        let mut plc = host.services[0].clone();
        plc.port = 502;
        plc.name = "modbus".into();
        plc.mode = DecoyMode::Emulated;
        plc.details = emulate::modbus::tests::plc_details();
        host.services.push(plc);
        let mut web = host.services[0].clone();
        web.port = 80;
        web.name = "http".into();
        web.mode = DecoyMode::Daemon {
            product: "lighttpd".into(),
        };
        web.details = emulate::http::tests::lighttpd_details();
        host.services.push(web);
        let dir = Path::new("/tmp/gemelo-x/web1");
        let exe = Path::new("/usr/bin/gemelo");
        let ev = Path::new("/run/gemelo/twin/events.sock");
        let all = Installed {
            sshd_software: Some("OpenSSH_9.2p1".into()),
            lighttpd: true,
            ..Installed::default()
        };
        let l = launches_with(&host, dir, exe, ev, &all).unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["sshd", "lighttpd", "decoy"]);
        assert!(l[0]
            .files
            .iter()
            .any(|(p, _, m)| p.ends_with("persona/shell") && *m == 0o755));
        let decoy = &l[2];
        assert_eq!(
            decoy.argv,
            [
                "/usr/bin/gemelo",
                "decoy",
                "--spec",
                "/tmp/gemelo-x/web1/decoy-spec.json",
                "--events",
                "/run/gemelo/twin/events.sock"
            ]
        );
        assert_eq!(decoy.listens, vec![("tcp".to_string(), 502)]);
        let file: DecoyFile = serde_json::from_slice(&decoy.files[0].1).unwrap();
        assert_eq!(file.twin_host, "web1");
        assert_eq!(file.services.len(), 1);
        // Nothing installed: everything is emulated by one process.
        let l = launches_with(&host, dir, exe, ev, &Installed::default()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            l[0].listens,
            vec![
                ("tcp".to_string(), 22),
                ("tcp".to_string(), 502),
                ("tcp".to_string(), 80)
            ]
        );
    }
}
