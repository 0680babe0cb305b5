//! Audio codecs behind one interface: G.711 (μ-law, A-law) and Opus (RFC 7587).
//!
//! Each codec works at its own PCM rate ([`pcm_rate`]): 8 kHz for G.711, 48 kHz for
//! Opus. Opus is always encoded and decoded as mono here (the SDP says `/2`, as RFC 7587
//! requires, but a mono stream is valid and a stereo one is downmixed by the decoder).
//!
//! Loss concealment: [`Decoder::conceal`] makes up one lost frame. Opus uses the in-band
//! FEC (LBRR) carried in the *next* packet when the jitter buffer already holds it, and
//! its built-in PLC otherwise; G.711 repeats the last good frame, fading it out over
//! four frames (80 ms at 20 ms packets) so a long gap turns into silence, not a buzz.

use super::g711;
use super::negotiate::{Codec, CodecKind};

/// Turns one frame of PCM (at [`pcm_rate`]) into one RTP payload.
pub trait Encoder: Send {
    /// Encodes one frame (20 ms: 160 samples for G.711, 960 for Opus).
    fn encode(&mut self, pcm: &[i16]) -> Vec<u8>;
}

/// Turns RTP payloads back into PCM (at [`pcm_rate`]), and makes up lost frames.
pub trait Decoder: Send {
    /// Decodes one payload; a corrupt payload is concealed instead.
    fn decode(&mut self, payload: &[u8]) -> Vec<i16>;
    /// One frame of concealment for a lost packet; `next` is the packet after the lost one
    /// when it is already buffered (Opus recovers the lost frame from its FEC data).
    fn conceal(&mut self, next: Option<&[u8]>) -> Vec<i16>;
}

/// Why a codec could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// telephone-event is not an audio codec.
    #[error("{0} is not an audio codec")]
    NotAudio(&'static str),
    /// libopus refused the settings.
    #[error("opus: {0}")]
    Opus(String),
}

/// The PCM sample rate a codec's encoder takes and decoder gives.
pub fn pcm_rate(kind: CodecKind) -> u32 {
    match kind {
        CodecKind::Opus => 48000,
        _ => 8000,
    }
}

/// Samples in one `frame_ms` frame at the codec's PCM rate.
pub fn frame_samples(kind: CodecKind, frame_ms: u32) -> usize {
    (pcm_rate(kind) / 1000 * frame_ms.max(1)) as usize
}

/// An encoder for a negotiated codec sending `frame_ms` frames.
pub fn encoder_for(codec: &Codec, frame_ms: u32) -> Result<Box<dyn Encoder>, CodecError> {
    let _ = frame_ms;
    match codec.kind {
        CodecKind::Pcmu => Ok(Box::new(G711Encoder { alaw: false })),
        CodecKind::Pcma => Ok(Box::new(G711Encoder { alaw: true })),
        CodecKind::Opus => Ok(Box::new(OpusEncoder::new(codec.fmtp.as_deref())?)),
        CodecKind::TelephoneEvent => Err(CodecError::NotAudio("telephone-event")),
    }
}

/// A decoder for a negotiated codec receiving (nominally) `frame_ms` frames.
pub fn decoder_for(codec: &Codec, frame_ms: u32) -> Result<Box<dyn Decoder>, CodecError> {
    let frame = frame_samples(codec.kind, frame_ms);
    match codec.kind {
        CodecKind::Pcmu => Ok(Box::new(G711Decoder::new(false, frame))),
        CodecKind::Pcma => Ok(Box::new(G711Decoder::new(true, frame))),
        CodecKind::Opus => Ok(Box::new(OpusDecoder::new(frame)?)),
        CodecKind::TelephoneEvent => Err(CodecError::NotAudio("telephone-event")),
    }
}

/// G.711 encoder.
#[derive(Debug, Clone)]
pub struct G711Encoder {
    alaw: bool,
}

impl Encoder for G711Encoder {
    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        if self.alaw { g711::encode_alaw(pcm) } else { g711::encode_ulaw(pcm) }
    }
}

/// Frames over which a repeated G.711 frame fades to silence.
const G711_FADE_FRAMES: u32 = 4;

/// G.711 decoder with repeat-and-fade concealment.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    alaw: bool,
    last: Vec<i16>,
    lost: u32,
}

impl G711Decoder {
    fn new(alaw: bool, frame: usize) -> Self {
        G711Decoder { alaw, last: vec![0; frame], lost: 0 }
    }
}

impl Decoder for G711Decoder {
    fn decode(&mut self, payload: &[u8]) -> Vec<i16> {
        let pcm = if self.alaw { g711::decode_alaw(payload) } else { g711::decode_ulaw(payload) };
        if !pcm.is_empty() {
            self.last.clone_from(&pcm);
        }
        self.lost = 0;
        pcm
    }

    fn conceal(&mut self, _next: Option<&[u8]>) -> Vec<i16> {
        let n = self.last.len().max(1) as f32;
        let fade = G711_FADE_FRAMES as f32;
        let start = 1.0 - self.lost as f32 / fade;
        let end = 1.0 - (self.lost + 1) as f32 / fade;
        self.lost = (self.lost + 1).min(G711_FADE_FRAMES);
        self.last
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let g = (start + (end - start) * i as f32 / n).max(0.0);
                (f32::from(s) * g) as i16
            })
            .collect()
    }
}

/// Largest Opus packet (RFC 6716 §3.2.1).
const OPUS_MAX_PACKET: usize = 1275;
/// 120 ms at 48 kHz: the longest an Opus packet can decode to.
const OPUS_MAX_FRAME: usize = 5760;
/// Our sending bitrate: wideband-to-fullband speech with room for FEC.
const OPUS_BITRATE: i32 = 32000;
/// Expected loss we tell the encoder, so that it actually puts FEC data in packets.
const OPUS_LOSS_PERC: i32 = 10;

/// Opus encoder: 48 kHz mono, VoIP mode, in-band FEC.
pub struct OpusEncoder {
    enc: opus::Encoder,
}

impl OpusEncoder {
    /// Honors the peer's `maxaveragebitrate` from its fmtp.
    pub fn new(fmtp: Option<&str>) -> Result<Self, CodecError> {
        let err = |e: opus::Error| CodecError::Opus(e.to_string());
        let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).map_err(err)?;
        let max = fmtp_param(fmtp, "maxaveragebitrate")
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|&b| (6000..=510_000).contains(&b));
        let bitrate = max.map_or(OPUS_BITRATE, |m| m.min(OPUS_BITRATE));
        enc.set_bitrate(opus::Bitrate::Bits(bitrate)).map_err(err)?;
        enc.set_inband_fec(true).map_err(err)?;
        enc.set_packet_loss_perc(OPUS_LOSS_PERC).map_err(err)?;
        Ok(OpusEncoder { enc })
    }
}

impl Encoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        match self.enc.encode_vec(pcm, OPUS_MAX_PACKET) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("opus encode of {} samples: {e}", pcm.len());
                Vec::new()
            }
        }
    }
}

/// Opus decoder: 48 kHz mono output, PLC and FEC recovery.
pub struct OpusDecoder {
    dec: opus::Decoder,
    /// Samples in the last decoded frame: the size of a concealed one.
    frame: usize,
    buf: Vec<i16>,
}

impl OpusDecoder {
    fn new(frame: usize) -> Result<Self, CodecError> {
        let dec = opus::Decoder::new(48000, opus::Channels::Mono).map_err(|e| CodecError::Opus(e.to_string()))?;
        Ok(OpusDecoder { dec, frame: frame.clamp(120, OPUS_MAX_FRAME), buf: vec![0; OPUS_MAX_FRAME] })
    }

    fn run(&mut self, input: &[u8], samples: usize, fec: bool) -> Option<Vec<i16>> {
        match self.dec.decode(input, &mut self.buf[..samples], fec) {
            Ok(n) => Some(self.buf[..n.min(samples)].to_vec()),
            Err(e) => {
                tracing::debug!("opus decode: {e}");
                None
            }
        }
    }

    fn plc(&mut self) -> Vec<i16> {
        let frame = self.frame;
        self.run(&[], frame, false).unwrap_or_else(|| vec![0; frame])
    }
}

impl Decoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8]) -> Vec<i16> {
        if payload.is_empty() {
            return self.plc();
        }
        match self.run(payload, OPUS_MAX_FRAME, false) {
            Some(pcm) => {
                if !pcm.is_empty() {
                    self.frame = pcm.len();
                }
                pcm
            }
            None => self.plc(),
        }
    }

    fn conceal(&mut self, next: Option<&[u8]>) -> Vec<i16> {
        let frame = self.frame;
        if let Some(next) = next.filter(|p| !p.is_empty()) {
            // FEC: the lost frame rebuilt from the LBRR data of the following packet
            // (libopus falls back to PLC itself when the packet carries none).
            if let Some(pcm) = self.run(next, frame, true) {
                return pcm;
            }
        }
        self.plc()
    }
}

/// The value of `name` in an fmtp parameter list such as `useinbandfec=1; stereo=0`.
pub fn fmtp_param<'a>(fmtp: Option<&'a str>, name: &str) -> Option<&'a str> {
    fmtp?.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis::{dominant_frequency, rms_dbfs, sine};

    fn roundtrip(codec: &Codec, tone: &[i16]) -> Vec<i16> {
        let mut enc = encoder_for(codec, 20).unwrap();
        let mut dec = decoder_for(codec, 20).unwrap();
        let n = frame_samples(codec.kind, 20);
        tone.chunks_exact(n).flat_map(|f| dec.decode(&enc.encode(f))).collect()
    }

    #[test]
    fn rates_and_factories() {
        assert_eq!(pcm_rate(CodecKind::Opus), 48000);
        assert_eq!(pcm_rate(CodecKind::Pcmu), 8000);
        assert_eq!(frame_samples(CodecKind::Opus, 20), 960);
        assert_eq!(frame_samples(CodecKind::Pcma, 20), 160);
        assert!(encoder_for(&Codec::telephone_event(101, 8000), 20).is_err());
        assert!(decoder_for(&Codec::telephone_event(101, 8000), 20).is_err());
        assert_eq!(fmtp_param(Some("useinbandfec=1; maxaveragebitrate=20000"), "maxaveragebitrate"), Some("20000"));
        assert_eq!(fmtp_param(Some("useinbandfec=1"), "stereo"), None);
        assert_eq!(fmtp_param(None, "stereo"), None);
    }

    #[test]
    fn g711_roundtrip_keeps_tone() {
        for codec in [Codec::pcmu(), Codec::pcma()] {
            let tone = sine(1000.0, 8000, 400, 0.5);
            let out = roundtrip(&codec, &tone);
            assert_eq!(out.len(), tone.len());
            assert!((dominant_frequency(&out, 8000) - 1000.0).abs() < 10.0);
            assert!((rms_dbfs(&out) - rms_dbfs(&tone)).abs() < 0.5);
        }
    }

    #[test]
    fn g711_concealment_repeats_then_fades_to_silence() {
        let codec = Codec::pcmu();
        let mut enc = encoder_for(&codec, 20).unwrap();
        let mut dec = decoder_for(&codec, 20).unwrap();
        let tone = sine(1000.0, 8000, 20, 0.5);
        let good = dec.decode(&enc.encode(&tone));
        let levels: Vec<f32> = (0..5).map(|_| rms_dbfs(&dec.conceal(None))).collect();
        assert!((levels[0] - rms_dbfs(&good)).abs() < 3.0, "{levels:?}");
        assert!(levels.windows(2).take(3).all(|w| w[1] < w[0]), "{levels:?}");
        assert_eq!(levels[4], f32::NEG_INFINITY);
        // A good frame resets the fade.
        dec.decode(&enc.encode(&tone));
        assert!((rms_dbfs(&dec.conceal(None)) - rms_dbfs(&good)).abs() < 3.0);
    }

    #[test]
    fn opus_roundtrip_keeps_tone_and_level() {
        let tone = sine(440.0, 48000, 1000, 0.5);
        let out = roundtrip(&Codec::opus(), &tone);
        assert_eq!(out.len(), tone.len());
        let settled = &out[9600..];
        assert!((dominant_frequency(settled, 48000) - 440.0).abs() < 10.0);
        assert!((rms_dbfs(settled) - rms_dbfs(&tone[9600..])).abs() < 2.0);
    }

    #[test]
    fn opus_fec_beats_plain_plc() {
        // Lose every 5th packet; conceal with and without the next packet's FEC data.
        let tone = sine(700.0, 48000, 2000, 0.5);
        let mut enc = encoder_for(&Codec::opus(), 20).unwrap();
        let packets: Vec<Vec<u8>> = tone.chunks_exact(960).map(|f| enc.encode(f)).collect();
        let run = |use_fec: bool| -> f64 {
            let mut dec = decoder_for(&Codec::opus(), 20).unwrap();
            let mut err = 0.0;
            for (i, p) in packets.iter().enumerate() {
                let pcm = if i % 5 == 2 {
                    dec.conceal(if use_fec { packets.get(i + 1).map(|p| p.as_slice()) } else { None })
                } else {
                    dec.decode(p)
                };
                assert_eq!(pcm.len(), 960);
                if i % 5 == 2 && i > 10 {
                    // Compare with the original frame (allowing the codec's delay).
                    let orig = &tone[i * 960..(i + 1) * 960];
                    let lvl_out = rms_dbfs(&pcm);
                    err += f64::from((lvl_out - rms_dbfs(orig)).abs());
                }
            }
            err
        };
        let with_fec = run(true);
        let without = run(false);
        assert!(with_fec <= without, "fec {with_fec} plc {without}");
        // Concealment never produces silence right after good audio.
        let mut dec = decoder_for(&Codec::opus(), 20).unwrap();
        for p in &packets[..10] {
            dec.decode(p);
        }
        assert!(rms_dbfs(&dec.conceal(None)) > -30.0);
    }
}
