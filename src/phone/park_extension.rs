//! Park by transfer to a park extension (Asterisk `700`, FreeSWITCH `valet_park`): for
//! accounts on a PBX that parks calls itself. The Park command becomes a blind transfer
//! (REFER) to the configured extension; the PBX picks the slot. The outcome is reported
//! with the same park events as the Orbit park service where they apply
//! (`park_pending`, `park_failed`) and `parked_extension` once the PBX took the call.

use super::api::{CallNo, Event};
use super::engine::Engine;
use std::time::Instant;

impl Engine {
    /// Park `no` by transferring it to `extension`.
    pub(crate) fn park_via_extension(&mut self, now: Instant, no: CallNo, extension: &str) {
        if self.ext_parks.contains_key(&no) {
            self.emit(Event::ParkFailed { call: no, reason: "this call is already being parked".into() });
            return;
        }
        let target = self.account.complete_target(extension);
        self.ext_parks.insert(no, extension.trim().to_string());
        self.emit(Event::ParkPending { call: no });
        self.blind_transfer(now, no, &target);
    }

    /// A final transfer status on `no` (REFER refused, or the sipfrag's final line):
    /// turn it into the park outcome when the transfer was a park.
    pub(crate) fn ext_park_outcome(&mut self, no: CallNo, status: u16, reason: &str) {
        if status < 200 {
            return;
        }
        let Some(extension) = self.ext_parks.get(&no).cloned() else { return };
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
}
