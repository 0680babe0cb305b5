//! Retrieve and everything after: third-party call control (RFC 3725) joining the
//! parkee with a retriever, the ringing-back parker or the fallback; relaying BYE and
//! re-INVITEs between the two legs once bridged; the parkee hanging up while parked.

use super::protocol::ParkNotice;
use super::service::{Leg, ParkId, ParkService, Pending3pcc, Purpose, State, Timer};
use crate::media::negotiate::{self, Direction, LocalCaps};
use crate::media::sdp::SessionDescription;
use crate::sip::dialog::{Dialog, new_tag};
use crate::sip::message::{self, MessageExt, Method, Request, Response};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Peer;
use std::time::{Duration, Instant};

impl ParkService {
    /// An INVITE outside any dialog: a pushed parkee arriving, or a retrieve.
    pub(super) fn on_invite(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        let uri = req.uri.to_string();
        let user = req.uri.user().unwrap_or_default().to_string();
        let token = message::uri_param(&uri, "park-token");
        if user == "park" {
            match token.and_then(|t| self.tokens.get(&t).copied()) {
                Some(id) if self.parks.get(&id).is_some_and(|p| p.state == State::AwaitingPush) => {
                    self.accept_pushed(now, id, key, req, source)
                }
                _ => self.reply(now, &key, &req, 404, vec![]),
            }
            return;
        }
        if !self.orbits.is_orbit(&user) {
            self.reply(now, &key, &req, 404, vec![]);
            return;
        }
        if !self.allow_retrieve_attempt(now, source) {
            self.log(format!("retrieve of {user} from {source} refused: too many attempts"));
            let mut resp = message::response_to(&req, 503, Some(&new_tag()));
            resp.wire_reason = Some("Too many retrieve attempts".into());
            resp.add_header("Retry-After", "60");
            self.tl.respond(now, &key, resp);
            return;
        }
        let occupant = self.orbits.get(&user).copied();
        let id = match (token, occupant) {
            (Some(t), Some(id)) if self.parks.get(&id).is_some_and(|p| p.token == t) => id,
            // A safe-retrieve link whose orbit now holds another call, or is free again.
            (Some(_), Some(_)) => return self.reply(now, &key, &req, 410, vec![]),
            (Some(_), None) | (None, None) => return self.reply(now, &key, &req, 404, vec![]),
            (None, Some(id)) => id,
        };
        let retrievable = self.parks.get(&id).is_some_and(|p| matches!(p.state, State::Parked | State::Ringing { .. }));
        if !retrievable {
            self.reply(now, &key, &req, 404, vec![]);
            return;
        }
        self.retrieve(now, id, key, req, source);
    }

    /// RFC 3581-style scan guard: at most N retrieve attempts per source IP per minute.
    fn allow_retrieve_attempt(&mut self, now: Instant, source: Peer) -> bool {
        let limit = self.cfg.limits.retrieve_attempts_per_minute;
        let entry = self.retrieve_attempts.entry(source.addr.ip()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let allowed = entry.1 <= limit;
        if self.retrieve_attempts.len() > 10_000 {
            self.retrieve_attempts
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < Duration::from_secs(60));
        }
        allowed
    }

    fn accept_pushed(&mut self, now: Instant, id: ParkId, key: TxKey, req: Request, source: Peer) {
        let contact = self.contact(source.transport);
        let local_tag = new_tag();
        let Ok(offer) = SessionDescription::parse(&req.body_text()) else {
            self.reply(now, &key, &req, 488, vec![]);
            return;
        };
        let ip = self.music_addr.ip();
        let port = self.music_addr.port();
        let Ok((answer, negotiated)) =
            negotiate::answer(&offer, ip, port, &LocalCaps::default(), Direction::SendOnly, id + 1000, id + 1000)
        else {
            self.reply(now, &key, &req, 488, vec![]);
            return;
        };
        let Some(dialog) = Dialog::as_uas(&req, &local_tag, &contact) else {
            self.reply(now, &key, &req, 400, vec![]);
            return;
        };
        let mut ok = message::response_to(&req, 200, Some(&local_tag));
        ok.add_header("Contact", format!("<{contact}>"));
        ok.add_header("Content-Type", "application/sdp");
        ok.body = answer.to_string().into_bytes();
        self.tl.respond(now, &key, ok);
        self.clear_timer(Timer::PushTimeout(id));
        let peer = self.peer_for(&dialog.next_hop(), source);
        if let Some(p) = self.parks.get_mut(&id) {
            p.parkee = Some(Leg { dialog, peer });
            p.parkee_sdp = Some(req.body.clone());
        }
        self.parked(now, id, Some(negotiated));
    }

    fn retrieve(&mut self, now: Instant, id: ParkId, key: TxKey, req: Request, source: Peer) {
        let by = req.header("From").map(|f| crate::sip::dialog::strip_tag(&f)).unwrap_or_default();
        self.log(format!("park {id}: retrieved by {by}"));
        if let Some((invite, peer)) = self.parks.get_mut(&id).and_then(|p| p.ring.take()) {
            self.clear_timer(Timer::RingTimeout(id));
            self.send_cancel(now, &invite, peer);
        }
        // The orbit is free at once: a second retriever gets 404.
        self.release_orbit(now, id);
        let Some(park) = self.parks.get_mut(&id) else { return };
        park.state = State::Connecting;
        park.pending =
            Some(Pending3pcc::AnswerRetriever { server_tx: key, invite: req.clone(), local_tag: new_tag(), source });
        self.notify(now, id, &ParkNotice::Retrieved { by });
        self.reinvite_leg(now, id, true, req.body.clone());
    }

    /// Send a re-INVITE on the parkee leg (or the other leg) with `body` (empty = ask
    /// for their offer).
    pub(super) fn reinvite_leg(&mut self, now: Instant, id: ParkId, parkee_leg: bool, body: Vec<u8>) {
        let leg_of = |p: &super::service::Park| if parkee_leg { p.parkee.clone() } else { p.other.clone() };
        let Some(transport) = self.parks.get(&id).and_then(leg_of).map(|l| l.peer.transport) else { return };
        let via = self.via(transport);
        let Some(park) = self.parks.get_mut(&id) else { return };
        let Some(leg) = (if parkee_leg { park.parkee.as_mut() } else { park.other.as_mut() }) else { return };
        let extra = if body.is_empty() { vec![] } else { vec![("Content-Type", "application/sdp".to_string())] };
        let req = leg.dialog.request(Method::Invite, via, extra, body);
        let peer = leg.peer;
        let purpose = if parkee_leg { Purpose::ReInviteParkee(id) } else { Purpose::ReInviteOther(id) };
        self.send(now, req, peer, purpose);
    }

    fn ack_leg(&mut self, id: ParkId, parkee_leg: bool, seq: u32, body: Vec<u8>, now: Instant) {
        let Some(park) = self.parks.get(&id) else { return };
        let leg = if parkee_leg { park.parkee.as_ref() } else { park.other.as_ref() };
        let Some(leg) = leg else { return };
        let via = self.via(leg.peer.transport);
        let mut ack = leg.dialog.ack(seq, via, body);
        if !ack.body.is_empty() {
            ack.add_header("Content-Type", "application/sdp");
        }
        let peer = leg.peer;
        self.send(now, ack, peer, Purpose::Bye);
    }

    pub(super) fn on_parkee_reinvite_ok(&mut self, now: Instant, id: ParkId, resp: Response) {
        let seq = resp.cseq().0;
        let Some(park) = self.parks.get_mut(&id) else { return };
        if let Some(leg) = park.parkee.as_mut() {
            leg.dialog.refresh_target(resp.header("Contact"));
        }
        let parkee_identity = park.request.parkee.clone();
        match park.pending.take() {
            Some(Pending3pcc::AnswerRetriever { server_tx, invite, local_tag, source }) => {
                let contact = self.contact(source.transport);
                let offer_in_invite = !invite.body.is_empty();
                let mut ok = message::response_to(&invite, 200, Some(&local_tag));
                ok.add_header("Contact", format!("<{contact}>"));
                // The retriever sees who is on the line, not the orbit number.
                ok.add_header("P-Asserted-Identity", parkee_identity.clone());
                ok.add_header("Remote-Party-ID", format!("{parkee_identity};party=calling;screen=yes"));
                if !resp.body.is_empty() {
                    ok.add_header("Content-Type", "application/sdp");
                    ok.body = resp.body.clone();
                }
                self.tl.respond(now, &server_tx, ok);
                let Some(dialog) = Dialog::as_uas(&invite, &local_tag, &contact) else { return };
                let peer = self.peer_for(&dialog.next_hop(), source);
                let Some(park) = self.parks.get_mut(&id) else { return };
                park.other = Some(Leg { dialog, peer });
                if offer_in_invite {
                    park.state = State::Bridged;
                    self.ack_leg(id, true, seq, vec![], now);
                } else {
                    park.pending = Some(Pending3pcc::AwaitRetrieverAck { parkee_seq: seq });
                }
            }
            Some(Pending3pcc::AckOther { other_seq }) => {
                park.state = State::Bridged;
                self.ack_leg(id, true, seq, vec![], now);
                self.ack_leg(id, false, other_seq, resp.body.clone(), now);
            }
            Some(Pending3pcc::Relay { from_parkee: false, server_tx, req }) => {
                self.ack_leg(id, true, seq, vec![], now);
                self.answer_relayed(now, &server_tx, &req, &resp);
            }
            other => {
                park.pending = other;
                self.ack_leg(id, true, seq, vec![], now);
            }
        }
    }

    pub(super) fn on_other_reinvite_ok(&mut self, now: Instant, id: ParkId, resp: Response) {
        let seq = resp.cseq().0;
        let Some(park) = self.parks.get_mut(&id) else { return };
        match park.pending.take() {
            Some(Pending3pcc::Relay { from_parkee: true, server_tx, req }) => {
                self.ack_leg(id, false, seq, vec![], now);
                self.answer_relayed(now, &server_tx, &req, &resp);
            }
            other => {
                park.pending = other;
                self.ack_leg(id, false, seq, vec![], now);
            }
        }
    }

    fn answer_relayed(&mut self, now: Instant, server_tx: &TxKey, req: &Request, resp: &Response) {
        let mut ok = message::response_to(req, 200, None);
        ok.add_header("Contact", format!("<{}>", self.contact(crate::sip::transport::Transport::Udp)));
        if !resp.body.is_empty() {
            ok.add_header("Content-Type", "application/sdp");
            ok.body = resp.body.clone();
        }
        self.tl.respond(now, server_tx, ok);
    }

    /// Third-party call control failed: give up on the park cleanly.
    pub(super) fn fail_3pcc(&mut self, now: Instant, id: ParkId) {
        if let Some(Pending3pcc::AnswerRetriever { server_tx, invite, .. }) =
            self.parks.get_mut(&id).and_then(|p| p.pending.take())
        {
            self.reply(now, &server_tx, &invite, 480, vec![]);
        }
        self.disconnect(now, id, "could not connect the call");
    }

    // ---- ring-back and fallback ---------------------------------------------------------

    pub(super) fn ring_back(&mut self, now: Instant, id: ParkId) {
        let attempts = self.cfg.park.ringback_attempts;
        let fallback = self.cfg.park.fallback.clone();
        let Some(park) = self.parks.get_mut(&id) else { return };
        if park.state != State::Parked {
            return;
        }
        if park.attempt < attempts {
            park.attempt += 1;
            let attempt = park.attempt;
            let target = park.parker_contact.clone();
            let to = park.parker.clone();
            park.state = State::Ringing { fallback: false };
            self.log(format!("park {id}: ringing the parker back ({attempt} of {attempts})"));
            self.notify(now, id, &ParkNotice::Ringback { attempt, of: attempts });
            self.ring(now, id, &target, &to);
        } else if let Some(fallback) = fallback.filter(|_| !matches!(park.state, State::Ringing { fallback: true })) {
            park.state = State::Ringing { fallback: true };
            self.log(format!("park {id}: sending to fallback {fallback}"));
            self.notify(now, id, &ParkNotice::Fallback { to: fallback.clone() });
            let to = format!("<{fallback}>");
            self.ring(now, id, &fallback, &to);
        } else {
            self.disconnect(now, id, "nobody answered");
        }
    }

    /// INVITE without an offer (RFC 3725 flow I): whoever answers offers in the 2xx.
    fn ring(&mut self, now: Instant, id: ParkId, target: &str, to: &str) {
        let Some(park) = self.parks.get(&id) else { return };
        let peer = match (crate::sip::uri::uri_socket_addr(target, 5060), self.cfg.service.trusted_proxies.is_empty()) {
            (_, false) | (Some(_), true) => self.outbound_peer(target, park.control_peer),
            (None, true) => {
                self.on_ring_failed(now, id);
                return;
            }
        };
        let orbit = park.orbit.clone().unwrap_or_default();
        let orbit_uri = self.orbit_uri(&orbit);
        let parkee = park.request.parkee.clone();
        let from = format!("{};tag={}", crate::sip::dialog::strip_tag(&parkee), new_tag());
        let headers = vec![
            ("Via", self.via(peer.transport)),
            ("Max-Forwards", "70".to_string()),
            ("From", from),
            ("To", to.to_string()),
            ("Call-ID", format!("{}@orbit-park", message::random_token(20))),
            ("CSeq", "1 INVITE".to_string()),
            ("Contact", format!("<{}>", self.contact(peer.transport))),
            ("Call-Info", format!("<{orbit_uri}>;purpose=call-park-recall")),
            ("Alert-Info", "<urn:alert:service:recall:callback>".to_string()),
            ("P-Asserted-Identity", parkee),
        ];
        let Ok(req) = message::request(Method::Invite, target, headers, vec![]) else {
            self.on_ring_failed(now, id);
            return;
        };
        if let Some(p) = self.parks.get_mut(&id) {
            p.ring = Some((req.clone(), peer));
        }
        self.set_timer(now + self.cfg.park.ringback_ring, Timer::RingTimeout(id));
        self.send(now, req, peer, Purpose::Ring(id));
    }

    /// Rang long enough: CANCEL; the 487 that follows moves the park on.
    pub(super) fn cancel_ring(&mut self, now: Instant, id: ParkId) {
        if let Some((invite, peer)) = self.parks.get(&id).and_then(|p| p.ring.clone()) {
            self.send_cancel(now, &invite, peer);
        }
    }

    pub(super) fn on_ring_failed(&mut self, now: Instant, id: ParkId) {
        self.clear_timer(Timer::RingTimeout(id));
        let attempts = self.cfg.park.ringback_attempts;
        let timeout = self.cfg.park.timeout;
        let Some(park) = self.parks.get_mut(&id) else { return };
        park.ring = None;
        match park.state {
            State::Ringing { fallback: false } => {
                park.state = State::Parked;
                if park.attempt < attempts {
                    // Back to the orbit to wait again.
                    self.set_timer(now + timeout, Timer::Ringback(id));
                } else {
                    self.ring_back(now, id);
                }
            }
            State::Ringing { fallback: true } => self.disconnect(now, id, "fallback did not answer"),
            _ => {}
        }
    }

    pub(super) fn on_ring_answered(&mut self, now: Instant, id: ParkId, req: Request, peer: Peer, resp: Response) {
        let contact = self.contact(peer.transport);
        let Some(park) = self.parks.get_mut(&id) else { return };
        if park.other.is_some() || !matches!(park.state, State::Ringing { .. }) {
            return; // retransmitted 2xx
        }
        let Some(mut dialog) = Dialog::as_uac(&req, &resp, &contact) else { return };
        dialog.local_seq = resp.cseq().0;
        let leg_peer = super::service::peer_for(&dialog.next_hop(), peer);
        let by = park.parker.clone();
        let fallback = matches!(park.state, State::Ringing { fallback: true });
        park.other = Some(Leg { dialog, peer: leg_peer });
        park.ring = None;
        park.state = State::Connecting;
        park.pending = Some(Pending3pcc::AckOther { other_seq: resp.cseq().0 });
        self.clear_timer(Timer::RingTimeout(id));
        self.release_orbit(now, id);
        let by = if fallback { self.cfg.park.fallback.clone().unwrap_or(by) } else { by };
        self.notify(now, id, &ParkNotice::Retrieved { by });
        self.reinvite_leg(now, id, true, resp.body.clone());
    }

    // ---- in-dialog requests ---------------------------------------------------------------

    pub(super) fn on_in_dialog(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        if req.method == Method::Subscribe {
            self.on_resubscribe(now, key, req);
            return;
        }
        let found = self.parks.values().find_map(|p| {
            if p.parkee.as_ref().is_some_and(|l| l.dialog.matches_request(&req)) {
                Some((p.id, true))
            } else if p.other.as_ref().is_some_and(|l| l.dialog.matches_request(&req)) {
                Some((p.id, false))
            } else {
                None
            }
        });
        let Some((id, from_parkee)) = found else {
            if req.method != Method::Ack {
                self.reply(now, &key, &req, 481, vec![]);
            }
            return;
        };
        let _ = source;
        match req.method {
            Method::Ack => {
                if from_parkee {
                    return;
                }
                let Some(park) = self.parks.get_mut(&id) else { return };
                if let Some(Pending3pcc::AwaitRetrieverAck { parkee_seq }) = park.pending.take() {
                    park.state = State::Bridged;
                    self.ack_leg(id, true, parkee_seq, req.body.clone(), now);
                }
            }
            Method::Bye => {
                self.reply(now, &key, &req, 200, vec![]);
                let state = self.parks.get(&id).map(|p| p.state.clone());
                if from_parkee && !matches!(state, Some(State::Bridged) | Some(State::Connecting)) {
                    self.log(format!("park {id}: the parked caller hung up"));
                    if let Some(p) = self.parks.get_mut(&id) {
                        p.parkee = None;
                    }
                    self.notify(now, id, &ParkNotice::Abandoned);
                    self.bye_legs(now, id);
                    self.finish(now, id);
                } else {
                    if let Some(p) = self.parks.get_mut(&id) {
                        if from_parkee { p.parkee = None } else { p.other = None }
                    }
                    self.bye_legs(now, id);
                    self.finish(now, id);
                }
            }
            Method::Invite | Method::Update => self.on_leg_offer(now, id, from_parkee, key, req),
            _ => self.reply(now, &key, &req, 200, vec![]),
        }
    }

    fn on_leg_offer(&mut self, now: Instant, id: ParkId, from_parkee: bool, key: TxKey, req: Request) {
        let Some(park) = self.parks.get_mut(&id) else { return };
        if let Some(leg) = if from_parkee { park.parkee.as_mut() } else { park.other.as_mut() } {
            if !leg.dialog.accept_remote_seq(&req) {
                self.reply(now, &key, &req, 500, vec![]);
                return;
            }
            leg.dialog.refresh_target(req.header("Contact"));
        }
        match park.state {
            State::Bridged if park.pending.is_none() && req.method == Method::Invite => {
                park.pending = Some(Pending3pcc::Relay { from_parkee, server_tx: key, req: req.clone() });
                if from_parkee {
                    self.reinvite_leg(now, id, false, req.body.clone());
                } else {
                    self.reinvite_leg(now, id, true, req.body.clone());
                }
            }
            State::Parked | State::Ringing { .. } if from_parkee => {
                // The parked caller re-offers (e.g. its own hold): keep playing music.
                let ip = self.music_addr.ip();
                let port = self.music_addr.port();
                let offer = SessionDescription::parse(&req.body_text());
                let answered = offer.ok().and_then(|o| {
                    negotiate::answer(&o, ip, port, &LocalCaps::default(), Direction::SendOnly, id + 1000, id + 2000)
                        .ok()
                });
                match answered {
                    Some((answer, negotiated)) => {
                        let mut ok = message::response_to(&req, 200, None);
                        ok.add_header("Contact", format!("<{}>", self.contact(crate::sip::transport::Transport::Udp)));
                        ok.add_header("Content-Type", "application/sdp");
                        ok.body = answer.to_string().into_bytes();
                        self.tl.respond(now, &key, ok);
                        self.out.push_back(super::service::Output::MusicStop { park: id });
                        if let (Some(to), true) = (negotiated.remote_addr, self.cfg.park.music) {
                            self.out.push_back(super::service::Output::MusicStart {
                                park: id,
                                to,
                                codec: negotiated.codec,
                            });
                        }
                    }
                    None => self.reply(now, &key, &req, 488, vec![]),
                }
            }
            _ => self.reply(now, &key, &req, 491, vec![]),
        }
    }
}
