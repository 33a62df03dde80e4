#!/bin/bash
# Twin build time vs Mininet, same run, same machine.
#  1. gemelo: a synthetic netns twin of N hosts, each serving HTTP (busybox
#     httpd), built with the hypervisor crate (tests/tests/twin_scale.rs,
#     ignored in CI; it takes /run/gemelo/test.lock itself): time until every
#     twin host answers HTTP 200 from the observer, and destroy time. Cold:
#     the twin's OVS instance starts within the build; warm: it already runs
#     (as Mininet's does when its timing starts).
#  2. Mininet (Debian `mininet`): /work/shared/bench/mininet/mn-timing.py
#     builds + starts N bare hosts on one userspace OVS switch, inside a
#     private OVS instance in namespace gm-bench-mn (never plain `mn`; its
#     machine-wide cleanup is disabled by the harness).
#
#   benches/twin/vs-mininet.sh            # N = 10 50 100
#   SIZES="10 50" REPS=3 benches/twin/vs-mininet.sh
#
# Output: /tmp/gm-bench-vs-mininet/{twin,mininet}.jsonl
set -euo pipefail
SIZES=${SIZES:-10 50 100}
REPS=${REPS:-1}
MN=${MN_HARNESS:-/work/shared/bench/mininet}
cd "$(dirname "$0")/../.."
OUT=/tmp/gm-bench-vs-mininet
rm -rf "$OUT"; mkdir -p "$OUT"
command -v mnexec >/dev/null || { echo "install Debian's mininet first (apt-get install --no-install-recommends mininet)"; exit 1; }

echo "== gemelo netns twin"
GEMELO_TWIN_SIZES=$(echo $SIZES | tr ' ' ',') GEMELO_TWIN_REPS=$REPS \
  cargo test -q -p gemelo-tests --test twin_scale -- --ignored --nocapture --test-threads 1 2>&1 | tee "$OUT/twin.log"
grep '^{' "$OUT/twin.log" > "$OUT/twin.jsonl"

echo "== Mininet"
exec 9>/run/gemelo/test.lock
flock 9
NS=gm-bench-mn
RUN=/tmp/gm-bench-mn
cleanup() {
  for f in ovs-vswitchd ovsdb-server; do
    [ -f "$RUN/$f.pid" ] && kill "$(cat "$RUN/$f.pid")" 2>/dev/null || true
  done
  sleep 0.5
  ip netns del $NS 2>/dev/null || true
}
trap cleanup EXIT
cleanup
rm -rf "$RUN"; mkdir -p "$RUN"
ip netns add $NS
ip netns exec $NS ip link set lo up
export OVS_RUNDIR=$RUN
ovsdb-tool create $RUN/conf.db /usr/share/openvswitch/vswitch.ovsschema
ip netns exec $NS ovsdb-server $RUN/conf.db --remote=punix:$RUN/db.sock --pidfile=$RUN/ovsdb-server.pid \
  --detach --log-file=$RUN/ovsdb.log --unixctl=$RUN/ovsdb.ctl
ovs-vsctl --db=unix:$RUN/db.sock --no-wait init
ovs-vsctl --db=unix:$RUN/db.sock --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
ip netns exec $NS ovs-vswitchd unix:$RUN/db.sock --pidfile=$RUN/ovs-vswitchd.pid --detach \
  --log-file=$RUN/vswitchd.log --unixctl=$RUN/vswitchd.ctl
for n in $SIZES; do
  ip netns exec $NS /usr/bin/python3 "$MN/mn-timing.py" ovs "$n" "$REPS" 2>&1 | tee -a "$OUT/mininet.log"
done
grep '^{' "$OUT/mininet.log" > "$OUT/mininet.jsonl" || true

echo "== summary (medians)"
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
tw, mn = {}, {}
for l in open(f"{out}/twin.jsonl"):
    x = json.loads(l); tw.setdefault(x["n"], []).append(x)
for l in open(f"{out}/mininet.jsonl"):
    x = json.loads(l); mn.setdefault(x["n"], []).append(x)
med = lambda xs, k: statistics.median(x[k] for x in xs)
print(f"{'N':>4} {'twin build':>11} {'twin all HTTP':>14} {'warm build':>11} {'warm all HTTP':>14} {'twin destroy':>13} {'mn build+start':>15} {'mn +1st ping':>13} {'mn stop':>8} {'cold/mn':>8} {'warm/mn':>8}")
for n in sorted(tw):
    t = tw[n]; m = mn.get(n, [])
    mb = med(m, "build_start_s") if m else float("nan")
    mp = mb + med(m, "first_ping_s") if m else float("nan")
    ms = med(m, "stop_s") if m else float("nan")
    ta, wa = med(t, "all_answer_s"), med(t, "warm_all_answer_s")
    print(f"{n:>4} {med(t,'build_s'):>10.2f}s {ta:>13.2f}s {med(t,'warm_build_s'):>10.2f}s {wa:>13.2f}s {med(t,'destroy_s'):>12.2f}s {mb:>14.2f}s {mp:>12.2f}s {ms:>7.2f}s {ta/mb:>8.2f} {wa/mb:>8.2f}")
PY
