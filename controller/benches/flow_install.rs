//! gemelo's own flow-install path against a real switch, the same workload as
//! `ofbench.py flowmod` (see BENCHMARKS.md) so the two can be compared in one run.
//!
//! ```sh
//! cargo bench -p gemelo --bench flow_install -- --target unix:RUNDIR/BR.mgmt --mode pipeline -n 10000 -r 5
//! ```
//!
//! Modes (each repetition starts from an empty flow table, like ofbench):
//! - `pipeline`: `SwitchHandle::transact(N flow-mods)` (N FLOW_MODs then one BARRIER);
//! - `bundle`:   `SwitchHandle::bundle(N flow-mods)` (ONF bundle open / add... / commit, barrier);
//! - `latency`:  N times `transact(vec![flow_mod])` (one FLOW_MOD + BARRIER round trip).
//!
//! The flows are the ones ofbench installs: table 0, priority 100,
//! `ip,nw_src=198.18.0.0+i actions=output:OUT_PORT`. The `Message`s are built
//! before the clock starts (ofbench pre-encodes its bytes); gemelo's encoding,
//! its session task and the socket I/O are timed. Prints one line per
//! repetition and a final `RESULT` line, or one JSON object with `--json`.
//! Not a test: nothing here asserts on time.

use gemelo::openflow::{Action, FlowMod, Instruction, Match, Message, TABLE_ALL};
use gemelo::switch::{self, Endpoint, SessionConfig, SessionContext, SwitchEvent, SwitchHandle};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Pipeline,
    Bundle,
    Latency,
}

struct Args {
    target: Endpoint,
    mode: Mode,
    count: usize,
    reps: usize,
    out_port: u32,
    priority: u16,
    settle: f64,
    json: bool,
    diag: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: flow_install --target unix:PATH|tcp:IP:PORT [--mode pipeline|bundle|latency] \
         [-n COUNT] [-r REPS] [--out-port P] [--priority P] [--settle SECS] [--json] [--diag]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        target: Endpoint::Tcp("127.0.0.1:6653".parse().unwrap()),
        mode: Mode::Pipeline,
        count: 10_000,
        reps: 5,
        out_port: 1,
        priority: 100,
        settle: 0.5,
        json: false,
        diag: false,
    };
    let mut have_target = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--target" => {
                a.target = val().parse().unwrap_or_else(|e| {
                    eprintln!("{e}");
                    usage()
                });
                have_target = true;
            }
            "--mode" => {
                a.mode = match val().as_str() {
                    "pipeline" => Mode::Pipeline,
                    "bundle" => Mode::Bundle,
                    "latency" => Mode::Latency,
                    _ => usage(),
                }
            }
            "-n" | "--count" => a.count = val().parse().unwrap_or_else(|_| usage()),
            "-r" | "--reps" => a.reps = val().parse().unwrap_or_else(|_| usage()),
            "--out-port" => a.out_port = val().parse().unwrap_or_else(|_| usage()),
            "--priority" => a.priority = val().parse().unwrap_or_else(|_| usage()),
            "--settle" => a.settle = val().parse().unwrap_or_else(|_| usage()),
            "--json" => a.json = true,
            "--diag" => a.diag = true,
            // `cargo bench` passes --bench to every bench binary.
            "--bench" => {}
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage()
            }
        }
    }
    if !have_target {
        usage()
    }
    a.reps = a.reps.max(1);
    a
}

/// The flow ofbench installs for index `i`.
fn test_flow(i: usize, out_port: u32, priority: u16) -> Message {
    let ip = Ipv4Addr::from(0xC612_0000u32.wrapping_add(i as u32));
    Message::FlowMod(FlowMod::add(
        0,
        priority,
        Match::new().eth_type(0x0800).ipv4_src(ip),
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: out_port,
            max_len: 0xffff,
        }])],
    ))
}

fn pctl(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((q / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn connect(target: Endpoint) -> (SwitchHandle, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let ctx = SessionContext::new(SessionConfig::default(), tx);
    let task = switch::connect(target, ctx);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(SwitchEvent::Connected { handle, .. })) => {
                // Keep draining events so the session never blocks on a full channel.
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                return (handle, task);
            }
            Ok(Some(_)) => continue,
            _ => {
                eprintln!("flow_install: no switch connected within 15 s");
                std::process::exit(1);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let (handle, task) = connect(args.target.clone()).await;
    let mode = format!("{:?}", args.mode).to_lowercase();
    if !args.json {
        println!(
            "gemelo flow_install: target {} dpid {:016x} mode={} n={} reps={}",
            args.target,
            handle.dpid(),
            mode,
            args.count,
            args.reps
        );
    }
    if !args.json {
        println!(
            "size_of::<Message>() = {} bytes",
            std::mem::size_of::<Message>()
        );
    }
    let mut reps: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let mut errors = 0usize;
    for rep in 0..args.reps {
        handle
            .transact(vec![Message::FlowMod(FlowMod::delete(
                TABLE_ALL,
                Match::new(),
            ))])
            .await
            .expect("delete all flows");
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        let mut r = serde_json::Map::new();
        match args.mode {
            Mode::Latency => {
                let msgs: Vec<Message> = (0..args.count)
                    .map(|i| test_flow(i, args.out_port, args.priority))
                    .collect();
                let mut rtts = Vec::with_capacity(args.count);
                let t0 = Instant::now();
                for m in msgs {
                    let t1 = Instant::now();
                    if handle.transact(vec![m]).await.is_err() {
                        errors += 1;
                    }
                    rtts.push(t1.elapsed().as_secs_f64());
                }
                let dt = t0.elapsed().as_secs_f64();
                rtts.sort_by(|a, b| a.partial_cmp(b).unwrap());
                r.insert("secs".into(), dt.into());
                r.insert("flows_per_s".into(), (args.count as f64 / dt).into());
                r.insert("rtt_min_ms".into(), (rtts[0] * 1e3).into());
                r.insert("rtt_p50_ms".into(), (pctl(&rtts, 50.0) * 1e3).into());
                r.insert("rtt_p90_ms".into(), (pctl(&rtts, 90.0) * 1e3).into());
                r.insert("rtt_p99_ms".into(), (pctl(&rtts, 99.0) * 1e3).into());
                r.insert("rtt_max_ms".into(), (rtts[rtts.len() - 1] * 1e3).into());
            }
            Mode::Pipeline | Mode::Bundle => {
                let msgs: Vec<Message> = (0..args.count)
                    .map(|i| test_flow(i, args.out_port, args.priority))
                    .collect();
                if args.diag && args.mode == Mode::Bundle {
                    // Diagnostic (--diag), not part of the timed install: what SwitchHandle::bundle's
                    // wrapping (one Box and one Vec slot per message) costs on its own. It warms
                    // the heap for the timed install that follows, so it is off by default.
                    let copy = msgs.clone();
                    let tw = Instant::now();
                    let wrapped: Vec<Message> = copy
                        .into_iter()
                        .map(|m| {
                            Message::BundleAdd(gemelo::openflow::BundleAdd {
                                bundle_id: 0,
                                flags: 3,
                                message: Box::new(m),
                                inner_xid: 0,
                            })
                        })
                        .collect();
                    r.insert("wrap_ms".into(), (tw.elapsed().as_secs_f64() * 1e3).into());
                    drop(wrapped);
                }
                let t0 = Instant::now();
                let res = if args.mode == Mode::Bundle {
                    handle.bundle(msgs).await
                } else {
                    handle.transact(msgs).await
                };
                let dt = t0.elapsed().as_secs_f64();
                if let Err(e) = res {
                    eprintln!("rep {}: {e}", rep + 1);
                    errors += 1;
                }
                r.insert("secs".into(), dt.into());
                r.insert("flows_per_s".into(), (args.count as f64 / dt).into());
            }
        }
        r.insert("errors".into(), errors.into());
        errors = 0;
        if !args.json {
            let line: Vec<String> = r
                .iter()
                .map(|(k, v)| format!("{k}={:.4}", v.as_f64().unwrap_or(f64::NAN)))
                .collect();
            println!("rep {}: {}", rep + 1, line.join(" "));
        }
        reps.push(r);
    }
    let _ = handle
        .transact(vec![Message::FlowMod(FlowMod::delete(
            TABLE_ALL,
            Match::new(),
        ))])
        .await;
    task.abort();
    let mut med = serde_json::Map::new();
    for k in reps[0].keys() {
        let vals: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.get(k).and_then(|v| v.as_f64()))
            .collect();
        med.insert(k.clone(), median(vals).into());
    }
    if args.json {
        let out =
            serde_json::json!({"mode": mode, "count": args.count, "reps": reps, "median": med});
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    } else {
        let line: Vec<String> = med
            .iter()
            .map(|(k, v)| format!("{k}={:.4}", v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!(
            "RESULT: gemelo flow_install mode={} n={} reps={} median: {}",
            mode,
            args.count,
            reps.len(),
            line.join(" ")
        );
    }
}
