//! The receive path under arbitrary bytes, shared by the cargo-fuzz target
//! (`fuzz/`) and the deterministic mutation test (`tests/fuzz_parse.rs`): one input
//! goes through the parser, a transaction layer (answered, timers run), an engine and
//! the stream framer, and every invariant is asserted. Not part of the public API.

use crate::phone::account::Account;
use crate::phone::{Engine, Output};
use crate::sip::message::{self, ParseError};
use crate::sip::transaction::{Output as TxOutput, T1, TransactionLayer, TxEvent};
use crate::sip::transport::{Frame, Peer, StreamFramer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn source() -> Peer {
    Peer { transport: Transport::Udp, addr: SocketAddr::from(([127, 0, 0, 1], 5099)) }
}

fn engine() -> Engine {
    let account = Account {
        display_name: Some("Fuzz".into()),
        password: Some("secret".into()),
        auto_answer: true,
        ..Account::new("sip:user@example.com")
    };
    let local = HashMap::from([(Transport::Udp, SocketAddr::from(([127, 0, 0, 1], 5060)))]);
    Engine::new(account, local)
}

/// What the parser made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed.
    Accepted,
    /// Refused with an answer (400/501/505/513).
    Answered,
    /// Refused silently (responses, garbage).
    Dropped,
}

/// One input through every consumer of received bytes. Panics on any broken invariant.
pub fn exercise(data: &[u8]) -> Outcome {
    let now = Instant::now();
    let later = [now + T1, now + Duration::from_secs(40), now + Duration::from_secs(3600)];

    let parsed = message::parse(data);
    match &parsed {
        Ok(msg) => {
            let msg = msg.clone();
            let bytes = message::message_bytes(&msg);
            if let Err(e) = message::parse(&bytes) {
                panic!("accepted, but our own serialisation is refused ({e}):\n{}", String::from_utf8_lossy(&bytes));
            }
            let mut tl = TransactionLayer::new();
            tl.receive(now, msg, source());
            let mut requests = Vec::new();
            while let Some(out) = tl.poll_output() {
                match out {
                    TxOutput::Transmit { bytes, .. } => check_sent(&bytes),
                    TxOutput::Event(TxEvent::Request { key, request, .. }) => requests.push((key, request)),
                    TxOutput::Event(_) => {}
                }
            }
            for (key, request) in requests {
                for code in [100, 180, 200] {
                    tl.respond(now, &key, message::response_to(&request, code, Some("fuzz")));
                }
            }
            for t in later {
                tl.handle_timeout(t);
            }
            while let Some(out) = tl.poll_output() {
                if let TxOutput::Transmit { bytes, .. } = out {
                    check_sent(&bytes);
                }
            }
        }
        Err(err) => check_refusal(data, err),
    }

    let mut e = engine();
    e.handle_datagram(now, data, source());
    match &parsed {
        Ok(_) => drain(&mut e, now),
        Err(err) => {
            // Refused: the engine sends the parser's answer (which copies the broken
            // headers as they came, so it need not parse) and nothing else.
            let sent: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
            match (err.reply(), &sent[..]) {
                (None, []) => {}
                (Some(reply), [Output::Transmit { to, bytes }]) => {
                    assert_eq!(*to, source(), "answers go back to the source");
                    assert_eq!(bytes.get(..12), reply.get(..12), "the parser's answer is what is sent");
                }
                (reply, sent) => {
                    panic!("refused input: expected {reply:?} to be sent, engine did {sent:?}")
                }
            }
        }
    }
    for t in later {
        e.handle_timeout(t);
        drain(&mut e, t);
    }

    // The same bytes on a stream, arriving in two reads cut at a data-dependent point.
    let cut = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    let mut framer = StreamFramer::default();
    let mut framed = 0;
    for part in [&data[..cut], &data[cut..]] {
        framer.push(part);
        while let Some(frame) = framer.next_frame() {
            framed += match frame {
                Frame::Message(m) => {
                    assert!(!m.is_empty(), "empty frame");
                    if m != data {
                        let _ = message::parse(&m); // the whole input was parsed above
                    }
                    m.len()
                }
                Frame::Ping => 4,
                Frame::Pong => 2,
            };
        }
    }
    assert_eq!(framed + framer.pending(), data.len(), "the framer lost or invented bytes");
    match parsed {
        Ok(_) => Outcome::Accepted,
        Err(e) if e.reply().is_some() => Outcome::Answered,
        Err(_) => Outcome::Dropped,
    }
}

/// A refusal answers requests only, with a status the parser is meant to use.
fn check_refusal(data: &[u8], err: &ParseError) {
    let Some(reply) = err.reply() else { return };
    let reply = String::from_utf8_lossy(reply);
    let status = reply.get(8..11).unwrap_or_default();
    assert!(reply.starts_with("SIP/2.0 "), "{reply}");
    assert!(["400", "501", "505", "513"].contains(&status), "{status}: {reply}");
    assert!(!data.starts_with(b"SIP/"), "a response was answered: {reply}");
    assert!(!data.starts_with(b"ACK "), "an ACK was answered: {reply}");
    assert!(reply.ends_with("\r\n\r\n"), "{reply}");
}

/// Everything we send must be a message we would accept ourselves.
fn check_sent(bytes: &[u8]) {
    if let Err(e) = message::parse(bytes) {
        panic!("we sent a message we refuse ({e}):\n{}", String::from_utf8_lossy(bytes));
    }
}

fn drain(e: &mut Engine, now: Instant) {
    let mut steps = 0;
    while let Some(out) = e.poll_output() {
        steps += 1;
        assert!(steps < 10_000, "the engine does not stop producing output");
        match out {
            Output::Transmit { bytes, .. } => check_sent(&bytes),
            Output::AllocateMedia { call } => {
                e.media_allocated(now, call, SocketAddr::from(([127, 0, 0, 1], 40000)));
            }
            _ => {}
        }
    }
}

/// One datagram through the RTCP receive path: the compound parser, an [`RtcpSession`]
/// and an SRTCP context (as if it arrived on a keyed call). Panics on a broken
/// invariant: an accepted packet (other than unknown types, whose padding is
/// normalised) that does not survive serialisation. Returns whether it parsed.
///
/// [`RtcpSession`]: crate::media::rtcp::RtcpSession
pub fn exercise_rtcp(data: &[u8]) -> bool {
    use crate::media::rtcp::{RtcpPacket, RtcpSession, build_compound, parse_compound};
    use crate::media::srtp::{CryptoSuite, MasterKey, SrtpContext};
    let parsed = parse_compound(data);
    if let Ok(packets) = &parsed
        && packets.iter().all(|p| !matches!(p, RtcpPacket::Other { .. }))
    {
        let again = parse_compound(&build_compound(packets));
        assert_eq!(again.as_ref(), Ok(packets), "accepted RTCP does not survive a round trip");
    }
    let mut session = RtcpSession::new(1, "fuzz@example.com", 8000, 0, 0, 7);
    session.on_rtp_received(0, 2, 1, 160, true);
    session.on_rtcp(1_000, data);
    let _ = session.handle_timeout(10_000_000);
    let _ = session.stats();
    let key = MasterKey::from_parts(&[7; 16], &[9; 14]);
    let _ = SrtpContext::new(CryptoSuite::AesCm128HmacSha1_80, &key).unprotect_rtcp(data);
    parsed.is_ok()
}
