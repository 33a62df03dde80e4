#!/bin/bash
# gemelo vs nmap on the same lab, from the same vantage point (gm-probe):
#  1. lab up TOPOLOGY, `gemelo serve` until the inventory matches the ground truth (timed);
#  2. gemelo stopped (its flows stay: fail-mode secure), then
#     `nmap -sV -O -T4 -oX ... SEGMENTS` from gm-probe (timed);
#  3. nmap_table.py prints the side-by-side table per host.
# Extra nmap arguments replace the default ones: NMAP_ARGS="-sV -O -T4 -p 1-65535".
#
#   benches/discovery/vs-nmap.sh office
set -euo pipefail
TOPO=${1:-office}
NMAP_ARGS=${NMAP_ARGS:--sV -O -T4}
cd "$(dirname "$0")/../.."
OUT=/tmp/gm-bench-nmap-$TOPO
rm -rf "$OUT"
command -v nmap >/dev/null || { echo "nmap is not installed (apt-get install nmap)"; exit 1; }
cargo build -q -p gemelo --bins
GEMELO_TOPOLOGY=$TOPO GEMELO_BENCH_OUT=$OUT GEMELO_NMAP_ARGS="$NMAP_ARGS" \
  cargo test -q -p gemelo-tests --test discovery_truth -- --ignored --nocapture --test-threads 1 || rc=$?
[ -f "$OUT/nmap.xml" ] && python3 benches/discovery/nmap_table.py "$OUT"
exit ${rc:-0}
