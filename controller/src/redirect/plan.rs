//! Redirection → flows. Pure: no I/O, unit-tested.
//!
//! A redirection swaps some production hosts (its members) into the twin. On
//! the production side its flows sit in the `redirect` table of every switch on
//! the discovered path from each member's port to the switch holding the GRE
//! tunnel: the member's packets climb the path and enter the tunnel with the
//! redirection's key; only packets from the tunnel with that key, addressed to
//! the member (or ARP for its address), come back down; everything else toward
//! the member is dropped, and nothing else is accepted from its port. Off the
//! path nothing changes, and no flow of anyone else is touched: every flow
//! carries the redirection's own cookie.
//!
//! On the twin switch, packets from the tunnel with the key are switched
//! normally among the twin hosts, and whatever the twin sends toward a member
//! (its MAC, ARP for its address) goes back into the tunnel with that key; the
//! twin's own copy of a member (discovery mirrored it too) is silenced.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;

use crate::flowset::{FlowSet, FlowSpec};
use crate::openflow::{port, Action, Instruction, Match, OxmField};
use crate::pipeline::{priority, Cookie, CookieKind, CLASSIFIER, REDIRECT};

/// GRE keys start here (4096 + the redirection's number): small numbers stay
/// free for an operator's own tunnels.
pub const KEY_BASE: u64 = 4096;
const ETH_ARP: u16 = 0x0806;

/// The GRE key of redirection `number`.
pub fn key(number: u64) -> u64 {
    KEY_BASE + number
}

/// The cookie of redirection `number` (on production switches and on the twin).
pub fn cookie(number: u64) -> Cookie {
    Cookie::new(CookieKind::Redirection, number)
}

/// The cookie of the tunnel guard flows (redirection kind, id 0).
pub fn guard_cookie() -> Cookie {
    Cookie::new(CookieKind::Redirection, 0)
}

/// A redirected host, where production sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub mac: [u8; 6],
    pub ips: Vec<Ipv4Addr>,
    pub dpid: u64,
    pub port: u32,
    /// Its segment's VLAN: its packets enter the twin's switching with that tag.
    pub vlan: Option<u16>,
    /// Other hosts sit behind the same switch port (a hypervisor's bridge, a
    /// downstream switch): the port is not fenced, and only what is addressed
    /// to the member is delivered to it.
    pub shared_port: bool,
}

/// What the flows of one redirection depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// 1.. (0 is the tunnel guard).
    pub number: u64,
    pub members: Vec<Member>,
}

/// Where the tunnel ends on the production side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub dpid: u64,
    pub port: u32,
}

/// A link between two switch ports, as discovery found it.
pub type LinkPorts = ((u64, u32), (u64, u32));

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "no discovered path from switch {from:016x} to switch {to:016x}, which holds the tunnel"
    )]
    NoPath { from: u64, to: u64 },
    #[error("a redirection needs at least one member")]
    Empty,
    #[error("redirection number 0 is reserved for the tunnel guard")]
    ReservedNumber,
}

/// One switch on a member's path: `down` faces the member, `up` the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    dpid: u64,
    down: u32,
    up: u32,
}

/// Shortest path (fewest links) from `member` to the tunnel.
fn path(member: &Member, tunnel: Tunnel, links: &[LinkPorts]) -> Result<Vec<Hop>, PlanError> {
    // Breadth-first over switches; `via[s] = (previous switch, its port, s's port)`.
    let mut via: BTreeMap<u64, (u64, u32, u32)> = BTreeMap::new();
    let mut seen = BTreeSet::from([member.dpid]);
    let mut queue = VecDeque::from([member.dpid]);
    while let Some(s) = queue.pop_front() {
        if s == tunnel.dpid {
            break;
        }
        for &((a, ap), (b, bp)) in links {
            let next = if a == s {
                Some((b, ap, bp))
            } else if b == s {
                Some((a, bp, ap))
            } else {
                None
            };
            if let Some((n, out, inp)) = next {
                if seen.insert(n) {
                    via.insert(n, (s, out, inp));
                    queue.push_back(n);
                }
            }
        }
    }
    if !seen.contains(&tunnel.dpid) {
        return Err(PlanError::NoPath {
            from: member.dpid,
            to: tunnel.dpid,
        });
    }
    // Walk back from the tunnel switch.
    let mut hops = Vec::new();
    let mut s = tunnel.dpid;
    let mut up = tunnel.port;
    while s != member.dpid {
        let (prev, prev_out, s_in) = via[&s];
        hops.push(Hop {
            dpid: s,
            down: s_in,
            up,
        });
        s = prev;
        up = prev_out;
    }
    hops.push(Hop {
        dpid: member.dpid,
        down: member.port,
        up,
    });
    hops.reverse();
    Ok(hops)
}

fn out(port: u32) -> Action {
    Action::Output { port, max_len: 0 }
}

fn apply(actions: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(actions)]
}

/// No instruction at all: what the switch reports back for `actions=drop`,
/// so reconciliation finds the flow unchanged.
fn drop_it() -> Vec<Instruction> {
    Vec::new()
}

fn set_key(key: u64) -> Action {
    Action::SetField(OxmField::TunnelId {
        id: key,
        mask: None,
    })
}

/// The flows of `spec` on each production switch of its members' paths.
pub fn production(
    spec: &Spec,
    tunnel: Tunnel,
    links: &[LinkPorts],
) -> Result<BTreeMap<u64, FlowSet>, PlanError> {
    if spec.number == 0 {
        return Err(PlanError::ReservedNumber);
    }
    if spec.members.is_empty() {
        return Err(PlanError::Empty);
    }
    let c = cookie(spec.number);
    let k = key(spec.number);
    let t = REDIRECT.id;
    let mut sets: BTreeMap<u64, FlowSet> = BTreeMap::new();
    for m in &spec.members {
        let hops = path(m, tunnel, links)?;
        let direct = hops.len() == 1;
        for (i, hop) in hops.iter().enumerate() {
            let set = sets.entry(hop.dpid).or_default();
            let at_tunnel = hop.dpid == tunnel.dpid && hop.up == tunnel.port;
            let at_member = i == 0;
            // Up: the member's own frames (ARP included).
            let mut up_actions = Vec::new();
            if at_tunnel {
                up_actions.push(set_key(k));
            }
            up_actions.push(out(hop.up));
            set.insert(FlowSpec::new(
                t,
                priority::REDIRECT,
                Match::new().in_port(hop.down).eth_src(m.mac),
                apply(up_actions),
                c,
            ));
            // Down: from the tunnel with this key (or from the next switch up,
            // which only forwards that), toward the member.
            let from_up = || {
                let m = Match::new().in_port(hop.up);
                if at_tunnel {
                    m.tunnel_id(k)
                } else {
                    m
                }
            };
            if direct && !m.shared_port {
                // The member's own port: everything of this key goes there.
                set.insert(FlowSpec::new(
                    t,
                    priority::REDIRECT_RETURN,
                    from_up().eth_dst(m.mac),
                    apply(vec![out(hop.down)]),
                    c,
                ));
                set.insert(FlowSpec::new(
                    t,
                    priority::REDIRECT_RETURN,
                    from_up().eth_dst_masked([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]),
                    apply(vec![out(hop.down)]),
                    c,
                ));
            } else {
                // A shared link or port: only what is addressed to the member.
                set.insert(FlowSpec::new(
                    t,
                    priority::REDIRECT_RETURN,
                    from_up().eth_dst(m.mac),
                    apply(vec![out(hop.down)]),
                    c,
                ));
                for ip in &m.ips {
                    set.insert(FlowSpec::new(
                        t,
                        priority::REDIRECT_RETURN,
                        from_up().eth_type(ETH_ARP).arp_tpa(*ip),
                        apply(vec![out(hop.down)]),
                        c,
                    ));
                }
            }
            // Production no longer reaches the member.
            set.insert(FlowSpec::new(
                t,
                priority::REDIRECT,
                Match::new().eth_dst(m.mac),
                drop_it(),
                c,
            ));
            for ip in &m.ips {
                set.insert(FlowSpec::new(
                    t,
                    priority::REDIRECT,
                    Match::new().eth_type(ETH_ARP).arp_tpa(*ip),
                    drop_it(),
                    c,
                ));
            }
            if at_member && !m.shared_port {
                // Anti-spoof: nothing else enters from the member's port.
                set.insert(FlowSpec::new(
                    t,
                    priority::REDIRECT_FENCE,
                    Match::new().in_port(hop.down),
                    drop_it(),
                    c,
                ));
            }
        }
    }
    Ok(sets)
}

/// The production switch holding the tunnel: its packets skip discovery, and
/// whatever carries no active redirection's key goes nowhere.
pub fn production_guard(tunnel_port: u32) -> FlowSet {
    let c = guard_cookie();
    let mut set = FlowSet::new();
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::TUNNEL_GUARD,
        Match::new().in_port(tunnel_port),
        vec![Instruction::GotoTable(REDIRECT.id)],
        c,
    ));
    set.insert(FlowSpec::new(
        REDIRECT.id,
        priority::TUNNEL_GUARD,
        Match::new().in_port(tunnel_port),
        drop_it(),
        c,
    ));
    set
}

/// The twin switch: nothing from the tunnel without an active key.
pub fn twin_guard(tunnel_port: u32) -> FlowSet {
    let mut set = FlowSet::new();
    set.insert(FlowSpec::new(
        CLASSIFIER.id,
        priority::TUNNEL_GUARD,
        Match::new().in_port(tunnel_port),
        drop_it(),
        guard_cookie(),
    ));
    set
}

/// The flows of `spec` on the twin switch (its tunnel port `tunnel_port`).
pub fn twin(spec: &Spec, tunnel_port: u32) -> FlowSet {
    let c = cookie(spec.number);
    let k = key(spec.number);
    let t = CLASSIFIER.id;
    let mut set = FlowSet::new();
    let back = || apply(vec![set_key(k), out(tunnel_port)]);
    for m in &spec.members {
        let mut into_twin = Vec::new();
        if let Some(vid) = m.vlan {
            into_twin.push(Action::PushVlan(0x8100));
            into_twin.push(Action::SetField(OxmField::VlanVid {
                vid: vid | crate::openflow::VID_PRESENT,
                mask: None,
            }));
        }
        into_twin.push(out(port::NORMAL));
        set.insert(FlowSpec::new(
            t,
            priority::REDIRECT_RETURN,
            Match::new()
                .in_port(tunnel_port)
                .tunnel_id(k)
                .eth_src(m.mac),
            apply(into_twin),
            c,
        ));
        set.insert(FlowSpec::new(
            t,
            priority::REDIRECT,
            Match::new().eth_dst(m.mac),
            back(),
            c,
        ));
        for ip in &m.ips {
            set.insert(FlowSpec::new(
                t,
                priority::REDIRECT,
                Match::new().eth_type(ETH_ARP).arp_tpa(*ip),
                back(),
                c,
            ));
        }
        // The twin's own copy of the member, if it has one, stays silent.
        set.insert(FlowSpec::new(
            t,
            priority::REDIRECT_FENCE,
            Match::new().eth_src(m.mac),
            drop_it(),
            c,
        ));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x02, 0, 0x0a, 0x0a, 0x02, 0x42];

    fn member(dpid: u64, port: u32) -> Member {
        Member {
            mac: A,
            ips: vec!["10.10.2.66".parse().unwrap()],
            dpid,
            port,
            vlan: None,
            shared_port: false,
        }
    }

    fn lines(set: &FlowSet) -> Vec<String> {
        set.iter()
            .map(|f| {
                let fm = f.add();
                format!(
                    "table={} priority={} {} actions={}",
                    fm.table_id,
                    fm.priority,
                    crate::openflow::format_match(&fm.r#match),
                    crate::openflow::format_instructions(&fm.instructions)
                )
            })
            .collect()
    }

    #[test]
    fn member_on_the_tunnel_switch() {
        let spec = Spec {
            number: 1,
            members: vec![member(1, 6)],
        };
        let sets = production(&spec, Tunnel { dpid: 1, port: 9 }, &[]).unwrap();
        assert_eq!(sets.len(), 1);
        let set = &sets[&1];
        assert!(set.iter().all(|f| f.cookie == cookie(1)));
        let l = lines(set);
        let want_up = "table=1 priority=300 in_port=6,dl_src=02:00:0a:0a:02:42 actions=set_field:0x1001->tun_id,output:9";
        assert!(l.iter().any(|x| x == want_up), "{l:#?}");
        assert!(
            l.iter().any(|x| x.contains("priority=310")
                && x.contains("tun_id=0x1001")
                && x.contains("in_port=9")
                && x.ends_with("actions=output:6")),
            "{l:#?}"
        );
        assert!(
            l.iter().any(|x| x.contains("priority=300")
                && x.contains("dl_dst=02:00:0a:0a:02:42")
                && x.ends_with("actions=drop")),
            "{l:#?}"
        );
        assert!(
            l.iter().any(|x| x.contains("priority=300")
                && x.contains("arp_tpa=10.10.2.66")
                && x.ends_with("actions=drop")),
            "{l:#?}"
        );
        assert!(
            l.iter()
                .any(|x| x == "table=1 priority=290 in_port=6 actions=drop"),
            "{l:#?}"
        );
        assert_eq!(set.len(), 6, "{l:#?}");
    }

    #[test]
    fn member_behind_a_link_is_steered_along_the_path() {
        // sw2 port 1 <-> sw1 port 5; member on sw2 port 6; tunnel on sw1 port 9.
        let links = [((1, 5), (2, 1))];
        let spec = Spec {
            number: 7,
            members: vec![member(2, 6)],
        };
        let sets = production(&spec, Tunnel { dpid: 1, port: 9 }, &links).unwrap();
        assert_eq!(sets.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        let sw2 = lines(&sets[&2]);
        assert!(
            sw2.iter()
                .any(|x| x.contains("in_port=6,dl_src=") && x.ends_with("actions=output:1")),
            "{sw2:#?}"
        );
        assert!(
            sw2.iter().any(|x| x.contains("priority=310")
                && x.contains("in_port=1")
                && x.contains("dl_dst=02:00:0a:0a:02:42")
                && x.ends_with("output:6")),
            "{sw2:#?}"
        );
        assert!(
            sw2.iter().any(|x| x.contains("priority=310")
                && x.contains("arp_tpa=10.10.2.66")
                && x.contains("in_port=1")),
            "{sw2:#?}"
        );
        // The member's switch does not forward twin broadcasts into production.
        assert!(
            !sw2.iter()
                .any(|x| x.contains("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00")),
            "{sw2:#?}"
        );
        assert!(sw2
            .iter()
            .any(|x| x == "table=1 priority=290 in_port=6 actions=drop"));
        let sw1 = lines(&sets[&1]);
        assert!(
            sw1.iter().any(|x| !x.contains("in_port=1")
                && x.contains("in_port=5,dl_src=")
                && x.ends_with("set_field:0x1007->tun_id,output:9")),
            "{sw1:#?}"
        );
        assert!(
            sw1.iter().any(|x| x.contains("priority=310")
                && x.contains("tun_id=0x1007")
                && x.contains("dl_dst=02:00:0a:0a:02:42")
                && x.ends_with("output:5")),
            "{sw1:#?}"
        );
        // No anti-spoof on the link port: other hosts share it.
        assert!(!sw1.iter().any(|x| x.contains("priority=290")), "{sw1:#?}");
    }

    #[test]
    fn a_shared_port_is_neither_fenced_nor_flooded() {
        let mut m = member(1, 6);
        m.shared_port = true;
        let spec = Spec {
            number: 4,
            members: vec![m],
        };
        let sets = production(&spec, Tunnel { dpid: 1, port: 9 }, &[]).unwrap();
        let sw1 = lines(&sets[&1]);
        // Neighbours behind port 6 keep sending: no fence on the port.
        assert!(!sw1.iter().any(|x| x.contains("priority=290")), "{sw1:#?}");
        // Twin broadcasts never reach the neighbours: only the member's MAC and ARP for its IP.
        assert!(
            !sw1.iter()
                .any(|x| x.contains("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00")),
            "{sw1:#?}"
        );
        assert!(
            sw1.iter()
                .any(|x| x.contains("arp_tpa=10.10.2.66") && x.contains("output:6")),
            "{sw1:#?}"
        );
        let exclusive = production(
            &Spec {
                number: 4,
                members: vec![member(1, 6)],
            },
            Tunnel { dpid: 1, port: 9 },
            &[],
        )
        .unwrap();
        assert!(lines(&exclusive[&1])
            .iter()
            .any(|x| x.contains("priority=290")));
    }

    #[test]
    fn unreachable_tunnel_is_an_error() {
        let spec = Spec {
            number: 2,
            members: vec![member(3, 1)],
        };
        let err = production(&spec, Tunnel { dpid: 1, port: 9 }, &[((1, 5), (2, 1))]).unwrap_err();
        assert_eq!(err, PlanError::NoPath { from: 3, to: 1 });
        assert!(err.to_string().contains("0000000000000003"));
        let spec0 = Spec {
            number: 0,
            members: vec![member(1, 1)],
        };
        assert_eq!(
            production(&spec0, Tunnel { dpid: 1, port: 9 }, &[]).unwrap_err(),
            PlanError::ReservedNumber
        );
    }

    #[test]
    fn twin_side_tags_with_the_member_segment() {
        let mut m = member(1, 6);
        m.vlan = Some(20);
        let l = lines(&twin(
            &Spec {
                number: 1,
                members: vec![m],
            },
            3,
        ));
        assert!(
            l.iter().any(|x| x.contains("priority=310")
                && x.ends_with("actions=push_vlan:0x8100,set_field:4116->vlan_vid,NORMAL")),
            "{l:#?}"
        );
    }

    #[test]
    fn twin_side_returns_through_the_tunnel_with_the_key() {
        let spec = Spec {
            number: 1,
            members: vec![member(1, 6)],
        };
        let l = lines(&twin(&spec, 3));
        assert!(
            l.iter().any(|x| x.contains("priority=310")
                && x.contains("in_port=3")
                && x.contains("tun_id=0x1001")
                && x.ends_with("actions=NORMAL")),
            "{l:#?}"
        );
        assert!(
            l.iter().any(|x| x.contains("priority=300")
                && x.contains("dl_dst=02:00:0a:0a:02:42")
                && x.ends_with("set_field:0x1001->tun_id,output:3")),
            "{l:#?}"
        );
        assert!(
            l.iter()
                .any(|x| x.contains("arp_tpa=10.10.2.66") && x.ends_with("output:3")),
            "{l:#?}"
        );
        assert!(
            l.iter().any(|x| x.contains("priority=290")
                && x.contains("dl_src=02:00:0a:0a:02:42")
                && x.ends_with("drop")),
            "{l:#?}"
        );
        let g = lines(&twin_guard(3));
        assert_eq!(g, vec!["table=0 priority=250 in_port=3 actions=drop"]);
        let pg = lines(&production_guard(9));
        assert_eq!(pg.len(), 2);
    }
}
