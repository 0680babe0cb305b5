//! Client non-INVITE transaction (RFC 3261 §17.1.2).

use super::{Actions, T1, T2, T4, TxEvent, TxKey, backoff};
use crate::sip::message::{Response, code};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
}

pub(crate) struct ClientNonInvite {
    state: State,
    bytes: Vec<u8>,
    reliable: bool,
    /// Timer E (unreliable only).
    timer_e: Option<(Instant, Duration)>,
    /// Timer F while Trying/Proceeding, timer K once Completed.
    deadline: Instant,
}

impl ClientNonInvite {
    pub fn new(now: Instant, bytes: Vec<u8>, reliable: bool) -> Self {
        Self {
            state: State::Trying,
            bytes,
            reliable,
            timer_e: (!reliable).then_some((now + T1, T1)),
            deadline: now + 64 * T1,
        }
    }

    pub fn timeout(&self) -> Option<Instant> {
        Some(self.timer_e.map_or(self.deadline, |(e, _)| e.min(self.deadline)))
    }

    pub fn on_response(&mut self, now: Instant, key: &TxKey, resp: Response) -> Actions {
        let mut actions = Actions::default();
        if self.state == State::Completed {
            return actions;
        }
        if code(&resp) < 200 {
            self.state = State::Proceeding;
        } else {
            self.state = State::Completed;
            self.timer_e = None;
            if self.reliable {
                actions.terminated = true;
            } else {
                self.deadline = now + T4;
            }
        }
        actions.pass_up = Some(TxEvent::Response { key: key.clone(), response: resp });
        actions
    }

    pub fn on_timer(&mut self, now: Instant, key: &TxKey) -> Actions {
        let mut actions = Actions::default();
        if self.deadline <= now {
            actions.terminated = true;
            if self.state != State::Completed {
                actions.pass_up = Some(TxEvent::Timeout { key: key.clone() });
            }
            return actions;
        }
        if let Some((at, interval)) = self.timer_e
            && at <= now
        {
            actions.transmit.push(self.bytes.clone());
            let next = if self.state == State::Proceeding { T2 } else { backoff(interval, Some(T2)) };
            self.timer_e = Some((now + next, next));
        }
        actions
    }
}
