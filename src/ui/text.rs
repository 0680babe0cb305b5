//! Every sentence the user reads about calls and parks, made from the engine's words.
//! No raw status codes reach the screen: codes become plain words here.

use super::model::{Clock, Orbit, ParkState};

/// `"Bob" <sip:bob@x>` → `Bob`; `<sip:bob@x>` / `sip:bob@x;tag=1` → `bob`; `7001` → `7001`.
pub fn friendly(party: &str) -> String {
    if let Some(name) = display_name(party) {
        return name;
    }
    let uri = bare_uri(party);
    match crate::sip::uri::uri_user(&uri) {
        Some(user) if !user.is_empty() => user,
        _ => {
            let s = uri.trim_start_matches("sips:").trim_start_matches("sip:").trim_start_matches("tel:");
            s.split(';').next().unwrap_or(s).to_string()
        }
    }
}

/// The display name of a name-addr, if it has one.
pub fn display_name(party: &str) -> Option<String> {
    let party = party.trim();
    let lt = party.find('<')?;
    let name = party[..lt].trim().trim_matches('"').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The URI inside a name-addr, without header parameters (`;tag=`): what to call back.
pub fn bare_uri(party: &str) -> String {
    let party = party.trim();
    match (party.find('<'), party.rfind('>')) {
        (Some(a), Some(b)) if a < b => party[a + 1..b].to_string(),
        _ => party.split(";tag=").next().unwrap_or(party).to_string(),
    }
}

/// `75` → `1:15`; `3725` → `1:02:05`.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

/// The words for a SIP status the user may meet, without the number.
pub fn status_words(status: u16, reason: &str) -> String {
    match status {
        486 | 600 => "busy".into(),
        603 => "declined".into(),
        404 | 604 => "number not found".into(),
        410 => "no longer there".into(),
        480 => "not available right now".into(),
        487 => "cancelled".into(),
        408 => "no answer".into(),
        401 | 407 => "the server refused our credentials".into(),
        403 => "not allowed".into(),
        484 => "incomplete number".into(),
        488 | 606 => "no common audio format".into(),
        500..=599 => "the server had a problem".into(),
        _ if !reason.trim().is_empty() => reason.trim().to_lowercase(),
        _ => "the call did not go through".into(),
    }
}

/// Splits `"486 Busy Here"` into (486, "Busy Here").
fn leading_status(s: &str) -> Option<(u16, &str)> {
    let (code, rest) = s.split_once(' ').unwrap_or((s, ""));
    (code.len() == 3).then(|| code.parse::<u16>().ok()).flatten().map(|c| (c, rest))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// Why a call ended, for its window and the history.
pub fn end_reason(reason: &str) -> String {
    if let Some((status, words)) = leading_status(reason) {
        return capitalise(&status_words(status, words));
    }
    match reason {
        "local hangup" => "You hung up".into(),
        "remote hangup" => "They hung up".into(),
        "cancelled" => "Cancelled".into(),
        "parked" => "Parked".into(),
        "transferred" => "Transferred".into(),
        "replaced" => "Replaced by the transferred call".into(),
        r if r.starts_with("timeout") => "No answer from the network".into(),
        r if r.starts_with("cannot route") => "Cannot reach that address: no server is configured".into(),
        r if r.starts_with("bad URI") => "That is not a number or SIP address".into(),
        r => capitalise(r),
    }
}

/// An engine error, readable (codes turned into words).
pub fn error(message: &str) -> String {
    if let Some((prefix, rest)) = message.split_once(" failed: ")
        && let Some((status, words)) = leading_status(rest)
    {
        return format!("{} failed: {}", capitalise(prefix), status_words(status, words));
    }
    capitalise(message)
}

/// A transfer's progress as the transferee reports it.
pub fn transfer_progress(status: u16, reason: &str) -> String {
    match status {
        // 202 is the REFER's own answer (accepted, not done); the sipfrag 200 means done.
        100..=199 | 202 => "Transferring…".into(),
        200..=299 => "Transferred".into(),
        _ => format!("Transfer failed: {}", status_words(status, reason)),
    }
}

/// Why the park service could not park, in words ("no free orbit", "not allowed").
pub fn park_failure(reason: &str) -> String {
    match leading_status(reason) {
        Some((status, words)) => format!("the park service said {}", status_words(status, words)),
        None => reason.to_string(),
    }
}

/// `sip:carol@x` is me? (the account's own AOR, compared without parameters or case).
fn is_me(party: &str, account: &str) -> bool {
    let norm = |s: &str| bare_uri(s).split(';').next().unwrap_or_default().to_ascii_lowercase();
    !account.is_empty() && norm(party) == norm(account)
}

/// The headline of a park, as its conversation window shows it.
/// `account` is our AOR (a pickup by ourselves reads "you").
pub fn park_notice(state: &ParkState, orbit: Option<&Orbit>, clock: &Clock, account: &str) -> String {
    match state {
        ParkState::Pending => "Parking…".into(),
        ParkState::Parked => match orbit {
            Some(o) => format!("Parked on {}", o.orbit),
            None => "Parked".into(),
        },
        ParkState::RingingBack { attempt, of } => format!("Ringing you back ({attempt} of {of})"),
        ParkState::Fallback { .. } => "Sent to the operator".into(),
        ParkState::Retrieved { by, at } => {
            let who = if is_me(by, account) { "you".to_string() } else { friendly(by) };
            format!("Picked up by {who} at {}", clock.hhmm(*at))
        }
        ParkState::Abandoned => "Caller hung up".into(),
        ParkState::Ended { reason } => match reason.as_str() {
            "nobody answered" => "Nobody picked it up: the call was ended".into(),
            "service stopped" => "The park service stopped: the call was ended".into(),
            "the park service ended the subscription" => "The park service stopped reporting on this call".into(),
            r => format!("Park ended: {}", park_failure(r)),
        },
        ParkState::Failed { reason } => format!("Park failed: {}", park_failure(reason)),
        ParkState::Consulting { extension, .. } => {
            format!("Calling park extension {extension}: listen for the slot, then press Complete park")
        }
        ParkState::Extension { extension } => {
            format!("Parked through extension {extension}: the phone system holds the call")
        }
    }
}

/// The line under the headline while parked: "Rings you back in 1:23".
pub fn ringback_countdown(seconds: f64) -> String {
    if seconds <= 0.5 {
        "Ringing you back now…".into()
    } else {
        format!("Rings you back in {}", duration(seconds.ceil() as u64))
    }
}

/// The line the Copy button puts on the clipboard for an IM:
/// "Parked call from Bob on 7001 — dial 7001 or open sip:7001@example.com".
pub fn im_line(orbit: &Orbit) -> String {
    format!(
        "Parked call from {} on {} — dial {} or open {}",
        friendly(&orbit.parkee),
        orbit.orbit,
        orbit.orbit,
        bare_uri(&orbit.orbit_uri)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock { unix: 1_700_000_000.0, utc_offset_s: 3600 };

    fn orbit() -> Orbit {
        Orbit {
            orbit: "7001".into(),
            orbit_uri: "sip:7001@example.com".into(),
            retrieve_uri: "sip:7001@example.com;park-token=abc".into(),
            parkee: "\"Bob\" <sip:bob@example.com>".into(),
        }
    }

    fn notice(state: ParkState) -> String {
        park_notice(&state, Some(&orbit()), &CLOCK, "sip:alice@example.com")
    }

    #[test]
    fn every_park_notice_reads_as_words() {
        // 1_700_000_000 is 22:13:20 UTC; the clock is UTC+1.
        let at = 1_700_000_000.0 - 31.0 * 60.0;
        assert_eq!(notice(ParkState::Pending), "Parking…");
        assert_eq!(notice(ParkState::Parked), "Parked on 7001");
        assert_eq!(park_notice(&ParkState::Parked, None, &CLOCK, ""), "Parked");
        assert_eq!(notice(ParkState::RingingBack { attempt: 1, of: 3 }), "Ringing you back (1 of 3)");
        assert_eq!(notice(ParkState::Fallback { to: "sip:operator@example.com".into() }), "Sent to the operator");
        assert_eq!(
            notice(ParkState::Retrieved { by: "\"Carol\" <sip:carol@example.com>".into(), at }),
            "Picked up by Carol at 22:42"
        );
        assert_eq!(
            notice(ParkState::Retrieved { by: "<sip:carol@example.com>".into(), at }),
            "Picked up by carol at 22:42"
        );
        assert_eq!(
            notice(ParkState::Retrieved { by: "\"Alice\" <sip:alice@example.com>".into(), at }),
            "Picked up by you at 22:42"
        );
        assert_eq!(notice(ParkState::Abandoned), "Caller hung up");
        assert_eq!(
            notice(ParkState::Consulting { consult: 2, extension: "700".into() }),
            "Calling park extension 700: listen for the slot, then press Complete park"
        );
        assert_eq!(
            notice(ParkState::Extension { extension: "700".into() }),
            "Parked through extension 700: the phone system holds the call"
        );
        assert_eq!(
            notice(ParkState::Ended { reason: "nobody answered".into() }),
            "Nobody picked it up: the call was ended"
        );
        assert_eq!(
            notice(ParkState::Ended { reason: "service stopped".into() }),
            "The park service stopped: the call was ended"
        );
        assert_eq!(
            notice(ParkState::Ended { reason: "the park service ended the subscription".into() }),
            "The park service stopped reporting on this call"
        );
        assert_eq!(notice(ParkState::Failed { reason: "no free orbit".into() }), "Park failed: no free orbit");
        assert_eq!(
            notice(ParkState::Failed { reason: "not allowed (Forbidden)".into() }),
            "Park failed: not allowed (Forbidden)"
        );
        assert_eq!(
            notice(ParkState::Failed { reason: "500 Server Internal Error".into() }),
            "Park failed: the park service said the server had a problem"
        );
        assert_eq!(
            notice(ParkState::Failed { reason: "only an established call can be parked".into() }),
            "Park failed: only an established call can be parked"
        );
    }

    #[test]
    fn no_notice_shows_a_status_code() {
        for reason in ["404 Not Found", "486 Busy Here", "503 Service Unavailable", "418 I'm a teapot"] {
            let t = end_reason(reason);
            assert!(!t.chars().any(|c| c.is_ascii_digit()), "{reason} -> {t}");
            let t = notice(ParkState::Failed { reason: reason.into() });
            assert!(!t.chars().any(|c| c.is_ascii_digit()), "{reason} -> {t}");
        }
        assert_eq!(end_reason("486 Busy Here"), "Busy");
        assert_eq!(end_reason("603 Decline"), "Declined");
        assert_eq!(end_reason("remote hangup"), "They hung up");
        assert_eq!(end_reason("timeout: no answer from udp:1.2.3.4:5060"), "No answer from the network");
        assert_eq!(error("hold failed: 488 Not Acceptable Here"), "Hold failed: no common audio format");
        assert_eq!(transfer_progress(100, "Trying"), "Transferring…");
        assert_eq!(transfer_progress(200, "OK"), "Transferred");
        assert_eq!(transfer_progress(202, "Accepted"), "Transferring…");
        assert_eq!(transfer_progress(486, "Busy Here"), "Transfer failed: busy");
    }

    #[test]
    fn im_line_and_countdown() {
        assert_eq!(im_line(&orbit()), "Parked call from Bob on 7001 — dial 7001 or open sip:7001@example.com");
        assert_eq!(ringback_countdown(83.2), "Rings you back in 1:24");
        assert_eq!(ringback_countdown(0.0), "Ringing you back now…");
        assert_eq!(duration(3725), "1:02:05");
    }

    #[test]
    fn names_from_parties() {
        assert_eq!(friendly("\"Bob\" <sip:bob@x>"), "Bob");
        assert_eq!(friendly("<sip:bob@x>;tag=12"), "bob");
        assert_eq!(friendly("sip:bob@x:5060;transport=tcp"), "bob");
        assert_eq!(friendly("7001"), "7001");
        assert_eq!(bare_uri("\"Bob\" <sip:bob@x>;tag=1"), "sip:bob@x");
        assert_eq!(bare_uri("sip:bob@x;tag=1"), "sip:bob@x");
        assert_eq!(CLOCK.hhmm(0.0), "01:00");
    }
}
