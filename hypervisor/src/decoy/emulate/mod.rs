//! gemelo's own decoys for what cannot run as the real daemon: a tokio runtime
//! serving every emulated service of one twin host (`gemelo decoy --spec FILE`).
//!
//! Each protocol lives in its own file as a pure `Server` state machine over
//! bytes (unit-tested) plus one small connection task (TCP) or datagram loop
//! (UDP: SNMP). Limits: at most `MAX_CONNECTIONS` clients per service, bounded
//! reads, idle timeouts; client input is never trusted and never panics a decoy.

pub mod banner;
pub mod http;
pub mod modbus;
pub mod snmp;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::{DecoyError, DecoyFile, EventSink};
use crate::plan::DecoySpec;

/// Clients served at once per service; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// A client silent this long is dropped.
pub const IDLE: Duration = Duration::from_secs(120);

/// Which emulation a spec gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Modbus,
    Http,
    Banner,
    /// The only UDP service.
    Snmp,
}

pub fn kind_of(spec: &DecoySpec) -> Option<Kind> {
    match spec.proto.as_str() {
        "tcp" => {}
        "udp" => return (spec.name == "snmp").then_some(Kind::Snmp),
        _ => return None,
    }
    Some(match spec.name.as_str() {
        "modbus" => Kind::Modbus,
        "http" if spec.details.get("status").is_some() => Kind::Http,
        _ => Kind::Banner,
    })
}

/// Whether `gemelo decoy` can serve this spec (any TCP service, SNMP over UDP).
pub fn can_emulate(spec: &DecoySpec) -> bool {
    kind_of(spec).is_some()
}

/// Reads the spec file and serves every service in it, on all the twin
/// host's addresses, until killed.
pub fn run_decoy(spec_file: &Path, events: &Path) -> Result<(), DecoyError> {
    run_decoy_at(spec_file, events, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `run_decoy` on one address (tests use 127.0.0.1).
pub fn run_decoy_at(spec_file: &Path, events: &Path, ip: IpAddr) -> Result<(), DecoyError> {
    let text = std::fs::read(spec_file).map_err(|source| DecoyError::SpecIo {
        path: spec_file.to_path_buf(),
        source,
    })?;
    let file: DecoyFile =
        serde_json::from_slice(&text).map_err(|source| DecoyError::SpecParse {
            path: spec_file.to_path_buf(),
            source,
        })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DecoyError::Runtime)?;
    rt.block_on(async move {
        let sink = Arc::new(EventSink::new(events, &file.twin_host));
        let servers = bind_all(&file, sink, ip).await?;
        for s in servers {
            tokio::spawn(s);
        }
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// A service's serving loop.
pub type ServiceLoop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Binds every service's port (all before serving any, so a conflict fails
/// the whole decoy at start) and returns the accept (or datagram) loops.
pub async fn bind_all(
    file: &DecoyFile,
    sink: Arc<EventSink>,
    ip: IpAddr,
) -> Result<Vec<ServiceLoop>, DecoyError> {
    let mut loops: Vec<ServiceLoop> = Vec::new();
    for spec in &file.services {
        let Some(kind) = kind_of(spec) else { continue };
        let listen_error = |source| DecoyError::Listen {
            proto: spec.proto.clone(),
            port: spec.port,
            source,
        };
        if kind == Kind::Snmp {
            let socket = UdpSocket::bind((ip, spec.port))
                .await
                .map_err(listen_error)?;
            let agent = Arc::new(snmp::Agent::from_details(&spec.details, &file.hostname));
            loops.push(Box::pin(snmp::serve(
                socket,
                agent,
                spec.name.clone(),
                sink.clone(),
            )));
            continue;
        }
        let listener = TcpListener::bind((ip, spec.port))
            .await
            .map_err(listen_error)?;
        let service = Arc::new(Service::new(kind, spec, &file.hostname)?);
        loops.push(Box::pin(accept_loop(listener, service, sink.clone())));
    }
    Ok(loops)
}

/// One emulated TCP service and its shared state.
pub enum Service {
    Modbus(modbus::Device),
    Http(http::Site),
    Banner(banner::Banner),
}

impl Service {
    pub fn new(kind: Kind, spec: &DecoySpec, _hostname: &str) -> Result<Service, DecoyError> {
        Ok(match kind {
            Kind::Modbus => Service::Modbus(modbus::Device::from_details(&spec.details)),
            Kind::Http => {
                Service::Http(http::Site::from_details(&spec.details).map_err(|detail| {
                    DecoyError::Service {
                        service: spec.name.clone(),
                        port: spec.port,
                        detail,
                    }
                })?)
            }
            Kind::Banner => Service::Banner(banner::Banner::from_spec(spec)),
            Kind::Snmp => {
                return Err(DecoyError::Service {
                    service: spec.name.clone(),
                    port: spec.port,
                    detail: "SNMP is a datagram service, not a TCP one".into(),
                })
            }
        })
    }
}

/// Serves one listener, bounded by `MAX_CONNECTIONS`.
pub async fn accept_loop(listener: TcpListener, service: Arc<Service>, sink: Arc<EventSink>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        let sink = sink.clone();
        tokio::spawn(async move {
            serve(stream, peer, &service, &sink).await;
            drop(permit);
        });
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, service: &Service, sink: &EventSink) {
    let _ = stream.set_nodelay(true);
    match service {
        Service::Modbus(d) => modbus::serve(stream, peer, d, sink).await,
        Service::Http(s) => http::serve(stream, peer, s, sink).await,
        Service::Banner(b) => banner::serve(stream, peer, b, sink).await,
    }
}
