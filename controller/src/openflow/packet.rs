//! PACKET_IN (switch → controller) and PACKET_OUT (controller → switch).

use super::action::{emit_actions, parse_actions, Action};
use super::oxm::Match;
use super::wire::{len16, patch_u16, put_u16, put_u32, put_u64, put_zeros, Reader};
use super::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    /// Length of the frame on the wire (data may be shorter).
    pub total_len: u16,
    /// One of `packet_in_reason::*`.
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    /// Pipeline fields; always includes `IN_PORT`.
    pub r#match: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    /// The ingress port from the match.
    pub fn in_port(&self) -> Option<u32> {
        self.r#match.get_in_port()
    }

    pub(crate) fn parse(body: &[u8]) -> Result<PacketIn, Error> {
        let mut r = Reader::new(body);
        let buffer_id = r.u32("packet_in")?;
        let total_len = r.u16("packet_in")?;
        let reason = r.u8("packet_in")?;
        let table_id = r.u8("packet_in")?;
        let cookie = r.u64("packet_in")?;
        let r#match = Match::parse(&mut r)?;
        r.skip(2, "packet_in padding")?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            r#match,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u16(out, self.total_len);
        out.push(self.reason);
        out.push(self.table_id);
        put_u64(out, self.cookie);
        self.r#match.emit(out);
        put_zeros(out, 2);
        out.extend_from_slice(&self.data);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// `NO_BUFFER` when `data` carries the frame.
    pub buffer_id: u32,
    /// Port the packet is treated as arriving on (`port::CONTROLLER` if none).
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    /// Sends `data` out through `actions`.
    pub fn new(actions: Vec<Action>, data: Vec<u8>) -> PacketOut {
        PacketOut {
            buffer_id: super::NO_BUFFER,
            in_port: super::port::CONTROLLER,
            actions,
            data,
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Result<PacketOut, Error> {
        let mut r = Reader::new(body);
        let buffer_id = r.u32("packet_out")?;
        let in_port = r.u32("packet_out")?;
        let actions_len = usize::from(r.u16("packet_out")?);
        r.skip(6, "packet_out padding")?;
        let actions = parse_actions(r.take(actions_len, "packet_out actions")?)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u32(out, self.in_port);
        let len_at = out.len();
        put_u16(out, 0);
        put_zeros(out, 6);
        let start = out.len();
        emit_actions(out, &self.actions);
        let n = len16(out.len() - start);
        patch_u16(out, len_at, n);
        out.extend_from_slice(&self.data);
    }
}
