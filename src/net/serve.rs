//! `orbitphone serve`: the registrar/proxy and the park service in one process, for the
//! built-in local mode and small offices.

use super::park_driver::{self, ParkHandle};
use super::sip_socket::{Inbound, SipSockets};
use crate::park::config::ParkConfig;
use crate::registrar::{Output, Registrar, RegistrarConfig};
use crate::sip::transport::Transport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::sync::mpsc;

/// A running local server.
pub struct ServeHandle {
    /// The demo lines (`bob` answers with a spoken message) when enabled.
    pub demo_lines: Vec<super::phone_driver::PhoneHandle>,
    /// The registrar's SIP address (point phones' `--proxy` here).
    pub registrar: SocketAddr,
    /// The park service.
    pub park: ParkHandle,
    /// The accounts (user, password) it accepts.
    pub accounts: BTreeMap<String, String>,
    /// The `callme` demo line's commands, when the demo lines run: "Have Bob call me"
    /// sends it `Dial` with your address.
    pub demo_caller: Option<mpsc::Sender<crate::phone::Command>>,
}

/// Demo accounts of the local mode: you, a colleague to retrieve as, and the two demo
/// lines (`bob` talks, `echo` sends back what it hears).
pub fn demo_accounts() -> BTreeMap<String, String> {
    ["me", "bob", "carol", "echo", "callme"]
        .iter()
        .map(|u| (u.to_string(), crate::sip::message::random_token(10)))
        .collect()
}

/// Start the registrar on `listen` and the park service from `park` (whose
/// `trusted_proxies` gets the registrar added, and whose users are the accounts).
pub async fn start(listen: SocketAddr, mut park: ParkConfig) -> Result<ServeHandle, String> {
    let (in_tx, mut in_rx) = mpsc::channel::<Inbound>(1024);
    let mut sockets = SipSockets::bind(listen, &[Transport::Udp, Transport::Tcp], None, in_tx)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let registrar_addr = sockets.local[&Transport::Udp];
    park.service.trusted_proxies.push(registrar_addr);
    let accounts = park.users.clone();
    let orbit_prefixes = park.orbits.iter().map(|r| (r.lo, r.hi, r.digits)).collect();
    let park_handle = park_driver::start(park).await?;
    let park_addr = park_handle.local.get(&Transport::Udp).copied();
    let cfg = RegistrarConfig {
        domain: registrar_addr.to_string(),
        local: registrar_addr,
        users: accounts.clone(),
        park_service: park_addr,
        orbit_prefixes,
        max_expires: 3600,
        min_expires: 60,
    };
    let mut registrar = Registrar::new(Instant::now(), cfg);
    tokio::spawn(async move {
        while let Some(msg) = in_rx.recv().await {
            registrar.handle_datagram(Instant::now(), &msg.data, msg.source);
            while let Some(Output::Transmit { to, bytes }) = registrar.poll_output() {
                if let Err(e) = sockets.send(to, bytes).await {
                    tracing::warn!("registrar: {e}");
                }
            }
        }
    });
    Ok(ServeHandle {
        registrar: registrar_addr,
        park: park_handle,
        accounts,
        demo_lines: Vec::new(),
        demo_caller: None,
    })
}

/// The park configuration of the local mode: orbits 7000–7099, everyone allowed, the
/// service on a free port next to the registrar.
pub fn local_park_config(domain: &str, ip: std::net::IpAddr, accounts: BTreeMap<String, String>) -> ParkConfig {
    let mut cfg = ParkConfig::default_local(domain, SocketAddr::new(ip, 0));
    cfg.service.listen.retain(|l| l.transport == "udp");
    cfg.users = accounts;
    cfg
}

/// The spoken message of the demo lines (`assets/demo-bob.wav`), written to a WAV file in
/// the temp dir for the line's `--audio-in`.
fn demo_message() -> Option<std::path::PathBuf> {
    // Spoken by espeak-ng once, when the asset was made (assets/README.md), not at every start.
    const BOB: &[u8] = include_bytes!("../../assets/demo-bob.wav");
    let path = std::env::temp_dir().join(format!("orbit-demo-bob-{}.wav", std::process::id()));
    std::fs::write(&path, BOB).ok()?;
    Some(path)
}

/// Start the demo lines against a running local server: `bob` answers every call and
/// talks (a spoken message on a loop), so you can park him and pick him up again;
/// `echo` answers and sends back what it hears, so you can hear your own path.
pub async fn start_demo_lines(handle: &mut ServeHandle) -> Result<(), String> {
    // (user, display name, echo, calls back instead of answering)
    let lines = [
        ("bob", "Bob (demo line)", false, false),
        ("echo", "Echo line", true, false),
        ("callme", "Bob (calls you back)", false, true),
    ];
    // One recording for every line that talks (written before any line reads it).
    let message = demo_message();
    for (user, name, echo, calls_back) in lines {
        let Some(password) = handle.accounts.get(user).cloned() else { continue };
        let account = crate::phone::account::Account {
            display_name: Some(name.into()),
            password: Some(password),
            outbound: Some(handle.registrar),
            register: true,
            expires: 3600,
            auto_answer: !calls_back,
            ..crate::phone::account::Account::new(&format!("sip:{user}@{}", handle.registrar))
        };
        let input = if echo { None } else { message.clone() };
        let audio = super::media_task::AudioIo { input, echo, ..Default::default() };
        let cfg = super::phone_driver::PhoneConfig {
            account,
            listen: SocketAddr::new(handle.registrar.ip(), 0),
            ca_file: None,
            audio,
        };
        let mut line = super::phone_driver::start(cfg).await?;
        // Nobody else reads a demo line's events; drain them so its engine never waits.
        // "Have Bob call me": the callme line declines the call and rings the caller back.
        let mut events = std::mem::replace(&mut line.events, mpsc::channel(1).1);
        let commands = line.commands.clone();
        if calls_back {
            handle.demo_caller = Some(commands.clone());
        }
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                // Only a new call to callme rings the caller back; an INVITE that replaces
                // its call (the park service pulling it onto an orbit) must be kept.
                if let (true, crate::phone::Event::CallIncoming { call, from, replaces: None, .. }) = (calls_back, ev) {
                    let _ = commands.send(crate::phone::Command::Hangup { call: Some(call) }).await;
                    let commands = commands.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        let _ = commands.send(crate::phone::Command::Dial { target: from }).await;
                    });
                }
            }
        });
        handle.demo_lines.push(line);
    }
    Ok(())
}

/// The phone's built-in local mode: the server on a free port of 127.0.0.1 (registrar,
/// park service, demo lines) and the account `me` registered with it.
pub struct LocalMode {
    /// The running server (keep it alive as long as the phone).
    pub server: ServeHandle,
    /// The account `sip:me@127.0.0.1:PORT`, with its password and the registrar as proxy.
    pub me: crate::phone::account::Account,
}

/// Start the local mode (see [`LocalMode`]).
pub async fn start_local_mode() -> Result<LocalMode, String> {
    let accounts = demo_accounts();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    // The registrar's own address is the domain; bind first to learn a free port.
    let listen = std::net::UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr()).map_err(|e| e.to_string())?;
    let park = local_park_config(&listen.to_string(), ip, accounts);
    let mut server = start(listen, park).await?;
    start_demo_lines(&mut server).await?;
    let me = crate::phone::account::Account {
        display_name: Some("Me".into()),
        password: server.accounts.get("me").cloned(),
        outbound: Some(server.registrar),
        register: true,
        expires: 3600,
        ..crate::phone::account::Account::new(&format!("sip:me@{}", server.registrar))
    };
    Ok(LocalMode { server, me })
}

/// `orbitphone serve`: run until SIGINT/SIGTERM.
pub async fn run_forever(listen: SocketAddr, config: Option<ParkConfig>) -> anyhow::Result<()> {
    let park = match config.clone() {
        Some(c) => c,
        None => {
            let accounts = demo_accounts();
            local_park_config(&listen.to_string(), listen.ip(), accounts)
        }
    };
    let demo = config.is_none();
    let mut handle = start(listen, park).await.map_err(anyhow::Error::msg)?;
    if demo {
        start_demo_lines(&mut handle).await.map_err(anyhow::Error::msg)?;
        println!(
            "demo lines: call bob (he answers and talks) to try park and retrieve; call echo to hear yourself; call callme and Bob calls you back"
        );
    }
    let park_addrs: Vec<String> = handle.park.local.iter().map(|(t, a)| format!("{t}:{a}")).collect();
    println!("orbit serve: registrar on udp:{} (and tcp), park service on {}", handle.registrar, park_addrs.join(", "));
    for (user, password) in &handle.accounts {
        println!("account sip:{user}@{} password {password}", handle.registrar);
    }
    println!("orbits: dial 7000-7099 to retrieve; park with `park` in `orbitphone cli`");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(stop) = handle.park.stop.take() {
        let _ = stop.send(());
    }
    let _ = (&mut handle.park.done).await;
    Ok(())
}
