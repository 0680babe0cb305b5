//! Which sound device a direction (microphone or speaker) uses, and what happens when it
//! fails: the chosen device, else the system default, else paced silence with a notice,
//! retried now and then. A device unplugged mid-call switches to the default; a call is
//! never dropped for lack of a device. Sans-IO: the driver opens devices when told
//! ([`RouteAction::Open`]) and reports back ([`DeviceRoute::opened`],
//! [`DeviceRoute::fault`]); time is an argument in milliseconds.

/// How long silence lasts before a device is tried again (doubling while it keeps
/// failing, up to [`MAX_RETRY_MS`], so a machine without a card is not probed 12 times a minute).
pub const RETRY_MS: u64 = 5_000;
/// The longest wait between retries.
pub const MAX_RETRY_MS: u64 = 60_000;
/// A default device that fails again this soon after opening is not reopened at once.
pub const FLAP_MS: u64 = 2_000;

/// Which device to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The device the user chose, by name.
    Named(String),
    /// The system default.
    Default,
}

/// What the driver should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Open this device (closing any open one); report with `attempt` to [`DeviceRoute::opened`].
    Open {
        /// The device.
        target: Target,
        /// Tags the answer, so a late answer to an older attempt is ignored.
        attempt: u64,
    },
    /// Close the device; the direction is silent now.
    Close,
    /// Tell the user (a sentence).
    Notice(String),
}

/// How a running stream failed, as the driver classifies its backend's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The device is gone or the stream cannot go on (unplugged, invalidated, backend error).
    Gone,
    /// A glitch the stream survives (underrun/overrun).
    Glitch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not needed (no call, no meter, no tone).
    Idle,
    Opening {
        target: Target,
        attempt: u64,
    },
    Open {
        target: Target,
        name: String,
        since: u64,
    },
    Silent {
        retry_at: u64,
    },
}

/// One direction's device choice and fallback.
#[derive(Debug, Clone)]
pub struct DeviceRoute {
    role: &'static str,
    wanted: Option<String>,
    state: State,
    attempts: u64,
    told_silent: bool,
    retry_ms: u64,
}

impl DeviceRoute {
    /// A route for `role` ("microphone", "speaker"); `wanted` is the chosen device name.
    pub fn new(role: &'static str, wanted: Option<String>) -> DeviceRoute {
        DeviceRoute {
            role,
            wanted: wanted.filter(|w| !w.is_empty()),
            state: State::Idle,
            attempts: 0,
            told_silent: false,
            retry_ms: RETRY_MS,
        }
    }

    /// The device in use, if one is open.
    pub fn current(&self) -> Option<&str> {
        match &self.state {
            State::Open { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether the route is silent for lack of a device (not merely idle or opening).
    pub fn is_silent(&self) -> bool {
        matches!(self.state, State::Silent { .. })
    }

    /// Whether the route is in use (not idle).
    pub fn is_active(&self) -> bool {
        self.state != State::Idle
    }

    /// The chosen device name.
    pub fn wanted(&self) -> Option<&str> {
        self.wanted.as_deref()
    }

    fn open(&mut self, target: Target) -> RouteAction {
        self.attempts += 1;
        self.state = State::Opening { target: target.clone(), attempt: self.attempts };
        RouteAction::Open { target, attempt: self.attempts }
    }

    fn first_target(&self) -> Target {
        self.wanted.clone().map_or(Target::Default, Target::Named)
    }

    fn go_silent(&mut self, now: u64, reason: &str, out: &mut Vec<RouteAction>) {
        self.state = State::Silent { retry_at: now + self.retry_ms };
        self.retry_ms = (self.retry_ms * 2).min(MAX_RETRY_MS);
        out.push(RouteAction::Close);
        if !self.told_silent {
            self.told_silent = true;
            out.push(RouteAction::Notice(format!(
                "No audio device found for the {} ({reason}) — calls still connect without sound",
                self.role
            )));
        }
    }

    /// The direction is needed (a call, the meter or the tone started): open a device.
    pub fn start(&mut self) -> Vec<RouteAction> {
        if self.state != State::Idle {
            return Vec::new();
        }
        vec![self.open(self.first_target())]
    }

    /// Nothing needs the device any more: close it.
    pub fn stop(&mut self) -> Vec<RouteAction> {
        if self.state == State::Idle {
            return Vec::new();
        }
        self.state = State::Idle;
        vec![RouteAction::Close]
    }

    /// The user chose another device (`None` or empty: the default).
    pub fn choose(&mut self, wanted: Option<String>) -> Vec<RouteAction> {
        self.wanted = wanted.filter(|w| !w.is_empty());
        self.told_silent = false;
        self.retry_ms = RETRY_MS;
        if self.state == State::Idle {
            return Vec::new();
        }
        vec![self.open(self.first_target())]
    }

    /// The answer to [`RouteAction::Open`]: the opened device's name, or why it failed.
    pub fn opened(&mut self, now: u64, attempt: u64, result: Result<String, String>) -> Vec<RouteAction> {
        let State::Opening { target, attempt: expected } = &self.state else {
            return Vec::new();
        };
        if *expected != attempt {
            return Vec::new();
        }
        let target = target.clone();
        let mut out = Vec::new();
        match (result, target) {
            (Ok(name), target) => {
                self.retry_ms = RETRY_MS;
                if std::mem::take(&mut self.told_silent) {
                    out.push(RouteAction::Notice(format!(
                        "Sound is back: the {} is now \u{201c}{name}\u{201d}",
                        self.role
                    )));
                }
                self.state = State::Open { target, name, since: now };
            }
            (Err(reason), Target::Named(name)) => {
                out.push(RouteAction::Notice(format!(
                    "The {} \u{201c}{name}\u{201d} is not available ({reason}); using the default",
                    self.role
                )));
                out.push(self.open(Target::Default));
            }
            (Err(reason), Target::Default) => self.go_silent(now, &reason, &mut out),
        }
        out
    }

    /// The open stream failed.
    pub fn fault(&mut self, now: u64, fault: Fault) -> Vec<RouteAction> {
        if fault == Fault::Glitch {
            return Vec::new();
        }
        let State::Open { target, name, since } = &self.state else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match target {
            Target::Named(_) => {
                out.push(RouteAction::Notice(format!(
                    "The {} \u{201c}{name}\u{201d} was disconnected; switching to the default",
                    self.role
                )));
                out.push(self.open(Target::Default));
            }
            // The default may now be another device: reopen it, unless it keeps failing.
            Target::Default if now.saturating_sub(*since) >= FLAP_MS => out.push(self.open(Target::Default)),
            Target::Default => {
                let reason = format!("\u{201c}{name}\u{201d} keeps failing");
                self.go_silent(now, &reason, &mut out);
            }
        }
        out
    }

    /// When [`DeviceRoute::handle_timeout`] wants to run (silent: the next retry).
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Silent { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// Retry a device after a spell of silence.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<RouteAction> {
        match self.state {
            State::Silent { retry_at } if now >= retry_at => vec![self.open(self.first_target())],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(actions: &[RouteAction]) -> (Target, u64) {
        actions
            .iter()
            .find_map(|a| match a {
                RouteAction::Open { target, attempt } => Some((target.clone(), *attempt)),
                _ => None,
            })
            .expect("an Open action")
    }

    fn notices(actions: &[RouteAction]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                RouteAction::Notice(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn chosen_then_default_then_silence_with_one_notice() {
        let mut r = DeviceRoute::new("speaker", Some("USB headset".into()));
        let (t, a) = attempt(&r.start());
        assert_eq!(t, Target::Named("USB headset".into()));
        let acts = r.opened(0, a, Err("not found".into()));
        assert!(notices(&acts)[0].contains("using the default"), "{acts:?}");
        let (t, a) = attempt(&acts);
        assert_eq!(t, Target::Default);
        let acts = r.opened(10, a, Err("DeviceNotAvailable".into()));
        assert!(acts.contains(&RouteAction::Close));
        assert!(notices(&acts)[0].contains("calls still connect without sound"), "{acts:?}");
        assert!(r.is_silent() && r.current().is_none());
        // Retried after RETRY_MS; a failing retry stays quiet.
        assert_eq!(r.poll_timeout(), Some(10 + RETRY_MS));
        assert!(r.handle_timeout(100).is_empty());
        let (t, a) = attempt(&r.handle_timeout(10 + RETRY_MS));
        assert_eq!(t, Target::Named("USB headset".into()));
        let (_, a2) = attempt(&r.opened(RETRY_MS + 20, a, Err("gone".into())));
        let acts = r.opened(RETRY_MS + 30, a2, Err("gone".into()));
        assert!(notices(&acts).is_empty(), "no repeated notice: {acts:?}");
        // The next retry waits twice as long.
        assert_eq!(r.poll_timeout(), Some(3 * RETRY_MS + 30));
        assert!(r.handle_timeout(2 * RETRY_MS + 30).is_empty());
        // A retry that works says so.
        let (_, a) = attempt(&r.handle_timeout(3 * RETRY_MS + 30));
        let acts = r.opened(3 * RETRY_MS + 40, a, Ok("USB headset".into()));
        assert!(notices(&acts)[0].contains("Sound is back"), "{acts:?}");
        assert_eq!(r.current(), Some("USB headset"));
        // Backing off stops at a minute.
        let mut r = DeviceRoute::new("speaker", None);
        let (_, mut a) = attempt(&r.start());
        let mut now = 0;
        for _ in 0..10 {
            r.opened(now, a, Err("no card".into()));
            now = r.poll_timeout().unwrap();
            a = attempt(&r.handle_timeout(now)).1;
        }
        r.opened(now, a, Err("no card".into()));
        assert_eq!(r.poll_timeout(), Some(now + MAX_RETRY_MS));
    }

    #[test]
    fn unplugged_chosen_device_switches_to_default() {
        let mut r = DeviceRoute::new("microphone", Some("USB headset".into()));
        let (_, a) = attempt(&r.start());
        assert!(r.opened(0, a, Ok("USB headset".into())).is_empty());
        assert!(r.fault(1000, Fault::Glitch).is_empty(), "an xrun is not a reason to switch");
        let acts = r.fault(60_000, Fault::Gone);
        assert!(notices(&acts)[0].contains("was disconnected"), "{acts:?}");
        let (t, a) = attempt(&acts);
        assert_eq!(t, Target::Default);
        r.opened(60_010, a, Ok("default".into()));
        assert_eq!(r.current(), Some("default"));
        // The default failing long after opening is reopened (it may be another card now)…
        let (t, a) = attempt(&r.fault(120_000, Fault::Gone));
        assert_eq!(t, Target::Default);
        r.opened(120_010, a, Ok("default".into()));
        // …but one that fails again at once goes silent instead of spinning.
        let acts = r.fault(120_500, Fault::Gone);
        assert!(r.is_silent(), "{acts:?}");
        assert!(notices(&acts)[0].contains("without sound"));
    }

    #[test]
    fn late_answers_and_idle_faults_are_ignored() {
        let mut r = DeviceRoute::new("speaker", None);
        assert!(r.fault(0, Fault::Gone).is_empty());
        let (t, a) = attempt(&r.start());
        assert_eq!(t, Target::Default);
        assert!(r.start().is_empty(), "already opening");
        // The user picks another device while the first open is in flight.
        let (t2, a2) = attempt(&r.choose(Some("HDMI".into())));
        assert_eq!(t2, Target::Named("HDMI".into()));
        assert!(r.opened(5, a, Ok("default".into())).is_empty(), "stale answer");
        assert_eq!(r.current(), None);
        r.opened(6, a2, Ok("HDMI".into()));
        assert_eq!(r.current(), Some("HDMI"));
        assert_eq!(r.stop(), vec![RouteAction::Close]);
        assert!(!r.is_active());
        assert!(r.choose(None).is_empty(), "idle: nothing to open");
        assert_eq!(attempt(&r.start()).0, Target::Default);
    }
}
