#!/bin/bash
# Time to service-ready of libvirt twin hosts (LXC containers, QEMU/TCG guests),
# 1 and 4 hosts each, built with the hypervisor crate (tests/tests/twin_libvirt.rs
# `libvirt_ready_time`, ignored in CI; it takes /run/gemelo/test.lock itself):
#   build_s  twin::build returned (every host's init saw its services listen)
#   ready_s  every host's decoy banner answered from the observer namespace
# cold = libvirtd starts with the hosts (first qemu:///system connection probes
# QEMU's capabilities); warm = the same hosts rebuilt with a new hostname while
# libvirtd runs (includes stopping the old domains).
#
#   benches/twin/libvirt.sh                      # sizes 1 4, lxc and qemu
#   SIZES="1 4 8" REPS=3 BACKENDS="qemu" benches/twin/libvirt.sh
#
# Output: /tmp/gm-bench-libvirt/libvirt.jsonl and a median table.
set -euo pipefail
SIZES=${SIZES:-1 4}
REPS=${REPS:-1}
BACKENDS=${BACKENDS:-lxc qemu}
cd "$(dirname "$0")/../.."
OUT=/tmp/gm-bench-libvirt
rm -rf "$OUT"; mkdir -p "$OUT"
cargo build -q --workspace --bins
export GEMELO_BIN=$PWD/target/debug/gemelo
GEMELO_LIBVIRT_SIZES=$(echo $SIZES | tr ' ' ',') GEMELO_LIBVIRT_REPS=$REPS \
GEMELO_LIBVIRT_BACKENDS=$(echo $BACKENDS | tr ' ' ',') \
  cargo test -q -p gemelo-tests --test twin_libvirt libvirt_ready_time -- --ignored --nocapture --test-threads 1 2>&1 \
  | tee "$OUT/libvirt.log"
grep '^{' "$OUT/libvirt.log" > "$OUT/libvirt.jsonl"

echo "== medians (s)"
/usr/bin/python3 - "$OUT/libvirt.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = sorted({(r["backend"], r["hosts"], r["phase"]) for r in rows})
print(f"{'backend':8} {'hosts':>5} {'phase':5} {'build_s':>8} {'ready_s':>8} {'qemu_rss_mib':>12}")
for b, n, ph in keys:
    rs = [r for r in rows if (r["backend"], r["hosts"], r["phase"]) == (b, n, ph)]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"{b:8} {n:5} {ph:5} {med('build_s'):8.2f} {med('ready_s'):8.2f} {med('qemu_rss_mib'):12.0f}")
PY
