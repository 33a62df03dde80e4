//! libvirtd (and its log daemon virtlogd), started by gemelo when none runs.
//!
//! PLATFORM.md: libvirtd must run inside the twin switch's network namespace,
//! or the taps and veths it makes are not where the twin's ovs-vswitchd
//! looks; it must see the twin OVS instance's run dir (`OVS_RUNDIR`) for its
//! own `ovs-vsctl` calls; and on this machine's hybrid cgroups the LXC driver
//! needs a private mount namespace without `/sys/fs/cgroup/unified`. Hence
//! `unshare -m --propagation private sh -c 'umount …; exec nsenter --net=… env
//! OVS_RUNDIR=… libvirtd -d -p PIDFILE'` (`nsenter`, not `ip netns exec`, which
//! remounts /sys and loses the cgroup mounts). Pid files live in the twin's run
//! dir; a daemon gemelo started is stopped by that pid on twin destroy. A
//! libvirtd gemelo did not start is used only if it runs in the twin switch's
//! namespace, and never stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::host::system::{in_namespace, proc_id, run, stop_all};
use crate::plan::TwinSwitch;

use super::LibvirtError;

/// libvirtd's socket (both `qemu:///system` and `lxc:///` go through it).
pub const LIBVIRT_SOCK: &str = "/run/libvirt/libvirt-sock";
/// How long libvirtd may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub fn libvirtd_pidfile(run_dir: &Path) -> PathBuf {
    run_dir.join("libvirtd.pid")
}

pub fn virtlogd_pidfile(run_dir: &Path) -> PathBuf {
    run_dir.join("virtlogd.pid")
}

/// Live processes whose command name is `comm`.
pub fn processes(comm: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
                && proc_id(*pid).is_some()
        })
        .collect()
}

/// The pid in `pidfile` if that process is alive and is `comm`.
pub fn pid_from(pidfile: &Path, comm: &str) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let alive = proc_id(pid).is_some()
        && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
    alive.then_some(pid)
}

fn tool(name: &str) -> Result<PathBuf, LibvirtError> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| LibvirtError::Unavailable(format!(
            "{name} is not installed (Debian: libvirt-daemon-system libvirt-daemon-driver-lxc libvirt-daemon-driver-qemu)"
        )))
}

/// Whether libvirt can run here at all (its daemons are installed), or why not.
pub fn unavailable() -> Option<String> {
    ["libvirtd", "virtlogd"]
        .iter()
        .find_map(|t| tool(t).err().map(|e| e.to_string()))
}

/// Makes sure a libvirtd runs in the twin switch's namespace: the one gemelo
/// started before, one someone else started there, or a new one.
pub fn ensure_running(switch: &TwinSwitch, run_dir: &Path) -> Result<(), LibvirtError> {
    let ours = pid_from(&libvirtd_pidfile(run_dir), "libvirtd");
    if let Some(pid) = ours.filter(|p| in_namespace(*p, &switch.namespace)) {
        return wait_socket(pid);
    }
    if let Some(other) = processes("libvirtd").into_iter().next() {
        if in_namespace(other, &switch.namespace) {
            return wait_socket(other);
        }
        return Err(LibvirtError::Unavailable(format!(
            "a libvirtd (pid {other}) runs outside the twin switch's namespace {}: its taps and veths would not reach the twin bridge; stop it and let gemelo start its own",
            switch.namespace
        )));
    }
    fs::create_dir_all(run_dir).map_err(|e| LibvirtError::Io(run_dir.into(), e))?;
    let netns = format!("/run/netns/{}", switch.namespace);
    if processes("virtlogd").is_empty() {
        let pidfile = virtlogd_pidfile(run_dir);
        let _ = fs::remove_file(&pidfile);
        run(Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .arg(tool("virtlogd")?)
            .arg("-d")
            .arg("-p")
            .arg(&pidfile))?;
    }
    let pidfile = libvirtd_pidfile(run_dir);
    let _ = fs::remove_file(&pidfile);
    let script = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec nsenter --net={netns} env OVS_RUNDIR={} {} -d -p {}",
        switch.rundir,
        tool("libvirtd")?.display(),
        pidfile.display()
    );
    run(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = pid_from(&pidfile, "libvirtd") {
            return wait_socket(pid);
        }
        if Instant::now() > deadline {
            return Err(LibvirtError::Unavailable(format!(
                "libvirtd did not write {} within {} s",
                pidfile.display(),
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_socket(pid: u32) -> Result<(), LibvirtError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !Path::new(LIBVIRT_SOCK).exists() {
        if proc_id(pid).is_none() {
            return Err(LibvirtError::Unavailable(format!(
                "libvirtd (pid {pid}) exited before opening {LIBVIRT_SOCK}"
            )));
        }
        if Instant::now() > deadline {
            return Err(LibvirtError::Unavailable(format!(
                "libvirtd (pid {pid}) did not open {LIBVIRT_SOCK} within {} s",
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Stops the libvirtd and virtlogd gemelo started (by their pid files), if
/// they still run; leaves any other alone.
pub fn stop(run_dir: &Path) {
    for (pidfile, comm) in [
        (libvirtd_pidfile(run_dir), "libvirtd"),
        (virtlogd_pidfile(run_dir), "virtlogd"),
    ] {
        if let Some(pid) = pid_from(&pidfile, comm) {
            let is_ours = |p: u32| pid_from(&pidfile, comm) == Some(p);
            stop_all(&[pid], is_ours, Duration::from_secs(5));
            // libvirtd leaves its socket behind when killed.
            if comm == "libvirtd" && proc_id(pid).is_none() {
                let _ = fs::remove_file(LIBVIRT_SOCK);
            }
        }
        let _ = fs::remove_file(&pidfile);
    }
}
