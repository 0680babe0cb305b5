//! Server INVITE transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state: the
//! layer retransmits a 2xx until the ACK arrives, timer G style, so the TU need not).

use super::{Actions, T1, T2, T4, TxEvent, TxKey, backoff};
use crate::sip::message::{Request, response_bytes, response_to};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
enum State {
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
}

pub(crate) struct ServerInvite {
    state: State,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    to_tag: Option<String>,
    /// Timer G (retransmit final), only on unreliable transports.
    timer_g: Option<(Instant, Duration)>,
    /// Timer H (Completed), L (Accepted) or I (Confirmed).
    deadline: Option<Instant>,
}

impl ServerInvite {
    /// A new transaction; it answers 100 Trying at once so the client stops retransmitting.
    pub fn new(_now: Instant, req: &Request, reliable: bool) -> (Self, Actions) {
        let trying = response_bytes(&response_to(req, 100, None));
        let m = Self {
            state: State::Proceeding,
            reliable,
            last_response: Some(trying.clone()),
            to_tag: None,
            timer_g: None,
            deadline: None,
        };
        (m, Actions { transmit: vec![trying], ..Default::default() })
    }

    pub fn is_proceeding(&self) -> bool {
        self.state == State::Proceeding
    }

    pub fn to_tag(&self) -> Option<String> {
        self.to_tag.clone()
    }

    pub fn timeout(&self) -> Option<Instant> {
        match (self.timer_g.map(|(t, _)| t), self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A retransmitted INVITE gets the last response again; the ACK of a non-2xx confirms.
    pub fn on_request(&mut self, now: Instant, req: &Request) -> Actions {
        let mut actions = Actions::default();
        if req.method == rsipstack::sip::Method::Ack {
            if self.state == State::Completed {
                self.state = State::Confirmed;
                self.timer_g = None;
                if self.reliable {
                    actions.terminated = true;
                } else {
                    self.deadline = Some(now + T4);
                }
            }
            return actions;
        }
        if matches!(self.state, State::Proceeding | State::Completed | State::Accepted)
            && let Some(r) = &self.last_response
        {
            actions.transmit.push(r.clone());
        }
        actions
    }

    pub fn on_respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>, to_tag: Option<String>) -> Actions {
        let mut actions = Actions::default();
        if self.state != State::Proceeding {
            return actions;
        }
        if to_tag.is_some() {
            self.to_tag = to_tag;
        }
        actions.transmit.push(bytes.clone());
        self.last_response = Some(bytes);
        if status >= 200 {
            self.state = if status < 300 { State::Accepted } else { State::Completed };
            self.deadline = Some(now + 64 * T1);
            self.timer_g = (!self.reliable).then_some((now + T1, T1));
        }
        actions
    }

    /// The ACK for our 2xx arrived (matched by the layer on Call-ID and CSeq).
    pub fn on_2xx_ack(&mut self) {
        self.timer_g = None;
    }

    pub fn on_timer(&mut self, now: Instant, key: &TxKey) -> Actions {
        let mut actions = Actions::default();
        if self.deadline.is_some_and(|d| d <= now) {
            actions.terminated = true;
            if matches!(self.state, State::Completed | State::Accepted) {
                actions.pass_up = Some(TxEvent::AckTimeout { key: key.clone() });
            }
            return actions;
        }
        if let Some((at, interval)) = self.timer_g
            && at <= now
        {
            if let Some(r) = &self.last_response {
                actions.transmit.push(r.clone());
            }
            let next = backoff(interval, Some(T2));
            self.timer_g = Some((now + next, next));
        }
        actions
    }
}
