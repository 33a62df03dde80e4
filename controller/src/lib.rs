//! gemelo: an SDN deception system.
//!
//! An OpenFlow 1.3 controller that watches a production Open vSwitch fabric,
//! discovers what lives on it, builds a digital twin of it and swaps hostile
//! sources into that twin. The layers follow DESIGN.md's one-way data flow:
//! `openflow` (bytes) → `switch` (sessions and handles) → `pipeline` and
//! `flowset` (what flows gemelo wants, pure) → `fabric` (reconciling switches)
//! → `api` (REST), with `store` holding state and `lab` building the embedded
//! production network that the demo and the tests run on.

pub mod api;
pub mod client;
pub mod detection;
pub mod discovery;
pub mod events;
pub mod fabric;
pub mod flowset;
pub mod lab;
pub mod openflow;
pub mod pipeline;
pub mod redirect;
pub mod serve;
pub mod store;
pub mod switch;
pub mod trigger;
pub mod twin;
