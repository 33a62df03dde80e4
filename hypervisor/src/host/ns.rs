//! Network and UTS namespaces from Rust, without an `ip` or `unshare`
//! process per host.
//!
//! A namespace is a property of a thread: `unshare` and `setns` move only the
//! calling thread. Everything here that moves a thread is therefore meant to
//! run on the threads of `on_own_threads`, which exist for that work alone
//! and end with it; no other code ever runs in the namespaces they entered.
//! The namespaces outlive those threads the way `ip netns add` and
//! `unshare --uts=FILE` make them persistent: bound onto a file
//! (`/run/netns/NAME`, or a file under a private mount dir for UTS).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::HostError;

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

fn cstr(s: &str) -> Result<CString, HostError> {
    CString::new(s).map_err(|_| HostError::Kernel {
        what: format!("{s:?}"),
        source: io::Error::new(io::ErrorKind::InvalidInput, "holds a NUL byte"),
    })
}

fn kernel(what: impl Into<String>) -> impl FnOnce(io::Error) -> HostError {
    let what = what.into();
    move |source| HostError::Kernel { what, source }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn mount(source: &str, target: &str, fstype: &str, flags: libc::c_ulong) -> io::Result<()> {
    let (source, target, fstype) = (
        CString::new(source)?,
        CString::new(target)?,
        CString::new(fstype)?,
    );
    // SAFETY: valid NUL-terminated strings, no data argument.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    })
}

/// The file of a named network namespace; `name` must be a plain name.
pub fn netns_path(name: &str) -> Result<PathBuf, HostError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(HostError::Kernel {
            what: format!("network namespace {name:?}"),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a name under /run/netns"),
        });
    }
    Ok(Path::new(NETNS_RUN_DIR).join(name))
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does before it
/// adds a namespace: unmounting a namespace file in one mount namespace then
/// unmounts it in all of them, and the namespace can go.
pub fn prepare_netns_dir() -> Result<(), HostError> {
    let what = || format!("make {NETNS_RUN_DIR} a shared mount point");
    match std::fs::DirBuilder::new().mode(0o755).create(NETNS_RUN_DIR) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(kernel(what())(e)),
        _ => {}
    }
    let mut made_mount = false;
    loop {
        match mount("", NETNS_RUN_DIR, "none", libc::MS_SHARED | libc::MS_REC) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !made_mount => {
                mount(
                    NETNS_RUN_DIR,
                    NETNS_RUN_DIR,
                    "none",
                    libc::MS_BIND | libc::MS_REC,
                )
                .map_err(kernel(what()))?;
                made_mount = true;
            }
            Err(e) => return Err(kernel(what())(e)),
        }
    }
}

/// Creates network namespace `name` (`/run/netns/NAME`, as `ip netns add`)
/// and leaves the calling thread in it. `prepare_netns_dir` first.
pub fn create_netns(name: &str) -> Result<(), HostError> {
    let path = netns_path(name)?;
    let what = format!("create network namespace {name}");
    let c = cstr(&path.display().to_string())?;
    // SAFETY: valid path; the fd is closed right away.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            HostError::Kernel {
                what,
                source: io::Error::new(e.kind(), format!("{} exists already", path.display())),
            }
        } else {
            kernel(what)(e)
        });
    }
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };
    let made = (|| {
        // SAFETY: unshare(2) with a namespace flag moves only this thread.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        mount(
            "/proc/thread-self/ns/net",
            &path.display().to_string(),
            "none",
            libc::MS_BIND,
        )
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(kernel(what)(e));
    }
    Ok(())
}

/// Opens network namespace `name` (for `setns`, or to place a veth's peer).
pub fn open_netns(name: &str) -> Result<File, HostError> {
    let path = netns_path(name)?;
    File::open(&path).map_err(kernel(format!(
        "open network namespace {name} ({})",
        path.display()
    )))
}

/// Moves the calling thread into network namespace `name`.
pub fn enter_netns(name: &str) -> Result<(), HostError> {
    let file = open_netns(name)?;
    // SAFETY: setns on a valid namespace fd moves only this thread.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })
        .map_err(kernel(format!("enter network namespace {name}")))
}

/// Removes network namespace `name`, as `ip netns del` (the namespace ends
/// with the last process in it).
pub fn delete_netns(name: &str) -> Result<(), HostError> {
    let path = netns_path(name)?;
    let c = cstr(&path.display().to_string())?;
    // SAFETY: valid path; a file that is not mounted only fails with EINVAL.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    std::fs::remove_file(&path).map_err(kernel(format!("delete network namespace {name}")))
}

/// A UTS namespace of its own for the calling thread, with `hostname`,
/// kept at `path` (an existing file is replaced; its dir must be a private
/// mount point, see `system::private_mount_dir`), as
/// `unshare --uts=PATH hostname HOSTNAME` makes it.
pub fn create_uts(path: &Path, hostname: &str) -> Result<(), HostError> {
    std::fs::write(path, "").map_err(|source| HostError::Io {
        path: path.to_owned(),
        source,
    })?;
    let what = format!("UTS namespace {} ({hostname})", path.display());
    // SAFETY: unshare(2) moves only this thread; sethostname reads
    // hostname.len() bytes of a valid buffer.
    check(unsafe { libc::unshare(libc::CLONE_NEWUTS) }).map_err(kernel(what.clone()))?;
    check(unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) })
        .map_err(kernel(what.clone()))?;
    mount(
        "/proc/thread-self/ns/uts",
        &path.display().to_string(),
        "none",
        libc::MS_BIND,
    )
    .map_err(kernel(what))
}

/// Runs `work` on every item, on at most `threads` threads made for it that
/// end afterwards, so `work` may move its thread into other namespaces.
/// Results come back in the order of `items`.
pub fn on_own_threads<T, R, F>(items: &[T], threads: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = work(item);
                *results[i].lock().expect("no worker panics holding it") = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("no worker panics holding it")
                .expect("every item ran")
        })
        .collect()
}

/// Runs `work` on a thread of its own (see `on_own_threads`).
pub fn on_own_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(work)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u32> = (0..50).collect();
        for threads in [0, 1, 3, 64] {
            let out = on_own_threads(&items, threads, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(on_own_threads(&[] as &[u32], 4, |i| *i).is_empty());
    }

    #[test]
    fn bad_namespace_names_are_refused() {
        for bad in ["", "a/b", ".", ".."] {
            assert!(netns_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            netns_path("gm-twin-web01").unwrap(),
            Path::new("/run/netns/gm-twin-web01")
        );
    }
}
