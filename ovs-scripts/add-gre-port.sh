#!/usr/bin/env bash
# Add a GRE port to an OVS bridge (the tunnel that carries redirected traffic
# between the production fabric and the twin). Userspace datapath: REMOTE_IP must
# be reachable from an IP on one of the instance's bridge internal ports.
set -euo pipefail

usage() {
    cat >&2 <<USAGE
usage: $0 RUNDIR BRIDGE PORT REMOTE_IP [KEY]

  PORT       port name to create (gm- prefix, at most 15 characters), e.g. gm-gre0
  REMOTE_IP  the far tunnel end
  KEY        GRE key: a number, or "flow" (default) so flows set it with set_field:K->tun_id

example: $0 /run/gemelo/lab/prod gm-sw1 gm-gre0 198.18.0.2
USAGE
    exit 2
}

[[ $# -eq 4 || $# -eq 5 ]] || usage
rundir=$1 bridge=$2 port=$3 remote=$4 key=${5:-flow}
[[ $port == gm* && ${#port} -le 15 ]] || { echo "$0: PORT must start with gm and have at most 15 characters" >&2; exit 2; }
[[ $remote =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "$0: REMOTE_IP must be an IPv4 address" >&2; exit 2; }
[[ $key == flow || $key =~ ^[0-9]+$ ]] || { echo "$0: KEY must be a number or 'flow'" >&2; exit 2; }
export OVS_RUNDIR=$rundir
ovs-vsctl --db="unix:$rundir/db.sock" \
    --may-exist add-port "$bridge" "$port" \
    -- set interface "$port" type=gre options:remote_ip="$remote" options:key="$key"
