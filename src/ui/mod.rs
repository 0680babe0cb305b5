//! The desktop app (eframe/egui). It talks to the engine only through
//! [`crate::phone::Command`]s and [`crate::phone::Event`]s, like the CLI:
//! `app` runs the frame loop, `model` is the pure view model, one file per screen.

pub mod account_form;
pub mod app;
pub mod audio_settings;
pub mod clipboard;
pub mod conversation;
pub mod incoming;
pub mod main_window;
pub mod model;
pub mod notify;
pub mod secrets;
pub mod settings;
pub mod settings_window;
pub mod text;
pub mod trace_window;
pub mod tray;

pub use app::{AppOptions, OrbitApp, Start};
