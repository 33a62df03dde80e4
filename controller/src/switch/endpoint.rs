//! Where switch connections come from or go to: `tcp:IP:PORT` or `unix:PATH`.
//!
//! Listening endpoints accept switches that were pointed at gemelo
//! (`ovs-vsctl set-controller BR unix:/run/gemelo/openflow.sock`); connecting
//! endpoints reach a bridge's passive socket (`unix:RUNDIR/BR.mgmt`, `tcp:IP:6653`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("tcp:") {
            let addr = if rest.contains(':') {
                rest.to_string()
            } else {
                format!("{rest}:6653")
            };
            return addr
                .parse()
                .map(Endpoint::Tcp)
                .map_err(|e| format!("bad endpoint {s:?}: {e} (expected tcp:IP:PORT)"));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!(
                    "bad endpoint {s:?}: empty path (expected unix:/PATH)"
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if s.starts_with("ssl:") {
            return Err(format!(
                "endpoint {s:?}: ssl: is not supported yet; use tcp: or unix:"
            ));
        }
        Err(format!(
            "bad endpoint {s:?}: expected tcp:IP:PORT or unix:PATH"
        ))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            "tcp:127.0.0.1:6653".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(
            "tcp:127.0.0.1".parse::<Endpoint>().unwrap().to_string(),
            "tcp:127.0.0.1:6653"
        );
        assert_eq!(
            "unix:/run/gemelo/openflow.sock"
                .parse::<Endpoint>()
                .unwrap(),
            Endpoint::Unix("/run/gemelo/openflow.sock".into())
        );
        assert!("udp:1.2.3.4"
            .parse::<Endpoint>()
            .unwrap_err()
            .contains("expected"));
        assert!("tcp:nonsense".parse::<Endpoint>().is_err());
        assert!("ssl:1.2.3.4:6653"
            .parse::<Endpoint>()
            .unwrap_err()
            .contains("not supported"));
    }
}
