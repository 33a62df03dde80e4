//! rtnetlink, the few requests a host's network needs (what `ip link add ...
//! type veth`, `ip link set up`, `ip addr add`, `ip route add default` send),
//! made from Rust so that building a host costs no `ip` process.
//!
//! Messages are built by pure functions (`new_veth`, `set_up`, `add_address`,
//! `add_default_route`): the same bytes iproute2 6.1 sends for the same
//! command, which the tests at the bottom check against captures of `ip`
//! (`strace -xx`). `Rtnl` is a NETLINK_ROUTE socket bound to the network
//! namespace its thread was in when it was opened; it sends one request at a
//! time and reads the kernel's acknowledgement, with the kernel's own words
//! (extended ack, e.g. "Nexthop has invalid gateway") in the error.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// Set on an error message that carries extended-ack attributes.
const NLM_F_ACK_TLVS: u16 = 0x200;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const NLMSGERR_ATTR_MSG: u16 = 1;

const IFF_UP: u32 = 0x1;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

const HEADER_LEN: usize = 16;

/// Attributes are padded to 4 bytes.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// One netlink message being built: header, family header, attributes.
struct Message {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16, family_header: &[u8]) -> Message {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(family_header);
        Message {
            buf,
            nests: Vec::new(),
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Message {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + align(len) - len, 0);
        self
    }

    /// A NUL-terminated string attribute (interface names).
    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Message {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// Opens a nested attribute: the attributes that follow go inside it
    /// until `end`. `extra` is a fixed header the nest starts with.
    fn begin(&mut self, kind: u16, extra: &[u8]) -> &mut Message {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(extra);
        self
    }

    fn end(&mut self) -> &mut Message {
        let start = self.nests.pop().expect("end matches a begin");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self, seq: u32) -> Vec<u8> {
        assert!(self.nests.is_empty(), "unclosed nested attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        std::mem::take(&mut self.buf)
    }
}

/// `struct ifinfomsg` (family, type 0, index, flags, change).
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `ip link add NAME address MAC type veth peer name PEER netns PEER_NS`,
/// sent from inside NAME's namespace: the peer goes to the namespace whose
/// file descriptor is `peer_netns`. (Neither end can come up in the same
/// request: a veth refuses to open before its peer is set, ENOTCONN.)
pub fn new_veth(seq: u32, name: &str, mac: [u8; 6], peer: &str, peer_netns: RawFd) -> Vec<u8> {
    Message::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, 0, 0),
    )
    .attr(IFLA_ADDRESS, &mac)
    .attr_str(IFLA_IFNAME, name)
    .begin(IFLA_LINKINFO, &[])
    .attr(IFLA_INFO_KIND, b"veth")
    .begin(IFLA_INFO_DATA, &[])
    .begin(VETH_INFO_PEER, &ifinfomsg(0, 0, 0))
    .attr(IFLA_NET_NS_FD, &(peer_netns as u32).to_ne_bytes())
    .attr_str(IFLA_IFNAME, peer)
    .end()
    .end()
    .end()
    .finish(seq)
}

/// `ip link set dev up` for the interface with index `index`.
pub fn set_up(seq: u32, index: u32) -> Vec<u8> {
    Message::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &ifinfomsg(index, IFF_UP, IFF_UP),
    )
    .finish(seq)
}

/// `ip link set NAME up`, naming the interface instead of giving its index
/// (for a socket in another namespace than the caller's thread).
pub fn set_up_named(seq: u32, name: &str) -> Vec<u8> {
    Message::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &ifinfomsg(0, IFF_UP, IFF_UP),
    )
    .attr_str(IFLA_IFNAME, name)
    .finish(seq)
}

/// `ip link del NAME` (for a veth: both ends).
pub fn delete_named(seq: u32, name: &str) -> Vec<u8> {
    Message::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, &ifinfomsg(0, 0, 0))
        .attr_str(IFLA_IFNAME, name)
        .finish(seq)
}

/// `ip addr add ADDR/PREFIX dev` the interface with index `index`.
pub fn add_address(seq: u32, index: u32, addr: Ipv4Addr, prefix: u8) -> Vec<u8> {
    let mut h = [0u8; 8];
    h[0] = AF_INET;
    h[1] = prefix;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    Message::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &h,
    )
    .attr(IFA_LOCAL, &addr.octets())
    .attr(IFA_ADDRESS, &addr.octets())
    .finish(seq)
}

/// `ip route add default via GATEWAY` (main table).
pub fn add_default_route(seq: u32, gateway: Ipv4Addr) -> Vec<u8> {
    let h = [
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    Message::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &h,
    )
    .attr(RTA_GATEWAY, &gateway.octets())
    .finish(seq)
}

/// What an acknowledgement for request `seq` says: `Ok` for error 0, else
/// the errno and the kernel's extended-ack message if it sent one; `None`
/// when `reply` holds no acknowledgement for `seq`.
pub fn parse_ack(reply: &[u8], seq: u32) -> Option<Result<(), (i32, Option<String>)>> {
    let mut rest = reply;
    while rest.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(rest[4..6].try_into().ok()?);
        let flags = u16::from_ne_bytes(rest[6..8].try_into().ok()?);
        let msg_seq = u32::from_ne_bytes(rest[8..12].try_into().ok()?);
        let body = &rest[HEADER_LEN..len];
        if kind == NLMSG_ERROR && msg_seq == seq && body.len() >= 4 {
            let error = i32::from_ne_bytes(body[0..4].try_into().ok()?);
            if error == 0 {
                return Some(Ok(()));
            }
            // With NETLINK_CAP_ACK the request comes back as its header only.
            let tlvs = body.get(4 + HEADER_LEN..).unwrap_or_default();
            let message = (flags & NLM_F_ACK_TLVS != 0)
                .then(|| ext_ack_message(tlvs))
                .flatten();
            return Some(Err((error.checked_neg().unwrap_or(libc::EIO), message)));
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    None
}

fn ext_ack_message(mut tlvs: &[u8]) -> Option<String> {
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = &tlvs[align(len).min(tlvs.len())..];
    }
    None
}

/// A NETLINK_ROUTE socket in the network namespace of the thread that opened it.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all zeros then the family is a valid address.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: an int option on our socket; older kernels refuse it,
            // which only costs the extended message.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(Rtnl { fd, seq: 0 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends the request `build(seq)` and waits for its acknowledgement.
    fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<()> {
        let seq = self.next_seq();
        let msg = build(seq);
        // SAFETY: msg is a valid buffer of msg.len() bytes.
        let sent = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: buf is a valid writable buffer of buf.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            match parse_ack(&buf[..n as usize], seq) {
                Some(Ok(())) => return Ok(()),
                Some(Err((errno, message))) => {
                    let e = io::Error::from_raw_os_error(errno);
                    return Err(match message {
                        Some(m) => io::Error::new(e.kind(), format!("{m} ({e})")),
                        None => e,
                    });
                }
                None => continue,
            }
        }
    }

    /// A veth pair, `name` here and `peer` in the namespace of `peer_netns`.
    pub fn new_veth(
        &mut self,
        name: &str,
        mac: [u8; 6],
        peer: &str,
        peer_netns: RawFd,
    ) -> io::Result<()> {
        self.request(|seq| new_veth(seq, name, mac, peer, peer_netns))
    }

    pub fn delete_named(&mut self, name: &str) -> io::Result<()> {
        self.request(|seq| delete_named(seq, name))
    }

    pub fn set_up_named(&mut self, name: &str) -> io::Result<()> {
        self.request(|seq| set_up_named(seq, name))
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.request(|seq| set_up(seq, index))
    }

    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.request(|seq| add_address(seq, index, addr, prefix))
    }

    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        self.request(|seq| add_default_route(seq, gateway))
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn index_of(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} holds a NUL byte"),
        )
    })?;
    // SAFETY: c is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured with `strace -xx -e sendmsg ip -n gm-cap-a link add gm-eth0
    /// address 02:78:00:00:00:01 type veth peer name gmtcap0 netns gm-cap-b`
    /// (iproute2 6.1; the peer namespace's fd was 5, seq 0x6b077a23).
    const IP_LINK_ADD_VETH: &[u8] =
        b"\x70\x00\x00\x00\x10\x00\x05\x06\x23\x7a\x07\x6b\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x01\x00\x02\x78\x00\x00\
\x00\x01\x00\x00\x0c\x00\x03\x00\x67\x6d\x2d\x65\x74\x68\x30\x00\x38\x00\x12\x00\x08\x00\x01\x00\
\x76\x65\x74\x68\x2c\x00\x02\x00\x28\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x08\x00\x1c\x00\x05\x00\x00\x00\x0c\x00\x03\x00\x67\x6d\x74\x63\x61\x70\x30\x00";

    /// `ip -n gm-cap-a link set lo up` (lo has index 1).
    const IP_LINK_SET_UP: &[u8] =
        b"\x20\x00\x00\x00\x10\x00\x05\x00\x23\x7a\x07\x6b\x00\x00\x00\x00\
\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00";

    /// `ip -n gm-cap-a addr add 10.78.0.1/16 dev gm-eth0` (index 2).
    const IP_ADDR_ADD: &[u8] = b"\x28\x00\x00\x00\x14\x00\x05\x06\x23\x7a\x07\x6b\x00\x00\x00\x00\
\x02\x10\x00\x00\x02\x00\x00\x00\x08\x00\x02\x00\x0a\x4e\x00\x01\x08\x00\x01\x00\x0a\x4e\x00\x01";

    /// `ip -n gm-cap-a route add default via 10.78.0.254`.
    const IP_ROUTE_ADD: &[u8] = b"\x24\x00\x00\x00\x18\x00\x05\x06\x23\x7a\x07\x6b\x00\x00\x00\x00\
\x02\x00\x00\x00\xfe\x03\x00\x01\x00\x00\x00\x00\x08\x00\x05\x00\x0a\x4e\x00\xfe";

    const SEQ: u32 = 0x6b07_7a23;

    #[test]
    fn requests_are_the_bytes_ip_sends() {
        let mac = [0x02, 0x78, 0, 0, 0, 0x01];
        assert_eq!(
            new_veth(SEQ, "gm-eth0", mac, "gmtcap0", 5),
            IP_LINK_ADD_VETH
        );
        // By name: index 0, then IFLA_IFNAME (what the kernel looks up instead).
        let named = set_up_named(SEQ, "lo");
        assert_eq!(named.len(), IP_LINK_SET_UP.len() + 8);
        assert_eq!(named[0], 40);
        assert_eq!(named[4..20], IP_LINK_SET_UP[4..20]);
        assert_eq!(named[20..24], [0, 0, 0, 0]);
        assert_eq!(named[24..32], IP_LINK_SET_UP[24..32]);
        assert_eq!(named[32..], *b"\x07\x00\x03\x00lo\x00\x00");
        let del = delete_named(SEQ, "lo");
        assert_eq!(del[4..6], 17u16.to_ne_bytes());
        assert_eq!(del[16..32], [0; 16]);
        assert_eq!(del[32..], named[32..]);
        assert_eq!(set_up(SEQ, 1), IP_LINK_SET_UP);
        assert_eq!(
            add_address(SEQ, 2, "10.78.0.1".parse().unwrap(), 16),
            IP_ADDR_ADD
        );
        assert_eq!(
            add_default_route(SEQ, "10.78.0.254".parse().unwrap()),
            IP_ROUTE_ADD
        );
    }

    fn error_reply(seq: u32, errno: i32, message: Option<&str>) -> Vec<u8> {
        let mut body = (-errno).to_ne_bytes().to_vec();
        body.extend_from_slice(&IP_ROUTE_ADD[..HEADER_LEN]);
        let mut flags = 0x100u16; // NLM_F_CAPPED
        if let Some(m) = message {
            flags |= NLM_F_ACK_TLVS;
            let mut text = m.as_bytes().to_vec();
            text.push(0);
            body.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            body.extend_from_slice(&text);
            body.resize(align(body.len()), 0);
        }
        let mut msg = Message::new(NLMSG_ERROR, flags, &body);
        msg.finish(seq)
    }

    #[test]
    fn acks_and_errors_are_read() {
        assert_eq!(parse_ack(&error_reply(7, 0, None), 7), Some(Ok(())));
        assert_eq!(parse_ack(&error_reply(7, 0, None), 8), None);
        assert_eq!(
            parse_ack(
                &error_reply(9, libc::ENETUNREACH, Some("Nexthop has invalid gateway")),
                9
            ),
            Some(Err((
                libc::ENETUNREACH,
                Some("Nexthop has invalid gateway".into())
            )))
        );
        assert_eq!(
            parse_ack(&error_reply(9, libc::EEXIST, None), 9),
            Some(Err((libc::EEXIST, None)))
        );
        // Truncated or garbage replies are no acknowledgement, never a panic.
        let ok = error_reply(3, 0, None);
        for cut in 0..ok.len() {
            let _ = parse_ack(&ok[..cut], 3);
        }
        assert_eq!(parse_ack(&[0xff; 40], 3), None);
    }
}
