#!/usr/bin/env python3
"""Twin fidelity measurement (driven by fidelity.sh): API LAB_STATUS_JSON OUT_DIR.

Waits for discovery, builds the twin, probes production (from the lab's probe
namespace) and the twin (from its observer namespace) with the same tools, and
compares field by field."""
import hashlib, json, os, re, subprocess, sys, time, urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

API, LAB_JSON, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
TWIN_JSON = "/run/gemelo/twin/status.json"
# Fields that are clocks (time since an agent started): reported, not counted.
CLOCK = "clock:"


def get(path):
    with urllib.request.urlopen(API + path, timeout=10) as r:
        return json.loads(r.read())


def post(path, body=b""):
    req = urllib.request.Request(API + path, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def run(argv, timeout=120):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
        return p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "TIMEOUT"


# ---- wait for the API, discovery, twin ---------------------------------------
t0 = time.time()
while True:
    try:
        get("/api/v1/health")
        break
    except Exception:
        if time.time() - t0 > 15:
            sys.exit("gemelo serve not healthy")
        time.sleep(0.2)

lab = json.load(open(LAB_JSON))
hosts = lab["hosts"]


def discovered(h):
    wants = [s for s in h["services"] if s["name"] != "lldp"]
    for i in h["interfaces"]:
        try:
            v = get("/api/v1/hosts/" + i["mac"])
        except Exception:
            return False
        if v.get("hostname") is None:
            return False
        ids = [s for s in (v.get("services") or []) if s.get("product") or s.get("details")]
        if wants and len(v.get("services") or []) < len(wants):
            return False
    return True


deadline = time.time() + 180
while True:
    done = [h["name"] for h in hosts if discovered(h)]
    if len(done) == len(hosts):
        break
    if time.time() > deadline:
        print(f"WARNING: discovery incomplete after 180 s: {sorted(set(h['name'] for h in hosts) - set(done))}")
        break
    time.sleep(1)
# Give identification (banners, details) a few more seconds to settle.
time.sleep(5)
t_disc = time.time() - t0
# A failed build (e.g. an inventory segment whose gateway lies outside it) is
# retried: the inventory may be corrected by later traffic. Every failure is printed.
# After 2 failures, segments whose inventory gateway lies outside the segment
# are left out (POST {"segments": [...]}) and their hosts count as not twinned.
import ipaddress
failures = []
left_out = []
for attempt in range(4):
    body = b""
    if attempt >= 2:
        segs = get("/api/v1/inventory")["segments"]
        ok = [x["cidr"] for x in segs if not x.get("gateway") or ipaddress.ip_address(x["gateway"]) in ipaddress.ip_network(x["cidr"])]
        left_out = [x for x in segs if x["cidr"] not in ok]
        print(f"leaving out segments with an off-segment gateway: {left_out}", flush=True)
        body = json.dumps({"segments": ok}).encode()
    post("/api/v1/twin", body)
    tb = time.time()
    while True:
        time.sleep(0.3)
        s = get("/api/v1/twin")
        if s["state"] not in ("building", "absent") or s.get("error"):
            break
        if time.time() - tb > 120:
            sys.exit(f"twin not built: {s}")
    if s["state"] not in ("absent", "failed") and not s.get("error"):
        break
    failures.append(s.get("error"))
    print(f"twin build attempt {attempt + 1} failed: {s.get('error')}", flush=True)
    time.sleep(10)
else:
    sys.exit(f"twin not built after {len(failures)} attempts")
t_twin = time.time() - tb
print(f"discovery {t_disc:.1f} s, twin build {t_twin:.1f} s (after {len(failures)} failed attempts), state {s['state']}")
twin = json.load(open(TWIN_JSON))
json.dump(twin, open(f"{OUT}/twin-status.json", "w"), indent=1)

PROBE = ["ip", "netns", "exec", lab["probe"]["namespace"]]
OBS = ["ip", "netns", "exec", twin["observer_namespace"]]


def twin_host_of(h):
    for t in twin["hosts"]:
        if h["mac"] in t["mirrors"]:
            return t
    return None


# ---- probes --------------------------------------------------------------------
def nmap(side, ns, ip, tcp, udp):
    ports = ",".join([f"T:{p}" for p in tcp] + [f"U:{p}" for p in udp])
    if not ports:
        return {}
    xmlf = f"{OUT}/nmap-{side}-{ip}.xml"
    scan = ["-sS"] + (["-sU"] if udp else [])
    run(ns + ["nmap", "-n", "-Pn", *scan, "-sV", "-O", "--script", "ssh2-enum-algos,http-title,banner", "-p", ports, "-oX", xmlf, ip], 300)
    res = {}
    try:
        root = ET.parse(xmlf).getroot()
    except Exception as e:
        return {"nmap_error": str(e)}
    for port in root.iter("port"):
        pid = f"{port.get('protocol')}/{port.get('portid')}"
        st = port.find("state")
        sv = port.find("service")
        res[f"{pid} state"] = st.get("state") if st is not None else None
        if sv is not None:
            res[f"{pid} service"] = sv.get("name")
            res[f"{pid} version"] = " ".join(x for x in (sv.get("product"), sv.get("version"), sv.get("extrainfo")) if x)
        for sc in port.findall("script"):
            key = {"ssh2-enum-algos": "ssh algorithms", "http-title": "http title (nmap)", "banner": "banner"}.get(sc.get("id"), sc.get("id"))
            out = sc.get("output").strip()
            if sc.get("id") == "mqtt-subscribe":
                # The broker's own statistics ($SYS values) are live: topic names only.
                out = "\n".join(sorted(l.split(":")[0].strip() for l in out.splitlines()[1:] if ":" in l))
            if sc.get("id") == "snmp-info":
                # The engine's clock (seconds since the agent started) is
                # compared apart: a twin's agent starts when the twin does.
                clock = [l for l in out.splitlines() if "snmpEngineTime" in l]
                out = "\n".join(l for l in out.splitlines() if "snmpEngineTime" not in l)
                res[f"{pid} {CLOCK} snmpEngineTime"] = clock[0].split(":", 1)[1].strip() if clock else None
            res[f"{pid} {key}"] = out
    osm = root.find(".//osmatch")
    res["os match"] = osm.get("name") if osm is not None else None
    return res


def http(ns, ip, port):
    body = f"{OUT}/body-{ns[-1]}-{ip}-{port}"
    code = run(ns + ["curl", "-s", "-m", "5", "-o", body, "-w", "%{http_code}", f"http://{ip}:{port}/"], 20).strip()
    data = open(body, "rb").read() if os.path.exists(body) else b""
    m = re.search(rb"<title>(.*?)</title>", data, re.I | re.S)
    return {f"tcp/{port} http status": code, f"tcp/{port} http title": m.group(1).decode(errors="replace").strip() if m else None,
            f"tcp/{port} http body sha256": hashlib.sha256(data).hexdigest()[:16]}


def modbus(ns, ip, port):
    """Holding registers 1-10 read twice, 1.5 s apart: the ones that keep their
    value are settings (compared by value); the ones that move are live
    (compared by how they move: counting up, or wandering)."""
    def read():
        out = run(ns + ["mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-t", "4", "-r", "1", "-c", "10", "-1", "-o", "2", ip], 20)
        return {int(a): int(b) for a, b in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", out, re.M)}, out
    first, out = read()
    time.sleep(1.5)
    second, _ = read()
    if not first:
        return {f"tcp/{port} modbus settings 1-10": out.strip()[-80:]}
    settings = " ".join(f"{r}={v}" for r, v in sorted(first.items()) if second.get(r) == v)
    def how(r):
        a, b = first[r], second.get(r)
        return "counts" if b is not None and 0 < (b - a) % 65536 < 32768 and b > a else "wanders"
    live = " ".join(f"{r}:{how(r)}" for r in sorted(first) if second.get(r) != first[r])
    return {f"tcp/{port} modbus settings 1-10": settings, f"tcp/{port} modbus live registers": live}


def mqtt(ns, ip, port):
    """Topics seen in 12 s (two periods of the lab's sensors) with their
    RETAIN flag, and the payloads of retained ones (a live payload carries
    the publisher's sequence number and reading)."""
    out = run(ns + ["mosquitto_sub", "-h", ip, "-p", str(port), "-t", "#", "-W", "12", "-F", "%r %t\t%p"], 25)
    lines = [l for l in out.splitlines() if l and "Timed out" not in l]
    topics = sorted({l.split("\t")[0] for l in lines})
    retained = sorted({l for l in lines if l.startswith("1 ")})
    return {f"tcp/{port} mqtt topics (retain flag)": "\n".join(topics),
            f"tcp/{port} mqtt retained payloads": "\n".join(retained)}


def snmp(ns, ip, port):
    def get(fmt, *oids):
        return run(ns + ["snmpget", "-v2c", "-c", "public", "-t", "2", "-r", "1", fmt, f"{ip}:{port}", *oids], 15)
    lines = get("-Oqv", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.1.0").strip().splitlines() + [None, None]
    # snmpEngineID (hex, may wrap over lines), snmpEngineBoots
    words = get("-Oqvx", "1.3.6.1.6.3.10.2.1.1.0", "1.3.6.1.6.3.10.2.1.2.0").split()
    return {f"udp/{port} snmp sysName": lines[0], f"udp/{port} snmp sysDescr": lines[1],
            f"udp/{port} snmp engineID": "".join(words[:-1]).replace('"', "").lower() or None,
            f"udp/{port} snmp engineBoots": words[-1] if words else None}


def probe(side, ns, h):
    ip = h["ips"][0].split("/")[0]
    svcs = [s for s in h["services"] if s["name"] != "lldp" and s.get("port")]
    tcp = sorted({s["port"] for s in svcs if s["proto"] == "tcp"})
    udp = sorted({s["port"] for s in svcs if s["proto"] == "udp"})
    res = nmap(side, ns, ip, tcp, udp)
    for s in svcs:
        n, p = s["name"], s["port"]
        if n == "http":
            res.update(http(ns, ip, p))
        elif n == "modbus":
            res.update(modbus(ns, ip, p))
        elif n == "mqtt":
            res.update(mqtt(ns, ip, p))
        elif n == "snmp":
            res.update(snmp(ns, ip, p))
    return res


def uts_hostname(uts, ns):
    return run(["ip", "netns", "exec", ns, "nsenter", f"--uts={uts}", "hostname"]).strip()


def measure(h):
    t = twin_host_of(h)
    prod = probe("prod", PROBE, h)
    prod["hostname"] = uts_hostname(h["uts"], h["namespace"])
    tw = probe("twin", OBS, h)
    tw["hostname"] = uts_hostname(t["uts"], t["namespace"]) if t and t.get("uts") else None
    return h["name"], prod, tw


not_twinned = [h["name"] for h in hosts if twin_host_of(h) is None]
if not_twinned:
    print(f"NOT TWINNED (no twin host mirrors them; not probed): {not_twinned}")
with ThreadPoolExecutor(max_workers=3) as ex:
    results = list(ex.map(measure, [h for h in hosts if twin_host_of(h) is not None]))

# ---- compare -------------------------------------------------------------------
def field_of(key):
    return re.sub(r"^(tcp|udp)/\d+ ", "", key)


per_field, mismatches, rows = {}, [], []
for name, prod, tw in results:
    keys = sorted(set(prod) | set(tw))
    for k in keys:
        f = field_of(k)
        ok = prod.get(k) == tw.get(k)
        m, n = per_field.get(f, (0, 0))
        per_field[f] = (m + ok, n + 1)
        if not ok:
            mismatches.append((name, k, prod.get(k), tw.get(k)))
    rows.append({"host": name, "prod": prod, "twin": tw})
json.dump(rows, open(f"{OUT}/result.json", "w"), indent=1)

counted = {f: v for f, v in per_field.items() if not f.startswith(CLOCK)}
tot_m = sum(m for m, n in counted.values())
tot_n = sum(n for m, n in counted.values())
print(f"\n{'field':32} match")
for f, (m, n) in sorted(per_field.items()):
    print(f"{f:32} {m}/{n}")
print(f"{'TOTAL':32} {tot_m}/{tot_n} = {100.0 * tot_m / max(tot_n, 1):.1f} %  ({len(results)}/{len(hosts)} hosts twinned; '{CLOCK}' fields not counted)")
print(f"\nmismatches ({len(mismatches)}):")
for name, k, a, b in mismatches:
    short = lambda v: (v if v is None or len(str(v)) < 300 else str(v)[:300] + "...")
    print(f"- {name} {k}:\n    prod: {short(a)!r}\n    twin: {short(b)!r}")
