//! Client INVITE transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state).

use super::{Actions, T1, TxEvent, TxKey};
use crate::sip::message::{MessageExt, Method, Request, Response, code, request_bytes};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    /// Got 2xx; absorb/forward retransmitted 2xx until timer M.
    Accepted,
    /// Got a non-2xx final; re-ACK retransmissions until timer D.
    Completed,
}

pub(crate) struct ClientInvite {
    state: State,
    request: Request,
    bytes: Vec<u8>,
    reliable: bool,
    /// Timer A: retransmit while Calling (unreliable only).
    timer_a: Option<(Instant, Duration)>,
    /// Timer B: give up. Also reused as timer D (Completed) and M (Accepted).
    deadline: Option<Instant>,
    ack: Option<Vec<u8>>,
}

impl ClientInvite {
    pub fn new(now: Instant, request: Request, bytes: Vec<u8>, reliable: bool) -> Self {
        Self {
            state: State::Calling,
            request,
            bytes,
            reliable,
            timer_a: (!reliable).then_some((now + T1, T1)),
            deadline: Some(now + 64 * T1),
            ack: None,
        }
    }

    pub fn timeout(&self) -> Option<Instant> {
        match (self.timer_a.map(|(t, _)| t), self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_response(&mut self, now: Instant, key: &TxKey, resp: Response) -> Actions {
        let status = code(&resp);
        let mut actions = Actions::default();
        match (&self.state, status) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.timer_a = None;
                actions.pass_up = Some(TxEvent::Response { key: key.clone(), response: resp });
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.timer_a = None;
                self.deadline = Some(now + 64 * T1);
                actions.pass_up = Some(TxEvent::Response { key: key.clone(), response: resp });
            }
            (State::Accepted, 200..=299) => {
                actions.pass_up = Some(TxEvent::Response { key: key.clone(), response: resp });
            }
            (State::Calling | State::Proceeding, _) => {
                self.state = State::Completed;
                self.timer_a = None;
                let ack = request_bytes(&self.ack_for(&resp));
                actions.transmit.push(ack.clone());
                self.ack = Some(ack);
                if self.reliable {
                    actions.terminated = true;
                } else {
                    self.deadline = Some(now + Duration::from_secs(32));
                }
                actions.pass_up = Some(TxEvent::Response { key: key.clone(), response: resp });
            }
            (State::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    actions.transmit.push(ack.clone());
                }
            }
            _ => {}
        }
        actions
    }

    pub fn on_timer(&mut self, now: Instant, key: &TxKey) -> Actions {
        let mut actions = Actions::default();
        if let Some((at, interval)) = self.timer_a
            && at <= now
        {
            actions.transmit.push(self.bytes.clone());
            let next = interval * 2;
            self.timer_a = Some((now + next, next));
        }
        if self.deadline.is_some_and(|d| d <= now) {
            actions.terminated = true;
            if matches!(self.state, State::Calling | State::Proceeding) {
                actions.transmit.clear();
                actions.pass_up = Some(TxEvent::Timeout { key: key.clone() });
            }
        }
        actions
    }

    /// ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same branch, To from the response.
    fn ack_for(&self, resp: &Response) -> Request {
        let mut ack = Request {
            method: Method::Ack,
            uri: self.request.uri.clone(),
            version: self.request.version,
            headers: Default::default(),
            body: vec![],
        };
        if let Some(via) = self.request.header("Via") {
            ack.add_header("Via", via);
        }
        ack.add_header("Max-Forwards", "70");
        for (name, value) in [("From", self.request.header("From")), ("To", resp.header("To"))] {
            if let Some(v) = value {
                ack.add_header(name, v);
            }
        }
        ack.add_header("Call-ID", self.request.call_id());
        ack.add_header("CSeq", format!("{} ACK", self.request.cseq().0));
        for route in self.request.headers_named("Route") {
            ack.add_header("Route", route);
        }
        ack
    }
}
