#!/usr/bin/env python3
"""Turns the JSON lines of run-all.sh (RESULTS/cbench.jsonl, RESULTS/flowmod.jsonl)
into the Markdown tables of BENCHMARKS.md. usage: report.py RESULTS_DIR"""
import json
import os
import statistics
import sys


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, f="%.0f"):
    return "n/a" if x is None else f % x


def cbench(rows):
    if not rows:
        return
    print("### cbench throughput (responses/s = FLOW_MODs counted; median of %d rep(s), each the median of its loops)\n"
          % max(r.get("rep", 1) for r in rows))
    print("| switches | ovs-testcontroller | gemelo (learning) | ofbench responder (Python; the documented ceiling) | gemelo / testcontroller "
          "| gemelo / ceiling | target (3x peer or ceiling) | harness procs x, median of max harness CPU % (gemelo runs) | controller CPU % (tc / gemelo) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sorted({r["switches"] for r in rows if "switches" in r}):
        by = {}
        for kind in ("ovs-testcontroller", "gemelo", "responder"):
            by[kind] = [r for r in rows if r.get("label") == kind and r.get("switches") == n and "median" in r]
        tc = med([r["median"] for r in by["ovs-testcontroller"]])
        gm = med([r["median"] for r in by["gemelo"]])
        ce = med([r["median"] for r in by["responder"]])
        r_tc = gm / tc if gm and tc else None
        r_ce = gm / ce if gm and ce else None
        if r_tc is not None and r_tc >= 3:
            verdict = "met (3x peer)"
        elif r_ce is not None and r_ce >= 0.9:
            verdict = "met (at harness ceiling)"
        else:
            verdict = "**not met**"
        # ratio within each repetition (runs of one rep are back to back)
        pair = [g["median"] / t["median"] for g in by["gemelo"] for t in by["ovs-testcontroller"]
                if g.get("rep") == t.get("rep") and t["median"]]
        hc = [max(r["harness_cpu_pct"]) for r in by["gemelo"]]
        procs = by["gemelo"][0]["procs"] if by["gemelo"] else "?"
        cc_tc = med([r.get("controller_cpu_pct") for r in by["ovs-testcontroller"]])
        cc_gm = med([r.get("controller_cpu_pct") for r in by["gemelo"]])
        print("| %d | %s | %s | %s | %s (per rep: %s) | %s | %s | %s x, max %s | %s / %s |" % (
            n, fmt(tc), fmt(gm), fmt(ce), fmt(r_tc, "%.1fx"), ", ".join("%.1fx" % x for x in pair),
            fmt(r_ce, "%.2f"), verdict,
            procs, fmt(med(hc)), fmt(cc_tc), fmt(cc_gm)))
    errs = [r for r in rows if "error" in r]
    for r in errs:
        print("\n- run failed: %s rep %s: %s" % (r.get("label"), r.get("rep"), r["error"]))
    spread = []
    for r in rows:
        if "median" in r and r["median"]:
            spread.append("%s/%d: %s" % (r["label"], r["switches"], fmt(r["median"])))
    print("\nEvery run (controller/switches: median responses/s): " + ", ".join(spread) + "\n")


def flowmod(rows):
    if not rows:
        return
    print("### FLOW_MOD install into userspace OVS (flows/s; median over all repetitions of all interleaved rounds)\n")
    print("| mode | flows | raw ofbench | gemelo | gemelo / raw | target >= 90 % | per-round medians raw / gemelo |")
    print("|---|---|---|---|---|---|---|")
    keys = []
    for r in rows:
        k = (r["mode"], r["count"])
        if r["mode"] != "latency" and k not in keys:
            keys.append(k)
    for mode, n in keys:
        sel = {w: [r for r in rows if r["mode"] == mode and r["count"] == n and r["who"] == w] for w in ("raw", "gemelo")}
        vals = {w: med([rep["flows_per_s"] for r in sel[w] for rep in r["reps"]]) for w in sel}
        errs = sum(rep.get("errors", 0) for w in sel for r in sel[w] for rep in r["reps"])
        ratio = vals["gemelo"] / vals["raw"] if vals["raw"] and vals["gemelo"] else None
        rounds = " / ".join(", ".join(fmt(r["median"]["flows_per_s"]) for r in sel[w]) for w in ("raw", "gemelo"))
        print("| %s | %d | %s | %s | %s | %s | %s%s |" % (
            mode, n, fmt(vals["raw"]), fmt(vals["gemelo"]), fmt(ratio and 100 * ratio, "%.0f %%"),
            "met" if ratio and ratio >= 0.9 else "**not met**", rounds, " (%d errors)" % errs if errs else ""))
    lat = [r for r in rows if r["mode"] == "latency"]
    if lat:
        n = lat[0]["count"]
        print("\n### One FLOW_MOD + BARRIER round trip (%d sequential round trips per round, ms)\n" % n)
        print("| who | p50 | p90 | p99 | max | per-round p50 / p99 |")
        print("|---|---|---|---|---|---|")
        m = {}
        for w in ("raw", "gemelo"):
            rs = [r for r in lat if r["who"] == w]
            m[w] = {k: med([r["median"][k] for r in rs]) for k in ("rtt_p50_ms", "rtt_p90_ms", "rtt_p99_ms", "rtt_max_ms")}
            per = ", ".join("%.3f / %.3f" % (r["median"]["rtt_p50_ms"], r["median"]["rtt_p99_ms"]) for r in rs)
            print("| %s | %s | %s | %s | %s | %s |" % (w, fmt(m[w]["rtt_p50_ms"], "%.3f"), fmt(m[w]["rtt_p90_ms"], "%.3f"),
                                                  fmt(m[w]["rtt_p99_ms"], "%.3f"), fmt(m[w]["rtt_max_ms"], "%.3f"), per))
        r50 = m["gemelo"]["rtt_p50_ms"] / m["raw"]["rtt_p50_ms"]
        r99 = m["gemelo"]["rtt_p99_ms"] / m["raw"]["rtt_p99_ms"]
        print("| gemelo / raw | %.2fx | | %.2fx | | target <= 1.5x: p50 %s, p99 %s |" % (
            r50, r99, "met" if r50 <= 1.5 else "**not met**", "met" if r99 <= 1.5 else "**not met**"))
    print()


def main():
    d = sys.argv[1]
    if os.path.exists(os.path.join(d, "machine.txt")):
        print("```\n" + open(os.path.join(d, "machine.txt")).read().strip() + "\n```\n")
    cbench(load(os.path.join(d, "cbench.jsonl")))
    flowmod(load(os.path.join(d, "flowmod.jsonl")))


if __name__ == "__main__":
    main()
