//! The `learning` forwarding mode: an L2 learning switch answering table-miss
//! PACKET_INs of the forward table.
//!
//! Runs inside the switch's session task (one MAC table per switch), so a
//! PACKET_IN is answered without crossing a channel. For a known destination it
//! installs `dl_dst=MAC → output:PORT` in the forward table (idle timeout, cookie
//! kind "learned") and sends the packet on; an unknown or multicast destination is
//! flooded. MACs on a port that goes down are forgotten.

use crate::openflow::{
    port, Action, FlowMod, Instruction, Match, Message, OxmField, PacketIn, PacketOut, PortStatus,
};
use crate::pipeline::{priority, Cookie, CookieKind, FORWARD};
use std::collections::HashMap;

/// Idle timeout of learned flows, seconds.
pub const LEARNED_IDLE_S: u16 = 60;

#[derive(Debug, Default)]
pub struct LearningSwitch {
    macs: HashMap<[u8; 6], u32>,
}

fn in_port(m: &Match) -> Option<u32> {
    m.fields.iter().find_map(|f| match f {
        OxmField::InPort(p) => Some(*p),
        _ => None,
    })
}

impl LearningSwitch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer to one table-miss PACKET_IN.
    pub fn packet_in(&mut self, pi: &PacketIn) -> Vec<Message> {
        let Some(in_port) = in_port(&pi.r#match) else {
            return Vec::new();
        };
        if pi.data.len() < 14 {
            return Vec::new();
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&pi.data[0..6]);
        src.copy_from_slice(&pi.data[6..12]);
        if src[0] & 1 == 0 {
            self.macs.insert(src, in_port);
        }
        let mut out = Vec::with_capacity(2);
        let out_port = match self.macs.get(&dst) {
            Some(&p) if dst[0] & 1 == 0 && p != in_port => {
                let mut fm = FlowMod::add(
                    FORWARD.id,
                    priority::LEARNED,
                    Match::new().eth_dst(dst),
                    vec![Instruction::ApplyActions(vec![Action::Output {
                        port: p,
                        max_len: 0,
                    }])],
                );
                fm.cookie = Cookie::new(CookieKind::Learned, 0).0;
                fm.idle_timeout = LEARNED_IDLE_S;
                out.push(Message::FlowMod(fm));
                p
            }
            Some(&p) if p == in_port => return out,
            _ => port::FLOOD,
        };
        let buffered = pi.buffer_id != crate::openflow::NO_BUFFER;
        out.push(Message::PacketOut(PacketOut {
            buffer_id: pi.buffer_id,
            in_port,
            actions: vec![Action::Output {
                port: out_port,
                max_len: 0,
            }],
            data: if buffered {
                Vec::new()
            } else {
                pi.data.clone()
            },
        }));
        out
    }

    /// Forgets the MACs behind a port that went away or down.
    pub fn port_changed(&mut self, status: &PortStatus) {
        if !status.port.is_up() || status.reason == crate::openflow::port_reason::DELETE {
            let p = status.port.port_no;
            self.macs.retain(|_, v| *v != p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::NO_BUFFER;

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0u8; 46]);
        f
    }

    fn pi(in_port: u32, data: Vec<u8>) -> PacketIn {
        PacketIn {
            buffer_id: NO_BUFFER,
            total_len: data.len() as u16,
            reason: 0,
            table_id: FORWARD.id,
            cookie: crate::pipeline::baseline_cookie().0,
            r#match: Match::new().in_port(in_port),
            data,
        }
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn floods_unknown_then_installs_known() {
        let mut l2 = LearningSwitch::new();
        let first = l2.packet_in(&pi(1, frame(B, A)));
        assert_eq!(first.len(), 1);
        match &first[0] {
            Message::PacketOut(po) => {
                assert_eq!(
                    po.actions,
                    vec![Action::Output {
                        port: port::FLOOD,
                        max_len: 0
                    }]
                );
                assert!(!po.data.is_empty(), "unbuffered packets carry their data");
            }
            other => panic!("expected packet-out, got {other:?}"),
        }
        let reply = l2.packet_in(&pi(2, frame(A, B)));
        assert_eq!(reply.len(), 2);
        match &reply[0] {
            Message::FlowMod(fm) => {
                assert_eq!(fm.table_id, FORWARD.id);
                assert_eq!(fm.r#match, Match::new().eth_dst(A));
                assert_eq!(Cookie(fm.cookie).kind(), Some(CookieKind::Learned));
                assert_eq!(fm.idle_timeout, LEARNED_IDLE_S);
            }
            other => panic!("expected flow-mod, got {other:?}"),
        }
    }

    #[test]
    fn short_or_portless_packets_are_ignored() {
        let mut l2 = LearningSwitch::new();
        assert!(l2.packet_in(&pi(1, vec![1, 2, 3])).is_empty());
        let mut p = pi(1, frame(B, A));
        p.r#match = Match::new();
        assert!(l2.packet_in(&p).is_empty());
    }
}
