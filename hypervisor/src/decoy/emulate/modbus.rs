//! Modbus/TCP PLC emulation from what discovery captured: the device
//! identification objects (FC 43/14), the holding-register blocks (FC 3/4,
//! addresses outside them answer the captured exception), writes (FC 6/16)
//! accepted and kept for later reads; every request is an event.
//!
//! Registers discovery saw change between its samples (`live_registers`)
//! keep moving, as the PLC's program moves them: one that only went up by a
//! steady step counts on at that step per sample interval (a write sets
//! where it counts on from); any other wanders within the range seen, a new
//! value each interval (a write holds until the next one, as the program
//! overwrites it). A twin whose counters stood still would tell a second
//! read apart from production.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::IDLE;
use crate::decoy::{unhex, EventSink};

const FC_READ_HOLDING: u8 = 0x03;
const FC_READ_INPUT: u8 = 0x04;
const FC_WRITE_SINGLE: u8 = 0x06;
const FC_WRITE_MULTIPLE: u8 = 0x10;
const FC_MEI: u8 = 0x2B;
const MEI_DEVICE_ID: u8 = 0x0E;
const ILLEGAL_FUNCTION: u8 = 0x01;
const ILLEGAL_ADDRESS: u8 = 0x02;
const ILLEGAL_VALUE: u8 = 0x03;
const GATEWAY_NO_RESPONSE: u8 = 0x0B;
/// Standard object names, as the probe writes them (`device_id`).
const OBJECT_NAMES: [&str; 7] = [
    "vendor_name",
    "product_code",
    "revision",
    "vendor_url",
    "product_name",
    "model_name",
    "user_application_name",
];

/// The emulated device: identity from the capture, registers shared by all clients.
#[derive(Debug)]
pub struct Device {
    pub unit_id: Option<u8>,
    pub conformity: u8,
    /// (object id, bytes), ascending.
    pub objects: Vec<(u8, Vec<u8>)>,
    /// Exception code for reads outside the captured blocks.
    pub exception: u8,
    pub registers: Mutex<BTreeMap<u16, u16>>,
    /// How the live registers move, by address.
    pub live: Mutex<BTreeMap<u16, Motion>>,
    /// Live registers take a new value every this many ms.
    pub interval_ms: u64,
    pub started: Instant,
}

/// How a live register moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Motion {
    /// `base` at interval `since`, plus `step` per interval (wrapping).
    Counter { step: u16, base: u16, since: u64 },
    /// A value in `min..=max`, new each interval.
    Wanders { min: u16, max: u16 },
}

impl Motion {
    /// From the values discovery sampled one interval apart.
    pub fn from_samples(samples: &[u16]) -> Option<Motion> {
        let (&first, &last) = (samples.first()?, samples.last()?);
        let steps: Vec<u16> = samples
            .windows(2)
            .map(|w| w[1].wrapping_sub(w[0]))
            .collect();
        if steps.is_empty() {
            return None;
        }
        // Forward steps only (a wrapped u16 counter included): a counter.
        if steps.iter().all(|&d| d > 0 && d < 0x8000) {
            let n = steps.len() as u32;
            let total = u32::from(last.wrapping_sub(first));
            let step = ((total + n / 2) / n).max(1) as u16;
            return Some(Motion::Counter {
                step,
                base: last,
                since: 0,
            });
        }
        let (min, max) = (*samples.iter().min()?, *samples.iter().max()?);
        Some(Motion::Wanders { min, max })
    }

    /// The value at interval `tick` of register `addr`.
    fn at(&self, addr: u16, tick: u64) -> u16 {
        match *self {
            Motion::Counter { step, base, since } => {
                base.wrapping_add(step.wrapping_mul(tick.saturating_sub(since) as u16))
            }
            Motion::Wanders { min, max } => {
                let span = u64::from(max - min) + 1;
                min + (mix(u64::from(addr) << 48 ^ tick) % span) as u16
            }
        }
    }
}

/// The live registers of `details` that the captured blocks hold.
fn live_from(d: &Value, registers: &BTreeMap<u16, u16>) -> BTreeMap<u16, Motion> {
    d.get("live_registers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let addr = u16::try_from(r.get("address")?.as_u64()?).ok()?;
            let samples: Vec<u16> = r
                .get("samples")?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_u64().and_then(|v| u16::try_from(v).ok()))
                .collect();
            registers
                .contains_key(&addr)
                .then(|| Some((addr, Motion::from_samples(&samples)?)))?
        })
        .collect()
}

/// splitmix64: a value per (register, interval) that looks like noise.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Device {
    /// From `ServiceInfo.details` of a Modbus service (see the probe's `modbus.rs`).
    pub fn from_details(d: &Value) -> Device {
        let mut objects: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        if let Some(raw) = d.get("device_id_objects_hex").and_then(Value::as_object) {
            for (id, hexed) in raw {
                if let (Ok(id), Some(bytes)) = (id.parse::<u8>(), hexed.as_str().and_then(unhex)) {
                    objects.insert(id, bytes);
                }
            }
        }
        if let Some(named) = d.get("device_id").and_then(Value::as_object) {
            for (id, name) in OBJECT_NAMES.iter().enumerate() {
                if let Some(text) = named.get(*name).and_then(Value::as_str) {
                    objects
                        .entry(id as u8)
                        .or_insert_with(|| text.as_bytes().to_vec());
                }
            }
        }
        let mut registers = BTreeMap::new();
        let mut exception = None;
        for block in d
            .get("holding_registers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let start = block.get("start").and_then(Value::as_u64).unwrap_or(0);
            if let Some(values) = block.get("values").and_then(Value::as_array) {
                for (i, v) in values.iter().enumerate() {
                    let addr = start + i as u64;
                    if let (Ok(addr), Some(v)) = (
                        u16::try_from(addr),
                        v.as_u64().and_then(|v| u16::try_from(v).ok()),
                    ) {
                        registers.insert(addr, v);
                    }
                }
            }
            if let Some(code) = block.get("exception").and_then(Value::as_u64) {
                exception = exception.or(u8::try_from(code).ok());
            }
        }
        Device {
            unit_id: d
                .get("unit_id")
                .and_then(Value::as_u64)
                .and_then(|u| u8::try_from(u).ok()),
            conformity: d
                .get("conformity_level")
                .and_then(Value::as_u64)
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(0x81),
            objects: objects.into_iter().collect(),
            exception: exception.unwrap_or(ILLEGAL_ADDRESS),
            live: Mutex::new(live_from(d, &registers)),
            registers: Mutex::new(registers),
            interval_ms: d
                .get("sample_interval_ms")
                .and_then(Value::as_u64)
                .filter(|ms| (10..=3_600_000).contains(ms))
                .unwrap_or(1000),
            started: Instant::now(),
        }
    }

    /// The current interval since the decoy started.
    fn tick(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 / self.interval_ms
    }

    /// Moves the live registers among `addr..addr + count` to now.
    fn advance(&self, regs: &mut BTreeMap<u16, u16>, addr: u16, count: u16) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.is_empty() {
            return;
        }
        let tick = self.tick();
        for (a, motion) in live.range(addr..=addr.saturating_add(count.saturating_sub(1))) {
            if let Some(slot) = regs.get_mut(a) {
                *slot = motion.at(*a, tick);
            }
        }
    }

    /// A client wrote `value` to `addr`: a counter counts on from it.
    fn written(&self, addr: u16, value: u16) {
        let tick = self.tick();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Motion::Counter { base, since, .. }) = live.get_mut(&addr) {
            *base = value;
            *since = tick;
        }
    }

    /// Answers one request PDU: (response PDU, event action, event data).
    pub fn answer(&self, unit: u8, pdu: &[u8]) -> (Vec<u8>, &'static str, Value) {
        let fc = pdu.first().copied().unwrap_or(0);
        let exc = |code: u8| vec![fc | 0x80, code];
        if let Some(ours) = self.unit_id {
            if unit != ours && unit != 0 && unit != 0xff {
                return (
                    exc(GATEWAY_NO_RESPONSE),
                    "request",
                    json!({"function": fc, "unit": unit, "error": "unknown unit"}),
                );
            }
        }
        let word = |i: usize| pdu.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match fc {
            FC_READ_HOLDING | FC_READ_INPUT => {
                let (Some(addr), Some(count)) = (word(1), word(3)) else {
                    return (
                        exc(ILLEGAL_VALUE),
                        "read",
                        json!({"function": fc, "unit": unit, "error": "short request"}),
                    );
                };
                let data = json!({"function": fc, "unit": unit, "address": addr, "count": count});
                if !(1..=125).contains(&count) {
                    return (exc(ILLEGAL_VALUE), "read", data);
                }
                let mut regs = self.registers.lock().unwrap_or_else(|e| e.into_inner());
                self.advance(&mut regs, addr, count);
                let values: Option<Vec<u16>> = (0..count)
                    .map(|i| addr.checked_add(i).and_then(|a| regs.get(&a).copied()))
                    .collect();
                match values {
                    Some(values) => {
                        let mut out = vec![fc, (values.len() * 2) as u8];
                        for v in values {
                            out.extend_from_slice(&v.to_be_bytes());
                        }
                        (out, "read", data)
                    }
                    None => (exc(self.exception), "read", data),
                }
            }
            FC_WRITE_SINGLE => {
                let (Some(addr), Some(value)) = (word(1), word(3)) else {
                    return (
                        exc(ILLEGAL_VALUE),
                        "write",
                        json!({"function": fc, "unit": unit, "error": "short request"}),
                    );
                };
                let data =
                    json!({"function": fc, "unit": unit, "address": addr, "values": [value]});
                let mut regs = self.registers.lock().unwrap_or_else(|e| e.into_inner());
                match regs.get_mut(&addr) {
                    Some(slot) => {
                        *slot = value;
                        self.written(addr, value);
                        (pdu[..5].to_vec(), "write", data)
                    }
                    None => (exc(self.exception), "write", data),
                }
            }
            FC_WRITE_MULTIPLE => {
                let (Some(addr), Some(count), Some(&n)) = (word(1), word(3), pdu.get(5)) else {
                    return (
                        exc(ILLEGAL_VALUE),
                        "write",
                        json!({"function": fc, "unit": unit, "error": "short request"}),
                    );
                };
                let values: Vec<u16> = pdu
                    .get(6..6 + n as usize)
                    .unwrap_or(&[])
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let data = json!({"function": fc, "unit": unit, "address": addr, "count": count, "values": values});
                if !(1..=123).contains(&count)
                    || n as usize != count as usize * 2
                    || values.len() != count as usize
                {
                    return (exc(ILLEGAL_VALUE), "write", data);
                }
                let mut regs = self.registers.lock().unwrap_or_else(|e| e.into_inner());
                let all_known =
                    (0..count).all(|i| addr.checked_add(i).is_some_and(|a| regs.contains_key(&a)));
                if !all_known {
                    return (exc(self.exception), "write", data);
                }
                for (i, v) in values.iter().enumerate() {
                    regs.insert(addr + i as u16, *v);
                    self.written(addr + i as u16, *v);
                }
                (pdu[..5].to_vec(), "write", data)
            }
            FC_MEI => {
                let (mei, code, object) = (
                    pdu.get(1).copied(),
                    pdu.get(2).copied().unwrap_or(0),
                    pdu.get(3).copied().unwrap_or(0),
                );
                let data = json!({"function": fc, "unit": unit, "mei": mei, "read_code": code, "object": object});
                if mei != Some(MEI_DEVICE_ID) {
                    return (exc(ILLEGAL_FUNCTION), "read", data);
                }
                match self.device_id(code, object) {
                    Ok(out) => (out, "read", data),
                    Err(e) => (exc(e), "read", data),
                }
            }
            _ => (
                exc(ILLEGAL_FUNCTION),
                "request",
                json!({"function": fc, "unit": unit, "pdu_len": pdu.len()}),
            ),
        }
    }

    /// Read Device Identification answer PDU (Modbus application protocol v1.1b3 §6.21).
    fn device_id(&self, code: u8, object: u8) -> Result<Vec<u8>, u8> {
        let range = match code {
            1 => 0x00..=0x02,
            2 => 0x00..=0x7F,
            3 => 0x00..=0xFF,
            4 => object..=object,
            _ => return Err(ILLEGAL_VALUE),
        };
        if code == 4 && !self.objects.iter().any(|(id, _)| *id == object) {
            return Err(ILLEGAL_ADDRESS);
        }
        // Streaming access restarts at 0 for an object id it does not have.
        let first = if code != 4
            && self
                .objects
                .iter()
                .any(|(id, _)| *id == object && range.contains(id))
        {
            object
        } else {
            *range.start()
        };
        let mut out = vec![FC_MEI, MEI_DEVICE_ID, code, self.conformity, 0, 0, 0];
        let mut count = 0u8;
        for (id, value) in self
            .objects
            .iter()
            .filter(|(id, _)| range.contains(id) && *id >= first)
        {
            let value = &value[..value.len().min(245)];
            if out.len() + 2 + value.len() > 253 {
                out[4] = 0xFF; // more follows
                out[5] = *id;
                break;
            }
            out.push(*id);
            out.push(value.len() as u8);
            out.extend_from_slice(value);
            count += 1;
        }
        out[6] = count;
        Ok(out)
    }
}

/// One Modbus/TCP client: MBAP frames in, answers out, events per request.
pub async fn serve(mut stream: TcpStream, peer: SocketAddr, device: &Device, sink: &EventSink) {
    let peer_s = peer.to_string();
    sink.emit(&peer_s, "modbus", "connect", json!({}));
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        // Whole frames first.
        while buf.len() >= 7 {
            let len = u16::from_be_bytes([buf[4], buf[5]]) as usize;
            if buf[2..4] != [0, 0] || !(2..=254).contains(&len) {
                sink.emit(&peer_s, "modbus", "data", json!({"error": "not Modbus/TCP", "bytes": crate::decoy::events::bytes_json(&buf[..buf.len().min(256)])}));
                return;
            }
            if buf.len() < 6 + len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..6 + len).collect();
            let (unit, pdu) = (frame[6], &frame[7..]);
            let (answer, action, data) = device.answer(unit, pdu);
            sink.emit(&peer_s, "modbus", action, data);
            let mut out = Vec::with_capacity(7 + answer.len());
            out.extend_from_slice(&frame[..4]);
            out.extend_from_slice(&((answer.len() + 1) as u16).to_be_bytes());
            out.push(unit);
            out.extend_from_slice(&answer);
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
        let n = match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `details` as the probe wrote them for the lab PLC (pymodbus 3.0, Debian 12):
    /// objects and registers decoded from the probe's test captures.
    pub(crate) fn plc_details() -> Value {
        json!({
            "unit_id": 1,
            "vendor": "Acme Automation",
            "device_id": {"vendor_name": "Acme Automation", "product_code": "5000", "revision": "2.1",
                "vendor_url": "http://example.net/", "product_name": "PLC 5000", "model_name": "PLC 5000"},
            "device_id_objects_hex": {"0": "41636d65204175746f6d6174696f6e", "1": "35303030", "2": "322e31",
                "3": "687474703a2f2f6578616d706c652e6e65742f", "4": "504c432035303030", "5": "504c432035303030"},
            "conformity_level": 0x83,
            "device_id_error": null,
            "holding_registers": [
                {"start": 0, "count": 16, "values": [100, 100, 1450, 327, 19, 0, 0, 0, 12, 34, 56, 78, 0, 0, 0, 1]},
                {"start": 100, "count": 16, "exception": 2}
            ]
        })
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn device_id_answers_equal_the_capture() {
        let d = Device::from_details(&plc_details());
        // The probe's captures ID_BASIC / ID_REGULAR, PDU part.
        let (basic, action, _) = d.answer(1, &[0x2b, 0x0e, 1, 0]);
        assert_eq!(action, "read");
        assert_eq!(
            hex(&basic),
            "2b0e0183000003000f41636d65204175746f6d6174696f6e0104353030300203322e31"
        );
        let (regular, _, _) = d.answer(1, &[0x2b, 0x0e, 2, 0]);
        assert_eq!(hex(&regular), "2b0e0283000006000f41636d65204175746f6d6174696f6e0104353030300203322e310313687474703a2f2f6578616d706c652e6e65742f0408504c4320353030300508504c432035303030");
        let (one, _, _) = d.answer(1, &[0x2b, 0x0e, 4, 4]);
        assert_eq!(
            hex(&one),
            "2b0e0483000001".to_string() + "0408504c432035303030"
        );
        assert_eq!(d.answer(1, &[0x2b, 0x0e, 4, 9]).0, vec![0xab, 2]);
    }

    #[test]
    fn registers_read_write_and_exceptions() {
        let d = Device::from_details(&plc_details());
        // The probe's capture HR_0, PDU part.
        let (r, _, data) = d.answer(1, &[3, 0, 0, 0, 16]);
        assert_eq!(
            hex(&r),
            "03200064006405aa01470013000000000000000c00220038004e0000000000000001"
        );
        assert_eq!(
            data,
            json!({"function": 3, "unit": 1, "address": 0, "count": 16})
        );
        assert_eq!(
            d.answer(1, &[3, 0, 100, 0, 16]).0,
            vec![0x83, 2],
            "HR_100 was exception 2"
        );
        assert_eq!(d.answer(1, &[4, 0, 2, 0, 1]).0, vec![4, 2, 0x05, 0xaa]);
        let (w, action, data) = d.answer(1, &[6, 0, 3, 0x12, 0x34]);
        assert_eq!((w, action), (vec![6, 0, 3, 0x12, 0x34], "write"));
        assert_eq!(data["values"], json!([0x1234]));
        assert_eq!(
            d.answer(1, &[16, 0, 4, 0, 2, 4, 0, 7, 0, 8]).0,
            vec![16, 0, 4, 0, 2]
        );
        assert_eq!(
            d.answer(1, &[3, 0, 3, 0, 3]).0,
            vec![3, 6, 0x12, 0x34, 0, 7, 0, 8]
        );
        assert_eq!(d.answer(1, &[6, 0, 200, 0, 1]).0, vec![0x86, 2]);
        assert_eq!(d.answer(1, &[0x11]).0, vec![0x91, 1]);
        assert_eq!(d.answer(7, &[3, 0, 0, 0, 1]).0, vec![0x83, 0x0b]);
    }

    #[test]
    fn live_registers_keep_moving() {
        assert_eq!(
            Motion::from_samples(&[7, 8, 9]),
            Some(Motion::Counter {
                step: 1,
                base: 9,
                since: 0
            })
        );
        assert_eq!(
            Motion::from_samples(&[65534, 65535, 0]),
            Some(Motion::Counter {
                step: 1,
                base: 0,
                since: 0
            })
        );
        assert_eq!(
            Motion::from_samples(&[98, 99, 95]),
            Some(Motion::Wanders { min: 95, max: 99 })
        );
        assert_eq!(Motion::from_samples(&[5]), None);
        let mut d = plc_details();
        d["live_registers"] = json!([{"address": 1, "samples": [98, 99, 95]}, {"address": 4, "samples": [17, 18, 19]},
            {"address": 400, "samples": [1, 2]}]);
        d["sample_interval_ms"] = json!(20);
        let dev = Device::from_details(&d);
        assert_eq!(
            dev.live.lock().unwrap().len(),
            2,
            "400 is outside the captured blocks"
        );
        let read = |dev: &Device| {
            let (out, _, _) = dev.answer(1, &[FC_READ_HOLDING, 0, 0, 0, 5]);
            out[2..]
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>()
        };
        let first = read(&dev);
        assert_eq!(first[0], 100, "a setting stays");
        assert!((95..=99).contains(&first[1]));
        std::thread::sleep(std::time::Duration::from_millis(130));
        let later = read(&dev);
        assert_eq!(later[0], 100);
        assert!(
            later[4] >= first[4] + 5,
            "the counter counts on: {first:?} then {later:?}"
        );
        let wandered: std::collections::BTreeSet<u16> = (0..40)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                read(&dev)[1]
            })
            .collect();
        assert!(
            wandered.len() > 1 && wandered.iter().all(|v| (95..=99).contains(v)),
            "{wandered:?}"
        );
        // A write sets where the counter counts on from.
        dev.answer(1, &[FC_WRITE_SINGLE, 0, 4, 0x03, 0xe8]);
        let after = read(&dev)[4];
        assert!((1000..1010).contains(&after), "{after}");
    }

    #[test]
    fn garbage_never_panics() {
        let d = Device::from_details(&plc_details());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20000 {
            let len = (seed % 12) as usize;
            let pdu: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let fc = [3u8, 4, 6, 16, 0x2b][(seed % 5) as usize];
            let mut p = vec![fc];
            p.extend(pdu);
            let _ = d.answer(1, &p);
            let _ = d.answer(1, &p[1..]);
        }
        let _ = Device::from_details(
            &json!({"holding_registers": [{"start": 65535, "values": [1, 2, 3]}], "device_id_objects_hex": {"x": "zz"}}),
        );
    }
}
