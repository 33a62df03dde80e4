#!/usr/bin/env python3
"""Traffic and measurement half of scale.sh (standard library only).

One process: a TCP server in namespace gm-sc-srv, then for each host namespace
gm-sc-1..N (entered with setns, one thread) one non-blocking TCP connect to the
server, paced at --rate connects/s (the connect makes the host ARP for the
server: the classifier copies that ARP to gemelo, and the server's SYN-ACK).
Polls gemelo's inventory until every host is listed with its IP and its
attachment (switch dpid and the OVS ofport of its veth), and reads gemelo's CPU
from /proc/PID/stat before and after. Prints one JSON object.
"""
import argparse, ctypes, json, os, socket, subprocess, threading, time, urllib.request

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def setns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--dpid", required=True)
    p.add_argument("--ofports", required=True, help="file: 'name ofport' lines")
    p.add_argument("--server-ip", default="10.99.0.2")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()

    ofport = {}
    for line in open(a.ofports):
        f = line.split()
        if len(f) == 2:
            ofport[f[0].strip('"')] = int(f[1])
    want = {}  # ip -> ofport
    for i in range(1, a.n + 1):
        want[f"10.99.{(10 + i) // 256}.{(10 + i) % 256}"] = ofport[f"gm-sc-p{i}"]

    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns("gm-sc-srv")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.server_ip, 7000))
    srv.listen(4096)
    libc.setns(own, CLONE_NEWNET)
    accepted = [0]

    def accept():
        while True:
            c, _ = srv.accept()
            accepted[0] += 1
            c.close()
    threading.Thread(target=accept, daemon=True).start()

    cpu0 = cpu_s(a.pid)
    t0 = time.monotonic()
    socks = []
    gap = 1.0 / a.rate if a.rate > 0 else 0
    for i in range(1, a.n + 1):
        setns(f"gm-sc-{i}")
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((a.server_ip, 7000))
        except BlockingIOError:
            pass
        socks.append(s)
        if gap:
            nxt = t0 + i * gap
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
    libc.setns(own, CLONE_NEWNET)
    t_sent = time.monotonic() - t0

    def inventory():
        with urllib.request.urlopen(f"http://{a.api}/api/v1/inventory", timeout=30) as r:
            return json.load(r)

    found_at = None
    last_ok = 0
    polls = 0
    while True:
        polls += 1
        try:
            inv = inventory()
        except Exception as e:  # noqa: BLE001
            inv = {"hosts": []}
        ok = 0
        for h in inv["hosts"]:
            if h.get("switch") != a.dpid:
                continue
            for ip in h["ips"]:
                if want.get(ip) == h.get("port"):
                    ok += 1
        last_ok = ok
        now = time.monotonic() - t0
        if ok >= a.n:
            found_at = now
            break
        if now > a.timeout:
            break
        time.sleep(0.5)
    cpu1 = cpu_s(a.pid)
    wall = time.monotonic() - t0
    print(json.dumps({
        "hosts": a.n, "connect_rate": a.rate, "connects_sent_s": round(t_sent, 2),
        "accepted": accepted[0], "complete": found_at is not None,
        "hosts_listed_with_ip_and_attachment": last_ok,
        "secs_to_complete_inventory": round(found_at, 2) if found_at else None,
        "inventory_hosts_total": len(inv["hosts"]),
        "gemelo_cpu_s": round(cpu1 - cpu0, 2),
        "gemelo_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
        "gemelo_rss_mb": round(rss_mb(a.pid), 1),
        "polls": polls,
    }))


if __name__ == "__main__":
    main()
