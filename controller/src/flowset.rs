//! Desired flows and the difference to what a switch holds.
//!
//! A `FlowSet` is what gemelo wants in one switch for one owner (the baseline
//! pipeline, a redirection, ...). `FlowSet::diff` compares it with the flows read
//! back from the switch (already filtered by the owner's cookie mask) and returns
//! only the FLOW_MODs that change the difference: flows that are already right are
//! not rewritten, so their duration and counters keep counting across controller
//! restarts. Pure: no I/O, unit-tested.

use crate::openflow::{FlowMod, FlowModCommand, FlowStats, Instruction, Match};
use crate::pipeline::Cookie;
use std::collections::BTreeMap;

/// One flow gemelo wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSpec {
    pub table: u8,
    pub priority: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
    pub cookie: Cookie,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
}

impl FlowSpec {
    pub fn new(
        table: u8,
        priority: u16,
        r#match: Match,
        instructions: Vec<Instruction>,
        cookie: Cookie,
    ) -> Self {
        FlowSpec {
            table,
            priority,
            r#match,
            instructions,
            cookie,
            idle_timeout: 0,
            hard_timeout: 0,
        }
    }

    /// The FLOW_MOD that adds this flow (replacing one with the same match and priority).
    pub fn add(&self) -> FlowMod {
        let mut fm = FlowMod::add(
            self.table,
            self.priority,
            self.r#match.clone(),
            self.instructions.clone(),
        );
        fm.cookie = self.cookie.0;
        fm.idle_timeout = self.idle_timeout;
        fm.hard_timeout = self.hard_timeout;
        fm
    }

    /// The FLOW_MOD that deletes exactly this flow, and only if it still carries this cookie.
    pub fn delete(&self) -> FlowMod {
        delete_strict(self.table, self.priority, self.r#match.clone(), self.cookie)
    }

    fn key(&self) -> FlowKey {
        FlowKey::new(self.table, self.priority, &self.r#match)
    }
}

/// A DELETE_STRICT for one flow, guarded by its exact cookie.
pub fn delete_strict(table: u8, priority: u16, r#match: Match, cookie: Cookie) -> FlowMod {
    let mut fm = FlowMod::add(table, priority, r#match, Vec::new());
    fm.command = FlowModCommand::DeleteStrict;
    fm.cookie = cookie.0;
    fm.cookie_mask = Cookie::EXACT_MASK;
    fm
}

/// Identity of a flow inside a table: OpenFlow's (table, priority, match).
/// Match fields are compared as a set because switches return them in their own order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey {
    table: u8,
    priority: u16,
    fields: Vec<String>,
}

impl FlowKey {
    fn new(table: u8, priority: u16, m: &Match) -> Self {
        let mut fields: Vec<String> = m.fields.iter().map(|f| format!("{f:?}")).collect();
        fields.sort();
        FlowKey {
            table,
            priority,
            fields,
        }
    }
}

/// A set of desired flows, unique by (table, priority, match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSet {
    flows: BTreeMap<FlowKey, FlowSpec>,
}

/// What a reconcile pass would send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowDiff {
    /// Flows missing or different on the switch.
    pub add: Vec<FlowSpec>,
    /// Flows of this owner on the switch that are no longer wanted.
    pub delete: Vec<FlowMod>,
    /// Flows already right (left alone).
    pub unchanged: usize,
}

impl FlowDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
    /// Deletions first, so an add never collides with a stale flow.
    pub fn into_flow_mods(self) -> Vec<FlowMod> {
        let mut out = self.delete;
        out.extend(self.add.iter().map(FlowSpec::add));
        out
    }
}

impl FlowSet {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a flow; one with the same (table, priority, match) is replaced.
    pub fn insert(&mut self, flow: FlowSpec) {
        self.flows.insert(flow.key(), flow);
    }
    pub fn len(&self) -> usize {
        self.flows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &FlowSpec> {
        self.flows.values()
    }
    pub fn extend(&mut self, other: FlowSet) {
        self.flows.extend(other.flows);
    }

    /// Compares with `actual`, the switch's flows of the same owner.
    pub fn diff(&self, actual: &[FlowStats]) -> FlowDiff {
        let mut diff = FlowDiff::default();
        let mut seen: BTreeMap<FlowKey, &FlowStats> = BTreeMap::new();
        for f in actual {
            let key = FlowKey::new(f.table_id, f.priority, &f.r#match);
            if !self.flows.contains_key(&key) {
                diff.delete.push(delete_strict(
                    f.table_id,
                    f.priority,
                    f.r#match.clone(),
                    Cookie(f.cookie),
                ));
                continue;
            }
            seen.insert(key, f);
        }
        for (key, want) in &self.flows {
            match seen.get(key) {
                Some(have)
                    if have.cookie == want.cookie.0
                        && have.instructions == want.instructions
                        && have.idle_timeout == want.idle_timeout
                        && have.hard_timeout == want.hard_timeout =>
                {
                    diff.unchanged += 1
                }
                _ => diff.add.push(want.clone()),
            }
        }
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::{port, Action};
    use crate::pipeline::{baseline, CookieKind, ForwardingMode};

    fn stats_of(spec: &FlowSpec) -> FlowStats {
        FlowStats {
            table_id: spec.table,
            duration_sec: 42,
            duration_nsec: 0,
            priority: spec.priority,
            idle_timeout: spec.idle_timeout,
            hard_timeout: spec.hard_timeout,
            flags: 0,
            cookie: spec.cookie.0,
            packet_count: 7,
            byte_count: 700,
            r#match: spec.r#match.clone(),
            instructions: spec.instructions.clone(),
        }
    }

    #[test]
    fn flows_already_right_are_left_alone() {
        let want = baseline(ForwardingMode::Normal);
        let actual: Vec<FlowStats> = want.iter().map(stats_of).collect();
        let diff = want.diff(&actual);
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(diff.unchanged, 3);
    }

    #[test]
    fn empty_switch_gets_everything() {
        let want = baseline(ForwardingMode::Learning);
        let diff = want.diff(&[]);
        assert_eq!(diff.add.len(), 3);
        assert!(diff.delete.is_empty());
    }

    #[test]
    fn changed_flow_is_replaced_and_stale_flow_deleted() {
        let normal = baseline(ForwardingMode::Normal);
        let mut actual: Vec<FlowStats> = baseline(ForwardingMode::Learning)
            .iter()
            .map(stats_of)
            .collect();
        let stale = FlowSpec::new(
            0,
            50,
            Match::new().eth_type(0x0806),
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: port::CONTROLLER,
                max_len: 128,
            }])],
            Cookie::new(CookieKind::Baseline, 0),
        );
        actual.push(stats_of(&stale));
        let diff = normal.diff(&actual);
        assert_eq!(
            diff.add.len(),
            1,
            "only the forward table's miss flow differs"
        );
        assert_eq!(diff.add[0].table, 2);
        assert_eq!(diff.delete.len(), 1);
        let del = &diff.delete[0];
        assert_eq!(del.command, FlowModCommand::DeleteStrict);
        assert_eq!(del.priority, 50);
        assert_eq!(del.cookie_mask, u64::MAX);
        let mods = diff.into_flow_mods();
        assert_eq!(
            mods[0].command,
            FlowModCommand::DeleteStrict,
            "deletions go first"
        );
    }

    #[test]
    fn match_field_order_does_not_matter() {
        let a = Match::new().eth_type(0x0800).in_port(1);
        let b = Match::new().in_port(1).eth_type(0x0800);
        let spec = FlowSpec::new(0, 10, a, vec![], Cookie::new(CookieKind::Baseline, 0));
        let mut set = FlowSet::new();
        set.insert(spec.clone());
        let mut have = stats_of(&spec);
        have.r#match = b;
        assert!(set.diff(&[have]).is_empty());
    }
}
