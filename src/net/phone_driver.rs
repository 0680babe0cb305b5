//! Runs a phone [`Engine`] on tokio: SIP sockets, RTP sockets, the clock, and the
//! channels to a face. The face sends [`Command`]s and receives [`Event`]s; it never
//! waits on the engine.

use super::audio_device;
use super::media_task::{AudioIo, MediaCommand, MediaEvent, MediaHandle, bind_rtp_pair};
use super::sip_socket::{Inbound, SipSockets};
use super::sip_trace::SipTrace;
use super::sound_card::SoundEvent;
use super::tls::TlsClient;
use crate::phone::account::Account;
use crate::phone::{AudioDevice, AudioRole, Command, Engine, Event, Output};
use crate::sip::transport::Transport;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Everything needed to run one phone.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The account.
    pub account: Account,
    /// Where to bind SIP (port 0 = any free port).
    pub listen: SocketAddr,
    /// Extra CA certificate(s) for TLS.
    pub ca_file: Option<PathBuf>,
    /// Audio files instead of devices.
    pub audio: AudioIo,
}

/// The face's end of a running phone.
pub struct PhoneHandle {
    /// Send commands here.
    pub commands: mpsc::Sender<Command>,
    /// Events arrive here; the channel closes after [`Event::Stopped`].
    pub events: mpsc::Receiver<Event>,
    /// Bound SIP addresses.
    pub local: HashMap<Transport, SocketAddr>,
    /// The last SIP messages sent and received (the window's "SIP trace").
    pub trace: SipTrace,
}

/// The address to advertise in SDP and Contact when bound to 0.0.0.0: the source
/// address the OS would use toward the outbound proxy.
fn advertised_ip(listen: IpAddr, toward: Option<SocketAddr>) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect(toward.unwrap_or_else(|| SocketAddr::from(([192, 0, 2, 1], 9))))?;
        s.local_addr()
    });
    probe.map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Start a phone; returns once the sockets are bound.
pub async fn start(cfg: PhoneConfig) -> Result<PhoneHandle, String> {
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(256);
    let tls = if cfg.account.transport == Transport::Tls {
        Some(Arc::new(TlsClient::new(&cfg.account.domain(), cfg.ca_file.as_deref())?))
    } else {
        None
    };
    let transports = [Transport::Udp, Transport::Tcp, Transport::Tls];
    let sockets = SipSockets::bind(cfg.listen, &transports, tls, in_tx)
        .await
        .map_err(|e| format!("cannot bind SIP on {}: {e}", cfg.listen))?;
    let ip = advertised_ip(cfg.listen.ip(), cfg.account.outbound);
    let local: HashMap<Transport, SocketAddr> =
        sockets.local.iter().map(|(t, a)| (*t, SocketAddr::new(ip, a.port()))).collect();
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let (ev_tx, ev_rx) = mpsc::channel::<Event>(256);
    let engine = Engine::new(cfg.account.clone(), local.clone());
    let (media_ev_tx, media_ev_rx) = mpsc::channel::<MediaEvent>(64);
    let media = MediaHandle::spawn(cfg.audio.clone(), media_ev_tx);
    if let Some(message) = media.unavailable_message() {
        let _ = ev_tx.send(Event::AudioUnavailable { message }).await;
    }
    if cfg.audio.sound_card && (cfg.audio.input.is_none() || cfg.audio.output.is_none()) {
        // Say at once when there is no sound card, not at the first call.
        let list = tokio::task::spawn_blocking(audio_device::list).await.unwrap_or_default();
        if let Some(message) = list.unavailable() {
            let _ = ev_tx.send(Event::AudioUnavailable { message }).await;
        }
    }
    let devices = AudioChoice {
        input: cfg.audio.input_device.clone(),
        output: cfg.audio.output_device.clone(),
        ring: cfg.audio.ring_device.clone(),
    };
    let trace = SipTrace::default();
    let io =
        Io { sockets, inbound: in_rx, media, media_events: media_ev_rx, media_ip: ip, trace: trace.clone(), devices };
    tokio::spawn(run(engine, io, cmd_rx, ev_tx));
    Ok(PhoneHandle { commands: cmd_tx, events: ev_rx, local, trace })
}

/// The driver's side of a running phone: sockets, media, the trace.
struct Io {
    sockets: SipSockets,
    inbound: mpsc::Receiver<Inbound>,
    media: MediaHandle,
    media_events: mpsc::Receiver<MediaEvent>,
    media_ip: IpAddr,
    trace: SipTrace,
    /// The sound devices chosen so far.
    devices: AudioChoice,
}

/// Wall-clock Unix seconds for the trace.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

async fn run(mut engine: Engine, io: Io, mut commands: mpsc::Receiver<Command>, events: mpsc::Sender<Event>) {
    let Io { mut sockets, mut inbound, media, mut media_events, media_ip, trace, mut devices } = io;
    engine.start(Instant::now());
    let mut ringing = Ringing::default();
    let mut commands_open = true;
    loop {
        while let Some(out) = engine.poll_output() {
            match out {
                Output::Transmit { to, bytes } => {
                    trace.record(unix_now(), true, to, &bytes);
                    if let Err(e) = sockets.send(to, bytes).await {
                        tracing::warn!("{e}");
                        // Fail what waits on that peer now, with the real reason, rather
                        // than let it time out as "no answer".
                        engine.transport_failed(Instant::now(), to, &e);
                    }
                }
                Output::Event(ev) => {
                    if let Some(on) = ringing.apply(&ev) {
                        media.send(MediaCommand::Ring { on });
                    }
                    let _ = events.send(ev).await;
                }
                Output::AllocateMedia { call } => match bind_rtp_pair(media_ip).await {
                    Ok((sock, rtcp)) => {
                        // The account's Opus/SRTP choices, before the call's first SDP.
                        engine.set_call_media_prefs(call, media.prefs());
                        let addr = sock.local_addr().unwrap_or_else(|_| SocketAddr::new(media_ip, 0));
                        let rtcp_socket = rtcp.map(Arc::new);
                        media.send(MediaCommand::Bind { call, socket: Arc::new(sock), rtcp_socket });
                        engine.media_allocated(Instant::now(), call, addr);
                    }
                    Err(e) => engine.media_failed(Instant::now(), call, &format!("cannot bind RTP: {e}")),
                },
                Output::MediaStart { call, params } => media.send(MediaCommand::Start { call, params }),
                Output::MediaStop { call } => media.send(MediaCommand::Stop { call }),
                Output::SendDtmf { call, digits } => media.send(MediaCommand::Dtmf { call, digits }),
                Output::MediaMute { call, muted } => media.send(MediaCommand::Mute { call, muted }),
                Output::Stopped => {
                    media.send(MediaCommand::Shutdown);
                    return;
                }
            }
        }
        let deadline = engine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            Some(msg) = inbound.recv() => {
                trace.record(unix_now(), false, msg.source, &msg.data);
                engine.handle_datagram(Instant::now(), &msg.data, msg.source)
            }
            cmd = commands.recv(), if commands_open => match cmd {
                Some(cmd) => match cmd {
                    Command::Trace => {
                        let _ = events.send(Event::SipTrace { messages: trace.snapshot() }).await;
                    }
                    Command::ListAudioDevices => {
                        let events = events.clone();
                        tokio::spawn(async move {
                            let list = tokio::task::spawn_blocking(audio_device::list).await.unwrap_or_default();
                            let _ = events.send(devices_event(list)).await;
                        });
                    }
                    Command::ChooseAudioDevice { role, device } => {
                        match role {
                            AudioRole::Input => devices.input = device,
                            AudioRole::Output => devices.output = device,
                            AudioRole::Ring => devices.ring = device,
                        }
                        media.send(MediaCommand::ChooseDevices {
                            input: devices.input.clone(),
                            output: devices.output.clone(),
                            ring: devices.ring.clone(),
                        });
                    }
                    Command::TestTone => media.send(MediaCommand::TestTone),
                    Command::AudioMeter { on } => media.send(MediaCommand::Meter { on }),
                    cmd => engine.handle_command(Instant::now(), cmd),
                },
                None => {
                    commands_open = false;
                    engine.handle_command(Instant::now(), Command::Quit);
                }
            },
            Some(ev) = media_events.recv() => match ev {
                MediaEvent::Dtmf { call, digit } => engine.dtmf_received(call, digit),
                MediaEvent::Sound(s) => {
                    let _ = events.send(sound_event(s)).await;
                }
                MediaEvent::Stats { call, stats } => engine.media_stats(call, stats),
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            } => engine.handle_timeout(Instant::now()),
        }
    }
}

/// The sound devices chosen so far (`None`: the default; for `ring`, the speaker).
#[derive(Debug, Clone, Default)]
struct AudioChoice {
    input: Option<String>,
    output: Option<String>,
    ring: Option<String>,
}

/// Which calls are ringing in, from the engine's events: the ringtone plays while any is.
#[derive(Debug, Default)]
struct Ringing(std::collections::BTreeSet<crate::phone::CallNo>);

impl Ringing {
    /// Takes an event; returns `Some(on)` when the ringtone should start or stop.
    fn apply(&mut self, ev: &Event) -> Option<bool> {
        let before = !self.0.is_empty();
        match ev {
            Event::CallIncoming { call, replaces: None, .. } => {
                self.0.insert(*call);
            }
            Event::CallEstablished { call, .. } | Event::CallEnded { call, .. } => {
                self.0.remove(call);
            }
            Event::Stopped => self.0.clear(),
            _ => {}
        }
        let after = !self.0.is_empty();
        (before != after).then_some(after)
    }
}

/// The face's view of the device list.
fn devices_event(list: audio_device::DeviceList) -> Event {
    let conv =
        |v: Vec<audio_device::DeviceInfo>| v.into_iter().map(|d| AudioDevice { id: d.id, name: d.name }).collect();
    Event::AudioDevices {
        inputs: conv(list.inputs),
        outputs: conv(list.outputs),
        default_input: list.default_input,
        default_output: list.default_output,
    }
}

/// The face's view of the sound card end's news.
fn sound_event(s: SoundEvent) -> Event {
    match s {
        SoundEvent::Notice(message) => Event::AudioNotice { message },
        SoundEvent::Devices { input, output } => Event::AudioRoute { input, output },
        SoundEvent::Level(l) => {
            Event::AudioLevel { rms_dbfs: l.rms_dbfs.round() as i32, peak_dbfs: l.peak_dbfs.round() as i32 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_while_any_incoming_call_is_unanswered() {
        let mut r = Ringing::default();
        let incoming =
            |call| Event::CallIncoming { call, from: "sip:bob@x".into(), name: None, recall: None, replaces: None };
        assert_eq!(r.apply(&incoming(1)), Some(true));
        assert_eq!(r.apply(&incoming(2)), None, "already ringing");
        assert_eq!(r.apply(&Event::CallEstablished { call: 1, party: "bob".into(), codec: None }), None);
        assert_eq!(r.apply(&Event::CallRinging { call: 2 }), None);
        assert_eq!(r.apply(&Event::CallEnded { call: 2, reason: "cancelled".into() }), Some(false));
        // An attended-transfer replacement is answered at once: it never rings.
        let replacing =
            Event::CallIncoming { call: 3, from: "sip:c@x".into(), name: None, recall: None, replaces: Some(1) };
        assert_eq!(r.apply(&replacing), None);
        assert_eq!(r.apply(&incoming(4)), Some(true));
        assert_eq!(r.apply(&Event::Stopped), Some(false));
    }
}
