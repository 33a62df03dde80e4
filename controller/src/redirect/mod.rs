//! Redirection: swapping hostile sources into the twin.
//!
//! `plan` turns a redirection into flows (pure).

pub mod plan;
