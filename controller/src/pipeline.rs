//! gemelo's OpenFlow pipeline, declared as data.
//!
//! Every switch gemelo controls gets the same three tables. An engineer reading
//! `ovs-ofctl dump-flows` finds here why each table and priority exists; the
//! README's pipeline table is generated from the same declarations
//! (`gemelo pipeline`), so the two cannot drift apart.
//!
//! Cookies name the owner of every flow: the high 16 bits are `0x676d` ("gm"),
//! the next 8 bits the kind of object, the low 40 bits the object's id. Read-back
//! and deletion always use a cookie mask, so flows of other controllers are never
//! touched.

use crate::flowset::{FlowSet, FlowSpec};
use crate::openflow::{port, Action, Instruction, Match};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A table of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub id: u8,
    pub name: &'static str,
    pub purpose: &'static str,
}

/// Classifies packets: copies what discovery needs to the controller, then goes on.
pub const CLASSIFIER: Table = Table {
    id: 0,
    name: "classifier",
    purpose: "every packet enters here; copies of discovery traffic go to the controller, then goto redirect",
};
/// Holds one bundle of flows per active redirection (empty until one exists).
pub const REDIRECT: Table = Table {
    id: 1,
    name: "redirect",
    purpose: "flows of active redirections (hostile sources swapped into the twin); otherwise goto forward",
};
/// Forwards what was not redirected, in the configured forwarding mode.
pub const FORWARD: Table = Table {
    id: 2,
    name: "forward",
    purpose: "production forwarding: OVS NORMAL (mode normal) or L2 flows learned by gemelo (mode learning)",
};

/// The pipeline, in packet order.
pub const TABLES: [Table; 3] = [CLASSIFIER, REDIRECT, FORWARD];

/// Priorities used by gemelo, named so that dump-flows can be explained.
pub mod priority {
    /// The last resort of every table.
    pub const MISS: u16 = 0;
    /// L2 flows installed by the learning forwarder.
    pub const LEARNED: u16 = 100;
    /// Classifier copies of discovery and detector traffic (ARP, DHCP, LLDP, TCP SYN-ACK, TCP SYN).
    pub const DISCOVERY: u16 = 200;
    /// gemelo's own LLDP link probes: to the controller only.
    pub const LINK_PROBE: u16 = 210;
    /// The GRE tunnel port: skips discovery (table 0); anything without an
    /// active redirection's key is dropped (table 1, and table 0 of the twin).
    pub const TUNNEL_GUARD: u16 = 250;
    /// Redirection: whatever else arrives on a redirected host's port (anti-spoof);
    /// in the twin, the twin's own copy of the redirected host is silenced.
    pub const REDIRECT_FENCE: u16 = 290;
    /// Redirection: the host's packets toward the twin; anything toward the
    /// host from production dropped; in the twin, replies toward the tunnel.
    pub const REDIRECT: u16 = 300;
    /// Redirection: the twin's packets back toward the redirected host.
    pub const REDIRECT_RETURN: u16 = 310;
}

/// How the forward table forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ForwardingMode {
    /// OVS NORMAL: gemelo coexists with the switch's own L2 switching.
    #[default]
    Normal,
    /// gemelo installs L2 flows learned from table-miss PACKET_INs.
    Learning,
}

impl std::str::FromStr for ForwardingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(ForwardingMode::Normal),
            "learning" => Ok(ForwardingMode::Learning),
            other => Err(format!(
                "unknown forwarding mode {other:?}: expected \"normal\" or \"learning\""
            )),
        }
    }
}

impl fmt::Display for ForwardingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardingMode::Normal => "normal",
            ForwardingMode::Learning => "learning",
        })
    }
}

/// The owner of a flow, encoded in its cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cookie(pub u64);

/// What kind of object owns a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CookieKind {
    /// The pipeline skeleton every switch gets.
    Baseline = 1,
    /// L2 flows of the learning forwarder.
    Learned = 2,
    /// Flows of one redirection (id = redirection id).
    Redirection = 3,
    /// Flows of the twin fabric.
    Twin = 4,
    /// Discovery's copies to the controller.
    Discovery = 5,
}

impl Cookie {
    /// "gm" in the high 16 bits.
    pub const GEMELO: u64 = 0x676d_0000_0000_0000;
    /// Selects every flow gemelo owns.
    pub const GEMELO_MASK: u64 = 0xffff_0000_0000_0000;
    /// Selects every flow of one kind.
    pub const KIND_MASK: u64 = 0xffff_ff00_0000_0000;
    /// Selects exactly one object's flows.
    pub const EXACT_MASK: u64 = u64::MAX;
    const ID_BITS: u32 = 40;

    pub fn new(kind: CookieKind, id: u64) -> Cookie {
        Cookie(Self::GEMELO | ((kind as u64) << Self::ID_BITS) | (id & ((1 << Self::ID_BITS) - 1)))
    }
    /// The value to match every flow of `kind` with `KIND_MASK`.
    pub fn of_kind(kind: CookieKind) -> Cookie {
        Cookie::new(kind, 0)
    }
    pub fn is_gemelo(self) -> bool {
        self.0 & Self::GEMELO_MASK == Self::GEMELO
    }
    pub fn kind(self) -> Option<CookieKind> {
        if !self.is_gemelo() {
            return None;
        }
        Some(match (self.0 >> Self::ID_BITS) as u8 {
            1 => CookieKind::Baseline,
            2 => CookieKind::Learned,
            3 => CookieKind::Redirection,
            4 => CookieKind::Twin,
            5 => CookieKind::Discovery,
            _ => return None,
        })
    }
    pub fn id(self) -> u64 {
        self.0 & ((1 << Self::ID_BITS) - 1)
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The cookie of the pipeline skeleton.
pub fn baseline_cookie() -> Cookie {
    Cookie::new(CookieKind::Baseline, 0)
}

/// The flows every switch gets in the given forwarding mode.
pub fn baseline(mode: ForwardingMode) -> FlowSet {
    let cookie = baseline_cookie();
    let mut set = FlowSet::new();
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::MISS,
        Match::new(),
        vec![Instruction::GotoTable(REDIRECT.id)],
        cookie,
    ));
    set.insert(FlowSpec::new(
        REDIRECT.id,
        priority::MISS,
        Match::new(),
        vec![Instruction::GotoTable(FORWARD.id)],
        cookie,
    ));
    let forward = match mode {
        ForwardingMode::Normal => Action::Output {
            port: port::NORMAL,
            max_len: 0,
        },
        ForwardingMode::Learning => Action::Output {
            port: port::CONTROLLER,
            max_len: crate::openflow::CML_NO_BUFFER,
        },
    };
    set.insert(FlowSpec::new(
        FORWARD.id,
        priority::MISS,
        Match::new(),
        vec![Instruction::ApplyActions(vec![forward])],
        cookie,
    ));
    set
}

/// The pipeline as a Markdown table (the README's copy is generated from it).
pub fn markdown(mode_note: bool) -> String {
    let mut out =
        String::from("| table | name | purpose | flows gemelo installs |\n|---|---|---|---|\n");
    for t in TABLES {
        let flows = match t.id {
            0 => "priority 250: the GRE tunnel port → `goto_table:1` (skips discovery); priority 210: gemelo's LLDP link probes → `CONTROLLER`; priority 200: ARP, DHCP (udp 67/68), LLDP, TCP SYN-ACK, TCP SYN → `CONTROLLER` + `goto_table:1`; priority 0: `goto_table:1`",
            1 => "priority 310: from the tunnel with a redirection's key → the redirected host (along the discovered path); priority 300: the host's `dl_src` → `set_field:KEY->tun_id`, tunnel; `dl_dst`/ARP toward the host → drop; priority 290: the rest of its port → drop; priority 250: the rest of the tunnel → drop; priority 0: `goto_table:2`. One cookie per redirection (kind 3, id = its number; id 0 = the tunnel guard)",
            _ => "priority 0: `NORMAL` (normal) or `CONTROLLER:65535` (learning); priority 100: learned `dl_dst` → `output`",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.id, t.name, t.purpose, flows
        ));
    }
    if mode_note {
        out.push_str(&format!(
            "\nCookies: `0x676d` (\"gm\") in the high 16 bits, then the kind (1 baseline, 2 learned, 3 redirection, 4 twin, 5 discovery), then a 40-bit object id. Select all of gemelo's flows with `cookie={:#x}/{:#x}`.\n",
            Cookie::GEMELO,
            Cookie::GEMELO_MASK
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_layout() {
        let c = Cookie::new(CookieKind::Redirection, 4097);
        assert_eq!(c.0, 0x676d_0300_0000_1001);
        assert!(c.is_gemelo());
        assert_eq!(c.kind(), Some(CookieKind::Redirection));
        assert_eq!(c.id(), 4097);
        assert_eq!(
            c.0 & Cookie::KIND_MASK,
            Cookie::of_kind(CookieKind::Redirection).0
        );
        assert!(!Cookie(0x1234).is_gemelo());
        assert_eq!(Cookie(0x1234).kind(), None);
    }

    #[test]
    fn baseline_chains_the_tables() {
        for mode in [ForwardingMode::Normal, ForwardingMode::Learning] {
            let set = baseline(mode);
            assert_eq!(set.len(), 3);
            let tables: Vec<u8> = set.iter().map(|f| f.table).collect();
            assert_eq!(tables, vec![0, 1, 2]);
            assert!(set.iter().all(|f| f.cookie == baseline_cookie()));
        }
    }

    #[test]
    fn readme_carries_the_current_pipeline() {
        let readme = include_str!("../../README.md");
        let table = markdown(false);
        assert!(
            readme.contains(table.trim()),
            "README's pipeline table is stale: paste the output of `gemelo pipeline`"
        );
    }

    #[test]
    fn forwarding_mode_parses() {
        assert_eq!(
            "learning".parse::<ForwardingMode>(),
            Ok(ForwardingMode::Learning)
        );
        assert!("flood"
            .parse::<ForwardingMode>()
            .unwrap_err()
            .contains("flood"));
    }
}
