//! Orbit's CLI against real peers: Kamailio (registrar/proxy with digest auth), baresip
//! and linphonec. Everything runs on 127.0.0.1 with free ports, started by the tests.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn orbit_via(k: &Kamailio, user: &str, password: &str, extra: &[&str]) -> Orbit {
    let aor = format!("sip:{user}@127.0.0.1");
    let proxy = k.proxy_uri();
    let mut args = vec!["--account", aor.as_str(), "--proxy", proxy.as_str()];
    args.extend_from_slice(extra);
    Orbit::start(&args, Some(password))
}

fn is(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == name
}

#[test]
fn registers_with_kamailio_and_reports_a_wrong_password() {
    let k = Kamailio::start(&[("alice", "alicepw")]);
    let mut good = orbit_via(&k, "alice", "alicepw", &[]);
    let reg = good.wait_event("registered", T);
    assert!(reg["expires"].as_u64().unwrap() > 0);
    let bad = orbit_via(&k, "alice", "wrong", &[]);
    let failed = bad.wait_event("registration_failed", T);
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("wrong password"), "reason: {reason}");
    // EOF on stdin: un-register and exit cleanly.
    good.close_stdin();
    good.wait_event("unregistered", T);
    assert_eq!(good.wait_exit(T), Some(0));
    assert!(k.log().contains("REGISTER"), "kamailio saw our REGISTER");
}

#[test]
fn calls_baresip_holds_resumes_and_is_called_back() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true));
    assert_eq!(bob.wait_registered(T), Some(true));
    let mut alice = orbit_via(&k, "alice", "alicepw", &["--auto-answer"]);
    alice.wait_event("registered", T);

    // Outgoing through Kamailio (407 proxy auth on the INVITE).
    alice.send("dial bob");
    let up = alice.wait_event("call_established", T);
    let call = up["call"].as_u64().unwrap();
    assert_eq!(up["codec"], "PCMU");
    bob.expect_event("CALL_ESTABLISHED", T);

    alice.send(&format!("hold {call}"));
    alice.wait("call_held", T, |v| is("call_held")(v) && v["by"] == "local");
    alice.send(&format!("resume {call}"));
    alice.wait_event("call_resumed", T);

    alice.send(&format!("hangup {call}"));
    let ended = alice.wait_event("call_ended", T);
    assert_eq!(ended["reason"], "local hangup");
    bob.expect_event("CALL_CLOSED", T);

    // Incoming from baresip; we auto-answer.
    bob.dial("sip:alice@127.0.0.1");
    let incoming = alice.wait_event("call_incoming", T);
    assert_eq!(incoming["from"], "sip:bob@127.0.0.1");
    alice.wait_event("call_established", T);
    bob.hangup();
    let ended = alice.wait_event("call_ended", T);
    assert_eq!(ended["reason"], "remote hangup");
}

#[test]
fn blind_transfer_of_baresip_to_linphonec() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")]);
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true));
    let carol = Linphonec::start(LinphonecOpts::registered("carol", "carolpw", k.port()).auto_answer(true));
    assert_eq!(bob.wait_registered(T), Some(true));
    assert!(carol.wait_registered(T));
    let alice = orbit_via(&k, "alice", "alicepw", &[]);
    alice.wait_event("registered", T);
    let mut alice = alice;
    alice.send("dial bob");
    let call = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    alice.send(&format!("transfer carol {call}"));
    let progress = alice.wait("final transfer_progress", T, |v| {
        is("transfer_progress")(v) && v["status"].as_u64().unwrap_or(0) >= 200 && v["status"] != 202
    });
    assert_eq!(progress["status"], 200, "{progress}");
    let ended = alice.wait_event("call_ended", T);
    assert_eq!(ended["reason"], "transferred");
    bob.expect_event("TRANSFER", T);
    assert!(carol.wait_output("connected", T).is_some(), "carol got bob's call");
}

#[test]
fn attended_transfer_with_linphonec_uses_replaces() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")]);
    let bob = Linphonec::start(LinphonecOpts::registered("bob", "bobpw", k.port()).auto_answer(true));
    let carol = Linphonec::start(LinphonecOpts::registered("carol", "carolpw", k.port()).auto_answer(true));
    assert!(bob.wait_registered(T));
    assert!(carol.wait_registered(T));
    let mut alice = orbit_via(&k, "alice", "alicepw", &[]);
    alice.wait_event("registered", T);
    alice.send("dial bob");
    let a = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    alice.send(&format!("hold {a}"));
    alice.wait_event("call_held", T);
    alice.send("dial carol");
    let b = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    alice.send(&format!("transfer-attended {a} {b}"));
    let progress = alice.wait("final transfer_progress", T, |v| {
        is("transfer_progress")(v) && v["status"].as_u64().unwrap_or(0) >= 200 && v["status"] != 202
    });
    assert_eq!(progress["status"], 200, "{progress}");
    // The calls end in either order relative to the final NOTIFY: look at all events.
    let ended_calls = || {
        let mut v: Vec<u64> =
            alice.all_events().iter().filter(|e| is("call_ended")(e)).filter_map(|e| e["call"].as_u64()).collect();
        v.sort();
        v
    };
    let both = wait_until(T, Duration::from_millis(50), || (ended_calls().len() == 2).then_some(()));
    assert!(both.is_some(), "{:#?}", alice.all_events());
    let ended = ended_calls();
    assert_eq!(ended, vec![a, b], "both of alice's calls end");
    // Bob's INVITE carried Replaces for Carol's dialog with Alice (seen by the proxy).
    assert!(k.log().contains("Replaces:"), "no INVITE with Replaces went through Kamailio");
}

#[test]
fn accepts_a_refer_from_baresip() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")]);
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", k.port()));
    let carol = Baresip::start(BaresipOpts::registered("carol", "carolpw", k.port()).auto_answer(true));
    assert_eq!(bob.wait_registered(T), Some(true));
    assert_eq!(carol.wait_registered(T), Some(true));
    let mut alice = orbit_via(&k, "alice", "alicepw", &["--auto-answer"]);
    alice.wait_event("registered", T);
    bob.dial("sip:alice@127.0.0.1");
    let first = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    bob.expect_event("CALL_ESTABLISHED", T);
    bob.command_ok("transfer", "sip:carol@127.0.0.1");
    let req = alice.wait_event("transfer_requested", T);
    assert_eq!(req["call"].as_u64().unwrap(), first);
    assert_eq!(req["target"], "sip:carol@127.0.0.1");
    let new_call = req["new_call"].as_u64().unwrap();
    let up = alice.wait("established transfer call", T, |v| is("call_established")(v) && v["call"] == new_call);
    assert!(up["party"].as_str().unwrap().contains("carol"));
    carol.expect_event("CALL_ESTABLISHED", T);
    // baresip ends its call after our NOTIFY 200; the original call ends on our side.
    alice.wait("first call ended", T, |v| is("call_ended")(v) && v["call"] == first);
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}

#[test]
fn bad_commands_get_error_events_and_the_cli_goes_on() {
    let mut alice = Orbit::start(&["--account", "sip:alice@127.0.0.1", "--no-register"], None);
    alice.send("frobnicate");
    let e = alice.wait_event("error", T);
    assert!(e["message"].as_str().unwrap().contains("unknown command"));
    alice.send("hangup 99");
    let e = alice.wait_event("error", T);
    assert!(e["message"].as_str().unwrap().contains("no call 99"));
    alice.send("status");
    let s = alice.wait_event("status", T);
    assert_eq!(s["registered"], false);
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}
