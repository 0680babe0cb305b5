#![allow(dead_code)]
//! Driving the real window in `egui_kittest` tests: run frames until something shows,
//! find by label, click. Included only by the window tests (`#[path]`), so the other test
//! binaries do not link the GUI test stack.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::ui::OrbitApp;
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
