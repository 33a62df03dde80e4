#!/usr/bin/env bash
# Start or stop one userspace Open vSwitch instance (ovsdb-server + ovs-vswitchd)
# inside its own network namespace, with all its state in RUNDIR.
#
# Every port and tap the instance makes lives in NAMESPACE, so nothing appears
# on the machine's own interfaces. Talk to the instance afterwards with
#   OVS_RUNDIR=RUNDIR ip netns exec NAMESPACE ovs-vsctl --db=unix:RUNDIR/db.sock ...
#   ovs-ofctl -O OpenFlow13 show unix:RUNDIR/BRIDGE.mgmt
set -euo pipefail

usage() {
    cat >&2 <<USAGE
usage: $0 start|start-db|start-vswitchd|stop NAMESPACE RUNDIR [-- OVS-VSCTL-COMMANDS...]

  start  create NAMESPACE (if missing) and RUNDIR, a fresh conf.db, then start
         ovsdb-server and ovs-vswitchd (userspace datapath) inside NAMESPACE;
         OVS-VSCTL-COMMANDS (e.g. add-br gm-br0 -- set bridge gm-br0
         datapath_type=netdev) go into the database before ovs-vswitchd starts,
         which then returns only once it has applied them (bridges, ports and
         controllers exist when start ends, without a round trip each)
  start-db, start-vswitchd
         the two halves of start (commands go with start-db): what the
         configuration names can be made between them
  stop   stop the instance whose pid files are in RUNDIR (only if those pids are
         still ovsdb-server / ovs-vswitchd); NAMESPACE and RUNDIR are left in place

NAMESPACE must start with gm- (everything gemelo makes carries that prefix).
USAGE
    exit 2
}

[[ $# -eq 3 || ($# -gt 4 && $4 == -- && ($1 == start || $1 == start-db)) ]] || usage
action=$1 ns=$2 rundir=$3
initial=("${@:4}")
[[ $ns == gm-* ]] || { echo "$0: namespace '$ns' must start with gm-" >&2; exit 2; }
[[ $rundir == /* ]] || { echo "$0: RUNDIR must be an absolute path" >&2; exit 2; }
export OVS_RUNDIR=$rundir OVS_DBDIR=$rundir OVS_LOGDIR=$rundir

# pid_of NAME EXPECTED_COMM: the pid in RUNDIR/NAME.pid if that process is alive
# (not a zombie) and is EXPECTED_COMM, else nothing.
pid_of() {
    local file=$rundir/$1.pid pid state comm
    [[ -r $file ]] || return 0
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ -r /proc/$pid/comm ]] || return 0
    comm=$(<"/proc/$pid/comm")
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ $comm == "$2" && $state != Z ]] && echo "$pid"
    return 0
}

stop_one() { # NAME COMM
    local pid i
    pid=$(pid_of "$1" "$2")
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    # Wait on the process itself: the daemon removes its pid file before it exits.
    for i in $(seq 1 50); do
        gone "$pid" && return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 20); do
        gone "$pid" && return 0
        sleep 0.1
    done
}

gone() { # PID: exited (or a zombie nobody reaps)
    local state
    [[ -r /proc/$1/status ]] || return 0
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
    [[ -z $state || $state == Z || $state == X ]]
}

start_db() {
    if [[ -n $(pid_of ovs-vswitchd ovs-vswitchd) || -n $(pid_of ovsdb-server ovsdb-server) ]]; then
        echo "$0: an instance already runs from $rundir; stop it first" >&2
        exit 1
    fi
    ip netns list | awk '{print $1}' | grep -qx -- "$ns" || ip netns add "$ns"
    ip -n "$ns" link set lo up
    mkdir -p "$rundir"
    rm -f "$rundir"/conf.db "$rundir"/.conf.db.~lock~
    ovsdb-tool create "$rundir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$ns" ovsdb-server "$rundir/conf.db" \
        --remote="punix:$rundir/db.sock" --pidfile="$rundir/ovsdb-server.pid" \
        --unixctl="$rundir/ovsdb-server.ctl" --log-file="$rundir/ovsdb-server.log" --detach
    # userspace-tso-enable must be set before ovs-vswitchd starts, or TCP
    # across the netdev datapath carries bad checksums (ping still works, so
    # test with TCP).
    ovs-vsctl --db="unix:$rundir/db.sock" --no-wait init \
        -- set Open_vSwitch . other_config:userspace-tso-enable=true "${initial[@]}"
}

start_vswitchd() {
    ip netns exec "$ns" ovs-vswitchd "unix:$rundir/db.sock" \
        --pidfile="$rundir/ovs-vswitchd.pid" --unixctl="$rundir/ovs-vswitchd.ctl" \
        --log-file="$rundir/ovs-vswitchd.log" --detach
}

case $action in
start)
    start_db
    start_vswitchd
    ;;
start-db)
    start_db
    ;;
start-vswitchd)
    start_vswitchd
    ;;
stop)
    stop_one ovs-vswitchd ovs-vswitchd
    stop_one ovsdb-server ovsdb-server
    ;;
*)
    usage
    ;;
esac
