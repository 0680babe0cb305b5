//! Orbit: a softphone with call park done right, and the park service it talks to.
//! See ARCHITECTURE.md for the parts and which may depend on which.

pub mod cli;
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
pub mod net;
pub mod park;
pub mod phone;
pub mod registrar;
pub mod sip;
pub mod ui;

#[cfg(test)]
mod sim;
