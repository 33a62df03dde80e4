//! Switch connections: listeners, outbound connectors and one session task per switch.
//!
//! `listen` and `connect` produce sessions; sessions report `SwitchEvent`s on one
//! channel and hand out `SwitchHandle`s for requests. Nothing here knows about
//! discovery, the twin or redirections: they are built on top of the handles.

pub mod endpoint;
pub mod handle;
pub mod learning;
pub mod session;

pub use endpoint::Endpoint;
pub use handle::{SwitchError, SwitchHandle};
pub use session::{SessionConfig, SessionContext, SwitchEvent};

use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Binds `endpoint` and serves every switch that connects. Binding errors are
/// returned at once; the accept loop runs in the returned task.
pub async fn listen(
    endpoint: &Endpoint,
    ctx: Arc<SessionContext>,
) -> std::io::Result<JoinHandle<()>> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            info!(%endpoint, "listening for switches");
            Ok(tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            let ctx = ctx.clone();
                            tokio::spawn(async move {
                                if let Err(e) =
                                    session::run(stream, format!("tcp:{peer}"), ctx).await
                                {
                                    info!(%peer, error = %e, "session ended");
                                }
                            });
                        }
                        Err(e) => {
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }))
        }
        Endpoint::Unix(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            remove_stale_socket(path)?;
            let listener = UnixListener::bind(path)?;
            info!(%endpoint, "listening for switches");
            let name = endpoint.to_string();
            Ok(tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let ctx = ctx.clone();
                            let peer = name.clone();
                            tokio::spawn(async move {
                                if let Err(e) = session::run(stream, peer.clone(), ctx).await {
                                    info!(%peer, error = %e, "session ended");
                                }
                            });
                        }
                        Err(e) => {
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }))
        }
    }
}

/// A socket file left by an earlier run is removed; any other file is an error.
fn remove_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        )),
        Err(_) => Ok(()),
    }
}

/// Connects out to a switch's passive endpoint and keeps reconnecting
/// (backing off up to 5 s) for as long as the task runs.
pub fn connect(endpoint: Endpoint, ctx: Arc<SessionContext>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let peer = endpoint.to_string();
            let result = match &endpoint {
                Endpoint::Tcp(addr) => match TcpStream::connect(addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        backoff = Duration::from_millis(100);
                        session::run(s, peer.clone(), ctx.clone())
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                },
                Endpoint::Unix(path) => match UnixStream::connect(path).await {
                    Ok(s) => {
                        backoff = Duration::from_millis(100);
                        session::run(s, peer.clone(), ctx.clone())
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            if let Err(e) = result {
                info!(%peer, error = %e, retry_in = ?backoff, "switch connection failed");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    })
}
