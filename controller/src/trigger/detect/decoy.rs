//! Decoy events as observations: what a twin host reports that a detector
//! judges.
//!
//! A login attempt on a twin host's real login daemon arrives as `kind:
//! "decoy"`, `action: "login"`, with `data.user`, `data.success` and
//! `data.password` when the daemon let PAM see it (see
//! `gemelo_hypervisor::decoy::login`); it becomes `Observation::Login`, judged
//! by the brute-force detector (failed logins) and the honeytoken detector
//! (planted credentials). The persona shell's own `login` event (protocol
//! `shell`) opens a session after such an attempt succeeded: it is not a
//! second attempt. Only redirected sources reach a twin host, so the event's
//! peer is the attacker's production address.

use super::Observation;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::SystemTime;

/// A login event that cannot be judged; the message says what it lacks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecoyEventError {
    #[error("login event lacks {0}")]
    Missing(&'static str),
    #[error("login event's peer {0:?} is not an IPv4 address (with or without a port), so it names no source")]
    Peer(String),
}

/// The observation a decoy event makes, if any; `received` stands in for an
/// event without a readable time.
pub fn observation(
    event: &Value,
    received: SystemTime,
) -> Result<Option<Observation>, DecoyEventError> {
    if event["kind"] != "decoy" || event["action"] != "login" || event["protocol"] == "shell" {
        return Ok(None);
    }
    let text = |v: &Value, what: &'static str| {
        v.as_str()
            .map(str::to_string)
            .ok_or(DecoyEventError::Missing(what))
    };
    let data = &event["data"];
    let peer = text(&event["peer"], "a peer")?;
    let src_ip = peer
        .parse::<Ipv4Addr>()
        .or_else(|_| peer.parse::<SocketAddrV4>().map(|a| *a.ip()))
        .map_err(|_| DecoyEventError::Peer(peer.clone()))?;
    let time = event["time"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .unwrap_or(received);
    Ok(Some(Observation::Login {
        time,
        src_ip,
        twin_host: text(&event["twin_host"], "a twin_host")?,
        protocol: text(&event["protocol"], "a protocol")?,
        user: text(&data["user"], "data.user")?,
        password: data["password"].as_str().map(str::to_string),
        success: data["success"]
            .as_bool()
            .ok_or(DecoyEventError::Missing("a boolean data.success"))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    /// As `gemelo login-attempt` sent it for a wrong ssh password on web01.
    fn failed_ssh() -> Value {
        json!({
            "time": "2026-11-25T23:43:38.228122Z",
            "kind": "decoy",
            "twin_host": "web01",
            "peer": "10.10.2.77",
            "protocol": "ssh",
            "action": "login",
            "data": {"user": "admin", "password": "wrongpw", "success": false, "service": "sshd"},
        })
    }

    #[test]
    fn a_login_event_is_a_login_observation() {
        let obs = observation(&failed_ssh(), UNIX_EPOCH).unwrap().unwrap();
        assert_eq!(
            obs,
            Observation::Login {
                time: UNIX_EPOCH + Duration::from_micros(1_795_650_218_228_122),
                src_ip: Ipv4Addr::new(10, 10, 2, 77),
                twin_host: "web01".into(),
                protocol: "ssh".into(),
                user: "admin".into(),
                password: Some("wrongpw".into()),
                success: false,
            }
        );
    }

    #[test]
    fn a_hidden_password_a_port_and_no_time_are_fine() {
        let received = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut ev = failed_ssh();
        ev["peer"] = json!("10.10.2.77:51778");
        ev["data"]["password"] = Value::Null;
        ev["time"] = json!("yesterday");
        let Some(Observation::Login {
            src_ip,
            password,
            time,
            ..
        }) = observation(&ev, received).unwrap()
        else {
            panic!("not a login");
        };
        assert_eq!(src_ip, Ipv4Addr::new(10, 10, 2, 77));
        assert_eq!(password, None);
        assert_eq!(time, received);
    }

    #[test]
    fn other_events_are_no_observation() {
        let shell = json!({"kind": "decoy", "twin_host": "web01", "peer": "10.10.2.77:40000",
            "protocol": "shell", "action": "login", "data": {"user": "admin"}});
        let request = json!({"kind": "decoy", "twin_host": "web01", "peer": "10.10.2.77:40000",
            "protocol": "http", "action": "request", "data": {"path": "/"}});
        let alert = json!({"kind": "alert", "action": "login"});
        for ev in [shell, request, alert] {
            assert_eq!(observation(&ev, UNIX_EPOCH), Ok(None), "{ev}");
        }
    }

    #[test]
    fn a_login_event_that_names_no_source_or_outcome_is_refused() {
        let mut ev = failed_ssh();
        ev["peer"] = json!("localhost");
        let e = observation(&ev, UNIX_EPOCH).unwrap_err();
        assert_eq!(e, DecoyEventError::Peer("localhost".into()));
        assert!(e.to_string().contains("names no source"), "{e}");
        for (field, says) in [
            ("/peer", "a peer"),
            ("/twin_host", "a twin_host"),
            ("/data/user", "data.user"),
            ("/data/success", "data.success"),
        ] {
            let mut ev = failed_ssh();
            *ev.pointer_mut(field).unwrap() = json!(7);
            let e = observation(&ev, UNIX_EPOCH).unwrap_err();
            assert!(e.to_string().contains(says), "{field}: {e}");
        }
    }
}
