//! Sound cards through cpal: device lists, and capture/playback streams whose callbacks
//! only move samples through wait-free SPSC rings (rtrb). The callbacks never lock,
//! allocate or log; a stream error only stores a flag the media task reads each tick.
//! Everything else (rate conversion, mixing, the level meter, which device to use after
//! a failure) happens on the media task's side, in sans-IO code
//! ([`crate::media::device_rate`], [`crate::media::device_route`]). The media task is
//! paced by its own clock, never by a device (an ALSA `null` device runs ~1,750× real time).
//!
//! Opening a device blocks (ALSA probes it), so callers run [`open_capture`],
//! [`open_playback`] and [`list`] on a blocking thread.

use crate::media::device_rate::ring_capacity;
use crate::media::device_route::{Fault, Target};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// How much audio a ring holds: enough to ride out a late media tick, little enough
/// that a backlog (the rings drop what does not fit) costs no more than this in delay.
pub const RING_MS: u32 = 120;

const NO_FAULT: u8 = 0;
const GLITCH: u8 = 1;
const GONE: u8 = 2;

/// One device as the lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Stable identifier to choose it by (ALSA PCM name such as `hw:CARD=PCH,DEV=0`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
}

/// The devices this machine has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceList {
    /// Capture devices.
    pub inputs: Vec<DeviceInfo>,
    /// Playback devices.
    pub outputs: Vec<DeviceInfo>,
    /// The default input, when it can really be opened.
    pub default_input: Option<String>,
    /// The default output, when it can really be opened.
    pub default_output: Option<String>,
}

impl DeviceList {
    /// Why there is no sound at all, if neither default works (this machine: no sound card).
    pub fn unavailable(&self) -> Option<String> {
        (self.default_input.is_none() && self.default_output.is_none())
            .then(|| "no audio device: calls still connect, without sound".to_string())
    }
}

fn info(d: &cpal::Device) -> Option<DeviceInfo> {
    let id = d.id().ok()?.id().to_string();
    let name = d.description().map(|x| x.name().to_string()).unwrap_or_else(|_| id.clone());
    Some(DeviceInfo { id, name })
}

/// Lists devices. A default counts only if its configuration can be read: on a machine
/// without a sound card ALSA still names a default whose `default_*_config()` fails
/// with `DeviceNotAvailable`.
pub fn list() -> DeviceList {
    let host = cpal::default_host();
    let mut out = DeviceList::default();
    if let Ok(devs) = host.input_devices() {
        out.inputs = devs.filter_map(|d| info(&d)).collect();
    }
    if let Ok(devs) = host.output_devices() {
        out.outputs = devs.filter_map(|d| info(&d)).collect();
    }
    out.default_input =
        host.default_input_device().filter(|d| d.default_input_config().is_ok()).and_then(|d| info(&d)).map(|i| i.name);
    out.default_output = host
        .default_output_device()
        .filter(|d| d.default_output_config().is_ok())
        .and_then(|d| info(&d))
        .map(|i| i.name);
    out
}

/// Finds a device by id or name among `devices`.
fn find(devices: impl Iterator<Item = cpal::Device>, wanted: &str) -> Option<cpal::Device> {
    let all: Vec<cpal::Device> = devices.collect();
    let by_id = all.iter().position(|d| d.id().ok().is_some_and(|i| i.id() == wanted));
    let by_name = || all.iter().position(|d| d.description().ok().is_some_and(|x| x.name() == wanted));
    by_id.or_else(by_name).map(|i| all[i].clone())
}

/// The flag a stream's error callback sets and the media task reads.
#[derive(Debug, Clone, Default)]
pub struct FaultFlag(Arc<AtomicU8>);

impl FaultFlag {
    fn raise(&self, e: &cpal::Error) {
        let level = match e.kind() {
            cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => GLITCH,
            _ => GONE,
        };
        self.0.fetch_max(level, Ordering::Relaxed);
    }

    /// The worst fault since the last call, if any.
    pub fn take(&self) -> Option<Fault> {
        match self.0.swap(NO_FAULT, Ordering::Relaxed) {
            GONE => Some(Fault::Gone),
            GLITCH => Some(Fault::Glitch),
            _ => None,
        }
    }
}

/// An open capture stream: samples (interleaved, `channels`, `rate` Hz) arrive in `ring`.
pub struct Capture {
    /// The device's name.
    pub name: String,
    /// Its rate.
    pub rate: u32,
    /// Its channel count.
    pub channels: u16,
    /// Samples from the callback.
    pub ring: rtrb::Consumer<f32>,
    /// Set when the stream fails.
    pub fault: FaultFlag,
    _stream: cpal::Stream,
}

/// An open playback stream: samples pushed into `ring` are played (silence when it runs dry).
pub struct Playback {
    /// The device's name.
    pub name: String,
    /// Its rate.
    pub rate: u32,
    /// Its channel count.
    pub channels: u16,
    /// Samples for the callback.
    pub ring: rtrb::Producer<f32>,
    /// Set when the stream fails.
    pub fault: FaultFlag,
    _stream: cpal::Stream,
}

fn describe(e: &cpal::Error) -> String {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable => "device not available".to_string(),
        _ => e.to_string(),
    }
}

fn pick(host: &cpal::Host, target: &Target, input: bool) -> Result<cpal::Device, String> {
    match target {
        Target::Default if input => host.default_input_device().ok_or_else(|| "no default input".to_string()),
        Target::Default => host.default_output_device().ok_or_else(|| "no default output".to_string()),
        Target::Named(name) => {
            let devs = if input {
                host.input_devices().map(|d| find(d, name))
            } else {
                host.output_devices().map(|d| find(d, name))
            };
            devs.map_err(|e| describe(&e))?.ok_or_else(|| "no such device".to_string())
        }
    }
}

const OPEN_TIMEOUT: Option<Duration> = Some(Duration::from_secs(2));

/// Opens a capture stream on `target`.
pub fn open_capture(target: &Target) -> Result<Capture, String> {
    let host = cpal::default_host();
    let device = pick(&host, target, true)?;
    let supported = device.default_input_config().map_err(|e| describe(&e))?;
    let name = info(&device).map_or_else(|| "?".into(), |i| i.name);
    let config = supported.config();
    let (rate, channels) = (config.sample_rate, config.channels);
    let (mut tx, rx) = rtrb::RingBuffer::<f32>::new(ring_capacity(rate, channels, RING_MS, None));
    let fault = FaultFlag::default();
    let on_error = {
        let f = fault.clone();
        move |e: cpal::Error| f.raise(&e)
    };
    // The callbacks: push what fits, drop the rest (the media task is behind).
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
            config,
            move |data: &[f32], _| {
                let n = data.len().min(tx.slots());
                if let Ok(chunk) = tx.write_chunk_uninit(n) {
                    chunk.fill_from_iter(data[..n].iter().copied());
                }
            },
            on_error,
            OPEN_TIMEOUT,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], _| {
                let n = data.len().min(tx.slots());
                if let Ok(chunk) = tx.write_chunk_uninit(n) {
                    chunk.fill_from_iter(data[..n].iter().map(|s| f32::from(*s) / 32768.0));
                }
            },
            on_error,
            OPEN_TIMEOUT,
        ),
        other => return Err(format!("unsupported sample format {other}")),
    }
    .map_err(|e| describe(&e))?;
    stream.play().map_err(|e| describe(&e))?;
    Ok(Capture { name, rate, channels, ring: rx, fault, _stream: stream })
}

/// Opens a playback stream on `target`.
pub fn open_playback(target: &Target) -> Result<Playback, String> {
    let host = cpal::default_host();
    let device = pick(&host, target, false)?;
    let supported = device.default_output_config().map_err(|e| describe(&e))?;
    let name = info(&device).map_or_else(|| "?".into(), |i| i.name);
    let config = supported.config();
    let (rate, channels) = (config.sample_rate, config.channels);
    let (tx, mut rx) = rtrb::RingBuffer::<f32>::new(ring_capacity(rate, channels, RING_MS, None));
    let fault = FaultFlag::default();
    let on_error = {
        let f = fault.clone();
        move |e: cpal::Error| f.raise(&e)
    };
    // The callbacks: take what is there; cpal pre-fills the buffer with silence.
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => device.build_output_stream::<f32, _, _>(
            config,
            move |data: &mut [f32], _| {
                let n = data.len().min(rx.slots());
                if let Ok(chunk) = rx.read_chunk(n) {
                    for (d, s) in data.iter_mut().zip(chunk) {
                        *d = s;
                    }
                }
            },
            on_error,
            OPEN_TIMEOUT,
        ),
        cpal::SampleFormat::I16 => device.build_output_stream::<i16, _, _>(
            config,
            move |data: &mut [i16], _| {
                let n = data.len().min(rx.slots());
                if let Ok(chunk) = rx.read_chunk(n) {
                    for (d, s) in data.iter_mut().zip(chunk) {
                        *d = (s * 32768.0).clamp(-32768.0, 32767.0) as i16;
                    }
                }
            },
            on_error,
            OPEN_TIMEOUT,
        ),
        other => return Err(format!("unsupported sample format {other}")),
    }
    .map_err(|e| describe(&e))?;
    stream.play().map_err(|e| describe(&e))?;
    Ok(Playback { name, rate, channels, ring: tx, fault, _stream: stream })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this machine (no sound card) gives: the default cannot be opened, and that
    /// reads as "no audio device", not as a panic or a hang.
    #[test]
    fn no_sound_card_is_no_audio_device() {
        let l = list();
        if l.default_output.is_some() {
            eprintln!("this machine has a usable output ({:?}); nothing to check", l.default_output);
            return;
        }
        assert!(l.unavailable().is_some() || l.default_input.is_some());
        let e = open_playback(&Target::Default).err().expect("no default output here");
        assert!(!e.is_empty());
        let e = open_playback(&Target::Named("no such device 1234".into())).err().expect("unknown name");
        assert!(e.contains("no such device"), "{e}");
    }

    #[test]
    fn fault_flag_keeps_the_worst_until_taken() {
        let f = FaultFlag::default();
        assert_eq!(f.take(), None);
        f.0.fetch_max(GLITCH, Ordering::Relaxed);
        f.0.fetch_max(GONE, Ordering::Relaxed);
        f.0.fetch_max(GLITCH, Ordering::Relaxed);
        assert_eq!(f.take(), Some(Fault::Gone));
        assert_eq!(f.take(), None);
    }
}
