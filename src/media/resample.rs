//! Integer-ratio resampling between the 48 kHz mix bus and a codec's rate (8 kHz for
//! G.711): a windowed-sinc low-pass FIR, run polyphase when interpolating and only at
//! the kept output samples when decimating. Stateful, so consecutive 20 ms frames join
//! without clicks. The delay is half the filter length (about 1.5 ms at 48 kHz).

/// Filter taps per output phase; 24 gives a ~1.8 kHz transition band at ratio 6 and
/// ~75 dB stop-band rejection with a Blackman window.
const TAPS_PER_PHASE: usize = 24;
/// Cutoff as a share of the low rate's Nyquist frequency (3.4 kHz at 8 kHz).
const CUTOFF: f64 = 0.85;

fn design(factor: usize) -> Vec<f32> {
    let n = TAPS_PER_PHASE * factor;
    let fc = CUTOFF / (2.0 * factor as f64); // cycles per high-rate sample
    let mid = (n as f64 - 1.0) / 2.0;
    let mut taps: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - mid;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
            };
            let w = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n as f64 - 1.0)).cos()
                + 0.08 * (4.0 * std::f64::consts::PI * i as f64 / (n as f64 - 1.0)).cos();
            sinc * w
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    for t in &mut taps {
        *t /= sum;
    }
    taps.into_iter().map(|t| t as f32).collect()
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Lowers the rate by an integer factor (e.g. 48000 → 8000).
#[derive(Debug, Clone)]
pub struct Downsampler {
    factor: usize,
    taps: Vec<f32>,
    /// The last `taps.len() - 1` input samples, oldest first.
    history: Vec<f32>,
    /// Input samples to skip before the next kept one.
    skip: usize,
}

impl Downsampler {
    /// A decimator by `factor` (1 passes samples through).
    pub fn new(factor: usize) -> Self {
        let factor = factor.max(1);
        let taps = if factor == 1 { vec![1.0] } else { design(factor) };
        Downsampler { factor, history: vec![0.0; taps.len() - 1], taps, skip: 0 }
    }

    /// Filters and decimates `input`; 960 samples in give 160 out at factor 6.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.factor == 1 {
            return input.to_vec();
        }
        let hist = self.history.len();
        let mut buf = std::mem::take(&mut self.history);
        buf.extend(input.iter().map(|&s| f32::from(s)));
        let mut out = Vec::with_capacity(input.len() / self.factor + 1);
        let mut i = self.skip;
        while i < input.len() {
            // Output aligned with input sample i: taps over buf[i ..= i + hist].
            let window = &buf[i..=i + hist];
            let acc: f32 = window.iter().rev().zip(&self.taps).map(|(x, h)| x * h).sum();
            out.push(to_i16(acc));
            i += self.factor;
        }
        self.skip = i - input.len();
        self.history = buf.split_off(buf.len() - hist);
        out
    }
}

/// Raises the rate by an integer factor (e.g. 8000 → 48000).
#[derive(Debug, Clone)]
pub struct Upsampler {
    factor: usize,
    /// `phases[p][k]` = `factor * h[k * factor + p]`.
    phases: Vec<Vec<f32>>,
    /// The last `TAPS_PER_PHASE` input samples, newest last.
    history: Vec<f32>,
}

impl Upsampler {
    /// An interpolator by `factor` (1 passes samples through).
    pub fn new(factor: usize) -> Self {
        let factor = factor.max(1);
        if factor == 1 {
            return Upsampler { factor, phases: Vec::new(), history: Vec::new() };
        }
        let taps = design(factor);
        let phases =
            (0..factor).map(|p| (0..TAPS_PER_PHASE).map(|k| taps[k * factor + p] * factor as f32).collect()).collect();
        Upsampler { factor, phases, history: vec![0.0; TAPS_PER_PHASE] }
    }

    /// Interpolates `input`; 160 samples in give 960 out at factor 6.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.factor == 1 {
            return input.to_vec();
        }
        let mut out = Vec::with_capacity(input.len() * self.factor);
        for &s in input {
            self.history.rotate_left(1);
            *self.history.last_mut().expect("history is never empty") = f32::from(s);
            for phase in &self.phases {
                let acc: f32 = self.history.iter().rev().zip(phase).map(|(x, h)| x * h).sum();
                out.push(to_i16(acc));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis::{dominant_frequency, rms_dbfs, sine};

    #[test]
    fn down_keeps_voice_band_and_removes_what_would_alias() {
        let mut d = Downsampler::new(6);
        let tone = sine(1000.0, 48000, 500, 0.5);
        let out: Vec<i16> = tone.chunks(960).flat_map(|c| d.process(c)).collect();
        assert_eq!(out.len(), 4000);
        let settled = &out[400..];
        assert!((dominant_frequency(settled, 8000) - 1000.0).abs() < 15.0);
        assert!((rms_dbfs(settled) - rms_dbfs(&tone)).abs() < 0.5);
        // 5 kHz would fold to 3 kHz at 8 kHz: it must be gone.
        let mut d = Downsampler::new(6);
        let high = sine(5000.0, 48000, 500, 0.5);
        let out: Vec<i16> = high.chunks(960).flat_map(|c| d.process(c)).collect();
        assert!(rms_dbfs(&out[400..]) < rms_dbfs(&high) - 50.0, "{}", rms_dbfs(&out[400..]));
    }

    #[test]
    fn odd_chunks_join_seamlessly() {
        let tone = sine(440.0, 48000, 300, 0.5);
        let mut a = Downsampler::new(6);
        let whole = a.process(&tone);
        let mut b = Downsampler::new(6);
        let pieces: Vec<i16> = tone.chunks(7).flat_map(|c| b.process(c)).collect();
        assert_eq!(whole, pieces);
        let mut a = Upsampler::new(6);
        let whole = a.process(&tone[..1000]);
        let mut b = Upsampler::new(6);
        let pieces: Vec<i16> = tone[..1000].chunks(13).flat_map(|c| b.process(c)).collect();
        assert_eq!(whole, pieces);
    }

    #[test]
    fn up_keeps_tone_and_suppresses_images() {
        let mut u = Upsampler::new(6);
        let tone = sine(1000.0, 8000, 500, 0.5);
        let out: Vec<i16> = tone.chunks(160).flat_map(|c| u.process(c)).collect();
        assert_eq!(out.len(), 24000);
        let settled = &out[2400..];
        assert!((dominant_frequency(settled, 48000) - 1000.0).abs() < 15.0);
        assert!((rms_dbfs(settled) - rms_dbfs(&tone)).abs() < 0.5);
        // Round trip back down is the same tone at the same level.
        let mut d = Downsampler::new(6);
        let back = d.process(&out);
        assert!((rms_dbfs(&back[400..]) - rms_dbfs(&tone)).abs() < 0.5);
        assert!((dominant_frequency(&back[400..], 8000) - 1000.0).abs() < 15.0);
    }

    #[test]
    fn factor_one_is_identity() {
        let x: Vec<i16> = (0..100).collect();
        assert_eq!(Downsampler::new(1).process(&x), x);
        assert_eq!(Upsampler::new(1).process(&x), x);
    }
}
