//! The libvirt backends: twin hosts as LXC containers (`lxc:///`) or QEMU
//! virtual machines (`qemu:///system`, TCG), attached to the twin OVS bridge.
//!
//! Both share what is here: the connection (crate `virt` 0.4), libvirtd's
//! lifecycle (`daemon`), the host init (`guest`), the domain's name
//! (`gm-twin-<host>`, transient: destroying a domain also undefines it, so
//! nothing stays defined after a crash of libvirtd either) and the wait for
//! the init's `READY` line. `lxc` and `qemu` write their domain XML (pure
//! functions) and implement `HostBackend`; `initramfs` builds the QEMU
//! guest's root filesystem; `channel` and `relay` carry a QEMU guest's decoy
//! events out of it without a network.
//!
//! Each NIC is `<interface type='bridge'>` on the twin bridge with an
//! `openvswitch` virtualport and the plan's MAC: libvirt adds and removes the
//! switch port itself (a VLAN as the port's tag). That bridge, like every
//! netns host's port, is the host's only link: no libvirt network, no user
//! networking, no second NIC, so a libvirt twin host reaches only what the
//! twin switch's flows give it (see `fabric` for the switch's own isolation).

pub mod channel;
pub mod daemon;
pub mod guest;
pub mod initramfs;
pub mod lxc;
pub mod qemu;
pub mod relay;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain;

use crate::backend::HostContext;
use crate::plan::{TwinHost, TwinInterface};
use crate::status::{HostState, TwinHostStatus};

pub use lxc::Lxc;
pub use qemu::Qemu;

/// Prefix of every domain gemelo defines: `gm-twin-<host>`.
pub const DOMAIN_PREFIX: &str = "gm-twin-";

#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    #[error("libvirt cannot run here: {0}")]
    Unavailable(String),
    #[error("libvirt ({uri}): {message}")]
    Libvirt { uri: String, message: String },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

pub fn domain_name(host: &str) -> String {
    format!("{DOMAIN_PREFIX}{host}")
}

/// An open libvirt connection, closed when dropped.
pub struct Conn {
    uri: String,
    conn: Connect,
}

impl Conn {
    pub fn open(uri: &str) -> Result<Conn, LibvirtError> {
        // libvirt's default handler prints every error on stderr; ours carry them.
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri)).map_err(|e| LibvirtError::Libvirt {
            uri: uri.into(),
            message: e.to_string(),
        })?;
        Ok(Conn {
            uri: uri.into(),
            conn,
        })
    }

    fn err(&self, e: virt::error::Error) -> LibvirtError {
        LibvirtError::Libvirt {
            uri: self.uri.clone(),
            message: e.to_string(),
        }
    }

    /// Starts a transient domain.
    pub fn create(&self, xml: &str) -> Result<(), LibvirtError> {
        Domain::create_xml(&self.conn, xml, 0)
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Whether the domain exists and runs.
    pub fn running(&self, name: &str) -> bool {
        Domain::lookup_by_name(&self.conn, name)
            .ok()
            .and_then(|d| d.is_active().ok())
            .unwrap_or(false)
    }

    /// Stops (and, transient, thereby removes) a domain; also undefines one
    /// that was defined persistently. Nothing to do is not an error.
    pub fn remove(&self, name: &str) -> Result<(), LibvirtError> {
        let Ok(d) = Domain::lookup_by_name(&self.conn, name) else {
            return Ok(());
        };
        if d.is_active().unwrap_or(false) {
            d.destroy().map_err(|e| self.err(e))?;
        }
        if d.is_persistent().unwrap_or(false) {
            d.undefine().map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Names of every domain (running or defined) starting with `prefix`.
    pub fn domains(&self, prefix: &str) -> Result<Vec<String>, LibvirtError> {
        let all = self.conn.list_all_domains(0).map_err(|e| self.err(e))?;
        Ok(all
            .iter()
            .filter_map(|d| d.get_name().ok())
            .filter(|n| n.starts_with(prefix))
            .collect())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.conn.close();
    }
}

/// Removes every `gm-twin-*` domain of both drivers (when libvirtd runs)
/// and the QEMU guests' event relays, then the libvirtd/virtlogd gemelo
/// started.
pub fn destroy_all(run_dir: &Path) -> Result<(), LibvirtError> {
    if Path::new(daemon::LIBVIRT_SOCK).exists() && !daemon::processes("libvirtd").is_empty() {
        for uri in [lxc::URI, qemu::URI] {
            let conn = Conn::open(uri)?;
            for name in conn.domains(DOMAIN_PREFIX)? {
                conn.remove(&name)?;
            }
        }
    }
    relay::stop_all_in(&run_dir.join("hosts"));
    daemon::stop(run_dir);
    remove_leftovers(DOMAIN_PREFIX);
    Ok(())
}

/// Where libvirt leaves files named after a domain once it is gone (the LXC
/// controller's mount point dirs and socket, each domain's log).
const LEFTOVER_DIRS: [&str; 4] = [
    "/run/libvirt/lxc",
    "/run/libvirt/qemu",
    "/var/log/libvirt/lxc",
    "/var/log/libvirt/qemu",
];

/// Removes what libvirt left of domains whose names start with `prefix`
/// (`gm-twin-` for all, `gm-twin-NAME.` for one): files, and directories
/// only when empty (never anything mounted).
pub fn remove_leftovers(prefix: &str) {
    let mounts = crate::host::system::mount_points();
    for dir in LEFTOVER_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) {
                continue;
            }
            let path = e.path();
            if mounts.contains(&path.display().to_string()) {
                continue;
            }
            if path.is_dir() {
                let _ = std::fs::remove_dir(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// `<interface>` elements for the host's NICs on the twin bridge (`extra`
/// goes inside each, e.g. the QEMU model and driver).
pub fn interfaces_xml(bridge: &str, interfaces: &[TwinInterface], extra: &str) -> String {
    let mut s = String::new();
    for i in interfaces {
        s.push_str(&format!(
            "    <interface type='bridge'>\n      <source bridge='{}'/>\n      <virtualport type='openvswitch'/>\n      <mac address='{}'/>\n",
            xml_escape(bridge),
            xml_escape(&i.mac)
        ));
        if let Some(vlan) = i.vlan {
            s.push_str(&format!("      <vlan><tag id='{vlan}'/></vlan>\n"));
        }
        s.push_str(extra);
        s.push_str("    </interface>\n");
    }
    s
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A libvirt host's status before it starts.
pub fn starting_status(cx: &HostContext<'_>, h: &TwinHost) -> TwinHostStatus {
    let mut s = crate::backend::host_status(h);
    s.domain = Some(domain_name(&h.name));
    s.dir = Some(cx.host_dir(&h.name));
    s
}

/// What the init said last: `Ok(true)` ready, `Ok(false)` not yet, `Err` failed.
fn init_said(log: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines().rev() {
        if line.contains(guest::READY) {
            return Ok(true);
        }
        if let Some((_, why)) = line.split_once(guest::FAILED) {
            return Err(why.trim().to_owned());
        }
    }
    Ok(false)
}

/// Waits for each started host's init to say `READY` (in the file its
/// status names), its domain to stop, or `timeout`; sets each state.
pub fn wait_ready(
    conn: &Conn,
    hosts: &mut [(TwinHostStatus, PathBuf)],
    timeout: Duration,
    progress: &mut dyn FnMut(&str, HostState),
) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut waiting = false;
        for (hs, log) in hosts
            .iter_mut()
            .filter(|(h, _)| h.state == HostState::Starting)
        {
            let name = hs.domain.clone().unwrap_or_default();
            let outcome = match init_said(log) {
                Ok(true) => Some(Ok(())),
                Err(why) => Some(Err(format!("{why}; see {}", log.display()))),
                Ok(false) if !conn.running(&name) => Some(Err(format!(
                    "domain {name} stopped before its services listened; see {}",
                    log.display()
                ))),
                Ok(false) if Instant::now() > deadline => Some(Err(format!(
                    "its services did not listen within {} s; see {}",
                    timeout.as_secs(),
                    log.display()
                ))),
                Ok(false) => None,
            };
            match outcome {
                None => waiting = true,
                Some(Ok(())) => {
                    hs.state = HostState::Ready;
                    progress(&hs.name, HostState::Ready);
                }
                Some(Err(e)) => {
                    hs.state = HostState::Failed;
                    hs.error = Some(e);
                    progress(&hs.name, HostState::Failed);
                }
            }
        }
        if !waiting {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A failed status for a host that could not even be started.
pub fn failed(
    mut hs: TwinHostStatus,
    why: String,
    progress: &mut dyn FnMut(&str, HostState),
) -> TwinHostStatus {
    hs.state = HostState::Failed;
    hs.error = Some(why);
    progress(&hs.name, HostState::Failed);
    hs
}

/// Empties (or creates) a host's dir.
pub fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Stops a host's domain on `uri` and removes its dir.
pub fn stop_host(uri: &str, cx: &HostContext<'_>, host: &str) -> Result<(), String> {
    if Path::new(daemon::LIBVIRT_SOCK).exists() {
        let conn = Conn::open(uri).map_err(|e| e.to_string())?;
        conn.remove(&domain_name(host)).map_err(|e| e.to_string())?;
    }
    remove_leftovers(&format!("{}.", domain_name(host)));
    let dir = cx.host_dir(host);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Why a recorded libvirt host no longer runs.
pub fn check_host(uri: &str, host: &TwinHostStatus) -> Option<String> {
    let name = host.domain.as_deref()?;
    match Conn::open(uri) {
        Ok(conn) if conn.running(name) => None,
        Ok(_) => Some(format!("domain {name} is not running")),
        Err(e) => Some(e.to_string()),
    }
}
