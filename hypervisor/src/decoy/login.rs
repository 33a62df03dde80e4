//! Login attempts on a twin host's real login daemons, as decoy events.
//!
//! sshd and telnetd's `/bin/login` authenticate through PAM, and both of
//! their stacks include `/etc/pam.d/common-auth`. Inside a twin host's private
//! mount namespace (never the machine's) that file is replaced by
//! `common_auth`: pam_unix decides exactly as Debian's stack does, and
//! pam_exec runs `gemelo login-attempt` on the failure path and on the success
//! path with the typed password on stdin (`expose_authtok`). Every attempt, a
//! wrong password, an unknown user or the persona's own login, becomes one
//! event (`action: "login"`, data `user`, `password`, `success`, `service`),
//! which the controller's detectors read (failed logins for brute force, the
//! persona's credential as a honeytoken). The hook is `optional`: when it
//! cannot run, logins succeed and fail as they would without it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{shq, Context, EventSink};

/// What sshd hands PAM instead of the typed password when the user does not
/// exist or may not log in (OpenSSH's `badpw`): the real one is never seen.
pub const SSHD_HIDDEN_PASSWORD: &[u8] = b"\x08\n\r\x7fINCORRECT";
/// Longest password read from pam_exec (PAM's own `PAM_MAX_RESP_SIZE`).
const MAX_PASSWORD: u64 = 512;

/// The hook wrapper inside the host dir (PAM arguments cannot be quoted).
pub fn hook_path(cx: &Context) -> PathBuf {
    cx.path("persona/login-attempt")
}

/// The `common-auth` replacement bind-mounted inside the twin host.
pub fn common_auth_path(cx: &Context) -> PathBuf {
    cx.path("persona/common-auth")
}

/// `/etc/pam.d/common-auth` as the twin host sees it: Debian's decision
/// (pam_unix, deny, permit) with an event on each outcome.
pub fn common_auth(cx: &Context) -> String {
    let hook = hook_path(cx).display().to_string();
    format!(
        "# gemelo twin host {host}: pam_unix decides; each attempt is a decoy event\n\
         auth\t[success=2 default=ignore]\tpam_unix.so nullok\n\
         auth\toptional\tpam_exec.so quiet expose_authtok {hook} --failed\n\
         auth\trequisite\tpam_deny.so\n\
         auth\toptional\tpam_exec.so quiet expose_authtok {hook}\n\
         auth\trequired\tpam_permit.so\n",
        host = cx.host.name,
    )
}

/// The hook wrapper and the PAM file, for the persona's files.
pub fn files(cx: &Context) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let wrapper = format!(
        "#!/bin/sh\n# gemelo login events of twin host {}\nexec {} login-attempt --events {} --twin-host {} \"$@\"\n",
        cx.host.name,
        shq(&cx.gemelo_exe.display().to_string()),
        shq(&cx.events.display().to_string()),
        shq(&cx.host.name)
    );
    vec![
        (hook_path(cx), wrapper.into_bytes(), 0o755),
        (common_auth_path(cx), common_auth(cx).into_bytes(), 0o644),
    ]
}

/// Shell lines (run in the launch's private mount namespace) that put the
/// PAM file in place. A system without Debian's `common-auth` keeps its own
/// stack: logins work, they are only not reported.
pub fn setup_script(cx: &Context) -> String {
    format!(
        "if [ -e /etc/pam.d/common-auth ]; then mount --bind {} /etc/pam.d/common-auth; fi\n",
        shq(&common_auth_path(cx).display().to_string())
    )
}

/// One attempt, as PAM described it to the hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// PAM service: `sshd`, or `login` (telnetd).
    pub service: String,
    pub user: String,
    /// PAM_RHOST: the client's address (telnetd may give a resolved name).
    pub rhost: String,
    /// What pam_exec wrote on stdin.
    pub authtok: Vec<u8>,
    pub success: bool,
}

impl Attempt {
    /// The protocol the attacker spoke.
    pub fn protocol(&self) -> &str {
        match self.service.as_str() {
            "sshd" => "ssh",
            "login" => "telnet",
            other => other,
        }
    }

    /// The password typed, when the daemon let PAM see it.
    pub fn password(&self) -> Option<String> {
        let typed = self.authtok.split(|b| *b == 0).next().unwrap_or_default();
        if typed == SSHD_HIDDEN_PASSWORD {
            return None;
        }
        Some(String::from_utf8_lossy(typed).into_owned())
    }

    /// The event's `data`.
    pub fn data(&self) -> Value {
        json!({
            "user": self.user,
            "password": self.password(),
            "success": self.success,
            "service": self.service,
        })
    }
}

/// The hook was not started by pam_exec.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0} is not set: `gemelo login-attempt` is run by pam_exec from a twin host's PAM stack, not by hand")]
pub struct NotFromPam(&'static str);

/// The attempt pam_exec describes in its environment, and the password on stdin.
pub fn attempt_from_pam(
    env: impl Fn(&str) -> Option<String>,
    authtok: Vec<u8>,
    success: bool,
) -> Result<Attempt, NotFromPam> {
    let need = |name: &'static str| env(name).ok_or(NotFromPam(name));
    Ok(Attempt {
        service: need("PAM_SERVICE")?,
        user: need("PAM_USER")?,
        rhost: env("PAM_RHOST").unwrap_or_default(),
        authtok,
        success,
    })
}

/// `gemelo login-attempt`: one event for the attempt pam_exec reports.
pub fn run(events: &Path, twin_host: &str, failed: bool) -> Result<(), NotFromPam> {
    let mut authtok = Vec::new();
    let _ = std::io::stdin()
        .lock()
        .take(MAX_PASSWORD)
        .read_to_end(&mut authtok);
    let attempt = attempt_from_pam(|k| std::env::var(k).ok(), authtok, !failed)?;
    let sink = EventSink::new(events, twin_host);
    sink.emit(&attempt.rhost, attempt.protocol(), "login", attempt.data());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::tests::{context_for, host_with};
    use std::collections::HashMap;

    fn pam(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn the_pam_file_keeps_debians_decision_and_reports_both_outcomes() {
        let host = host_with("ssh", 22, "OpenSSH", json!({}));
        let cx = context_for(&host);
        assert_eq!(
            common_auth(&cx),
            "# gemelo twin host web1: pam_unix decides; each attempt is a decoy event\n\
             auth\t[success=2 default=ignore]\tpam_unix.so nullok\n\
             auth\toptional\tpam_exec.so quiet expose_authtok /tmp/gemelo-x/web1/persona/login-attempt --failed\n\
             auth\trequisite\tpam_deny.so\n\
             auth\toptional\tpam_exec.so quiet expose_authtok /tmp/gemelo-x/web1/persona/login-attempt\n\
             auth\trequired\tpam_permit.so\n"
        );
        let f = files(&cx);
        assert_eq!(f[0].2, 0o755);
        assert_eq!(
            std::str::from_utf8(&f[0].1).unwrap(),
            "#!/bin/sh\n# gemelo login events of twin host web1\nexec '/usr/bin/gemelo' login-attempt --events '/run/gemelo/twin/events.sock' --twin-host 'web1' \"$@\"\n"
        );
        assert!(f[1].0.ends_with("persona/common-auth"));
        assert_eq!(
            setup_script(&cx),
            "if [ -e /etc/pam.d/common-auth ]; then mount --bind '/tmp/gemelo-x/web1/persona/common-auth' /etc/pam.d/common-auth; fi\n"
        );
    }

    #[test]
    fn a_failed_ssh_password_is_an_event() {
        // What pam_exec gave a hook for `ssh admin@...` with a wrong password.
        let a = attempt_from_pam(
            pam(&[
                ("PAM_SERVICE", "sshd"),
                ("PAM_USER", "admin"),
                ("PAM_RHOST", "10.10.2.77"),
                ("PAM_TYPE", "auth"),
                ("PAM_TTY", "ssh"),
            ]),
            b"wrongpw".to_vec(),
            false,
        )
        .unwrap();
        assert_eq!(a.protocol(), "ssh");
        assert_eq!(
            a.data(),
            json!({"user": "admin", "password": "wrongpw", "success": false, "service": "sshd"})
        );
    }

    #[test]
    fn what_sshd_hides_is_no_password() {
        let mut hidden = SSHD_HIDDEN_PASSWORD.to_vec();
        hidden.push(0);
        let a = attempt_from_pam(
            pam(&[("PAM_SERVICE", "sshd"), ("PAM_USER", "root")]),
            hidden,
            false,
        )
        .unwrap();
        assert_eq!(a.password(), None);
        assert_eq!(a.data()["password"], Value::Null);
        assert_eq!(a.rhost, "");
    }

    #[test]
    fn telnet_logins_and_odd_bytes() {
        let a = attempt_from_pam(
            pam(&[
                ("PAM_SERVICE", "login"),
                ("PAM_USER", "admin"),
                ("PAM_RHOST", "10.10.2.77"),
            ]),
            b"adm\xffin\0trailing".to_vec(),
            true,
        )
        .unwrap();
        assert_eq!(a.protocol(), "telnet");
        assert_eq!(a.password().as_deref(), Some("adm\u{fffd}in"));
        assert_eq!(a.data()["success"], true);
    }

    #[test]
    fn outside_pam_it_says_so() {
        let e = attempt_from_pam(pam(&[("PAM_SERVICE", "sshd")]), Vec::new(), false).unwrap_err();
        assert_eq!(e, NotFromPam("PAM_USER"));
        assert!(e.to_string().contains("run by pam_exec"));
    }
}
