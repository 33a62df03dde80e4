//! The `gemelo` command line: the controller (`serve`), the embedded lab, the demo
//! and small clients of the REST API.

mod demo;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gemelo::api::{FlowView, SwitchView};
use gemelo::discovery::{self, DiscoveryConfig};
use gemelo::pipeline::ForwardingMode;
use gemelo::serve::{self, ServeConfig};
use gemelo::switch::{Endpoint, SessionConfig};
use gemelo::{client, lab};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gemelo",
    version,
    about = "SDN deception: discover a production OVS fabric, build its digital twin, swap attackers into it"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the controller and its REST API.
    Serve {
        /// Where switches connect to gemelo (repeatable). Default: unix:/run/gemelo/openflow.sock and tcp:127.0.0.1:6653.
        #[arg(long = "listen", value_name = "ENDPOINT")]
        listen: Vec<Endpoint>,
        /// A switch's passive endpoint to connect out to (repeatable), e.g. unix:/run/gemelo/lab/prod/gm-sw1.mgmt.
        #[arg(long = "connect", value_name = "ENDPOINT")]
        connect: Vec<Endpoint>,
        /// Do not open the default listeners (only --listen / --connect ones).
        #[arg(long)]
        no_default_listeners: bool,
        /// Address of the REST API.
        #[arg(long, default_value = serve::DEFAULT_API)]
        api: std::net::SocketAddr,
        /// Directory of gemelo's store.
        #[arg(long, default_value = serve::DEFAULT_DATA)]
        data: PathBuf,
        /// How the forward table forwards: normal (OVS NORMAL) or learning (gemelo's L2 flows).
        #[arg(long, default_value = "normal")]
        forwarding: ForwardingMode,
        /// Seconds of silence before gemelo sends an echo request.
        #[arg(long, default_value_t = 5)]
        echo_interval: u64,
        /// Seconds of silence after which a switch is declared dead.
        #[arg(long, default_value_t = 15)]
        dead_after: u64,
        /// CIDR that active discovery may probe (repeatable). Default: the lines of /run/gemelo/discovery-scope if present, else none (passive only).
        #[arg(long = "scope", value_name = "CIDR")]
        scope: Vec<String>,
        /// Network namespace of gemelo's probe port. Default: gm-probe if it exists.
        #[arg(long)]
        probe_netns: Option<String>,
        /// Cap on packet-ins per second per switch (OpenFlow controller meter).
        #[arg(long, default_value_t = 1000)]
        packet_in_rate: u32,
        /// Seconds between sweeps of the whole scope.
        #[arg(long, default_value_t = 300)]
        sweep_interval: u64,
        /// Seconds between checks of a built twin against the inventory: a change that
        /// holds for one check is built (only the affected twin hosts); 0 = never.
        #[arg(long, default_value_t = 10)]
        twin_follow: u64,
        /// Unix datagram socket where twin decoys send their events (default: DATA/events.sock,
        /// or /tmp/gm-events-HASH/events.sock when the twin's daemons, which drop
        /// privileges and have their own /run, cannot reach DATA).
        #[arg(long)]
        events_socket: Option<PathBuf>,
        /// TOML with a secret per webhook integration (`[integration.NAME] secret = "..."`).
        #[arg(long)]
        hooks: Option<PathBuf>,
        /// TOML configuring the built-in detectors (scan, honeytoken, bruteforce).
        #[arg(long)]
        detectors: Option<PathBuf>,
    },
    /// Build, inspect or remove the embedded lab (a production network in namespaces).
    Lab {
        #[command(subcommand)]
        cmd: LabCmd,
    },
    /// Print a switch's flows as `ovs-ofctl dump-flows` does (from the REST API).
    Flows {
        /// Datapath id or bridge name; default: every switch.
        #[arg(long)]
        switch: Option<String>,
        /// REST API address (default 127.0.0.1:8080 or $GEMELO_API).
        #[arg(long)]
        api: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the switches connected to gemelo (from the REST API).
    Switches {
        #[arg(long)]
        api: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print what discovery found: hosts, segments, links (from the REST API).
    Inventory {
        #[arg(long)]
        api: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Build, inspect or remove the digital twin (through the REST API).
    Twin {
        #[command(subcommand)]
        cmd: TwinCmd,
        #[arg(long, global = true)]
        api: Option<String>,
    },
    /// Swap a source (IP, MAC or CIDR) into the twin (through the REST API).
    Redirect {
        source: String,
        /// Why (kept with the redirection and in its events).
        #[arg(long)]
        reason: Option<String>,
        /// Release automatically after this many seconds.
        #[arg(long)]
        ttl: Option<u64>,
        #[arg(long)]
        api: Option<String>,
    },
    /// Restore production forwarding for a redirection.
    Release {
        id: String,
        #[arg(long)]
        api: Option<String>,
    },
    /// List redirections (active and released).
    Redirections {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        api: Option<String>,
    },
    /// Print gemelo's OpenFlow pipeline (tables, priorities, cookies) as Markdown.
    Pipeline,
    /// Run the whole story on the embedded lab: lab, controller, traffic, flows.
    Demo {
        /// Topology of the lab.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Leave the lab and the controller running at the end.
        #[arg(long)]
        keep: bool,
        /// REST API address of the demo's controller.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api: std::net::SocketAddr,
    },
    /// Serve a twin host's emulated decoys (started by the hypervisor inside the twin host).
    #[command(hide = true)]
    Decoy {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long)]
        events: PathBuf,
    },
    /// Turns a twin daemon's access log (stdin) into decoy events.
    #[command(hide = true)]
    AccessLog {
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        twin_host: String,
        #[arg(long)]
        protocol: String,
    },
    /// Reports one login attempt on a twin host (PAM's pam_exec runs it, the password on stdin).
    #[command(hide = true)]
    LoginAttempt {
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        twin_host: String,
        /// The attempt failed (the hook on PAM's failure path).
        #[arg(long)]
        failed: bool,
    },
    /// Login shell of a twin host's decoy user (sshd / telnetd run it).
    #[command(hide = true)]
    PersonaShell {
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        twin_host: String,
        #[arg(short = 'c')]
        command: Option<String>,
    },
}

#[derive(Subcommand)]
enum TwinCmd {
    /// Build or update the twin from the current inventory; shows progress until done.
    Build {
        /// A twin config (JSON: segments, exclude, backend_by_role, backend_by_host, honeytokens).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Describe the twin.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove the twin.
    Destroy,
}

#[derive(Subcommand)]
enum LabCmd {
    /// Build the lab from a topology file (tears down leftovers first).
    Up {
        #[arg(long)]
        topology: PathBuf,
        /// Controller the lab's bridges connect to.
        #[arg(long, default_value = lab::DEFAULT_CONTROLLER)]
        controller: String,
    },
    /// Remove everything `lab up` made.
    Down,
    /// Describe the running lab.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Plug a visitor (e.g. an attacker's laptop) into the running lab:
    /// namespace gm-LAB-NAME with IP on SEGMENT, on SWITCH.
    Visitor {
        name: String,
        #[arg(long)]
        switch: String,
        #[arg(long)]
        segment: String,
        #[arg(long)]
        ip: std::net::Ipv4Addr,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GEMELO_LOG")
                .unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("gemelo: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Decoy { spec, events } => {
            gemelo_hypervisor::decoy::run_decoy(&spec, &events).context("decoy")
        }
        Cmd::AccessLog {
            events,
            twin_host,
            protocol,
        } => gemelo_hypervisor::decoy::access_log::run(&events, &twin_host, &protocol)
            .context("access log"),
        Cmd::LoginAttempt {
            events,
            twin_host,
            failed,
        } => gemelo_hypervisor::decoy::login::run(&events, &twin_host, failed)
            .context("login attempt"),
        Cmd::PersonaShell {
            events,
            twin_host,
            command,
        } => std::process::exit(gemelo_hypervisor::decoy::persona::run_persona_shell(
            &events,
            &twin_host,
            command.as_deref(),
        )),
        Cmd::Serve {
            mut listen,
            connect,
            no_default_listeners,
            api,
            data,
            forwarding,
            echo_interval,
            dead_after,
            scope,
            probe_netns,
            packet_in_rate,
            sweep_interval,
            twin_follow,
            events_socket,
            hooks,
            detectors,
        } => {
            if !no_default_listeners && listen.is_empty() {
                listen.push(serve::DEFAULT_UNIX_LISTENER.parse().expect("valid default"));
                listen.push(serve::DEFAULT_TCP_LISTENER.parse().expect("valid default"));
            }
            if listen.is_empty() && connect.is_empty() {
                anyhow::bail!(
                    "nothing to do: give --listen or --connect, or drop --no-default-listeners"
                );
            }
            let cfg = ServeConfig {
                listen,
                connect,
                api,
                data,
                session: SessionConfig {
                    echo_interval: Duration::from_secs(echo_interval.max(1)),
                    dead_after: Duration::from_secs(dead_after.max(2)),
                    forwarding,
                },
                discovery: discovery_config(scope, probe_netns, packet_in_rate, sweep_interval)?,
                events_socket,
                twin_follow: (twin_follow > 0).then(|| Duration::from_secs(twin_follow)),
                hooks: hooks
                    .map(|p| read_config(&p, gemelo::trigger::webhook::HooksConfig::from_toml))
                    .transpose()?,
                detectors: detectors
                    .map(|p| read_config(&p, gemelo::trigger::detect::DetectorsConfig::from_toml))
                    .transpose()?,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve::serve(cfg))
        }
        Cmd::Lab { cmd } => match cmd {
            LabCmd::Up {
                topology,
                controller,
            } => {
                let status = lab::up(&topology, &controller)?;
                print_lab(&status);
                Ok(())
            }
            LabCmd::Down => {
                lab::down()?;
                println!("lab removed");
                Ok(())
            }
            LabCmd::Visitor {
                name,
                switch,
                segment,
                ip,
            } => {
                let status = lab::status()?.ok_or_else(|| anyhow::anyhow!("no lab is up"))?;
                let ns = lab::add_visitor(&status, &name, &switch, &segment, ip)?;
                println!("{ns}");
                Ok(())
            }
            LabCmd::Status { json } => match lab::status()? {
                Some(s) if json => {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                    Ok(())
                }
                Some(s) => {
                    print_lab(&s);
                    Ok(())
                }
                None if json => {
                    println!("null");
                    Ok(())
                }
                None => {
                    println!("no lab is up (gemelo lab up --topology topologies/office.toml)");
                    Ok(())
                }
            },
        },
        Cmd::Flows { switch, api, json } => {
            let base = client::base(api.as_deref());
            let switches: Vec<SwitchView> = client::get_json(&base, "/api/v1/switches")?;
            let chosen: Vec<&SwitchView> = match &switch {
                None => switches.iter().collect(),
                Some(id) => {
                    let found: Vec<&SwitchView> = switches
                        .iter()
                        .filter(|s| {
                            &s.name == id
                                || gemelo::fabric::parse_dpid(id)
                                    .ok()
                                    .map(gemelo::fabric::dpid_str)
                                    .as_ref()
                                    == Some(&s.dpid)
                        })
                        .collect();
                    if found.is_empty() {
                        anyhow::bail!(
                            "no switch named or numbered {id:?}; known: {}",
                            names(&switches)
                        );
                    }
                    found
                }
            };
            for s in chosen {
                if json {
                    let flows: Vec<FlowView> =
                        client::get_json(&base, &format!("/api/v1/switches/{}/flows", s.dpid))?;
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"dpid": s.dpid, "name": s.name, "flows": flows})
                        )?
                    );
                } else {
                    println!("{} (dpid {}):", s.name, s.dpid);
                    print!(
                        "{}",
                        client::get_text(
                            &base,
                            &format!("/api/v1/switches/{}/flows?format=ofctl", s.dpid)
                        )?
                    );
                }
            }
            Ok(())
        }
        Cmd::Switches { api, json } => {
            let base = client::base(api.as_deref());
            let switches: Vec<SwitchView> = client::get_json(&base, "/api/v1/switches")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&switches)?);
            } else {
                println!("{:<18} {:<12} {:<10} ports", "dpid", "name", "connected");
                for s in &switches {
                    println!(
                        "{:<18} {:<12} {:<10} {}",
                        s.dpid,
                        s.name,
                        s.connected,
                        s.ports.len()
                    );
                }
            }
            Ok(())
        }
        Cmd::Inventory { api, json } => {
            let base = client::base(api.as_deref());
            let inv: serde_json::Value = client::get_json(&base, "/api/v1/inventory")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inv)?);
            } else {
                print!("{}", inventory_table(&inv));
            }
            Ok(())
        }
        Cmd::Twin { cmd, api } => twin_cmd(cmd, &client::base(api.as_deref())),
        Cmd::Redirect {
            source,
            reason,
            ttl,
            api,
        } => {
            let body = serde_json::json!({"source": source, "reason": reason, "ttl_s": ttl});
            let r: serde_json::Value = client::post_json(
                &client::base(api.as_deref()),
                "/api/v1/redirections",
                &body.to_string(),
            )?;
            println!(
                "{} {} redirected into the twin: key {}, {} flows on {} switch(es), {:.2} ms",
                r["id"].as_str().unwrap_or("?"),
                r["source"].as_str().unwrap_or("?"),
                r["key"],
                r["flows"],
                r["switches"].as_array().map_or(0, Vec::len),
                r["install_ms"].as_f64().unwrap_or(0.0)
            );
            Ok(())
        }
        Cmd::Release { id, api } => {
            let r: serde_json::Value = client::delete_json(
                &client::base(api.as_deref()),
                &format!("/api/v1/redirections/{id}"),
            )?;
            println!(
                "{} {} released in {:.2} ms",
                r["id"].as_str().unwrap_or("?"),
                r["source"].as_str().unwrap_or("?"),
                r["release_ms"].as_f64().unwrap_or(0.0)
            );
            Ok(())
        }
        Cmd::Redirections { json, api } => {
            let list: Vec<serde_json::Value> =
                client::get_json(&client::base(api.as_deref()), "/api/v1/redirections")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            println!(
                "{:<6} {:<20} {:<9} {:>6} {:>6} {:<20} reason",
                "id", "source", "state", "key", "flows", "created"
            );
            for r in &list {
                println!(
                    "{:<6} {:<20} {:<9} {:>6} {:>6} {:<20} {}",
                    r["id"].as_str().unwrap_or(""),
                    r["source"].as_str().unwrap_or(""),
                    r["state"].as_str().unwrap_or(""),
                    r["key"],
                    r["flows"],
                    r["created"].as_str().unwrap_or(""),
                    r["reason"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Cmd::Pipeline => {
            print!("{}", gemelo::pipeline::markdown(true));
            Ok(())
        }
        Cmd::Demo {
            topology,
            keep,
            api,
        } => demo::run(topology, keep, api).context("demo failed"),
    }
}

fn discovery_config(
    scope: Vec<String>,
    probe_netns: Option<String>,
    packet_in_rate: u32,
    sweep_interval: u64,
) -> anyhow::Result<DiscoveryConfig> {
    let scope = if scope.is_empty() {
        let file = std::path::Path::new(discovery::DEFAULT_SCOPE_FILE);
        if file.exists() {
            discovery::read_scope_file(file).map_err(|e| anyhow::anyhow!("default scope: {e}"))?
        } else {
            Vec::new()
        }
    } else {
        scope
            .iter()
            .map(|s| discovery::parse_cidr(s).map_err(|e| anyhow::anyhow!("--scope: {e}")))
            .collect::<anyhow::Result<_>>()?
    };
    let probe_netns = probe_netns.or_else(|| {
        let ns = discovery::DEFAULT_PROBE_NETNS;
        std::path::Path::new("/run/netns")
            .join(ns)
            .exists()
            .then(|| ns.to_string())
    });
    Ok(DiscoveryConfig {
        scope,
        probe_netns,
        packet_in_rate: packet_in_rate.max(1),
        sweep_interval: Duration::from_secs(sweep_interval.max(10)),
        ..DiscoveryConfig::default()
    })
}

fn twin_cmd(cmd: TwinCmd, base: &str) -> anyhow::Result<()> {
    match cmd {
        TwinCmd::Build { config } => {
            let body = match config {
                Some(p) => std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => String::new(),
            };
            let r: serde_json::Value = client::post_json(base, "/api/v1/twin", &body)?;
            let total = r["hosts"].as_u64().unwrap_or(0);
            println!("building a twin of {total} hosts");
            let start = std::time::Instant::now();
            let mut last = String::new();
            loop {
                let s: serde_json::Value = client::get_json(base, "/api/v1/twin")?;
                let states: Vec<(String, String)> = match s["progress"].as_object() {
                    Some(p) => p
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                    None => s["hosts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|h| {
                            (
                                h["name"].as_str().unwrap_or("").to_string(),
                                h["state"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect(),
                };
                let done = states
                    .iter()
                    .filter(|(_, st)| st == "ready" || st == "failed")
                    .count();
                let width = 30usize;
                let filled = if total == 0 {
                    width
                } else {
                    (done * width) / total as usize
                };
                let line = format!(
                    "[{}{}] {done}/{total} {:.1}s",
                    "#".repeat(filled),
                    ".".repeat(width - filled.min(width)),
                    start.elapsed().as_secs_f64()
                );
                if line != last {
                    eprint!("\r{line}");
                    last = line;
                }
                if s["state"] != "building" {
                    eprintln!();
                    println!("twin {}", s["state"].as_str().unwrap_or("?"));
                    for (name, st) in &states {
                        println!("  {name:<20} {st}");
                    }
                    if let Some(e) = s["error"].as_str() {
                        anyhow::bail!("twin build failed: {e}");
                    }
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        TwinCmd::Status { json } => {
            let s: serde_json::Value = client::get_json(base, "/api/v1/twin")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "twin {} (switch {} in {}, observer {})",
                    s["state"].as_str().unwrap_or("?"),
                    s["switch"]["bridge"].as_str().unwrap_or("-"),
                    s["switch"]["namespace"].as_str().unwrap_or("-"),
                    s["observer_namespace"].as_str().unwrap_or("-")
                );
                for h in s["hosts"].as_array().into_iter().flatten() {
                    let (ips, services) = twin_host_ips_services(h);
                    println!(
                        "  {:<14} {:<8} {:<20} {:<18} {} {}",
                        h["name"].as_str().unwrap_or(""),
                        h["state"].as_str().unwrap_or(""),
                        ips,
                        h["mac"].as_str().unwrap_or(""),
                        h["backend"].as_str().unwrap_or(""),
                        services
                    );
                }
            }
            Ok(())
        }
        TwinCmd::Destroy => {
            let _: serde_json::Value = client::delete_json(base, "/api/v1/twin")?;
            println!("twin removed");
            Ok(())
        }
    }
}

/// The inventory as text tables (hosts, then segments and links).
pub fn inventory_table(inv: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<17} {:<15} {:<12} {:<21} {:<4} {:<7} services",
        "mac", "ip", "hostname", "switch:port", "role", "os"
    );
    for h in inv["hosts"].as_array().into_iter().flatten() {
        let ips = strs(&h["ips"]);
        let at = match (h["switch"].as_str(), h["port"].as_u64()) {
            (Some(s), Some(p)) => format!("{}:{p}", s.trim_start_matches('0')),
            _ => "-".into(),
        };
        let services: Vec<String> = h["services"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let product = [s["product"].as_str(), s["version"].as_str()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                if product.is_empty() {
                    format!("{}/{}", s["name"].as_str().unwrap_or("?"), s["port"])
                } else {
                    format!(
                        "{}/{} ({product})",
                        s["name"].as_str().unwrap_or("?"),
                        s["port"]
                    )
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<17} {:<15} {:<12} {:<21} {:<4} {:<7} {}",
            h["mac"].as_str().unwrap_or(""),
            ips.join(","),
            h["hostname"].as_str().unwrap_or("-"),
            at,
            h["role"].as_str().unwrap_or(""),
            h["os"]["family"].as_str().unwrap_or("-"),
            services.join(", ")
        );
    }
    for s in inv["segments"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "segment {} vlan {} gateway {}",
            s["cidr"].as_str().unwrap_or(""),
            s["vlan"],
            s["gateway"].as_str().unwrap_or("-")
        );
    }
    for l in inv["links"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "link {}:{} <-> {}:{}",
            l["a"]["dpid"].as_str().unwrap_or(""),
            l["a"]["port"],
            l["b"]["dpid"].as_str().unwrap_or(""),
            l["b"]["port"]
        );
    }
    out
}

fn names(switches: &[SwitchView]) -> String {
    switches
        .iter()
        .map(|s| format!("{} ({})", s.name, s.dpid))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_lab(s: &lab::LabStatus) {
    let v = serde_json::to_value(s).unwrap_or_default();
    println!("lab {}", v["lab"].as_str().unwrap_or("?"));
    for sw in v["switches"].as_array().into_iter().flatten() {
        println!(
            "  switch {:<6} bridge {:<8} dpid {} ns {} controller {}",
            sw["name"].as_str().unwrap_or(""),
            sw["bridge"].as_str().unwrap_or(""),
            sw["dpid"].as_str().unwrap_or(""),
            sw["namespace"].as_str().unwrap_or(""),
            sw["controller"].as_str().unwrap_or("")
        );
    }
    for h in v["hosts"].as_array().into_iter().flatten() {
        let services: Vec<String> = h["services"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{}/{}", s["name"].as_str().unwrap_or(""), s["port"]))
            .collect();
        println!(
            "  host {:<10} {:<18} {:<17} {}:{:<3} {}",
            h["name"].as_str().unwrap_or(""),
            h["ips"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|i| i.as_str())
                .unwrap_or(""),
            h["mac"].as_str().unwrap_or(""),
            h["switch"].as_str().unwrap_or(""),
            h["ofport"],
            services.join(" ")
        );
    }
}

/// Reads and parses a TOML config file, naming the file in any error.
fn read_config<T, E: std::fmt::Display>(
    path: &std::path::Path,
    parse: impl Fn(&str) -> Result<T, E>,
) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The strings of a JSON array (nothing for anything else).
fn strs(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str())
        .collect()
}

/// A twin host's addresses ("a,b") and services ("ssh/22 http/80"), as
/// `gemelo twin status` and the demo print them.
fn twin_host_ips_services(h: &serde_json::Value) -> (String, String) {
    let ips = strs(&h["ips"]);
    let services: Vec<String> = h["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| format!("{}/{}", v["name"].as_str().unwrap_or("?"), v["port"]))
        .collect();
    (ips.join(","), services.join(" "))
}
