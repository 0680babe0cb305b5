#![allow(dead_code)]
//! Driving the real window in `egui_kittest` tests: run frames until something shows,
//! find by label, click. Included only by the window tests (`#[path]`), so the other test
//! binaries do not link the GUI test stack.

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::phone_driver::{self, PhoneConfig};
use orbitphone::net::serve;
use orbitphone::ui::app::DemoCaller;
use orbitphone::ui::clipboard::MemoryClipboard;
use orbitphone::ui::{AppOptions, OrbitApp, Start};
use std::time::{Duration, Instant};

/// How long a window test waits for the engine (which runs in real time on its threads).
pub const WAIT: Duration = Duration::from_secs(15);

/// Run frames until `pred` holds; panics naming `what` and dumping the view model.
pub fn step_until(h: &mut Harness<'_, OrbitApp>, what: &str, pred: impl Fn(&Harness<'_, OrbitApp>) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        h.step();
        if pred(h) {
            h.step();
            return;
        }
        assert!(Instant::now() < deadline, "window never showed {what}; model: {:#?}", h.state().model());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A widget with exactly this label is on screen.
pub fn shows(h: &Harness<'_, OrbitApp>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

/// A widget whose label contains `part` is on screen.
pub fn shows_part(h: &Harness<'_, OrbitApp>, part: &str) -> bool {
    h.query_all_by_label_contains(part).next().is_some()
}

/// Click the widget with this label and let two frames run.
pub fn click(h: &mut Harness<'_, OrbitApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

/// The window signed in as `me` of a running local mode (its own engine, in-memory
/// clipboard, keyring and notifier), with "Have Bob call me" when `demo`.
pub fn local_mode_app(rt: &tokio::runtime::Runtime, local: &serve::LocalMode, demo: bool) -> OrbitApp {
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
    app
}

/// A 1000×720 harness drawing `app`.
pub fn harness(app: OrbitApp) -> Harness<'static, OrbitApp> {
    Harness::builder().with_size(egui::vec2(1000.0, 720.0)).build_ui_state(|ui, app: &mut OrbitApp| app.show(ui), app)
}
