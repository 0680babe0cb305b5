//! The phone engine: accounts, registration, calls, transfer and park, as one sans-IO
//! state machine. Inputs: commands, received datagrams/frames, media readiness and the
//! clock; outputs: bytes to send, events for the face, media actions. The tokio driver
//! in `net/` owns sockets and timers; tests drive this directly on a virtual clock.

use super::account::{Account, uri_socket_addr};
use super::api::{CallNo, CallStatus, Command, Event};
use super::call::{Call, CallState, Direction};
use super::session::MediaParams;
use crate::sip::digest::{Credentials, DigestClient, best_challenge};
use crate::sip::message::{self, MessageExt, Method, Request, Response, code, new_branch, random_token};
use crate::sip::transaction::{Output as TxOutput, TransactionLayer, TxEvent, TxKey};
use crate::sip::transport::{Peer, Transport};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the driver must do for the engine.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send bytes to a peer (open a connection first for TCP/TLS if needed).
    Transmit { to: Peer, bytes: Vec<u8> },
    /// Tell the face.
    Event(Event),
    /// Bind an RTP socket for this call and report it with [`Engine::media_allocated`].
    AllocateMedia { call: CallNo },
    /// Start or update the media stream of a call.
    MediaStart { call: CallNo, params: MediaParams },
    /// Stop a call's media and free its socket.
    MediaStop { call: CallNo },
    /// Send RFC 4733 digits on a call.
    SendDtmf { call: CallNo, digits: String },
    /// Mute or unmute a call's microphone.
    MediaMute { call: CallNo, muted: bool },
    /// Everything is done after a `quit`: the driver may exit.
    Stopped,
}

/// Why we sent a request, so its response can be routed to the right logic.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    Register { expires: u32 },
    Invite { call: CallNo },
    ReInvite { call: CallNo },
    Bye { call: CallNo },
    Cancel,
    Refer { call: CallNo },
    Notify,
    Options,
    ParkSubscribe { call: CallNo },
    WatchOrbits,
}

pub(crate) struct Pending {
    pub purpose: Purpose,
    pub request: Request,
    pub peer: Peer,
    pub auth_tries: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    RegisterRefresh,
    Keepalive,
    /// Retry our re-INVITE after a 491 glare.
    ReInviteRetry(CallNo),
    /// Refresh the park control subscription of a parked call (RFC 6665 §4.1.2.1).
    ParkRefresh(CallNo),
    /// Give up waiting for un-REGISTER and BYE answers on quit.
    StopDeadline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegState {
    Off,
    Registering,
    Registered { expires: u32 },
    Failed,
    Unregistering,
}

/// Where an in-dialog request goes: the next hop's own address if it is an IP literal,
/// else the outbound proxy (a free function so it can be used while a call is borrowed).
pub(crate) fn dialog_peer(account: &Account, next_hop: &str) -> Option<Peer> {
    let transport = crate::sip::message::uri_param(next_hop, "transport").and_then(|t| Transport::parse(&t));
    let port = if transport == Some(Transport::Tls) { 5061 } else { 5060 };
    match uri_socket_addr(next_hop, port) {
        Some(addr) => Some(Peer { transport: transport.unwrap_or(account.transport), addr }),
        None => account.outbound_peer(),
    }
}

/// The engine. See the module docs for how to drive it.
pub struct Engine {
    pub(crate) account: Account,
    pub(crate) local: HashMap<Transport, SocketAddr>,
    pub(crate) tl: TransactionLayer,
    pub(crate) out: VecDeque<Output>,
    pub(crate) calls: BTreeMap<CallNo, Call>,
    pub(crate) next_call: CallNo,
    pub(crate) pending: HashMap<TxKey, Pending>,
    pub(crate) timers: BTreeMap<Timer, Instant>,
    pub(crate) digest: DigestClient,
    pub(crate) reg: RegState,
    pub(crate) reg_call_id: String,
    pub(crate) reg_from_tag: String,
    pub(crate) reg_cseq: u32,
    pub(crate) reg_expires: u32,
    pub(crate) stopping: bool,
    pub(crate) stopped: bool,
    pub(crate) park_clients: Vec<super::park_client::ParkClient>,
    pub(crate) orbit_watch: Option<super::park_client::OrbitWatch>,
    /// Calls being parked by transfer to a park extension, with the extension.
    pub(crate) ext_parks: BTreeMap<CallNo, String>,
    /// Attended park by extension: parked call → its consultation call to the extension.
    pub(crate) ext_consults: BTreeMap<CallNo, CallNo>,
}

impl Engine {
    /// A new engine for one account, with the local address bound for each transport.
    pub fn new(account: Account, local: HashMap<Transport, SocketAddr>) -> Self {
        let reg_expires = account.expires.max(60);
        Self {
            account,
            local,
            tl: TransactionLayer::new(),
            out: VecDeque::new(),
            calls: BTreeMap::new(),
            next_call: 1,
            pending: HashMap::new(),
            timers: BTreeMap::new(),
            digest: DigestClient::new(),
            reg: RegState::Off,
            reg_call_id: format!("{}@orbit", random_token(16)),
            reg_from_tag: random_token(10),
            reg_cseq: 0,
            reg_expires,
            stopping: false,
            stopped: false,
            park_clients: Vec::new(),
            orbit_watch: None,
            ext_parks: BTreeMap::new(),
            ext_consults: BTreeMap::new(),
        }
    }

    /// Start: register if the account asks for it.
    pub fn start(&mut self, now: Instant) {
        if self.account.register {
            self.send_register(now, self.reg_expires);
        }
        if self.account.keepalive_secs > 0
            && self.account.transport == Transport::Udp
            && self.account.outbound.is_some()
        {
            self.timers.insert(Timer::Keepalive, now + Duration::from_secs(self.account.keepalive_secs));
        }
        self.pump(now);
    }

    /// The account this engine serves.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Next output; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.values().min().copied();
        match (ours, self.tl.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fire due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tl.handle_timeout(now);
        let due: Vec<Timer> = self.timers.iter().filter(|(_, t)| **t <= now).map(|(k, _)| *k).collect();
        for t in due {
            self.timers.remove(&t);
            match t {
                Timer::RegisterRefresh => self.send_register(now, self.reg_expires),
                Timer::Keepalive => self.send_keepalive(now),
                Timer::ReInviteRetry(call) => self.send_reinvite(now, call),
                Timer::ParkRefresh(call) => self.refresh_park_subscription(now, call),
                Timer::StopDeadline => self.finish_stop(),
            }
        }
        self.pump(now);
    }

    /// Bytes arrived from `source` (one datagram, or one frame cut from a stream).
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], source: Peer) {
        match message::parse(data) {
            Ok(msg) => self.tl.receive(now, msg, source),
            Err(err) => {
                tracing::warn!(%source, "{err}");
                if let Some(reply) = err.reply() {
                    self.tl.send_stateless(source, reply.to_vec());
                }
            }
        }
        self.pump(now);
    }

    /// A face's command.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        if self.stopping && cmd != Command::Quit && cmd != Command::Status {
            self.emit(Event::Error { message: "shutting down".into(), call: None });
            return;
        }
        match cmd {
            Command::Dial { target } => {
                let uri = self.account.complete_target(&target);
                self.dial(now, &uri, Vec::new(), None);
            }
            Command::Retrieve { target } => {
                let uri = self.account.complete_target(&target);
                self.dial(now, &uri, Vec::new(), None);
            }
            Command::Answer { call } => {
                self.with_call(call, |e, c| e.answer(now, c), |c| c.state == CallState::Ringing)
            }
            Command::Hangup { call } => {
                self.with_call(call, |e, c| e.hangup(now, c, "local hangup"), |c| c.state != CallState::Ended)
            }
            Command::Hold { call } => {
                self.with_call(call, |e, c| e.hold(now, c, true), |c| c.state == CallState::Established)
            }
            Command::Resume { call } => {
                self.with_call(call, |e, c| e.hold(now, c, false), |c| c.state == CallState::Established)
            }
            Command::Mute { call, on } => self.with_call(
                call,
                |e, c| {
                    e.out.push_back(Output::MediaMute { call: c, muted: on });
                    e.emit(Event::CallMuted { call: c, muted: on });
                },
                |c| c.state == CallState::Established,
            ),
            Command::Dtmf { digits, call } => self.with_call(
                call,
                |e, c| e.out.push_back(Output::SendDtmf { call: c, digits }),
                |c| c.state == CallState::Established,
            ),
            Command::Transfer { target, call } => {
                let uri = self.account.complete_target(&target);
                self.with_call(call, |e, c| e.blind_transfer(now, c, &uri), |c| c.state == CallState::Established)
            }
            Command::TransferAttended { a, b } => self.attended_transfer(now, a, b),
            Command::Park { call } => {
                let ext = self.account.park_extension.clone();
                self.with_call(
                    call,
                    |e, c| match &ext {
                        Some(ext) => e.park_via_extension(now, c, ext),
                        None => e.park(now, c),
                    },
                    |c| c.state == CallState::Established,
                )
            }
            Command::WatchOrbits => self.watch_orbits(now),
            Command::Status => {
                let calls = self
                    .calls
                    .values()
                    .map(|c| CallStatus {
                        call: c.no,
                        direction: if c.direction == Direction::Outgoing { "outgoing" } else { "incoming" },
                        state: c.state.name(),
                        party: c.party.clone(),
                        codec: c.media.negotiated_codec(),
                        held: c.local_hold || c.remote_hold,
                        stats: c.media.stats.clone(),
                    })
                    .collect();
                let registered = matches!(self.reg, RegState::Registered { .. });
                self.emit(Event::Status { account: self.account.aor.clone(), registered, calls });
            }
            // The driver keeps the SIP trace and answers this itself.
            Command::Trace => {}
            Command::Quit => self.stop(now),
            // Sound devices belong to the driver, which answers these before the engine sees them.
            Command::ListAudioDevices
            | Command::ChooseAudioDevice { .. }
            | Command::TestTone
            | Command::AudioMeter { .. } => {}
        }
        self.pump(now);
    }

    /// The driver bound an RTP socket for `call`.
    pub fn media_allocated(&mut self, now: Instant, call: CallNo, local_rtp: SocketAddr) {
        self.on_media_allocated(now, call, local_rtp);
        self.pump(now);
    }

    /// The driver could not send to `peer` (connection refused, TLS handshake failed…):
    /// every request waiting on that peer fails now with `reason`.
    pub fn transport_failed(&mut self, now: Instant, peer: Peer, reason: &str) {
        let keys: Vec<TxKey> = self.pending.iter().filter(|(_, p)| p.peer == peer).map(|(k, _)| k.clone()).collect();
        if keys.is_empty() {
            self.emit(Event::Error { message: reason.to_string(), call: None });
        }
        for key in keys {
            let Some(p) = self.pending.remove(&key) else { continue };
            match p.purpose {
                Purpose::Register { expires } if expires > 0 => {
                    self.reg = RegState::Failed;
                    self.emit(Event::RegistrationFailed {
                        account: self.account.aor.clone(),
                        reason: reason.to_string(),
                    });
                    self.timers.insert(Timer::RegisterRefresh, now + Duration::from_secs(30));
                }
                Purpose::Register { .. } => self.reg = RegState::Off,
                Purpose::Invite { call } => self.end_call(call, reason),
                Purpose::ParkSubscribe { call } => {
                    self.park_clients
                        .iter_mut()
                        .filter(|p| p.call == call)
                        .for_each(|p| (p.done, p.failed) = (true, true));
                    self.emit(Event::ParkFailed { call, reason: reason.to_string() })
                }
                _ => self.emit(Event::Error { message: reason.to_string(), call: None }),
            }
        }
        self.check_stopped();
        self.pump(now);
    }

    /// The driver could not bind an RTP socket.
    pub fn media_failed(&mut self, now: Instant, call: CallNo, reason: &str) {
        self.emit(Event::Error { message: format!("media: {reason}"), call: Some(call) });
        self.hangup(now, call, "media failure");
        self.pump(now);
    }

    /// A DTMF digit arrived on a call's media (reported by the driver's RTP task).
    pub fn dtmf_received(&mut self, call: CallNo, digit: char) {
        self.emit(Event::DtmfReceived { call, digit: digit.to_string() });
    }

    /// True once a `quit` has completed.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub(crate) fn emit(&mut self, ev: Event) {
        self.out.push_back(Output::Event(ev));
    }

    fn with_call(&mut self, call: Option<CallNo>, f: impl FnOnce(&mut Self, CallNo), pick: impl Fn(&Call) -> bool) {
        let chosen = match call {
            Some(c) if self.calls.contains_key(&c) => Some(c),
            Some(c) => {
                self.emit(Event::Error { message: format!("no call {c}"), call: Some(c) });
                return;
            }
            None => self.calls.values().rev().find(|c| pick(c)).map(|c| c.no),
        };
        match chosen {
            Some(c) => f(self, c),
            None => self.emit(Event::Error { message: "no call to act on".into(), call: None }),
        }
    }

    // ---- plumbing -------------------------------------------------------------------

    /// The local address for the account's transport.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
            .get(&self.account.transport)
            .or_else(|| self.local.values().next())
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
    }

    pub(crate) fn via(&self) -> String {
        let t = self.account.transport;
        format!("SIP/2.0/{} {};branch={};rport", t.via_token(), self.local_addr(), new_branch())
    }

    pub(crate) fn contact_uri(&self) -> String {
        let t = self.account.transport;
        let scheme = if t == Transport::Tls { "sips" } else { "sip" };
        let tp = if t == Transport::Udp { String::new() } else { format!(";transport={}", t.param()) };
        format!("{scheme}:{}@{}{tp}", self.account.user(), self.local_addr())
    }

    /// Where a request to `uri` goes: the outbound proxy, else the URI's own address.
    pub(crate) fn route_for(&self, uri: &str) -> Option<Peer> {
        if let Some(p) = self.account.outbound_peer() {
            return Some(p);
        }
        let transport = crate::sip::message::uri_param(uri, "transport")
            .and_then(|t| Transport::parse(&t))
            .unwrap_or(self.account.transport);
        let port = if transport == Transport::Tls { 5061 } else { 5060 };
        uri_socket_addr(uri, port).map(|addr| Peer { transport, addr })
    }

    /// Where an in-dialog request goes: through the dialog's first route or to its target.
    pub(crate) fn route_for_dialog(&self, next_hop: &str) -> Option<Peer> {
        dialog_peer(&self.account, next_hop)
    }

    /// An out-of-dialog request from our account.
    pub(crate) fn new_request(
        &self,
        method: Method,
        uri: &str,
        to: String,
        call_id: Option<String>,
        from_tag: Option<String>,
        cseq: u32,
    ) -> Option<Request> {
        let headers = vec![
            ("Via", self.via()),
            ("Max-Forwards", "70".to_string()),
            (
                "From",
                format!("{};tag={}", self.account.name_addr(), from_tag.unwrap_or_else(crate::sip::dialog::new_tag)),
            ),
            ("To", to),
            ("Call-ID", call_id.unwrap_or_else(|| format!("{}@orbit", random_token(20)))),
            ("CSeq", format!("{cseq} {method}")),
            ("Contact", format!("<{}>", self.contact_uri())),
            ("User-Agent", format!("Orbit/{}", env!("CARGO_PKG_VERSION"))),
        ];
        message::request(method, uri, headers, vec![]).ok()
    }

    /// Send a request in a new client transaction and remember why.
    pub(crate) fn send(&mut self, now: Instant, req: Request, peer: Peer, purpose: Purpose) -> TxKey {
        let key = self.tl.send_request(now, req.clone(), peer);
        self.pending.insert(key.clone(), Pending { purpose, request: req, peer, auth_tries: 0 });
        key
    }

    /// Move transaction-layer outputs into ours and react to its events, until quiet.
    pub(crate) fn pump(&mut self, now: Instant) {
        while let Some(o) = self.tl.poll_output() {
            match o {
                TxOutput::Transmit { to, bytes } => self.out.push_back(Output::Transmit { to, bytes }),
                TxOutput::Event(ev) => self.on_tx_event(now, ev),
            }
        }
    }

    fn on_tx_event(&mut self, now: Instant, ev: TxEvent) {
        match ev {
            TxEvent::Request { key, request, source } => self.on_request(now, key, request, source),
            TxEvent::Response { key, response } => {
                let is_final = code(&response) >= 200;
                let is_invite_2xx = key.method == "INVITE" && (200..300).contains(&code(&response));
                let pending = if is_final && !is_invite_2xx { self.pending.remove(&key) } else { None };
                let pending = match pending {
                    Some(p) => p,
                    None => match self.pending.get(&key) {
                        Some(p) => Pending {
                            purpose: p.purpose.clone(),
                            request: p.request.clone(),
                            peer: p.peer,
                            auth_tries: p.auth_tries,
                        },
                        None => return,
                    },
                };
                let status = code(&response);
                if (status == 401 || status == 407) && self.retry_with_auth(now, &pending, &response) {
                    return;
                }
                self.on_response(now, pending, response);
            }
            TxEvent::Timeout { key } => {
                if let Some(p) = self.pending.remove(&key) {
                    self.on_timeout(now, p);
                }
            }
            TxEvent::AckTimeout { key } => {
                if let Some(call) = self.calls.values().find(|c| c.server_tx.as_ref() == Some(&key)).map(|c| c.no)
                    && self.calls.get(&call).is_some_and(|c| c.state != CallState::Ended && c.dialog.is_some())
                {
                    self.hangup(now, call, "no ACK from the other side");
                }
            }
            TxEvent::Cancelled { invite } => {
                if let Some(call) = self.calls.values().find(|c| c.server_tx.as_ref() == Some(&invite)).map(|c| c.no) {
                    self.reject_incoming(now, call, 487, "cancelled by caller");
                }
            }
        }
        if self.stopping {
            self.check_stopped();
        }
    }

    /// Answer a 401/407 once per challenge: same request, new branch, CSeq+1, credentials.
    fn retry_with_auth(&mut self, now: Instant, pending: &Pending, resp: &Response) -> bool {
        let Some(password) = self.account.password.clone() else { return false };
        let header = if code(resp) == 407 { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        let values = resp.headers_named(header);
        let Some(challenge) = best_challenge(values.iter().map(String::as_str)) else { return false };
        if pending.auth_tries >= 1 && !challenge.stale {
            return false; // the credentials we sent were refused: wrong password
        }
        if pending.auth_tries >= 3 {
            return false;
        }
        let mut req = pending.request.clone();
        let creds = Credentials { username: self.account.auth_user.clone(), password };
        let uri = req.uri.to_string();
        let value = self.digest.respond(&challenge, &creds, &req.method.to_string(), &uri, &req.body);
        let auth_header = if code(resp) == 407 { "Proxy-Authorization" } else { "Authorization" };
        req.remove_header(auth_header);
        req.add_header(auth_header, value);
        let (seq, method) = req.cseq();
        req.set_header("CSeq", format!("{} {method}", seq + 1));
        req.set_header("Via", self.via());
        // Keep the dialog's CSeq space in step with what went on the wire.
        if let Purpose::Invite { call } | Purpose::ReInvite { call } | Purpose::Bye { call } | Purpose::Refer { call } =
            pending.purpose
            && let Some(c) = self.calls.get_mut(&call)
        {
            if let Some(d) = c.dialog.as_mut() {
                d.local_seq = d.local_seq.max(seq + 1);
            }
            c.invite_auth_headers.retain(|(n, _)| n != auth_header);
            if matches!(pending.purpose, Purpose::Invite { .. }) {
                c.invite_auth_headers.push((auth_header.to_string(), req.header(auth_header).unwrap_or_default()));
                c.invite = Some(req.clone());
            }
        }
        if let Purpose::Register { .. } = pending.purpose {
            self.reg_cseq = seq + 1;
        }
        let key = self.tl.send_request(now, req.clone(), pending.peer);
        self.pending.insert(
            key,
            Pending {
                purpose: pending.purpose.clone(),
                request: req,
                peer: pending.peer,
                auth_tries: pending.auth_tries + 1,
            },
        );
        true
    }

    fn on_response(&mut self, now: Instant, pending: Pending, resp: Response) {
        match pending.purpose {
            Purpose::Register { expires } => self.on_register_response(now, expires, &pending, &resp),
            Purpose::Invite { call } => self.on_invite_response(now, call, &pending, resp),
            Purpose::ReInvite { call } => self.on_reinvite_response(now, call, resp),
            Purpose::Bye { call } => {
                if let Some(c) = self.calls.get(&call)
                    && c.state != CallState::Ended
                {
                    self.end_call(call, &c.end_reason.clone().unwrap_or_else(|| "local hangup".into()));
                }
            }
            Purpose::Refer { call } => self.on_refer_response(call, &resp),
            Purpose::ParkSubscribe { call } => self.on_park_subscribe_response(now, call, &pending.request, &resp),
            Purpose::WatchOrbits => {
                // Not every server is an Orbit park service: log, don't alarm the user.
                if code(&resp) >= 300 {
                    tracing::info!("watch-orbits: {} {}", code(&resp), message::status_text(&resp));
                }
            }
            Purpose::Cancel | Purpose::Notify | Purpose::Options => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, p: Pending) {
        let peer = p.peer;
        match p.purpose {
            Purpose::Register { expires } => {
                if expires == 0 {
                    self.reg = RegState::Off;
                    return;
                }
                self.reg = RegState::Failed;
                self.emit(Event::RegistrationFailed {
                    account: self.account.aor.clone(),
                    reason: format!("timeout: no answer from the registrar at {peer}"),
                });
                // Network loss: keep trying, so the phone comes back by itself.
                self.timers.insert(Timer::RegisterRefresh, now + Duration::from_secs(30));
            }
            Purpose::Invite { call } => {
                if self.calls.get(&call).is_some_and(|c| c.state != CallState::Ended) {
                    self.end_call(call, &format!("timeout: no answer from {peer}"));
                }
            }
            Purpose::ReInvite { call } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.reinvite_pending = false;
                }
                self.hangup(now, call, "re-INVITE timed out");
            }
            Purpose::Bye { call } => self.end_call(call, "local hangup"),
            Purpose::Refer { call } => {
                self.emit(Event::TransferProgress { call, status: 408, reason: "Request Timeout".into() })
            }
            Purpose::Options => {
                if matches!(self.reg, RegState::Registered { .. }) {
                    // The path to the registrar is gone: re-register to find out and recover.
                    self.send_register(now, self.reg_expires);
                }
            }
            Purpose::ParkSubscribe { call } => {
                self.park_clients.iter_mut().filter(|p| p.call == call).for_each(|p| (p.done, p.failed) = (true, true));
                self.emit(Event::ParkFailed { call, reason: format!("the park service at {peer} does not answer") })
            }
            Purpose::WatchOrbits => tracing::info!("watch-orbits: no answer from {peer}"),
            Purpose::Cancel | Purpose::Notify => {}
        }
    }

    // ---- registration ------------------------------------------------------------

    pub(crate) fn send_register(&mut self, now: Instant, expires: u32) {
        let Some(peer) =
            self.account.outbound_peer().or_else(|| self.route_for(&format!("sip:{}", self.account.domain())))
        else {
            self.emit(Event::RegistrationFailed {
                account: self.account.aor.clone(),
                reason: format!("cannot resolve the registrar for {}", self.account.domain()),
            });
            return;
        };
        self.reg_cseq += 1;
        let uri = format!("sip:{}", self.account.domain());
        let Some(mut req) = self.new_request(
            Method::Register,
            &uri,
            self.account.name_addr(),
            Some(self.reg_call_id.clone()),
            Some(self.reg_from_tag.clone()),
            self.reg_cseq,
        ) else {
            self.emit(Event::RegistrationFailed {
                account: self.account.aor.clone(),
                reason: format!("bad registrar URI {uri}"),
            });
            return;
        };
        req.set_header("Expires", expires.to_string());
        if let Some(password) = self.account.password.clone() {
            // Preemptive credentials with nc++ on refresh (RFC 7616 §3.4 nonce reuse).
            let creds = Credentials { username: self.account.auth_user.clone(), password };
            let realm = self.account.domain().split(':').next().unwrap_or_default().to_string();
            if let Some(v) = self.digest.reuse(&realm, &creds, "REGISTER", &uri, &[]) {
                req.add_header("Authorization", v);
            }
        }
        self.reg = if expires == 0 { RegState::Unregistering } else { RegState::Registering };
        self.send(now, req, peer, Purpose::Register { expires });
    }

    fn on_register_response(&mut self, now: Instant, asked: u32, pending: &Pending, resp: &Response) {
        let status = code(resp);
        if asked == 0 {
            self.reg = RegState::Off;
            self.emit(Event::Unregistered { account: self.account.aor.clone() });
            self.check_stopped();
            return;
        }
        match status {
            200..=299 => {
                let ours = self.contact_uri();
                let granted = resp
                    .headers_named("Contact")
                    .iter()
                    .filter(|c| message::name_addr_uri(c) == Some(ours.as_str()))
                    .find_map(|c| message::header_param(c, "expires").and_then(|e| e.parse::<u32>().ok()))
                    .or_else(|| resp.header("Expires").and_then(|e| e.parse().ok()))
                    .unwrap_or(asked);
                if granted == 0 {
                    self.reg = RegState::Failed;
                    self.emit(Event::RegistrationFailed {
                        account: self.account.aor.clone(),
                        reason: "registrar granted no binding".into(),
                    });
                    return;
                }
                self.reg = RegState::Registered { expires: granted };
                self.emit(Event::Registered { account: self.account.aor.clone(), expires: granted });
                // Refresh well before expiry so a slow registrar never sees us lapse.
                let refresh = Duration::from_secs(u64::from(granted)).mul_f32(0.8).max(Duration::from_secs(5));
                self.timers.insert(Timer::RegisterRefresh, now + refresh);
            }
            423 => {
                let min = resp.header("Min-Expires").and_then(|v| v.parse::<u32>().ok());
                match min {
                    Some(min) if min > self.reg_expires && pending.auth_tries < 3 => {
                        self.reg_expires = min;
                        self.send_register(now, min);
                    }
                    _ => {
                        self.reg = RegState::Failed;
                        self.emit(Event::RegistrationFailed {
                            account: self.account.aor.clone(),
                            reason: "423 Interval Too Brief without a usable Min-Expires".into(),
                        });
                    }
                }
            }
            _ => {
                self.reg = RegState::Failed;
                let reason = match status {
                    401 | 407 if self.account.password.is_none() => {
                        "authentication required but no password is set".to_string()
                    }
                    401 | 407 | 403 => format!("wrong password or user name ({status} {})", message::status_text(resp)),
                    _ => format!("{status} {}", message::status_text(resp)),
                };
                self.emit(Event::RegistrationFailed { account: self.account.aor.clone(), reason });
                if !(400..500).contains(&status) {
                    self.timers.insert(Timer::RegisterRefresh, now + Duration::from_secs(60));
                }
            }
        }
    }

    fn send_keepalive(&mut self, now: Instant) {
        if let Some(peer) = self.account.outbound_peer() {
            let uri = format!("sip:{}", peer.addr);
            if let Some(req) = self.new_request(Method::Options, &uri, format!("<{uri}>"), None, None, 1) {
                self.send(now, req, peer, Purpose::Options);
            }
            self.timers.insert(Timer::Keepalive, now + Duration::from_secs(self.account.keepalive_secs.max(5)));
        }
    }

    // ---- shutdown ----------------------------------------------------------------

    fn stop(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let live: Vec<CallNo> = self.calls.values().filter(|c| c.state != CallState::Ended).map(|c| c.no).collect();
        for call in live {
            self.hangup(now, call, "local hangup");
        }
        if matches!(self.reg, RegState::Registered { .. } | RegState::Registering) {
            self.timers.remove(&Timer::RegisterRefresh);
            self.send_register(now, 0);
        }
        self.timers.remove(&Timer::Keepalive);
        self.timers.insert(Timer::StopDeadline, now + Duration::from_secs(3));
        self.check_stopped();
    }

    fn check_stopped(&mut self) {
        if !self.stopping || self.stopped {
            return;
        }
        let calls_done = self.calls.values().all(|c| c.state == CallState::Ended);
        let reg_done = !matches!(self.reg, RegState::Unregistering);
        if calls_done && reg_done {
            self.finish_stop();
        }
    }

    fn finish_stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.timers.clear();
        self.emit(Event::Stopped);
        self.out.push_back(Output::Stopped);
    }

    /// Answer a request outside any dialog logic (OPTIONS, unknown in-dialog, errors).
    pub(crate) fn reply(&mut self, now: Instant, key: &TxKey, req: &Request, status: u16, extra: Vec<(&str, String)>) {
        let mut resp = message::response_to(req, status, Some(&crate::sip::dialog::new_tag()));
        for (n, v) in extra {
            resp.add_header(n, v);
        }
        self.tl.respond(now, key, resp);
    }

    pub(crate) fn allow_header() -> (&'static str, String) {
        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER, NOTIFY, SUBSCRIBE, INFO, MESSAGE".to_string())
    }

    fn on_request(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        let in_dialog = req.to_tag().is_some();
        if in_dialog {
            self.on_in_dialog_request(now, key, req, source);
            return;
        }
        match req.method {
            Method::Invite => self.on_incoming_invite(now, key, req, source),
            Method::Options => self.reply(
                now,
                &key,
                &req,
                200,
                vec![Self::allow_header(), ("Accept", "application/sdp".into()), ("Supported", "replaces".into())],
            ),
            Method::Ack => {}
            Method::Subscribe => self.reply(now, &key, &req, 489, vec![]),
            Method::Notify | Method::Bye | Method::Refer | Method::Update | Method::Info | Method::Cancel => {
                self.reply(now, &key, &req, 481, vec![])
            }
            _ => self.reply(now, &key, &req, 405, vec![Self::allow_header()]),
        }
    }

    /// Reject what is not the active dialog's business with 481.
    pub(crate) fn find_dialog_call(&self, req: &Request) -> Option<CallNo> {
        self.calls
            .values()
            .filter(|c| c.state != CallState::Ended)
            .find(|c| c.dialog.as_ref().is_some_and(|d| d.matches_request(req)))
            .map(|c| c.no)
    }

    pub(crate) fn allocate_call(&mut self, direction: Direction, party: String) -> CallNo {
        let no = self.next_call;
        self.next_call += 1;
        self.calls.insert(no, Call::new(no, direction, party));
        no
    }
}
