//! The real sound-card path (cpal → ALSA) of the real binary, on a machine without a
//! sound card. An ALSA configuration in a temporary `HOME` makes a fake card out of
//! ALSA's own plugins: the default playback device writes into a FIFO this test reads,
//! the default capture device reads from a FIFO this test writes a 1000 Hz tone into
//! (paced at real time by the test; ALSA's `null` device itself is not paced).
//! A call between a WAV-driven phone (440 Hz) and the phone on that card must carry
//! audio both ways through the card. Without the fake card, `devices` must report no
//! usable default and the phone must say "no audio device" and still connect.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn asoundrc(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"pcm.!default {{
    type asym
    playback.pcm "orbit_speaker"
    capture.pcm "orbit_mic"
}}
pcm.orbit_speaker {{
    type plug
    slave {{ pcm "orbit_speaker_file"; format S16_LE; rate 48000; channels 1 }}
}}
pcm.orbit_speaker_file {{
    type file
    slave.pcm "null"
    file "{d}/speaker.fifo"
    format "raw"
}}
pcm.orbit_usb {{
    type file
    slave.pcm "null"
    file "{d}/usb.fifo"
    format "raw"
}}
pcm.orbit_bell {{
    type plug
    slave {{ pcm "orbit_bell_file"; format S16_LE; rate 48000; channels 1 }}
}}
pcm.orbit_bell_file {{
    type file
    slave.pcm "null"
    file "{d}/bell.fifo"
    format "raw"
}}
pcm.orbit_mic {{
    type plug
    slave {{ pcm "orbit_mic_file"; format S16_LE; rate 48000; channels 1 }}
}}
pcm.orbit_mic_file {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{d}/mic.fifo"
    format "raw"
}}
"#
    )
}

/// Reads the speaker FIFO (ALSA reopens it on every probe and stream), keeping the
/// non-zero samples: the unpaced device writes mostly silence between our frames.
/// With `unplug_after`, it closes the FIFO for good once it has that many samples:
/// the device's next write fails, as when a USB headset is pulled out.
fn speaker_reader(path: std::path::PathBuf, heard: Arc<Mutex<Vec<i16>>>, unplug_after: Option<usize>) {
    std::thread::spawn(move || {
        loop {
            let Ok(mut f) = std::fs::File::open(&path) else { return };
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut h = heard.lock().unwrap();
                if h.len() < 48000 * 10 {
                    h.extend(
                        buf[..n - n % 2].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).filter(|s| *s != 0),
                    );
                }
                if unplug_after.is_some_and(|n| h.len() >= n) {
                    return;
                }
            }
        }
    });
}

/// Writes a 1000 Hz tone into the microphone FIFO, 20 ms every 20 ms.
fn mic_writer(path: std::path::PathBuf, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut phase = 0.0f64;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else { return };
            loop {
                let mut bytes = Vec::with_capacity(1920);
                for _ in 0..960 {
                    let v = (0.3 * 32767.0 * phase.sin()) as i16;
                    phase += 2.0 * std::f64::consts::PI * 1000.0 / 48000.0;
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                if f.write_all(&bytes).is_err() || stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
}

#[test]
fn call_through_a_fake_alsa_card_carries_audio_both_ways() {
    let dir = TempDir::new("orbit-alsa");
    std::fs::write(dir.join(".asoundrc"), asoundrc(dir.path())).unwrap();
    process::make_fifo(&dir.join("speaker.fifo")).unwrap();
    process::make_fifo(&dir.join("mic.fifo")).unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    speaker_reader(dir.join("speaker.fifo"), heard.clone(), None);
    mic_writer(dir.join("mic.fifo"), stop.clone());

    let tone = dir.join("tone440.wav");
    write_tone_wav(&tone, 440.0, 20.0, 8000);
    let heard_wav = dir.join("a-heard.wav");
    let home = dir.path().to_str().unwrap().to_string();
    let sip_port = free_port();
    let listen = format!("127.0.0.1:{sip_port}");
    let mut carded = Orbit::start_with_env(
        &["--account", "sip:card@127.0.0.1", "--no-register", "--auto-answer", "--listen", &listen],
        None,
        &[("HOME", &home)],
    );
    carded.send("devices");
    let list = carded.wait_event("audio_devices", T);
    assert!(list["outputs"].as_array().unwrap().iter().any(|d| d["id"] == "orbit_speaker"), "{list}");
    assert!(list["default_output"].is_string(), "the fake card is a usable default: {list}");
    let mut wav = Orbit::start(
        &[
            "--account",
            "sip:wav@127.0.0.1",
            "--no-register",
            "--no-sound-card",
            "--audio-in",
            tone.to_str().unwrap(),
            "--audio-out",
            heard_wav.to_str().unwrap(),
        ],
        None,
    );
    wav.send(&format!("dial sip:card@127.0.0.1:{sip_port}"));
    wav.wait_event("call_established", T);
    // Devices open one by one: wait for the report with both on the card.
    carded.wait("both directions on the card", T, |v| {
        v["event"] == "audio_route" && v["output"].is_string() && v["input"].is_string()
    });
    std::thread::sleep(Duration::from_secs(4));
    wav.send("hangup");
    carded.wait_event("call_ended", T);
    wav.send("quit");
    wav.wait_exit(T);
    carded.send("quit");
    carded.wait_exit(T);
    stop.store(true, Ordering::Relaxed);

    let speaker = heard.lock().unwrap().clone();
    assert!(speaker.len() > 48000, "the card's speaker got {} non-silent samples", speaker.len());
    let s: Vec<f32> = speaker.iter().map(|v| f32::from(*v) / 32768.0).collect();
    // The fake card's null device drains the playback ring as soon as it is filled, so the
    // drift steering sees an empty ring and stays at its +0.5 % limit: the tone comes out
    // 0.5 % flat (437.8 Hz), within the tolerance.
    let f = wav::dominant_frequency(&s[s.len() / 4..], 48000);
    assert!((f - 440.0).abs() < 10.0, "the card played {f} Hz, not the caller's 440 Hz");
    let f = wav_dominant_frequency(&heard_wav);
    assert!((f - 1000.0).abs() < 10.0, "the caller heard {f} Hz, not the card's 1000 Hz microphone");
    assert!(wav_rms(&heard_wav) > 0.01, "and not faintly");
}

/// What the card test's speaker gave: a clean tone a little off the 10 Hz scan grid
/// (437.8 Hz, 3 s) with a faint spur (-51 dB) on a grid point. The dominant frequency is
/// the tone (the scan over the whole window used to miss it between grid points).
#[test]
fn dominant_frequency_finds_a_tone_between_scan_steps() {
    let tau = 2.0 * std::f64::consts::PI;
    let s: Vec<f32> = (0..3 * 48000)
        .map(|i| {
            let t = f64::from(i) / 48000.0;
            (0.35 * (tau * 437.8 * t).sin() + 0.001 * (tau * 2030.0 * t).sin()) as f32
        })
        .collect();
    let f = wav::dominant_frequency(&s, 48000);
    assert!((f - 437.8).abs() < 1.0, "found {f} Hz");
}

/// The chosen speaker (`orbit_usb`) goes away mid-call: the phone says so, switches to
/// the default device, and the call goes on with sound on the default.
#[test]
fn unplugged_speaker_switches_to_the_default_mid_call() {
    let dir = TempDir::new("orbit-unplug");
    std::fs::write(dir.join(".asoundrc"), asoundrc(dir.path())).unwrap();
    for f in ["speaker.fifo", "usb.fifo", "mic.fifo"] {
        process::make_fifo(&dir.join(f)).unwrap();
    }
    let on_usb = Arc::new(Mutex::new(Vec::new()));
    let on_default = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Half a second of the call on the headset, then it is pulled out.
    speaker_reader(dir.join("usb.fifo"), on_usb.clone(), Some(24000));
    speaker_reader(dir.join("speaker.fifo"), on_default.clone(), None);
    mic_writer(dir.join("mic.fifo"), stop.clone());
    let tone = dir.join("tone440.wav");
    write_tone_wav(&tone, 440.0, 20.0, 8000);
    let home = dir.path().to_str().unwrap().to_string();
    let sip_port = free_port();
    let listen = format!("127.0.0.1:{sip_port}");
    let mut carded = Orbit::start_with_env(
        &[
            "--account",
            "sip:card@127.0.0.1",
            "--no-register",
            "--auto-answer",
            "--listen",
            &listen,
            "--output-device",
            "orbit_usb",
        ],
        None,
        &[("HOME", &home)],
    );
    let mut wav = Orbit::start(
        &["--account", "sip:wav@127.0.0.1", "--no-register", "--no-sound-card", "--audio-in", tone.to_str().unwrap()],
        None,
    );
    wav.send(&format!("dial sip:card@127.0.0.1:{sip_port}"));
    wav.wait_event("call_established", T);
    carded.wait("the headset in use", T, |v| v["event"] == "audio_route" && v["output"] == "orbit_usb");
    let notice = carded.wait("the unplug notice", T, |v| {
        v["event"] == "audio_notice" && v["message"].as_str().is_some_and(|m| m.contains("was disconnected"))
    });
    assert!(notice["message"].as_str().unwrap().contains("orbit_usb"), "{notice}");
    carded.wait("the default in use", T, |v| {
        v["event"] == "audio_route" && v["output"].is_string() && v["output"] != "orbit_usb"
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(carded.all_events().iter().all(|v| v["event"] != "call_ended"), "the call was not dropped");
    wav.send("hangup");
    carded.wait_event("call_ended", T);
    wav.send("quit");
    wav.wait_exit(T);
    carded.send("quit");
    carded.wait_exit(T);
    stop.store(true, Ordering::Relaxed);
    assert!(on_usb.lock().unwrap().len() >= 24000);
    let after = on_default.lock().unwrap().clone();
    assert!(after.len() > 24000, "the default device got {} samples after the switch", after.len());
    let s: Vec<f32> = after.iter().map(|v| f32::from(*v) / 32768.0).collect();
    let f = wav::dominant_frequency(&s, 48000);
    assert!((f - 440.0).abs() < 10.0, "the default played {f} Hz");
}

#[test]
fn without_a_card_the_phone_says_so_and_lists_no_default() {
    let dir = TempDir::new("orbit-nocard");
    // An empty ALSA user config: this machine's real state (no card).
    std::fs::write(dir.join(".asoundrc"), "").unwrap();
    let home = dir.path().to_str().unwrap().to_string();
    let mut o = Orbit::start_with_env(&["--account", "sip:x@127.0.0.1", "--no-register"], None, &[("HOME", &home)]);
    let list =
        std::process::Command::new("sh").arg("-c").arg("ls /dev/snd 2>/dev/null | grep -c pcm").output().unwrap();
    if String::from_utf8_lossy(&list.stdout).trim() != "0" && !String::from_utf8_lossy(&list.stdout).trim().is_empty() {
        eprintln!("this machine has a sound card; skipping");
        return;
    }
    let ev = o.wait_event("audio_unavailable", T);
    assert!(ev["message"].as_str().unwrap().contains("no audio device"), "{ev}");
    o.send("devices");
    let list = o.wait_event("audio_devices", T);
    assert!(list.get("default_output").is_none() && list.get("default_input").is_none(), "{list}");
    o.send("test-tone");
    o.send("meter on");
    let level = o.wait_event("audio_level", T);
    assert_eq!(level["rms_dbfs"], -96, "no microphone reads as silence: {level}");
    o.send("quit");
    assert_eq!(o.wait_exit(T), Some(0));
}

/// A call ringing in plays the ringtone: on the speaker by default, on the ring device
/// alone when one is chosen (the speaker stays silent), and stops when answered.
#[test]
fn an_incoming_call_rings_on_the_ring_device_or_the_speaker() {
    for ring_apart in [false, true] {
        let dir = TempDir::new("orbit-ring");
        std::fs::write(dir.join(".asoundrc"), asoundrc(dir.path())).unwrap();
        for f in ["speaker.fifo", "bell.fifo", "mic.fifo"] {
            process::make_fifo(&dir.join(f)).unwrap();
        }
        let on_speaker = Arc::new(Mutex::new(Vec::new()));
        let on_bell = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        speaker_reader(dir.join("speaker.fifo"), on_speaker.clone(), None);
        speaker_reader(dir.join("bell.fifo"), on_bell.clone(), None);
        mic_writer(dir.join("mic.fifo"), stop.clone());
        let home = dir.path().to_str().unwrap().to_string();
        let sip_port = free_port();
        let listen = format!("127.0.0.1:{sip_port}");
        let mut args = vec!["--account", "sip:card@127.0.0.1", "--no-register", "--listen", &listen];
        if ring_apart {
            args.extend(["--ring-device", "orbit_bell"]);
        }
        let mut carded = Orbit::start_with_env(&args, None, &[("HOME", &home)]);
        // The caller sends silence, so whatever the card plays before answering is the ringtone.
        let mut caller = Orbit::start(&["--account", "sip:caller@127.0.0.1", "--no-register", "--no-sound-card"], None);
        caller.send(&format!("dial sip:card@127.0.0.1:{sip_port}"));
        carded.wait_event("call_incoming", T);
        std::thread::sleep(Duration::from_millis(1500));
        let (ring, other) = if ring_apart { (&on_bell, &on_speaker) } else { (&on_speaker, &on_bell) };
        let rang = ring.lock().unwrap().clone();
        assert!(rang.len() > 9600, "ring_apart={ring_apart}: {} ringtone samples", rang.len());
        let s: Vec<f32> = rang.iter().map(|v| f32::from(*v) / 32768.0).collect();
        let f = wav::dominant_frequency(&s, 48000);
        assert!(
            (f - 440.0).abs() < 10.0 || (f - 554.0).abs() < 10.0,
            "ring_apart={ring_apart}: the ringtone's chord, not {f} Hz"
        );
        assert!(other.lock().unwrap().is_empty(), "ring_apart={ring_apart}: nothing on the other device");
        carded.send("answer");
        carded.wait_event("call_established", T);
        std::thread::sleep(Duration::from_millis(300));
        let n = ring.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(ring.lock().unwrap().len(), n, "ring_apart={ring_apart}: the ringtone stopped on answer");
        caller.send("hangup");
        carded.wait_event("call_ended", T);
        caller.send("quit");
        caller.wait_exit(T);
        carded.send("quit");
        carded.wait_exit(T);
        stop.store(true, Ordering::Relaxed);
    }
}
