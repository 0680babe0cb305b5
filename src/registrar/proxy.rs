//! Registrar + stateless proxy (RFC 3261 §10.3 and §16.11).

use crate::sip::digest::{Algorithm, DigestServer, Refusal as DigestRefusal};
use crate::sip::message::{self, MessageExt, Method, Request, Response, SipMessage, code, header_param, name_addr_uri};
use crate::sip::transport::{Peer, Transport};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A refused request: the status and the headers to send with it (challenges).
type Refusal = (u16, Vec<(&'static str, String)>);

/// What the registrar needs to know.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Our SIP domain (`127.0.0.1:5060` in local mode).
    pub domain: String,
    /// Where we listen (our Via sent-by).
    pub local: SocketAddr,
    /// Users and passwords.
    pub users: BTreeMap<String, String>,
    /// The park service: `park` and orbit numbers go there, and its requests need no auth.
    pub park_service: Option<SocketAddr>,
    /// Which R-URI users belong to the park service (`park` plus orbits).
    pub orbit_prefixes: Vec<(u64, u64, usize)>,
    /// Longest and shortest registration we grant.
    pub max_expires: u32,
    /// Shortest registration we accept (423 below).
    pub min_expires: u32,
}

/// Something to send.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send bytes.
    Transmit { to: Peer, bytes: Vec<u8> },
}

struct Binding {
    contact: String,
    peer: Peer,
    expires_at: Instant,
}

/// The registrar/proxy state.
pub struct Registrar {
    cfg: RegistrarConfig,
    digest: DigestServer,
    bindings: HashMap<String, Vec<Binding>>,
    out: VecDeque<Output>,
    origin: Instant,
}

impl Registrar {
    /// A registrar with `cfg`.
    pub fn new(now: Instant, cfg: RegistrarConfig) -> Self {
        let digest = DigestServer::new(cfg.domain.split(':').next().unwrap_or(&cfg.domain), 300);
        Self { cfg, digest, bindings: HashMap::new(), out: VecDeque::new(), origin: now }
    }

    /// Registered contacts of a user (for tests and status).
    pub fn contacts(&self, user: &str) -> Vec<String> {
        self.bindings.get(user).map(|b| b.iter().map(|b| b.contact.clone()).collect()).unwrap_or_default()
    }

    /// Next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A datagram/frame arrived.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], source: Peer) {
        match message::parse(data) {
            Ok(SipMessage::Request(req)) => self.on_request(now, req, source),
            Ok(SipMessage::Response(resp)) => self.on_response(resp, source),
            Err(e) => {
                tracing::info!("registrar: refused message from {source}: {e}");
                if let Some(reply) = e.reply() {
                    self.out.push_back(Output::Transmit { to: source, bytes: reply.to_vec() });
                }
            }
        }
    }

    fn respond(&mut self, req: &Request, source: Peer, status: u16, extra: Vec<(&str, String)>) {
        if req.method == Method::Ack {
            return;
        }
        let mut resp = message::response_to(req, status, Some(&crate::sip::dialog::new_tag()));
        for (n, v) in extra {
            resp.add_header(n, v);
        }
        self.out.push_back(Output::Transmit { to: reply_peer(req, source), bytes: message::response_bytes(&resp) });
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// Check digest credentials in `header`; Err = the challenge/refusal to send.
    fn check_auth(
        &mut self,
        now: Instant,
        req: &Request,
        header: &str,
        challenge_header: &'static str,
        challenge_code: u16,
    ) -> Result<String, Refusal> {
        let secs = self.secs(now);
        let value = req.header(header);
        let users = &self.cfg.users;
        match self.digest.check(secs, value.as_deref(), &req.method.to_string(), &req.body, |u| users.get(u).cloned()) {
            Ok(user) => Ok(user),
            Err(DigestRefusal::Challenge { stale }) => {
                let values = self.digest.challenges(secs, &[Algorithm::Sha256, Algorithm::Md5], stale);
                Err((challenge_code, values.into_iter().map(|v| (challenge_header, v)).collect()))
            }
            Err(DigestRefusal::Malformed) => Err((400, vec![])),
            Err(DigestRefusal::UnknownUser | DigestRefusal::Forbidden) => Err((403, vec![])),
        }
    }

    fn is_ours(&self, req: &Request) -> bool {
        let host = req.uri.host_with_port.to_string();
        let domain_host = self.cfg.domain.split(':').next().unwrap_or_default();
        host == self.cfg.domain
            || host == self.cfg.local.to_string()
            || (host == domain_host && req.uri.host_with_port.port.is_none())
    }

    fn is_park_user(&self, user: &str) -> bool {
        if user == "park" {
            return true;
        }
        let digits: String = user.chars().filter(|c| c.is_ascii_digit()).collect();
        digits.len() == user.trim_start_matches(['*', '#']).len()
            && digits.parse::<u64>().is_ok_and(|n| {
                self.cfg.orbit_prefixes.iter().any(|(lo, hi, len)| *len == digits.len() && (*lo..=*hi).contains(&n))
            })
    }

    fn on_request(&mut self, now: Instant, mut req: Request, source: Peer) {
        if req.method == Method::Register {
            self.on_register(now, req, source);
            return;
        }
        let trusted = self.cfg.park_service.is_some_and(|p| p == source.addr);
        let in_dialog = req.to_tag().is_some();
        if !self.is_ours(&req) || in_dialog {
            // Not for a user of ours (a contact URI, an in-dialog request): pass it on.
            let Some(to) = crate::sip::uri::uri_socket_addr(&req.uri.to_string(), 5060) else {
                self.respond(&req, source, 404, vec![]);
                return;
            };
            let transport = message::uri_param(&req.uri.to_string(), "transport")
                .and_then(|t| Transport::parse(&t))
                .unwrap_or(Transport::Udp);
            self.forward(req, source, Peer { transport, addr: to });
            return;
        }
        if matches!(req.method, Method::Invite | Method::Subscribe | Method::Refer | Method::Message | Method::Options)
            && !trusted
        {
            match self.check_auth(now, &req, "Proxy-Authorization", "Proxy-Authenticate", 407) {
                Ok(user) => {
                    let from_user =
                        req.header("From").as_deref().and_then(name_addr_uri).and_then(crate::sip::uri::uri_user);
                    if from_user.as_deref() != Some(user.as_str()) {
                        self.respond(&req, source, 403, vec![]);
                        return;
                    }
                    // The park service trusts us: tell it who this is.
                    req.remove_header("P-Asserted-Identity");
                    req.add_header("P-Asserted-Identity", format!("<sip:{user}@{}>", self.cfg.domain));
                }
                Err((status, headers)) => {
                    self.respond(&req, source, status, headers);
                    return;
                }
            }
        }
        let user = req.uri.user().unwrap_or_default().to_string();
        if self.is_park_user(&user) {
            match self.cfg.park_service {
                Some(park) => self.forward(req, source, Peer { transport: Transport::Udp, addr: park }),
                None => self.respond(&req, source, 404, vec![]),
            }
            return;
        }
        let live: Vec<(String, Peer)> = self
            .bindings
            .get(&user)
            .map(|b| b.iter().filter(|b| b.expires_at > now).map(|b| (b.contact.clone(), b.peer)).collect())
            .unwrap_or_default();
        match live.first() {
            Some((contact, peer)) => {
                if let Ok(uri) = rsipstack::sip::parse_uri(contact) {
                    req.uri = uri;
                }
                self.forward(req, source, *peer);
            }
            None if self.cfg.users.contains_key(&user) => self.respond(&req, source, 480, vec![]),
            None => self.respond(&req, source, 404, vec![]),
        }
    }

    fn on_register(&mut self, now: Instant, req: Request, source: Peer) {
        let user = match self.check_auth(now, &req, "Authorization", "WWW-Authenticate", 401) {
            Ok(u) => u,
            Err((status, headers)) => return self.respond(&req, source, status, headers),
        };
        let to_user = req.header("To").as_deref().and_then(name_addr_uri).and_then(crate::sip::uri::uri_user);
        if to_user.as_deref() != Some(user.as_str()) {
            return self.respond(&req, source, 403, vec![]);
        }
        let default = req.header("Expires").and_then(|e| e.parse::<u32>().ok()).unwrap_or(3600);
        let mut granted = Vec::new();
        for contact in req.headers_named("Contact") {
            if contact.trim() == "*" {
                self.bindings.remove(&user);
                continue;
            }
            let Some(uri) = name_addr_uri(&contact).map(str::to_string) else { continue };
            let asked = header_param(&contact, "expires").and_then(|e| e.parse::<u32>().ok()).unwrap_or(default);
            if asked != 0 && asked < self.cfg.min_expires {
                return self.respond(&req, source, 423, vec![("Min-Expires", self.cfg.min_expires.to_string())]);
            }
            let expires = asked.min(self.cfg.max_expires);
            let list = self.bindings.entry(user.clone()).or_default();
            list.retain(|b| b.contact != uri);
            if expires > 0 {
                // Send to where REGISTER came from (symmetric signalling through NAT).
                list.push(Binding {
                    contact: uri.clone(),
                    peer: source,
                    expires_at: now + Duration::from_secs(u64::from(expires)),
                });
                granted.push((uri, expires));
            }
        }
        let mut resp = message::response_to(&req, 200, Some(&crate::sip::dialog::new_tag()));
        for (uri, expires) in granted {
            resp.add_header("Contact", format!("<{uri}>;expires={expires}"));
        }
        self.out.push_back(Output::Transmit { to: reply_peer(&req, source), bytes: message::response_bytes(&resp) });
    }

    /// Stateless forwarding (§16.11): our Via on top with a branch derived from theirs,
    /// so a CANCEL or ACK takes the same path as its INVITE.
    fn forward(&mut self, mut req: Request, source: Peer, to: Peer) {
        let mf = req.header("Max-Forwards").and_then(|m| m.parse::<u32>().ok()).unwrap_or(70);
        if mf == 0 {
            return self.respond(&req, source, 483, vec![]);
        }
        req.set_header("Max-Forwards", (mf - 1).to_string());
        // Record where it came from in the Via we keep (RFC 3581).
        crate::sip::transaction::stamp_received(&mut req, source);
        let their_branch = req.top_branch().unwrap_or_default();
        let branch = format!("z9hG4bKorb{:016x}", fnv(their_branch.as_bytes()));
        let via = format!("SIP/2.0/{} {};branch={branch}", to.transport.via_token(), self.cfg.local);
        req.headers.0.insert(0, rsipstack::sip::headers::make_header("Via", via));
        self.out.push_back(Output::Transmit { to, bytes: message::request_bytes(&req) });
    }

    fn on_response(&mut self, mut resp: Response, _source: Peer) {
        // Our Via must be on top; remove it and send to the next one.
        let Some(top) = resp.header("Via") else { return };
        if !top.contains(&self.cfg.local.to_string()) {
            return;
        }
        let mut removed = false;
        resp.headers.retain(|h| {
            if !removed && h.name().eq_ignore_ascii_case("Via") {
                removed = true;
                return false;
            }
            true
        });
        let Some(next) = resp.header("Via") else { return };
        let Some(to) = via_target(&next) else { return };
        let _ = code(&resp);
        self.out.push_back(Output::Transmit { to, bytes: message::response_bytes(&resp) });
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

/// Where a response to `req` goes: its source (rport/received semantics).
fn reply_peer(_req: &Request, source: Peer) -> Peer {
    source
}

/// The address a response goes to, from a Via value (received/rport win over sent-by).
fn via_target(via: &str) -> Option<Peer> {
    let mut parts = via.split_whitespace();
    let proto = parts.next()?;
    let transport = Transport::parse(proto.rsplit('/').next()?)?;
    let rest: String = parts.collect::<Vec<_>>().join(" ");
    let sent_by = rest.split(';').next()?.trim();
    let (host, port) = match sent_by.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()?),
        None => (sent_by.to_string(), 5060),
    };
    let host = message::uri_param(&rest, "received").unwrap_or(host);
    let port = message::uri_param(&rest, "rport").and_then(|p| p.parse().ok()).unwrap_or(port);
    let ip: std::net::IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
    Some(Peer { transport, addr: SocketAddr::new(ip, port) })
}
