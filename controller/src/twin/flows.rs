//! Flows of the twin switch. Pure.
//!
//! The twin switch forwards among twin hosts with OVS NORMAL (VLAN access ports
//! as planned). It has no uplink to production: the only path in or out is the
//! GRE tunnel that redirections program, each under its own cookie.

use crate::flowset::{FlowSet, FlowSpec};
use crate::openflow::{port, Action, Instruction, Match};
use crate::pipeline::{priority, Cookie, CookieKind, CLASSIFIER};

pub fn cookie() -> Cookie {
    Cookie::new(CookieKind::Twin, 0)
}

/// What the twin switch holds with no redirection active.
pub fn baseline() -> FlowSet {
    let mut set = FlowSet::new();
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::MISS,
        Match::new(),
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: port::NORMAL,
            max_len: 0,
        }])],
        cookie(),
    ));
    set
}

#[cfg(test)]
mod tests {
    #[test]
    fn twin_forwards_normally_under_its_cookie() {
        let set = super::baseline();
        assert_eq!(set.len(), 1);
        assert!(set
            .iter()
            .all(|f| f.cookie.kind() == Some(crate::pipeline::CookieKind::Twin)));
    }
}
