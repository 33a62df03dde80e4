//! The decoy event channel of a QEMU twin host: how the events of decoys in
//! a virtual machine that has no network path to this machine reach the
//! controller.
//!
//! Inside the guest, decoys send their events as everywhere: one JSON object
//! per datagram to a Unix socket (`/gm/events.sock`). `gemelo-decoy relay
//! guest` (a launch of the guest's init) binds that socket and writes each
//! event as one line to a virtio-serial port named `PORT`. The port is a
//! libvirt `<channel type='unix'>`: its other end is a Unix socket in the
//! host dir on this machine (`CHANNEL_FILE`), not a network device, so the
//! guest still reaches nothing but the twin bridge. There, `gemelo-decoy
//! relay host` (one process per guest, `relay`) reads the lines and sends
//! each as a datagram to the controller's event socket.
//!
//! A guest may be the attacker's, so what comes out of it is vetted here
//! (`vet`): a line longer than `MAX_LINE` is dropped whole; a line must be a
//! JSON object of `kind` "decoy" with an `action` the emulation makes
//! (`ACTIONS`; never `login`, so a guest cannot feed the login detectors
//! and get a production address redirected), a `peer` that is an IP address
//! (with or without a port), and a short `protocol` name. The event sent on
//! is rebuilt from those fields and `data`, with `twin_host` (the channel
//! says which guest it is) and `time` (this machine's clock) stamped by the
//! relay. At most `RATE` events a second pass (bursts of `BURST`); the rest
//! are counted in the relay's log.
//!
//! The host relay outlives controller restarts: it sends to the socket's
//! path, which a restarted controller binds again, and keeps up to `QUEUE`
//! events while none listens. It ends when its guest does (QEMU closes the
//! channel).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

/// The virtio-serial port's name (the guest finds its device by it).
pub const PORT: &str = "org.gemelo.events.0";
/// The channel's socket on this machine, in the host dir.
pub const CHANNEL_FILE: &str = "events.channel";
/// Where the guest's decoys send their events.
pub const GUEST_SOCKET: &str = "/gm/events.sock";
/// Longest line (event) carried, newline included; the decoys' events are
/// at most `decoy::events::MAX_EVENT` and the controller takes 64 KiB.
pub const MAX_LINE: usize = 62 * 1024;
/// Actions the decoy emulation makes (banner, http, modbus, snmp).
pub const ACTIONS: [&str; 5] = ["connect", "data", "request", "read", "write"];
/// Longest `protocol` name (a service name of the plan).
const MAX_PROTOCOL: usize = 32;
/// Events a second the host relay passes on, and its burst.
pub const RATE: f64 = 200.0;
pub const BURST: f64 = 2000.0;
/// Events the host relay keeps while the controller does not listen.
pub const QUEUE: usize = 4096;
/// How long the relays wait for their ends to appear.
const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// Splits a byte stream into lines of at most `MAX_LINE` bytes; a longer
/// line is dropped whole, up to its newline.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
    discarding: bool,
    /// Lines dropped for their length.
    pub overlong: u64,
}

impl Lines {
    /// The complete lines in `bytes` (with what came before), without
    /// their newline.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (chunk, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.discarding {
                if self.pending.len() + chunk.len() < MAX_LINE {
                    self.pending.extend_from_slice(chunk);
                } else {
                    self.pending.clear();
                    self.discarding = true;
                    self.overlong += 1;
                }
            }
            if ended {
                if !self.discarding {
                    out.push(std::mem::take(&mut self.pending));
                }
                self.discarding = false;
            }
        }
        out
    }
}

/// The line the guest relay writes for one datagram: the event without
/// its trailing line break, then one `\n`; `None` for an empty or
/// multi-line datagram, or one too long to carry.
pub fn frame(datagram: &[u8]) -> Option<Vec<u8>> {
    let mut end = datagram.len();
    while end > 0 && matches!(datagram[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let line = &datagram[..end];
    if line.is_empty() || line.contains(&b'\n') || line.len() + 1 > MAX_LINE {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(line);
    out.push(b'\n');
    Some(out)
}

/// Why a line from a guest was not passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a JSON object")]
    NotJson,
    #[error("kind is not \"decoy\"")]
    NotDecoy,
    #[error("no valid {0}")]
    Field(&'static str),
    #[error("action {0:?} is not one the emulation makes")]
    Action(String),
    #[error("too long once stamped")]
    TooLong,
}

/// The event a guest's line stands for, as it goes to the controller:
/// rebuilt from the fields decoy events have, stamped with `twin_host` and
/// `now`.
pub fn vet(line: &[u8], twin_host: &str, now: SystemTime) -> Result<Vec<u8>, Refused> {
    let v: Value = serde_json::from_slice(line).map_err(|_| Refused::NotJson)?;
    let obj = v.as_object().ok_or(Refused::NotJson)?;
    if obj.get("kind").and_then(Value::as_str) != Some("decoy") {
        return Err(Refused::NotDecoy);
    }
    let action = obj
        .get("action")
        .and_then(Value::as_str)
        .ok_or(Refused::Field("action"))?;
    if !ACTIONS.contains(&action) {
        return Err(Refused::Action(action.chars().take(64).collect()));
    }
    let protocol = obj
        .get("protocol")
        .and_then(Value::as_str)
        .filter(|p| {
            !p.is_empty()
                && p.len() <= MAX_PROTOCOL
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .ok_or(Refused::Field("protocol"))?;
    let peer = obj
        .get("peer")
        .and_then(Value::as_str)
        .filter(|p| p.parse::<SocketAddr>().is_ok() || p.parse::<IpAddr>().is_ok())
        .ok_or(Refused::Field("peer"))?;
    let data = match obj.get("data") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(d) => d.clone(),
    };
    let event = crate::decoy::events::decoy_event(now, twin_host, peer, protocol, action, data);
    let bytes = serde_json::to_vec(&event).map_err(|_| Refused::NotJson)?;
    if bytes.len() > MAX_LINE {
        return Err(Refused::TooLong);
    }
    Ok(bytes)
}

/// A token bucket: `rate` a second, at most `burst` at once.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(rate: f64, burst: f64, now: Instant) -> RateLimit {
        RateLimit {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The device of the virtio-serial port named `name` (`vport1p1`), as
/// the kernel lists ports under `SYSFS/class/virtio-ports`.
pub fn find_port(sysfs: &Path, name: &str) -> Option<String> {
    let dir = sysfs.join("class/virtio-ports");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let named = std::fs::read_to_string(e.path().join("name")).ok()?;
        (named.trim() == name).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

fn waited<T>(what: &str, mut attempt: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = Instant::now() + CONNECT_WAIT;
    loop {
        match attempt() {
            Ok(x) => return Ok(x),
            Err(e) if Instant::now() > deadline => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{what} within {} s: {e}", CONNECT_WAIT.as_secs()),
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// In the guest: events from `socket` to the port `port`, until killed.
pub fn run_guest(socket: &Path, port: &str) -> io::Result<()> {
    run_guest_in(socket, port, Path::new("/sys"), Path::new("/dev"))
}

/// `run_guest` with the kernel's lists and devices under `sysfs` and `dev`.
pub fn run_guest_in(socket: &Path, port: &str, sysfs: &Path, dev: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let sock = UnixDatagram::bind(socket)?;
    let device = waited(&format!("virtio-serial port {port}"), || {
        find_port(sysfs, port)
            .map(|d| dev.join(d))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not listed in sysfs"))
    })?;
    let open = || std::fs::OpenOptions::new().write(true).open(&device);
    let mut out = open()?;
    eprintln!("relaying {} to {}", socket.display(), device.display());
    let mut buf = vec![0u8; MAX_LINE + 1];
    loop {
        let n = sock.recv(&mut buf)?;
        let Some(line) = frame(&buf[..n]) else {
            continue;
        };
        // Blocks while nobody on the machine reads the channel.
        if let Err(e) = out.write_all(&line) {
            eprintln!("{}: {e}; reopening", device.display());
            std::thread::sleep(Duration::from_secs(1));
            out = open()?;
        }
    }
}

/// What the host relay passed on and did not, for its log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    sent: u64,
    refused: u64,
    over_rate: u64,
    queue_full: u64,
    unsendable: u64,
}

/// Sends queued events to `events`, oldest first, while the controller
/// takes them.
fn flush(out: &UnixDatagram, events: &Path, queue: &mut VecDeque<Vec<u8>>, tally: &mut Tally) {
    while let Some(ev) = queue.front() {
        match out.send_to(ev, events) {
            Ok(_) => tally.sent += 1,
            // Its queue is full, or no controller listens (yet, again): later.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                return
            }
            Err(_) => tally.unsendable += 1,
        }
        queue.pop_front();
    }
}

/// On this machine: the guest `twin_host`'s events from its channel socket
/// to the controller's socket `events`, until the guest ends.
pub fn run_host(
    channel: &Path,
    twin_host: &str,
    events: &Path,
    pidfile: Option<&Path>,
) -> io::Result<()> {
    let mut stream = waited(&format!("channel {}", channel.display()), || {
        UnixStream::connect(channel)
    })?;
    stream.set_read_timeout(Some(Duration::from_millis(250)))?;
    let out = UnixDatagram::unbound()?;
    out.set_nonblocking(true)?;
    if let Some(p) = pidfile {
        // Written once the channel is open: the backend waits for it.
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
        std::fs::rename(&tmp, p)?;
    }
    eprintln!(
        "relaying {}'s events from {} to {}",
        twin_host,
        channel.display(),
        events.display()
    );
    let mut lines = Lines::default();
    let mut limit = RateLimit::new(RATE, BURST, Instant::now());
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut tally = Tally::default();
    let mut logged = (Tally::default(), Instant::now(), 0u64);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                flush(&out, events, &mut queue, &mut tally);
                eprintln!("the guest closed its channel: {tally:?}");
                return Ok(());
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        for line in lines.push(&buf[..n]) {
            match vet(&line, twin_host, SystemTime::now()) {
                Err(why) => {
                    if tally.refused < 20 {
                        eprintln!("refused a line from the guest: {why}");
                    }
                    tally.refused += 1;
                }
                Ok(_) if !limit.allow(now) => tally.over_rate += 1,
                Ok(_) if queue.len() >= QUEUE => tally.queue_full += 1,
                Ok(ev) => queue.push_back(ev),
            }
        }
        flush(&out, events, &mut queue, &mut tally);
        let dropped = |t: &Tally| (t.refused, t.over_rate, t.queue_full, t.unsendable);
        let overlong_before = logged.2;
        if (dropped(&tally) != dropped(&logged.0) || lines.overlong != overlong_before)
            && logged.1.elapsed() > Duration::from_secs(60)
        {
            eprintln!("{tally:?}, overlong lines {}", lines.overlong);
            logged = (tally.clone(), Instant::now(), lines.overlong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::net::UnixListener;

    /// As the decoy sent it from the guest (`EventSink`), newline included.
    const FTP_CONNECT: &str = "{\"time\":\"2026-11-26T02:00:00.000001Z\",\"kind\":\"decoy\",\"twin_host\":\"vm1\",\"peer\":\"10.78.1.1:40312\",\"protocol\":\"ftp\",\"action\":\"connect\",\"data\":{}}\n";

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gm-channel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn lines_are_split_across_reads_and_overlong_ones_dropped_whole() {
        let mut l = Lines::default();
        assert!(l.push(b"{\"a\":").is_empty());
        assert_eq!(
            l.push(b"1}\n{\"b\":2}\n{\"c\""),
            [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
        assert_eq!(l.push(b":3}\n"), [b"{\"c\":3}".to_vec()]);
        // A line of MAX_LINE bytes (newline excluded) is too long, in one
        // read or in several; the next line is whole again.
        let long = vec![b'x'; MAX_LINE];
        assert!(l.push(&long[..100]).is_empty());
        assert!(l.push(&long[100..]).is_empty());
        assert!(l.push(b"yyy").is_empty());
        assert_eq!(l.push(b"\nok\n"), [b"ok".to_vec()]);
        assert_eq!(l.overlong, 1);
        let mut fits = vec![b'z'; MAX_LINE - 1];
        fits.push(b'\n');
        assert_eq!(l.push(&fits).len(), 1);
        assert_eq!(l.push(b"\n\n"), [Vec::<u8>::new(), Vec::new()]);
    }

    #[test]
    fn the_guest_frames_one_line_per_event() {
        assert_eq!(
            frame(FTP_CONNECT.as_bytes()).unwrap(),
            FTP_CONNECT.as_bytes()
        );
        assert_eq!(frame(b"{}\r\n").unwrap(), b"{}\n");
        assert_eq!(frame(b"{}").unwrap(), b"{}\n");
        assert_eq!(frame(b"\n"), None);
        assert_eq!(frame(b"{\"a\":1}\n{\"b\":2}\n"), None);
        assert_eq!(frame(&vec![b'x'; MAX_LINE]), None);
        assert!(frame(&vec![b'x'; MAX_LINE - 1]).is_some());
    }

    #[test]
    fn a_decoy_event_is_passed_on_stamped_by_the_relay() {
        let ev = vet(FTP_CONNECT.trim_end().as_bytes(), "vm1", at(1_795_650_218)).unwrap();
        assert_eq!(
            String::from_utf8(ev).unwrap(),
            "{\"action\":\"connect\",\"data\":{},\"kind\":\"decoy\",\"peer\":\"10.78.1.1:40312\",\"protocol\":\"ftp\",\"time\":\"2026-11-25T23:43:38.000000Z\",\"twin_host\":\"vm1\"}"
        );
    }

    #[test]
    fn a_guest_cannot_claim_another_host_a_login_or_a_bad_peer() {
        let ok = |line: &str| vet(line.as_bytes(), "vm1", at(0));
        let forged = FTP_CONNECT.replace("\"twin_host\":\"vm1\"", "\"twin_host\":\"web1\"");
        let v: Value = serde_json::from_slice(&ok(&forged).unwrap()).unwrap();
        assert_eq!(v["twin_host"], "vm1", "the channel names the host");
        assert_eq!(
            v["time"], "1970-01-01T00:00:00.000000Z",
            "this machine's clock"
        );
        let extra = FTP_CONNECT.replace("\"data\":{}", "\"data\":{\"x\":1},\"redirect\":true");
        let v: Value = serde_json::from_slice(&ok(&extra).unwrap()).unwrap();
        assert_eq!(
            v.as_object().unwrap().len(),
            7,
            "only the event's own fields: {v}"
        );
        assert_eq!(v["data"]["x"], 1);
        let login = FTP_CONNECT.replace("\"connect\"", "\"login\"");
        assert_eq!(ok(&login), Err(Refused::Action("login".into())));
        for (from, to, field) in [
            ("\"10.78.1.1:40312\"", "\"somewhere\"", "peer"),
            ("\"10.78.1.1:40312\"", "42", "peer"),
            ("\"ftp\"", "\"f t p\"", "protocol"),
            ("\"ftp\"", "\"\"", "protocol"),
        ] {
            assert_eq!(
                ok(&FTP_CONNECT.replace(from, to)),
                Err(Refused::Field(field)),
                "{to}"
            );
        }
        assert!(ok(&FTP_CONNECT.replace("\"10.78.1.1:40312\"", "\"fe80::1\"")).is_ok());
        assert!(ok(&FTP_CONNECT.replace("\"10.78.1.1:40312\"", "\"10.78.1.1\"")).is_ok());
        assert_eq!(
            ok(&FTP_CONNECT.replace("\"decoy\"", "\"alert\"")),
            Err(Refused::NotDecoy)
        );
        assert_eq!(ok("[1,2]"), Err(Refused::NotJson));
        assert_eq!(ok("{\"kind\":\"decoy\""), Err(Refused::NotJson));
        assert_eq!(ok("\u{0}\u{ff}"), Err(Refused::NotJson));
        let no_action = FTP_CONNECT.replace("\"action\":\"connect\",", "");
        assert_eq!(ok(&no_action), Err(Refused::Field("action")));
    }

    #[test]
    fn the_rate_is_bounded_with_a_burst() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(10.0, 5.0, t0);
        assert_eq!((0..8).filter(|_| r.allow(t0)).count(), 5);
        assert!(r.allow(t0 + Duration::from_millis(100)));
        assert!(!r.allow(t0 + Duration::from_millis(100)));
        assert_eq!(
            (0..20)
                .filter(|_| r.allow(t0 + Duration::from_secs(60)))
                .count(),
            5
        );
    }

    #[test]
    fn ports_are_found_by_name() {
        let sys = temp("sysfs");
        for (dev, name) in [("vport0p0", "org.qemu.guest_agent.0"), ("vport1p1", PORT)] {
            let d = sys.join("class/virtio-ports").join(dev);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(find_port(&sys, PORT).as_deref(), Some("vport1p1"));
        assert_eq!(find_port(&sys, "other"), None);
        assert_eq!(find_port(&sys.join("nothing"), PORT), None);
        std::fs::remove_dir_all(&sys).unwrap();
    }

    /// The guest relay writes each datagram as a line to the port's device
    /// (a plain file here).
    #[test]
    fn the_guest_relay_writes_datagrams_as_lines() {
        let d = temp("guest");
        let sys = d.join("sys");
        std::fs::create_dir_all(sys.join("class/virtio-ports/vport1p1")).unwrap();
        std::fs::write(sys.join("class/virtio-ports/vport1p1/name"), PORT).unwrap();
        std::fs::create_dir_all(d.join("dev")).unwrap();
        let port = d.join("dev/vport1p1");
        std::fs::write(&port, b"").unwrap();
        let socket = d.join("events.sock");
        let (s, sys2, dev) = (socket.clone(), sys.clone(), d.join("dev"));
        std::thread::spawn(move || run_guest_in(&s, PORT, &sys2, &dev));
        let tx = UnixDatagram::unbound().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tx.send_to(FTP_CONNECT.as_bytes(), &socket).is_err() {
            assert!(Instant::now() < deadline, "the relay binds its socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        tx.send_to(b"{\"a\":1}\n{\"b\":2}\n", &socket).unwrap();
        tx.send_to(b"{\"c\":3}", &socket).unwrap();
        let want = format!("{FTP_CONNECT}{{\"c\":3}}\n");
        while std::fs::read_to_string(&port).unwrap() != want {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                std::fs::read_to_string(&port)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The relay's thread stays in recv until the test process ends.
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The host relay against a channel socket as QEMU offers it: vetted
    /// events reach the controller's socket, also one that binds late; the
    /// relay ends with its guest.
    #[test]
    fn the_host_relay_vets_queues_and_ends_with_the_guest() {
        let d = temp("host");
        let channel = d.join(CHANNEL_FILE);
        let events = d.join("events.sock");
        let pidfile = d.join("relay.pid");
        let qemu = UnixListener::bind(&channel).unwrap();
        let (c, e, p) = (channel.clone(), events.clone(), pidfile.clone());
        let relay = std::thread::spawn(move || run_host(&c, "vm1", &e, Some(&p)));
        let (mut guest, _) = qemu.accept().unwrap();
        // No controller yet: the first event waits in the queue.
        guest.write_all(FTP_CONNECT.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let controller = UnixDatagram::bind(&events).unwrap();
        controller
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let login = FTP_CONNECT.replace("\"connect\"", "\"login\"");
        let forged = FTP_CONNECT
            .replace("\"vm1\"", "\"web1\"")
            .replace("\"connect\"", "\"data\"");
        let mut overlong = vec![b'x'; MAX_LINE + 10];
        overlong.push(b'\n');
        guest.write_all(login.as_bytes()).unwrap();
        guest.write_all(b"not json\n").unwrap();
        guest.write_all(&overlong).unwrap();
        guest.write_all(forged.as_bytes()).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        for _ in 0..2 {
            let n = controller.recv(&mut buf).expect("an event");
            got.push(serde_json::from_slice::<Value>(&buf[..n]).unwrap());
        }
        assert_eq!(
            (&got[0]["action"], &got[0]["twin_host"]),
            (&json!("connect"), &json!("vm1"))
        );
        assert_eq!(
            (&got[1]["action"], &got[1]["twin_host"]),
            (&json!("data"), &json!("vm1"))
        );
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(guest);
        relay
            .join()
            .unwrap()
            .expect("the relay ends cleanly with its guest");
        controller
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(controller.recv(&mut buf).is_err(), "nothing else passed");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
