//! MULTIPART_REQUEST / MULTIPART_REPLY (statistics and descriptions):
//! switch description, flow and aggregate statistics, table and port
//! statistics, and the port list. Replies larger than one message arrive
//! in pieces flagged `MORE`; [`MultipartReplyBody::extend`] joins them.

use super::action::{emit_instructions, parse_instructions, Instruction};
use super::oxm::Match;
use super::port::Port;
use super::wire::{
    get_str, len16, patch_u16, put_str, put_u16, put_u32, put_u64, put_zeros, Reader,
};
use super::Error;

/// `OFPMP_*` multipart types.
pub mod multipart_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const PORT_DESC: u16 = 13;
}
use multipart_type as mt;

/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`.
pub const MULTIPART_MORE: u16 = 1;

/// Filter shared by flow and aggregate statistics requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub r#match: Match,
}

impl FlowStatsRequest {
    /// Every flow in every table.
    pub fn all() -> FlowStatsRequest {
        FlowStatsRequest {
            table_id: super::TABLE_ALL,
            out_port: super::port::ANY,
            out_group: super::GROUP_ANY,
            cookie: 0,
            cookie_mask: 0,
            r#match: Match::any(),
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<FlowStatsRequest, Error> {
        let table_id = r.u8("flow_stats_request")?;
        r.skip(3, "flow_stats_request")?;
        let out_port = r.u32("flow_stats_request")?;
        let out_group = r.u32("flow_stats_request")?;
        r.skip(4, "flow_stats_request")?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie: r.u64("flow_stats_request")?,
            cookie_mask: r.u64("flow_stats_request")?,
            r#match: Match::parse(r)?,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.table_id);
        put_zeros(out, 3);
        put_u32(out, self.out_port);
        put_u32(out, self.out_group);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.cookie_mask);
        self.r#match.emit(out);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    /// `port_no` may be `port::ANY` for all ports.
    PortStats {
        port_no: u32,
    },
    PortDesc,
    Other {
        kind: u16,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: MultipartRequestBody,
}

impl MultipartRequest {
    pub fn new(body: MultipartRequestBody) -> MultipartRequest {
        MultipartRequest { flags: 0, body }
    }

    pub(crate) fn parse(buf: &[u8]) -> Result<MultipartRequest, Error> {
        let mut r = Reader::new(buf);
        let kind = r.u16("multipart_request")?;
        let flags = r.u16("multipart_request")?;
        r.skip(4, "multipart_request padding")?;
        use MultipartRequestBody as B;
        let body = match kind {
            mt::DESC => B::Desc,
            mt::FLOW => B::Flow(FlowStatsRequest::parse(&mut r)?),
            mt::AGGREGATE => B::Aggregate(FlowStatsRequest::parse(&mut r)?),
            mt::TABLE => B::Table,
            mt::PORT_STATS => {
                let port_no = r.u32("port_stats_request")?;
                r.skip(4, "port_stats_request")?;
                B::PortStats { port_no }
            }
            mt::PORT_DESC => B::PortDesc,
            _ => B::Other {
                kind,
                body: r.rest().to_vec(),
            },
        };
        Ok(MultipartRequest { flags, body })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        use MultipartRequestBody as B;
        let kind = match &self.body {
            B::Desc => mt::DESC,
            B::Flow(_) => mt::FLOW,
            B::Aggregate(_) => mt::AGGREGATE,
            B::Table => mt::TABLE,
            B::PortStats { .. } => mt::PORT_STATS,
            B::PortDesc => mt::PORT_DESC,
            B::Other { kind, .. } => *kind,
        };
        put_u16(out, kind);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        match &self.body {
            B::Desc | B::Table | B::PortDesc => {}
            B::Flow(f) | B::Aggregate(f) => f.emit(out),
            B::PortStats { port_no } => {
                put_u32(out, *port_no);
                put_zeros(out, 4);
            }
            B::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// `ofp_desc`: who made the switch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    pub mfr: String,
    pub hw: String,
    pub sw: String,
    pub serial: String,
    pub dp_desc: String,
}

const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;

/// One flow's statistics (`ofp_flow_stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

/// Fixed part of `ofp_flow_stats` before the match.
const FLOW_STATS_FIXED: usize = 48;

impl FlowStats {
    fn parse(r: &mut Reader<'_>) -> Result<FlowStats, Error> {
        let len = usize::from(r.u16("flow_stats length")?);
        if len < FLOW_STATS_FIXED + 8 {
            return Err(Error::BadLength {
                what: "flow_stats",
                len,
            });
        }
        let mut f = Reader::new(r.take(len - 2, "flow_stats")?);
        let table_id = f.u8("flow_stats")?;
        f.skip(1, "flow_stats")?;
        let duration_sec = f.u32("flow_stats")?;
        let duration_nsec = f.u32("flow_stats")?;
        let priority = f.u16("flow_stats")?;
        let idle_timeout = f.u16("flow_stats")?;
        let hard_timeout = f.u16("flow_stats")?;
        let flags = f.u16("flow_stats")?;
        f.skip(4, "flow_stats")?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie: f.u64("flow_stats")?,
            packet_count: f.u64("flow_stats")?,
            byte_count: f.u64("flow_stats")?,
            r#match: Match::parse(&mut f)?,
            instructions: parse_instructions(f.rest())?,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        out.push(self.table_id);
        out.push(0);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.priority);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.r#match.emit(out);
        emit_instructions(out, &self.instructions);
        let len = len16(out.len() - start);
        patch_u16(out, start, len);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// Counters of one port (`ofp_port_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    PortDesc(Vec<Port>),
    Other { kind: u16, body: Vec<u8> },
}

impl MultipartReplyBody {
    /// The `OFPMP_*` type code.
    pub fn kind(&self) -> u16 {
        match self {
            MultipartReplyBody::Desc(_) => mt::DESC,
            MultipartReplyBody::Flow(_) => mt::FLOW,
            MultipartReplyBody::Aggregate(_) => mt::AGGREGATE,
            MultipartReplyBody::Table(_) => mt::TABLE,
            MultipartReplyBody::PortStats(_) => mt::PORT_STATS,
            MultipartReplyBody::PortDesc(_) => mt::PORT_DESC,
            MultipartReplyBody::Other { kind, .. } => *kind,
        }
    }

    /// Appends the next piece of a reply that spans several messages.
    /// Fails if the pieces are of different types, or of a type that is
    /// never split (description, aggregate).
    pub fn extend(&mut self, next: MultipartReplyBody) -> Result<(), Error> {
        use MultipartReplyBody as B;
        let (have, next_kind) = (self.kind(), next.kind());
        match (self, next) {
            (B::Flow(a), B::Flow(b)) => a.extend(b),
            (B::Table(a), B::Table(b)) => a.extend(b),
            (B::PortStats(a), B::PortStats(b)) => a.extend(b),
            (B::PortDesc(a), B::PortDesc(b)) => a.extend(b),
            (B::Other { kind, body }, B::Other { kind: k2, body: b2 }) if *kind == k2 => {
                body.extend(b2)
            }
            _ if have == next_kind => return Err(Error::MultipartNotSplittable(have)),
            _ => {
                return Err(Error::MultipartMismatch {
                    have,
                    next: next_kind,
                })
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    /// `MULTIPART_MORE` if further pieces follow.
    pub flags: u16,
    pub body: MultipartReplyBody,
}

impl MultipartReply {
    /// Whether more pieces of this reply follow (same xid).
    pub fn more(&self) -> bool {
        self.flags & MULTIPART_MORE != 0
    }

    pub(crate) fn parse(buf: &[u8]) -> Result<MultipartReply, Error> {
        let mut r = Reader::new(buf);
        let kind = r.u16("multipart_reply")?;
        let flags = r.u16("multipart_reply")?;
        r.skip(4, "multipart_reply padding")?;
        use MultipartReplyBody as B;
        let body = match kind {
            mt::DESC => B::Desc(Desc {
                mfr: get_str(r.take(DESC_STR_LEN, "desc")?),
                hw: get_str(r.take(DESC_STR_LEN, "desc")?),
                sw: get_str(r.take(DESC_STR_LEN, "desc")?),
                serial: get_str(r.take(SERIAL_NUM_LEN, "desc")?),
                dp_desc: get_str(r.take(DESC_STR_LEN, "desc")?),
            }),
            mt::FLOW => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(FlowStats::parse(&mut r)?);
                }
                B::Flow(v)
            }
            mt::AGGREGATE => {
                let a = AggregateStats {
                    packet_count: r.u64("aggregate_stats")?,
                    byte_count: r.u64("aggregate_stats")?,
                    flow_count: r.u32("aggregate_stats")?,
                };
                r.skip(4, "aggregate_stats padding")?;
                B::Aggregate(a)
            }
            mt::TABLE => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let table_id = r.u8("table_stats")?;
                    r.skip(3, "table_stats")?;
                    v.push(TableStats {
                        table_id,
                        active_count: r.u32("table_stats")?,
                        lookup_count: r.u64("table_stats")?,
                        matched_count: r.u64("table_stats")?,
                    });
                }
                B::Table(v)
            }
            mt::PORT_STATS => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let port_no = r.u32("port_stats")?;
                    r.skip(4, "port_stats")?;
                    let mut c = [0u64; 12];
                    for slot in c.iter_mut() {
                        *slot = r.u64("port_stats")?;
                    }
                    v.push(PortStats {
                        port_no,
                        rx_packets: c[0],
                        tx_packets: c[1],
                        rx_bytes: c[2],
                        tx_bytes: c[3],
                        rx_dropped: c[4],
                        tx_dropped: c[5],
                        rx_errors: c[6],
                        tx_errors: c[7],
                        rx_frame_err: c[8],
                        rx_over_err: c[9],
                        rx_crc_err: c[10],
                        collisions: c[11],
                        duration_sec: r.u32("port_stats")?,
                        duration_nsec: r.u32("port_stats")?,
                    });
                }
                B::PortStats(v)
            }
            mt::PORT_DESC => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(Port::parse(&mut r)?);
                }
                B::PortDesc(v)
            }
            _ => B::Other {
                kind,
                body: r.rest().to_vec(),
            },
        };
        Ok(MultipartReply { flags, body })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        use MultipartReplyBody as B;
        put_u16(out, self.body.kind());
        put_u16(out, self.flags);
        put_zeros(out, 4);
        match &self.body {
            B::Desc(d) => {
                put_str(out, &d.mfr, DESC_STR_LEN);
                put_str(out, &d.hw, DESC_STR_LEN);
                put_str(out, &d.sw, DESC_STR_LEN);
                put_str(out, &d.serial, SERIAL_NUM_LEN);
                put_str(out, &d.dp_desc, DESC_STR_LEN);
            }
            B::Flow(v) => v.iter().for_each(|f| f.emit(out)),
            B::Aggregate(a) => {
                put_u64(out, a.packet_count);
                put_u64(out, a.byte_count);
                put_u32(out, a.flow_count);
                put_zeros(out, 4);
            }
            B::Table(v) => {
                for t in v {
                    out.push(t.table_id);
                    put_zeros(out, 3);
                    put_u32(out, t.active_count);
                    put_u64(out, t.lookup_count);
                    put_u64(out, t.matched_count);
                }
            }
            B::PortStats(v) => {
                for p in v {
                    put_u32(out, p.port_no);
                    put_zeros(out, 4);
                    for c in [
                        p.rx_packets,
                        p.tx_packets,
                        p.rx_bytes,
                        p.tx_bytes,
                        p.rx_dropped,
                        p.tx_dropped,
                        p.rx_errors,
                        p.tx_errors,
                        p.rx_frame_err,
                        p.rx_over_err,
                        p.rx_crc_err,
                        p.collisions,
                    ] {
                        put_u64(out, c);
                    }
                    put_u32(out, p.duration_sec);
                    put_u32(out, p.duration_nsec);
                }
            }
            B::PortDesc(v) => v.iter().for_each(|p| p.emit(out)),
            B::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}
