//! FEATURES_REPLY (`ofp_switch_features`) and the switch configuration
//! carried by GET_CONFIG_REPLY and SET_CONFIG (`ofp_switch_config`).

use super::wire::{put_u16, put_u32, put_u64, put_zeros, Reader};
use super::Error;

/// Capability bits in [`FeaturesReply::capabilities`] (`OFPC_*`).
pub mod capabilities {
    pub const FLOW_STATS: u32 = 1 << 0;
    pub const TABLE_STATS: u32 = 1 << 1;
    pub const PORT_STATS: u32 = 1 << 2;
    pub const GROUP_STATS: u32 = 1 << 3;
    pub const IP_REASM: u32 = 1 << 5;
    pub const QUEUE_STATS: u32 = 1 << 6;
    pub const PORT_BLOCKED: u32 = 1 << 8;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
}

impl FeaturesReply {
    pub(crate) fn parse(body: &[u8]) -> Result<FeaturesReply, Error> {
        let mut r = Reader::new(body);
        let f = FeaturesReply {
            datapath_id: r.u64("features_reply")?,
            n_buffers: r.u32("features_reply")?,
            n_tables: r.u8("features_reply")?,
            auxiliary_id: r.u8("features_reply")?,
            capabilities: {
                r.skip(2, "features_reply")?;
                r.u32("features_reply")?
            },
        };
        r.skip(4, "features_reply")?; // reserved
        Ok(f)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u64(out, self.datapath_id);
        put_u32(out, self.n_buffers);
        out.push(self.n_tables);
        out.push(self.auxiliary_id);
        put_zeros(out, 2);
        put_u32(out, self.capabilities);
        put_zeros(out, 4);
    }
}

/// `ofp_switch_config`: fragment handling flags and how many bytes of a
/// table-miss packet the switch sends in PACKET_IN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub(crate) fn parse(body: &[u8]) -> Result<SwitchConfig, Error> {
        let mut r = Reader::new(body);
        Ok(SwitchConfig {
            flags: r.u16("switch_config")?,
            miss_send_len: r.u16("switch_config")?,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u16(out, self.flags);
        put_u16(out, self.miss_send_len);
    }
}
