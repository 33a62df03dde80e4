//! The real daemons behind a lab host's services: their per-host configs and
//! how they are started (by `gemelo_hypervisor::host::daemon`, the machinery
//! the twin's hosts share: foreground, own session, the host's network and UTS
//! namespaces, a private `/run`).

use std::path::Path;

use gemelo_hypervisor::host::daemon::{self as host_daemon, HostPlace};
use gemelo_hypervisor::host::HostError;

use super::status::{DaemonRecord, HostStatus};
use super::system::{create_dir, io_err, run_args, write_file};
use super::topology::{DhcpRole, Host, Proto, ServiceKind, Topology};
use super::LabError;

const MODBUS_PLC_PY: &str = include_str!("modbus_plc.py");

/// Daemon name prefix of DHCP clients (`udhcpc-gm-eth0`) and servers.
pub(crate) const DHCP_CLIENT: &str = "udhcpc";
pub(crate) const DHCP_SERVER: &str = "udhcpd";
/// busybox-static: udhcpd and udhcpc.
const BUSYBOX: &str = "/bin/busybox";
/// Lease time the servers give: clients renew at half of it (30 s), so a
/// controller started after the lab sees every hostname within half a minute.
pub(crate) const DHCP_LEASE_SECS: u32 = 60;

/// udhcpc's event script (busybox ships none). The host's address and route
/// are static, the topology's, and equal its static lease: the script records
/// the lease and never touches the interface (on `deconfig` neither).
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# gemelo lab: udhcpc event script. Records the lease; the interface keeps its
# static address and route (the topology's, which the server leases anyway).
dir=${0%/*}
case "$1" in
bound|renew)
    f="$dir/udhcpc-$interface.lease"
    printf 'interface=%s\nip=%s\nsubnet=%s\nrouter=%s\nserverid=%s\nlease=%s\n' \
        "$interface" "$ip" "$subnet" "$router" "$serverid" "$lease" > "$f.tmp" && mv "$f.tmp" "$f"
    ;;
esac
echo "udhcpc event $1 ${interface:-} ${ip:-}"
exit 0
"#;

/// One daemon to start on a host.
pub(crate) struct Daemon {
    /// Unique per host (names its pid file and log).
    pub name: String,
    pub argv: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    /// The socket it must open before the host counts as up.
    pub listens: Option<(Proto, u16, &'static str)>,
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) use host_daemon::{start_ssh_keygen, wait_children};

/// Writes every config a host's daemons need into its dir and says what to start.
pub(crate) fn prepare(
    topology: &Topology,
    host: &Host,
    hs: &HostStatus,
) -> Result<Vec<Daemon>, LabError> {
    let dir = &hs.dir;
    let name = &host.hostname;
    let mut daemons = Vec::new();
    let device = host.device.clone().unwrap_or_default();
    for svc in &host.services {
        let port = svc.port;
        match svc.kind {
            ServiceKind::Ssh => {
                create_dir(&dir.join("run/sshd"))?;
                let keys: String = ["rsa", "ecdsa", "ed25519"]
                    .iter()
                    .map(|k| format!("HostKey {}\n", p(&dir.join(format!("ssh_host_{k}_key")))))
                    .collect();
                write_file(
                    &dir.join("sshd_config"),
                    &format!(
                        "# gemelo lab host {name}\nPort {port}\nListenAddress 0.0.0.0\n{keys}PidFile {}\n\
                         UsePAM yes\nKbdInteractiveAuthentication no\nX11Forwarding yes\nPrintMotd no\n\
                         AcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
                        p(&dir.join("sshd.pid"))
                    ),
                )?;
                daemons.push(Daemon {
                    name: "sshd".into(),
                    argv: vec![
                        "/usr/sbin/sshd".into(),
                        "-D".into(),
                        "-e".into(),
                        "-f".into(),
                        p(&dir.join("sshd_config")),
                    ],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "ssh")),
                });
            }
            ServiceKind::Http => {
                let www = dir.join("www");
                create_dir(&www)?;
                let title = match (&device.vendor, &device.product) {
                    (Some(vendor), Some(product)) => format!("{vendor} {product} - {name}"),
                    (None, Some(product)) => format!("{product} - {name}"),
                    _ => name.clone(),
                };
                write_file(
                    &www.join("index.html"),
                    &format!("<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{}</p></body></html>\n",
                        topology.description.as_deref().unwrap_or("Internal site")),
                )?;
                let errorlog = dir.join("lighttpd-error.log");
                write_file(&errorlog, "")?;
                run_args("chown", &["www-data:www-data", &p(&errorlog)])?;
                write_file(
                    &dir.join("lighttpd.conf"),
                    &format!(
                        "# gemelo lab host {name}\nserver.document-root = \"{}\"\nserver.port = {port}\nserver.bind = \"0.0.0.0\"\n\
                         server.username = \"www-data\"\nserver.groupname = \"www-data\"\nserver.pid-file = \"{}\"\n\
                         server.errorlog = \"{}\"\nindex-file.names = (\"index.html\")\n\
                         mimetype.assign = (\".html\" => \"text/html\", \".txt\" => \"text/plain\", \".css\" => \"text/css\", \".jpg\" => \"image/jpeg\", \".json\" => \"application/json\")\n",
                        p(&www),
                        p(&dir.join("lighttpd.pid")),
                        p(&errorlog)
                    ),
                )?;
                daemons.push(Daemon {
                    name: "lighttpd".into(),
                    argv: vec![
                        "/usr/sbin/lighttpd".into(),
                        "-D".into(),
                        "-f".into(),
                        p(&dir.join("lighttpd.conf")),
                    ],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "http")),
                });
            }
            ServiceKind::Ftp => {
                // vsftpd wants its chroot dir empty and not writable.
                create_dir(&dir.join("vsftpd-empty"))?;
                let ftp = dir.join("ftp/pub");
                create_dir(&ftp)?;
                write_file(&ftp.join("README.txt"), &format!("{name} file share\n"))?;
                write_file(
                    &dir.join("vsftpd.conf"),
                    &format!(
                        "# gemelo lab host {name}\nlisten=YES\nlisten_ipv6=NO\nbackground=NO\nlisten_port={port}\n\
                         anonymous_enable=YES\nanon_root={}\nlocal_enable=YES\nwrite_enable=NO\n\
                         secure_chroot_dir={}\npasv_enable=YES\npasv_min_port=30000\npasv_max_port=30100\n\
                         xferlog_enable=YES\nvsftpd_log_file={}\nseccomp_sandbox=NO\n",
                        p(&dir.join("ftp")),
                        p(&dir.join("vsftpd-empty")),
                        p(&dir.join("vsftpd-xfer.log"))
                    ),
                )?;
                daemons.push(Daemon {
                    name: "vsftpd".into(),
                    argv: vec!["/usr/sbin/vsftpd".into(), p(&dir.join("vsftpd.conf"))],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "ftp")),
                });
            }
            ServiceKind::Telnet => {
                // inetd's pid file is fixed at /run/inetd.pid: the private /run keeps it per host.
                write_file(
                    &dir.join("inetd.conf"),
                    &format!("{port} stream tcp nowait root /usr/sbin/telnetd telnetd\n"),
                )?;
                daemons.push(Daemon {
                    name: "inetd".into(),
                    argv: vec![
                        "/usr/sbin/inetd".into(),
                        "-i".into(),
                        p(&dir.join("inetd.conf")),
                    ],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "telnet")),
                });
            }
            ServiceKind::Snmp => {
                create_dir(&dir.join("snmp"))?;
                let descr = match (&device.vendor, &device.product) {
                    (Some(v), Some(p)) => format!(
                        "sysDescr {v} {p} {}\n",
                        device.version.as_deref().unwrap_or("")
                    ),
                    _ => String::new(),
                };
                write_file(
                    &dir.join("snmpd.conf"),
                    &format!(
                        "# gemelo lab host {name}\nagentaddress udp:0.0.0.0:{port}\nrocommunity public\nsysName {name}\n\
                         sysLocation {} lab\nsysContact netops@example.net\n{descr}\
                         # else snmpd also opens SMUX on 0.0.0.0:199\nsmuxsocket 127.0.0.1\n",
                        topology.name
                    ),
                )?;
                daemons.push(Daemon {
                    name: "snmpd".into(),
                    argv: vec![
                        "/usr/sbin/snmpd".into(),
                        "-f".into(),
                        "-Lo".into(),
                        "-C".into(),
                        "-c".into(),
                        p(&dir.join("snmpd.conf")),
                        "-p".into(),
                        p(&dir.join("snmpd.pid")),
                    ],
                    env: vec![
                        ("SNMP_PERSISTENT_DIR", p(&dir.join("snmp"))),
                        ("MIBS", String::new()),
                    ],
                    listens: Some((Proto::Udp, port, "snmp")),
                });
            }
            ServiceKind::Mqtt => {
                write_file(
                    &dir.join("mosquitto.conf"),
                    &format!("# gemelo lab host {name}\nlistener {port} 0.0.0.0\nallow_anonymous true\npersistence false\nlog_dest stderr\n"),
                )?;
                daemons.push(Daemon {
                    name: "mosquitto".into(),
                    argv: vec![
                        "/usr/sbin/mosquitto".into(),
                        "-c".into(),
                        p(&dir.join("mosquitto.conf")),
                    ],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "mqtt")),
                });
            }
            ServiceKind::Modbus => {
                let script = dir.join("modbus_plc.py");
                write_file(&script, MODBUS_PLC_PY)?;
                daemons.push(Daemon {
                    name: "modbus".into(),
                    argv: vec![
                        "/usr/bin/python3".into(),
                        "-u".into(),
                        p(&script),
                        "--port".into(),
                        port.to_string(),
                        "--vendor".into(),
                        device.vendor.clone().unwrap_or_else(|| "gemelo lab".into()),
                        "--product".into(),
                        device.product.clone().unwrap_or_else(|| "PLC".into()),
                        "--version".into(),
                        device.version.clone().unwrap_or_else(|| "1.0".into()),
                        "--name".into(),
                        name.clone(),
                    ],
                    env: vec![],
                    listens: Some((Proto::Tcp, port, "modbus")),
                });
            }
        }
    }
    if host.lldp {
        // lldpd chroots its unprivileged half into /run/lldpd.
        create_dir(&dir.join("run/lldpd"))?;
        daemons.push(Daemon {
            name: "lldpd".into(),
            argv: vec![
                "/usr/sbin/lldpd".into(),
                "-d".into(),
                "-u".into(),
                p(&dir.join("lldpd.socket")),
            ],
            env: vec![],
            listens: None,
        });
    }
    for (iface, role) in topology.dhcp_roles(host) {
        let seg = topology.segment(&iface.segment).expect("validated");
        match role {
            DhcpRole::Server => {
                let first = std::net::Ipv4Addr::from(u32::from(seg.cidr.network()) + 1);
                let last = std::net::Ipv4Addr::from(u32::from(seg.cidr.broadcast()) - 1);
                let leases: String = topology
                    .dhcp_static_leases(&seg.name)
                    .into_iter()
                    // Not itself, nor a host's other interface on a shared domain.
                    .filter(|(mac, _, _)| !host.interfaces.iter().any(|i| i.mac == *mac))
                    .map(|(mac, ip, hostname)| format!("# {hostname}\nstatic_lease {mac} {ip}\n"))
                    .collect();
                let conf = dir.join(format!("udhcpd-{}.conf", iface.name));
                // Present from the start (udhcpd complains about a missing one).
                write_file(&dir.join(format!("udhcpd-{}.leases", iface.name)), "")?;
                write_file(
                    &conf,
                    &format!(
                        "# gemelo lab host {name}: DHCP server of segment {} ({})\ninterface {}\nstart {first}\nend {last}\n\
                         lease_file {}\npidfile {}\n# write the lease file (with the clients' hostnames) every 5 s\nauto_time 5\n\
                         min_lease 30\noption subnet {}\noption router {}\noption lease {DHCP_LEASE_SECS}\n\
                         # every host keeps its topology address\n{leases}",
                        seg.name,
                        seg.cidr,
                        iface.name,
                        p(&dir.join(format!("udhcpd-{}.leases", iface.name))),
                        p(&dir.join(format!("udhcpd-{}.pid", iface.name))),
                        seg.cidr.mask(),
                        seg.gateway,
                    ),
                )?;
                daemons.push(Daemon {
                    name: format!("{DHCP_SERVER}-{}", iface.name),
                    argv: vec![BUSYBOX.into(), "udhcpd".into(), "-f".into(), p(&conf)],
                    env: vec![],
                    listens: Some((Proto::Udp, 67, "dhcp")),
                });
            }
            DhcpRole::Client => {
                let script = dir.join("udhcpc.script");
                write_file(&script, UDHCPC_SCRIPT)?;
                std::fs::set_permissions(
                    &script,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(io_err(&script))?;
                daemons.push(Daemon {
                    name: format!("{DHCP_CLIENT}-{}", iface.name),
                    argv: [
                        BUSYBOX,
                        "udhcpc",
                        "-f",
                        "-i",
                        &iface.name,
                        "-s",
                        &p(&script),
                        // Option 12, as real clients send it: how the network learns names.
                        "-x",
                        &format!("hostname:{name}"),
                        "-r",
                        &iface.ip.to_string(),
                        // Without a lease (no server yet, or no flows on the
                        // bridges): 3 DISCOVERs 3 s apart, 5 s pause, again.
                        "-t",
                        "3",
                        "-T",
                        "3",
                        "-A",
                        "5",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                    env: vec![],
                    listens: None,
                });
            }
        }
    }
    if let Some(publish) = &host.publish {
        let script = format!(
            "i=0\nwhile :; do\n  i=$((i + 1))\n  mosquitto_pub -h {} -p {} -i {name} -t '{}' -m \"{{\\\"host\\\":\\\"{name}\\\",\\\"seq\\\":$i,\\\"value\\\":$((200 + i % 17))}}\" || true\n  sleep {}\ndone\n",
            publish.broker_ip, publish.broker_port, publish.topic, publish.interval_secs
        );
        write_file(&dir.join("mqtt-publish.sh"), &script)?;
        daemons.push(Daemon {
            name: "mqtt-publish".into(),
            argv: vec!["/bin/sh".into(), p(&dir.join("mqtt-publish.sh"))],
            env: vec![],
            listens: None,
        });
    }
    Ok(daemons)
}

/// Starts one daemon on a host and returns its record once its pid is known.
pub(crate) fn launch(hs: &HostStatus, daemon: &Daemon) -> Result<DaemonRecord, LabError> {
    let place = HostPlace {
        namespace: &hs.namespace,
        uts: &hs.uts,
        dir: &hs.dir,
    };
    let env: Vec<(String, String)> = daemon
        .env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let started =
        host_daemon::launch(place, &daemon.name, &daemon.argv, &env).map_err(|e| match e {
            HostError::NoPid {
                daemon,
                pidfile,
                log,
            } => LabError::DaemonDied {
                host: hs.name.clone(),
                daemon,
                log,
                detail: format!("its launcher never wrote {}", pidfile.display()),
            },
            e => e.into(),
        })?;
    Ok(DaemonRecord {
        host: hs.name.clone(),
        name: daemon.name.to_owned(),
        namespace: hs.namespace.clone(),
        pid: started.pid,
        start: started.start,
        log: started.log,
    })
}

/// Sockets listening in a namespace, as `ss -Hltnu` reports them.
pub(crate) fn listening(namespace: &str) -> Result<Vec<(Proto, u16)>, LabError> {
    Ok(host_daemon::listening(namespace)?
        .into_iter()
        .map(|(proto, port)| {
            (
                if proto == "udp" {
                    Proto::Udp
                } else {
                    Proto::Tcp
                },
                port,
            )
        })
        .collect())
}
