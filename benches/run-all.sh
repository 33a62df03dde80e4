#!/usr/bin/env bash
# Runs every gemelo benchmark next to its peer, in one run, and prints Markdown tables.
#
#   sudo benches/run-all.sh            # full run (~8-10 min on 2 cores)
#   sudo QUICK=1 benches/run-all.sh    # fewer repetitions (~3 min), for a smoke check
#
# What it measures (see BENCHMARKS.md for the method and the recorded results):
#  1. cbench (ofbench.py cbench, throughput mode) at 1/4/16 emulated switches against
#     ovs-testcontroller (default learning switch), gemelo serve --forwarding learning,
#     and ofbench's own trivial responder (the harness ceiling).
#  2. FLOW_MOD install into a real userspace OVS bridge, 10k and 100k flows, pipelined
#     and bundled: gemelo's SwitchHandle::transact / ::bundle (controller/benches/
#     flow_install.rs) vs raw ofbench.py flowmod, interleaved on the same bridge.
#  3. One FLOW_MOD + BARRIER round trip: gemelo transact(vec![fm]) vs raw ofbench.
#
# It starts its own OVS instance (namespace gm-bench, run dir /tmp/gm-bench-ovs),
# its controllers on 127.0.0.1 ports 16650-16799, and stops exactly what it started
# (by PID) on exit. Needs root (namespaces, OVS). Nothing else on the machine is touched.
#
# Environment knobs: OFBENCH (path of ofbench.py), QUICK=1, CBENCH_REPS, FLOW_REPS, FLOW_REPS_BIG, FLOW_ROUNDS,
# CBENCH_PROCS (harness processes for >1 switch), CBENCH_SWITCHES ("1 4 16"),
# SKIP_CBENCH=1, SKIP_FLOWMOD=1, RESULTS (directory for raw JSON; default: a temp dir).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OFBENCH=${OFBENCH:-/work/shared/bench/ofbench.py}
PY=${PYTHON:-python3}
NS=gm-bench
RUNDIR=/tmp/gm-bench-ovs
BR=gm-bench0
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    CBENCH_REPS=${CBENCH_REPS:-1} FLOW_REPS=${FLOW_REPS:-3} FLOW_REPS_BIG=${FLOW_REPS_BIG:-2} FLOW_ROUNDS=${FLOW_ROUNDS:-2}
    CB_LOOPS=${CB_LOOPS:-3} LAT_N=${LAT_N:-1000}
else
    # 10k-flow installs take ~60 ms: noisy on a shared 2-core machine, so many reps.
    CBENCH_REPS=${CBENCH_REPS:-3} FLOW_REPS=${FLOW_REPS:-10} FLOW_REPS_BIG=${FLOW_REPS_BIG:-3} FLOW_ROUNDS=${FLOW_ROUNDS:-3}
    CB_LOOPS=${CB_LOOPS:-5} LAT_N=${LAT_N:-3000}
fi
CBENCH_SWITCHES=${CBENCH_SWITCHES:-"1 4 16"}
CBENCH_PROCS=${CBENCH_PROCS:-4}
WORK=$(mktemp -d /tmp/gm-bench-XXXXXX)
RESULTS=${RESULTS:-$WORK/results}
mkdir -p "$RESULTS"

[[ $EUID -eq 0 ]] || { echo "run-all.sh: needs root (network namespace, OVS)" >&2; exit 1; }
[[ -r $OFBENCH ]] || { echo "run-all.sh: $OFBENCH not found (set OFBENCH=)" >&2; exit 1; }
command -v ovs-testcontroller >/dev/null || { echo "run-all.sh: install openvswitch-testcontroller" >&2; exit 1; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- cleanup
STARTED_PIDS=()
OVS_STARTED=0
NS_CREATED=0
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ $OVS_STARTED == 1 ]]; then
        "$ROOT/ovs-scripts/ovs-instance.sh" stop "$NS" "$RUNDIR" || true
    fi
    if [[ $NS_CREATED == 1 ]]; then
        ip netns delete "$NS" 2>/dev/null || true
    fi
    rm -rf "$WORK/data-"* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: stops one process this script started and forgets it.
stop_pid() {
    local pid=$1 i keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${STARTED_PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
    STARTED_PIDS=("${keep[@]}")
}

# wait_listen PORT: until something listens on 127.0.0.1:PORT (without connecting to it).
wait_listen() {
    local port=$1 i
    for i in $(seq 1 100); do
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
        sleep 0.05
    done
    echo "nothing listens on port $port" >&2
    return 1
}

# ---------------------------------------------------------------- build
GEMELO=${GEMELO:-$ROOT/target/release/gemelo}
if [[ ! -x $GEMELO ]]; then
    log "building gemelo (release)"
    (cd "$ROOT" && cargo build --release -p gemelo)
fi
FLOW_INSTALL=${FLOW_INSTALL:-}
if [[ -z $FLOW_INSTALL ]]; then
    log "building the flow_install bench (release profile)"
    FLOW_INSTALL=$(cd "$ROOT" && cargo bench -p gemelo --bench flow_install --no-run --message-format=json 2>/dev/null |
        $PY -c 'import sys, json
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "flow_install" and m.get("executable"):
        print(m["executable"])')
fi
[[ -x $FLOW_INSTALL ]] || { echo "run-all.sh: flow_install bench binary not found" >&2; exit 1; }

# ---------------------------------------------------------------- machine
{
    echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r); $(ovs-vswitchd --version | head -1); $($PY --version)"
    echo "gemelo: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') ($GEMELO)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS/machine.txt" >&2

# ================================================================ 1. cbench
PORT=16650
next_port() { PORT=$((PORT + 1)); }

# start_ctl KIND PORT -> sets CTL_PID
start_ctl() {
    local kind=$1 port=$2
    case $kind in
    ovs-testcontroller)
        # Default behaviour: MAC-learning switch, exact-match flows, idle timeout 60 s.
        ovs-testcontroller "ptcp:$port:127.0.0.1" --unixctl="$WORK/tc-$port.ctl" \
            -vconsole:off -vsyslog:off >"$WORK/tc-$port.log" 2>&1 &
        ;;
    gemelo)
        mkdir -p "$WORK/data-$port"
        GEMELO_LOG=${GEMELO_LOG:-info} "$GEMELO" serve --no-default-listeners \
            --listen "tcp:127.0.0.1:$port" --api "127.0.0.1:$((port + 100))" \
            --data "$WORK/data-$port" --forwarding learning >"$WORK/gemelo-$port.log" 2>&1 &
        ;;
    responder)
        $PY "$OFBENCH" responder -p "$port" >"$WORK/responder-$port.log" 2>&1 &
        ;;
    esac
    CTL_PID=$!
    STARTED_PIDS+=("$CTL_PID")
    wait_listen "$port"
}

if [[ ${SKIP_CBENCH:-0} != 1 ]]; then
    log "cbench: switches [$CBENCH_SWITCHES] x $CBENCH_REPS reps x (ovs-testcontroller, gemelo, responder)"
    : >"$RESULTS/cbench.jsonl"
    for rep in $(seq 1 "$CBENCH_REPS"); do
        for n in $CBENCH_SWITCHES; do
            for kind in ovs-testcontroller gemelo responder; do
                next_port
                start_ctl "$kind" "$PORT"
                procs=1
                [[ $n -gt 1 ]] && procs=$CBENCH_PROCS
                extra=(-l "$CB_LOOPS" -m 1000 -w 1 -M 100000)
                if [[ $kind == gemelo ]]; then
                    # gemelo answers only the forward table's miss flow (table 2, baseline cookie).
                    extra+=(--pi-table 2 --pi-cookie $((0x676d010000000000)))
                fi
                out=$($PY "$ROOT/benches/cbench_multi.py" --ofbench "$OFBENCH" -p "$PORT" -s "$n" \
                    -P "$procs" --ctl-pid "$CTL_PID" --label "$kind" -- "${extra[@]}" 2>>"$WORK/cbench.err" || true)
                [[ -n $out ]] || out="{\"label\": \"$kind\", \"error\": \"no output\"}"
                echo "$out" | $PY -c 'import sys, json; d = json.load(sys.stdin); d["rep"] = int(sys.argv[1]); print(json.dumps(d))' "$rep" >>"$RESULTS/cbench.jsonl"
                log "  rep $rep n=$n $kind: $out"
                stop_pid "$CTL_PID"
            done
        done
    done
fi

# ================================================================ 2+3. flow installs
if [[ ${SKIP_FLOWMOD:-0} != 1 ]]; then
    log "flowmod: private OVS instance $NS in $RUNDIR, bridge $BR"
    ip netns list | awk '{print $1}' | grep -qx -- "$NS" || NS_CREATED=1
    OVS_STARTED=1
    "$ROOT/ovs-scripts/ovs-instance.sh" start "$NS" "$RUNDIR"
    vsctl() { OVS_RUNDIR=$RUNDIR ip netns exec "$NS" ovs-vsctl --db="unix:$RUNDIR/db.sock" "$@"; }
    vsctl --may-exist add-br "$BR" -- set bridge "$BR" datapath_type=netdev protocols=OpenFlow13 fail_mode=secure \
        -- --may-exist add-port "$BR" gm-bp1 -- set interface gm-bp1 type=internal ofport_request=1 \
        -- --may-exist add-port "$BR" gm-bp2 -- set interface gm-bp2 type=internal ofport_request=2
    TARGET="unix:$RUNDIR/$BR.mgmt"
    for _ in $(seq 1 50); do [[ -S $RUNDIR/$BR.mgmt ]] && break; sleep 0.1; done
    : >"$RESULTS/flowmod.jsonl"

    # run_pair MODE N REPS: raw ofbench then gemelo, FLOW_ROUNDS times (interleaved)
    run_pair() {
        local mode=$1 n=$2 reps=$3 round
        for round in $(seq 1 "$FLOW_ROUNDS"); do
            $PY "$OFBENCH" flowmod --target "$TARGET" --mode "$mode" -n "$n" -r "$reps" --json |
                $PY -c 'import sys, json; d = json.load(sys.stdin); d["who"] = "raw"; d["round"] = int(sys.argv[1]); print(json.dumps(d))' "$round" >>"$RESULTS/flowmod.jsonl"
            "$FLOW_INSTALL" --target "$TARGET" --mode "$mode" -n "$n" -r "$reps" --json |
                $PY -c 'import sys, json; d = json.load(sys.stdin); d["who"] = "gemelo"; d["round"] = int(sys.argv[1]); print(json.dumps(d))' "$round" >>"$RESULTS/flowmod.jsonl"
            log "  $mode n=$n round $round done: $(tail -2 "$RESULTS/flowmod.jsonl" | $PY -c 'import sys, json
for l in sys.stdin:
    d = json.loads(l); m = d["median"]
    print(d["who"], "%.0f flows/s" % m["flows_per_s"], ("p50 %.3f ms p99 %.3f ms" % (m["rtt_p50_ms"], m["rtt_p99_ms"])) if "rtt_p50_ms" in m else "", end="; ")')"
        done
    }
    run_pair pipeline 10000 "$FLOW_REPS"
    run_pair bundle 10000 "$FLOW_REPS"
    run_pair pipeline 100000 "$FLOW_REPS_BIG"
    run_pair bundle 100000 "$FLOW_REPS_BIG"
    run_pair latency "$LAT_N" 1
fi

# ================================================================ report
$PY "$ROOT/benches/report.py" "$RESULTS"
log "raw results kept in $RESULTS"
