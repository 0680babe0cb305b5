//! The account form: SIP address, password, server, transport, park mode. Shown on first
//! run and whenever the password is needed (no keyring, or none saved): the form says
//! where the password goes, and never writes it to disk.

use super::app::Action;
use super::main_window::BAD;
use super::settings::{AccountSettings, ParkMode};
use eframe::egui;
use egui::RichText;

/// The form's fields while the user edits them.
pub struct AccountForm {
    account: AccountSettings,
    password: String,
    first_run: bool,
    error: Option<String>,
    /// Where the password goes (keyring) or why it is asked for each time.
    note: String,
}

impl AccountForm {
    /// A form filled with `account`; `first_run` changes the greeting and hides Cancel.
    pub fn new(account: AccountSettings, first_run: bool) -> AccountForm {
        AccountForm { account, password: String::new(), first_run, error: None, note: String::new() }
    }

    /// Say where the password is kept (or why it is asked for each time) under the fields.
    pub fn with_note(mut self, note: String) -> AccountForm {
        self.note = note;
        self
    }

    fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str, password: bool) -> egui::Response {
        let l = ui.label(label);
        let r = ui
            .add(egui::TextEdit::singleline(value).hint_text(hint).password(password).desired_width(300.0))
            .labelled_by(l.id);
        ui.end_row();
        r
    }

    /// Draw the form.
    pub fn show(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        ui.add_space(12.0);
        ui.heading(if self.first_run { "Welcome to Orbit — set up your SIP account" } else { "SIP account" });
        ui.add_space(8.0);
        let mut submit = false;
        egui::Grid::new("account").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            Self::field(ui, "SIP address", &mut self.account.address, "alice@example.com", false);
            let hint = if self.note.starts_with("No system keyring") {
                "asked at each start"
            } else {
                "kept in the system keyring"
            };
            let pw = Self::field(ui, "Password", &mut self.password, hint, true);
            submit |= pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            Self::field(ui, "Display name", &mut self.account.display_name, "Alice Smith", false);
            Self::field(ui, "Server or proxy", &mut self.account.proxy, "empty: the address's domain", false);
            Self::field(ui, "Authentication user", &mut self.account.auth_user, "empty: the address's user", false);
            let l = ui.label("Transport");
            egui::ComboBox::from_id_salt("transport")
                .selected_text(self.account.transport.to_uppercase())
                .show_ui(ui, |ui| {
                    for t in ["udp", "tcp", "tls"] {
                        ui.selectable_value(&mut self.account.transport, t.to_string(), t.to_uppercase());
                    }
                })
                .response
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Park mode");
            egui::ComboBox::from_id_salt("park_mode")
                .selected_text(park_mode_text(self.account.park_mode))
                .show_ui(ui, |ui| {
                    for m in [ParkMode::Service, ParkMode::Extension, ParkMode::ExtensionAttended] {
                        ui.selectable_value(&mut self.account.park_mode, m, park_mode_text(m));
                    }
                })
                .response
                .labelled_by(l.id);
            ui.end_row();
            match self.account.park_mode {
                ParkMode::Service => {
                    Self::field(ui, "Park service", &mut self.account.park_uri, "empty: sip:park@<domain>", false);
                }
                ParkMode::Extension | ParkMode::ExtensionAttended => {
                    Self::field(ui, "Park extension", &mut self.account.park_extension, "700", false);
                }
            }
            ui.label("");
            ui.checkbox(&mut self.account.register, "Register with the server (off: direct calls by IP only)");
            ui.end_row();
        });
        ui.add_space(8.0);
        if !self.note.is_empty() {
            ui.label(RichText::new(&self.note).weak());
        }
        ui.add_space(8.0);
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(BAD));
        }
        ui.horizontal(|ui| {
            submit |= ui.add(egui::Button::new(RichText::new("Sign in").strong())).clicked();
            if !self.first_run && ui.button("Cancel").clicked() {
                actions.push(Action::CancelAccount);
            }
        });
        if submit {
            match self.account.problem() {
                Some(p) => self.error = Some(p),
                None => actions.push(Action::SignIn { account: self.account.clone(), password: self.password.clone() }),
            }
        }
    }
}

/// The park mode as the form names it.
fn park_mode_text(mode: ParkMode) -> &'static str {
    match mode {
        ParkMode::Service => "Orbit park service",
        ParkMode::Extension => "Transfer to park extension",
        ParkMode::ExtensionAttended => "Transfer to park extension, hear the slot first",
    }
}
