//! The input level meter (RMS and peak in dBFS, with a floor so silence is a number)
//! and the settings screen's test tone. Sans-IO: frames in, figures out.

/// The lowest level reported: silence reads as this, not as minus infinity.
pub const FLOOR_DBFS: f32 = -96.0;

/// One frame's level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// RMS in dBFS (a full-scale sine is about -3).
    pub rms_dbfs: f32,
    /// Largest absolute sample in dBFS (full scale is 0).
    pub peak_dbfs: f32,
}

fn dbfs(linear: f64) -> f32 {
    if linear <= 0.0 { FLOOR_DBFS } else { ((20.0 * linear.log10()) as f32).max(FLOOR_DBFS) }
}

impl Level {
    /// The level of bus samples.
    pub fn of(samples: &[i16]) -> Level {
        if samples.is_empty() {
            return Level { rms_dbfs: FLOOR_DBFS, peak_dbfs: FLOOR_DBFS };
        }
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
        let peak = samples.iter().map(|s| i32::from(*s).unsigned_abs()).max().unwrap_or(0);
        Level { rms_dbfs: dbfs(rms), peak_dbfs: dbfs(f64::from(peak) / 32768.0) }
    }

    /// The meter's fill, 0 at -60 dBFS and below, 1 at 0 dBFS.
    pub fn meter_fraction(&self) -> f32 {
        ((self.rms_dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
    }
}

/// A sine tone for "Play test tone": `freq` Hz at `rate`, `amplitude` of full scale,
/// lasting `ms`, with 10 ms fades so it starts and stops without a click.
#[derive(Debug, Clone)]
pub struct TestTone {
    phase: f64,
    step: f64,
    amplitude: f64,
    left: usize,
    total: usize,
    fade: usize,
}

impl TestTone {
    /// A new tone.
    pub fn new(freq: f32, rate: u32, ms: u32, amplitude: f32) -> TestTone {
        let total = (u64::from(rate) * u64::from(ms) / 1000) as usize;
        TestTone {
            phase: 0.0,
            step: 2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(rate.max(1)),
            amplitude: f64::from(amplitude.clamp(0.0, 1.0)) * 32767.0,
            left: total,
            total,
            fade: (rate / 100) as usize,
        }
    }

    /// Whether the tone has played out.
    pub fn finished(&self) -> bool {
        self.left == 0
    }

    /// Adds the next `out.len()` samples of the tone onto `out` (saturating).
    pub fn mix_into(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            if self.left == 0 {
                return;
            }
            let done = self.total - self.left;
            let env = (done.min(self.left) as f64 / self.fade.max(1) as f64).min(1.0);
            let v = (self.amplitude * env * self.phase.sin()).round() as i32;
            *s = (i32::from(*s) + v).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            self.phase = (self.phase + self.step) % (2.0 * std::f64::consts::PI);
            self.left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis;

    #[test]
    fn levels_of_silence_square_and_sine() {
        let l = Level::of(&[0; 960]);
        assert_eq!((l.rms_dbfs, l.peak_dbfs), (FLOOR_DBFS, FLOOR_DBFS));
        assert_eq!(l.meter_fraction(), 0.0);
        let square: Vec<i16> = (0..960).map(|i| if i % 2 == 0 { 32767 } else { -32767 }).collect();
        let l = Level::of(&square);
        assert!(l.rms_dbfs.abs() < 0.01 && l.peak_dbfs.abs() < 0.01, "{l:?}");
        let sine = analysis::sine(440.0, 48000, 100, 0.5);
        let l = Level::of(&sine);
        assert!((l.rms_dbfs - (-9.03)).abs() < 0.1, "{l:?}");
        assert!((l.peak_dbfs - (-6.02)).abs() < 0.1, "{l:?}");
        assert!((l.meter_fraction() - (60.0 - 9.03) / 60.0).abs() < 0.01);
        assert_eq!(Level::of(&[]).rms_dbfs, FLOOR_DBFS);
    }

    #[test]
    fn test_tone_is_440_hz_for_its_length_and_fades() {
        let mut t = TestTone::new(440.0, 48000, 1000, 0.25);
        let mut out = vec![0i16; 48000 + 960];
        t.mix_into(&mut out[..960]);
        assert_eq!(out[0], 0, "starts from silence");
        t.mix_into(&mut out[960..]);
        assert!(t.finished());
        assert!(out[48000..].iter().all(|s| *s == 0), "silent after 1 s");
        let f = analysis::dominant_frequency(&out[..48000], 48000);
        assert!((f - 440.0).abs() < 2.0, "{f} Hz");
        let l = Level::of(&out[4800..43200]);
        assert!((l.peak_dbfs - (-12.04)).abs() < 0.2, "{l:?}");
    }
}
