//! The main window: the account's registration line (always visible), number entry with
//! a dial pad, the Parked calls panel, and recent calls.

use super::app::{Action, ViewState};
use super::model::{Call, Clock, Direction, Model, Outcome, ParkState, Phase, Registration};
use super::text;
use crate::phone::api::{CallNo, Command};
use eframe::egui;
use egui::{Color32, RichText};

/// Green for "registered", amber for "working on it", red for failures.
pub const OK: Color32 = Color32::from_rgb(0x2e, 0xa0, 0x43);
/// Amber.
pub const BUSY: Color32 = Color32::from_rgb(0xd2, 0x99, 0x22);
/// Red.
pub const BAD: Color32 = Color32::from_rgb(0xd7, 0x3a, 0x49);

/// The status line's words: "Registered as alice@example.com", "Not registered: wrong password".
pub fn registration_text(model: &Model) -> String {
    let who = text::bare_uri(&model.account).trim_start_matches("sip:").trim_start_matches("sips:").to_string();
    match &model.registration {
        Registration::Offline if who.is_empty() => "Offline: no account".into(),
        Registration::Offline => format!("Offline ({who})"),
        Registration::Registering => format!("Signing in as {who}…"),
        Registration::Registered { .. } => format!("Registered as {who}"),
        Registration::Failed { reason } => format!("Not registered ({who}): {}", text::error(reason).to_lowercase()),
        Registration::Direct => format!("{who}: direct calls only (not registering)"),
    }
}

fn registration_colour(r: &Registration) -> Color32 {
    match r {
        Registration::Registered { .. } | Registration::Direct => OK,
        Registration::Registering => BUSY,
        Registration::Failed { .. } => BAD,
        Registration::Offline => Color32::GRAY,
    }
}

/// The top bar: registration state, always visible, and the Account button.
pub fn status_panel(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    egui::Panel::top("status").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            let colour = registration_colour(&model.registration);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().circle_filled(rect.center(), 5.0, colour);
            ui.label(RichText::new(registration_text(model)).strong());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Account").on_hover_text("Change the SIP account").clicked() {
                    actions.push(Action::EditAccount);
                }
                if ui.button("Audio").on_hover_text("Microphone, speaker, test tone").clicked() {
                    actions.push(Action::OpenAudioSettings);
                }
                if ui.button("Settings").on_hover_text("Accounts, theme and UI scale").clicked() {
                    actions.push(Action::ShowSettings);
                }
                if ui.button("SIP trace").on_hover_text("The last SIP messages, for support").clicked() {
                    actions.push(Action::ShowTrace);
                }
            });
        });
        ui.add_space(4.0);
    });
}

/// Messages not tied to a call, each with a Dismiss button.
pub fn notices_panel(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    if model.notices.is_empty() {
        return;
    }
    egui::Panel::bottom("notices").show(ui, |ui| {
        for (i, n) in model.notices.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("Dismiss").on_hover_text("Hide this message").clicked() {
                    actions.push(Action::DismissNotice(i));
                }
                ui.add(egui::Label::new(n).wrap());
            });
        }
    });
}

/// An orbit number drawn as a link (underlined, link colour): clicking it retrieves the call.
pub fn orbit_link_text(ui: &egui::Ui, orbit: &str, size: f32) -> RichText {
    RichText::new(orbit).size(size).underline().color(ui.visuals().hyperlink_color)
}

/// The call that Ctrl+P parks: the newest established call that we do not hold, else any established.
pub fn active_call(model: &Model) -> Option<CallNo> {
    let up = || model.calls.values().rev().filter(|c| c.phase == Phase::Established);
    up().find(|c| !c.held_local).or_else(|| up().next()).map(|c| c.no)
}

/// The outgoing call that Esc cancels.
pub fn ringing_outgoing(model: &Model) -> Option<CallNo> {
    model
        .calls
        .values()
        .rev()
        .find(|c| c.direction == Direction::Outgoing && matches!(c.phase, Phase::Dialing | Phase::Ringing))
        .map(|c| c.no)
}

const KEYS: [[&str; 3]; 4] = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"], ["*", "0", "#"]];

/// A 4×3 keypad; returns the key pressed. `name` prefixes each key's accessible name.
pub fn keypad(ui: &mut egui::Ui, name: &str, key_width: f32) -> Option<&'static str> {
    let mut pressed = None;
    egui::Grid::new(("keypad", name)).spacing([6.0, 6.0]).show(ui, |ui| {
        for row in KEYS {
            for key in row {
                let b = egui::Button::new(RichText::new(key).size(18.0)).min_size(egui::vec2(key_width, 34.0));
                if ui.add(b).accessible_name(format!("{name} {key}")).clicked() {
                    pressed = Some(key);
                }
            }
            ui.end_row();
        }
    });
    pressed
}

/// Busy-lamp of the park service's orbits: who waits where; click to pick up.
fn orbits_panel(ui: &mut egui::Ui, model: &Model, actions: &mut Vec<Action>) {
    if model.orbits.is_empty() {
        return;
    }
    ui.heading("Orbits");
    for (orbit, parkee) in &model.orbits {
        ui.horizontal(|ui| {
            let link =
                ui.link(RichText::new(orbit.as_str()).strong()).on_hover_text(format!("Pick up the call on {orbit}"));
            if link.clicked() {
                actions.push(Action::Send(Command::Retrieve { target: orbit.clone() }));
            }
            let who = parkee.as_deref().map(text::bare_uri).unwrap_or_default();
            ui.label(who.trim_start_matches("sip:").to_string());
        });
    }
    ui.separator();
}

/// Dial entry, dial pad, Parked calls, Recent calls.
pub fn show(ui: &mut egui::Ui, model: &Model, view: &mut ViewState, clock: &Clock, actions: &mut Vec<Action>) {
    egui::Panel::left("phone").resizable(false).exact_size(300.0).show(ui, |ui| {
        ui.add_space(8.0);
        dialer(ui, view, actions);
        if view.demo_caller {
            ui.add_space(6.0);
            let b = ui.button("Have Bob call me").on_hover_text("The demo line Bob calls you: answer, then try Park");
            if b.clicked() {
                actions.push(Action::HaveBobCallMe);
            }
        }
        ui.add_space(10.0);
        ui.separator();
        parked_panel(ui, model, clock, view, actions);
        ui.separator();
        orbits_panel(ui, model, actions);
        recent(ui, model, clock, actions);
    });
    egui::CentralPanel::default().show(ui, |ui| {
        let open = model.conversations().filter(|c| !view.hidden.contains(&c.no)).count();
        if open == 0 && model.incoming().next().is_none() {
            ui.centered_and_justified(|ui| {
                ui.label(RichText::new("No calls. Type a number or SIP address and press Enter.\nCtrl+P parks the active call; Esc cancels a call that is still ringing.").weak());
            });
        }
    });
}

fn dialer(ui: &mut egui::Ui, view: &mut ViewState, actions: &mut Vec<Action>) {
    let label = ui.label("Number or SIP address");
    ui.horizontal(|ui| {
        let edit = egui::TextEdit::singleline(&mut view.dial)
            .hint_text("7001 or bob@example.com")
            .desired_width(ui.available_width() - 56.0);
        let resp = ui.add(edit).labelled_by(label.id);
        if view.focus_dial {
            resp.request_focus();
            view.focus_dial = false;
        }
        let enter = resp.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let call = ui.add_enabled(
            !view.dial.trim().is_empty(),
            egui::Button::new(RichText::new("Call").strong()).fill(OK.gamma_multiply(0.8)),
        );
        if (enter || call.clicked()) && !view.dial.trim().is_empty() {
            actions.push(Action::Send(Command::Dial { target: view.dial.trim().to_string() }));
        }
    });
    ui.add_space(6.0);
    if let Some(key) = keypad(ui, "Dial pad", 88.0) {
        view.dial.push_str(key);
    }
}

fn parked_panel(ui: &mut egui::Ui, model: &Model, clock: &Clock, view: &mut ViewState, actions: &mut Vec<Action>) {
    ui.heading("Parked calls");
    let mut any = false;
    for (call, park, orbit) in model.parked() {
        any = true;
        ui.horizontal(|ui| {
            let link = ui
                .link(orbit_link_text(ui, &orbit.orbit, 16.0))
                .on_hover_text(format!("Pick up the call from {}", text::friendly(&orbit.parkee)));
            if link.clicked() {
                actions.push(Action::Send(Command::Retrieve { target: orbit.retrieve_uri.clone() }));
            }
            // The party reopens the conversation window if it was closed.
            let who = text::friendly(&orbit.parkee);
            let party = ui
                .add(egui::Button::new(who.as_str()).frame(false))
                .on_hover_text("Show this park's window")
                .accessible_name(format!("Show the parked call with {who}"));
            if party.clicked() {
                view.hidden.remove(&call.no);
            }
            let when = match (&park.state, park.ringback_in(clock)) {
                (ParkState::RingingBack { attempt, of }, _) => {
                    format!("ringing you back ({attempt} of {of})")
                }
                (_, Some(s)) => format!("rings back in {}", text::duration(s.ceil() as u64)),
                _ => String::new(),
            };
            ui.label(RichText::new(when).weak());
        });
    }
    if !any {
        ui.label(RichText::new("No parked calls").weak());
    }
}

fn outcome_text(c: &super::model::HistoryEntry) -> String {
    let arrow = match c.direction {
        Direction::Incoming => "in",
        Direction::Outgoing => "out",
    };
    match c.outcome {
        Outcome::Answered => format!("{arrow}, {}", text::duration(c.seconds)),
        Outcome::Missed => "missed".into(),
        Outcome::Declined => "declined".into(),
        Outcome::Failed => format!("{arrow}, not connected"),
        Outcome::Parked => format!("{arrow}, parked"),
    }
}

fn recent(ui: &mut egui::Ui, model: &Model, clock: &Clock, actions: &mut Vec<Action>) {
    ui.heading("Recent calls");
    if model.history.is_empty() {
        ui.label(RichText::new("No calls yet").weak());
        return;
    }
    egui::ScrollArea::vertical().auto_shrink([false, true]).show(ui, |ui| {
        for h in model.history.iter().take(30) {
            ui.horizontal(|ui| {
                let colour = if h.outcome == Outcome::Missed { BAD } else { ui.visuals().text_color() };
                let b = ui
                    .add(egui::Button::new(RichText::new(&h.name).color(colour)).frame(false))
                    .on_hover_text(format!("Call {} again", h.uri))
                    .accessible_name(format!("Call {} again", h.name));
                if b.clicked() {
                    actions.push(Action::Send(Command::Dial { target: h.uri.clone() }));
                }
                ui.label(RichText::new(format!("{} · {}", clock.hhmm(h.at), outcome_text(h))).weak());
            });
        }
    });
}

/// The party line under a conversation's heading.
pub fn party_line(call: &Call) -> String {
    text::bare_uri(&call.party)
}
