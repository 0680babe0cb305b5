//! Call flows of the engine: dial, answer, decline, CANCEL, BYE, hold and resume
//! (re-INVITE), UPDATE, and accepting INVITE with Replaces (RFC 3891).

use super::api::{CallNo, Event, Recall};
use super::call::{CallState, Direction};
use super::engine::{Engine, Output, Pending, Purpose, Timer, dialog_peer};
use crate::sip::dialog::{Dialog, parse_replaces};
use crate::sip::message::{self, MessageExt, Method, Request, Response, code, request_bytes};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Peer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl Engine {
    /// Start an outgoing call to a complete URI.
    pub(crate) fn dial(
        &mut self,
        _now: Instant,
        uri: &str,
        extra: Vec<(String, String)>,
        refer_origin: Option<super::call::ReferOrigin>,
    ) -> Option<CallNo> {
        if rsipstack::sip::parse_uri(uri).is_err() {
            self.emit(Event::Error { message: format!("dial: {uri:?} is not a valid SIP URI"), call: None });
            return None;
        }
        let no = self.allocate_call(Direction::Outgoing, uri.to_string());
        if let Some(c) = self.calls.get_mut(&no) {
            c.extra_headers = extra;
            c.refer_origin = refer_origin;
        }
        self.emit(Event::CallDialing { call: no, to: uri.to_string() });
        self.out.push_back(Output::AllocateMedia { call: no });
        Some(no)
    }

    pub(crate) fn on_media_allocated(&mut self, now: Instant, no: CallNo, local: SocketAddr) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        if call.state != CallState::Allocating {
            return;
        }
        call.media.local = Some(local);
        match call.direction {
            Direction::Outgoing => self.send_invite(now, no),
            Direction::Incoming => self.ring_incoming(now, no),
        }
    }

    fn send_invite(&mut self, now: Instant, no: CallNo) {
        let Some(call) = self.calls.get(&no) else { return };
        let uri = call.party.clone();
        let Some(peer) = self.route_for(&uri) else {
            self.end_call(no, &format!("cannot route to {uri}: no outbound proxy and not an IP address"));
            return;
        };
        let extra = call.extra_headers.clone();
        let Some(mut req) = self.new_request(Method::Invite, &uri, format!("<{uri}>"), None, None, 1) else {
            self.end_call(no, &format!("bad URI {uri}"));
            return;
        };
        req.add_header("Allow", Self::allow_header().1);
        req.add_header("Supported", "replaces, norefersub");
        for (n, v) in extra {
            req.add_header(&n, v);
        }
        let Some(call) = self.calls.get_mut(&no) else { return };
        req.add_header("Content-Type", "application/sdp");
        req.body = call.media.offer(false);
        call.state = CallState::Calling;
        call.invite = Some(req.clone());
        call.invite_peer = Some(peer);
        self.send(now, req, peer, Purpose::Invite { call: no });
    }

    pub(crate) fn on_invite_response(&mut self, now: Instant, no: CallNo, pending: &Pending, resp: Response) {
        let status = code(&resp);
        let local_contact = self.contact_uri();
        let ack_via = self.via();
        let Some(call) = self.calls.get_mut(&no) else { return };
        match status {
            100 => {}
            101..=199 => {
                if call.state == CallState::Calling && !call.cancel_requested {
                    call.state = CallState::Early;
                    if call.dialog.is_none() && resp.to_tag().is_some() {
                        call.dialog = Dialog::as_uac(&pending.request, &resp, &local_contact);
                    }
                    self.emit(Event::CallRinging { call: no });
                    self.notify_refer_progress(now, no, status, &message::status_text(&resp));
                }
            }
            200..=299 => {
                let seq = resp.cseq().0;
                if let Some((acked_seq, bytes, peer)) = call.acked.clone()
                    && acked_seq == seq
                {
                    // Retransmitted 2xx: our ACK was lost, send it again (§13.2.2.4).
                    self.out.push_back(Output::Transmit { to: peer, bytes });
                    return;
                }
                let Some(mut dialog) = Dialog::as_uac(&pending.request, &resp, &local_contact) else {
                    return;
                };
                // A retrieved parked call names the caller, not the orbit (P-Asserted-Identity).
                if let Some(pai) = resp.header("P-Asserted-Identity") {
                    call.party = pai;
                    call.asserted = true;
                }
                dialog.local_seq = seq;
                let answer_ok = if resp.body.is_empty() {
                    Err("200 OK without SDP".to_string())
                } else {
                    call.media.apply_answer(&resp.body)
                };
                let mut ack = dialog.ack(seq, ack_via, vec![]);
                for (n, v) in call.invite_auth_headers.clone() {
                    ack.add_header(&n, v);
                }
                let peer = dialog_peer(&self.account, &dialog.next_hop()).or(call.invite_peer).unwrap_or(pending.peer);
                let bytes = request_bytes(&ack);
                call.acked = Some((seq, bytes.clone(), peer));
                call.dialog = Some(dialog);
                self.out.push_back(Output::Transmit { to: peer, bytes });
                if call.cancel_requested {
                    self.send_bye(now, no, "local hangup");
                    return;
                }
                if let Err(e) = answer_ok {
                    self.emit(Event::Error { message: format!("media: {e}"), call: Some(no) });
                    self.send_bye(now, no, "no usable media (488)");
                    return;
                }
                self.establish(now, no);
            }
            _ => {
                let reason = if call.cancel_requested {
                    "cancelled".to_string()
                } else {
                    format!("{status} {}", message::status_text(&resp))
                };
                self.notify_refer_progress(now, no, status, &message::status_text(&resp));
                self.end_call(no, &reason);
            }
        }
    }

    /// The call is up: start media, tell the face, finish any replacement or transfer.
    pub(crate) fn establish(&mut self, now: Instant, no: CallNo) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        call.state = CallState::Established;
        let party = if call.asserted {
            call.party.clone()
        } else {
            call.dialog.as_ref().map(|d| d.remote_party.clone()).unwrap_or_else(|| call.party.clone())
        };
        let codec = call.media.negotiated_codec();
        let params = call.media.params();
        if let Some(params) = params {
            self.out.push_back(Output::MediaStart { call: no, params });
        }
        self.emit(Event::CallEstablished { call: no, party, codec });
        self.notify_refer_progress(now, no, 200, "OK");
    }

    // ---- incoming -----------------------------------------------------------------

    pub(crate) fn on_incoming_invite(&mut self, now: Instant, key: TxKey, req: Request, _source: Peer) {
        let mut replaces_call = None;
        if let Some(value) = req.header("Replaces") {
            let target = parse_replaces(&value).and_then(|(call_id, to_tag, from_tag, early_only)| {
                self.calls
                    .values()
                    .filter(|c| c.state == CallState::Established || (!early_only && c.state != CallState::Ended))
                    .find(|c| {
                        c.dialog
                            .as_ref()
                            .is_some_and(|d| d.call_id == call_id && d.local_tag == to_tag && d.remote_tag == from_tag)
                    })
                    .map(|c| c.no)
            });
            match target {
                Some(c) => replaces_call = Some(c),
                None => {
                    self.reply(now, &key, &req, 481, vec![]);
                    return;
                }
            }
        }
        if !req.body.is_empty()
            && !req.header("Content-Type").unwrap_or_default().to_ascii_lowercase().contains("application/sdp")
        {
            self.reply(now, &key, &req, 415, vec![("Accept", "application/sdp".into())]);
            return;
        }
        let from = req.header("From").unwrap_or_default();
        let party = message::name_addr_uri(&from).unwrap_or_default().to_string();
        let no = self.allocate_call(Direction::Incoming, party);
        if let Some(c) = self.calls.get_mut(&no) {
            c.incoming = Some(req);
            c.server_tx = Some(key);
            c.replaces_call = replaces_call;
        }
        self.out.push_back(Output::AllocateMedia { call: no });
    }

    fn ring_incoming(&mut self, now: Instant, no: CallNo) {
        let contact = self.contact_uri();
        let Some(call) = self.calls.get_mut(&no) else { return };
        let (Some(req), Some(key)) = (call.incoming.clone(), call.server_tx.clone()) else { return };
        if !req.body.is_empty()
            && let Err(e) = call.media.answer(&req.body, false)
        {
            tracing::info!("incoming call {no}: {e}");
            self.reject_incoming(now, no, 488, "no common codec (488)");
            return;
        }
        call.dialog = Dialog::as_uas(&req, &call.local_tag, &contact);
        if call.dialog.is_none() {
            self.reject_incoming(now, no, 400, "INVITE without Contact");
            return;
        }
        call.state = CallState::Ringing;
        let mut ringing = message::response_to(&req, 180, Some(&call.local_tag));
        ringing.add_header("Contact", format!("<{contact}>"));
        let from = req.header("From").unwrap_or_default();
        let recall = recall_of(&req);
        let replaces = call.replaces_call;
        let auto = self.account.auto_answer || replaces.is_some();
        if replaces.is_none() {
            self.tl.respond(now, &key, ringing);
        }
        self.emit(Event::CallIncoming {
            call: no,
            from: message::name_addr_uri(&from).unwrap_or_default().to_string(),
            name: message::display_name(&from),
            recall,
            replaces,
        });
        if auto {
            self.answer(now, no);
        }
    }

    /// Answer a ringing call with 200 OK (our SDP answer, or our offer for a delayed-offer INVITE).
    pub(crate) fn answer(&mut self, now: Instant, no: CallNo) {
        let contact = self.contact_uri();
        let Some(call) = self.calls.get_mut(&no) else { return };
        if call.state != CallState::Ringing {
            self.emit(Event::Error { message: format!("call {no} is not ringing"), call: Some(no) });
            return;
        }
        let (Some(req), Some(key)) = (call.incoming.clone(), call.server_tx.clone()) else { return };
        let body = if req.body.is_empty() { call.media.offer(false) } else { call.media.last_answer() };
        let mut ok = message::response_to(&req, 200, Some(&call.local_tag));
        ok.add_header("Contact", format!("<{contact}>"));
        ok.add_header("Allow", Self::allow_header().1);
        ok.add_header("Supported", "replaces");
        ok.add_header("Content-Type", "application/sdp");
        ok.body = body;
        call.state = CallState::Answering;
        // RFC 3891 §3: once the new dialog is accepted, the replaced one ends at once.
        let replaced = call.replaces_call.take();
        self.tl.respond(now, &key, ok);
        if let Some(old) = replaced {
            self.hangup(now, old, "replaced");
        }
    }

    /// Turn down a ringing incoming call with a final error response.
    pub(crate) fn reject_incoming(&mut self, now: Instant, no: CallNo, status: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        if let (Some(req), Some(key)) = (call.incoming.clone(), call.server_tx.clone()) {
            let resp = message::response_to(&req, status, Some(&call.local_tag));
            self.tl.respond(now, &key, resp);
        }
        self.end_call(no, reason);
    }

    /// Hang up whatever state the call is in: CANCEL, decline, or BYE.
    pub(crate) fn hangup(&mut self, now: Instant, no: CallNo, reason: &str) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        match call.state {
            CallState::Allocating => self.end_call(no, reason),
            CallState::Calling | CallState::Early => {
                call.cancel_requested = true;
                call.end_reason = Some(reason.to_string());
                if let (Some(invite), Some(peer)) = (call.invite.clone(), call.invite_peer) {
                    let mut cancel =
                        Request { method: Method::Cancel, headers: Default::default(), body: vec![], ..invite.clone() };
                    for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
                        if let Some(v) = invite.header(name) {
                            cancel.add_header(name, v);
                        }
                    }
                    cancel.set_header("To", message::dialog_free_to(&invite));
                    cancel.add_header("CSeq", format!("{} CANCEL", invite.cseq().0));
                    for r in invite.headers_named("Route") {
                        cancel.add_header("Route", r);
                    }
                    // CANCEL shares the INVITE's branch, so it is sent as its own transaction.
                    let key = self.tl.send_request(now, cancel.clone(), peer);
                    self.pending
                        .insert(key, Pending { purpose: Purpose::Cancel, request: cancel, peer, auth_tries: 0 });
                    call.state = CallState::Terminating;
                }
            }
            CallState::Ringing => self.reject_incoming(now, no, 486, reason),
            CallState::Answering | CallState::Established => self.send_bye(now, no, reason),
            CallState::Terminating | CallState::Ended => {}
        }
    }

    pub(crate) fn send_bye(&mut self, now: Instant, no: CallNo, reason: &str) {
        let via = self.via();
        let Some(call) = self.calls.get_mut(&no) else { return };
        let Some(dialog) = call.dialog.as_mut() else {
            self.end_call(no, reason);
            return;
        };
        let bye = dialog.request(Method::Bye, via, vec![], vec![]);
        let next = dialog.next_hop();
        call.state = CallState::Terminating;
        call.end_reason = Some(reason.to_string());
        self.out.push_back(Output::MediaStop { call: no });
        match self.route_for_dialog(&next) {
            Some(peer) => {
                self.send(now, bye, peer, Purpose::Bye { call: no });
            }
            None => self.end_call(no, reason),
        }
    }

    /// Mark a call over and tell the face, exactly once.
    pub(crate) fn end_call(&mut self, no: CallNo, reason: &str) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        if call.state == CallState::Ended {
            return;
        }
        call.state = CallState::Ended;
        self.out.push_back(Output::MediaStop { call: no });
        self.emit(Event::CallEnded { call: no, reason: reason.to_string() });
        self.ext_consult_ended(no, reason);
        self.timers.remove(&Timer::ReInviteRetry(no));
        // Ended calls are kept only while the transaction layer may still need them.
        let ended: Vec<CallNo> = self.calls.values().filter(|c| c.state == CallState::Ended).map(|c| c.no).collect();
        if ended.len() > 32 {
            for old in ended.into_iter().take(16) {
                self.calls.remove(&old);
            }
        }
    }

    // ---- hold / resume ----------------------------------------------------------------

    pub(crate) fn hold(&mut self, now: Instant, no: CallNo, hold: bool) {
        let Some(call) = self.calls.get_mut(&no) else { return };
        if call.state != CallState::Established {
            self.emit(Event::Error { message: format!("call {no} is not established"), call: Some(no) });
            return;
        }
        if call.local_hold == hold && call.wanted_hold.is_none() {
            let message = if hold { "already on hold" } else { "not on hold" };
            self.emit(Event::Error { message: format!("call {no} is {message}"), call: Some(no) });
            return;
        }
        call.wanted_hold = Some(hold);
        if !call.reinvite_pending {
            self.send_reinvite(now, no);
        }
    }

    pub(crate) fn send_reinvite(&mut self, now: Instant, no: CallNo) {
        let via = self.via();
        let Some(call) = self.calls.get_mut(&no) else { return };
        let Some(hold) = call.wanted_hold else { return };
        let Some(dialog) = call.dialog.as_mut() else { return };
        let body = call.media.offer(hold);
        let req = dialog.request(Method::Invite, via, vec![("Content-Type", "application/sdp".into())], body);
        let next = dialog.next_hop();
        call.reinvite_pending = true;
        if let Some(peer) = self.route_for_dialog(&next) {
            self.send(now, req, peer, Purpose::ReInvite { call: no });
        }
    }

    pub(crate) fn on_reinvite_response(&mut self, now: Instant, no: CallNo, resp: Response) {
        let status = code(&resp);
        let via = self.via();
        let Some(call) = self.calls.get_mut(&no) else { return };
        if status < 200 {
            return;
        }
        let Some(dialog) = call.dialog.as_mut() else { return };
        if (200..300).contains(&status) {
            let seq = resp.cseq().0;
            if call.acked.as_ref().is_some_and(|(s, _, _)| *s == seq) {
                if let Some((_, bytes, peer)) = call.acked.clone() {
                    self.out.push_back(Output::Transmit { to: peer, bytes });
                }
                return;
            }
            dialog.refresh_target(resp.header("Contact"));
            let ack = dialog.ack(seq, via, vec![]);
            let next = dialog.next_hop();
            if let Some(peer) = dialog_peer(&self.account, &next) {
                let bytes = request_bytes(&ack);
                call.acked = Some((seq, bytes.clone(), peer));
                self.out.push_back(Output::Transmit { to: peer, bytes });
            }
            call.reinvite_pending = false;
            let hold = call.wanted_hold.take().unwrap_or(call.local_hold);
            if let Err(e) = call.media.apply_answer(&resp.body) {
                self.out.push_back(Output::Event(Event::Error {
                    message: format!("re-INVITE answer: {e}"),
                    call: Some(no),
                }));
            }
            let changed = call.local_hold != hold;
            call.local_hold = hold;
            if let Some(params) = call.media.params() {
                self.out.push_back(Output::MediaStart { call: no, params });
            }
            if changed {
                self.emit(if hold {
                    Event::CallHeld { call: no, by: "local" }
                } else {
                    Event::CallResumed { call: no }
                });
            }
            return;
        }
        call.reinvite_pending = false;
        if status == 491 {
            // Glare (RFC 3261 §14.1): retry after a random 2.1–4 s as the dialog's owner side.
            let wait = Duration::from_millis(2100 + u64::from(rand::random::<u16>() % 1900));
            self.timers.insert(Timer::ReInviteRetry(no), now + wait);
            return;
        }
        call.wanted_hold = None;
        let message = format!(
            "{} failed: {status} {}",
            if call.local_hold { "resume" } else { "hold" },
            message::status_text(&resp)
        );
        self.emit(Event::Error { message, call: Some(no) });
        if status == 481 || status == 408 {
            self.end_call(no, "dialog gone");
        }
    }

    // ---- in-dialog requests --------------------------------------------------------------

    pub(crate) fn on_in_dialog_request(&mut self, now: Instant, key: TxKey, req: Request, _source: Peer) {
        if req.method == Method::Notify
            && (self.on_park_notify(now, &key, &req) || self.on_orbit_notify(now, &key, &req))
        {
            return;
        }
        let Some(no) = self.find_dialog_call(&req) else {
            if req.method != Method::Ack {
                self.reply(now, &key, &req, 481, vec![]);
            }
            return;
        };
        if req.method == Method::Ack {
            let Some(call) = self.calls.get_mut(&no) else { return };
            if call.state == CallState::Answering {
                if call.media.awaiting_answer()
                    && !req.body.is_empty()
                    && let Err(e) = call.media.apply_answer(&req.body)
                {
                    self.emit(Event::Error { message: format!("media: {e}"), call: Some(no) });
                }
                self.establish(now, no);
            } else if !req.body.is_empty() && call.media.awaiting_answer() {
                // ACK carrying the answer to an offer we put in a re-INVITE 2xx.
                let _ = call.media.apply_answer(&req.body);
                if let Some(params) = call.media.params() {
                    self.out.push_back(Output::MediaStart { call: no, params });
                }
            }
            return;
        }
        let Some(call) = self.calls.get_mut(&no) else { return };
        let Some(dialog) = call.dialog.as_mut() else { return };
        if !dialog.accept_remote_seq(&req) {
            self.reply(now, &key, &req, 500, vec![("Retry-After", "1".into())]);
            return;
        }
        match req.method {
            Method::Bye => {
                let resp = message::response_to(&req, 200, None);
                self.tl.respond(now, &key, resp);
                if let Some(c) = self.calls.get(&no)
                    && c.state == CallState::Ended
                {
                    return;
                }
                let reason = if self.is_parked_call(no) {
                    "parked"
                } else if self.calls.get(&no).is_some_and(|c| c.transfer.is_some()) {
                    "transferred"
                } else {
                    "remote hangup"
                };
                self.end_call(no, reason);
            }
            Method::Invite | Method::Update => self.on_remote_offer(now, no, key, req),
            Method::Refer => self.on_refer(now, no, key, req),
            Method::Notify => self.on_notify(now, no, key, req),
            Method::Info | Method::Options | Method::Message => self.reply(now, &key, &req, 200, vec![]),
            _ => self.reply(now, &key, &req, 405, vec![Self::allow_header()]),
        }
    }

    /// A re-INVITE or UPDATE from the other side: answer it, follow their hold state.
    fn on_remote_offer(&mut self, now: Instant, no: CallNo, key: TxKey, req: Request) {
        let contact = self.contact_uri();
        let Some(call) = self.calls.get_mut(&no) else { return };
        if req.method == Method::Invite && call.reinvite_pending {
            self.reply(now, &key, &req, 491, vec![]);
            return;
        }
        if let Some(d) = call.dialog.as_mut() {
            d.refresh_target(req.header("Contact"));
        }
        let body = if req.body.is_empty() {
            if req.method == Method::Update {
                Vec::new() // session refresh only
            } else {
                call.media.offer(call.local_hold) // offer-less re-INVITE: we offer in the 2xx
            }
        } else {
            match call.media.answer(&req.body, call.local_hold) {
                Ok(b) => b,
                Err(e) => {
                    tracing::info!("call {no}: re-offer refused: {e}");
                    self.reply(now, &key, &req, 488, vec![]);
                    return;
                }
            }
        };
        let mut ok = message::response_to(&req, 200, None);
        ok.add_header("Contact", format!("<{contact}>"));
        if !body.is_empty() {
            ok.add_header("Content-Type", "application/sdp");
            ok.body = body;
        }
        self.tl.respond(now, &key, ok);
        let Some(call) = self.calls.get_mut(&no) else { return };
        if req.body.is_empty() {
            return;
        }
        let remote_hold = call.media.remote_holds();
        let changed = remote_hold != call.remote_hold;
        call.remote_hold = remote_hold;
        if let Some(params) = call.media.params() {
            self.out.push_back(Output::MediaStart { call: no, params });
        }
        if changed {
            self.emit(if remote_hold {
                Event::CallHeld { call: no, by: "remote" }
            } else {
                Event::CallResumed { call: no }
            });
        }
    }
}

/// A returning parked call's identity (park service ring-back), from its Call-Info.
fn recall_of(req: &Request) -> Option<Recall> {
    let info = req.headers_named("Call-Info").into_iter().find(|v| v.contains("call-park-recall"))?;
    let orbit_uri = message::name_addr_uri(&info)?;
    let orbit = super::account::uri_user(orbit_uri)?;
    let parkee = req.header("P-Asserted-Identity").or_else(|| req.header("From")).unwrap_or_default();
    Some(Recall { orbit, parkee })
}
