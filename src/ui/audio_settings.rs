//! The audio settings window: microphone, speaker and ringtone pickers, "Play test
//! tone", and the input level meter. It only draws what the engine reported
//! ([`AudioView`], fed by `audio_*` events) and turns clicks into [`Action`]s; the meter
//! runs (and so the window repaints) only while this window is open.

use super::app::Action;
use super::settings::AudioSettings;
use crate::phone::{AudioDevice, AudioRole, Command, Event};
use eframe::egui::{self, RichText};

/// What the window says when there is no sound card at all.
pub const NO_DEVICE_TEXT: &str = "No audio device found \u{2014} calls still connect without sound";

/// The engine's view of sound devices, as the window needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioView {
    /// Capture devices (after `devices`).
    pub inputs: Vec<AudioDevice>,
    /// Playback devices.
    pub outputs: Vec<AudioDevice>,
    /// The default input's name, when it really opens.
    pub default_input: Option<String>,
    /// The default output's name, when it really opens.
    pub default_output: Option<String>,
    /// A device list has arrived.
    pub listed: bool,
    /// The devices in use during the last call, tone or meter (`None`: silent).
    pub in_use: Option<(Option<String>, Option<String>)>,
    /// The last microphone level, dBFS (RMS, peak).
    pub level: Option<(i32, i32)>,
    /// The engine said no device is usable.
    pub unavailable: bool,
}

impl AudioView {
    /// Take an `audio_*` event.
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::AudioDevices { inputs, outputs, default_input, default_output } => {
                self.unavailable = default_input.is_none() && default_output.is_none();
                *self = AudioView {
                    inputs,
                    outputs,
                    default_input,
                    default_output,
                    listed: true,
                    unavailable: self.unavailable,
                    ..std::mem::take(self)
                };
            }
            Event::AudioRoute { input, output } => self.in_use = Some((input, output)),
            Event::AudioLevel { rms_dbfs, peak_dbfs } => self.level = Some((rms_dbfs, peak_dbfs)),
            Event::AudioUnavailable { .. } => self.unavailable = true,
            _ => {}
        }
    }

    /// Whether to show [`NO_DEVICE_TEXT`].
    pub fn no_device(&self) -> bool {
        self.unavailable
    }
}

fn label_of(devices: &[AudioDevice], chosen: &str) -> String {
    if chosen.is_empty() {
        return "System default".into();
    }
    devices
        .iter()
        .find(|d| d.id == chosen || d.name == chosen)
        .map_or_else(|| format!("{chosen} (not connected)"), |d| d.name.clone())
}

fn picker(
    ui: &mut egui::Ui,
    label: &str,
    devices: &[AudioDevice],
    chosen: &str,
    role: AudioRole,
    actions: &mut Vec<Action>,
) {
    egui::ComboBox::from_label(label).selected_text(label_of(devices, chosen)).width(320.0).show_ui(ui, |ui| {
        if ui.selectable_label(chosen.is_empty(), "System default").clicked() && !chosen.is_empty() {
            actions.push(Action::ChooseAudio { role, device: None });
        }
        for d in devices {
            let selected = d.id == chosen || d.name == chosen;
            let text = if d.name == d.id { d.name.clone() } else { format!("{} ({})", d.name, d.id) };
            if ui.selectable_label(selected, text).clicked() && !selected {
                actions.push(Action::ChooseAudio { role, device: Some(d.id.clone()) });
            }
        }
    });
}

/// Draw the audio settings window.
pub fn show(ctx: &egui::Context, view: &AudioView, chosen: &AudioSettings, actions: &mut Vec<Action>) {
    let mut open = true;
    egui::Window::new("Audio settings").collapsible(false).open(&mut open).show(ctx, |ui| {
        if view.no_device() {
            ui.label(RichText::new(NO_DEVICE_TEXT).strong());
            ui.add_space(6.0);
        }
        if !view.listed {
            ui.label("Looking for sound devices\u{2026}");
        }
        picker(ui, "Microphone", &view.inputs, &chosen.input, AudioRole::Input, actions);
        picker(ui, "Speaker", &view.outputs, &chosen.output, AudioRole::Output, actions);
        picker(ui, "Ringtone device", &view.outputs, &chosen.ring, AudioRole::Ring, actions);
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            if ui.button("Play test tone").on_hover_text("A one-second 440 Hz tone on the speaker").clicked() {
                actions.push(Action::Send(Command::TestTone));
            }
            if let Some((_, Some(out))) = &view.in_use {
                ui.label(format!("Playing on {out}"));
            }
        });
        ui.add_space(6.0);
        let (fraction, text) = match (view.level, &view.in_use) {
            (_, Some((None, _))) => (0.0, "No microphone".to_string()),
            (Some((rms, peak)), _) => {
                (((rms as f32 + 60.0) / 60.0).clamp(0.0, 1.0), format!("{rms} dBFS (peak {peak})"))
            }
            (None, _) => (0.0, "Waiting for the microphone\u{2026}".to_string()),
        };
        ui.horizontal(|ui| {
            ui.label("Input level");
            ui.add(egui::ProgressBar::new(fraction).desired_width(200.0).text(text));
        });
        ui.add_space(6.0);
        if ui.button("Done").clicked() {
            actions.push(Action::CloseAudioSettings);
        }
    });
    if !open {
        actions.push(Action::CloseAudioSettings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_follows_audio_events() {
        let mut v = AudioView::default();
        assert!(!v.no_device() && !v.listed);
        v.apply(Event::AudioDevices {
            inputs: vec![],
            outputs: vec![AudioDevice { id: "null".into(), name: "Discard all samples".into() }],
            default_input: None,
            default_output: None,
        });
        assert!(v.listed && v.no_device());
        assert_eq!(label_of(&v.outputs, "null"), "Discard all samples");
        assert_eq!(label_of(&v.outputs, ""), "System default");
        assert!(label_of(&v.outputs, "hw:9").contains("not connected"));
        v.apply(Event::AudioLevel { rms_dbfs: -30, peak_dbfs: -12 });
        assert_eq!(v.level, Some((-30, -12)));
        v.apply(Event::AudioDevices {
            inputs: vec![],
            outputs: vec![],
            default_input: Some("mic".into()),
            default_output: None,
        });
        assert!(!v.no_device());
        assert_eq!(v.level, Some((-30, -12)), "a new list keeps the meter");
    }
}
