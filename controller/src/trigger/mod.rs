//! Triggers: what decides that a source is hostile, before `redirect` acts on it.
//!
//! Besides an operator's `POST /api/v1/redirections`, two triggers exist, both
//! pure (no sockets, no clock: the caller passes the time) so the controller can
//! wire them to its HTTP server and its packet-in stream:
//! - `webhook`: a SIEM, EDR or SOAR asks for a redirection (or its release) with
//!   a request signed by a per-integration secret, fresh and never replayed;
//! - `detect`: built-in detectors (scan, honeytoken, brute force) that read
//!   observations from packet-in copies and decoy events and raise alerts, each
//!   of which asks for an alert only or for a redirection.
//!
//! Both take their settings from TOML and refuse a bad setting with a
//! `ConfigError` that names the field.

pub mod detect;
pub mod source;
pub mod webhook;

/// A trigger's configuration was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a field of the wrong type or name (the TOML parser's message).
    #[error("{config}: {message}")]
    Toml {
        config: &'static str,
        message: String,
    },
    /// A field parsed but its value cannot work.
    #[error("{config}: {field} {why}")]
    Invalid {
        config: &'static str,
        field: String,
        why: String,
    },
}

impl ConfigError {
    /// The TOML parser's message, with the line it stopped at.
    fn from_toml(config: &'static str, text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|span| {
            let start = span.start.min(text.len());
            text[..start].matches('\n').count() + 1
        });
        let message = match line {
            Some(line) => format!("{} (line {line})", e.message().trim_end()),
            None => e.message().trim_end().to_string(),
        };
        ConfigError::Toml { config, message }
    }
}
