//! The Settings window: accounts (pick the one to use, add, remove) and appearance
//! (light/dark/system theme, UI scale). Changes are saved to `settings.toml` at once.
//! (Audio devices live in their own section, drawn elsewhere.)

use super::app::Action;
use super::settings::{Settings, ThemeChoice};
use eframe::egui;
use egui::RichText;

/// The UI scales offered by the slider.
pub const SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.75..=2.0;

/// Draw the window while `open`. Theme and scale are edited in `settings` directly
/// (the app applies and saves them); account changes come back as actions.
pub fn show(ctx: &egui::Context, open: &mut bool, settings: &mut Settings, actions: &mut Vec<Action>) {
    egui::Window::new("Settings").id(egui::Id::unique("settings-window")).open(open).default_width(420.0).show(
        ctx,
        |ui| {
            ui.heading("Accounts");
            let active = settings.active.min(settings.accounts.len().saturating_sub(1));
            if settings.accounts.is_empty() {
                ui.label(RichText::new("No saved account.").weak());
            }
            for (i, acc) in settings.accounts.iter().enumerate() {
                ui.horizontal(|ui| {
                    let name = acc.address.trim();
                    if i == active {
                        ui.label(RichText::new(name).strong());
                        ui.label(RichText::new("(in use)").weak());
                    } else {
                        ui.label(name);
                        if ui.button(format!("Use {name}")).on_hover_text("Sign in with this account").clicked() {
                            actions.push(Action::SwitchAccount(i));
                        }
                        if ui.button(format!("Remove {name}")).clicked() {
                            actions.push(Action::RemoveAccount(i));
                        }
                    }
                });
            }
            if ui.button("Add account").clicked() {
                actions.push(Action::AddAccount);
            }
            ui.separator();
            ui.heading("Appearance");
            let before = (settings.theme, settings.ui_scale);
            let l = ui.label("Theme");
            ui.horizontal(|ui| {
                for (t, name) in
                    [(ThemeChoice::System, "System"), (ThemeChoice::Light, "Light"), (ThemeChoice::Dark, "Dark")]
                {
                    ui.radio_value(&mut settings.theme, t, name);
                }
            })
            .response
            .labelled_by(l.id);
            ui.horizontal(|ui| {
                let l = ui.label("UI scale");
                ui.add(egui::Slider::new(&mut settings.ui_scale, SCALE_RANGE).step_by(0.05).fixed_decimals(2))
                    .labelled_by(l.id);
                if ui.small_button("Reset").on_hover_text("Back to the system's scale").clicked() {
                    settings.ui_scale = 1.0;
                }
            });
            if (settings.theme, settings.ui_scale) != before {
                actions.push(Action::SaveSettings);
            }
        },
    );
}
