#!/usr/bin/env bash
# Plug one userspace OVS instance into the underlay network that carries the GRE
# tunnel between the production fabric and the twin hypervisor.
#
# The underlay stands for the data center's routed network between hypervisors:
# here a namespace (gm-underlay) holding a Linux bridge. Each instance gets an
# OVS bridge gm-ul whose internal port holds the tunnel endpoint address (the
# userspace datapath only sends tunnel packets from an address on one of its own
# bridge ports), and a veth from that bridge to the underlay bridge.
#
# The underlay's MTU leaves room for the encapsulation: a redirected host's
# full-size 1500-byte packet leaves the tunnel end as outer IPv4 (20) + GRE
# with key (8) + inner Ethernet and 802.1Q header (18) + 1500 bytes, more than
# a 1500-byte link carries (small packets pass, an SSH key exchange does not).
# A data center's underlay does the same with jumbo frames.
set -euo pipefail

UNDERLAY_NS=gm-underlay
UNDERLAY_BR=gm-ul0
UNDERLAY_MTU=1600
OVS_BR=gm-ul

usage() {
    cat >&2 <<USAGE
usage: $0 RUNDIR NAMESPACE NAME ADDR/PREFIX MAC

  RUNDIR     the OVS instance's run dir (db.sock)
  NAMESPACE  the namespace the instance runs in (gm- prefix)
  NAME       a short name for this end (at most 8 characters): veth gm-ul-NAME
  ADDR       this end's tunnel address, e.g. 198.18.0.1/24
  MAC        the address of the gm-ul internal port (fixed, so the far end can
             hold a static tunnel neighbour entry)

example: $0 /run/gemelo/lab/prod gm-prod prod 198.18.0.1/24 02:67:6d:75:6c:01
USAGE
    exit 2
}

[[ $# -eq 5 ]] || usage
rundir=$1 ns=$2 name=$3 addr=$4 mac=$5
[[ $ns == gm-* ]] || { echo "$0: NAMESPACE must start with gm-" >&2; exit 2; }
[[ $name =~ ^[a-z0-9]{1,8}$ ]] || { echo "$0: NAME must be 1-8 lowercase letters or digits" >&2; exit 2; }
[[ $addr =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || { echo "$0: ADDR must be IPv4/PREFIX" >&2; exit 2; }
[[ $mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || { echo "$0: MAC must be six lowercase hex pairs" >&2; exit 2; }
export OVS_RUNDIR=$rundir
vsctl() { ovs-vsctl --db="unix:$rundir/db.sock" "$@"; }

if ! ip netns list | awk '{print $1}' | grep -qx -- "$UNDERLAY_NS"; then
    ip netns add "$UNDERLAY_NS"
    ip -n "$UNDERLAY_NS" link set lo up
fi
ip -n "$UNDERLAY_NS" link show "$UNDERLAY_BR" >/dev/null 2>&1 ||
    ip -n "$UNDERLAY_NS" link add "$UNDERLAY_BR" type bridge
ip -n "$UNDERLAY_NS" link set "$UNDERLAY_BR" mtu "$UNDERLAY_MTU" up

veth=gm-ul-$name peer=gm-ulb-$name
ip -n "$ns" link del "$veth" 2>/dev/null || true
ip -n "$UNDERLAY_NS" link del "$peer" 2>/dev/null || true
ip link add "$veth" mtu "$UNDERLAY_MTU" netns "$ns" type veth \
    peer name "$peer" mtu "$UNDERLAY_MTU" netns "$UNDERLAY_NS"
ip -n "$UNDERLAY_NS" link set "$peer" master "$UNDERLAY_BR" up
ip -n "$ns" link set "$veth" up

vsctl --may-exist add-br "$OVS_BR" -- set bridge "$OVS_BR" datapath_type=netdev \
    other-config:hwaddr="\"$mac\"" \
    -- --may-exist add-port "$OVS_BR" "$veth"
ip -n "$ns" addr flush dev "$OVS_BR"
ip -n "$ns" addr add "$addr" dev "$OVS_BR"
ip -n "$ns" link set "$OVS_BR" up
