//! The mix bus's sound-card end, used by the media task on its own 20 ms clock: each
//! tick it takes one bus frame of microphone from the capture ring (downmixed and
//! resampled to 48 kHz mono) and gives one frame to the playback ring (resampled to the
//! device rate and channels), plus the settings screen's test tone and input meter, and
//! the ringtone while a call rings in (on the ring device when one is chosen apart from
//! the speaker, else mixed into the speaker).
//! Devices are opened on a blocking thread when something needs them (a call, the
//! meter, the tone) and closed when nothing does; which device, and what to do when one
//! fails, is [`DeviceRoute`]'s decision. No device: the bus simply gets silence.

use super::audio_device::{self, Capture, Playback};
use crate::media::device_rate::{RateConverter, downmix, to_f32, to_i16, upmix};
use crate::media::device_route::{DeviceRoute, RouteAction, Target};
use crate::media::level::{Level, TestTone};
use crate::media::ringtone::Ringtone;
use std::sync::mpsc;

/// What the sound card end reports to the media task (which forwards it to the face).
#[derive(Debug, Clone, PartialEq)]
pub enum SoundEvent {
    /// A sentence for the user (device switched, no device, sound back).
    Notice(String),
    /// The devices in use changed (`None`: silent).
    Devices {
        /// Capture device.
        input: Option<String>,
        /// Playback device.
        output: Option<String>,
    },
    /// The microphone level (sent while the meter is on).
    Level(Level),
}

/// The three uses of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Mic,
    Speaker,
    Ring,
}

enum Opened {
    Capture { attempt: u64, result: Result<Capture, String> },
    Playback { dir: Dir, attempt: u64, result: Result<Playback, String> },
}

/// Samples of bus audio (48 kHz) buffered at most on each side: 3 ticks.
const MAX_BUS_BACKLOG: usize = 3 * 960;

/// The sound-card end of the bus.
pub struct SoundCard {
    bus_rate: u32,
    use_input: bool,
    use_output: bool,
    input: DeviceRoute,
    output: DeviceRoute,
    ring: DeviceRoute,
    /// The ring device is a device of its own (not the speaker's).
    ring_apart: bool,
    capture: Option<(Capture, RateConverter)>,
    playback: Option<(Playback, RateConverter)>,
    ring_playback: Option<(Playback, RateConverter)>,
    ringtone: Option<Ringtone>,
    opened_tx: mpsc::Sender<Opened>,
    opened_rx: mpsc::Receiver<Opened>,
    tone: Option<TestTone>,
    meter: bool,
    meter_ticks: u32,
    events: Vec<SoundEvent>,
    scratch: Vec<f32>,
    mono: Vec<f32>,
    last_reported: (Option<String>, Option<String>),
}

impl SoundCard {
    /// A sound card end for `bus_rate` Hz. Per direction: `None` = not used (a file
    /// replaces it), `Some(None)` = the default device, `Some(Some(name))` = that device.
    /// `ring`: the ring device (`None`: ring on the speaker).
    pub fn new(
        bus_rate: u32,
        input: Option<Option<String>>,
        output: Option<Option<String>>,
        ring: Option<String>,
    ) -> SoundCard {
        let (opened_tx, opened_rx) = mpsc::channel();
        let ring = ring.filter(|r| !r.is_empty());
        SoundCard {
            bus_rate,
            use_input: input.is_some(),
            use_output: output.is_some(),
            ring_apart: ring_apart(ring.as_deref(), output.as_ref()),
            input: DeviceRoute::new("microphone", input.flatten()),
            output: DeviceRoute::new("speaker", output.flatten()),
            ring: DeviceRoute::new("ringtone device", ring),
            capture: None,
            playback: None,
            ring_playback: None,
            ringtone: None,
            opened_tx,
            opened_rx,
            tone: None,
            meter: false,
            meter_ticks: 0,
            events: Vec::new(),
            scratch: Vec::new(),
            mono: Vec::new(),
            last_reported: (None, None),
        }
    }

    /// Whether the media task must keep ticking for the sound card alone (meter, tone, ringing).
    pub fn wants_ticks(&self) -> bool {
        self.meter || self.tone.is_some() || self.ringtone.is_some()
    }

    /// Start or stop the ringtone (a call is ringing in, or no longer).
    pub fn set_ringing(&mut self, on: bool) {
        match (on, self.ringtone.is_some()) {
            (true, false) => self.ringtone = Some(Ringtone::new(self.bus_rate, 0.5)),
            (false, true) => self.ringtone = None,
            _ => {}
        }
    }

    /// Turn the input level meter on or off.
    pub fn set_meter(&mut self, on: bool) {
        self.meter = on;
    }

    /// Play a 440 Hz tone for one second on the speaker.
    pub fn play_test_tone(&mut self) {
        self.tone = Some(TestTone::new(440.0, self.bus_rate, 1000, 0.25));
    }

    /// Choose devices (`None` or empty: the default); open ones are switched at once.
    pub fn choose(&mut self, input: Option<String>, output: Option<String>, ring: Option<String>) {
        let acts = self.input.choose(input);
        self.run(Dir::Mic, acts);
        let ring = ring.filter(|r| !r.is_empty());
        self.ring_apart = ring_apart(ring.as_deref(), self.use_output.then_some(&output));
        let acts = self.output.choose(output);
        self.run(Dir::Speaker, acts);
        let acts = self.ring.choose(ring);
        self.run(Dir::Ring, acts);
    }

    /// Events since the last call.
    pub fn drain_events(&mut self) -> Vec<SoundEvent> {
        std::mem::take(&mut self.events)
    }

    fn close(&mut self, dir: Dir) {
        let capture = if dir == Dir::Mic { self.capture.take() } else { None };
        let playback = match dir {
            Dir::Mic => None,
            Dir::Speaker => self.playback.take(),
            Dir::Ring => self.ring_playback.take(),
        };
        if capture.is_none() && playback.is_none() {
            return;
        }
        // Dropping a stream joins its backend thread: not on the runtime's threads.
        let job = move || drop((capture, playback));
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(job);
            }
            Err(_) => job(),
        }
    }

    fn route(&mut self, dir: Dir) -> &mut DeviceRoute {
        match dir {
            Dir::Mic => &mut self.input,
            Dir::Speaker => &mut self.output,
            Dir::Ring => &mut self.ring,
        }
    }

    fn run(&mut self, dir: Dir, actions: Vec<RouteAction>) {
        for a in actions {
            match a {
                RouteAction::Open { target, attempt } => {
                    self.close(dir);
                    self.spawn_open(dir, target, attempt);
                }
                RouteAction::Close => self.close(dir),
                RouteAction::Notice(n) => {
                    tracing::info!("audio: {n}");
                    self.events.push(SoundEvent::Notice(n));
                }
            }
        }
    }

    fn spawn_open(&self, dir: Dir, target: Target, attempt: u64) {
        let tx = self.opened_tx.clone();
        // ALSA probes the device when it opens: keep that off the runtime's threads.
        let job = move || {
            let msg = match dir {
                Dir::Mic => Opened::Capture { attempt, result: audio_device::open_capture(&target) },
                _ => Opened::Playback { dir, attempt, result: audio_device::open_playback(&target) },
            };
            let _ = tx.send(msg);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(job);
            }
            Err(_) => job(),
        }
    }

    fn take_opened(&mut self, now_ms: u64) {
        while let Ok(o) = self.opened_rx.try_recv() {
            match o {
                Opened::Capture { attempt, result } => {
                    let (summary, kept) = split(result);
                    let acts = self.input.opened(now_ms, attempt, summary);
                    if let Some(c) = kept
                        && self.input.current().is_some()
                    {
                        match RateConverter::adaptive(c.rate, self.bus_rate, MAX_BUS_BACKLOG) {
                            Ok(conv) => self.capture = Some((c, conv)),
                            Err(e) => tracing::warn!("audio: {e}"),
                        }
                    }
                    self.run(Dir::Mic, acts);
                }
                Opened::Playback { dir, attempt, result } => {
                    let (summary, kept) = split(result);
                    let acts = self.route(dir).opened(now_ms, attempt, summary);
                    if let Some(p) = kept
                        && self.route(dir).current().is_some()
                    {
                        // Keep at most the ring's worth of converted audio waiting.
                        let max = (p.rate as usize * 3 / 50).max(64);
                        match RateConverter::adaptive(self.bus_rate, p.rate, max) {
                            Ok(conv) if dir == Dir::Ring => self.ring_playback = Some((p, conv)),
                            Ok(conv) => self.playback = Some((p, conv)),
                            Err(e) => tracing::warn!("audio: {e}"),
                        }
                    }
                    self.run(dir, acts);
                }
            }
        }
    }

    /// Housekeeping each tick: device answers, stream faults, retries, open or close
    /// devices as `needed` says, and report what changed.
    pub fn tick(&mut self, now_ms: u64, needed: bool) {
        let ringing_apart = self.ringtone.is_some() && self.ring_apart;
        // The ring device alone does not need the microphone and speaker open.
        let needed = needed || self.meter || self.tone.is_some() || (self.ringtone.is_some() && !self.ring_apart);
        for (dir, want) in [
            (Dir::Mic, needed && self.use_input),
            (Dir::Speaker, needed && self.use_output),
            (Dir::Ring, ringing_apart),
        ] {
            let acts = if want { self.route(dir).start() } else { self.route(dir).stop() };
            self.run(dir, acts);
        }
        self.take_opened(now_ms);
        let faults = [
            (Dir::Mic, self.capture.as_ref().and_then(|(c, _)| c.fault.take())),
            (Dir::Speaker, self.playback.as_ref().and_then(|(p, _)| p.fault.take())),
            (Dir::Ring, self.ring_playback.as_ref().and_then(|(p, _)| p.fault.take())),
        ];
        for (dir, fault) in faults {
            if let Some(f) = fault {
                let acts = self.route(dir).fault(now_ms, f);
                self.run(dir, acts);
            }
        }
        for dir in [Dir::Mic, Dir::Speaker, Dir::Ring] {
            let acts = self.route(dir).handle_timeout(now_ms);
            self.run(dir, acts);
        }
        let now = (self.input.current().map(str::to_string), self.output.current().map(str::to_string));
        if now != self.last_reported && needed {
            self.last_reported = now.clone();
            self.events.push(SoundEvent::Devices { input: now.0, output: now.1 });
        }
    }

    /// Fills `mic` (one bus frame) from the capture device; `false` when there is none
    /// (the caller keeps its own source or silence).
    pub fn read_mic(&mut self, mic: &mut [i16]) -> bool {
        let Some((cap, conv)) = self.capture.as_mut() else {
            self.meter_level(None);
            return false;
        };
        let n = cap.ring.slots();
        if let Ok(chunk) = cap.ring.read_chunk(n) {
            self.scratch.clear();
            self.scratch.extend(chunk);
            self.mono.clear();
            downmix(&self.scratch, cap.channels, &mut self.mono);
            conv.push(&self.mono);
        }
        self.mono.clear();
        conv.pop_into(mic.len(), &mut self.mono);
        // Follow the device's clock: keep about one tick waiting after each pop.
        conv.steer(conv.available(), mic.len());
        // Short on samples (device starting, slow clock): the rest is silence.
        for (i, s) in mic.iter_mut().enumerate() {
            *s = self.mono.get(i).map_or(0, |v| to_i16(*v));
        }
        self.meter_level(Some(mic));
        true
    }

    fn meter_level(&mut self, mic: Option<&[i16]>) {
        if !self.meter {
            return;
        }
        // 25 updates a second are plenty for a bar.
        self.meter_ticks = self.meter_ticks.wrapping_add(1);
        if self.meter_ticks.is_multiple_of(2) {
            self.events.push(SoundEvent::Level(Level::of(mic.unwrap_or(&[]))));
        }
    }

    /// Plays one bus frame (with the test tone, and the ringtone unless it has a device
    /// of its own, mixed in); without a device only the tones' clocks advance.
    pub fn write_speaker(&mut self, frame: &[i16]) {
        let mut owned = frame.to_vec();
        if let Some(t) = self.tone.as_mut() {
            t.mix_into(&mut owned);
            if t.finished() {
                self.tone = None;
            }
        }
        if let Some(r) = self.ringtone.as_mut() {
            if self.ring_apart {
                let mut ring = vec![0i16; frame.len()];
                r.mix_into(&mut ring);
                if let Some((pb, conv)) = self.ring_playback.as_mut() {
                    play(pb, conv, &ring, &mut self.mono, &mut self.scratch);
                }
            } else {
                r.mix_into(&mut owned);
            }
        }
        if let Some((pb, conv)) = self.playback.as_mut() {
            play(pb, conv, &owned, &mut self.mono, &mut self.scratch);
        }
    }
}

/// Whether the ring device differs from the speaker (`output`: `None` = no speaker device).
fn ring_apart(ring: Option<&str>, output: Option<&Option<String>>) -> bool {
    match (ring, output) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(r), Some(o)) => o.as_deref() != Some(r),
    }
}

/// Converts one bus frame to the device's rate and channels and queues it for the callback.
fn play(pb: &mut Playback, conv: &mut RateConverter, frame: &[i16], mono: &mut Vec<f32>, scratch: &mut Vec<f32>) {
    // Follow the device's clock: keep about two ticks queued for the device.
    let queued = (pb.ring.buffer().capacity() - pb.ring.slots()) / usize::from(pb.channels.max(1));
    conv.steer(queued, pb.rate as usize / 25);
    mono.clear();
    mono.extend(to_f32(frame));
    conv.push(mono);
    mono.clear();
    let ready = conv.available();
    conv.pop_into(ready, mono);
    scratch.clear();
    upmix(mono, pb.channels, scratch);
    // What does not fit is dropped: the device is behind, and late audio is useless.
    let n = scratch.len().min(pb.ring.slots());
    if let Ok(chunk) = pb.ring.write_chunk_uninit(n) {
        chunk.fill_from_iter(scratch[..n].iter().copied());
    }
}

impl SoundCard {
    /// The ring device is separate from the speaker (tests).
    pub fn rings_apart(&self) -> bool {
        self.ring_apart
    }
}

fn split<T>(r: Result<T, String>) -> (Result<String, String>, Option<T>)
where
    T: Named,
{
    match r {
        Ok(v) => (Ok(v.name().to_string()), Some(v)),
        Err(e) => (Err(e), None),
    }
}

trait Named {
    fn name(&self) -> &str;
}

impl Named for Capture {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Playback {
    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine has no sound card: asked for devices, the sound card end says so
    /// once, keeps giving `false` (silence) and never panics; the tone still runs out.
    #[test]
    fn without_a_device_the_bus_gets_silence_and_one_notice() {
        if audio_device::list().default_output.is_some() {
            eprintln!("a sound card is present; skipping");
            return;
        }
        let mut s = SoundCard::new(48000, Some(None), Some(Some("no such speaker".into())), None);
        s.set_meter(true);
        s.play_test_tone();
        let mut mic = [1i16; 960];
        let mut events = Vec::new();
        for t in 0..60u64 {
            s.tick(t * 20, true);
            assert!(!s.read_mic(&mut mic));
            s.write_speaker(&[0; 960]);
            events.extend(s.drain_events());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let notices: Vec<&String> =
            events.iter().filter_map(|e| if let SoundEvent::Notice(n) = e { Some(n) } else { None }).collect();
        assert!(
            notices.iter().any(|n| n.contains("no such speaker") && n.contains("using the default")),
            "{notices:?}"
        );
        assert_eq!(notices.iter().filter(|n| n.contains("without sound")).count(), 2, "one per direction: {notices:?}");
        assert!(
            events.iter().any(|e| matches!(e, SoundEvent::Level(l) if l.rms_dbfs == crate::media::level::FLOOR_DBFS))
        );
        assert!(s.tone.is_none(), "the 1 s tone ran out after 60 ticks");
        s.set_meter(false);
        assert!(!s.wants_ticks());
        s.set_ringing(true);
        assert!(s.wants_ticks() && !s.rings_apart());
        s.set_ringing(false);
        assert!(!s.wants_ticks());
    }

    #[test]
    fn ring_device_apart_only_when_it_differs_from_the_speaker() {
        assert!(!ring_apart(None, Some(&Some("hw:1".into()))));
        assert!(!ring_apart(Some("hw:1"), Some(&Some("hw:1".into()))));
        assert!(ring_apart(Some("hw:2"), Some(&Some("hw:1".into()))));
        assert!(ring_apart(Some("hw:2"), Some(&None)), "the speaker is the default, the ring device is not");
        assert!(ring_apart(Some("hw:2"), None), "the speaker is a WAV file");
    }
}
