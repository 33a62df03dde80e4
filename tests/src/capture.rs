//! tcpdump captures inside namespaces, read back with a filter; stopped when
//! dropped, so a failing test leaves no tcpdump behind.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Capture {
    pub name: String,
    file: PathBuf,
    child: Option<Child>,
}

impl Capture {
    /// Starts `tcpdump -i any` with `filter` through `cmd` (e.g. `ip netns exec NS`).
    pub fn start(name: &str, mut cmd: Command, file: PathBuf, filter: &str) -> Capture {
        let child = cmd
            .args([
                "tcpdump",
                "-nn",
                "-i",
                "any",
                "--immediate-mode",
                "-U",
                "-w",
            ])
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tcpdump");
        Capture {
            name: name.into(),
            file,
            child: Some(child),
        }
    }

    /// tcpdump has no "ready" signal with `-w`: give captures a moment to open their
    /// sockets. (`--immediate-mode`: packets reach the file as they arrive, not
    /// in ring-buffer blocks that a stop could cut off.)
    pub fn settle() {
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// Panics if tcpdump has exited (a filter it refused, a missing interface):
    /// a capture that never ran would make "nothing seen" meaningless.
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "capture {} is not running: tcpdump exited with {status}",
                    self.name
                );
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            crate::controller::stop_child(c);
        }
    }

    /// Packets in the capture matching `filter`, as `tcpdump -e` prints them.
    pub fn read(&self, filter: &str) -> Vec<String> {
        self.dump(&[], filter)
    }

    /// Packets matching `filter` captured at or after `since`.
    pub fn read_since(&self, filter: &str, since: std::time::SystemTime) -> Vec<String> {
        let t0 = since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.dump(&["-tt"], filter)
            .into_iter()
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(|t| t >= t0)
            })
            .collect()
    }

    /// `tcpdump -nn -e [extra] -r FILE filter`, one line per packet.
    fn dump(&self, extra: &[&str], filter: &str) -> Vec<String> {
        let out = Command::new("tcpdump")
            .args(["-nn", "-e"])
            .args(extra)
            .arg("-r")
            .arg(&self.file)
            .arg(filter)
            .stderr(Stdio::null())
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}
