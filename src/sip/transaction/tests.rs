use super::*;
use crate::sip::message::{MessageExt, parse, request, response_to};
use crate::sip::transport::Transport;

fn peer(t: Transport) -> Peer {
    Peer { transport: t, addr: "127.0.0.1:5070".parse().unwrap() }
}

fn req(method: Method) -> Request {
    let m = method.to_string();
    request(
        method,
        "sip:bob@127.0.0.1",
        vec![
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest1;rport".into()),
            ("Max-Forwards", "70".into()),
            ("From", "<sip:alice@127.0.0.1>;tag=a1".into()),
            ("To", "<sip:bob@127.0.0.1>".into()),
            ("Call-ID", "c1".into()),
            ("CSeq", format!("1 {m}")),
        ],
        vec![],
    )
    .unwrap()
}

fn drain(layer: &mut TransactionLayer) -> (Vec<Vec<u8>>, Vec<TxEvent>) {
    let (mut tx, mut ev) = (vec![], vec![]);
    while let Some(o) = layer.poll_output() {
        match o {
            Output::Transmit { bytes, .. } => tx.push(bytes),
            Output::Event(e) => ev.push(e),
        }
    }
    (tx, ev)
}

/// Run the layer's timers up to `until`, returning the instants of each transmission.
fn run_until(layer: &mut TransactionLayer, start: Instant, until: Duration) -> (Vec<Duration>, Vec<TxEvent>) {
    let (mut sends, mut events) = (vec![], vec![]);
    while let Some(t) = layer.poll_timeout() {
        if t > start + until {
            break;
        }
        layer.handle_timeout(t);
        let (tx, ev) = drain(layer);
        sends.extend(tx.iter().map(|_| t - start));
        events.extend(ev);
    }
    (sends, events)
}

#[test]
fn non_invite_udp_retransmits_with_backoff_then_times_out() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    l.send_request(t0, req(Method::Options), peer(Transport::Udp));
    assert_eq!(drain(&mut l).0.len(), 1);
    let (sends, events) = run_until(&mut l, t0, Duration::from_secs(40));
    let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
    assert_eq!(&ms[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
    assert!(matches!(events.as_slice(), [TxEvent::Timeout { .. }]));
    assert!(sends.last().unwrap().as_millis() <= 32_000);
    assert!(l.is_empty());
}

#[test]
fn non_invite_tcp_never_retransmits() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    l.send_request(t0, req(Method::Options), peer(Transport::Tcp));
    drain(&mut l);
    let (sends, events) = run_until(&mut l, t0, Duration::from_secs(40));
    assert!(sends.is_empty());
    assert!(matches!(events.as_slice(), [TxEvent::Timeout { .. }]));
}

#[test]
fn invite_non_2xx_final_is_acked_by_the_transaction() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let invite = req(Method::Invite);
    l.send_request(t0, invite.clone(), peer(Transport::Udp));
    drain(&mut l);
    let busy = response_to(&invite, 486, Some("b1"));
    l.receive(t0 + Duration::from_millis(100), SipMessage::Response(busy.clone()), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert_eq!(sent.len(), 1);
    let SipMessage::Request(ack) = parse(&sent[0]).unwrap() else { panic!("ACK expected") };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.top_branch().as_deref(), Some("z9hG4bKtest1"));
    assert_eq!(ack.to_tag().as_deref(), Some("b1"));
    assert!(matches!(&events[..], [TxEvent::Response { .. }]));
    // A retransmitted 486 is absorbed and re-ACKed, not passed up again.
    l.receive(t0 + Duration::from_millis(600), SipMessage::Response(busy), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert_eq!((sent.len(), events.len()), (1, 0));
    let (_, _) = run_until(&mut l, t0, Duration::from_secs(40));
    assert!(l.is_empty());
}

#[test]
fn invite_2xx_retransmissions_reach_the_tu() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let invite = req(Method::Invite);
    l.send_request(t0, invite.clone(), peer(Transport::Udp));
    drain(&mut l);
    let ok = response_to(&invite, 200, Some("b1"));
    for i in 0..3 {
        l.receive(t0 + Duration::from_millis(100 * i), SipMessage::Response(ok.clone()), peer(Transport::Udp));
        let (sent, events) = drain(&mut l);
        assert!(sent.is_empty(), "the TU, not the transaction, ACKs a 2xx");
        assert_eq!(events.len(), 1);
    }
    run_until(&mut l, t0, Duration::from_secs(40));
    assert!(l.is_empty());
}

#[test]
fn server_invite_retransmits_2xx_until_ack() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let invite = req(Method::Invite);
    l.receive(t0, SipMessage::Request(invite.clone()), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert!(String::from_utf8_lossy(&sent[0]).starts_with("SIP/2.0 100"));
    let TxEvent::Request { key, request, .. } = &events[0] else { panic!() };
    // rport/received stamped into the Via the TU sees.
    assert!(request.header("Via").unwrap().contains("rport=5070"));
    // A retransmitted INVITE is absorbed and answered with the last response.
    l.receive(t0 + Duration::from_millis(10), SipMessage::Request(invite.clone()), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert_eq!((sent.len(), events.len()), (1, 0));
    l.respond(t0 + Duration::from_millis(20), key, response_to(request, 200, Some("t1")));
    assert_eq!(drain(&mut l).0.len(), 1);
    let (sends, _) = run_until(&mut l, t0 + Duration::from_millis(20), Duration::from_millis(1600));
    assert_eq!(sends.iter().map(|d| d.as_millis()).collect::<Vec<_>>(), vec![500, 1500]);
    let mut ack = req(Method::Ack);
    ack.set_header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack");
    ack.set_header("CSeq", "1 ACK");
    l.receive(t0 + Duration::from_secs(2), SipMessage::Request(ack), peer(Transport::Udp));
    let (_, events) = drain(&mut l);
    assert!(matches!(&events[..], [TxEvent::Request { request, .. }] if request.method == Method::Ack));
    assert!(l.poll_timeout().is_none(), "no more 2xx retransmissions after the ACK");
}

#[test]
fn server_invite_without_ack_reports_ack_timeout() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let invite = req(Method::Invite);
    l.receive(t0, SipMessage::Request(invite.clone()), peer(Transport::Udp));
    let (_, events) = drain(&mut l);
    let TxEvent::Request { key, .. } = &events[0] else { panic!() };
    l.respond(t0, key, response_to(&invite, 486, Some("t1")));
    drain(&mut l);
    let (_, events) = run_until(&mut l, t0, Duration::from_secs(40));
    assert!(matches!(&events[..], [TxEvent::AckTimeout { .. }]));
    assert!(l.is_empty());
}

#[test]
fn cancel_matches_pending_invite() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let invite = req(Method::Invite);
    l.receive(t0, SipMessage::Request(invite), peer(Transport::Udp));
    drain(&mut l);
    l.receive(t0, SipMessage::Request(req(Method::Cancel)), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert!(String::from_utf8_lossy(&sent[0]).starts_with("SIP/2.0 200"));
    assert!(matches!(&events[..], [TxEvent::Cancelled { invite }] if invite.method == "INVITE"));
}

#[test]
fn non_invite_server_answers_retransmissions_from_cache() {
    let mut l = TransactionLayer::new();
    let t0 = Instant::now();
    let bye = req(Method::Bye);
    l.receive(t0, SipMessage::Request(bye.clone()), peer(Transport::Udp));
    let (_, events) = drain(&mut l);
    let TxEvent::Request { key, .. } = &events[0] else { panic!() };
    l.respond(t0, key, response_to(&bye, 200, None));
    drain(&mut l);
    l.receive(t0 + Duration::from_millis(500), SipMessage::Request(bye), peer(Transport::Udp));
    let (sent, events) = drain(&mut l);
    assert_eq!((sent.len(), events.len()), (1, 0));
    run_until(&mut l, t0, Duration::from_secs(40));
    assert!(l.is_empty());
}
