//! Building hosts on this machine out of namespaces: the machinery the lab's
//! production hosts and the twin's netns hosts share.
//!
//! `system` runs the machine's tools (`ip`, `ovs-vsctl`, the embedded
//! `ovs-scripts/`) and looks at processes; `daemon` starts a real daemon in
//! the foreground inside a host (network + UTS namespace, private `/run`),
//! records its pid and start time, and tells which ports listen; `ns`,
//! `netlink` and `network` build a host's namespaces and network from Rust
//! (system calls and rtnetlink, no process per host), `sock_diag` lists
//! listening sockets the way `ss` does. Nothing here
//! knows about topologies or twin plans: the lab (in the controller) and the
//! twin backends (`netns`) decide what to build.

pub mod daemon;
pub mod netlink;
pub mod network;
pub mod ns;
pub mod sock_diag;
pub mod system;

use std::path::PathBuf;

/// What went wrong running a tool or touching a file while building hosts.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not run `{command}`: {source} (is it installed?)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A system call made from Rust (namespaces, netlink, mounts) failed.
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        source: std::io::Error,
    },
    #[error("{daemon} is not running: its launcher never wrote {pidfile}; see {log}")]
    NoPid {
        daemon: String,
        pidfile: PathBuf,
        log: PathBuf,
    },
}
