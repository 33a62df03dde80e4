//! The GRE tunnel between the production fabric and the twin hypervisor.
//!
//! Both ends are userspace OVS instances. Each is plugged into the underlay
//! (`ovs-scripts/add-underlay.sh`: a `gm-ul` bridge whose internal port holds the
//! tunnel address, joined to the underlay namespace) and gets one GRE port
//! (`ovs-scripts/add-gre-port.sh`: key set per flow, kept out of NORMAL flooding).
//! The addresses and MACs are fixed so that each end holds a static tunnel
//! neighbour entry for the other: no ARP resolution delays a redirection's first
//! packet, and no entry expires under an idle tunnel.
//!
//! In a data center the operator plugs the production switch into its real
//! underlay with the same two scripts; the lab does it for its own fabric.

use std::path::Path;

use crate::host::system::run_script;
use crate::host::HostError;

pub const ADD_UNDERLAY_SH: &str = include_str!("../../ovs-scripts/add-underlay.sh");
pub const ADD_GRE_PORT_SH: &str = include_str!("../../ovs-scripts/add-gre-port.sh");

/// The namespace standing for the underlay network (created by the first plug).
pub const UNDERLAY_NAMESPACE: &str = "gm-underlay";
/// The GRE port's name on the production switch and on the twin switch.
pub const TUNNEL_PORT: &str = "gm-gre0";

/// One end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Short name of the end (veth `gm-ul-NAME`).
    pub name: &'static str,
    /// Tunnel address with prefix.
    pub addr: &'static str,
    /// MAC of the end's `gm-ul` port.
    pub mac: &'static str,
}

impl End {
    pub fn ip(&self) -> &'static str {
        self.addr.split('/').next().unwrap_or(self.addr)
    }
}

/// The production fabric's end (RFC 2544 benchmarking space, inside namespaces only).
pub const PRODUCTION: End = End {
    name: "prod",
    addr: "198.18.0.1/24",
    mac: "02:67:6d:75:6c:01",
};
/// The twin hypervisor's end.
pub const TWIN: End = End {
    name: "twin",
    addr: "198.18.0.2/24",
    mac: "02:67:6d:75:6c:02",
};

/// Plugs the OVS instance in `namespace` (run dir `rundir`) into the underlay as
/// `local`, and adds the GRE port toward `remote` on `bridge`.
pub fn attach(
    rundir: &Path,
    namespace: &str,
    bridge: &str,
    local: End,
    remote: End,
) -> Result<(), HostError> {
    plug_underlay(rundir, namespace, local)?;
    add_tunnel_port(rundir, bridge, local, remote)
}

/// The first half of `attach`: the instance's `gm-ul` bridge, holding
/// `local`'s address, joined to the underlay. Needs no other bridge.
pub fn plug_underlay(rundir: &Path, namespace: &str, local: End) -> Result<(), HostError> {
    let rundir = rundir.display().to_string();
    run_script(
        "add-underlay.sh",
        ADD_UNDERLAY_SH,
        &[&rundir, namespace, local.name, local.addr, local.mac],
    )?;
    Ok(())
}

/// The second half of `attach`: the GRE port toward `remote` on `bridge`.
pub fn add_tunnel_port(
    rundir: &Path,
    bridge: &str,
    local: End,
    remote: End,
) -> Result<(), HostError> {
    let rundir = rundir.display().to_string();
    let mut args = vec![
        rundir.as_str(),
        bridge,
        TUNNEL_PORT,
        remote.ip(),
        remote.mac,
    ];
    if local == TWIN {
        // Redirected packets enter the twin's switching tagged with their segment.
        args.insert(0, "--trunk");
    }
    run_script("add-gre-port.sh", ADD_GRE_PORT_SH, &args)?;
    Ok(())
}

/// The `ovs-vsctl` commands (each after a `--`) that make the GRE port
/// toward `remote` on `bridge`, as `add-gre-port.sh` makes it: for a switch's
/// initial configuration. Its static neighbour entry follows once the
/// instance runs (`set_tunnel_neighbour`).
pub fn tunnel_port_commands(bridge: &str, local: End, remote: End) -> Vec<String> {
    let mut c: Vec<String> = [
        "--",
        "add-port",
        bridge,
        TUNNEL_PORT,
        "--",
        "set",
        "interface",
        TUNNEL_PORT,
        "type=gre",
    ]
    .map(str::to_owned)
    .to_vec();
    c.push(format!("options:remote_ip={}", remote.ip()));
    c.push("options:key=flow".into());
    if local != TWIN {
        // As add-gre-port.sh without --trunk: out of every VLAN's flooding.
        c.extend(["--", "set", "port", TUNNEL_PORT, "tag=4094"].map(str::to_owned));
    }
    c
}

/// The static tunnel neighbour entry for `remote` on the instance's `gm-ul`
/// bridge (as `add-gre-port.sh` sets it).
pub fn set_tunnel_neighbour(rundir: &Path, remote: End) -> Result<(), HostError> {
    crate::host::system::run_args(
        "ovs-appctl",
        &[
            "-t",
            &rundir.join("ovs-vswitchd.ctl").display().to_string(),
            "tnl/neigh/set",
            "gm-ul",
            remote.ip(),
            remote.mac,
        ],
    )?;
    Ok(())
}

/// Removes the underlay namespace once nothing is plugged into it (no
/// `gm-ulb-*` veth end left): the last end to go takes it away, whichever of
/// the lab and the twin that is, and even when a crash lost who created it.
pub fn remove_underlay_if_unused() -> Result<(), HostError> {
    let listed = crate::host::system::run_args("ip", &["netns", "list"])?;
    if !listed
        .lines()
        .any(|l| l.split_whitespace().next() == Some(UNDERLAY_NAMESPACE))
    {
        return Ok(());
    }
    // A deleted namespace's interfaces go asynchronously: give the twin's end
    // (whose namespace was just deleted) a moment to vanish.
    let twin_end = format!("gm-ulb-{}", TWIN.name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let links = loop {
        let links = crate::host::system::run_args("ip", &["-n", UNDERLAY_NAMESPACE, "-o", "link"])?;
        if !links.contains(&twin_end) || std::time::Instant::now() > deadline {
            break links;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if links.lines().any(|l| l.contains("gm-ulb-")) {
        return Ok(());
    }
    crate::host::system::run_args("ip", &["netns", "del", UNDERLAY_NAMESPACE])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twin_s_tunnel_port_is_a_trunk() {
        let twin = tunnel_port_commands("gm-twin0", TWIN, PRODUCTION).join(" ");
        assert_eq!(
            twin,
            "-- add-port gm-twin0 gm-gre0 -- set interface gm-gre0 type=gre options:remote_ip=198.18.0.1 options:key=flow"
        );
        let prod = tunnel_port_commands("gm-sw1", PRODUCTION, TWIN).join(" ");
        assert!(prod.ends_with(
            "options:remote_ip=198.18.0.2 options:key=flow -- set port gm-gre0 tag=4094"
        ));
    }

    #[test]
    fn ends_share_a_subnet_and_differ() {
        assert_eq!(PRODUCTION.ip(), "198.18.0.1");
        assert_eq!(TWIN.ip(), "198.18.0.2");
        assert_ne!(PRODUCTION.mac, TWIN.mac);
        assert!(TUNNEL_PORT.starts_with("gm-") && TUNNEL_PORT.len() <= 15);
    }
}
