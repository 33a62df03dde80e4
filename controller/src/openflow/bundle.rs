//! The ONF bundle extension for OpenFlow 1.3 (`ONF_ET_BUNDLE_CONTROL` = 2300,
//! `ONF_ET_BUNDLE_ADD_MESSAGE` = 2301, experimenter `0x4f4e4600`), which is
//! how `ovs-ofctl --bundle` applies a set of flow changes atomically on 1.3.
//! Both travel inside an EXPERIMENTER message; `Message::decode` recognises
//! them and hands the experimenter payload to the parsers here.

use super::oxm::ONF_EXPERIMENTER_ID;
use super::wire::{put_u16, put_u32, Reader};
use super::{Error, Message, HEADER_LEN};

pub(crate) const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
pub(crate) const ONF_ET_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// Bundle flags.
pub mod bundle_flags {
    /// Apply all messages or none.
    pub const ATOMIC: u16 = 1;
    /// Apply messages in the order they were added.
    pub const ORDERED: u16 = 2;
}

/// `ONF_BCT_*` / `OFPBCT_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleCtrlType {
    OpenRequest,
    OpenReply,
    CloseRequest,
    CloseReply,
    CommitRequest,
    CommitReply,
    DiscardRequest,
    DiscardReply,
}

impl BundleCtrlType {
    fn to_wire(self) -> u16 {
        use BundleCtrlType::*;
        match self {
            OpenRequest => 0,
            OpenReply => 1,
            CloseRequest => 2,
            CloseReply => 3,
            CommitRequest => 4,
            CommitReply => 5,
            DiscardRequest => 6,
            DiscardReply => 7,
        }
    }

    fn from_wire(v: u16) -> Result<BundleCtrlType, Error> {
        use BundleCtrlType::*;
        Ok(match v {
            0 => OpenRequest,
            1 => OpenReply,
            2 => CloseRequest,
            3 => CloseReply,
            4 => CommitRequest,
            5 => CommitReply,
            6 => DiscardRequest,
            7 => DiscardReply,
            _ => {
                return Err(Error::BadValue {
                    what: "bundle control type",
                    value: u32::from(v),
                })
            }
        })
    }
}

fn emit_experimenter_header(out: &mut Vec<u8>, exp_type: u32) {
    put_u32(out, ONF_EXPERIMENTER_ID);
    put_u32(out, exp_type);
}

/// Open, close, commit or discard a bundle (and the switch's replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl: BundleCtrlType,
    pub flags: u16,
}

impl BundleControl {
    /// `data` is the experimenter payload after the experimenter id and type.
    pub(crate) fn parse(data: &[u8]) -> Result<BundleControl, Error> {
        let mut r = Reader::new(data);
        let bundle_id = r.u32("bundle_ctrl")?;
        let ctrl = BundleCtrlType::from_wire(r.u16("bundle_ctrl")?)?;
        let flags = r.u16("bundle_ctrl")?;
        // Trailing bundle properties are ignored.
        Ok(BundleControl {
            bundle_id,
            ctrl,
            flags,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        emit_experimenter_header(out, ONF_ET_BUNDLE_CONTROL);
        put_u32(out, self.bundle_id);
        put_u16(out, self.ctrl.to_wire());
        put_u16(out, self.flags);
    }
}

/// Adds one message (usually a FLOW_MOD) to an open bundle. OVS requires
/// `inner_xid` to equal the xid of the BUNDLE_ADD itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Box<Message>,
    pub inner_xid: u32,
}

impl BundleAdd {
    /// Wraps `message` for bundle `bundle_id`; `xid` must be the xid the
    /// BUNDLE_ADD itself will be encoded with (OVS rejects a mismatch).
    pub fn new(bundle_id: u32, flags: u16, message: Message, xid: u32) -> BundleAdd {
        BundleAdd {
            bundle_id,
            flags,
            message: Box::new(message),
            inner_xid: xid,
        }
    }

    pub(crate) fn parse(data: &[u8]) -> Result<BundleAdd, Error> {
        let mut r = Reader::new(data);
        let bundle_id = r.u32("bundle_add")?;
        r.skip(2, "bundle_add padding")?;
        let flags = r.u16("bundle_add")?;
        let inner = r.rest();
        let wrap = |e: Error| Error::BadBundleInner(Box::new(e));
        let h = super::Header::parse(inner).map_err(wrap)?;
        let inner_len = usize::from(h.length);
        let inner = inner.get(..inner_len).ok_or_else(|| {
            wrap(Error::Truncated {
                what: "bundled message",
                need: inner_len,
                have: inner.len(),
            })
        })?;
        // A bundle cannot contain bundle messages; refusing them here also
        // bounds the recursion depth to one.
        if h.msg_type == super::msg_type::EXPERIMENTER {
            let mut e = Reader::new(inner.get(HEADER_LEN..).unwrap_or(&[]));
            if e.u32("experimenter id").ok() == Some(ONF_EXPERIMENTER_ID) {
                let t = e.u32("experimenter type").unwrap_or(0);
                if t == ONF_ET_BUNDLE_CONTROL || t == ONF_ET_BUNDLE_ADD_MESSAGE {
                    return Err(wrap(Error::BadValue {
                        what: "bundle message inside a bundle",
                        value: t,
                    }));
                }
            }
        }
        let (inner_xid, message) = Message::decode(inner).map_err(wrap)?;
        Ok(BundleAdd {
            bundle_id,
            flags,
            message: Box::new(message),
            inner_xid,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        emit_experimenter_header(out, ONF_ET_BUNDLE_ADD_MESSAGE);
        put_u32(out, self.bundle_id);
        put_u16(out, 0);
        put_u16(out, self.flags);
        out.extend_from_slice(&self.message.encode(self.inner_xid));
    }
}
