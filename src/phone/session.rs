//! Per-call SDP offer/answer state (RFC 3264) over `media::negotiate`: keeps our
//! session id/version and port stable across re-offers, remembers the last offer so
//! an answer can be applied, and turns the result into parameters for the media task.
//!
//! The account's media preferences (Opus, SRTP policy) reach a call through
//! [`Engine::set_call_media_prefs`], which the driver calls when it binds the call's RTP
//! socket, i.e. before the first offer or answer is made. It lives here rather than in
//! the engine proper so the engine's call flows stay untouched.

use super::api::{CallNo, CallStats, Event};
use super::engine::Engine;
use crate::media::negotiate::{self, Direction, LocalCaps, Negotiated};
use crate::media::sdp::SessionDescription;
use crate::media::srtp::{MasterKey, SrtpMode};
use std::net::SocketAddr;

/// Per-account media preferences applied to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaPrefs {
    /// Offer (and accept) Opus, preferred over G.711.
    pub opus: bool,
    /// SRTP policy (SDES).
    pub srtp: SrtpMode,
}

impl Engine {
    /// Applies the account's media preferences to `call`; the driver calls this when it
    /// binds the call's RTP socket, before [`Engine::media_allocated`].
    pub fn set_call_media_prefs(&mut self, call: CallNo, prefs: MediaPrefs) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.media.set_prefs(prefs);
        }
    }

    /// The media task's latest figures for `call`: kept for `status` and reported as a
    /// [`Event::CallStats`].
    pub fn media_stats(&mut self, call: CallNo, stats: CallStats) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.media.stats = Some(stats.clone());
            self.emit(Event::CallStats { call, stats });
        }
    }
}

/// What the media task needs to run a call's RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// Our RTP socket address.
    pub local: SocketAddr,
    /// Negotiated codec, remote address, DTMF payload type and direction.
    pub negotiated: Negotiated,
}

/// SDP state of one call.
#[derive(Debug, Clone, Default)]
pub struct CallMedia {
    /// Our RTP address (bound by the driver).
    pub local: Option<SocketAddr>,
    /// Offer Opus as well as G.711.
    pub opus: bool,
    /// SRTP policy.
    pub srtp: SrtpMode,
    /// Our SDES master key, made once per call and kept across re-offers.
    srtp_key: Option<MasterKey>,
    session_id: u64,
    version: u64,
    our_offer: Option<SessionDescription>,
    last_answer: Vec<u8>,
    negotiated: Option<Negotiated>,
    /// The media task's latest figures.
    pub stats: Option<CallStats>,
}

impl CallMedia {
    /// Applies account preferences (before the first offer or answer).
    pub fn set_prefs(&mut self, prefs: MediaPrefs) {
        self.opus = prefs.opus;
        self.srtp = prefs.srtp;
    }

    fn caps(&mut self) -> LocalCaps {
        let caps = if self.opus { LocalCaps::with_opus() } else { LocalCaps::default() };
        if self.srtp == SrtpMode::Off {
            return caps;
        }
        let key = *self.srtp_key.get_or_insert_with(MasterKey::random);
        caps.with_srtp(self.srtp, key)
    }

    fn next_version(&mut self) -> (u64, u64) {
        if self.session_id == 0 {
            self.session_id = u64::from(rand::random::<u32>()) + 1;
            self.version = self.session_id;
        } else {
            self.version += 1;
        }
        (self.session_id, self.version)
    }

    fn local(&self) -> SocketAddr {
        self.local.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9)))
    }

    /// A new offer (initial or re-offer); `hold` offers `a=sendonly`.
    pub fn offer(&mut self, hold: bool) -> Vec<u8> {
        let (id, version) = self.next_version();
        let direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        let local = self.local();
        let caps = self.caps();
        let sdp = negotiate::build_offer(local.ip(), local.port(), &caps, direction, id, version);
        let bytes = sdp.to_string().into_bytes();
        self.our_offer = Some(sdp);
        bytes
    }

    /// Answer their offer; `hold` keeps our side sendonly. Err means 488.
    pub fn answer(&mut self, remote: &[u8], hold: bool) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(remote).map_err(|_| "SDP is not UTF-8".to_string())?;
        let offer = SessionDescription::parse(text).map_err(|e| format!("bad SDP: {e}"))?;
        let (id, version) = self.next_version();
        let local = self.local();
        let ours = if hold { Direction::SendOnly } else { Direction::SendRecv };
        let caps = self.caps();
        let (answer, negotiated) = negotiate::answer(&offer, local.ip(), local.port(), &caps, ours, id, version)
            .map_err(|e| format!("{e}"))?;
        self.negotiated = Some(negotiated);
        self.our_offer = None;
        self.last_answer = answer.to_string().into_bytes();
        Ok(self.last_answer.clone())
    }

    /// The answer we gave last (sent again in the 200 OK to an INVITE).
    pub fn last_answer(&self) -> Vec<u8> {
        self.last_answer.clone()
    }

    /// True while we made an offer and wait for its answer.
    pub fn awaiting_answer(&self) -> bool {
        self.our_offer.is_some()
    }

    /// Apply their answer to our last offer.
    pub fn apply_answer(&mut self, remote: &[u8]) -> Result<(), String> {
        let Some(offer) = self.our_offer.take() else {
            return Err("answer without an offer".into());
        };
        let text = std::str::from_utf8(remote).map_err(|_| "SDP is not UTF-8".to_string())?;
        let answer = SessionDescription::parse(text).map_err(|e| format!("bad SDP answer: {e}"))?;
        self.negotiated = Some(negotiate::apply_answer(&offer, &answer).map_err(|e| format!("{e}"))?);
        Ok(())
    }

    /// Parameters for the media task, once negotiated.
    pub fn params(&self) -> Option<MediaParams> {
        Some(MediaParams { local: self.local?, negotiated: self.negotiated.clone()? })
    }

    /// Codec name for events and status.
    pub fn negotiated_codec(&self) -> Option<String> {
        self.negotiated.as_ref().map(|n| n.codec.name().to_string())
    }

    /// Whether the negotiated stream is SRTP.
    pub fn is_secure(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|n| n.srtp.is_some())
    }

    /// Whether the peer's last SDP puts us on hold (they will not receive or not send).
    pub fn remote_holds(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|n| !n.remote_direction.can_recv() || n.remote_addr.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn media(prefs: MediaPrefs) -> CallMedia {
        let mut m = CallMedia { local: Some("127.0.0.1:4000".parse().unwrap()), ..CallMedia::default() };
        m.set_prefs(prefs);
        m
    }

    #[test]
    fn prefs_shape_offers_and_keep_the_key() {
        let mut m = media(MediaPrefs::default());
        let offer = String::from_utf8(m.offer(false)).unwrap();
        assert!(offer.contains("m=audio 4000 RTP/AVP 0 8 101\r\n"), "{offer}");
        let mut m = media(MediaPrefs { opus: true, srtp: SrtpMode::Mandatory });
        let first = String::from_utf8(m.offer(false)).unwrap();
        assert!(first.contains("m=audio 4000 RTP/SAVP 111 0 8 101 110\r\n"), "{first}");
        let crypto = |s: &str| s.lines().find(|l| l.starts_with("a=crypto:")).map(str::to_string);
        assert!(crypto(&first).is_some());
        let again = String::from_utf8(m.offer(true)).unwrap();
        assert_eq!(crypto(&first), crypto(&again));
    }

    #[test]
    fn answers_follow_the_srtp_policy() {
        let mut m = media(MediaPrefs { opus: true, srtp: SrtpMode::Off });
        assert!(m.answer(PLAIN.as_bytes(), false).is_ok());
        assert_eq!(m.negotiated_codec().as_deref(), Some("opus"));
        assert!(!m.is_secure());
        let mut m = media(MediaPrefs { opus: false, srtp: SrtpMode::Mandatory });
        assert!(m.answer(PLAIN.as_bytes(), false).is_err());
        let savp = PLAIN.replace("RTP/AVP", "RTP/SAVP");
        let mut m = media(MediaPrefs::default());
        assert!(m.answer(savp.as_bytes(), false).is_err());
        // Our own mandatory offer, answered by an optional peer: both ends secure.
        let mut a = media(MediaPrefs { opus: true, srtp: SrtpMode::Mandatory });
        let mut b = media(MediaPrefs { opus: false, srtp: SrtpMode::Optional });
        let answer = b.answer(&a.offer(false), false).unwrap();
        a.apply_answer(&answer).unwrap();
        assert!(a.is_secure() && b.is_secure());
        let (pa, pb) = (a.params().unwrap(), b.params().unwrap());
        let (sa, sb) = (pa.negotiated.srtp.unwrap(), pb.negotiated.srtp.unwrap());
        assert_eq!((sa.local_key, sa.remote_key), (sb.remote_key, sb.local_key));
    }
}
