//! Audio through real peers: tones sent by each side arrive at the other, checked by
//! frequency and level, not by file size.

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn pcmu_call_with_baresip_carries_tones_both_ways() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new("media-pcmu");
    let tone440 = dir.join("440.wav");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone440, 440.0, 30.0, 8000);
    write_tone_wav(&tone1000, 1000.0, 30.0, 8000);
    let out = dir.join("heard.wav");
    let bob = Baresip::start(
        BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true).audio_source(&tone1000).record(true),
    );
    assert_eq!(bob.wait_registered(T), Some(true));
    let aor = "sip:alice@127.0.0.1".to_string();
    let proxy = k.proxy_uri();
    let (a_in, a_out) = (tone440.to_string_lossy().to_string(), out.to_string_lossy().to_string());
    let mut alice = Orbit::start(
        &["--account", &aor, "--proxy", &proxy, "--audio-in", &a_in, "--audio-out", &a_out],
        Some("alicepw"),
    );
    alice.wait_event("registered", T);
    alice.send("dial bob");
    let up = alice.wait_event("call_established", T);
    assert_eq!(up["codec"], "PCMU");
    std::thread::sleep(Duration::from_secs(3));
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
    bob.expect_event("CALL_CLOSED", T);

    let heard = wav_dominant_frequency(&out);
    assert!((heard - 1000.0).abs() <= 10.0, "we heard {heard} Hz, expected bob's 1000 Hz");
    assert!(wav_rms(&out) > 0.05, "level too low: {}", wav_rms(&out));
    let bob_heard = bob.received_wavs();
    assert!(!bob_heard.is_empty(), "baresip recorded nothing");
    let f = wav_dominant_frequency(&bob_heard[0]);
    assert!((f - 440.0).abs() <= 10.0, "bob heard {f} Hz, expected our 440 Hz");
    assert!(wav_rms(&bob_heard[0]) > 0.05);
}
