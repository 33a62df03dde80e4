//! gemelo-hypervisor: turns a twin plan into running twin hosts.
//!
//! The plan's types (`plan`) describe what the digital twin runs; `fabric`
//! runs the twin switch every twin host attaches to (with its tunnel,
//! controller and observer); backends build the hosts (`netns`, network
//! namespaces, the embedded default; `libvirt`, LXC / QEMU domains), and the
//! decoy services (`decoy`) run inside them. `twin` drives the fabric and
//! every backend, all alike through `backend::HostBackend`.
//! The controller depends on this crate, never the reverse.

pub mod backend;
pub mod decoy;
pub mod fabric;
pub mod host;
pub mod launch;
pub mod libvirt;
pub mod netns;
pub mod plan;
pub mod status;
pub mod tunnel;
pub mod twin;

pub use decoy::{launches, run_decoy, DecoyError};
pub use launch::Launch;
pub use plan::{
    Backend, DecoyMode, DecoySpec, TwinHost, TwinInterface, TwinPlan, TwinSegment, TwinSwitch,
};
pub use status::{HostState, TwinHostStatus, TwinState, TwinStatus};
