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
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
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
                .map(|p| PortView { no: p.port_no, name: p.name.clone(), mac: mac_str(&p.hw_addr), up: p.is_up() })
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
    warp::reject::custom(ApiError { status, message: message.into() })
}

fn with_state(state: Arc<ApiState>) -> impl Filter<Extract = (Arc<ApiState>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

#[derive(Debug, Deserialize)]
struct FlowQuery {
    format: Option<String>,
}

/// All routes, with JSON errors.
pub fn routes(state: Arc<ApiState>) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let v1 = warp::path("api").and(warp::path("v1"));
    let health = v1.and(warp::path("health")).and(warp::path::end()).and(warp::get()).and(with_state(state.clone())).map(
        |st: Arc<ApiState>| {
            let snap = st.fabric.snapshot();
            warp::reply::json(&serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": st.started.elapsed().as_secs_f64(),
                "forwarding": st.forwarding,
                "switches": snap.len(),
                "switches_connected": snap.iter().filter(|s| s.connected()).count(),
            }))
        },
    );
    let switches = v1.and(warp::path("switches")).and(warp::path::end()).and(warp::get()).and(with_state(state.clone())).map(
        |st: Arc<ApiState>| {
            let views: Vec<SwitchView> = st.fabric.snapshot().iter().map(SwitchView::from).collect();
            warp::reply::json(&views)
        },
    );
    let switch = v1
        .and(warp::path("switches"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(|dpid: String, st: Arc<ApiState>| async move {
            let s = find_switch(&st, &dpid)?;
            Ok::<_, Rejection>(warp::reply::json(&SwitchView::from(&s)))
        });
    let flows = v1
        .and(warp::path("switches"))
        .and(warp::path::param::<String>())
        .and(warp::path("flows"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<FlowQuery>())
        .and(with_state(state))
        .and_then(|dpid: String, q: FlowQuery, st: Arc<ApiState>| async move { flows(dpid, q, st).await });
    health.or(switches).unify().or(switch).unify().or(flows).map(|r| Box::new(r) as Box<dyn Reply>).recover(recover)
}

fn find_switch(st: &ApiState, id: &str) -> Result<SwitchState, Rejection> {
    let dpid = parse_dpid(id).map_err(|e| reject(StatusCode::BAD_REQUEST, e))?;
    st.fabric
        .get(dpid)
        .ok_or_else(|| reject(StatusCode::NOT_FOUND, format!("no switch with datapath id {} has connected", dpid_str(dpid))))
}

async fn flows(dpid: String, q: FlowQuery, st: Arc<ApiState>) -> Result<Box<dyn Reply>, Rejection> {
    let s = find_switch(&st, &dpid)?;
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "ofctl" {
        return Err(reject(StatusCode::BAD_REQUEST, format!("unknown format {format:?}: use json or ofctl")));
    }
    let handle = s
        .handle
        .filter(|h| h.is_connected())
        .ok_or_else(|| reject(StatusCode::SERVICE_UNAVAILABLE, format!("switch {} is not connected", dpid_str(s.dpid))))?;
    let stats = handle.flows(0, 0).await.map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if format == "ofctl" {
        let mut text = String::new();
        for f in &stats {
            text.push_str(&f.to_ofctl_line());
            text.push('\n');
        }
        return Ok(Box::new(warp::reply::with_header(text, "content-type", "text/plain; charset=utf-8")));
    }
    let views: Vec<FlowView> = stats.iter().map(FlowView::from).collect();
    Ok(Box::new(warp::reply::json(&views)))
}

async fn recover(err: Rejection) -> Result<Box<dyn Reply>, Infallible> {
    let (status, message) = if let Some(e) = err.find::<ApiError>() {
        (e.status, e.message.clone())
    } else if err.is_not_found() {
        (StatusCode::NOT_FOUND, "no such endpoint; see /api/v1/health, /api/v1/switches".to_string())
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint".to_string())
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
