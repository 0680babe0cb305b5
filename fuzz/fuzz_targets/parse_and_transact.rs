//! Received bytes through every consumer: `message::parse`, a `TransactionLayer` (as from
//! a UDP peer), an `Engine` via `handle_datagram`, and the `StreamFramer` (input cut in
//! two reads). Any panic is a crash; so is a broken invariant: a refusal answering a
//! response or an ACK, or with an unexpected status; an accepted message that we cannot
//! serialise and parse back; a message we send that we would refuse ourselves.
//!
//! The harness is `orbitphone::fuzzing::exercise`, the same one tests/fuzz_parse.rs
//! runs in CI. Run: `cargo +nightly fuzz run parse_and_transact
//! fuzz/corpus/parse_and_transact tests/torture/valid tests/torture/invalid` from the
//! repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbitphone::fuzzing::exercise(data);
});
