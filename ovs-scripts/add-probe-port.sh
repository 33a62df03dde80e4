#!/usr/bin/env bash
# Give gemelo a probe port on a production bridge, as an operator would: a veth
# pair whose one end, gm-probe0, lives in gemelo's probe namespace and whose
# other end is a trunk port of the bridge (no tag: it carries every VLAN,
# untagged frames being VLAN 0). Discovery's active probes enter the fabric
# there, like any host's packets.
#
# -v VID (repeatable) also gives NAMESPACE an interface gm-probe0.VID on that
# VLAN: an 802.1Q subinterface of gm-probe0 when the kernel has 8021q, else a
# veth whose bridge side is an access port (tag=VID) of the same bridge,
# gmpv<VID>-<BRIDGE without gm->, with gm-probe0's MAC: on the wire, the same
# frames as from a subinterface.
#
# Prints one line per interface made, "NAME OFPORT" (the trunk's ofport for
# a subinterface). Running it again replaces what it made.
set -euo pipefail

usage() {
    cat >&2 <<USAGE
usage: $0 [-v VID]... RUNDIR BRIDGE NAMESPACE [OVS_NAMESPACE]

  RUNDIR         the OVS instance's run dir (holds db.sock and ovs-vswitchd.pid);
                 /var/run/openvswitch for the machine's own OVS
  BRIDGE         an existing bridge of that instance
  NAMESPACE      gemelo's probe namespace (gm- prefix); created if missing.
                 gm-probe0 is made inside it (down, no address)
  OVS_NAMESPACE  network namespace ovs-vswitchd runs in; default: the one of the
                 pid in RUNDIR/ovs-vswitchd.pid (none = the machine's own)

The bridge side is the OVS port gmpr-<BRIDGE without gm-> (15 characters at most).

example: $0 -v 10 -v 20 /run/gemelo/lab/prod gm-sw1 gm-probe   # the lab (OVS in gm-prod)
USAGE
    exit 2
}

vids=()
while getopts v: opt; do
    case $opt in
    v) [[ $OPTARG =~ ^[0-9]+$ ]] && ((OPTARG >= 1 && OPTARG <= 4094)) || { echo "$0: VID must be 1-4094" >&2; exit 2; }
       vids+=("$OPTARG") ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 3 || $# -eq 4 ]] || usage
rundir=$1 bridge=$2 ns=$3
[[ $ns == gm-* ]] || { echo "$0: namespace '$ns' must start with gm-" >&2; exit 2; }
[[ -S $rundir/db.sock ]] || { echo "$0: no OVS database socket $rundir/db.sock" >&2; exit 1; }
export OVS_RUNDIR=$rundir

if [[ $# -eq 4 ]]; then
    ovs_ns=$4
else
    pid=$(cat "$rundir/ovs-vswitchd.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || { echo "$0: ovs-vswitchd of $rundir is not running" >&2; exit 1; }
    ovs_ns=$(ip netns identify "$pid")
fi
# ip-netns(8) arguments for the OVS side ("" = the machine's own namespace).
ovs_ip=(ip)
[[ -n $ovs_ns ]] && ovs_ip=(ip -n "$ovs_ns")

port=gmpr-${bridge#gm-}
port=${port:0:15}
vsctl() { ovs-vsctl --db="unix:$rundir/db.sock" --timeout=20 "$@"; }
vsctl br-exists "$bridge" || { echo "$0: no bridge $bridge in $rundir" >&2; exit 1; }

ip netns list | awk '{print $1}' | grep -qx -- "$ns" || ip netns add "$ns"
ip -n "$ns" link set lo up

# veth INNER OUTER: INNER in the probe namespace, OUTER on the OVS side, both
# up, replacing an earlier pair (deleting one veth end removes both).
veth() {
    vsctl --if-exists del-port "$bridge" "$2"
    ip -n "$ns" link del "$1" 2>/dev/null || true
    "${ovs_ip[@]}" link del "$2" 2>/dev/null || true
    if [[ -n $ovs_ns ]]; then
        ip link add "$1" netns "$ns" type veth peer name "$2" netns "$ovs_ns"
    else
        ip -n "$ns" link add "$1" type veth peer name "$2" netns 1
    fi
    "${ovs_ip[@]}" link set "$2" up
    ip -n "$ns" link set "$1" up
}

veth gm-probe0 "$port"
# A trunk: no tag, every VLAN (untagged frames are VLAN 0, the untagged segments').
vsctl add-port "$bridge" "$port" -- set port "$port" vlan_mode=trunk
trunk=$(vsctl get interface "$port" ofport)
echo "gm-probe0 $trunk"

for vid in "${vids[@]}"; do
    sub=gm-probe0.$vid
    if ip -n "$ns" link add link gm-probe0 name "$sub" type vlan id "$vid" 2>/dev/null; then
        ip -n "$ns" link set "$sub" up
        echo "$sub $trunk"
    else
        # No 8021q in this kernel: the bridge tags and untags instead.
        access=gmpv$vid-${bridge#gm-}
        access=${access:0:15}
        veth "$sub" "$access"
        # One NIC on the wire, as with a subinterface: gm-probe0's MAC.
        ip -n "$ns" link set "$sub" address "$(ip netns exec "$ns" cat /sys/class/net/gm-probe0/address)"
        vsctl add-port "$bridge" "$access" -- set port "$access" tag="$vid"
        echo "$sub $(vsctl get interface "$access" ofport)"
    fi
done
