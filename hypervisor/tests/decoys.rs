//! Decoys against real clients: the Modbus emulation read and written by
//! `mbpoll` (and byte for byte against discovery's capture of the lab PLC), the
//! HTTP emulation fetched by `curl`, the banner decoy talked to with `nc`, their
//! events on a datagram socket; and, as root, sshd started from the generated
//! config in a throwaway namespace `gm-decoytest`, checked with `nmap
//! --script ssh2-enum-algos` and a login to the persona shell.
//!
//! Unprivileged parts bind 127.0.0.1 only. Everything is cleaned up by PID and
//! by the names this test made (`gm-decoytest`, `/tmp/gemelo-decoytest-*`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gemelo_hypervisor::decoy::{self, DecoyFile, Installed};
use gemelo_hypervisor::{DecoyMode, DecoySpec};
use serde_json::{json, Value};

struct TmpDir(PathBuf);
impl TmpDir {
    fn new(tag: &str) -> TmpDir {
        let p = PathBuf::from(format!(
            "/tmp/gemelo-decoytest-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TmpDir(p)
    }
}
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn spec(port: u16, name: &str, banner: Option<&str>, details: Value) -> DecoySpec {
    DecoySpec {
        port,
        proto: "tcp".into(),
        name: name.into(),
        product: None,
        version: None,
        banner: banner.map(str::to_string),
        mode: DecoyMode::Emulated,
        details,
    }
}

/// What discovery's probe wrote for the lab PLC (pymodbus 3.0, Debian 12).
fn plc_details() -> Value {
    json!({
        "unit_id": 1, "vendor": "Acme Automation",
        "device_id": {"vendor_name": "Acme Automation", "product_code": "5000", "revision": "2.1",
            "vendor_url": "http://example.net/", "product_name": "PLC 5000", "model_name": "PLC 5000"},
        "device_id_objects_hex": {"0": "41636d65204175746f6d6174696f6e", "1": "35303030", "2": "322e31",
            "3": "687474703a2f2f6578616d706c652e6e65742f", "4": "504c432035303030", "5": "504c432035303030"},
        "conformity_level": 131, "device_id_error": null,
        "holding_registers": [
            {"start": 0, "count": 16, "values": [100, 100, 1450, 327, 19, 0, 0, 0, 12, 34, 56, 78, 0, 0, 0, 1]},
            {"start": 100, "count": 16, "exception": 2}]
    })
}

/// An SSH capture: the KEXINIT payload of Debian 12's sshd (the probe's
/// OPENSSH_DEBIAN12 capture, built here from its lists) under an older id line.
fn ssh_details() -> Value {
    let lists: [&[&str]; 10] = [
        &[
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "diffie-hellman-group14-sha256",
        ],
        &[
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
            "ecdsa-sha2-nistp256",
            "ssh-ed25519",
        ],
        &[
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes256-gcm@openssh.com",
        ],
        &[
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes256-gcm@openssh.com",
        ],
        &["umac-64-etm@openssh.com", "hmac-sha2-256", "hmac-sha1"],
        &["umac-64-etm@openssh.com", "hmac-sha2-256", "hmac-sha1"],
        &["none", "zlib@openssh.com"],
        &["none", "zlib@openssh.com"],
        &[],
        &[],
    ];
    let mut payload = vec![20u8];
    payload.extend_from_slice(&[0x6b; 16]);
    for l in lists {
        let s = l.join(",");
        payload.extend_from_slice(&(s.len() as u32).to_be_bytes());
        payload.extend_from_slice(s.as_bytes());
    }
    payload.extend_from_slice(&[0, 0, 0, 0, 0]);
    json!({"proto_version": "2.0", "software": "OpenSSH_8.4p1", "comments": "Debian-5+deb11u3", "kexinit_hex": hex(&payload),
        "kex_algorithms": lists[0], "server_host_key_algorithms": lists[1],
        "encryption_algorithms_server_to_client": lists[3], "mac_algorithms_server_to_client": lists[5]})
}

/// The probe's capture of Debian 12 lighttpd 1.4.69 (`http.rs` test), as text.
const LIGHTTPD_CAPTURE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"1615797867\"\r\nLast-Modified: Wed, 25 Nov 2026 18:40:34 GMT\r\nContent-Length: 69\r\nAccept-Ranges: bytes\r\nConnection: close\r\nDate: Wed, 25 Nov 2026 18:40:47 GMT\r\nServer: lighttpd/1.4.69\r\n\r\n<html><head><title>Plant HMI</title></head><body>hello</body></html>\n";

fn lighttpd_details() -> Value {
    json!({
        "http_version": "HTTP/1.1", "status": 200, "reason": "OK",
        "headers": [["Content-Type", "text/html"], ["ETag", "\"1615797867\""], ["Last-Modified", "Wed, 25 Nov 2026 18:40:34 GMT"],
            ["Content-Length", "69"], ["Accept-Ranges", "bytes"], ["Connection", "close"], ["Date", "Wed, 25 Nov 2026 18:40:47 GMT"],
            ["Server", "lighttpd/1.4.69"]],
        "title": "Plant HMI", "body": "<html><head><title>Plant HMI</title></head><body>hello</body></html>\n",
        "body_encoding": "utf-8", "body_len": 69, "body_truncated": false
    })
}

/// One Modbus/TCP exchange on a fresh connection.
fn modbus_exchange(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&unhex(request)).unwrap();
    let mut buf = [0u8; 300];
    let mut got = Vec::new();
    while got.len() < 6 || got.len() < 6 + u16::from_be_bytes([got[4], got[5]]) as usize {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {}", hex(&got));
        got.extend_from_slice(&buf[..n]);
    }
    hex(&got)
}

/// `mbpoll` reading `count` holding registers from PDU address `addr`: the values.
fn mbpoll_read(port: u16, addr: u16, count: u16) -> Result<Vec<u16>, String> {
    let out = Command::new("mbpoll")
        .args(["-m", "tcp", "-a", "1", "-0", "-t", "4", "-1", "-o", "2"])
        .args([
            "-r",
            &addr.to_string(),
            "-c",
            &count.to_string(),
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let values: Vec<u16> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('['))
        .filter_map(|l| l.split_once("]:"))
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect();
    if values.len() == count as usize {
        Ok(values)
    } else {
        Err(text)
    }
}

/// Reads events in the background, as forensics would.
struct EventReader(std::sync::Arc<std::sync::Mutex<Vec<Value>>>);
impl EventReader {
    fn start(rx: UnixDatagram) -> EventReader {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = rx.recv(&mut buf) {
                s.lock()
                    .unwrap()
                    .push(serde_json::from_slice::<Value>(&buf[..n]).unwrap());
            }
        });
        EventReader(seen)
    }
    fn take(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(300));
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[test]
fn emulated_decoys_answer_like_the_capture() {
    let dir = TmpDir::new("emu");
    let events = dir.0.join("events.sock");
    let reader = EventReader::start(UnixDatagram::bind(&events).unwrap());
    let (mb, web, ftp, ssh) = (free_port(), free_port(), free_port(), free_port());
    let file = DecoyFile {
        twin_host: "plc1".into(),
        hostname: "plc-gw-01".into(),
        services: vec![
            spec(mb, "modbus", None, plc_details()),
            spec(
                web,
                "http",
                Some("HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.69"),
                lighttpd_details(),
            ),
            spec(
                ftp,
                "ftp",
                Some("220 (vsFTPd 3.0.3)\r\n"),
                json!({"greeting_hex": "323230202876734654506420332e302e33290d0a", "replies": [
                    {"command": "SYST", "reply": "215 UNIX Type: L8\r\n"},
                    {"command": "FEAT", "reply": "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n211 End\r\n"},
                    {"command": "QUIT", "reply": "221 Goodbye.\r\n"}]}),
            ),
            // An SSH release this machine cannot run: the banner decoy with the captured KEXINIT.
            spec(
                ssh,
                "ssh",
                Some("SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3"),
                ssh_details(),
            ),
        ],
    };
    let spec_path = dir.0.join("decoy-spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&file).unwrap()).unwrap();
    let (s2, e2) = (spec_path.clone(), events.clone());
    // Serves until the test process ends.
    std::thread::spawn(move || decoy::run_decoy_at(&s2, &e2, "127.0.0.1".parse().unwrap()));
    for p in [mb, web, ftp, ssh] {
        wait_port(p);
    }

    // Modbus, byte for byte against the probe's captures of the lab PLC.
    assert_eq!(
        modbus_exchange(mb, "000100000005012b0e0100"),
        "000100000024012b0e0183000003000f41636d65204175746f6d6174696f6e0104353030300203322e31"
    );
    assert_eq!(
        modbus_exchange(mb, "000100000005012b0e0200"),
        "00010000004d012b0e0283000006000f41636d65204175746f6d6174696f6e0104353030300203322e310313687474703a2f2f6578616d706c652e6e65742f0408504c4320353030300508504c432035303030"
    );
    assert_eq!(
        modbus_exchange(mb, "000200000006010300000010"),
        "0002000000230103200064006405aa01470013000000000000000c00220038004e0000000000000001"
    );
    assert_eq!(
        modbus_exchange(mb, "000300000006010300640010"),
        "000300000003018302"
    );
    // ... and with the real mbpoll client.
    let values = mbpoll_read(mb, 0, 16).unwrap();
    eprintln!("mbpoll read 0..16: {values:?}");
    assert_eq!(
        values,
        [100, 100, 1450, 327, 19, 0, 0, 0, 12, 34, 56, 78, 0, 0, 0, 1]
    );
    let err = mbpoll_read(mb, 100, 4).unwrap_err();
    eprintln!(
        "mbpoll read 100..104: {}",
        err.lines()
            .filter(|l| l.contains("rror") || l.contains("llegal"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(err.contains("Illegal data address"), "{err}");
    let w = run(Command::new("mbpoll").args([
        "-m",
        "tcp",
        "-a",
        "1",
        "-0",
        "-t",
        "4",
        "-r",
        "3",
        "-p",
        &mb.to_string(),
        "127.0.0.1",
        "4660",
        "17",
    ]));
    assert!(w.contains("Written 2 references"), "{w}");
    run(Command::new("mbpoll").args([
        "-m",
        "tcp",
        "-a",
        "1",
        "-0",
        "-t",
        "4",
        "-r",
        "9",
        "-p",
        &mb.to_string(),
        "127.0.0.1",
        "999",
    ]));
    let after = mbpoll_read(mb, 0, 16).unwrap();
    eprintln!("mbpoll after writes: {after:?}");
    assert_eq!(
        after,
        [100, 100, 1450, 4660, 17, 0, 0, 0, 12, 999, 56, 78, 0, 0, 0, 1]
    );

    // HTTP with curl: identical to the capture but for a fresh Date.
    let got = run(Command::new("curl").args([
        "-s",
        "-i",
        "--max-time",
        "3",
        &format!("http://127.0.0.1:{web}/"),
    ]));
    let strip_date = |s: &str| {
        s.split("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    assert_eq!(strip_date(&got), strip_date(LIGHTTPD_CAPTURE));
    let date = got
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap();
    assert!(
        httpdate::parse_http_date(date).unwrap()
            > httpdate::parse_http_date("Wed, 25 Nov 2026 18:40:47 GMT").unwrap(),
        "a fresh Date: {date}"
    );
    let code = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
        &format!("http://127.0.0.1:{web}/admin/login.php"),
    ]));
    assert_eq!(code, "404");

    // The FTP banner decoy with nc: the greeting, then the captured replies.
    let mut nc = Command::new("nc")
        .args(["-q", "1", "-w", "3", "127.0.0.1", &ftp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    nc.stdin
        .take()
        .unwrap()
        .write_all(b"SYST\r\nUSER anonymous\r\nQUIT\r\n")
        .unwrap();
    let out = nc.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("nc to the FTP banner decoy:\n{text}");
    assert_eq!(
        text,
        "220 (vsFTPd 3.0.3)\r\n215 UNIX Type: L8\r\n221 Goodbye.\r\n"
    );

    // The SSH banner decoy, as nmap's ssh2-enum-algos sees it: the captured lists.
    let out = run(Command::new("nmap").args([
        "-Pn",
        "-n",
        "-sV",
        "--version-light",
        "-p",
        &ssh.to_string(),
        "--script",
        "ssh2-enum-algos",
        "127.0.0.1",
    ]));
    let lists = parse_nmap_lists(&out);
    eprintln!(
        "nmap on the emulated SSH: {}",
        out.lines().find(|l| l.contains("/tcp")).unwrap_or("")
    );
    let d = ssh_details();
    assert_eq!(json!(lists["kex_algorithms"]), d["kex_algorithms"]);
    assert_eq!(
        json!(lists["server_host_key_algorithms"]),
        d["server_host_key_algorithms"]
    );
    assert_eq!(
        json!(lists["encryption_algorithms"]),
        d["encryption_algorithms_server_to_client"]
    );
    assert_eq!(
        json!(lists["mac_algorithms"]),
        d["mac_algorithms_server_to_client"]
    );
    assert!(out.contains("OpenSSH 8.4p1 Debian 5+deb11u3"), "{out}");

    // Junk never takes a decoy down: after it, every service still answers.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for port in [mb, web, ftp, ssh] {
        for _ in 0..20 {
            let junk: Vec<u8> = (0..2000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(&junk);
            }
        }
    }
    assert_eq!(
        modbus_exchange(mb, "000200000006010300000001"),
        "00020000000501030200".to_string() + "64"
    );
    assert_eq!(
        strip_date(&run(Command::new("curl").args([
            "-s",
            "-i",
            "--max-time",
            "3",
            &format!("http://127.0.0.1:{web}/")
        ]))),
        strip_date(LIGHTTPD_CAPTURE)
    );

    // Events.
    let ev = reader.take();
    eprintln!("{} events", ev.len());
    for e in &ev {
        assert_eq!(e["kind"], "decoy");
        assert_eq!(e["twin_host"], "plc1");
        assert!(e["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    let find = |proto: &str, action: &str| {
        ev.iter()
            .filter(|e| e["protocol"] == proto && e["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    let writes = find("modbus", "write");
    eprintln!(
        "modbus write events: {}",
        serde_json::to_string(&writes.iter().map(|e| &e["data"]).collect::<Vec<_>>()).unwrap()
    );
    assert!(writes.iter().any(|e| e["data"]["function"] == 16
        && e["data"]["address"] == 3
        && e["data"]["values"] == json!([4660, 17])));
    assert!(writes.iter().any(|e| e["data"]["function"] == 6
        && e["data"]["address"] == 9
        && e["data"]["values"] == json!([999])));
    assert!(find("modbus", "read")
        .iter()
        .any(|e| e["data"] == json!({"function": 3, "unit": 1, "address": 100, "count": 4})));
    let reqs = find("http", "request");
    eprintln!("http request event: {}", reqs.last().unwrap());
    assert!(reqs
        .iter()
        .any(|e| e["data"]["path"] == "/admin/login.php" && e["data"]["method"] == "GET"));
    let data: String = find("ftp", "data")
        .iter()
        .filter_map(|e| e["data"]["text"].as_str().map(str::to_string))
        .collect();
    assert!(data.contains("USER anonymous\r\n"), "{data}");
    assert_eq!(
        find("ftp", "connect").len(),
        22,
        "wait_port's connect, nc's and 20 junk ones"
    );
}

fn is_root() -> bool {
    // The effective uid, from /proc (no libc needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(|u| u == "0")
        })
        .unwrap_or(false)
}

const NS: &str = "gm-decoytest";
/// The root tests share the namespace: one at a time.
static NS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Netns;
impl Netns {
    fn new() -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", NS])
            .stderr(Stdio::null())
            .status();
        run(Command::new("ip").args(["netns", "add", NS]));
        run(Command::new("ip").args(["-n", NS, "link", "set", "lo", "up"]));
        Netns
    }
}
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", NS]).status();
    }
}

/// Kills the one process it holds, by PID.
struct Daemon(std::process::Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", NS]).args(args);
    c
}

/// Starts a launch like a netns backend: its files, a private /run, in the namespace.
fn start(launch: &decoy::Launch, dir: &Path) -> Daemon {
    for (path, bytes, mode) in &launch.files {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(*mode))
            .unwrap();
    }
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let log = std::fs::File::create(dir.join(format!("{}.log", launch.name))).unwrap();
    let mut cmd = in_ns(&["sh", "-c", "mount --rbind \"$0\" /run && exec \"$@\""]);
    cmd.arg(dir.join("run"))
        .args(&launch.argv)
        .envs(launch.env.iter().cloned())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    Daemon(cmd.spawn().unwrap())
}

fn nmap_lists(port: u16) -> std::collections::BTreeMap<String, Vec<String>> {
    parse_nmap_lists(&run(&mut in_ns(&[
        "nmap",
        "-Pn",
        "-n",
        "-p",
        &port.to_string(),
        "--script",
        "ssh2-enum-algos",
        "127.0.0.1",
    ])))
}

fn parse_nmap_lists(out: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut lists = std::collections::BTreeMap::new();
    let mut current = None;
    for line in out.lines() {
        let t = line.trim_start_matches(['|', '_', ' ']);
        if let Some((name, _)) = t.split_once(": (") {
            current = Some(name.to_string());
            lists.insert(name.to_string(), Vec::new());
        } else if let (Some(c), true) = (
            &current,
            line.starts_with("|       ") || line.starts_with("|_      "),
        ) {
            lists.get_mut(c).unwrap().push(t.to_string());
        }
    }
    lists
}

#[test]
fn sshd_from_generated_config_matches_the_capture() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespace {NS})");
        return;
    }
    let installed = Installed::detect();
    let Some(software) = installed.sshd_software.clone() else {
        eprintln!("skipped: no sshd here");
        return;
    };
    let _one = NS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TmpDir::new("ssh");
    let _ns = Netns::new();
    let events = dir.0.join("events.sock");
    let reader = EventReader::start(UnixDatagram::bind(&events).unwrap());
    std::fs::set_permissions(&events, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    // Debian 12's capture, with a non-default order and another Debian revision
    // than this machine's, so equality proves the config (not the defaults).
    let kex = [
        "curve25519-sha256",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group14-sha256",
        "sntrup761x25519-sha512@openssh.com",
        "kex-strict-s-v00@openssh.com",
    ];
    let hostkeys = [
        "ecdsa-sha2-nistp256",
        "ssh-ed25519",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ];
    let ciphers = [
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
    ];
    let macs = [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512",
        "umac-128@openssh.com",
    ];
    let details = json!({
        "proto_version": "2.0", "software": software, "comments": "Debian-2+deb12u3",
        "kex_algorithms": kex, "server_host_key_algorithms": hostkeys,
        "encryption_algorithms_client_to_server": ciphers, "encryption_algorithms_server_to_client": ciphers,
        "mac_algorithms_client_to_server": macs, "mac_algorithms_server_to_client": macs,
        "compression_algorithms_client_to_server": ["none", "zlib@openssh.com"],
        "compression_algorithms_server_to_client": ["none", "zlib@openssh.com"],
        "languages_client_to_server": [], "languages_server_to_client": [], "first_kex_packet_follows": false
    });
    let port = 2222;
    let host = gemelo_hypervisor::TwinHost {
        name: "web1".into(),
        mirrors: vec![],
        hostname: "web1".into(),
        interfaces: vec![],
        gateway: None,
        ip_forward: false,
        backend: gemelo_hypervisor::Backend::Netns,
        services: vec![DecoySpec {
            port,
            proto: "tcp".into(),
            name: "ssh".into(),
            product: Some("OpenSSH".into()),
            version: None,
            banner: Some(format!("SSH-2.0-{software} Debian-2+deb12u3")),
            mode: DecoyMode::Daemon {
                product: "OpenSSH".into(),
            },
            details,
        }],
        honeytoken: false,
    };
    let exe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/gemelo");
    let launches = decoy::launches(&host, &dir.0, &exe, &events).unwrap();
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0].name, "sshd");
    let _sshd = start(&launches[0], &dir.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !in_ns(&["nc", "-z", "127.0.0.1", &port.to_string()])
        .status()
        .unwrap()
        .success()
    {
        let log = std::fs::read_to_string(dir.0.join("sshd.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "sshd did not listen:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The identification line.
    let id = run(&mut in_ns(&[
        "sh",
        "-c",
        &format!("printf 'SSH-2.0-x\\r\\n' | nc -w 2 127.0.0.1 {port} | head -c 100 | head -n 1"),
    ]));
    eprintln!("id line: {:?}", id.trim_end());
    assert_eq!(
        id.trim_end(),
        format!("SSH-2.0-{software} Debian-2+deb12u3")
    );
    // The algorithm lists, as nmap sees them.
    let lists = nmap_lists(port);
    eprintln!("nmap ssh2-enum-algos: {lists:#?}");
    assert_eq!(lists["kex_algorithms"], kex);
    assert_eq!(lists["server_host_key_algorithms"], hostkeys);
    assert_eq!(lists["encryption_algorithms"], ciphers);
    assert_eq!(lists["mac_algorithms"], macs);
    assert_eq!(
        lists["compression_algorithms"],
        ["none", "zlib@openssh.com"]
    );
    // Fresh host keys, never anyone else's.
    let fp = run(Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(dir.0.join("ssh/ssh_host_ed25519_key.pub")));
    let machine = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub").unwrap_or_default();
    assert!(!machine.is_empty() || !fp.is_empty());
    assert_ne!(
        std::fs::read_to_string(dir.0.join("ssh/ssh_host_ed25519_key.pub")).unwrap(),
        machine
    );

    // The persona: log in with the bait password, run commands, see events.
    if !exe.exists() {
        eprintln!(
            "persona login skipped: build the gemelo binary first ({})",
            exe.display()
        );
        return;
    }
    let askpass = dir.0.join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\necho {}\n", decoy::persona::PASSWORD),
    )
    .unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = in_ns(&[
        "setsid",
        "-w",
        "ssh",
        "-T",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "ConnectTimeout=5",
        "-p",
        &port.to_string(),
        &format!("{}@127.0.0.1", decoy::persona::USER),
        "whoami; pwd; ls",
    ])
    .env("SSH_ASKPASS", &askpass)
    .env("SSH_ASKPASS_REQUIRE", "force")
    .env("DISPLAY", ":0")
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "ssh admin@twin 'whoami; pwd; ls' → {text:?} (stderr {:?})",
        String::from_utf8_lossy(&out.stderr).lines().last()
    );
    assert_eq!(text, "admin\n/home/admin\nnotes.txt\n");
    let ev = reader.take();
    eprintln!("persona events: {ev:?}");
    assert!(ev.iter().any(|e| e["protocol"] == "shell"
        && e["action"] == "command"
        && e["data"]["command"] == "whoami; pwd; ls"
        && e["peer"].as_str().unwrap().starts_with("127.0.0.1:")));
}

fn wait_listen(proto: &str, port: u16, dir: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = in_ns(&["ss", "-Hln", if proto == "udp" { "-u" } else { "-t" }])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} ")) {
            return;
        }
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {proto} {port}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn other_daemons_from_generated_configs() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespace {NS}-2)");
        return;
    }
    let installed = Installed::detect();
    if !(installed.lighttpd
        && installed.vsftpd
        && installed.snmpd
        && installed.mosquitto
        && installed.telnetd)
    {
        eprintln!("skipped: not every Debian daemon is installed ({installed:?})");
        return;
    }
    let _one = NS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TmpDir::new("daemons");
    let _ns = Netns::new();
    let events = dir.0.join("events.sock");
    let svc = |port: u16,
               proto: &str,
               name: &str,
               product: &str,
               banner: Option<&str>,
               details: Value| DecoySpec {
        port,
        proto: proto.into(),
        name: name.into(),
        product: Some(product.into()),
        version: None,
        banner: banner.map(str::to_string),
        mode: DecoyMode::Daemon {
            product: product.into(),
        },
        details,
    };
    let snmp = json!({"community": "public", "version": "2c",
        "sys_descr": "Linux plc-gw-01 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 x86_64", "sys_object_id": "1.3.6.1.4.1.8072.3.2.10",
        "sys_contact": "netops@example.net", "sys_name": "plc-gw-01", "sys_location": "Hall 3"});
    let mqtt = json!({"accepted": true, "topics": [
        {"topic": "$SYS/broker/version", "payload": "mosquitto version 2.0.11", "encoding": "utf-8"},
        {"topic": "plant/line1/temp", "payload": "{\"host\":\"plc1\",\"seq\":4,\"value\":204}", "encoding": "utf-8"},
        {"topic": "plant/line1/state", "payload": "RUN", "encoding": "utf-8"}]});
    let host = gemelo_hypervisor::TwinHost {
        name: "plc1".into(),
        mirrors: vec![],
        hostname: "plc-gw-01".into(),
        interfaces: vec![],
        gateway: None,
        ip_forward: false,
        backend: gemelo_hypervisor::Backend::Netns,
        services: vec![
            svc(8080, "tcp", "http", "lighttpd", None, lighttpd_details()),
            svc(
                2121,
                "tcp",
                "ftp",
                "vsftpd",
                Some("220 Plant file server ready\r\n"),
                json!({}),
            ),
            svc(
                2323,
                "tcp",
                "telnet",
                "inetutils telnetd",
                None,
                json!({"negotiation_hex": "fffb25fffb26fffd18fffd20fffd23fffd27fffd24"}),
            ),
            svc(1161, "udp", "snmp", "net-snmp", None, snmp),
            svc(1883, "tcp", "mqtt", "Mosquitto", None, mqtt),
        ],
        honeytoken: false,
    };
    let exe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/gemelo");
    let launches = decoy::launches(&host, &dir.0, &exe, &events).unwrap();
    let names: Vec<&str> = launches.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "lighttpd",
            "vsftpd",
            "inetd",
            "snmpd",
            "mosquitto",
            "mqtt-retain"
        ]
    );
    let mut running = Vec::new();
    for l in &launches {
        running.push(start(l, &dir.0));
        for (proto, port) in &l.listens {
            wait_listen(proto, *port, &dir.0, &l.name);
        }
    }

    // lighttpd: the captured body, type, server, last-modified (its own ETag and Date).
    // The same request as discovery's probe (it asks for Connection: close).
    let got = run(&mut in_ns(&[
        "curl",
        "-s",
        "-i",
        "--max-time",
        "3",
        "-H",
        "Connection: close",
        "http://127.0.0.1:8080/",
    ]));
    eprintln!("lighttpd:\n{got}");
    let keep = |s: &str| {
        s.split("\r\n")
            .filter(|l| !l.starts_with("Date: ") && !l.starts_with("ETag: "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(keep(&got), keep(LIGHTTPD_CAPTURE));

    // vsftpd: the captured greeting.
    let greeting = run(&mut in_ns(&[
        "sh",
        "-c",
        "printf 'QUIT\\r\\n' | nc -q 1 -w 3 127.0.0.1 2121",
    ]));
    eprintln!("vsftpd: {greeting:?}");
    assert!(
        greeting.starts_with("220 Plant file server ready\r\n"),
        "{greeting:?}"
    );

    // telnetd under inetd: the captured opening negotiation.
    let first = in_ns(&[
        "sh",
        "-c",
        "sleep 1 | nc -w 2 127.0.0.1 2323 | head -c 21 | od -An -tx1 | tr -d ' \\n'",
    ])
    .output()
    .unwrap();
    let first = String::from_utf8_lossy(&first.stdout);
    eprintln!("telnetd first bytes: {first}");
    assert_eq!(first, "fffb25fffb26fffd18fffd20fffd23fffd27fffd24");

    // snmpd: the captured system group.
    let sys = run(&mut in_ns(&[
        "snmpget",
        "-v2c",
        "-c",
        "public",
        "-On",
        "-Oq",
        "-t",
        "2",
        "127.0.0.1:1161",
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.2.0",
        "1.3.6.1.2.1.1.4.0",
        "1.3.6.1.2.1.1.5.0",
        "1.3.6.1.2.1.1.6.0",
    ]));
    eprintln!("snmpget:\n{sys}");
    assert_eq!(
        sys,
        ".1.3.6.1.2.1.1.1.0 \"Linux plc-gw-01 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 x86_64\"\n.1.3.6.1.2.1.1.2.0 .1.3.6.1.4.1.8072.3.2.10\n\
.1.3.6.1.2.1.1.4.0 \"netops@example.net\"\n.1.3.6.1.2.1.1.5.0 \"plc-gw-01\"\n.1.3.6.1.2.1.1.6.0 \"Hall 3\"\n"
    );

    // mosquitto: a subscriber to # sees the captured topics, retained.
    let deadline = Instant::now() + Duration::from_secs(10);
    let topics = loop {
        // -W ends it (status 27) once the retained messages are in.
        let out = in_ns(&[
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-t",
            "#",
            "-v",
            "-W",
            "1",
        ])
        .output()
        .unwrap();
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.lines().count() >= 2 || Instant::now() > deadline {
            break out;
        }
    };
    eprintln!("mosquitto_sub -t '#':\n{topics}");
    let mut lines: Vec<&str> = topics.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "plant/line1/state RUN",
            "plant/line1/temp {\"host\":\"plc1\",\"seq\":4,\"value\":204}"
        ]
    );
    drop(running);
}
