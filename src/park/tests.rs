//! Deterministic park scenarios on the simulated network and a virtual clock: real
//! engines as parker, parkee and retriever, the real park service in between.

use super::config::ParkConfig;
use super::service::ParkService;
use crate::phone::api::Event;
use crate::sim::{SimNet, account, addr};
use crate::sip::transport::Transport;
use std::collections::HashMap;
use std::time::Duration;

const SERVICE: u16 = 5099;
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;

fn config(tweak: impl FnOnce(&mut ParkConfig)) -> ParkConfig {
    let mut cfg = ParkConfig::default_local("127.0.0.1:5099", addr(SERVICE));
    cfg.park.timeout = Duration::from_secs(30);
    cfg.park.ringback_attempts = 2;
    cfg.park.ringback_ring = Duration::from_secs(10);
    for user in ["alice", "bob", "carol"] {
        cfg.users.insert(user.into(), format!("{user}-pw"));
    }
    tweak(&mut cfg);
    cfg
}

/// Alice (parker) in a call with Bob (parkee); Carol is another phone; a park service.
fn setup(cfg: ParkConfig) -> SimNet {
    let mut net = SimNet::new();
    let local = HashMap::from([(Transport::Udp, addr(SERVICE))]);
    let svc = ParkService::new(net.now, cfg, local, addr(30000));
    net.parks.push((addr(SERVICE), svc));
    for (user, port) in [("alice", 5060), ("bob", 5062), ("carol", 5064)] {
        let mut acc = account(user);
        acc.park_uri = Some(format!("sip:park@127.0.0.1:{SERVICE}"));
        net.add(acc, port);
    }
    net.cmd(ALICE, "dial sip:bob@127.0.0.1:5062");
    net.cmd(BOB, "answer");
    assert!(net.has(ALICE, |e| matches!(e, Event::CallEstablished { .. })));
    net.take(ALICE);
    net.take(BOB);
    net
}

fn parked_orbit(net: &SimNet) -> Option<String> {
    net.events[ALICE].iter().find_map(|e| match e {
        Event::Parked { orbit, .. } => Some(orbit.clone()),
        _ => None,
    })
}

fn park(net: &mut SimNet) -> String {
    net.cmd(ALICE, "park");
    assert!(net.has(ALICE, |e| matches!(e, Event::ParkPending { .. })));
    let orbit = parked_orbit(net)
        .unwrap_or_else(|| panic!("not parked: {:?}\nservice: {:?}", net.events[ALICE], net.park_logs));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::CallEnded { reason, .. } if reason == "parked")),
        "the parker's own leg ends: {:?}",
        net.events[ALICE]
    );
    orbit
}

fn service(net: &SimNet) -> &ParkService {
    &net.parks[0].1
}

fn assert_clean(net: &mut SimNet) {
    net.advance(Duration::from_secs(60));
    let svc = service(net);
    assert_eq!(svc.parked_count(), 0, "orbits leaked");
    assert_eq!(svc.park_count(), 0, "parks leaked");
    assert_eq!(svc.transaction_count(), 0, "transactions leaked");
}

#[test]
fn park_by_pull_then_retrieve_by_dialling_the_orbit() {
    let mut net = setup(config(|_| {}));
    let orbit = park(&mut net);
    assert_eq!(orbit, "7000");
    let Some(Event::Parked { retrieve_uri, orbit_uri, parkee, ringback_at, .. }) =
        net.events[ALICE].iter().find(|e| matches!(e, Event::Parked { .. })).cloned()
    else {
        unreachable!()
    };
    assert_eq!(orbit_uri, "sip:7000@127.0.0.1:5099");
    assert!(retrieve_uri.starts_with("sip:7000@127.0.0.1:5099;park-token="));
    assert!(parkee.contains("sip:bob@127.0.0.1"));
    assert!(ringback_at > 0);
    // Bob's call with Alice was replaced by the service's call: still one call up.
    assert!(net.has(BOB, |e| matches!(e, Event::CallIncoming { replaces: Some(_), .. })));
    assert_eq!(service(&net).parked_count(), 1);

    net.cmd(CAROL, &format!("dial {orbit_uri}"));
    let party = net.events[CAROL].iter().find_map(|e| match e {
        Event::CallEstablished { party, .. } => Some(party.clone()),
        _ => None,
    });
    let party = party.unwrap_or_else(|| panic!("carol not connected: {:?}\n{:?}", net.events[CAROL], net.park_logs));
    assert!(party.contains("bob"), "the retriever sees the parked caller, not the orbit: {party}");
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkRetrieved { by, .. } if by.contains("carol"))),
        "{:?}",
        net.events[ALICE]
    );
    assert_eq!(service(&net).parked_count(), 0, "orbit freed at once");

    // Carol hangs up: the service relays BYE to Bob.
    net.cmd(CAROL, "hangup");
    let bob_ended = net.events[BOB].iter().filter(|e| matches!(e, Event::CallEnded { .. })).count();
    assert_eq!(bob_ended, 2, "bob's original and parked calls both ended: {:?}", net.events[BOB]);
    assert_clean(&mut net);
}

#[test]
fn busy_lamp_shows_occupied_and_freed_orbits() {
    let mut net = setup(config(|_| {}));
    net.cmd(CAROL, "watch-orbits");
    park(&mut net);
    assert!(
        net.has(CAROL, |e| matches!(e, Event::OrbitStatus { orbit, busy: true, parkee: Some(p) } if orbit == "7000" && p.contains("bob"))),
        "{:?}",
        net.events[CAROL]
    );
    net.cmd(CAROL, "retrieve sip:7000@127.0.0.1:5099");
    assert!(
        net.has(CAROL, |e| matches!(e, Event::OrbitStatus { orbit, busy: false, .. } if orbit == "7000")),
        "{:?}",
        net.events[CAROL]
    );
}

#[test]
fn second_retriever_gets_404_and_a_reused_orbit_link_gets_410() {
    let mut net = setup(config(|_| {}));
    park(&mut net);
    let Some(Event::Parked { retrieve_uri, .. }) =
        net.events[ALICE].iter().find(|e| matches!(e, Event::Parked { .. })).cloned()
    else {
        unreachable!()
    };
    net.cmd(CAROL, "dial sip:7000@127.0.0.1:5099");
    net.cmd(CAROL, "dial sip:7000@127.0.0.1:5099");
    assert!(
        net.has(CAROL, |e| matches!(e, Event::CallEnded { reason, .. } if reason.starts_with("404"))),
        "{:?}",
        net.events[CAROL]
    );
    net.cmd(CAROL, &format!("dial {retrieve_uri}"));
    assert!(net.has(
        CAROL,
        |e| matches!(e, Event::CallEnded { reason, .. } if reason.starts_with("404") || reason.starts_with("410"))
    ));
}

#[test]
fn unanswered_ringbacks_then_disconnect_free_the_orbit() {
    let mut net = setup(config(|_| {}));
    park(&mut net);
    net.take(ALICE);
    net.advance(Duration::from_secs(31));
    assert!(net.has(ALICE, |e| matches!(e, Event::ParkRingback { attempt: 1, of: 2, .. })), "{:?}", net.events[ALICE]);
    assert!(
        net.has(ALICE, |e| matches!(e, Event::CallIncoming { recall: Some(r), .. } if r.orbit == "7000" && r.parkee.contains("bob"))),
        "ring-back is labelled with the orbit and the parkee: {:?}",
        net.events[ALICE]
    );
    net.advance(Duration::from_secs(11)); // rang 10 s: back to the orbit
    assert_eq!(service(&net).parked_count(), 1);
    net.advance(Duration::from_secs(31));
    assert!(net.has(ALICE, |e| matches!(e, Event::ParkRingback { attempt: 2, of: 2, .. })));
    net.advance(Duration::from_secs(11));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkEnded { reason, .. } if reason == "nobody answered")),
        "{:?}",
        net.events[ALICE]
    );
    assert!(net.events[BOB].iter().filter(|e| matches!(e, Event::CallEnded { .. })).count() == 2);
    assert_clean(&mut net);
}

#[test]
fn answered_ringback_reconnects_parker_and_parkee() {
    let mut net = setup(config(|_| {}));
    park(&mut net);
    net.take(ALICE);
    net.advance(Duration::from_secs(31));
    let call = net.events[ALICE].iter().find_map(|e| match e {
        Event::CallIncoming { call, recall: Some(_), .. } => Some(*call),
        _ => None,
    });
    let call = call.expect("ring-back call");
    net.cmd(ALICE, &format!("answer {call}"));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::CallEstablished { call: c, .. } if *c == call)),
        "{:?}",
        net.events[ALICE]
    );
    assert!(net.has(ALICE, |e| matches!(e, Event::ParkRetrieved { .. })));
    assert_eq!(service(&net).parked_count(), 0);
    net.cmd(BOB, "hangup 2");
    assert!(
        net.has(ALICE, |e| matches!(e, Event::CallEnded { call: c, .. } if *c == call)),
        "bob's hang-up reaches alice: {:?}",
        net.events[ALICE]
    );
    assert_clean(&mut net);
}

#[test]
fn fallback_takes_the_call_after_the_last_ringback() {
    let mut net = setup(config(|c| {
        c.park.ringback_attempts = 1;
        c.park.fallback = Some("sip:carol@127.0.0.1:5064".into());
    }));
    net.phones[CAROL].1.account.auto_answer = true;
    park(&mut net);
    net.advance(Duration::from_secs(31 + 11));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkFallback { to, .. } if to.contains("carol"))),
        "{:?}",
        net.events[ALICE]
    );
    assert!(net.has(CAROL, |e| matches!(e, Event::CallEstablished { .. })), "{:?}", net.events[CAROL]);
    assert_eq!(service(&net).parked_count(), 0);
}

#[test]
fn parkee_hanging_up_is_abandoned() {
    let mut net = setup(config(|_| {}));
    park(&mut net);
    net.cmd(BOB, "hangup");
    assert!(net.has(ALICE, |e| matches!(e, Event::ParkAbandoned { .. })), "{:?}", net.events[ALICE]);
    assert_clean(&mut net);
}

#[test]
fn policy_and_orbit_exhaustion_are_readable_failures() {
    let mut net = setup(config(|c| {
        c.policy = super::config::Policy::only(["carol"]);
    }));
    net.cmd(ALICE, "park");
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkFailed { reason, .. } if reason.contains("not allowed"))),
        "{:?}",
        net.events[ALICE]
    );
    // A failed park leaves an ordinary call: its end is not reported as "parked".
    net.cmd(BOB, "hangup");
    assert!(
        net.has(ALICE, |e| matches!(e, Event::CallEnded { reason, .. } if reason == "remote hangup")),
        "{:?}",
        net.events[ALICE]
    );

    let mut net = setup(config(|c| {
        c.orbits = vec![super::orbits::OrbitRange::parse("7000", "7000").unwrap()];
    }));
    park(&mut net);
    // A second call from Carol to Alice, parked too: no orbit left.
    net.cmd(CAROL, "dial sip:alice@127.0.0.1:5060");
    let second = net.events[ALICE].iter().find_map(|e| match e {
        Event::CallIncoming { call, .. } => Some(*call),
        _ => None,
    });
    net.cmd(ALICE, &format!("answer {}", second.unwrap()));
    net.cmd(ALICE, &format!("park {}", second.unwrap()));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkFailed { reason, .. } if reason == "no free orbit")),
        "{:?}",
        net.events[ALICE]
    );
}

#[test]
fn parkee_without_replaces_is_pushed_by_refer() {
    let mut net = setup(config(|_| {}));
    // Bob never answers an INVITE with Replaces (like baresip 1.0): the pull times out.
    net.drop_rule =
        Some((Box::new(|b: &[u8]| b.starts_with(b"INVITE") && String::from_utf8_lossy(b).contains("Replaces:")), 100));
    net.cmd(ALICE, "park");
    net.advance(Duration::from_secs(40));
    let orbit = parked_orbit(&net)
        .unwrap_or_else(|| panic!("not parked by push: {:?}\n{:?}", net.events[ALICE], net.park_logs));
    assert_eq!(orbit, "7000");
    assert!(net.has(BOB, |e| matches!(e, Event::TransferRequested { target, .. } if target.contains("park-token="))));
    net.cmd(CAROL, "dial sip:7000@127.0.0.1:5099");
    assert!(net.has(CAROL, |e| matches!(e, Event::CallEstablished { .. })), "{:?}", net.events[CAROL]);
}

#[test]
fn shutdown_hangs_up_parked_calls_and_tells_parkers() {
    let mut net = setup(config(|_| {}));
    park(&mut net);
    let now = net.now;
    net.parks[0].1.shutdown(now);
    net.advance(Duration::from_secs(5));
    assert!(
        // (The transaction count depends on what is still lingering; not checked here.)
        net.park_logs
            .iter()
            .any(|l| l.starts_with("stopping: 1 orbits in use, 1 parks in progress, 0 busy-lamp watchers,")),
        "{:?}",
        net.park_logs
    );
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkEnded { reason, .. } if reason == "service stopped")),
        "{:?}",
        net.events[ALICE]
    );
    assert_eq!(net.events[BOB].iter().filter(|e| matches!(e, Event::CallEnded { .. })).count(), 2);
    assert!(service(&net).is_stopped());
}

/// Property: whatever happens — parks, retrieves of random orbits, hang-ups on any side,
/// time passing through ring-backs — once everybody hangs up and the timers run out, the
/// orbit table and the park table are empty and no transaction is left.
#[test]
fn random_sequences_leave_no_orbit_or_park_behind() {
    use rand::{Rng, SeedableRng};
    let (mut parks, mut retrieved) = (0, 0);
    for seed in 0..12u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut net = setup(config(|_| {}));
        net.phones[BOB].1.account.auto_answer = true;
        for _ in 0..40 {
            match rng.random_range(0..7) {
                0 => net.cmd(ALICE, "dial sip:bob@127.0.0.1:5062"),
                1 | 2 => {
                    let live = net.phones[ALICE]
                        .1
                        .calls
                        .values()
                        .filter(|c| c.state == crate::phone::call::CallState::Established)
                        .map(|c| c.no)
                        .next_back();
                    if let Some(c) = live {
                        net.cmd(ALICE, &format!("park {c}"));
                    }
                }
                3 => {
                    let orbit = 7000 + rng.random_range(0..4);
                    net.cmd(CAROL, &format!("dial sip:{orbit}@127.0.0.1:5099"));
                }
                4 => {
                    let phone = [ALICE, BOB, CAROL][rng.random_range(0..3)];
                    let live: Vec<u32> = net.phones[phone]
                        .1
                        .calls
                        .values()
                        .filter(|c| c.state != crate::phone::call::CallState::Ended)
                        .map(|c| c.no)
                        .collect();
                    if !live.is_empty() {
                        let c = live[rng.random_range(0..live.len())];
                        net.cmd(phone, &format!("hangup {c}"));
                    }
                }
                5 => {
                    // Answer a ring-back now and then.
                    let ringing = net.phones[ALICE]
                        .1
                        .calls
                        .values()
                        .filter(|c| c.state == crate::phone::call::CallState::Ringing)
                        .map(|c| c.no)
                        .next_back();
                    if let Some(c) = ringing {
                        net.cmd(ALICE, &format!("answer {c}"));
                    }
                }
                _ => net.advance(Duration::from_secs(rng.random_range(1..45))),
            }
        }
        for phone in [ALICE, BOB, CAROL] {
            let live: Vec<u32> = net.phones[phone]
                .1
                .calls
                .values()
                .filter(|c| c.state != crate::phone::call::CallState::Ended)
                .map(|c| c.no)
                .collect();
            for c in live {
                net.cmd(phone, &format!("hangup {c}"));
            }
        }
        net.advance(Duration::from_secs(300));
        parks += net.events[ALICE].iter().filter(|e| matches!(e, Event::Parked { .. })).count();
        retrieved += net.events[ALICE].iter().filter(|e| matches!(e, Event::ParkRetrieved { .. })).count();
        let svc = service(&net);
        assert_eq!((svc.parked_count(), svc.park_count()), (0, 0), "seed {seed}: leaked\n{:?}", net.park_logs);
        assert_eq!(svc.transaction_count(), 0, "seed {seed}: transactions leaked");
    }
    // The sequences must actually exercise the service, or the property says nothing.
    assert!(parks >= 10 && retrieved >= 3, "only {parks} parks and {retrieved} retrievals");
}

#[test]
fn retrieve_attempts_are_rate_limited_per_source() {
    let mut net = setup(config(|c| c.limits.retrieve_attempts_per_minute = 5));
    for orbit in 7010..7016 {
        net.cmd(CAROL, &format!("dial sip:{orbit}@127.0.0.1:5099"));
    }
    let refusals: Vec<String> = net.events[CAROL]
        .iter()
        .filter_map(|e| match e {
            Event::CallEnded { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.iter().filter(|r| r.starts_with("404")).count(), 5, "{refusals:?}");
    assert_eq!(
        refusals.iter().filter(|r| r.starts_with("503")).count(),
        1,
        "the 6th scan attempt is refused: {refusals:?}"
    );
    // A minute later the source may try again.
    net.advance(Duration::from_secs(61));
    net.cmd(CAROL, "dial sip:7020@127.0.0.1:5099");
    assert!(net.has(CAROL, |e| matches!(e, Event::CallEnded { reason, .. } if reason.starts_with("404"))));
    assert_eq!(
        net.events[CAROL]
            .iter()
            .filter(|e| matches!(e, Event::CallEnded { reason, .. } if reason.starts_with("503")))
            .count(),
        1
    );
}

/// A park can outlive one control subscription (ten 10-minute waits): the phone refreshes
/// it, so the parker still hears about the sixth ring-back, past the first hour.
#[test]
fn long_parks_keep_their_subscription_refreshed() {
    let mut net = setup(config(|c| {
        c.park.timeout = Duration::from_secs(600);
        c.park.ringback_attempts = 10;
    }));
    park(&mut net);
    net.advance(Duration::from_secs(3 * 3600 / 2));
    assert!(
        net.has(ALICE, |e| matches!(e, Event::ParkRingback { attempt: 6, of: 10, .. })),
        "{:?}",
        net.events[ALICE].iter().filter(|e| matches!(e, Event::ParkRingback { .. })).collect::<Vec<_>>()
    );
    assert!(!net.has(ALICE, |e| matches!(e, Event::ParkEnded { .. } | Event::ParkFailed { .. })));
}
