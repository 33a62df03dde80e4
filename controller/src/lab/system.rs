//! Running the machine's tools (`ip`, `ovs-vsctl`, the `ovs-scripts/`) and
//! looking at processes, with errors that say which command failed and why.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

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
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn { command: describe(cmd), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `run(Command::new(program).args(args))`.
pub fn run_args<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Result<String, LabError> {
    run(Command::new(program).args(args))
}

/// Runs an embedded bash script (`bash -s -- ARGS` with the script on stdin).
pub fn run_script(name: &str, script: &str, args: &[&str]) -> Result<String, LabError> {
    let mut cmd = Command::new("bash");
    cmd.arg("-s").arg("--").args(args);
    let command = format!("{name} {}", args.join(" "));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn { command: command.clone(), source })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|source| LabError::Spawn { command: command.clone(), source })?;
    let out = child.wait_with_output().map_err(|source| LabError::Spawn { command: command.clone(), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `ovs-vsctl` against the instance whose run dir is `rundir`.
pub fn ovs_vsctl(rundir: &Path, args: &[String]) -> Result<String, LabError> {
    run(Command::new("ovs-vsctl")
        .env("OVS_RUNDIR", rundir)
        .arg(format!("--db=unix:{}", rundir.join("db.sock").display()))
        .arg("--timeout=20")
        .args(args))
}

pub fn namespaces() -> Result<Vec<String>, LabError> {
    let out = run_args("ip", &["netns", "list"])?;
    Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

pub fn write_file(path: &Path, contents: &str) -> Result<(), LabError> {
    fs::write(path, contents).map_err(|source| LabError::Io { path: path.to_owned(), source })
}

pub fn create_dir(path: &Path) -> Result<(), LabError> {
    fs::create_dir_all(path).map_err(|source| LabError::Io { path: path.to_owned(), source })
}

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.into();
    move |source| LabError::Io { path, source }
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
    match (ns_key(Path::new(&format!("/proc/{pid}/ns/net"))), ns_key(&Path::new("/run/netns").join(namespace))) {
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
