//! Built-in music on hold, synthesised here (no recording, no licence question): a slow
//! four-chord arpeggio with soft attack and decay, long enough not to feel like a loop.

/// One loop of the built-in music at `rate` Hz, mono, 16-bit.
pub fn builtin_music(rate: u32) -> Vec<i16> {
    // C – Am – F – G, each chord arpeggiated over two bars of eighth notes.
    const CHORDS: [[f32; 4]; 4] = [
        [261.63, 329.63, 392.00, 523.25],
        [220.00, 261.63, 329.63, 440.00],
        [174.61, 220.00, 261.63, 349.23],
        [196.00, 246.94, 293.66, 392.00],
    ];
    const PATTERN: [usize; 8] = [0, 1, 2, 3, 2, 1, 2, 1];
    let note_len = (rate as f32 * 0.3) as usize;
    let mut out = Vec::with_capacity(note_len * 8 * 2 * CHORDS.len());
    for chord in CHORDS {
        for _bar in 0..2 {
            for &idx in &PATTERN {
                let freq = chord[idx];
                let bass = chord[0] / 2.0;
                for n in 0..note_len {
                    let t = n as f32 / rate as f32;
                    let attack = (n as f32 / (rate as f32 * 0.01)).min(1.0);
                    let decay = (-3.0 * t).exp();
                    let tone = (2.0 * std::f32::consts::PI * freq * t).sin() * 0.6
                        + (2.0 * std::f32::consts::PI * freq * 2.0 * t).sin() * 0.15;
                    let pad = (2.0 * std::f32::consts::PI * bass * t).sin() * 0.2;
                    let v = (tone * attack * decay + pad) * 0.35;
                    out.push((v * i16::MAX as f32) as i16);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis::rms_dbfs;

    #[test]
    fn builtin_music_is_audible_and_not_clipping() {
        let m = builtin_music(8000);
        assert_eq!(m.len(), 8000 * 3 / 10 * 8 * 2 * 4);
        let level = rms_dbfs(&m);
        assert!((-30.0..-6.0).contains(&level), "level {level} dBFS");
        assert!(m.iter().all(|s| s.unsigned_abs() < 32000));
    }
}
