"""Shared set-up of the redirection benchmarks: the office lab, `gemelo serve`,
the twin, visitors on sw2, and a teardown that runs even on failure.

Holds /run/gemelo/test.lock (as the tests do) for the whole run, so a
benchmark never shares the lab with a test.
"""
import fcntl, json, os, subprocess, tempfile, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# GEMELO_BIN, else the newest of the release and debug builds.
_builds = [p for p in (os.path.join(ROOT, "target/release/gemelo"), os.path.join(ROOT, "target/debug/gemelo"))
           if os.path.exists(p)]
G = os.environ.get("GEMELO_BIN") or (max(_builds, key=os.path.getmtime) if _builds else "gemelo")
API = "127.0.0.1:18099"
BASE = "http://" + API
PROD = "/run/gemelo/lab/prod"
WEB01 = "10.10.1.10"
LOCK = "/run/gemelo/test.lock"


def sh(*a, check=True, **kw):
    return subprocess.run(a, check=check, capture_output=True, text=True, **kw)


def req(method, path, body=None):
    """(status, parsed body, client round trip in ms)."""
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
    if not v:
        return {"n": 0}
    return {"p50": round(pct(v, 50), 3), "p99": round(pct(v, 99), 3), "max": round(max(v), 3),
            "mean": round(sum(v) / len(v), 3), "n": len(v)}


def vswitchd_cpu_s():
    """CPU seconds the production ovs-vswitchd has used so far."""
    pid = open(os.path.join(PROD, "ovs-vswitchd.pid")).read().strip()
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Lab:
    """The office lab with gemelo serving it and the twin built; `with Lab(...) as lab:`."""

    def __init__(self, visitors, serve_args=(), crowd=0):
        """`visitors` hosts on sw2, one switch port each; `crowd` more hosts behind
        one further port (macvlans on that visitor's link, each in a namespace
        `gm-bench-cN`), as behind a hypervisor's bridge or a downstream switch."""
        self.n_visitors = visitors
        self.n_crowd = crowd
        self.crowd = []
        self.idle_cpu = None
        self.serve_args = list(serve_args)
        self.tmp = tempfile.mkdtemp(prefix="gm-bench-redirect-")
        self.serve = None
        self.lock = None
        self.visitors = []
        self.children = []

    def spawn(self, *argv, **kw):
        p = subprocess.Popen(list(argv), **kw)
        self.children.append(p)
        return p

    def __enter__(self):
        self.lock = open(LOCK, "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self._up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _up(self):
        sh(G, "lab", "down", check=False)
        sh(G, "twin", "destroy", "--api", API, check=False)
        sh(G, "lab", "up", "--topology", os.path.join(ROOT, "topologies/office.toml"))
        # The lock file descriptor must not leak into the daemon.
        self.serve = subprocess.Popen([G, "serve", "--api", API, "--data", self.tmp + "/data"] + self.serve_args,
                                      stdout=subprocess.DEVNULL, stderr=open(self.tmp + "/serve.log", "w"),
                                      close_fds=True)
        for _ in range(100):
            try:
                if len(req("GET", "/api/v1/switches")[1]) >= 2:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        self.wait_identified()
        sh(G, "twin", "build", "--api", API)
        for i in range(self.n_visitors):
            ip = f"10.10.2.{100 + i}"
            ns = sh(G, "lab", "visitor", f"v{i}", "--switch", "sw2", "--segment", "workstations", "--ip", ip).stdout.strip()
            self.visitors.append((ns, ip))
        if self.n_crowd:
            parent_ns = sh(G, "lab", "visitor", "crowd", "--switch", "sw2", "--segment", "workstations", "--ip",
                           "10.10.2.149").stdout.strip()
            self.crowd_parent = parent_ns
            for i in range(self.n_crowd):
                ns, ip = f"gm-bench-c{i}", f"10.10.2.{150 + i}"
                sh("ip", "netns", "del", ns, check=False)
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", parent_ns, "link", "add", "link", "eth0", "name", f"mv{i}", "address",
                   f"02:67:63:00:{i // 256:02x}:{i % 256:02x}", "type", "macvlan", "mode", "bridge")
                sh("ip", "-n", parent_ns, "link", "set", f"mv{i}", "netns", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", f"mv{i}", "up")
                sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", f"mv{i}")
                sh("ip", "-n", ns, "route", "add", "default", "via", "10.10.2.1")
                self.crowd.append((ns, ip))
        deadline = time.time() + 90
        while time.time() < deadline:
            inv = req("GET", "/api/v1/inventory")[1]
            known = {i for h in inv["hosts"] if h.get("switch") for i in h["ips"]}
            missing = [(ns, ip) for ns, ip in self.visitors + self.crowd if ip not in known]
            if not missing:
                break
            for ns, _ in missing:
                sh("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "10.10.2.1", check=False)
        # Discovery probes every new host (sweeps, banner grabs): let it settle,
        # or the first measurements see a busy controller.
        last, until = None, time.time() + 120
        while time.time() < until:
            n = len(req("GET", "/api/v1/inventory/history?limit=100000")[1])
            if n == last:
                break
            last = n
            time.sleep(10)
        # And until the production switch is quiet (discovery's probes of the new hosts done).
        until = time.time() + 90
        while True:
            c0 = vswitchd_cpu_s()
            time.sleep(5)
            self.idle_cpu = round((vswitchd_cpu_s() - c0) / 5, 3)
            if self.idle_cpu < 0.25 or time.time() > until:
                break

    def wait_identified(self, timeout=90):
        """Until every lab host's services have a product (the twin's decoys need them)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            inv = req("GET", "/api/v1/inventory")[1]
            hosts = [h for h in inv.get("hosts", []) if h.get("switch")]
            web = [h for h in hosts if WEB01 in h.get("ips", [])]
            web_ports = {s["port"] for h in web for s in h.get("services", []) if s.get("product")}
            if (len(hosts) >= 8 and all(h.get("hostname") for h in hosts)
                    and all(s.get("product") for h in hosts for s in h.get("services", []) if s.get("proto") == "tcp")
                    and {22, 80} <= web_ports):
                return
            time.sleep(1)

    def __exit__(self, *exc):
        for p in self.children:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns, _ in self.crowd:
            sh("ip", "netns", "del", ns, check=False)
        sh(G, "twin", "destroy", "--api", API, check=False)
        if self.serve is not None:
            self.serve.terminate()
            try:
                self.serve.wait(10)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        sh(G, "lab", "down", check=False)
        if self.lock is not None:
            self.lock.close()
        return False
