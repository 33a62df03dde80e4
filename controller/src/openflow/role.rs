//! ROLE_REQUEST / ROLE_REPLY (`ofp_role_request`): master/slave election
//! between controllers sharing a switch, and the role values
//! (`role::MASTER`, ...).

use super::wire::{put_u32, put_u64, put_zeros, Reader};
use super::Error;

/// `OFPCR_ROLE_NOCHANGE`: only query the current role.
pub const NOCHANGE: u32 = 0;
/// Full access, receives all asynchronous messages (the default).
pub const EQUAL: u32 = 1;
/// Full access; at most one master per switch (OVS prints it as "primary").
pub const MASTER: u32 = 2;
/// Read-only access (OVS prints it as "secondary").
pub const SLAVE: u32 = 3;

/// `role` is one of `role::{NOCHANGE, EQUAL, MASTER, SLAVE}`; `generation_id` orders competing masters.
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
