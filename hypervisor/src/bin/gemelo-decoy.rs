//! `gemelo-decoy`: the decoy emulation alone (`gemelo decoy` without the
//! controller), for twin hosts that cannot see the machine's libraries.
//!
//! A QEMU twin host boots a small initramfs that carries this binary and only
//! the glibc libraries it links; the `gemelo` binary itself also links
//! libvirt and its ~50 libraries, too much for a 128 MiB guest. Same argv as
//! `gemelo decoy`: `gemelo-decoy [decoy] --spec FILE --events SOCKET`.

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: gemelo-decoy [decoy] --spec FILE --events SOCKET");
    std::process::exit(2);
}

fn main() {
    let mut spec: Option<PathBuf> = None;
    let mut events: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("decoy") {
        args.next();
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--spec" => spec = args.next().map(PathBuf::from),
            "--events" => events = args.next().map(PathBuf::from),
            _ => usage(),
        }
    }
    let (Some(spec), Some(events)) = (spec, events) else {
        usage()
    };
    if let Err(e) = gemelo_hypervisor::decoy::run_decoy(&spec, &events) {
        eprintln!("gemelo-decoy: {e}");
        std::process::exit(1);
    }
}
