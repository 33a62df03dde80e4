#!/usr/bin/env python3
"""arpflood - send ARP requests with a new source MAC and a new sender IP per
frame from a Linux interface: the frames gemelo's classifier copies to the
controller (table 0, ARP -> CONTROLLER + goto forward), so a flood of them loads
the discovery path under the OpenFlow controller meter. Same options as
/work/shared/bench/pktflood.py (whose UDP/4789 frames the classifier does not
copy). Python standard library only; needs root; run it inside a lab host's
namespace:

  ip netns exec gm-office-ws02 python3 arpflood.py -i eth0 --rate 8000 -n 80000

Frame i: Ethernet dst --dst-mac (default broadcast), src PREFIX:ii:ii:ii; ARP
who-has --target-ip tell --src-ip-base + i (default 198.18.128.0 + i: outside any
discovery scope, so the flood never triggers active probes). Prints frames sent,
elapsed time and rate; --json for a JSON object.
"""
import argparse, json, socket, struct, sys, time


def mac(text):
    b = bytes(int(x, 16) for x in text.split(":"))
    if len(b) != 6:
        raise argparse.ArgumentTypeError(f"bad MAC {text!r}")
    return b


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--iface", required=True)
    p.add_argument("--dst-mac", type=mac, default=mac("ff:ff:ff:ff:ff:ff"))
    p.add_argument("--target-ip", default="198.18.0.1")
    p.add_argument("--src-ip-base", default="198.18.128.0")
    p.add_argument("--src-mac-prefix", default="02:ab:00")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("-n", "--count", type=int, default=10000)
    p.add_argument("--rate", type=float, default=0, help="frames/s (0 = as fast as possible)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    prefix = mac(a.src_mac_prefix + ":00:00:00")[:3]
    tpa = socket.inet_aton(a.target_ip)
    base = struct.unpack("!I", socket.inet_aton(a.src_ip_base))[0]
    frames = []
    for k in range(a.count):
        i = a.offset + k
        src = prefix + (i & 0xFFFFFF).to_bytes(3, "big")
        spa = ((base + i) & 0xFFFFFFFF).to_bytes(4, "big")
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + spa + b"\0" * 6 + tpa
        frames.append((a.dst_mac + src + b"\x08\x06" + arp).ljust(60, b"\0"))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = errors = 0
    t0 = time.perf_counter()
    gap = 1.0 / a.rate if a.rate > 0 else 0
    nxt = t0
    for f in frames:
        if gap:
            d = nxt - time.perf_counter()
            if d > 0.0002:
                time.sleep(d)
            nxt += gap
        try:
            s.send(f)
            sent += 1
        except OSError:
            errors += 1
    dt = time.perf_counter() - t0
    res = {"sent": sent, "errors": errors, "secs": dt, "pps": sent / dt if dt else 0}
    print(json.dumps(res) if a.json else "arpflood: sent %d frames (%d errors) in %.3f s = %.0f pps" % (sent, errors, dt, res["pps"]))
    return 0 if sent else 1


if __name__ == "__main__":
    sys.exit(main())
