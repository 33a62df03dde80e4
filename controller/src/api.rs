//! The REST API (warp), under `/api/v1`.
//!
//! Read by scripts and by the `gemelo` CLI. Every error is JSON
//! `{"error": "...", "status": N}` saying what was wrong; unknown ids are 404.

use crate::fabric::{dpid_str, parse_dpid, Fabric, ReconcileReport, SwitchState};
use crate::openflow::{self, FlowStats};
use crate::pipeline::ForwardingMode;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub struct ApiState {
    pub fabric: Arc<Fabric>,
    pub discovery: Arc<crate::discovery::Discovery>,
    pub events: Arc<crate::events::Events>,
    pub twin: Arc<crate::twin::Twin>,
    pub redirections: Arc<crate::redirect::Redirections>,
    /// Verifier of signed webhooks; `None` when no integration is configured.
    pub hooks: Option<std::sync::Mutex<crate::trigger::webhook::WebhookVerifier>>,
    pub forwarding: ForwardingMode,
    pub started: Instant,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct PortView {
    pub no: u32,
    pub name: String,
    pub mac: String,
    pub up: bool,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct SwitchView {
    pub dpid: String,
    pub name: String,
    pub connected: bool,
    pub peer: String,
    pub connected_at: String,
    pub ports: Vec<PortView>,
    pub reconciled: Option<ReconcileReport>,
    pub hardware: Option<String>,
    pub software: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct FlowView {
    pub table: u8,
    pub priority: u16,
    pub cookie: String,
    #[serde(rename = "match")]
    pub r#match: String,
    pub actions: String,
    pub packets: u64,
    pub bytes: u64,
    pub duration_s: f64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
}

pub fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl From<&SwitchState> for SwitchView {
    fn from(s: &SwitchState) -> Self {
        SwitchView {
            dpid: dpid_str(s.dpid),
            name: s.name.clone(),
            connected: s.connected(),
            peer: s.peer.clone(),
            connected_at: crate::fabric::rfc3339(s.connected_at),
            ports: s
                .ports
                .values()
                .map(|p| PortView {
                    no: p.port_no,
                    name: p.name.clone(),
                    mac: mac_str(&p.hw_addr),
                    up: p.is_up(),
                })
                .collect(),
            reconciled: s.reconciled.clone(),
            hardware: s.desc.as_ref().map(|d| d.hw.clone()),
            software: s.desc.as_ref().map(|d| d.sw.clone()),
        }
    }
}

impl From<&FlowStats> for FlowView {
    fn from(f: &FlowStats) -> Self {
        FlowView {
            table: f.table_id,
            priority: f.priority,
            cookie: format!("{:#x}", f.cookie),
            r#match: f.r#match.to_string(),
            actions: openflow::format_instructions(&f.instructions),
            packets: f.packet_count,
            bytes: f.byte_count,
            duration_s: f.duration_sec as f64 + f.duration_nsec as f64 / 1e9,
            idle_timeout: f.idle_timeout,
            hard_timeout: f.hard_timeout,
        }
    }
}

/// An error a user caused, or a switch that failed; carried to the JSON body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

fn reject(status: StatusCode, message: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiError {
        status,
        message: message.into(),
    })
}

fn with_state(
    state: Arc<ApiState>,
) -> impl Filter<Extract = (Arc<ApiState>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

#[derive(Debug, Deserialize)]
struct FlowQuery {
    format: Option<String>,
}

type Boxed = Box<dyn Reply>;

fn boxed(r: impl Reply + 'static) -> Boxed {
    Box::new(r)
}

fn json<T: Serialize>(v: &T) -> Boxed {
    boxed(warp::reply::json(v))
}

#[derive(Debug, Deserialize)]
struct ScanRequest {
    targets: Vec<String>,
    ports: Option<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    since: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

/// All routes, with JSON errors.
pub fn routes(
    state: Arc<ApiState>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let v1 = warp::path("api").and(warp::path("v1"));
    let st = move || with_state(state.clone());
    let health = v1.and(warp::path("health")).and(warp::path::end()).and(warp::get()).and(st()).map(|st: Arc<ApiState>| {
        let snap = st.fabric.snapshot();
        json(&serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": st.started.elapsed().as_secs_f64(),
            "forwarding": st.forwarding,
            "switches": snap.len(),
            "switches_connected": snap.iter().filter(|s| s.connected()).count(),
            "discovery": {
                "scope": st.discovery.config.scope.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                "probe_netns": st.discovery.config.probe_netns,
            },
        }))
    });
    let switches = v1
        .and(warp::path("switches"))
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .map(|st: Arc<ApiState>| {
            let views: Vec<SwitchView> =
                st.fabric.snapshot().iter().map(SwitchView::from).collect();
            json(&views)
        });
    let switch = v1
        .and(warp::path("switches"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .and_then(|dpid: String, st: Arc<ApiState>| async move {
            let s = find_switch(&st, &dpid)?;
            Ok::<_, Rejection>(json(&SwitchView::from(&s)))
        });
    let flows = v1
        .and(warp::path("switches"))
        .and(warp::path::param::<String>())
        .and(warp::path("flows"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<FlowQuery>())
        .and(st())
        .and_then(|dpid: String, q: FlowQuery, st: Arc<ApiState>| async move {
            flows(dpid, q, st).await
        });
    let inventory = v1
        .and(warp::path("inventory"))
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .map(|st: Arc<ApiState>| json(&st.discovery.view()));
    let history = v1
        .and(warp::path("inventory"))
        .and(warp::path("history"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<HistoryQuery>())
        .and(st())
        .map(|q: HistoryQuery, st: Arc<ApiState>| {
            json(&st.discovery.history(q.limit.unwrap_or(1000)))
        });
    let host = v1
        .and(warp::path("hosts"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .and_then(|id: String, st: Arc<ApiState>| async move {
            if crate::discovery::inventory::parse_mac(&id).is_none() {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    format!("bad host id {id:?}: a host's id is its MAC, e.g. 02:00:0a:0a:01:0a"),
                ));
            }
            st.discovery.host(&id).map(|h| json(&h)).ok_or_else(|| {
                reject(
                    StatusCode::NOT_FOUND,
                    format!("no host {id} in the inventory"),
                )
            })
        });
    let topology = v1
        .and(warp::path("topology"))
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .map(|st: Arc<ApiState>| json(&topology(&st)));
    let scan = v1
        .and(warp::path("discovery"))
        .and(warp::path("scan"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::json::<ScanRequest>())
        .and(st())
        .and_then(|req: ScanRequest, st: Arc<ApiState>| async move {
            use crate::discovery::active::ScanError;
            match st.discovery.start_scan(req.targets, req.ports) {
                Ok(job) => {
                    let body = serde_json::json!({"job": job.id, "status_url": format!("/api/v1/discovery/jobs/{}", job.id), "state": job.state});
                    Ok(boxed(warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)))
                }
                Err(e @ (ScanError::NoProbe | ScanError::NoScope)) => Err(reject(StatusCode::CONFLICT, e.to_string())),
                Err(e @ ScanError::OutOfScope { .. }) => Err(reject(StatusCode::FORBIDDEN, e.to_string())),
                Err(e) => Err(reject(StatusCode::BAD_REQUEST, e.to_string())),
            }
        });
    let job = v1
        .and(warp::path("discovery"))
        .and(warp::path("jobs"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .and_then(|id: String, st: Arc<ApiState>| async move {
            st.discovery
                .job(&id)
                .map(|j| json(&j))
                .ok_or_else(|| reject(StatusCode::NOT_FOUND, format!("no discovery job {id}")))
        });
    let events = v1
        .and(warp::path("events"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<EventQuery>())
        .and(st())
        .and_then(|q: EventQuery, st: Arc<ApiState>| async move {
            let since = match q.since.as_deref() {
                None => None,
                Some(s) => Some(humantime::parse_rfc3339_weak(s).map_err(|e| {
                    reject(
                        StatusCode::BAD_REQUEST,
                        format!("bad since {s:?}: {e}; use RFC 3339, e.g. 2026-11-25T10:00:00Z"),
                    )
                })?),
            };
            Ok::<_, Rejection>(json(&st.events.list(
                since,
                q.kind.as_deref(),
                q.limit.unwrap_or(1000),
            )))
        });
    let twin_get = v1
        .and(warp::path("twin"))
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .map(|st: Arc<ApiState>| json(&st.twin.status()));
    let twin_post = v1
        .and(warp::path("twin"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(256 * 1024))
        .and(warp::body::bytes())
        .and(st())
        .and_then(|body: bytes::Bytes, st: Arc<ApiState>| async move {
            let config = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(serde_json::from_slice::<crate::twin::plan::TwinConfig>(&body).map_err(|e| reject(StatusCode::BAD_REQUEST, format!("bad twin config: {e}")))?)
            };
            use crate::twin::TwinError;
            match st.twin.start_build(&st.discovery.view(), config) {
                Ok(plan) => {
                    let body = serde_json::json!({"job": "twin", "status_url": "/api/v1/twin", "state": "building", "hosts": plan.hosts.len()});
                    Ok(boxed(warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)))
                }
                Err(e @ TwinError::Busy) => Err(reject(StatusCode::CONFLICT, e.to_string())),
                Err(e @ TwinError::Plan(crate::twin::plan::PlanError::Empty)) => Err(reject(StatusCode::CONFLICT, e.to_string())),
                Err(e) => Err(reject(StatusCode::BAD_REQUEST, e.to_string())),
            }
        });
    let twin_delete = v1
        .and(warp::path("twin"))
        .and(warp::path::end())
        .and(warp::delete())
        .and(st())
        .and_then(|st: Arc<ApiState>| async move {
            let twin = st.twin.clone();
            match tokio::task::spawn_blocking(move || twin.destroy()).await {
                Ok(Ok(())) => Ok(json(&serde_json::json!({"state": "absent"}))),
                Ok(Err(e @ crate::twin::TwinError::Busy)) => {
                    Err(reject(StatusCode::CONFLICT, e.to_string()))
                }
                Ok(Err(e)) => Err(reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                Err(e) => Err(reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            }
        });
    health
        .or(redirect_routes(st()))
        .unify()
        .or(twin_get)
        .unify()
        .or(twin_post)
        .unify()
        .or(twin_delete)
        .unify()
        .or(events)
        .unify()
        .boxed()
        .or(switches)
        .unify()
        .or(switch)
        .unify()
        .or(flows)
        .unify()
        .or(inventory)
        .unify()
        .or(history)
        .unify()
        .or(host)
        .unify()
        .or(topology)
        .unify()
        .or(scan)
        .unify()
        .or(job)
        .unify()
        .recover(recover)
}

/// A redirection error as a JSON reply; a conflict with an active
/// redirection carries that redirection's id.
fn redirect_error(e: crate::redirect::RedirectError) -> Boxed {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::json!({"error": e.to_string()});
    if let crate::redirect::RedirectError::AlreadyRedirected { id, .. } = &e {
        body["id"] = serde_json::json!(id);
    }
    boxed(warp::reply::with_status(warp::reply::json(&body), status))
}

fn created(r: &crate::redirect::Redirection) -> Boxed {
    boxed(warp::reply::with_status(
        warp::reply::json(r),
        StatusCode::CREATED,
    ))
}

/// `/api/v1/redirections[/{id}]` and `/api/v1/hooks/{integration}`.
fn redirect_routes(
    st: impl Filter<Extract = (Arc<ApiState>,), Error = Infallible> + Clone + Send + Sync + 'static,
) -> impl Filter<Extract = (Boxed,), Error = Rejection> + Clone {
    use crate::redirect::RedirectRequest;
    let v1 = warp::path("api").and(warp::path("v1"));
    let list = v1
        .and(warp::path("redirections"))
        .and(warp::path::end())
        .and(warp::get())
        .and(st.clone())
        .map(|st: Arc<ApiState>| json(&st.redirections.list()));
    let get = v1
        .and(warp::path("redirections"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(st.clone())
        .and_then(|id: String, st: Arc<ApiState>| async move {
            st.redirections.get(&id).map(|r| json(&r)).ok_or_else(|| {
                reject(
                    StatusCode::NOT_FOUND,
                    format!("no redirection {id} (GET /api/v1/redirections)"),
                )
            })
        });
    let create = v1
        .and(warp::path("redirections"))
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .and(st.clone())
        .and_then(|body: bytes::Bytes, st: Arc<ApiState>| async move {
            let req: RedirectRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return Ok::<_, Rejection>(redirect_error(crate::redirect::RedirectError::BadRequest(format!(
                        "bad redirection request: {e}; expected {{\"source\": \"IP | MAC | CIDR\", \"reason\": \"...\", \"ttl_s\": 3600}}"
                    ))))
                }
            };
            Ok(match st.redirections.create(req, "api").await {
                Ok(r) => created(&r),
                Err(e) => redirect_error(e),
            })
        });
    let release = v1
        .and(warp::path("redirections"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .and(st.clone())
        .and_then(|id: String, st: Arc<ApiState>| async move {
            Ok::<_, Rejection>(match st.redirections.release(&id, "api").await {
                Ok(r) => json(&r),
                Err(e) => redirect_error(e),
            })
        });
    let hook = v1
        .and(warp::path("hooks"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::header::optional::<String>("x-gemelo-timestamp"))
        .and(warp::header::optional::<String>("x-gemelo-signature"))
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .and(st)
        .and_then(
            |integration: String, ts: Option<String>, sig: Option<String>, body: bytes::Bytes, st: Arc<ApiState>| async move {
                use crate::trigger::webhook::HookAction;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let verified = match &st.hooks {
                    None => Err((StatusCode::NOT_FOUND, format!("no webhook integration {integration:?}: none is configured (serve --hooks FILE)"))),
                    Some(v) => v
                        .lock()
                        .expect("hooks lock")
                        .verify(&integration, ts.as_deref(), sig.as_deref(), &body, now)
                        .map_err(|e| (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED), e.to_string())),
                };
                let action = match verified {
                    Ok(a) => a,
                    Err((status, msg)) => {
                        return Ok::<_, Rejection>(boxed(warp::reply::with_status(
                            warp::reply::json(&serde_json::json!({"error": msg})),
                            status,
                        )))
                    }
                };
                let trigger = format!("webhook:{integration}");
                Ok(match action {
                    HookAction::Redirect { source, reason, ttl_s } => {
                        let req = RedirectRequest { source: source.to_string(), reason, ttl_s };
                        match st.redirections.create(req, &trigger).await {
                            Ok(r) => created(&r),
                            Err(e) => redirect_error(e),
                        }
                    }
                    HookAction::Release { id } => match st.redirections.release(&id, &trigger).await {
                        Ok(r) => json(&r),
                        Err(e) => redirect_error(e),
                    },
                })
            },
        );
    list.or(get)
        .unify()
        .or(create)
        .unify()
        .or(release)
        .unify()
        .or(hook)
        .unify()
        // Boxed: a release build otherwise overflows the type checker's recursion limit.
        .boxed()
}

/// Nodes (switches, hosts) and edges (links, attachments) for drawing.
fn topology(st: &ApiState) -> serde_json::Value {
    let inv = st.discovery.view();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for s in &inv.switches {
        nodes.push(serde_json::json!({"id": s.dpid, "kind": "switch", "label": s.name}));
    }
    for h in &inv.hosts {
        let label = h
            .hostname
            .clone()
            .or_else(|| h.ips.first().cloned())
            .unwrap_or_else(|| h.mac.clone());
        nodes.push(serde_json::json!({"id": h.id, "kind": "host", "label": label, "ips": h.ips, "role": h.role}));
        if let (Some(sw), Some(port)) = (&h.switch, h.port) {
            edges.push(
                serde_json::json!({"from": h.id, "to": sw, "kind": "attachment", "port": port}),
            );
        }
    }
    for l in &inv.links {
        edges.push(serde_json::json!({"from": l.a.dpid, "to": l.b.dpid, "kind": "link", "ports": [l.a.port, l.b.port]}));
    }
    serde_json::json!({"nodes": nodes, "edges": edges})
}

fn find_switch(st: &ApiState, id: &str) -> Result<SwitchState, Rejection> {
    let dpid = parse_dpid(id).map_err(|e| reject(StatusCode::BAD_REQUEST, e))?;
    st.fabric.get(dpid).ok_or_else(|| {
        reject(
            StatusCode::NOT_FOUND,
            format!(
                "no switch with datapath id {} has connected",
                dpid_str(dpid)
            ),
        )
    })
}

async fn flows(dpid: String, q: FlowQuery, st: Arc<ApiState>) -> Result<Box<dyn Reply>, Rejection> {
    let s = find_switch(&st, &dpid)?;
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "ofctl" {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            format!("unknown format {format:?}: use json or ofctl"),
        ));
    }
    let handle = s.handle.filter(|h| h.is_connected()).ok_or_else(|| {
        reject(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("switch {} is not connected", dpid_str(s.dpid)),
        )
    })?;
    let stats = handle
        .flows(0, 0)
        .await
        .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if format == "ofctl" {
        let mut text = String::new();
        for f in &stats {
            text.push_str(&f.to_ofctl_line());
            text.push('\n');
        }
        return Ok(Box::new(warp::reply::with_header(
            text,
            "content-type",
            "text/plain; charset=utf-8",
        )));
    }
    let views: Vec<FlowView> = stats.iter().map(FlowView::from).collect();
    Ok(Box::new(warp::reply::json(&views)))
}

async fn recover(err: Rejection) -> Result<Box<dyn Reply>, Infallible> {
    let (status, message) = if let Some(e) = err.find::<ApiError>() {
        (e.status, e.message.clone())
    } else if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such endpoint; see the README's REST API table".to_string(),
        )
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint".to_string(),
        )
    } else if let Some(e) = err.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("bad query string: {e}"))
    } else if let Some(e) = err.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, format!("bad JSON body: {e}"))
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:?}"))
    };
    let body = warp::reply::json(&serde_json::json!({"error": message, "status": status.as_u16()}));
    Ok(Box::new(warp::reply::with_status(body, status)))
}
