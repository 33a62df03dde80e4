//! Line protocols whose server greets first: FTP, SMTP, POP3, IMAP.
//!
//! The greeting is the banner (kept verbatim, CR LF included). After it the
//! probe asks the one harmless question each protocol has for its capabilities
//! (FTP `SYST`/`FEAT`, SMTP `EHLO`, POP3 `CAPA`, IMAP `CAPABILITY`) and says
//! goodbye, so the twin can answer the same questions the same way.

use std::time::Instant;

use serde_json::json;
use tokio::net::TcpStream;

use super::{conn, ProbeConfig, ServiceInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Ftp,
    Smtp,
    Pop3,
    Imap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ftp => "ftp",
            Kind::Smtp => "smtp",
            Kind::Pop3 => "pop3",
            Kind::Imap => "imap",
        }
    }

    /// What we ask after the greeting, and the goodbye.
    fn questions(self) -> &'static [&'static str] {
        match self {
            Kind::Ftp => &["SYST", "FEAT", "QUIT"],
            Kind::Smtp => &["EHLO gemelo-probe.invalid", "QUIT"],
            Kind::Pop3 => &["CAPA", "QUIT"],
            Kind::Imap => &["g1 CAPABILITY", "g2 LOGOUT"],
        }
    }
}

/// Which protocol a greeting belongs to (the port decides between FTP and
/// SMTP when the text does not).
pub(super) fn kind_of(first: &[u8], port: u16) -> Option<Kind> {
    let text = String::from_utf8_lossy(first);
    let upper = text.to_ascii_uppercase();
    if text.starts_with("+OK") {
        return Some(Kind::Pop3);
    }
    if text.starts_with("* OK") || text.starts_with("* PREAUTH") {
        return Some(Kind::Imap);
    }
    if text.starts_with("220") {
        if upper.contains("SMTP")
            || upper.contains("POSTFIX")
            || upper.contains("EXIM")
            || upper.contains("SENDMAIL")
        {
            return Some(Kind::Smtp);
        }
        if upper.contains("FTP") {
            return Some(Kind::Ftp);
        }
        return Some(if matches!(port, 25 | 465 | 587 | 2525) {
            Kind::Smtp
        } else {
            Kind::Ftp
        });
    }
    if text.starts_with("421") || text.starts_with("554") {
        return Some(if port == 21 { Kind::Ftp } else { Kind::Smtp });
    }
    None
}

/// Whether an FTP/SMTP reply is whole: its last line is `NNN ` (RFC 959 §4.2).
pub(super) fn reply_complete(bytes: &[u8]) -> bool {
    if !bytes.ends_with(b"\n") {
        return false;
    }
    let text = String::from_utf8_lossy(bytes);
    let last = text
        .trim_end_matches(['\r', '\n'])
        .rsplit('\n')
        .next()
        .unwrap_or("");
    let b = last.as_bytes();
    b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && (b.len() == 3 || b[3] == b' ')
}

/// Whether the answer to `question` is whole.
fn answer_complete(kind: Kind, question: &str, bytes: &[u8]) -> bool {
    match kind {
        Kind::Ftp | Kind::Smtp => reply_complete(bytes),
        Kind::Pop3 if question == "CAPA" => {
            bytes.starts_with(b"-ERR") && bytes.ends_with(b"\n") || bytes.ends_with(b"\r\n.\r\n")
        }
        Kind::Pop3 => bytes.ends_with(b"\n"),
        Kind::Imap => {
            let tag = question.split(' ').next().unwrap_or("");
            String::from_utf8_lossy(bytes)
                .lines()
                .any(|l| l.starts_with(&format!("{tag} ")))
        }
    }
}

/// Product and version from a greeting, for the servers we know by their words.
pub(super) fn product_version(greeting: &str) -> (Option<String>, Option<String>) {
    let after = |word: &str| -> Option<String> {
        let i = greeting.find(word)? + word.len();
        let v: String = greeting[i..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        Some(v).filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    };
    let known: [(&str, &str); 10] = [
        ("vsFTPd", "vsftpd"),
        ("ProFTPD", "ProFTPD"),
        ("Pure-FTPd", "Pure-FTPd"),
        ("FileZilla Server", "FileZilla Server"),
        ("Microsoft FTP Service", "Microsoft ftpd"),
        ("Postfix", "Postfix"),
        ("Exim", "Exim"),
        ("Sendmail", "Sendmail"),
        ("Dovecot", "Dovecot"),
        ("Cyrus", "Cyrus"),
    ];
    for (word, product) in known {
        if greeting.contains(word) {
            return (Some(product.to_string()), after(word));
        }
    }
    (None, None)
}

/// `ServiceInfo` from the greeting and the (question, answer) pairs.
pub(super) fn service_from(
    port: u16,
    kind: Kind,
    greeting: &[u8],
    answers: &[(&str, Vec<u8>)],
) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", kind.name());
    let text = String::from_utf8_lossy(greeting).into_owned();
    (info.product, info.version) = product_version(&text);
    let replies: Vec<_> = answers
        .iter()
        .map(|(q, a)| json!({"command": q, "reply": String::from_utf8_lossy(a)}))
        .collect();
    info.details = json!({"greeting_hex": super::hex(greeting), "replies": replies});
    info.banner = Some(text);
    info
}

/// Reads the rest of the greeting, asks the questions, leaves.
pub(super) async fn exchange(
    mut stream: TcpStream,
    first: Vec<u8>,
    kind: Kind,
    port: u16,
    cfg: &ProbeConfig,
) -> ServiceInfo {
    let mut greeting = first;
    let deadline = Instant::now() + cfg.read_timeout;
    let greeting_done = |b: &[u8]| match kind {
        Kind::Ftp | Kind::Smtp => reply_complete(b),
        _ => b.ends_with(b"\n"),
    };
    conn::read_until(
        &mut stream,
        &mut greeting,
        deadline,
        16 * 1024,
        greeting_done,
    )
    .await;
    let mut answers = Vec::new();
    // A server that refuses us (421/554) has nothing more to say.
    if !(greeting.starts_with(b"421") || greeting.starts_with(b"554")) {
        for q in kind.questions() {
            if !conn::send(&mut stream, format!("{q}\r\n").as_bytes(), cfg).await {
                break;
            }
            let mut answer = Vec::new();
            let deadline = Instant::now() + cfg.read_timeout;
            conn::read_until(&mut stream, &mut answer, deadline, 16 * 1024, |b| {
                answer_complete(kind, q, b)
            })
            .await;
            answers.push((*q, answer));
        }
    }
    service_from(port, kind, &greeting, &answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Debian 12 vsftpd 3.0.3-13 greeting and replies, as captured.
    const VSFTPD: &[u8] = b"220 (vsFTPd 3.0.3)\r\n";

    #[test]
    fn vsftpd_greeting() {
        assert_eq!(kind_of(VSFTPD, 21), Some(Kind::Ftp));
        assert!(reply_complete(VSFTPD));
        let answers = vec![("SYST", b"215 UNIX Type: L8\r\n".to_vec())];
        let info = service_from(21, Kind::Ftp, VSFTPD, &answers);
        assert_eq!(info.name, "ftp");
        assert_eq!(info.product.as_deref(), Some("vsftpd"));
        assert_eq!(info.version.as_deref(), Some("3.0.3"));
        assert_eq!(info.banner.as_deref(), Some("220 (vsFTPd 3.0.3)\r\n"));
        assert_eq!(info.details["replies"][0]["reply"], "215 UNIX Type: L8\r\n");
    }

    #[test]
    fn mail_greetings() {
        let postfix = b"220 mail.example.net ESMTP Postfix (Debian/GNU)\r\n";
        assert_eq!(kind_of(postfix, 25), Some(Kind::Smtp));
        assert_eq!(
            product_version("220 mail.example.net ESMTP Postfix (Debian/GNU)"),
            (Some("Postfix".into()), None)
        );
        assert_eq!(
            product_version("220 mx ESMTP Exim 4.96 Wed, 25 Nov 2026"),
            (Some("Exim".into()), Some("4.96".into()))
        );
        assert_eq!(
            kind_of(b"+OK Dovecot (Debian) ready.\r\n", 110),
            Some(Kind::Pop3)
        );
        assert_eq!(
            kind_of(
                b"* OK [CAPABILITY IMAP4rev1] Dovecot (Debian) ready.\r\n",
                143
            ),
            Some(Kind::Imap)
        );
        assert_eq!(kind_of(b"220 welcome\r\n", 2525), Some(Kind::Smtp));
        assert_eq!(kind_of(b"hello", 21), None);
        assert!(!reply_complete(b"250-mx\r\n250-PIPELINING\r\n"));
        assert!(reply_complete(b"250-mx\r\n250 PIPELINING\r\n"));
        assert!(answer_complete(
            Kind::Imap,
            "g1 CAPABILITY",
            b"* CAPABILITY IMAP4rev1\r\ng1 OK done\r\n"
        ));
        assert!(answer_complete(Kind::Pop3, "CAPA", b"+OK\r\nUSER\r\n.\r\n"));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), port in any::<u16>()) {
            let _ = kind_of(&bytes, port);
            let _ = reply_complete(&bytes);
            let _ = product_version(&String::from_utf8_lossy(&bytes));
            let mut g = b"220 vsFTPd ".to_vec();
            g.extend_from_slice(&bytes);
            let _ = service_from(port, Kind::Ftp, &g, &[("SYST", bytes.clone())]);
            let _ = answer_complete(Kind::Imap, "g1 X", &bytes);
        }
    }
}
