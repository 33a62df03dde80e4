//! Symmetric and administrative messages: HELLO (with its version bitmap),
//! ERROR (typed type/code, including experimenter errors), ECHO and generic
//! EXPERIMENTER messages. BARRIER and the body-less requests need no
//! structure and are handled directly in `mod.rs`.

use std::fmt;

use super::wire::{pad8, put_u16, put_u32, Reader};
use super::Error;

/// `OFPHET_VERSIONBITMAP`.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// HELLO. `versions` lists the OpenFlow wire versions from the version
/// bitmap element; empty means no bitmap was sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    pub versions: Vec<u8>,
}

impl Hello {
    /// The HELLO gemelo sends: a bitmap advertising OpenFlow 1.3 only.
    pub fn of13() -> Hello {
        Hello {
            versions: vec![super::OFP_VERSION],
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Hello, Error> {
        let mut r = Reader::new(body);
        let mut versions = Vec::new();
        while r.remaining() >= 4 {
            let kind = r.u16("hello element")?;
            let len = usize::from(r.u16("hello element")?);
            if len < 4 {
                return Err(Error::BadLength {
                    what: "hello element",
                    len,
                });
            }
            let data = r.take(len - 4, "hello element")?;
            // Elements are padded to 8 bytes; tolerate a final element without it.
            let pad = (pad8(len) - len).min(r.remaining());
            r.skip(pad, "hello element padding")?;
            if kind == HELLO_ELEM_VERSIONBITMAP {
                for (word_idx, word) in data.chunks_exact(4).enumerate() {
                    let bits = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                    for bit in 0..32 {
                        if bits & (1 << bit) != 0 {
                            if let Ok(v) = u8::try_from(word_idx * 32 + bit) {
                                versions.push(v);
                            }
                        }
                    }
                }
            }
        }
        Ok(Hello { versions })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let Some(&max) = self.versions.iter().max() else {
            return;
        };
        let words = usize::from(max) / 32 + 1;
        let mut bitmap = vec![0u32; words];
        for &v in &self.versions {
            bitmap[usize::from(v) / 32] |= 1 << (v % 32);
        }
        let len = 4 + 4 * words;
        put_u16(out, HELLO_ELEM_VERSIONBITMAP);
        put_u16(out, len as u16);
        for w in bitmap {
            put_u32(out, w);
        }
        super::wire::put_zeros(out, pad8(len) - len);
    }
}

/// The type and code of an ERROR message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    HelloFailed(u16),
    BadRequest(u16),
    BadAction(u16),
    BadInstruction(u16),
    BadMatch(u16),
    FlowModFailed(u16),
    GroupModFailed(u16),
    PortModFailed(u16),
    TableModFailed(u16),
    QueueOpFailed(u16),
    SwitchConfigFailed(u16),
    RoleRequestFailed(u16),
    MeterModFailed(u16),
    TableFeaturesFailed(u16),
    /// `OFPET_EXPERIMENTER` (OVS reports ONF bundle errors this way on 1.3).
    Experimenter {
        exp_type: u16,
        experimenter: u32,
    },
    /// An error type this codec does not know.
    Other {
        err_type: u16,
        code: u16,
    },
}

/// `OFPET_EXPERIMENTER`.
pub const ERROR_TYPE_EXPERIMENTER: u16 = 0xffff;

const ERROR_TYPES: [&str; 14] = [
    "OFPET_HELLO_FAILED",
    "OFPET_BAD_REQUEST",
    "OFPET_BAD_ACTION",
    "OFPET_BAD_INSTRUCTION",
    "OFPET_BAD_MATCH",
    "OFPET_FLOW_MOD_FAILED",
    "OFPET_GROUP_MOD_FAILED",
    "OFPET_PORT_MOD_FAILED",
    "OFPET_TABLE_MOD_FAILED",
    "OFPET_QUEUE_OP_FAILED",
    "OFPET_SWITCH_CONFIG_FAILED",
    "OFPET_ROLE_REQUEST_FAILED",
    "OFPET_METER_MOD_FAILED",
    "OFPET_TABLE_FEATURES_FAILED",
];

fn code_names(err_type: u16) -> &'static [&'static str] {
    match err_type {
        0 => &["OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"],
        1 => &[
            "OFPBRC_BAD_VERSION",
            "OFPBRC_BAD_TYPE",
            "OFPBRC_BAD_MULTIPART",
            "OFPBRC_BAD_EXPERIMENTER",
            "OFPBRC_BAD_EXP_TYPE",
            "OFPBRC_EPERM",
            "OFPBRC_BAD_LEN",
            "OFPBRC_BUFFER_EMPTY",
            "OFPBRC_BUFFER_UNKNOWN",
            "OFPBRC_BAD_TABLE_ID",
            "OFPBRC_IS_SLAVE",
            "OFPBRC_BAD_PORT",
            "OFPBRC_BAD_PACKET",
            "OFPBRC_MULTIPART_BUFFER_OVERFLOW",
        ],
        2 => &[
            "OFPBAC_BAD_TYPE",
            "OFPBAC_BAD_LEN",
            "OFPBAC_BAD_EXPERIMENTER",
            "OFPBAC_BAD_EXP_TYPE",
            "OFPBAC_BAD_OUT_PORT",
            "OFPBAC_BAD_ARGUMENT",
            "OFPBAC_EPERM",
            "OFPBAC_TOO_MANY",
            "OFPBAC_BAD_QUEUE",
            "OFPBAC_BAD_OUT_GROUP",
            "OFPBAC_MATCH_INCONSISTENT",
            "OFPBAC_UNSUPPORTED_ORDER",
            "OFPBAC_BAD_TAG",
            "OFPBAC_BAD_SET_TYPE",
            "OFPBAC_BAD_SET_LEN",
            "OFPBAC_BAD_SET_ARGUMENT",
        ],
        3 => &[
            "OFPBIC_UNKNOWN_INST",
            "OFPBIC_UNSUP_INST",
            "OFPBIC_BAD_TABLE_ID",
            "OFPBIC_UNSUP_METADATA",
            "OFPBIC_UNSUP_METADATA_MASK",
            "OFPBIC_BAD_EXPERIMENTER",
            "OFPBIC_BAD_EXP_TYPE",
            "OFPBIC_BAD_LEN",
            "OFPBIC_EPERM",
        ],
        4 => &[
            "OFPBMC_BAD_TYPE",
            "OFPBMC_BAD_LEN",
            "OFPBMC_BAD_TAG",
            "OFPBMC_BAD_DL_ADDR_MASK",
            "OFPBMC_BAD_NW_ADDR_MASK",
            "OFPBMC_BAD_WILDCARDS",
            "OFPBMC_BAD_FIELD",
            "OFPBMC_BAD_VALUE",
            "OFPBMC_BAD_MASK",
            "OFPBMC_BAD_PREREQ",
            "OFPBMC_DUP_FIELD",
            "OFPBMC_EPERM",
        ],
        5 => &[
            "OFPFMFC_UNKNOWN",
            "OFPFMFC_TABLE_FULL",
            "OFPFMFC_BAD_TABLE_ID",
            "OFPFMFC_OVERLAP",
            "OFPFMFC_EPERM",
            "OFPFMFC_BAD_TIMEOUT",
            "OFPFMFC_BAD_COMMAND",
            "OFPFMFC_BAD_FLAGS",
        ],
        6 => &[
            "OFPGMFC_GROUP_EXISTS",
            "OFPGMFC_INVALID_GROUP",
            "OFPGMFC_WEIGHT_UNSUPPORTED",
            "OFPGMFC_OUT_OF_GROUPS",
            "OFPGMFC_OUT_OF_BUCKETS",
            "OFPGMFC_CHAINING_UNSUPPORTED",
            "OFPGMFC_WATCH_UNSUPPORTED",
            "OFPGMFC_LOOP",
            "OFPGMFC_UNKNOWN_GROUP",
            "OFPGMFC_CHAINED_GROUP",
            "OFPGMFC_BAD_TYPE",
            "OFPGMFC_BAD_COMMAND",
            "OFPGMFC_BAD_BUCKET",
            "OFPGMFC_BAD_WATCH",
            "OFPGMFC_EPERM",
        ],
        7 => &[
            "OFPPMFC_BAD_PORT",
            "OFPPMFC_BAD_HW_ADDR",
            "OFPPMFC_BAD_CONFIG",
            "OFPPMFC_BAD_ADVERTISE",
            "OFPPMFC_EPERM",
        ],
        8 => &["OFPTMFC_BAD_TABLE", "OFPTMFC_BAD_CONFIG", "OFPTMFC_EPERM"],
        9 => &["OFPQOFC_BAD_PORT", "OFPQOFC_BAD_QUEUE", "OFPQOFC_EPERM"],
        10 => &["OFPSCFC_BAD_FLAGS", "OFPSCFC_BAD_LEN", "OFPSCFC_EPERM"],
        11 => &["OFPRRFC_STALE", "OFPRRFC_UNSUP", "OFPRRFC_BAD_ROLE"],
        _ => &[],
    }
}

impl ErrorKind {
    pub fn from_wire(err_type: u16, code: u16) -> ErrorKind {
        use ErrorKind::*;
        match err_type {
            0 => HelloFailed(code),
            1 => BadRequest(code),
            2 => BadAction(code),
            3 => BadInstruction(code),
            4 => BadMatch(code),
            5 => FlowModFailed(code),
            6 => GroupModFailed(code),
            7 => PortModFailed(code),
            8 => TableModFailed(code),
            9 => QueueOpFailed(code),
            10 => SwitchConfigFailed(code),
            11 => RoleRequestFailed(code),
            12 => MeterModFailed(code),
            13 => TableFeaturesFailed(code),
            _ => Other { err_type, code },
        }
    }

    /// `(type, code)` as on the wire; for experimenter errors the code slot
    /// holds `exp_type`.
    pub fn to_wire(&self) -> (u16, u16) {
        use ErrorKind::*;
        match *self {
            HelloFailed(c) => (0, c),
            BadRequest(c) => (1, c),
            BadAction(c) => (2, c),
            BadInstruction(c) => (3, c),
            BadMatch(c) => (4, c),
            FlowModFailed(c) => (5, c),
            GroupModFailed(c) => (6, c),
            PortModFailed(c) => (7, c),
            TableModFailed(c) => (8, c),
            QueueOpFailed(c) => (9, c),
            SwitchConfigFailed(c) => (10, c),
            RoleRequestFailed(c) => (11, c),
            MeterModFailed(c) => (12, c),
            TableFeaturesFailed(c) => (13, c),
            Experimenter { exp_type, .. } => (ERROR_TYPE_EXPERIMENTER, exp_type),
            Other { err_type, code } => (err_type, code),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Experimenter {
            exp_type,
            experimenter,
        } = self
        {
            return write!(
                f,
                "OFPET_EXPERIMENTER/experimenter={experimenter:#010x},exp_type={exp_type}"
            );
        }
        let (t, c) = self.to_wire();
        match ERROR_TYPES.get(usize::from(t)) {
            Some(tn) => write!(f, "{tn}/")?,
            None => write!(f, "type {t}/")?,
        }
        match code_names(t).get(usize::from(c)) {
            Some(cn) => write!(f, "{cn}"),
            None => write!(f, "code {c}"),
        }
    }
}

/// ERROR. `data` is usually the start of the offending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub kind: ErrorKind,
    pub data: Vec<u8>,
}

impl ErrorMsg {
    pub(crate) fn parse(body: &[u8]) -> Result<ErrorMsg, Error> {
        let mut r = Reader::new(body);
        let t = r.u16("error type")?;
        let c = r.u16("error code")?;
        let kind = if t == ERROR_TYPE_EXPERIMENTER {
            ErrorKind::Experimenter {
                exp_type: c,
                experimenter: r.u32("error experimenter")?,
            }
        } else {
            ErrorKind::from_wire(t, c)
        };
        Ok(ErrorMsg {
            kind,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let (t, c) = self.kind.to_wire();
        put_u16(out, t);
        put_u16(out, c);
        if let ErrorKind::Experimenter { experimenter, .. } = self.kind {
            put_u32(out, experimenter);
        }
        out.extend_from_slice(&self.data);
    }

    /// The xid and type of the request that failed, when `data` holds its header.
    pub fn offending_header(&self) -> Option<super::Header> {
        super::Header::parse(&self.data).ok()
    }
}

/// An experimenter message gemelo does not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

impl Experimenter {
    pub(crate) fn parse(body: &[u8]) -> Result<Experimenter, Error> {
        let mut r = Reader::new(body);
        Ok(Experimenter {
            experimenter: r.u32("experimenter id")?,
            exp_type: r.u32("experimenter type")?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.experimenter);
        put_u32(out, self.exp_type);
        out.extend_from_slice(&self.data);
    }
}
