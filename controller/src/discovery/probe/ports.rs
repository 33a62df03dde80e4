//! The default port list: what an IT office, an OT plant and an IoT site run.
//!
//! Chosen because `nmap`'s top-1000 misses the plant and IoT ports (Modbus 502,
//! MQTT 1883) that matter most to a twin of such sites; ~100 ports keep a full
//! host probe within a second or two at the default rate.

/// Well-known IT, OT and IoT TCP ports, with what each usually is:
///
/// | group | ports |
/// |---|---|
/// | remote access | 22 ssh, 23 telnet, 2222 ssh-alt, 2323 telnet-alt, 3389 rdp, 5900/5901 vnc, 5985/5986 winrm |
/// | file / mail / name | 20/21 ftp, 25/465/587 smtp, 110/995 pop3, 143/993 imap, 53 dns, 69 tftp(tcp), 111 rpcbind, 135 msrpc, 139/445 smb, 2049 nfs, 873 rsync |
/// | web | 80, 81, 443, 591, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9090, 9443, 10000 |
/// | directory / db / queues | 88 kerberos, 389/636 ldap, 1433 mssql, 1521 oracle, 3306 mysql, 5432 postgres, 6379 redis, 9200 elasticsearch, 11211 memcached, 27017 mongodb, 5672 amqp, 61616 activemq, 2375/2376 docker, 6443 kubernetes |
/// | printers / infra | 515 lpd, 631 ipp, 9100 jetdirect, 179 bgp, 1723 pptp, 3128 squid, 8291 mikrotik, 5060/5061 sip |
/// | OT | 102 s7, 502 modbus, 2404 iec-104, 4840 opc-ua, 20000 dnp3, 44818 ethernet/ip, 47808 bacnet(tcp), 1911/4911 niagara fox, 9600 omron fins, 789 red lion, 2455 codesys, 1962 pcworx, 18245 ge srtp, 5007 melsec, 5094 hart-ip, 34962/34963/34964 profinet, 20547 proconos, 11001 metasys, 4000 emerson, 10001 atg |
/// | IoT | 1883/8883 mqtt, 5683 coap(tcp), 554 rtsp, 8554 rtsp-alt, 37777 dahua, 34567 dvr, 7547 tr-069, 1900 upnp, 49152 upnp, 5353 mdns, 8883 mqtts, 1880 node-red, 8123 home-assistant, 9999 tp-link |
pub const DEFAULT_PORTS: &[u16] = &[
    // remote access
    22, 23, 2222, 2323, 3389, 5900, 5901, 5985, 5986, // file, mail, name services
    20, 21, 25, 465, 587, 110, 995, 143, 993, 53, 69, 111, 135, 139, 445, 2049, 873, // web
    80, 81, 443, 591, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9090, 9443, 10000,
    // directory, databases, queues, orchestration
    88, 389, 636, 1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017, 5672, 61616, 2375, 2376, 6443,
    // printers and infrastructure
    515, 631, 9100, 179, 1723, 3128, 8291, 5060, 5061, // OT
    102, 502, 2404, 4840, 20000, 44818, 47808, 1911, 4911, 9600, 789, 2455, 1962, 18245, 5007,
    5094, 34962, 34963, 34964, 20547, 11001, 4000, 10001, // IoT
    1883, 8883, 5683, 554, 8554, 37777, 34567, 7547, 1900, 49152, 5353, 1880, 8123, 9999,
];

/// What a port usually carries (used to pick the first probe, and as a hint on
/// services left "unknown"; never reported as the identification itself).
pub fn port_hint(port: u16) -> Option<&'static str> {
    Some(match port {
        22 | 2222 => "ssh",
        23 | 2323 => "telnet",
        20 | 21 => "ftp",
        25 | 465 | 587 => "smtp",
        110 | 995 => "pop3",
        143 | 993 => "imap",
        53 => "dns",
        80 | 81 | 591 | 8000 | 8008 | 8080 | 8081 | 8088 | 8888 | 9000 | 9090 | 10000 | 1880
        | 8123 => "http",
        443 | 8443 | 9443 => "https",
        139 | 445 => "smb",
        3389 => "rdp",
        5900 | 5901 => "vnc",
        102 => "s7",
        502 => "modbus",
        2404 => "iec-104",
        4840 => "opc-ua",
        20000 => "dnp3",
        44818 => "ethernet-ip",
        47808 => "bacnet",
        1911 | 4911 => "niagara-fox",
        9600 => "omron-fins",
        2455 => "codesys",
        1962 => "pcworx",
        18245 => "ge-srtp",
        5007 => "melsec",
        5094 => "hart-ip",
        34962..=34964 => "profinet",
        20547 => "proconos",
        789 => "redlion",
        1883 => "mqtt",
        8883 => "mqtts",
        5683 => "coap",
        554 | 8554 => "rtsp",
        37777 | 34567 => "dvr",
        7547 => "tr-069",
        1900 | 49152 => "upnp",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_a_hundred_distinct_ports() {
        let mut p = DEFAULT_PORTS.to_vec();
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), DEFAULT_PORTS.len(), "duplicates in DEFAULT_PORTS");
        assert!((90..=120).contains(&p.len()), "{}", p.len());
        for must in [
            22, 23, 21, 25, 53, 80, 443, 445, 3389, 5900, 502, 102, 20000, 44818, 2404, 4840, 1883,
            8883, 554, 8000, 8080, 8081, 8443, 8888,
        ] {
            assert!(p.contains(&must), "{must}");
        }
    }
}
