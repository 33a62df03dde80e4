//! QEMU twin hosts (`qemu:///system`): a small virtual machine per host, its
//! own kernel, for services that may hand an attacker code execution.
//!
//! PLATFORM.md: there is no usable KVM here, so the domain is
//! `<domain type='qemu'>` (TCG). The guest boots this machine's Debian kernel
//! (`/boot/vmlinuz-VERSION`, package linux-image-amd64) with an initramfs
//! gemelo writes per host (`initramfs`): busybox, `gemelo-decoy` and its glibc
//! libraries, the virtio-net and virtio-console modules, and an `/init`
//! (`guest`) that reads the host's hostname, MACs, addresses, gateway from the
//! kernel command line. Real daemons are not in the initramfs, so every
//! service runs in the decoy's emulation (`decoy::launches_with` with nothing
//! installed); a service the emulation cannot serve (UDP other than SNMP) is
//! left out and named in the host's `error`. The serial console goes to
//! `console.log` in the host dir, where the init's `READY` line appears. The
//! NIC is virtio with host checksum offload off (PLATFORM.md's checksum trap
//! on the userspace datapath). The decoys' events leave through a
//! virtio-serial channel, not the network (`channel`): the guest's init
//! starts its end, and `start` the machine's end (`relay`) once the domain
//! runs; `check` reports a host whose relay stopped. ~5 s to a listening
//! service, 128 MiB of guest RAM (~200 MB of host RSS each).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::backend::{HostBackend, HostContext};
use crate::decoy::{self, Installed};
use crate::launch::Launch;
use crate::plan::{Backend, TwinHost};
use crate::status::{HostState, TwinHostStatus};

use super::channel;
use super::guest::{self, Settings};
use super::initramfs::{self, Base, Entry};
use super::lxc::order_like;
use super::relay;
use super::{
    check_host, domain_name, failed, fresh_dir, interfaces_xml, starting_status, stop_host,
    wait_ready, xml_escape, Conn,
};

pub const URI: &str = "qemu:///system";
pub const MEMORY_MIB: u32 = 128;
/// TCG boots are slow, more so several at once on two cores.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Where the decoy binary lies inside the guest.
pub const DECOY_IN_GUEST: &str = "/gm/gemelo-decoy";

pub struct Qemu {
    /// The `gemelo-decoy` binary to put in every guest (built with gemelo);
    /// it is also each guest's event relay on this machine.
    pub decoy_exe: PathBuf,
    /// The controller's decoy event socket, where the relays send.
    pub events: PathBuf,
}

/// The kernel a guest boots, and its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub image: PathBuf,
    pub modules_dir: PathBuf,
}

/// The newest `/boot/vmlinuz-VERSION` whose `/lib/modules/VERSION` exists.
pub fn find_kernel() -> Result<Kernel, String> {
    let mut found: Vec<(String, Kernel)> = std::fs::read_dir("/boot")
        .map_err(|e| format!("/boot: {e}"))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("vmlinuz-")?.to_owned();
            let modules_dir = Path::new("/lib/modules").join(&version);
            modules_dir.join("modules.dep").is_file().then(|| {
                (
                    version,
                    Kernel {
                        image: e.path(),
                        modules_dir,
                    },
                )
            })
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.pop().map(|(_, k)| k).ok_or_else(|| {
        "no /boot/vmlinuz-VERSION with /lib/modules/VERSION/modules.dep (Debian: apt-get install linux-image-amd64)".into()
    })
}

/// The kernel command line of a guest.
pub fn cmdline(h: &TwinHost) -> String {
    let mut args = vec![
        "console=ttyS0".to_owned(),
        "quiet".into(),
        "panic=-1".into(),
        "rdinit=/init".into(),
    ];
    args.extend(guest::kernel_args(h));
    args.join(" ")
}

/// The domain XML of a QEMU twin host (`dir`: its host dir, for the
/// console log and the event channel's socket).
pub fn domain_xml(h: &TwinHost, bridge: &str, kernel: &Path, initrd: &Path, dir: &Path) -> String {
    let nic =
        "      <model type='virtio'/>\n      <driver name='qemu'><host csum='off'/></driver>\n";
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{nics}    <serial type='file'>
      <source path='{console}'/>
    </serial>
    <channel type='unix'>
      <source mode='bind' path='{channel}'/>
      <target type='virtio' name='{port}'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
",
        name = xml_escape(&domain_name(&h.name)),
        kernel = xml_escape(&kernel.display().to_string()),
        initrd = xml_escape(&initrd.display().to_string()),
        cmdline = xml_escape(&cmdline(h)),
        console = xml_escape(&dir.join("console.log").display().to_string()),
        channel = xml_escape(&dir.join(channel::CHANNEL_FILE).display().to_string()),
        port = channel::PORT,
        nics = interfaces_xml(bridge, &h.interfaces, nic),
    )
}

/// The guest's end of the event channel: the decoys' socket to the port.
pub fn relay_launch() -> Launch {
    Launch {
        name: "relay".into(),
        argv: [
            DECOY_IN_GUEST,
            "relay",
            "guest",
            "--socket",
            channel::GUEST_SOCKET,
            "--port",
            channel::PORT,
        ]
        .map(str::to_string)
        .to_vec(),
        env: vec![],
        files: vec![],
        listens: vec![],
    }
}

/// What a guest runs: the event relay, then every service emulated by the
/// decoy (files under /gm); and the services left out.
pub fn guest_launches(h: &TwinHost) -> Result<(Vec<Launch>, Vec<String>), String> {
    let mut l = vec![relay_launch()];
    l.extend(
        decoy::launches_with(
            h,
            Path::new("/gm"),
            Path::new(DECOY_IN_GUEST),
            Path::new(channel::GUEST_SOCKET),
            &Installed::default(),
        )
        .map_err(|e| e.to_string())?,
    );
    let served: Vec<(String, u16)> = l.iter().flat_map(|x| x.listens.clone()).collect();
    let left_out = h
        .services
        .iter()
        .filter(|s| !served.contains(&(s.proto.clone(), s.port)))
        .map(|s| format!("{}/{} ({})", s.proto, s.port, s.name))
        .collect();
    Ok((l, left_out))
}

/// The shared part of every guest's initramfs, as archive bytes (no trailer).
fn base_archive(decoy_exe: &Path, kernel: &Kernel, scratch: &Path) -> Result<Vec<u8>, String> {
    if !decoy_exe.is_file() {
        return Err(format!(
            "{}: the decoy binary for QEMU guests is missing (cargo build --bins builds gemelo-decoy next to gemelo)",
            decoy_exe.display()
        ));
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return Err("/bin/busybox is missing (Debian: apt-get install busybox-static)".into());
    }
    // A debug build carries ~20 MB of debug info the guest does not need.
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let stripped = scratch.join("gemelo-decoy");
    let decoy = match Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(decoy_exe)
        .status()
    {
        Ok(s) if s.success() => stripped,
        _ => decoy_exe.to_path_buf(),
    };
    let ldd = Command::new("ldd")
        .arg(&decoy)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    let libraries = initramfs::parse_ldd(&String::from_utf8_lossy(&ldd.stdout));
    let dep_file = kernel.modules_dir.join("modules.dep");
    let dep =
        std::fs::read_to_string(&dep_file).map_err(|e| format!("{}: {e}", dep_file.display()))?;
    let modules = initramfs::module_load_order(&dep, &initramfs::GUEST_MODULES);
    let entries = initramfs::base_entries(&Base {
        busybox,
        decoy: &decoy,
        decoy_at: DECOY_IN_GUEST,
        libraries: &libraries,
        modules_dir: &kernel.modules_dir,
        modules: &modules,
    });
    let mut out = Vec::new();
    let mut ino = 0;
    initramfs::write_newc(&mut out, &entries, &mut ino).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Writes the host's initramfs (`base` + its own files) and returns the
/// domain XML; the services left out, if any.
fn prepare(
    cx: &HostContext<'_>,
    h: &TwinHost,
    kernel: &Kernel,
    base: &[u8],
) -> Result<(String, Vec<String>), String> {
    let dir = cx.host_dir(&h.name);
    fresh_dir(&dir)?;
    let (launches, left_out) = guest_launches(h)?;
    let init = guest::init_script(Settings::KernelCommandLine, &launches, "/gm");
    let files: Vec<(PathBuf, Vec<u8>, u32)> =
        launches.iter().flat_map(|l| l.files.clone()).collect();
    let entries: Vec<Entry> = initramfs::host_entries(&init, &files);
    let mut archive = base.to_vec();
    let mut ino = 1_000_000;
    initramfs::write_newc(&mut archive, &entries, &mut ino).map_err(|e| e.to_string())?;
    initramfs::trailer(&mut archive).map_err(|e| e.to_string())?;
    let initrd = dir.join("initrd.img");
    std::fs::write(&initrd, &archive).map_err(|e| format!("{}: {e}", initrd.display()))?;
    Ok((
        domain_xml(h, &cx.plan.switch.bridge, &kernel.image, &initrd, &dir),
        left_out,
    ))
}

impl HostBackend for Qemu {
    fn kind(&self) -> Backend {
        Backend::Qemu
    }

    fn start(
        &self,
        cx: &HostContext<'_>,
        hosts: &[&TwinHost],
        progress: &mut dyn FnMut(&str, HostState),
    ) -> Vec<TwinHostStatus> {
        let shared = find_kernel().and_then(|k| {
            let base = base_archive(&self.decoy_exe, &k, &cx.run_dir.join("libvirt"))?;
            Ok((k, base))
        });
        let conn = shared.and_then(|s| Conn::open(URI).map(|c| (s, c)).map_err(|e| e.to_string()));
        let ((kernel, base), conn) = match conn {
            Ok(x) => x,
            Err(e) => {
                return hosts
                    .iter()
                    .map(|h| failed(starting_status(cx, h), e.clone(), progress))
                    .collect()
            }
        };
        let mut started: Vec<(TwinHostStatus, PathBuf)> = Vec::new();
        let mut out = Vec::new();
        for h in hosts {
            progress(&h.name, HostState::Starting);
            let mut hs = starting_status(cx, h);
            let dir = cx.host_dir(&h.name);
            let console = dir.join("console.log");
            match prepare(cx, h, &kernel, &base).and_then(|(xml, left_out)| {
                // libvirt adds the guest's ports to the bridge: the switch must be up.
                cx.switch_up()?;
                conn.create(&xml).map_err(|e| e.to_string())?;
                if let Err(e) = relay::start(&self.decoy_exe, &dir, &h.name, &self.events) {
                    let _ = conn.remove(&domain_name(&h.name));
                    return Err(format!("its event relay did not start: {e}"));
                }
                Ok(left_out)
            }) {
                Ok(left_out) => {
                    if !left_out.is_empty() {
                        hs.error = Some(format!(
                            "not served in a QEMU guest (no emulation): {}",
                            left_out.join(", ")
                        ));
                    }
                    started.push((hs, console));
                }
                Err(e) => out.push(failed(hs, e, progress)),
            }
        }
        wait_ready(&conn, &mut started, READY_TIMEOUT, progress);
        out.extend(started.into_iter().map(|(hs, _)| hs));
        order_like(hosts, out)
    }

    fn stop(&self, cx: &HostContext<'_>, host: &str) -> Result<(), String> {
        relay::stop(&cx.host_dir(host));
        stop_host(URI, cx, host)
    }

    fn check(&self, host: &TwinHostStatus) -> Option<String> {
        check_host(URI, host).or_else(|| relay::running(host.dir.as_deref()?).err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::host_with;
    use crate::plan::{DecoyMode, DecoySpec};

    #[test]
    fn domain_xml_is_a_tcg_guest_on_the_twin_bridge() {
        let mut h = host_with("ssh", 22, "OpenSSH", serde_json::Value::Null);
        h.gateway = Some("10.10.1.1".into());
        let xml = domain_xml(
            &h,
            "gm-twin0",
            Path::new("/boot/vmlinuz-6.1.0-56-amd64"),
            Path::new("/run/gemelo/twin/hosts/web1/initrd.img"),
            Path::new("/run/gemelo/twin/hosts/web1"),
        );
        assert!(
            xml.starts_with("<domain type='qemu'>\n  <name>gm-twin-web1</name>\n"),
            "{xml}"
        );
        assert!(xml.contains("<memory unit='MiB'>128</memory>"));
        assert!(xml.contains("<kernel>/boot/vmlinuz-6.1.0-56-amd64</kernel>"));
        assert!(xml.contains("<initrd>/run/gemelo/twin/hosts/web1/initrd.img</initrd>"));
        assert!(xml.contains(
            "<cmdline>console=ttyS0 quiet panic=-1 rdinit=/init gm.host=web1 gm.if=02:00:00:00:00:01=10.10.1.10/24 gm.gw=10.10.1.1 gm.fwd=0</cmdline>"
        ), "{xml}");
        assert!(xml.contains(
            "      <source bridge='gm-twin0'/>\n      <virtualport type='openvswitch'/>\n      <mac address='02:00:00:00:00:01'/>\n      <model type='virtio'/>\n      <driver name='qemu'><host csum='off'/></driver>\n"
        ), "{xml}");
        assert!(xml.contains("<source path='/run/gemelo/twin/hosts/web1/console.log'/>"));
        // The event channel: a virtio-serial port whose other end is a Unix
        // socket in the host dir, which QEMU offers (bind) to the relay.
        assert!(xml.contains(
            "    <channel type='unix'>\n      <source mode='bind' path='/run/gemelo/twin/hosts/web1/events.channel'/>\n      <target type='virtio' name='org.gemelo.events.0'/>\n    </channel>\n"
        ), "{xml}");
        assert_eq!(xml.matches("<channel ").count(), 1);
        // One NIC, on the bridge: no libvirt network, no user networking, no disk.
        assert_eq!(xml.matches("<interface ").count(), 1);
        assert!(!xml.contains("type='network'") && !xml.contains("type='user'"));
        assert!(!xml.contains("<disk"));
        assert!(!xml.contains("kvm"));
    }

    #[test]
    fn guests_emulate_tcp_services_and_snmp_and_name_the_rest() {
        let mut h = host_with("ssh", 22, "OpenSSH", serde_json::Value::Null);
        let udp = |port: u16, name: &str, product: &str| DecoySpec {
            port,
            proto: "udp".into(),
            name: name.into(),
            product: None,
            version: None,
            banner: None,
            mode: DecoyMode::Daemon {
                product: product.into(),
            },
            details: serde_json::Value::Null,
        };
        h.services.push(udp(161, "snmp", "net-snmp"));
        h.services.push(udp(123, "ntp", "ntpd"));
        let (l, left_out) = guest_launches(&h).unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["relay", "decoy"]);
        // The relay binds the socket the decoy sends to, before the decoy starts.
        assert_eq!(
            l[0].argv,
            [
                DECOY_IN_GUEST,
                "relay",
                "guest",
                "--socket",
                "/gm/events.sock",
                "--port",
                "org.gemelo.events.0"
            ]
        );
        assert!(l[0].listens.is_empty());
        assert_eq!(l[1].argv[0], DECOY_IN_GUEST);
        assert_eq!(
            l[1].argv
                .iter()
                .skip_while(|a| *a != "--events")
                .nth(1)
                .map(String::as_str),
            Some("/gm/events.sock")
        );
        assert_eq!(
            l[1].listens,
            vec![("tcp".to_string(), 22), ("udp".to_string(), 161)]
        );
        assert_eq!(l[1].files[0].0, PathBuf::from("/gm/decoy-spec.json"));
        assert_eq!(left_out, ["udp/123 (ntp)"]);
        // The init starts the relay and waits for the decoy's ports.
        let init = guest::init_script(Settings::KernelCommandLine, &l, "/gm");
        assert!(init.contains(
            "( exec '/gm/gemelo-decoy' 'relay' 'guest' '--socket' '/gm/events.sock' '--port' 'org.gemelo.events.0' ) >'/gm/relay.log' 2>&1 </dev/null &\n"
        ), "{init}");
        assert!(init.contains("listens='tcp:22 udp:161'\n"), "{init}");
    }
}
