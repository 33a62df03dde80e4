#!/usr/bin/env python3
"""A timestamped UDP stream, to see where an attacker's packets land and when.

  udpprobe.py send DST_IP PORT INTERVAL_S   one datagram per interval: "seq send_time"
  udpprobe.py recv PORT OUT_FILE            one line per datagram: "arrival_time seq send_time src"

Both sides stamp with CLOCK_REALTIME, which every namespace of one machine
shares; the receiver takes the kernel's receive timestamp (SO_TIMESTAMPNS).
Run each side inside its namespace with `ip netns exec`.
"""
import socket, struct, sys, time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def send(dst, port, interval):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seq = 0
    nxt = time.time()
    while True:
        try:
            s.sendto(f"{seq} {time.time():.6f}".encode(), (dst, port))
        except OSError:
            pass  # no route / ARP pending while the path changes: keep going
        seq += 1
        nxt += interval
        delay = nxt - time.time()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.time()


def recv(port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    with open(out, "w", buffering=1) as f:
        while True:
            data, anc, _, src = s.recvmsg(256, socket.CMSG_SPACE(16))
            t = None
            for level, kind, val in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(val) >= 16:
                    sec, nsec = struct.unpack("qq", val[:16])
                    t = sec + nsec / 1e9
            if t is None:
                t = time.time()
            f.write(f"{t:.6f} {data.decode(errors='replace')} {src[0]}\n")


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "recv":
        recv(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit("usage: udpprobe.py send DST PORT INTERVAL | recv PORT OUT")


def read(path):
    """[(arrival, seq, send_time)] sorted by arrival."""
    out = []
    for line in open(path):
        p = line.split()
        try:
            out.append((float(p[0]), int(p[1]), float(p[2])))
        except (ValueError, IndexError):
            pass
    return sorted(out)
