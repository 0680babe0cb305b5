//! Between a sound card and the 48 kHz mono mix bus: channel down/up-mixing, sample
//! rate conversion (rubato's polynomial `Async` resampler, chunked), and the size of
//! the lock-free rings the audio callbacks use. Sans-IO: the media task feeds samples
//! in and takes samples out on its own 20 ms clock; nothing here runs in a callback.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Adjustable, Async, FixedAsync, Indexing, PolynomialDegree, Resampler};
use std::collections::VecDeque;

/// Capacity in samples of a callback ring holding `ms` of audio at `rate` × `channels`,
/// never less than two callback periods of `period_frames` (when the device says).
pub fn ring_capacity(rate: u32, channels: u16, ms: u32, period_frames: Option<u32>) -> usize {
    let ch = usize::from(channels.max(1));
    let by_time = rate as usize * ms as usize / 1000 * ch;
    let by_period = period_frames.map_or(0, |p| 2 * p as usize * ch);
    by_time.max(by_period).max(ch * 64)
}

/// Averages interleaved frames of `channels` into mono, appending to `out`.
pub fn downmix(interleaved: &[f32], channels: u16, out: &mut Vec<f32>) {
    let ch = usize::from(channels.max(1));
    if ch == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / ch as f32;
    out.extend(interleaved.chunks_exact(ch).map(|f| f.iter().sum::<f32>() * scale));
}

/// Copies each mono sample to every one of `channels`, appending to `out`.
pub fn upmix(mono: &[f32], channels: u16, out: &mut Vec<f32>) {
    let ch = usize::from(channels.max(1));
    out.reserve(mono.len() * ch);
    for s in mono {
        out.extend(std::iter::repeat_n(*s, ch));
    }
}

/// `i16` bus samples to `f32` in [-1, 1).
pub fn to_f32(pcm: &[i16]) -> impl Iterator<Item = f32> + '_ {
    pcm.iter().map(|s| f32::from(*s) / 32768.0)
}

/// `f32` to `i16`, clipped.
pub fn to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Largest drift correction [`RateConverter::steer`] applies (0.5 %: ~9 cents, inaudible on speech).
pub const MAX_STEER: f64 = 0.005;
/// Correction per unit of relative backlog error.
const STEER_GAIN: f64 = 0.01;
/// Smoothing of the backlog the steering looks at (device periods arrive in bursts).
const STEER_SMOOTHING: f64 = 0.05;

/// Mono rate conversion in a stream: push any number of samples at `from` Hz, pop them
/// at `to` Hz. Equal rates pass straight through unless the converter is
/// [adaptive](RateConverter::adaptive). Output waiting to be popped is capped at
/// `max_buffered` samples (the oldest are dropped), so a device whose clock runs fast
/// (or an unpaced ALSA null device) never grows the delay without bound.
pub struct RateConverter {
    resampler: Option<Async<f32>>,
    smoothed_backlog: Option<f64>,
    chunk: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    nominal: f64,
    out: VecDeque<f32>,
    max_buffered: usize,
    dropped: u64,
}

/// A resampler could not be built for these rates.
#[derive(Debug, thiserror::Error)]
#[error("cannot convert {from} Hz to {to} Hz: {reason}")]
pub struct RateError {
    from: u32,
    to: u32,
    reason: String,
}

impl RateConverter {
    /// A converter from `from` Hz to `to` Hz, buffering at most `max_buffered` output samples.
    pub fn new(from: u32, to: u32, max_buffered: usize) -> Result<RateConverter, RateError> {
        Self::build(from, to, max_buffered, false)
    }

    /// Like [`RateConverter::new`], but always resampling (even at equal nominal rates),
    /// so [`RateConverter::steer`] can follow a device clock that drifts from ours.
    pub fn adaptive(from: u32, to: u32, max_buffered: usize) -> Result<RateConverter, RateError> {
        Self::build(from, to, max_buffered, true)
    }

    fn build(from: u32, to: u32, max_buffered: usize, adaptive: bool) -> Result<RateConverter, RateError> {
        let err = |reason: String| RateError { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("a rate is zero".into()));
        }
        // 10 ms of input per chunk: small enough for latency, big enough to be cheap.
        let chunk = (from as usize / 100).max(16);
        let resampler = if from == to && !adaptive {
            None
        } else {
            let r = Async::<f32>::new_poly(
                f64::from(to) / f64::from(from),
                1.1,
                PolynomialDegree::Cubic,
                chunk,
                1,
                FixedAsync::Input,
            )
            .map_err(|e| err(e.to_string()))?;
            Some(r)
        };
        let scratch = vec![0.0; resampler.as_ref().map_or(0, |r| r.output_frames_max())];
        Ok(RateConverter {
            resampler,
            smoothed_backlog: None,
            chunk,
            pending: Vec::with_capacity(chunk * 2),
            nominal: f64::from(to) / f64::from(from),
            scratch,
            out: VecDeque::with_capacity(max_buffered),
            max_buffered: max_buffered.max(1),
            dropped: 0,
        })
    }

    /// Feeds input samples; converts every whole chunk.
    pub fn push(&mut self, input: &[f32]) {
        let Some(r) = self.resampler.as_mut() else {
            self.out.extend(input);
            self.trim();
            return;
        };
        self.pending.extend_from_slice(input);
        let indexing = Indexing::new();
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            let inp = &self.pending[start..start + self.chunk];
            let (Ok(ia), Ok(mut oa)) = (
                InterleavedSlice::new(inp, 1, self.chunk),
                InterleavedSlice::new_mut(&mut self.scratch, 1, r.output_frames_max()),
            ) else {
                // The sizes come from the resampler itself; skip the chunk if they ever disagree.
                start += self.chunk;
                continue;
            };
            if let Ok((_, written)) = r.process_into_buffer(&ia, &mut oa, Some(&indexing)) {
                self.out.extend(&self.scratch[..written]);
            }
            start += self.chunk;
        }
        self.pending.drain(..start);
        self.trim();
    }

    fn trim(&mut self) {
        let over = self.out.len().saturating_sub(self.max_buffered);
        if over > 0 {
            self.out.drain(..over);
            self.dropped += over as u64;
        }
    }

    /// Drift compensation: nudges the conversion ratio (at most ±[`MAX_STEER`]) so that
    /// `backlog` — output-rate samples waiting between this converter and their consumer —
    /// tends to `target`. More waiting than wanted means the producer's clock is fast:
    /// produce a little less, and the other way round. Call once per tick.
    pub fn steer(&mut self, backlog: usize, target: usize) {
        let Some(r) = self.resampler.as_mut() else { return };
        let b = backlog as f64;
        let smoothed = match self.smoothed_backlog {
            Some(s) => s + STEER_SMOOTHING * (b - s),
            None => b,
        };
        self.smoothed_backlog = Some(smoothed);
        let target = target.max(1) as f64;
        let rel = 1.0 + (STEER_GAIN * (target - smoothed) / target).clamp(-MAX_STEER, MAX_STEER);
        let _ = r.set_resample_ratio_relative(rel, true);
    }

    /// The current ratio relative to the nominal one (1.0 = no correction).
    pub fn correction(&self) -> f64 {
        self.resampler.as_ref().map_or(1.0, |r| r.resample_ratio()) / self.nominal_ratio()
    }

    fn nominal_ratio(&self) -> f64 {
        self.nominal
    }

    /// Converted samples ready to pop.
    pub fn available(&self) -> usize {
        self.out.len()
    }

    /// Samples dropped so far because the output side was not drained fast enough.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pops up to `n` samples into `dst` (appending); returns how many.
    pub fn pop_into(&mut self, n: usize, dst: &mut Vec<f32>) -> usize {
        let n = n.min(self.out.len());
        dst.extend(self.out.drain(..n));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis;

    fn tone(rate: u32, freq: f32, n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    #[test]
    fn rings_hold_the_asked_time_and_two_periods() {
        assert_eq!(ring_capacity(48000, 1, 100, None), 4800);
        assert_eq!(ring_capacity(44100, 2, 100, None), 8820);
        // A device with huge periods gets room for two of them.
        assert_eq!(ring_capacity(48000, 2, 20, Some(4096)), 2 * 4096 * 2);
        assert!(ring_capacity(8000, 1, 0, None) >= 64);
    }

    #[test]
    fn mixes_channels() {
        let mut mono = Vec::new();
        downmix(&[1.0, 0.0, 0.5, 0.5], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.5]);
        let mut st = Vec::new();
        upmix(&[0.25, -0.25], 2, &mut st);
        assert_eq!(st, vec![0.25, 0.25, -0.25, -0.25]);
        assert_eq!(to_i16(1.5), 32767);
        assert_eq!(to_i16(-1.0), -32768);
        assert_eq!(to_f32(&[16384]).next(), Some(0.5));
    }

    #[test]
    fn same_rate_passes_through() {
        let mut c = RateConverter::new(48000, 48000, 10_000).unwrap();
        c.push(&[0.1, 0.2, 0.3]);
        let mut out = Vec::new();
        assert_eq!(c.pop_into(10, &mut out), 3);
        assert_eq!(out, vec![0.1, 0.2, 0.3]);
    }

    /// 44.1 kHz → 48 kHz → 44.1 kHz keeps a 440 Hz tone at 440 Hz and the sample count
    /// in proportion to the rates.
    #[test]
    fn converts_rates_keeping_the_pitch() {
        let input = tone(44100, 440.0, 44100);
        let mut up = RateConverter::new(44100, 48000, 100_000).unwrap();
        // Odd push sizes, as device callbacks deliver them.
        for piece in input.chunks(337) {
            up.push(piece);
        }
        let n = up.available();
        assert!((47000..=48000).contains(&n), "{n} samples at 48 kHz from 1 s at 44.1 kHz");
        let mut at48 = Vec::new();
        up.pop_into(n, &mut at48);
        let pcm: Vec<i16> = at48.iter().map(|s| to_i16(*s)).collect();
        let f = analysis::dominant_frequency(&pcm[4800..], 48000);
        assert!((f - 440.0).abs() < 5.0, "dominant {f} Hz");
        let mut down = RateConverter::new(48000, 8000, 100_000).unwrap();
        down.push(&at48);
        let mut at8 = Vec::new();
        let m = down.available();
        down.pop_into(m, &mut at8);
        let pcm8: Vec<i16> = at8.iter().map(|s| to_i16(*s)).collect();
        let f8 = analysis::dominant_frequency(&pcm8[800..], 8000);
        assert!((f8 - 440.0).abs() < 5.0, "dominant {f8} Hz at 8 kHz");
    }

    /// Cost of one direction for a 44.1 kHz card: 60 s in 20 ms steps, as the media
    /// task does it. Loose bound (debug build, shared machine); the figure is printed.
    #[test]
    fn conversion_cost_is_a_small_fraction_of_real_time() {
        let mut c = RateConverter::new(48000, 44100, 10_000).unwrap();
        let frame = tone(48000, 440.0, 960);
        let mut out = Vec::with_capacity(2000);
        let start = std::time::Instant::now();
        for _ in 0..3000 {
            c.push(&frame);
            out.clear();
            let n = c.available();
            c.pop_into(n, &mut out);
        }
        let spent = start.elapsed();
        eprintln!(
            "48 kHz -> 44.1 kHz, 60 s of audio: {spent:?} ({:.3} % of real time)",
            spent.as_secs_f64() / 60.0 * 100.0
        );
        assert!(spent < std::time::Duration::from_secs(3), "{spent:?}");
        assert_eq!(c.dropped(), 0, "drained every tick, nothing dropped");
    }

    /// Simulates a capture device whose clock is off by `ppm` against our 20 ms tick for
    /// `secs`; returns (samples dropped, ticks that came up short after the first 10 s,
    /// final correction).
    fn drift(ppm: f64, secs: u32, steer: bool) -> (u64, u32, f64) {
        let mut c = RateConverter::adaptive(48000, 48000, 3 * 960).unwrap();
        let per_tick = 960.0 * (1.0 + ppm / 1e6);
        let (mut owed, mut short, mut phase) = (0.0f64, 0u32, 0.0f64);
        let mut out = Vec::with_capacity(960);
        for tick in 0..secs * 50 {
            owed += per_tick;
            // Device periods of 1024 frames arrive in bursts, as ALSA delivers them.
            let mut burst = Vec::new();
            while owed >= 1024.0 {
                for _ in 0..1024 {
                    burst.push((phase.sin() * 0.3) as f32);
                    phase += 0.05;
                }
                owed -= 1024.0;
            }
            c.push(&burst);
            out.clear();
            if c.pop_into(960, &mut out) < 960 && tick > 500 {
                short += 1;
            }
            if steer {
                c.steer(c.available(), 960);
            }
        }
        (c.dropped(), short, c.correction())
    }

    #[test]
    fn steering_follows_a_drifting_device_clock() {
        // Unsteered, a device 0.2 % fast overflows the backlog and one 0.2 % slow runs dry.
        let (dropped, _, _) = drift(2000.0, 120, false);
        assert!(dropped > 0, "the fast device must overflow without steering");
        let (_, short, _) = drift(-2000.0, 120, false);
        assert!(short > 0, "the slow device must run dry without steering");
        for ppm in [2000.0, -2000.0, 300.0, -300.0] {
            let (dropped, short, corr) = drift(ppm, 120, true);
            assert_eq!((dropped, short), (0, 0), "{ppm} ppm: dropped {dropped}, {short} short ticks");
            // The correction settles near the clock error (a fast device is slowed down).
            assert!((corr - 1.0 / (1.0 + ppm / 1e6)).abs() < 0.001, "{ppm} ppm: correction {corr}");
        }
    }

    #[test]
    fn output_is_capped_and_counts_drops() {
        let mut c = RateConverter::new(16000, 48000, 960).unwrap();
        c.push(&vec![0.0; 16000]);
        assert_eq!(c.available(), 960);
        assert!(c.dropped() > 40_000, "{}", c.dropped());
    }
}
