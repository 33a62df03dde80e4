//! The real Debian daemons behind twin services, configured from what
//! discovery captured so that a client sees the same by construction.
//!
//! Each file turns one protocol's `details` into config text (pure, unit-
//! tested) and a `Launch`: `sh -c SCRIPT` that prepares what cannot be a plain
//! file (fresh host keys, log ownership, mtimes) and then `exec`s the daemon in
//! the foreground, so the pid the backend records is the daemon's. A spec the
//! installed daemon cannot reproduce (another release, a status lighttpd cannot
//! send) returns `None` and is emulated instead.

pub mod ftp;
pub mod http;
pub mod mqtt;
pub mod snmp;
pub mod ssh;
pub mod telnet;

use super::{Context, DecoyError, Installed, Launch};
use crate::plan::DecoySpec;

/// The launch(es) that run `product` for `spec`, or `None` when it must be emulated.
pub fn for_spec(
    cx: &Context,
    spec: &DecoySpec,
    product: &str,
    installed: &Installed,
) -> Result<Option<Vec<Launch>>, DecoyError> {
    let p = product.to_ascii_lowercase();
    Ok(match (spec.name.as_str(), p.as_str()) {
        ("ssh", "openssh") => ssh::launch(cx, spec, installed).map(|l| vec![l]),
        ("http", "lighttpd") if installed.lighttpd => http::launch(cx, spec).map(|l| vec![l]),
        ("ftp", "vsftpd") if installed.vsftpd => ftp::launch(cx, spec).map(|l| vec![l]),
        ("telnet", "inetutils telnetd") if installed.telnetd => {
            Some(vec![telnet::launch(cx, spec)])
        }
        ("snmp", "net-snmp") if installed.snmpd => Some(vec![snmp::launch(cx, spec)]),
        ("mqtt", "mosquitto") if installed.mosquitto => Some(mqtt::launches(cx, spec)),
        _ => None,
    })
}

/// `sh -c SCRIPT gemelo-decoy` as argv.
pub(crate) fn sh(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script, "gemelo-decoy".into()]
}

/// The same in a private mount namespace (for scripts that bind-mount over
/// `/etc`): `unshare` execs the shell, so the pid stays the daemon's.
pub(crate) fn sh_private_mounts(script: String) -> Vec<String> {
    let mut argv: Vec<String> = ["/usr/bin/unshare", "-m", "--propagation", "private"]
        .map(str::to_string)
        .to_vec();
    argv.extend(sh(script));
    argv
}
