//! Running the machine's tools (`ip`, `ovs-vsctl`, the `ovs-scripts/`) and
//! looking at processes, with errors that say which command failed and why.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::HostError;

/// The operator scripts, embedded so the lab runs exactly what operators run.
pub const OVS_INSTANCE_SH: &str = include_str!("../../../ovs-scripts/ovs-instance.sh");
pub const ATTACH_CONTROLLER_SH: &str = include_str!("../../../ovs-scripts/attach-controller.sh");
pub const ADD_PROBE_PORT_SH: &str = include_str!("../../../ovs-scripts/add-probe-port.sh");

/// How a command looks in an error message.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(char::is_whitespace) || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command to completion; its stdout on success, else an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String, HostError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HostError::Spawn {
            command: describe(cmd),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `run(Command::new(program).args(args))`.
pub fn run_args<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Result<String, HostError> {
    run(Command::new(program).args(args))
}

/// Runs `cmd` with `input` on its stdin; its stdout on success, else an error
/// naming it `command` with its stderr.
fn run_with_stdin(cmd: &mut Command, command: String, input: &[u8]) -> Result<String, HostError> {
    let spawn_err = |source| HostError::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .map_err(spawn_err)?;
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs an embedded bash script (`bash -s -- ARGS` with the script on stdin).
pub fn run_script(name: &str, script: &str, args: &[&str]) -> Result<String, HostError> {
    let mut cmd = Command::new("bash");
    cmd.arg("-s").arg("--").args(args);
    let command = format!("{name} {}", args.join(" "));
    run_with_stdin(&mut cmd, command, script.as_bytes())
}

/// `ovs-vsctl` against the instance whose run dir is `rundir`.
pub fn ovs_vsctl(rundir: &Path, args: &[String]) -> Result<String, HostError> {
    run(Command::new("ovs-vsctl")
        .env("OVS_RUNDIR", rundir)
        .arg(format!("--db=unix:{}", rundir.join("db.sock").display()))
        .arg("--timeout=20")
        .args(args))
}

pub fn namespaces() -> Result<Vec<String>, HostError> {
    let out = run_args("ip", &["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

pub fn write_file(path: &Path, contents: &str) -> Result<(), HostError> {
    fs::write(path, contents).map_err(|source| HostError::Io {
        path: path.to_owned(),
        source,
    })
}

pub fn create_dir(path: &Path) -> Result<(), HostError> {
    fs::create_dir_all(path).map_err(|source| HostError::Io {
        path: path.to_owned(),
        source,
    })
}

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HostError {
    let path = path.into();
    move |source| HostError::Io { path, source }
}

/// A process as seen in /proc: enough to be sure a pid is still the one we started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start: u64,
}

/// The process `pid`, if it is alive (zombies count as gone: PID 1 here does
/// not reap, so a stopped daemon may linger as one).
pub fn proc_id(pid: u32) -> Option<ProcId> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    // rest starts at field 3 (state); starttime is field 22.
    let start = fields.get(19)?.parse().ok()?;
    Some(ProcId { pid, start })
}

/// (device, inode) of a network namespace file, for comparing namespaces.
fn ns_key(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Whether `pid` lives in the named network namespace (what `ip netns identify` tells).
pub fn in_namespace(pid: u32, namespace: &str) -> bool {
    match (
        ns_key(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_key(&Path::new("/run/netns").join(namespace)),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Sends `signal` to a process group we created (each daemon leads its own
/// session) or, failing that, to the process.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; pids come from our run state and
    // were checked against /proc by the caller.
    unsafe {
        if libc::kill(-(pid as i32), signal) != 0 {
            libc::kill(pid as i32, signal);
        }
    }
}

/// `ip [-n NS] -batch -` with one command per line.
pub fn ip_batch(namespace: Option<&str>, lines: &[String]) -> Result<(), HostError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("ip");
    if let Some(ns) = namespace {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"]);
    let command = format!("{} <<< {:?}", describe(&cmd), lines.join("; "));
    run_with_stdin(
        &mut cmd,
        command,
        format!("{}\n", lines.join("\n")).as_bytes(),
    )?;
    Ok(())
}

pub fn mount_points() -> BTreeSet<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .collect()
}

/// Signals `pids`, waits up to `grace` for them to go, then kills the rest.
pub fn stop_all(pids: &[u32], is_ours: impl Fn(u32) -> bool, grace: Duration) {
    let live: Vec<u32> = pids.iter().copied().filter(|p| is_ours(*p)).collect();
    for &pid in &live {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| proc_id(*p).is_some()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &live {
        if proc_id(pid).is_some() && is_ours(pid) {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// Makes `dir` a private mount point (as ip-netns does for /run/netns), so
/// persistent namespaces bound under it do not propagate elsewhere.
pub fn private_mount_dir(dir: &Path) -> Result<(), HostError> {
    create_dir(dir)?;
    let d = dir.display().to_string();
    if !mount_points().contains(&d) {
        run_args("mount", &["--bind", &d, &d])?;
    }
    run_args("mount", &["--make-private", &d])?;
    Ok(())
}

/// A persistent UTS namespace bound at `path` (under a private mount dir),
/// with `hostname` set inside it: never the machine's own hostname.
pub fn create_uts(path: &Path, hostname: &str) -> Result<(), HostError> {
    super::ns::on_own_thread(|| super::ns::create_uts(path, hostname))
}

/// Turns transmit checksum offload off on `ifaces` inside `namespace`: the
/// userspace datapath of OVS 3.1 drops, instead of tunneling, packets that
/// still carry offload flags ("Tunneling packets with HW offload flags is not
/// supported"), so every host whose packets may cross the GRE tunnel computes
/// its checksums itself.
pub fn checksum_in_software(namespace: &str, ifaces: &[String]) -> Result<(), HostError> {
    if ifaces.is_empty() {
        return Ok(());
    }
    super::ns::on_own_thread(|| {
        super::ns::enter_netns(namespace)?;
        for i in ifaces {
            super::network::tx_checksum_off(i).map_err(|source| HostError::Kernel {
                what: format!("ethtool -K {i} tx off in {namespace}"),
                source,
            })?;
        }
        Ok(())
    })
}

/// Where `ip netns exec` finds a namespace's own `/etc` files.
pub const ETC_NETNS: &str = "/etc/netns";

/// Stops whatever still runs inside the named network namespaces (hosts'
/// daemons and their children, launches interrupted before their pid was
/// recorded): everything there was started by whoever made them. One pass
/// over /proc finds them all (as `ip netns pids` does for one namespace),
/// and they are stopped together, so many namespaces cost one grace period.
pub fn stop_namespaces(names: &[&str]) {
    let keys: BTreeSet<(u64, u64)> = names
        .iter()
        .filter_map(|n| ns_key(&Path::new("/run/netns").join(n)))
        .collect();
    if keys.is_empty() {
        return;
    }
    let inside = |pid: u32| {
        ns_key(Path::new(&format!("/proc/{pid}/ns/net"))).is_some_and(|k| keys.contains(&k))
    };
    let pids: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid| inside(*pid))
        .collect();
    stop_all(&pids, inside, Duration::from_secs(2));
}

/// Removes namespace `ns`'s `/etc/netns` entry, if any.
pub fn remove_etc_netns(ns: &str) -> Result<(), HostError> {
    let etc = Path::new(ETC_NETNS).join(ns);
    if etc.exists() {
        fs::remove_dir_all(&etc).map_err(io_err(etc))?;
    }
    Ok(())
}
