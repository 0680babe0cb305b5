//! The media task: one 20 ms clock for all calls. Each tick it takes a microphone
//! frame (a WAV file or silence), encodes and sends it on every call that may send,
//! pulls audio from every call's jitter buffer, mixes it and writes the result to the
//! speaker (a WAV file or nowhere). RTP sockets have their own receive loops that feed
//! packets in. Pacing comes from the clock, never from a device.
//!
//! Rates: the mix bus (microphone, speaker, WAV files) always runs at 48 kHz mono, and
//! each call converts between the bus and its codec: Opus works at 48 kHz natively, so
//! an Opus call needs no conversion at all; a G.711 call decimates the microphone to
//! 8 kHz (anti-alias FIR) and interpolates what it receives back to 48 kHz
//! ([`crate::media::resample`]). Per-call conversion keeps every call's codec
//! independent (one Opus call and one PCMU call mix fine), costs a G.711 call about
//! 2 M multiply-adds a second, and puts conversion where the codec is known. Nothing
//! here runs in an audio callback: this task owns its buffers and may allocate.
//!
//! Each call keeps a playout FIFO at bus rate: it pops the jitter buffer only when the
//! FIFO holds less than one tick, so peers sending 10, 30 or 60 ms packets play without
//! gaps. A lost packet ([`Frame::Missing`]) is concealed by the codec: Opus rebuilds it
//! from the next packet's in-band FEC when that packet is already buffered.
//!
//! SRTP: when the negotiation keyed the stream, every RTP packet is protected before it
//! is sent and every received packet must authenticate before it is used (or latched
//! onto for symmetric RTP).
//!
//! RTCP ([`crate::media::rtcp`]): each call has an RTCP socket on RTP port + 1 (the
//! driver binds the pair with [`bind_rtp_pair`]), or shares the RTP port when the offer
//! asked for rtcp-mux. A report (SR while we send, else RR, plus SDES CNAME) goes out
//! every 2.5–7.5 s, over SRTCP when the call uses SRTP, to where the peer's RTCP comes
//! from (symmetric, like RTP) or else to its `a=rtcp`/port + 1; a BYE goes out when the
//! stream stops. RTCP is accepted on either port. Every 2 s each call's figures go to the
//! driver as [`MediaEvent::Stats`].

use super::sound_card::{SoundCard, SoundEvent};
use crate::media::codec::{self, Decoder, Encoder};
use crate::media::jitter::{Frame, JitterBuffer};
use crate::media::negotiate::Codec;
use crate::media::resample::{Downsampler, Upsampler};
use crate::media::rtcp::{RtcpSession, ntp_from_unix_us};
use crate::media::rtp::{DtmfReceiver, DtmfSender, RtpPacket, RtpSender, is_rtcp};
use crate::media::srtp::{SrtpContext, SrtpMode, SrtpParams};
use crate::media::wav::{WavSink, WavSource};
use crate::phone::session::{MediaParams, MediaPrefs};
use crate::phone::{CallNo, CallStats};
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Where audio comes from and goes to, and the account's media preferences.
#[derive(Debug, Clone, Default)]
pub struct AudioIo {
    /// Microphone replacement (WAV, looped).
    pub input: Option<PathBuf>,
    /// Speaker replacement (WAV, written at 48 kHz mono).
    pub output: Option<PathBuf>,
    /// Offer Opus.
    pub opus: bool,
    /// SRTP policy (SDES).
    pub srtp: SrtpMode,
    /// Send back what we hear (the demo echo line): the microphone is the last mixed frame.
    pub echo: bool,
    /// Use the sound card for whichever direction has no file (off: silence, as for
    /// the service's demo lines).
    pub sound_card: bool,
    /// Capture device by id or name (`None`: the default).
    pub input_device: Option<String>,
    /// Playback device by id or name (`None`: the default).
    pub output_device: Option<String>,
    /// Ringtone device by id or name (`None`: ring on the speaker).
    pub ring_device: Option<String>,
}

impl AudioIo {
    /// The desktop app's media: sound devices, Opus offered first (wideband), G.711 too.
    pub fn desktop() -> Self {
        AudioIo { opus: true, sound_card: true, ..Default::default() }
    }

    /// The per-call media preferences these settings imply.
    pub fn prefs(&self) -> MediaPrefs {
        MediaPrefs { opus: self.opus, srtp: self.srtp }
    }
}

/// Requests from the driver.
pub enum MediaCommand {
    /// A call's RTP socket was bound.
    Bind {
        /// The call.
        call: CallNo,
        /// Its RTP socket.
        socket: Arc<UdpSocket>,
        /// Its RTCP socket (RTP port + 1), when one could be bound.
        rtcp_socket: Option<Arc<UdpSocket>>,
    },
    /// Start or update a call's stream.
    Start {
        /// The call.
        call: CallNo,
        /// Negotiated parameters.
        params: MediaParams,
    },
    /// Stop a call's stream.
    Stop {
        /// The call.
        call: CallNo,
    },
    /// Send digits.
    Dtmf {
        /// The call.
        call: CallNo,
        /// Keypad digits.
        digits: String,
    },
    /// Mute or unmute a call's microphone (silence keeps the RTP stream going).
    Mute {
        /// The call.
        call: CallNo,
        /// Muted or not.
        muted: bool,
    },
    /// Use these sound devices (`None`: the default; for `ring`, the speaker).
    ChooseDevices {
        /// Capture device.
        input: Option<String>,
        /// Playback device.
        output: Option<String>,
        /// Ringtone device.
        ring: Option<String>,
    },
    /// Play the ringtone (a call is ringing in) or stop it.
    Ring {
        /// On or off.
        on: bool,
    },
    /// Report the microphone level ([`MediaEvent::Sound`]) or stop reporting it.
    Meter {
        /// On or off.
        on: bool,
    },
    /// Play a one-second 440 Hz tone on the speaker.
    TestTone,
    /// Stop everything and finish the output file.
    Shutdown,
}

/// Reports to the driver.
#[derive(Debug)]
pub enum MediaEvent {
    /// A digit arrived.
    Dtmf {
        /// The call.
        call: CallNo,
        /// The digit.
        digit: char,
    },
    /// The sound card end's news: device changes, notices, the input level.
    Sound(SoundEvent),
    /// A call's current media figures (every [`STATS_EVERY_MS`]).
    Stats {
        /// The call.
        call: CallNo,
        /// The figures.
        stats: CallStats,
    },
}

/// How often each call's figures are reported.
pub const STATS_EVERY_MS: u64 = 2000;

/// Binds an RTP socket on an even port of `ip` and its RTCP socket on the next port
/// (RFC 3550 section 11); after a few collisions, just an RTP socket.
pub async fn bind_rtp_pair(ip: std::net::IpAddr) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
    let mut last = None;
    for _ in 0..16 {
        let first = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = first.local_addr()?.port();
        if port % 2 == 0 {
            if let Some(next) = port.checked_add(1)
                && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, next)).await
            {
                return Ok((first, Some(rtcp)));
            }
        } else if let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port - 1)).await {
            return Ok((rtp, Some(first)));
        }
        last = Some(first);
    }
    match last {
        Some(s) => Ok((s, None)),
        None => Ok((UdpSocket::bind(SocketAddr::new(ip, 0)).await?, None)),
    }
}

/// Handle to the media task.
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCommand>,
    unavailable: Option<String>,
    prefs: MediaPrefs,
}

const FRAME_MS: u64 = 20;
/// The mix bus rate (see the module docs).
pub const BUS_RATE: u32 = 48000;
const BUS_SAMPLES: usize = (BUS_RATE as u64 * FRAME_MS / 1000) as usize;

/// The sending half of a call: bus → codec rate → encoder → packets.
struct TxChain {
    codec: Codec,
    encoder: Box<dyn Encoder>,
    down: Downsampler,
    /// Codec-rate samples waiting to fill a packet of `frame` samples.
    pending: Vec<i16>,
    frame: usize,
}

/// The receiving half: jitter buffer → decoder/concealment → bus rate → playout FIFO.
struct RxChain {
    codec: Codec,
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    up: Upsampler,
    playout: VecDeque<i16>,
}

impl RxChain {
    /// One tick of audio at bus rate, or `None` while nothing is playing.
    fn next_tick(&mut self, now_ms: u64) -> Option<Vec<i16>> {
        // At most a few pops per tick, whatever the peer's packet size.
        for _ in 0..8 {
            if self.playout.len() >= BUS_SAMPLES {
                break;
            }
            let pcm = match self.jitter.pop(now_ms) {
                Frame::Audio(payload) => self.decoder.decode(&payload),
                Frame::Missing => {
                    let next = self.jitter.next_after_loss();
                    self.decoder.conceal(next)
                }
                Frame::Empty => break,
            };
            self.playout.extend(self.up.process(&pcm));
        }
        if self.playout.is_empty() {
            return None;
        }
        let n = self.playout.len().min(BUS_SAMPLES);
        let mut out: Vec<i16> = self.playout.drain(..n).collect();
        out.resize(BUS_SAMPLES, 0);
        Some(out)
    }
}

fn ratio(codec: &Codec) -> usize {
    (BUS_RATE / codec::pcm_rate(codec.kind)).max(1) as usize
}

fn build_tx(codec: &Codec, ptime_ms: u32) -> Option<TxChain> {
    match codec::encoder_for(codec, ptime_ms) {
        Ok(encoder) => Some(TxChain {
            codec: codec.clone(),
            encoder,
            down: Downsampler::new(ratio(codec)),
            pending: Vec::new(),
            frame: codec::frame_samples(codec.kind, ptime_ms),
        }),
        Err(e) => {
            tracing::warn!("cannot encode {}: {e}; sending nothing", codec.name());
            None
        }
    }
}

fn build_rx(codec: &Codec, ptime_ms: u32) -> Option<RxChain> {
    match codec::decoder_for(codec, ptime_ms) {
        Ok(decoder) => Some(RxChain {
            codec: codec.clone(),
            jitter: JitterBuffer::new(codec.clock_rate, ptime_ms),
            decoder,
            up: Upsampler::new(ratio(codec)),
            playout: VecDeque::new(),
        }),
        Err(e) => {
            tracing::warn!("cannot decode {}: {e}; playing silence", codec.name());
            None
        }
    }
}

struct CallStream {
    socket: Arc<UdpSocket>,
    rtcp_socket: Option<Arc<UdpSocket>>,
    /// RTCP state, from the first negotiated parameters on.
    rtcp: Option<RtcpSession>,
    /// Where their RTCP really comes from (on the RTCP port; with rtcp-mux, `latched`).
    rtcp_latched: Option<SocketAddr>,
    /// When the figures were last reported.
    last_stats_ms: u64,
    params: Option<MediaParams>,
    /// Where their packets really come from (symmetric RTP for NAT).
    latched: Option<SocketAddr>,
    sender: RtpSender,
    tx: Option<TxChain>,
    rx: Option<RxChain>,
    srtp: Option<SrtpParams>,
    srtp_out: Option<SrtpContext>,
    srtp_in: Option<SrtpContext>,
    srtp_failures: u64,
    dtmf_out: Option<DtmfSender>,
    dtmf_in: Option<DtmfReceiver>,
    /// Digits asked for before the DTMF payload type was known.
    queued_digits: String,
    /// The user muted this call: send silence instead of the microphone.
    muted: bool,
    recv_task: tokio::task::JoinHandle<()>,
    rtcp_task: Option<tokio::task::JoinHandle<()>>,
}

fn unix_now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

impl CallStream {
    /// Applies new negotiated parameters, keeping codec and SRTP state that did not change.
    fn start(&mut self, now_ms: u64, params: MediaParams) {
        let neg = &params.negotiated;
        if self.params.as_ref().map(|p| p.negotiated.remote_addr) != Some(neg.remote_addr) {
            self.latched = None;
        }
        let ptime = neg.ptime_ms.clamp(10, 60);
        if self
            .tx
            .as_ref()
            .is_none_or(|t| t.codec != neg.codec || t.frame != codec::frame_samples(neg.codec.kind, ptime))
        {
            self.tx = build_tx(&neg.codec, ptime);
        }
        if self.rx.as_ref().is_none_or(|r| r.codec != neg.codec) {
            self.rx = build_rx(&neg.codec, ptime);
        }
        if self.srtp != neg.srtp {
            self.srtp = neg.srtp;
            self.srtp_out = neg.srtp.map(|s| SrtpContext::new(s.suite, &s.local_key));
            self.srtp_in = neg.srtp.map(|s| SrtpContext::new(s.suite, &s.remote_key));
        }
        match self.rtcp.as_mut() {
            Some(r) => r.set_clock_rate(neg.codec.clock_rate),
            None => {
                let now_us = now_ms * 1000;
                let cname = format!("orbit@{}", params.local);
                let ntp = ntp_from_unix_us(unix_now_us());
                self.rtcp = Some(RtcpSession::new(
                    self.sender.ssrc(),
                    &cname,
                    neg.codec.clock_rate,
                    now_us,
                    ntp,
                    rand::random(),
                ));
            }
        }
        if let Some(pt) = neg.dtmf_pt
            && (self.dtmf_in.is_none() || self.params.as_ref().and_then(|p| p.negotiated.dtmf_pt) != Some(pt))
        {
            let mut sender = DtmfSender::new(pt, neg.codec.clock_rate);
            sender.send(&std::mem::take(&mut self.queued_digits));
            self.dtmf_out = Some(sender);
            self.dtmf_in = Some(DtmfReceiver::new(pt));
        }
        self.params = Some(params);
    }

    /// Encodes and sends this tick's microphone frame (or DTMF events instead).
    fn send_tick(&mut self, now_ms: u64, mic: &[i16]) {
        let Some(params) = self.params.as_ref() else {
            return;
        };
        let neg = &params.negotiated;
        if !neg.direction.can_send() {
            return;
        }
        let Some(dest) = self.latched.or(neg.remote_addr) else {
            return;
        };
        let mut packets = Vec::new();
        let mut tone_playing = false;
        if let Some(dtmf) = self.dtmf_out.as_mut() {
            if !dtmf.is_idle() {
                packets.extend(dtmf.poll(now_ms, &mut self.sender));
            }
            tone_playing = dtmf.is_active();
        }
        if let Some(tx) = self.tx.as_mut() {
            let pcm = tx.down.process(mic);
            if tone_playing {
                // The DTMF sender moves the stream clock past the event itself.
                tx.pending.clear();
            } else {
                tx.pending.extend_from_slice(&pcm);
                while tx.pending.len() >= tx.frame {
                    let frame: Vec<i16> = tx.pending.drain(..tx.frame).collect();
                    let payload = tx.encoder.encode(&frame);
                    let step = neg.codec.clock_rate / codec::pcm_rate(tx.codec.kind) * tx.frame as u32;
                    packets.push(self.sender.next_packet(payload, step, false, neg.codec.pt));
                }
            }
        }
        for p in packets {
            if let Some(r) = self.rtcp.as_mut() {
                r.on_rtp_sent(now_ms * 1000, p.timestamp, p.payload.len());
            }
            let bytes = p.to_bytes();
            let wire = match self.srtp_out.as_mut() {
                Some(ctx) => match ctx.protect_rtp(&bytes) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("srtp protect: {e}");
                        continue;
                    }
                },
                None => bytes,
            };
            let _ = self.socket.try_send_to(&wire, dest);
        }
    }

    /// Handles one datagram from the socket; returns a received DTMF digit.
    fn receive(&mut self, now_ms: u64, from: SocketAddr, on_rtcp_port: bool, data: &[u8]) -> Option<char> {
        let params = self.params.as_ref()?;
        let plain;
        let data = match self.srtp_in.as_mut() {
            Some(ctx) => {
                let result = if is_rtcp(data) { ctx.unprotect_rtcp(data) } else { ctx.unprotect_rtp(data) };
                match result {
                    Ok(p) => {
                        plain = p;
                        &plain[..]
                    }
                    Err(e) => {
                        self.srtp_failures += 1;
                        if self.srtp_failures.is_power_of_two() {
                            tracing::info!("srtp: dropped {} packet(s) from {from}: {e}", self.srtp_failures);
                        }
                        return None;
                    }
                }
            }
            None => data,
        };
        if is_rtcp(data) {
            if let Some(r) = self.rtcp.as_mut()
                && r.on_rtcp(now_ms * 1000, data)
                && on_rtcp_port
            {
                self.rtcp_latched = Some(from);
            }
            return None;
        }
        if on_rtcp_port {
            return None;
        }
        let pkt = RtpPacket::parse(data)?;
        self.latched = Some(from);
        let neg = &params.negotiated;
        if let Some(r) = self.rtcp.as_mut()
            && (Some(pkt.payload_type) == neg.dtmf_pt || pkt.payload_type == neg.codec.pt)
        {
            r.on_rtp_received(now_ms * 1000, pkt.ssrc, pkt.sequence, pkt.timestamp, pkt.payload_type == neg.codec.pt);
        }
        if Some(pkt.payload_type) == neg.dtmf_pt {
            return self.dtmf_in.as_mut().and_then(|r| r.on_packet(&pkt));
        }
        if pkt.payload_type == neg.codec.pt
            && let Some(rx) = self.rx.as_mut()
        {
            rx.jitter.push(now_ms, pkt.sequence, pkt.timestamp, pkt.payload);
        }
        None
    }
}

impl CallStream {
    /// Sends the RTCP report if one is due.
    fn rtcp_tick(&mut self, now_ms: u64) {
        if let Some(bytes) = self.rtcp.as_mut().and_then(|r| r.handle_timeout(now_ms * 1000)) {
            self.send_rtcp(&bytes);
        }
    }

    /// Protects (SRTCP) and sends one compound RTCP packet to the peer.
    fn send_rtcp(&mut self, bytes: &[u8]) {
        let Some(neg) = self.params.as_ref().map(|p| &p.negotiated) else {
            return;
        };
        let (socket, dest) = if neg.rtcp_mux || self.rtcp_socket.is_none() {
            let dest = if neg.rtcp_mux { self.latched.or(neg.remote_addr) } else { neg.remote_rtcp };
            (&self.socket, dest)
        } else {
            (self.rtcp_socket.as_ref().unwrap_or(&self.socket), self.rtcp_latched.or(neg.remote_rtcp))
        };
        let Some(dest) = dest else {
            return;
        };
        let wire = match self.srtp_out.as_mut() {
            Some(ctx) => match ctx.protect_rtcp(bytes) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("srtcp protect: {e}");
                    return;
                }
            },
            None => bytes.to_vec(),
        };
        let _ = socket.try_send_to(&wire, dest);
    }

    /// The call's figures now.
    fn stats(&self) -> Option<CallStats> {
        let params = self.params.as_ref()?;
        let r = self.rtcp.as_ref()?.stats();
        Some(CallStats {
            codec: params.negotiated.codec.name().to_string(),
            packets_sent: r.packets_sent,
            packets_received: r.packets_received,
            packets_lost: r.packets_lost,
            loss_percent: round1(r.loss_percent),
            jitter_ms: round1(r.jitter_ms),
            jitter_buffer_ms: self.rx.as_ref().map(|rx| rx.jitter.depth_ms()).unwrap_or(0),
            rtt_ms: r.rtt_ms.map(round1),
            remote_loss_percent: r.remote.map(|x| round1(x.loss_percent)),
            remote_jitter_ms: r.remote.map(|x| round1(x.jitter_ms)),
            rtcp_received: r.rtcp_received,
            srtp: self.srtp_out.is_some(),
        })
    }

    /// Says goodbye on RTCP and stops the receive loops.
    fn close(mut self, now_ms: u64) {
        if let Some(bytes) = self.rtcp.as_mut().map(|r| r.bye(now_ms * 1000)) {
            self.send_rtcp(&bytes);
        }
        self.recv_task.abort();
        if let Some(t) = self.rtcp_task.take() {
            t.abort();
        }
    }
}

fn spawn_recv(
    call: CallNo,
    socket: Arc<UdpSocket>,
    rtcp_port: bool,
    tx: mpsc::Sender<(CallNo, SocketAddr, bool, Vec<u8>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                // An ICMP "port unreachable" for something we sent (e.g. RTCP to a peer
                // that has no RTCP socket) is reported here on some systems: not fatal.
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused) => continue,
                Err(_) => break,
            };
            if tx.send((call, from, rtcp_port, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    })
}

impl MediaHandle {
    /// Start the media task.
    pub fn spawn(io: AudioIo, events: mpsc::Sender<MediaEvent>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        // With the sound card on, the driver probes the devices and reports.
        let unavailable = match (&io.input, &io.output) {
            (Some(_), Some(_)) => None,
            _ if io.sound_card => None,
            _ => Some("no audio device: calls send silence (use --audio-in/--audio-out WAV files)".to_string()),
        };
        let prefs = io.prefs();
        tokio::spawn(run(io, rx, events));
        Self { tx, unavailable, prefs }
    }

    /// Why audio devices are not used, if they are not.
    pub fn unavailable_message(&self) -> Option<String> {
        self.unavailable.clone()
    }

    /// The media preferences every call gets (Opus, SRTP).
    pub fn prefs(&self) -> MediaPrefs {
        self.prefs
    }

    /// Queue a command (never blocks).
    pub fn send(&self, cmd: MediaCommand) {
        let _ = self.tx.send(cmd);
    }
}

enum Internal {
    Cmd(MediaCommand),
    Packet { call: CallNo, from: SocketAddr, rtcp_port: bool, data: Vec<u8> },
    Tick(tokio::time::Instant),
}

/// The wall-clock time (Unix µs) of monotonic instant `at`: lets two processes on one
/// host put their WAV streams on a common time line (the latency benchmark reads these).
fn unix_us_at(at: Instant) -> u64 {
    let late = Instant::now().saturating_duration_since(at);
    unix_now_us().saturating_sub(late.as_micros() as u64)
}

async fn run(io: AudioIo, mut rx: mpsc::UnboundedReceiver<MediaCommand>, events: mpsc::Sender<MediaEvent>) {
    let mut source = io.input.as_ref().and_then(|p| match WavSource::open(p, BUS_RATE) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("audio input {}: {e}; sending silence", p.display());
            None
        }
    });
    let mut sink: Option<WavSink> = None;
    let mut mic_started = false;
    let (pkt_tx, mut pkt_rx) = mpsc::channel::<(CallNo, SocketAddr, bool, Vec<u8>)>(1024);
    let mut calls: HashMap<CallNo, CallStream> = HashMap::new();
    let mut last_mix = vec![0i16; BUS_SAMPLES];
    // The sound card serves whichever direction has no file.
    let mut card = io.sound_card.then(|| {
        SoundCard::new(
            BUS_RATE,
            io.input.is_none().then(|| io.input_device.clone()),
            io.output.is_none().then(|| io.output_device.clone()),
            io.ring_device.clone(),
        )
    });
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        let input = tokio::select! {
            cmd = rx.recv() => match cmd { Some(c) => Internal::Cmd(c), None => break },
            Some((call, from, rtcp_port, data)) = pkt_rx.recv() => Internal::Packet { call, from, rtcp_port, data },
            // No calls, no clock: an idle phone must not wake up 50 times a second.
            at = tick.tick(), if !calls.is_empty() || card.as_ref().is_some_and(|c| c.wants_ticks()) => Internal::Tick(at),
        };
        let now_ms = start.elapsed().as_millis() as u64;
        match input {
            Internal::Tick(at) => {
                if !mic_started && source.is_some() && !io.echo && !calls.is_empty() {
                    // The first input frame is audio-in sample 0 (the file is read from
                    // its start at the first tick of the first call).
                    mic_started = true;
                    tracing::info!("audio-in: sample 0 read at unix_us={}", unix_us_at(at.into_std()));
                }
                let mut mic = match source.as_mut() {
                    _ if io.echo => last_mix.clone(),
                    // Ticks for the meter, tone or ringtone alone do not use up the file.
                    Some(s) if !calls.is_empty() => s.next_frame(BUS_SAMPLES),
                    _ => vec![0i16; BUS_SAMPLES],
                };
                if let Some(c) = card.as_mut() {
                    c.tick(now_ms, !calls.is_empty());
                    if io.input.is_none() && !io.echo {
                        c.read_mic(&mut mic);
                    }
                }
                let mut mix = vec![0i32; BUS_SAMPLES];
                let mut any_playing = false;
                let silence = [0i16; BUS_SAMPLES];
                for (call, stream) in calls.iter_mut() {
                    stream.send_tick(now_ms, if stream.muted { &silence } else { &mic });
                    stream.rtcp_tick(now_ms);
                    if now_ms >= stream.last_stats_ms + STATS_EVERY_MS
                        && let Some(stats) = stream.stats()
                    {
                        stream.last_stats_ms = now_ms;
                        let _ = events.try_send(MediaEvent::Stats { call: *call, stats });
                    }
                    let Some(params) = stream.params.as_ref() else {
                        continue;
                    };
                    if !params.negotiated.direction.can_recv() {
                        continue;
                    }
                    any_playing = true;
                    if let Some(pcm) = stream.rx.as_mut().and_then(|r| r.next_tick(now_ms)) {
                        for (m, s) in mix.iter_mut().zip(pcm.iter()) {
                            *m += i32::from(*s);
                        }
                    }
                }
                if any_playing
                    && sink.is_none()
                    && let Some(path) = &io.output
                {
                    match WavSink::create(path, BUS_RATE) {
                        Ok(s) => {
                            tracing::info!("audio-out: sample 0 written at unix_us={}", unix_us_at(at.into_std()));
                            sink = Some(s)
                        }
                        Err(e) => tracing::warn!("audio output {}: {e}", path.display()),
                    }
                }
                let frame: Vec<i16> = mix.iter().map(|v| (*v).clamp(i16::MIN as i32, i16::MAX as i32) as i16).collect();
                if io.echo {
                    last_mix.copy_from_slice(&frame);
                }
                if let Some(s) = sink.as_mut() {
                    let _ = s.write(&frame);
                }
                if let Some(c) = card.as_mut() {
                    if io.output.is_none() {
                        c.write_speaker(&frame);
                    }
                    if calls.is_empty() && !c.wants_ticks() {
                        // The tone or meter just ended: nothing needs the devices now.
                        c.tick(now_ms, false);
                    }
                    for ev in c.drain_events() {
                        let _ = events.try_send(MediaEvent::Sound(ev));
                    }
                }
            }
            Internal::Cmd(MediaCommand::Bind { call, socket, rtcp_socket }) => {
                let recv_task = spawn_recv(call, socket.clone(), false, pkt_tx.clone());
                let rtcp_task = rtcp_socket.clone().map(|s| spawn_recv(call, s, true, pkt_tx.clone()));
                if calls.is_empty() {
                    // The clock was stopped while idle: restart it now, without a burst
                    // of the ticks it skipped.
                    tick.reset();
                }
                calls.insert(
                    call,
                    CallStream {
                        socket,
                        rtcp_socket,
                        rtcp: None,
                        rtcp_latched: None,
                        last_stats_ms: now_ms,
                        params: None,
                        latched: None,
                        sender: RtpSender::new(),
                        tx: None,
                        rx: None,
                        srtp: None,
                        srtp_out: None,
                        srtp_in: None,
                        srtp_failures: 0,
                        dtmf_out: None,
                        dtmf_in: None,
                        queued_digits: String::new(),
                        muted: false,
                        recv_task,
                        rtcp_task,
                    },
                );
            }
            Internal::Cmd(MediaCommand::Start { call, params }) => {
                if let Some(s) = calls.get_mut(&call) {
                    s.start(now_ms, params);
                }
            }
            Internal::Cmd(MediaCommand::Stop { call }) => {
                if let Some(s) = calls.remove(&call) {
                    s.close(now_ms);
                }
                if let Some(c) = card.as_mut()
                    && calls.is_empty()
                    && !c.wants_ticks()
                {
                    // The last call ended: close the devices (an idle phone holds none).
                    c.tick(now_ms, false);
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
            Internal::Cmd(MediaCommand::Mute { call, muted }) => {
                if let Some(s) = calls.get_mut(&call) {
                    s.muted = muted;
                }
            }
            Internal::Cmd(MediaCommand::ChooseDevices { input, output, ring }) => {
                if let Some(c) = card.as_mut() {
                    c.choose(
                        io.input.is_none().then_some(input).flatten(),
                        io.output.is_none().then_some(output).flatten(),
                        ring,
                    );
                }
            }
            Internal::Cmd(MediaCommand::Ring { on }) => {
                if let Some(c) = card.as_mut() {
                    let was = c.wants_ticks();
                    c.set_ringing(on);
                    if !was && calls.is_empty() {
                        tick.reset();
                    }
                    if calls.is_empty() && !c.wants_ticks() {
                        c.tick(now_ms, false);
                    }
                }
            }
            Internal::Cmd(MediaCommand::Meter { on }) => {
                if let Some(c) = card.as_mut() {
                    let was = c.wants_ticks();
                    c.set_meter(on);
                    if !was && calls.is_empty() {
                        tick.reset();
                    }
                    if calls.is_empty() && !c.wants_ticks() {
                        c.tick(now_ms, false);
                    }
                }
            }
            Internal::Cmd(MediaCommand::TestTone) => {
                if let Some(c) = card.as_mut() {
                    let was = c.wants_ticks();
                    c.play_test_tone();
                    if !was && calls.is_empty() {
                        tick.reset();
                    }
                }
            }
            Internal::Cmd(MediaCommand::Shutdown) => break,
            Internal::Packet { call, from, rtcp_port, data } => {
                let Some(s) = calls.get_mut(&call) else {
                    continue;
                };
                if let Some(digit) = s.receive(now_ms, from, rtcp_port, &data) {
                    let _ = events.try_send(MediaEvent::Dtmf { call, digit });
                }
            }
        }
    }
    let now_ms = start.elapsed().as_millis() as u64;
    for (_, s) in calls.drain() {
        s.close(now_ms);
    }
    if let Some(s) = sink.take() {
        let _ = s.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rtp_and_rtcp_ports_are_a_pair() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        // Hold a few pairs at once so collisions with our own sockets are exercised.
        let mut held = Vec::new();
        for _ in 0..8 {
            let (rtp, rtcp) = bind_rtp_pair(ip).await.unwrap();
            let rtp_port = rtp.local_addr().unwrap().port();
            let rtcp = rtcp.expect("an RTCP socket next to the RTP one");
            assert_eq!(rtp_port % 2, 0, "RTP on an even port");
            assert_eq!(rtcp.local_addr().unwrap().port(), rtp_port + 1);
            held.push((rtp, rtcp));
        }
    }
}
