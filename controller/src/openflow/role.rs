//! ROLE_REQUEST / ROLE_REPLY (`ofp_role_request`): master/slave election
//! between controllers sharing a switch.

use super::wire::{put_u32, put_u64, put_zeros, Reader};
use super::Error;

/// `role` is one of `role_value::*`; `generation_id` orders competing masters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub role: u32,
    pub generation_id: u64,
}

impl Role {
    pub(crate) fn parse(body: &[u8]) -> Result<Role, Error> {
        let mut r = Reader::new(body);
        let role = r.u32("role_request")?;
        r.skip(4, "role_request")?;
        Ok(Role {
            role,
            generation_id: r.u64("role_request")?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.role);
        put_zeros(out, 4);
        put_u64(out, self.generation_id);
    }
}
