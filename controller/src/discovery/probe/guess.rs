//! Pure guesses from what the probes saw: the OS family and the host's role.
//!
//! Specific words beat numbers: a distribution named in an SSH comment, an
//! HTTP `Server` header or an SNMP sysDescr decides; the IP TTL (rounded up to
//! the usual initial 64 / 128 / 255) only when nothing else speaks.

use super::ServiceInfo;

/// (family, guess) from service banners, else from the TTL of the host's packets.
pub fn guess_os(services: &[ServiceInfo], ttl: Option<u8>) -> Option<(String, String)> {
    let pair = |f: &str, g: &str| Some((f.to_string(), g.to_string()));
    let texts = services.iter().flat_map(|s| {
        let descr = s
            .details
            .get("sys_descr")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        [s.banner.clone(), s.version.clone(), descr]
            .into_iter()
            .flatten()
    });
    for text in texts {
        let lower = text.to_ascii_lowercase();
        for (word, family, guess) in [
            ("debian", "Linux", "Debian"),
            ("ubuntu", "Linux", "Ubuntu"),
            ("raspbian", "Linux", "Raspbian"),
            ("red hat", "Linux", "Red Hat"),
            ("centos", "Linux", "CentOS"),
            ("alpine", "Linux", "Alpine"),
            ("freebsd", "BSD", "FreeBSD"),
            ("openbsd", "BSD", "OpenBSD"),
            ("microsoft-iis", "Windows", "Windows (IIS)"),
            ("windows", "Windows", "Windows"),
            ("cisco ios", "IOS", "Cisco IOS"),
            ("junos", "Junos", "Juniper Junos"),
            ("routeros", "RouterOS", "MikroTik RouterOS"),
            ("vxworks", "VxWorks", "VxWorks"),
        ] {
            if lower.contains(word) {
                return pair(family, guess);
            }
        }
        if lower.starts_with("linux ") {
            // sysDescr "Linux HOST KERNEL ...": keep the kernel release.
            let kernel = text.split_whitespace().nth(2).unwrap_or("");
            return pair("Linux", format!("Linux {kernel}").trim());
        }
    }
    match ttl? {
        0..=64 => pair("Linux", "Linux/Unix (TTL 64)"),
        65..=128 => pair("Windows", "Windows (TTL 128)"),
        _ => pair("Network OS", "router/switch or embedded OS (TTL 255)"),
    }
}

const OT_NAMES: &[&str] = &[
    "modbus",
    "s7",
    "dnp3",
    "ethernet-ip",
    "bacnet",
    "iec-104",
    "opc-ua",
    "niagara-fox",
    "omron-fins",
    "codesys",
    "pcworx",
    "ge-srtp",
    "melsec",
    "hart-ip",
    "profinet",
    "proconos",
    "redlion",
];
const IOT_NAMES: &[&str] = &[
    "mqtt", "mqtts", "coap", "rtsp", "dvr", "upnp", "tr-069", "onvif",
];
const CAMERA_WORDS: &[&str] = &[
    "camera",
    "ipcam",
    "webcam",
    "hikvision",
    "dahua",
    "axis",
    "dvr",
    "nvr",
    "onvif",
    "netwave",
    "goahead",
];

/// "OT", "IoT" or "IT": OT if any industrial protocol answers, IoT if MQTT,
/// RTSP, CoAP or a camera-like web page does, else IT. Services left "unknown"
/// count by their port's usual protocol.
pub fn classify_role(services: &[ServiceInfo]) -> &'static str {
    let name_of = |s: &ServiceInfo| -> String {
        if s.name == "unknown" {
            s.details
                .get("port_hint")
                .and_then(|v| v.as_str())
                .or_else(|| super::port_hint(s.port))
                .unwrap_or("unknown")
                .to_string()
        } else {
            s.name.clone()
        }
    };
    if services
        .iter()
        .any(|s| OT_NAMES.contains(&name_of(s).as_str()))
    {
        return "OT";
    }
    let camera_like = |s: &ServiceInfo| {
        s.name == "http" && {
            let mut text = s.product.clone().unwrap_or_default();
            if let Some(t) = s.details.get("title").and_then(|v| v.as_str()) {
                text.push(' ');
                text.push_str(t);
            }
            let lower = text.to_ascii_lowercase();
            CAMERA_WORDS.iter().any(|w| lower.contains(w))
        }
    };
    if services
        .iter()
        .any(|s| IOT_NAMES.contains(&name_of(s).as_str()) || camera_like(s))
    {
        return "IoT";
    }
    "IT"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(port: u16, name: &str, banner: Option<&str>) -> ServiceInfo {
        let mut s = ServiceInfo::new(port, "tcp", name);
        s.banner = banner.map(str::to_string);
        s
    }

    #[test]
    fn os_from_banners_then_ttl() {
        let ssh = svc(22, "ssh", Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"));
        assert_eq!(
            guess_os(&[ssh], Some(64)),
            Some(("Linux".into(), "Debian".into()))
        );
        let mut snmp = ServiceInfo::new(161, "udp", "snmp");
        snmp.details = json!({"sys_descr": "Linux plc 6.1.0-18-amd64 #1 SMP"});
        assert_eq!(
            guess_os(&[snmp], None),
            Some(("Linux".into(), "Linux 6.1.0-18-amd64".into()))
        );
        assert_eq!(
            guess_os(
                &[svc(
                    80,
                    "http",
                    Some("HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0")
                )],
                None
            )
            .unwrap()
            .0,
            "Windows"
        );
        assert_eq!(guess_os(&[], Some(120)).unwrap().0, "Windows");
        assert_eq!(guess_os(&[], Some(250)).unwrap().0, "Network OS");
        assert_eq!(guess_os(&[], None), None);
    }

    #[test]
    fn roles() {
        assert_eq!(
            classify_role(&[svc(22, "ssh", None), svc(502, "modbus", None)]),
            "OT"
        );
        assert_eq!(classify_role(&[svc(102, "unknown", None)]), "OT");
        assert_eq!(classify_role(&[svc(1883, "mqtt", None)]), "IoT");
        let mut cam = svc(80, "http", None);
        cam.details = json!({"title": "IP Camera Login"});
        assert_eq!(classify_role(&[cam]), "IoT");
        assert_eq!(
            classify_role(&[svc(22, "ssh", None), svc(80, "http", None)]),
            "IT"
        );
        assert_eq!(classify_role(&[]), "IT");
    }
}
