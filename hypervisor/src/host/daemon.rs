//! Starting a real daemon inside a host, and seeing what it listens on.
//!
//! Each daemon runs in the foreground (so the pid we record is the daemon's),
//! as its own session leader re-parented away from the caller (`setsid -f`),
//! inside the host's network and UTS namespaces, with a private `/run` (the
//! host dir's `run/`) because sshd, lldpd and inetd use fixed `/run` paths that
//! would collide between hosts and with the machine's own. The host dir stays
//! visible at its real path, so every config names real paths. Host dirs
//! therefore live under `/run`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::system::{create_dir, describe, io_err, proc_id, run, run_args};
use super::HostError;

/// Runs as `sh -c LAUNCH gemelo-launch HOSTDIR NAME ARGV...` in the host's
/// namespaces: records its pid (which `exec` hands to the daemon), gives the
/// daemon a private /run, and becomes the daemon.
const LAUNCH: &str = r#"set -e
dir=$1 name=$2; shift 2
echo $$ > "$dir/pids/$name.pid"
# $dir lies under /run: show it again at its own path inside the new /run.
mount --bind "$dir" "$dir/run${dir#/run}"
mount --rbind "$dir/run" /run
exec "$@"
"#;

/// Where a daemon runs: a host's namespaces and its dir (under `/run`).
#[derive(Debug, Clone, Copy)]
pub struct HostPlace<'a> {
    pub namespace: &'a str,
    /// Its persistent UTS namespace file (`nsenter --uts=PATH`).
    pub uts: &'a Path,
    /// Configs, pid files (`pids/`), logs and the private `run/`.
    pub dir: &'a Path,
}

/// A daemon as started: enough to find it again and to stop only it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub pid: u32,
    /// Start time (clock ticks since boot) when it was recorded: a recycled
    /// pid is then not mistaken for it.
    pub start: Option<u64>,
    pub log: PathBuf,
}

impl Started {
    /// Still the process we started (not a zombie, not a recycled pid).
    pub fn alive(&self) -> bool {
        matches!(proc_id(self.pid), Some(p) if self.start.is_none_or(|s| s == p.start))
    }
}

/// Starts `argv` as daemon `name` (unique per host: names its pid file and
/// log `DIR/NAME.log`) in `place`; returns once its pid is known.
pub fn launch(
    place: HostPlace<'_>,
    name: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Result<Started, HostError> {
    let dir = place.dir;
    create_dir(&dir.join("pids"))?;
    let under_run = dir.strip_prefix("/run").expect("host dirs live under /run");
    let inner_self = dir.join("run").join(under_run);
    create_dir(&inner_self)?;
    let pidfile = dir.join("pids").join(format!("{name}.pid"));
    let _ = std::fs::remove_file(&pidfile);
    let log_path = dir.join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(io_err(&log_path))?;
    let log2 = log.try_clone().map_err(io_err(&log_path))?;
    let mut cmd = Command::new("setsid");
    cmd.arg("-f")
        .args(["ip", "netns", "exec", place.namespace, "nsenter"])
        .arg(format!("--uts={}", place.uts.display()))
        .args(["--", "sh", "-c", LAUNCH, "gemelo-launch"])
        .arg(dir)
        .arg(name)
        .args(argv)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(log)
        .stderr(log2);
    run(&mut cmd)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        if Instant::now() > deadline {
            return Err(HostError::NoPid {
                daemon: name.to_owned(),
                pidfile,
                log: log_path,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Started {
        pid,
        start: proc_id(pid).map(|p| p.start),
        log: log_path,
    })
}

/// Host keys take a moment (RSA ~0.5 s): start them for every SSH host at
/// once (`DIR/ssh_host_{rsa,ecdsa,ed25519}_key`), then `wait_children`.
pub fn start_ssh_keygen(dir: &Path) -> Result<Vec<(String, Child)>, HostError> {
    let mut children = Vec::new();
    for (kind, bits) in [("rsa", Some("3072")), ("ecdsa", None), ("ed25519", None)] {
        let key = dir.join(format!("ssh_host_{kind}_key"));
        // ssh-keygen asks before overwriting (and, with no terminal, fails).
        for stale in [key.clone(), key.with_extension("pub")] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(HostError::Io {
                        path: stale,
                        source: e,
                    })
                }
                _ => {}
            }
        }
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
            .arg(&key);
        if let Some(bits) = bits {
            cmd.args(["-b", bits]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HostError::Spawn {
                command: describe(&cmd),
                source,
            })?;
        children.push((describe(&cmd), child));
    }
    Ok(children)
}

pub fn wait_children(children: Vec<(String, Child)>) -> Result<(), HostError> {
    for (command, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|source| HostError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(HostError::Command {
                command,
                status: out.status.to_string(),
                stderr: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                )
                .trim()
                .to_owned(),
            });
        }
    }
    Ok(())
}

/// Sockets listening in a namespace, as `ss -Hltnu` reports them: ("tcp"|"udp", port).
pub fn listening(namespace: &str) -> Result<Vec<(&'static str, u16)>, HostError> {
    let out = run_args("ip", &["netns", "exec", namespace, "ss", "-Hltnu"])?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let proto = match *f.first()? {
                "tcp" => "tcp",
                "udp" => "udp",
                _ => return None,
            };
            let port = f.get(4)?.rsplit_once(':')?.1.parse().ok()?;
            Some((proto, port))
        })
        .collect())
}

/// The last lines of a daemon's log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    if lines.is_empty() {
        "log is empty".into()
    } else {
        format!(
            "last log lines: {}",
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }
}
