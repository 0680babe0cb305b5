//! One conversation window per call: party, timer, Mute, Hold/Resume, Keypad, Transfer,
//! Hang up and Park. After Park the window stays open and follows the park: "Parking…",
//! "Parked on 7001" (the orbit is a link that picks the call back up), Copy for IM, the
//! countdown to ring-back, and how it ended ("Picked up by Carol at 10:42").

use super::app::{Action, ViewState};
use super::main_window::{self, BAD, BUSY, OK};
use super::model::{Call, Clock, Model, ParkState, Phase};
use super::text;
use crate::phone::api::Command;
use eframe::egui;
use egui::{Color32, RichText};

fn status_line(call: &Call, clock: &Clock) -> (String, Color32) {
    match &call.phase {
        Phase::Dialing => ("Calling…".into(), BUSY),
        Phase::Ringing => ("Ringing…".into(), BUSY),
        Phase::Incoming => ("Incoming call".into(), BUSY),
        Phase::Established => {
            let t = text::duration(call.talk_seconds(clock).unwrap_or(0));
            if call.held_local {
                (format!("On hold · {t}"), BUSY)
            } else if call.held_remote {
                (format!("They put you on hold · {t}"), BUSY)
            } else {
                (format!("Connected · {t}"), OK)
            }
        }
        Phase::Ended { reason } => {
            let t = call.talk_seconds(clock).map(|s| format!(" · {}", text::duration(s))).unwrap_or_default();
            (format!("Call ended: {}{t}", text::end_reason(reason)), Color32::GRAY)
        }
    }
}

/// Draw the window of `call` (the `index`-th open one, for its first position).
pub fn show(
    ctx: &egui::Context,
    index: usize,
    call: &Call,
    model: &Model,
    view: &mut ViewState,
    clock: &Clock,
    actions: &mut Vec<Action>,
) {
    let title = format!("Call with {}", call.who());
    let pos = egui::pos2(330.0 + 24.0 * index as f32, 56.0 + 24.0 * index as f32);
    egui::Window::new(title)
        .id(egui::Id::unique(("conversation", call.no)))
        .default_pos(pos)
        .default_width(360.0)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| body(ui, call, model, view, clock, actions));
}

fn body(ui: &mut egui::Ui, call: &Call, model: &Model, view: &mut ViewState, clock: &Clock, actions: &mut Vec<Action>) {
    let no = call.no;
    ui.label(RichText::new(call.who()).size(22.0).strong());
    ui.label(RichText::new(main_window::party_line(call)).weak());
    let handed_to_park = call.is_ended() && call.park.is_some();
    if handed_to_park {
        // The park section below says where the call is; our own leg's end is a detail.
        let talked = call.talk_seconds(clock).map(text::duration).unwrap_or_default();
        ui.label(RichText::new(format!("You talked {talked}")).weak());
    } else {
        let (status, colour) = status_line(call, clock);
        ui.label(RichText::new(status).color(colour).strong());
    }
    if let Some(codec) = call.codec.as_ref().filter(|_| call.phase == Phase::Established) {
        ui.label(RichText::new(format!("Audio: {codec}")).weak().small());
        if let Some(st) = call.stats.as_ref() {
            ui.label(RichText::new(stats_line(st)).weak().small());
        }
    }
    if !call.dtmf_in.is_empty() {
        ui.label(RichText::new(format!("They pressed: {}", call.dtmf_in)).weak());
    }
    ui.add_space(6.0);

    let up = call.phase == Phase::Established;
    let parking = call.park.as_ref().is_some_and(|p| p.is_live());
    if !call.is_ended() {
        // Call controls only once the call is up; while it rings, Cancel/Hang up is all.
        if up {
            ui.horizontal_wrapped(|ui| {
                let mute_label = if call.muted { "Unmute" } else { "Mute" };
                if ui.add_enabled(up, egui::Button::new(mute_label)).clicked() {
                    actions.push(Action::Send(Command::Mute { call: Some(no), on: !call.muted }));
                }
                let hold_label = if call.held_local { "Resume" } else { "Hold" };
                if ui.add_enabled(up, egui::Button::new(hold_label)).clicked() {
                    let cmd = if call.held_local {
                        Command::Resume { call: Some(no) }
                    } else {
                        Command::Hold { call: Some(no) }
                    };
                    actions.push(Action::Send(cmd));
                }
                let keypad_open = view.keypad.contains(&no);
                if ui.add_enabled(up, egui::Button::new("Keypad").selected(keypad_open)).clicked() {
                    if keypad_open {
                        view.keypad.remove(&no);
                    } else {
                        view.keypad.insert(no);
                    }
                }
                let transfer_open = view.transfer.contains_key(&no);
                if ui.add_enabled(up, egui::Button::new("Transfer").selected(transfer_open)).clicked() {
                    if transfer_open {
                        view.transfer.remove(&no);
                    } else {
                        view.transfer.insert(no, String::new());
                    }
                }
                let park = ui
                    .add_enabled(up && !parking, egui::Button::new(RichText::new("Park").strong()))
                    .on_hover_text("Park this call on an orbit (Ctrl+P)");
                if park.clicked() {
                    actions.push(Action::Send(Command::Park { call: Some(no) }));
                }
            });
        }
        ui.add_space(4.0);
        let hang_label = match call.phase {
            Phase::Dialing | Phase::Ringing => "Cancel",
            _ => "Hang up",
        };
        let hang = egui::Button::new(RichText::new(hang_label).color(Color32::WHITE).strong())
            .fill(BAD)
            .min_size(egui::vec2(120.0, 30.0));
        if ui.add(hang).clicked() {
            actions.push(Action::Send(Command::Hangup { call: Some(no) }));
        }
        if up && view.keypad.contains(&no) {
            ui.add_space(6.0);
            if let Some(key) = main_window::keypad(ui, &format!("Keypad for call {no}"), 52.0) {
                actions.push(Action::Send(Command::Dtmf { digits: key.to_string(), call: Some(no) }));
            }
        }
        if up && view.transfer.contains_key(&no) {
            transfer_row(ui, call, model, view, actions);
        }
    }
    if let Some(t) = &call.transfer {
        ui.label(t);
    }
    if let Some(e) = &call.error {
        ui.label(RichText::new(e).color(BAD));
    }
    if call.park.is_some() {
        ui.separator();
        park_section(ui, call, model, view, clock, actions);
    }
    if call.is_ended() {
        ui.add_space(6.0);
        let label = if parking { "Close (the call stays parked)" } else { "Close" };
        if ui.button(label).clicked() {
            actions.push(Action::Close(no));
        }
    }
}

fn transfer_row(ui: &mut egui::Ui, call: &Call, model: &Model, view: &mut ViewState, actions: &mut Vec<Action>) {
    let no = call.no;
    ui.add_space(6.0);
    let label = ui.label("Transfer to");
    let target = view.transfer.entry(no).or_default();
    ui.horizontal(|ui| {
        let edit = ui
            .add(egui::TextEdit::singleline(target).hint_text("number or address").desired_width(180.0))
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let go = ui.add_enabled(!target.trim().is_empty(), egui::Button::new("Transfer now"));
        if (enter || go.clicked()) && !target.trim().is_empty() {
            actions.push(Action::Send(Command::Transfer { target: target.trim().to_string(), call: Some(no) }));
        }
    });
    // Attended: connect this call to another one we have up.
    for other in model.calls.values().filter(|c| c.no != no && c.phase == Phase::Established) {
        if ui
            .button(format!("Connect to {}", other.who()))
            .on_hover_text("Attended transfer: join the two calls and leave")
            .clicked()
        {
            actions.push(Action::Send(Command::TransferAttended { a: no, b: other.no }));
        }
    }
}

fn park_section(
    ui: &mut egui::Ui,
    call: &Call,
    model: &Model,
    view: &mut ViewState,
    clock: &Clock,
    actions: &mut Vec<Action>,
) {
    let Some(park) = &call.park else { return };
    let orbit = park.orbit.as_ref();
    match (&park.state, orbit) {
        (ParkState::Parked, Some(o)) => {
            ui.horizontal(|ui| {
                ui.label(RichText::new("Parked on").size(18.0));
                let link = ui
                    .link(main_window::orbit_link_text(ui, &o.orbit, 22.0))
                    .on_hover_text(format!("Pick the call back up ({})", o.retrieve_uri));
                if link.clicked() {
                    actions.push(Action::Send(Command::Retrieve { target: o.retrieve_uri.clone() }));
                }
                if ui.button("Copy").on_hover_text("Copy a line to paste into a chat").clicked() {
                    actions.push(Action::Copy { call: call.no, text: text::im_line(o) });
                }
            });
            if let Some(s) = park.ringback_in(clock) {
                ui.label(text::ringback_countdown(s));
            }
            ui.label(
                RichText::new(format!("Anyone can dial {} to pick up {}.", o.orbit, text::friendly(&o.parkee))).weak(),
            );
        }
        (state, _) => {
            let line = text::park_notice(state, orbit, clock, &model.account);
            let colour = match state {
                ParkState::Failed { .. } => BAD,
                ParkState::Retrieved { .. } => OK,
                ParkState::Pending | ParkState::RingingBack { .. } | ParkState::Consulting { .. } => BUSY,
                _ => ui.visuals().text_color(),
            };
            ui.horizontal(|ui| {
                if matches!(state, ParkState::Pending) {
                    ui.spinner();
                }
                ui.label(RichText::new(line).size(18.0).color(colour));
            });
            if let (ParkState::Fallback { to }, _) = (state, orbit) {
                ui.label(RichText::new(format!("({})", text::friendly(to))).weak());
            }
            if let ParkState::Consulting { .. } = state
                && ui
                    .button(RichText::new("Complete park").strong())
                    .on_hover_text("Hand the call to the slot you heard (attended transfer)")
                    .clicked()
            {
                actions.push(Action::Send(Command::Park { call: Some(call.no) }));
            }
            if let (ParkState::RingingBack { .. }, Some(o)) = (state, orbit) {
                ui.label(RichText::new(format!("Still on {} until you answer.", o.orbit)).weak());
            }
        }
    }
    if view.copied.is_some_and(|(c, _)| c == call.no) {
        ui.label(RichText::new("Copied — paste it into a chat").color(OK));
    }
    if let Some(e) = &view.copy_error {
        ui.label(RichText::new(e).color(BAD));
    }
}

/// One line of media figures: loss, jitter, buffer depth and round trip.
fn stats_line(st: &crate::phone::CallStats) -> String {
    let rtt = st.rtt_ms.map(|r| format!("{r:.0} ms")).unwrap_or_else(|| "–".to_string());
    format!(
        "Loss {:.1} % · jitter {:.1} ms · buffer {} ms · round trip {rtt}",
        st.loss_percent, st.jitter_ms, st.jitter_buffer_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line_reads_well_before_and_after_the_round_trip_is_known() {
        let mut st = crate::phone::CallStats {
            codec: "PCMU".into(),
            packets_sent: 10,
            packets_received: 10,
            packets_lost: 0,
            loss_percent: 0.0,
            jitter_ms: 1.26,
            jitter_buffer_ms: 40,
            rtt_ms: None,
            remote_loss_percent: None,
            remote_jitter_ms: None,
            rtcp_received: 0,
            srtp: false,
        };
        assert_eq!(stats_line(&st), "Loss 0.0 % · jitter 1.3 ms · buffer 40 ms · round trip –");
        st.rtt_ms = Some(23.4);
        assert!(stats_line(&st).ends_with("round trip 23 ms"), "{}", stats_line(&st));
    }
}
