//! Signal checks for tests and diagnostics: tone generation, level, pitch and onset.

use std::f64::consts::PI;

/// Longest stretch `dominant_frequency` looks at; a couple of seconds pins any tone down.
const MAX_ANALYSIS_SAMPLES: usize = 1 << 16;

/// A sine tone: `ms` milliseconds at `rate`, peak `amplitude` as a fraction of full scale.
pub fn sine(freq: f32, rate: u32, ms: u32, amplitude: f32) -> Vec<i16> {
    let n = (u64::from(rate) * u64::from(ms) / 1000) as usize;
    let peak = f64::from(amplitude.clamp(0.0, 1.0)) * f64::from(i16::MAX);
    let w = 2.0 * PI * f64::from(freq) / f64::from(rate.max(1));
    (0..n).map(|i| (peak * (w * i as f64).sin()).round() as i16).collect()
}

/// RMS level in dBFS (a full-scale square wave is 0, a full-scale sine about -3);
/// `-inf` for silence or no samples.
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms == 0.0 { f32::NEG_INFINITY } else { (20.0 * (rms / 32768.0).log10()) as f32 }
}

/// Squared magnitude of the DTFT of `x` at angular frequency `w` (Goertzel recurrence).
fn goertzel_power(x: &[f64], w: f64) -> f64 {
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * PI / len as f64;
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * cr - im[b] * ci;
                let ti = re[b] * ci + im[b] * cr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let next = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = next;
            }
        }
        len <<= 1;
    }
}

/// The strongest frequency in Hz (0 when silent): Hann-windowed FFT peak, then refined
/// with Goertzel probes between the neighbouring bins.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> f32 {
    let x = &samples[..samples.len().min(MAX_ANALYSIS_SAMPLES)];
    if x.len() < 4 || rate == 0 {
        return 0.0;
    }
    let n = x.len();
    let mean = x.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
    let windowed: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
            (f64::from(s) - mean) * hann
        })
        .collect();
    // Zero-padding to twice the length halves the bin spacing the refinement has to search.
    let size = (2 * n).next_power_of_two();
    let mut re = windowed.clone();
    re.resize(size, 0.0);
    let mut im = vec![0.0; size];
    fft(&mut re, &mut im);
    let bin_hz = f64::from(rate) / size as f64;
    let first = ((10.0 / bin_hz).ceil() as usize).max(1);
    let peak = (first..size / 2)
        .max_by(|&a, &b| {
            let pa = re[a] * re[a] + im[a] * im[a];
            let pb = re[b] * re[b] + im[b] * im[b];
            pa.total_cmp(&pb)
        })
        .filter(|&k| re[k] * re[k] + im[k] * im[k] > 1e-6);
    let Some(k) = peak else { return 0.0 };
    // Golden-section search of the windowed spectrum around the peak bin.
    let to_w = |hz: f64| 2.0 * PI * hz / f64::from(rate);
    let (mut lo, mut hi) = ((k as f64 - 1.0) * bin_hz, (k as f64 + 1.0) * bin_hz);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = hi - g * (hi - lo);
    let mut d = lo + g * (hi - lo);
    let (mut fc, mut fd) = (goertzel_power(&windowed, to_w(c)), goertzel_power(&windowed, to_w(d)));
    while hi - lo > 0.01 {
        if fc > fd {
            hi = d;
            d = c;
            fd = fc;
            c = hi - g * (hi - lo);
            fc = goertzel_power(&windowed, to_w(c));
        } else {
            lo = c;
            c = d;
            fc = fd;
            d = lo + g * (hi - lo);
            fd = goertzel_power(&windowed, to_w(d));
        }
    }
    ((lo + hi) / 2.0) as f32
}

/// Index of the first sample where a tone at `freq` starts, within a few milliseconds.
///
/// Slides a window of at least 10 ms and four periods; a window counts as tone when most of
/// its energy sits at `freq` and it is above -50 dBFS.
pub fn tone_onset(samples: &[i16], rate: u32, freq: f32) -> Option<usize> {
    let freq = f64::from(freq);
    if samples.is_empty() || rate == 0 || freq <= 0.0 || freq >= f64::from(rate) / 2.0 {
        return None;
    }
    let min_len = (f64::from(rate) / 100.0).max(4.0 * f64::from(rate) / freq).ceil() as usize;
    let n = min_len.min(samples.len());
    let hop = (n / 8).max(1);
    let w = 2.0 * PI * freq / f64::from(rate);
    let floor = {
        let amp = 32768.0 * 10f64.powf(-50.0 / 20.0);
        amp * amp
    };
    let mut start = 0;
    while start + n <= samples.len() {
        let window: Vec<f64> = samples[start..start + n].iter().map(|&s| f64::from(s)).collect();
        let energy: f64 = window.iter().map(|v| v * v).sum();
        if energy / n as f64 >= floor {
            // For a tone filling the last k samples after silence this ratio is k/n.
            let ratio = 2.0 * goertzel_power(&window, w) / (n as f64 * energy);
            if ratio >= 0.5 {
                let filled = (ratio.min(1.0) * n as f64).round() as usize;
                return Some(start + n - filled);
            }
        }
        start += hop;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::g711::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};
    use super::*;

    fn noise(n: usize, amp: f64, seed: u64) -> Vec<i16> {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| (rng.random_range(-1.0..1.0) * amp) as i16).collect()
    }

    #[test]
    fn sine_shape() {
        let s = sine(1000.0, 8000, 10, 0.5);
        assert_eq!(s.len(), 80);
        assert_eq!(s[0], 0);
        assert_eq!(s[2], 16384); // quarter period at 1 kHz / 8 kHz
        assert_eq!(s[6], -16384);
        assert_eq!(sine(440.0, 48000, 1000, 2.0).iter().max(), Some(&32767));
    }

    #[test]
    fn rms_levels() {
        let full = sine(1000.0, 8000, 1000, 1.0);
        assert!((rms_dbfs(&full) + 3.01).abs() < 0.05, "{}", rms_dbfs(&full));
        let half = sine(1000.0, 8000, 1000, 0.5);
        assert!((rms_dbfs(&half) + 9.03).abs() < 0.05);
        assert!((rms_dbfs(&[i16::MIN; 100]) - 0.0).abs() < 1e-6);
        assert_eq!(rms_dbfs(&[0; 160]), f32::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn dominant_frequency_of_pure_tones() {
        for (freq, rate, ms) in [
            (440.0, 8000, 1000),
            (1000.0, 8000, 20),
            (3000.0, 48000, 100),
            (697.0, 8000, 40),
            (60.0, 16000, 500),
            (3950.0, 8000, 200),
        ] {
            let f = dominant_frequency(&sine(freq, rate, ms, 0.5), rate);
            assert!((f - freq).abs() < 1.0, "{freq} Hz at {rate} for {ms} ms -> {f}");
        }
        assert_eq!(dominant_frequency(&[0; 800], 8000), 0.0);
        assert_eq!(dominant_frequency(&[], 8000), 0.0);
        assert_eq!(dominant_frequency(&[5, 5, 5, 5, 5], 8000), 0.0);
    }

    #[test]
    fn dominant_frequency_with_noise_and_second_tone() {
        let mut s = sine(440.0, 16000, 500, 0.4);
        let quiet = sine(1200.0, 16000, 500, 0.1);
        for ((v, q), z) in s.iter_mut().zip(&quiet).zip(noise(8000, 2000.0, 1)) {
            *v = v.saturating_add(*q).saturating_add(z);
        }
        let f = dominant_frequency(&s, 16000);
        assert!((f - 440.0).abs() < 5.0, "{f}");
    }

    #[test]
    fn g711_round_trip_keeps_pitch() {
        let tone = sine(440.0, 8000, 500, 0.5);
        let ulaw = decode_ulaw(&encode_ulaw(&tone));
        let f = dominant_frequency(&ulaw, 8000);
        assert!((f - 440.0).abs() < 5.0, "μ-law {f}");
        let alaw = decode_alaw(&encode_alaw(&tone));
        let f = dominant_frequency(&alaw, 8000);
        assert!((f - 440.0).abs() < 5.0, "A-law {f}");
        // Companding costs well under 1 dB of level.
        assert!((rms_dbfs(&ulaw) - rms_dbfs(&tone)).abs() < 0.5);
    }

    #[test]
    fn onset_after_silence() {
        let mut s = vec![0i16; 2400];
        s.extend(sine(440.0, 8000, 500, 0.5));
        let at = tone_onset(&s, 8000, 440.0).unwrap();
        assert!(at.abs_diff(2400) <= 40, "{at}");
        // Same at 48 kHz with faint noise before.
        let mut s = noise(14_400, 30.0, 2);
        s.extend(sine(1000.0, 48000, 300, 0.3));
        let at = tone_onset(&s, 48000, 1000.0).unwrap();
        assert!(at.abs_diff(14_400) <= 240, "{at}");
    }

    #[test]
    fn onset_at_start_and_after_other_tone() {
        let s = sine(440.0, 8000, 200, 0.5);
        assert!(tone_onset(&s, 8000, 440.0).unwrap() <= 10);
        let mut s = sine(1000.0, 8000, 500, 0.5);
        s.extend(sine(440.0, 8000, 500, 0.5));
        let at = tone_onset(&s, 8000, 440.0).unwrap();
        assert!(at.abs_diff(4000) <= 80, "{at}");
    }

    #[test]
    fn onset_absent() {
        assert_eq!(tone_onset(&sine(1000.0, 8000, 500, 0.5), 8000, 440.0), None);
        assert_eq!(tone_onset(&vec![0; 8000], 8000, 440.0), None);
        assert_eq!(tone_onset(&noise(8000, 8000.0, 3), 8000, 440.0), None);
        assert_eq!(tone_onset(&sine(440.0, 8000, 500, 0.001), 8000, 440.0), None); // -60 dBFS
        assert_eq!(tone_onset(&[], 8000, 440.0), None);
        assert_eq!(tone_onset(&[1, 2, 3], 8000, 5000.0), None);
    }
}
