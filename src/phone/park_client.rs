//! The phone's park client (docs/park-protocol.md): SUBSCRIBE to the park service with
//! the dialog to park, follow its NOTIFYs, and push the call with REFER when the
//! service asks. Each notice becomes an event on the parked call's number.

use super::api::{CallNo, Event};
use super::call::CallState;
use super::engine::{Engine, Purpose};
use crate::park::protocol::{self, ParkNotice, ParkRequest};
use crate::sip::dialog::Dialog;
use crate::sip::message::{self, MessageExt, Method, Request, Response, code};
use crate::sip::subscription::{SubState, SubscriptionState};
use crate::sip::transaction::TxKey;
use std::time::Instant;

/// One park we asked for.
#[derive(Debug, Clone)]
pub struct ParkClient {
    /// The parked call.
    pub call: CallNo,
    /// Call-ID of the control subscription.
    pub call_id: String,
    /// Our tag on the subscription.
    pub local_tag: String,
    /// The subscription dialog, once the service answered or notified.
    pub dialog: Option<Dialog>,
    /// A final notice arrived.
    pub done: bool,
    /// The park failed: the call was never handed to the service.
    pub failed: bool,
}

impl Engine {
    /// `park [CALL]`: ask the park service to take the call.
    pub(crate) fn park(&mut self, now: Instant, no: CallNo) {
        let Some(call) = self.calls.get(&no) else { return };
        let Some(dialog) = call.dialog.clone().filter(|_| call.state == CallState::Established) else {
            self.emit(Event::ParkFailed { call: no, reason: "only an established call can be parked".into() });
            return;
        };
        if self.park_clients.iter().any(|p| p.call == no && !p.done) {
            self.emit(Event::ParkFailed { call: no, reason: "this call is already being parked".into() });
            return;
        }
        let body = ParkRequest {
            call_id: dialog.call_id.clone(),
            local_tag: dialog.local_tag.clone(),
            remote_tag: dialog.remote_tag.clone(),
            target: dialog.remote_target.clone(),
            parkee: dialog.remote_party.clone(),
        };
        let uri = self.account.park_uri.clone().unwrap_or_else(|| format!("sip:park@{}", self.account.domain()));
        let Some(peer) = self.route_for(&uri) else {
            self.emit(Event::ParkFailed { call: no, reason: format!("cannot reach the park service at {uri}") });
            return;
        };
        let Some(mut req) = self.new_request(Method::Subscribe, &uri, format!("<{uri}>"), None, None, 1) else {
            self.emit(Event::ParkFailed { call: no, reason: format!("bad park service URI {uri}") });
            return;
        };
        req.add_header("Event", protocol::EVENT);
        req.add_header("Accept", protocol::CONTENT_TYPE);
        req.add_header("Expires", "3600");
        req.add_header("Content-Type", protocol::CONTENT_TYPE);
        req.body = serde_json::to_vec(&body).unwrap_or_default();
        self.park_clients.push(ParkClient {
            call: no,
            call_id: req.call_id(),
            local_tag: req.from_tag().unwrap_or_default(),
            dialog: None,
            done: false,
            failed: false,
        });
        self.emit(Event::ParkPending { call: no });
        self.send(now, req, peer, Purpose::ParkSubscribe { call: no });
    }

    pub(crate) fn on_park_subscribe_response(
        &mut self,
        now: Instant,
        no: CallNo,
        pending_req: &Request,
        resp: &Response,
    ) {
        let status = code(resp);
        let contact = self.contact_uri();
        let Some(pc) = self.park_clients.iter_mut().find(|p| p.call == no && p.call_id == resp.call_id()) else {
            return;
        };
        if (200..300).contains(&status) {
            if pc.dialog.is_none() {
                pc.dialog = Dialog::as_uac(pending_req, resp, &contact);
            } else if let Some(d) = pc.dialog.as_mut() {
                d.refresh_target(resp.header("Contact"));
            }
            // Refresh well before the service would let the subscription lapse: a park
            // with long timeouts and many ring-backs can outlive one subscription period.
            let granted = resp.header("Expires").and_then(|e| e.parse::<u64>().ok()).unwrap_or(3600);
            if !pc.done && granted > 0 {
                let at =
                    now + std::time::Duration::from_secs(granted).mul_f32(0.8).max(std::time::Duration::from_secs(5));
                self.timers.insert(super::engine::Timer::ParkRefresh(no), at);
            }
            return;
        }
        if pc.done {
            return;
        }
        if pc.dialog.is_some() {
            // A refresh was refused: the park went on, but we will hear no more of it.
            pc.done = true;
            self.emit(Event::ParkEnded { call: no, reason: "the park service stopped reporting on this park".into() });
            return;
        }
        pc.done = true;
        pc.failed = true;
        let reason = match status {
            403 => format!("not allowed ({})", message::status_text(resp)),
            404 | 480 => "no park service answers at this address".to_string(),
            408 => "the park service does not answer".to_string(),
            401 | 407 => "the park service refused our credentials".to_string(),
            489 => "the server does not offer call park".to_string(),
            _ => format!("{status} {}", message::status_text(resp)),
        };
        self.emit(Event::ParkFailed { call: no, reason });
    }

    /// A NOTIFY for a park subscription; false if it is not one of ours.
    pub(crate) fn on_park_notify(&mut self, now: Instant, key: &TxKey, req: &Request) -> bool {
        let Some(idx) = self
            .park_clients
            .iter()
            .position(|p| p.call_id == req.call_id() && req.to_tag().as_deref() == Some(p.local_tag.as_str()))
        else {
            return false;
        };
        let contact = self.contact_uri();
        let pc = &mut self.park_clients[idx];
        if pc.dialog.is_none() {
            // NOTIFY may overtake the 2xx (RFC 6665 §4.1.2.4): build the dialog from it.
            pc.dialog = Dialog::as_uas(req, &pc.local_tag, &contact);
        }
        let no = pc.call;
        let state = req.header("Subscription-State").and_then(|s| SubscriptionState::parse(&s));
        let terminated = state.as_ref().is_some_and(|s| s.state == SubState::Terminated);
        let notice = serde_json::from_slice::<ParkNotice>(&req.body).ok();
        self.reply(now, key, req, 200, vec![]);
        let already_done = self.park_clients[idx].done;
        if terminated {
            self.park_clients[idx].done = true;
        }
        let Some(notice) = notice else {
            if terminated && !already_done {
                self.emit(Event::ParkEnded { call: no, reason: "the park service ended the subscription".into() });
            }
            return true;
        };
        if notice.is_final() {
            self.park_clients[idx].done = true;
        }
        if matches!(notice, ParkNotice::Failed { .. }) {
            self.park_clients[idx].failed = true;
        }
        let event = match notice {
            ParkNotice::Parking => None,
            ParkNotice::Transfer { refer_to } => {
                // Push: the parkee cannot be pulled, so we transfer it to the service.
                self.push_to_park(now, no, &refer_to);
                None
            }
            ParkNotice::Parked { orbit, orbit_uri, retrieve_uri, parkee, ringback_at } => {
                Some(Event::Parked { call: no, orbit, orbit_uri, retrieve_uri, ringback_at, parkee })
            }
            ParkNotice::Ringback { attempt, of } => Some(Event::ParkRingback { call: no, attempt, of }),
            ParkNotice::Fallback { to } => Some(Event::ParkFallback { call: no, to }),
            ParkNotice::Retrieved { by } => Some(Event::ParkRetrieved { call: no, by }),
            ParkNotice::Abandoned => Some(Event::ParkAbandoned { call: no }),
            ParkNotice::Disconnected { reason } => Some(Event::ParkEnded { call: no, reason }),
            ParkNotice::Failed { reason } => Some(Event::ParkFailed { call: no, reason }),
        };
        if let Some(ev) = event {
            self.emit(ev);
        }
        // Once parked, our own leg of the call is over (pull: the parkee BYEs us).
        true
    }

    /// Re-SUBSCRIBE in the control dialog of a park that is still running.
    pub(crate) fn refresh_park_subscription(&mut self, now: Instant, no: CallNo) {
        let via = self.via();
        let Some(pc) = self.park_clients.iter_mut().find(|p| p.call == no && !p.done) else { return };
        let Some(dialog) = pc.dialog.as_mut() else { return };
        let req = dialog.request(
            Method::Subscribe,
            via,
            vec![("Event", protocol::EVENT.to_string()), ("Expires", "3600".to_string())],
            vec![],
        );
        let next = dialog.next_hop();
        if let Some(peer) = self.route_for_dialog(&next) {
            self.send(now, req, peer, Purpose::ParkSubscribe { call: no });
        }
    }

    fn push_to_park(&mut self, now: Instant, no: CallNo, refer_to: &str) {
        if self.calls.get(&no).is_none_or(|c| c.state != CallState::Established) {
            return;
        }
        self.blind_transfer(now, no, refer_to);
    }

    /// Whether a call has a park in progress or done (its end reads "parked").
    pub(crate) fn is_parked_call(&self, no: CallNo) -> bool {
        self.park_clients.iter().any(|p| p.call == no && !p.failed) || self.ext_parks.contains_key(&no)
    }
}

/// Our busy-lamp subscription to the park service's orbits.
#[derive(Debug, Clone, Default)]
pub struct OrbitWatch {
    /// Call-ID of the subscription.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Occupied orbits → parkee, as last reported.
    pub busy: std::collections::BTreeMap<String, Option<String>>,
}

impl Engine {
    /// `watch-orbits`: SUBSCRIBE `Event: dialog` to `sip:park@DOMAIN` (all orbits).
    pub(crate) fn watch_orbits(&mut self, now: Instant) {
        let uri = self.account.park_uri.clone().unwrap_or_else(|| format!("sip:park@{}", self.account.domain()));
        let Some(peer) = self.route_for(&uri) else {
            self.emit(Event::Error { message: format!("cannot reach the park service at {uri}"), call: None });
            return;
        };
        let Some(mut req) = self.new_request(Method::Subscribe, &uri, format!("<{uri}>"), None, None, 1) else {
            return;
        };
        req.add_header("Event", "dialog");
        req.add_header("Accept", "application/dialog-info+xml");
        req.add_header("Expires", "3600");
        self.orbit_watch = Some(OrbitWatch {
            call_id: req.call_id(),
            local_tag: req.from_tag().unwrap_or_default(),
            busy: Default::default(),
        });
        self.send(now, req, peer, Purpose::WatchOrbits);
    }

    /// A dialog-info NOTIFY for our orbit watch; false if it is not ours.
    pub(crate) fn on_orbit_notify(&mut self, now: Instant, key: &TxKey, req: &Request) -> bool {
        let Some(watch) = self.orbit_watch.as_ref() else { return false };
        if watch.call_id != req.call_id() || req.to_tag().as_deref() != Some(watch.local_tag.as_str()) {
            return false;
        }
        self.reply(now, key, req, 200, vec![]);
        let Some(doc) = crate::sip::dialog_info::DialogInfo::parse(&req.body_text()) else { return true };
        let now_busy: std::collections::BTreeMap<String, Option<String>> = doc
            .dialogs
            .iter()
            .filter(|d| d.state != "terminated")
            .map(|d| (d.id.trim_start_matches("orbit-").to_string(), d.remote_identity.clone()))
            .collect();
        let Some(watch) = self.orbit_watch.as_mut() else { return true };
        let before = std::mem::replace(&mut watch.busy, now_busy.clone());
        for (orbit, parkee) in &now_busy {
            if before.get(orbit) != Some(parkee) {
                self.emit(Event::OrbitStatus { orbit: orbit.clone(), busy: true, parkee: parkee.clone() });
            }
        }
        for orbit in before.keys().filter(|o| !now_busy.contains_key(*o)) {
            self.emit(Event::OrbitStatus { orbit: orbit.clone(), busy: false, parkee: None });
        }
        true
    }
}
