//! `gemelo-decoy`: the decoy emulation alone (`gemelo decoy` without the
//! controller), for twin hosts that cannot see the machine's libraries, and
//! the two ends of a QEMU guest's event channel.
//!
//! A QEMU twin host boots a small initramfs that carries this binary and only
//! the glibc libraries it links; the `gemelo` binary itself also links
//! libvirt and its ~50 libraries, too much for a 128 MiB guest. Same argv as
//! `gemelo decoy`: `gemelo-decoy [decoy] --spec FILE --events SOCKET`.
//! `gemelo-decoy relay guest` runs in the guest and `gemelo-decoy relay
//! host` on the machine (`libvirt::channel`).

use std::path::PathBuf;

use gemelo_hypervisor::libvirt::channel;

fn usage() -> ! {
    eprintln!(
        "usage: gemelo-decoy [decoy] --spec FILE --events SOCKET\n       \
         gemelo-decoy relay guest [--socket PATH] [--port NAME]\n       \
         gemelo-decoy relay host --channel PATH --twin-host NAME --events SOCKET [--pidfile PATH]"
    );
    std::process::exit(2);
}

/// `--name value` pairs; anything else is a usage error.
fn options(args: impl Iterator<Item = String>, known: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let Some(name) = a.strip_prefix("--").filter(|n| known.contains(n)) else {
            usage()
        };
        let Some(value) = args.next() else { usage() };
        out.push((name.to_string(), value));
    }
    out
}

fn get(o: &[(String, String)], name: &str) -> Option<String> {
    o.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("gemelo-decoy: {e}");
    std::process::exit(1);
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("relay") => {
            args.next();
            let side = args.next();
            match side.as_deref() {
                Some("guest") => {
                    let o = options(args, &["socket", "port"]);
                    let socket = get(&o, "socket").unwrap_or_else(|| channel::GUEST_SOCKET.into());
                    let port = get(&o, "port").unwrap_or_else(|| channel::PORT.into());
                    if let Err(e) = channel::run_guest(&PathBuf::from(socket), &port) {
                        fail(e)
                    }
                }
                Some("host") => {
                    let o = options(args, &["channel", "twin-host", "events", "pidfile"]);
                    let (Some(ch), Some(host), Some(events)) =
                        (get(&o, "channel"), get(&o, "twin-host"), get(&o, "events"))
                    else {
                        usage()
                    };
                    let pidfile = get(&o, "pidfile").map(PathBuf::from);
                    if let Err(e) = channel::run_host(
                        &PathBuf::from(ch),
                        &host,
                        &PathBuf::from(events),
                        pidfile.as_deref(),
                    ) {
                        fail(e)
                    }
                }
                _ => usage(),
            }
        }
        _ => {
            if args.peek().map(String::as_str) == Some("decoy") {
                args.next();
            }
            let o = options(args, &["spec", "events"]);
            let (Some(spec), Some(events)) = (get(&o, "spec"), get(&o, "events")) else {
                usage()
            };
            if let Err(e) =
                gemelo_hypervisor::decoy::run_decoy(&PathBuf::from(spec), &PathBuf::from(events))
            {
                fail(e)
            }
        }
    }
}
