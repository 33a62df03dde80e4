//! OpenFlow 1.3 codec: bytes on the switch connection ⇄ typed [`Message`]s.
//!
//! This is the bottom layer of gemelo. It knows nothing about sessions or
//! deception; it only turns one framed OpenFlow 1.3 message into a value and
//! back. Each message family lives in its own file with a wire parser and
//! emitter side by side (the smoltcp Wire/Repr split, without the zero-copy
//! view: every parser reads through the bounds-checked `wire::Reader`, so any
//! byte string yields a value or an [`Error`], never a panic). `ofctl`
//! renders matches, instructions and flow statistics the way
//! `ovs-ofctl dump-flows` prints them.

mod action;
pub mod bundle;
mod flow_mod;
mod group_mod;
mod header;
pub mod multipart;
mod ofctl;
mod oxm;
mod packet;
pub mod port;
pub mod role;
pub mod switch_config;
mod symmetric;
mod wire;

#[cfg(test)]
mod tests;

pub use action::{action_type, instruction_type, Action, Instruction};
pub use bundle::{BundleAdd, BundleControl, BundleCtrlType};
pub use flow_mod::{FlowMod, FlowModCommand, FlowRemoved};
pub use group_mod::{Bucket, GroupMod, GroupModCommand, GroupType};
pub use header::Header;
pub use multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, MultipartReply, MultipartReplyBody,
    MultipartRequest, MultipartRequestBody, PortStats, TableStats,
};
pub use ofctl::{format_actions, format_instructions, format_match, format_port};
pub use oxm::{ethertype, field as oxm_field, Match, OxmField};
pub use oxm::{
    ONF_EXPERIMENTER_ID, OXM_CLASS_EXPERIMENTER, OXM_CLASS_OPENFLOW_BASIC, VID_NONE, VID_PRESENT,
};
pub use packet::{PacketIn, PacketOut};
pub use port::{Port, PortMod, PortStatus};
pub use role::Role;
pub use switch_config::{FeaturesReply, SwitchConfig};
pub use symmetric::{ErrorKind, ErrorMsg, Experimenter, Hello};

/// OpenFlow 1.3 wire version.
pub const OFP_VERSION: u8 = 0x04;
/// Size of `ofp_header`.
pub const HEADER_LEN: usize = 8;
/// `OFP_NO_BUFFER`: the packet is not buffered on the switch.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPCML_NO_BUFFER`: send the whole packet to the controller.
pub const CML_NO_BUFFER: u16 = 0xffff;
/// `OFPTT_ALL`: every table (flow deletes and stats).
pub const TABLE_ALL: u8 = 0xff;
/// `OFPG_ANY`: any group (flow deletes and stats).
pub const GROUP_ANY: u32 = 0xffff_ffff;
/// `OFPG_ALL`: all groups (group delete).
pub const GROUP_ALL: u32 = 0xffff_fffc;
/// Default flow priority (`OFP_DEFAULT_PRIORITY`).
pub const DEFAULT_PRIORITY: u16 = 0x8000;

/// Message type codes (`OFPT_*`).
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
}

/// FLOW_MOD / flow stats flags (`OFPFF_*`).
pub mod flow_flags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
}
pub use flow_flags::*;

/// PACKET_IN reasons (`OFPR_*`).
pub mod packet_in_reason {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
    pub const INVALID_TTL: u8 = 2;
}

/// FLOW_REMOVED reasons (`OFPRR_*`).
pub mod flow_removed_reason {
    pub const IDLE_TIMEOUT: u8 = 0;
    pub const HARD_TIMEOUT: u8 = 1;
    pub const DELETE: u8 = 2;
    pub const GROUP_DELETE: u8 = 3;
}

/// PORT_STATUS reasons (`OFPPR_*`).
pub mod port_reason {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// SET_CONFIG flags (`OFPC_*`).
pub mod config_flags {
    pub const FRAG_NORMAL: u16 = 0;
    pub const FRAG_DROP: u16 = 1;
    pub const FRAG_REASM: u16 = 2;
}

/// Everything that can be wrong with bytes handed to the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated {what}: need {need} bytes, only {have} left")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("bad length {len} for {what}")]
    BadLength { what: &'static str, len: usize },
    #[error("header says the message is {declared} bytes but {actual} were given (frame with Header::parse first)")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("unsupported OpenFlow version {0:#04x}; gemelo speaks only OpenFlow 1.3 (0x04)")]
    BadVersion(u8),
    /// Not produced by [`Message::decode`], which keeps unknown types as
    /// [`Message::Unknown`]; available to callers that refuse a type.
    #[error("unknown OpenFlow message type {0}")]
    UnknownType(u8),
    #[error("match type {0} is not OXM (1)")]
    BadMatchType(u16),
    #[error("malformed OXM field class {class:#06x} field {field} with payload length {len}")]
    BadOxm { class: u16, field: u8, len: u8 },
    #[error("malformed action type {kind} with length {len} (must be >= 8, a multiple of 8, and fit its type)")]
    BadAction { kind: u16, len: u16 },
    #[error("malformed instruction type {kind} with length {len} (must be >= 8, a multiple of 8, and fit its type)")]
    BadInstruction { kind: u16, len: u16 },
    #[error("unknown {what} value {value}")]
    BadValue { what: &'static str, value: u32 },
    #[error("bundle-add carries a bad inner message: {0}")]
    BadBundleInner(Box<Error>),
    #[error("cannot join multipart replies of different types ({have} then {next})")]
    MultipartMismatch { have: u16, next: u16 },
    #[error("multipart reply type {0} is never split across messages, so it cannot be extended")]
    MultipartNotSplittable(u16),
}

/// One decoded OpenFlow 1.3 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(Role),
    RoleReply(Role),
    BundleControl(BundleControl),
    BundleAdd(BundleAdd),
    /// A well-framed OpenFlow 1.3 message of a type gemelo does not model
    /// (TABLE_MOD, METER_MOD, async config, ...): kept so the session survives.
    Unknown {
        msg_type: u8,
        body: Vec<u8>,
    },
}

impl Message {
    /// Decodes exactly one message; `buf` must be the whole frame.
    pub fn decode(buf: &[u8]) -> Result<(u32, Message), Error> {
        let h = Header::parse(buf)?;
        // HELLO is exempt: version negotiation needs the peer's HELLO
        // whatever version it was sent with (its header carries the peer's
        // highest version; `Header::parse` of the same bytes tells which).
        if h.version != OFP_VERSION && !(h.msg_type == msg_type::HELLO && h.version != 0) {
            return Err(Error::BadVersion(h.version));
        }
        if usize::from(h.length) != buf.len() {
            return Err(Error::LengthMismatch {
                declared: usize::from(h.length),
                actual: buf.len(),
            });
        }
        let body = &buf[HEADER_LEN..];
        Ok((h.xid, Message::decode_body(h.msg_type, body)?))
    }

    fn decode_body(t: u8, body: &[u8]) -> Result<Message, Error> {
        use msg_type::*;
        let empty = |m: Message| -> Result<Message, Error> {
            // Body-less messages: OVS never pads them; extra bytes are ignored
            // like the spec's "ignore what you do not understand".
            Ok(m)
        };
        Ok(match t {
            HELLO => Message::Hello(Hello::parse(body)?),
            ERROR => Message::Error(ErrorMsg::parse(body)?),
            ECHO_REQUEST => Message::EchoRequest(body.to_vec()),
            ECHO_REPLY => Message::EchoReply(body.to_vec()),
            EXPERIMENTER => {
                let e = Experimenter::parse(body)?;
                if e.experimenter == ONF_EXPERIMENTER_ID {
                    match e.exp_type {
                        bundle::ONF_ET_BUNDLE_CONTROL => {
                            Message::BundleControl(BundleControl::parse(&e.data)?)
                        }
                        bundle::ONF_ET_BUNDLE_ADD_MESSAGE => {
                            Message::BundleAdd(BundleAdd::parse(&e.data)?)
                        }
                        _ => Message::Experimenter(e),
                    }
                } else {
                    Message::Experimenter(e)
                }
            }
            FEATURES_REQUEST => empty(Message::FeaturesRequest)?,
            FEATURES_REPLY => Message::FeaturesReply(FeaturesReply::parse(body)?),
            GET_CONFIG_REQUEST => empty(Message::GetConfigRequest)?,
            GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::parse(body)?),
            SET_CONFIG => Message::SetConfig(SwitchConfig::parse(body)?),
            PACKET_IN => Message::PacketIn(PacketIn::parse(body)?),
            FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::parse(body)?),
            PORT_STATUS => Message::PortStatus(PortStatus::parse(body)?),
            PACKET_OUT => Message::PacketOut(PacketOut::parse(body)?),
            FLOW_MOD => Message::FlowMod(FlowMod::parse(body)?),
            GROUP_MOD => Message::GroupMod(GroupMod::parse(body)?),
            PORT_MOD => Message::PortMod(PortMod::parse(body)?),
            MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::parse(body)?),
            MULTIPART_REPLY => Message::MultipartReply(MultipartReply::parse(body)?),
            BARRIER_REQUEST => empty(Message::BarrierRequest)?,
            BARRIER_REPLY => empty(Message::BarrierReply)?,
            ROLE_REQUEST => Message::RoleRequest(Role::parse(body)?),
            ROLE_REPLY => Message::RoleReply(Role::parse(body)?),
            other => Message::Unknown {
                msg_type: other,
                body: body.to_vec(),
            },
        })
    }

    /// Encodes the message with the given transaction id.
    ///
    /// A message whose encoding exceeds 65535 bytes cannot be framed; its
    /// length field saturates and the switch will reject it.
    pub fn encode(&self, xid: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        Header {
            version: OFP_VERSION,
            msg_type: self.msg_type(),
            length: 0,
            xid,
        }
        .emit(&mut out);
        self.emit_body(&mut out);
        let len = wire::len16(out.len());
        wire::patch_u16(&mut out, 2, len);
        out
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => h.emit(out),
            Message::Error(e) => e.emit(out),
            Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
            Message::Experimenter(e) => e.emit(out),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply => {}
            Message::FeaturesReply(f) => f.emit(out),
            Message::GetConfigReply(c) | Message::SetConfig(c) => c.emit(out),
            Message::PacketIn(p) => p.emit(out),
            Message::FlowRemoved(f) => f.emit(out),
            Message::PortStatus(p) => p.emit(out),
            Message::PacketOut(p) => p.emit(out),
            Message::FlowMod(f) => f.emit(out),
            Message::GroupMod(g) => g.emit(out),
            Message::PortMod(p) => p.emit(out),
            Message::MultipartRequest(m) => m.emit(out),
            Message::MultipartReply(m) => m.emit(out),
            Message::RoleRequest(r) | Message::RoleReply(r) => r.emit(out),
            Message::BundleControl(b) => b.emit(out),
            Message::BundleAdd(b) => b.emit(out),
            Message::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }

    /// The `OFPT_*` type code this message is sent with.
    pub fn msg_type(&self) -> u8 {
        use msg_type::*;
        match self {
            Message::Hello(_) => HELLO,
            Message::Error(_) => ERROR,
            Message::EchoRequest(_) => ECHO_REQUEST,
            Message::EchoReply(_) => ECHO_REPLY,
            Message::Experimenter(_) | Message::BundleControl(_) | Message::BundleAdd(_) => {
                EXPERIMENTER
            }
            Message::FeaturesRequest => FEATURES_REQUEST,
            Message::FeaturesReply(_) => FEATURES_REPLY,
            Message::GetConfigRequest => GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => GET_CONFIG_REPLY,
            Message::SetConfig(_) => SET_CONFIG,
            Message::PacketIn(_) => PACKET_IN,
            Message::FlowRemoved(_) => FLOW_REMOVED,
            Message::PortStatus(_) => PORT_STATUS,
            Message::PacketOut(_) => PACKET_OUT,
            Message::FlowMod(_) => FLOW_MOD,
            Message::GroupMod(_) => GROUP_MOD,
            Message::PortMod(_) => PORT_MOD,
            Message::MultipartRequest(_) => MULTIPART_REQUEST,
            Message::MultipartReply(_) => MULTIPART_REPLY,
            Message::BarrierRequest => BARRIER_REQUEST,
            Message::BarrierReply => BARRIER_REPLY,
            Message::RoleRequest(_) => ROLE_REQUEST,
            Message::RoleReply(_) => ROLE_REPLY,
            Message::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// Short upper-case name for logs (`"FLOW_MOD"`, `"BUNDLE_ADD"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "HELLO",
            Message::Error(_) => "ERROR",
            Message::EchoRequest(_) => "ECHO_REQUEST",
            Message::EchoReply(_) => "ECHO_REPLY",
            Message::Experimenter(_) => "EXPERIMENTER",
            Message::FeaturesRequest => "FEATURES_REQUEST",
            Message::FeaturesReply(_) => "FEATURES_REPLY",
            Message::GetConfigRequest => "GET_CONFIG_REQUEST",
            Message::GetConfigReply(_) => "GET_CONFIG_REPLY",
            Message::SetConfig(_) => "SET_CONFIG",
            Message::PacketIn(_) => "PACKET_IN",
            Message::FlowRemoved(_) => "FLOW_REMOVED",
            Message::PortStatus(_) => "PORT_STATUS",
            Message::PacketOut(_) => "PACKET_OUT",
            Message::FlowMod(_) => "FLOW_MOD",
            Message::GroupMod(_) => "GROUP_MOD",
            Message::PortMod(_) => "PORT_MOD",
            Message::MultipartRequest(_) => "MULTIPART_REQUEST",
            Message::MultipartReply(_) => "MULTIPART_REPLY",
            Message::BarrierRequest => "BARRIER_REQUEST",
            Message::BarrierReply => "BARRIER_REPLY",
            Message::RoleRequest(_) => "ROLE_REQUEST",
            Message::RoleReply(_) => "ROLE_REPLY",
            Message::BundleControl(_) => "BUNDLE_CONTROL",
            Message::BundleAdd(_) => "BUNDLE_ADD",
            Message::Unknown { .. } => "UNKNOWN",
        }
    }
}

/// ONF bundle flags, re-exported for callers of the codec.
pub const BUNDLE_ATOMIC: u16 = bundle::bundle_flags::ATOMIC;
pub const BUNDLE_ORDERED: u16 = bundle::bundle_flags::ORDERED;
