//! Signed inbound webhooks: how a SIEM, EDR or SOAR asks gemelo to redirect a
//! source into the twin, or to release a redirection.
//!
//! The endpoint is `POST /api/v1/hooks/{integration}`. Each integration has its
//! own secret (from `HooksConfig`), and a request carries
//! - `X-Gemelo-Timestamp: <unix seconds>`, within `MAX_SKEW_S` of the
//!   controller's clock either way, and
//! - `X-Gemelo-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`,
//!   accepted at most once (a replayed signature is refused).
//!
//! The body is `{"action": "redirect", "source": "10.10.1.66", "reason": "...",
//! "ttl_s": 3600}` (`reason` and `ttl_s` optional; the source is an IPv4
//! address, a MAC or an IPv4 network) or `{"action": "release", "id": "..."}`.
//!
//! `WebhookVerifier::verify` is pure: the HTTP handler passes the headers, the
//! body and the current time, and answers `HookError::status()` when it fails,
//! changing nothing. Authentication is checked before the body is read, so an
//! unsigned caller learns nothing about the body format.

pub use super::source::{Source, SourceError};
use super::ConfigError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// How far a request's timestamp may be from the controller's clock, either way.
pub const MAX_SKEW_S: u64 = 300;
/// Signatures remembered at most (each for `2 * MAX_SKEW_S`); past this the
/// verifier refuses new requests until old ones age out.
pub const MAX_REMEMBERED_SIGNATURES: usize = 65_536;

pub const TIMESTAMP_HEADER: &str = "X-Gemelo-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Gemelo-Signature";

const CONFIG: &str = "hooks config";

/// `[integration.NAME] secret = "..."`, one table per sender.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default)]
    pub integration: BTreeMap<String, Integration>,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// The shared secret the sender signs with.
    pub secret: String,
}

// Secrets never reach a log through Debug.
impl fmt::Debug for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integration")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for HooksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.integration.iter()).finish()
    }
}

impl HooksConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: HooksConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(CONFIG, text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Integration names are URL path segments; secrets must exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, integration) in &self.integration {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return Err(ConfigError::Invalid {
                    config: CONFIG,
                    field: format!("integration.{name:?}"),
                    why: "is not a valid integration name: use letters, digits, '_' and '-' \
                          (it is the last segment of /api/v1/hooks/NAME)"
                        .into(),
                });
            }
            if integration.secret.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    config: CONFIG,
                    field: format!("integration.{name}.secret"),
                    why: "is empty: set the shared secret the sender signs its requests with"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// What an authenticated hook asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum HookAction {
    Redirect {
        source: Source,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// How long the redirection lasts; none means until released.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_s: Option<u64>,
    },
    Release {
        id: String,
    },
}

impl HookAction {
    /// Parses and checks a request body.
    pub fn from_body(body: &[u8]) -> Result<Self, HookError> {
        let action: HookAction = serde_json::from_slice(body).map_err(|e| HookError::BadBody {
            why: body_error(&e),
        })?;
        match &action {
            HookAction::Redirect { ttl_s: Some(0), .. } => Err(HookError::BadBody {
                why: "ttl_s is 0: give the redirection's lifetime in seconds (at least 1), \
                      or leave ttl_s out to keep it until released"
                    .into(),
            }),
            HookAction::Release { id } if id.trim().is_empty() => Err(HookError::BadBody {
                why: "id is empty: give the id of the redirection to release".into(),
            }),
            _ => Ok(action),
        }
    }
}

/// serde_json says "missing field `action`" for an unknown tag too; make both clear.
fn body_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.starts_with("missing field `action`") {
        "missing field `action`: it is \"redirect\" or \"release\"".into()
    } else if message.starts_with("unknown variant") {
        format!("unknown action: {message}")
    } else {
        message
    }
}

/// Why a hook was refused. `status()` is the HTTP answer; nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    #[error("no integration named {0:?} is configured: add [integration.{0}] with a secret to the hooks config")]
    UnknownIntegration(String),
    #[error("missing {TIMESTAMP_HEADER} header: send the request's time in unix seconds")]
    MissingTimestamp,
    #[error("{TIMESTAMP_HEADER} {0:?} is not a time in unix seconds")]
    BadTimestamp(String),
    #[error("{TIMESTAMP_HEADER} {timestamp} is {skew_s} s from the controller's clock ({now}); at most {MAX_SKEW_S} s is accepted: check the sender's clock, and sign each request when it is sent")]
    StaleTimestamp {
        timestamp: u64,
        now: u64,
        skew_s: u64,
    },
    #[error("missing {SIGNATURE_HEADER} header: send sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>")]
    MissingSignature,
    #[error("{SIGNATURE_HEADER} is not sha256=<64 hex digits>")]
    MalformedSignature,
    #[error("{SIGNATURE_HEADER} does not match: sign timestamp + \".\" + body, exactly as sent, with HMAC-SHA256 and integration {0:?}'s secret")]
    BadSignature(String),
    #[error("this signature was already accepted: a request is accepted once; send a new one with a fresh timestamp")]
    Replay,
    #[error("{MAX_REMEMBERED_SIGNATURES} hooks were accepted in the last {} s; retry later", 2 * MAX_SKEW_S)]
    TooManyRequests,
    #[error("request body: {why}")]
    BadBody { why: String },
}

impl HookError {
    /// The HTTP status the endpoint answers with.
    pub fn status(&self) -> u16 {
        match self {
            HookError::BadBody { .. } => 400,
            HookError::TooManyRequests => 429,
            _ => 401,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A signature that was accepted, remembered until its timestamp can no longer pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Accepted {
    timestamp: u64,
    integration: String,
    mac: [u8; 32],
}

/// Checks hooks against the configured secrets and remembers accepted signatures.
#[derive(Debug)]
pub struct WebhookVerifier {
    config: HooksConfig,
    /// Ordered by timestamp, so pruning takes from the front.
    accepted: BTreeSet<Accepted>,
    seen: HashSet<(String, [u8; 32])>,
}

impl WebhookVerifier {
    pub fn new(config: HooksConfig) -> Self {
        WebhookVerifier {
            config,
            accepted: BTreeSet::new(),
            seen: HashSet::new(),
        }
    }

    /// Verifies one request. `timestamp` and `signature` are the header values
    /// (None when absent); `now_unix` is the controller's clock.
    pub fn verify(
        &mut self,
        integration: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_unix: u64,
    ) -> Result<HookAction, HookError> {
        let secret = &self
            .config
            .integration
            .get(integration)
            .ok_or_else(|| HookError::UnknownIntegration(integration.to_string()))?
            .secret;

        let timestamp_text = timestamp.ok_or(HookError::MissingTimestamp)?.trim();
        let timestamp: u64 = timestamp_text
            .parse()
            .map_err(|_| HookError::BadTimestamp(timestamp_text.to_string()))?;
        let skew_s = timestamp.abs_diff(now_unix);
        if skew_s > MAX_SKEW_S {
            return Err(HookError::StaleTimestamp {
                timestamp,
                now: now_unix,
                skew_s,
            });
        }

        let signature = signature.ok_or(HookError::MissingSignature)?.trim();
        let hex_mac = signature
            .strip_prefix("sha256=")
            .ok_or(HookError::MalformedSignature)?;
        let mut mac = [0u8; 32];
        hex::decode_to_slice(hex_mac, &mut mac).map_err(|_| HookError::MalformedSignature)?;

        let mut expected =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
        expected.update(timestamp_text.as_bytes());
        expected.update(b".");
        expected.update(body);
        // verify_slice compares in constant time.
        expected
            .verify_slice(&mac)
            .map_err(|_| HookError::BadSignature(integration.to_string()))?;

        self.prune(now_unix);
        let key = (integration.to_string(), mac);
        if self.seen.contains(&key) {
            return Err(HookError::Replay);
        }
        if self.seen.len() >= MAX_REMEMBERED_SIGNATURES {
            return Err(HookError::TooManyRequests);
        }

        let action = HookAction::from_body(body)?;
        self.accepted.insert(Accepted {
            timestamp,
            integration: key.0.clone(),
            mac,
        });
        self.seen.insert(key);
        Ok(action)
    }

    /// Signatures remembered now (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Forgets signatures whose timestamp is now too old to pass the freshness check.
    fn prune(&mut self, now_unix: u64) {
        while let Some(oldest) = self.accepted.first() {
            if oldest.timestamp + MAX_SKEW_S >= now_unix {
                break;
            }
            let oldest = self.accepted.pop_first().expect("first exists");
            self.seen.remove(&(oldest.integration, oldest.mac));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SPLUNK: &str = "s3cret-splunk";
    const NOW: u64 = 1_767_225_600;
    const BODY: &[u8] =
        br#"{"action": "redirect", "source": "10.10.1.66", "reason": "EDR: mimikatz on ws07"}"#;
    /// Computed independently:
    /// `printf '1767225600.%s' "$BODY" | openssl dgst -sha256 -hmac s3cret-splunk`
    /// (and the same with Python's hmac module).
    const BODY_SIGNATURE: &str =
        "sha256=67bef8651bde880b2b6eb9bda83f1185c772ca00c6458c852d75089c0c11006f";

    fn config() -> HooksConfig {
        HooksConfig::from_toml(
            r#"
            [integration.splunk]
            secret = "s3cret-splunk"
            [integration.cortex-xsoar]
            secret = "another one"
            "#,
        )
        .unwrap()
    }

    fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn send(verifier: &mut WebhookVerifier, body: &[u8], at: u64) -> Result<HookAction, HookError> {
        let ts = at.to_string();
        let sig = sign(SPLUNK, &ts, body);
        verifier.verify("splunk", Some(&ts), Some(&sig), body, at)
    }

    #[test]
    fn independent_vector_is_accepted() {
        let mut verifier = WebhookVerifier::new(config());
        let action = verifier
            .verify(
                "splunk",
                Some("1767225600"),
                Some(BODY_SIGNATURE),
                BODY,
                NOW,
            )
            .unwrap();
        assert_eq!(
            action,
            HookAction::Redirect {
                source: Source::Ip(Ipv4Addr::new(10, 10, 1, 66)),
                reason: Some("EDR: mimikatz on ws07".into()),
                ttl_s: None,
            }
        );
        assert_eq!(sign(SPLUNK, "1767225600", BODY), BODY_SIGNATURE);
    }

    #[test]
    fn upper_case_hex_is_the_same_signature() {
        let mut verifier = WebhookVerifier::new(config());
        let upper = format!("sha256={}", BODY_SIGNATURE[7..].to_ascii_uppercase());
        assert!(verifier
            .verify("splunk", Some("1767225600"), Some(&upper), BODY, NOW)
            .is_ok());
    }

    #[test]
    fn bad_signature_is_refused() {
        let mut verifier = WebhookVerifier::new(config());
        let ts = NOW.to_string();
        // Another integration's secret.
        let sig = sign("another one", &ts, BODY);
        let err = verifier
            .verify("splunk", Some(&ts), Some(&sig), BODY, NOW)
            .unwrap_err();
        assert_eq!(err, HookError::BadSignature("splunk".into()));
        assert_eq!(err.status(), 401);
        // A changed body.
        let tampered = br#"{"action": "redirect", "source": "10.10.1.67"}"#;
        let err = verifier
            .verify("splunk", Some(&ts), Some(BODY_SIGNATURE), tampered, NOW)
            .unwrap_err();
        assert_eq!(err.status(), 401);
        // A changed timestamp.
        let err = verifier
            .verify(
                "splunk",
                Some("1767225601"),
                Some(BODY_SIGNATURE),
                BODY,
                NOW,
            )
            .unwrap_err();
        assert_eq!(err, HookError::BadSignature("splunk".into()));
        assert_eq!(verifier.remembered(), 0);
    }

    #[test]
    fn missing_or_malformed_signature_is_refused() {
        let mut verifier = WebhookVerifier::new(config());
        let ts = NOW.to_string();
        let err = verifier
            .verify("splunk", Some(&ts), None, BODY, NOW)
            .unwrap_err();
        assert_eq!(err, HookError::MissingSignature);
        assert_eq!(err.status(), 401);
        for sig in [
            "",
            "67bef8651bde880b2b6eb9bda83f1185c772ca00c6458c852d75089c0c11006f",
            "sha1=67bef8651bde880b2b6eb9bda83f1185c772ca00",
            "sha256=67bef865",
            "sha256=zzbef8651bde880b2b6eb9bda83f1185c772ca00c6458c852d75089c0c11006f",
        ] {
            let err = verifier
                .verify("splunk", Some(&ts), Some(sig), BODY, NOW)
                .unwrap_err();
            assert_eq!(err, HookError::MalformedSignature, "{sig:?}");
            assert_eq!(err.status(), 401);
        }
    }

    #[test]
    fn replay_is_refused_until_the_window_passes() {
        let mut verifier = WebhookVerifier::new(config());
        let ts = NOW.to_string();
        assert!(verifier
            .verify("splunk", Some(&ts), Some(BODY_SIGNATURE), BODY, NOW)
            .is_ok());
        for later in [NOW, NOW + 1, NOW + MAX_SKEW_S] {
            let err = verifier
                .verify("splunk", Some(&ts), Some(BODY_SIGNATURE), BODY, later)
                .unwrap_err();
            assert_eq!(err, HookError::Replay);
            assert_eq!(err.status(), 401);
        }
        // Once the timestamp is too old, the signature is forgotten and the
        // freshness check refuses it instead.
        let err = verifier
            .verify(
                "splunk",
                Some(&ts),
                Some(BODY_SIGNATURE),
                BODY,
                NOW + MAX_SKEW_S + 1,
            )
            .unwrap_err();
        assert!(matches!(err, HookError::StaleTimestamp { .. }), "{err}");
    }

    #[test]
    fn the_same_body_with_a_fresh_timestamp_is_accepted() {
        let mut verifier = WebhookVerifier::new(config());
        assert!(send(&mut verifier, BODY, NOW).is_ok());
        assert!(send(&mut verifier, BODY, NOW + 1).is_ok());
        assert_eq!(verifier.remembered(), 2);
    }

    #[test]
    fn replay_memory_is_pruned() {
        let mut verifier = WebhookVerifier::new(config());
        for i in 0..100 {
            send(&mut verifier, BODY, NOW + i).unwrap();
        }
        assert_eq!(verifier.remembered(), 100);
        // At NOW + 400 every timestamp before NOW + 100 can no longer pass, so
        // all of them are forgotten.
        send(&mut verifier, BODY, NOW + 400).unwrap();
        assert_eq!(verifier.remembered(), 1);
        send(&mut verifier, BODY, NOW + 10_000).unwrap();
        assert_eq!(verifier.remembered(), 1);
    }

    #[test]
    fn old_and_future_timestamps_are_refused_at_the_edge() {
        let mut verifier = WebhookVerifier::new(config());
        // Exactly 300 s either way passes.
        assert!(send(&mut verifier, BODY, NOW).is_ok());
        let ts = (NOW - MAX_SKEW_S).to_string();
        let sig = sign(SPLUNK, &ts, BODY);
        assert!(verifier
            .verify("splunk", Some(&ts), Some(&sig), BODY, NOW)
            .is_ok());
        let ts = (NOW + MAX_SKEW_S).to_string();
        let sig = sign(SPLUNK, &ts, BODY);
        assert!(verifier
            .verify("splunk", Some(&ts), Some(&sig), BODY, NOW)
            .is_ok());
        // 301 s does not, even correctly signed.
        for ts in [NOW - MAX_SKEW_S - 1, NOW + MAX_SKEW_S + 1] {
            let text = ts.to_string();
            let sig = sign(SPLUNK, &text, BODY);
            let err = verifier
                .verify("splunk", Some(&text), Some(&sig), BODY, NOW)
                .unwrap_err();
            assert_eq!(
                err,
                HookError::StaleTimestamp {
                    timestamp: ts,
                    now: NOW,
                    skew_s: MAX_SKEW_S + 1
                }
            );
            assert_eq!(err.status(), 401);
            assert!(err.to_string().contains("301 s"), "{err}");
        }
    }

    #[test]
    fn missing_or_unreadable_timestamp_is_refused() {
        let mut verifier = WebhookVerifier::new(config());
        let err = verifier
            .verify("splunk", None, Some(BODY_SIGNATURE), BODY, NOW)
            .unwrap_err();
        assert_eq!(err, HookError::MissingTimestamp);
        assert_eq!(err.status(), 401);
        for ts in ["", "soon", "-5", "1767225600.5", "2026-01-01T00:00:00Z"] {
            let err = verifier
                .verify("splunk", Some(ts), Some(BODY_SIGNATURE), BODY, NOW)
                .unwrap_err();
            assert_eq!(err, HookError::BadTimestamp(ts.into()));
            assert_eq!(err.status(), 401);
        }
    }

    #[test]
    fn unknown_integration_is_refused() {
        let mut verifier = WebhookVerifier::new(config());
        let err = verifier
            .verify(
                "qradar",
                Some("1767225600"),
                Some(BODY_SIGNATURE),
                BODY,
                NOW,
            )
            .unwrap_err();
        assert_eq!(err, HookError::UnknownIntegration("qradar".into()));
        assert_eq!(err.status(), 401);
        assert!(err.to_string().contains("[integration.qradar]"), "{err}");
    }

    #[test]
    fn bad_json_is_a_bad_request_after_authentication() {
        let mut verifier = WebhookVerifier::new(config());
        let err = send(&mut verifier, b"{\"action\": \"redirect\",", NOW).unwrap_err();
        assert!(matches!(err, HookError::BadBody { .. }), "{err}");
        assert_eq!(err.status(), 400);
        // Unsigned garbage is refused for its signature, not its body.
        let err = verifier
            .verify(
                "splunk",
                Some("1767225600"),
                Some(BODY_SIGNATURE),
                b"{",
                NOW,
            )
            .unwrap_err();
        assert_eq!(err.status(), 401);
        // A refused body is not remembered: nothing was accepted.
        assert_eq!(verifier.remembered(), 0);
    }

    #[test]
    fn bodies_that_ask_for_nothing_clear_are_refused() {
        let cases: [(&[u8], &str); 9] = [
            (br#"{"source": "10.10.1.66"}"#, "missing field `action`"),
            (
                br#"{"action": "block", "source": "10.10.1.66"}"#,
                "unknown action",
            ),
            (br#"{"action": "redirect"}"#, "missing field `source`"),
            (br#"{"action": "redirect", "source": "web01"}"#, "\"web01\""),
            (br#"{"action": "redirect", "source": 42}"#, "invalid type"),
            (
                br#"{"action": "redirect", "source": "10.10.1.66", "ttl": 60}"#,
                "unknown field `ttl`",
            ),
            (
                br#"{"action": "redirect", "source": "10.10.1.66", "ttl_s": 0}"#,
                "ttl_s is 0",
            ),
            (br#"{"action": "release"}"#, "missing field `id`"),
            (br#"{"action": "release", "id": ""}"#, "id is empty"),
        ];
        let mut verifier = WebhookVerifier::new(config());
        for (i, (body, says)) in cases.iter().enumerate() {
            let err = send(&mut verifier, body, NOW + i as u64).unwrap_err();
            assert_eq!(err.status(), 400, "{err}");
            assert!(err.to_string().contains(says), "{err} lacks {says:?}");
        }
    }

    #[test]
    fn each_action_parses() {
        let mut verifier = WebhookVerifier::new(config());
        let body = br#"{"action": "redirect", "source": "10.10.9.0/24", "ttl_s": 3600}"#;
        assert_eq!(
            send(&mut verifier, body, NOW).unwrap(),
            HookAction::Redirect {
                source: Source::Cidr("10.10.9.0/24".parse().unwrap()),
                reason: None,
                ttl_s: Some(3600),
            }
        );
        let body = br#"{"action": "redirect", "source": "52:54:00:0A:01:42"}"#;
        assert_eq!(
            send(&mut verifier, body, NOW).unwrap(),
            HookAction::Redirect {
                source: Source::Mac("52:54:00:0a:01:42".into()),
                reason: None,
                ttl_s: None,
            }
        );
        let body = br#"{"action": "release", "id": "r-0007"}"#;
        assert_eq!(
            send(&mut verifier, body, NOW).unwrap(),
            HookAction::Release {
                id: "r-0007".into()
            }
        );
    }

    #[test]
    fn hook_action_round_trips_through_json() {
        let action = HookAction::Redirect {
            source: Source::Mac("52:54:00:0a:01:42".into()),
            reason: Some("SOAR playbook 12".into()),
            ttl_s: Some(60),
        };
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "redirect", "source": "52:54:00:0a:01:42",
                               "reason": "SOAR playbook 12", "ttl_s": 60})
        );
        assert_eq!(serde_json::from_value::<HookAction>(json).unwrap(), action);
    }

    #[test]
    fn config_refuses_empty_secrets_and_bad_names() {
        let err = HooksConfig::from_toml("[integration.splunk]\nsecret = \"  \"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("integration.splunk.secret is empty"),
            "{err}"
        );
        let err =
            HooksConfig::from_toml("[integration.\"spl unk\"]\nsecret = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("\"spl unk\""), "{err}");
        let err = HooksConfig::from_toml("[integration.\"a/b\"]\nsecret = \"x\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn config_names_the_bad_field() {
        let err = HooksConfig::from_toml("[integration.splunk]\nsecrt = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `secrt`"), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = HooksConfig::from_toml("[integration.splunk]\n").unwrap_err();
        assert!(err.to_string().contains("missing field `secret`"), "{err}");
        let err = HooksConfig::from_toml("[integrations.splunk]\nsecret = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("integrations"), "{err}");
        let err = HooksConfig::from_toml("[integration.splunk]\nsecret = 5\n").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        assert_eq!(HooksConfig::from_toml("").unwrap(), HooksConfig::default());
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!("{:?}", WebhookVerifier::new(config()));
        assert!(!shown.contains(SPLUNK), "{shown}");
        assert!(shown.contains("splunk"), "{shown}");
    }
}
