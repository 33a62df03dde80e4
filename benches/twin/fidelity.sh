#!/bin/bash
# Twin fidelity: builds the lab for TOPOLOGY (office, plant, iot), runs
# `gemelo serve` (own --data and --api), waits for discovery, builds the twin
# (POST /api/v1/twin), then probes every production host from the lab's probe
# namespace (gm-probe) and the same address in the twin from gm-twin-observer:
# nmap -sV -O with ssh2-enum-algos/http-title/banner, curl (status, title, body
# hash), mbpoll (Modbus holding registers), mosquitto_sub (MQTT topics),
# snmpget (sysName, sysDescr), hostname (UTS). Prints per-field match rates
# and every mismatch. Output: /tmp/gm-bench-fidelity-TOPOLOGY/.
#
#   benches/twin/fidelity.sh office
#
# Holds /run/gemelo/test.lock; the trap destroys the twin, stops its own
# gemelo (by PID) and takes the lab down.
set -euo pipefail
TOPO=${1:-office}
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=/tmp/gm-bench-fidelity-$TOPO
cargo build -q -p gemelo --bins
BIN=$ROOT/target/debug/gemelo
exec 9>/run/gemelo/test.lock
flock 9
rm -rf "$OUT"; mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API=http://127.0.0.1:$PORT
GPID=
cleanup() {
  curl -s -m 60 -X DELETE "$API/api/v1/twin" >/dev/null 2>&1 || true
  if [ -n "$GPID" ]; then kill "$GPID" 2>/dev/null || true; wait "$GPID" 2>/dev/null || true; fi
  "$BIN" lab down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$BIN" lab up --topology "topologies/$TOPO.toml" >"$OUT/lab-up.log"
GEMELO_LOG=info,sled=warn "$BIN" serve --api "127.0.0.1:$PORT" --data "$OUT/store" \
  --no-default-listeners --listen unix:/run/gemelo/openflow.sock 2>"$OUT/serve.log" &
GPID=$!
python3 benches/twin/fidelity.py "$API" /run/gemelo/lab/status.json "$OUT"
