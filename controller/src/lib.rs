//! gemelo: an SDN deception system.
//!
//! An OpenFlow 1.3 controller that watches a production Open vSwitch fabric,
//! discovers what lives on it, builds a digital twin of it and swaps hostile
//! sources into that twin. The layers follow DESIGN.md's one-way data flow:
//! `openflow` (bytes) → `switch` (sessions) → `pipeline`/`flowset` (what flows
//! gemelo wants) → `api` (REST), with `store` holding state and `lab` building
//! the embedded production network the demo and the tests run on.

pub mod lab;
pub mod openflow;
