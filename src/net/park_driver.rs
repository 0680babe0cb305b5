//! Runs the [`ParkService`] on tokio: SIP sockets from the config, one music socket,
//! the clock, and SIGINT/SIGTERM for a clean shutdown (BYE to every parked call and a
//! final "disconnected" to every parker).

use super::music_task::{self, MusicCommand};
use super::sip_socket::{Inbound, SipSockets};
use crate::park::config::ParkConfig;
use crate::park::{Output, ParkService};
use crate::sip::transport::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// A running park service.
pub struct ParkHandle {
    /// Bound SIP addresses.
    pub local: HashMap<Transport, SocketAddr>,
    /// Ask it to stop (BYE parked calls, notify parkers); resolves when done.
    pub stop: Option<oneshot::Sender<()>>,
    /// Completes when the service has stopped.
    pub done: tokio::task::JoinHandle<()>,
}

/// Bind and start the service.
pub async fn start(cfg: ParkConfig) -> Result<ParkHandle, String> {
    let first = cfg.service.listen.first().ok_or("service.listen is empty")?.addr;
    let transports: Vec<Transport> = cfg.service.listen.iter().filter_map(|l| Transport::parse(&l.transport)).collect();
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(1024);
    let sockets = SipSockets::bind(first, &transports, None, in_tx)
        .await
        .map_err(|e| format!("cannot listen on {first}: {e}"))?;
    let music_socket = UdpSocket::bind(SocketAddr::new(first.ip(), 0))
        .await
        .map_err(|e| format!("cannot bind the music socket: {e}"))?;
    let music_addr = music_socket.local_addr().map_err(|e| e.to_string())?;
    let (music, warning) = music_task::load_music(cfg.park.music_file.as_deref());
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let (music_tx, _stats) = music_task::spawn(Arc::new(music_socket), music);
    let local = sockets.local.clone();
    let service = ParkService::new(Instant::now(), cfg, local.clone(), music_addr);
    let (stop_tx, stop_rx) = oneshot::channel();
    let done = tokio::spawn(run(service, sockets, in_rx, music_tx, stop_rx));
    Ok(ParkHandle { local, stop: Some(stop_tx), done })
}

async fn run(
    mut service: ParkService,
    mut sockets: SipSockets,
    mut inbound: mpsc::Receiver<Inbound>,
    music: mpsc::UnboundedSender<MusicCommand>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut stopping = false;
    loop {
        while let Some(out) = service.poll_output() {
            match out {
                Output::Transmit { to, bytes } => {
                    if let Err(e) = sockets.send(to, bytes).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::MusicStart { park, to, codec } => {
                    let _ = music.send(MusicCommand::Start { park, to, codec });
                }
                Output::MusicStop { park } => {
                    let _ = music.send(MusicCommand::Stop { park });
                }
                Output::Log(line) => tracing::info!("{line}"),
                Output::Stopped => return,
            }
        }
        let deadline = service.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(msg) = inbound.recv() => service.handle_datagram(Instant::now(), &msg.data, msg.source),
            _ = &mut stop, if !stopping => {
                stopping = true;
                service.shutdown(Instant::now());
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            } => service.handle_timeout(Instant::now()),
        }
    }
}

/// `orbitphone park-service --config FILE`: run until SIGINT/SIGTERM.
pub async fn run_forever(cfg: ParkConfig) -> anyhow::Result<()> {
    let mut handle = start(cfg).await.map_err(anyhow::Error::msg)?;
    let addrs: Vec<String> = handle.local.iter().map(|(t, a)| format!("{t}:{a}")).collect();
    println!("orbit park service listening on {}", addrs.join(", "));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = &mut handle.done => return Ok(()),
    }
    eprintln!("stopping: hanging up parked calls");
    if let Some(stop) = handle.stop.take() {
        let _ = stop.send(());
    }
    let _ = handle.done.await;
    Ok(())
}
