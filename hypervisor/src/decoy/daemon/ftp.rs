//! vsftpd with the captured greeting: vsftpd's own `220 (vsFTPd x.y.z)` needs
//! no option; any other one-line greeting becomes `ftpd_banner`. A multi-line
//! greeting cannot be made by vsftpd and is emulated.

use super::super::{one_line, Context, Launch};
use crate::plan::DecoySpec;

pub const VSFTPD: &str = "/usr/sbin/vsftpd";

/// `ftpd_banner` for a captured greeting: `Ok(None)` for vsftpd's default, `Err` if vsftpd cannot say it.
pub fn banner_option(greeting: &str) -> Result<Option<String>, &'static str> {
    let line = greeting
        .strip_suffix("\r\n")
        .or_else(|| greeting.strip_suffix('\n'))
        .unwrap_or(greeting);
    if line.contains('\n') {
        return Err("a multi-line greeting");
    }
    let text = line.strip_prefix("220 ").ok_or("not a 220 greeting")?;
    if text.starts_with("(vsFTPd ") && text.ends_with(')') {
        return Ok(None);
    }
    Ok(Some(one_line(text)))
}

pub fn config(cx: &Context, spec: &DecoySpec) -> Option<String> {
    let banner = match spec.banner.as_deref() {
        Some(g) => banner_option(g).ok()?,
        None => None,
    };
    let mut c = format!(
        "# gemelo twin host {}: vsftpd as discovery saw it\nlisten=YES\nlisten_ipv6=NO\nbackground=NO\nlisten_port={}\n\
         anonymous_enable=YES\nanon_root={}\nlocal_enable=NO\nwrite_enable=NO\nsecure_chroot_dir={}\n\
         pasv_enable=YES\npasv_min_port=30000\npasv_max_port=30100\nxferlog_enable=YES\nvsftpd_log_file={}\nseccomp_sandbox=NO\n",
        cx.host.name,
        spec.port,
        cx.p("ftp"),
        cx.p("vsftpd-empty"),
        cx.p("vsftpd-xfer.log"),
    );
    if let Some(b) = banner {
        c.push_str(&format!("ftpd_banner={b}\n"));
    }
    Some(c)
}

pub fn launch(cx: &Context, spec: &DecoySpec) -> Option<Launch> {
    let conf = cx.path("vsftpd.conf");
    let text = config(cx, spec)?;
    // vsftpd needs an empty, root-owned chroot dir.
    let script = format!(
        "set -e\nmkdir -p {} {} /run/vsftpd/empty\nexec {VSFTPD} {}\n",
        crate::decoy::shq(&cx.p("vsftpd-empty")),
        crate::decoy::shq(&cx.p("ftp/pub")),
        crate::decoy::shq(&conf.display().to_string())
    );
    Some(Launch {
        name: "vsftpd".into(),
        argv: super::sh(script),
        env: vec![],
        files: vec![
            (conf, text.into_bytes(), 0o644),
            (
                cx.path("ftp/pub/README.txt"),
                format!("{} file share\n", cx.host.hostname).into_bytes(),
                0o644,
            ),
        ],
        listens: vec![("tcp".into(), spec.port)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::{context_for, host_with};
    use serde_json::json;

    #[test]
    fn greetings() {
        assert_eq!(banner_option("220 (vsFTPd 3.0.3)\r\n"), Ok(None));
        assert_eq!(
            banner_option("220 Plant file server\r\n"),
            Ok(Some("Plant file server".into()))
        );
        assert!(banner_option("220-Welcome\r\n220 ready\r\n").is_err());
        let mut host = host_with(
            "ftp",
            21,
            "vsftpd",
            json!({"greeting_hex": "323230202876734654506420332e302e33290d0a"}),
        );
        host.services[0].banner = Some("220 (vsFTPd 3.0.3)\r\n".into());
        let cx = context_for(&host);
        let c = config(&cx, &host.services[0]).unwrap();
        assert!(
            c.contains("listen_port=21\n") && !c.contains("ftpd_banner"),
            "{c}"
        );
        host.services[0].banner = Some("220 ACME FTP\r\n".into());
        assert!(config(&context_for(&host), &host.services[0])
            .unwrap()
            .ends_with("ftpd_banner=ACME FTP\n"));
    }
}
