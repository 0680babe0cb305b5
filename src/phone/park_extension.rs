//! Park by transfer to a park extension (Asterisk `700`, FreeSWITCH `valet_park`): for
//! accounts on a PBX that parks calls itself. The PBX picks the slot.
//!
//! - Blind (default): Park is a REFER of the call to the extension.
//! - Attended (`park_attended`): Park holds the call and calls the extension, so the user
//!   hears the slot announced; Park again (on either call) completes an attended transfer
//!   (REFER with Replaces), which puts the held caller on that slot.
//!
//! The outcome is reported with the park events where they apply (`park_pending`,
//! `park_failed`), `park_consulting` while the user listens, and `parked_extension` once
//! the PBX took the call.

use super::api::{CallNo, Event};
use super::call::CallState;
use super::engine::Engine;
use std::time::Instant;

impl Engine {
    /// Park `no` by transferring it to `extension` (or complete an attended one).
    pub(crate) fn park_via_extension(&mut self, now: Instant, no: CallNo, extension: &str) {
        // Park on the consultation call, or again on the parked one: complete.
        let parked = self.ext_consults.iter().find(|(_, b)| **b == no).map(|(a, _)| *a).unwrap_or(no);
        if let Some(&consult) = self.ext_consults.get(&parked) {
            if self.calls.get(&consult).is_some_and(|c| c.state == CallState::Established) {
                // From here the PBX ends the consultation call itself (it is replaced):
                // the outcome comes from the transfer's NOTIFYs, not from that call's end.
                self.ext_consults.remove(&parked);
                self.attended_transfer(now, parked, consult);
            } else {
                self.emit(Event::Error {
                    message: "the park extension has not answered yet".into(),
                    call: Some(parked),
                });
            }
            return;
        }
        if self.ext_parks.contains_key(&no) {
            // Not a failure of the park in flight (a double click): just say so.
            self.emit(Event::Error { message: "this call is already being parked".into(), call: Some(no) });
            return;
        }
        let target = self.account.complete_target(extension);
        let extension = extension.trim().to_string();
        if !self.account.park_attended {
            self.ext_parks.insert(no, extension);
            self.emit(Event::ParkPending { call: no });
            self.blind_transfer(now, no, &target);
            return;
        }
        self.hold(now, no, true);
        let Some(consult) = self.dial(now, &target, Vec::new(), None) else {
            self.emit(Event::ParkFailed { call: no, reason: format!("cannot call the park extension {extension}") });
            return;
        };
        self.ext_parks.insert(no, extension.clone());
        self.ext_consults.insert(no, consult);
        self.emit(Event::ParkPending { call: no });
        self.emit(Event::ParkConsulting { call: no, consult, extension });
    }

    /// A final transfer status on `no` (REFER refused, or the sipfrag's final line):
    /// turn it into the park outcome when the transfer was a park.
    pub(crate) fn ext_park_outcome(&mut self, no: CallNo, status: u16, reason: &str) {
        if status < 200 {
            return;
        }
        let Some(extension) = self.ext_parks.get(&no).cloned() else { return };
        // Done either way: the consultation call's end is no longer a park failure.
        self.ext_consults.remove(&no);
        if (200..300).contains(&status) {
            self.emit(Event::ParkedExtension { call: no, extension });
        } else {
            self.ext_parks.remove(&no);
            self.emit(Event::ParkFailed {
                call: no,
                reason: format!("the park extension {extension} did not take the call ({status} {reason})"),
            });
        }
    }

    /// A call ended: if it was the consultation call of an attended park still waiting to
    /// be completed, that park failed (the call stays on hold with the user).
    pub(crate) fn ext_consult_ended(&mut self, no: CallNo, reason: &str) {
        let Some(parked) = self.ext_consults.iter().find(|(_, b)| **b == no).map(|(a, _)| *a) else { return };
        self.ext_consults.remove(&parked);
        let extension = self.ext_parks.remove(&parked).unwrap_or_default();
        self.emit(Event::ParkFailed {
            call: parked,
            reason: format!("the call to the park extension {extension} ended ({reason}); your call is on hold"),
        });
    }
}
