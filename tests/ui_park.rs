//! The window, clicked by label (egui_kittest over AccessKit; no display, no GPU), with a
//! real engine behind it talking to a real park service and real peer engines on
//! 127.0.0.1. Nothing here mocks the engine.

#[path = "common/window.rs"]
mod window;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::park_driver::{self, ParkHandle};
use orbitphone::net::phone_driver::{self, PhoneConfig};
use orbitphone::park::config::ParkConfig;
use orbitphone::phone::account::Account;
use orbitphone::phone::{Command, Event};
use orbitphone::sip::transport::Transport;
use orbitphone::ui::clipboard::MemoryClipboard;
use orbitphone::ui::notify::MemoryNotifier;
use orbitphone::ui::secrets::MemoryStore;
use orbitphone::ui::{AppOptions, OrbitApp, Start};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use window::*;

/// A UDP+TCP port free on 127.0.0.1 right now (the park service needs it before it
/// starts: its orbit URIs name it).
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn account(user: &str, name: &str, park_port: u16, auto_answer: bool) -> Account {
    Account {
        aor: format!("sip:{user}@127.0.0.1"),
        display_name: Some(name.into()),
        auth_user: user.into(),
        password: Some(format!("{user}-pw")),
        transport: Transport::Udp,
        outbound: None,
        register: false,
        expires: 600,
        auto_answer,
        park_uri: Some(format!("sip:park@127.0.0.1:{park_port}")),
        keepalive_secs: 0,
        park_extension: None,
        park_attended: false,
    }
}

/// A phone driven by the test itself (Bob, Carol): commands in, events kept.
struct Peer {
    name: &'static str,
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    seen: Vec<Event>,
    addr: SocketAddr,
}

impl Peer {
    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    fn send(&self, rt: &tokio::runtime::Runtime, cmd: Command) {
        rt.block_on(self.commands.send(cmd)).expect("peer engine stopped");
    }

    fn wait(&mut self, rt: &tokio::runtime::Runtime, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = rt.block_on(async { tokio::time::timeout(left, self.events.recv()).await });
            match ev {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                _ => panic!("{}: no {what} within {WAIT:?}; saw {:#?}", self.name, self.seen),
            }
        }
    }
}

/// A park service, Bob and Carol, and the window as Alice.
struct World {
    rt: tokio::runtime::Runtime,
    _park: ParkHandle,
    park_port: u16,
    bob: Peer,
    carol: Peer,
    clipboard: MemoryClipboard,
    notifier: MemoryNotifier,
}

impl World {
    fn new(bob_answers: bool, tweak: impl FnOnce(&mut ParkConfig)) -> (World, Harness<'static, OrbitApp>) {
        World::with_notifier(bob_answers, MemoryNotifier::default(), tweak)
    }

    fn with_notifier(
        bob_answers: bool,
        notifier: MemoryNotifier,
        tweak: impl FnOnce(&mut ParkConfig),
    ) -> (World, Harness<'static, OrbitApp>) {
        World::build(bob_answers, notifier, tweak, |_, _| {})
    }

    /// The full set-up; `alice` adjusts the window's account (Carol's address known).
    fn build(
        bob_answers: bool,
        notifier: MemoryNotifier,
        tweak: impl FnOnce(&mut ParkConfig),
        alice: impl FnOnce(&mut Account, &Peer),
    ) -> (World, Harness<'static, OrbitApp>) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let park_port = free_port();
        let listen: SocketAddr = format!("127.0.0.1:{park_port}").parse().expect("addr");
        let mut cfg = ParkConfig::default_local(&format!("127.0.0.1:{park_port}"), listen);
        for user in ["alice", "bob", "carol"] {
            cfg.users.insert(user.into(), format!("{user}-pw"));
        }
        tweak(&mut cfg);
        let park = rt.block_on(park_driver::start(cfg)).expect("park service");
        let peer = |rt: &tokio::runtime::Runtime, user: &'static str, name: &str, auto: bool| {
            let cfg = PhoneConfig {
                account: account(user, name, park_port, auto),
                listen: "127.0.0.1:0".parse().expect("addr"),
                ca_file: None,
                audio: Default::default(),
            };
            let h = rt.block_on(phone_driver::start(cfg)).expect("peer engine");
            let addr = h.local[&Transport::Udp];
            Peer { name: user, commands: h.commands, events: h.events, seen: Vec::new(), addr }
        };
        let bob = peer(&rt, "bob", "Bob", bob_answers);
        let carol = peer(&rt, "carol", "Carol", false);
        let mut alice_account = account("alice", "Alice", park_port, false);
        alice(&mut alice_account, &carol);
        let alice = rt
            .block_on(phone_driver::start(PhoneConfig {
                account: alice_account,
                listen: "127.0.0.1:0".parse().expect("addr"),
                ca_file: None,
                audio: Default::default(),
            }))
            .expect("alice's engine");
        let clipboard = MemoryClipboard::default();
        let app = OrbitApp::new(AppOptions {
            welcome: None,
            runtime: rt.handle().clone(),
            config_dir: None,
            clipboard: Box::new(clipboard.clone()),
            start: Start::Running { phone: alice, registers: false },
            dial: None,
            listen: "127.0.0.1:0".parse().expect("addr"),
            secrets: Arc::new(MemoryStore::default()),
            notifier: Arc::new(notifier.clone()),
        });
        let harness = Harness::builder()
            .with_size(egui::vec2(1000.0, 720.0))
            .build_ui_state(|ui, app: &mut OrbitApp| app.show(ui), app);
        (World { rt, _park: park, park_port, bob, carol, clipboard, notifier }, harness)
    }

    fn orbit_uri(&self, orbit: &str) -> String {
        format!("sip:{orbit}@127.0.0.1:{}", self.park_port)
    }
}

/// Type into the dial field and press Call.
fn dial(h: &mut Harness<'_, OrbitApp>, target: &str) {
    let field = h.get_by_label("Number or SIP address");
    field.click();
    h.step();
    h.get_by_label("Number or SIP address").type_text(target);
    h.step();
    click(h, "Call");
}

/// Bob calls the window; it answers from the popup; wait until the call is up.
fn bob_calls(w: &mut World, h: &mut Harness<'_, OrbitApp>) {
    let target = format!("sip:alice@{}", alice_addr(h));
    w.bob.send(&w.rt, Command::Dial { target });
    step_until(h, "the incoming popup", |h| shows(h, "Bob is calling"));
    click(h, "Answer");
    step_until(h, "the conversation window", |h| shows(h, "Call with Bob"));
    step_until(h, "the call connected", |h| shows_part(h, "Connected"));
    w.bob.wait(&w.rt, "established", |e| matches!(e, Event::CallEstablished { .. }));
}

#[test]
fn answer_park_copy_and_picked_up_by_carol() {
    let (mut w, mut h) = World::new(false, |_| {});
    bob_calls(&mut w, &mut h);
    h.check_accessibility();

    click(&mut h, "Park");
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on") && shows(h, "7000"));
    assert!(shows_part(&h, "Rings you back in"), "a countdown to ring-back");
    // The Parked calls panel lists it too (the orbit link, the party), and so does the
    // busy-lamp Orbits panel fed by the park service's RFC 4235 NOTIFYs.
    step_until(&mut h, "7000 in the conversation, the Parked calls panel and the Orbits panel", |h| {
        h.get_all_by_label("7000").count() == 3
    });
    h.check_accessibility();

    click(&mut h, "Copy");
    let expected = format!("Parked call from Bob on 7000 — dial 7000 or open {}", w.orbit_uri("7000"));
    assert_eq!(w.clipboard.text().as_deref(), Some(expected.as_str()));
    step_until(&mut h, "Copied feedback", |h| shows_part(h, "Copied"));

    // Carol dials the orbit: the window follows the park to its end.
    let orbit = w.orbit_uri("7000");
    w.carol.send(&w.rt, Command::Dial { target: orbit });
    let up = w.carol.wait(&w.rt, "call established", |e| matches!(e, Event::CallEstablished { .. }));
    let Event::CallEstablished { party, .. } = up else { unreachable!() };
    assert!(party.contains("bob"), "Carol talks to Bob: {party}");
    step_until(&mut h, "Picked up by Carol", |h| shows_part(h, "Picked up by Carol at "));
    // Desktop notifications went out for the ring and the pickup (not for routine events).
    step_until(&mut h, "the pickup notification", |_| {
        w.notifier.notes().iter().any(|n| n.summary.starts_with("Picked up by Carol at "))
    });
    let notes = w.notifier.notes();
    assert_eq!(notes[0].summary, "Incoming call from Bob", "{notes:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(!shows(&h, "Parked on"), "no longer parked");
    assert!(shows(&h, "No parked calls"));
    // The window stays until closed.
    click(&mut h, "Close");
    step_until(&mut h, "the window closed", |h| !shows(h, "Call with Bob"));
}

#[test]
fn enter_dials_hold_resume_and_hang_up() {
    let (mut w, mut h) = World::new(true, |_| {});
    let field = h.get_by_label("Number or SIP address");
    field.click();
    h.step();
    h.get_by_label("Number or SIP address").type_text(&w.bob.uri("bob"));
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    step_until(&mut h, "the call connected", |h| shows(h, "Call with bob") && shows_part(h, "Connected"));

    click(&mut h, "Hold");
    step_until(&mut h, "On hold", |h| shows_part(h, "On hold"));
    click(&mut h, "Resume");
    step_until(&mut h, "Connected again", |h| shows_part(h, "Connected") && shows(h, "Hold"));

    click(&mut h, "Keypad");
    step_until(&mut h, "the keypad", |h| h.query_all_by_label_contains("Keypad for call").count() == 12);
    h.check_accessibility();
    h.get_by_label_contains("Keypad for call 1 5").click();
    h.step();
    w.bob.wait(&w.rt, "the digit", |e| matches!(e, Event::DtmfReceived { digit, .. } if digit == "5"));

    click(&mut h, "Hang up");
    w.bob.wait(&w.rt, "the call ended", |e| matches!(e, Event::CallEnded { .. }));
    step_until(&mut h, "the end", |h| shows_part(h, "Call ended: You hung up"));
    step_until(&mut h, "recent calls", |h| h.query_by_label("Call bob again").is_some());
}

#[test]
fn esc_cancels_a_ringing_outgoing_call() {
    let (mut w, mut h) = World::new(false, |_| {});
    dial(&mut h, &w.bob.uri("bob"));
    w.bob.wait(&w.rt, "the incoming call", |e| matches!(e, Event::CallIncoming { .. }));
    step_until(&mut h, "ringing", |h| shows(h, "Ringing…") || shows(h, "Calling…"));
    h.key_press(egui::Key::Escape);
    h.step();
    w.bob.wait(&w.rt, "the call cancelled", |e| matches!(e, Event::CallEnded { .. }));
    step_until(&mut h, "Cancelled", |h| shows_part(h, "Call ended: Cancelled"));
}

#[test]
fn ring_back_is_labelled_and_answering_takes_the_call_back() {
    let (mut w, mut h) = World::new(false, |c| {
        c.park.timeout = Duration::from_secs(2);
        c.park.ringback_attempts = 3;
        c.park.ringback_ring = Duration::from_secs(30);
    });
    bob_calls(&mut w, &mut h);
    // Ctrl+P parks the active call.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::P);
    h.step();
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on"));
    step_until(&mut h, "the ring-back popup", |h| shows(h, "Parked call returning from 7000 — Bob (attempt 1 of 3)"));
    step_until(&mut h, "Ringing you back", |h| shows(h, "Ringing you back (1 of 3)"));
    h.check_accessibility();
    click(&mut h, "Answer");
    step_until(&mut h, "picked up by me", |h| shows_part(h, "Picked up by you at "));
    step_until(&mut h, "talking to Bob again", |h| shows_part(h, "Connected"));
    let _ = w.bob.wait(&w.rt, "still in a call", |e| matches!(e, Event::CallEstablished { .. }));
}

#[test]
fn orbit_link_picks_the_call_back_up() {
    let (mut w, mut h) = World::new(false, |_| {});
    bob_calls(&mut w, &mut h);
    click(&mut h, "Park");
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on"));
    // The link in the conversation window (the first of the two "7000" links).
    h.get_all_by_label("7000").next().expect("orbit link").click();
    h.step();
    step_until(&mut h, "picked up by me", |h| shows_part(h, "Picked up by you at "));
    step_until(&mut h, "a new call with Bob", |h| shows_part(h, "Connected"));
}

#[test]
fn park_failure_reads_no_free_orbit() {
    let (mut w, mut h) = World::new(false, |c| {
        c.orbits = vec![orbitphone::park::orbits::OrbitRange::parse("7000", "7000").expect("range")];
    });
    bob_calls(&mut w, &mut h);
    click(&mut h, "Park");
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on"));
    // Carol calls; the popup answers it; parking it finds the only orbit taken.
    let target = format!("sip:alice@{}", alice_addr(&h));
    w.carol.send(&w.rt, Command::Dial { target });
    step_until(&mut h, "the incoming popup", |h| shows(h, "Carol is calling"));
    h.check_accessibility();
    click(&mut h, "Answer");
    step_until(&mut h, "the call with Carol", |h| shows(h, "Call with Carol"));
    step_until(&mut h, "connected", |h| shows_part(h, "Connected") && h.query_by_label("Park").is_some());
    w.carol.wait(&w.rt, "established", |e| matches!(e, Event::CallEstablished { .. }));
    click(&mut h, "Park");
    step_until(&mut h, "the failure", |h| shows(h, "Park failed: no free orbit"));
}

/// Where the window's engine listens.
fn alice_addr(h: &Harness<'_, OrbitApp>) -> String {
    h.state().local_sip().map(|a| a.to_string()).expect("alice's engine is bound")
}

#[test]
fn no_notification_daemon_is_said_once_in_the_window() {
    let (mut w, mut h) = World::with_notifier(false, MemoryNotifier { fail: true, ..Default::default() }, |_| {});
    bob_calls(&mut w, &mut h);
    step_until(&mut h, "the notice", |h| shows_part(h, "Desktop notifications are not available"));
    click(&mut h, "Park");
    step_until(&mut h, "Parked on 7000", |h| shows(h, "Parked on"));
    w.carol.send(&w.rt, Command::Dial { target: w.orbit_uri("7000") });
    step_until(&mut h, "Picked up by Carol", |h| shows_part(h, "Picked up by Carol at "));
    let n = h.state().model().notices.iter().filter(|n| n.starts_with("Desktop notifications")).count();
    assert_eq!(n, 1, "said once: {:?}", h.state().model().notices);
}

fn form_app(rt: &tokio::runtime::Runtime, dir: &std::path::Path, store: MemoryStore) -> Harness<'static, OrbitApp> {
    let app = OrbitApp::new(AppOptions {
        welcome: None,
        runtime: rt.handle().clone(),
        config_dir: Some(dir.to_path_buf()),
        clipboard: Box::new(MemoryClipboard::default()),
        start: Start::Saved { password: None },
        dial: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        secrets: Arc::new(store),
        notifier: Arc::new(MemoryNotifier::default()),
    });
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 720.0))
        .build_ui_state(|ui, app: &mut OrbitApp| app.show(ui), app);
    h.step();
    h
}

/// Fill the first-run form (direct calls: no registrar here) and sign in.
fn fill_form_and_sign_in(h: &mut Harness<'_, OrbitApp>) {
    for (label, text) in [("SIP address", "alice@127.0.0.1"), ("Password", "s3cret-pw")] {
        h.get_by_label(label).click();
        h.step();
        h.get_by_label(label).type_text(text);
        h.step();
    }
    click(h, "Register with the server (off: direct calls by IP only)");
    click(h, "Sign in");
    step_until(h, "the main window", |h| shows(h, "Parked calls") && shows_part(h, "direct calls only"));
}

#[test]
fn password_goes_to_the_keyring_and_the_next_start_signs_in_without_asking() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("orbit-ui-keyring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = MemoryStore::default();
    let mut h = form_app(&rt, &dir, store.clone());
    assert!(shows_part(&h, "kept in the system keyring"), "the form says where the password goes");
    fill_form_and_sign_in(&mut h);
    step_until(&mut h, "the password in the keyring", |_| {
        use orbitphone::ui::secrets::SecretStore;
        store.get("sip:alice@127.0.0.1") == Ok(Some("s3cret-pw".into()))
    });
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("settings saved");
    assert!(!saved.contains("s3cret"), "the password is never written: {saved}");
    h.state_mut().shutdown();
    drop(h);
    // Next start: the saved account and the keyring's password, no form.
    let mut h = form_app(&rt, &dir, store);
    assert!(!shows(&h, "Sign in"), "no form: the keyring had the password");
    step_until(&mut h, "signed in", |h| shows_part(h, "direct calls only"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn first_run_form_signs_in_and_never_saves_the_password() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("orbit-ui-form-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // This machine has no keyring: the form and the notice bar say so.
    let mut h = form_app(&rt, &dir, MemoryStore::unavailable());
    assert!(shows_part(&h, "set up your SIP account"), "no saved account: the form shows");
    assert!(shows_part(&h, "No system keyring is available"), "the form says where the password goes");
    h.check_accessibility();
    click(&mut h, "Sign in");
    step_until(&mut h, "a readable problem", |h| shows(h, "Enter your SIP address, like alice@example.com"));
    fill_form_and_sign_in(&mut h);
    step_until(&mut h, "the no-keyring notice", |h| shows_part(h, "asks for it each time it starts"));
    h.state_mut().shutdown();
    drop(h);
    // Next start asks again, saying why.
    let h2 = form_app(&rt, &dir, MemoryStore::unavailable());
    assert!(shows(&h2, "Sign in") && shows_part(&h2, "No system keyring is available"));
    drop(h2);
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("settings saved");
    assert!(saved.contains("alice@127.0.0.1"), "{saved}");
    assert!(!saved.contains("s3cret"), "the password is never written: {saved}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blind_transfer_from_the_conversation_window() {
    let (mut w, mut h) = World::new(false, |_| {});
    bob_calls(&mut w, &mut h);
    click(&mut h, "Transfer");
    let carol = w.carol.uri("carol");
    h.get_by_label("Transfer to").click();
    h.step();
    h.get_by_label("Transfer to").type_text(&carol);
    h.step();
    click(&mut h, "Transfer now");
    let ev = w.bob.wait(&w.rt, "the REFER", |e| matches!(e, Event::TransferRequested { .. }));
    let Event::TransferRequested { target, .. } = ev else { unreachable!() };
    assert!(target.contains("carol"), "{target}");
    w.carol.wait(&w.rt, "Bob's call", |e| matches!(e, Event::CallIncoming { .. }));
    step_until(&mut h, "the transfer in progress", |h| shows(h, "Transferring…"));
    w.carol.send(&w.rt, Command::Answer { call: None });
    w.carol.wait(&w.rt, "talking to Bob", |e| matches!(e, Event::CallEstablished { .. }));
    step_until(&mut h, "the transfer done", |h| shows_part(h, "Call ended: Transferred"));
}

#[test]
fn decline_from_the_popup() {
    let (mut w, mut h) = World::new(false, |_| {});
    let target = format!("sip:alice@{}", alice_addr(&h));
    w.bob.send(&w.rt, Command::Dial { target });
    step_until(&mut h, "the incoming popup", |h| shows(h, "Bob is calling"));
    click(&mut h, "Decline");
    w.bob.wait(&w.rt, "the call declined", |e| matches!(e, Event::CallEnded { .. }));
    step_until(&mut h, "the popup gone", |h| !shows(h, "Bob is calling"));
    step_until(&mut h, "a declined call", |h| shows_part(h, "declined"));
}

#[test]
fn sip_trace_window_shows_the_messages_and_copies_them_all() {
    let (mut w, mut h) = World::new(false, |_| {});
    bob_calls(&mut w, &mut h);
    click(&mut h, "SIP trace");
    step_until(&mut h, "the trace window", |h| shows_part(h, "messages (the last"));
    step_until(&mut h, "Bob's INVITE in the list", |h| shows_part(h, "INVITE sip:alice@"));
    h.check_accessibility();
    click(&mut h, "Copy all");
    let text = w.clipboard.text().expect("copied");
    assert!(text.contains("received from udp:127.0.0.1:"), "{text}");
    assert!(text.contains("\nINVITE sip:alice@") && text.contains("\nSIP/2.0 200 OK"), "{text}");
    step_until(&mut h, "the copied notice", |h| shows_part(h, "SIP trace copied"));
}

/// Two processes: this test's window is the running instance; the real `orbitphone`
/// binary launched with Bob's URI (as a clicked link would) hands it over and exits, and
/// the window calls Bob.
#[test]
fn a_second_launch_hands_its_uri_to_the_running_window() {
    use orbitphone::net::single_instance::{self, Instance};
    let (mut w, mut h) = World::new(false, |_| {});
    let dir = std::env::temp_dir().join(format!("orbit-si-ui-{}", std::process::id()));
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("temp dir");
    let path = single_instance::socket_path_in(&dir, Some(&config));
    let Ok(Instance::First(listener)) = single_instance::claim(&path, None) else { panic!("first instance") };
    h.state_mut().listen_for_handover(listener.serve(w.rt.handle()));
    h.step();

    let second = |uri: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orbitphone"))
            .arg(uri)
            .env("ORBIT_RUNTIME_DIR", &dir)
            .env("ORBIT_CONFIG_DIR", &config)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run orbitphone")
    };
    let bob = w.bob.uri("bob");
    let out = second(&bob);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the second launch exits cleanly: {stderr}");
    assert!(stderr.contains("handed"), "{stderr}");
    // The window dials on its next frame (the hand-over woke it).
    step_until(&mut h, "the call to Bob", |h| shows(h, "Call with bob"));
    w.bob.wait(&w.rt, "the handed-over call", |e| matches!(e, Event::CallIncoming { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mute_button_follows_the_engine() {
    let (mut w, mut h) = World::new(false, |_| {});
    bob_calls(&mut w, &mut h);
    click(&mut h, "Mute");
    // The label changes only once the engine reported the call muted.
    step_until(&mut h, "Unmute", |h| shows(h, "Unmute"));
    assert!(h.state().model().calls.values().any(|c| c.muted));
    click(&mut h, "Unmute");
    step_until(&mut h, "Mute again", |h| shows(h, "Mute") && !shows(h, "Unmute"));
    assert!(h.state().model().calls.values().all(|c| !c.muted));
}

#[test]
fn settings_switch_accounts_and_theme_and_keep_them() {
    use orbitphone::ui::secrets::SecretStore;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("orbit-ui-settings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let toml = "ui_scale = 1.25\n\n[[accounts]]\naddress = \"alice@127.0.0.1\"\nregister = false\n\n[[accounts]]\naddress = \"bob@127.0.0.1\"\nregister = false\n";
    std::fs::write(dir.join("settings.toml"), toml).expect("settings");
    let store = MemoryStore::default();
    store.set("sip:alice@127.0.0.1", "a-pw").expect("store");
    store.set("sip:bob@127.0.0.1", "b-pw").expect("store");
    let mut h = form_app(&rt, &dir, store.clone());
    step_until(&mut h, "alice signed in", |h| shows_part(h, "alice@127.0.0.1: direct calls only"));
    assert_eq!(h.ctx.zoom_factor(), 1.25, "the saved UI scale is applied");

    click(&mut h, "Settings");
    step_until(&mut h, "the settings window", |h| shows(h, "Appearance"));
    h.check_accessibility();
    click(&mut h, "Use bob@127.0.0.1");
    step_until(&mut h, "bob signed in", |h| shows_part(h, "bob@127.0.0.1: direct calls only"));
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("saved");
    assert!(saved.find("bob@").expect("bob") < saved.find("alice@").expect("alice"), "bob is first now: {saved}");

    click(&mut h, "Settings");
    click(&mut h, "Dark");
    step_until(&mut h, "dark visuals", |h| h.ctx.theme() == egui::Theme::Dark);
    click(&mut h, "Light");
    step_until(&mut h, "light visuals", |h| !(h.ctx.theme() == egui::Theme::Dark));
    let saved = std::fs::read_to_string(dir.join("settings.toml")).expect("saved");
    assert!(saved.contains("theme = \"light\""), "{saved}");
    h.state_mut().shutdown();
    drop(h);
    // The next start uses bob and the light theme.
    let mut h = form_app(&rt, &dir, store);
    step_until(&mut h, "bob again", |h| shows_part(h, "bob@127.0.0.1: direct calls only"));
    assert!(!(h.ctx.theme() == egui::Theme::Dark));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Park mode "transfer to park extension": Carol plays the PBX's park extension.
#[test]
fn park_in_extension_mode_transfers_to_the_extension() {
    let (mut w, mut h) = World::build(
        false,
        MemoryNotifier::default(),
        |_| {},
        |acc, carol| {
            acc.park_extension = Some(carol.uri("700"));
        },
    );
    bob_calls(&mut w, &mut h);
    click(&mut h, "Park");
    step_until(&mut h, "Parking…", |h| shows(h, "Parking…"));
    let ev = w.bob.wait(&w.rt, "the REFER to the extension", |e| matches!(e, Event::TransferRequested { .. }));
    let Event::TransferRequested { target, .. } = ev else { unreachable!() };
    assert!(target.starts_with("sip:700@"), "{target}");
    w.carol.wait(&w.rt, "Bob at the park extension", |e| matches!(e, Event::CallIncoming { .. }));
    w.carol.send(&w.rt, Command::Answer { call: None });
    step_until(&mut h, "parked through the extension", |h| shows_part(h, "Parked through extension sip:700@"));
    assert!(!shows(&h, "Parked on"), "no orbit in this mode");
}

/// Attended park by extension through the window: Park calls the extension (Carol plays
/// the PBX), Complete park hands Bob over.
#[test]
fn attended_park_by_extension_from_the_window() {
    let (mut w, mut h) = World::build(
        false,
        MemoryNotifier::default(),
        |_| {},
        |acc, carol| {
            acc.park_extension = Some(carol.uri("700"));
            acc.park_attended = true;
        },
    );
    bob_calls(&mut w, &mut h);
    click(&mut h, "Park");
    w.carol.wait(&w.rt, "the call to the extension", |e| matches!(e, Event::CallIncoming { .. }));
    w.carol.send(&w.rt, Command::Answer { call: None });
    step_until(&mut h, "listening for the slot", |h| shows_part(h, "listen for the slot"));
    step_until(&mut h, "the consultation call up", |h| h.query_by_label("Complete park").is_some());
    click(&mut h, "Complete park");
    w.carol.wait(&w.rt, "Bob replacing Alice", |e| matches!(e, Event::CallIncoming { replaces: Some(_), .. }));
    step_until(&mut h, "parked through the extension", |h| shows_part(h, "Parked through extension sip:700@"));
}
