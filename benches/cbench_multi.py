#!/usr/bin/env python3
"""Run `ofbench.py cbench` in P parallel processes against one controller and sum them.

One Python harness process saturates one core near ~300k responses/s, so to measure
a controller faster than that the emulated switches are spread over P processes
(distinct --dpid-base each). Per-loop totals are summed loop by loop (the processes
start together), then the median over loops is reported.

usage: cbench_multi.py --ofbench PATH -p PORT -s SWITCHES -P PROCS [--ctl-pid PID]
                       [--label L] [-- extra ofbench cbench args]
Prints one JSON object: median/min/max responses/s, per-process harness CPU,
controller CPU, flow_mod and packet_out rates, errors.
"""
import argparse
import json
import statistics
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ofbench", required=True)
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("-s", "--switches", type=int, required=True)
    p.add_argument("-P", "--procs", type=int, default=1)
    p.add_argument("--ctl-pid", type=int, default=0)
    p.add_argument("--label", default="")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    a = p.parse_args()
    extra = [x for x in a.extra if x != "--"]
    procs = max(1, min(a.procs, a.switches))
    per = [a.switches // procs + (1 if i < a.switches % procs else 0) for i in range(procs)]
    children, base = [], 1
    for n in per:
        cmd = [sys.executable, a.ofbench, "cbench", "-p", str(a.port), "-s", str(n),
               "--dpid-base", str(base), "--json"] + extra
        if a.ctl_pid:
            cmd += ["--ctl-pid", str(a.ctl_pid)]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        base += n
    outs = []
    for c in children:
        out, err = c.communicate()
        try:
            outs.append(json.loads(out))
        except ValueError:
            print(json.dumps({"label": a.label, "error": "harness failed: rc=%s %s" % (c.returncode, err.strip()[-400:])}))
            return 1
        if err.strip():
            sys.stderr.write(err)
    nloops = min(len(o["per_loop"]) for o in outs)
    if nloops == 0:
        print(json.dumps({"label": a.label, "error": "no measured loop"}))
        return 1
    tot = [sum(o["per_loop"][i]["total"] for o in outs) for i in range(nloops)]
    fm = [sum(o["per_loop"][i]["flow_mod"] for o in outs) for i in range(nloops)]
    po = [sum(o["per_loop"][i]["packet_out"] for o in outs) for i in range(nloops)]
    ctl = [o.get("controller_cpu_pct") for o in outs if o.get("controller_cpu_pct") is not None]
    res = {
        "label": a.label, "switches": a.switches, "procs": procs, "loops": nloops,
        "median": statistics.median(tot), "min": min(tot), "max": max(tot),
        "flow_mod_median": statistics.median(fm), "packet_out_median": statistics.median(po),
        "harness_cpu_pct": [round(o["harness_cpu_pct"], 1) for o in outs],
        "controller_cpu_pct": round(statistics.mean(ctl), 1) if ctl else None,
        "errors_received": sum(o["errors_received"] for o in outs),
        "packet_ins_sent": sum(o["packet_ins_sent"] for o in outs),
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
