//! Real-peer integration test harness: Kamailio (registrar/proxy), baresip and linphonec,
//! all headless on 127.0.0.1 with free ports and a fresh temp dir per instance.
//!
//! Use from an integration test file with `mod common;` (tests/xyz.rs) and then
//! `use common::*;`. Only std + serde_json. See tests/common/README.md for how it works
//! and for the peers' quirks.
//!
//! Every peer is killed (whole process group) when its handle is dropped, and its temp dir
//! is removed — unless the test is panicking (or `ORBIT_KEEP_TEMP=1`), in which case the
//! temp dir is kept and its path plus the tail of the peer's log are printed to stderr.
#![allow(dead_code, unused_imports)]

pub mod baresip;
pub mod kamailio;
pub mod linphonec;
pub mod orbit;
pub mod park;
pub mod ports;
pub mod process;
pub mod procstat;
pub mod sipp;
pub mod wav;

pub use baresip::{Baresip, BaresipOpts, Codecs};
pub use kamailio::Kamailio;
pub use linphonec::{Linphonec, LinphonecOpts};
pub use orbit::Orbit;
pub use park::ParkProc;
pub use ports::{free_port, free_port_block};
pub use process::{TempDir, require_tool, tool_available, wait_until};
pub use wav::{read_wav, wav_dominant_frequency, wav_duration_secs, wav_rms, write_silence_wav, write_tone_wav};

/// The SIP domain / digest realm every peer of the harness uses.
pub const DOMAIN: &str = "127.0.0.1";
