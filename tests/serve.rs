//! `orbitphone serve` (registrar + park service + the demo line): two phones register
//! with digest, call the demo line "bob" through the registrar (407), park him, and
//! retrieve him by dialling the orbit — and hear him afterwards.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn local_mode_register_call_park_and_retrieve() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_orbitphone"))
        .args(["serve", "--listen", &listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = serve.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut accounts = std::collections::HashMap::new();
    loop {
        let line = lines.next().expect("serve output").unwrap();
        if line.starts_with("orbits:") {
            break;
        }
        if let Some(rest) = line.strip_prefix("account sip:") {
            let (user, pw) = rest.split_once(" password ").unwrap();
            accounts.insert(user.split('@').next().unwrap().to_string(), pw.to_string());
        }
    }
    let proxy = format!("sip:{listen}");
    let phone = |user: &str, extra: &[&str]| {
        let aor = format!("sip:{user}@{listen}");
        let mut args = vec!["--account", aor.as_str(), "--proxy", proxy.as_str()];
        args.extend_from_slice(extra);
        let o = Orbit::start(&args, Some(&accounts[user]));
        o.wait_event("registered", T);
        o
    };
    let mut me = phone("me", &[]);
    let dir = TempDir::new("serve");
    let heard = dir.join("carol-heard.wav");
    let heard_arg = heard.to_string_lossy().to_string();
    let mut carol = phone("carol", &["--audio-out", &heard_arg]);
    me.send("dial bob");
    let call = me.wait_event("call_established", T)["call"].as_u64().unwrap();
    me.send(&format!("park {call}"));
    let parked = me.wait_event("parked", T);
    let orbit = parked["orbit"].as_str().unwrap().to_string();
    assert_eq!(orbit, "7000");
    carol.send(&format!("retrieve {orbit}"));
    let up = carol.wait_event("call_established", T);
    assert!(up["party"].as_str().unwrap().contains("bob"), "carol sees bob, not the orbit: {up}");
    let by = me.wait_event("park_retrieved", T);
    assert!(by["by"].as_str().unwrap().contains("carol"), "{by}");
    std::thread::sleep(Duration::from_secs(2));
    carol.send("quit");
    carol.wait_event("stopped", T);
    let level = wav_rms(&heard);
    assert!(level > 0.01, "carol heard nothing from the demo line (rms {level})");

    // The echo line sends back what it hears.
    let tone = dir.join("440.wav");
    write_tone_wav(&tone, 440.0, 30.0, 8000);
    let echoed = dir.join("echoed.wav");
    let (tone_arg, echoed_arg) = (tone.to_string_lossy().to_string(), echoed.to_string_lossy().to_string());
    // A new "me" with a microphone and a speaker; the first one signs off (un-REGISTER).
    me.send("quit");
    me.wait_event("stopped", T);
    let mut me2 = phone("me", &["--audio-in", &tone_arg, "--audio-out", &echoed_arg]);
    me2.send("dial echo");
    me2.wait_event("call_established", T);
    std::thread::sleep(Duration::from_secs(2));
    me2.send("hangup");
    me2.wait_event("call_ended", T);
    // "Have Bob call me": callme declines and rings us back.
    me2.send("dial callme");
    me2.wait_event("call_ended", T);
    let back = me2.wait_event("call_incoming", T);
    assert!(back["from"].as_str().unwrap().starts_with("sip:callme@"), "{back}");
    me2.send("quit");
    me2.wait_event("stopped", T);
    let f = wav_dominant_frequency(&echoed);
    assert!((f - 440.0).abs() <= 10.0, "the echo line sent back {f} Hz, expected our 440 Hz");
    assert!(wav_rms(&echoed) > 0.02, "echo too quiet: {}", wav_rms(&echoed));
    let _ = serve.kill();
    let _ = serve.wait();
}
