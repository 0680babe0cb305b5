//! Desktop notifications: which engine events deserve one and what they say
//! ([`notification_for`], pure and unit-tested), and where they go ([`Notifier`]:
//! the desktop's notification daemon through `notify-rust`, or memory in tests).
//! Without a daemon (no session bus, headless) the app says so once in the window.

use super::model::{Clock, Model};
use super::text;
use crate::phone::api::Event;
use std::sync::{Arc, Mutex};

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The headline ("Incoming call", "Picked up by Carol at 10:42").
    pub summary: String,
    /// The detail line.
    pub body: String,
}

/// Where notifications are shown. `show` may block briefly (a D-Bus round trip), so the
/// app calls it off the UI thread.
pub trait Notifier: Send + Sync {
    /// Show one; the error is a readable reason ("no notification daemon…").
    fn show(&self, note: &Note) -> Result<(), String>;
}

/// The desktop's notification daemon (freedesktop notifications over D-Bus, macOS and
/// Windows natively).
#[derive(Debug, Default, Clone, Copy)]
pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn show(&self, note: &Note) -> Result<(), String> {
        notify_rust::Notification::new()
            .appname("Orbit")
            .summary(&note.summary)
            .body(&note.body)
            .icon("call-start")
            .show()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Notifications kept in memory (tests); can play "no daemon".
#[derive(Debug, Clone, Default)]
pub struct MemoryNotifier {
    /// Everything shown, oldest first.
    pub shown: Arc<Mutex<Vec<Note>>>,
    /// Fail every `show` like a desktop without a daemon.
    pub fail: bool,
}

impl MemoryNotifier {
    /// What was shown so far.
    pub fn notes(&self) -> Vec<Note> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for MemoryNotifier {
    fn show(&self, note: &Note) -> Result<(), String> {
        if self.fail {
            return Err("org.freedesktop.DBus.Error.ServiceUnknown: no notification daemon".into());
        }
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).push(note.clone());
        Ok(())
    }
}

/// The in-window line shown once when notifications cannot be shown.
pub fn unavailable_notice(why: &str) -> String {
    format!("Desktop notifications are not available ({why}); Orbit shows everything in this window instead.")
}

/// The notification for an event, if it deserves one: an incoming call (or a parked call
/// returning), a pickup of my parked call, a ring-back, a failed park. `model` is the view
/// model *after* the event was applied (names and times come from it).
pub fn notification_for(ev: &Event, model: &Model, clock: &Clock) -> Option<Note> {
    let who = |call| model.calls.get(&call).map(|c| c.who()).unwrap_or_else(|| "a caller".into());
    match ev {
        Event::CallIncoming { recall: Some(r), .. } => Some(Note {
            summary: format!("Parked call returning from {}", r.orbit),
            body: format!("{} is ringing you back", text::friendly(&r.parkee)),
        }),
        Event::CallIncoming { call, replaces: None, .. } => {
            let c = model.calls.get(call)?;
            let number = text::friendly(&c.party);
            let body = if c.who() == number { text::bare_uri(&c.party) } else { number };
            Some(Note { summary: format!("Incoming call from {}", c.who()), body })
        }
        Event::ParkRetrieved { call, .. } | Event::ParkRingback { call, .. } | Event::ParkFailed { call, .. } => {
            let c = model.calls.get(call)?;
            let park = c.park.as_ref()?;
            let summary = text::park_notice(&park.state, park.orbit.as_ref(), clock, &model.account);
            Some(Note { summary, body: format!("Your parked call with {}", who(*call)) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::api::Recall;

    fn clock(unix: f64) -> Clock {
        Clock { unix, utc_offset_s: 0 }
    }

    fn feed(model: &mut Model, ev: Event, at: f64) -> Option<Note> {
        let c = clock(at);
        model.apply(ev.clone(), &c);
        notification_for(&ev, model, &c)
    }

    fn talking_to_bob() -> Model {
        let mut m = Model::new("sip:alice@example.com");
        m.apply(Event::CallDialing { call: 1, to: "sip:bob@example.com".into() }, &clock(0.0));
        m.apply(
            Event::CallEstablished { call: 1, party: "\"Bob\" <sip:bob@example.com>".into(), codec: None },
            &clock(1.0),
        );
        m
    }

    #[test]
    fn incoming_calls_notify_with_name_and_number() {
        let mut m = Model::new("sip:alice@example.com");
        let ev = Event::CallIncoming {
            call: 3,
            from: "sip:carol@example.com".into(),
            name: Some("Carol".into()),
            recall: None,
            replaces: None,
        };
        assert_eq!(
            feed(&mut m, ev, 0.0),
            Some(Note { summary: "Incoming call from Carol".into(), body: "carol".into() })
        );
        let ev = Event::CallIncoming {
            call: 4,
            from: "sip:7001@example.com".into(),
            name: None,
            recall: None,
            replaces: None,
        };
        assert_eq!(feed(&mut m, ev, 0.0).unwrap().body, "sip:7001@example.com");
        // A call replacing one we have (attended transfer into us) is not a new ring.
        let ev = Event::CallIncoming { call: 5, from: "sip:dan@x".into(), name: None, recall: None, replaces: Some(3) };
        assert_eq!(feed(&mut m, ev, 0.0), None);
    }

    #[test]
    fn a_returning_parked_call_says_where_from() {
        let mut m = Model::new("sip:alice@example.com");
        let recall = Some(Recall { orbit: "7001".into(), parkee: "\"Bob\" <sip:bob@example.com>".into() });
        let ev =
            Event::CallIncoming { call: 9, from: "sip:park@example.com".into(), name: None, recall, replaces: None };
        assert_eq!(
            feed(&mut m, ev, 0.0),
            Some(Note { summary: "Parked call returning from 7001".into(), body: "Bob is ringing you back".into() })
        );
    }

    #[test]
    fn pickup_ringback_and_failure_notify_but_routine_events_do_not() {
        let mut m = talking_to_bob();
        assert_eq!(feed(&mut m, Event::ParkPending { call: 1 }, 2.0), None);
        let parked = Event::Parked {
            call: 1,
            orbit: "7001".into(),
            orbit_uri: "sip:7001@example.com".into(),
            retrieve_uri: "sip:7001@example.com;t=x".into(),
            ringback_at: 62,
            parkee: "Bob".into(),
        };
        assert_eq!(feed(&mut m, parked, 2.0), None);
        assert_eq!(feed(&mut m, Event::CallEnded { call: 1, reason: "parked".into() }, 2.5), None);
        let n = feed(&mut m, Event::ParkRingback { call: 1, attempt: 1, of: 3 }, 62.0).unwrap();
        assert_eq!(n, Note { summary: "Ringing you back (1 of 3)".into(), body: "Your parked call with Bob".into() });
        // 10:42 UTC on day 0.
        let at = (10 * 3600 + 42 * 60) as f64;
        let n = feed(&mut m, Event::ParkRetrieved { call: 1, by: "\"Carol\" <sip:carol@example.com>".into() }, at);
        assert_eq!(n.unwrap().summary, "Picked up by Carol at 10:42");

        let mut m = talking_to_bob();
        let n = feed(&mut m, Event::ParkFailed { call: 1, reason: "no free orbit".into() }, 3.0).unwrap();
        assert_eq!(n.summary, "Park failed: no free orbit");
        assert_eq!(feed(&mut m, Event::CallMuted { call: 1, muted: true }, 3.0), None);
        assert_eq!(feed(&mut m, Event::Registered { account: "sip:a@x".into(), expires: 60 }, 3.0), None);
    }

    #[test]
    fn memory_notifier_can_fail_like_a_headless_desktop() {
        let ok = MemoryNotifier::default();
        let note = Note { summary: "s".into(), body: "b".into() };
        ok.show(&note).unwrap();
        assert_eq!(ok.notes(), vec![note.clone()]);
        let bad = MemoryNotifier { fail: true, ..Default::default() };
        let why = bad.show(&note).unwrap_err();
        assert!(unavailable_notice(&why).starts_with("Desktop notifications are not available"));
    }

    /// The real notifier where no notification daemon can be reached (a bus address that
    /// does not exist): an error to report, never a panic or a hang.
    #[test]
    fn desktop_notifier_without_a_daemon_is_an_error() {
        if std::env::var_os("ORBIT_NOTIFY_INNER").is_some() {
            let started = std::time::Instant::now();
            let r = DesktopNotifier.show(&Note { summary: "Orbit test".into(), body: "no daemon".into() });
            assert!(r.is_err(), "{r:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            eprintln!("notify error: {}", r.unwrap_err());
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "ui::notify::tests::desktop_notifier_without_a_daemon_is_an_error", "--nocapture"])
            .env("ORBIT_NOTIFY_INNER", "1")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/orbit-test-bus")
            .output()
            .expect("run self");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("notify error:"), "{text}");
    }
}
