//! The handle through which the rest of gemelo talks to one switch session.
//!
//! The session task owns the socket; a `SwitchHandle` sends it commands over a
//! channel. Requests are matched to replies by xid (multipart replies arrive
//! reassembled); `transact` sends messages followed by a barrier and reports the
//! first OpenFlow error any of them caused, naming the failing xid; `bundle`
//! wraps messages in an atomic ONF bundle.

use crate::openflow::{
    ErrorMsg, FlowStats, FlowStatsRequest, Message, MultipartReplyBody, MultipartRequest,
    MultipartRequestBody,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a request waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, Clone)]
pub enum SwitchError {
    #[error("switch {dpid:016x} is not connected")]
    Disconnected { dpid: u64 },
    #[error("switch {dpid:016x} did not answer within {0:?}", REQUEST_TIMEOUT)]
    Timeout { dpid: u64 },
    #[error("switch {dpid:016x} rejected xid {xid:#x} ({request}): {}", error.kind)]
    Rejected {
        dpid: u64,
        xid: u32,
        request: &'static str,
        error: ErrorMsg,
    },
    #[error("switch {dpid:016x} answered {got} to a {request}")]
    UnexpectedReply {
        dpid: u64,
        request: &'static str,
        got: &'static str,
    },
}

pub(crate) type Reply = oneshot::Sender<Result<Message, SwitchError>>;
pub(crate) type Done = oneshot::Sender<Result<(), SwitchError>>;

/// Commands from handles to the session task.
pub(crate) enum Command {
    /// Send, expect exactly one reply (multipart: reassembled).
    Request { msg: Message, reply: Reply },
    /// Send messages, then a barrier; complete when the barrier is answered.
    Transact { msgs: Vec<Message>, done: Done },
    /// Send without waiting.
    Send { msg: Message },
    /// An atomic ONF bundle of `msgs` (open, one bundle-add each, commit), then a
    /// barrier. The session wraps each message while encoding it.
    Bundle {
        bundle_id: u32,
        flags: u16,
        msgs: Vec<Message>,
        done: Done,
    },
}

/// A cheap, cloneable handle to one switch session.
#[derive(Clone)]
pub struct SwitchHandle {
    pub(crate) dpid: u64,
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) bundle_ids: Arc<AtomicU32>,
}

impl std::fmt::Debug for SwitchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SwitchHandle({:016x})", self.dpid)
    }
}

impl SwitchHandle {
    pub fn dpid(&self) -> u64 {
        self.dpid
    }

    /// True while the session task is alive.
    pub fn is_connected(&self) -> bool {
        !self.tx.is_closed()
    }

    async fn submit(&self, cmd: Command) -> Result<(), SwitchError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| SwitchError::Disconnected { dpid: self.dpid })
    }

    /// Sends a request and returns its reply.
    pub async fn request(&self, msg: Message) -> Result<Message, SwitchError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Command::Request { msg, reply }).await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SwitchError::Disconnected { dpid: self.dpid }),
            Err(_) => Err(SwitchError::Timeout { dpid: self.dpid }),
        }
    }

    /// Sends a message that has no reply.
    pub async fn send(&self, msg: Message) -> Result<(), SwitchError> {
        self.submit(Command::Send { msg }).await
    }

    /// Sends `msgs` then a barrier; Ok once the switch processed all of them without error.
    pub async fn transact(&self, msgs: Vec<Message>) -> Result<(), SwitchError> {
        let (done, rx) = oneshot::channel();
        self.submit(Command::Transact { msgs, done }).await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SwitchError::Disconnected { dpid: self.dpid }),
            Err(_) => Err(SwitchError::Timeout { dpid: self.dpid }),
        }
    }

    /// Waits until the switch has processed everything sent before.
    pub async fn barrier(&self) -> Result<(), SwitchError> {
        self.transact(Vec::new()).await
    }

    /// Applies `msgs` atomically (ONF bundle open / add... / commit, then a barrier).
    /// If any message is refused, none takes effect and the error names its xid.
    pub async fn bundle(&self, msgs: Vec<Message>) -> Result<(), SwitchError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let bundle_id = self.bundle_ids.fetch_add(1, Ordering::Relaxed);
        let flags = crate::openflow::BUNDLE_ATOMIC | crate::openflow::BUNDLE_ORDERED;
        let (done, rx) = oneshot::channel();
        self.submit(Command::Bundle {
            bundle_id,
            flags,
            msgs,
            done,
        })
        .await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SwitchError::Disconnected { dpid: self.dpid }),
            Err(_) => Err(SwitchError::Timeout { dpid: self.dpid }),
        }
    }

    /// Reads flows (all tables) whose cookie matches `cookie` under `cookie_mask`.
    pub async fn flows(
        &self,
        cookie: u64,
        cookie_mask: u64,
    ) -> Result<Vec<FlowStats>, SwitchError> {
        let req = FlowStatsRequest {
            cookie,
            cookie_mask,
            ..FlowStatsRequest::all()
        };
        match self
            .request(Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::Flow(req),
            }))
            .await?
        {
            Message::MultipartReply(r) => match r.body {
                MultipartReplyBody::Flow(flows) => Ok(flows),
                _ => Err(SwitchError::UnexpectedReply {
                    dpid: self.dpid,
                    request: "flow stats",
                    got: "another multipart reply",
                }),
            },
            other => Err(SwitchError::UnexpectedReply {
                dpid: self.dpid,
                request: "flow stats",
                got: other.name(),
            }),
        }
    }
}
