//! The host side of a QEMU guest's event channel (`channel`) as a process:
//! `gemelo-decoy relay host`, one per guest, started by the QEMU backend
//! once the domain runs.
//!
//! It runs in a session of its own (`setsid -f`), re-parented away from the
//! controller, so a controller that stops leaves it running with its guest,
//! and the restarted controller (which adopts the twin and binds the same
//! event socket path) gets its events again. It writes its pid file
//! (`relay.pid` in the host dir) once it holds the channel; the backend
//! then records it with its start time (`relay.json`), so that `running`
//! and `stop` never mistake a recycled pid for it. It ends by itself when
//! its guest does (QEMU closes the channel), and `stop` ends it when the
//! host is removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::daemon::Started;
use crate::host::system::{proc_id, stop_all};

use super::channel::CHANNEL_FILE;

/// How long the relay may take to hold the channel.
const START_WAIT: Duration = Duration::from_secs(25);

fn pidfile(dir: &Path) -> PathBuf {
    dir.join("relay.pid")
}

fn record(dir: &Path) -> PathBuf {
    dir.join("relay.json")
}

pub fn log(dir: &Path) -> PathBuf {
    dir.join("relay.log")
}

/// The relay's command line for the guest whose host dir is `dir`.
pub fn argv(exe: &Path, dir: &Path, twin_host: &str, events: &Path) -> Vec<String> {
    let p = |p: &Path| p.display().to_string();
    vec![
        "setsid".into(),
        "-f".into(),
        p(exe),
        "relay".into(),
        "host".into(),
        "--channel".into(),
        p(&dir.join(CHANNEL_FILE)),
        "--twin-host".into(),
        twin_host.into(),
        "--events".into(),
        p(events),
        "--pidfile".into(),
        p(&pidfile(dir)),
    ]
}

/// Starts the relay of the guest `twin_host` (host dir `dir`, its domain
/// running) toward the controller's socket `events`; returns once it holds
/// the channel.
pub fn start(exe: &Path, dir: &Path, twin_host: &str, events: &Path) -> Result<Started, String> {
    let (pid_path, log_path) = (pidfile(dir), log(dir));
    let _ = fs::remove_file(&pid_path);
    let _ = fs::remove_file(record(dir));
    let out = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let argv = argv(exe, dir, twin_host, events);
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if !status.success() {
        return Err(format!("{} exited with {status}", argv.join(" ")));
    }
    let deadline = Instant::now() + START_WAIT;
    let tail = || {
        fs::read_to_string(&log_path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    loop {
        let pid = fs::read_to_string(&pid_path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let started = Started {
                pid,
                start: proc_id(pid).map(|p| p.start),
                log: log_path.clone(),
            };
            if !started.alive() {
                return Err(format!("it exited at once: {}", tail()));
            }
            let json = serde_json::to_string(&started).expect("a record serializes");
            fs::write(record(dir), json).map_err(|e| format!("{}: {e}", dir.display()))?;
            return Ok(started);
        }
        let said = tail();
        // It failed (an error, or a gemelo-decoy without relays) or hangs.
        if said.contains("gemelo-decoy:") || said.contains("usage:") || Instant::now() > deadline {
            return Err(format!(
                "it did not open the channel within {} s: {said}",
                START_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The relay of the host dir `dir` while it runs, or why it does not.
pub fn running(dir: &Path) -> Result<Started, String> {
    let r: Started = fs::read_to_string(record(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| format!("no event relay was recorded in {}", dir.display()))?;
    if r.alive() {
        Ok(r)
    } else {
        Err(format!(
            "its event relay (pid {}) is not running: its decoy events are lost until the host is rebuilt; see {}",
            r.pid,
            r.log.display()
        ))
    }
}

/// Stops the relay of the host dir `dir`, if it runs.
pub fn stop(dir: &Path) {
    if let Ok(r) = running(dir) {
        let still = |pid: u32| {
            pid == r.pid && proc_id(pid).is_some_and(|p| r.start.is_none_or(|s| s == p.start))
        };
        stop_all(&[r.pid], still, Duration::from_secs(2));
    }
    let _ = fs::remove_file(record(dir));
    let _ = fs::remove_file(pidfile(dir));
}

/// Stops the relay of every host dir under `hosts` (the twin's `hosts/`).
pub fn stop_all_in(hosts: &Path) {
    let Ok(entries) = fs::read_dir(hosts) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().join("relay.json").exists() {
            stop(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_is_its_own_session_and_names_its_guest() {
        let a = argv(
            Path::new("/work/gemelo/target/debug/gemelo-decoy"),
            Path::new("/run/gemelo/twin/hosts/vm1"),
            "vm1",
            Path::new("/var/lib/gemelo/events.sock"),
        );
        assert_eq!(
            a.join(" "),
            "setsid -f /work/gemelo/target/debug/gemelo-decoy relay host \
             --channel /run/gemelo/twin/hosts/vm1/events.channel --twin-host vm1 \
             --events /var/lib/gemelo/events.sock --pidfile /run/gemelo/twin/hosts/vm1/relay.pid"
        );
    }

    #[test]
    fn a_dir_without_a_relay_says_so_and_stops_nothing() {
        let dir = std::env::temp_dir().join(format!("gm-relay-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(running(&dir).unwrap_err().contains("no event relay"));
        // A record whose process is gone (no process has pid u32::MAX).
        let gone = Started {
            pid: u32::MAX,
            start: Some(1),
            log: dir.join("relay.log"),
        };
        fs::write(record(&dir), serde_json::to_string(&gone).unwrap()).unwrap();
        assert!(running(&dir).unwrap_err().contains("is not running"));
        stop(&dir);
        assert!(!record(&dir).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
