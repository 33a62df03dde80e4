//! LXC twin hosts (`lxc:///`): a container per host, its own network, PID,
//! mount, UTS and IPC namespaces, running the same launches (real daemons or
//! decoys) as a netns host.
//!
//! Its root is a skeleton in the host dir (`rootfs/`) into which the
//! machine's `/usr` and `/etc` are bound read-only (with `/bin`, `/lib`, …
//! as the same symlinks as on the machine), so daemons and the gemelo binary
//! run as installed, while the rest of the machine's filesystem (homes, the
//! controller's data, `/run`) does not exist for the host. As for netns hosts
//! (`host::daemon`), the host dir's `run/` is the host's `/run` and the host
//! dir is visible at its own path, so the decoy module's configs name real
//! paths; `/tmp` and `/var` are the skeleton's own (private, in the host
//! dir); `/etc/hosts`, `resolv.conf` and
//! `hostname` are the host's own. Read-only binds also bring in each launch's
//! program dir and gemelo's own when they lie outside `/usr` (a gemelo built
//! in a work tree: real daemons run its persona shell and login hook) and the
//! decoy event socket (the file alone), which the decoys and the login hook
//! (`decoy::login`) send to.
//!
//! The init (`guest`) runs as `/bin/sh` with its output in `init.log`; the
//! container starts in ~0.1 s and uses ~20 MB.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{HostBackend, HostContext};
use crate::launch::Launch;
use crate::plan::{Backend, TwinHost};
use crate::status::{HostState, TwinHostStatus};

use super::guest::{self, Settings};
use super::{
    check_host, domain_name, failed, fresh_dir, interfaces_xml, starting_status, stop_host,
    wait_ready, xml_escape, Conn,
};

pub const URI: &str = "lxc:///";
/// Memory limit of a container.
pub const MEMORY_MIB: u32 = 256;
/// How long a container may take until its services listen.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Top-level dirs that are symlinks into /usr on a merged-/usr system.
const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

pub struct Lxc {
    /// The controller's decoy event socket, bound into every container.
    pub events: PathBuf,
    /// Where gemelo's binaries lie, shown to every container.
    pub programs: PathBuf,
}

/// One bind mount of the container: (source on the machine, target inside, read-only).
pub type Bind = (PathBuf, PathBuf, bool);

/// The container's bind mounts, in mount order (a target's parent first);
/// `also`: more of the machine's files and dirs it sees read-only.
pub fn binds(
    dir: &Path,
    launches: &[Launch],
    machine_dirs: &[PathBuf],
    also: &[PathBuf],
) -> Vec<Bind> {
    let mut out: Vec<Bind> = vec![(dir.join("rootfs"), "/".into(), false)];
    for d in machine_dirs {
        out.push((d.clone(), d.clone(), true));
    }
    out.push((dir.join("run"), "/run".into(), false));
    out.push((dir.to_path_buf(), dir.to_path_buf(), false));
    for f in ["hosts", "resolv.conf", "hostname"] {
        out.push((dir.join("etc").join(f), Path::new("/etc").join(f), true));
    }
    let mut extra = BTreeSet::new();
    for l in launches {
        if let Some(prog) = l.argv.first().map(Path::new) {
            if let Some(parent) = prog.parent() {
                extra.insert(parent.to_path_buf());
            }
        }
    }
    extra.extend(also.iter().cloned());
    let covered = |p: &Path| {
        p.starts_with(dir)
            || machine_dirs.iter().any(|d| p.starts_with(d))
            || USR_LINKS
                .iter()
                .any(|l| p.starts_with(Path::new("/").join(l)))
            || !p.is_absolute()
    };
    for p in extra.into_iter().filter(|p| !covered(p)) {
        out.push((p.clone(), p, true));
    }
    out
}

/// The domain XML of an LXC twin host.
pub fn domain_xml(h: &TwinHost, bridge: &str, dir: &Path, binds: &[Bind]) -> String {
    let mut fs = String::new();
    for (src, dst, ro) in binds {
        fs.push_str(&format!(
            "    <filesystem type='mount' accessmode='passthrough'>\n      <source dir='{}'/>\n      <target dir='{}'/>\n{}    </filesystem>\n",
            xml_escape(&src.display().to_string()),
            xml_escape(&dst.display().to_string()),
            if *ro { "      <readonly/>\n" } else { "" }
        ));
    }
    let d = dir.display().to_string();
    let start = format!(
        "exec /bin/sh {} >{} 2>&1",
        crate::decoy::shq(&format!("{d}/init.sh")),
        crate::decoy::shq(&format!("{d}/init.log"))
    );
    format!(
        "<domain type='lxc'>
  <name>{name}</name>
  <memory unit='MiB'>{MEMORY_MIB}</memory>
  <os>
    <type>exe</type>
    <init>/bin/sh</init>
    <initarg>-c</initarg>
    <initarg>{start}</initarg>
  </os>
  <features><privnet/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{fs}{nics}    <console type='pty'/>
  </devices>
</domain>
",
        name = xml_escape(&domain_name(&h.name)),
        start = xml_escape(&start),
        nics = interfaces_xml(bridge, &h.interfaces, ""),
    )
}

/// The machine's dirs the container sees read-only, and its root skeleton
/// (`/bin` → `usr/bin` and the like, as the machine has them).
fn machine_dirs() -> (Vec<PathBuf>, Vec<(String, PathBuf)>) {
    let mut dirs = vec![PathBuf::from("/usr"), PathBuf::from("/etc")];
    let mut links = Vec::new();
    for l in USR_LINKS {
        let p = Path::new("/").join(l);
        match std::fs::read_link(&p) {
            Ok(target) => links.push((l.to_owned(), target)),
            Err(_) if p.is_dir() => dirs.push(p),
            Err(_) => {}
        }
    }
    (dirs, links)
}

fn prepare(cx: &HostContext<'_>, h: &TwinHost, also: &[PathBuf]) -> Result<String, String> {
    let dir = cx.host_dir(&h.name);
    fresh_dir(&dir)?;
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| io(p, e));
    let write = |p: &Path, data: &[u8], mode: u32| -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(parent) = p.parent() {
            mkdir(parent)?;
        }
        std::fs::write(p, data).map_err(|e| io(p, e))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| io(p, e))
    };
    let launches =
        (cx.launches)(h, &dir).map_err(|e| format!("its services could not be prepared: {e}"))?;
    for l in &launches {
        for (path, data, mode) in &l.files {
            let p = if path.is_absolute() {
                path.clone()
            } else {
                dir.join(path)
            };
            write(&p, data, *mode)?;
        }
    }
    let (dirs, links) = machine_dirs();
    let rootfs = dir.join("rootfs");
    mkdir(&rootfs)?;
    for (name, target) in &links {
        std::os::unix::fs::symlink(target, rootfs.join(name)).map_err(|e| io(&rootfs, e))?;
    }
    // The host dir inside its own /run, as `host::daemon` makes it.
    let under_run = dir
        .strip_prefix("/run")
        .map_err(|_| format!("{}: libvirt host dirs must lie under /run", dir.display()))?;
    mkdir(&dir.join("run").join(under_run))?;
    let etc = dir.join("etc");
    write(
        &etc.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            h.hostname
        )
        .as_bytes(),
        0o644,
    )?;
    write(&etc.join("resolv.conf"), b"", 0o644)?;
    write(
        &etc.join("hostname"),
        format!("{}\n", h.hostname).as_bytes(),
        0o644,
    )?;
    let d = dir.display().to_string();
    write(
        &dir.join("init.sh"),
        guest::init_script(Settings::Inline(h), &launches, &d).as_bytes(),
        0o755,
    )?;
    for (scratch, mode) in [("tmp", 0o1777), ("var", 0o755)] {
        let p = rootfs.join(scratch);
        mkdir(&p)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io(&p, e))?;
    }
    let mut binds = binds(&dir, &launches, &dirs, also);
    // An event socket nobody listens on yet is not there to bind (events are dropped).
    binds.retain(|(src, _, _)| src.exists());
    // libvirt makes a missing directory mount point, not a file's (nor its parents).
    for (src, dst, _) in binds.iter().skip(1) {
        let Some(at) = mount_point(&dir, &dirs, dst) else {
            continue;
        };
        if src.is_dir() {
            mkdir(&at)?;
        } else if !at.exists() {
            write(&at, b"", 0o644)?;
        }
    }
    Ok(domain_xml(h, &cx.plan.switch.bridge, &dir, &binds))
}

/// Where the container's path `target` lies on the machine while the
/// container is being set up: in its `/run` (the host dir's `run/`) or in
/// its root skeleton; `None` inside a machine dir (it exists as it is).
fn mount_point(dir: &Path, machine_dirs: &[PathBuf], target: &Path) -> Option<PathBuf> {
    if machine_dirs.iter().any(|d| target.starts_with(d)) {
        return None;
    }
    let rel = target.strip_prefix("/").ok()?;
    match target.strip_prefix("/run") {
        Ok(rest) => Some(dir.join("run").join(rest)),
        Err(_) => Some(dir.join("rootfs").join(rel)),
    }
}

impl HostBackend for Lxc {
    fn kind(&self) -> Backend {
        Backend::Lxc
    }

    fn start(
        &self,
        cx: &HostContext<'_>,
        hosts: &[&TwinHost],
        progress: &mut dyn FnMut(&str, HostState),
    ) -> Vec<TwinHostStatus> {
        let conn = match Conn::open(URI) {
            Ok(c) => c,
            Err(e) => {
                return hosts
                    .iter()
                    .map(|h| failed(starting_status(cx, h), e.to_string(), progress))
                    .collect()
            }
        };
        let mut started: Vec<(TwinHostStatus, PathBuf)> = Vec::new();
        let mut out = Vec::new();
        for h in hosts {
            progress(&h.name, HostState::Starting);
            let hs = starting_status(cx, h);
            let log = cx.host_dir(&h.name).join("init.log");
            let also = [self.events.clone(), self.programs.clone()];
            // libvirt adds the container's ports to the bridge: the switch must be up.
            let created = prepare(cx, h, &also).and_then(|xml| {
                cx.switch_up()?;
                conn.create(&xml).map_err(|e| e.to_string())
            });
            match created {
                Ok(()) => started.push((hs, log)),
                Err(e) => out.push(failed(hs, e, progress)),
            }
        }
        wait_ready(&conn, &mut started, READY_TIMEOUT, progress);
        out.extend(started.into_iter().map(|(hs, _)| hs));
        order_like(hosts, out)
    }

    fn stop(&self, cx: &HostContext<'_>, host: &str) -> Result<(), String> {
        stop_host(URI, cx, host)
    }

    fn check(&self, host: &TwinHostStatus) -> Option<String> {
        check_host(URI, host)
    }
}

/// Statuses in the order of `hosts`.
pub fn order_like(hosts: &[&TwinHost], mut statuses: Vec<TwinHostStatus>) -> Vec<TwinHostStatus> {
    statuses.sort_by_key(|s| hosts.iter().position(|h| h.name == s.name));
    statuses
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::host_with;

    fn decoy(events: &str) -> Launch {
        Launch {
            name: "decoy".into(),
            argv: vec![
                "/work/gemelo/target/debug/gemelo".into(),
                "decoy".into(),
                "--spec".into(),
                "/run/gemelo/twin/hosts/web1/decoy-spec.json".into(),
                "--events".into(),
                events.into(),
            ],
            env: vec![],
            files: vec![],
            listens: vec![("tcp".into(), 80)],
        }
    }

    #[test]
    fn binds_show_usr_etc_the_host_dir_the_program_and_the_event_socket() {
        let dir = Path::new("/run/gemelo/twin/hosts/web1");
        let machine = [PathBuf::from("/usr"), PathBuf::from("/etc")];
        let sshd = Launch {
            name: "sshd".into(),
            argv: vec!["/usr/sbin/sshd".into(), "-D".into()],
            env: vec![],
            files: vec![],
            listens: vec![],
        };
        let also = [
            PathBuf::from("/var/lib/gemelo/events.sock"),
            PathBuf::from("/usr/bin"),
        ];
        let b = binds(
            dir,
            &[decoy("/var/lib/gemelo/events.sock"), sshd.clone()],
            &machine,
            &also,
        );
        let t = |s: &str, d: &str, ro: bool| (PathBuf::from(s), PathBuf::from(d), ro);
        assert_eq!(
            b,
            [
                t("/run/gemelo/twin/hosts/web1/rootfs", "/", false),
                t("/usr", "/usr", true),
                t("/etc", "/etc", true),
                t("/run/gemelo/twin/hosts/web1/run", "/run", false),
                t(
                    "/run/gemelo/twin/hosts/web1",
                    "/run/gemelo/twin/hosts/web1",
                    false
                ),
                t("/run/gemelo/twin/hosts/web1/etc/hosts", "/etc/hosts", true),
                t(
                    "/run/gemelo/twin/hosts/web1/etc/resolv.conf",
                    "/etc/resolv.conf",
                    true
                ),
                t(
                    "/run/gemelo/twin/hosts/web1/etc/hostname",
                    "/etc/hostname",
                    true
                ),
                t(
                    "/var/lib/gemelo/events.sock",
                    "/var/lib/gemelo/events.sock",
                    true
                ),
                t(
                    "/work/gemelo/target/debug",
                    "/work/gemelo/target/debug",
                    true
                ),
            ]
        );
        // A host with real daemons only still reports logins: their PAM hook
        // runs gemelo and sends to the socket, and no argv names either.
        let also = [
            PathBuf::from("/var/lib/gemelo/events.sock"),
            PathBuf::from("/work/gemelo/target/debug"),
        ];
        let b = binds(dir, &[sshd], &machine, &also);
        for shared in ["/var/lib/gemelo/events.sock", "/work/gemelo/target/debug"] {
            assert!(b.contains(&t(shared, shared, true)), "{shared}: {b:?}");
        }
    }

    #[test]
    fn mount_points_lie_in_the_skeleton_or_the_hosts_run() {
        let dir = Path::new("/run/gemelo/twin/hosts/web1");
        let machine = [PathBuf::from("/usr"), PathBuf::from("/etc")];
        let m = |t: &str| mount_point(dir, &machine, Path::new(t));
        assert_eq!(m("/etc/hosts"), None);
        assert_eq!(
            m("/run/gemelo/events.sock"),
            Some(PathBuf::from(
                "/run/gemelo/twin/hosts/web1/run/gemelo/events.sock"
            ))
        );
        assert_eq!(
            m("/tmp/gemelo-x/events.sock"),
            Some(PathBuf::from(
                "/run/gemelo/twin/hosts/web1/rootfs/tmp/gemelo-x/events.sock"
            ))
        );
    }

    #[test]
    fn domain_xml_attaches_every_nic_to_the_twin_bridge() {
        let mut h = host_with("http", 80, "lighttpd", serde_json::Value::Null);
        h.interfaces[0].vlan = Some(10);
        let dir = Path::new("/run/gemelo/twin/hosts/web1");
        let b = binds(
            dir,
            &[decoy("/run/gemelo/events.sock")],
            &[PathBuf::from("/usr")],
            &[PathBuf::from("/run/gemelo/events.sock")],
        );
        let xml = domain_xml(&h, "gm-twin0", dir, &b);
        assert!(
            xml.starts_with("<domain type='lxc'>\n  <name>gm-twin-web1</name>\n"),
            "{xml}"
        );
        assert!(xml.contains(
            "    <interface type='bridge'>\n      <source bridge='gm-twin0'/>\n      <virtualport type='openvswitch'/>\n      <mac address='02:00:00:00:00:01'/>\n      <vlan><tag id='10'/></vlan>\n    </interface>\n"
        ), "{xml}");
        assert_eq!(xml.matches("<interface ").count(), 1);
        assert!(xml.contains("<initarg>exec /bin/sh &apos;/run/gemelo/twin/hosts/web1/init.sh&apos; &gt;&apos;/run/gemelo/twin/hosts/web1/init.log&apos; 2&gt;&amp;1</initarg>"), "{xml}");
        assert!(xml.contains("<source dir='/usr'/>\n      <target dir='/usr'/>\n      <readonly/>"));
        // /run first, then the host dir inside it.
        let run = xml.find("<target dir='/run'/>").unwrap();
        let own = xml
            .find("<target dir='/run/gemelo/twin/hosts/web1'/>")
            .unwrap();
        assert!(run < own);
        assert!(!xml.contains("type='ram'"));
        assert!(!xml.contains("type='network'") && !xml.contains("type='user'"));
    }
}
