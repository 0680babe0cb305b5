//! RFC 6665 subscriptions: the state both sides keep, and the header grammar
//! (`Subscription-State`, `Event`, `Expires`). The notifier (park service) and the
//! subscriber (the phone's park client) drive these from their own state machines.

use super::dialog::Dialog;
use super::message::{MessageExt, Request};
use std::time::{Duration, Instant};

/// `Subscription-State` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Accepted but not yet authorised.
    Pending,
    /// Running.
    Active,
    /// Over; no more NOTIFYs.
    Terminated,
}

/// A parsed `Subscription-State` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state.
    pub state: SubState,
    /// Seconds left, when active/pending.
    pub expires: Option<u32>,
    /// Why it ended, when terminated.
    pub reason: Option<String>,
}

impl SubscriptionState {
    /// Parse `active;expires=3600` / `terminated;reason=timeout`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let state = match parts.next()?.trim().to_ascii_lowercase().as_str() {
            "active" => SubState::Active,
            "pending" => SubState::Pending,
            "terminated" => SubState::Terminated,
            _ => return None,
        };
        let mut expires = None;
        let mut reason = None;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "expires" => expires = v.trim().parse().ok(),
                "reason" => reason = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Some(Self { state, expires, reason })
    }

    /// Header value for a NOTIFY.
    pub fn header(state: SubState, expires_in: Duration, reason: Option<&str>) -> String {
        match state {
            SubState::Active => format!("active;expires={}", expires_in.as_secs()),
            SubState::Pending => format!("pending;expires={}", expires_in.as_secs()),
            SubState::Terminated => format!("terminated;reason={}", reason.unwrap_or("noresource")),
        }
    }
}

/// The event package of a request (`Event: dialog;id=1` → `dialog`).
pub fn event_package(req: &Request) -> Option<String> {
    let v = req.header("Event")?;
    Some(v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// A notifier's record of one subscription.
#[derive(Debug, Clone)]
pub struct NotifierSubscription {
    /// The dialog the NOTIFYs go on.
    pub dialog: Dialog,
    /// Event package (with id parameter when there was one).
    pub event: String,
    /// When it lapses unless refreshed.
    pub expires_at: Instant,
    /// State.
    pub state: SubState,
}

impl NotifierSubscription {
    /// Seconds left at `now`, for the `Subscription-State` header.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }

    /// Apply a refreshing SUBSCRIBE's Expires (clamped to `max`); 0 ends it.
    pub fn refresh(&mut self, now: Instant, requested: u32, max: u32) {
        let secs = requested.min(max);
        self.expires_at = now + Duration::from_secs(u64::from(secs));
        if secs == 0 {
            self.state = SubState::Terminated;
        }
    }
}

/// The Expires a SUBSCRIBE asked for (header, default per package).
pub fn requested_expires(req: &Request, default: u32) -> u32 {
    req.header("Expires").and_then(|e| e.trim().parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_state_round_trip() {
        let s = SubscriptionState::parse("active;expires=600").unwrap();
        assert_eq!((s.state, s.expires), (SubState::Active, Some(600)));
        let t = SubscriptionState::parse("Terminated; reason=timeout").unwrap();
        assert_eq!((t.state, t.reason.as_deref()), (SubState::Terminated, Some("timeout")));
        assert!(SubscriptionState::parse("bogus").is_none());
        assert_eq!(SubscriptionState::header(SubState::Active, Duration::from_secs(30), None), "active;expires=30");
        assert_eq!(
            SubscriptionState::header(SubState::Terminated, Duration::ZERO, Some("timeout")),
            "terminated;reason=timeout"
        );
    }
}
