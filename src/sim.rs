//! A simulated network for deterministic tests: phones (engines), a digest registrar and
//! park services exchange datagrams in memory on a virtual clock, with optional loss.

use crate::park::ParkService;
use crate::phone::account::Account;
use crate::phone::api::{Command, Event};
use crate::phone::engine::{Engine, Output};
use crate::sip::digest::{Algorithm, DigestServer, parse_authorization};
use crate::sip::message::{self, MessageExt, SipMessage};
use crate::sip::transport::{Peer, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Drop the next N datagrams for which the predicate holds.
pub type DropRule = (Box<dyn Fn(&[u8]) -> bool>, usize);

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn account(user: &str) -> Account {
    Account {
        display_name: Some(user.to_uppercase()),
        password: Some(format!("{user}-pw")),
        ..Account::new(&format!("sip:{user}@127.0.0.1"))
    }
}

/// A registrar that challenges with SHA-256 and MD5 and accepts `<user>-pw`.
pub struct TestRegistrar {
    pub addr: SocketAddr,
    pub digest: DigestServer,
    pub min_expires: Option<u32>,
    pub bindings: HashMap<String, u32>,
}

impl TestRegistrar {
    fn handle(&mut self, now_secs: u64, data: &[u8]) -> Option<Vec<u8>> {
        let Ok(SipMessage::Request(req)) = message::parse(data) else { return None };
        let auth = req.header("Authorization").and_then(|a| parse_authorization(&a).ok());
        let status = match auth {
            None => 401,
            Some(auth) => {
                let pw = format!("{}-pw", auth.username);
                match self.digest.verify(now_secs, &auth, "REGISTER", &pw, &req.body) {
                    Ok(_) => 200,
                    Err(e) if e.is_stale() => 401,
                    Err(_) => 403,
                }
            }
        };
        let expires: u32 = req.header("Expires").and_then(|e| e.parse().ok()).unwrap_or(3600);
        let mut resp = message::response_to(&req, status, Some("reg"));
        if status == 401 {
            for c in self.digest.challenges(now_secs, &[Algorithm::Sha256, Algorithm::Md5], false) {
                resp.add_header("WWW-Authenticate", c);
            }
        } else if status == 200 {
            if let Some(min) = self.min_expires.filter(|m| expires != 0 && expires < *m) {
                let mut r = message::response_to(&req, 423, Some("reg"));
                r.add_header("Min-Expires", min.to_string());
                return Some(message::response_bytes(&r));
            }
            let contact = req.header("Contact").unwrap_or_default();
            self.bindings.insert(contact.clone(), expires);
            if expires > 0 {
                resp.add_header("Contact", format!("{contact};expires={expires}"));
            }
        }
        Some(message::response_bytes(&resp))
    }
}

/// Phones and a registrar on a lossy in-memory network with a virtual clock.
pub struct SimNet {
    pub now: Instant,
    pub start: Instant,
    pub phones: Vec<(SocketAddr, Engine)>,
    pub events: Vec<Vec<Event>>,
    pub registrar: Option<TestRegistrar>,
    pub in_flight: VecDeque<(Peer, SocketAddr, Vec<u8>)>,
    /// Drop the next N datagrams matching a predicate.
    pub drop_rule: Option<DropRule>,
    pub next_rtp: u16,
    pub transmitted: Vec<String>,
    pub parks: Vec<(SocketAddr, ParkService)>,
    pub park_logs: Vec<String>,
}

impl SimNet {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            phones: vec![],
            events: vec![],
            registrar: None,
            in_flight: VecDeque::new(),
            drop_rule: None,
            next_rtp: 20000,
            transmitted: vec![],
            parks: vec![],
            park_logs: vec![],
        }
    }

    pub fn add(&mut self, mut acc: Account, port: u16) -> usize {
        if let Some(r) = &self.registrar {
            acc.outbound = Some(r.addr);
        }
        let local = HashMap::from([(Transport::Udp, addr(port))]);
        let mut e = Engine::new(acc, local);
        e.start(self.now);
        self.phones.push((addr(port), e));
        self.events.push(vec![]);
        self.phones.len() - 1
    }

    pub fn cmd(&mut self, phone: usize, line: &str) {
        let cmd = Command::parse_line(line).unwrap().unwrap();
        self.phones[phone].1.handle_command(self.now, cmd);
        self.settle();
    }

    /// Deliver everything in flight and all outputs, without advancing time.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            for i in 0..self.phones.len() {
                while let Some(o) = self.phones[i].1.poll_output() {
                    progressed = true;
                    let from = self.phones[i].0;
                    match o {
                        Output::Transmit { to, bytes } => {
                            self.in_flight.push_back((Peer { transport: to.transport, addr: from }, to.addr, bytes))
                        }
                        Output::Event(ev) => self.events[i].push(ev),
                        Output::AllocateMedia { call } => {
                            self.next_rtp += 2;
                            let rtp = addr(self.next_rtp);
                            self.phones[i].1.media_allocated(self.now, call, rtp);
                        }
                        _ => {}
                    }
                }
            }
            for (paddr, svc) in self.parks.iter_mut() {
                while let Some(o) = svc.poll_output() {
                    progressed = true;
                    match o {
                        crate::park::Output::Transmit { to, bytes } => {
                            self.in_flight.push_back((Peer { transport: to.transport, addr: *paddr }, to.addr, bytes))
                        }
                        crate::park::Output::Log(line) => self.park_logs.push(line),
                        other => self.park_logs.push(format!("{other:?}")),
                    }
                }
            }
            while let Some((source, to, bytes)) = self.in_flight.pop_front() {
                progressed = true;
                self.transmitted.push(String::from_utf8_lossy(&bytes).lines().next().unwrap_or_default().to_string());
                if let Some((pred, n)) = &mut self.drop_rule
                    && *n > 0
                    && pred(&bytes)
                {
                    *n -= 1;
                    continue;
                }
                if let Some(r) = self.registrar.as_mut().filter(|r| r.addr == to) {
                    let secs = (self.now - self.start).as_secs();
                    if let Some(resp) = r.handle(secs, &bytes) {
                        self.in_flight.push_back((Peer { transport: Transport::Udp, addr: to }, source.addr, resp));
                    }
                    continue;
                }
                if let Some(i) = self.phones.iter().position(|(a, _)| *a == to) {
                    self.phones[i].1.handle_datagram(self.now, &bytes, source);
                } else if let Some(i) = self.parks.iter().position(|(a, _)| *a == to) {
                    self.parks[i].1.handle_datagram(self.now, &bytes, source);
                }
            }
            if !progressed {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Advance the virtual clock, firing timers in order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let next = self
                .phones
                .iter()
                .filter_map(|(_, e)| e.poll_timeout())
                .chain(self.parks.iter().filter_map(|(_, p)| p.poll_timeout()))
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.phones.len() {
                        if self.phones[i].1.poll_timeout().is_some_and(|t| t <= self.now) {
                            self.phones[i].1.handle_timeout(self.now);
                        }
                    }
                    for (_, p) in self.parks.iter_mut() {
                        if p.poll_timeout().is_some_and(|t| t <= self.now) {
                            p.handle_timeout(self.now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    pub fn take(&mut self, phone: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[phone])
    }

    pub fn has(&self, phone: usize, pred: impl Fn(&Event) -> bool) -> bool {
        self.events[phone].iter().any(pred)
    }
}
