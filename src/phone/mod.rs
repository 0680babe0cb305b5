//! The phone engine: accounts, registration, calls, transfer and the park client,
//! driven by commands and reporting events. Sans-IO; `net/` runs it.

pub mod account;
pub mod api;
pub mod call;
mod calls;
pub mod engine;
mod park_client;
mod park_extension;
pub mod session;
mod transfer;

#[cfg(test)]
mod tests;

pub use api::{AudioDevice, AudioRole, CallNo, CallStats, Command, Event};
pub use engine::{Engine, Output};
