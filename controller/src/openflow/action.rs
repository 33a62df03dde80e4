//! OpenFlow 1.3 actions (`ofp_action_*`) and instructions (`ofp_instruction_*`).
//!
//! Actions appear in PACKET_OUT, group buckets and the apply/write-actions
//! instructions; instructions appear in FLOW_MOD and flow statistics. Both
//! are 8-byte aligned TLVs with a 16-bit type and length; a length that is
//! zero, shorter than the header or not a multiple of 8 is rejected, which
//! is what keeps a hostile list from looping forever or overrunning.

use super::oxm::OxmField;
use super::wire::{pad8, put_u16, put_u32, put_u64, put_zeros, Reader};
use super::Error;

/// Action type codes (`OFPAT_*`).
pub mod action_type {
    pub const OUTPUT: u16 = 0;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// Instruction type codes (`OFPIT_*`).
pub mod instruction_type {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// `max_len` only matters for `port::CONTROLLER` (bytes of packet to send).
    Output {
        port: u32,
        max_len: u16,
    },
    SetField(OxmField),
    /// Push a VLAN header with the given ethertype (0x8100 or 0x88a8).
    PushVlan(u16),
    PopVlan,
    Group(u32),
    SetQueue(u32),
    DecNwTtl,
    /// Any other action; `body` is everything after the 4-byte type/length header.
    Unknown {
        kind: u16,
        body: Vec<u8>,
    },
}

impl Action {
    /// Output to `port`, sending the whole packet if that is the controller.
    pub fn output(port: u32) -> Action {
        Action::Output {
            port,
            max_len: super::CML_NO_BUFFER,
        }
    }

    fn kind(&self) -> u16 {
        use action_type::*;
        match self {
            Action::Output { .. } => OUTPUT,
            Action::SetField(_) => SET_FIELD,
            Action::PushVlan(_) => PUSH_VLAN,
            Action::PopVlan => POP_VLAN,
            Action::Group(_) => GROUP,
            Action::SetQueue(_) => SET_QUEUE,
            Action::DecNwTtl => DEC_NW_TTL,
            Action::Unknown { kind, .. } => *kind,
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Action, Error> {
        let (kind, body) = tlv(r, "action")?;
        let bad = Error::BadAction {
            kind,
            len: super::wire::len16(body.len() + 4),
        };
        let mut b = Reader::new(body);
        use action_type::*;
        let a = match kind {
            OUTPUT => {
                if body.len() != 12 {
                    return Err(bad);
                }
                Action::Output {
                    port: b.u32("output port")?,
                    max_len: b.u16("output max_len")?,
                }
            }
            PUSH_VLAN => {
                if body.len() != 4 {
                    return Err(bad);
                }
                Action::PushVlan(b.u16("push_vlan ethertype")?)
            }
            POP_VLAN | DEC_NW_TTL => {
                if body.len() != 4 {
                    return Err(bad);
                }
                if kind == POP_VLAN {
                    Action::PopVlan
                } else {
                    Action::DecNwTtl
                }
            }
            SET_QUEUE | GROUP => {
                if body.len() != 4 {
                    return Err(bad);
                }
                let v = b.u32("action argument")?;
                if kind == GROUP {
                    Action::Group(v)
                } else {
                    Action::SetQueue(v)
                }
            }
            SET_FIELD => {
                let f = OxmField::parse(&mut b)?;
                // What follows the TLV is padding; anything longer than the
                // padding would mean a second field, which SET_FIELD forbids.
                if b.remaining() >= 8 {
                    return Err(bad);
                }
                Action::SetField(f)
            }
            _ => Action::Unknown {
                kind,
                body: body.to_vec(),
            },
        };
        Ok(a)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.kind());
        put_u16(out, 0);
        match self {
            Action::Output { port, max_len } => {
                put_u32(out, *port);
                put_u16(out, *max_len);
                put_zeros(out, 6);
            }
            Action::SetField(f) => f.emit(out),
            Action::PushVlan(t) => {
                put_u16(out, *t);
                put_zeros(out, 2);
            }
            Action::PopVlan | Action::DecNwTtl => put_zeros(out, 4),
            Action::Group(v) | Action::SetQueue(v) => put_u32(out, *v),
            Action::Unknown { body, .. } => out.extend_from_slice(body),
        }
        finish_tlv(out, start);
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        value: u64,
        mask: u64,
    },
    ApplyActions(Vec<Action>),
    WriteActions(Vec<Action>),
    ClearActions,
    /// Any other instruction (meter, experimenter); `body` follows the 4-byte header.
    Unknown {
        kind: u16,
        body: Vec<u8>,
    },
}

impl Instruction {
    fn kind(&self) -> u16 {
        use instruction_type::*;
        match self {
            Instruction::GotoTable(_) => GOTO_TABLE,
            Instruction::WriteMetadata { .. } => WRITE_METADATA,
            Instruction::ApplyActions(_) => APPLY_ACTIONS,
            Instruction::WriteActions(_) => WRITE_ACTIONS,
            Instruction::ClearActions => CLEAR_ACTIONS,
            Instruction::Unknown { kind, .. } => *kind,
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Instruction, Error> {
        let (kind, body) = tlv(r, "instruction")?;
        let bad = Error::BadInstruction {
            kind,
            len: super::wire::len16(body.len() + 4),
        };
        let mut b = Reader::new(body);
        use instruction_type::*;
        let i = match kind {
            GOTO_TABLE => {
                if body.len() != 4 {
                    return Err(bad);
                }
                Instruction::GotoTable(b.u8("goto_table table_id")?)
            }
            WRITE_METADATA => {
                if body.len() != 20 {
                    return Err(bad);
                }
                b.skip(4, "write_metadata padding")?;
                Instruction::WriteMetadata {
                    value: b.u64("metadata")?,
                    mask: b.u64("metadata mask")?,
                }
            }
            WRITE_ACTIONS | APPLY_ACTIONS => {
                b.skip(4, "actions instruction padding")?;
                let actions = parse_actions(b.rest())?;
                if kind == WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            CLEAR_ACTIONS => {
                if body.len() != 4 {
                    return Err(bad);
                }
                Instruction::ClearActions
            }
            _ => Instruction::Unknown {
                kind,
                body: body.to_vec(),
            },
        };
        Ok(i)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, self.kind());
        put_u16(out, 0);
        match self {
            Instruction::GotoTable(t) => {
                out.push(*t);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { value, mask } => {
                put_zeros(out, 4);
                put_u64(out, *value);
                put_u64(out, *mask);
            }
            Instruction::ApplyActions(acts) | Instruction::WriteActions(acts) => {
                put_zeros(out, 4);
                emit_actions(out, acts);
            }
            Instruction::ClearActions => put_zeros(out, 4),
            Instruction::Unknown { body, .. } => out.extend_from_slice(body),
        }
        finish_tlv(out, start);
    }
}

/// Reads a type/length TLV header and its body, enforcing OpenFlow's rules
/// (length ≥ 8 and a multiple of 8).
fn tlv<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<(u16, &'a [u8]), Error> {
    let kind = r.u16(what)?;
    let len = r.u16(what)?;
    if len < 8 || len % 8 != 0 {
        return Err(if what == "action" {
            Error::BadAction { kind, len }
        } else {
            Error::BadInstruction { kind, len }
        });
    }
    let body = r.take(usize::from(len) - 4, what)?;
    Ok((kind, body))
}

/// Pads the TLV begun at `start` to 8 bytes and writes its length.
fn finish_tlv(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    put_zeros(out, pad8(len) - len);
    let len = out.len() - start;
    super::wire::patch_u16(out, start + 2, super::wire::len16(len));
}

/// Parses a packed list of actions occupying all of `buf`.
pub(crate) fn parse_actions(buf: &[u8]) -> Result<Vec<Action>, Error> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Action::parse(&mut r)?);
    }
    Ok(out)
}

pub(crate) fn emit_actions(out: &mut Vec<u8>, actions: &[Action]) {
    for a in actions {
        a.emit(out);
    }
}

/// Parses a packed list of instructions occupying all of `buf`.
pub(crate) fn parse_instructions(buf: &[u8]) -> Result<Vec<Instruction>, Error> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Instruction::parse(&mut r)?);
    }
    Ok(out)
}

pub(crate) fn emit_instructions(out: &mut Vec<u8>, instructions: &[Instruction]) {
    for i in instructions {
        i.emit(out);
    }
}
