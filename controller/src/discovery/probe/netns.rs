//! Running a probe inside a network namespace.
//!
//! A namespace is a property of a thread (setns), so the probe gets its own OS
//! thread that joins `/run/netns/NS` first and then drives a current-thread
//! tokio runtime: every socket it opens lives in that namespace, and the
//! caller's threads and runtime are untouched.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;

/// Runs `f` on a current-thread runtime in a dedicated thread that first joined
/// network namespace `ns` (`/run/netns/NS`, as `ip netns add` makes them).
/// Returns `f`'s output; errors name the namespace.
pub fn in_netns<T, F, Fut>(ns: &str, f: F) -> io::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("network namespace name {ns:?} is not a name under /run/netns"),
        ));
    }
    let path = format!("/run/netns/{ns}");
    let name = ns.to_string();
    let thread = std::thread::Builder::new().name(format!("probe-{ns}")).spawn(move || -> io::Result<T> {
        let file = File::open(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open network namespace {name} ({path}): {e}; does `ip netns list` show it?"))
        })?;
        // SAFETY: setns on a valid fd affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("cannot join network namespace {name}: {e} (needs root / CAP_SYS_ADMIN)")));
        }
        drop(file);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io::Error::new(e.kind(), format!("tokio runtime for network namespace {name}: {e}")))?;
        Ok(runtime.block_on(f()))
    })?;
    thread
        .join()
        .map_err(|_| io::Error::other(format!("probe thread in network namespace {ns} panicked")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_named() {
        let err = in_netns("gm-no-such-namespace", || async { 1 }).unwrap_err();
        assert!(err.to_string().contains("gm-no-such-namespace"), "{err}");
        assert!(in_netns("../etc", || async { 1 }).is_err());
    }
}
