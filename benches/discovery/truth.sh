#!/bin/bash
# Discovery vs ground truth: builds the lab for TOPOLOGY (office, plant, iot),
# starts `gemelo serve` (own --data /tmp/gemelo-test-truth-*, own --api port),
# and polls the inventory until it matches what each host namespace says about
# itself (IP, MAC, hostname, attachment, every listening socket, service names,
# products and versions). Prints a per-host table, the time to complete
# inventory, and every mismatch. Output files: /tmp/gm-bench-truth-TOPOLOGY/.
#
#   benches/discovery/truth.sh plant
#
# The test (tests/tests/discovery_truth.rs) takes /run/gemelo/test.lock itself
# and removes the lab when it ends (pass or fail).
set -euo pipefail
TOPO=${1:-plant}
cd "$(dirname "$0")/../.."
OUT=/tmp/gm-bench-truth-$TOPO
rm -rf "$OUT"
cargo build -q -p gemelo --bins
GEMELO_TOPOLOGY=$TOPO GEMELO_BENCH_OUT=$OUT \
  cargo test -q -p gemelo-tests --test discovery_truth -- --ignored --nocapture --test-threads 1 || rc=$?
echo "results: $OUT/result.json"
exit ${rc:-0}
