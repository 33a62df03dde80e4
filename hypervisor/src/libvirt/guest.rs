//! The init of a libvirt twin host: one POSIX `sh` script, PID 1 of an LXC
//! container or of a QEMU guest's initramfs, that gives the host its
//! hostname, addresses and routes, starts its decoy launches and says when
//! they listen.
//!
//! Its network settings come first as shell variables: written into the
//! script for LXC, read from the kernel command line for QEMU (`gm.host=`,
//! `gm.if=MAC=IP/P,IP/P` once per interface, `gm.gw=`, `gm.fwd=`), so one QEMU
//! initramfs base serves every host. Interfaces are found by MAC (names
//! differ between LXC and QEMU). It then starts every `Launch` in the
//! background with its output in `LOGDIR/NAME.log`, waits until every
//! `listens` socket appears in `/proc/net/{tcp,tcp6,udp,udp6}` (no tools
//! needed) and prints `READY` or `FAILED: why` on its own output: the
//! backend reads that line (LXC: `init.log` in the host dir; QEMU: the serial
//! console file). Only busybox applets and `sh` builtins are used, so the
//! same script runs in the initramfs and on the machine's `/usr`.

use crate::decoy::shq;
use crate::launch::Launch;
use crate::plan::TwinHost;

/// What the init prints once every service listens.
pub const READY: &str = "gemelo-init: ready";
/// What it prints, followed by the reason, when a service cannot start.
pub const FAILED: &str = "gemelo-init: failed: ";
/// How long the init waits for its services before it declares failure (s).
pub const LISTEN_WAIT_SECS: u32 = 60;

/// Where the script takes the host's network settings from.
pub enum Settings<'a> {
    /// Written into the script (LXC).
    Inline(&'a TwinHost),
    /// Parsed from `/proc/cmdline` (QEMU; see `kernel_args`).
    KernelCommandLine,
}

/// The kernel command line arguments that carry `host`'s settings to the
/// QEMU init (addresses joined by ',', one `gm.if` per interface).
pub fn kernel_args(host: &TwinHost) -> Vec<String> {
    let mut args = vec![format!("gm.host={}", host.hostname)];
    for i in &host.interfaces {
        args.push(format!("gm.if={}={}", i.mac, i.ips.join(",")));
    }
    if let Some(gw) = &host.gateway {
        args.push(format!("gm.gw={gw}"));
    }
    args.push(format!("gm.fwd={}", u8::from(host.ip_forward)));
    args
}

/// The init script. `busybox` is how applets are called (`/bin/busybox` in
/// both places: LXC sees the machine's busybox-static); `log_dir` is where
/// each launch's output goes.
pub fn init_script(settings: Settings<'_>, launches: &[Launch], log_dir: &str) -> String {
    let mut s = String::from("#!/bin/busybox sh\n# gemelo twin host init (generated)\n");
    s.push_str("bb=/bin/busybox\n");
    // PID 1 of a PID namespace gets only signals it handles: without this
    // trap, libvirt's destroy waits ~2 s before it kills the container.
    s.push_str("trap 'exit 0' TERM\n");
    s.push_str(
        "fail() { echo \"gemelo-init: failed: $*\"; while :; do $bb sleep 3600 & wait $!; done; }\n",
    );
    match settings {
        Settings::Inline(h) => {
            let ifs: Vec<String> = h
                .interfaces
                .iter()
                .map(|i| format!("{}={}", i.mac, i.ips.join(",")))
                .collect();
            s.push_str(&format!("GM_HOST={}\n", shq(&h.hostname)));
            s.push_str(&format!("GM_IFS={}\n", shq(&ifs.join(" "))));
            s.push_str(&format!(
                "GM_GW={}\n",
                shq(h.gateway.as_deref().unwrap_or(""))
            ));
            s.push_str(&format!("GM_FWD={}\n", u8::from(h.ip_forward)));
        }
        Settings::KernelCommandLine => s.push_str(CMDLINE),
    }
    s.push_str(NETWORK);
    for l in launches {
        let mut cmd = String::from("exec");
        if !l.env.is_empty() {
            cmd.push_str(" $bb env");
            for (k, v) in &l.env {
                cmd.push(' ');
                cmd.push_str(&shq(&format!("{k}={v}")));
            }
        }
        for a in &l.argv {
            cmd.push(' ');
            cmd.push_str(&shq(a));
        }
        let log = shq(&format!("{log_dir}/{}.log", l.name));
        s.push_str(&format!(
            "( {cmd} ) >{log} 2>&1 </dev/null &\npids=\"$pids {}:$!\"\n",
            l.name
        ));
    }
    let listens: Vec<String> = launches
        .iter()
        .flat_map(|l| l.listens.iter().map(|(p, n)| format!("{p}:{n}")))
        .collect();
    s.push_str(&format!("listens={}\n", shq(&listens.join(" "))));
    s.push_str(&WAIT.replace("@SECS@", &(LISTEN_WAIT_SECS * 10).to_string()));
    s
}

/// QEMU: the settings from the kernel command line (busybox mounts first).
const CMDLINE: &str = r#"$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev 2>/dev/null
[ -f /gm/modules.sh ] && . /gm/modules.sh
GM_IFS=
for a in $($bb cat /proc/cmdline); do
  case $a in
    gm.host=*) GM_HOST=${a#gm.host=} ;;
    gm.if=*) GM_IFS="$GM_IFS ${a#gm.if=}" ;;
    gm.gw=*) GM_GW=${a#gm.gw=} ;;
    gm.fwd=*) GM_FWD=${a#gm.fwd=} ;;
  esac
done
"#;

/// Hostname, interfaces by MAC, addresses, default route, forwarding.
const NETWORK: &str = r#"$bb hostname "$GM_HOST" || fail "cannot set hostname $GM_HOST"
$bb ip link set lo up
for spec in $GM_IFS; do
  mac=${spec%%=*} addrs=${spec#*=} dev=
  for d in /sys/class/net/*; do
    [ "$($bb cat "$d/address")" = "$mac" ] && dev=${d##*/}
  done
  [ -n "$dev" ] || fail "no interface has MAC $mac"
  $bb ip link set "$dev" up || fail "cannot bring $dev up"
  # Checksums in software, as on every lab and netns twin host (PLATFORM.md's
  # checksum trap on the userspace datapath): an LXC host's veth (a QEMU
  # guest's NIC has offload off in its XML, and no ethtool).
  if [ -x /usr/sbin/ethtool ]; then
    /usr/sbin/ethtool -K "$dev" tx off >/dev/null 2>&1 || fail "cannot turn tx checksum offload off on $dev"
  fi
  for a in $(echo "$addrs" | $bb tr ',' ' '); do
    $bb ip addr add "$a" dev "$dev" || fail "cannot add $a to $dev"
  done
done
if [ -n "$GM_GW" ]; then $bb ip route add default via "$GM_GW" || fail "cannot route via $GM_GW"; fi
echo "${GM_FWD:-0}" > /proc/sys/net/ipv4/ip_forward
pids=
"#;

/// Waits for every listening socket (LISTEN is state 0A in /proc/net/tcp*,
/// a bound UDP socket 07), then reaps children forever (in `wait`, so that
/// SIGTERM ends the init at once).
const WAIT: &str = r#"listening() {
  port=$($bb printf '%04X' "${1#*:}")
  case $1 in
    tcp:*) $bb cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | $bb grep -qE ":$port [0-9A-F]+:[0-9A-F]+ 0A " ;;
    udp:*) $bb cat /proc/net/udp /proc/net/udp6 2>/dev/null | $bb grep -qE ":$port [0-9A-F]+:[0-9A-F]+ 07 " ;;
  esac
}
n=0
while :; do
  missing=
  for l in $listens; do listening "$l" || missing="$missing $l"; done
  [ -z "$missing" ] && break
  for p in $pids; do
    $bb kill -0 "${p#*:}" 2>/dev/null || fail "${p%%:*} exited before listening on$missing"
  done
  n=$((n + 1))
  [ "$n" -ge @SECS@ ] && fail "nothing listens on$missing"
  $bb sleep 0.1
done
echo "gemelo-init: ready"
while :; do wait; $bb sleep 60 & wait $!; done
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::host_with;
    use std::path::PathBuf;

    fn decoy_launch() -> Launch {
        Launch {
            name: "decoy".into(),
            argv: vec![
                "/gm/gemelo-decoy".into(),
                "decoy".into(),
                "--spec".into(),
                "/gm/decoy-spec.json".into(),
            ],
            env: vec![("RUST_LOG".into(), "it's".into())],
            files: vec![(PathBuf::from("/gm/decoy-spec.json"), b"{}".to_vec(), 0o644)],
            listens: vec![("tcp".into(), 22), ("udp".into(), 161)],
        }
    }

    #[test]
    fn kernel_args_carry_every_interface_and_route() {
        let mut h = host_with("ssh", 22, "OpenSSH", serde_json::Value::Null);
        h.gateway = Some("10.10.1.1".into());
        h.interfaces[0].ips.push("10.10.1.11/24".into());
        assert_eq!(
            kernel_args(&h),
            [
                "gm.host=web1",
                "gm.if=02:00:00:00:00:01=10.10.1.10/24,10.10.1.11/24",
                "gm.gw=10.10.1.1",
                "gm.fwd=0"
            ]
        );
    }

    #[test]
    fn inline_script_quotes_settings_and_launches() {
        let mut h = host_with("ssh", 22, "OpenSSH", serde_json::Value::Null);
        h.hostname = "web'1".into();
        let s = init_script(Settings::Inline(&h), &[decoy_launch()], "/run/x");
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(s.contains("GM_HOST='web'\\''1'\n"), "{s}");
        assert!(s.contains("GM_IFS='02:00:00:00:00:01=10.10.1.10/24'\n"));
        assert!(s.contains("GM_GW=''\n"));
        assert!(s.contains(
            "( exec $bb env 'RUST_LOG=it'\\''s' '/gm/gemelo-decoy' 'decoy' '--spec' '/gm/decoy-spec.json' ) >'/run/x/decoy.log' 2>&1 </dev/null &\n"
        ), "{s}");
        assert!(s.contains("listens='tcp:22 udp:161'\n"));
        assert!(s.contains("[ \"$n\" -ge 600 ]"));
        assert!(!s.contains("/proc/cmdline"));
    }

    #[test]
    fn kernel_command_line_script_mounts_and_parses() {
        let s = init_script(Settings::KernelCommandLine, &[], "/gm");
        assert!(s.contains("for a in $($bb cat /proc/cmdline)"));
        assert!(s.contains("$bb mount -t proc proc /proc"));
        assert!(s.contains("listens=''\n"));
    }

    /// The script is valid `sh` (parsed, not run).
    #[test]
    fn script_parses() {
        let h = host_with("ssh", 22, "OpenSSH", serde_json::Value::Null);
        for s in [
            init_script(Settings::Inline(&h), &[decoy_launch()], "/run/x"),
            init_script(Settings::KernelCommandLine, &[decoy_launch()], "/gm"),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
