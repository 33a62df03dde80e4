//! gemelo-hypervisor: turns a twin plan into running twin hosts.
//!
//! The plan's types (`plan`) describe what the digital twin runs; backends build
//! it (network namespaces on a twin OVS instance as the embedded default, libvirt
//! LXC / QEMU domains) and the decoy services (`decoy`) run inside twin hosts.
//! `twin` drives the backends (`netns`, which also owns the twin switch, then
//! every `backend::HostBackend`: `libvirt::Lxc`, `libvirt::Qemu`).
//! The controller depends on this crate, never the reverse.

pub mod backend;
pub mod decoy;
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
