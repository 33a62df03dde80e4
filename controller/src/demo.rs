//! `gemelo demo`: the story on the embedded lab, told step by step.
//!
//! Builds the lab, starts `gemelo serve` as a child process, waits for every lab
//! switch to connect and be reconciled, proves real TCP between lab hosts through
//! gemelo's pipeline (across both switches and the gateway), shows the inventory
//! and the twin, then plays an attack: a visitor scans, the scan detector swaps
//! it into the twin, it works there (decoy events), it is released. Prints the
//! flows and says where to look next. Without `--keep` it stops the controller and removes
//! the lab at the end, also when a step fails.

use anyhow::{anyhow, bail, Context};
use gemelo::api::SwitchView;
use gemelo::{client, lab};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn default_topology() -> PathBuf {
    let local = PathBuf::from("topologies/office.toml");
    if local.exists() {
        return local;
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../topologies/office.toml"
    ))
}

fn step(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

struct Cleanup {
    controller: Option<Child>,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(mut c) = self.controller.take() {
            // SAFETY: kill(2) on the PID of the child we spawned.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) =
            gemelo_hypervisor::twin::destroy(std::path::Path::new(gemelo::twin::TWIN_RUN_DIR))
        {
            eprintln!("gemelo demo: twin destroy failed: {e}");
        }
        if let Err(e) = lab::down() {
            eprintln!("gemelo demo: lab down failed: {e}");
        }
    }
}

pub fn run(topology: Option<PathBuf>, keep: bool, api: SocketAddr) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo builds namespaces and Open vSwitch instances: run it as root");
    }
    // The lab's names are fixed: one user of the lab at a time on this machine
    // (the end-to-end tests take the same lock).
    std::fs::create_dir_all("/run/gemelo")?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lab::USERS_LOCK)?;
    if lock.try_lock().is_err() {
        println!(
            "waiting for the lab: another user (a test run?) holds {}",
            lab::USERS_LOCK
        );
        lock.lock()?;
    }
    let topology = topology.unwrap_or_else(default_topology);
    let run_dir = PathBuf::from(format!("/tmp/gm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir)?;

    step(1, &format!("Production lab from {}", topology.display()));
    let t = Instant::now();
    let status = lab::up(&topology, lab::DEFAULT_CONTROLLER)?;
    let mut cleanup = Cleanup {
        controller: None,
        keep,
    };
    let lab_json = serde_json::to_value(&status)?;
    println!("built in {:.1} s:", t.elapsed().as_secs_f64());
    crate::print_lab(&status);

    step(2, &format!("Controller: gemelo serve (OpenFlow on unix:/run/gemelo/openflow.sock, REST on http://{api})"));
    let log = run_dir.join("serve.log");
    let exe = std::env::current_exe()?;
    // The scan detector redirects by itself in the demo (its default only alerts).
    let detectors = run_dir.join("detectors.toml");
    std::fs::write(
        &detectors,
        "[scan]\naction = \"redirect\"\ncount_arp = false\n",
    )?;
    let child = Command::new(exe)
        .args(["serve", "--api", &api.to_string(), "--data"])
        .arg(run_dir.join("data"))
        .arg("--detectors")
        .arg(&detectors)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(run_dir.join("serve.err"))?)
        .spawn()
        .context("starting gemelo serve")?;
    println!(
        "pid {}, log {}",
        child.id(),
        run_dir.join("serve.err").display()
    );
    cleanup.controller = Some(child);
    let base = format!("http://{api}");
    let want = lab_json["switches"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let t = Instant::now();
    let switches = wait_for_switches(&base, want, Duration::from_secs(20))?;
    println!(
        "{} switch(es) connected and reconciled in {:.2} s:",
        switches.len(),
        t.elapsed().as_secs_f64()
    );
    for s in &switches {
        let r = s.reconciled.clone().unwrap_or_default();
        println!(
            "  {} dpid {} ports {} (baseline: {} added, {} unchanged)",
            s.name,
            s.dpid,
            s.ports.len(),
            r.added,
            r.unchanged
        );
    }

    step(3, "Real TCP between lab hosts through gemelo's pipeline");
    prove_tcp(&status, &lab_json)?;

    step(
        4,
        "Discovery: what gemelo learned from the wire (GET /api/v1/inventory)",
    );
    let t = Instant::now();
    let inv = wait_for_inventory(&base, &lab_json, Duration::from_secs(60));
    println!(
        "{} hosts, {} segments, {} links after {:.1} s of discovery:",
        inv["hosts"].as_array().map_or(0, |a| a.len()),
        inv["segments"].as_array().map_or(0, |a| a.len()),
        inv["links"].as_array().map_or(0, |a| a.len()),
        t.elapsed().as_secs_f64()
    );
    print!("{}", crate::inventory_table(&inv));

    step(
        5,
        "The digital twin, built from the inventory (POST /api/v1/twin)",
    );
    show_twin(&base)?;

    attack(&base, &status)?;

    step(
        10,
        "The flows gemelo installed (GET /api/v1/switches/{dpid}/flows?format=ofctl)",
    );
    for s in &switches {
        println!("{} (dpid {}):", s.name, s.dpid);
        print!(
            "{}",
            client::get_text(
                &base,
                &format!("/api/v1/switches/{}/flows?format=ofctl", s.dpid)
            )?
        );
    }
    println!("\nPipeline:\n{}", gemelo::pipeline::markdown(false));

    step(11, "Where to look next");
    let sw = lab_json["switches"][0].clone();
    println!("  curl -s {base}/api/v1/switches | jq");
    println!("  gemelo flows --api {api}");
    println!("  gemelo inventory --api {api}");
    println!("  curl -s {base}/api/v1/topology | jq");
    println!(
        "  ip netns exec {} env OVS_RUNDIR={} ovs-ofctl -O OpenFlow13 dump-flows unix:{}/{}.mgmt",
        sw["namespace"].as_str().unwrap_or("gm-prod"),
        sw["rundir"].as_str().unwrap_or(""),
        sw["rundir"].as_str().unwrap_or(""),
        sw["bridge"].as_str().unwrap_or("")
    );
    println!("  gemelo twin status --api {api}");
    println!(
        "  ip netns exec gm-twin-observer curl -s http://IP/   # a twin host, from the observer"
    );
    println!("  curl -s '{base}/api/v1/events?kind=decoy' | jq");
    println!("  gemelo redirections --api {api}    # gemelo redirect SOURCE / gemelo release ID");
    println!("  gemelo lab status --json");
    if keep {
        let pid = cleanup.controller.as_ref().map(|c| c.id()).unwrap_or(0);
        println!("\nLeft running (--keep): controller pid {pid}; stop it with `kill {pid}` and remove the lab with `gemelo lab down`.");
    } else {
        println!(
            "\nStopping the controller and removing the lab (use --keep to leave them running)."
        );
    }
    drop(cleanup);
    println!("demo finished: ok");
    Ok(())
}

/// Steps 6-9: an attacker plugs in and scans, the scan detector swaps it into
/// the twin, it works there (its every request an event), and is released.
fn attack(base: &str, status: &lab::LabStatus) -> anyhow::Result<()> {
    let target = status
        .hosts
        .iter()
        .find(|h| h.services.iter().any(|s| s.name == "http"))
        .or_else(|| {
            status
                .hosts
                .iter()
                .find(|h| h.services.iter().any(|s| s.proto.to_string() == "tcp"))
        })
        .ok_or_else(|| anyhow!("the topology has no TCP service to attack"))?;
    let target_ip = target.ips[0].split('/').next().unwrap_or("").to_string();
    let port = target
        .services
        .iter()
        .find(|s| s.name == "http")
        .or(target.services.first())
        .map(|s| s.port)
        .unwrap_or(80);
    // The attacker sits where a client does: the last host's switch and segment.
    let client = status
        .hosts
        .last()
        .ok_or_else(|| anyhow!("the lab has no hosts"))?;
    let iface = &client.interfaces[0];
    let seg = status
        .segments
        .iter()
        .find(|s| s.name == iface.segment)
        .ok_or_else(|| anyhow!("segment {} not in the lab", iface.segment))?;
    let net: ipnetwork::Ipv4Network = seg.cidr.parse().map_err(|e| anyhow!("{}: {e}", seg.cidr))?;
    let used: Vec<String> = status
        .hosts
        .iter()
        .flat_map(|h| {
            h.ips
                .iter()
                .map(|i| i.split('/').next().unwrap_or("").to_string())
        })
        .collect();
    let ip = (66..250)
        .filter_map(|n| net.nth(n))
        .find(|a| !used.contains(&a.to_string()) && a.to_string() != seg.gateway)
        .ok_or_else(|| anyhow!("no free address for the attacker in {}", seg.cidr))?;

    step(
        6,
        &format!(
            "An attacker plugs into {} ({}) as {ip} and scans {} ({target_ip})",
            client.switch, seg.name, target.name
        ),
    );
    let ns = lab::add_visitor(status, "atk", &client.switch, &seg.name, ip)?;
    let in_atk = |argv: &[&str]| -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns]).args(argv);
        c
    };
    let mac = {
        let o = ip.octets();
        format!("02:66:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = in_atk(&["ping", "-c1", "-W1", &seg.gateway])
            .stdout(Stdio::null())
            .status();
        let h: Value =
            client::get_json(base, &format!("/api/v1/hosts/{mac}")).unwrap_or(Value::Null);
        if !h["switch"].is_null() && h["ips"].as_array().is_some_and(|a| !a.is_empty()) {
            println!(
                "discovery sees it: {mac} on switch {} port {}",
                h["switch"].as_str().unwrap_or("?"),
                h["port"]
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("discovery did not see the attacker {ip} ({mac})");
        }
    }
    println!("$ nmap -sS -n -Pn -T4 -p 1-1024 {target_ip}");
    let out = in_atk(&[
        "nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-1024", &target_ip,
    ])
    .output()
    .context("nmap")?;
    for l in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("/tcp") || l.contains("scanned"))
    {
        println!("  {l}");
    }

    step(
        7,
        "The scan detector swaps the attacker into the twin (GRE key, one bundle per switch)",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let list: Vec<Value> = client::get_json(base, "/api/v1/redirections")?;
        if let Some(r) = list
            .into_iter()
            .find(|r| r["state"] == "active" && r["source"] == ip.to_string())
        {
            break r;
        }
        if Instant::now() > deadline {
            bail!("the scan detector did not redirect {ip}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let alerts: Vec<Value> = client::get_json(base, "/api/v1/events?kind=alert")?;
    for a in alerts.iter().filter(|a| a["source_ip"] == ip.to_string()) {
        println!(
            "alert: {} — {}",
            a["detector"].as_str().unwrap_or("?"),
            a["reason"].as_str().unwrap_or("")
        );
    }
    println!(
        "redirection {}: {} by {}, GRE key {}, {} flows on switches {}, confirmed in {:.2} ms",
        r["id"].as_str().unwrap_or("?"),
        r["source"].as_str().unwrap_or("?"),
        r["trigger"].as_str().unwrap_or("?"),
        r["key"],
        r["flows"],
        r["switches"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        r["install_ms"].as_f64().unwrap_or(0.0)
    );

    step(
        8,
        "The attacker works inside the twin; production never sees it",
    );
    let since = gemelo::fabric::rfc3339(std::time::SystemTime::now());
    let url = format!("http://{target_ip}:{port}/");
    let code = in_atk(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-m",
        "5",
        &url,
    ])
    .output()?;
    println!(
        "$ curl {url}  ->  HTTP {} (answered by the twin's {})",
        String::from_utf8_lossy(&code.stdout),
        target.name
    );
    let banner = in_atk(&["sh", "-c", &format!("echo | nc -w3 {target_ip} 22")]).output()?;
    let banner = String::from_utf8_lossy(&banner.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if !banner.is_empty() {
        println!("$ nc {target_ip} 22  ->  {banner}");
    }
    std::thread::sleep(Duration::from_millis(800));
    let events: Vec<Value> =
        client::get_json(base, &format!("/api/v1/events?kind=decoy&since={since}"))?;
    println!("decoy events from the attacker (GET /api/v1/events?kind=decoy):");
    for e in events.iter().filter(|e| {
        e["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{ip}:")))
    }) {
        println!(
            "  {} {} {} {} {}",
            e["time"].as_str().unwrap_or(""),
            e["twin_host"].as_str().unwrap_or(""),
            e["peer"].as_str().unwrap_or(""),
            e["protocol"].as_str().unwrap_or(""),
            e["data"]
        );
    }

    step(
        9,
        "Release: production forwarding for the attacker again (DELETE /api/v1/redirections/{id})",
    );
    let id = r["id"].as_str().unwrap_or("");
    let rel: Value = client::delete_json(base, &format!("/api/v1/redirections/{id}"))?;
    println!(
        "{id} {} in {:.2} ms",
        rel["state"].as_str().unwrap_or("?"),
        rel["release_ms"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}

fn wait_for_switches(base: &str, want: usize, limit: Duration) -> anyhow::Result<Vec<SwitchView>> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match client::get_json::<Vec<SwitchView>>(base, "/api/v1/switches") {
            Ok(s) if s.len() >= want && s.iter().all(|s| s.connected && s.reconciled.is_some()) => {
                return Ok(s)
            }
            Ok(s) => {
                last = format!(
                    "{} of {want} switches connected and reconciled",
                    s.iter().filter(|s| s.reconciled.is_some()).count()
                )
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(anyhow!("switches did not connect in {limit:?}: {last}"))
}

/// Builds the twin, then shows each twin host next to the production host it mirrors.
fn show_twin(base: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    let _: Value = client::post_json(base, "/api/v1/twin", "")?;
    let twin = loop {
        let s: Value = client::get_json(base, "/api/v1/twin")?;
        if s["state"] != "building" && s["state"] != "absent" {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the twin did not finish building in 60 s: {s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "twin {} in {:.1} s on switch {} (namespace {}), observer {}:",
        twin["state"].as_str().unwrap_or("?"),
        t.elapsed().as_secs_f64(),
        twin["switch"]["bridge"].as_str().unwrap_or(""),
        twin["switch"]["namespace"].as_str().unwrap_or(""),
        twin["observer_namespace"].as_str().unwrap_or("")
    );
    let inv: Value = client::get_json(base, "/api/v1/inventory")?;
    println!(
        "  {:<12} {:<17} {:<26} | {:<14} {:<7} {:<6} services",
        "production", "mac", "ips", "twin host", "state", "runs in"
    );
    for h in twin["hosts"].as_array().into_iter().flatten() {
        let mirrors: Vec<&str> = h["mirrors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        let prod = inv["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| mirrors.contains(&p["mac"].as_str().unwrap_or("")));
        let (ips, services) = crate::twin_host_ips_services(h);
        println!(
            "  {:<12} {:<17} {:<26} | {:<14} {:<7} {:<6} {}",
            prod.and_then(|p| p["hostname"].as_str())
                .unwrap_or("(honeytoken)"),
            h["mac"].as_str().unwrap_or(""),
            ips,
            h["name"].as_str().unwrap_or(""),
            h["state"].as_str().unwrap_or(""),
            h["backend"].as_str().unwrap_or(""),
            services
        );
    }
    // The twin switch connects to gemelo like any switch; wait until its flows are in.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let sws: Vec<SwitchView> = client::get_json(base, "/api/v1/switches")?;
        if sws.iter().any(|s| {
            Some(s.name.as_str()) == twin["switch"]["bridge"].as_str()
                && s.connected
                && s.reconciled.is_some()
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let web = twin["hosts"].as_array().into_iter().flatten().find(|h| {
        h["services"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "http"))
    });
    if let Some(ip) = web
        .and_then(|h| h["ips"][0].as_str())
        .and_then(|i| i.split('/').next())
    {
        let url = format!("http://{ip}/");
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                "gm-twin-observer",
                "curl",
                "-s",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ])
            .output();
        if let Ok(o) = out {
            println!(
                "  from the observer: {url} on the twin answers HTTP {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
    Ok(())
}

/// Waits until every lab host (by MAC) has a hostname, an attachment and the
/// services it runs, or the limit passes; returns the inventory either way.
fn wait_for_inventory(base: &str, lab: &Value, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let inv: Value = client::get_json(base, "/api/v1/inventory").unwrap_or(Value::Null);
        let complete = lab["hosts"].as_array().into_iter().flatten().all(|h| {
            let found = inv["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["mac"] == h["mac"]);
            found.is_some_and(|x| {
                let services = x["services"].as_array().map_or(0, |a| {
                    a.iter()
                        .filter(|s| s["proto"] == "tcp" && !s["product"].is_null())
                        .count()
                });
                let want = h["services"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|s| s["proto"] == "tcp").count());
                !x["hostname"].is_null() && !x["switch"].is_null() && services >= want
            })
        });
        if complete || Instant::now() >= deadline {
            if !complete {
                println!("(not every host is complete yet; discovery goes on in the background)");
            }
            return inv;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn service_host<'a>(lab: &'a Value, name: &str) -> Option<&'a Value> {
    lab["hosts"].as_array()?.iter().find(|h| {
        h["services"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == name)
    })
}

fn ip_of(h: &Value) -> String {
    h["ips"][0]
        .as_str()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string()
}

/// A client on another switch than the server, preferably behind the gateway.
fn client_for<'a>(lab: &'a Value, server: &Value) -> Option<&'a Value> {
    let hosts = lab["hosts"].as_array()?;
    let services = |h: &Value| h["services"].as_array().map(|a| a.len()).unwrap_or(0);
    hosts
        .iter()
        .filter(|h| {
            h["name"] != server["name"]
                && h["switch"] != server["switch"]
                && h["gateway"] != server["gateway"]
        })
        .min_by_key(|h| services(h))
        .or_else(|| {
            hosts
                .iter()
                .filter(|h| h["name"] != server["name"] && h["switch"] != server["switch"])
                .min_by_key(|h| services(h))
        })
        .or_else(|| hosts.iter().find(|h| h["name"] != server["name"]))
}

fn prove_tcp(status: &lab::LabStatus, lab_json: &Value) -> anyhow::Result<()> {
    let mut proved = 0;
    for (service, argv_of) in [
        (
            "http",
            (|ip: &str| {
                vec![
                    "curl".into(),
                    "-sS".into(),
                    "-m".into(),
                    "5".into(),
                    "-o".into(),
                    "/dev/null".into(),
                    "-w".into(),
                    "HTTP %{http_code} in %{time_total}s".into(),
                    format!("http://{ip}/"),
                ]
            }) as fn(&str) -> Vec<String>,
        ),
        ("ssh", |ip: &str| {
            vec![
                "ssh-keyscan".into(),
                "-T".into(),
                "5".into(),
                "-t".into(),
                "ed25519".into(),
                ip.to_string(),
            ]
        }),
    ] {
        let Some(server) = service_host(lab_json, service) else {
            continue;
        };
        let Some(client) = client_for(lab_json, server) else {
            continue;
        };
        let ip = ip_of(server);
        let argv = argv_of(&ip);
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        let t = Instant::now();
        let out = lab::host_command(status, client["name"].as_str().unwrap_or(""), &argv_ref)?
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect::<String>();
        println!(
            "  {} ({}, {}) -> {} {} ({}, {}): {} [{:.0} ms] {}",
            client["hostname"].as_str().unwrap_or(""),
            ip_of(client),
            client["switch"].as_str().unwrap_or(""),
            service,
            server["hostname"].as_str().unwrap_or(""),
            ip,
            server["switch"].as_str().unwrap_or(""),
            if out.status.success() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64() * 1e3,
            first
        );
        if !out.status.success() {
            bail!(
                "{service} from {} to {ip} failed: {}",
                client["name"],
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        proved += 1;
    }
    if proved == 0 {
        bail!("the topology has no http or ssh service to prove TCP with");
    }
    Ok(())
}
