//! DNS SRV + A (RFC 3263): `orbitphone cli` finds its registrar for `sip:alice@example.test`
//! through `_sip._udp.example.test` SRV -> `pbx.example.test:PORT` and `pbx.example.test`
//! A -> 127.0.0.1, asked of a fake DNS server given with the hidden `--dns-server` flag.
//! A domain without records makes the CLI exit at start with an error naming the domain.
//!
//! The fake DNS server is written here from RFC 1035 on purpose, not with
//! `orbitphone::net::dns`, so a mistake shared by our builder and parser cannot hide.

mod common;
use common::*;
use orbitphone::sip::message::{self, MessageExt, Method, SipMessage};
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// (name, type) of every query the fake DNS server got.
type Queries = Arc<Mutex<Vec<(String, u16)>>>;

/// Name at `pos` of a query (no compression in queries), lower-cased, and the position
/// after it.
fn query_name(q: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(pos)?);
        if len == 0 {
            return Some((labels.join(".").to_ascii_lowercase(), pos + 1));
        }
        labels.push(String::from_utf8_lossy(q.get(pos + 1..pos + 1 + len)?).into_owned());
        pos += 1 + len;
    }
}

/// Owner = pointer to the question name (offset 12), class IN, TTL 60.
fn answer(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut a = vec![0xC0, 12];
    a.extend_from_slice(&rtype.to_be_bytes());
    a.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    a.extend_from_slice(rdata);
    a
}

/// A DNS server on 127.0.0.1:0 that knows two records, NXDOMAIN for anything else:
/// `_sip._udp.example.test` SRV 10 50 `sip_port` `pbx.example.test` (the target's
/// "example.test" compressed as a pointer into the question) and `pbx.example.test` A
/// 127.0.0.1.
fn fake_dns(sip_port: u16) -> (String, Queries) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind fake DNS");
    let addr = sock.local_addr().unwrap().to_string();
    let queries: Queries = Arc::default();
    let seen = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let Some((name, end)) = query_name(q, 12) else {
                continue;
            };
            let Some(qtype) = q.get(end..end + 2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                continue;
            };
            seen.lock().unwrap().push((name.clone(), qtype));
            let answers = match (name.as_str(), qtype) {
                ("_sip._udp.example.test", 33) => {
                    // Question name at 12: \x04_sip(12) \x04_udp(17) \x07example(22)...
                    let mut rdata = vec![0, 10, 0, 50];
                    rdata.extend_from_slice(&sip_port.to_be_bytes());
                    rdata.extend_from_slice(b"\x03pbx\xC0\x16");
                    Some(vec![answer(33, &rdata)])
                }
                ("pbx.example.test", 1) => Some(vec![answer(1, &[127, 0, 0, 1])]),
                _ => None,
            };
            // Header: same id; QR, RD (copied), RA; RCODE 0 or 3 (NXDOMAIN).
            let rd = q[2] & 0x01;
            let rcode = if answers.is_some() { 0 } else { 3 };
            let answers = answers.unwrap_or_default();
            let mut r = vec![q[0], q[1], 0x80 | rd, 0x80 | rcode, 0, 1];
            r.extend_from_slice(&(answers.len() as u16).to_be_bytes());
            r.extend_from_slice(&[0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end + 4]);
            for a in answers {
                r.extend_from_slice(&a);
            }
            let _ = sock.send_to(&r, from);
        }
    });
    (addr, queries)
}

/// A UDP registrar on 127.0.0.1:0 answering REGISTER with 200 (binding the Contact for
/// 300 s) and anything else with 200 too. Returns its port and the REGISTER Request-URIs.
fn fake_registrar() -> (u16, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind fake registrar");
    let port = sock.local_addr().unwrap().port();
    let registers: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = registers.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(SipMessage::Request(req)) = message::parse(&buf[..n]) else {
                continue;
            };
            let mut resp = message::response_to(&req, 200, Some("reg"));
            if req.method == Method::Register {
                seen.lock().unwrap().push(req.uri.to_string());
                if let Some(c) = req.header("Contact") {
                    resp.add_header("Contact", format!("{c};expires=300"));
                }
            }
            let _ = sock.send_to(&message::response_bytes(&resp), from);
        }
    });
    (port, registers)
}

#[test]
fn registers_at_the_srv_target() {
    let (sip_port, registers) = fake_registrar();
    let (dns_addr, queries) = fake_dns(sip_port);
    let mut orbit = Orbit::start(&["--account", "sip:alice@example.test", "--dns-server", &dns_addr], Some("pw"));
    let ev = orbit.wait_event("registered", T);
    // 300 is what our registrar granted: the REGISTER went to it, not somewhere else.
    assert_eq!(ev["expires"], 300, "{ev}");
    assert_eq!(ev["account"], "sip:alice@example.test", "{ev}");
    let uris = registers.lock().unwrap().clone();
    assert!(!uris.is_empty() && uris.iter().all(|u| u == "sip:example.test"), "REGISTER Request-URIs: {uris:?}");
    let asked = queries.lock().unwrap().clone();
    assert_eq!(asked.first(), Some(&("_sip._udp.example.test".to_string(), 33)), "queries: {asked:?}");
    assert!(asked.contains(&("pbx.example.test".to_string(), 1)), "queries: {asked:?}");
    // The domain itself was never asked for: the SRV record was enough.
    assert!(!asked.iter().any(|(n, _)| n == "example.test"), "queries: {asked:?}");
    orbit.close_stdin();
    assert_eq!(orbit.wait_exit(T), Some(0));
}

#[test]
fn a_domain_without_records_is_an_error_naming_it() {
    let (sip_port, registers) = fake_registrar();
    let (dns_addr, queries) = fake_dns(sip_port);
    let mut orbit = Orbit::start(&["--account", "sip:alice@nowhere.test", "--dns-server", &dns_addr], Some("pw"));
    // The CLI resolves the registrar before it starts: it exits at once with status 2
    // and `orbitphone: <reason>` on stderr, and prints no event.
    assert_eq!(orbit.wait_exit(T), Some(2), "stderr: {}", std::fs::read_to_string(&orbit.log).unwrap_or_default());
    let stderr = std::fs::read_to_string(&orbit.log).unwrap();
    assert!(stderr.contains("orbitphone: cannot resolve nowhere.test: no SRV/A records"), "stderr: {stderr}");
    assert!(orbit.all_events().is_empty(), "events: {:?}", orbit.all_events());
    assert!(registers.lock().unwrap().is_empty());
    let asked = queries.lock().unwrap().clone();
    for q in [("_sip._udp.nowhere.test", 33), ("nowhere.test", 1), ("nowhere.test", 28)] {
        assert!(asked.contains(&(q.0.to_string(), q.1)), "{q:?} not asked; queries: {asked:?}");
    }
}
