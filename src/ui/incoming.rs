//! The incoming call popup: who is calling, Answer / Decline. A parked call coming back
//! says so: "Parked call returning from 7001 — Bob (attempt 1 of 3)".

use super::app::Action;
use super::main_window::{BAD, OK};
use super::model::Model;
use super::text;
use crate::phone::api::Command;
use eframe::egui;
use egui::{Color32, RichText};

/// One popup per ringing call, stacked from the top.
pub fn show(ctx: &egui::Context, model: &Model, actions: &mut Vec<Action>) {
    for (i, call) in model.incoming().enumerate() {
        let title = if call.recall.is_some() { "Parked call returning" } else { "Incoming call" };
        egui::Window::new(title)
            .id(egui::Id::unique(("incoming", call.no)))
            .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 48.0 + 150.0 * i as f32))
            .collapsible(false)
            .resizable(false)
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                ui.set_min_width(320.0);
                ui.label(RichText::new(model.incoming_title(call)).size(18.0).strong());
                if call.recall.is_none() {
                    ui.label(RichText::new(text::bare_uri(&call.party)).weak());
                } else {
                    ui.label(RichText::new("You parked this call. Answer to take it back.").weak());
                }
                if call.replaces.is_some() {
                    ui.label(RichText::new("Transferred to you: answering replaces your current call").weak());
                }
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    let answer = egui::Button::new(RichText::new("Answer").color(Color32::WHITE).strong())
                        .fill(OK)
                        .min_size(egui::vec2(110.0, 32.0));
                    if ui.add(answer).clicked() {
                        actions.push(Action::Send(Command::Answer { call: Some(call.no) }));
                    }
                    let decline = egui::Button::new(RichText::new("Decline").color(Color32::WHITE).strong())
                        .fill(BAD)
                        .min_size(egui::vec2(110.0, 32.0));
                    if ui.add(decline).clicked() {
                        actions.push(Action::Send(Command::Hangup { call: Some(call.no) }));
                    }
                });
            });
    }
}
