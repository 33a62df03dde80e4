//! The persona behind the real login daemons (sshd, telnetd): a decoy user
//! whose login shell is `gemelo persona-shell`, which answers common commands
//! from a small seeded filesystem and records every command as an event.
//!
//! The user exists only inside the twin host: its launch runs in a private
//! mount namespace where `/etc/{passwd,group,shadow}` are the machine's plus
//! the persona's line, bind-mounted from the host dir (never the machine's files).
//! The same namespace reports every login attempt (`login`), and the persona's
//! account is the credential it plants (`planted_credentials`).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{login, shq, Context, EventSink};
use crate::plan::{DecoyMode, TwinPlan};

/// The decoy account (weak on purpose: it is bait).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "admin";
pub const UID: u32 = 1990;
/// Longest command line we read.
const MAX_LINE: usize = 4096;

fn home(cx: &Context) -> String {
    cx.p(&format!("persona/home/{USER}"))
}

fn shell_path(cx: &Context) -> PathBuf {
    cx.path("persona/shell")
}

/// Services whose real daemon logs users in to the persona.
const LOGIN_SERVICES: [&str; 2] = ["ssh", "telnet"];

/// The credentials the persona plants: its account, when some twin host's
/// login daemon (sshd, telnetd) runs for real. Production has no such
/// account, so whoever uses it is an intruder (a honeytoken credential).
pub fn planted_credentials(plan: &TwinPlan) -> Vec<(String, String)> {
    let persona_runs = plan.hosts.iter().flat_map(|h| &h.services).any(|s| {
        LOGIN_SERVICES.contains(&s.name.as_str()) && matches!(s.mode, DecoyMode::Daemon { .. })
    });
    if persona_runs {
        vec![(USER.to_string(), PASSWORD.to_string())]
    } else {
        Vec::new()
    }
}

/// The login shell wrapper (passwd allows no arguments in the shell field)
/// and the login-attempt hook.
pub fn files(cx: &Context) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let wrapper = format!(
        "#!/bin/sh\n# gemelo persona shell of twin host {}\nexec {} persona-shell --events {} --twin-host {} \"$@\"\n",
        cx.host.name,
        shq(&cx.gemelo_exe.display().to_string()),
        shq(&cx.events.display().to_string()),
        shq(&cx.host.name)
    );
    let mut files = vec![(shell_path(cx), wrapper.into_bytes(), 0o755)];
    files.extend(login::files(cx));
    files
}

/// Shell lines that create the persona user inside the launch's private mount namespace.
pub fn setup_script(cx: &Context) -> String {
    let p = shq(&cx.p("persona"));
    let home = shq(&home(cx));
    let passwd_line = shq(&format!(
        "{USER}:x:{UID}:{UID}:{USER}:{}:{}",
        home.trim_matches('\''),
        shell_path(cx).display()
    ));
    format!(
        "# persona user {USER} (only in this mount namespace)\n\
         mkdir -p {home}\nchown {UID}:{UID} {home}\n\
         grep -v '^{USER}:' /etc/passwd > {p}/passwd; echo {passwd_line} >> {p}/passwd\n\
         grep -v '^{USER}:' /etc/group > {p}/group; echo '{USER}:x:{UID}:' >> {p}/group\n\
         hash=$(openssl passwd -6 {pw})\n\
         grep -v '^{USER}:' /etc/shadow > {p}/shadow; echo \"{USER}:$hash:19700:0:99999:7:::\" >> {p}/shadow\n\
         chown root:shadow {p}/shadow 2>/dev/null || true; chmod 640 {p}/shadow\n\
         for f in passwd group shadow; do mount --bind {p}/$f /etc/$f; done\n\
         {login}",
        pw = shq(PASSWORD),
        login = login::setup_script(cx),
    )
}

/// What the persona's machine looks like.
pub struct Persona {
    pub user: String,
    pub hostname: String,
    pub cwd: String,
    pub files: BTreeMap<String, String>,
}

impl Persona {
    pub fn new(user: &str, hostname: &str) -> Persona {
        let home = format!("/home/{user}");
        let mut files = BTreeMap::new();
        let mut add = |p: &str, c: &str| {
            files.insert(p.to_string(), c.to_string());
        };
        add("/etc/hostname", &format!("{hostname}\n"));
        add("/etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n");
        add("/etc/passwd", &format!("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nsshd:x:104:65534::/run/sshd:/usr/sbin/nologin\n{user}:x:1000:1000:{user}:{home}:/bin/bash\n"));
        add(
            &format!("{home}/.bash_history"),
            "ls\nsudo systemctl status\ncat notes.txt\nexit\n",
        );
        let lower = hostname.to_ascii_lowercase();
        if lower.contains("plc")
            || lower.contains("hmi")
            || lower.contains("scada")
            || lower.contains("gw")
        {
            add(
                &format!("{home}/notes.txt"),
                "PLC maintenance: backup before firmware update.\nEngineering station: 10.20.0.5\n",
            );
            add(
                &format!("{home}/plc_backup.cfg"),
                "[modbus]\nunit=1\nport=502\nsetpoint_hr=0\n",
            );
        } else if lower.contains("web") || lower.contains("www") {
            add(
                &format!("{home}/notes.txt"),
                "deploy: rsync to /var/www/html, reload lighttpd\n",
            );
            add(
                "/var/www/html/index.html",
                "<html><body>It works</body></html>\n",
            );
        } else {
            add(&format!("{home}/notes.txt"), "TODO: rotate backup keys\n");
        }
        Persona {
            user: user.to_string(),
            hostname: hostname.to_string(),
            cwd: home,
            files,
        }
    }

    fn home(&self) -> String {
        format!("/home/{}", self.user)
    }

    pub fn prompt(&self) -> String {
        let shown = if self.cwd == self.home() {
            "~".to_string()
        } else {
            self.cwd.clone()
        };
        format!("{}@{}:{shown}$ ", self.user, self.hostname)
    }

    fn abs(&self, p: &str) -> String {
        let p = if p == "~" {
            self.home()
        } else if let Some(rest) = p.strip_prefix("~/") {
            format!("{}/{rest}", self.home())
        } else {
            p.to_string()
        };
        let joined = if p.starts_with('/') {
            p
        } else {
            format!("{}/{p}", self.cwd.trim_end_matches('/'))
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                x => parts.push(x),
            }
        }
        format!("/{}", parts.join("/"))
    }

    fn is_dir(&self, p: &str) -> bool {
        p == "/"
            || self
                .files
                .keys()
                .any(|f| f.starts_with(&format!("{}/", p.trim_end_matches('/'))))
    }

    fn entries(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|f| f.strip_prefix(&prefix))
            .map(|r| r.split('/').next().unwrap_or("").to_string())
            .collect();
        out.dedup();
        out
    }

    /// Output of one command line, and whether the session ends.
    pub fn run(&mut self, line: &str) -> (String, bool) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&cmd) = words.first() else {
            return (String::new(), false);
        };
        let args = &words[1..];
        let out = match cmd {
            "exit" | "logout" => return (String::new(), true),
            "pwd" => format!("{}\n", self.cwd),
            "whoami" => format!("{}\n", self.user),
            "id" => format!("uid=1000({u}) gid=1000({u}) groups=1000({u}),27(sudo)\n", u = self.user),
            "hostname" => format!("{}\n", self.hostname),
            // The twin host's real kernel (what telnetd's banner and production show).
            "uname" => {
                let flags: Vec<&str> = args.iter().copied().filter(|a| a.starts_with('-') && a[1..].chars().all(|c| "asnrvmpio".contains(c))).collect();
                match std::process::Command::new("uname").args(&flags).output() {
                    Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
                    _ => "Linux\n".into(),
                }
            }
            "cd" => {
                let target = self.abs(args.first().copied().unwrap_or("~"));
                if self.is_dir(&target) {
                    self.cwd = target;
                    String::new()
                } else {
                    format!("-bash: cd: {}: No such file or directory\n", args.first().unwrap_or(&""))
                }
            }
            "ls" => {
                let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
                let all = args.iter().any(|a| a.starts_with('-') && a.contains('a'));
                let target = self.abs(args.iter().find(|a| !a.starts_with('-')).copied().unwrap_or("."));
                if self.files.contains_key(&target) {
                    format!("{}\n", args.iter().find(|a| !a.starts_with('-')).unwrap_or(&""))
                } else if self.is_dir(&target) {
                    let names: Vec<String> = self.entries(&target).into_iter().filter(|n| all || !n.starts_with('.')).collect();
                    if long {
                        let mut s = format!("total {}\n", names.len() * 4);
                        for n in &names {
                            let path = if target == "/" { format!("/{n}") } else { format!("{target}/{n}") };
                            let (kind, size) = match self.files.get(&path) {
                                Some(c) => ("-rw-r--r--", c.len()),
                                None => ("drwxr-xr-x", 4096),
                            };
                            s.push_str(&format!("{kind} 1 {u} {u} {size:>5} Nov 12 09:14 {n}\n", u = self.user));
                        }
                        s
                    } else if names.is_empty() {
                        String::new()
                    } else {
                        format!("{}\n", names.join("  "))
                    }
                } else {
                    format!("ls: cannot access '{}': No such file or directory\n", args.iter().find(|a| !a.starts_with('-')).unwrap_or(&""))
                }
            }
            "cat" => args
                .iter()
                .map(|a| match self.files.get(&self.abs(a)) {
                    Some(c) => c.clone(),
                    None if self.is_dir(&self.abs(a)) => format!("cat: {a}: Is a directory\n"),
                    None => format!("cat: {a}: No such file or directory\n"),
                })
                .collect(),
            "echo" => format!("{}\n", args.join(" ")),
            "ps" => format!(
                "  PID TTY          TIME CMD\n    1 ?        00:00:02 systemd\n  412 ?        00:00:00 sshd\n  988 pts/0    00:00:00 bash\n  {} pts/0    00:00:00 ps\n",
                1000 + (line.len() % 97)
            ),
            "ifconfig" | "ip" => real_ip_addr(),
            "w" | "uptime" => " 09:14:02 up 41 days,  3:12,  1 user,  load average: 0.08, 0.03, 0.01\n".into(),
            _ => format!("-bash: {cmd}: command not found\n"),
        };
        (out, false)
    }
}

/// The twin host's own addresses (the same as production's): `ip -4 addr`.
fn real_ip_addr() -> String {
    std::process::Command::new("ip")
        .args(["addr"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Who is logged in, from what sshd tells the shell.
fn peer() -> String {
    match std::env::var("SSH_CONNECTION") {
        Ok(c) => {
            let f: Vec<&str> = c.split_whitespace().collect();
            match f.as_slice() {
                [ip, port, ..] => format!("{ip}:{port}"),
                _ => "unknown".into(),
            }
        }
        Err(_) => std::env::var("REMOTEHOST").unwrap_or_else(|_| "unknown".into()),
    }
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// `gemelo persona-shell`: one `-c` command, or an interactive session on stdin.
pub fn run_persona_shell(events: &Path, twin_host: &str, command: Option<&str>) -> i32 {
    let sink = EventSink::new(events, twin_host);
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| USER.to_string());
    let mut persona = Persona::new(&user, &this_hostname());
    let peer = peer();
    let mut stdout = std::io::stdout();
    if let Some(cmd) = command {
        sink.emit(
            &peer,
            "shell",
            "command",
            json!({"command": cmd, "user": user}),
        );
        for part in cmd.split(';') {
            let (out, done) = persona.run(part);
            let _ = stdout.write_all(out.as_bytes());
            if done {
                break;
            }
        }
        return 0;
    }
    sink.emit(&peer, "shell", "login", json!({"user": user}));
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let _ = stdout.write_all(persona.prompt().as_bytes());
        let _ = stdout.flush();
        let mut line = Vec::new();
        match std::io::Read::take(&mut input, MAX_LINE as u64).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if line.trim().is_empty() {
            continue;
        }
        sink.emit(
            &peer,
            "shell",
            "command",
            json!({"command": line, "user": user, "cwd": persona.cwd}),
        );
        let (out, done) = persona.run(&line);
        let _ = stdout.write_all(out.replace('\n', "\r\n").as_bytes());
        if done {
            break;
        }
    }
    sink.emit(&peer, "shell", "logout", json!({"user": user}));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_from_the_seeded_filesystem() {
        let mut p = Persona::new("admin", "plc-gw-01");
        assert_eq!(p.prompt(), "admin@plc-gw-01:~$ ");
        assert_eq!(p.run("pwd").0, "/home/admin\n");
        assert_eq!(p.run("ls").0, "notes.txt  plc_backup.cfg\n");
        assert!(p.run("ls -la").0.contains(".bash_history"));
        assert!(p.run("cat plc_backup.cfg").0.contains("port=502"));
        assert_eq!(
            p.run("cat nope").0,
            "cat: nope: No such file or directory\n"
        );
        assert_eq!(p.run("whoami").0, "admin\n");
        assert_eq!(p.run("hostname").0, "plc-gw-01\n");
        assert!(p.run("uname -a").0.starts_with("Linux "));
        assert_eq!(p.run("uname").0, "Linux\n");
        assert_eq!(p.run("cd /etc").0, "");
        assert_eq!(p.prompt(), "admin@plc-gw-01:/etc$ ");
        assert!(p.run("cat os-release").0.contains("bookworm"));
        assert_eq!(p.run("nmap").0, "-bash: nmap: command not found\n");
        assert!(p.run("exit").1);
    }

    #[test]
    fn setup_script_binds_only_inside() {
        let host = crate::decoy::tests::host_with("ssh", 22, "OpenSSH", json!({}));
        let cx = crate::decoy::tests::context_for(&host);
        let s = setup_script(&cx);
        assert!(s.contains("echo 'admin:x:1990:1990:admin:/tmp/gemelo-x/web1/persona/home/admin:/tmp/gemelo-x/web1/persona/shell' >> '/tmp/gemelo-x/web1/persona'/passwd"), "{s}");
        assert!(s.contains("mount --bind '/tmp/gemelo-x/web1/persona'/$f /etc/$f"));
        assert!(s.ends_with(
            "mount --bind '/tmp/gemelo-x/web1/persona/common-auth' /etc/pam.d/common-auth; fi\n"
        ));
        let f = files(&cx);
        assert_eq!(f.len(), 3, "shell, login hook, PAM file");
        assert_eq!(f[0].2, 0o755);
        assert!(std::str::from_utf8(&f[0].1).unwrap().contains("exec '/usr/bin/gemelo' persona-shell --events '/run/gemelo/twin/events.sock' --twin-host 'web1' \"$@\""));
    }

    #[test]
    fn the_persona_account_is_planted_where_a_login_daemon_runs() {
        let web = crate::decoy::tests::host_with("ssh", 22, "OpenSSH", json!({}));
        let mut plan = TwinPlan {
            switch: crate::plan::TwinSwitch {
                namespace: "gm-twin".into(),
                rundir: "/run/gemelo/twin/ovs".into(),
                bridge: "gm-twin0".into(),
                dpid: 1,
            },
            observer_namespace: "gm-twin-observer".into(),
            segments: vec![],
            hosts: vec![web],
        };
        assert_eq!(
            planted_credentials(&plan),
            vec![("admin".to_string(), "admin".to_string())]
        );
        // An emulated sshd only shows its banner: nobody logs in there.
        plan.hosts[0].services[0].mode = DecoyMode::Emulated;
        assert!(planted_credentials(&plan).is_empty());
        plan.hosts[0].services[0].name = "http".into();
        plan.hosts[0].services[0].mode = DecoyMode::Daemon {
            product: "lighttpd".into(),
        };
        assert!(planted_credentials(&plan).is_empty());
    }
}
