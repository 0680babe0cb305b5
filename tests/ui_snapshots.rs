//! Snapshot images of the window (egui_kittest rendering with wgpu on Mesa's software
//! renderer, no display): the main window, a conversation window with a parked call, and
//! the ring-back popup, in light and dark. The view model is fed fixed engine events at a
//! fixed clock and drawn by the app's own view functions, so the images are stable; they
//! live in `tests/snapshots/`. Update with `UPDATE_SNAPSHOTS=1 cargo test --test ui_snapshots`.

use eframe::egui;
use egui_kittest::Harness;
use orbitphone::phone::api::{Event, Recall};
use orbitphone::ui::app::ViewState;
use orbitphone::ui::model::{Clock, HistoryEntry, Model};
use orbitphone::ui::{conversation, incoming, main_window};

/// 10:40:00 UTC on some day, shown as UTC.
const T0: f64 = 1_790_000_000.0 - (1_790_000_000.0 % 86_400.0) + 10.0 * 3600.0 + 40.0 * 60.0;

fn clock(at: f64) -> Clock {
    Clock { unix: at, utc_offset_s: 0 }
}

fn feed(model: &mut Model, events: Vec<Event>, at: f64) {
    for ev in events {
        model.apply(ev, &clock(at));
    }
}

/// Registered, talking to Bob, parked him on 7000 (ring-back in 45 s), one orbit busy,
/// a few recent calls.
fn parked_model() -> Model {
    let mut m = Model::new("sip:alice@example.com");
    feed(&mut m, vec![Event::Registered { account: "sip:alice@example.com".into(), expires: 600 }], T0);
    m.history = vec![
        HistoryEntry {
            direction: orbitphone::ui::model::Direction::Incoming,
            uri: "sip:carol@example.com".into(),
            name: "Carol".into(),
            at: T0 - 3600.0,
            seconds: 312,
            outcome: orbitphone::ui::model::Outcome::Answered,
        },
        HistoryEntry {
            direction: orbitphone::ui::model::Direction::Outgoing,
            uri: "sip:2001@example.com".into(),
            name: "2001".into(),
            at: T0 - 7200.0,
            seconds: 0,
            outcome: orbitphone::ui::model::Outcome::Failed,
        },
    ];
    feed(
        &mut m,
        vec![
            Event::CallIncoming {
                call: 1,
                from: "\"Bob\" <sip:bob@example.com>".into(),
                name: Some("Bob".into()),
                recall: None,
                replaces: None,
            },
            Event::CallEstablished {
                call: 1,
                party: "\"Bob\" <sip:bob@example.com>".into(),
                codec: Some("opus".into()),
            },
        ],
        T0,
    );
    feed(
        &mut m,
        vec![
            Event::ParkPending { call: 1 },
            Event::Parked {
                call: 1,
                orbit: "7000".into(),
                orbit_uri: "sip:7000@example.com".into(),
                retrieve_uri: "sip:7000@example.com;park-token=abc".into(),
                ringback_at: (T0 + 95.0) as u64,
                parkee: "\"Bob\" <sip:bob@example.com>".into(),
            },
            Event::CallEnded { call: 1, reason: "parked".into() },
            Event::OrbitStatus { orbit: "7000".into(), busy: true, parkee: Some("sip:bob@example.com".into()) },
        ],
        T0 + 50.0,
    );
    m
}

/// The parked call rings back (attempt 1 of 3).
fn ringback_model() -> Model {
    let mut m = parked_model();
    feed(
        &mut m,
        vec![
            Event::ParkRingback { call: 1, attempt: 1, of: 3 },
            Event::CallIncoming {
                call: 2,
                from: "sip:park@example.com".into(),
                name: None,
                recall: Some(Recall { orbit: "7000".into(), parkee: "\"Bob\" <sip:bob@example.com>".into() }),
                replaces: None,
            },
        ],
        T0 + 95.0,
    );
    m
}

/// Draw the main window and, optionally, the conversation windows and popups.
fn harness(model: Model, at: f64, dark: bool, conversations: bool) -> Harness<'static, (Model, ViewState)> {
    let mut h = Harness::builder().with_size(egui::vec2(1000.0, 660.0)).wgpu().build_ui_state(
        move |ui, (model, view): &mut (Model, ViewState)| {
            ui.ctx().set_theme(if dark { egui::Theme::Dark } else { egui::Theme::Light });
            let clock = clock(at);
            let mut actions = Vec::new();
            main_window::status_panel(ui, model, &mut actions);
            main_window::notices_panel(ui, model, &mut actions);
            main_window::show(ui, model, view, &clock, &mut actions);
            if conversations {
                let ctx = ui.ctx().clone();
                for (i, call) in model.conversations().enumerate() {
                    conversation::show(&ctx, i, call, model, view, &clock, &mut actions);
                }
                incoming::show(&ctx, model, &mut actions);
            }
        },
        (model, ViewState::default()),
    );
    h.run();
    h
}

// One image per test: egui_kittest wants each test's snapshot results in one harness.

#[test]
fn snapshot_main_window_light() {
    harness(parked_model(), T0 + 50.0, false, false).snapshot("main_window_light");
}

#[test]
fn snapshot_main_window_dark() {
    harness(parked_model(), T0 + 50.0, true, false).snapshot("main_window_dark");
}

#[test]
fn snapshot_conversation_parked_light() {
    harness(parked_model(), T0 + 50.0, false, true).snapshot("conversation_parked_light");
}

#[test]
fn snapshot_conversation_parked_dark() {
    harness(parked_model(), T0 + 50.0, true, true).snapshot("conversation_parked_dark");
}

#[test]
fn snapshot_incoming_ringback_light() {
    harness(ringback_model(), T0 + 95.0, false, true).snapshot("incoming_ringback_light");
}

#[test]
fn snapshot_incoming_ringback_dark() {
    harness(ringback_model(), T0 + 95.0, true, true).snapshot("incoming_ringback_dark");
}
