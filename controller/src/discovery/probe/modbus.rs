//! Modbus/TCP: who the device says it is, and what a small read shows.
//!
//! Read Device Identification (function 0x2B, MEI 0x0E; basic then regular
//! objects: vendor, product code, revision, vendor URL, product name, model
//! name) gives product and version; Read Holding Registers (function 3) of two
//! small blocks records the process image an attacker would read first,
//! exceptions included, so the twin PLC answers the same. Reads only: no probe
//! here ever writes to a PLC.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use super::{conn, hex, ProbeConfig, ServiceInfo};

/// Unit id we address (what most Modbus/TCP servers and gateways answer).
const UNIT: u8 = 1;
const FC_READ_HOLDING: u8 = 0x03;
const FC_MEI: u8 = 0x2B;
const MEI_DEVICE_ID: u8 = 0x0E;
/// Register blocks read: (start address, count).
pub(super) const BLOCKS: [(u16, u16); 2] = [(0, 16), (100, 16)];
/// The blocks that answered are read this many more times, this far apart:
/// a register that changes meanwhile is live (a process value, a counter),
/// not a setting, and the twin keeps it moving.
const RESAMPLES: usize = 2;
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// An MBAP frame around `pdu`.
pub(super) fn frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + pdu.len());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
    out
}

/// (transaction, unit, pdu, bytes consumed) of one MBAP frame.
pub(super) type Frame<'a> = (u16, u8, &'a [u8], usize);

/// The whole MBAP frame at the start of `bytes`; `Ok(None)` if incomplete.
pub(super) fn parse_frame(bytes: &[u8]) -> Result<Option<Frame<'_>>, &'static str> {
    if bytes.len() < 7 {
        return Ok(None);
    }
    if bytes[2..4] != [0, 0] {
        return Err("not Modbus: protocol id is not 0");
    }
    let len = u16::from_be_bytes([bytes[4], bytes[5]]) as usize;
    if !(2..=254).contains(&len) {
        return Err("Modbus length out of range");
    }
    if bytes.len() < 6 + len {
        return Ok(None);
    }
    Ok(Some((
        u16::from_be_bytes([bytes[0], bytes[1]]),
        bytes[6],
        &bytes[7..6 + len],
        6 + len,
    )))
}

/// A Read Device Identification answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DeviceId {
    pub conformity: u8,
    pub more_follows: bool,
    pub next_object: u8,
    pub objects: Vec<(u8, Vec<u8>)>,
}

/// A function's answer: its data, or the exception code.
pub(super) enum Answer<T> {
    Ok(T),
    Exception(u8),
}

pub(super) fn parse_device_id(pdu: &[u8]) -> Result<Answer<DeviceId>, &'static str> {
    match pdu {
        [fc, code, ..] if *fc == FC_MEI | 0x80 => Ok(Answer::Exception(*code)),
        [FC_MEI, MEI_DEVICE_ID, _read_code, conformity, more, next, count, rest @ ..] => {
            let mut objects = Vec::new();
            let mut at = 0;
            for _ in 0..*count {
                let id = *rest.get(at).ok_or("device id truncated")?;
                let len = *rest.get(at + 1).ok_or("device id truncated")? as usize;
                let value = rest
                    .get(at + 2..at + 2 + len)
                    .ok_or("device id object truncated")?;
                objects.push((id, value.to_vec()));
                at += 2 + len;
            }
            Ok(Answer::Ok(DeviceId {
                conformity: *conformity,
                more_follows: *more == 0xff,
                next_object: *next,
                objects,
            }))
        }
        _ => Err("not a device identification answer"),
    }
}

/// Register values of a function-3 answer.
pub(super) fn parse_registers(pdu: &[u8]) -> Result<Answer<Vec<u16>>, &'static str> {
    match pdu {
        [fc, code, ..] if *fc == FC_READ_HOLDING | 0x80 => Ok(Answer::Exception(*code)),
        [FC_READ_HOLDING, n, data @ ..] if data.len() >= *n as usize && n % 2 == 0 => {
            Ok(Answer::Ok(
                data[..*n as usize]
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            ))
        }
        _ => Err("not a holding-register answer"),
    }
}

/// Standard object names (Modbus application protocol v1.1b3, table of 0x2B/0x0E).
fn object_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0 => "vendor_name",
        1 => "product_code",
        2 => "revision",
        3 => "vendor_url",
        4 => "product_name",
        5 => "model_name",
        6 => "user_application_name",
        _ => return None,
    })
}

/// `ServiceInfo` from the collected answers (raw PDUs, for the record).
pub(super) fn service_from(
    port: u16,
    device: &[(u8, Vec<u8>)],
    conformity: Option<u8>,
    id_error: Option<Value>,
    registers: Vec<Value>,
) -> ServiceInfo {
    let mut info = ServiceInfo::new(port, "tcp", "modbus");
    let mut named = Map::new();
    let mut raw = Map::new();
    for (id, value) in device {
        let text = String::from_utf8_lossy(value).into_owned();
        if let Some(name) = object_name(*id) {
            named.insert(name.into(), json!(text));
        }
        raw.insert(format!("{id}"), json!(hex(value)));
    }
    let get = |k: &str| named.get(k).and_then(Value::as_str).map(str::to_string);
    info.product = get("product_name").or_else(|| get("product_code"));
    info.version = get("revision");
    info.details = json!({
        "unit_id": UNIT,
        "vendor": get("vendor_name"),
        "device_id": named,
        "device_id_objects_hex": raw,
        "conformity_level": conformity,
        "device_id_error": id_error,
        "holding_registers": registers,
    });
    info
}

/// One request/response on the connection: the answer's PDU.
async fn ask(
    stream: &mut TcpStream,
    transaction: u16,
    pdu: &[u8],
    cfg: &ProbeConfig,
) -> Result<Vec<u8>, String> {
    if !conn::send(stream, &frame(transaction, UNIT, pdu), cfg).await {
        return Err("send failed".into());
    }
    let mut buf = Vec::new();
    let deadline = Instant::now() + cfg.read_timeout;
    conn::read_until(stream, &mut buf, deadline, 512, |b| {
        !matches!(parse_frame(b), Ok(None))
    })
    .await;
    match parse_frame(&buf) {
        Ok(Some((t, _, pdu, _))) if t == transaction => Ok(pdu.to_vec()),
        Ok(Some(_)) => Err("answer to another transaction".into()),
        Ok(None) if buf.is_empty() => Err("no answer".into()),
        Ok(None) => Err(format!("truncated answer {}", hex(&buf))),
        Err(e) => Err(format!("{e}: {}", hex(&buf[..buf.len().min(64)]))),
    }
}

/// Device identification then register reads, on one connection. None if the
/// service never answered like Modbus.
pub(super) async fn probe(addr: SocketAddr, cfg: &ProbeConfig) -> Option<ServiceInfo> {
    let mut stream = conn::connect(addr, cfg).await.ok()?;
    let mut transaction = 0u16;
    let mut objects = Vec::new();
    let mut conformity = None;
    let mut id_error = None;
    let mut spoke_modbus = false;
    // Basic (1) then regular (2) objects, following "more follows" a few times.
    'codes: for read_code in [1u8, 2] {
        let mut next = 0u8;
        for _ in 0..8 {
            transaction += 1;
            let asked = Instant::now();
            let answer = ask(
                &mut stream,
                transaction,
                &[FC_MEI, MEI_DEVICE_ID, read_code, next],
                cfg,
            )
            .await;
            if answer.is_err() && !spoke_modbus && asked.elapsed() >= cfg.read_timeout {
                // Silent to a well-formed request: not Modbus (or not answering at all).
                return None;
            }
            let parsed = answer
                .as_deref()
                .map_err(|e| e.clone())
                .and_then(|pdu| parse_device_id(pdu).map_err(str::to_string));
            match parsed {
                Ok(Answer::Ok(d)) => {
                    spoke_modbus = true;
                    conformity = Some(d.conformity);
                    for (id, v) in d.objects {
                        if !objects.iter().any(|(i, _)| *i == id) {
                            objects.push((id, v));
                        }
                    }
                    if !d.more_follows || d.next_object <= next {
                        break;
                    }
                    next = d.next_object;
                }
                Ok(Answer::Exception(code)) => {
                    spoke_modbus = true;
                    id_error = Some(json!({"read_code": read_code, "exception": code}));
                    break 'codes;
                }
                Err(e) => {
                    id_error = Some(json!({"read_code": read_code, "error": e}));
                    break 'codes;
                }
            }
        }
    }
    if !spoke_modbus {
        // Some servers drop the connection on an unsupported function: retry reads afresh.
        stream = conn::connect(addr, cfg).await.ok()?;
    }
    let mut registers = Vec::new();
    for (start, count) in BLOCKS {
        transaction += 1;
        let mut pdu = vec![FC_READ_HOLDING];
        pdu.extend_from_slice(&start.to_be_bytes());
        pdu.extend_from_slice(&count.to_be_bytes());
        let entry = match ask(&mut stream, transaction, &pdu, cfg).await {
            Ok(answer) => match parse_registers(&answer) {
                Ok(Answer::Ok(values)) => {
                    spoke_modbus = true;
                    json!({"start": start, "count": count, "values": values})
                }
                Ok(Answer::Exception(code)) => {
                    spoke_modbus = true;
                    json!({"start": start, "count": count, "exception": code})
                }
                Err(e) => {
                    json!({"start": start, "count": count, "error": e, "pdu_hex": hex(&answer)})
                }
            },
            Err(e) => json!({"start": start, "count": count, "error": e}),
        };
        registers.push(entry);
    }
    if !spoke_modbus {
        return None;
    }
    // The blocks that answered, read again: which registers move.
    let answered: Vec<(u16, Vec<u16>)> = registers
        .iter()
        .filter_map(|b| {
            let start = u16::try_from(b.get("start")?.as_u64()?).ok()?;
            let values = b.get("values")?.as_array()?;
            let values: Option<Vec<u16>> = values
                .iter()
                .map(|v| v.as_u64().and_then(|v| u16::try_from(v).ok()))
                .collect();
            Some((start, values?))
        })
        .collect();
    let mut rounds = vec![answered.clone()];
    for _ in 0..RESAMPLES {
        if answered.is_empty() {
            break;
        }
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        let mut round = Vec::new();
        for (start, values) in &answered {
            transaction += 1;
            let mut pdu = vec![FC_READ_HOLDING];
            pdu.extend_from_slice(&start.to_be_bytes());
            pdu.extend_from_slice(&(values.len() as u16).to_be_bytes());
            if let Ok(Ok(Answer::Ok(again))) = ask(&mut stream, transaction, &pdu, cfg)
                .await
                .map(|a| parse_registers(&a).map_err(str::to_string))
            {
                round.push((*start, again));
            }
        }
        rounds.push(round);
    }
    let mut info = service_from(addr.port(), &objects, conformity, id_error, registers);
    info.details["live_registers"] = json!(live_registers(&rounds));
    info.details["sample_interval_ms"] = json!(SAMPLE_INTERVAL.as_millis() as u64);
    Some(info)
}

/// The registers whose value differs between sampling rounds (each round:
/// (block start, values)), with every value seen, in order.
pub(super) fn live_registers(rounds: &[Vec<(u16, Vec<u16>)>]) -> Vec<Value> {
    let mut seen: std::collections::BTreeMap<u16, Vec<u16>> = std::collections::BTreeMap::new();
    for round in rounds {
        for (start, values) in round {
            for (i, v) in values.iter().enumerate() {
                if let Some(addr) = start.checked_add(i as u16) {
                    seen.entry(addr).or_default().push(*v);
                }
            }
        }
    }
    seen.into_iter()
        .filter(|(_, samples)| samples.windows(2).any(|w| w[0] != w[1]))
        .map(|(address, samples)| json!({"address": address, "samples": samples}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::probe::unhex;
    use proptest::prelude::*;

    /// The lab PLC (pymodbus 3.0.0, Debian 12) answering basic and regular
    /// device identification, registers 0..16, and 100..116 (exception 2).
    const ID_BASIC: &str =
        "000100000024012b0e0183000003000f41636d65204175746f6d6174696f6e0104353030300203322e31";
    const ID_REGULAR: &str = "00010000004d012b0e0283000006000f41636d65204175746f6d6174696f6e0104353030300203322e310313687474703a2f2f6578616d706c652e6e65742f0408504c4320353030300508504c432035303030";
    const HR_0: &str =
        "0002000000230103200064006405aa01470013000000000000000c00220038004e0000000000000001";
    const HR_100: &str = "000300000003018302";

    fn pdu(hexed: &str) -> Vec<u8> {
        let bytes = unhex(hexed);
        let (_, _, pdu, used) = parse_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        pdu.to_vec()
    }

    #[test]
    fn pymodbus_plc() {
        let Answer::Ok(basic) = parse_device_id(&pdu(ID_BASIC)).unwrap() else {
            panic!()
        };
        assert_eq!(basic.objects.len(), 3);
        let Answer::Ok(regular) = parse_device_id(&pdu(ID_REGULAR)).unwrap() else {
            panic!()
        };
        assert_eq!(regular.conformity, 0x83);
        let Answer::Ok(values) = parse_registers(&pdu(HR_0)).unwrap() else {
            panic!()
        };
        assert_eq!(values[..4], [100, 100, 1450, 327]);
        let Answer::Exception(2) = parse_registers(&pdu(HR_100)).unwrap() else {
            panic!()
        };
        let regs = vec![
            json!({"start": 0, "count": 16, "values": values}),
            json!({"start": 100, "count": 16, "exception": 2}),
        ];
        let info = service_from(502, &regular.objects, Some(regular.conformity), None, regs);
        assert_eq!(info.product.as_deref(), Some("PLC 5000"));
        assert_eq!(info.version.as_deref(), Some("2.1"));
        assert_eq!(info.details["vendor"], "Acme Automation");
        assert_eq!(
            info.details["device_id"]["vendor_url"],
            "http://example.net/"
        );
        assert_eq!(info.details["holding_registers"][1]["exception"], 2);
    }

    #[test]
    fn registers_that_move_are_live() {
        let rounds = vec![
            vec![(0, vec![100, 98, 1450, 0, 7]), (100, vec![5])],
            vec![(0, vec![100, 99, 1450, 0, 8]), (100, vec![5])],
            // A round that lost a block still counts for the others.
            vec![(0, vec![100, 95, 1450, 0, 9])],
        ];
        assert_eq!(
            live_registers(&rounds),
            vec![
                json!({"address": 1, "samples": [98, 99, 95]}),
                json!({"address": 4, "samples": [7, 8, 9]}),
            ]
        );
        assert!(live_registers(&rounds[..1]).is_empty());
    }

    #[test]
    fn requests_we_send() {
        assert_eq!(
            hex(&frame(1, 1, &[FC_MEI, MEI_DEVICE_ID, 1, 0])),
            "000100000005012b0e0100"
        );
        assert_eq!(
            hex(&frame(2, 1, &[3, 0, 0, 0, 16])),
            "000200000006010300000010"
        );
    }

    #[test]
    fn truncated_captures_never_panic() {
        for capture in [ID_BASIC, ID_REGULAR, HR_0, HR_100] {
            let bytes = unhex(capture);
            for n in 0..bytes.len() {
                let _ = parse_frame(&bytes[..n]);
                let p = &bytes[7.min(n)..n];
                let _ = parse_device_id(p);
                let _ = parse_registers(p);
            }
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_frame(&bytes);
            let _ = parse_device_id(&bytes);
            let _ = parse_registers(&bytes);
            let mut id = vec![FC_MEI, MEI_DEVICE_ID];
            id.extend_from_slice(&bytes);
            let _ = parse_device_id(&id);
        }
    }
}
