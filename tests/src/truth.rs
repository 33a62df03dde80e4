//! Ground truth about a lab, read from the lab itself (never from its topology
//! file): what each host namespace and each switch say about themselves.

use anyhow::{Context, Result};
use gemelo::lab::LabStatus;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::{in_host, in_prod};

/// Upstream version of an installed Debian package: "1:9.2p1-2+deb12u3" -> "9.2p1".
pub fn upstream(pkg: &str) -> String {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", pkg])
        .output();
    let v = out
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let v = v.split_once(':').map(|(_, r)| r.to_string()).unwrap_or(v);
    v.rsplit_once('-').map(|(u, _)| u.to_string()).unwrap_or(v)
}

/// OVS port name -> (dpid, ofport), from every lab bridge's `ovs-ofctl show`.
pub fn ofports(status: &LabStatus) -> Result<BTreeMap<String, (String, u32)>> {
    let mut map = BTreeMap::new();
    for sw in &status.switches {
        let text = in_prod(status, &["ovs-ofctl", "-O", "OpenFlow13", "show", &sw.mgmt])?;
        for line in text.lines() {
            // " 3(gmsw1p3): addr:..."
            if let Some((no, rest)) = line.trim().split_once('(') {
                if let (Ok(no), Some((name, _))) = (no.parse::<u32>(), rest.split_once(')')) {
                    map.insert(name.to_string(), (sw.dpid.clone(), no));
                }
            }
        }
    }
    Ok(map)
}

/// Where one interface of a lab host attaches: (mac, ip, dpid, ofport).
pub type Attachment = (String, String, String, u32);

/// A host's hostname (from its UTS namespace) and, per interface with an IPv4
/// address, (mac, ip, dpid, ofport) — the switch side found through the OVS port
/// the lab wired that MAC to.
pub fn host_identity(
    status: &LabStatus,
    host: &str,
    ports: &BTreeMap<String, (String, u32)>,
) -> Result<(String, Vec<Attachment>)> {
    let h = status
        .hosts
        .iter()
        .find(|h| h.name == host)
        .with_context(|| format!("no lab host {host}"))?;
    let hostname = in_host(status, host, &["hostname"])?.trim().to_string();
    let addrs: Value =
        serde_json::from_str(&in_host(status, host, &["ip", "-j", "addr", "show"])?)?;
    let mut interfaces = Vec::new();
    for link in addrs.as_array().context("ip -j addr")? {
        if link["ifname"] == "lo" {
            continue;
        }
        let mac = link["address"].as_str().unwrap_or("").to_string();
        let ip = link["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["family"] == "inet")
            .and_then(|a| a["local"].as_str());
        let Some(ip) = ip else { continue };
        let iface = h
            .interfaces
            .iter()
            .find(|i| i.mac == mac)
            .with_context(|| format!("{host}: no lab interface with {mac}"))?;
        let (dpid, ofport) = ports
            .get(&iface.port_name)
            .cloned()
            .with_context(|| format!("no OVS port {}", iface.port_name))?;
        interfaces.push((mac, ip.to_string(), dpid, ofport));
    }
    Ok((hostname, interfaces))
}
