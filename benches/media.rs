//! Media benchmarks (`cargo bench --bench media`); prints figures, no harness.
//!
//! 1. CPU per call: one direction of a call's media path for 60 s of audio, as the media
//!    task runs it (encode at the codec rate, jitter buffer on a virtual clock, decode or
//!    conceal, and for G.711 the 48 kHz ↔ 8 kHz conversion) — what one call costs us: we
//!    encode our side and decode theirs — as a share of one core's real time.
//! 2. Jitter buffer depth at 5 % and 20 % loss with 30 ms of jitter (each packet delayed
//!    by 0–30 ms, uniformly), over 60 s.
//! 3. Added latency of our own buffering at 0 % loss: a tone's onset at the sender's
//!    48 kHz input to its onset at the receiver's 48 kHz output, through codec,
//!    resamplers, jitter buffer and the 20 ms tick (network delay 1 ms).
//!
//! Under `cargo test --all-targets` (no `--bench` flag) it runs a 2 s smoke version.

use orbitphone::media::analysis::{sine, tone_onset};
use orbitphone::media::codec::{self, Decoder, Encoder};
use orbitphone::media::jitter::{Frame, JitterBuffer};
use orbitphone::media::negotiate::Codec;
use orbitphone::media::resample::{Downsampler, Upsampler};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Instant;

const BUS: usize = 960;

/// Speech-like test signal at 48 kHz: two gliding harmonics plus a little noise, with
/// 300 ms pauses every 1.5 s (so DTX-free encoders see both talk and silence).
fn speechy(secs: u32) -> Vec<i16> {
    let mut rng = StdRng::seed_from_u64(7);
    let n = 48000 * secs as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / 48000.0;
            if (t % 1.5) > 1.2 {
                return (rng.random::<f64>() * 40.0 - 20.0) as i16;
            }
            let f0 = 140.0 + 40.0 * (t * 0.7).sin();
            let v = 6000.0 * (2.0 * std::f64::consts::PI * f0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 2.7 * f0 * t).sin()
                + rng.random::<f64>() * 400.0
                - 200.0;
            v as i16
        })
        .collect()
}

/// One direction of a call: sender (bus → codec) and receiver (jitter → codec → bus).
struct Path {
    enc: Box<dyn Encoder>,
    dec: Box<dyn Decoder>,
    down: Downsampler,
    up: Upsampler,
    jitter: JitterBuffer,
    playout: VecDeque<i16>,
    ratio: usize,
}

impl Path {
    fn new(codec: &Codec) -> Self {
        let ratio = (48000 / codec::pcm_rate(codec.kind)) as usize;
        Path {
            enc: codec::encoder_for(codec, 20).unwrap(),
            dec: codec::decoder_for(codec, 20).unwrap(),
            down: Downsampler::new(ratio),
            up: Upsampler::new(ratio),
            jitter: JitterBuffer::new(codec.clock_rate, 20),
            playout: VecDeque::new(),
            ratio,
        }
    }

    fn encode(&mut self, bus: &[i16]) -> Vec<u8> {
        let pcm = self.down.process(bus);
        self.enc.encode(&pcm)
    }

    fn play(&mut self, now_ms: u64) -> Vec<i16> {
        while self.playout.len() < BUS {
            let pcm = match self.jitter.pop(now_ms) {
                Frame::Audio(p) => self.dec.decode(&p),
                Frame::Missing => {
                    let next = self.jitter.next_after_loss();
                    self.dec.conceal(next)
                }
                Frame::Empty => break,
            };
            self.playout.extend(self.up.process(&pcm));
        }
        let n = self.playout.len().min(BUS);
        let mut out: Vec<i16> = self.playout.drain(..n).collect();
        out.resize(BUS, 0);
        out
    }
}

/// CPU seconds for one direction over `input`, 0 % loss, packets arriving 1 ms later.
fn cpu_one_way(codec: &Codec, input: &[i16]) -> f64 {
    let mut path = Path::new(codec);
    let step = 960 / path.ratio as u32;
    let t0 = Instant::now();
    let mut sink = 0i64;
    for (i, frame) in input.chunks_exact(BUS).enumerate() {
        let now = i as u64 * 20;
        let payload = path.encode(frame);
        path.jitter.push(now + 1, i as u16, (i as u32).wrapping_mul(step), payload);
        let out = path.play(now + 20);
        sink += i64::from(out[0]);
    }
    std::hint::black_box(sink);
    t0.elapsed().as_secs_f64()
}

struct DepthFigures {
    mean_depth: f64,
    max_depth: u32,
    mean_buffered: f64,
    missing: u64,
    late: u64,
    frames: u64,
}

/// Jitter buffer alone on a 1 ms virtual clock: packets every 20 ms, `loss` dropped,
/// each delayed uniformly by 0..=jitter_ms.
fn depth_run(secs: u32, loss: f64, jitter_ms: u64, seed: u64) -> DepthFigures {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = secs * 50;
    let mut arrivals: Vec<(u64, u32)> = Vec::new();
    for i in 0..n {
        let lost = rng.random::<f64>() < loss;
        let delay = rng.random_range(0..=jitter_ms);
        if !lost {
            arrivals.push((1000 + u64::from(i) * 20 + delay, i));
        }
    }
    arrivals.sort();
    let mut jb = JitterBuffer::new(8000, 20);
    let (mut sum_depth, mut sum_buf, mut max_depth, mut pops) = (0u64, 0u64, 0u32, 0u64);
    let mut it = arrivals.iter().peekable();
    let end = 1000 + u64::from(n) * 20 + 300;
    for t in 0..end {
        while let Some(&(_, i)) = it.next_if(|(a, _)| *a == t) {
            jb.push(t, i as u16, i * 160, vec![0xff; 160]);
        }
        if t % 20 == 10 && t > 1000 {
            jb.pop(t);
            // Only count the steady part (after the first 5 s).
            if t > 6000 && t < end - 400 {
                sum_depth += u64::from(jb.depth_ms());
                sum_buf += u64::from(jb.buffered_ms());
                max_depth = max_depth.max(jb.depth_ms());
                pops += 1;
            }
        }
    }
    let s = jb.stats();
    DepthFigures {
        mean_depth: sum_depth as f64 / pops.max(1) as f64,
        max_depth,
        mean_buffered: sum_buf as f64 / pops.max(1) as f64,
        missing: s.missing,
        late: s.late,
        frames: s.played + s.missing,
    }
}

/// Tone onset delay through one direction at 0 % loss, in ms.
fn added_latency_ms(codec: &Codec) -> Option<f64> {
    let mut path = Path::new(codec);
    let step = 960 / path.ratio as u32;
    // 500 ms silence, then a 1 kHz tone, starting mid-frame (at 510 ms).
    let mut input = vec![0i16; 48000 * 51 / 100];
    input.extend(sine(1000.0, 48000, 1000, 0.5));
    input.resize(48000 * 2, 0);
    let mut output = Vec::new();
    for (i, frame) in input.chunks_exact(BUS).enumerate() {
        let now = i as u64 * 20;
        let payload = path.encode(frame);
        // Sent at the end of the tick that captured it, on the wire for 1 ms.
        path.jitter.push(now + 1, i as u16, (i as u32).wrapping_mul(step), payload);
        // The same tick plays: the receiver's tick runs right after arrival.
        output.extend(path.play(now + 1));
    }
    let a = tone_onset(&input, 48000, 1000.0)?;
    let b = tone_onset(&output, 48000, 1000.0)?;
    // Each tick's frame is captured over the 20 ms before it is sent: that capture time
    // is inherent to 20 ms packets, so it is reported separately.
    Some((b as f64 - a as f64) / 48.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs = if full { 60 } else { 2 };
    let input = speechy(secs);
    println!("media benchmark ({secs} s of audio per run{})", if full { "" } else { ", smoke mode" });

    for (name, codec) in [("opus", Codec::opus()), ("pcmu", Codec::pcmu()), ("pcma", Codec::pcma())] {
        // Warm up, then take the best of 3 to keep noise from other processes out.
        cpu_one_way(&codec, &input[..48000.min(input.len())]);
        let best = (0..3).map(|_| cpu_one_way(&codec, &input)).fold(f64::INFINITY, f64::min);
        // Per call we encode our microphone and decode the peer: one one-way path.
        let per_call = best;
        println!(
            "cpu/{name:5}: encode+jitter+decode{} {:.1} ms per {secs} s of call = {:.2} % of one core per call",
            if name == "opus" { "" } else { "+resample 48k<->8k" },
            best * 1000.0,
            per_call / f64::from(secs) * 100.0
        );
    }

    for loss in [0.05, 0.20] {
        let d = depth_run(secs.max(10), loss, 30, 42);
        println!(
            "jitter/{:2.0}% loss, 0-30 ms jitter: target depth mean {:.1} ms (max {} ms), buffered mean {:.1} ms, concealed {} of {} frames, late {}",
            loss * 100.0,
            d.mean_depth,
            d.max_depth,
            d.mean_buffered,
            d.missing,
            d.frames,
            d.late
        );
    }

    for (name, codec) in [("opus", Codec::opus()), ("pcmu", Codec::pcmu())] {
        match added_latency_ms(&codec) {
            Some(ms) => println!(
                "latency/{name:5}: tone onset in -> out {ms:.1} ms at 0 % loss (codec + resampling + jitter buffer; the receiver's tick phase adds 0-20 ms on a real link)"
            ),
            None => println!("latency/{name:5}: onset not found"),
        }
    }
}
