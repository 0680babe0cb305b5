//! The "SIP trace" window, for support: the last SIP messages the phone sent and received
//! (newest at the bottom), each with its time and peer, expandable to the full message,
//! and a Copy all button that puts the whole trace on the clipboard for a ticket.

use super::app::Action;
use crate::net::sip_trace::{self, SipTrace};
use eframe::egui;
use egui::RichText;

/// Draw the trace window while `open`; closing it clears `open`.
pub fn show(ctx: &egui::Context, open: &mut bool, trace: Option<&SipTrace>, actions: &mut Vec<Action>) {
    let messages = trace.map(SipTrace::snapshot).unwrap_or_default();
    egui::Window::new("SIP trace").id(egui::Id::unique("sip-trace")).open(open).default_size([640.0, 420.0]).show(
        ctx,
        |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("{} messages (the last {} are kept)", messages.len(), sip_trace::TRACE_LEN));
                if ui
                    .add_enabled(!messages.is_empty(), egui::Button::new("Copy all"))
                    .on_hover_text("Copy the whole trace, to paste into a support request")
                    .clicked()
                {
                    actions.push(Action::CopyTrace(sip_trace::as_text(&messages)));
                }
            });
            ui.separator();
            if messages.is_empty() {
                ui.label(RichText::new("No SIP messages yet.").weak());
                return;
            }
            egui::ScrollArea::vertical().stick_to_bottom(true).auto_shrink([false, false]).show(ui, |ui| {
                for (i, m) in messages.iter().enumerate() {
                    let arrow = if m.direction == "sent" { "→" } else { "←" };
                    let head =
                        format!("{} {arrow} {} {}", sip_trace::clock_text(m.at), m.peer, sip_trace::first_line(m));
                    egui::CollapsingHeader::new(RichText::new(head).monospace()).id_salt(("trace", i)).show(ui, |ui| {
                        ui.add(egui::Label::new(RichText::new(m.text.trim_end()).monospace()).selectable(true));
                    });
                }
            });
        },
    );
}
