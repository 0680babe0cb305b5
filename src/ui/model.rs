//! The view model: what the window shows, built only from engine [`Event`]s and the clock.
//! Pure (no egui, no I/O, time is an argument) so every notice the user reads is unit-tested.

use super::text;
use crate::phone::api::{CallNo, CallStats, Event, Recall};
use std::collections::BTreeMap;

/// "Now" for pure code: Unix time and the local UTC offset (for `10:42`-style times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Seconds since the Unix epoch.
    pub unix: f64,
    /// Local time minus UTC, in seconds.
    pub utc_offset_s: i32,
}

impl Clock {
    /// The wall clock, read once per frame by the app.
    pub fn now() -> Clock {
        let now = chrono::Local::now();
        Clock { unix: now.timestamp_millis() as f64 / 1000.0, utc_offset_s: now.offset().local_minus_utc() }
    }

    /// Local `HH:MM` of a Unix time.
    pub fn hhmm(&self, unix: f64) -> String {
        let local = (unix.floor() as i64 + i64::from(self.utc_offset_s)).rem_euclid(86_400);
        format!("{:02}:{:02}", local / 3600, (local % 3600) / 60)
    }
}

/// The account's registration as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// No engine running (no account yet, or signed out).
    Offline,
    /// The engine is starting / the first REGISTER is out.
    Registering,
    /// Registered; `expires` seconds.
    Registered { expires: u32 },
    /// The registrar said no, or did not answer.
    Failed { reason: String },
    /// The account does not register (direct IP calls only).
    Direct,
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// They called us.
    Incoming,
    /// We called them.
    Outgoing,
}

/// Where a call is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Outgoing, INVITE sent.
    Dialing,
    /// Outgoing, the far end rings.
    Ringing,
    /// Incoming, ringing here.
    Incoming,
    /// Talking.
    Established,
    /// Over; `reason` is the engine's words.
    Ended { reason: String },
}

/// Where a park of one call stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ParkState {
    /// Asked the service; waiting.
    Pending,
    /// On an orbit, waiting for someone to pick it up.
    Parked,
    /// The service rings us back.
    RingingBack { attempt: u32, of: u32 },
    /// Sent to the fallback destination.
    Fallback { to: String },
    /// Somebody picked it up (`by` as the service reports it, `at` Unix time).
    Retrieved { by: String, at: f64 },
    /// The parked caller hung up.
    Abandoned,
    /// Ended by the service (nobody answered, service stopped…).
    Ended { reason: String },
    /// Park did not work.
    Failed { reason: String },
    /// Handed to the phone system's park extension (park mode "transfer to park extension").
    Extension { extension: String },
    /// Attended park by extension: on hold while `consult` calls the extension (the user
    /// listens for the slot); Complete park finishes it.
    Consulting { consult: CallNo, extension: String },
}

/// The orbit a call is parked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orbit {
    /// `7001`.
    pub orbit: String,
    /// `sip:7001@example.com` (what anyone can dial).
    pub orbit_uri: String,
    /// The safe-retrieve URI (with the park token) the orbit link dials.
    pub retrieve_uri: String,
    /// Who is parked, as the service names them.
    pub parkee: String,
}

/// One park: its state, its orbit once known, and its ring-back clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Park {
    /// Current state.
    pub state: ParkState,
    /// Known once parked.
    pub orbit: Option<Orbit>,
    /// Unix time of the next ring-back, when known or estimated.
    pub ringback_at: Option<f64>,
    /// How long the service keeps a call on the orbit before ringing back (learnt from the first park).
    pub timeout_s: Option<f64>,
    /// The last ring-back attempt (`attempt`, `of`), kept after it stops ringing.
    pub last_ringback: Option<(u32, u32)>,
}

impl Park {
    /// Whether the call is still held by the service (on the orbit or ringing back).
    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            ParkState::Pending | ParkState::Parked | ParkState::RingingBack { .. } | ParkState::Consulting { .. }
        )
    }

    /// Seconds until the next ring-back, while parked.
    pub fn ringback_in(&self, clock: &Clock) -> Option<f64> {
        match self.state {
            ParkState::Parked => self.ringback_at.map(|at| (at - clock.unix).max(0.0)),
            _ => None,
        }
    }
}

/// One call as the window shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The engine's handle.
    pub no: CallNo,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// The other party (URI or name-addr).
    pub party: String,
    /// Their display name when they sent one.
    pub name: Option<String>,
    /// Where the call is.
    pub phase: Phase,
    /// Unix time the call appeared.
    pub started: f64,
    /// Unix time it was answered.
    pub established: Option<f64>,
    /// Unix time it ended.
    pub ended: Option<f64>,
    /// We hold it.
    pub held_local: bool,
    /// They hold it.
    pub held_remote: bool,
    /// Our microphone is muted on this call.
    pub muted: bool,
    /// Negotiated codec.
    pub codec: Option<String>,
    /// A parked call ringing us back.
    pub recall: Option<Recall>,
    /// This call replaces another (attended transfer into us).
    pub replaces: Option<CallNo>,
    /// Park of this call, once asked for.
    pub park: Option<Park>,
    /// Last transfer progress, readable.
    pub transfer: Option<String>,
    /// Last error about this call, readable.
    pub error: Option<String>,
    /// Digits received from them (RFC 4733).
    pub dtmf_in: String,
    /// Latest media figures (codec, loss, jitter, round trip).
    pub stats: Option<CallStats>,
}

impl Call {
    fn new(no: CallNo, direction: Direction, party: String, phase: Phase, now: f64) -> Call {
        Call {
            no,
            direction,
            party,
            name: None,
            phase,
            started: now,
            established: None,
            ended: None,
            held_local: false,
            muted: false,
            held_remote: false,
            codec: None,
            recall: None,
            replaces: None,
            park: None,
            transfer: None,
            error: None,
            dtmf_in: String::new(),
            stats: None,
        }
    }

    /// The name to show: display name, else the user part, else the URI.
    pub fn who(&self) -> String {
        match &self.name {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => text::friendly(&self.party),
        }
    }

    /// Whether the call is over (its window may still show the park).
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    /// Talk time so far (or total, once ended), in seconds.
    pub fn talk_seconds(&self, clock: &Clock) -> Option<u64> {
        let start = self.established?;
        let end = self.ended.unwrap_or(clock.unix);
        Some((end - start).max(0.0) as u64)
    }

    /// Whether the window should stay open after the call ended: a park the user follows.
    pub fn keeps_window(&self) -> bool {
        self.park.as_ref().is_some_and(|p| !matches!(p.state, ParkState::Failed { .. }))
    }
}

/// How a call in the history went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Talked.
    Answered,
    /// Rang here, nobody answered.
    Missed,
    /// Rang here, we declined it.
    Declined,
    /// Did not connect.
    Failed,
    /// Parked (and handled by the park service).
    Parked,
}

/// One line of the recent calls list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// Incoming or outgoing.
    pub direction: Direction,
    /// URI to call back.
    pub uri: String,
    /// Name to show.
    pub name: String,
    /// Unix time the call started.
    pub at: f64,
    /// Talk time in seconds.
    pub seconds: u64,
    /// How it went.
    pub outcome: Outcome,
}

/// How many recent calls are kept.
pub const HISTORY_LEN: usize = 50;

/// An ended call without a park leaves the screen after this long.
pub const ENDED_LINGER_S: f64 = 4.0;

/// Everything the window draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The account's AOR, once known.
    pub account: String,
    /// Registration state.
    pub registration: Registration,
    /// Calls the window shows, by handle (ended ones linger, parked ones stay until closed).
    pub calls: BTreeMap<CallNo, Call>,
    /// Recent calls, newest first.
    pub history: Vec<HistoryEntry>,
    /// Messages not tied to a call ("no audio device…", errors), newest last.
    pub notices: Vec<String>,
    /// The engine stopped.
    pub stopped: bool,
    /// The history changed since the app last saved it.
    pub history_dirty: bool,
    /// Occupied orbits seen through busy-lamp (`watch-orbits`), orbit → parked party.
    pub orbits: BTreeMap<String, Option<String>>,
    /// Sound devices, the meter, and whether there is any sound card.
    pub audio: super::audio_settings::AudioView,
}

impl Default for Model {
    fn default() -> Self {
        Model::new("")
    }
}

impl Model {
    /// An empty model for an account.
    pub fn new(account: &str) -> Model {
        Model {
            account: account.to_string(),
            registration: Registration::Offline,
            calls: BTreeMap::new(),
            history: Vec::new(),
            notices: Vec::new(),
            stopped: false,
            history_dirty: false,
            orbits: BTreeMap::new(),
            audio: Default::default(),
        }
    }

    /// Apply one engine event at `clock`.
    pub fn apply(&mut self, ev: Event, clock: &Clock) {
        let now = clock.unix;
        match ev {
            Event::OrbitStatus { orbit, busy, parkee } => {
                if busy {
                    self.orbits.insert(orbit, parkee);
                } else {
                    self.orbits.remove(&orbit);
                }
            }
            Event::Registered { account, expires } => {
                self.account = account;
                self.registration = Registration::Registered { expires };
            }
            Event::RegistrationFailed { account, reason } => {
                self.account = account;
                self.registration = Registration::Failed { reason };
            }
            Event::Unregistered { account } => {
                self.account = account;
                self.registration = Registration::Offline;
            }
            Event::CallIncoming { call, from, name, recall, replaces } => {
                let mut c = Call::new(call, Direction::Incoming, from, Phase::Incoming, now);
                c.name = name;
                c.recall = recall;
                c.replaces = replaces;
                self.calls.insert(call, c);
            }
            Event::CallDialing { call, to } => {
                self.calls.insert(call, Call::new(call, Direction::Outgoing, to, Phase::Dialing, now));
            }
            Event::CallRinging { call } => {
                if let Some(c) = self.calls.get_mut(&call).filter(|c| c.phase == Phase::Dialing) {
                    c.phase = Phase::Ringing;
                }
            }
            Event::CallEstablished { call, party, codec } => {
                let c = self
                    .calls
                    .entry(call)
                    .or_insert_with(|| Call::new(call, Direction::Outgoing, party.clone(), Phase::Dialing, now));
                c.phase = Phase::Established;
                c.established.get_or_insert(now);
                if !party.is_empty() {
                    // The party as the dialog names it: for a retrieve, the parked caller.
                    if let Some(name) = text::display_name(&party) {
                        c.name = Some(name);
                    }
                    c.party = party;
                }
                // An answered ring-back needs nothing here: the service reports the pickup.
                c.codec = codec;
            }
            Event::CallHeld { call, by } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if by == "local" {
                        c.held_local = true;
                    } else {
                        c.held_remote = true;
                    }
                }
            }
            Event::CallMuted { call, muted } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.muted = muted;
                }
            }
            Event::CallResumed { call } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.held_local = false;
                    c.held_remote = false;
                }
            }
            Event::TransferProgress { call, status, reason } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.transfer = Some(text::transfer_progress(status, &reason));
                }
            }
            Event::TransferRequested { call, target, .. } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.transfer = Some(format!("Being transferred to {}", text::friendly(&target)));
                }
            }
            Event::CallStats { call, stats } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.stats = Some(stats);
                }
            }
            Event::DtmfReceived { call, digit } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.dtmf_in.push_str(&digit);
                }
            }
            Event::CallEnded { call, reason } => self.call_ended(call, reason, now),
            Event::ParkPending { call } => {
                let park = self.park_mut(call);
                park.state = ParkState::Pending;
            }
            Event::Parked { call, orbit, orbit_uri, retrieve_uri, ringback_at, parkee } => {
                let park = self.park_mut(call);
                park.state = ParkState::Parked;
                park.orbit = Some(Orbit { orbit, orbit_uri, retrieve_uri, parkee });
                let at = ringback_at as f64;
                park.ringback_at = Some(at);
                park.timeout_s = Some((at - now).max(1.0));
            }
            Event::ParkRingback { call, attempt, of } => {
                let park = self.park_mut(call);
                park.state = ParkState::RingingBack { attempt, of };
                park.last_ringback = Some((attempt, of));
                park.ringback_at = None;
            }
            Event::ParkFallback { call, to } => {
                let park = self.park_mut(call);
                park.state = ParkState::Fallback { to };
                park.ringback_at = None;
            }
            Event::ParkRetrieved { call, by } => {
                let park = self.park_mut(call);
                park.state = ParkState::Retrieved { by, at: now };
                park.ringback_at = None;
            }
            Event::ParkAbandoned { call } => {
                let park = self.park_mut(call);
                park.state = ParkState::Abandoned;
                park.ringback_at = None;
            }
            Event::ParkEnded { call, reason } => {
                let park = self.park_mut(call);
                // A final notice may come before the subscription's own end: keep the first.
                if park.is_live() {
                    park.state = ParkState::Ended { reason };
                    park.ringback_at = None;
                }
            }
            Event::ParkConsulting { call, consult, extension } => {
                self.park_mut(call).state = ParkState::Consulting { consult, extension };
            }
            Event::ParkedExtension { call, extension } => {
                let park = self.park_mut(call);
                park.state = ParkState::Extension { extension };
            }
            Event::ParkFailed { call, reason } => {
                let park = self.park_mut(call);
                park.state = ParkState::Failed { reason };
            }
            Event::Status { account, registered, .. } => {
                self.account = account;
                if registered {
                    if !matches!(self.registration, Registration::Registered { .. }) {
                        self.registration = Registration::Registered { expires: 0 };
                    }
                } else if matches!(self.registration, Registration::Registered { .. }) {
                    self.registration = Registration::Offline;
                }
            }
            Event::Error { message, call } => {
                let message = text::error(&message);
                match call.and_then(|c| self.calls.get_mut(&c)) {
                    Some(c) => c.error = Some(message),
                    None => self.notice(message),
                }
            }
            Event::AudioUnavailable { message } => {
                self.audio.unavailable = true;
                self.notice(text::error(&message));
            }
            Event::AudioNotice { message } => self.notice(message),
            ev @ (Event::AudioDevices { .. } | Event::AudioRoute { .. } | Event::AudioLevel { .. }) => {
                self.audio.apply(ev)
            }
            // The window reads the trace from the driver directly.
            Event::SipTrace { .. } => {}
            Event::Stopped => {
                self.stopped = true;
                self.registration = Registration::Offline;
            }
        }
    }

    /// Add a message for the notice bar (at most a few are kept).
    pub fn notice(&mut self, message: String) {
        if self.notices.last() != Some(&message) {
            self.notices.push(message);
        }
        if self.notices.len() > 4 {
            self.notices.remove(0);
        }
    }

    /// Drop ended calls whose window has nothing more to say.
    pub fn tick(&mut self, clock: &Clock) {
        self.calls.retain(|_, c| match c.ended {
            Some(ended) => c.keeps_window() || clock.unix - ended < ENDED_LINGER_S,
            None => true,
        });
    }

    /// The user closed a conversation window.
    pub fn dismiss(&mut self, call: CallNo) {
        if self.calls.get(&call).is_some_and(|c| c.is_ended()) {
            self.calls.remove(&call);
        }
    }

    /// Calls that are ringing here and not answered yet, oldest first.
    pub fn incoming(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().filter(|c| c.phase == Phase::Incoming)
    }

    /// Calls that have a conversation window (not ringing here).
    pub fn conversations(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().filter(|c| c.phase != Phase::Incoming)
    }

    /// My parks still held by the service, for the Parked calls panel.
    pub fn parked(&self) -> impl Iterator<Item = (&Call, &Park, &Orbit)> {
        self.calls.values().filter_map(|c| {
            let park =
                c.park.as_ref().filter(|p| matches!(p.state, ParkState::Parked | ParkState::RingingBack { .. }))?;
            Some((c, park, park.orbit.as_ref()?))
        })
    }

    /// The earliest moment something on screen changes by itself (a countdown or a timer
    /// ticks, an ended call leaves): the app asks for a repaint then, and only then.
    pub fn next_change(&self, clock: &Clock) -> Option<f64> {
        let mut next: Option<f64> = None;
        let mut at = |t: f64| next = Some(next.map_or(t, |n: f64| n.min(t)));
        for c in self.calls.values() {
            if let Some(ended) = c.ended {
                if !c.keeps_window() {
                    at(ended + ENDED_LINGER_S);
                }
            } else if c.established.is_some() {
                at(clock.unix.floor() + 1.0);
            }
            if c.park.as_ref().and_then(|p| p.ringback_in(clock)).is_some() {
                at(clock.unix.floor() + 1.0);
            }
        }
        next.map(|t| t.max(clock.unix))
    }

    /// The ring-back attempt to show on a returning call: "(attempt 1 of 3)".
    pub fn recall_attempt(&self, orbit: &str) -> Option<(u32, u32)> {
        self.park_on_orbit(orbit).and_then(|p| p.last_ringback)
    }

    /// Where a returning parked call came from: its orbit and the parked caller.
    pub fn incoming_title(&self, call: &Call) -> String {
        match &call.recall {
            Some(r) => {
                let who = text::friendly(&r.parkee);
                match self.recall_attempt(&r.orbit) {
                    Some((a, of)) => format!("Parked call returning from {} — {who} (attempt {a} of {of})", r.orbit),
                    None => format!("Parked call returning from {} — {who}", r.orbit),
                }
            }
            None => format!("{} is calling", call.who()),
        }
    }

    fn park_on_orbit(&self, orbit: &str) -> Option<&Park> {
        self.calls
            .values()
            .filter_map(|c| c.park.as_ref())
            .filter(|p| p.orbit.as_ref().is_some_and(|o| o.orbit == orbit))
            .max_by_key(|p| p.is_live())
    }

    fn park_mut(&mut self, call: CallNo) -> &mut Park {
        let c = self
            .calls
            .entry(call)
            .or_insert_with(|| Call::new(call, Direction::Outgoing, String::new(), Phase::Established, 0.0));
        c.park.get_or_insert(Park {
            state: ParkState::Pending,
            orbit: None,
            ringback_at: None,
            timeout_s: None,
            last_ringback: None,
        })
    }

    fn call_ended(&mut self, call: CallNo, reason: String, now: f64) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.is_ended() {
            return;
        }
        let was_incoming_ringing = c.phase == Phase::Incoming;
        let answered = c.established.is_some();
        c.phase = Phase::Ended { reason: reason.clone() };
        c.ended = Some(now);
        let parked =
            reason == "parked" && c.park.as_ref().is_some_and(|p| !matches!(p.state, ParkState::Failed { .. }));
        let outcome = if parked {
            Outcome::Parked
        } else if answered {
            Outcome::Answered
        } else if was_incoming_ringing && reason == "local hangup" {
            Outcome::Declined
        } else if was_incoming_ringing {
            Outcome::Missed
        } else {
            Outcome::Failed
        };
        let entry = HistoryEntry {
            direction: c.direction,
            uri: text::bare_uri(&c.party),
            name: c.who(),
            at: c.started,
            seconds: c.talk_seconds(&Clock { unix: now, utc_offset_s: 0 }).unwrap_or(0),
            outcome,
        };
        let recall_orbit = c.recall.as_ref().map(|r| r.orbit.clone()).filter(|_| !answered);
        // A ring-back is not a new call in the history: the parked call is already there.
        if c.recall.is_none() {
            self.history.insert(0, entry);
            self.history.truncate(HISTORY_LEN);
            self.history_dirty = true;
        }
        if let Some(orbit) = recall_orbit {
            self.recall_unanswered(&orbit, now);
        }
    }

    /// A ring-back stopped ringing unanswered: the call is back on its orbit until the
    /// next attempt, which the service starts one park timeout later (an estimate: the
    /// service does not send the new time).
    fn recall_unanswered(&mut self, orbit: &str, now: f64) {
        for c in self.calls.values_mut() {
            let Some(park) = c.park.as_mut() else {
                continue;
            };
            if park.orbit.as_ref().is_some_and(|o| o.orbit == orbit)
                && matches!(park.state, ParkState::RingingBack { .. })
            {
                park.state = ParkState::Parked;
                park.ringback_at = park.timeout_s.map(|t| now + t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::text::park_notice;

    const T0: f64 = 1_700_000_000.0;

    fn at(secs: f64) -> Clock {
        Clock { unix: T0 + secs, utc_offset_s: 0 }
    }

    /// Bob called us and we answered: call 1 is up.
    fn talking() -> Model {
        let mut m = Model::new("sip:alice@example.com");
        m.apply(
            Event::CallIncoming {
                call: 1,
                from: "sip:bob@example.com".into(),
                name: Some("Bob".into()),
                recall: None,
                replaces: None,
            },
            &at(0.0),
        );
        m.apply(
            Event::CallEstablished {
                call: 1,
                party: "\"Bob\" <sip:bob@example.com>".into(),
                codec: Some("PCMU".into()),
            },
            &at(1.0),
        );
        m
    }

    fn parked(m: &mut Model) {
        m.apply(Event::ParkPending { call: 1 }, &at(10.0));
        m.apply(
            Event::Parked {
                call: 1,
                orbit: "7001".into(),
                orbit_uri: "sip:7001@example.com".into(),
                retrieve_uri: "sip:7001@example.com;park-token=t".into(),
                ringback_at: (T0 + 100.0) as u64,
                parkee: "\"Bob\" <sip:bob@example.com>".into(),
            },
            &at(10.0),
        );
        m.apply(Event::CallEnded { call: 1, reason: "parked".into() }, &at(10.5));
    }

    fn notice(m: &Model, clock: &Clock) -> String {
        let p = m.calls[&1].park.as_ref().expect("a park");
        park_notice(&p.state, p.orbit.as_ref(), clock, &m.account)
    }

    #[test]
    fn park_then_pickup_reads_step_by_step() {
        let mut m = talking();
        m.apply(Event::ParkPending { call: 1 }, &at(10.0));
        assert_eq!(notice(&m, &at(10.0)), "Parking…");
        assert!(m.parked().next().is_none(), "not in the panel before it has an orbit");
        parked(&mut m);
        assert_eq!(notice(&m, &at(11.0)), "Parked on 7001");
        let (_, park, orbit) = m.parked().next().expect("in the Parked calls panel");
        assert_eq!(orbit.orbit, "7001");
        assert_eq!(park.ringback_in(&at(40.0)), Some(60.0));
        assert_eq!(m.history[0].outcome, Outcome::Parked);
        // The ended call keeps its window while parked, and after.
        m.tick(&at(60.0));
        assert!(m.calls.contains_key(&1));
        m.apply(
            Event::ParkRetrieved { call: 1, by: "\"Carol\" <sip:carol@example.com>".into() },
            &at(42.0 * 60.0 - 0.5),
        );
        assert_eq!(notice(&m, &at(50.0 * 60.0)), "Picked up by Carol at 22:55");
        assert!(m.parked().next().is_none());
        m.tick(&at(3600.0));
        assert!(m.calls.contains_key(&1), "stays until the user closes it");
        m.dismiss(1);
        assert!(m.calls.is_empty());
    }

    #[test]
    fn every_final_notice() {
        let cases: Vec<(Event, &str)> = vec![
            (Event::ParkFallback { call: 1, to: "sip:operator@example.com".into() }, "Sent to the operator"),
            (Event::ParkAbandoned { call: 1 }, "Caller hung up"),
            (Event::ParkEnded { call: 1, reason: "nobody answered".into() }, "Nobody picked it up: the call was ended"),
            (
                Event::ParkEnded { call: 1, reason: "service stopped".into() },
                "The park service stopped: the call was ended",
            ),
            (Event::ParkRingback { call: 1, attempt: 2, of: 3 }, "Ringing you back (2 of 3)"),
            (Event::ParkRetrieved { call: 1, by: "sip:alice@example.com".into() }, "Picked up by you at 22:13"),
        ];
        for (ev, want) in cases {
            let mut m = talking();
            parked(&mut m);
            m.apply(ev, &at(20.0));
            assert_eq!(notice(&m, &at(20.0)), want);
        }
        // A failure: the call is still up, the message names the reason in words.
        let mut m = talking();
        m.apply(Event::ParkPending { call: 1 }, &at(5.0));
        m.apply(Event::ParkFailed { call: 1, reason: "no free orbit".into() }, &at(5.0));
        assert_eq!(notice(&m, &at(5.0)), "Park failed: no free orbit");
        assert_eq!(m.calls[&1].phase, Phase::Established);
        // A late "subscription ended" does not overwrite a final notice.
        let mut m = talking();
        parked(&mut m);
        m.apply(Event::ParkAbandoned { call: 1 }, &at(20.0));
        m.apply(Event::ParkEnded { call: 1, reason: "the park service ended the subscription".into() }, &at(20.0));
        assert_eq!(notice(&m, &at(20.0)), "Caller hung up");
    }

    #[test]
    fn ring_back_is_labelled_and_returns_to_the_orbit_if_unanswered() {
        let mut m = talking();
        parked(&mut m);
        let recall = Recall { orbit: "7001".into(), parkee: "\"Bob\" <sip:bob@example.com>".into() };
        m.apply(
            Event::CallIncoming {
                call: 2,
                from: "sip:park@example.com".into(),
                name: None,
                recall: Some(recall),
                replaces: None,
            },
            &at(100.0),
        );
        let title = |m: &Model| m.incoming_title(&m.calls[&2]);
        assert_eq!(title(&m), "Parked call returning from 7001 — Bob");
        m.apply(Event::ParkRingback { call: 1, attempt: 1, of: 3 }, &at(100.0));
        assert_eq!(title(&m), "Parked call returning from 7001 — Bob (attempt 1 of 3)");
        assert_eq!(m.incoming().count(), 1);
        // Not answered: back on the orbit, next ring-back one park timeout (90 s) later.
        m.apply(Event::CallEnded { call: 2, reason: "cancelled".into() }, &at(120.0));
        assert_eq!(notice(&m, &at(120.0)), "Parked on 7001");
        assert_eq!(m.calls[&1].park.as_ref().and_then(|p| p.ringback_in(&at(120.0))), Some(90.0));
        assert_eq!(m.history.len(), 1, "a ring-back is not a new call in the history");
        assert_eq!(m.incoming().count(), 0);
    }

    #[test]
    fn calls_history_and_idle_repaints() {
        let mut m = Model::new("sip:alice@example.com");
        assert_eq!(m.next_change(&at(0.0)), None, "an idle window never wakes up");
        m.apply(Event::CallDialing { call: 3, to: "sip:bob@example.com".into() }, &at(0.0));
        m.apply(Event::CallRinging { call: 3 }, &at(0.5));
        assert_eq!(m.calls[&3].phase, Phase::Ringing);
        assert_eq!(m.next_change(&at(0.7)), None, "nothing ticks while ringing");
        m.apply(Event::CallEnded { call: 3, reason: "486 Busy Here".into() }, &at(2.0));
        assert_eq!(m.history[0].outcome, Outcome::Failed);
        assert!(m.history_dirty);
        assert_eq!(m.next_change(&at(2.0)), Some(T0 + 2.0 + ENDED_LINGER_S));
        m.tick(&at(2.0 + ENDED_LINGER_S + 0.1));
        assert!(m.calls.is_empty(), "an ended call without a park leaves");

        let mut m = talking();
        assert_eq!(m.next_change(&at(5.3)), Some(T0 + 6.0), "the talk timer ticks each second");
        assert_eq!(m.calls[&1].talk_seconds(&at(66.0)), Some(65));
        m.apply(Event::CallHeld { call: 1, by: "local" }, &at(7.0));
        assert!(m.calls[&1].held_local);
        m.apply(Event::CallResumed { call: 1 }, &at(8.0));
        assert!(!m.calls[&1].held_local);
        m.apply(
            Event::CallIncoming {
                call: 4,
                from: "sip:carol@example.com".into(),
                name: None,
                recall: None,
                replaces: None,
            },
            &at(9.0),
        );
        m.apply(Event::CallEnded { call: 4, reason: "remote hangup".into() }, &at(12.0));
        assert_eq!(m.history[0].outcome, Outcome::Missed);
        assert_eq!(m.history[0].name, "carol");
        m.apply(
            Event::CallIncoming {
                call: 5,
                from: "sip:dave@example.com".into(),
                name: None,
                recall: None,
                replaces: None,
            },
            &at(13.0),
        );
        m.apply(Event::CallEnded { call: 5, reason: "local hangup".into() }, &at(14.0));
        assert_eq!(m.history[0].outcome, Outcome::Declined);
    }

    #[test]
    fn registration_and_notices() {
        let mut m = Model::default();
        m.apply(Event::Registered { account: "sip:alice@example.com".into(), expires: 600 }, &at(0.0));
        assert_eq!(m.registration, Registration::Registered { expires: 600 });
        m.apply(
            Event::RegistrationFailed { account: "sip:alice@example.com".into(), reason: "wrong password".into() },
            &at(1.0),
        );
        assert_eq!(m.registration, Registration::Failed { reason: "wrong password".into() });
        m.apply(Event::AudioUnavailable { message: "no device".into() }, &at(1.0));
        assert_eq!(m.notices[0], "No device");
        m.apply(Event::Error { message: "hold failed: 488 Not Acceptable Here".into(), call: None }, &at(1.0));
        assert_eq!(m.notices[1], "Hold failed: no common audio format");
        m.apply(Event::Stopped, &at(2.0));
        assert!(m.stopped);
        assert_eq!(m.registration, Registration::Offline);
    }

    #[test]
    fn clock_formats_local_time() {
        assert_eq!(Clock { unix: 0.0, utc_offset_s: -3600 }.hhmm(0.0), "23:00");
        assert_eq!(at(0.0).hhmm(T0), "22:13");
    }

    #[test]
    fn call_stats_are_kept_per_call() {
        let mut m = talking();
        let stats = CallStats {
            codec: "opus".into(),
            packets_sent: 100,
            packets_received: 99,
            packets_lost: 1,
            loss_percent: 1.0,
            jitter_ms: 2.5,
            jitter_buffer_ms: 40,
            rtt_ms: Some(12.0),
            remote_loss_percent: None,
            remote_jitter_ms: None,
            rtcp_received: 2,
            srtp: true,
        };
        m.apply(Event::CallStats { call: 1, stats: stats.clone() }, &at(5.0));
        // Figures for a call we do not know are ignored.
        m.apply(Event::CallStats { call: 9, stats: stats.clone() }, &at(5.0));
        assert_eq!(m.calls.get(&1).and_then(|c| c.stats.as_ref()), Some(&stats));
        assert_eq!(m.calls.len(), 1);
    }
}
