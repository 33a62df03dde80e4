//! inetutils telnetd under openbsd-inetd: the option negotiation and the
//! `Linux <release> (<hostname>) (pts/N)` banner are the daemon's own, so they
//! match production by construction (same package, same UTS hostname). Logins
//! go through `/bin/login` to the persona user. inetd's pid file is fixed at
//! `/run/inetd.pid`: the backend's private `/run` keeps it per host.

use super::super::{shq, Context, Launch};
use crate::plan::DecoySpec;

pub const INETD: &str = "/usr/sbin/inetd";
pub const TELNETD: &str = "/usr/sbin/telnetd";

pub fn config(spec: &DecoySpec) -> String {
    format!("{} stream tcp nowait root {TELNETD} telnetd\n", spec.port)
}

pub fn launch(cx: &Context, spec: &DecoySpec) -> Launch {
    let conf = cx.path("inetd.conf");
    let mut script = String::from("set -e\n");
    script.push_str(&crate::decoy::persona::setup_script(cx));
    script.push_str(&format!(
        "exec {INETD} -i {}\n",
        shq(&conf.display().to_string())
    ));
    Launch {
        name: "inetd".into(),
        argv: super::sh_private_mounts(script),
        env: vec![],
        files: vec![(conf, config(spec).into_bytes(), 0o644)],
        listens: vec![("tcp".into(), spec.port)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::host_with;
    use serde_json::json;

    #[test]
    fn inetd_line() {
        let host = host_with(
            "telnet",
            23,
            "inetutils telnetd",
            json!({"negotiation_hex": "fffb25fffb26fffd18fffd20fffd23fffd27fffd24"}),
        );
        assert_eq!(
            config(&host.services[0]),
            "23 stream tcp nowait root /usr/sbin/telnetd telnetd\n"
        );
    }
}
