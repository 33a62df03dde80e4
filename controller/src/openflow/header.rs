//! The 8-byte `ofp_header` that starts every OpenFlow message.
//!
//! [`Header::parse`] is what a stream reader uses to frame messages: it reads
//! the length without judging the version or type, so the caller can skip or
//! reject a whole message it cannot use.

use super::wire::{put_u16, put_u32, Reader};
use super::{Error, HEADER_LEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Length of the whole message including this header.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the header at the front of `buf`; fails if fewer than 8 bytes
    /// are available or the length field is shorter than a header.
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "ofp_header",
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let mut r = Reader::new(buf);
        let h = Header {
            version: r.u8("ofp_header")?,
            msg_type: r.u8("ofp_header")?,
            length: r.u16("ofp_header")?,
            xid: r.u32("ofp_header")?,
        };
        if usize::from(h.length) < HEADER_LEN {
            return Err(Error::BadLength {
                what: "ofp_header.length",
                len: usize::from(h.length),
            });
        }
        Ok(h)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.push(self.msg_type);
        put_u16(out, self.length);
        put_u32(out, self.xid);
    }
}
