//! Per-call SDP offer/answer state (RFC 3264) over `media::negotiate`: keeps our
//! session id/version and port stable across re-offers, remembers the last offer so
//! an answer can be applied, and turns the result into parameters for the media task.

use crate::media::negotiate::{self, Direction, LocalCaps, Negotiated};
use crate::media::sdp::SessionDescription;
use std::net::SocketAddr;

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
    session_id: u64,
    version: u64,
    our_offer: Option<SessionDescription>,
    last_answer: Vec<u8>,
    negotiated: Option<Negotiated>,
}

impl CallMedia {
    fn caps(&self) -> LocalCaps {
        if self.opus { LocalCaps::with_opus() } else { LocalCaps::default() }
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
        let sdp = negotiate::build_offer(local.ip(), local.port(), &self.caps(), direction, id, version);
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
        let (answer, negotiated) = negotiate::answer(&offer, local.ip(), local.port(), &self.caps(), ours, id, version)
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
        let Some(offer) = self.our_offer.take() else { return Err("answer without an offer".into()) };
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

    /// Whether the peer's last SDP puts us on hold (they will not receive or not send).
    pub fn remote_holds(&self) -> bool {
        self.negotiated.as_ref().is_some_and(|n| !n.remote_direction.can_recv() || n.remote_addr.is_none())
    }
}
