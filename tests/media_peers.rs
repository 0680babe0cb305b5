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

/// Calls bob (baresip) from Orbit with `extra` flags; both send tones for `secs` seconds.
/// Returns (Orbit's established event, what Orbit heard, what bob heard, bob's events).
fn call_baresip_with_tones(
    bob_opts: impl FnOnce(BaresipOpts) -> BaresipOpts,
    extra: &[&str],
    name: &str,
) -> (serde_json::Value, std::path::PathBuf, std::path::PathBuf, TempDir, Vec<serde_json::Value>) {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new(name);
    let tone440 = dir.join("440.wav");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone440, 440.0, 30.0, 8000);
    write_tone_wav(&tone1000, 1000.0, 30.0, 8000);
    let out = dir.join("heard.wav");
    let bob = Baresip::start(bob_opts(
        BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true).audio_source(&tone1000).record(true),
    ));
    assert_eq!(bob.wait_registered(T), Some(true));
    let aor = "sip:alice@127.0.0.1".to_string();
    let proxy = k.proxy_uri();
    let (a_in, a_out) = (tone440.to_string_lossy().to_string(), out.to_string_lossy().to_string());
    let mut args = vec!["--account", &aor, "--proxy", &proxy, "--audio-in", &a_in, "--audio-out", &a_out];
    args.extend_from_slice(extra);
    let mut alice = Orbit::start(&args, Some("alicepw"));
    alice.wait_event("registered", T);
    alice.send("dial bob");
    let up = alice.wait_event("call_established", T);
    std::thread::sleep(Duration::from_secs(3));
    let debug = bob.command("audio_debug", "");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
    bob.expect_event("CALL_CLOSED", T);
    let heard = bob.received_wavs();
    assert!(!heard.is_empty(), "baresip recorded nothing");
    let bob_wav = dir.join("bob-heard.wav");
    std::fs::copy(&heard[0], &bob_wav).expect("copy bob's recording");
    (up, out, bob_wav, dir, vec![debug])
}

fn assert_tone(path: &std::path::Path, freq: f32, who: &str) {
    let f = wav_dominant_frequency(path);
    assert!((f - freq).abs() <= 10.0, "{who} heard {f} Hz, expected {freq} Hz");
    let rms = wav_rms(path);
    assert!(rms > 0.05, "{who}: level too low: {rms}");
    let purity = wav::wav_tone_purity(path, freq, 20.0);
    eprintln!("{who}: {f:.1} Hz, rms {rms:.3}, purity {purity:.3} ({})", path.display());
    assert!(purity > 0.8, "{who}: only {purity} of the energy is near {freq} Hz");
}

#[test]
fn opus_call_with_baresip_carries_tones_both_ways() {
    let (up, ours, bobs, _dir, debug) =
        call_baresip_with_tones(|o| o.codecs(Codecs::OpusAndG711), &["--opus"], "media-opus");
    assert_eq!(up["codec"], "opus", "{up}");
    let debug = debug[0].to_string();
    eprintln!("baresip audio_debug: {debug}");
    assert!(debug.contains("opus"), "baresip does not use opus: {debug}");
    assert_tone(&ours, 1000.0, "we");
    assert_tone(&bobs, 440.0, "bob");
}

#[test]
fn srtp_mandatory_call_with_baresip_carries_tones_both_ways() {
    let (up, ours, bobs, _dir, debug) =
        call_baresip_with_tones(|o| o.srtp_mandatory(true), &["--srtp", "mandatory"], "media-srtp");
    assert_eq!(up["codec"], "PCMU", "{up}");
    let debug = debug[0].to_string();
    eprintln!("baresip audio_debug: {debug}");
    assert!(debug.contains("secure=yes"), "baresip says the call is not secure: {debug}");
    assert_tone(&ours, 1000.0, "we");
    assert_tone(&bobs, 440.0, "bob");
}

/// RFC 4733 both ways: baresip's `sndcode` digits reach us as `dtmf_received`, and our
/// `dtmf` command reaches baresip as CALL_DTMF_START events.
#[test]
fn dtmf_both_ways_with_baresip() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true));
    assert_eq!(bob.wait_registered(T), Some(true));
    let aor = "sip:alice@127.0.0.1".to_string();
    let proxy = k.proxy_uri();
    let mut alice = Orbit::start(&["--account", &aor, "--proxy", &proxy], Some("alicepw"));
    alice.wait_event("registered", T);
    alice.send("dial bob");
    alice.wait_event("call_established", T);
    bob.expect_event("CALL_RTPESTAB", T);
    assert_eq!(bob.command("sndcode", "159#")["ok"], true);
    let got: String =
        (0..4).map(|_| alice.wait_event("dtmf_received", T)["digit"].as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(got, "159#");
    alice.send("dtmf 2580");
    let theirs: String = (0..4)
        .map(|_| {
            let ev = bob.wait_event(|e| e["type"] == "CALL_DTMF_START", T).expect("baresip reported no DTMF");
            ev["param"].as_str().unwrap_or("?").to_string()
        })
        .collect();
    assert_eq!(theirs, "2580");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}

/// The answer side of SRTP: baresip with `mediaenc=srtp-mand` (RTP/SAVP) calls Orbit
/// running `--srtp optional`; Orbit answers with its own key and audio flows both ways.
/// The same offer to an Orbit with SRTP off is refused with 488.
#[test]
fn baresip_srtp_mandatory_calls_orbit() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")]);
    let dir = TempDir::new("media-srtp-in");
    let tone440 = dir.join("440.wav");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone440, 440.0, 30.0, 8000);
    write_tone_wav(&tone1000, 1000.0, 30.0, 8000);
    let out = dir.join("heard.wav");
    let bob = Baresip::start(
        BaresipOpts::registered("bob", "bobpw", k.port()).srtp_mandatory(true).audio_source(&tone1000).record(true),
    );
    assert_eq!(bob.wait_registered(T), Some(true));
    let proxy = k.proxy_uri();
    let (a_in, a_out) = (tone440.to_string_lossy().to_string(), out.to_string_lossy().to_string());
    let mut alice = Orbit::start(
        &[
            "--account",
            "sip:alice@127.0.0.1",
            "--proxy",
            &proxy,
            "--audio-in",
            &a_in,
            "--audio-out",
            &a_out,
            "--srtp",
            "optional",
            "--auto-answer",
        ],
        Some("alicepw"),
    );
    let mut carol =
        Orbit::start(&["--account", "sip:carol@127.0.0.1", "--proxy", &proxy, "--auto-answer"], Some("carolpw"));
    alice.wait_event("registered", T);
    carol.wait_event("registered", T);

    // SRTP off: RTP/SAVP is refused.
    bob.dial("sip:carol@127.0.0.1");
    let closed = bob.wait_event(|e| e["type"] == "CALL_CLOSED", T).expect("call to carol not closed");
    assert!(closed["param"].as_str().unwrap_or("").contains("488"), "{closed}");
    carol.send("quit");
    carol.wait_event("stopped", T);

    bob.dial("sip:alice@127.0.0.1");
    let up = alice.wait_event("call_established", T);
    assert_eq!(up["codec"], "PCMU", "{up}");
    bob.expect_event("CALL_ESTABLISHED", T);
    std::thread::sleep(Duration::from_secs(3));
    let debug = bob.command("audio_debug", "").to_string();
    assert!(debug.contains("secure=yes"), "baresip says the call is not secure: {debug}");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
    bob.expect_event("CALL_CLOSED", T);
    assert_tone(&out, 1000.0, "we");
    let heard = bob.received_wavs();
    assert!(!heard.is_empty(), "baresip recorded nothing");
    assert_tone(&heard[heard.len() - 1], 440.0, "bob");
}

#[test]
fn audio_flows_again_after_hold_and_resume() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new("media-hold");
    let tone = dir.join("1000.wav");
    write_tone_wav(&tone, 1000.0, 60.0, 8000);
    let out = dir.join("heard.wav");
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", k.port()).auto_answer(true).audio_source(&tone));
    assert_eq!(bob.wait_registered(T), Some(true));
    let proxy = k.proxy_uri();
    let out_arg = out.to_string_lossy().to_string();
    let mut alice = Orbit::start(
        &["--account", "sip:alice@127.0.0.1", "--proxy", &proxy, "--audio-out", &out_arg],
        Some("alicepw"),
    );
    alice.wait_event("registered", T);
    alice.send("dial bob");
    let call = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    alice.send(&format!("hold {call}"));
    alice.wait_event("call_held", T);
    std::thread::sleep(Duration::from_millis(1500));
    alice.send(&format!("resume {call}"));
    alice.wait_event("call_resumed", T);
    std::thread::sleep(Duration::from_secs(2));
    alice.send("quit");
    alice.wait_event("stopped", T);
    // The last second of what we heard is bob's tone again, at a normal level.
    let (samples, rate) = read_wav(&out);
    let last =
        &samples[samples.len().saturating_sub(rate as usize + rate as usize / 4)..samples.len() - rate as usize / 4];
    let f = common::wav::dominant_frequency(last, rate);
    let rms = (last.iter().map(|s| s * s).sum::<f32>() / last.len() as f32).sqrt();
    assert!((f - 1000.0).abs() <= 10.0, "after resume we hear {f} Hz, expected bob's 1000 Hz");
    assert!(rms > 0.05, "after resume the level is {rms}");
}

/// Asks `status` once a second until `pred` holds for the first call's `stats`;
/// returns those stats (panics after `timeout` with the last ones seen).
fn wait_stats(alice: &mut Orbit, timeout: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = serde_json::Value::Null;
    while std::time::Instant::now() < deadline {
        alice.send("status");
        let status = alice.wait_event("status", T);
        last = status["calls"][0]["stats"].clone();
        if pred(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("stats never matched within {timeout:?}; last: {last}");
}

/// RTCP and call statistics against baresip (which sends RTCP on port + 1 by itself):
/// `status` shows the codec, packets both ways, and a round-trip time, which needs
/// baresip to have accepted our SR (its RR carries our LSR) and us to have parsed its
/// report. With `srtp` both directions of RTCP are SRTCP.
fn stats_with_baresip(srtp: bool) {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new("media-stats");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone1000, 1000.0, 60.0, 8000);
    let bob = Baresip::start(
        BaresipOpts::registered("bob", "bobpw", k.port())
            .auto_answer(true)
            .audio_source(&tone1000)
            .srtp_mandatory(srtp),
    );
    assert_eq!(bob.wait_registered(T), Some(true));
    let proxy = k.proxy_uri();
    let mut args = vec!["--account", "sip:alice@127.0.0.1", "--proxy", &proxy];
    if srtp {
        args.extend_from_slice(&["--srtp", "mandatory"]);
    }
    let mut alice = Orbit::start(&args, Some("alicepw"));
    alice.wait_event("registered", T);
    alice.send("dial bob");
    let call = alice.wait_event("call_established", T)["call"].clone();
    // The pushed event arrives on its own every 2 s.
    let pushed = alice.wait("call_stats", T, |e| e["event"] == "call_stats" && e["call"] == call);
    assert_eq!(pushed["stats"]["codec"], "PCMU", "{pushed}");
    let stats = wait_stats(&mut alice, Duration::from_secs(25), |s| s["rtt_ms"].is_number());
    eprintln!("stats with baresip (srtp {srtp}): {stats}");
    assert_eq!(stats["codec"], "PCMU");
    assert_eq!(stats["srtp"], srtp);
    let received = stats["packets_received"].as_u64().unwrap();
    let sent = stats["packets_sent"].as_u64().unwrap();
    // At 50 packets a second for several seconds, both ways.
    assert!(received > 100 && sent > 100, "{stats}");
    assert!(stats["rtcp_received"].as_u64().unwrap() >= 1, "{stats}");
    let rtt = stats["rtt_ms"].as_f64().unwrap();
    assert!((0.0..50.0).contains(&rtt), "loopback round trip {rtt} ms");
    assert!(stats["loss_percent"].as_f64().unwrap() < 1.0, "{stats}");
    assert!(stats["jitter_ms"].as_f64().unwrap() < 20.0, "{stats}");
    assert!(stats["jitter_buffer_ms"].as_u64().unwrap() >= 20, "{stats}");
    // Baresip's own report on our stream: what it saw loses nothing either.
    assert!(stats["remote_loss_percent"].as_f64().unwrap() < 1.0, "{stats}");
    let debug = bob.command("audio_debug", "").to_string();
    eprintln!("baresip audio_debug: {debug}");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}

#[test]
fn call_stats_and_rtcp_round_trip_with_baresip() {
    stats_with_baresip(false);
}

#[test]
fn call_stats_and_srtcp_round_trip_with_baresip() {
    stats_with_baresip(true);
}

/// Orbit and linphonec exchange tones (ours 440 Hz, theirs 1000 Hz) for 3 s, Orbit
/// calling (`orbit_calls`) or called; `--opus` on our side when `opus`. Returns the
/// codec Orbit reports and (what Orbit heard, what linphonec recorded).
fn linphonec_tones(
    opus: bool,
    orbit_calls: bool,
    name: &str,
) -> (String, std::path::PathBuf, std::path::PathBuf, TempDir) {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new(name);
    let tone440 = dir.join("440.wav");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone440, 440.0, 30.0, 8000);
    write_tone_wav(&tone1000, 1000.0, 30.0, 8000);
    let out = dir.join("heard.wav");
    let theirs = dir.join("bob-heard.wav");
    let bob = Linphonec::start(
        LinphonecOpts::registered("bob", "bobpw", k.port())
            .auto_answer(orbit_calls)
            .play_wav(&tone1000)
            .record_wav(&theirs),
    );
    assert!(bob.wait_registered(T));
    let proxy = k.proxy_uri();
    let (a_in, a_out) = (tone440.to_string_lossy().to_string(), out.to_string_lossy().to_string());
    let mut args =
        vec!["--account", "sip:alice@127.0.0.1", "--proxy", &proxy, "--audio-in", &a_in, "--audio-out", &a_out];
    if opus {
        args.push("--opus");
    }
    if !orbit_calls {
        args.push("--auto-answer");
    }
    let mut alice = Orbit::start(&args, Some("alicepw"));
    alice.wait_event("registered", T);
    if orbit_calls {
        alice.send("dial bob");
    } else {
        bob.send("call sip:alice@127.0.0.1");
    }
    let up = alice.wait_event("call_established", T);
    bob.expect_output("Media streams established", T);
    std::thread::sleep(Duration::from_secs(3));
    alice.send("status");
    let status = alice.wait_event("status", T);
    eprintln!("{name}: {status}");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
    bob.expect_output("ended", T);
    // linphonec finishes its recording when the call ends.
    std::thread::sleep(Duration::from_millis(500));
    (up["codec"].as_str().unwrap_or("").to_string(), out, theirs, dir)
}

/// Our recording has linphonec's 1000 Hz, linphonec's has our 440 Hz.
fn assert_tones_both_ways(ours: &std::path::Path, theirs: &std::path::Path) {
    assert_tone(ours, 1000.0, "we");
    assert_tone(theirs, 440.0, "linphonec");
}

#[test]
fn pcmu_call_to_linphonec_carries_tones_both_ways() {
    let (codec, ours, theirs, _dir) = linphonec_tones(false, true, "media-lin-pcmu");
    assert_eq!(codec, "PCMU");
    assert_tones_both_ways(&ours, &theirs);
}

#[test]
fn opus_call_to_linphonec_carries_tones_both_ways() {
    let (codec, ours, theirs, _dir) = linphonec_tones(true, true, "media-lin-opus");
    assert_eq!(codec, "opus");
    assert_tones_both_ways(&ours, &theirs);
}

#[test]
fn linphonec_calls_orbit_with_pcmu_and_with_opus() {
    let (codec, ours, theirs, _dir) = linphonec_tones(false, false, "media-lin-in-pcmu");
    assert_eq!(codec, "PCMU");
    assert_tones_both_ways(&ours, &theirs);
    let (codec, ours, theirs, _dir) = linphonec_tones(true, false, "media-lin-in-opus");
    assert_eq!(codec, "opus");
    assert_tones_both_ways(&ours, &theirs);
}

/// RFC 4733 both ways with linphonec: a digit typed alone on its command line is sent as
/// DTMF and reaches us as `dtmf_received`; ours show as "Receiving tone X".
#[test]
fn dtmf_both_ways_with_linphonec() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Linphonec::start(LinphonecOpts::registered("bob", "bobpw", k.port()).auto_answer(true));
    assert!(bob.wait_registered(T));
    let proxy = k.proxy_uri();
    let mut alice = Orbit::start(&["--account", "sip:alice@127.0.0.1", "--proxy", &proxy], Some("alicepw"));
    alice.wait_event("registered", T);
    alice.send("dial bob");
    alice.wait_event("call_established", T);
    bob.expect_output("Media streams established", T);
    for d in ["1", "5", "9", "#"] {
        bob.send(d);
        std::thread::sleep(Duration::from_millis(300));
    }
    let got: String =
        (0..4).map(|_| alice.wait_event("dtmf_received", T)["digit"].as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(got, "159#");
    alice.send("dtmf 2580");
    let theirs: String = (0..4)
        .map(|_| {
            let line = bob.expect_output("Receiving tone", T);
            line.split("Receiving tone ").nth(1).and_then(|r| r.chars().next()).unwrap_or('?').to_string()
        })
        .collect();
    assert_eq!(theirs, "2580");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}

/// rtcp-mux (RFC 5761): baresip with `rtcp_mux yes` offers `a=rtcp-mux` and calls us; we
/// accept it, so RTCP both ways shares the RTP port, and the round trip still comes out.
#[test]
fn rtcp_mux_offered_by_baresip_is_accepted() {
    let k = Kamailio::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = TempDir::new("media-mux");
    let tone1000 = dir.join("1000.wav");
    write_tone_wav(&tone1000, 1000.0, 60.0, 8000);
    let bob = Baresip::start(
        BaresipOpts::registered("bob", "bobpw", k.port()).audio_source(&tone1000).extra_config("rtcp_mux yes"),
    );
    assert_eq!(bob.wait_registered(T), Some(true));
    let proxy = k.proxy_uri();
    let mut alice =
        Orbit::start(&["--account", "sip:alice@127.0.0.1", "--proxy", &proxy, "--auto-answer"], Some("alicepw"));
    alice.wait_event("registered", T);
    bob.dial("sip:alice@127.0.0.1");
    alice.wait_event("call_established", T);
    bob.expect_event("CALL_ESTABLISHED", T);
    let stats = wait_stats(&mut alice, Duration::from_secs(25), |s| s["rtt_ms"].is_number());
    eprintln!("stats with rtcp-mux: {stats}");
    assert!(stats["packets_received"].as_u64().unwrap() > 100, "{stats}");
    let debug = bob.command("audio_debug", "").to_string();
    eprintln!("baresip audio_debug: {debug}");
    // Baresip sends RTCP to our RTP port: the remote address shows one port, not two.
    let remote = debug.split("remote: ").nth(1).and_then(|r| r.split("\\n").next()).unwrap_or("").to_string();
    let ports: Vec<&str> = remote.split('/').filter_map(|a| a.rsplit(':').next()).collect();
    assert!(ports.len() == 2 && ports[0] == ports[1], "baresip does not multiplex RTCP: remote {remote}");
    alice.send("quit");
    alice.wait_event("stopped", T);
    assert_eq!(alice.wait_exit(T), Some(0));
}
