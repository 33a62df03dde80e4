#!/usr/bin/env bash
# Add the GRE port that carries redirected traffic between the production fabric
# and the twin to an OVS bridge. Userspace datapath: REMOTE_IP must be reachable
# from an address on one of the instance's bridge internal ports (add-underlay.sh).
#
# On the production side the port is an access port of VLAN 4094, which no
# segment uses: OVS NORMAL then never floods a production broadcast into the
# tunnel. gemelo's redirection flows output to it explicitly (port VLAN settings
# only steer NORMAL). The twin side uses --trunk: packets from the tunnel enter
# the twin's NORMAL switching tagged with the redirected host's segment VLAN.
set -euo pipefail

usage() {
    cat >&2 <<USAGE
usage: $0 [--trunk] RUNDIR BRIDGE PORT REMOTE_IP [REMOTE_MAC]

  --trunk     leave the port a trunk (the twin side) instead of access VLAN 4094

  PORT        port name to create (gm- prefix, at most 15 characters), e.g. gm-gre0
  REMOTE_IP   the far tunnel end
  REMOTE_MAC  the far end's underlay MAC: a static tunnel neighbour entry, so the
              first packet of a redirection is not lost to an ARP resolution

The GRE key is set per flow (options:key=flow): each redirection has its own.

example: $0 /run/gemelo/lab/prod gm-sw1 gm-gre0 198.18.0.2 02:67:6d:75:6c:02
USAGE
    exit 2
}

trunk=no
if [[ ${1:-} == --trunk ]]; then trunk=yes; shift; fi
[[ $# -eq 4 || $# -eq 5 ]] || usage
rundir=$1 bridge=$2 port=$3 remote=$4 remote_mac=${5:-}
[[ $port == gm* && ${#port} -le 15 ]] || { echo "$0: PORT must start with gm and have at most 15 characters" >&2; exit 2; }
[[ $remote =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "$0: REMOTE_IP must be an IPv4 address" >&2; exit 2; }
[[ -z $remote_mac || $remote_mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || { echo "$0: REMOTE_MAC must be six lowercase hex pairs" >&2; exit 2; }
export OVS_RUNDIR=$rundir
if [[ $trunk == yes ]]; then
    vlan=(-- clear port "$port" tag)
else
    vlan=(-- set port "$port" tag=4094)
fi
ovs-vsctl --db="unix:$rundir/db.sock" \
    --may-exist add-port "$bridge" "$port" \
    -- set interface "$port" type=gre options:remote_ip="$remote" options:key=flow \
    "${vlan[@]}"
if [[ -n $remote_mac ]]; then
    ovs-appctl -t "$rundir/ovs-vswitchd.ctl" tnl/neigh/set gm-ul "$remote" "$remote_mac" >/dev/null
fi
