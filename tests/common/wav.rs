//! WAV helpers: write test tones, read recordings, find the dominant frequency (Goertzel).

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes a mono 16-bit PCM WAV of a sine tone at half of full scale.
pub fn write_tone_wav(path: impl AsRef<Path>, freq: f32, secs: f32, rate: u32) {
    let n = (secs * rate as f32).round() as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (0.5 * (2.0 * std::f64::consts::PI * freq as f64 * t).sin() * i16::MAX as f64) as i16
        })
        .collect();
    write_wav_i16(path.as_ref(), &samples, rate);
}

/// Writes a mono 16-bit PCM WAV of silence.
pub fn write_silence_wav(path: impl AsRef<Path>, secs: f32, rate: u32) {
    let n = (secs * rate as f32).round() as usize;
    write_wav_i16(path.as_ref(), &vec![0i16; n], rate);
}

/// Writes mono 16-bit PCM samples as a WAV file.
pub fn write_wav_i16(path: &Path, samples: &[i16], rate: u32) {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(&out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Reads a PCM WAV (8/16/24/32-bit integer or 32-bit float; G.711 A/µ-law too) and returns
/// (first channel as f32 in -1..1, sample rate). Tolerates headers of files still being
/// written (data size 0 or past the end: the rest of the file is taken as data).
pub fn read_wav(path: impl AsRef<Path>) -> (Vec<f32>, u32) {
    let path = path.as_ref();
    let b = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE", "{} is not a RIFF/WAVE file", path.display());
    let u16le = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32le = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let (mut fmt, mut channels, mut rate, mut bits) = (0u16, 0u16, 0u32, 0u16);
    let mut pos = 12;
    let mut data: Option<&[u8]> = None;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32le(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= b.len() {
            fmt = u16le(body);
            channels = u16le(body + 2);
            rate = u32le(body + 4);
            bits = u16le(body + 14);
            if fmt == 0xFFFE && len >= 26 && body + 26 <= b.len() {
                fmt = u16le(body + 24); // WAVE_FORMAT_EXTENSIBLE: sub-format GUID's first 2 bytes
            }
        } else if id == b"data" {
            let end = if len == 0 || body + len > b.len() { b.len() } else { body + len };
            data = Some(&b[body..end]);
            break;
        }
        pos = body + len + (len & 1);
    }
    let data = data.unwrap_or_else(|| panic!("{}: no data chunk", path.display()));
    assert!(channels >= 1 && rate > 0, "{}: bad or missing fmt chunk", path.display());
    let bytes = (bits as usize).div_ceil(8).max(1);
    let frame = bytes * channels as usize;
    let samples = data
        .chunks_exact(frame)
        .map(|f| match (fmt, bits) {
            (1, 8) => (f[0] as f32 - 128.0) / 128.0,
            (1, 16) => i16::from_le_bytes([f[0], f[1]]) as f32 / 32768.0,
            (1, 24) => (i32::from_le_bytes([0, f[0], f[1], f[2]]) >> 8) as f32 / 8_388_608.0,
            (1, 32) => i32::from_le_bytes([f[0], f[1], f[2], f[3]]) as f32 / 2_147_483_648.0,
            (3, 32) => f32::from_le_bytes([f[0], f[1], f[2], f[3]]),
            (6, 8) => alaw(f[0]) as f32 / 32768.0,
            (7, 8) => ulaw(f[0]) as f32 / 32768.0,
            _ => panic!("{}: unsupported WAV format {fmt} with {bits} bits", path.display()),
        })
        .collect();
    (samples, rate)
}

fn ulaw(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0F) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

fn alaw(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Duration of a WAV file in seconds.
pub fn wav_duration_secs(path: impl AsRef<Path>) -> f32 {
    let (s, rate) = read_wav(path);
    s.len() as f32 / rate as f32
}

/// RMS level of the whole file relative to full scale (0.0 silence .. ~0.707 full-scale sine;
/// the harness's tones at half scale give ~0.354).
pub fn wav_rms(path: impl AsRef<Path>) -> f32 {
    let (s, _) = read_wav(path);
    rms(&s)
}

fn rms(s: &[f32]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>() / s.len() as f64).sqrt() as f32
}

/// Power of `freq` in Hann-windowed `s` (Goertzel).
fn goertzel(s: &[f32], window: &[f32], rate: u32, freq: f32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq as f64 / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (x, h) in s.iter().zip(window) {
        let s0 = (*x as f64) * (*h as f64) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The non-silent middle of a recording, at most `max_secs` long: drops leading/trailing
/// 20 ms blocks quieter than -60 dBFS (jitter-buffer silence before RTP arrives, etc.).
fn active_part(s: &[f32], rate: u32, max_secs: f32) -> &[f32] {
    let block = (rate as usize / 50).max(1);
    let loud = |c: &[f32]| rms(c) > 0.001;
    let blocks: Vec<&[f32]> = s.chunks(block).collect();
    let first = blocks.iter().position(|c| loud(c));
    let last = blocks.iter().rposition(|c| loud(c));
    let (Some(first), Some(last)) = (first, last) else {
        return &s[0..0];
    };
    let start = first * block;
    let end = ((last + 1) * block).min(s.len());
    let active = &s[start..end];
    let max = (max_secs * rate as f32) as usize;
    if active.len() <= max {
        active
    } else {
        let off = (active.len() - max) / 2;
        &active[off..off + max]
    }
}

/// Dominant frequency of a WAV file in Hz over up to 4 s of the non-silent middle (see
/// [`dominant_frequency`]). Returns 0.0 for a silent file.
pub fn wav_dominant_frequency(path: impl AsRef<Path>) -> f32 {
    let (s, rate) = read_wav(path);
    dominant_frequency(&s, rate)
}

fn hann(n: usize) -> Vec<f32> {
    (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos()) as f32).collect()
}

/// Dominant frequency in Hz of up to 4 s of the non-silent middle of `s`: a coarse
/// Goertzel scan of 100..=4000 Hz in 10 Hz steps (capped below Nyquist), then 1 Hz steps
/// around the peak. The coarse scan sums the power of 100 ms Hann blocks, whose main lobe
/// (±20 Hz) is wider than its grid, so a tone between grid points is seen at nearly full
/// power. (Over the whole 4 s window the main lobe is only ±0.5 Hz: a clean 437.8 Hz tone
/// then showed less power at 440 Hz than an -86 dB spur sitting on a grid point.) The fine
/// scan uses the whole window. Returns 0.0 for silence.
pub fn dominant_frequency(s: &[f32], rate: u32) -> f32 {
    let part = active_part(s, rate, 4.0);
    if part.len() < 64 {
        return 0.0;
    }
    let block = (rate as usize / 10).clamp(64, part.len());
    let block_window = hann(block);
    let nyquist = rate as f32 / 2.0;
    let mut coarse = (0.0f32, -1.0f64);
    let mut f = 100.0f32;
    while f <= 4000.0 && f < nyquist {
        let p: f64 = part.chunks_exact(block).map(|b| goertzel(b, &block_window, rate, f)).sum();
        if p > coarse.1 {
            coarse = (f, p);
        }
        f += 10.0;
    }
    let window = hann(part.len());
    let mut best = (coarse.0, -1.0f64);
    let mut f = (coarse.0 - 10.0).max(1.0);
    while f <= coarse.0 + 10.0 && f < nyquist {
        let p = goertzel(part, &window, rate, f);
        if p > best.1 {
            best = (f, p);
        }
        f += 1.0;
    }
    best.0
}

/// Fraction (0..1) of the signal's energy within ±`tolerance` Hz of `freq` relative to the
/// 100..4000 Hz scan; handy to assert "mostly a 440 Hz tone".
pub fn wav_tone_purity(path: impl AsRef<Path>, freq: f32, tolerance: f32) -> f32 {
    let (s, rate) = read_wav(path);
    let part = active_part(&s, rate, 4.0);
    if part.len() < 64 {
        return 0.0;
    }
    let n = part.len();
    let window: Vec<f32> =
        (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos()) as f32).collect();
    let (mut near, mut total) = (0.0f64, 0.0f64);
    let mut f = 100.0f32;
    while f <= 4000.0 && f < rate as f32 / 2.0 {
        let p = goertzel(part, &window, rate, f);
        total += p;
        if (f - freq).abs() <= tolerance {
            near += p;
        }
        f += 10.0;
    }
    if total > 0.0 { (near / total) as f32 } else { 0.0 }
}
