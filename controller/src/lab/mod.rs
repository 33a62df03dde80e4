//! The embedded lab: a production network built from a topology file.
//!
//! DESIGN.md "Lab": one userspace Open vSwitch instance in namespace `gm-prod`
//! with one bridge per switch of the topology (patch ports for the links
//! between them), and one network + UTS namespace per host, wired to its
//! bridge by a veth, running real Debian daemons for its services. Every
//! bridge points at the controller (`gemelo serve`), fail-mode secure, so the
//! lab is the fabric gemelo discovers and twins.
//!
//! `up` builds it, `status` describes it, `down` removes exactly what `up`
//! made (also after a crash or a half-built `up`), `host_command` runs
//! something inside a host. The topology schema lives in `topology`; the
//! daemons in `daemons`; the OVS instance is started by the same
//! `ovs-scripts/` operators use.

mod build;
mod daemons;
pub mod status;
pub mod topology;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The host-building machinery the lab shares with the twin (moved to the hypervisor crate).
use gemelo_hypervisor::host::system;
use gemelo_hypervisor::host::HostError;

pub use status::{
    DaemonStatus, HostStatus, InterfaceStatus, LabStatus, LinkStatus, ProbeStatus, SegmentStatus,
    ServiceStatus, SwitchStatus,
};
pub use topology::{Topology, TopologyError};

/// Where `gemelo serve` listens by default; the lab's bridges connect there.
pub const DEFAULT_CONTROLLER: &str = "unix:/run/gemelo/openflow.sock";
/// Namespace of the production OVS instance.
pub const PROD_NAMESPACE: &str = "gm-prod";
/// Everything the lab keeps at run time.
pub const LAB_DIR: &str = "/run/gemelo/lab";
/// Held for a whole session by whoever uses the lab for a while (the demo, each
/// end-to-end test): the lab's names are fixed, one user at a time.
pub const USERS_LOCK: &str = "/run/gemelo/test.lock";
/// Run dir of the production OVS instance (`OVS_RUNDIR`).
pub const PROD_RUNDIR: &str = "/run/gemelo/lab/prod";
/// Persistent UTS namespaces of the hosts, one file per host.
pub const UTS_DIR: &str = "/run/gemelo/lab/uts";
/// Per-host configs, keys, pid files and logs.
pub const HOSTS_DIR: &str = "/run/gemelo/lab/hosts";
/// Namespace of gemelo's probe port on the production fabric (`gm-probe0`
/// inside it, a trunk port of the first switch outside), as an operator would
/// give one: discovery's active probes start there.
pub const PROBE_NAMESPACE: &str = "gm-probe";
/// The probe's interface inside `PROBE_NAMESPACE`; VLAN segments get `gm-probe0.<vid>`.
pub const PROBE_IFNAME: &str = "gm-probe0";
/// The scope `gemelo serve` discovers when given no `--scope`: segment CIDRs,
/// one per line. `lab up` writes the lab's segments there, `lab down` removes it.
pub const DEFAULT_SCOPE_FILE: &str = "/run/gemelo/discovery-scope";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("host {host}: {daemon} is not running ({detail}); see {log}. The half-built lab is left for inspection: `gemelo lab down` removes it")]
    DaemonDied {
        host: String,
        daemon: String,
        log: PathBuf,
        detail: String,
    },
    /// `service` reads like "ssh (tcp/22, daemon sshd)".
    #[error("host {host}: service {service} did not listen within {secs} s; see {log}. The half-built lab is left for inspection: `gemelo lab down` removes it")]
    ServiceTimeout {
        host: String,
        service: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("switch {switch}: port {port} got ofport {got} instead of {wanted}")]
    Ofport {
        switch: String,
        port: String,
        wanted: u16,
        got: String,
    },
    #[error(
        "a lab was partly built ({dir} has no status.json): run `gemelo lab down` to remove it"
    )]
    Incomplete { dir: PathBuf },
    #[error("lab {lab} has no host '{host}' (hosts: {known})")]
    UnknownHost {
        lab: String,
        host: String,
        known: String,
    },
    #[error("the lab needs root (network namespaces, mounts, Open vSwitch)")]
    NotRoot,
    #[error("visitor {name}: {why}")]
    Visitor { name: String, why: String },
}

/// Builds the lab of `topology`, with every bridge pointed at `controller`;
/// returns once every declared service listens. A lab already present (or the
/// leftovers of a crashed one) is removed first.
pub fn up(topology: &Path, controller: &str) -> Result<LabStatus, LabError> {
    build::up(topology, controller)
}

/// Removes the lab: daemons (by recorded pid), the OVS instance (by its pid
/// files), the namespaces, `/etc/netns/gm-*` entries and `/run/gemelo/lab`.
/// Does nothing when there is no lab.
pub fn down() -> Result<(), LabError> {
    build::down()
}

/// The running lab, `None` when there is none.
pub fn status() -> Result<Option<LabStatus>, LabError> {
    build::status()
}

/// A command that runs `argv` inside `host`: its network namespace (with its
/// own `/etc/hosts` and `resolv.conf`) and its UTS namespace (its hostname).
pub fn host_command(status: &LabStatus, host: &str, argv: &[&str]) -> Result<Command, LabError> {
    let h = status.host(host).ok_or_else(|| LabError::UnknownHost {
        lab: status.lab.clone(),
        host: host.to_owned(),
        known: status
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &h.namespace, "nsenter"])
        .arg(format!("--uts={}", h.uts.display()))
        .arg("--")
        .args(argv);
    Ok(cmd)
}

/// A command that runs `argv` in the probe namespace (gemelo's own port on
/// the fabric), e.g. `["curl", "http://10.10.1.10/"]`.
pub fn probe_command(status: &LabStatus, argv: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &status.probe.namespace])
        .args(argv);
    cmd
}

/// A command that runs `argv` in the production OVS namespace with
/// `OVS_RUNDIR` set, e.g. `["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "unix:.../gm-sw1.mgmt"]`.
pub fn prod_command(status: &LabStatus, argv: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.env("OVS_RUNDIR", &status.rundir)
        .args(["netns", "exec", &status.namespace])
        .args(argv);
    cmd
}

/// A visitor: a machine plugged into the running lab after it was built (the
/// demo's and tests' attacker), with an address on a segment and that
/// segment's default route. Namespace `gm-<lab>-<name>`, so `lab down` removes
/// it with the lab. Returns the namespace.
pub fn add_visitor(
    status: &LabStatus,
    name: &str,
    switch: &str,
    segment: &str,
    ip: std::net::Ipv4Addr,
) -> Result<String, LabError> {
    use gemelo_hypervisor::host::system::{ip_batch, ovs_vsctl};
    let bad = |why: String| LabError::Visitor {
        name: name.to_owned(),
        why,
    };
    if name.is_empty()
        || name.len() > 9
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(bad(
            "a visitor's name is 1-9 lowercase letters or digits".into()
        ));
    }
    let sw = status
        .switches
        .iter()
        .find(|s| s.name == switch)
        .ok_or_else(|| bad(format!("no switch {switch} in lab {}", status.lab)))?;
    let seg = status
        .segments
        .iter()
        .find(|s| s.name == segment)
        .ok_or_else(|| bad(format!("no segment {segment} in lab {}", status.lab)))?;
    let prefix = seg.cidr.split('/').nth(1).unwrap_or("24");
    let ns = format!("gm-{}-{name}", status.lab);
    let port = format!("gmv-{name}");
    let o = ip.octets();
    let mac = format!("02:66:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    let etc = Path::new("/etc/netns").join(&ns);
    std::fs::create_dir_all(&etc).map_err(|e| bad(format!("{}: {e}", etc.display())))?;
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1\tlocalhost\n{ip}\t{name}\n"),
    )
    .and_then(|_| std::fs::write(etc.join("resolv.conf"), ""))
    .map_err(|e| bad(format!("{}: {e}", etc.display())))?;
    ip_batch(
        None,
        &[
            format!("netns add {ns}"),
            format!(
                "link add {port} netns {} type veth peer name eth0 netns {ns} address {mac}",
                status.namespace
            ),
        ],
    )?;
    ip_batch(
        Some(&ns),
        &[
            "link set lo up".into(),
            "link set eth0 up".into(),
            format!("addr add {ip}/{prefix} dev eth0"),
            format!("route add default via {}", seg.gateway),
        ],
    )?;
    gemelo_hypervisor::host::system::checksum_in_software(&ns, &["eth0".to_string()])?;
    ip_batch(Some(&status.namespace), &[format!("link set {port} up")])?;
    let mut args = vec!["add-port".to_string(), sw.bridge.clone(), port.clone()];
    if let Some(vlan) = seg.vlan {
        args.extend([
            "--".into(),
            "set".into(),
            "port".into(),
            port,
            format!("tag={vlan}"),
        ]);
    }
    ovs_vsctl(&status.rundir, &args)?;
    Ok(ns)
}
