//! Starting a real daemon inside a host, and seeing what it listens on.
//!
//! Each daemon runs in the foreground (so the pid we record is the daemon's),
//! as its own session leader re-parented away from the caller (a second fork,
//! as `setsid -f` does), inside the host's network and UTS namespaces, with a
//! private `/run` (the host dir's `run/`) because sshd, lldpd and inetd use
//! fixed `/run` paths that would collide between hosts and with the machine's
//! own. The host dir stays visible at its real path, so every config names
//! real paths. Host dirs therefore live under `/run`.
//!
//! The way in is what `setsid -f ip netns exec NS nsenter --uts=FILE` and a
//! small shell script used to do, done by system calls between fork and exec
//! (`Entry`): one process start per daemon, and its pid is known when
//! `launch` returns.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use super::system::{create_dir, describe, io_err, proc_id};
use super::HostError;
use super::{ns, sock_diag};

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

fn c_path(p: &Path) -> Result<CString, HostError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| HostError::Kernel {
        what: format!("{}", p.display()),
        source: io::Error::new(io::ErrorKind::InvalidInput, "holds a NUL byte"),
    })
}

fn c_str(s: &str) -> Result<CString, HostError> {
    c_path(Path::new(s))
}

/// Everything the child does between fork and exec, prepared before the
/// fork: there, nothing may allocate or take a lock.
struct Entry {
    netns: File,
    uts: File,
    /// The namespace's name: `ip netns exec` names its sysfs after it.
    sysfs_source: CString,
    /// Read-only if the machine's /sys is.
    sysfs_flags: libc::c_ulong,
    /// `/etc/netns/NS/FILE` over `/etc/FILE`, as `ip netns exec` binds them.
    etc: Vec<(CString, CString)>,
    /// The host dir, shown again at its own path inside the private /run.
    dir: CString,
    dir_inside: CString,
    private_run: CString,
    pidfile: CString,
}

/// Writes `gemelo-launch: WHAT failed` to the daemon's log (its stderr)
/// and returns the error; only async-signal-safe calls.
fn fail(what: &[u8]) -> io::Error {
    let e = io::Error::last_os_error();
    for part in [b"gemelo-launch: ".as_slice(), what, b" failed\n"] {
        // SAFETY: write(2) of a valid buffer to stderr.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    e
}

fn mount(source: &CStr, target: &CStr, fstype: &CStr, flags: libc::c_ulong) -> bool {
    // SAFETY: NUL-terminated strings that outlive the call, no data argument.
    unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        ) == 0
    }
}

impl Entry {
    fn prepare(
        place: HostPlace<'_>,
        inner_self: &Path,
        pidfile: &Path,
    ) -> Result<Entry, HostError> {
        let netns = ns::open_netns(place.namespace)?;
        let uts = File::open(place.uts).map_err(io_err(place.uts))?;
        let etc_dir = Path::new("/etc/netns").join(place.namespace);
        let mut etc = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&etc_dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                etc.push((
                    c_path(&etc_dir.join(&name))?,
                    c_path(&Path::new("/etc").join(&name))?,
                ));
            }
        }
        // SAFETY: statvfs fills a plain struct; all zeros is a valid one.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and struct.
        let read_only = unsafe { libc::statvfs(c"/sys".as_ptr(), &mut st) } == 0
            && st.f_flag & libc::ST_RDONLY != 0;
        Ok(Entry {
            netns,
            sysfs_flags: if read_only { libc::MS_RDONLY } else { 0 },
            uts,
            sysfs_source: c_str(place.namespace)?,
            etc,
            dir: c_path(place.dir)?,
            dir_inside: c_path(inner_self)?,
            private_run: c_path(&place.dir.join("run"))?,
            pidfile: c_path(pidfile)?,
        })
    }

    /// In the forked child: join the host, then fork once more so that the
    /// daemon leads a session of its own under init (the intermediate exits
    /// at once); the daemon writes its pid and returns to exec.
    fn enter(&self) -> io::Result<()> {
        // SAFETY: setns on a descriptor opened before the fork.
        if unsafe { libc::setns(self.netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(fail(b"setns(network namespace)"));
        }
        // The mounts below stay in this daemon's own mount namespace.
        // SAFETY: unshare(2) of this (single-threaded) child.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(fail(b"unshare(mount namespace)"));
        }
        if !mount(c"", c"/", c"none", libc::MS_SLAVE | libc::MS_REC) {
            return Err(fail(b"mount --make-rslave /"));
        }
        // A /sys that describes the host's network namespace.
        // SAFETY: valid path; no sysfs there is fine.
        unsafe { libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH) };
        if !mount(&self.sysfs_source, c"/sys", c"sysfs", self.sysfs_flags) {
            return Err(fail(b"mount sysfs /sys"));
        }
        for (src, dst) in &self.etc {
            if !mount(src, dst, c"none", libc::MS_BIND) {
                let _ = fail(b"bind of an /etc/netns file over /etc");
            }
        }
        // SAFETY: setns on a descriptor opened before the fork.
        if unsafe { libc::setns(self.uts.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
            return Err(fail(b"setns(UTS namespace)"));
        }
        if !mount(&self.dir, &self.dir_inside, c"none", libc::MS_BIND) {
            return Err(fail(b"bind of the host dir into its private /run"));
        }
        if !mount(
            &self.private_run,
            c"/run",
            c"none",
            libc::MS_BIND | libc::MS_REC,
        ) {
            return Err(fail(b"bind of the private /run over /run"));
        }
        // SAFETY: fork of a single-threaded child; the parent side only exits.
        match unsafe { libc::fork() } {
            -1 => return Err(fail(b"fork")),
            0 => {}
            // SAFETY: _exit skips every handler: the intermediate is done.
            _ => unsafe { libc::_exit(0) },
        }
        // SAFETY: the daemon leads a session of its own (its pid = its
        // process group, which `system::signal` stops as a whole).
        unsafe { libc::setsid() };
        self.write_pid()
    }

    fn write_pid(&self) -> io::Result<()> {
        let mut digits = [0u8; 12];
        // SAFETY: getpid has no preconditions.
        let mut n = unsafe { libc::getpid() } as u32;
        let mut at = digits.len() - 1;
        digits[at] = b'\n';
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let text = &digits[at..];
        // SAFETY: valid path; the fd is closed below.
        let fd = unsafe {
            libc::open(
                self.pidfile.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(fail(b"open of the pid file"));
        }
        // SAFETY: write of a valid buffer to our fd, then close it.
        let written = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        if written != text.len() as isize {
            return Err(fail(b"write of the pid file"));
        }
        Ok(())
    }
}

/// Starts `argv` as daemon `name` (unique per host: names its pid file and
/// log `DIR/NAME.log`) in `place`; returns once it runs, with its pid.
pub fn launch(
    place: HostPlace<'_>,
    name: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Result<Started, HostError> {
    let dir = place.dir;
    let Some(program) = argv.first() else {
        return Err(HostError::Kernel {
            what: format!("start {name} in {}", place.namespace),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no program to run"),
        });
    };
    create_dir(&dir.join("pids"))?;
    let under_run = dir.strip_prefix("/run").expect("host dirs live under /run");
    let inner_self = dir.join("run").join(under_run);
    create_dir(&inner_self)?;
    let pidfile = dir.join("pids").join(format!("{name}.pid"));
    let _ = std::fs::remove_file(&pidfile);
    let log_path = dir.join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(io_err(&log_path))?;
    let log2 = log.try_clone().map_err(io_err(&log_path))?;
    let entry = Entry::prepare(place, &inner_self, &pidfile)?;
    let mut cmd = Command::new(OsStr::new(program));
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: `enter` makes only async-signal-safe system calls on data
    // prepared before the fork.
    unsafe { cmd.pre_exec(move || entry.enter()) };
    let command = format!("{} (in {})", describe(&cmd), place.namespace);
    // Returns once the daemon has exec'd (or failed to).
    let mut child = cmd.spawn().map_err(|source| {
        let tail = log_tail(&log_path);
        if tail.contains("gemelo-launch:") {
            HostError::Kernel {
                what: format!("start {name} in {}: {tail}", place.namespace),
                source,
            }
        } else {
            HostError::Spawn {
                command: command.clone(),
                source,
            }
        }
    })?;
    let status = child.wait().map_err(|source| HostError::Spawn {
        command: command.clone(),
        source,
    })?;
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let Some(pid) = pid.filter(|_| status.success()) else {
        return Err(HostError::NoPid {
            daemon: name.to_owned(),
            pidfile,
            log: log_path,
        });
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
    listening_in(&[namespace])
        .pop()
        .expect("one result per namespace")
}

/// `listening` for each of `namespaces`, in order, from one thread that
/// visits them in turn (sock_diag answers for the namespace its socket was
/// made in).
pub fn listening_in(namespaces: &[&str]) -> Vec<Result<Vec<(&'static str, u16)>, HostError>> {
    ns::on_own_thread(|| {
        namespaces
            .iter()
            .map(|n| {
                ns::enter_netns(n)?;
                let mut out = Vec::new();
                for (proto, name) in [(libc::IPPROTO_TCP, "tcp"), (libc::IPPROTO_UDP, "udp")] {
                    let ports = sock_diag::listening_ports(proto as u8).map_err(|source| {
                        HostError::Kernel {
                            what: format!("list listening {name} sockets in {n}"),
                            source,
                        }
                    })?;
                    out.extend(ports.into_iter().map(|p| (name, p)));
                }
                Ok(out)
            })
            .collect()
    })
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
