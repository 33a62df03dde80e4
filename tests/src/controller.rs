//! A real `gemelo serve` process for end-to-end tests.
//!
//! Started from the built binary (`GEMELO_BIN`, else `target/debug/gemelo`), on a
//! free API port and its own data directory; stopped (SIGTERM, then SIGKILL) when
//! dropped, so a failing test leaves no controller behind.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The gemelo binary under test.
pub fn gemelo_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GEMELO_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/gemelo")
}

/// A fresh temp dir `/tmp/gm-test-NAME-PID`, removed and recreated.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/gm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct ControllerProc {
    child: Option<Child>,
    pub api: String,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl ControllerProc {
    /// Starts `gemelo serve` with `args` (e.g. `--listen unix:...`), the API on a free port.
    /// A built twin does not follow the inventory (`--twin-follow 0`) unless `args`
    /// ask for it: a test's twin stays the one it built while the test measures it.
    pub fn start(data: &Path, args: &[&str]) -> Result<ControllerProc> {
        let bin = gemelo_bin();
        if !bin.exists() {
            bail!(
                "{} is missing: build it first (cargo build -p gemelo) or set GEMELO_BIN",
                bin.display()
            );
        }
        let port = free_port();
        let api = format!("127.0.0.1:{port}");
        let log = data.with_extension(format!("serve-{port}.log"));
        let child = Command::new(&bin)
            .arg("serve")
            .args(["--api", &api, "--data"])
            .arg(data.join("store"))
            .args(args)
            .args(if args.contains(&"--twin-follow") {
                &[][..]
            } else {
                &["--twin-follow", "0"][..]
            })
            .env("GEMELO_LOG", "info,sled=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let c = ControllerProc {
            child: Some(child),
            api: format!("http://{api}"),
            data: data.to_path_buf(),
            log,
        };
        c.wait_healthy(Duration::from_secs(10))?;
        Ok(c)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn wait_healthy(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.get("/api/v1/health").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "controller not healthy in {limit:?}; log:\n{}",
            self.log_text()
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path; Ok((status, body)) for any HTTP answer.
    pub fn get_status(&self, path: &str) -> Result<(u16, String)> {
        match ureq::get(&format!("{}{path}", self.api))
            .timeout(Duration::from_secs(10))
            .call()
        {
            Ok(r) => Ok((r.status(), r.into_string()?)),
            Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string()?)),
            Err(e) => Err(anyhow!("GET {path}: {e}")),
        }
    }

    /// GET a path that must answer 200 with JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        let (code, body) = self.get_status(path)?;
        if code != 200 {
            bail!("GET {path}: HTTP {code}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET {path}: not JSON: {body}"))
    }

    /// Waits until `n` switches are connected and their baseline reconciled.
    pub fn wait_switches(&self, n: usize, limit: Duration) -> Result<Vec<Value>> {
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(v) = self.get("/api/v1/switches") {
                let ready = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|s| s["connected"] == true && !s["reconciled"].is_null())
                            .count()
                    })
                    .unwrap_or(0);
                if ready >= n {
                    return Ok(v.as_array().cloned().unwrap_or_default());
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{n} switches not ready in {limit:?}: {last}\nlog:\n{}",
            self.log_text()
        )
    }

    /// Waits until discovery has identified every host of the lab: a hostname
    /// and, for each service the lab runs on it (LLDP aside), its port with a
    /// product. A twin built before that would lack decoys.
    pub fn wait_identified(&self, status: &gemelo::lab::LabStatus, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let known = status
                .hosts
                .iter()
                .filter(|h| {
                    let wanted: Vec<u16> = h
                        .services
                        .iter()
                        .filter(|s| s.name != "lldp")
                        .map(|s| s.port)
                        .collect();
                    h.interfaces.iter().all(|i| {
                        self.get(&format!("/api/v1/hosts/{}", i.mac))
                            .is_ok_and(|v| {
                                let identified = |port: u16| {
                                    v["services"].as_array().is_some_and(|s| {
                                        s.iter()
                                            .any(|s| s["port"] == port && !s["product"].is_null())
                                    })
                                };
                                !v["hostname"].is_null() && wanted.iter().all(|p| identified(*p))
                            })
                    })
                })
                .count();
            if known == status.hosts.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "discovery identified {known}/{} hosts with hostname and every service",
                    status.hosts.len()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `POST /api/v1/twin` and waits for the build to end; the final status.
    pub fn build_twin(&self, limit: Duration) -> Result<Value> {
        self.build_twin_with("", limit)
    }

    /// `build_twin` with a twin config (JSON, as `gemelo twin build --config` sends it).
    pub fn build_twin_with(&self, config: &str, limit: Duration) -> Result<Value> {
        let r = match ureq::post(&format!("{}/api/v1/twin", self.api)).send_string(config) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => bail!(
                "POST /api/v1/twin: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => bail!("POST /api/v1/twin: {e}"),
        };
        if r.status() != 202 {
            bail!("POST /api/v1/twin answered {}", r.status());
        }
        let t = Instant::now();
        loop {
            let s = self.get("/api/v1/twin")?;
            if s["state"] != "building" && s["state"] != "absent" {
                return Ok(s);
            }
            if t.elapsed() > limit {
                bail!("twin not built within {limit:?}: {s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the controller with SIGKILL (a crash), without cleanup.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stops a child we started: SIGTERM (so it can clean up, e.g. remove its socket
/// files or flush a capture), SIGKILL if it is still there after 3 s.
pub fn stop_child(mut c: Child) {
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(c);
        }
    }
}
