//! WAV files as audio sources (prompts, test tones) and sinks (call recordings).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// I/O or format error from the WAV library.
    #[error("wav: {0}")]
    Wav(#[from] hound::Error),
    /// A format we do not convert.
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    /// A zero sample rate was requested.
    #[error("invalid sample rate {0}")]
    BadRate(u32),
}

/// A WAV file decoded to mono 16-bit at a chosen rate, played in a loop.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Vec<i16>,
    pos: usize,
    rate: u32,
}

impl WavSource {
    /// Loads a PCM WAV (8/16/24/32-bit integer or 32-bit float, any channel count and rate)
    /// as mono resampled to `target_rate`.
    pub fn open(path: impl AsRef<Path>, target_rate: u32) -> Result<Self, WavError> {
        if target_rate == 0 {
            return Err(WavError::BadRate(0));
        }
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let interleaved: Vec<i32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                reader.samples::<i32>().map(|s| s.map(|v| scale_to_16(v, bits))).collect::<Result<_, _>>()?
            }
            (hound::SampleFormat::Float, 32) => reader
                .samples::<f32>()
                .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0).round() as i32))
                .collect::<Result<_, _>>()?,
            (fmt, bits) => return Err(WavError::Unsupported(format!("{fmt:?} {bits}-bit"))),
        };
        let mono: Vec<i16> = interleaved
            .chunks(channels)
            .map(|frame| (frame.iter().map(|&v| i64::from(v)).sum::<i64>() / frame.len() as i64) as i16)
            .collect();
        Ok(WavSource::from_samples(mono, spec.sample_rate, target_rate))
    }

    /// Wraps mono samples at `source_rate`, resampled to `target_rate`.
    pub fn from_samples(samples: Vec<i16>, source_rate: u32, target_rate: u32) -> Self {
        let samples = resample_linear(&samples, source_rate, target_rate);
        WavSource { samples, pos: 0, rate: target_rate }
    }

    /// The next `samples_per_frame` samples, wrapping to the start at the end (silence if empty).
    pub fn next_frame(&mut self, samples_per_frame: usize) -> Vec<i16> {
        if self.samples.is_empty() {
            return vec![0; samples_per_frame];
        }
        let mut out = Vec::with_capacity(samples_per_frame);
        while out.len() < samples_per_frame {
            let take = (samples_per_frame - out.len()).min(self.samples.len() - self.pos);
            out.extend_from_slice(&self.samples[self.pos..self.pos + take]);
            self.pos = (self.pos + take) % self.samples.len();
        }
        out
    }

    /// All samples at the target rate.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Number of samples at the target rate.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the file had no audio.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The output sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Restarts playback from the first sample.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }
}

fn scale_to_16(v: i32, bits: u16) -> i32 {
    if bits > 16 { v >> (bits - 16) } else { v << (16 - bits) }
}

/// Linear-interpolation resampling; enough for speech prompts, no anti-alias filter.
pub fn resample_linear(samples: &[i16], from_rate: u32, to_rate: u32) -> Vec<i16> {
    if from_rate == to_rate || from_rate == 0 || to_rate == 0 || samples.is_empty() {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to_rate)).div_ceil(u64::from(from_rate)) as usize;
    let step = f64::from(from_rate) / f64::from(to_rate);
    let last = samples.len() - 1;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let i0 = (pos.floor() as usize).min(last);
            let i1 = (i0 + 1).min(last);
            let frac = pos - i0 as f64;
            let v = f64::from(samples[i0]) * (1.0 - frac) + f64::from(samples[i1]) * frac;
            v.round() as i16
        })
        .collect()
}

/// A mono 16-bit WAV file being written; the header is fixed up by `finish` or on drop.
pub struct WavSink {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    rate: u32,
    written: u64,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink").field("rate", &self.rate).field("written", &self.written).finish()
    }
}

impl WavSink {
    /// Creates (truncates) `path` for mono 16-bit PCM at `rate`.
    pub fn create(path: impl AsRef<Path>, rate: u32) -> Result<Self, WavError> {
        if rate == 0 {
            return Err(WavError::BadRate(0));
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavSink { writer: Some(hound::WavWriter::create(path, spec)?), rate, written: 0 })
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let mut w16 = w.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w16.write_sample(s);
        }
        w16.flush()?;
        self.written += samples.len() as u64;
        Ok(())
    }

    /// Number of samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// The sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Writes the final header sizes and closes the file.
    pub fn finish(mut self) -> Result<(), WavError> {
        match self.writer.take() {
            Some(w) => Ok(w.finalize()?),
            None => Ok(()),
        }
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        // A recording cut short (hangup, panic unwinding) must still be a readable file.
        if let Some(w) = self.writer.take() {
            let _ = w.finalize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_path(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("orbit-wav-{}-{n}-{name}.wav", std::process::id()))
    }

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (16000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    fn zero_crossings(s: &[i16]) -> usize {
        s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    #[test]
    fn sink_then_source_round_trip() {
        let path = temp_path("rt");
        let data = tone(440.0, 8000, 8000);
        let mut sink = WavSink::create(&path, 8000).unwrap();
        sink.write(&data[..3000]).unwrap();
        sink.write(&data[3000..]).unwrap();
        assert_eq!(sink.samples_written(), 8000);
        sink.finish().unwrap();
        let src = WavSource::open(&path, 8000).unwrap();
        assert_eq!(src.samples(), &data[..]);
        assert_eq!(src.rate(), 8000);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn drop_finalizes() {
        let path = temp_path("drop");
        {
            let mut sink = WavSink::create(&path, 16000).unwrap();
            sink.write(&[1, 2, 3, 4, 5]).unwrap();
        }
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r.spec().sample_rate, 16000);
        assert_eq!(WavSource::open(&path, 16000).unwrap().samples(), &[1, 2, 3, 4, 5]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn stereo_48k_becomes_mono_8k() {
        let path = temp_path("stereo");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in tone(440.0, 48000, 48000) {
            w.write_sample(s).unwrap();
            w.write_sample(s / 2).unwrap();
        }
        w.finalize().unwrap();
        let src = WavSource::open(&path, 8000).unwrap();
        assert_eq!(src.len(), 8000);
        // 440 Hz for one second: 880 zero crossings.
        let zc = zero_crossings(src.samples()) as i32;
        assert!((zc - 880).abs() <= 2, "{zc}");
        // Mono is the average of both channels: peak 0.75 of 16000.
        let peak = src.samples().iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((11900..=12001).contains(&peak), "{peak}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn upsamples_and_reads_24_bit_and_float() {
        let path = temp_path("24");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in tone(1000.0, 8000, 800) {
            w.write_sample(i32::from(s) << 8).unwrap();
        }
        w.finalize().unwrap();
        let src = WavSource::open(&path, 16000).unwrap();
        assert_eq!(src.len(), 1600);
        let zc = zero_crossings(src.samples()) as i32;
        assert!((zc - 200).abs() <= 2, "{zc}");
        let path_f = temp_path("float");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path_f, spec).unwrap();
        for v in [0.0f32, 0.5, -0.5, 1.5] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(WavSource::open(&path_f, 8000).unwrap().samples(), &[0, 16384, -16384, 32767]);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path_f);
    }

    #[test]
    fn next_frame_loops() {
        let mut src = WavSource::from_samples((0..10).collect(), 8000, 8000);
        assert_eq!(src.next_frame(4), vec![0, 1, 2, 3]);
        assert_eq!(src.next_frame(4), vec![4, 5, 6, 7]);
        assert_eq!(src.next_frame(4), vec![8, 9, 0, 1]);
        assert_eq!(src.next_frame(25).len(), 25);
        src.rewind();
        assert_eq!(src.next_frame(1), vec![0]);
        let mut empty = WavSource::from_samples(vec![], 8000, 8000);
        assert!(empty.is_empty());
        assert_eq!(empty.next_frame(3), vec![0, 0, 0]);
    }

    #[test]
    fn resample_linear_values() {
        assert_eq!(resample_linear(&[0, 100, 200], 8000, 16000), vec![0, 50, 100, 150, 200, 200]);
        assert_eq!(resample_linear(&[0, 10, 20, 30, 40, 50], 16000, 8000), vec![0, 20, 40]);
        assert_eq!(resample_linear(&[7], 8000, 48000), vec![7; 6]);
    }

    #[test]
    fn errors() {
        assert!(matches!(WavSource::open(temp_path("missing"), 8000), Err(WavError::Wav(_))));
        assert!(matches!(WavSource::open(temp_path("x"), 0), Err(WavError::BadRate(0))));
        let garbage = temp_path("garbage");
        std::fs::write(&garbage, b"RIFF\x04\x00\x00\x00WAVEjunk").unwrap();
        assert!(WavSource::open(&garbage, 8000).is_err());
        let _ = std::fs::remove_file(&garbage);
    }
}
