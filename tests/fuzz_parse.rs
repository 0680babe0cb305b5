//! Deterministic mutation fuzzing of the receive path, for CI (which runs only
//! `cargo test`): the RFC 4475 torture messages (tests/torture) are mutated with a fixed
//! seed — bit flips, interesting bytes, truncation, splices between messages, duplicated,
//! dropped and swapped lines, overlarge numbers, oversized messages — and every result goes
//! through `message::parse`, a `TransactionLayer`, an `Engine` and the `StreamFramer`, the
//! same path as the cargo-fuzz target fuzz/fuzz_targets/parse_and_transact.rs (keep the two
//! `exercise` functions in step).
//!
//! Beyond "no panic", it checks what must hold for any input: a refusal's answer is a
//! 400/501/505/513 (never an answer to a response or an ACK), whatever we accept we can
//! serialise and parse back, and every message the engine sends parses.
//!
//! `ORBIT_FUZZ_ITERATIONS` and `ORBIT_FUZZ_SEED` change the run length and seed.

use orbitphone::fuzzing::{Outcome, exercise, exercise_rtcp};
use orbitphone::sip::message;
use std::path::PathBuf;
use std::time::Instant;

const DEFAULT_ITERATIONS: u64 = 200_000;
const DEFAULT_SEED: u64 = 0x4f72_6269_7446_757a; // "OrbitFuz"

/// SplitMix64: tiny, seedable, and the same on every platform and rand version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const INTERESTING: &[u8] = b"\0\r\n \t:;,=\"<>\\%@/?*\x7f\xff\xc3";
const NUMBERS: &[&str] =
    &["0", "-1", "65536", "4294967296", "2147483648", "99999999999999999999999", "00000000000000000000001", "1.5", ""];

fn lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// One random mutation of `data`; `corpus` supplies splice material.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING);
        }
        2 => {
            let i = rng.below(len + 1);
            data.insert(i, *rng.pick(INTERESTING));
        }
        3 if len > 0 => data.truncate(rng.below(len)),
        4 if len > 0 => {
            let (i, n) = (rng.below(len), rng.below(16) + 1);
            data.drain(i..(i + n).min(len));
        }
        5 => {
            // splice: our head, another message's tail
            let other = rng.pick(corpus);
            let (i, j) = (rng.below(len + 1), rng.below(other.len() + 1));
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        6 | 7 => {
            // duplicate a header line, possibly many times, somewhere else
            let mut ls = lines(data);
            if ls.len() > 2 {
                let line = ls[1 + rng.below(ls.len() - 1)].clone();
                // now and then enough copies to pass MAX_MESSAGE_SIZE (the 513 path)
                let copies = match rng.below(400) {
                    0 => message::MAX_MESSAGE_SIZE / line.len().max(1) + 1,
                    _ => 1 + rng.below(3),
                };
                let at = 1 + rng.below(ls.len() - 1);
                ls.splice(at..at, std::iter::repeat_n(line, copies));
                *data = ls.concat();
            }
        }
        8 => {
            // drop or swap lines
            let mut ls = lines(data);
            if ls.len() > 1 {
                let (a, b) = (rng.below(ls.len()), rng.below(ls.len()));
                if rng.below(2) == 0 {
                    ls.remove(a);
                } else {
                    ls.swap(a, b);
                }
                *data = ls.concat();
            }
        }
        9 => {
            // replace a run of digits (CSeq, Content-Length, Max-Forwards, ports, codes)
            let runs: Vec<(usize, usize)> = {
                let mut runs = Vec::new();
                let mut i = 0;
                while i < len {
                    if data[i].is_ascii_digit() {
                        let start = i;
                        while i < len && data[i].is_ascii_digit() {
                            i += 1;
                        }
                        runs.push((start, i));
                    }
                    i += 1;
                }
                runs
            };
            if !runs.is_empty() {
                let (a, b) = *rng.pick(&runs);
                data.splice(a..b, rng.pick(NUMBERS).bytes());
            }
        }
        10 => {
            // insert a slice of another message anywhere (headers into bodies and back)
            let other = rng.pick(corpus);
            let (i, j) = (rng.below(other.len() + 1), rng.below(other.len() + 1));
            let at = rng.below(len + 1);
            data.splice(at..at, other[i.min(j)..i.max(j)].iter().copied());
        }
        _ => {
            // CRLF damage: bare LF, bare CR, or folding
            let targets: Vec<usize> =
                data.windows(2).enumerate().filter(|(_, w)| w == b"\r\n").map(|(i, _)| i).collect();
            if !targets.is_empty() {
                let i = *rng.pick(&targets);
                match rng.below(3) {
                    0 => {
                        data.remove(i);
                    }
                    1 => {
                        data.remove(i + 1);
                    }
                    _ => data.insert(i + 2, b' '),
                }
            }
        }
    }
}

fn load_torture(kind: &str, name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    std::fs::read(root.join(kind).join(format!("{name}.sip"))).unwrap()
}

fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    let mut files: Vec<PathBuf> = ["valid", "invalid"]
        .iter()
        .flat_map(|kind| std::fs::read_dir(root.join(kind)).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn torture_seeds_pass_unmutated() {
    let corpus = corpus();
    assert_eq!(corpus.len(), 32, "RFC 4475 §3.1.1 and §3.1.2");
    for seed in &corpus {
        exercise(seed);
    }
}

/// Inputs the fuzzers found, kept as regressions (both were accepted by the pre-scan and
/// then broke the "whatever we accept we can send back" invariant).
#[test]
fn fuzzer_findings_stay_fixed() {
    let lwsdisp = String::from_utf8(load_torture("valid", "lwsdisp")).unwrap();
    let badinv01 = String::from_utf8(load_torture("invalid", "badinv01")).unwrap();
    let found: [(&str, String); 2] = [
        // tests/fuzz_parse.rs: a bare LF inside From; the typed parser ended the line there.
        ("bare LF", lwsdisp.replace("<sip:caller@example.com>", "<sip:caller@\nexample.com>")),
        // cargo-fuzz: only empty elements after the commas; a received= appended to that
        // Via turned it into an unparseable one.
        ("empty Via elements", badinv01.replace(";;,;,,", ";;.;,,")),
    ];
    for (what, input) in found {
        let err = message::parse(input.as_bytes()).expect_err(what);
        assert!(err.reply().unwrap().starts_with(b"SIP/2.0 400 "), "{what}");
        exercise(input.as_bytes());
    }
}

#[test]
fn mutated_torture_messages_never_break_the_receive_path() {
    let corpus = corpus();
    let iterations = env_u64("ORBIT_FUZZ_ITERATIONS", DEFAULT_ITERATIONS);
    let seed = env_u64("ORBIT_FUZZ_SEED", DEFAULT_SEED);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) as u64;
    let started = Instant::now();
    // Iteration i is generated from (seed, i) alone, so a failure is reproducible however
    // the iterations are shared among the worker threads.
    let counts: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..workers)
            .map(|w| {
                let corpus = &corpus;
                scope.spawn(move || {
                    let (mut accepted, mut answered) = (0u64, 0u64);
                    for i in (w..iterations).step_by(workers as usize) {
                        match run_one(seed, i, corpus) {
                            Outcome::Accepted => accepted += 1,
                            Outcome::Answered => answered += 1,
                            Outcome::Dropped => {}
                        }
                    }
                    (accepted, answered)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let accepted: u64 = counts.iter().map(|c| c.0).sum();
    let answered: u64 = counts.iter().map(|c| c.1).sum();
    eprintln!(
        "{iterations} mutated inputs in {:.1?} on {workers} threads: {accepted} accepted, \
         {answered} refused with an answer",
        started.elapsed()
    );
    // The mutations must not be so wild that nothing gets past the pre-scan.
    assert!(accepted > iterations / 20, "only {accepted} of {iterations} inputs parsed");
    assert!(answered > iterations / 20, "only {answered} of {iterations} inputs were answered");
}

/// Mutated input number `i` of the run seeded with `seed`, through [`exercise`]; on a
/// broken invariant the input is saved to the temp dir and the panic names it.
fn run_one(seed: u64, i: u64, corpus: &[Vec<u8>]) -> Outcome {
    let mut rng = Rng(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut data = rng.pick(corpus).clone();
    for _ in 0..=rng.below(4) {
        mutate(&mut rng, &mut data, corpus);
    }
    match std::panic::catch_unwind(|| exercise(&data)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let path = std::env::temp_dir().join(format!("orbit-fuzz-{seed:x}-{i}.sip"));
            let _ = std::fs::write(&path, &data);
            let message = panic.downcast_ref::<String>().map(String::as_str).or(panic.downcast_ref::<&str>().copied());
            panic!(
                "ORBIT_FUZZ_SEED={seed} iteration {i} failed; input saved to {} ({message:?})\n{}",
                path.display(),
                String::from_utf8_lossy(&data)
            )
        }
    }
}

/// RTCP: mutated compound packets (SR with a block, SDES, BYE; RR; APP) and random bytes
/// through [`exercise_rtcp`]; enough of them must still parse to test the accepting paths.
#[test]
fn mutated_rtcp_never_breaks_the_receive_path() {
    use orbitphone::media::rtcp::{ReportBlock, RtcpPacket, SdesChunk, SenderReport, build_compound};
    let block = ReportBlock {
        ssrc: 2,
        fraction_lost: 3,
        cumulative_lost: -4,
        extended_highest_seq: 5,
        jitter: 6,
        lsr: 7,
        dlsr: 8,
    };
    let corpus = [
        build_compound(&[
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 2,
                ntp: 0x1234_5678_9abc_def0,
                rtp_timestamp: 9,
                packet_count: 10,
                octet_count: 11,
                reports: vec![ReportBlock { ssrc: 1, ..block }],
            }),
            RtcpPacket::Sdes(vec![SdesChunk { ssrc: 2, items: vec![(1, b"bob@example.com".to_vec())] }]),
            RtcpPacket::Bye { ssrcs: vec![2], reason: Some(b"done".to_vec()) },
        ]),
        build_compound(&[
            RtcpPacket::ReceiverReport { ssrc: 2, reports: vec![block, block] },
            RtcpPacket::Other { pt: 204, count: 1, body: b"\0\0\0\x02nameDATA".to_vec() },
        ]),
    ];
    let mut rng = Rng(env_u64("ORBIT_FUZZ_SEED", DEFAULT_SEED));
    let mut parsed = 0;
    let n = 50_000;
    for _ in 0..n {
        let mut data = if rng.below(5) == 0 {
            (0..rng.below(100)).map(|_| rng.next() as u8).collect()
        } else {
            rng.pick(&corpus).clone()
        };
        for _ in 0..=rng.below(3) {
            if data.is_empty() {
                break;
            }
            let at = rng.below(data.len());
            match rng.below(4) {
                0 => data[at] = rng.next() as u8,
                1 => data[at] ^= 1 << rng.below(8),
                2 => data.truncate(at),
                _ => data.insert(at, rng.next() as u8),
            }
        }
        if exercise_rtcp(&data) {
            parsed += 1;
        }
    }
    assert!(parsed > n / 20, "only {parsed} of {n} RTCP inputs parsed");
}
