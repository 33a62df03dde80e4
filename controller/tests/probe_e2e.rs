//! End to end: discovery's active probes against the real Debian daemons.
//!
//! Builds a throwaway network namespace `gm-probetest` (loopback only), starts
//! sshd, lighttpd, vsftpd, telnetd under inetd, mosquitto, snmpd and a pymodbus
//! PLC in it, probes 127.0.0.1 there through `in_netns`, and checks that every
//! product and version is what the installed packages really are. Needs root and
//! the packages; otherwise it prints why and passes without running. Everything
//! it made (daemons by PID, the namespace, /tmp/gemelo-probetest-*) is removed
//! on the way out, also when an assertion fails.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gemelo::discovery::probe::{self, ProbeConfig, ServiceInfo};

const NS: &str = "gm-probetest";
const MODBUS_PLC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lab/modbus_plc.py");
const SYS_NAME: &str = "plc-gw-01";

/// Daemons and files this test made; dropping it removes them.
struct Lab {
    dir: PathBuf,
    children: Vec<(String, Child)>,
    ns_made: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.ns_made {
            // What is left in our namespace was started by our daemons (telnetd
            // sessions, login): stop those PIDs, then the namespace.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", NS]).output() {
                for pid in String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = Command::new("ip").args(["netns", "del", NS]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn spawn(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", NS])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (name, _) in &self.children {
            let text =
                std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
            out.push_str(&format!(
                "--- {name}\n{}\n",
                text.chars()
                    .rev()
                    .take(600)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            ));
        }
        out
    }
}

fn why_skip() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces)".into());
    }
    for bin in [
        "/usr/sbin/sshd",
        "/usr/sbin/lighttpd",
        "/usr/sbin/vsftpd",
        "/usr/sbin/inetd",
        "/usr/sbin/telnetd",
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto_pub",
        "/usr/sbin/snmpd",
        "/usr/bin/ssh-keygen",
        "/usr/bin/python3",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!("{bin} is not installed"));
        }
    }
    let pymodbus = Command::new("/usr/bin/python3")
        .args(["-c", "import pymodbus"])
        .status();
    if !matches!(pymodbus, Ok(s) if s.success()) {
        return Some("python3-pymodbus is not installed".into());
    }
    if Path::new(&format!("/run/netns/{NS}")).exists() {
        return Some(format!(
            "namespace {NS} already exists (another run?); remove it with `ip netns del {NS}`"
        ));
    }
    None
}

/// The installed Debian version of `package`, e.g. "1:9.2p1-2+deb12u10".
fn dpkg_version(package: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .expect("dpkg-query");
    String::from_utf8(out.stdout).unwrap()
}

/// Upstream part of a Debian version: "1:9.2p1-2+deb12u10" → "9.2p1",
/// "5.9.3+dfsg-2+deb12u1" → "5.9.3".
fn upstream(version: &str) -> String {
    let no_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let no_revision = no_epoch.rsplit_once('-').map_or(no_epoch, |(u, _)| u);
    no_revision.split('+').next().unwrap().to_string()
}

fn start_lab() -> Lab {
    let dir = std::env::temp_dir().join(format!("gm-probetest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        dir: dir.clone(),
        children: Vec::new(),
        ns_made: false,
    };
    assert!(
        Command::new("ip")
            .args(["netns", "add", NS])
            .status()
            .unwrap()
            .success(),
        "ip netns add {NS}"
    );
    lab.ns_made = true;
    assert!(Command::new("ip")
        .args(["-n", NS, "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let d = dir.display().to_string();
    for sub in ["empty", "www", "snmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    lab.write("hosts", "127.0.0.1 localhost\n");
    lab.write("resolv.conf", "");

    // sshd: own host keys, a private /run for /run/sshd.
    for (kind, bits) in [("ed25519", None), ("rsa", Some("2048"))] {
        let key = format!("{d}/ssh_host_{kind}_key");
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-f", &key]);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        assert!(cmd.status().unwrap().success(), "ssh-keygen {kind}");
    }
    let conf = lab.write(
        "sshd_config",
        &format!("Port 22\nListenAddress 0.0.0.0\nHostKey {d}/ssh_host_ed25519_key\nHostKey {d}/ssh_host_rsa_key\nUsePAM no\nPidFile none\n"),
    );
    let private_run = |exec: String| {
        format!("mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && mount --bind {d}/hosts /etc/hosts && mount --bind {d}/resolv.conf /etc/resolv.conf && exec {exec}")
    };
    lab.spawn(
        "sshd",
        &[
            "unshare",
            "-m",
            "sh",
            "-c",
            &private_run(format!("/usr/sbin/sshd -D -e -f {conf}")),
        ],
        &[],
    );

    // lighttpd with a small HMI page.
    lab.write(
        "www/index.html",
        "<html><head><title>Plant HMI</title></head><body>Line 1 running</body></html>\n",
    );
    let conf = lab.write(
        "lighttpd.conf",
        &format!("server.document-root = \"{d}/www\"\nserver.port = 80\nserver.bind = \"0.0.0.0\"\nserver.errorlog = \"{d}/lighttpd.err\"\nindex-file.names = (\"index.html\")\nmimetype.assign = (\".html\" => \"text/html\")\n"),
    );
    lab.spawn("lighttpd", &["/usr/sbin/lighttpd", "-D", "-f", &conf], &[]);

    // vsftpd, anonymous, foreground.
    let conf = lab.write("vsftpd.conf", &format!("listen=YES\nlisten_ipv6=NO\nbackground=NO\nanonymous_enable=YES\nsecure_chroot_dir={d}/empty\nlisten_port=21\n"));
    lab.spawn("vsftpd", &["/usr/sbin/vsftpd", &conf], &[]);

    // telnetd under inetd (inetd's pid file is fixed: private /run).
    let conf = lab.write(
        "inetd.conf",
        "telnet stream tcp nowait root /usr/sbin/telnetd telnetd\n",
    );
    lab.spawn(
        "inetd",
        &[
            "unshare",
            "-m",
            "sh",
            "-c",
            &private_run(format!("/usr/sbin/inetd -i {conf}")),
        ],
        &[],
    );

    // mosquitto, anonymous, plus one retained plant topic.
    let conf = lab.write("mosquitto.conf", "listener 1883\nallow_anonymous true\n");
    lab.spawn("mosquitto", &["/usr/sbin/mosquitto", "-c", &conf], &[]);

    // snmpd v2c "public".
    let conf = lab.write(
        "snmpd.conf",
        &format!("agentAddress udp:161\nrocommunity public\nsysName {SYS_NAME}\nsysLocation Hall 3\nsysContact ops@example.net\nsmuxsocket 127.0.0.1\n"),
    );
    lab.spawn(
        "snmpd",
        &[
            "/usr/sbin/snmpd",
            "-f",
            "-Lo",
            "-C",
            "-c",
            &conf,
            "-p",
            &format!("{d}/snmpd.pid"),
        ],
        &[("SNMP_PERSISTENT_DIR", &format!("{d}/snmp"))],
    );

    // The lab's Modbus PLC (pymodbus 3.0).
    lab.spawn(
        "modbus",
        &[
            "/usr/bin/python3",
            MODBUS_PLC,
            "--port",
            "502",
            "--vendor",
            "Acme Automation",
            "--product",
            "PLC 5000",
            "--version",
            "2.1",
        ],
        &[],
    );
    lab
}

fn find<'a>(services: &'a [ServiceInfo], name: &str) -> &'a ServiceInfo {
    services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} among {:#?}", services))
}

#[test]
fn probes_identify_real_debian_daemons() {
    if let Some(reason) = why_skip() {
        eprintln!("probe_e2e skipped: {reason}");
        return;
    }
    let lab = start_lab();
    let ports = [21u16, 22, 23, 80, 502, 1883];
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);

    // Wait (bounded) until every daemon listens, then add a retained topic.
    let ready = probe::in_netns(NS, move || async move {
        let cfg = ProbeConfig {
            max_rate_per_s: 0,
            ..ProbeConfig::default()
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let open = probe::connect_scan(localhost, &ports, &cfg).await;
            if open.len() == ports.len() || Instant::now() > deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .expect("in_netns");
    assert_eq!(ready, ports, "daemons not listening:\n{}", lab.logs());
    let published = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS,
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-t",
            "plant/line1/temperature",
            "-m",
            "21.5",
            "-r",
        ])
        .status()
        .unwrap();
    assert!(published.success());
    std::thread::sleep(Duration::from_millis(500)); // snmpd answers a little after it binds

    let (services, took) = probe::in_netns(NS, move || async move {
        let cfg = ProbeConfig::default();
        let start = Instant::now();
        let services = probe::probe_host(localhost, probe::DEFAULT_PORTS, &cfg).await;
        (services, start.elapsed())
    })
    .expect("in_netns");
    eprintln!(
        "probe_host(127.0.0.1, DEFAULT_PORTS = {} ports) took {took:?}",
        probe::DEFAULT_PORTS.len()
    );
    eprintln!("{}", serde_json::to_string_pretty(&services).unwrap());
    let open: Vec<_> = services
        .iter()
        .map(|s| (s.proto.as_str(), s.port, s.name.as_str()))
        .collect();
    assert_eq!(
        open,
        [
            ("tcp", 21, "ftp"),
            ("tcp", 22, "ssh"),
            ("tcp", 23, "telnet"),
            ("tcp", 80, "http"),
            ("tcp", 502, "modbus"),
            ("tcp", 1883, "mqtt"),
            ("udp", 161, "snmp")
        ],
        "logs:\n{}",
        lab.logs()
    );

    // SSH: "1:9.2p1-2+deb12u10" → OpenSSH "9.2p1 Debian 2+deb12u10".
    let ssh = find(&services, "ssh");
    let deb = dpkg_version("openssh-server");
    let (up, rev) = deb
        .split_once(':')
        .map_or(deb.as_str(), |(_, v)| v)
        .split_once('-')
        .unwrap();
    assert_eq!(ssh.product.as_deref(), Some("OpenSSH"));
    assert_eq!(
        ssh.version.as_deref(),
        Some(format!("{up} Debian {rev}").as_str())
    );
    assert_eq!(
        ssh.banner.as_deref(),
        Some(format!("SSH-2.0-OpenSSH_{up} Debian-{rev}").as_str())
    );
    let host_keys: Vec<&str> = ssh.details["server_host_key_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        host_keys.contains(&"ssh-ed25519") && host_keys.contains(&"rsa-sha2-512"),
        "{host_keys:?}"
    );
    assert!(ssh.details["kex_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "curve25519-sha256"));
    assert!(!ssh.details["encryption_algorithms_server_to_client"]
        .as_array()
        .unwrap()
        .is_empty());

    // HTTP: lighttpd's Server header, title and body hash.
    let http = find(&services, "http");
    assert_eq!(http.product.as_deref(), Some("lighttpd"));
    assert_eq!(
        http.version.as_deref(),
        Some(upstream(&dpkg_version("lighttpd")).as_str())
    );
    assert_eq!(http.details["title"], "Plant HMI");
    assert_eq!(http.details["status"], 200);
    assert_eq!(
        http.details["body"],
        std::fs::read_to_string(lab.dir.join("www/index.html")).unwrap()
    );
    assert_eq!(http.details["body_sha256"].as_str().unwrap().len(), 64);

    // FTP: vsftpd greeting.
    let ftp = find(&services, "ftp");
    assert_eq!(ftp.product.as_deref(), Some("vsftpd"));
    assert_eq!(
        ftp.version.as_deref(),
        Some(upstream(&dpkg_version("vsftpd")).as_str())
    );
    assert_eq!(
        ftp.banner.as_deref(),
        Some(format!("220 (vsFTPd {})\r\n", upstream(&dpkg_version("vsftpd"))).as_str())
    );

    // Telnet: inetutils' opening negotiation and the login prompt.
    let telnet = find(&services, "telnet");
    assert_eq!(telnet.product.as_deref(), Some("inetutils telnetd"));
    assert!(
        telnet
            .banner
            .as_deref()
            .unwrap()
            .trim_end()
            .ends_with("login:"),
        "{:?}",
        telnet.banner
    );
    assert_eq!(telnet.details["prompt_seen"], true);

    // MQTT: accepted anonymously, $SYS version, our retained topic.
    let mqtt = find(&services, "mqtt");
    assert_eq!(mqtt.product.as_deref(), Some("Mosquitto"));
    assert_eq!(
        mqtt.version.as_deref(),
        Some(upstream(&dpkg_version("mosquitto")).as_str())
    );
    assert_eq!(mqtt.details["accepted"], true);
    let topics = mqtt.details["topics"].as_array().unwrap();
    assert!(
        topics
            .iter()
            .any(|t| t["topic"] == "plant/line1/temperature" && t["payload"] == "21.5"),
        "{topics:?}"
    );

    // Modbus: device identification and the process image.
    let modbus = find(&services, "modbus");
    assert_eq!(modbus.product.as_deref(), Some("PLC 5000"));
    assert_eq!(modbus.version.as_deref(), Some("2.1"));
    assert_eq!(modbus.details["vendor"], "Acme Automation");
    assert_eq!(modbus.details["holding_registers"][0]["values"][0], 100);
    assert_eq!(modbus.details["holding_registers"][1]["exception"], 2);

    // SNMP: net-snmp and its version, the configured sysName.
    let snmp = find(&services, "snmp");
    assert_eq!(snmp.product.as_deref(), Some("net-snmp"));
    assert_eq!(
        snmp.version.as_deref(),
        Some(upstream(&dpkg_version("snmpd")).as_str())
    );
    assert_eq!(snmp.details["sys_name"], SYS_NAME);
    assert!(snmp.banner.as_deref().unwrap().starts_with("Linux "));

    // Pure guesses over what was found.
    assert_eq!(
        probe::guess_os(&services, Some(64)),
        Some(("Linux".into(), "Debian".into()))
    );
    assert_eq!(probe::classify_role(&services), "OT");
    assert!(took < Duration::from_secs(10), "probe_host took {took:?}");
    drop(lab);
    assert!(!Path::new(&format!("/run/netns/{NS}")).exists());
}
