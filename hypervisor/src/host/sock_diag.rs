//! sock_diag (NETLINK_SOCK_DIAG), the way `ss -ltnu` asks the kernel which
//! sockets listen: a dump of TCP sockets in LISTEN and UDP sockets that are
//! unconnected, per address family, in the network namespace of the thread
//! that opens the socket.
//!
//! Reading `/proc/net/tcp` instead walks the whole established-connection
//! hash of the machine (milliseconds per read); a LISTEN-only dump walks the
//! listening hash alone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const HEADER_LEN: usize = 16;

const TCP_LISTEN: u32 = 10;
const TCP_CLOSE: u32 = 7;

/// The socket kinds `ss -l` lists for a protocol: TCP LISTEN, UDP
/// unconnected (state CLOSE; `ss` asks for LISTEN too).
fn states(proto: u8) -> u32 {
    if proto == libc::IPPROTO_TCP as u8 {
        1 << TCP_LISTEN
    } else {
        (1 << TCP_CLOSE) | (1 << TCP_LISTEN)
    }
}

/// The dump request for `family` (AF_INET, AF_INET6) and `proto`
/// (IPPROTO_TCP, IPPROTO_UDP): `struct inet_diag_req_v2`, every socket id
/// field zero.
pub fn dump_request(seq: u32, family: u8, proto: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(72);
    m.extend_from_slice(&72u32.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, proto, 0, 0]);
    m.extend_from_slice(&states(proto).to_ne_bytes());
    m.resize(72, 0);
    m
}

/// What one `recv` of a dump holds: local ports of the sockets in it, and
/// whether the dump is over (`Err` with the errno if the kernel refused).
pub fn parse_dump(reply: &[u8], seq: u32, ports: &mut Vec<u16>) -> Result<bool, i32> {
    let mut rest = reply;
    while rest.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return Err(libc::EBADMSG);
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let msg_seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let body = &rest[HEADER_LEN..len];
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let error = body
                        .get(0..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(-libc::EBADMSG);
                    return Err(error.checked_neg().unwrap_or(libc::EIO));
                }
                // struct inet_diag_msg: family, state, timer, retrans,
                // then the socket id, whose first field is the source port
                // (network order).
                SOCK_DIAG_BY_FAMILY if body.len() >= 6 => {
                    ports.push(u16::from_be_bytes([body[4], body[5]]));
                }
                _ => {}
            }
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    Ok(false)
}

/// Local ports of the sockets of `proto` (IPPROTO_TCP or IPPROTO_UDP) that
/// `ss -l` would list, both address families, in the calling thread's
/// network namespace.
pub fn listening_ports(proto: u8) -> io::Result<Vec<u16>> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ports = Vec::new();
    let mut buf = vec![0u8; 16384];
    for (seq, family) in [(1u32, libc::AF_INET as u8), (2, libc::AF_INET6 as u8)] {
        let req = dump_request(seq, family, proto);
        // SAFETY: req is a valid buffer of req.len() bytes.
        if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            // SAFETY: buf is a valid writable buffer of buf.len() bytes.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            match parse_dump(&buf[..n as usize], seq, &mut ports) {
                Ok(true) => break,
                Ok(false) if n == 0 => break,
                Ok(false) => {}
                // No IPv6 in this kernel: no IPv6 sockets either.
                Err(libc::EAFNOSUPPORT) | Err(libc::ENOENT) if family == libc::AF_INET6 as u8 => {
                    break
                }
                Err(errno) => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ss -Hlun` sends for AF_INET/UDP (strace: family AF_INET,
    /// protocol IPPROTO_UDP, states 1<<TCP_CLOSE|1<<TCP_LISTEN, id all
    /// zero), seq 123456.
    #[test]
    fn udp_request_is_what_ss_sends() {
        let mut want = vec![
            72, 0, 0, 0, 20, 0, 0x01, 0x03, 0x40, 0xe2, 0x01, 0, 0, 0, 0, 0,
        ];
        want.extend_from_slice(&[2, 17, 0, 0, 0x80, 0x04, 0, 0]);
        want.resize(72, 0);
        assert_eq!(dump_request(123_456, 2, 17), want);
        // TCP: LISTEN only (ss asks for CLOSE too and drops it; asking for
        // it would walk the established hash).
        assert_eq!(dump_request(1, 10, 6)[16..24], [10, 6, 0, 0, 0, 0x04, 0, 0]);
    }

    fn reply(seq: u32, kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = ((HEADER_LEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[2, 0]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(body);
        m.resize((m.len() + 3) & !3, 0);
        m
    }

    #[test]
    fn dumps_give_source_ports_and_end() {
        // inet_diag_msg of a socket listening on 0.0.0.0:22 (family 2,
        // state LISTEN), truncated after the addresses.
        let mut sock = vec![2, 10, 0, 0, 0x00, 0x16, 0, 0];
        sock.resize(72, 0);
        let mut msgs = reply(5, SOCK_DIAG_BY_FAMILY, &sock);
        sock[4..6].copy_from_slice(&8080u16.to_be_bytes());
        msgs.extend(reply(5, SOCK_DIAG_BY_FAMILY, &sock));
        let mut ports = Vec::new();
        assert_eq!(parse_dump(&msgs, 5, &mut ports), Ok(false));
        assert_eq!(ports, [22, 8080]);
        assert_eq!(
            parse_dump(&reply(5, NLMSG_DONE, &[0; 4]), 5, &mut ports),
            Ok(true)
        );
        let refused = reply(5, NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse_dump(&refused, 5, &mut ports), Err(libc::EPERM));
        // Messages of another request are not ours.
        assert_eq!(
            parse_dump(&reply(6, NLMSG_DONE, &[0; 4]), 5, &mut ports),
            Ok(false)
        );
        // Garbage is an error, never a panic.
        assert!(parse_dump(&[0xff; 20], 5, &mut ports).is_err());
        let all = reply(5, SOCK_DIAG_BY_FAMILY, &sock);
        for cut in 0..all.len() {
            let _ = parse_dump(&all[..cut], 5, &mut Vec::new());
        }
    }
}
