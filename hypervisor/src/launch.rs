//! What a backend starts inside a twin host: the contract between the decoy
//! module (which decides, from a host's `DecoySpec`s, which daemons or
//! emulations run and with which configuration) and the backends (which start
//! them inside the host and wait until they listen).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One process to start inside a twin host, in the foreground.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// Unique per host, e.g. "sshd", "decoy-modbus": names its pid file and log.
    pub name: String,
    /// Absolute program path first; it must stay in the foreground (`sshd -D`).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Written before anything starts: (path, contents, mode). A relative
    /// path is relative to the host dir the backend passed in.
    pub files: Vec<(PathBuf, Vec<u8>, u32)>,
    /// Sockets it must open before the host counts as ready: ("tcp"|"udp", port).
    pub listens: Vec<(String, u16)>,
}
