#!/bin/bash
# Discovery at scale: N hosts (default 1000) on ONE userspace OVS bridge.
#
#   benches/discovery/scale.sh 1000        # RATE=200 connects/s by default
#
# Builds namespaces gm-sc-1..N and gm-sc-srv, each with a veth into bridge
# gm-scale0 (datapath netdev, fail_mode secure, OpenFlow13) of a private OVS
# instance in namespace gm-scale (rundir /tmp/gemelo-scale-ovs), addresses in
# 10.99.0.0/20; starts `gemelo serve --no-default-listeners --listen
# unix:/tmp/gemelo-scale/openflow.sock --scope 10.99.0.0/20`; every host makes
# one TCP connection to the server (so it ARPs); measures the time until
# GET /api/v1/inventory lists all N hosts with IP and attachment, and gemelo's
# CPU. Holds /run/gemelo/test.lock; tears everything down on exit.
set -euo pipefail
N=${1:-1000}
RATE=${RATE:-200}
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${GEMELO_BIN:-$ROOT/target/debug/gemelo}
OVSDIR=/tmp/gemelo-scale-ovs
WORK=/tmp/gemelo-scale
BR=gm-scale0
DPID=0000000000009901
PORT=${API_PORT:-18099}
(( N >= 1 && N <= 4000 )) || { echo "N must be 1..4000"; exit 2; }

mkdir -p /run/gemelo
exec 9>/run/gemelo/test.lock
flock 9

GEMELO_PID=
teardown() {
    set +e
    [[ -n $GEMELO_PID ]] && kill "$GEMELO_PID" 2>/dev/null && wait "$GEMELO_PID" 2>/dev/null
    "$ROOT/ovs-scripts/ovs-instance.sh" stop gm-scale "$OVSDIR" 2>/dev/null
    local t=$SECONDS
    ip netns list | awk '{print $1}' | grep -E '^gm-sc-' | sed 's/^/netns del /' | ip -force -batch - 2>/dev/null
    ip netns list | awk '{print $1}' | grep -qx gm-scale && ip netns del gm-scale
    echo "teardown: namespaces removed in $((SECONDS - t)) s"
    rm -rf "$WORK" "$OVSDIR"
}
trap teardown EXIT
teardown >/dev/null 2>&1 || true   # leftovers of an interrupted run (we hold the lock)
mkdir -p "$WORK"

ms() { date +%s%3N; }
t0=$(ms)
"$ROOT/ovs-scripts/ovs-instance.sh" start gm-scale "$OVSDIR"
export OVS_RUNDIR=$OVSDIR
VSCTL="ovs-vsctl --db=unix:$OVSDIR/db.sock"
$VSCTL add-br $BR -- set bridge $BR datapath_type=netdev fail_mode=secure protocols=OpenFlow13 \
    other-config:datapath-id=$DPID other-config:forward-bpdu=true
t1=$(ms)

# Namespaces, veths (switch end in gm-scale, host end eth0 in gm-sc-i), addresses.
addr() { local k=$((10 + $1)); echo "10.99.$((k / 256)).$((k % 256))"; }
{ for i in $(seq 1 "$N"); do echo "netns add gm-sc-$i"; done; echo "netns add gm-sc-srv"; } | ip -batch -
{ for i in $(seq 1 "$N"); do echo "link add gm-sc-p$i type veth peer name eth0 netns gm-sc-$i"; echo "link set gm-sc-p$i up"; done
  echo "link add gm-sc-psrv type veth peer name eth0 netns gm-sc-srv"; echo "link set gm-sc-psrv up"; } | ip -n gm-scale -batch -
for i in $(seq 1 "$N"); do
    printf 'link set lo up\naddr add %s/20 dev eth0\nlink set eth0 up\n' "$(addr "$i")" | ip -n "gm-sc-$i" -batch -
done
printf 'link set lo up\naddr add 10.99.0.2/20 dev eth0\nlink set eth0 up\n' | ip -n gm-sc-srv -batch -
{ echo -n "$VSCTL"; for i in $(seq 1 "$N"); do echo -n " -- add-port $BR gm-sc-p$i"; done; echo " -- add-port $BR gm-sc-psrv"; } > "$WORK/addports.sh"
sh "$WORK/addports.sh"
t2=$(ms)
echo "built $N hosts in $(( (t2 - t1) )) ms (OVS instance $(( t1 - t0 )) ms)"

# gemelo, then the bridge pointed at it.
"$BIN" serve --no-default-listeners --listen "unix:$WORK/openflow.sock" --scope 10.99.0.0/20 \
    --api "127.0.0.1:$PORT" --data "$WORK/store" > "$WORK/serve.log" 2>&1 &
GEMELO_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.1; done
"$ROOT/ovs-scripts/attach-controller.sh" "$OVSDIR" $BR "unix:$WORK/openflow.sock"
for _ in $(seq 1 200); do
    [[ $(curl -sf "http://127.0.0.1:$PORT/api/v1/switches" | jq '[.[] | select(.connected and .reconciled != null)] | length') == 1 ]] && break
    sleep 0.1
done
echo "switch connected and programmed $(( $(ms) - t2 )) ms after gemelo started"
# Wait until ovs-vswitchd has opened every port (an ofport each) and the server answers host 1.
for _ in $(seq 1 600); do
    $VSCTL --columns=name,ofport --format=csv --no-headings list Interface | tr ',' ' ' > "$WORK/ofports"
    [[ $(awk '$2 > 0' "$WORK/ofports" | grep -c gm-sc-p) -ge $((N + 1)) ]] && break
    sleep 0.5
done
echo "ports with an ofport: $(awk '$2 > 0' "$WORK/ofports" | grep -c gm-sc-p) of $((N + 1)), $(( $(ms) - t2 )) ms after gemelo started"

python3 "$ROOT/benches/discovery/scale_traffic.py" --n "$N" --api "127.0.0.1:$PORT" --pid "$GEMELO_PID" \
    --dpid $DPID --ofports "$WORK/ofports" --rate "$RATE" | tee "$WORK/result.json"
cp "$WORK/result.json" "/tmp/gemelo-scale-result-$N.json"
grep -ciE "panic|error" "$WORK/serve.log" | sed 's/^/gemelo log error lines: /'
