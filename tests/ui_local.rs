//! The local mode as the window shows it (egui_kittest over AccessKit, no display): the
//! built-in registrar, park service and demo lines on 127.0.0.1, the window signed in as
//! `me`, and "Have Bob call me" ringing it from the demo line. Nothing is mocked.

#[path = "common/window.rs"]
mod window;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::serve;
use orbitphone::ui::OrbitApp;
use window::*;

fn window(rt: &tokio::runtime::Runtime, local: &serve::LocalMode, demo: bool) -> Harness<'static, OrbitApp> {
    harness(local_mode_app(rt, local, demo))
}

#[test]
fn have_bob_call_me_rings_the_window_and_the_call_parks() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = rt.block_on(serve::start_local_mode()).expect("local mode");
    let mut h = window(&rt, &local, true);
    step_until(&mut h, "registered as me", |h| shows_part(h, "Registered as me@"));
    assert!(!shows_part(&h, "is calling"), "nobody calls before the button");
    h.check_accessibility();

    click(&mut h, "Have Bob call me");
    // The demo line's display name is "Bob (calls you back)".
    step_until(&mut h, "the incoming popup from Bob", |h| shows(h, "Bob (calls you back) is calling"));
    click(&mut h, "Answer");
    step_until(&mut h, "the call connected", |h| shows_part(h, "Connected"));
    let call = h.state().model().calls.values().next().expect("one call");
    assert!(call.party.contains("callme@"), "the demo line called: {}", call.party);

    // The rest of the demo: park Bob on the local park service.
    click(&mut h, "Park");
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on") && shows(h, "7000"));
}

#[test]
fn no_demo_button_outside_the_local_mode() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = rt.block_on(serve::start_local_mode()).expect("local mode");
    let mut h = window(&rt, &local, false);
    step_until(&mut h, "registered as me", |h| shows_part(h, "Registered as me@"));
    assert!(shows(&h, "Parked calls"));
    assert!(!shows(&h, "Have Bob call me"));
}

#[test]
fn signing_in_to_another_account_hides_the_demo_button() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = rt.block_on(serve::start_local_mode()).expect("local mode");
    let mut h = window(&rt, &local, true);
    step_until(&mut h, "the demo button", |h| shows(h, "Have Bob call me"));
    click(&mut h, "Account");
    for (label, text) in [("SIP address", "alice@127.0.0.1"), ("Password", "alice-pw")] {
        h.get_by_label(label).click();
        h.step();
        h.get_by_label(label).type_text(text);
        h.step();
    }
    click(&mut h, "Register with the server (off: direct calls by IP only)");
    click(&mut h, "Sign in");
    step_until(&mut h, "the main window as alice", |h| shows(h, "Parked calls") && shows_part(h, "direct calls only"));
    assert!(!shows(&h, "Have Bob call me"), "the demo line calls `me`, not alice");
}
