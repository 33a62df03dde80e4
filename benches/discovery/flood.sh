#!/bin/bash
# Flood benchmark: TCP throughput between two office hosts across both switches
# (files01 on sw2 -> web01 on sw1, iperf3 -b ${IPERF_RATE:-200M} for 10 s) before and
# during a flood from ws02 of FLOOD_PPS (default 8000) frames/s with a new source
# MAC each, and gemelo's CPU in each window (/proc/PID/stat).
#   KIND=arp (default): benches/discovery/arpflood.py, ARP: copied by the classifier
#                       to gemelo (the discovery path, under the controller meter)
#   KIND=udp:           /work/shared/bench/pktflood.py (UDP/4789): not copied, loads
#                       only the datapath (new source MACs for OVS NORMAL)
#   benches/discovery/flood.sh            KIND=udp benches/discovery/flood.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
KIND=${KIND:-arp}
PPS=${FLOOD_PPS:-8000}
RATE=${IPERF_RATE:-200M}
BIN=$ROOT/target/debug/gemelo
WORK=/tmp/gemelo-flood-bench
PORT=18098
mkdir -p /run/gemelo
exec 9>/run/gemelo/test.lock
flock 9
GPID=
teardown() { set +e; [[ -n $GPID ]] && kill "$GPID" && wait "$GPID"; "$BIN" lab down >/dev/null; rm -rf "$WORK"; }
trap teardown EXIT
rm -rf "$WORK"; mkdir -p "$WORK"
"$BIN" serve --no-default-listeners --listen unix:/run/gemelo/openflow.sock --api 127.0.0.1:$PORT --data "$WORK/store" > "$WORK/serve.log" 2>&1 &
GPID=$!
sleep 1
"$BIN" lab up --topology topologies/office.toml >/dev/null
for _ in $(seq 1 100); do
    [[ $(curl -sf http://127.0.0.1:$PORT/api/v1/switches | jq '[.[]|select(.connected)]|length') == 2 ]] && break; sleep 0.2
done
ns() { echo "gm-office-$1"; }
WEB=$(ip -n "$(ns web01)" -4 -o addr show | awk '!/ lo /{print $4}' | cut -d/ -f1 | head -1)
IF=$(ip -n "$(ns ws02)" -o link show | awk -F': ' '!/ lo:/{print $2}' | cut -d@ -f1 | head -1)
cpu() { awk '{print $14 + $15}' "/proc/$GPID/stat"; }
run_window() { # NAME
    ip netns exec "$(ns web01)" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local spid=$!; sleep 0.3
    local c0; c0=$(cpu)
    ip netns exec "$(ns files01)" iperf3 -c "$WEB" -p 5201 -t 10 -b "$RATE" -J > "$WORK/$1.json" || true
    local c1; c1=$(cpu)
    wait $spid 2>/dev/null || true
    jq -r --arg n "$1" --arg cpu "$(echo "($c1 - $c0) / 100 / 10" | bc -l)" \
      '"\($n): sent \(.end.sum_sent.bytes) received \(.end.sum_received.bytes) bytes, \(.end.sum_received.bits_per_second/1e6|floor) Mbit/s, retransmits \(.end.sum_sent.retransmits), gemelo CPU \($cpu|tonumber*100|floor) % of one core"' "$WORK/$1.json"
}
echo "flood kind=$KIND pps=$PPS iperf3 -b $RATE (files01 sw2 -> web01 sw1)"
run_window before
N=$((PPS * 11))
if [[ $KIND == arp ]]; then
    ip netns exec "$(ns ws02)" python3 benches/discovery/arpflood.py -i "$IF" --rate "$PPS" -n $N > "$WORK/flood.out" &
else
    P=$ROOT/../shared/bench/pktflood.py; [[ -f $P ]] || P=/work/shared/bench/pktflood.py
    WMAC=$(ip -n "$(ns web01)" -o link show | awk '!/ lo:/{for(i=1;i<=NF;i++) if($i=="link/ether") print $(i+1)}' | head -1)
    ip netns exec "$(ns ws02)" python3 "$P" -i "$IF" --dst-mac "$WMAC" --dst-ip "$WEB" --rate "$PPS" -n $N > "$WORK/flood.out" &
fi
FPID=$!
sleep 0.5
run_window during
wait $FPID || true
cat "$WORK/flood.out"
# Health latency right after; inventory size.
curl -s -o /dev/null -w "health after the flood: HTTP %{http_code} in %{time_total} s\n" http://127.0.0.1:$PORT/api/v1/health
echo "inventory hosts: $(curl -s http://127.0.0.1:$PORT/api/v1/inventory | jq '.hosts|length'); gemelo RSS $(awk '/VmRSS/{print $2/1024 " MB"}' /proc/$GPID/status)"
