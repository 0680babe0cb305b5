//! The park service: Lync's Call Park application over standard SIP. Sans-IO; the
//! driver in `net/park_driver.rs` runs it. See docs/park-protocol.md.

mod bridge;
pub mod config;
pub mod orbits;
pub mod protocol;
pub mod service;
mod watch;

pub use service::{Output, ParkId, ParkService};

#[cfg(test)]
mod tests;
