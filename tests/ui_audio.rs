//! The audio settings window, clicked by label (egui_kittest over AccessKit), with a
//! real engine that uses the sound card — on this machine there is none, so the window
//! must say so, still list what ALSA offers (its `null` device), play the test tone and
//! run the meter without a panic, and remember a chosen device in settings.toml.

#[path = "common/window.rs"]
mod window;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::media_task::AudioIo;
use orbitphone::net::phone_driver::{self, PhoneConfig};
use orbitphone::phone::account::Account;
use orbitphone::ui::audio_settings::NO_DEVICE_TEXT;
use orbitphone::ui::clipboard::MemoryClipboard;
use orbitphone::ui::settings::Settings;
use orbitphone::ui::{AppOptions, OrbitApp, Start};
use window::*;

#[test]
fn audio_settings_without_a_sound_card() {
    let has_card = std::fs::read_dir("/dev/snd")
        .is_ok_and(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("pcm")));
    if has_card {
        eprintln!("this machine has a sound card; the no-device checks do not apply");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let config_dir = std::env::temp_dir().join(format!("orbit-ui-audio-{}", std::process::id()));
    let phone = rt
        .block_on(phone_driver::start(PhoneConfig {
            account: Account { register: false, ..Account::new("sip:me@127.0.0.1") },
            listen: "127.0.0.1:0".parse().expect("addr"),
            ca_file: None,
            audio: AudioIo { sound_card: true, ..Default::default() },
        }))
        .expect("engine");
    let app = OrbitApp::new(AppOptions {
        welcome: None,
        runtime: rt.handle().clone(),
        config_dir: Some(config_dir.clone()),
        clipboard: Box::new(MemoryClipboard::default()),
        start: Start::Running { phone, registers: false },
        dial: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        secrets: std::sync::Arc::new(orbitphone::ui::secrets::MemoryStore::default()),
        notifier: std::sync::Arc::new(orbitphone::ui::notify::MemoryNotifier::default()),
    });
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 720.0))
        .build_ui_state(|ui, app: &mut OrbitApp| app.show(ui), app);

    // The engine said at start that there is no sound card: a notice, before any click.
    step_until(&mut h, "the no-device notice", |h| {
        h.state().model().notices.iter().any(|n| n.contains("audio device"))
    });
    h.get_by_label("Audio").click();
    step_until(&mut h, "the device list", |h| h.state().model().audio.listed);
    assert!(shows(&h, NO_DEVICE_TEXT), "the window says there is no device");
    assert!(shows(&h, "Microphone") && shows(&h, "Speaker") && shows(&h, "Ringtone device"));
    // The meter runs while the window is open: no microphone reads as silence.
    step_until(&mut h, "a meter reading", |h| h.state().model().audio.level.is_some());
    assert_eq!(h.state().model().audio.level.map(|l| l.0), Some(-96));
    h.get_by_label("Play test tone").click();
    h.step();
    h.check_accessibility();

    // What ALSA lists here (its null device) can be chosen, and the choice is remembered.
    let outputs = h.state().model().audio.outputs.clone();
    assert!(outputs.iter().any(|d| d.id == "null"), "ALSA's null device is listed: {outputs:?}");
    let null = outputs.iter().find(|d| d.id == "null").expect("null device");
    h.get_by_label("Speaker").click();
    h.step();
    let entry = format!("{} (null)", null.name);
    step_until(&mut h, "the speaker list", |h| shows(h, &entry));
    h.get_all_by_label(&entry).next().expect("entry").click();
    h.step();
    h.step();
    let saved = Settings::load(&config_dir).expect("settings");
    assert_eq!(saved.audio.output, "null");

    h.get_by_label("Done").click();
    step_until(&mut h, "the window closed", |h| !shows(h, NO_DEVICE_TEXT));
    let _ = std::fs::remove_dir_all(&config_dir);
}
