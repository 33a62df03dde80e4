//! A small client of gemelo's REST API, used by the CLI (`gemelo flows`, ...).

use anyhow::{anyhow, Context};
use serde::de::DeserializeOwned;

/// The API's base URL: `--api`, else `GEMELO_API`, else the default address.
pub fn base(api: Option<&str>) -> String {
    let raw = api
        .map(str::to_string)
        .or_else(|| std::env::var("GEMELO_API").ok())
        .unwrap_or_else(|| crate::serve::DEFAULT_API.to_string());
    let raw = raw.trim_end_matches('/');
    if raw.starts_with("http://") || raw.starts_with("https://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    }
}

fn get(base: &str, path: &str) -> anyhow::Result<ureq::Response> {
    call(base, path, ureq::get(&format!("{base}{path}")).call())
}

fn call(
    base: &str,
    path: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> anyhow::Result<ureq::Response> {
    let url = format!("{base}{path}");
    match result {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, r)) => {
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let msg = body
                .get("error")
                .and_then(|m| m.as_str())
                .unwrap_or("no message")
                .to_string();
            Err(anyhow!("{url}: HTTP {code}: {msg}"))
        }
        Err(e) => Err(anyhow!(
            "{url}: {e} (is `gemelo serve` running? set --api or GEMELO_API)"
        )),
    }
}

pub fn get_json<T: DeserializeOwned>(base: &str, path: &str) -> anyhow::Result<T> {
    get(base, path)?
        .into_json()
        .with_context(|| format!("{base}{path}: unexpected JSON"))
}

pub fn get_text(base: &str, path: &str) -> anyhow::Result<String> {
    get(base, path)?
        .into_string()
        .with_context(|| format!("{base}{path}: unreadable body"))
}

pub fn post_json<T: DeserializeOwned>(base: &str, path: &str, body: &str) -> anyhow::Result<T> {
    let r = ureq::post(&format!("{base}{path}"))
        .set("content-type", "application/json")
        .timeout(std::time::Duration::from_secs(600))
        .send_string(body);
    call(base, path, r)?
        .into_json()
        .with_context(|| format!("{base}{path}: unexpected JSON"))
}

pub fn delete_json<T: DeserializeOwned>(base: &str, path: &str) -> anyhow::Result<T> {
    let r = ureq::delete(&format!("{base}{path}"))
        .timeout(std::time::Duration::from_secs(600))
        .call();
    call(base, path, r)?
        .into_json()
        .with_context(|| format!("{base}{path}: unexpected JSON"))
}
