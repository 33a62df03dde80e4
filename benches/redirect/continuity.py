#!/usr/bin/env python3
"""Legitimate traffic across repeated swaps: does anybody else notice?

Office lab, gemelo serving it, the twin built. ws01 (sw2, workstations) keeps a
TCP stream to web01 (iperf3, no rate limit: as fast as the userspace datapath
carries it) and a 1 ms ping to web01 — the same server the attacker targets.
The attacker (a visitor on sw2) curls web01 in a loop. After a quiet phase
(BEFORE seconds) gemelo swaps the attacker into the twin and back SWAPS times.

Reports: pings sent / lost, iperf3's end (error or not), TCP retransmits,
throughput per second before and during the swaps, and how many of the
attacker's requests were answered and how many the twin's web server logged
as decoy events (proof that the swaps happened).

Usage (root): benches/redirect/continuity.py [--swaps 100] [--before 10] > out.json
"""
import argparse, json, os, re, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import G, WEB01, Lab, req, sh, stats  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swaps", type=int, default=100)
    ap.add_argument("--before", type=int, default=10)
    ap.add_argument("--rate", default="20M", help="iperf3 -b for the stream; 0 = as fast as it goes")
    a = ap.parse_args()
    with Lab(visitors=1) as lab:
        att_ns, att_ip = lab.visitors[0]
        lab.spawn("ip", "netns", "exec", "gm-office-web01", "iperf3", "-s", "-p", "5299",
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        # Long enough for the quiet phase, the swaps and a tail; stopped early below.
        duration = a.before + a.swaps + 60
        iperf = lab.spawn("ip", "netns", "exec", "gm-office-ws01", "iperf3", "-c", WEB01, "-p", "5299", "-t",
                          str(duration), "-i", "1", "-J", "-b", a.rate, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ping_log = open(lab.tmp + "/ping.txt", "w")
        ping = lab.spawn("ip", "netns", "exec", "gm-office-ws01", "ping", "-i", "0.001", "-W", "2", "-D", WEB01,
                         stdout=ping_log, stderr=subprocess.STDOUT)
        t_start = time.time()
        time.sleep(a.before)
        t_swaps = time.time()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_swaps - 1))
        install, release, answered = [], [], 0
        for i in range(a.swaps):
            code, r, _ = req("POST", "/api/v1/redirections", {"source": att_ip, "reason": f"continuity {i}"})
            assert code == 201, r
            install.append(r["install_ms"])
            c = sh("ip", "netns", "exec", att_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                   f"http://{WEB01}/", check=False)
            answered += c.stdout.strip() == "200"
            code, r2, _ = req("DELETE", f"/api/v1/redirections/{r['id']}")
            assert code == 200, r2
            release.append(r2["release_ms"])
            time.sleep(0.2)
        t_end = time.time()
        time.sleep(2)
        # The twin's web server writes its access log in batches: wait until the count settles.
        events, seen, stable = [], -1, 0
        for _ in range(40):
            code, events, _ = req("GET", f"/api/v1/events?kind=decoy&since={since}&limit=100000")
            assert code == 200, events
            stable = stable + 1 if len(events) == seen else 0
            seen = len(events)
            if stable >= 5 and seen > 0:
                break
            time.sleep(1)
        in_twin = sum(1 for e in events if str(e.get("peer", "")).startswith(att_ip + ":")
                      and e.get("protocol") == "http")
        sample = events[-1] if events else None
        ping.send_signal(2)  # SIGINT: ping prints its summary
        ping.wait(10)
        ping_log.close()
        ping_out = open(lab.tmp + "/ping.txt").read()
        iperf.send_signal(2)  # SIGINT: iperf3 ends the test and prints its JSON
        iperf_out, iperf_err = iperf.communicate(timeout=20)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", ping_out)
        sent, received = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        # Which pings were lost when: -D stamps each reply; a reply's send time is
        # its stamp minus its round trip; a lost sequence number's send time lies
        # between its received neighbours'.
        got, base, last = [], 0, -1
        for ts, seq, rtt in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms", ping_out, re.M):
            seq = int(seq) + base
            if seq < last - 30000:  # icmp_seq wrapped at 65536
                base += 65536
                seq += 65536
            last = seq
            got.append((seq, float(ts) - float(rtt) / 1e3))
        got.sort()
        phase = {"before": 0, "during": 0, "after": 0}
        for (s0, t0), (s1, t1) in zip(got, got[1:]):
            for n in range(s0 + 1, s1):
                t = t0 + (t1 - t0) * (n - s0) / (s1 - s0)
                phase["before" if t < t_swaps else "during" if t <= t_end else "after"] += 1
        rep = json.loads(iperf_out or "{}")
        before, during = [], []
        for it in rep.get("intervals", []):
            s = it["sum"]
            t = t_start + s["end"]
            bps = s["bits_per_second"] / 1e6
            if t <= t_swaps:
                before.append(bps)
            elif t_swaps + 1 < t <= t_end:
                during.append(bps)
        end = rep.get("end", {})
        out = {
            "gemelo": G, "swaps": a.swaps, "swap_phase_s": round(t_end - t_swaps, 1),
            "stream_rate": a.rate,
            "attacker_requests_answered": answered, "attacker_http_events_in_twin": in_twin,
            "decoy_events": len(events), "last_decoy_event": sample,
            "ping": {"sent": sent, "received": received, "lost": None if sent is None else sent - received,
                     "unanswered_by_phase": phase, "summary": ping_out.strip().splitlines()[-2:]},
            "iperf3": {"error": rep.get("error"), "stderr": iperf_err.strip()[-500:],
                       "retransmits": end.get("sum_sent", {}).get("retransmits"),
                       "mbit_s_before": stats(before), "mbit_s_during": stats(during)},
            "install_ms": stats(install), "release_ms": stats(release),
        }
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
