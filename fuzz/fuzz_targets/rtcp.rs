//! Received RTCP bytes through the compound parser, an `RtcpSession` and SRTCP unprotect
//! (`orbitphone::fuzzing::exercise_rtcp`, also run by tests/fuzz_parse.rs). Run:
//! `cargo +nightly fuzz run rtcp` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbitphone::fuzzing::exercise_rtcp(data);
});
