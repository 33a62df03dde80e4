//! GROUP_MOD: create, change or delete a group table entry and its buckets.

use super::action::{emit_actions, parse_actions, Action};
use super::wire::{len16, patch_u16, put_u16, put_u32, put_zeros, Reader};
use super::Error;

/// `OFPGC_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupModCommand {
    Add,
    Modify,
    Delete,
}

/// `OFPGT_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket (multicast/flood).
    All,
    /// One bucket, chosen by the switch (load balancing).
    Select,
    /// The single bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

/// One bucket of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Only meaningful for select groups.
    pub weight: u16,
    /// Only meaningful for fast-failover groups (`port::ANY` otherwise).
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket that simply applies `actions`.
    pub fn new(actions: Vec<Action>) -> Bucket {
        Bucket {
            weight: 0,
            watch_port: super::port::ANY,
            watch_group: super::GROUP_ANY,
            actions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

/// Fixed part of `ofp_bucket`.
const BUCKET_HEADER_LEN: usize = 16;

impl GroupMod {
    pub(crate) fn parse(body: &[u8]) -> Result<GroupMod, Error> {
        let mut r = Reader::new(body);
        let command = match r.u16("group_mod")? {
            0 => GroupModCommand::Add,
            1 => GroupModCommand::Modify,
            2 => GroupModCommand::Delete,
            v => {
                return Err(Error::BadValue {
                    what: "group_mod command",
                    value: u32::from(v),
                })
            }
        };
        let group_type = match r.u8("group_mod")? {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            3 => GroupType::FastFailover,
            v => {
                return Err(Error::BadValue {
                    what: "group type",
                    value: u32::from(v),
                })
            }
        };
        r.skip(1, "group_mod padding")?;
        let group_id = r.u32("group_mod")?;
        let mut buckets = Vec::new();
        while !r.is_empty() {
            let len = usize::from(r.u16("bucket")?);
            if len < BUCKET_HEADER_LEN || len % 8 != 0 {
                return Err(Error::BadLength {
                    what: "bucket",
                    len,
                });
            }
            let mut b = Reader::new(r.take(len - 2, "bucket")?);
            let weight = b.u16("bucket")?;
            let watch_port = b.u32("bucket")?;
            let watch_group = b.u32("bucket")?;
            b.skip(4, "bucket padding")?;
            let actions = parse_actions(b.rest())?;
            buckets.push(Bucket {
                weight,
                watch_port,
                watch_group,
                actions,
            });
        }
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        put_u16(
            out,
            match self.command {
                GroupModCommand::Add => 0,
                GroupModCommand::Modify => 1,
                GroupModCommand::Delete => 2,
            },
        );
        out.push(match self.group_type {
            GroupType::All => 0,
            GroupType::Select => 1,
            GroupType::Indirect => 2,
            GroupType::FastFailover => 3,
        });
        out.push(0);
        put_u32(out, self.group_id);
        for b in &self.buckets {
            let start = out.len();
            put_u16(out, 0);
            put_u16(out, b.weight);
            put_u32(out, b.watch_port);
            put_u32(out, b.watch_group);
            put_zeros(out, 4);
            emit_actions(out, &b.actions);
            let len = len16(out.len() - start);
            patch_u16(out, start, len);
        }
    }
}
