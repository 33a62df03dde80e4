//! The source a trigger asks to redirect: one IPv4 address, one MAC, or an IPv4
//! network. Written and read as the string an integration sends
//! (`10.10.1.66`, `52:54:00:0a:01:42`, `10.10.9.0/24`), so it round-trips
//! through JSON unchanged.

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Ip(Ipv4Addr),
    /// Lower case, colon separated: `52:54:00:0a:01:42`.
    Mac(String),
    /// A network address (host bits clear).
    Cidr(Ipv4Network),
}

/// A string that is neither an IPv4 address, a MAC nor an IPv4 network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("source {text:?} {why}")]
pub struct SourceError {
    pub text: String,
    pub why: String,
}

impl FromStr for Source {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |why: String| SourceError {
            text: s.to_string(),
            why,
        };
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| refuse("has no IPv4 address before the '/'".into()))?;
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| refuse("has a prefix length that is not 0-32".into()))?;
            let net = Ipv4Network::new(addr, prefix)
                .map_err(|e| refuse(format!("is not an IPv4 network ({e})")))?;
            if net.network() != addr {
                return Err(refuse(format!(
                    "has host bits set; the network is {}/{prefix}",
                    net.network()
                )));
            }
            return Ok(Source::Cidr(net));
        }
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Ok(Source::Ip(ip));
        }
        if let Some(mac) = normalize_mac(s) {
            return Ok(Source::Mac(mac));
        }
        Err(refuse(
            "is not an IPv4 address (10.10.1.66), a MAC (52:54:00:0a:01:42) or an IPv4 network (10.10.9.0/24)"
                .into(),
        ))
    }
}

/// Six two-digit hex groups separated by ':' or '-', in lower case with ':'.
fn normalize_mac(s: &str) -> Option<String> {
    let groups: Vec<&str> = s.split([':', '-']).collect();
    let well_formed = groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    well_formed.then(|| groups.join(":").to_ascii_lowercase())
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(ip) => write!(f, "{ip}"),
            Source::Mac(mac) => f.write_str(mac),
            Source::Cidr(net) => write!(f, "{}/{}", net.network(), net.prefix()),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            "10.10.1.66".parse(),
            Ok(Source::Ip(Ipv4Addr::new(10, 10, 1, 66)))
        );
        assert_eq!(
            "52:54:00:0A:01:42".parse(),
            Ok(Source::Mac("52:54:00:0a:01:42".into()))
        );
        assert_eq!(
            "52-54-00-0a-01-42".parse(),
            Ok(Source::Mac("52:54:00:0a:01:42".into()))
        );
        assert_eq!(
            "10.10.9.0/24".parse(),
            Ok(Source::Cidr("10.10.9.0/24".parse().unwrap()))
        );
    }

    #[test]
    fn round_trips_through_display() {
        for text in [
            "10.10.1.66",
            "52:54:00:0a:01:42",
            "10.10.9.0/24",
            "10.0.0.5/32",
        ] {
            assert_eq!(text.parse::<Source>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_what_it_cannot_name() {
        for text in [
            "",
            "10.10.1",
            "10.10.1.256",
            "10.10.9.0/33",
            "10.10.9.0/",
            "web01/24",
            "52:54:00:0a:01",
            "52:54:00:0a:01:4g",
            "2001:db8::1",
        ] {
            assert!(text.parse::<Source>().is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn host_bits_name_the_network() {
        let err = "10.10.9.7/24".parse::<Source>().unwrap_err();
        assert!(err.to_string().contains("10.10.9.0/24"), "{err}");
    }
}
