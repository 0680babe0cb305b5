//! Park service figures on loopback, everything real (UDP sockets, engines, service):
//! `park` → `parked` and retrieve INVITE → established latencies over 200 cycles, and
//! music-on-hold pacing for 10,000 parked calls. Run: `cargo bench --bench park`
//! (pin to one core with `taskset -c 0 cargo bench --bench park` for the capacity figure).

use orbitphone::net::media_task::AudioIo;
use orbitphone::net::music_task::{self, MusicCommand};
use orbitphone::net::park_driver;
use orbitphone::net::phone_driver::{self, PhoneConfig, PhoneHandle};
use orbitphone::park::config::ParkConfig;
use orbitphone::phone::account::Account;
use orbitphone::phone::{Command, Event};
use orbitphone::sip::transport::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn account(user: &str, park: SocketAddr, auto_answer: bool) -> Account {
    Account {
        password: Some(format!("{user}-pw")),
        auto_answer,
        park_uri: Some(format!("sip:park@{park}")),
        ..Account::new(&format!("sip:{user}@127.0.0.1"))
    }
}

async fn phone(user: &str, park: SocketAddr, auto_answer: bool) -> PhoneHandle {
    let cfg = PhoneConfig {
        account: account(user, park, auto_answer),
        listen: "127.0.0.1:0".parse().unwrap(),
        ca_file: None,
        audio: AudioIo::default(),
    };
    phone_driver::start(cfg).await.expect("phone")
}

async fn until(h: &mut PhoneHandle, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), h.events.recv())
            .await
            .expect("event in time")
            .expect("engine alive");
        if std::env::var_os("PARK_BENCH_DEBUG").is_some() {
            eprintln!("{ev:?}");
        }
        if pred(&ev) {
            return ev;
        }
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(cycles: usize, parked: usize) {
    let mut cfg = ParkConfig::default_local("127.0.0.1", "127.0.0.1:0".parse().unwrap());
    cfg.service.listen.retain(|l| l.transport == "udp");
    // All retrievals come from one loopback address: lift the anti-scanning limit.
    cfg.limits.retrieve_attempts_per_minute = u32::MAX;
    cfg.orbits = vec![orbitphone::park::orbits::OrbitRange::parse("10000", "19999").expect("range")];
    cfg.park.timeout = Duration::from_secs(600);
    for u in ["alice", "bob", "carol"] {
        cfg.users.insert(u.into(), format!("{u}-pw"));
    }
    let svc = park_driver::start(cfg).await.expect("service");
    let park_addr = svc.local[&Transport::Udp];
    let mut alice = phone("alice", park_addr, false).await;
    let mut bob = phone("bob", park_addr, true).await;
    let mut carol = phone("carol", park_addr, false).await;
    let bob_addr = bob.local[&Transport::Udp];
    let (mut park_ms, mut retrieve_ms) = (vec![], vec![]);
    let cycles_started = Instant::now();
    for _ in 0..cycles {
        alice.commands.send(Command::Dial { target: format!("sip:bob@{bob_addr}") }).await.unwrap();
        let Event::CallEstablished { call, .. } =
            until(&mut alice, |e| matches!(e, Event::CallEstablished { .. })).await
        else {
            unreachable!()
        };
        let t0 = Instant::now();
        alice.commands.send(Command::Park { call: Some(call) }).await.unwrap();
        let Event::Parked { orbit_uri, .. } = until(&mut alice, |e| matches!(e, Event::Parked { .. })).await else {
            unreachable!()
        };
        park_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let orbit_uri = orbit_uri.replace("127.0.0.1", &park_addr.to_string());
        let t1 = Instant::now();
        carol.commands.send(Command::Dial { target: orbit_uri }).await.unwrap();
        let Event::CallEstablished { call: c, .. } =
            until(&mut carol, |e| matches!(e, Event::CallEstablished { .. })).await
        else {
            unreachable!()
        };
        retrieve_ms.push(t1.elapsed().as_secs_f64() * 1000.0);
        carol.commands.send(Command::Hangup { call: Some(c) }).await.unwrap();
        until(&mut carol, |e| matches!(e, Event::CallEnded { .. })).await;
        until(&mut alice, |e| matches!(e, Event::ParkRetrieved { .. })).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(2), bob.events.recv()).await {}
    }
    // Whole cycles (call, park, retrieve, hang up), one at a time from one parker.
    let per_second = cycles as f64 / cycles_started.elapsed().as_secs_f64();
    println!(
        "cycles: {cycles} call+park+retrieve+hang-up cycles, one after another: {per_second:.0} per second (sipp-driven concurrent load not measured)"
    );
    // Memory: park 1,000 calls and leave them parked.
    let before = rss_kb();
    for _ in 0..parked {
        alice.commands.send(Command::Dial { target: format!("sip:bob@{bob_addr}") }).await.unwrap();
        let Event::CallEstablished { call, .. } =
            until(&mut alice, |e| matches!(e, Event::CallEstablished { .. })).await
        else {
            unreachable!()
        };
        alice.commands.send(Command::Park { call: Some(call) }).await.unwrap();
        until(&mut alice, |e| matches!(e, Event::Parked { .. })).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), bob.events.recv()).await {}
    }
    let after = rss_kb();
    println!(
        "memory: {parked} calls parked: +{} KB RSS for the whole process (service + parker + parkee engines), {:.1} KB per parked call (upper bound)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / parked as f64
    );
    println!(
        "park   (park command -> parked event), {cycles} cycles: p50 {:.2} ms, p99 {:.2} ms (target p50 <= 10 ms)",
        percentile(&mut park_ms.clone(), 0.5),
        percentile(&mut park_ms, 0.99)
    );
    println!(
        "retrieve (INVITE to orbit -> established), {cycles} cycles: p50 {:.2} ms, p99 {:.2} ms (target p50 <= 5 ms)",
        percentile(&mut retrieve_ms.clone(), 0.5),
        percentile(&mut retrieve_ms, 0.99)
    );
}

async fn music_capacity(calls: u64, secs: u64) {
    let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let sinks: Vec<std::net::UdpSocket> = (0..8).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    let (tx, stats) = music_task::spawn(socket, orbitphone::media::music::builtin_music(8000));
    for park in 0..calls {
        let to = sinks[(park % 8) as usize].local_addr().unwrap();
        tx.send(MusicCommand::Start { park, to, codec: orbitphone::media::negotiate::Codec::pcmu() }).unwrap();
    }
    let before = rss_kb();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let s = *stats.borrow();
    println!(
        "music: {calls} parked calls for {secs} s: {} frames sent, {:.3} % more than 5 ms late (target < 1 %), RSS {} MB",
        s.frames,
        100.0 * s.late_frames as f64 / s.frames.max(1) as f64,
        before / 1024
    );
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a short smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    // Music pacing first, alone in the process: the latency part leaves parked calls
    // (and their music) running, which would compete for the one core under test.
    let rt1 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    if full {
        rt1.block_on(music_capacity(10_000, 10));
    } else {
        rt1.block_on(music_capacity(100, 1));
    }
    drop(rt1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let default_cycles = if full { 200 } else { 5 };
    let cycles = std::env::var("PARK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cycles);
    rt.block_on(latency(cycles, if full { 1000 } else { 10 }));
}
