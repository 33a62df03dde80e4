//! Discovery benchmark against the ground truth, for any topology (run by
//! `benches/discovery/truth.sh` and `benches/discovery/vs-nmap.sh`; ignored in CI).
//!
//! Ground truth is read from each lab host itself, never from the topology file:
//! MACs and IPv4 addresses (`ip -j addr`), hostname (`hostname` in its UTS
//! namespace), attachment (the switch's own port table, `ovs-ofctl show`), every
//! listening TCP socket not bound to loopback and the UDP ones (`ss -Hlnp`), and for
//! each socket the process behind it: its binary's Debian package and upstream
//! version (`dpkg -S`, `dpkg-query`), or for the lab's Python PLC the identity it
//! was started with (its command line). The inventory is polled from `gemelo serve`
//! start until it matches or a deadline passes; every mismatch is printed.
//!
//! Environment: `GEMELO_TOPOLOGY` (office, plant, iot; default plant),
//! `GEMELO_BENCH_OUT` (a directory for truth.json, inventory.json, result.json),
//! `GEMELO_DEADLINE_S` (default 120), `GEMELO_NMAP_ARGS` (if set: after gemelo's
//! run, stop it and run `nmap ARGS -oX OUT/nmap.xml SEGMENTS` from the probe
//! namespace, timed; the flows stay in the switches, fail-mode secure).

use anyhow::Result;
use gemelo::lab::{self, LabStatus};
use gemelo_tests::controller::{temp_dir, ControllerProc};
use gemelo_tests::truth::{host_identity, ofports, upstream};
use gemelo_tests::{in_host, lab_session_or_skip, topology};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const LISTEN: [&str; 3] = [
    "--no-default-listeners",
    "--listen",
    lab::DEFAULT_CONTROLLER,
];

/// One listening socket and what really serves it.
#[derive(Debug, Clone)]
struct Socket {
    proto: String,
    /// Local address ("0.0.0.0", "*" or a specific IPv4).
    addr: String,
    port: u16,
    process: String,
    /// The service name gemelo should report.
    name: String,
    /// Product gemelo should report (case-insensitive substring), when it is on the wire.
    product: Option<String>,
    /// Version gemelo should report (prefix), when it is on the wire.
    version: Option<String>,
    /// The real version of what serves it, even when the wire does not tell.
    real_version: String,
}

#[derive(Debug)]
struct Truth {
    host: String,
    hostname: String,
    /// (mac, ipv4, switch dpid, ofport)
    interfaces: Vec<(String, String, String, u32)>,
    sockets: Vec<Socket>,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The Debian package owning a file ("openssh-server: /usr/sbin/sshd" -> "openssh-server").
fn package_of(path: &str) -> Option<String> {
    let out = sh("dpkg", &["-S", path]);
    out.lines()
        .next()
        .and_then(|l| l.split_once(':'))
        .map(|(p, _)| p.to_string())
}

fn arg_after(cmdline: &[String], flag: &str) -> Option<String> {
    cmdline
        .iter()
        .position(|a| a == flag)
        .and_then(|i| cmdline.get(i + 1))
        .cloned()
}

/// What serves a socket: from the process's binary (or, for inetd, the server it runs).
fn identify(
    pid: u32,
    process: &str,
    proto: &str,
    port: u16,
) -> (String, Option<String>, Option<String>, String) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let pkg = package_of(&exe).unwrap_or_default();
    let real = if pkg.is_empty() {
        String::new()
    } else {
        format!("{pkg} {}", upstream(&pkg))
    };
    match process {
        "sshd" => (
            "ssh".into(),
            Some("OpenSSH".into()),
            Some(upstream(&pkg)),
            real,
        ),
        "lighttpd" => (
            "http".into(),
            Some("lighttpd".into()),
            Some(upstream(&pkg)),
            real,
        ),
        "vsftpd" => (
            "ftp".into(),
            Some("vsftpd".into()),
            Some(upstream(&pkg)),
            real,
        ),
        "mosquitto" => (
            "mqtt".into(),
            Some("mosquitto".into()),
            Some(upstream(&pkg)),
            real,
        ),
        // inetd runs telnetd (its config): the telnet negotiation carries no version.
        "inetd" => (
            "telnet".into(),
            None,
            None,
            format!("inetutils-telnetd {}", upstream("inetutils-telnetd")),
        ),
        "snmpd" => ("snmp".into(), None, None, real),
        "udhcpd" | "busybox" if proto == "udp" => ("dhcp".into(), None, None, real),
        p if p.starts_with("python") && cmdline.iter().any(|a| a.ends_with("modbus_plc.py")) => {
            let product = arg_after(&cmdline, "--product");
            let version = arg_after(&cmdline, "--version");
            let vendor = arg_after(&cmdline, "--vendor").unwrap_or_default();
            let real = format!(
                "{vendor} {} {}",
                product.clone().unwrap_or_default(),
                version.clone().unwrap_or_default()
            );
            ("modbus".into(), product, version, real)
        }
        _ => (
            gemelo::discovery::inventory::port_name(port).to_string(),
            None,
            None,
            real,
        ),
    }
}

fn sockets(status: &LabStatus, host: &str) -> Result<Vec<Socket>> {
    let mut out = Vec::new();
    for (proto, flags) in [("tcp", "-Hltnp"), ("udp", "-Hlunp")] {
        let text = in_host(status, host, &["ss", flags])?;
        for line in text.lines() {
            // "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=123,fd=3))"
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = f.get(3) else { continue };
            let Some((addr, port)) = local.rsplit_once(':') else {
                continue;
            };
            if addr.starts_with("127.") || addr.starts_with("[::1]") || addr.contains('%') {
                continue;
            }
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let users = f.get(5).copied().unwrap_or("");
            let process = users.split('"').nth(1).unwrap_or("").to_string();
            let pid: u32 = users
                .split("pid=")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if proto == "udp" && (process == "udhcpc" || process.is_empty()) {
                continue; // a DHCP client's socket is not a service
            }
            let (name, product, version, real_version) = identify(pid, &process, proto, port);
            let addr = addr.trim_matches(|c| c == '[' || c == ']').to_string();
            out.push(Socket {
                proto: proto.into(),
                addr,
                port,
                process,
                name,
                product,
                version,
                real_version,
            });
        }
    }
    out.sort_by(|a, b| (a.proto.as_str(), a.port).cmp(&(b.proto.as_str(), b.port)));
    out.dedup_by(|a, b| a.proto == b.proto && a.port == b.port && a.addr == b.addr);
    Ok(out)
}

fn ground_truth(status: &LabStatus) -> Result<Vec<Truth>> {
    let ports = ofports(status)?;
    let mut out = Vec::new();
    for h in &status.hosts {
        let (hostname, interfaces) = host_identity(status, &h.name, &ports)?;
        out.push(Truth {
            host: h.name.clone(),
            hostname,
            interfaces,
            sockets: sockets(status, &h.name)?,
        });
    }
    Ok(out)
}

fn truth_json(truth: &[Truth]) -> Value {
    json!(truth
        .iter()
        .map(|t| json!({
            "host": t.host, "hostname": t.hostname,
            "interfaces": t.interfaces.iter().map(|(m, i, d, p)| json!({"mac": m, "ip": i, "switch": d, "port": p})).collect::<Vec<_>>(),
            "sockets": t.sockets.iter().map(|s| json!({"proto": s.proto, "addr": s.addr, "port": s.port, "process": s.process,
                "name": s.name, "product": s.product, "version": s.version, "real_version": s.real_version})).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

fn service<'a>(h: &'a Value, proto: &str, port: u16) -> Option<&'a Value> {
    h["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["proto"] == proto && s["port"] == port)
}

/// Every difference between the inventory and the truth (empty: complete).
fn mismatches(inv: &Value, truth: &[Truth]) -> Vec<String> {
    let hosts: BTreeMap<String, &Value> = inv["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["id"].as_str().unwrap_or("").to_string(), h))
        .collect();
    let mut bad = Vec::new();
    for t in truth {
        for (mac, ip, dpid, ofport) in &t.interfaces {
            let Some(h) = hosts.get(mac) else {
                bad.push(format!("{}: MAC {mac} not in the inventory", t.host));
                continue;
            };
            if !h["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i == ip.as_str())
            {
                bad.push(format!("{}: {mac} lacks IP {ip}: {}", t.host, h["ips"]));
            }
            if h["hostname"] != t.hostname.as_str() {
                bad.push(format!(
                    "{}: {mac} hostname {} != {}",
                    t.host, h["hostname"], t.hostname
                ));
            }
            if h["switch"] != dpid.as_str() || h["port"] != *ofport {
                bad.push(format!(
                    "{}: {mac} attached at {}:{} != {dpid}:{ofport}",
                    t.host, h["switch"], h["port"]
                ));
            }
            for s in t
                .sockets
                .iter()
                .filter(|s| s.addr == "0.0.0.0" || s.addr == "*" || s.addr == *ip)
            {
                let Some(g) = service(h, &s.proto, s.port) else {
                    bad.push(format!(
                        "{}: {mac} misses {}/{} ({})",
                        t.host, s.proto, s.port, s.process
                    ));
                    continue;
                };
                if g["name"] != s.name.as_str() {
                    bad.push(format!(
                        "{}: {}/{} named {} != {}",
                        t.host, s.proto, s.port, g["name"], s.name
                    ));
                }
                if let Some(p) = &s.product {
                    let got = g["product"].as_str().unwrap_or("").to_ascii_lowercase();
                    if !got.contains(&p.to_ascii_lowercase()) {
                        bad.push(format!(
                            "{}: {}/{} product {} != {p}",
                            t.host, s.proto, s.port, g["product"]
                        ));
                    }
                }
                if let Some(v) = &s.version {
                    if !g["version"].as_str().unwrap_or("").starts_with(v.as_str()) {
                        bad.push(format!(
                            "{}: {}/{} version {} != {v}",
                            t.host, s.proto, s.port, g["version"]
                        ));
                    }
                }
            }
        }
    }
    bad
}

fn table(inv: &Value, truth: &[Truth]) -> String {
    let hosts: BTreeMap<String, &Value> = inv["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["id"].as_str().unwrap_or("").to_string(), h))
        .collect();
    let mut out = String::from("| host | MAC | IP | hostname (truth / gemelo) | attachment (truth / gemelo) | service | truth: process, version | gemelo: name, product, version |\n|---|---|---|---|---|---|---|---|\n");
    for t in truth {
        for (mac, ip, dpid, ofport) in &t.interfaces {
            let h = hosts.get(mac).copied().unwrap_or(&Value::Null);
            let ip_ok = if h["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i == ip.as_str())
            {
                "ok"
            } else {
                "MISSING"
            };
            let att = format!(
                "{}:{} / {}:{}",
                dpid.trim_start_matches('0'),
                ofport,
                h["switch"].as_str().unwrap_or("-").trim_start_matches('0'),
                h["port"]
            );
            let name = format!("{} / {}", t.hostname, h["hostname"].as_str().unwrap_or("-"));
            let socks: Vec<&Socket> = t
                .sockets
                .iter()
                .filter(|s| s.addr == "0.0.0.0" || s.addr == "*" || s.addr == *ip)
                .collect();
            if socks.is_empty() {
                out += &format!(
                    "| {} | {mac} | {ip} {ip_ok} | {name} | {att} | - | - | - |\n",
                    t.host
                );
            }
            for s in socks {
                let g = service(h, &s.proto, s.port);
                let gtxt = match g {
                    Some(g) => format!(
                        "{}, {}, {}",
                        g["name"].as_str().unwrap_or("-"),
                        g["product"].as_str().unwrap_or("-"),
                        g["version"].as_str().unwrap_or("-")
                    ),
                    None => "MISSING".into(),
                };
                out += &format!(
                    "| {} | {mac} | {ip} {ip_ok} | {name} | {att} | {}/{} | {}, {} | {gtxt} |\n",
                    t.host, s.proto, s.port, s.process, s.real_version
                );
            }
        }
    }
    out
}

#[test]
#[ignore = "benchmark: run by benches/discovery/truth.sh"]
fn inventory_against_ground_truth() {
    let _session = lab_session_or_skip!();
    let topo = std::env::var("GEMELO_TOPOLOGY").unwrap_or_else(|_| "plant".into());
    let out_dir = std::env::var_os("GEMELO_BENCH_OUT").map(PathBuf::from);
    let deadline_s: u64 = std::env::var("GEMELO_DEADLINE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let t_lab = Instant::now();
    let status = lab::up(&topology(&topo), lab::DEFAULT_CONTROLLER).expect("lab up");
    let lab_secs = t_lab.elapsed().as_secs_f64();
    let truth = ground_truth(&status).expect("ground truth");
    let dir = temp_dir(&format!("truth-{topo}"));
    let started = Instant::now();
    let ctl = ControllerProc::start(&dir, &LISTEN).expect("controller");
    let deadline = started + Duration::from_secs(deadline_s);
    // Progress: when each host (MAC) first appears complete.
    let mut first_full: BTreeMap<String, f64> = BTreeMap::new();
    // Every change of the mismatch list, with its time: what was late and why.
    let mut timeline: Vec<(f64, Vec<String>)> = Vec::new();
    // When every switch was connected and programmed (OVS reconnects with a backoff
    // of up to 8 s when its controller was absent while the lab was built).
    let mut switches_at: Option<f64> = None;
    let n_switches = status.switches.len();
    let (inv, bad, secs) = loop {
        if switches_at.is_none() {
            let sw = ctl.get("/api/v1/switches").unwrap_or(Value::Null);
            let ready = sw
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["connected"] == true && !s["reconciled"].is_null())
                .count();
            if ready >= n_switches {
                switches_at = Some(started.elapsed().as_secs_f64());
            }
        }
        let inv = ctl.get("/api/v1/inventory").unwrap();
        let bad = mismatches(&inv, &truth);
        let t = started.elapsed().as_secs_f64();
        for tr in &truth {
            if !bad.iter().any(|b| b.starts_with(&format!("{}:", tr.host))) {
                first_full.entry(tr.host.clone()).or_insert(t);
            }
        }
        if timeline.last().map(|(_, b)| b != &bad).unwrap_or(true) {
            timeline.push((t, bad.clone()));
        }
        if bad.is_empty() || Instant::now() >= deadline {
            break (inv, bad, t);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let health = ctl.get("/api/v1/health").unwrap_or(Value::Null);
    println!("\n## {topo}: gemelo inventory vs ground truth\n");
    println!("{}", table(&inv, &truth));
    if bad.is_empty() {
        println!("COMPLETE inventory {secs:.1} s after `gemelo serve` started ({} inventory hosts; lab up took {lab_secs:.1} s)", inv["hosts"].as_array().map(|a| a.len()).unwrap_or(0));
    } else {
        println!("INCOMPLETE after {secs:.1} s; {} mismatches:", bad.len());
        for b in &bad {
            println!("  - {b}");
        }
    }
    println!(
        "all {n_switches} switches connected and programmed at {:.1} s",
        switches_at.unwrap_or(f64::NAN)
    );
    println!("per host, first complete at (s): {first_full:?}");
    println!("mismatch timeline (s: what was still missing):");
    for (t, b) in &timeline {
        println!(
            "  {t:6.1}: {} open{}",
            b.len(),
            if b.len() <= 6 {
                format!(" {b:?}")
            } else {
                String::new()
            }
        );
    }
    let extra: Vec<String> = inv["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| {
            !truth
                .iter()
                .any(|t| t.interfaces.iter().any(|i| h["id"] == i.0.as_str()))
        })
        .map(|h| format!("{} {}", h["id"], h["ips"]))
        .collect();
    println!("inventory hosts not in the truth: {extra:?}");
    let cpu = std::fs::read_to_string(format!("/proc/{}/stat", ctl.pid()))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        })
        .map(|f| {
            (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / 100.0
        })
        .unwrap_or(0.0);
    let mut result = json!({"topology": topo, "complete": bad.is_empty(), "secs": secs, "switches_ready_secs": switches_at, "lab_up_secs": lab_secs,
        "mismatches": bad, "first_complete": first_full, "timeline": timeline, "extra_hosts": extra, "gemelo_cpu_s": cpu, "health": health});
    drop(ctl);
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(
            d.join("truth.json"),
            serde_json::to_string_pretty(&truth_json(&truth)).unwrap(),
        )
        .unwrap();
        std::fs::write(
            d.join("inventory.json"),
            serde_json::to_string_pretty(&inv).unwrap(),
        )
        .unwrap();
        if let Ok(args) = std::env::var("GEMELO_NMAP_ARGS") {
            let xml = d.join("nmap.xml");
            let mut argv: Vec<String> = vec!["nmap".into()];
            argv.extend(args.split_whitespace().map(str::to_string));
            argv.extend(["-oX".into(), xml.display().to_string()]);
            argv.extend(status.segments.iter().map(|s| s.cidr.clone()));
            let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
            println!(
                "running from {}: {}",
                status.probe.namespace,
                argv.join(" ")
            );
            let t = Instant::now();
            let o = lab::probe_command(&status, &argv_ref)
                .output()
                .expect("nmap");
            let nmap_secs = t.elapsed().as_secs_f64();
            println!("nmap exit {} after {nmap_secs:.1} s", o.status);
            result["nmap_secs"] = json!(nmap_secs);
            result["nmap_argv"] = json!(argv.join(" "));
            result["nmap_ok"] = json!(o.status.success());
        }
        std::fs::write(
            d.join("result.json"),
            serde_json::to_string_pretty(&result).unwrap(),
        )
        .unwrap();
    }
    assert!(
        bad.is_empty(),
        "inventory incomplete after {deadline_s} s: {bad:#?}"
    );
}
