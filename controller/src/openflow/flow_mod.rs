//! FLOW_MOD (add/modify/delete flows) and FLOW_REMOVED (the switch's notice
//! that a flow expired or was deleted).

use super::action::{emit_instructions, parse_instructions, Instruction};
use super::oxm::Match;
use super::wire::{put_u16, put_u32, put_u64, put_zeros, Reader};
use super::Error;

/// `OFPFC_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    Add,
    Modify,
    ModifyStrict,
    Delete,
    DeleteStrict,
}

impl FlowModCommand {
    pub fn to_wire(self) -> u8 {
        match self {
            FlowModCommand::Add => 0,
            FlowModCommand::Modify => 1,
            FlowModCommand::ModifyStrict => 2,
            FlowModCommand::Delete => 3,
            FlowModCommand::DeleteStrict => 4,
        }
    }

    pub fn from_wire(v: u8) -> Result<FlowModCommand, Error> {
        Ok(match v {
            0 => FlowModCommand::Add,
            1 => FlowModCommand::Modify,
            2 => FlowModCommand::ModifyStrict,
            3 => FlowModCommand::Delete,
            4 => FlowModCommand::DeleteStrict,
            _ => {
                return Err(Error::BadValue {
                    what: "flow_mod command",
                    value: u32::from(v),
                })
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    /// For modify/delete: only flows whose cookie matches under this mask.
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    /// For delete: only flows that output to this port (`port::ANY` = no filter).
    pub out_port: u32,
    /// For delete: only flows that output to this group (`GROUP_ANY` = no filter).
    pub out_group: u32,
    /// `SEND_FLOW_REM`, `CHECK_OVERLAP`, ...
    pub flags: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An ADD with no cookie, no timeouts and no buffered packet.
    pub fn add(
        table_id: u8,
        priority: u16,
        r#match: Match,
        instructions: Vec<Instruction>,
    ) -> FlowMod {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: super::NO_BUFFER,
            out_port: super::port::ANY,
            out_group: super::GROUP_ANY,
            flags: 0,
            r#match,
            instructions,
        }
    }

    /// A non-strict DELETE of every flow in `table_id` (or `TABLE_ALL`)
    /// that `r#match` covers.
    pub fn delete(table_id: u8, r#match: Match) -> FlowMod {
        FlowMod {
            command: FlowModCommand::Delete,
            ..FlowMod::add(table_id, 0, r#match, Vec::new())
        }
    }

    /// A DELETE_STRICT of the one flow with exactly this match and priority.
    pub fn delete_strict(table_id: u8, priority: u16, r#match: Match) -> FlowMod {
        FlowMod {
            command: FlowModCommand::DeleteStrict,
            ..FlowMod::add(table_id, priority, r#match, Vec::new())
        }
    }

    /// Restricts a modify/delete to flows carrying `cookie` (all 64 bits).
    pub fn with_cookie(mut self, cookie: u64, cookie_mask: u64) -> FlowMod {
        self.cookie = cookie;
        self.cookie_mask = cookie_mask;
        self
    }

    pub(crate) fn parse(body: &[u8]) -> Result<FlowMod, Error> {
        let mut r = Reader::new(body);
        let cookie = r.u64("flow_mod")?;
        let cookie_mask = r.u64("flow_mod")?;
        let table_id = r.u8("flow_mod")?;
        let command = FlowModCommand::from_wire(r.u8("flow_mod")?)?;
        let idle_timeout = r.u16("flow_mod")?;
        let hard_timeout = r.u16("flow_mod")?;
        let priority = r.u16("flow_mod")?;
        let buffer_id = r.u32("flow_mod")?;
        let out_port = r.u32("flow_mod")?;
        let out_group = r.u32("flow_mod")?;
        let flags = r.u16("flow_mod")?;
        r.skip(2, "flow_mod padding")?;
        let r#match = Match::parse(&mut r)?;
        let instructions = parse_instructions(r.rest())?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            r#match,
            instructions,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u64(out, self.cookie);
        put_u64(out, self.cookie_mask);
        out.push(self.table_id);
        out.push(self.command.to_wire());
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.priority);
        put_u32(out, self.buffer_id);
        put_u32(out, self.out_port);
        put_u32(out, self.out_group);
        put_u16(out, self.flags);
        put_zeros(out, 2);
        self.r#match.emit(out);
        emit_instructions(out, &self.instructions);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    /// One of `flow_removed_reason::*`.
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
}

impl FlowRemoved {
    pub(crate) fn parse(body: &[u8]) -> Result<FlowRemoved, Error> {
        let mut r = Reader::new(body);
        Ok(FlowRemoved {
            cookie: r.u64("flow_removed")?,
            priority: r.u16("flow_removed")?,
            reason: r.u8("flow_removed")?,
            table_id: r.u8("flow_removed")?,
            duration_sec: r.u32("flow_removed")?,
            duration_nsec: r.u32("flow_removed")?,
            idle_timeout: r.u16("flow_removed")?,
            hard_timeout: r.u16("flow_removed")?,
            packet_count: r.u64("flow_removed")?,
            byte_count: r.u64("flow_removed")?,
            r#match: Match::parse(&mut r)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u64(out, self.cookie);
        put_u16(out, self.priority);
        out.push(self.reason);
        out.push(self.table_id);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.r#match.emit(out);
    }
}
