//! Shared helpers of gemelo's end-to-end tests.
//!
//! Lab tests need root and Open vSwitch, must not run at the same time as
//! each other (they share `gm-prod` and `/run/gemelo/lab`), and must leave
//! nothing behind even when they fail: `lab_test()` gives a skip reason or a
//! `LabSession` that holds the lock and tears the lab down when dropped.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use gemelo::lab::{self, LabStatus};

/// Serialises every test that builds a lab, across test binaries.
pub const TEST_LOCK: &str = gemelo::lab::USERS_LOCK;

/// Why lab tests cannot run here, if they cannot.
pub fn lab_skip_reason() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        return Some("lab tests need root (network namespaces, mounts, Open vSwitch)".into());
    }
    for tool in [
        "ovs-vswitchd",
        "ovsdb-server",
        "ovs-vsctl",
        "ovs-ofctl",
        "ip",
        "nsenter",
        "unshare",
        "setsid",
        "ss",
    ] {
        if !in_path(tool) {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .any(|d| d.join(tool).is_file())
        })
        .unwrap_or(false)
}

/// Skip the calling test (with the reason printed) unless lab tests can run;
/// otherwise hold the lab lock for the rest of the test.
#[macro_export]
macro_rules! lab_session_or_skip {
    () => {
        match $crate::lab_skip_reason() {
            Some(reason) => {
                eprintln!("skipping: {reason}");
                return;
            }
            None => $crate::LabSession::start(),
        }
    };
}

/// Holds the lab lock; on drop (pass or fail) removes whatever lab exists.
pub struct LabSession {
    _lock: File,
}

impl LabSession {
    pub fn start() -> LabSession {
        std::fs::create_dir_all("/run/gemelo").expect("create /run/gemelo");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(TEST_LOCK)
            .expect("open the test lock");
        lock.lock().expect("lock the test lock");
        LabSession { _lock: lock }
    }
}

impl Drop for LabSession {
    fn drop(&mut self) {
        if let Err(e) = lab::down() {
            eprintln!("lab down after the test failed: {e}");
        }
    }
}

/// A topology shipped in `topologies/`.
pub fn topology(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../topologies")
        .join(format!("{name}.toml"))
}

/// Runs `argv` inside a lab host; its stdout, or an error with its stderr.
pub fn in_host(status: &LabStatus, host: &str, argv: &[&str]) -> Result<String> {
    let cmd = lab::host_command(status, host, argv)?;
    output(cmd).with_context(|| format!("on host {host}"))
}

/// Runs `argv` in the production OVS namespace with OVS_RUNDIR set.
pub fn in_prod(status: &LabStatus, argv: &[&str]) -> Result<String> {
    output(lab::prod_command(status, argv))
}

fn output(mut cmd: Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// With no controller the bridges (fail-mode secure) forward nothing: give
/// each one a plain learning switch so hosts can talk.
pub fn install_normal_flows(status: &LabStatus) -> Result<()> {
    for sw in &status.switches {
        in_prod(
            status,
            &[
                "ovs-ofctl",
                "-O",
                "OpenFlow13",
                "add-flow",
                &sw.mgmt,
                "priority=0,actions=NORMAL",
            ],
        )?;
    }
    Ok(())
}

/// (proto, port) of every listening socket in a host, the ground truth from `ss`.
pub fn listening(status: &LabStatus, host: &str) -> Result<Vec<(String, u16)>> {
    let out = in_host(status, host, &["ss", "-Hltnu"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(4)?.rsplit_once(':')?.1.parse().ok()?;
            Some((f.first()?.to_string(), port))
        })
        .collect())
}

/// Asserts every declared service of every host listens.
pub fn assert_services_listen(status: &LabStatus) -> Result<()> {
    for h in &status.hosts {
        let open = listening(status, &h.name)?;
        for s in &h.services {
            let want = (s.proto.to_string(), s.port);
            if !open.contains(&want) {
                bail!(
                    "host {}: {} ({}/{}) does not listen; open: {open:?}",
                    h.name,
                    s.name,
                    s.proto,
                    s.port
                );
            }
        }
    }
    Ok(())
}

/// Pids in the OVS instance's pid files.
pub fn ovs_pids(status: &LabStatus) -> Vec<u32> {
    ["ovsdb-server.pid", "ovs-vswitchd.pid"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(status.rundir.join(f)).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Alive and not a zombie (PID 1 here does not reap orphans).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

/// Namespaces on the machine whose names start with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Asserts that nothing of a lab is left: namespaces, OVS daemons, run state.
pub fn assert_lab_gone(lab_name: &str, ovs: &[u32]) -> Result<()> {
    let left: Vec<String> = namespaces_with_prefix("gm-prod")
        .into_iter()
        .chain(namespaces_with_prefix(&format!("gm-{lab_name}-")))
        .collect();
    if !left.is_empty() {
        bail!("namespaces left after down: {left:?}");
    }
    if let Some(pid) = ovs.iter().find(|p| pid_alive(**p)) {
        bail!("OVS pid {pid} still alive after down");
    }
    if Path::new(lab::LAB_DIR).exists() {
        bail!("{} still exists after down", lab::LAB_DIR);
    }
    if lab::status()?.is_some() {
        bail!("status() still reports a lab after down");
    }
    Ok(())
}

pub mod capture;
pub mod controller;

/// Runs `argv` in the lab's probe namespace (gemelo's own port on the fabric).
pub fn in_probe(status: &LabStatus, argv: &[&str]) -> Result<String> {
    output(lab::probe_command(status, argv)).context("in the probe namespace")
}

/// Run state of the twin the tests build (the default).
pub const TWIN_RUN_DIR: &str = gemelo_hypervisor::fabric::DEFAULT_RUN_DIR;

/// Skip the calling test (with the reason printed) unless twin tests can
/// run; otherwise hold the test lock and clear any twin left by a crash.
#[macro_export]
macro_rules! twin_session_or_skip {
    () => {
        match $crate::lab_skip_reason() {
            Some(reason) => {
                eprintln!("skipping: {reason}");
                return;
            }
            None => $crate::TwinSession::start(),
        }
    };
}

/// Holds the test lock (twin tests share `gm-twin` and `/run/gemelo/twin`);
/// removes the twin when created (leftovers of a crashed run) and on drop.
pub struct TwinSession {
    _lab: LabSession,
}

impl TwinSession {
    pub fn start() -> TwinSession {
        let lab = LabSession::start();
        gemelo_hypervisor::twin::destroy(Path::new(TWIN_RUN_DIR)).expect("clear a leftover twin");
        TwinSession { _lab: lab }
    }
}

impl Drop for TwinSession {
    fn drop(&mut self) {
        if let Err(e) = gemelo_hypervisor::twin::destroy(Path::new(TWIN_RUN_DIR)) {
            eprintln!("twin destroy after the test failed: {e}");
        }
    }
}
pub mod truth;
