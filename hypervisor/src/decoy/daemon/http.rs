//! lighttpd serving the captured page at `/`: same body, `Content-Type`,
//! `Server` (`server.tag`), `Last-Modified` (the file's mtime); lighttpd writes
//! the remaining headers itself, in its own order, as production's did. A
//! redirect (3xx + `Location`) or 403 is configured; other non-200 statuses
//! cannot be made by lighttpd's static file path and are emulated.

use base64::Engine;
use serde_json::Value;

use super::super::{s, shq, Context, Launch};
use crate::plan::DecoySpec;

pub const LIGHTTPD: &str = "/usr/sbin/lighttpd";

fn header<'a>(d: &'a Value, name: &str) -> Option<&'a str> {
    d.get("headers")?
        .as_array()?
        .iter()
        .find(|h| {
            h.get(0)
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })?
        .get(1)?
        .as_str()
}

/// lighttpd.conf from the captured details; `None` if lighttpd cannot answer that status.
pub fn config(cx: &Context, spec: &DecoySpec) -> Option<String> {
    let d = &spec.details;
    let status = d.get("status").and_then(Value::as_u64)?;
    let q = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut modules = Vec::new();
    let mut extra = String::new();
    match status {
        200 => {}
        301 | 302 | 303 | 307 | 308 => {
            let location = header(d, "Location")?;
            modules.push("\"mod_redirect\"");
            extra.push_str(&format!(
                "url.redirect = (\"^/$\" => \"{}\")\nurl.redirect-code = {status}\n",
                q(location)
            ));
        }
        403 => {
            modules.push("\"mod_access\"");
            extra.push_str("url.access-deny = (\"\")\n");
        }
        _ => return None,
    }
    let content_type = header(d, "Content-Type").unwrap_or("application/octet-stream");
    let tag = header(d, "Server").unwrap_or("");
    let mut c = format!(
        "# gemelo twin host {}: lighttpd as discovery saw it\nserver.document-root = \"{}\"\nserver.port = {}\nserver.bind = \"0.0.0.0\"\n\
         server.username = \"www-data\"\nserver.groupname = \"www-data\"\nserver.pid-file = \"{}\"\nserver.errorlog = \"{}\"\n\
         server.tag = \"{}\"\nindex-file.names = (\"index.html\")\nmimetype.assign = (\"\" => \"{}\")\n",
        cx.host.name,
        cx.p("www"),
        spec.port,
        cx.p("lighttpd.pid"),
        cx.p("lighttpd-error.log"),
        q(tag),
        q(content_type),
    );
    // Every request is an event: lighttpd pipes its access log into gemelo.
    modules.push("\"mod_accesslog\"");
    c.push_str(&format!(
        "accesslog.filename = \"|{} access-log --events {} --twin-host {} --protocol http\"\n\
         accesslog.format = \"{}\"\n",
        q(&cx.gemelo_exe.display().to_string()),
        q(&cx.events.display().to_string()),
        q(&cx.host.name),
        crate::decoy::access_log::LIGHTTPD_FORMAT,
    ));
    if !modules.is_empty() {
        c.push_str(&format!("server.modules += ({})\n", modules.join(", ")));
    }
    c.push_str(&extra);
    Some(c)
}

/// The captured body bytes.
pub fn body(d: &Value) -> Vec<u8> {
    match (s(d, "body"), s(d, "body_encoding")) {
        (Some(b), Some("base64")) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        (Some(b), _) => b.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

pub fn launch(cx: &Context, spec: &DecoySpec) -> Option<Launch> {
    let conf_text = config(cx, spec)?;
    let conf = cx.path("lighttpd.conf");
    let index = cx.path("www/index.html");
    let log = shq(&cx.p("lighttpd-error.log"));
    let mut script = format!("set -e\n: > {log}\nchown www-data:www-data {log}\n");
    if let Some(lm) = header(&spec.details, "Last-Modified") {
        // lighttpd sends the file's mtime as Last-Modified.
        script.push_str(&format!(
            "touch -d {} {} || true\n",
            shq(lm),
            shq(&index.display().to_string())
        ));
    }
    script.push_str(&format!(
        "exec {LIGHTTPD} -D -f {}\n",
        shq(&conf.display().to_string())
    ));
    Some(Launch {
        name: "lighttpd".into(),
        argv: super::sh(script),
        env: vec![],
        files: vec![
            (conf, conf_text.into_bytes(), 0o644),
            (index, body(&spec.details), 0o644),
        ],
        listens: vec![("tcp".into(), spec.port)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoy::emulate::http::tests::lighttpd_details;
    use crate::decoy::tests::{context_for, host_with};
    use serde_json::json;

    #[test]
    fn config_from_lighttpd_capture() {
        let host = host_with("http", 80, "lighttpd", lighttpd_details());
        let cx = context_for(&host);
        let c = config(&cx, &host.services[0]).unwrap();
        assert!(c.contains("accesslog.filename = \"|"), "{c}");
        assert!(c.contains(" access-log --events "), "{c}");
        assert!(
            c.ends_with("server.modules += (\"mod_accesslog\")\n"),
            "{c}"
        );
        let c = c.split("accesslog.filename").next().unwrap();
        assert_eq!(
            c,
            "# gemelo twin host web1: lighttpd as discovery saw it\nserver.document-root = \"/tmp/gemelo-x/web1/www\"\nserver.port = 80\n\
server.bind = \"0.0.0.0\"\nserver.username = \"www-data\"\nserver.groupname = \"www-data\"\nserver.pid-file = \"/tmp/gemelo-x/web1/lighttpd.pid\"\n\
server.errorlog = \"/tmp/gemelo-x/web1/lighttpd-error.log\"\nserver.tag = \"lighttpd/1.4.69\"\nindex-file.names = (\"index.html\")\n\
mimetype.assign = (\"\" => \"text/html\")\n"
        );
        let l = launch(&cx, &host.services[0]).unwrap();
        assert_eq!(
            l.files[1].1,
            b"<html><head><title>Plant HMI</title></head><body>hello</body></html>\n"
        );
        assert!(l.argv[2].contains(
            "touch -d 'Wed, 25 Nov 2026 18:40:34 GMT' '/tmp/gemelo-x/web1/www/index.html'"
        ));
    }

    #[test]
    fn statuses() {
        let redirect = json!({"status": 302, "headers": [["Location", "/login.html"], ["Server", "x"]], "body": ""});
        let host = host_with("http", 8080, "lighttpd", redirect);
        let cx = context_for(&host);
        let c = config(&cx, &host.services[0]).unwrap();
        assert!(c.ends_with("server.modules += (\"mod_redirect\", \"mod_accesslog\")\nurl.redirect = (\"^/$\" => \"/login.html\")\nurl.redirect-code = 302\n"), "{c}");
        let teapot = host_with(
            "http",
            80,
            "lighttpd",
            json!({"status": 418, "headers": []}),
        );
        assert!(config(&context_for(&teapot), &teapot.services[0]).is_none());
    }
}
