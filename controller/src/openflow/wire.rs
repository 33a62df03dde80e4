//! Bounds-checked big-endian cursor used by every OpenFlow parser.
//!
//! All reads of untrusted bytes go through [`Reader`], which returns
//! [`Error::Truncated`] instead of slicing past the end, so a malformed message
//! can never make the codec panic. [`pad8`] and the `put_*` helpers are the
//! emitting side.

use super::Error;

/// A forward-only cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes `n` bytes, or reports which structure was cut short.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Truncated {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Error> {
        self.take(n, what).map(|_| ())
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.array::<2>(what)?;
        Ok(u16::from_be_bytes(b))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array::<4>(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array::<8>(what)?))
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

/// Rounds `n` up to the next multiple of 8 (OpenFlow's alignment unit).
pub(crate) fn pad8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}
/// Overwrites a big-endian u16 at `at` (used to back-patch length fields).
pub(crate) fn patch_u16(out: &mut [u8], at: usize, v: u16) {
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}
/// Fixed-size, NUL-padded string field (port names, descriptions).
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str, width: usize) {
    // Leave room for the terminating NUL, as OVS does, and never cut a
    // UTF-8 character in half (so decode → encode → decode is stable).
    let mut n = s.len().min(width.saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&s.as_bytes()[..n]);
    put_zeros(out, width - n);
}
pub(crate) fn get_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
/// Length as a u16 wire field; saturates rather than wrapping for oversize input.
pub(crate) fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
