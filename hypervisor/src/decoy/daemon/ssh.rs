//! OpenSSH: `sshd -D -e -f CONF` offering the captured identification line and
//! KEXINIT lists, with fresh host keys of the captured types (never
//! production's), password logins for the persona user.
//!
//! sshd announces `SSH-2.0-<release>[ <addendum>]`; with `DebianBanner no` the
//! addendum is exactly `VersionAddendum`, so the captured comment (e.g.
//! `Debian-2+deb12u3`) is reproduced even when this machine's Debian revision
//! differs. The release itself is compiled in: another release is emulated.
//! The host-key list follows the order of `HostKey` lines (filtered by
//! `HostKeyAlgorithms`); the other lists follow their options' order.

use super::super::{list, one_line, s, shq, Context, Installed, Launch};
use crate::plan::DecoySpec;

pub const SSHD: &str = "/usr/sbin/sshd";
/// Names sshd appends to KEXINIT itself (not configurable algorithms).
const PSEUDO_ALGORITHMS: [&str; 4] = [
    "ext-info-s",
    "ext-info-c",
    "kex-strict-s-v00@openssh.com",
    "kex-strict-c-v00@openssh.com",
];

/// Host key files to generate: (ssh-keygen type, bits).
pub fn key_types(host_key_algorithms: &[String]) -> Vec<(&'static str, Option<u32>)> {
    let mut out: Vec<(&'static str, Option<u32>)> = Vec::new();
    for alg in host_key_algorithms {
        let t = match alg.as_str() {
            "ssh-ed25519" => ("ed25519", None),
            "ecdsa-sha2-nistp256" => ("ecdsa", Some(256)),
            "ecdsa-sha2-nistp384" => ("ecdsa", Some(384)),
            "ecdsa-sha2-nistp521" => ("ecdsa", Some(521)),
            "rsa-sha2-512" | "rsa-sha2-256" | "ssh-rsa" => ("rsa", Some(3072)),
            _ => continue,
        };
        if !out.iter().any(|(k, _)| *k == t.0) {
            out.push(t);
        }
    }
    if out.is_empty() {
        out = vec![("rsa", Some(3072)), ("ecdsa", Some(256)), ("ed25519", None)];
    }
    out
}

fn key_file(cx: &Context, kind: &str) -> String {
    cx.p(&format!("ssh/ssh_host_{kind}_key"))
}

/// sshd_config from the captured details.
pub fn config(cx: &Context, spec: &DecoySpec) -> String {
    let d = &spec.details;
    let mut c = format!(
        "# gemelo twin host {}: sshd as discovery saw it\nPort {}\nListenAddress 0.0.0.0\n",
        cx.host.name, spec.port
    );
    let hostkey_algs = list(d, "server_host_key_algorithms");
    for (kind, _) in key_types(&hostkey_algs) {
        c.push_str(&format!("HostKey {}\n", key_file(cx, kind)));
    }
    c.push_str(&format!("PidFile {}\n", cx.p("sshd.pid")));
    // The identification line: release (compiled in) + the captured comment.
    c.push_str("DebianBanner no\n");
    if let Some(comment) = s(d, "comments").filter(|c| !c.is_empty()) {
        c.push_str(&format!("VersionAddendum {}\n", one_line(comment)));
    }
    let algs = |key: &str| -> Option<String> {
        let l: Vec<String> = list(d, key)
            .into_iter()
            .filter(|a| !PSEUDO_ALGORITHMS.contains(&a.as_str()))
            .collect();
        (!l.is_empty()).then(|| l.join(","))
    };
    for (option, key) in [
        ("KexAlgorithms", "kex_algorithms"),
        ("HostKeyAlgorithms", "server_host_key_algorithms"),
        ("Ciphers", "encryption_algorithms_server_to_client"),
        ("MACs", "mac_algorithms_server_to_client"),
    ] {
        if let Some(v) = algs(key) {
            c.push_str(&format!("{option} {v}\n"));
        }
    }
    let comp = list(d, "compression_algorithms_server_to_client");
    if comp == ["none"] {
        c.push_str("Compression no\n");
    }
    c.push_str(
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nPermitRootLogin no\n\
         X11Forwarding no\nPrintMotd no\nAcceptEnv LANG LC_*\n\
         AllowTcpForwarding no\nAllowStreamLocalForwarding no\nAllowAgentForwarding no\nPermitTunnel no\n",
    );
    c
}

/// The launch, or `None` when this sshd cannot announce the captured release.
pub fn launch(cx: &Context, spec: &DecoySpec, installed: &Installed) -> Option<Launch> {
    let captured = s(&spec.details, "software")?;
    if installed.sshd_software.as_deref() != Some(captured) {
        return None;
    }
    let conf = cx.path("sshd_config");
    let mut script = String::from("set -e\n");
    script.push_str(&format!("mkdir -p {} /run/sshd\n", shq(&cx.p("ssh"))));
    for (kind, bits) in key_types(&list(&spec.details, "server_host_key_algorithms")) {
        let f = shq(&key_file(cx, kind));
        let bits = bits.map(|b| format!(" -b {b}")).unwrap_or_default();
        // Fresh per twin host; kept across restarts of the same host.
        script.push_str(&format!(
            "[ -s {f} ] || {{ rm -f {f} {f}.pub; ssh-keygen -q -t {kind}{bits} -N '' -C '' -f {f} </dev/null; }}\n"
        ));
    }
    script.push_str(&crate::decoy::persona::setup_script(cx));
    script.push_str(&format!(
        "exec {SSHD} -D -e -f {}\n",
        shq(&conf.display().to_string())
    ));
    Some(Launch {
        name: "sshd".into(),
        argv: super::sh_private_mounts(script),
        env: vec![],
        files: vec![(conf, config(cx, spec).into_bytes(), 0o644)],
        listens: vec![("tcp".into(), spec.port)],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decoy::tests::{context_for, host_with};
    use serde_json::{json, Value};

    /// What the probe wrote for Debian 12's sshd (its OPENSSH_DEBIAN12 capture).
    pub(crate) fn openssh_details() -> Value {
        json!({
            "proto_version": "2.0", "software": "OpenSSH_9.2p1", "comments": "Debian-2+deb12u10",
            "kex_algorithms": ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
                "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256", "kex-strict-s-v00@openssh.com"],
            "server_host_key_algorithms": ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"],
            "encryption_algorithms_client_to_server": ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
            "encryption_algorithms_server_to_client": ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
            "mac_algorithms_client_to_server": ["umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"],
            "mac_algorithms_server_to_client": ["umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"],
            "compression_algorithms_client_to_server": ["none", "zlib@openssh.com"],
            "compression_algorithms_server_to_client": ["none", "zlib@openssh.com"],
            "languages_client_to_server": [], "languages_server_to_client": [],
            "first_kex_packet_follows": false
        })
    }

    #[test]
    fn config_from_debian_capture() {
        let host = host_with("ssh", 22, "OpenSSH", openssh_details());
        let cx = context_for(&host);
        let c = config(&cx, &host.services[0]);
        let expected = "# gemelo twin host web1: sshd as discovery saw it\nPort 22\nListenAddress 0.0.0.0\n\
HostKey /tmp/gemelo-x/web1/ssh/ssh_host_ed25519_key\nHostKey /tmp/gemelo-x/web1/ssh/ssh_host_rsa_key\n\
PidFile /tmp/gemelo-x/web1/sshd.pid\nDebianBanner no\nVersionAddendum Debian-2+deb12u10\n\
KexAlgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256\n\
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256\n\
Ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com\n\
MACs umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1\n\
PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nPermitRootLogin no\n\
X11Forwarding no\nPrintMotd no\nAcceptEnv LANG LC_*\n\
AllowTcpForwarding no\nAllowStreamLocalForwarding no\nAllowAgentForwarding no\nPermitTunnel no\n";
        assert_eq!(c, expected);
    }

    #[test]
    fn key_types_and_release_check() {
        let algs: Vec<String> = [
            "ecdsa-sha2-nistp384",
            "rsa-sha2-512",
            "ssh-ed25519",
            "rsa-sha2-256",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            key_types(&algs),
            vec![("ecdsa", Some(384)), ("rsa", Some(3072)), ("ed25519", None)]
        );
        let host = host_with("ssh", 22, "OpenSSH", openssh_details());
        let cx = context_for(&host);
        let other = Installed {
            sshd_software: Some("OpenSSH_8.4p1".into()),
            ..Installed::default()
        };
        assert!(
            launch(&cx, &host.services[0], &other).is_none(),
            "another release is emulated"
        );
        let same = Installed {
            sshd_software: Some("OpenSSH_9.2p1".into()),
            ..Installed::default()
        };
        let l = launch(&cx, &host.services[0], &same).unwrap();
        assert_eq!(l.listens, vec![("tcp".to_string(), 22)]);
        let script = &l.argv[6];
        assert!(script.contains("ssh-keygen -q -t ed25519 -N '' -C '' -f '/tmp/gemelo-x/web1/ssh/ssh_host_ed25519_key'"), "{script}");
        assert!(script.ends_with("exec /usr/sbin/sshd -D -e -f '/tmp/gemelo-x/web1/sshd_config'\n"));
        assert_eq!(
            l.argv[..4],
            ["/usr/bin/unshare", "-m", "--propagation", "private"]
        );
    }
}
