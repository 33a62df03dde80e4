#!/usr/bin/env python3
"""Swap and release latency of gemelo's redirections on the office lab.

Builds the lab, starts `gemelo serve`, builds the twin, plugs in visitors on
sw2 (workstations). Visitor 0, the attacker, sends a timestamped UDP datagram
to web01 (10.10.1.10) every 0.5 ms all along (`udpprobe.py`); receivers in
production web01 and in the twin's web01 log each arrival (kernel timestamp).
Then, for each level of concurrency C (redirections already active, of other
visitors), RUNS times: POST a redirection of the attacker, wait, DELETE it,
wait. Per swap:

- `first_twin`: from the client sending POST to the first datagram of the
  attacker arriving in the twin (what the attacker's traffic experiences);
- `first_back`: from sending DELETE to the first one arriving in production;
- `leaked`: datagrams sent after the POST's 201 reached the client that still
  arrived in production (must be 0: the 201 means the swap is done);
- `install` / `release`: the server's own figures (request received to the last
  switch's bundle commit + barrier);
- `POST` / `DELETE`: the client's round trip (adds JSON, the sled fsync, the event).
- ovs-vswitchd CPU (production instance) over each level, from /proc.

Everything is stamped with CLOCK_REALTIME, shared by all namespaces; the
sending interval (0.5 ms) bounds the resolution of first_twin / first_back.

Peer, measured in the same run: the same swap done by `ovs-ofctl --bundle` (the
redirection's flows, read back with dump-flows, replayed as one bundle per
switch, then deleted by cookie), what an operator script would do.

Usage (root): benches/redirect/swap.py [--levels 1,10,100] [--runs 100] [--visitors N] > out.json
"""
import argparse, json, os, sys, time
from bisect import bisect_left

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import G, PROD, WEB01, Lab, req, sh, stats, vswitchd_cpu_s  # noqa: E402
import udpprobe  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udpprobe.py")
PORT = 9999

SEND_INTERVAL = 0.0005


def first_after(arrivals, t, until):
    i = bisect_left(arrivals, (t,))
    if i < len(arrivals) and arrivals[i][0] < until:
        return (arrivals[i][0] - t) * 1e3
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,10,100")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--visitors", type=int, default=0, help="visitors on sw2 (default: highest level + 1)")
    ap.add_argument("--crowd", action="store_true",
                    help="the other redirected hosts sit behind one switch port (macvlans), not one port each")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    others = max(levels) - 1
    if a.crowd:
        lab_ = Lab(visitors=max(a.visitors, 1), crowd=others)
    else:
        lab_ = Lab(visitors=max(a.visitors, max(levels) + 1))
    with lab_ as lab:
        pool = lab.crowd if a.crowd else lab.visitors[1:]
        att_ns, att_ip = lab.visitors[0]
        for ns, name in (("gm-office-web01", "prod"), ("gm-twin-web01", "twin")):
            lab.spawn("ip", "netns", "exec", ns, "python3", PROBE, "recv", str(PORT), f"{lab.tmp}/{name}.txt")
        time.sleep(1)
        lab.spawn("ip", "netns", "exec", att_ns, "python3", PROBE, "send", WEB01, str(PORT), str(SEND_INTERVAL))
        time.sleep(1)
        results, active, swaps, cpu = {}, [], [], {}
        for level in levels:
            while len(active) < level - 1:
                code, r, _ = req("POST", "/api/v1/redirections", {"source": pool[len(active)][1]})
                assert code == 201, r
                active.append(r["id"])
            time.sleep(1)
            cpu0, t0 = vswitchd_cpu_s(), time.time()
            for _ in range(a.runs):
                t_post = time.time()
                code, r, post_ms = req("POST", "/api/v1/redirections", {"source": att_ip, "reason": "bench"})
                assert code == 201, r
                time.sleep(0.05)
                t_del = time.time()
                code, r2, del_ms = req("DELETE", f"/api/v1/redirections/{r['id']}")
                assert code == 200, r2
                time.sleep(0.05)
                swaps.append({"level": level, "t_post": t_post, "t_del": t_del, "post_ms": post_ms, "del_ms": del_ms,
                              "install_ms": r["install_ms"], "release_ms": r2["release_ms"], "flows": r["flows"]})
            cpu[level] = round((vswitchd_cpu_s() - cpu0) / (time.time() - t0), 3)
        time.sleep(1)
        twin_a, prod_a = udpprobe.read(f"{lab.tmp}/twin.txt"), udpprobe.read(f"{lab.tmp}/prod.txt")
        for s in swaps:
            t_201 = s["t_post"] + s["post_ms"] / 1e3
            t_200 = s["t_del"] + s["del_ms"] / 1e3
            s["first_twin_ms"] = first_after(twin_a, s["t_post"], s["t_del"] + 0.02)
            s["first_back_ms"] = first_after(prod_a, s["t_del"], s["t_del"] + 1.0)
            s["leaked_to_prod"] = sum(1 for t, _, sent in prod_a if t_201 < sent < s["t_del"])
            s["late_in_twin"] = sum(1 for t, _, sent in twin_a if t_200 < sent < t_200 + 0.05)
        for level in levels:
            mine = [s for s in swaps if s["level"] == level]
            col = lambda k: [s[k] for s in mine if s[k] is not None]  # noqa: E731
            results[level] = {
                "active": level, "flows_per_swap": mine[0]["flows"],
                "first_twin_ms": stats(col("first_twin_ms")), "first_back_ms": stats(col("first_back_ms")),
                "never_seen_in_twin": sum(1 for s in mine if s["first_twin_ms"] is None),
                "sent_after_201_arrived_in_prod": sum(s["leaked_to_prod"] for s in mine),
                "sent_after_200_arrived_in_twin": sum(s["late_in_twin"] for s in mine),
                "ovs_vswitchd_cpu": cpu[level],
                "install_ms": stats(col("install_ms")), "post_ms": stats(col("post_ms")),
                "release_ms": stats(col("release_ms")), "delete_ms": stats(col("del_ms")),
            }
        # Peer: the same flows by ovs-ofctl --bundle, per switch, install then delete.
        code, r, _ = req("POST", "/api/v1/redirections", {"source": att_ip})
        cookie = f"0x{0x676d030000000000 | r['number']:x}"
        per_switch = {}
        for br in ["gm-sw1", "gm-sw2"]:
            out = sh("ip", "netns", "exec", "gm-prod", "env", f"OVS_RUNDIR={PROD}", "ovs-ofctl", "-O", "OpenFlow13",
                     "--no-names", "--no-stats", "dump-flows", f"unix:{PROD}/{br}.mgmt", f"cookie={cookie}/-1").stdout
            per_switch[br] = [line.strip() for line in out.splitlines() if "cookie=" in line]
        req("DELETE", f"/api/v1/redirections/{r['id']}")
        peer_in, peer_out = [], []
        for _ in range(a.runs):
            t = time.perf_counter()
            for br, fl in per_switch.items():
                f = os.path.join(lab.tmp, br + ".flows")
                open(f, "w").write("\n".join(fl) + "\n")
                sh("ip", "netns", "exec", "gm-prod", "env", f"OVS_RUNDIR={PROD}", "ovs-ofctl", "-O", "OpenFlow13",
                   "--no-names", "--bundle", "add-flows", f"unix:{PROD}/{br}.mgmt", f)
            peer_in.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            for br in per_switch:
                sh("ip", "netns", "exec", "gm-prod", "env", f"OVS_RUNDIR={PROD}", "ovs-ofctl", "-O", "OpenFlow13",
                   "--bundle", "del-flows", f"unix:{PROD}/{br}.mgmt", f"cookie={cookie}/-1")
            peer_out.append((time.perf_counter() - t) * 1e3)
        results["peer_ovs_ofctl_bundle"] = {"install_ms": stats(peer_in), "release_ms": stats(peer_out),
                                            "flows_per_swap": sum(len(v) for v in per_switch.values())}
        results["gemelo"] = G
        results["ovs_vswitchd_cpu_before"] = lab.idle_cpu
        results["layout"] = "crowd behind one port" if a.crowd else "one port per visitor"
        json.dump(swaps, open(lab.tmp + "/swaps.json", "w"))
        results["raw"] = lab.tmp + "/swaps.json"
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
