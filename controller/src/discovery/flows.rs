//! The classifier flows of passive discovery, and the packet-in rate limit.
//!
//! Table 0 copies what discovery learns from to the controller and lets the
//! packet go on (`apply(output:CONTROLLER)` + `goto_table:1`): ARP, DHCP, LLDP
//! and TCP SYN-ACKs. gemelo's own LLDP link probes go to the controller only.
//! OpenFlow's controller meter (`meter=controller`) caps the packet-ins a switch
//! sends, so a flood slows discovery, never production forwarding. Pure.

use super::frames::{ETH_LLDP, PROBE_SRC};
use crate::flowset::{FlowSet, FlowSpec};
use crate::openflow::{port, Action, Instruction, Match, Message, CML_NO_BUFFER};
use crate::pipeline::{priority, Cookie, CookieKind, CLASSIFIER, REDIRECT};

/// `OFPM_CONTROLLER`: the virtual meter of packets sent to the controller.
pub const METER_CONTROLLER: u32 = 0xffff_fffe;
const OFPT_METER_MOD: u8 = 29;

pub fn cookie() -> Cookie {
    Cookie::new(CookieKind::Discovery, 0)
}

fn copy_then_forward(max_len: u16) -> Vec<Instruction> {
    vec![
        Instruction::ApplyActions(vec![Action::Output {
            port: port::CONTROLLER,
            max_len,
        }]),
        Instruction::GotoTable(REDIRECT.id),
    ]
}

/// The classifier flows every production switch gets.
pub fn classifier() -> FlowSet {
    let c = cookie();
    let mut set = FlowSet::new();
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::LINK_PROBE,
        Match::new().eth_type(ETH_LLDP).eth_src(PROBE_SRC),
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: port::CONTROLLER,
            max_len: CML_NO_BUFFER,
        }])],
        c,
    ));
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::DISCOVERY,
        Match::new().eth_type(ETH_LLDP),
        copy_then_forward(CML_NO_BUFFER),
        c,
    ));
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::DISCOVERY,
        Match::new().eth_type(0x0806),
        copy_then_forward(CML_NO_BUFFER),
        c,
    ));
    for udp_dst in [67, 68] {
        set.insert(FlowSpec::new(
            CLASSIFIER.id,
            priority::DISCOVERY,
            Match::new().eth_type(0x0800).ip_proto(17).udp_dst(udp_dst),
            copy_then_forward(CML_NO_BUFFER),
            c,
        ));
    }
    // SYN+ACK set (whatever else is): a server accepted a connection. Headers are enough.
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::DISCOVERY,
        Match::new()
            .eth_type(0x0800)
            .ip_proto(6)
            .tcp_flags(0x012, Some(0x012)),
        copy_then_forward(128),
        c,
    ));
    // SYN without ACK: a connection attempt (what the scan and brute-force
    // detectors count). Headers are enough.
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::DISCOVERY,
        Match::new()
            .eth_type(0x0800)
            .ip_proto(6)
            .tcp_flags(0x002, Some(0x012)),
        copy_then_forward(128),
        c,
    ));
    set
}

/// METER_MOD for the controller meter: at most `pktps` packet-ins per second.
pub fn controller_meter(command: u16, pktps: u32) -> Message {
    const PKTPS: u16 = 0x2;
    const BURST: u16 = 0x4;
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&command.to_be_bytes());
    body.extend_from_slice(&(PKTPS | BURST).to_be_bytes());
    body.extend_from_slice(&METER_CONTROLLER.to_be_bytes());
    body.extend_from_slice(&1u16.to_be_bytes()); // OFPMBT_DROP
    body.extend_from_slice(&16u16.to_be_bytes());
    body.extend_from_slice(&pktps.to_be_bytes());
    // A second's worth of burst: legitimate bursts (a sweep's answers) pass, a sustained flood does not.
    body.extend_from_slice(&pktps.max(1).to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    Message::Unknown {
        msg_type: OFPT_METER_MOD,
        body,
    }
}

pub const METER_ADD: u16 = 0;
pub const METER_MODIFY: u16 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_copies_and_continues() {
        let set = classifier();
        assert_eq!(set.len(), 7);
        for f in set.iter() {
            assert_eq!(f.table, CLASSIFIER.id);
            assert_eq!(f.cookie.kind(), Some(CookieKind::Discovery));
            let goes_on = f
                .instructions
                .contains(&Instruction::GotoTable(REDIRECT.id));
            assert_eq!(
                goes_on,
                f.priority != priority::LINK_PROBE,
                "only gemelo's own probes stop here: {f:?}"
            );
        }
    }

    #[test]
    fn meter_mod_is_what_ovs_expects() {
        let bytes = controller_meter(METER_ADD, 1000).encode(7);
        assert_eq!(bytes.len(), 8 + 24);
        assert_eq!(bytes[1], OFPT_METER_MOD);
        if let Ok(out) = std::process::Command::new("ovs-ofctl")
            .arg("ofp-print")
            .arg(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("meter=controller")
                    && text.contains("pktps")
                    && text.contains("rate=1000")
                    && text.contains("burst_size=1000"),
                "{text}"
            );
        }
    }
}
