//! Busy-lamp for orbits (RFC 4235 `Event: dialog`): a watcher subscribes to one orbit
//! (`sip:7001@DOMAIN`) or to all of them (`sip:park@DOMAIN`) and is told which orbits
//! hold a call and whose call it is.

use super::service::{ParkService, Timer, Watcher};
use crate::sip::dialog_info::{DialogEntry, DialogInfo};
use crate::sip::message::{self, MessageExt, Method, Request};
use crate::sip::subscription::{NotifierSubscription, SubState, SubscriptionState, requested_expires};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Peer;
use std::time::{Duration, Instant};

const MAX_WATCH_EXPIRES: u32 = 3600;

impl ParkService {
    pub(super) fn on_watch_subscribe(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        let user = match self.authenticate(now, &req, source) {
            Ok(u) => u,
            Err((status, headers)) => return self.reply(now, &key, &req, status, headers),
        };
        if !self.cfg.policy.allows(&user) {
            return self.reply(now, &key, &req, 403, vec![]);
        }
        let target = req.uri.user().unwrap_or_default().to_string();
        let orbit = if target == "park" {
            None
        } else if self.orbits.is_orbit(&target) {
            Some(target)
        } else {
            return self.reply(now, &key, &req, 404, vec![]);
        };
        let expires = requested_expires(&req, MAX_WATCH_EXPIRES).min(MAX_WATCH_EXPIRES);
        let Some(dialog) = self.accept_subscription(now, &key, &req, source, expires) else { return };
        let id = self.next_id;
        self.next_id += 1;
        let sub = NotifierSubscription {
            dialog,
            event: req.header("Event").unwrap_or_else(|| "dialog".into()),
            expires_at: now + Duration::from_secs(u64::from(expires)),
            state: if expires == 0 { SubState::Terminated } else { SubState::Active },
        };
        self.watchers.insert(id, Watcher { sub, peer: source, orbit, version: 0 });
        self.send_watch_notify(now, id);
        if expires == 0 {
            self.watchers.remove(&id);
        } else {
            self.set_timer(now + Duration::from_secs(u64::from(expires)), Timer::WatchExpiry(id));
        }
    }

    /// Refresh or end a subscription (control or busy-lamp) by in-dialog SUBSCRIBE.
    pub(super) fn on_resubscribe(&mut self, now: Instant, key: TxKey, req: Request) {
        let requested = requested_expires(&req, MAX_WATCH_EXPIRES);
        if let Some(w) = self.watchers.iter().find(|(_, w)| w.sub.dialog.matches_request(&req)).map(|(k, _)| *k) {
            self.reply(now, &key, &req, 200, vec![("Expires", requested.min(MAX_WATCH_EXPIRES).to_string())]);
            if requested == 0 {
                self.end_watch(now, w, "timeout");
            } else if let Some(watch) = self.watchers.get_mut(&w) {
                watch.sub.refresh(now, requested, MAX_WATCH_EXPIRES);
                let at = watch.sub.expires_at;
                self.set_timer(at, Timer::WatchExpiry(w));
                self.send_watch_notify(now, w);
            }
            return;
        }
        let park = self
            .parks
            .values()
            .find(|p| p.control.as_ref().is_some_and(|c| c.dialog.matches_request(&req)))
            .map(|p| p.id);
        match park {
            Some(id) => {
                let secs = requested.min(super::service::MAX_CONTROL_EXPIRES);
                self.reply(now, &key, &req, 200, vec![("Expires", secs.to_string())]);
                let Some(p) = self.parks.get_mut(&id) else { return };
                if let Some(c) = p.control.as_mut() {
                    c.refresh(now, requested, super::service::MAX_CONTROL_EXPIRES);
                    let at = c.expires_at;
                    if secs == 0 {
                        // The parker stops listening; the park itself goes on.
                        p.control = None;
                        self.clear_timer(Timer::ControlExpiry(id));
                    } else {
                        self.set_timer(at, Timer::ControlExpiry(id));
                    }
                }
            }
            None => self.reply(now, &key, &req, 481, vec![]),
        }
    }

    /// The dialog-info document for a watcher's view.
    fn watch_document(&self, orbit: Option<&str>, version: u32) -> DialogInfo {
        let domain = self.cfg.service.domain.clone();
        let entry = |o: &str, id: &u64| {
            let p = self.parks.get(id)?;
            Some(DialogEntry {
                id: format!("orbit-{o}"),
                state: "confirmed".into(),
                remote_identity: message::name_addr_uri(&p.request.parkee).map(str::to_string),
                remote_display: message::display_name(&p.request.parkee),
            })
        };
        let (entity, dialogs) = match orbit {
            Some(o) => {
                (format!("sip:{o}@{domain}"), self.orbits.get(o).and_then(|id| entry(o, id)).into_iter().collect())
            }
            None => {
                let mut all: Vec<DialogEntry> = self.orbits.occupied().filter_map(|(o, id)| entry(o, id)).collect();
                all.sort_by(|a, b| a.id.cmp(&b.id));
                (format!("sip:park@{domain}"), all)
            }
        };
        DialogInfo { entity, state: "full".into(), version, dialogs }
    }

    fn send_watch_notify(&mut self, now: Instant, w: u64) {
        let Some(watch) = self.watchers.get(&w) else { return };
        let doc = self.watch_document(watch.orbit.as_deref(), watch.version).to_xml();
        let via = self.via(watch.peer.transport);
        let Some(watch) = self.watchers.get_mut(&w) else { return };
        watch.version += 1;
        let state = if watch.sub.state == SubState::Terminated {
            SubscriptionState::header(SubState::Terminated, Duration::ZERO, Some("timeout"))
        } else {
            SubscriptionState::header(SubState::Active, watch.sub.remaining(now), None)
        };
        let req = watch.sub.dialog.request(
            Method::Notify,
            via,
            vec![
                ("Event", watch.sub.event.clone()),
                ("Subscription-State", state),
                ("Content-Type", "application/dialog-info+xml".into()),
            ],
            doc.into_bytes(),
        );
        let peer = watch.peer;
        self.send(now, req, peer, super::service::Purpose::Notify);
    }

    /// Tell every watcher of `orbit` (and of all orbits) its new state.
    pub(super) fn notify_watchers(&mut self, now: Instant, orbit: &str) {
        let ids: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.orbit.as_deref().is_none_or(|o| o == orbit))
            .map(|(k, _)| *k)
            .collect();
        for id in ids {
            self.send_watch_notify(now, id);
        }
    }

    pub(super) fn end_watch(&mut self, now: Instant, w: u64, _reason: &str) {
        if let Some(watch) = self.watchers.get_mut(&w) {
            watch.sub.state = SubState::Terminated;
        }
        self.send_watch_notify(now, w);
        self.watchers.remove(&w);
        self.clear_timer(Timer::WatchExpiry(w));
    }
}
