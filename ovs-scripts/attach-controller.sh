#!/usr/bin/env bash
# Point an existing OVS bridge at an OpenFlow 1.3 controller (gemelo), the way
# gemelo expects: OpenFlow13 only, fail-mode secure (no NORMAL fallback when the
# controller is away), in-band control off.
set -euo pipefail

usage() {
    cat >&2 <<USAGE
usage: $0 RUNDIR BRIDGE TARGET

  RUNDIR  the OVS instance's run dir (holds db.sock); use /var/run/openvswitch
          for the machine's own OVS
  BRIDGE  an existing bridge
  TARGET  controller target: unix:/run/gemelo/openflow.sock, tcp:IP:6653, ssl:IP:6653
          (a unix: socket outside RUNDIR is reached through a symlink in RUNDIR)

example: $0 /run/gemelo/lab/prod gm-sw1 unix:/run/gemelo/openflow.sock
USAGE
    exit 2
}

[[ $# -eq 3 ]] || usage
rundir=$1 bridge=$2 target=$3
[[ $target =~ ^(unix|tcp|ssl): ]] || { echo "$0: TARGET must start with unix:, tcp: or ssl:" >&2; exit 2; }
export OVS_RUNDIR=$rundir
# ovs-vswitchd connects to Unix-socket controllers only inside its own run dir
# ("possibility for remote exploit" otherwise): reach a socket elsewhere through
# a symlink in RUNDIR, which it follows like any other path.
if [[ $target == unix:* ]]; then
    path=${target#unix:}
    if [[ $path != "$rundir"/* ]]; then
        link="$rundir/controller-$(basename "$path")"
        ln -sfn "$path" "$link"
        target="unix:$link"
    fi
fi
ovs-vsctl --db="unix:$rundir/db.sock" \
    set bridge "$bridge" protocols=OpenFlow13 fail_mode=secure other-config:disable-in-band=true \
    -- set-controller "$bridge" "$target"
