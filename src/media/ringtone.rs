//! The ringtone: a synthesised double ring (two 0.4 s bursts of a 440 + 554 Hz chord,
//! 0.2 s apart, then 2 s of silence; 3 s a cycle), so no asset file is needed and every
//! platform rings the same. Sans-IO: the media task pulls 20 ms frames at bus rate.

/// Length of one ring cycle in milliseconds.
pub const CYCLE_MS: u64 = 3000;
/// (start, end) of the sounding parts of a cycle, in milliseconds.
pub const BURSTS_MS: [(u64, u64); 2] = [(0, 400), (600, 1000)];
/// The chord's two tones (A4 and C#5: a major third, pleasant rather than alarming).
pub const TONES_HZ: [f64; 2] = [440.0, 554.37];

/// An endless ringtone at `rate` Hz.
#[derive(Debug, Clone)]
pub struct Ringtone {
    rate: u32,
    /// Samples since the ringtone started.
    pos: u64,
    amplitude: f64,
}

impl Ringtone {
    /// A ringtone at `rate` Hz, peak `amplitude` of full scale.
    pub fn new(rate: u32, amplitude: f32) -> Ringtone {
        Ringtone { rate: rate.max(1), pos: 0, amplitude: f64::from(amplitude.clamp(0.0, 1.0)) * 32767.0 / 2.0 }
    }

    fn sample(&self, pos: u64) -> f64 {
        let rate = u64::from(self.rate);
        let in_cycle_ms = (pos * 1000 / rate) % CYCLE_MS;
        let Some(&(start, end)) = BURSTS_MS.iter().find(|(s, e)| (*s..*e).contains(&in_cycle_ms)) else {
            return 0.0;
        };
        // 10 ms fades at each burst's edges: no clicks.
        let fade = rate as f64 / 100.0;
        let cycle_start = pos - pos % (CYCLE_MS * rate / 1000);
        let from_start = (pos - cycle_start) as f64 - (start * rate / 1000) as f64;
        let to_end = (end * rate / 1000) as f64 - (pos - cycle_start) as f64;
        let env = (from_start.min(to_end) / fade).clamp(0.0, 1.0);
        let t = pos as f64 / f64::from(self.rate);
        let chord: f64 = TONES_HZ.iter().map(|f| (2.0 * std::f64::consts::PI * f * t).sin()).sum();
        self.amplitude * env * chord
    }

    /// Adds the next `out.len()` samples onto `out` (saturating).
    pub fn mix_into(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            let v = self.sample(self.pos).round() as i32;
            *s = (i32::from(*s) + v).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{analysis, level::Level};

    #[test]
    fn rings_twice_every_three_seconds_on_a_chord() {
        let mut r = Ringtone::new(48000, 0.5);
        let mut out = vec![0i16; 48000 * 6];
        for chunk in out.chunks_mut(960) {
            r.mix_into(chunk);
        }
        let ms = |a: usize, b: usize| Level::of(&out[a * 48..b * 48]).rms_dbfs;
        for cycle in [0, 3000] {
            assert!(ms(cycle + 50, cycle + 350) > -15.0, "first burst of cycle at {cycle} ms");
            assert!(ms(cycle + 420, cycle + 580) < -90.0, "gap at {cycle} ms");
            assert!(ms(cycle + 650, cycle + 950) > -15.0, "second burst at {cycle} ms");
            assert!(ms(cycle + 1020, cycle + 2980) < -90.0, "pause at {cycle} ms");
        }
        assert_eq!(out[0], 0, "fades in from silence");
        let f = analysis::dominant_frequency(&out[50 * 48..350 * 48], 48000);
        assert!(TONES_HZ.iter().any(|t| (f as f64 - t).abs() < 5.0), "{f} Hz is one of the chord's tones");
        let l = Level::of(&out[50 * 48..350 * 48]);
        assert!(l.peak_dbfs <= -5.9 && l.peak_dbfs > -7.0, "peak at half scale: {l:?}");
    }
}
