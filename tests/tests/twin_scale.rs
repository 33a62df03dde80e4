//! Build time of a netns twin of N hosts (run by `benches/twin/vs-mininet.sh`;
//! ignored in CI). A synthetic `TwinPlan`: N hosts on one segment, each with
//! one HTTP service (busybox httpd), built with `twin::build` (which returns
//! once every service listens), then polled from the observer namespace until
//! every host answers HTTP 200; then destroyed. Twice per repetition: cold
//! (the twin switch starts within the build) and warm (the twin switch and
//! observer already run, built from the same plan without hosts). Prints one
//! JSON line per N and repetition.
//!
//! Environment: `GEMELO_TWIN_SIZES` (default "10,50,100"), `GEMELO_TWIN_REPS` (default 1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gemelo_hypervisor::fabric;
use gemelo_hypervisor::plan::{
    Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinPlan, TwinSegment, TwinSwitch,
};
use gemelo_hypervisor::twin::{self, TwinOptions};
use gemelo_hypervisor::{Launch, TwinState, TwinStatus};
use gemelo_tests::{twin_session_or_skip, TWIN_RUN_DIR};

const NO_CONTROLLER: &str = "unix:/run/gemelo/twin-scale-no-controller.sock";

fn ip_of(i: usize) -> String {
    format!("10.78.{}.{}", i / 250, i % 250 + 1)
}

fn plan(n: usize) -> TwinPlan {
    let hosts = (0..n)
        .map(|i| TwinHost {
            name: format!("s{i}"),
            mirrors: vec![format!("02:78:00:00:{:02x}:{:02x}", i / 256, i % 256)],
            hostname: format!("s{i}"),
            interfaces: vec![TwinInterface {
                mac: format!("02:78:00:00:{:02x}:{:02x}", i / 256, i % 256),
                ips: vec![format!("{}/16", ip_of(i))],
                segment: "10.78.0.0/16".into(),
                vlan: None,
            }],
            gateway: None,
            ip_forward: false,
            backend: Backend::Netns,
            services: vec![DecoySpec {
                port: 80,
                proto: "tcp".into(),
                name: "http".into(),
                product: None,
                version: None,
                banner: None,
                mode: DecoyMode::Emulated,
                details: serde_json::Value::Null,
            }],
            honeytoken: false,
        })
        .collect();
    TwinPlan {
        switch: TwinSwitch {
            namespace: "gm-twin".into(),
            rundir: format!("{TWIN_RUN_DIR}/ovs"),
            bridge: "gm-twin0".into(),
            dpid: 0x0000_7477_696e_0078,
        },
        observer_namespace: "gm-twin-observer".into(),
        segments: vec![TwinSegment {
            cidr: "10.78.0.0/16".into(),
            vlan: None,
            gateway: None,
        }],
        hosts,
    }
}

fn launches(host: &TwinHost, dir: &Path) -> Result<Vec<Launch>, String> {
    Ok(vec![Launch {
        name: "httpd".into(),
        argv: [
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            &dir.join("www").display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        env: vec![],
        files: vec![(
            PathBuf::from("www/index.html"),
            format!("{}\n", host.hostname).into_bytes(),
            0o644,
        )],
        listens: vec![("tcp".into(), 80)],
    }])
}

fn all_answer(status: &TwinStatus, n: usize) -> usize {
    let script: String = (0..n)
        .map(|i| {
            format!(
                "curl -s -o /dev/null -w '%{{http_code}}\\n' -m 2 http://{}/ &\n",
                ip_of(i)
            )
        })
        .chain(["wait\n".to_string()])
        .collect();
    let out = fabric::observer_command(status, &["sh", "-c", &script])
        .output()
        .expect("observer curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count()
}

#[test]
#[ignore]
fn twin_build_time_by_size() {
    let _session = twin_session_or_skip!();
    let sizes: Vec<usize> = std::env::var("GEMELO_TWIN_SIZES")
        .unwrap_or_else(|_| "10,50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reps: usize = std::env::var("GEMELO_TWIN_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let opts = TwinOptions {
        controller: NO_CONTROLLER.into(),
        run_dir: TWIN_RUN_DIR.into(),
        launches: Box::new(launches),
        decoy_exe: PathBuf::new(),
        events: PathBuf::new(),
    };
    for &n in &sizes {
        for _ in 0..reps {
            // Cold: the twin switch starts with the hosts.
            twin::destroy(Path::new(TWIN_RUN_DIR)).expect("clear");
            let (built, ready) = timed_build(&plan(n), &opts, n);
            let td = Instant::now();
            twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
            let destroyed = td.elapsed().as_secs_f64();
            // Warm: the twin switch (and observer) already run, as Mininet's
            // Open vSwitch does when its timing starts.
            let mut empty = plan(n);
            empty.hosts.clear();
            timed_build(&empty, &opts, 0);
            let (warm_built, warm_ready) = timed_build(&plan(n), &opts, n);
            twin::destroy(Path::new(TWIN_RUN_DIR)).expect("destroy");
            println!(
                "{}",
                serde_json::json!({"n": n, "build_s": built, "all_answer_s": ready, "destroy_s": destroyed,
                    "warm_build_s": warm_built, "warm_all_answer_s": warm_ready})
            );
        }
    }
}

/// Builds `plan` and polls its `n` hosts from the observer until all answer
/// HTTP 200: (seconds until `build` returned, seconds until all answered).
fn timed_build(plan: &TwinPlan, opts: &TwinOptions, n: usize) -> (f64, f64) {
    let t = Instant::now();
    let status = twin::build(plan, opts, &mut |_, _| {}).expect("build");
    let built = t.elapsed().as_secs_f64();
    assert_eq!(
        status.state,
        TwinState::Ready,
        "{:?}",
        status.hosts.iter().find(|h| h.error.is_some())
    );
    // No controller: a plain learning switch (gemelo would program it).
    let mgmt = format!(
        "unix:{}/{}.mgmt",
        status.switch.rundir, status.switch.bridge
    );
    let ok = Command::new("ovs-ofctl")
        .args([
            "-O",
            "OpenFlow13",
            "add-flow",
            &mgmt,
            "priority=0,actions=NORMAL",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut answering = 0;
    while n > 0 && t.elapsed().as_secs_f64() < built + 60.0 {
        answering = all_answer(&status, n);
        if answering == n {
            break;
        }
    }
    assert_eq!(answering, n, "hosts answering HTTP");
    (built, t.elapsed().as_secs_f64())
}
