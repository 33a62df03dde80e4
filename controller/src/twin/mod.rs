//! The digital twin: planned from the inventory (`plan`, pure), built by the
//! hypervisor crate's backends, adopted across controller restarts.

pub mod flows;
pub mod plan;
