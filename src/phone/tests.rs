//! Deterministic, in-memory tests of the engine: several phones on a simulated network
//! with a virtual clock, optional packet loss, and a tiny digest registrar.

use super::api::Event;
use crate::sim::{SimNet, TestRegistrar, addr};
use crate::sip::digest::DigestServer;
use crate::sip::transport::{Peer, Transport};
use std::collections::HashMap;
use std::time::Duration;

fn account(user: &str, _port: u16) -> super::account::Account {
    crate::sim::account(user)
}

fn established(ev: &Event) -> bool {
    matches!(ev, Event::CallEstablished { .. })
}

fn ended(ev: &Event) -> Option<&str> {
    match ev {
        Event::CallEnded { reason, .. } => Some(reason),
        _ => None,
    }
}

/// Two phones in a call: 0 called 1 and 1 answered.
fn call_up() -> SimNet {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.add(account("bob", 5062), 5062);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    assert!(net.has(1, |e| matches!(e, Event::CallIncoming { name: Some(n), .. } if n == "ALICE")));
    assert!(net.has(0, |e| matches!(e, Event::CallRinging { .. })));
    net.cmd(1, "answer");
    assert!(net.has(0, established), "caller: {:?}", net.events[0]);
    assert!(net.has(1, established), "callee: {:?}", net.events[1]);
    net.take(0);
    net.take(1);
    net
}

#[test]
fn call_answer_hold_resume_hangup() {
    let mut net = call_up();
    net.cmd(0, "hold");
    assert!(net.has(0, |e| matches!(e, Event::CallHeld { by: "local", .. })));
    assert!(net.has(1, |e| matches!(e, Event::CallHeld { by: "remote", .. })));
    net.cmd(0, "resume");
    assert!(net.has(0, |e| matches!(e, Event::CallResumed { .. })));
    assert!(net.has(1, |e| matches!(e, Event::CallResumed { .. })));
    net.cmd(1, "hangup");
    assert_eq!(net.events[1].iter().filter_map(ended).collect::<Vec<_>>(), vec!["local hangup"]);
    assert_eq!(net.events[0].iter().filter_map(ended).collect::<Vec<_>>(), vec!["remote hangup"]);
    net.advance(Duration::from_secs(40));
    assert!(net.phones.iter().all(|(_, e)| e.tl.is_empty()), "no transaction leaks");
}

#[test]
fn decline_is_reported_with_the_status() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.add(account("bob", 5062), 5062);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    net.cmd(1, "hangup");
    assert!(net.events[0].iter().filter_map(ended).any(|r| r == "486 Busy Here"), "{:?}", net.events[0]);
}

#[test]
fn cancel_while_ringing() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.add(account("bob", 5062), 5062);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    net.cmd(0, "hangup");
    assert!(net.events[1].iter().filter_map(ended).any(|r| r == "cancelled by caller"), "{:?}", net.events[1]);
    assert!(net.events[0].iter().filter_map(ended).any(|r| r == "cancelled"), "{:?}", net.events[0]);
}

#[test]
fn lost_invite_and_lost_200_are_retransmitted() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    let mut bob = account("bob", 5062);
    bob.auto_answer = true;
    net.add(bob, 5062);
    net.drop_rule = Some((Box::new(|b: &[u8]| b.starts_with(b"INVITE") || b.starts_with(b"SIP/2.0 200")), 2));
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    assert!(!net.has(0, established));
    net.advance(Duration::from_secs(3));
    assert!(net.has(0, established), "{:?}", net.events[0]);
    assert!(net.has(1, established), "{:?}", net.events[1]);
}

#[test]
fn unanswered_invite_times_out() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.cmd(0, "dial sip:nobody@127.0.0.1:5999");
    net.advance(Duration::from_secs(40));
    assert!(net.events[0].iter().filter_map(ended).any(|r| r.starts_with("timeout")), "{:?}", net.events[0]);
}

#[test]
fn blind_transfer_connects_transferee_to_target() {
    let mut net = call_up();
    let mut carol = account("carol", 5064);
    carol.auto_answer = true;
    net.add(carol, 5064);
    net.cmd(0, "transfer sip:carol@127.0.0.1:5064");
    assert!(
        net.has(1, |e| matches!(e, Event::TransferRequested { target, .. } if target == "sip:carol@127.0.0.1:5064"))
    );
    assert!(net.has(2, established), "carol: {:?}", net.events[2]);
    assert!(net.has(0, |e| matches!(e, Event::TransferProgress { status: 200, .. })), "{:?}", net.events[0]);
    assert!(net.events[0].iter().filter_map(ended).any(|r| r == "transferred"), "{:?}", net.events[0]);
    // Bob's original call ends, the new call to Carol stays up.
    assert_eq!(net.events[1].iter().filter(|e| established(e)).count(), 1);
    assert_eq!(net.events[1].iter().filter_map(ended).count(), 1);
}

#[test]
fn failed_blind_transfer_keeps_the_call() {
    let mut net = call_up();
    let carol = account("carol", 5064);
    net.add(carol, 5064);
    net.cmd(0, "transfer sip:carol@127.0.0.1:5064");
    net.cmd(2, "hangup");
    assert!(net.has(0, |e| matches!(e, Event::TransferProgress { status: 486, .. })), "{:?}", net.events[0]);
    assert!(net.events[0].iter().filter_map(ended).next().is_none(), "alice keeps her call: {:?}", net.events[0]);
    net.cmd(0, "status");
    assert!(net.has(0, |e| matches!(e, Event::Status { calls, .. } if calls.iter().any(|c| c.state == "established"))));
}

#[test]
fn attended_transfer_replaces_the_consultation_call() {
    let mut net = call_up(); // alice(0) -> bob(1), call 1
    let mut carol = account("carol", 5064);
    carol.auto_answer = true;
    net.add(carol, 5064);
    net.cmd(0, "dial sip:carol@127.0.0.1:5064"); // alice call 2
    assert!(net.has(2, established));
    net.cmd(0, "transfer-attended 1 2");
    // Bob sends INVITE with Replaces to Carol; Carol accepts and ends her call with Alice.
    assert!(net.has(2, |e| matches!(e, Event::CallIncoming { replaces: Some(_), .. })), "{:?}", net.events[2]);
    assert_eq!(net.events[2].iter().filter(|e| established(e)).count(), 2);
    assert!(net.events[2].iter().filter_map(ended).any(|r| r == "replaced"), "{:?}", net.events[2]);
    let alice_ends: Vec<&str> = net.events[0].iter().filter_map(ended).collect();
    assert_eq!(alice_ends.len(), 2, "both of alice's calls end: {:?}", net.events[0]);
}

#[test]
fn invite_with_replaces_for_unknown_dialog_gets_481() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.add(account("bob", 5062), 5062);
    let raw = "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:5060>\r\nReplaces: nope;to-tag=a;from-tag=b\r\nContent-Length: 0\r\n\r\n";
    net.in_flight.push_back((
        Peer { transport: Transport::Udp, addr: addr(5060) },
        addr(5062),
        raw.as_bytes().to_vec(),
    ));
    net.settle();
    assert!(net.transmitted.iter().any(|l| l.starts_with("SIP/2.0 481")), "{:?}", net.transmitted);
}

#[test]
fn malformed_and_unknown_requests_get_400_and_501_and_the_phone_goes_on() {
    let mut net = SimNet::new();
    net.add(account("alice", 5060), 5060);
    net.add(account("bob", 5062), 5062);
    let bad = "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKm1\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let unknown = "FOO sip:bob@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKm2\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: u1\r\nCSeq: 1 FOO\r\nContent-Length: 0\r\n\r\n";
    for raw in [bad, unknown, "\u{0}\u{1}garbage"] {
        net.in_flight.push_back((
            Peer { transport: Transport::Udp, addr: addr(5060) },
            addr(5062),
            raw.as_bytes().to_vec(),
        ));
    }
    net.settle();
    assert!(net.transmitted.iter().any(|l| l == "SIP/2.0 400 missing Call-ID"), "{:?}", net.transmitted);
    assert!(net.transmitted.iter().any(|l| l.starts_with("SIP/2.0 501")), "{:?}", net.transmitted);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    assert!(net.has(1, |e| matches!(e, Event::CallIncoming { .. })));
}

#[test]
fn two_calls_at_once_call_waiting() {
    let mut net = call_up();
    net.add(account("carol", 5064), 5064);
    net.cmd(2, "dial sip:bob@127.0.0.1:5062");
    assert!(net.has(1, |e| matches!(e, Event::CallIncoming { call: 2, .. })), "{:?}", net.events[1]);
    net.cmd(1, "hold 1");
    net.cmd(1, "answer 2");
    assert!(net.has(2, established));
    net.cmd(1, "status");
    let Some(Event::Status { calls, .. }) = net.events[1].iter().rev().find(|e| matches!(e, Event::Status { .. }))
    else {
        panic!()
    };
    assert_eq!(calls.iter().filter(|c| c.state == "established").count(), 2);
    assert!(calls.iter().any(|c| c.call == 1 && c.held));
}

fn registered(ev: &Event) -> bool {
    matches!(ev, Event::Registered { .. })
}

fn registrar(min_expires: Option<u32>) -> TestRegistrar {
    TestRegistrar {
        addr: addr(5090),
        digest: DigestServer::with_secret("127.0.0.1", 300, [7; 32]),
        min_expires,
        bindings: HashMap::new(),
    }
}

#[test]
fn register_with_sha256_digest_refresh_and_unregister() {
    let mut net = SimNet::new();
    net.registrar = Some(registrar(None));
    let mut acc = account("alice", 5060);
    acc.register = true;
    acc.expires = 120;
    net.add(acc, 5060);
    net.settle();
    assert!(net.has(0, |e| matches!(e, Event::Registered { expires: 120, .. })), "{:?}", net.events[0]);
    net.take(0);
    // Refresh before expiry (at 80 %), with the cached nonce (nc=2), no new challenge.
    net.advance(Duration::from_secs(100));
    assert!(net.has(0, registered), "{:?}", net.events[0]);
    net.cmd(0, "quit");
    assert!(net.has(0, |e| matches!(e, Event::Unregistered { .. })));
    assert!(net.has(0, |e| *e == Event::Stopped));
    assert_eq!(net.registrar.as_ref().unwrap().bindings.values().copied().collect::<Vec<_>>(), vec![0]);
}

#[test]
fn wrong_password_is_reported_as_such() {
    let mut net = SimNet::new();
    net.registrar = Some(registrar(None));
    let mut acc = account("alice", 5060);
    acc.register = true;
    acc.password = Some("nope".into());
    net.add(acc, 5060);
    net.settle();
    assert!(
        net.has(0, |e| matches!(e, Event::RegistrationFailed { reason, .. } if reason.contains("wrong password"))),
        "{:?}",
        net.events[0]
    );
}

#[test]
fn interval_too_brief_uses_min_expires() {
    let mut net = SimNet::new();
    net.registrar = Some(registrar(Some(900)));
    let mut acc = account("alice", 5060);
    acc.register = true;
    acc.expires = 120;
    net.add(acc, 5060);
    net.settle();
    assert!(net.has(0, |e| matches!(e, Event::Registered { expires: 900, .. })), "{:?}", net.events[0]);
}

#[test]
fn registrar_gone_is_timeout_then_recovers() {
    let mut net = SimNet::new();
    net.registrar = Some(registrar(None));
    let mut acc = account("alice", 5060);
    acc.register = true;
    net.drop_rule = Some((Box::new(|b: &[u8]| b.starts_with(b"REGISTER")), 11));
    net.add(acc, 5060);
    net.advance(Duration::from_secs(40));
    assert!(
        net.has(0, |e| matches!(e, Event::RegistrationFailed { reason, .. } if reason.starts_with("timeout"))),
        "{:?}",
        net.events[0]
    );
    net.advance(Duration::from_secs(60));
    assert!(net.has(0, registered), "re-registers after the network comes back: {:?}", net.events[0]);
}

#[test]
fn options_keepalive_runs_and_a_dead_path_triggers_re_registration() {
    let mut net = SimNet::new();
    net.registrar = Some(registrar(None));
    let mut acc = account("alice", 5060);
    acc.register = true;
    acc.keepalive_secs = 10;
    net.add(acc, 5060);
    net.settle();
    assert!(net.has(0, registered));
    net.advance(Duration::from_secs(25));
    let options = net.transmitted.iter().filter(|l| l.starts_with("OPTIONS ")).count();
    assert!(options >= 2, "keepalives sent: {:?}", net.transmitted);
    // The path dies: OPTIONS go unanswered, so the phone re-registers to find out.
    net.take(0);
    let registers_before = net.transmitted.iter().filter(|l| l.starts_with("REGISTER ")).count();
    net.drop_rule = Some((Box::new(|b: &[u8]| b.starts_with(b"OPTIONS")), 1000));
    net.advance(Duration::from_secs(60));
    let registers_after = net.transmitted.iter().filter(|l| l.starts_with("REGISTER ")).count();
    assert!(registers_after > registers_before, "no re-registration after keepalive loss");
    assert!(net.has(0, registered), "{:?}", net.events[0]);
}

#[test]
fn mute_and_unmute_are_reported() {
    let mut net = call_up();
    net.cmd(0, "mute");
    assert!(net.has(0, |e| matches!(e, Event::CallMuted { muted: true, .. })));
    net.cmd(0, "unmute 1");
    assert!(net.has(0, |e| matches!(e, Event::CallMuted { muted: false, .. })));
    net.cmd(0, "mute 9");
    assert!(net.has(0, |e| matches!(e, Event::Error { message, .. } if message == "no call 9")));
}

#[test]
fn media_stats_are_reported_and_shown_in_status() {
    let mut net = call_up();
    let stats = super::api::CallStats {
        codec: "PCMU".into(),
        packets_sent: 250,
        packets_received: 248,
        packets_lost: 2,
        loss_percent: 0.8,
        jitter_ms: 1.5,
        jitter_buffer_ms: 40,
        rtt_ms: None,
        remote_loss_percent: None,
        remote_jitter_ms: None,
        rtcp_received: 0,
        srtp: false,
    };
    net.phones[0].1.media_stats(1, stats.clone());
    // A call that does not exist (any more) is ignored.
    net.phones[0].1.media_stats(99, stats.clone());
    net.cmd(0, "status");
    let pushed: Vec<&Event> = net.events[0].iter().filter(|e| matches!(e, Event::CallStats { .. })).collect();
    assert_eq!(pushed, vec![&Event::CallStats { call: 1, stats: stats.clone() }]);
    let json = serde_json::to_string(pushed[0]).unwrap();
    assert!(json.starts_with(r#"{"event":"call_stats","call":1,"stats":{"codec":"PCMU","packets_sent":250"#), "{json}");
    assert!(json.contains(r#""rtt_ms":null"#), "an unknown round trip is null: {json}");
    let Some(Event::Status { calls, .. }) = net.events[0].iter().find(|e| matches!(e, Event::Status { .. })) else {
        panic!("no status: {:?}", net.events[0])
    };
    assert_eq!(calls[0].stats.as_ref(), Some(&stats));
    // Before any figures, status has no stats field at all (the old output, unchanged).
    net.cmd(1, "status");
    let json = serde_json::to_string(net.events[1].last().unwrap()).unwrap();
    assert!(json.contains(r#""event":"status""#) && !json.contains("stats"), "{json}");
}

/// Alice (park extension `700` on a "PBX" at :5064) in a call with Bob.
fn call_up_with_park_extension(pbx_answers: bool) -> SimNet {
    let mut net = SimNet::new();
    let mut alice = crate::sim::account("alice");
    // The domain is the PBX, so "700" completes to sip:700@127.0.0.1:5064.
    alice.aor = "sip:alice@127.0.0.1:5064".into();
    alice.park_extension = Some("700".into());
    net.add(alice, 5060);
    net.add(account("bob", 5062), 5062);
    let mut pbx = crate::sim::account("700");
    pbx.auto_answer = pbx_answers;
    net.add(pbx, 5064);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    net.cmd(1, "answer");
    assert!(net.has(0, established));
    net
}

#[test]
fn park_in_extension_mode_transfers_to_the_extension() {
    let mut net = call_up_with_park_extension(true);
    net.cmd(0, "park");
    assert!(net.has(0, |e| matches!(e, Event::ParkPending { call: 1 })), "{:?}", net.events[0]);
    // Bob was REFERred to the extension, not to the park service.
    assert!(
        net.has(1, |e| matches!(e, Event::TransferRequested { target, .. } if target == "sip:700@127.0.0.1:5064")),
        "{:?}",
        net.events[1]
    );
    assert!(
        net.has(2, |e| matches!(e, Event::CallIncoming { from, .. } if from.contains("bob"))),
        "{:?}",
        net.events[2]
    );
    assert!(net.has(2, established));
    assert!(
        net.has(0, |e| matches!(e, Event::ParkedExtension { call: 1, extension } if extension == "700")),
        "{:?}",
        net.events[0]
    );
    assert!(net.events[0].iter().filter_map(ended).any(|r| r == "parked"), "{:?}", net.events[0]);
    assert!(!net.has(0, |e| matches!(e, Event::ParkFailed { .. })));
}

#[test]
fn park_extension_that_refuses_is_a_park_failure_and_keeps_the_call() {
    let mut net = call_up_with_park_extension(false);
    net.cmd(0, "park");
    assert!(net.has(2, |e| matches!(e, Event::CallIncoming { .. })));
    net.cmd(2, "hangup");
    assert!(
        net.has(
            0,
            |e| matches!(e, Event::ParkFailed { call: 1, reason } if reason.contains("700") && reason.contains("486"))
        ),
        "{:?}",
        net.events[0]
    );
    assert!(net.events[0].iter().filter_map(ended).next().is_none(), "alice keeps her call: {:?}", net.events[0]);
    assert!(!net.has(0, |e| matches!(e, Event::ParkedExtension { .. })));
}

#[test]
fn attended_park_by_extension_lets_the_user_hear_the_slot_then_completes() {
    let mut net = SimNet::new();
    let mut alice = crate::sim::account("alice");
    alice.aor = "sip:alice@127.0.0.1:5064".into();
    alice.park_extension = Some("700".into());
    alice.park_attended = true;
    net.add(alice, 5060);
    net.add(account("bob", 5062), 5062);
    let mut pbx = crate::sim::account("700");
    pbx.auto_answer = true;
    net.add(pbx, 5064);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    net.cmd(1, "answer");
    net.cmd(0, "park");
    // Bob is held, the PBX's extension answers Alice (she hears the slot): nothing moved yet.
    assert!(net.has(1, |e| matches!(e, Event::CallHeld { by: "remote", .. })), "{:?}", net.events[1]);
    assert!(
        net.has(0, |e| matches!(e, Event::ParkConsulting { call: 1, consult: 2, extension } if extension == "700")),
        "{:?}",
        net.events[0]
    );
    assert_eq!(net.events[2].iter().filter(|e| established(e)).count(), 1);
    assert!(!net.has(1, |e| matches!(e, Event::TransferRequested { .. })));
    // Park again, on the consultation call: attended transfer, Bob replaces Alice at the PBX.
    net.cmd(0, "park 2");
    // A second press while the transfer runs changes nothing.
    net.cmd(0, "park 1");
    assert!(net.has(2, |e| matches!(e, Event::CallIncoming { replaces: Some(_), .. })), "{:?}", net.events[2]);
    assert!(
        net.has(0, |e| matches!(e, Event::ParkedExtension { call: 1, extension } if extension == "700")),
        "{:?}",
        net.events[0]
    );
    assert!(!net.has(0, |e| matches!(e, Event::ParkFailed { .. })), "{:?}", net.events[0]);
    assert_eq!(net.events[0].iter().filter_map(ended).count(), 2, "both of alice's calls end: {:?}", net.events[0]);
}

#[test]
fn attended_park_fails_readably_when_the_extension_hangs_up() {
    let mut net = SimNet::new();
    let mut alice = crate::sim::account("alice");
    alice.aor = "sip:alice@127.0.0.1:5064".into();
    alice.park_extension = Some("700".into());
    alice.park_attended = true;
    net.add(alice, 5060);
    net.add(account("bob", 5062), 5062);
    net.add(crate::sim::account("700"), 5064);
    net.cmd(0, "dial sip:bob@127.0.0.1:5062");
    net.cmd(1, "answer");
    net.cmd(0, "park");
    net.cmd(2, "hangup");
    assert!(
        net.has(0, |e| matches!(e, Event::ParkFailed { call: 1, reason } if reason.contains("700") && reason.contains("on hold"))),
        "{:?}",
        net.events[0]
    );
    // The call with Bob is still there (on hold), and parking can start over.
    assert_eq!(net.events[0].iter().filter_map(ended).count(), 1, "{:?}", net.events[0]);
}
