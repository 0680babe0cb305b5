//! The park service with real peers through Kamailio: Orbit's CLI parks calls with
//! linphonec (pull: INVITE+Replaces) and baresip (push: REFER, baresip has no Replaces),
//! other phones retrieve by dialling the orbit, and audio after retrieval is checked.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

struct Site {
    k: Kamailio,
    park: ParkProc,
    dir: TempDir,
}

fn site(extra_park: &str) -> Site {
    let users = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw"), ("operator", "operatorpw")];
    let port = free_port();
    let svc = format!("127.0.0.1:{port}");
    let k = Kamailio::start_full(&users, &[("^(7[0-9]{3}|park)$", &svc)], &[&svc]);
    let dir = TempDir::new("park-site");
    let toml = format!(
        "[service]\nlisten = [\"udp:127.0.0.1:{port}\"]\ndomain = \"127.0.0.1\"\ntrusted_proxies = [\"127.0.0.1:{kp}\"]\n\n[[orbits]]\nfirst = \"7000\"\nlast = \"7099\"\n\n[policy]\nallow = [\"alice\"]\n{extra_park}",
        kp = k.port()
    );
    let park = ParkProc::start(dir.path(), port, &toml);
    Site { k, park, dir }
}

fn alice(site: &Site, extra: &[&str]) -> Orbit {
    let proxy = site.k.proxy_uri();
    let mut args = vec!["--account", "sip:alice@127.0.0.1", "--proxy", proxy.as_str()];
    args.extend_from_slice(extra);
    let o = Orbit::start(&args, Some("alicepw"));
    o.wait_event("registered", T);
    o
}

fn is(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event"] == name
}

#[test]
fn pull_park_with_linphonec_and_retrieve_from_baresip_with_audio() {
    let s = site("");
    let tone = s.dir.join("440.wav");
    write_tone_wav(&tone, 440.0, 60.0, 8000);
    let bob = Linphonec::start(LinphonecOpts::registered("bob", "bobpw", s.k.port()).auto_answer(true).play_wav(&tone));
    assert!(bob.wait_registered(T));
    let carol = Baresip::start(BaresipOpts::registered("carol", "carolpw", s.k.port()).record(true));
    assert_eq!(carol.wait_registered(T), Some(true));
    let mut a = alice(&s, &[]);
    a.send("dial bob");
    let call = a.wait_event("call_established", T)["call"].as_u64().unwrap();
    a.send(&format!("park {call}"));
    a.wait_event("park_pending", T);
    let parked = a.wait_event("parked", T);
    assert_eq!(parked["orbit"], "7000");
    assert_eq!(parked["orbit_uri"], "sip:7000@127.0.0.1");
    assert!(parked["retrieve_uri"].as_str().unwrap().contains("park-token="));
    assert!(parked["parkee"].as_str().unwrap().contains("bob"));
    // Alice's own leg ends (the parkee's BYE may come before or after the parked notice).
    let leg_ended = wait_until(T, Duration::from_millis(50), || {
        a.all_events().into_iter().find(|v| is("call_ended")(v) && v["call"] == call)
    });
    assert_eq!(leg_ended.expect("alice's leg ends")["reason"], "parked");

    carol.dial("sip:7000@127.0.0.1");
    carol.expect_event("CALL_ESTABLISHED", T);
    let by = a.wait_event("park_retrieved", T);
    assert!(by["by"].as_str().unwrap().contains("carol"), "{by}");
    std::thread::sleep(Duration::from_secs(3));
    carol.hangup();
    carol.expect_event("CALL_CLOSED", T);
    let heard = carol.received_wavs();
    assert!(!heard.is_empty(), "carol recorded nothing");
    let f = wav_dominant_frequency(&heard[0]);
    assert!((f - 440.0).abs() <= 10.0, "carol heard {f} Hz, expected bob's 440 Hz (media must flow bob<->carol)");
    assert!(s.park.log().contains("retrieved by"), "{}", s.park.log());
}

#[test]
fn push_park_with_baresip_and_retrieve_from_linphonec() {
    let s = site("");
    let tone = s.dir.join("1000.wav");
    write_tone_wav(&tone, 1000.0, 60.0, 8000);
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", s.k.port()).auto_answer(true).audio_source(&tone));
    assert_eq!(bob.wait_registered(T), Some(true));
    let rec = s.dir.join("carol-heard.wav");
    let carol = Linphonec::start(LinphonecOpts::registered("carol", "carolpw", s.k.port()).record_wav(&rec));
    assert!(carol.wait_registered(T));
    let mut a = alice(&s, &[]);
    a.send("dial bob");
    let call = a.wait_event("call_established", T)["call"].as_u64().unwrap();
    a.send(&format!("park {call}"));
    let parked = a.wait_event("parked", T);
    assert_eq!(parked["orbit"], "7000");
    bob.expect_event("TRANSFER", T);
    let orbit_uri = parked["orbit_uri"].as_str().unwrap().to_string();
    carol.send(&format!("call {orbit_uri}"));
    assert!(carol.wait_output("connected", T).is_some(), "carol could not retrieve");
    let by = a.wait_event("park_retrieved", T);
    assert!(by["by"].as_str().unwrap().contains("carol"));
    std::thread::sleep(Duration::from_secs(3));
    carol.send("terminate");
    assert!(carol.wait_output("ended", T).is_some());
    std::thread::sleep(Duration::from_millis(500));
    let f = wav_dominant_frequency(&rec);
    assert!((f - 1000.0).abs() <= 10.0, "carol heard {f} Hz, expected bob's 1000 Hz");
}

#[test]
fn ringback_then_fallback_then_retrieved_by_the_operator() {
    let s = site(
        "[park]\ntimeout_s = 10\nringback_attempts = 1\nringback_ring_s = 5\nfallback = \"sip:operator@127.0.0.1\"\n",
    );
    let bob = Linphonec::start(LinphonecOpts::registered("bob", "bobpw", s.k.port()).auto_answer(true));
    assert!(bob.wait_registered(T));
    let op = Baresip::start(BaresipOpts::registered("operator", "operatorpw", s.k.port()).auto_answer(true));
    assert_eq!(op.wait_registered(T), Some(true));
    let mut a = alice(&s, &[]);
    a.send("dial bob");
    let call = a.wait_event("call_established", T)["call"].as_u64().unwrap();
    a.send(&format!("park {call}"));
    a.wait_event("parked", T);
    let ring = a.wait_event("park_ringback", Duration::from_secs(20));
    assert_eq!((ring["attempt"].as_u64(), ring["of"].as_u64()), (Some(1), Some(1)));
    // The ring-back INVITE and the ringback NOTIFY race: look at every event so far.
    let incoming =
        wait_until(T, Duration::from_millis(50), || a.all_events().into_iter().find(|v| is("call_incoming")(v)))
            .expect("the ring-back call arrives");
    assert_eq!(incoming["recall"]["orbit"], "7000", "{incoming}");
    assert!(incoming["recall"]["parkee"].as_str().unwrap().contains("bob"));
    let fb = a.wait_event("park_fallback", Duration::from_secs(15));
    assert!(fb["to"].as_str().unwrap().contains("operator"));
    op.expect_event("CALL_ESTABLISHED", T);
    a.wait_event("park_retrieved", T);
}

#[test]
fn parkee_hanging_up_is_reported_as_abandoned_and_shutdown_is_clean() {
    let s = site("");
    let bob = Linphonec::start(LinphonecOpts::registered("bob", "bobpw", s.k.port()).auto_answer(true));
    assert!(bob.wait_registered(T));
    let mut a = alice(&s, &[]);
    a.send("dial bob");
    let call = a.wait_event("call_established", T)["call"].as_u64().unwrap();
    a.send(&format!("park {call}"));
    a.wait_event("parked", T);
    std::thread::sleep(Duration::from_millis(300));
    bob.send("terminate");
    a.wait_event("park_abandoned", T);
    let mut park = s.park;
    assert_eq!(park.terminate(T), Some(0), "the service exits cleanly on SIGTERM");
}

#[test]
fn policy_refuses_users_not_allowed() {
    let s = site("");
    let carol_args = ["--account", "sip:carol@127.0.0.1", "--proxy"];
    let proxy = s.k.proxy_uri();
    let bob = Baresip::start(BaresipOpts::registered("bob", "bobpw", s.k.port()).auto_answer(true));
    assert_eq!(bob.wait_registered(T), Some(true));
    let mut carol = Orbit::start(&[carol_args[0], carol_args[1], carol_args[2], &proxy], Some("carolpw"));
    carol.wait_event("registered", T);
    carol.send("dial bob");
    let call = carol.wait_event("call_established", T)["call"].as_u64().unwrap();
    carol.send(&format!("park {call}"));
    let failed = carol.wait_event("park_failed", T);
    assert!(failed["reason"].as_str().unwrap().contains("not allowed"), "{failed}");
}

#[test]
fn two_instances_behind_kamailio_each_own_their_range() {
    use orbitphone::park::orbits::OrbitRange;
    let users = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw"), ("dave", "davepw"), ("erin", "erinpw")];
    let (pa, pb) = (free_port(), free_port());
    let (sa, sb) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}"));
    // The same range-to-regex code that `park-service kamailio-routes` uses.
    let ra = OrbitRange::parse("7000", "7099").unwrap().to_regex();
    let rb = OrbitRange::parse("7100", "7199").unwrap().to_regex();
    let routes =
        [(ra.as_str(), sa.as_str()), ("^park$", sa.as_str()), (rb.as_str(), sb.as_str()), ("^park-b$", sb.as_str())];
    let k = Kamailio::start_full(&users, &routes, &[&sa, &sb]);
    let dir = TempDir::new("park-pools");
    let cfg = |port: u16, first: &str, last: &str| {
        format!(
            "[service]\nlisten = [\"udp:127.0.0.1:{port}\"]\ndomain = \"127.0.0.1\"\ntrusted_proxies = [\"127.0.0.1:{}\"]\n[[orbits]]\nfirst = \"{first}\"\nlast = \"{last}\"\n[policy]\nallow = [\"alice\", \"dave\"]\n",
            k.port()
        )
    };
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let _a = ParkProc::start(&da, pa, &cfg(pa, "7000", "7099"));
    let _b = ParkProc::start(&db, pb, &cfg(pb, "7100", "7199"));
    let proxy = k.proxy_uri();
    let start = |user: &str, pw: &str, extra: &[&str]| {
        let aor = format!("sip:{user}@127.0.0.1");
        let mut args = vec!["--account", aor.as_str(), "--proxy", proxy.as_str()];
        args.extend_from_slice(extra);
        let o = Orbit::start(&args, Some(pw));
        o.wait_event("registered", T);
        o
    };
    let _bob = start("bob", "bobpw", &["--auto-answer"]);
    let _erin = start("erin", "erinpw", &["--auto-answer"]);
    let mut alice = start("alice", "alicepw", &[]);
    let mut dave = start("dave", "davepw", &["--park-uri", "sip:park-b@127.0.0.1"]);
    let mut carol = start("carol", "carolpw", &[]);
    alice.send("dial bob");
    let c1 = alice.wait_event("call_established", T)["call"].as_u64().unwrap();
    alice.send(&format!("park {c1}"));
    assert_eq!(alice.wait_event("parked", T)["orbit"], "7000");
    dave.send("dial erin");
    let c2 = dave.wait_event("call_established", T)["call"].as_u64().unwrap();
    dave.send(&format!("park {c2}"));
    assert_eq!(dave.wait_event("parked", T)["orbit"], "7100");
    for (orbit, parker, parkee) in [("7000", &alice, "bob"), ("7100", &dave, "erin")] {
        carol.send(&format!("retrieve {orbit}"));
        let up = carol.wait_event("call_established", T);
        assert!(up["party"].as_str().unwrap().contains(parkee), "{up}");
        let by = parker.wait_event("park_retrieved", T);
        assert!(by["by"].as_str().unwrap().contains("carol"));
        carol.send(&format!("hangup {}", up["call"]));
        carol.wait_event("call_ended", T);
    }
}

#[test]
fn check_refuses_overlapping_instances_and_routes_are_generated() {
    let dir = TempDir::new("park-check");
    let a = dir.join("a.toml");
    let b = dir.join("b.toml");
    let body = |first: &str, last: &str| {
        format!(
            "[service]\nlisten = [\"udp:127.0.0.1:5099\"]\ndomain = \"example.com\"\n\n[[orbits]]\nfirst = \"{first}\"\nlast = \"{last}\"\n\n[policy]\nallow = [\"*\"]\n"
        )
    };
    std::fs::write(&a, body("7000", "7099")).unwrap();
    std::fs::write(&b, body("7050", "7150")).unwrap();
    let run = |args: &[&std::path::Path], sub: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orbitphone"))
            .arg("park-service")
            .arg(sub)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[&a, &b], "check");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a.toml") && err.contains("b.toml") && err.contains("7050-7150") && err.contains("7000-7099"),
        "{err}"
    );
    std::fs::write(&b, body("7100", "7199")).unwrap();
    let out = run(&[&a, &b], "check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[&a, &b], "kamailio-routes");
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(
        routes.contains("route[ORBIT_ROUTES]") && routes.contains("$du") && routes.contains("7100-7199"),
        "{routes}"
    );
}
