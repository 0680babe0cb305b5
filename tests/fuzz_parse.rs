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

use orbitphone::phone::account::Account;
use orbitphone::phone::{Engine, Output};
use orbitphone::sip::message::{self, ParseError};
use orbitphone::sip::transaction::{Output as TxOutput, T1, TransactionLayer, TxEvent};
use orbitphone::sip::transport::{Frame, Peer, StreamFramer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEFAULT_ITERATIONS: u64 = 200_000;
const DEFAULT_SEED: u64 = 0x4f72_6269_7446_757a; // "OrbitFuz"

fn source() -> Peer {
    Peer { transport: Transport::Udp, addr: SocketAddr::from(([127, 0, 0, 1], 5099)) }
}

fn engine() -> Engine {
    let account = Account {
        aor: "sip:user@example.com".into(),
        display_name: Some("Fuzz".into()),
        auth_user: "user".into(),
        password: Some("secret".into()),
        transport: Transport::Udp,
        outbound: None,
        register: false,
        expires: 600,
        auto_answer: true,
        park_uri: None,
        keepalive_secs: 0,
    };
    let local = HashMap::from([(Transport::Udp, SocketAddr::from(([127, 0, 0, 1], 5060)))]);
    Engine::new(account, local)
}

/// What the parser made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Answered,
    Dropped,
}

/// One input through every consumer of received bytes. Panics on any broken invariant.
fn exercise(data: &[u8]) -> Outcome {
    let now = Instant::now();
    let later = [now + T1, now + Duration::from_secs(40), now + Duration::from_secs(3600)];

    let parsed = message::parse(data);
    match &parsed {
        Ok(msg) => {
            let msg = msg.clone();
            let bytes = message::message_bytes(&msg);
            if let Err(e) = message::parse(&bytes) {
                panic!("accepted, but our own serialisation is refused ({e}):\n{}", String::from_utf8_lossy(&bytes));
            }
            let mut tl = TransactionLayer::new();
            tl.receive(now, msg, source());
            let mut requests = Vec::new();
            while let Some(out) = tl.poll_output() {
                match out {
                    TxOutput::Transmit { bytes, .. } => check_sent(&bytes),
                    TxOutput::Event(TxEvent::Request { key, request, .. }) => requests.push((key, request)),
                    TxOutput::Event(_) => {}
                }
            }
            for (key, request) in requests {
                for code in [100, 180, 200] {
                    tl.respond(now, &key, message::response_to(&request, code, Some("fuzz")));
                }
            }
            for t in later {
                tl.handle_timeout(t);
            }
            while let Some(out) = tl.poll_output() {
                if let TxOutput::Transmit { bytes, .. } = out {
                    check_sent(&bytes);
                }
            }
        }
        Err(err) => check_refusal(data, err),
    }

    let mut e = engine();
    e.handle_datagram(now, data, source());
    match &parsed {
        Ok(_) => drain(&mut e, now),
        Err(err) => {
            // Refused: the engine sends the parser's answer (which copies the broken
            // headers as they came, so it need not parse) and nothing else.
            let sent: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
            match (err.reply(), &sent[..]) {
                (None, []) => {}
                (Some(reply), [Output::Transmit { to, bytes }]) => {
                    assert_eq!(*to, source(), "answers go back to the source");
                    assert_eq!(bytes.get(..12), reply.get(..12), "the parser's answer is what is sent");
                }
                (reply, sent) => {
                    panic!("refused input: expected {reply:?} to be sent, engine did {sent:?}")
                }
            }
        }
    }
    for t in later {
        e.handle_timeout(t);
        drain(&mut e, t);
    }

    // The same bytes on a stream, arriving in two reads cut at a data-dependent point.
    let cut = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    let mut framer = StreamFramer::default();
    let mut framed = 0;
    for part in [&data[..cut], &data[cut..]] {
        framer.push(part);
        while let Some(frame) = framer.next_frame() {
            framed += match frame {
                Frame::Message(m) => {
                    assert!(!m.is_empty(), "empty frame");
                    if m != data {
                        let _ = message::parse(&m); // the whole input was parsed above
                    }
                    m.len()
                }
                Frame::Ping => 4,
                Frame::Pong => 2,
            };
        }
    }
    assert_eq!(framed + framer.pending(), data.len(), "the framer lost or invented bytes");
    match parsed {
        Ok(_) => Outcome::Accepted,
        Err(e) if e.reply().is_some() => Outcome::Answered,
        Err(_) => Outcome::Dropped,
    }
}

/// A refusal answers requests only, with a status the parser is meant to use.
fn check_refusal(data: &[u8], err: &ParseError) {
    let Some(reply) = err.reply() else { return };
    let reply = String::from_utf8_lossy(reply);
    let status = reply.get(8..11).unwrap_or_default();
    assert!(reply.starts_with("SIP/2.0 "), "{reply}");
    assert!(["400", "501", "505", "513"].contains(&status), "{status}: {reply}");
    assert!(!data.starts_with(b"SIP/"), "a response was answered: {reply}");
    assert!(!data.starts_with(b"ACK "), "an ACK was answered: {reply}");
    assert!(reply.ends_with("\r\n\r\n"), "{reply}");
}

/// Everything we send must be a message we would accept ourselves.
fn check_sent(bytes: &[u8]) {
    if let Err(e) = message::parse(bytes) {
        panic!("we sent a message we refuse ({e}):\n{}", String::from_utf8_lossy(bytes));
    }
}

fn drain(e: &mut Engine, now: Instant) {
    let mut steps = 0;
    while let Some(out) = e.poll_output() {
        steps += 1;
        assert!(steps < 10_000, "the engine does not stop producing output");
        match out {
            Output::Transmit { bytes, .. } => check_sent(&bytes),
            Output::AllocateMedia { call } => {
                e.media_allocated(now, call, SocketAddr::from(([127, 0, 0, 1], 40000)));
            }
            _ => {}
        }
    }
}

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
