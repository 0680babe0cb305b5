//! The local mode as the window shows it (egui_kittest over AccessKit, no display): the
//! built-in registrar, park service and demo lines on 127.0.0.1, the window signed in as
//! `me`, and "Have Bob call me" ringing it from the demo line. Nothing is mocked.

#[path = "common/window.rs"]
mod window;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::phone_driver::{self, PhoneConfig};
use orbitphone::net::serve;
use orbitphone::ui::app::DemoCaller;
use orbitphone::ui::clipboard::MemoryClipboard;
use orbitphone::ui::{AppOptions, OrbitApp, Start};
use window::*;

fn window(rt: &tokio::runtime::Runtime, local: &serve::LocalMode, demo: bool) -> Harness<'static, OrbitApp> {
    let me = rt
        .block_on(phone_driver::start(PhoneConfig {
            account: local.me.clone(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            ca_file: None,
            audio: Default::default(),
        }))
        .expect("me's engine");
    let mut app = OrbitApp::new(AppOptions {
        welcome: None,
        runtime: rt.handle().clone(),
        config_dir: None,
        clipboard: Box::new(MemoryClipboard::default()),
        start: Start::Running { phone: me, registers: true },
        dial: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        secrets: std::sync::Arc::new(orbitphone::ui::secrets::MemoryStore::default()),
        notifier: std::sync::Arc::new(orbitphone::ui::notify::MemoryNotifier::default()),
    });
    if demo {
        let commands = local.server.demo_caller.clone().expect("the local mode has a demo caller");
        app.set_demo_caller(DemoCaller { commands, target: local.me.aor.clone() });
    }
    Harness::builder().with_size(egui::vec2(1000.0, 720.0)).build_ui_state(|ui, app: &mut OrbitApp| app.show(ui), app)
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
