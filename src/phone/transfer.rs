//! Transfer (RFC 3515 REFER, RFC 3891 Replaces): blind and attended as transferor,
//! following NOTIFY `message/sipfrag`; as transferee, calling the target and reporting
//! back with NOTIFYs on the implicit subscription.

use super::api::{CallNo, Event};
use super::call::{CallState, ReferOrigin};
use super::engine::{Engine, Purpose};
use crate::sip::message::{self, MessageExt, Method, Request, Response, code};
use crate::sip::transaction::TxKey;
use std::time::Instant;

/// Percent-encode a header value for use inside a URI's `?Replaces=` (RFC 3261 §19.1.1).
fn uri_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Undo `%XX` escapes (byte-wise, so odd input cannot split a UTF-8 character).
fn uri_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split a Refer-To URI into the target URI and the headers it carries (`?Replaces=…`).
pub fn split_refer_to(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let uri = message::name_addr_uri(value)?;
    let (base, headers) = match uri.split_once('?') {
        Some((b, h)) => (b, h),
        None => (uri, ""),
    };
    let headers = headers
        .split('&')
        .filter(|h| !h.is_empty())
        .filter_map(|h| h.split_once('=').map(|(n, v)| (uri_unescape(n), uri_unescape(v))))
        .collect();
    Some((base.to_string(), headers))
}

/// Status line of a sipfrag body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &str) -> Option<(u16, String)> {
    let line = body.lines().next()?.trim();
    let mut parts = line.splitn(3, ' ');
    if parts.next()? != "SIP/2.0" {
        return None;
    }
    let code = parts.next()?.parse().ok()?;
    Some((code, parts.next().unwrap_or("").to_string()))
}

impl Engine {
    /// Blind transfer: REFER the other side of `no` to `target`.
    pub(crate) fn blind_transfer(&mut self, now: Instant, no: CallNo, target: &str) {
        self.send_refer(now, no, format!("<{target}>"), None);
    }

    /// Attended transfer: REFER the far end of `a` to the far end of `b`, replacing `b`.
    pub(crate) fn attended_transfer(&mut self, now: Instant, a: CallNo, b: CallNo) {
        let established = |e: &Self, c: CallNo| e.calls.get(&c).is_some_and(|c| c.state == CallState::Established);
        if !established(self, a) || !established(self, b) || a == b {
            self.emit(Event::Error {
                message: format!("transfer-attended: calls {a} and {b} must both be established"),
                call: Some(a),
            });
            return;
        }
        let Some(dialog_b) = self.calls.get(&b).and_then(|c| c.dialog.clone()) else { return };
        // Through a proxy the AOR routes; without one only the contact is reachable.
        let target = if self.account.outbound.is_some() {
            message::name_addr_uri(&dialog_b.remote_party).unwrap_or(&dialog_b.remote_target).to_string()
        } else {
            dialog_b.remote_target.clone()
        };
        let target = target.split('?').next().unwrap_or(&target).to_string();
        let refer_to = format!("<{target}?Replaces={}>", uri_escape(&dialog_b.replaces_for_peer()));
        self.send_refer(now, a, refer_to, Some(b));
    }

    fn send_refer(&mut self, now: Instant, no: CallNo, refer_to: String, other: Option<CallNo>) {
        let via = self.via();
        let referred_by = format!("<{}>", self.account.aor);
        let Some(call) = self.calls.get_mut(&no) else { return };
        let Some(dialog) = call.dialog.as_mut() else { return };
        let req =
            dialog.request(Method::Refer, via, vec![("Refer-To", refer_to), ("Referred-By", referred_by)], vec![]);
        let next = dialog.next_hop();
        call.transfer = Some(other);
        if let Some(peer) = self.route_for_dialog(&next) {
            self.send(now, req, peer, Purpose::Refer { call: no });
        }
    }

    pub(crate) fn on_refer_response(&mut self, call: CallNo, resp: &Response) {
        let status = code(resp);
        if status < 200 {
            return;
        }
        self.emit(Event::TransferProgress { call, status, reason: message::status_text(resp) });
        if status >= 300 {
            self.ext_park_outcome(call, status, &message::status_text(resp));
            // The transfer failed: keep the call as it was rather than drop it.
            if let Some(c) = self.calls.get_mut(&call) {
                c.transfer = None;
            }
        }
    }

    /// NOTIFY on a call's dialog: progress of a transfer we started.
    pub(crate) fn on_notify(&mut self, now: Instant, no: CallNo, key: TxKey, req: Request) {
        let event = req.header("Event").unwrap_or_default();
        if !event.to_ascii_lowercase().starts_with("refer") {
            self.reply(now, &key, &req, 489, vec![]);
            return;
        }
        self.reply(now, &key, &req, 200, vec![]);
        let Some((status, reason)) = sipfrag_status(&req.body_text()) else { return };
        self.emit(Event::TransferProgress { call: no, status, reason: reason.clone() });
        if status < 200 {
            return;
        }
        let other = self.calls.get(&no).and_then(|c| c.transfer);
        self.ext_park_outcome(no, status, &reason);
        if (200..300).contains(&status) {
            let reason = if self.is_parked_call(no) { "parked" } else { "transferred" };
            self.hangup(now, no, reason);
            if let Some(Some(b)) = other {
                self.hangup(now, b, "transferred");
            }
        } else if let Some(c) = self.calls.get_mut(&no) {
            c.transfer = None;
        }
    }

    /// REFER on a call's dialog: we are being transferred.
    pub(crate) fn on_refer(&mut self, now: Instant, no: CallNo, key: TxKey, req: Request) {
        let Some((target, headers)) = req.header("Refer-To").as_deref().and_then(split_refer_to) else {
            self.reply(now, &key, &req, 400, vec![]);
            return;
        };
        self.reply(now, &key, &req, 202, vec![]);
        let event = format!("refer;id={}", req.cseq().0);
        let mut extra: Vec<(String, String)> = Vec::new();
        for (n, v) in headers {
            if n.eq_ignore_ascii_case("Replaces") {
                extra.push(("Replaces".into(), v));
                extra.push(("Require".into(), "replaces".into()));
            }
        }
        if let Some(by) = req.header("Referred-By") {
            extra.push(("Referred-By".into(), by));
        }
        self.send_sipfrag(now, no, &event, 100, "Trying", false);
        let origin = ReferOrigin { call: no, event };
        if let Some(new_call) = self.dial(now, &target, extra, Some(origin)) {
            self.emit(Event::TransferRequested { call: no, target, new_call });
        }
    }

    /// Report a transfer call's progress to whoever REFERred us (no-op otherwise).
    pub(crate) fn notify_refer_progress(&mut self, now: Instant, new_call: CallNo, status: u16, reason: &str) {
        let Some(origin) = self
            .calls
            .get_mut(&new_call)
            .and_then(|c| if status >= 200 { c.refer_origin.take() } else { c.refer_origin.clone() })
        else {
            return;
        };
        self.send_sipfrag(now, origin.call, &origin.event, status, reason, status >= 200);
    }

    fn send_sipfrag(&mut self, now: Instant, no: CallNo, event: &str, status: u16, reason: &str, last: bool) {
        let via = self.via();
        let Some(call) = self.calls.get_mut(&no) else { return };
        if call.state == CallState::Ended {
            return;
        }
        let Some(dialog) = call.dialog.as_mut() else { return };
        let state = if last { "terminated;reason=noresource".to_string() } else { "active;expires=60".to_string() };
        let body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
        let req = dialog.request(
            Method::Notify,
            via,
            vec![
                ("Event", event.to_string()),
                ("Subscription-State", state),
                ("Content-Type", "message/sipfrag;version=2.0".into()),
            ],
            body,
        );
        let next = dialog.next_hop();
        if let Some(peer) = self.route_for_dialog(&next) {
            self.send(now, req, peer, Purpose::Notify);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_with_replaces_round_trips() {
        let replaces = "abc@host;to-tag=t1;from-tag=f1";
        let value = format!("<sip:carol@127.0.0.1:5070?Replaces={}>", uri_escape(replaces));
        assert!(value.contains("%3Bto-tag%3Dt1"));
        let (uri, headers) = split_refer_to(&value).unwrap();
        assert_eq!(uri, "sip:carol@127.0.0.1:5070");
        assert_eq!(headers, vec![("Replaces".to_string(), replaces.to_string())]);
        assert_eq!(sipfrag_status("SIP/2.0 486 Busy Here\r\n"), Some((486, "Busy Here".into())));
        assert_eq!(sipfrag_status("garbage"), None);
    }
}
