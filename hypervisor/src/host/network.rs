//! A host's network, made from inside its own namespace: what the lab's and
//! the twin's `ip -batch` + `ethtool` + `sysctl` steps did, as system calls
//! and rtnetlink requests from the thread that creates the namespace.
//!
//! `create` runs on a thread of `ns::on_own_threads` (it leaves the thread in
//! the host's namespace). Everything is the host's own: if a step fails the
//! namespace is deleted again, which also removes its veths and their peers,
//! so a failed host leaves nothing on the switch's side.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use super::netlink::{self, Rtnl};
use super::ns;
use super::HostError;

/// One veth of a host: `name` (with `mac` and `addresses`) inside the host,
/// `peer` in the switch's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: [u8; 6],
    pub peer: String,
    /// (address, prefix length).
    pub addresses: Vec<(Ipv4Addr, u8)>,
}

/// What a host's network namespace holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetwork {
    pub namespace: String,
    pub interfaces: Vec<Interface>,
    pub gateway: Option<Ipv4Addr>,
    /// Written either way: a new namespace may inherit the machine's setting.
    pub ip_forward: bool,
}

/// `aa:bb:cc:dd:ee:ff` as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn step(net: &HostNetwork, what: String) -> impl FnOnce(io::Error) -> HostError {
    let what = format!("{what} in {}", net.namespace);
    move |source| HostError::Kernel { what, source }
}

/// Creates `net.namespace` (the calling thread stays in it), its veths with
/// the peers in `peer_netns` (up), addresses, links up, default route,
/// software transmit checksums and `ip_forward`. On failure its veths and
/// the namespace are removed again (the veths at once: a namespace itself
/// goes only when the kernel gets to it).
pub fn create(net: &HostNetwork, peer_netns: &File) -> Result<(), HostError> {
    // A socket in the peers' namespace first (sockets stay in the namespace
    // they were made in), then into the host's own.
    // SAFETY: setns on a valid namespace fd moves only this thread.
    if unsafe { libc::setns(peer_netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(step(net, "enter the switch's namespace".into())(
            io::Error::last_os_error(),
        ));
    }
    let mut peers = Rtnl::open().map_err(step(net, "open rtnetlink (switch side)".into()))?;
    ns::create_netns(&net.namespace)?;
    let made = Rtnl::open()
        .map_err(step(net, "open rtnetlink".into()))
        .and_then(|mut host| {
            let made = configure(net, peer_netns, &mut host, &mut peers);
            if made.is_err() {
                for i in &net.interfaces {
                    let _ = host.delete_named(&i.name);
                }
            }
            made
        });
    if made.is_err() {
        let _ = ns::delete_netns(&net.namespace);
    }
    made
}

fn configure(
    net: &HostNetwork,
    peer_netns: &File,
    rtnl: &mut Rtnl,
    peers: &mut Rtnl,
) -> Result<(), HostError> {
    let lo = netlink::index_of("lo").map_err(step(net, "find lo".into()))?;
    rtnl.set_up(lo)
        .map_err(step(net, "link set lo up".into()))?;
    for i in &net.interfaces {
        rtnl.new_veth(&i.name, i.mac, &i.peer, peer_netns.as_raw_fd())
            .map_err(step(
                net,
                format!("link add {} type veth peer name {}", i.name, i.peer),
            ))?;
        peers
            .set_up_named(&i.peer)
            .map_err(step(net, format!("link set {} up (switch side)", i.peer)))?;
        let index = netlink::index_of(&i.name).map_err(step(net, format!("find {}", i.name)))?;
        for (addr, prefix) in &i.addresses {
            rtnl.add_address(index, *addr, *prefix).map_err(step(
                net,
                format!("addr add {addr}/{prefix} dev {}", i.name),
            ))?;
        }
        rtnl.set_up(index)
            .map_err(step(net, format!("link set {} up", i.name)))?;
    }
    if let Some(gw) = net.gateway {
        rtnl.add_default_route(gw)
            .map_err(step(net, format!("route add default via {gw}")))?;
    }
    for i in &net.interfaces {
        tx_checksum_off(&i.name).map_err(step(net, format!("ethtool -K {} tx off", i.name)))?;
    }
    let forward = if net.ip_forward { "1\n" } else { "0\n" };
    // /proc/sys/net shows the namespace of the thread that opens it.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", forward)
        .map_err(step(net, "sysctl net.ipv4.ip_forward".into()))?;
    Ok(())
}

/// `ethtool -K IFACE tx off` in the calling thread's namespace: the
/// userspace datapath of OVS 3.1 drops, instead of tunneling, packets that
/// still carry offload flags, so hosts whose packets may cross the GRE
/// tunnel compute their checksums themselves. (ETHTOOL_STXCSUM clears the
/// same features as `tx off`: every tx-checksum-* one; segmentation offloads
/// that need them go off with them.)
pub fn tx_checksum_off(iface: &str) -> io::Result<()> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_STXCSUM: u32 = 0x17;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let name = iface.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{iface:?} is not an interface name"),
        ));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // SAFETY: plain socket(2), closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: req names the interface and points at `value`, both alive for the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req) };
    let err = (rc < 0).then(io::Error::last_os_error);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:78:00:0a:FF:01"),
            Some([0x02, 0x78, 0, 0x0a, 0xff, 0x01])
        );
        for bad in [
            "",
            "02:78:00:00:00",
            "02:78:00:00:00:01:02",
            "02:78:00:00:00:1g",
            "002:78:00:00:00:01",
            "02::00:00:00:01",
            "02-78-00-00-00-01",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn interface_names_are_checked_before_the_kernel_sees_them() {
        assert!(tx_checksum_off("").is_err());
        assert!(tx_checksum_off("a-name-longer-than-15").is_err());
        assert!(tx_checksum_off("gm\0eth").is_err());
    }
}
