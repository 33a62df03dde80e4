#!/usr/bin/env python3
"""Swap and release latency of gemelo's redirections on the office lab.

Builds the lab, starts `gemelo serve`, builds the twin, plugs in visitors on
sw2 (workstations), then for each level of concurrency C (redirections already
active): 100 times redirect one more visitor and release it. Per swap it
records the client's POST/DELETE round trip and the server's install_ms /
release_ms (API call to the last switch's bundle commit + barrier). Peer,
measured in the same run: the same swap done by `ovs-ofctl --bundle` (the
redirection's flows, read back with dump-flows, replayed as one bundle per
switch, then deleted by cookie), i.e. what an operator script would do.

Prints JSON; `benches/report.py` style tables go into BENCHMARKS.md by hand.
Usage (root): benches/redirect/swap.py [--levels 1,10,100] [--runs 100]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# GEMELO_BIN, else the newest of the release and debug builds.
_builds = [p for p in (os.path.join(ROOT, "target/release/gemelo"), os.path.join(ROOT, "target/debug/gemelo")) if os.path.exists(p)]
G = os.environ.get("GEMELO_BIN") or max(_builds, key=os.path.getmtime)
API = "127.0.0.1:18099"
BASE = "http://" + API
PROD = "/run/gemelo/lab/prod"


def sh(*a, check=True, **kw):
    return subprocess.run(a, check=check, capture_output=True, text=True, **kw)


def req(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            out = json.loads(resp.read() or b"null")
            code = resp.status
    except urllib.error.HTTPError as e:
        out, code = json.loads(e.read() or b"null"), e.code
    return code, out, (time.perf_counter() - t) * 1e3


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def stats(v):
    return {"p50": round(pct(v, 50), 3), "p99": round(pct(v, 99), 3), "mean": round(statistics.mean(v), 3), "n": len(v)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,10,100")
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    tmp = tempfile.mkdtemp(prefix="gemelo-bench-swap-")
    sh(G, "lab", "up", "--topology", os.path.join(ROOT, "topologies/office.toml"))
    serve = subprocess.Popen([G, "serve", "--api", API, "--data", tmp + "/data"], stdout=subprocess.DEVNULL,
                             stderr=open(tmp + "/serve.log", "w"))
    try:
        for _ in range(100):
            try:
                if len(req("GET", "/api/v1/switches")[1]) >= 2:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        time.sleep(20)  # discovery identifies services (twin decoys need them)
        sh(G, "twin", "build", "--api", API)
        need = max(levels) + 1
        visitors = []
        for i in range(need):
            ip = f"10.10.2.{100 + i}"
            ns = sh(G, "lab", "visitor", f"v{i}", "--switch", "sw2", "--segment", "workstations", "--ip", ip).stdout.strip()
            visitors.append((ns, ip))
        for ns, ip in visitors:
            sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "10.10.2.1", check=False)
        deadline = time.time() + 60
        while time.time() < deadline:
            inv = req("GET", "/api/v1/inventory")[1]
            known = {i for h in inv["hosts"] if h.get("switch") for i in h["ips"]}
            if all(ip in known for _, ip in visitors):
                break
            for ns, ip in visitors:
                if ip not in known:
                    sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "10.10.2.1", check=False)
        # Discovery probes every new host (banner grabs, sweeps): let it settle,
        # or the first level measures a busy controller.
        settle_until = time.time() + 120
        last = None
        while time.time() < settle_until:
            n = len(req("GET", "/api/v1/inventory/history?limit=100000")[1])
            if n == last:
                break
            last = n
            time.sleep(10)
        results = {}
        active = []
        for level in levels:
            while len(active) < level - 1:
                code, r, _ = req("POST", "/api/v1/redirections", {"source": visitors[len(active) + 1][1]})
                assert code == 201, r
                active.append(r["id"])
            src = visitors[0][1]
            post, dele, inst, rel, flows = [], [], [], [], 0
            for _ in range(a.runs):
                code, r, ms = req("POST", "/api/v1/redirections", {"source": src, "reason": "bench"})
                assert code == 201, r
                post.append(ms); inst.append(r["install_ms"]); flows = r["flows"]
                code, r2, ms = req("DELETE", f"/api/v1/redirections/{r['id']}")
                assert code == 200, r2
                dele.append(ms); rel.append(r2["release_ms"])
            results[level] = {"active": level, "flows_per_swap": flows, "post_ms": stats(post), "install_ms": stats(inst),
                              "delete_ms": stats(dele), "release_ms": stats(rel)}
        # Peer: the same flows by ovs-ofctl --bundle, per switch, install then delete.
        code, r, _ = req("POST", "/api/v1/redirections", {"source": visitors[0][1]})
        cookie = f"0x{0x676d030000000000 | r['number']:x}"
        per_switch = {}
        for br in ["gm-sw1", "gm-sw2"]:
            out = sh("ip", "netns", "exec", "gm-prod", "env", f"OVS_RUNDIR={PROD}", "ovs-ofctl", "-O", "OpenFlow13",
                     "--no-names", "--no-stats", "dump-flows", f"unix:{PROD}/{br}.mgmt", f"cookie={cookie}/-1").stdout
            per_switch[br] = [l.strip() for l in out.splitlines() if "cookie=" in l]
        req("DELETE", f"/api/v1/redirections/{r['id']}")
        peer_in, peer_out = [], []
        for _ in range(a.runs):
            t = time.perf_counter()
            for br, fl in per_switch.items():
                f = os.path.join(tmp, br + ".flows")
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
        print(json.dumps(results, indent=1))
    finally:
        subprocess.run([G, "twin", "destroy", "--api", API], capture_output=True)
        serve.terminate()
        try:
            serve.wait(10)
        except Exception:
            serve.kill()
        subprocess.run([G, "lab", "down"], capture_output=True)


if __name__ == "__main__":
    main()
