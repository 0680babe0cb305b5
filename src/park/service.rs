//! The park service as one sans-IO state machine: the parker's control subscription,
//! pulling (INVITE+Replaces) or pushing (REFER token) the parkee onto an orbit, music
//! on hold, retrieve by third-party call control (RFC 3725), ring-back and fallback on
//! timeout, busy-lamp (RFC 4235), and a clean shutdown. The driver in `net/` feeds it
//! datagrams and the clock and carries out its outputs.

use super::config::ParkConfig;
use super::orbits::OrbitTable;
use super::protocol::{self, ParkNotice, ParkRequest};
use crate::media::negotiate::{self, Direction, LocalCaps, Negotiated};
use crate::media::sdp::SessionDescription;
use crate::sip::dialog::{Dialog, new_tag};
use crate::sip::digest::{DigestServer, Refusal as DigestRefusal};
use crate::sip::message::{self, MessageExt, Method, Request, Response, code, new_branch, random_token};
use crate::sip::subscription::{NotifierSubscription, SubState, SubscriptionState, event_package, requested_expires};
use crate::sip::transaction::{Output as TxOutput, TransactionLayer, TxEvent, TxKey};
use crate::sip::transport::{Peer, Transport};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A refused request: the status and the headers to send with it (challenges).
type Refusal = (u16, Vec<(&'static str, String)>);

/// Handle of one park.
pub type ParkId = u64;

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send bytes.
    Transmit { to: Peer, bytes: Vec<u8> },
    /// Start sending music to a parked call.
    MusicStart { park: ParkId, to: SocketAddr, codec: negotiate::Codec },
    /// Stop the music of a park.
    MusicStop { park: ParkId },
    /// A line for the service log (state changes an admin wants to see).
    Log(String),
    /// Shutdown finished.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Parked too long: ring the parker back (or go to fallback).
    Ringback(ParkId),
    /// A ring-back or fallback call rang long enough.
    RingTimeout(ParkId),
    /// The push (REFER) never brought the parkee.
    PushTimeout(ParkId),
    /// The control subscription lapsed.
    ControlExpiry(ParkId),
    /// A busy-lamp subscription lapsed.
    WatchExpiry(u64),
    /// Give up waiting for BYE answers on shutdown.
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// INVITE+Replaces sent to the parkee.
    Pulling,
    /// Waiting for the parkee's INVITE carrying our token.
    AwaitingPush,
    /// On the orbit with music.
    Parked,
    /// Ringing the parker back (attempt n) or the fallback.
    Ringing { fallback: bool },
    /// Third-party call control in progress.
    Connecting,
    /// Parkee bridged to someone; we only relay signalling.
    Bridged,
    /// Over.
    Ended,
}

#[derive(Debug, Clone)]
pub(super) struct Leg {
    pub(super) dialog: Dialog,
    pub(super) peer: Peer,
}

/// Third-party call control waiting for a leg's answer.
#[derive(Debug, Clone)]
pub(super) enum Pending3pcc {
    /// A retriever's INVITE waits for the parkee's answer to our re-INVITE.
    AnswerRetriever { server_tx: TxKey, invite: Request, local_tag: String, source: Peer },
    /// The retriever sent no offer: we gave it the parkee's offer and hold the parkee's
    /// ACK until the retriever's ACK brings the answer.
    AwaitRetrieverAck { parkee_seq: u32 },
    /// The parker/fallback answered a ring-back with an offer; its ACK waits for the
    /// parkee's answer.
    AckOther { other_seq: u32 },
    /// An in-dialog re-INVITE from one leg, relayed to the other.
    Relay { from_parkee: bool, server_tx: TxKey, req: Request },
}

#[derive(Debug, Clone)]
pub(super) struct Park {
    pub(super) id: ParkId,
    pub(super) parker: String,
    pub(super) parker_contact: String,
    pub(super) control: Option<NotifierSubscription>,
    pub(super) control_peer: Peer,
    pub(super) request: ParkRequest,
    pub(super) orbit: Option<String>,
    pub(super) token: String,
    pub(super) state: State,
    pub(super) attempt: u32,
    pub(super) parkee: Option<Leg>,
    pub(super) parkee_sdp: Option<Vec<u8>>,
    pub(super) music_sdp: Option<SessionDescription>,
    pub(super) other: Option<Leg>,
    pub(super) ring: Option<(Request, Peer)>,
    pub(super) pending: Option<Pending3pcc>,
}

#[derive(Debug, Clone)]
pub(super) enum Purpose {
    Pull(ParkId),
    ReInviteParkee(ParkId),
    ReInviteOther(ParkId),
    Ring(ParkId),
    Bye,
    Notify,
    Cancel,
}

pub(super) struct Watcher {
    pub(super) sub: NotifierSubscription,
    pub(super) peer: Peer,
    /// The watched orbit, or `None` for every orbit (`sip:park@DOMAIN`).
    pub(super) orbit: Option<String>,
    pub(super) version: u32,
}

/// Where a request to `uri` goes: its own address when it is an IP literal, else `fallback`.
pub(super) fn peer_for(uri: &str, fallback: Peer) -> Peer {
    let transport =
        message::uri_param(uri, "transport").and_then(|t| Transport::parse(&t)).unwrap_or(fallback.transport);
    match crate::sip::uri::uri_socket_addr(uri, 5060) {
        Some(addr) => Peer { transport, addr },
        None => fallback,
    }
}

/// The park service.
pub struct ParkService {
    pub(super) cfg: ParkConfig,
    pub(super) local: HashMap<Transport, SocketAddr>,
    pub(super) music_addr: SocketAddr,
    pub(super) tl: TransactionLayer,
    pub(super) out: VecDeque<Output>,
    pub(super) parks: HashMap<ParkId, Park>,
    pub(super) orbits: OrbitTable<ParkId>,
    pub(super) tokens: HashMap<String, ParkId>,
    pub(super) pending: HashMap<TxKey, (Purpose, Request, Peer)>,
    pub(super) timers: BTreeSet<(Instant, Timer)>,
    /// When each armed timer fires: the index that makes re-arming O(log n).
    timer_at: BTreeMap<Timer, Instant>,
    pub(super) digest: DigestServer,
    pub(super) watchers: HashMap<u64, Watcher>,
    pub(super) retrieve_attempts: HashMap<IpAddr, (Instant, u32)>,
    pub(super) next_id: u64,
    pub(super) clock_origin: (Instant, SystemTime),
    pub(super) stopping: bool,
    pub(super) stopped: bool,
}

pub(super) const MAX_CONTROL_EXPIRES: u32 = 3600;
const PUSH_WAIT: Duration = Duration::from_secs(32);

impl ParkService {
    /// A service for `cfg`, with its bound SIP addresses and the music socket address.
    pub fn new(now: Instant, cfg: ParkConfig, local: HashMap<Transport, SocketAddr>, music_addr: SocketAddr) -> Self {
        let orbits = OrbitTable::new(cfg.orbits.clone());
        let digest = DigestServer::new(&cfg.service.domain, 300);
        Self {
            cfg,
            local,
            music_addr,
            tl: TransactionLayer::new(),
            out: VecDeque::new(),
            parks: HashMap::new(),
            orbits,
            tokens: HashMap::new(),
            pending: HashMap::new(),
            timers: BTreeSet::new(),
            timer_at: BTreeMap::new(),
            digest,
            watchers: HashMap::new(),
            retrieve_attempts: HashMap::new(),
            next_id: 1,
            clock_origin: (now, SystemTime::now()),
            stopping: false,
            stopped: false,
        }
    }

    /// Number of calls on orbits (parked or ringing back), for tests and the status log.
    pub fn parked_count(&self) -> usize {
        self.orbits.len()
    }

    /// Number of parks in any state (leak checks).
    pub fn park_count(&self) -> usize {
        self.parks.len()
    }

    /// Live transactions (leak checks).
    pub fn transaction_count(&self) -> usize {
        self.tl.len()
    }

    /// The configuration.
    pub fn config(&self) -> &ParkConfig {
        &self.cfg
    }

    /// Next output; drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`ParkService::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.iter().next().map(|(t, _)| *t);
        match (ours, self.tl.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A datagram or stream frame arrived.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], source: Peer) {
        match message::parse(data) {
            Ok(msg) => self.tl.receive(now, msg, source),
            Err(err) => {
                self.log(format!("refused message from {source}: {err}"));
                if let Some(reply) = err.reply() {
                    self.tl.send_stateless(source, reply.to_vec());
                }
            }
        }
        self.pump(now);
    }

    /// Fire due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tl.handle_timeout(now);
        while let Some(&(at, timer)) = self.timers.iter().next() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer));
            self.timer_at.remove(&timer);
            self.on_timer(now, timer);
        }
        self.pump(now);
    }

    /// Stop: every parked call gets BYE, every parker a final "disconnected".
    pub fn shutdown(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        // The census an operator (and the load test) reads to see that nothing leaked.
        self.log(format!(
            "stopping: {} orbits in use, {} parks in progress, {} busy-lamp watchers, {} transactions",
            self.orbits.len(),
            self.parks.len(),
            self.watchers.len(),
            self.tl.len()
        ));
        let ids: Vec<ParkId> = self.parks.keys().copied().collect();
        for id in ids {
            self.disconnect(now, id, "service stopped");
        }
        let watchers: Vec<u64> = self.watchers.keys().copied().collect();
        for w in watchers {
            self.end_watch(now, w, "noresource");
        }
        self.set_timer(now + Duration::from_secs(3), Timer::Stop);
        self.pump(now);
        self.check_stopped();
    }

    /// True once shutdown is complete.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    // ---- plumbing ----------------------------------------------------------------

    pub(super) fn log(&mut self, line: String) {
        self.out.push_back(Output::Log(line));
    }

    pub(super) fn set_timer(&mut self, at: Instant, t: Timer) {
        if let Some(old) = self.timer_at.insert(t, at) {
            self.timers.remove(&(old, t));
        }
        self.timers.insert((at, t));
    }

    pub(super) fn clear_timer(&mut self, t: Timer) {
        if let Some(old) = self.timer_at.remove(&t) {
            self.timers.remove(&(old, t));
        }
    }

    fn unix_time(&self, at: Instant) -> u64 {
        let wall = self.clock_origin.1 + at.saturating_duration_since(self.clock_origin.0);
        wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn local_for(&self, transport: Transport) -> SocketAddr {
        self.local
            .get(&transport)
            .or_else(|| self.local.values().next())
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5099)))
    }

    pub(super) fn via(&self, transport: Transport) -> String {
        format!("SIP/2.0/{} {};branch={};rport", transport.via_token(), self.local_for(transport), new_branch())
    }

    pub(super) fn contact(&self, transport: Transport) -> String {
        let tp = if transport == Transport::Udp { String::new() } else { format!(";transport={}", transport.param()) };
        format!("sip:park@{}{tp}", self.local_for(transport))
    }

    pub(super) fn domain(&self) -> String {
        self.cfg.service.domain.clone()
    }

    pub(super) fn peer_for(&self, uri: &str, fallback: Peer) -> Peer {
        peer_for(uri, fallback)
    }

    /// Next hop for a request we originate (pull, ring-back, fallback): behind a proxy,
    /// through it — it can resolve GRUUs and AORs we cannot — else straight to the URI.
    pub(super) fn outbound_peer(&self, uri: &str, fallback: Peer) -> Peer {
        match self.cfg.service.trusted_proxies.first() {
            Some(proxy) => Peer { transport: Transport::Udp, addr: *proxy },
            None => peer_for(uri, fallback),
        }
    }

    pub(super) fn send(&mut self, now: Instant, req: Request, peer: Peer, purpose: Purpose) -> TxKey {
        let key = self.tl.send_request(now, req.clone(), peer);
        if req.method != Method::Ack {
            self.pending.insert(key.clone(), (purpose, req, peer));
        }
        key
    }

    pub(super) fn reply(&mut self, now: Instant, key: &TxKey, req: &Request, status: u16, extra: Vec<(&str, String)>) {
        let mut resp = message::response_to(req, status, Some(&new_tag()));
        for (n, v) in extra {
            resp.add_header(n, v);
        }
        self.tl.respond(now, key, resp);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.tl.poll_output() {
            match o {
                TxOutput::Transmit { to, bytes } => self.out.push_back(Output::Transmit { to, bytes }),
                TxOutput::Event(ev) => self.on_tx_event(now, ev),
            }
        }
        self.check_stopped();
    }

    fn check_stopped(&mut self) {
        if self.stopping && !self.stopped && self.parks.is_empty() {
            self.stopped = true;
            self.out.push_back(Output::Stopped);
        }
    }

    fn on_tx_event(&mut self, now: Instant, ev: TxEvent) {
        match ev {
            TxEvent::Request { key, request, source } => self.on_request(now, key, request, source),
            TxEvent::Response { key, response } => {
                let st = code(&response);
                let is_invite_2xx = key.method == "INVITE" && (200..300).contains(&st);
                let entry = if st >= 200 && !is_invite_2xx {
                    self.pending.remove(&key)
                } else {
                    self.pending.get(&key).cloned()
                };
                if let Some((purpose, req, peer)) = entry {
                    self.on_response(now, purpose, req, peer, response);
                }
            }
            TxEvent::Timeout { key } => {
                if let Some((purpose, req, _)) = self.pending.remove(&key) {
                    let mut resp = message::response_to(&req, 408, None);
                    resp.wire_reason = Some("Request Timeout (no answer)".into());
                    self.on_failure(now, purpose, &resp);
                }
            }
            TxEvent::AckTimeout { .. } | TxEvent::Cancelled { .. } => {}
        }
    }

    fn on_request(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        if req.to_tag().is_some() {
            self.on_in_dialog(now, key, req, source);
            return;
        }
        if self.stopping && req.method != Method::Ack {
            self.reply(now, &key, &req, 503, vec![("Retry-After", "30".into())]);
            return;
        }
        match req.method {
            Method::Subscribe => match event_package(&req).as_deref() {
                Some(protocol::EVENT) => self.on_park_subscribe(now, key, req, source),
                Some("dialog") => self.on_watch_subscribe(now, key, req, source),
                _ => self.reply(now, &key, &req, 489, vec![("Allow-Events", "call-park, dialog".into())]),
            },
            Method::Invite => self.on_invite(now, key, req, source),
            Method::Options => self.reply(
                now,
                &key,
                &req,
                200,
                vec![("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, SUBSCRIBE, NOTIFY, REFER".into())],
            ),
            Method::Ack => {}
            Method::Cancel | Method::Bye | Method::Notify | Method::Refer | Method::Update | Method::Info => {
                self.reply(now, &key, &req, 481, vec![])
            }
            _ => self.reply(now, &key, &req, 405, vec![]),
        }
    }

    // ---- authentication and policy ---------------------------------------------------

    /// Who sent this request: a trusted proxy's asserted identity, or our own digest check.
    /// Err carries the response to send (401 with challenges, or 403).
    pub(super) fn authenticate(&mut self, now: Instant, req: &Request, source: Peer) -> Result<String, Refusal> {
        if self.cfg.service.trusted_proxies.contains(&source.addr) {
            let who = req.header("P-Asserted-Identity").or_else(|| req.header("From")).unwrap_or_default();
            return message::name_addr_uri(&who).and_then(crate::sip::uri::uri_user).ok_or((403, vec![]));
        }
        let secs = now.saturating_duration_since(self.clock_origin.0).as_secs();
        let header = req.header("Authorization").or_else(|| req.header("Proxy-Authorization"));
        let users = &self.cfg.users;
        match self.digest.check(secs, header.as_deref(), &req.method.to_string(), &req.body, |u| users.get(u).cloned())
        {
            Ok(user) => Ok(user),
            Err(DigestRefusal::Challenge { stale }) => {
                let values = self.digest.challenges(secs, &self.cfg.service.digest_algorithms, stale);
                Err((401, values.into_iter().map(|v| ("WWW-Authenticate", v)).collect()))
            }
            Err(DigestRefusal::Malformed) => Err((400, vec![])),
            Err(DigestRefusal::UnknownUser) => Err((403, vec![("Warning", "399 orbit \"unknown user\"".into())])),
            Err(DigestRefusal::Forbidden) => Err((403, vec![])),
        }
    }

    // ---- control subscription ---------------------------------------------------------

    fn on_park_subscribe(&mut self, now: Instant, key: TxKey, req: Request, source: Peer) {
        let user = match self.authenticate(now, &req, source) {
            Ok(u) => u,
            Err((status, headers)) => {
                self.reply(now, &key, &req, status, headers);
                return;
            }
        };
        if !self.cfg.policy.allows(&user) {
            self.log(format!("park refused for {user}: not allowed by policy"));
            let mut resp = message::response_to(&req, 403, Some(&new_tag()));
            resp.wire_reason = Some("Park not allowed by policy".into());
            self.tl.respond(now, &key, resp);
            return;
        }
        let Ok(request) = serde_json::from_slice::<ParkRequest>(&req.body) else {
            let mut resp = message::response_to(&req, 400, Some(&new_tag()));
            resp.wire_reason = Some("Bad call-park body".into());
            self.tl.respond(now, &key, resp);
            return;
        };
        let expires = requested_expires(&req, MAX_CONTROL_EXPIRES).clamp(60, MAX_CONTROL_EXPIRES);
        let Some(dialog) = self.accept_subscription(now, &key, &req, source, expires) else { return };
        let id = self.next_id;
        self.next_id += 1;
        let parker = req.header("From").map(|f| crate::sip::dialog::strip_tag(&f)).unwrap_or_default();
        let parker_contact = dialog.remote_target.clone();
        let park = Park {
            id,
            parker,
            parker_contact,
            control: Some(NotifierSubscription {
                dialog,
                event: protocol::EVENT.into(),
                expires_at: now + Duration::from_secs(u64::from(expires)),
                state: SubState::Active,
            }),
            control_peer: source,
            request: request.clone(),
            orbit: None,
            token: random_token(16),
            state: State::Pulling,
            attempt: 0,
            parkee: None,
            parkee_sdp: None,
            music_sdp: None,
            other: None,
            ring: None,
            pending: None,
        };
        self.parks.insert(id, park);
        self.set_timer(now + Duration::from_secs(u64::from(expires)), Timer::ControlExpiry(id));
        let double = self.parks.values().any(|p| {
            p.id != id
                && p.state != State::Ended
                && p.request.call_id == request.call_id
                && p.request.remote_tag == request.remote_tag
        });
        if double {
            self.fail(now, id, "double park");
            return;
        }
        let Some(orbit) = self.orbits.allocate(id) else {
            self.fail(now, id, "no free orbit");
            return;
        };
        self.log(format!("park {id}: {user} parks {} on {orbit}", request.parkee));
        if let Some(p) = self.parks.get_mut(&id) {
            p.orbit = Some(orbit.clone());
        }
        let token = self.parks[&id].token.clone();
        self.tokens.insert(token, id);
        self.notify(now, id, &ParkNotice::Parking);
        self.pull(now, id);
        self.notify_watchers(now, &orbit);
    }

    /// Answer a SUBSCRIBE with 200 (granted `expires`, our Contact) and return the
    /// notifier's dialog; a SUBSCRIBE without Contact gets 400 and `None`.
    pub(super) fn accept_subscription(
        &mut self,
        now: Instant,
        key: &TxKey,
        req: &Request,
        source: Peer,
        expires: u32,
    ) -> Option<Dialog> {
        let local_tag = new_tag();
        let contact = self.contact(source.transport);
        let Some(dialog) = Dialog::as_uas(req, &local_tag, &contact) else {
            self.reply(now, key, req, 400, vec![]);
            return None;
        };
        let mut ok = message::response_to(req, 200, Some(&local_tag));
        ok.add_header("Expires", expires.to_string());
        ok.add_header("Contact", format!("<{contact}>"));
        self.tl.respond(now, key, ok);
        Some(dialog)
    }

    /// Send a NOTIFY on the control subscription (final ones terminate it).
    pub(super) fn notify(&mut self, now: Instant, id: ParkId, notice: &ParkNotice) {
        let Some(transport) = self.parks.get(&id).map(|p| p.control_peer.transport) else { return };
        let via = self.via(transport);
        let Some(park) = self.parks.get_mut(&id) else { return };
        let Some(sub) = park.control.as_mut() else { return };
        let last = notice.is_final() || sub.state == SubState::Terminated;
        let state = if last {
            SubscriptionState::header(SubState::Terminated, Duration::ZERO, Some("noresource"))
        } else {
            SubscriptionState::header(SubState::Active, sub.remaining(now), None)
        };
        let body = serde_json::to_vec(notice).unwrap_or_default();
        let req = sub.dialog.request(
            Method::Notify,
            via,
            vec![
                ("Event", protocol::EVENT.into()),
                ("Subscription-State", state),
                ("Content-Type", protocol::CONTENT_TYPE.into()),
            ],
            body,
        );
        let next = sub.dialog.next_hop();
        let peer = peer_for(&next, park.control_peer);
        if last {
            park.control = None;
            self.clear_timer(Timer::ControlExpiry(id));
        }
        self.send(now, req, peer, Purpose::Notify);
    }

    fn fail(&mut self, now: Instant, id: ParkId, reason: &str) {
        self.log(format!("park {id} failed: {reason}"));
        self.notify(now, id, &ParkNotice::Failed { reason: reason.into() });
        self.finish(now, id);
    }

    /// Forget a park: free its orbit, stop music, drop timers. The parkee leg must be
    /// gone already (or be handed over to a bridge that is itself gone).
    pub(super) fn finish(&mut self, now: Instant, id: ParkId) {
        let Some(park) = self.parks.remove(&id) else { return };
        self.out.push_back(Output::MusicStop { park: id });
        if let Some(orbit) = &park.orbit
            && self.orbits.get(orbit) == Some(&id)
        {
            self.orbits.free(orbit);
            self.notify_watchers(now, orbit);
        }
        self.tokens.remove(&park.token);
        for t in [Timer::Ringback(id), Timer::RingTimeout(id), Timer::PushTimeout(id), Timer::ControlExpiry(id)] {
            self.clear_timer(t);
        }
    }

    /// Release the orbit while the call itself goes on (retrieved, bridged).
    pub(super) fn release_orbit(&mut self, now: Instant, id: ParkId) {
        let Some(orbit) = self.parks.get_mut(&id).and_then(|p| p.orbit.take()) else { return };
        if self.orbits.get(&orbit) == Some(&id) {
            self.orbits.free(&orbit);
        }
        self.out.push_back(Output::MusicStop { park: id });
        self.clear_timer(Timer::Ringback(id));
        self.notify_watchers(now, &orbit);
    }

    /// Orbit URI for an orbit number.
    pub(super) fn orbit_uri(&self, orbit: &str) -> String {
        format!("sip:{orbit}@{}", self.domain())
    }

    // ---- pull and push ----------------------------------------------------------------

    fn music_offer(&mut self, id: ParkId) -> Vec<u8> {
        let sdp = negotiate::build_offer(
            self.music_addr.ip(),
            self.music_addr.port(),
            &LocalCaps::default(),
            Direction::SendOnly,
            id + 1000,
            id + 1000,
        );
        let bytes = sdp.to_string().into_bytes();
        if let Some(p) = self.parks.get_mut(&id) {
            p.music_sdp = Some(sdp);
        }
        bytes
    }

    fn pull(&mut self, now: Instant, id: ParkId) {
        let Some(park) = self.parks.get(&id) else { return };
        let r = park.request.clone();
        let fallback_peer = park.control_peer;
        let target = r.target.clone();
        let peer = self.outbound_peer(&target, fallback_peer);
        let body = self.music_offer(id);
        let replaces = format!("{};to-tag={};from-tag={}", r.call_id, r.remote_tag, r.local_tag);
        let from = format!("<sip:park@{}>;tag={}", self.domain(), new_tag());
        let parker = self.parks[&id].parker.clone();
        let headers = vec![
            ("Via", self.via(peer.transport)),
            ("Max-Forwards", "70".to_string()),
            ("From", from),
            ("To", r.parkee.clone()),
            ("Call-ID", format!("{}@orbit-park", random_token(20))),
            ("CSeq", "1 INVITE".to_string()),
            ("Contact", format!("<{}>", self.contact(peer.transport))),
            ("Replaces", replaces),
            ("Require", "replaces".to_string()),
            ("Referred-By", parker),
            ("Content-Type", "application/sdp".to_string()),
        ];
        match message::request(Method::Invite, &target, headers, body) {
            Ok(req) => {
                self.send(now, req, peer, Purpose::Pull(id));
            }
            Err(_) => self.push(now, id),
        }
    }

    /// Fall back to push: the parker REFERs the parkee to our token URI.
    fn push(&mut self, now: Instant, id: ParkId) {
        let Some(park) = self.parks.get_mut(&id) else { return };
        park.state = State::AwaitingPush;
        let refer_to = format!("sip:park@{};park-token={}", self.cfg.service.domain, park.token);
        self.log(format!("park {id}: parkee refused Replaces, pushing via REFER"));
        self.notify(now, id, &ParkNotice::Transfer { refer_to });
        self.set_timer(now + PUSH_WAIT, Timer::PushTimeout(id));
    }

    /// The parkee is on our music: tell the parker, arm the ring-back timer.
    pub(super) fn parked(&mut self, now: Instant, id: ParkId, negotiated: Option<Negotiated>) {
        let timeout = self.cfg.park.timeout;
        let domain = self.domain();
        let Some(park) = self.parks.get_mut(&id) else { return };
        park.state = State::Parked;
        let Some(orbit) = park.orbit.clone() else { return };
        let parkee = park.request.parkee.clone();
        let token = park.token.clone();
        if let Some(n) = negotiated
            && let (Some(to), true) = (n.remote_addr, self.cfg.park.music)
        {
            self.out.push_back(Output::MusicStart { park: id, to, codec: n.codec.clone() });
        }
        let at = now + timeout;
        self.set_timer(at, Timer::Ringback(id));
        let notice = ParkNotice::Parked {
            orbit: orbit.clone(),
            orbit_uri: format!("sip:{orbit}@{domain}"),
            retrieve_uri: format!("sip:{orbit}@{domain};park-token={token}"),
            parkee,
            ringback_at: self.unix_time(at),
        };
        self.log(format!("park {id}: parked on {orbit}"));
        self.notify(now, id, &notice);
        self.notify_watchers(now, &orbit);
    }

    fn on_response(&mut self, now: Instant, purpose: Purpose, req: Request, peer: Peer, resp: Response) {
        let st = code(&resp);
        if st < 200 {
            return;
        }
        if st >= 300 {
            self.on_failure(now, purpose, &resp);
            return;
        }
        match purpose {
            Purpose::Pull(id) => {
                let contact = self.contact(peer.transport);
                let seq = resp.cseq().0;
                let Some(mut dialog) = Dialog::as_uac(&req, &resp, &contact) else { return };
                dialog.local_seq = seq;
                let ack = dialog.ack(seq, self.via(peer.transport), vec![]);
                let leg_peer = self.peer_for(&dialog.next_hop(), peer);
                self.send(now, ack, leg_peer, Purpose::Bye);
                let Some(park) = self.parks.get_mut(&id) else { return };
                if park.parkee.is_some() {
                    return; // a retransmitted 2xx: ACKed again above
                }
                park.parkee = Some(Leg { dialog, peer: leg_peer });
                park.parkee_sdp = Some(resp.body.clone());
                let negotiated = match (&park.music_sdp, SessionDescription::parse(&resp.body_text())) {
                    (Some(offer), Ok(answer)) => negotiate::apply_answer(offer, &answer).ok(),
                    _ => None,
                };
                self.parked(now, id, negotiated);
            }
            Purpose::ReInviteParkee(id) => self.on_parkee_reinvite_ok(now, id, resp),
            Purpose::ReInviteOther(id) => self.on_other_reinvite_ok(now, id, resp),
            Purpose::Ring(id) => self.on_ring_answered(now, id, req, peer, resp),
            Purpose::Bye | Purpose::Notify | Purpose::Cancel => {}
        }
    }

    fn on_failure(&mut self, now: Instant, purpose: Purpose, resp: &Response) {
        let st = code(resp);
        match purpose {
            Purpose::Pull(id) => {
                self.log(format!("park {id}: pull refused with {st} {}", message::status_text(resp)));
                self.push(now, id);
            }
            Purpose::Ring(id) => self.on_ring_failed(now, id),
            Purpose::ReInviteParkee(id) | Purpose::ReInviteOther(id) => {
                self.log(format!("park {id}: re-INVITE failed with {st}"));
                self.fail_3pcc(now, id);
            }
            Purpose::Notify => {
                // The parker's subscription is gone (481) or unreachable: stop notifying.
                if st == 481 || st == 408 {
                    let dead: Vec<ParkId> = self.parks.values().filter(|p| p.control.is_none()).map(|p| p.id).collect();
                    let _ = dead;
                }
            }
            Purpose::Bye | Purpose::Cancel => {}
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Ringback(id) => self.ring_back(now, id),
            Timer::RingTimeout(id) => self.cancel_ring(now, id),
            Timer::PushTimeout(id) => {
                if self.parks.get(&id).is_some_and(|p| p.state == State::AwaitingPush) {
                    self.fail(now, id, "parkee refused");
                }
            }
            Timer::ControlExpiry(id) => {
                if let Some(p) = self.parks.get_mut(&id) {
                    p.control = None;
                }
            }
            Timer::WatchExpiry(w) => self.end_watch(now, w, "timeout"),
            Timer::Stop => {
                let ids: Vec<ParkId> = self.parks.keys().copied().collect();
                for id in ids {
                    self.finish(now, id);
                }
                self.check_stopped();
            }
        }
    }

    /// End a park by hanging up on everyone still connected.
    pub(super) fn disconnect(&mut self, now: Instant, id: ParkId, reason: &str) {
        self.notify(now, id, &ParkNotice::Disconnected { reason: reason.into() });
        self.bye_legs(now, id);
        self.finish(now, id);
    }

    pub(super) fn bye_legs(&mut self, now: Instant, id: ParkId) {
        let Some(park) = self.parks.get_mut(&id) else { return };
        let legs: Vec<Leg> = [park.parkee.take(), park.other.take()].into_iter().flatten().collect();
        let ring = park.ring.take();
        for mut leg in legs {
            let via = self.via(leg.peer.transport);
            let bye = leg.dialog.request(Method::Bye, via, vec![], vec![]);
            self.send(now, bye, leg.peer, Purpose::Bye);
        }
        if let Some((invite, peer)) = ring {
            self.send_cancel(now, &invite, peer);
        }
    }

    pub(super) fn send_cancel(&mut self, now: Instant, invite: &Request, peer: Peer) {
        let mut cancel =
            Request { method: Method::Cancel, headers: Default::default(), body: vec![], ..invite.clone() };
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(v) = invite.header(name) {
                cancel.add_header(name, v);
            }
        }
        cancel.add_header("CSeq", format!("{} CANCEL", invite.cseq().0));
        self.send(now, cancel, peer, Purpose::Cancel);
    }
}
