//! One task per switch connection.
//!
//! The session owns the socket: it negotiates the version (HELLO with a version
//! bitmap, OpenFlow 1.3 only), learns the datapath id (FEATURES), answers echo
//! requests, probes an idle peer with its own echoes and declares it dead when
//! nothing arrives for `dead_after`. Everything else reaches it as `Command`s from
//! `SwitchHandle`s: requests are matched to replies by xid, multipart replies are
//! reassembled, barriers complete transactions and OpenFlow errors are returned to
//! the caller that sent the failing xid. Asynchronous messages (PACKET_IN,
//! PORT_STATUS, FLOW_REMOVED) become `SwitchEvent`s; in learning mode the L2
//! forwarder answers table-miss PACKET_INs inline, without leaving the task.

use super::handle::{Command, Done, Reply, SwitchError, SwitchHandle};
use super::learning::LearningSwitch;
use crate::openflow::{
    self, ErrorMsg, FeaturesReply, FlowRemoved, Hello, Message, MultipartReplyBody, PacketIn,
    PortStatus,
};
use crate::pipeline::{baseline_cookie, ForwardingMode, FORWARD};
use bytes::BytesMut;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Tunables of every session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Send an echo request after this much silence from the switch.
    pub echo_interval: Duration,
    /// Declare the switch dead after this much silence.
    pub dead_after: Duration,
    /// How table-miss PACKET_INs of the forward table are handled.
    pub forwarding: ForwardingMode,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            echo_interval: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            forwarding: ForwardingMode::Normal,
        }
    }
}

/// What sessions tell the rest of the controller.
#[derive(Debug)]
pub enum SwitchEvent {
    /// Handshake finished: features, port description and switch description are known.
    Connected {
        session: u64,
        handle: SwitchHandle,
        peer: String,
        features: FeaturesReply,
        ports: Vec<openflow::Port>,
        desc: Option<openflow::Desc>,
    },
    Disconnected {
        session: u64,
        dpid: u64,
        reason: String,
    },
    PacketIn {
        dpid: u64,
        packet_in: PacketIn,
    },
    PortStatus {
        dpid: u64,
        status: PortStatus,
    },
    FlowRemoved {
        dpid: u64,
        removed: FlowRemoved,
    },
    /// An OpenFlow error nobody waited for (e.g. caused by a fire-and-forget send).
    Error {
        dpid: u64,
        xid: u32,
        error: ErrorMsg,
    },
}

/// Shared by all sessions of one controller.
pub struct SessionContext {
    pub config: SessionConfig,
    pub events: mpsc::Sender<SwitchEvent>,
    next_session: AtomicU64,
    /// PACKET_INs dropped because the controller's event queue was full.
    pub dropped_packet_ins: AtomicU64,
}

impl SessionContext {
    pub fn new(config: SessionConfig, events: mpsc::Sender<SwitchEvent>) -> Arc<Self> {
        Arc::new(SessionContext {
            config,
            events,
            next_session: AtomicU64::new(1),
            dropped_packet_ins: AtomicU64::new(0),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection closed by the switch")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed OpenFlow from the switch: {0}")]
    Decode(#[from] openflow::Error),
    #[error("the switch speaks no OpenFlow 1.3 (offered {0})")]
    Version(String),
    #[error("no message from the switch for {0:?}: declared dead")]
    Dead(Duration),
    #[error("handshake: {0}")]
    Handshake(String),
}

/// Largest message accepted from a switch (the length field is 16 bits anyway).
const MAX_MESSAGE: usize = 65535;

/// Bytes encoded ahead of the socket. A large transaction is encoded and written
/// in chunks of about this size, so the switch starts working on the first
/// FLOW_MODs while later ones are still being encoded, and replies (errors,
/// echoes, PACKET_INs) are read between chunks.
const WRITE_CHUNK: usize = 64 * 1024;

/// Messages waiting in a session's outbox.
enum Outgoing {
    One(u32, Message),
    /// A transaction's messages, kept in the vector they arrived in (moving 100k
    /// messages one by one into the outbox would copy ~13 MB); their xids follow
    /// `after` as `next_xid` hands them out.
    Many {
        after: u32,
        msgs: std::vec::IntoIter<Message>,
    },
    /// The same, each message wrapped in a bundle-add while it is encoded.
    Bundled {
        after: u32,
        bundle_id: u32,
        flags: u16,
        msgs: std::vec::IntoIter<Message>,
    },
}

/// The xid after `xid` (0 is never used).
fn xid_after(xid: u32) -> u32 {
    match xid.wrapping_add(1) {
        0 => 1,
        x => x,
    }
}

struct Batch {
    first: u32,
    names: Vec<&'static str>,
    done: Done,
    error: Option<SwitchError>,
}

struct PendingReply {
    request: &'static str,
    reply: Reply,
    partial: Option<openflow::MultipartReply>,
}

struct Session {
    id: u64,
    dpid: u64,
    xid: u32,
    wbuf: Vec<u8>,
    /// Messages (with their xids) waiting to be encoded into `wbuf`, in send order.
    /// Everything in `wbuf` precedes everything here.
    outbox: VecDeque<Outgoing>,
    pending: HashMap<u32, PendingReply>,
    /// In-flight transactions, keyed by their barrier's xid.
    batches: BTreeMap<u32, Batch>,
    echo_outstanding: bool,
    learning: Option<LearningSwitch>,
}

impl Session {
    fn next_xid(&mut self) -> u32 {
        self.xid = xid_after(self.xid);
        self.xid
    }

    fn queue(&mut self, msg: Message) -> u32 {
        let xid = self.next_xid();
        self.queue_with_xid(msg, xid);
        xid
    }

    /// Queues `msg` for sending after everything queued before it: encoded at once
    /// while the write buffer is small and nothing waits, otherwise kept in the
    /// outbox until `fill_wbuf` reaches it.
    fn queue_with_xid(&mut self, msg: Message, xid: u32) {
        if self.outbox.is_empty() && self.wbuf.len() < WRITE_CHUNK {
            self.encode(msg, xid);
        } else {
            self.outbox.push_back(Outgoing::One(xid, msg));
        }
    }

    fn encode(&mut self, mut msg: Message, xid: u32) {
        // ONF bundles require the inner message to carry the outer message's xid.
        if let Message::BundleAdd(add) = &mut msg {
            add.inner_xid = xid;
        }
        encode_into(&mut self.wbuf, &msg, xid);
    }

    /// Encodes outbox messages until the write buffer holds about `WRITE_CHUNK` bytes.
    fn fill_wbuf(&mut self) {
        while self.wbuf.len() < WRITE_CHUNK {
            match self.outbox.front_mut() {
                None => break,
                Some(Outgoing::One(..)) => {
                    let Some(Outgoing::One(xid, msg)) = self.outbox.pop_front() else {
                        unreachable!()
                    };
                    self.encode(msg, xid);
                }
                Some(Outgoing::Many { after, msgs }) => match msgs.next() {
                    Some(msg) => {
                        let xid = xid_after(*after);
                        *after = xid;
                        self.encode(msg, xid);
                    }
                    None => {
                        self.outbox.pop_front();
                    }
                },
                Some(Outgoing::Bundled {
                    after,
                    bundle_id,
                    flags,
                    msgs,
                }) => match msgs.next() {
                    Some(msg) => {
                        let xid = xid_after(*after);
                        *after = xid;
                        let (bundle_id, flags) = (*bundle_id, *flags);
                        encode_bundle_add(&mut self.wbuf, bundle_id, flags, &msg, xid);
                    }
                    None => {
                        self.outbox.pop_front();
                    }
                },
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { msg } => {
                self.queue(msg);
            }
            Command::Request { msg, reply } => {
                let request = msg.name();
                let xid = self.queue(msg);
                self.pending.insert(
                    xid,
                    PendingReply {
                        request,
                        reply,
                        partial: None,
                    },
                );
            }
            Command::Transact { msgs, done } => {
                let first = self.xid.wrapping_add(1);
                let names = msgs.iter().map(Message::name).collect();
                if self.outbox.is_empty() && self.wbuf.len() + 128 * msgs.len() < WRITE_CHUNK {
                    for m in msgs {
                        self.queue(m);
                    }
                } else if !msgs.is_empty() {
                    // Reserve the xids now (batch bookkeeping needs them); encode later.
                    let after = self.xid;
                    for _ in 0..msgs.len() {
                        self.next_xid();
                    }
                    self.outbox.push_back(Outgoing::Many {
                        after,
                        msgs: msgs.into_iter(),
                    });
                }
                let barrier = self.queue(Message::BarrierRequest);
                self.batches.insert(
                    barrier,
                    Batch {
                        first,
                        names,
                        done,
                        error: None,
                    },
                );
            }
            Command::Bundle {
                bundle_id,
                flags,
                msgs,
                done,
            } => {
                use openflow::{BundleControl, BundleCtrlType};
                let ctrl = |ctrl| {
                    Message::BundleControl(BundleControl {
                        bundle_id,
                        ctrl,
                        flags,
                    })
                };
                let first = self.xid.wrapping_add(1);
                let mut names = Vec::with_capacity(msgs.len() + 2);
                names.push("BUNDLE_OPEN");
                names.extend(msgs.iter().map(Message::name));
                names.push("BUNDLE_COMMIT");
                self.queue(ctrl(BundleCtrlType::OpenRequest));
                if !msgs.is_empty() {
                    // Reserve the xids now; the outbox keeps everything queued after in order.
                    let after = self.xid;
                    for _ in 0..msgs.len() {
                        self.next_xid();
                    }
                    self.outbox.push_back(Outgoing::Bundled {
                        after,
                        bundle_id,
                        flags,
                        msgs: msgs.into_iter(),
                    });
                }
                self.queue(ctrl(BundleCtrlType::CommitRequest));
                let barrier = self.queue(Message::BarrierRequest);
                self.batches.insert(
                    barrier,
                    Batch {
                        first,
                        names,
                        done,
                        error: None,
                    },
                );
            }
        }
    }

    /// The transaction whose xid range holds `xid`.
    fn batch_of(&mut self, xid: u32) -> Option<&mut Batch> {
        let (_, b) = self.batches.range_mut(xid..).next()?;
        (b.first <= xid).then_some(b)
    }

    async fn incoming(&mut self, xid: u32, msg: Message, ctx: &SessionContext) {
        match msg {
            Message::EchoRequest(data) => self.queue_with_xid(Message::EchoReply(data), xid),
            Message::EchoReply(_) => self.echo_outstanding = false,
            Message::BarrierReply => {
                if let Some(b) = self.batches.remove(&xid) {
                    let _ = b.done.send(match b.error {
                        Some(e) => Err(e),
                        None => Ok(()),
                    });
                } else if let Some(p) = self.pending.remove(&xid) {
                    let _ = p.reply.send(Ok(Message::BarrierReply));
                }
            }
            Message::Error(error) => {
                let dpid = self.dpid;
                if let Some(p) = self.pending.remove(&xid) {
                    let _ = p.reply.send(Err(SwitchError::Rejected {
                        dpid,
                        xid,
                        request: p.request,
                        error,
                    }));
                } else if let Some(b) = self.batch_of(xid) {
                    let request = b
                        .names
                        .get(xid.wrapping_sub(b.first) as usize)
                        .copied()
                        .unwrap_or("message");
                    warn!(dpid = %format!("{dpid:016x}"), xid, request, error = %error.kind, "switch rejected a message");
                    if b.error.is_none() {
                        b.error = Some(SwitchError::Rejected {
                            dpid,
                            xid,
                            request,
                            error,
                        });
                    }
                } else {
                    warn!(dpid = %format!("{dpid:016x}"), xid, error = %error.kind, "unsolicited OpenFlow error");
                    let _ = ctx.events.try_send(SwitchEvent::Error { dpid, xid, error });
                }
            }
            Message::PacketIn(pi) => {
                if let Some(l2) = self.learning.as_mut() {
                    if pi.table_id == FORWARD.id && pi.cookie == baseline_cookie().0 {
                        for out in l2.packet_in(&pi) {
                            self.queue(out);
                        }
                        return;
                    }
                }
                if ctx
                    .events
                    .try_send(SwitchEvent::PacketIn {
                        dpid: self.dpid,
                        packet_in: pi,
                    })
                    .is_err()
                {
                    ctx.dropped_packet_ins.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::PortStatus(status) => {
                if let Some(l2) = self.learning.as_mut() {
                    l2.port_changed(&status);
                }
                let _ = ctx
                    .events
                    .send(SwitchEvent::PortStatus {
                        dpid: self.dpid,
                        status,
                    })
                    .await;
            }
            Message::FlowRemoved(removed) => {
                let _ = ctx
                    .events
                    .send(SwitchEvent::FlowRemoved {
                        dpid: self.dpid,
                        removed,
                    })
                    .await;
            }
            Message::MultipartReply(part) => {
                let Some(p) = self.pending.get_mut(&xid) else {
                    debug!(xid, "multipart reply nobody waits for");
                    return;
                };
                let more = part.more();
                let merged = match p.partial.take() {
                    None => Ok(part),
                    Some(mut acc) => acc.body.extend(part.body).map(|_| {
                        acc.flags = part.flags;
                        acc
                    }),
                };
                match merged {
                    Ok(acc) if more => p.partial = Some(acc),
                    Ok(acc) => {
                        let p = self.pending.remove(&xid).expect("present above");
                        let _ = p.reply.send(Ok(Message::MultipartReply(acc)));
                    }
                    Err(e) => {
                        let p = self.pending.remove(&xid).expect("present above");
                        warn!(xid, error = %e, "could not reassemble multipart reply");
                        let _ = p.reply.send(Err(SwitchError::UnexpectedReply {
                            dpid: self.dpid,
                            request: p.request,
                            got: "multipart reply of another kind",
                        }));
                    }
                }
            }
            Message::Hello(_) => {}
            other => {
                if let Some(p) = self.pending.remove(&xid) {
                    let _ = p.reply.send(Ok(other));
                } else if self.batch_of(xid).is_none() {
                    debug!(xid, msg = other.name(), "unexpected message from switch");
                }
            }
        }
    }

    fn fail_all(&mut self) {
        let dpid = self.dpid;
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(SwitchError::Disconnected { dpid }));
        }
        for (_, b) in std::mem::take(&mut self.batches) {
            let _ = b.done.send(Err(SwitchError::Disconnected { dpid }));
        }
    }
}

/// Appends `msg` to `out`, byte for byte what `msg.encode(xid)` returns.
///
/// The messages a session sends in bulk (FLOW_MOD, PACKET_OUT, and bundle-adds of
/// either) are written straight into the write buffer; `Message::encode` would
/// build each in a fresh vector (and a bundle-add's inner message in another)
/// only for it to be copied here. Everything else takes the general path.
fn encode_into(out: &mut Vec<u8>, msg: &Message, xid: u32) {
    use openflow::msg_type;
    let start = out.len();
    let msg_type = match msg {
        Message::FlowMod(_) => msg_type::FLOW_MOD,
        Message::PacketOut(_) => msg_type::PACKET_OUT,
        Message::BundleAdd(add)
            if matches!(*add.message, Message::FlowMod(_) | Message::PacketOut(_)) =>
        {
            msg_type::EXPERIMENTER
        }
        other => {
            out.extend_from_slice(&other.encode(xid));
            return;
        }
    };
    openflow::Header {
        version: openflow::OFP_VERSION,
        msg_type,
        length: 0,
        xid,
    }
    .emit(out);
    match msg {
        Message::FlowMod(fm) => fm.emit(out),
        Message::PacketOut(po) => po.emit(out),
        Message::BundleAdd(add) => {
            // ONF experimenter header, then ofp_bundle_add_msg: bundle_id, pad, flags, message.
            out.extend_from_slice(&openflow::ONF_EXPERIMENTER_ID.to_be_bytes());
            out.extend_from_slice(&openflow::bundle::ONF_ET_BUNDLE_ADD_MESSAGE.to_be_bytes());
            out.extend_from_slice(&add.bundle_id.to_be_bytes());
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&add.flags.to_be_bytes());
            encode_into(out, &add.message, add.inner_xid);
        }
        _ => unreachable!("handled above"),
    }
    // Like Message::encode: a length that does not fit saturates.
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a bundle-add of `msg` (inner xid = outer xid, as ONF bundles require),
/// byte for byte what encoding `Message::BundleAdd` would give, without building one.
fn encode_bundle_add(out: &mut Vec<u8>, bundle_id: u32, flags: u16, msg: &Message, xid: u32) {
    let start = out.len();
    openflow::Header {
        version: openflow::OFP_VERSION,
        msg_type: openflow::msg_type::EXPERIMENTER,
        length: 0,
        xid,
    }
    .emit(out);
    out.extend_from_slice(&openflow::ONF_EXPERIMENTER_ID.to_be_bytes());
    out.extend_from_slice(&openflow::bundle::ONF_ET_BUNDLE_ADD_MESSAGE.to_be_bytes());
    out.extend_from_slice(&bundle_id.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    encode_into(out, msg, xid);
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Splits complete messages off the front of `rbuf`.
fn next_frame(rbuf: &mut BytesMut) -> Result<Option<bytes::Bytes>, SessionError> {
    if rbuf.len() < openflow::HEADER_LEN {
        return Ok(None);
    }
    let header = openflow::Header::parse(&rbuf[..openflow::HEADER_LEN])?;
    let len = header.length as usize;
    if !(openflow::HEADER_LEN..=MAX_MESSAGE).contains(&len) {
        return Err(SessionError::Handshake(format!(
            "message length {len} out of range"
        )));
    }
    if rbuf.len() < len {
        rbuf.reserve(len - rbuf.len());
        return Ok(None);
    }
    Ok(Some(rbuf.split_to(len).freeze()))
}

/// Runs one switch connection until it ends. Emits `Connected` once the
/// handshake is done and `Disconnected` when it ends.
pub async fn run<S>(stream: S, peer: String, ctx: Arc<SessionContext>) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let id = ctx.next_session.fetch_add(1, Ordering::Relaxed);

    // Version negotiation: we offer only 1.3 in the bitmap.
    writer
        .write_all(
            &Message::Hello(Hello {
                versions: vec![openflow::OFP_VERSION],
            })
            .encode(0),
        )
        .await?;
    let deadline = Instant::now() + ctx.config.dead_after;
    let mut hello_seen = false;
    let mut features = None;
    while features.is_none() {
        let frame = loop {
            // The first message must be a HELLO: refuse anything else as soon as
            // its header is in, instead of waiting for a body that may never come.
            if !hello_seen
                && rbuf.len() >= openflow::HEADER_LEN
                && rbuf[1] != openflow::msg_type::HELLO
            {
                let err = Message::Error(ErrorMsg {
                    kind: openflow::ErrorKind::HelloFailed(0),
                    data: b"expected an OpenFlow HELLO".to_vec(),
                });
                let _ = writer.write_all(&err.encode(0)).await;
                return Err(SessionError::Handshake(format!(
                    "first message is type {}, not HELLO",
                    rbuf[1]
                )));
            }
            if let Some(f) = next_frame(&mut rbuf)? {
                break f;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, reader.read_buf(&mut rbuf)).await {
                Err(_) => {
                    return Err(SessionError::Handshake(
                        "no HELLO/FEATURES_REPLY in time".into(),
                    ))
                }
                Ok(Ok(0)) => return Err(SessionError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        };
        let header = openflow::Header::parse(&frame)?;
        if !hello_seen {
            let offered = if header.msg_type == 0 {
                match Message::decode(&frame) {
                    Ok((_, Message::Hello(h))) if !h.versions.is_empty() => {
                        h.versions.contains(&openflow::OFP_VERSION)
                    }
                    _ => header.version >= openflow::OFP_VERSION,
                }
            } else {
                false
            };
            if !offered {
                let err = Message::Error(ErrorMsg {
                    kind: openflow::ErrorKind::HelloFailed(0),
                    data: b"gemelo speaks OpenFlow 1.3 only".to_vec(),
                });
                let _ = writer.write_all(&err.encode(header.xid)).await;
                return Err(SessionError::Version(format!(
                    "version {:#04x}",
                    header.version
                )));
            }
            hello_seen = true;
            writer
                .write_all(&Message::FeaturesRequest.encode(1))
                .await?;
            continue;
        }
        match Message::decode(&frame)? {
            (xid, Message::EchoRequest(d)) => {
                writer.write_all(&Message::EchoReply(d).encode(xid)).await?
            }
            (_, Message::FeaturesReply(f)) => features = Some(f),
            (_, Message::Error(e)) => {
                return Err(SessionError::Handshake(format!(
                    "switch refused FEATURES_REQUEST: {}",
                    e.kind
                )))
            }
            _ => {}
        }
    }
    let features = features.expect("loop ends with features");
    let dpid = features.datapath_id;
    let span = tracing::info_span!("switch", dpid = %format!("{dpid:016x}"), session = id);
    let _enter = span.enter();
    info!(%peer, "switch connected");

    let (tx, mut rx) = mpsc::channel::<Command>(1024);
    let handle = SwitchHandle {
        dpid,
        tx,
        bundle_ids: Arc::new(AtomicU32::new(1)),
    };
    let mut s = Session {
        id,
        dpid,
        xid: 1,
        wbuf: Vec::with_capacity(2 * WRITE_CHUNK),
        outbox: VecDeque::new(),
        pending: HashMap::new(),
        batches: BTreeMap::new(),
        echo_outstanding: false,
        learning: (ctx.config.forwarding == ForwardingMode::Learning).then(LearningSwitch::new),
    };

    // The rest of the handshake goes through the handle like any other request,
    // so this loop is already serving echoes while it runs.
    {
        let handle = handle.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match finish_handshake(&handle).await {
                Ok((ports, desc)) => {
                    let _ = ctx
                        .events
                        .send(SwitchEvent::Connected {
                            session: id,
                            handle,
                            peer,
                            features,
                            ports,
                            desc,
                        })
                        .await;
                }
                Err(e) => warn!(dpid = %format!("{dpid:016x}"), error = %e, "handshake failed"),
            }
        });
    }
    drop(handle);

    let mut last_rx = Instant::now();
    let mut commands_open = true;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: Result<(), SessionError> = async {
        loop {
            while let Some(frame) = next_frame(&mut rbuf)? {
                match Message::decode(&frame) {
                    Ok((xid, msg)) => s.incoming(xid, msg, &ctx).await,
                    Err(e) => {
                        // A message we cannot decode is reported back, not fatal.
                        let header = openflow::Header::parse(&frame)?;
                        warn!(xid = header.xid, error = %e, "undecodable message from switch");
                    }
                }
            }
            s.fill_wbuf();
            if !s.wbuf.is_empty() {
                writer.write_all(&s.wbuf).await?;
                s.wbuf.clear();
            }
            // With a backlog, take no new command: read what has arrived (if
            // anything) and come back to write the next chunk.
            let backlog = !s.outbox.is_empty();
            tokio::select! {
                biased;
                r = reader.read_buf(&mut rbuf) => {
                    if r? == 0 {
                        return Err(SessionError::Closed);
                    }
                    last_rx = Instant::now();
                    s.echo_outstanding = false;
                }
                cmd = rx.recv(), if commands_open && !backlog => {
                    // Every handle dropped: keep serving the switch, stop polling
                    // the closed channel (it would be ready forever and spin).
                    let Some(cmd) = cmd else {
                        commands_open = false;
                        continue;
                    };
                    s.command(cmd);
                    while s.outbox.is_empty() {
                        let Ok(cmd) = rx.try_recv() else { break };
                        s.command(cmd);
                    }
                }
                _ = ticker.tick() => {
                    let idle = last_rx.elapsed();
                    if idle >= ctx.config.dead_after {
                        return Err(SessionError::Dead(idle));
                    }
                    if idle >= ctx.config.echo_interval && !s.echo_outstanding {
                        s.queue(Message::EchoRequest(b"gemelo".to_vec()));
                        s.echo_outstanding = true;
                    }
                }
                _ = std::future::ready(()), if backlog => {}
            }
        }
    }
    .await;
    s.fail_all();
    let reason = match &result {
        Ok(()) => "closed".to_string(),
        Err(e) => e.to_string(),
    };
    info!(%reason, "switch disconnected");
    let _ = ctx
        .events
        .send(SwitchEvent::Disconnected {
            session: s.id,
            dpid,
            reason,
        })
        .await;
    result
}

/// SET_CONFIG (full packets to the controller), port and switch description.
async fn finish_handshake(
    handle: &SwitchHandle,
) -> Result<(Vec<openflow::Port>, Option<openflow::Desc>), SwitchError> {
    use openflow::{MultipartRequest, MultipartRequestBody, SwitchConfig};
    handle
        .send(Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: openflow::CML_NO_BUFFER,
        }))
        .await?;
    let mp = |body| Message::MultipartRequest(MultipartRequest { flags: 0, body });
    let ports = match handle.request(mp(MultipartRequestBody::PortDesc)).await? {
        Message::MultipartReply(r) => match r.body {
            MultipartReplyBody::PortDesc(p) => p,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let desc = match handle.request(mp(MultipartRequestBody::Desc)).await? {
        Message::MultipartReply(r) => match r.body {
            MultipartReplyBody::Desc(d) => Some(d),
            _ => None,
        },
        _ => None,
    };
    handle.barrier().await?;
    Ok((ports, desc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::{
        port, Action, BundleAdd, FlowMod, Instruction, Match, PacketOut, NO_BUFFER,
    };

    fn flow_mod() -> Message {
        let mut fm = FlowMod::add(
            2,
            100,
            Match::new()
                .eth_type(0x0800)
                .ipv4_src("198.18.0.7".parse().unwrap()),
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: 1,
                max_len: 0xffff,
            }])],
        );
        fm.cookie = 0x676d_0200_0000_0000;
        fm.idle_timeout = 60;
        Message::FlowMod(fm)
    }

    fn packet_out() -> Message {
        Message::PacketOut(PacketOut {
            buffer_id: NO_BUFFER,
            in_port: 3,
            actions: vec![Action::Output {
                port: port::FLOOD,
                max_len: 0,
            }],
            data: (0u8..60).collect(),
        })
    }

    #[test]
    fn large_transactions_keep_order_and_xids() {
        let mut s = Session {
            id: 1,
            dpid: 1,
            xid: u32::MAX - 5, // wraps inside the transaction: xid 0 must be skipped
            wbuf: Vec::new(),
            outbox: VecDeque::new(),
            pending: HashMap::new(),
            batches: BTreeMap::new(),
            echo_outstanding: false,
            learning: None,
        };
        let (done, _rx) = tokio::sync::oneshot::channel();
        s.command(Command::Transact {
            msgs: (0..3000).map(|_| flow_mod()).collect(),
            done,
        });
        s.queue(Message::EchoRequest(b"after".to_vec()));
        assert!(!s.outbox.is_empty(), "3000 flow-mods do not fit one chunk");
        let mut wire = Vec::new();
        loop {
            s.fill_wbuf();
            if s.wbuf.is_empty() {
                break;
            }
            assert!(s.wbuf.len() < WRITE_CHUNK + 1024);
            wire.append(&mut s.wbuf);
        }
        let mut xids = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            let (xid, msg) = Message::decode(&rest[..len]).unwrap();
            xids.push((xid, msg.name()));
            rest = &rest[len..];
        }
        assert_eq!(xids.len(), 3002);
        let mut expect = u32::MAX - 5;
        for (i, (xid, name)) in xids.iter().enumerate() {
            expect = xid_after(expect);
            assert_eq!(*xid, expect);
            let want = match i {
                3000 => "BARRIER_REQUEST",
                3001 => "ECHO_REQUEST",
                _ => "FLOW_MOD",
            };
            assert_eq!(*name, want);
        }
        assert!(xids.iter().all(|(x, _)| *x != 0));
        assert!(s.batches.contains_key(&xids[3000].0));
    }

    #[test]
    fn encode_into_matches_message_encode() {
        let bundled = |m: Message, inner_xid| {
            Message::BundleAdd(BundleAdd {
                bundle_id: 9,
                flags: 3,
                message: Box::new(m),
                inner_xid,
            })
        };
        let msgs = [
            flow_mod(),
            packet_out(),
            bundled(flow_mod(), 77),
            bundled(packet_out(), 78),
            Message::BarrierRequest,
            Message::EchoReply(b"x".to_vec()),
        ];
        for (i, m) in msgs.iter().enumerate() {
            let xid = 77 + i as u32;
            let mut out = vec![0xaa];
            encode_into(&mut out, m, xid);
            assert_eq!(&out[1..], &m.encode(xid)[..], "{}", m.name());
            assert_eq!(Message::decode(&out[1..]).unwrap(), (xid, m.clone()));
        }
    }

    #[test]
    fn bundle_adds_are_wrapped_while_encoding() {
        for (m, xid) in [
            (flow_mod(), 500u32),
            (packet_out(), 501),
            (Message::BarrierRequest, 502),
        ] {
            let want = Message::BundleAdd(BundleAdd {
                bundle_id: 4,
                flags: 3,
                message: Box::new(m.clone()),
                inner_xid: xid,
            })
            .encode(xid);
            let mut out = Vec::new();
            encode_bundle_add(&mut out, 4, 3, &m, xid);
            assert_eq!(out, want, "{}", m.name());
        }
    }
}
