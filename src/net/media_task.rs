//! The media task: one 20 ms clock for all calls. Each tick it takes a microphone
//! frame (a WAV file or silence), encodes and sends it on every call that may send,
//! pulls a frame from every call's jitter buffer, mixes them and writes the result to
//! the speaker (a WAV file or nowhere). RTP sockets have their own receive loops that
//! feed packets in. Pacing comes from the clock, never from a device.

use crate::media::g711;
use crate::media::jitter::{Frame, JitterBuffer};
use crate::media::negotiate::CodecKind;
use crate::media::rtp::{DtmfReceiver, DtmfSender, RtpPacket, RtpSender};
use crate::media::wav::{WavSink, WavSource};
use crate::phone::CallNo;
use crate::phone::session::MediaParams;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Where audio comes from and goes to.
#[derive(Debug, Clone, Default)]
pub struct AudioIo {
    /// Microphone replacement (WAV, looped).
    pub input: Option<PathBuf>,
    /// Speaker replacement (WAV).
    pub output: Option<PathBuf>,
    /// Offer Opus.
    pub opus: bool,
}

/// Requests from the driver.
pub enum MediaCommand {
    /// A call's RTP socket was bound.
    Bind { call: CallNo, socket: Arc<UdpSocket> },
    /// Start or update a call's stream.
    Start { call: CallNo, params: MediaParams },
    /// Stop a call's stream.
    Stop { call: CallNo },
    /// Send digits.
    Dtmf { call: CallNo, digits: String },
    /// Stop everything and finish the output file.
    Shutdown,
}

/// Reports to the driver.
#[derive(Debug)]
pub enum MediaEvent {
    /// A digit arrived.
    Dtmf { call: CallNo, digit: char },
}

/// Handle to the media task.
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCommand>,
    unavailable: Option<String>,
}

const FRAME_MS: u64 = 20;
const RATE: u32 = 8000;
const SAMPLES: usize = (RATE as u64 * FRAME_MS / 1000) as usize;

struct CallStream {
    socket: Arc<UdpSocket>,
    params: Option<MediaParams>,
    /// Where their packets really come from (symmetric RTP for NAT).
    latched: Option<SocketAddr>,
    sender: RtpSender,
    jitter: JitterBuffer,
    dtmf_out: Option<DtmfSender>,
    dtmf_in: Option<DtmfReceiver>,
    /// Digits asked for before the DTMF payload type was known.
    queued_digits: String,
    recv_task: tokio::task::JoinHandle<()>,
}

impl MediaHandle {
    /// Start the media task.
    pub fn spawn(io: AudioIo, events: mpsc::Sender<MediaEvent>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let unavailable = match (&io.input, &io.output) {
            (Some(_), Some(_)) => None,
            _ => Some("no audio device: this build has no sound card support yet, so calls send silence (use --audio-in/--audio-out WAV files)".to_string()),
        };
        tokio::spawn(run(io, rx, tx.clone(), events));
        Self { tx, unavailable }
    }

    /// Why audio devices are not used, if they are not.
    pub fn unavailable_message(&self) -> Option<String> {
        self.unavailable.clone()
    }

    /// Queue a command (never blocks).
    pub fn send(&self, cmd: MediaCommand) {
        let _ = self.tx.send(cmd);
    }
}

enum Internal {
    Cmd(MediaCommand),
    Packet { call: CallNo, from: SocketAddr, data: Vec<u8> },
}

async fn run(io: AudioIo, mut rx: mpsc::UnboundedReceiver<MediaCommand>, _self_tx: mpsc::UnboundedSender<MediaCommand>, events: mpsc::Sender<MediaEvent>) {
    let mut source = io.input.as_ref().and_then(|p| match WavSource::open(p, RATE) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("audio input {}: {e}; sending silence", p.display());
            None
        }
    });
    let mut sink: Option<WavSink> = None;
    let (pkt_tx, mut pkt_rx) = mpsc::channel::<(CallNo, SocketAddr, Vec<u8>)>(1024);
    let mut calls: HashMap<CallNo, CallStream> = HashMap::new();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        let input = tokio::select! {
            cmd = rx.recv() => match cmd { Some(c) => Internal::Cmd(c), None => break },
            Some((call, from, data)) = pkt_rx.recv() => Internal::Packet { call, from, data },
            _ = tick.tick() => {
                let now_ms = start.elapsed().as_millis() as u64;
                let mic = match source.as_mut() {
                    Some(s) => s.next_frame(SAMPLES),
                    None => vec![0i16; SAMPLES],
                };
                let mut mix = vec![0i32; SAMPLES];
                let mut any_playing = false;
                for stream in calls.values_mut() {
                    let Some(params) = stream.params.clone() else { continue };
                    let neg = &params.negotiated;
                    let dest = stream.latched.or(neg.remote_addr);
                    if neg.direction.can_send() {
                        if let Some(dest) = dest {
                            let mut packets = Vec::new();
                            let mut tone_playing = false;
                            if let Some(dtmf) = stream.dtmf_out.as_mut() {
                                if !dtmf.is_idle() {
                                    packets.extend(dtmf.poll(now_ms, &mut stream.sender));
                                }
                                tone_playing = dtmf.is_active();
                            }
                            if !tone_playing {
                                let payload = match neg.codec.kind {
                                    CodecKind::Pcma => g711::encode_alaw(&mic),
                                    _ => g711::encode_ulaw(&mic),
                                };
                                packets.push(stream.sender.next_packet(payload, SAMPLES as u32, false, neg.codec.pt));
                            }
                            for p in packets {
                                let _ = stream.socket.try_send_to(&p.to_bytes(), dest);
                            }
                        }
                    }
                    if neg.direction.can_recv() {
                        any_playing = true;
                        if let Frame::Audio(payload) = stream.jitter.pop(now_ms) {
                            let pcm = match neg.codec.kind {
                                CodecKind::Pcma => g711::decode_alaw(&payload),
                                _ => g711::decode_ulaw(&payload),
                            };
                            for (m, s) in mix.iter_mut().zip(pcm.iter()) {
                                *m += i32::from(*s);
                            }
                        }
                    }
                }
                if any_playing || sink.is_some() {
                    if sink.is_none() {
                        if let Some(path) = &io.output {
                            match WavSink::create(path, RATE) {
                                Ok(s) => sink = Some(s),
                                Err(e) => tracing::warn!("audio output {}: {e}", path.display()),
                            }
                        }
                    }
                    if let Some(s) = sink.as_mut() {
                        let frame: Vec<i16> = mix.iter().map(|v| (*v).clamp(i16::MIN as i32, i16::MAX as i32) as i16).collect();
                        let _ = s.write(&frame);
                    }
                }
                continue;
            }
        };
        match input {
            Internal::Cmd(MediaCommand::Bind { call, socket }) => {
                let (s, tx) = (socket.clone(), pkt_tx.clone());
                let recv_task = tokio::spawn(async move {
                    let mut buf = vec![0u8; 2048];
                    while let Ok((n, from)) = s.recv_from(&mut buf).await {
                        if tx.send((call, from, buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                });
                calls.insert(call, CallStream {
                    socket,
                    params: None,
                    latched: None,
                    sender: RtpSender::new(),
                    jitter: JitterBuffer::new(RATE, FRAME_MS as u32),
                    dtmf_out: None,
                    dtmf_in: None,
                    queued_digits: String::new(),
                    recv_task,
                });
            }
            Internal::Cmd(MediaCommand::Start { call, params }) => {
                if let Some(s) = calls.get_mut(&call) {
                    if s.params.as_ref().map(|p| p.negotiated.remote_addr) != Some(params.negotiated.remote_addr) {
                        s.latched = None;
                    }
                    if let Some(pt) = params.negotiated.dtmf_pt {
                        if s.dtmf_out.is_none() {
                            let mut sender = DtmfSender::new(pt, RATE);
                            sender.send(&std::mem::take(&mut s.queued_digits));
                            s.dtmf_out = Some(sender);
                            s.dtmf_in = Some(DtmfReceiver::new(pt));
                        }
                    }
                    s.params = Some(params);
                }
            }
            Internal::Cmd(MediaCommand::Stop { call }) => {
                if let Some(s) = calls.remove(&call) {
                    s.recv_task.abort();
                }
            }
            Internal::Cmd(MediaCommand::Dtmf { call, digits }) => {
                if let Some(s) = calls.get_mut(&call) {
                    match s.dtmf_out.as_mut() {
                        Some(sender) => {
                            sender.send(&digits);
                        }
                        None => s.queued_digits.push_str(&digits),
                    }
                }
            }
            Internal::Cmd(MediaCommand::Shutdown) => break,
            Internal::Packet { call, from, data } => {
                let Some(s) = calls.get_mut(&call) else { continue };
                let Some(pkt) = RtpPacket::parse(&data) else { continue };
                let Some(params) = s.params.as_ref() else { continue };
                s.latched = Some(from);
                let now_ms = start.elapsed().as_millis() as u64;
                if Some(pkt.payload_type) == params.negotiated.dtmf_pt {
                    if let Some(digit) = s.dtmf_in.as_mut().and_then(|r| r.on_packet(&pkt)) {
                        let _ = events.try_send(MediaEvent::Dtmf { call, digit });
                    }
                } else if pkt.payload_type == params.negotiated.codec.pt {
                    s.jitter.push(now_ms, pkt.sequence, pkt.timestamp, pkt.payload);
                }
            }
        }
    }
    for (_, s) in calls.drain() {
        s.recv_task.abort();
    }
    if let Some(s) = sink.take() {
        let _ = s.finish();
    }
}
