#!/usr/bin/env python3
"""Side-by-side table: what nmap found (nmap.xml) vs gemelo's inventory
(inventory.json), per host of the ground truth (truth.json), with the wall
time of each (result.json). Standard library only.

    python3 nmap_table.py /tmp/gm-bench-nmap-office
"""
import json
import sys
import xml.etree.ElementTree as ET

d = sys.argv[1]
truth = json.load(open(f"{d}/truth.json"))
inv = json.load(open(f"{d}/inventory.json"))
res = json.load(open(f"{d}/result.json"))
root = ET.parse(f"{d}/nmap.xml").getroot()

nmap = {}  # ip -> {ports: [(proto, port, text)], os, hostname, mac}
for h in root.findall("host"):
    if h.find("status").get("state") != "up":
        continue
    ip = next((a.get("addr") for a in h.findall("address") if a.get("addrtype") == "ipv4"), None)
    mac = next((a.get("addr") for a in h.findall("address") if a.get("addrtype") == "mac"), None)
    ports = []
    for p in h.findall("ports/port"):
        if p.find("state").get("state") != "open":
            continue
        s = p.find("service")
        txt = ""
        if s is not None:
            txt = " ".join(x for x in [s.get("name"), s.get("product"), s.get("version"), s.get("extrainfo")] if x)
        ports.append((p.get("protocol"), int(p.get("portid")), txt))
    osm = h.find("os/osmatch")
    hn = h.find("hostnames/hostname")
    nmap[ip] = {"ports": ports, "os": osm.get("name") + f" ({osm.get('accuracy')}%)" if osm is not None else None,
                "hostname": hn.get("name") if hn is not None else None, "mac": mac}

by_ip = {}
for h in inv["hosts"]:
    for ip in h["ips"]:
        by_ip[ip] = h

def gsvc(s):
    return " ".join(x for x in [s["name"], s.get("product"), s.get("version")] if x)

print("| host | IP | nmap: open ports, service/version | nmap: OS, hostname | gemelo: services, product/version | gemelo: OS, hostname, attachment | gemelo has all nmap found? |")
print("|---|---|---|---|---|---|---|")
total_missing = []
truth_ips = set()
for t in truth:
    for i in t["interfaces"]:
        ip = i["ip"]
        truth_ips.add(ip)
        n = nmap.get(ip)
        g = by_ip.get(ip)
        ncell = "<br>".join(f"{p}/{pr} {txt}" for pr, p, txt in n["ports"]) if n else "(not found)"
        nos = f"{(n or {}).get('os') or 'no OS match'}; {(n or {}).get('hostname') or 'no hostname'}"
        if g:
            gcell = "<br>".join(f"{s['port']}/{s['proto']} {gsvc(s)}" for s in g["services"]) or "-"
            os_ = (g.get("os") or {}).get("guess") or "-"
            gos = f"{os_}; {g.get('hostname') or 'no hostname'}; {str(g.get('switch') or '-').lstrip('0')}:{g.get('port')}"
        else:
            gcell, gos = "(not found)", "-"
        missing = []
        if n:
            have = {(s["proto"], s["port"]) for s in (g or {}).get("services", [])}
            missing = [f"{pr}/{p}" for pr, p, _ in n["ports"] if (pr, p) not in have]
            if not g:
                missing.insert(0, "host")
        verdict = "yes" if not missing else "NO: " + ", ".join(missing)
        total_missing += [f"{ip} {m}" for m in missing]
        print(f"| {t['host']} | {ip} | {ncell} | {nos} | {gcell} | {gos} | {verdict} |")
others = sorted(set(nmap) - truth_ips)
print()
print(f"nmap also reported (not lab hosts; the probe's own addresses): {others}")
nm_ports = sum(len(v["ports"]) for ip, v in nmap.items() if ip in truth_ips)
g_ports = sum(len(by_ip[ip]["services"]) for ip in truth_ips if ip in by_ip)
print(f"open ports / services found on lab hosts: nmap {nm_ports}, gemelo {g_ports}; "
      f"OS guesses nmap {sum(1 for ip in truth_ips if (nmap.get(ip) or {}).get('os'))}, "
      f"hostnames nmap {sum(1 for ip in truth_ips if (nmap.get(ip) or {}).get('hostname'))}, "
      f"gemelo {sum(1 for ip in truth_ips if (by_ip.get(ip) or {}).get('hostname'))} of {len(truth_ips)} addresses")
print(f"found by nmap but not by gemelo: {total_missing or 'nothing'}")
print(f"wall time: gemelo {res['secs']:.1f} s (serve start -> complete inventory, complete={res['complete']}); "
      f"nmap {res.get('nmap_secs', float('nan')):.1f} s (`{res.get('nmap_argv')}`, from gm-probe)")
