//! Server non-INVITE transaction (RFC 3261 §17.2.2).

use super::{Actions, T1};
use std::time::Instant;

pub(crate) struct ServerNonInvite {
    reliable: bool,
    last_response: Option<Vec<u8>>,
    final_sent: bool,
    /// Timer J.
    deadline: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(reliable: bool) -> Self {
        Self { reliable, last_response: None, final_sent: false, deadline: None }
    }

    pub fn timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// A retransmitted request gets the last response again (nothing before the TU answers).
    pub fn on_request(&mut self) -> Actions {
        Actions { transmit: self.last_response.iter().cloned().collect(), ..Default::default() }
    }

    pub fn on_respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Actions {
        let mut actions = Actions::default();
        if self.final_sent {
            return actions;
        }
        actions.transmit.push(bytes.clone());
        self.last_response = Some(bytes);
        if status >= 200 {
            self.final_sent = true;
            if self.reliable {
                actions.terminated = true;
            } else {
                self.deadline = Some(now + 64 * T1);
            }
        }
        actions
    }

    pub fn on_timer(&mut self, now: Instant) -> Actions {
        Actions { terminated: self.deadline.is_some_and(|d| d <= now), ..Default::default() }
    }
}
