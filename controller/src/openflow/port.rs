//! Switch ports: the 64-byte `ofp_port` description (in PORT_STATUS and the
//! port-description multipart reply), PORT_STATUS itself and PORT_MOD, plus
//! the reserved port numbers (`port::CONTROLLER`, `port::LOCAL`, ...).

use super::wire::{get_str, put_str, put_u32, put_zeros, Reader};
use super::Error;

/// Reserved port numbers (`OFPP_*`).
pub const MAX: u32 = 0xffff_ff00;
pub const IN_PORT: u32 = 0xffff_fff8;
pub const TABLE: u32 = 0xffff_fff9;
pub const NORMAL: u32 = 0xffff_fffa;
pub const FLOOD: u32 = 0xffff_fffb;
pub const ALL: u32 = 0xffff_fffc;
pub const CONTROLLER: u32 = 0xffff_fffd;
pub const LOCAL: u32 = 0xffff_fffe;
pub const ANY: u32 = 0xffff_ffff;

/// `OFPPC_*` bits of [`Port::config`].
pub mod port_config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `OFPPS_*` bits of [`Port::state`].
pub mod port_state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// Size of `ofp_port` on the wire.
pub const PORT_LEN: usize = 64;
const PORT_NAME_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    /// kbps
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl Port {
    /// Administratively enabled and link up.
    pub fn is_up(&self) -> bool {
        self.config & port_config::PORT_DOWN == 0 && self.state & port_state::LINK_DOWN == 0
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Port, Error> {
        let mut p = Reader::new(r.take(PORT_LEN, "ofp_port")?);
        let port_no = p.u32("ofp_port")?;
        p.skip(4, "ofp_port")?;
        let hw_addr = p.array::<6>("ofp_port")?;
        p.skip(2, "ofp_port")?;
        let name = get_str(p.take(PORT_NAME_LEN, "ofp_port")?);
        Ok(Port {
            port_no,
            hw_addr,
            name,
            config: p.u32("ofp_port")?,
            state: p.u32("ofp_port")?,
            curr: p.u32("ofp_port")?,
            advertised: p.u32("ofp_port")?,
            supported: p.u32("ofp_port")?,
            peer: p.u32("ofp_port")?,
            curr_speed: p.u32("ofp_port")?,
            max_speed: p.u32("ofp_port")?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        put_zeros(out, 2);
        put_str(out, &self.name, PORT_NAME_LEN);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            put_u32(out, v);
        }
    }
}

/// PORT_STATUS: a port was added, deleted or changed (`reason` is one of `port_reason::*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: u8,
    pub port: Port,
}

impl PortStatus {
    pub(crate) fn parse(body: &[u8]) -> Result<PortStatus, Error> {
        let mut r = Reader::new(body);
        let reason = r.u8("port_status")?;
        r.skip(7, "port_status padding")?;
        Ok(PortStatus {
            reason,
            port: Port::parse(&mut r)?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.reason);
        put_zeros(out, 7);
        self.port.emit(out);
    }
}

/// PORT_MOD: change the `config` bits selected by `mask` on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    /// Must equal the port's current address (a sanity check by the switch).
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    /// Features to advertise; 0 leaves them unchanged.
    pub advertise: u32,
}

impl PortMod {
    pub(crate) fn parse(body: &[u8]) -> Result<PortMod, Error> {
        let mut r = Reader::new(body);
        let port_no = r.u32("port_mod")?;
        r.skip(4, "port_mod")?;
        let hw_addr = r.array::<6>("port_mod")?;
        r.skip(2, "port_mod")?;
        let config = r.u32("port_mod")?;
        let mask = r.u32("port_mod")?;
        let advertise = r.u32("port_mod")?;
        r.skip(4, "port_mod")?;
        Ok(PortMod {
            port_no,
            hw_addr,
            config,
            mask,
            advertise,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u32(out, self.port_no);
        put_zeros(out, 4);
        out.extend_from_slice(&self.hw_addr);
        put_zeros(out, 2);
        put_u32(out, self.config);
        put_u32(out, self.mask);
        put_u32(out, self.advertise);
        put_zeros(out, 4);
    }
}
