//! RFC 3261 §17 transactions, sans-IO: the four state machines (client/server ×
//! INVITE/non-INVITE) with timers A–K, plus RFC 6026's Accepted state so 2xx
//! retransmissions and their ACKs are handled in one place.
//!
//! Drive it with [`TransactionLayer::send_request`], [`TransactionLayer::receive`],
//! [`TransactionLayer::respond`] and [`TransactionLayer::handle_timeout`]; after every
//! call drain [`TransactionLayer::poll_output`] and re-arm the timer from
//! [`TransactionLayer::poll_timeout`]. No socket and no clock inside.

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;

use super::message::{
    MessageExt, Method, Request, Response, SipMessage, code, request_bytes, response_bytes, uri_param,
};
use super::transport::Peer;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// RTT estimate (RFC 3261 Table 4).
pub const T1: Duration = Duration::from_millis(500);
/// Maximum retransmit interval for non-INVITE requests and INVITE responses.
pub const T2: Duration = Duration::from_secs(4);
/// Maximum duration a message will remain in the network.
pub const T4: Duration = Duration::from_secs(5);

/// Identifies a transaction: the top Via branch plus the method (ACK folds into INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    /// Top Via branch.
    pub branch: String,
    /// CSeq method (INVITE for an ACK to a non-2xx).
    pub method: String,
    /// Client or server side: both may exist for the same branch on a loopback test.
    pub server: bool,
}

/// What the transaction layer tells its user (the transaction user, TU).
#[derive(Debug, Clone)]
pub enum TxEvent {
    /// A new request (not a retransmission). Answer it with [`TransactionLayer::respond`],
    /// except an ACK, which needs no answer.
    Request { key: TxKey, request: Request, source: Peer },
    /// A response for a client transaction, including each 2xx retransmission to an INVITE.
    Response { key: TxKey, response: Response },
    /// A client transaction got no final response (timer B or F).
    Timeout { key: TxKey },
    /// A server INVITE transaction's final response was never acknowledged (timer H, or no
    /// ACK for a 2xx within 64*T1): the TU should end the dialog.
    AckTimeout { key: TxKey },
    /// A CANCEL matched a pending server INVITE transaction; the layer already answered
    /// the CANCEL with 200, the TU should answer the INVITE with 487.
    Cancelled { invite: TxKey },
}

/// Something the driver must do.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // moved once per message; boxing would allocate for each
pub enum Output {
    /// Send these bytes.
    Transmit { to: Peer, bytes: Vec<u8> },
    /// Tell the TU.
    Event(TxEvent),
}

/// What one state machine asks for after an input.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub transmit: Vec<Vec<u8>>,
    pub pass_up: Option<TxEvent>,
    pub terminated: bool,
}

#[allow(clippy::large_enum_variant, clippy::enum_variant_names)] // RFC 3261's four machines, one per transaction
enum Machine {
    ClientInvite(client_invite::ClientInvite),
    ClientNonInvite(client_non_invite::ClientNonInvite),
    ServerInvite(server_invite::ServerInvite),
    ServerNonInvite(server_non_invite::ServerNonInvite),
}

struct Tx {
    peer: Peer,
    machine: Machine,
    /// Call-ID and CSeq number, to match the ACK of a 2xx (which has a new branch).
    dialog_match: Option<(String, u32)>,
    /// The machine's next timer as last indexed in `deadlines`.
    deadline: Option<Instant>,
}

/// All transactions of one endpoint.
///
/// Completed transactions linger for up to 32 s absorbing retransmissions, so a busy
/// service holds tens of thousands: timers and 2xx-ACK matching are indexed (O(log n) per
/// message), never found by scanning.
#[derive(Default)]
pub struct TransactionLayer {
    txs: HashMap<TxKey, Tx>,
    /// Every transaction's next timer, earliest first.
    deadlines: BTreeSet<(Instant, TxKey)>,
    /// Server INVITE transactions that sent a 2xx, by (Call-ID, CSeq), for the ACK.
    accepted: HashMap<(String, u32), TxKey>,
    out: VecDeque<Output>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live transactions (for leak checks in tests).
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// True when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Start a client transaction; ACK is sent without one (it is the TU's own message).
    pub fn send_request(&mut self, now: Instant, request: Request, to: Peer) -> TxKey {
        let bytes = request_bytes(&request);
        let key = TxKey {
            branch: request.top_branch().unwrap_or_default(),
            method: request.method.to_string(),
            server: false,
        };
        self.out.push_back(Output::Transmit { to, bytes: bytes.clone() });
        if request.method == Method::Ack {
            return key;
        }
        let reliable = to.transport.reliable();
        let machine = if request.method == Method::Invite {
            Machine::ClientInvite(client_invite::ClientInvite::new(now, request, bytes, reliable))
        } else {
            Machine::ClientNonInvite(client_non_invite::ClientNonInvite::new(now, bytes, reliable))
        };
        self.insert_tx(key.clone(), to, machine);
        key
    }

    /// Feed a parsed message that arrived from `source`.
    pub fn receive(&mut self, now: Instant, msg: SipMessage, source: Peer) {
        match msg {
            SipMessage::Request(req) => self.receive_request(now, req, source),
            SipMessage::Response(resp) => self.receive_response(now, resp),
        }
    }

    fn receive_response(&mut self, now: Instant, resp: Response) {
        let key = TxKey { branch: resp.top_branch().unwrap_or_default(), method: resp.cseq().1, server: false };
        let Some(tx) = self.txs.get_mut(&key) else {
            tracing::debug!(code = code(&resp), branch = %key.branch, "stray response dropped");
            return;
        };
        let actions = match &mut tx.machine {
            Machine::ClientInvite(m) => m.on_response(now, &key, resp),
            Machine::ClientNonInvite(m) => m.on_response(now, &key, resp),
            _ => return,
        };
        self.apply(key, actions);
    }

    fn receive_request(&mut self, now: Instant, mut req: Request, source: Peer) {
        stamp_received(&mut req, source);
        let method = if req.method == Method::Ack { "INVITE".to_string() } else { req.method.to_string() };
        let key = TxKey { branch: req.top_branch().unwrap_or_default(), method, server: true };
        if let Some(tx) = self.txs.get_mut(&key) {
            let actions = match &mut tx.machine {
                Machine::ServerInvite(m) => m.on_request(now, &req),
                Machine::ServerNonInvite(m) => m.on_request(),
                _ => return,
            };
            self.apply(key, actions);
            return;
        }
        match req.method {
            Method::Ack => {
                // ACK for a 2xx: new branch, matched to the accepted INVITE by Call-ID and CSeq.
                let id = (req.call_id(), req.cseq().0);
                if let Some(k) = self.accepted.get(&id).cloned() {
                    if let Some(Tx { machine: Machine::ServerInvite(m), .. }) = self.txs.get_mut(&k) {
                        m.on_2xx_ack();
                    }
                    self.remove_tx(&k);
                }
                self.out.push_back(Output::Event(TxEvent::Request { key, request: req, source }));
            }
            Method::Cancel => {
                let invite_key = TxKey { method: "INVITE".into(), ..key.clone() };
                let mut resp = super::message::response_to(&req, 481, Some(&super::message::random_token(8)));
                let mut cancelled = false;
                if let Some(Tx { machine: Machine::ServerInvite(m), .. }) = self.txs.get(&invite_key) {
                    if m.is_proceeding() {
                        resp = super::message::response_to(&req, 200, m.to_tag().as_deref());
                        cancelled = true;
                    } else {
                        resp = super::message::response_to(&req, 200, m.to_tag().as_deref());
                    }
                }
                self.insert_tx(
                    key.clone(),
                    source,
                    Machine::ServerNonInvite(server_non_invite::ServerNonInvite::new(source.transport.reliable())),
                );
                self.respond(now, &key, resp);
                if cancelled {
                    self.out.push_back(Output::Event(TxEvent::Cancelled { invite: invite_key }));
                }
            }
            Method::Invite => {
                let (m, actions) = server_invite::ServerInvite::new(now, &req, source.transport.reliable());
                self.insert_tx(key.clone(), source, Machine::ServerInvite(m));
                self.apply(key.clone(), actions);
                self.out.push_back(Output::Event(TxEvent::Request { key, request: req, source }));
            }
            _ => {
                let m = server_non_invite::ServerNonInvite::new(source.transport.reliable());
                self.insert_tx(key.clone(), source, Machine::ServerNonInvite(m));
                self.out.push_back(Output::Event(TxEvent::Request { key, request: req, source }));
            }
        }
    }

    /// Answer a server transaction. Unknown keys are ignored (the transaction may have
    /// timed out meanwhile), which is why this returns whether it was sent.
    pub fn respond(&mut self, now: Instant, key: &TxKey, resp: Response) -> bool {
        let Some(tx) = self.txs.get_mut(key) else {
            return false;
        };
        let is_2xx_invite = key.method == "INVITE" && (200..300).contains(&code(&resp));
        if is_2xx_invite && tx.dialog_match.is_none() {
            let id = (resp.call_id(), resp.cseq().0);
            tx.dialog_match = Some(id.clone());
            self.accepted.insert(id, key.clone());
        }
        let Some(tx) = self.txs.get_mut(key) else {
            return false;
        };
        let bytes = response_bytes(&resp);
        let actions = match &mut tx.machine {
            Machine::ServerInvite(m) => m.on_respond(now, code(&resp), bytes, resp.to_tag()),
            Machine::ServerNonInvite(m) => m.on_respond(now, code(&resp), bytes),
            _ => return false,
        };
        self.apply(key.clone(), actions);
        true
    }

    /// Send a response outside any transaction (a stateless 400/501, or the answer to a
    /// retransmitted 2xx's ACK situation); used by the engine for malformed input.
    pub fn send_stateless(&mut self, to: Peer, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit { to, bytes });
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxKey> = self.deadlines.iter().take_while(|(at, _)| *at <= now).map(|(_, k)| k.clone()).collect();
        for key in due {
            let Some(tx) = self.txs.get_mut(&key) else { continue };
            let actions = match &mut tx.machine {
                Machine::ClientInvite(m) => m.on_timer(now, &key),
                Machine::ClientNonInvite(m) => m.on_timer(now, &key),
                Machine::ServerInvite(m) => m.on_timer(now, &key),
                Machine::ServerNonInvite(m) => m.on_timer(now),
            };
            self.apply(key, actions);
        }
    }

    /// Earliest instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Next thing to do; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn apply(&mut self, key: TxKey, actions: Actions) {
        let peer = match self.txs.get(&key) {
            Some(tx) => tx.peer,
            None => return,
        };
        for bytes in actions.transmit {
            self.out.push_back(Output::Transmit { to: peer, bytes });
        }
        if let Some(ev) = actions.pass_up {
            self.out.push_back(Output::Event(ev));
        }
        if actions.terminated {
            self.remove_tx(&key);
        } else {
            self.reindex(&key);
        }
    }

    fn insert_tx(&mut self, key: TxKey, peer: Peer, machine: Machine) {
        if self.txs.contains_key(&key) {
            self.remove_tx(&key);
        }
        self.txs.insert(key.clone(), Tx { peer, machine, dialog_match: None, deadline: None });
        self.reindex(&key);
    }

    /// Bring the timer index in line with the machine's next timer.
    fn reindex(&mut self, key: &TxKey) {
        let Some(tx) = self.txs.get_mut(key) else { return };
        let next = timeout_of(&tx.machine);
        if next == tx.deadline {
            return;
        }
        if let Some(old) = tx.deadline {
            self.deadlines.remove(&(old, key.clone()));
        }
        tx.deadline = next;
        if let Some(at) = next {
            self.deadlines.insert((at, key.clone()));
        }
    }

    fn remove_tx(&mut self, key: &TxKey) {
        let Some(tx) = self.txs.remove(key) else { return };
        if let Some(old) = tx.deadline {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(id) = tx.dialog_match
            && self.accepted.get(&id) == Some(key)
        {
            self.accepted.remove(&id);
        }
    }
}

fn timeout_of(m: &Machine) -> Option<Instant> {
    match m {
        Machine::ClientInvite(m) => m.timeout(),
        Machine::ClientNonInvite(m) => m.timeout(),
        Machine::ServerInvite(m) => m.timeout(),
        Machine::ServerNonInvite(m) => m.timeout(),
    }
}

/// RFC 3581: record where a request really came from in its top Via, so responses go
/// back to the NAT binding it used rather than the address the client believes it has.
pub fn stamp_received(req: &mut Request, source: Peer) {
    let Some(top) = req.header("Via") else { return };
    let sent_host = top
        .split_whitespace()
        .nth(1)
        .and_then(|hp| hp.split(';').next())
        .map(|hp| hp.rsplit_once(':').map_or(hp, |(h, _)| h).trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let ip = source.addr.ip().to_string();
    let mut new_via = top.clone();
    let wants_rport = top.split(';').any(|p| p.trim().eq_ignore_ascii_case("rport"));
    if wants_rport {
        new_via = new_via
            .split(';')
            .map(|p| {
                if p.trim().eq_ignore_ascii_case("rport") {
                    format!("rport={}", source.addr.port())
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(";");
    }
    if (sent_host != ip || wants_rport) && uri_param(&new_via, "received").is_none() {
        new_via.push_str(";received=");
        new_via.push_str(&ip);
    }
    if new_via != top {
        let mut replaced = false;
        for h in req.headers.iter_mut() {
            if !replaced && h.name().eq_ignore_ascii_case("Via") {
                *h = rsipstack::sip::headers::make_header("Via", new_via.clone());
                replaced = true;
            }
        }
    }
}

/// Timer A/E style doubling capped at T2 (for non-INVITE and INVITE responses).
pub(crate) fn backoff(current: Duration, cap: Option<Duration>) -> Duration {
    let next = current * 2;
    match cap {
        Some(cap) => next.min(cap),
        None => next,
    }
}

#[cfg(test)]
mod tests;
