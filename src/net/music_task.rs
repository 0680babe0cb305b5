//! Music on hold for every parked call from one socket and one clock: each 20 ms frame
//! is encoded once per codec and the same payload is sent to every parked call with its
//! own RTP header, so 10,000 parked calls cost 10,000 `sendto`s, not 10,000 encoders.

use crate::media::g711;
use crate::media::negotiate::{Codec, CodecKind};
use crate::media::rtp::RtpSender;
use crate::media::wav::WavSource;
use crate::park::ParkId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const RATE: u32 = 8000;
const SAMPLES: usize = 160;

/// Commands to the music task.
pub enum MusicCommand {
    /// Play to a parked call.
    Start { park: ParkId, to: SocketAddr, codec: Codec },
    /// Stop playing to it.
    Stop { park: ParkId },
}

struct Target {
    to: SocketAddr,
    codec: Codec,
    rtp: RtpSender,
    first: bool,
}

/// Figures for the capacity benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct MusicStats {
    /// Frames sent.
    pub frames: u64,
    /// Frames whose tick ran more than 5 ms late.
    pub late_frames: u64,
}

/// Load the configured music, or the built-in music when there is none or it is unusable
/// (the warning says why).
pub fn load_music(file: Option<&Path>) -> (Vec<i16>, Option<String>) {
    match file {
        None => (crate::media::music::builtin_music(RATE), None),
        Some(path) => match WavSource::open(path, RATE) {
            Ok(src) if !src.is_empty() => (src.samples().to_vec(), None),
            Ok(_) => (crate::media::music::builtin_music(RATE), Some(format!("music file {} is empty; using the built-in music", path.display()))),
            Err(e) => (
                crate::media::music::builtin_music(RATE),
                Some(format!("music file {} cannot be played ({e}); using the built-in music", path.display())),
            ),
        },
    }
}

/// Start the music task on `socket`.
pub fn spawn(socket: Arc<UdpSocket>, music: Vec<i16>) -> (mpsc::UnboundedSender<MusicCommand>, tokio::sync::watch::Receiver<MusicStats>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<MusicCommand>();
    let (stats_tx, stats_rx) = tokio::sync::watch::channel(MusicStats::default());
    tokio::spawn(async move {
        // Drain whatever arrives on the music socket (RTCP, the parkee's own RTP).
        let s = socket.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while s.recv_from(&mut buf).await.is_ok() {}
        });
        let mut targets: HashMap<ParkId, Target> = HashMap::new();
        let mut pos = 0usize;
        let mut stats = MusicStats::default();
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(MusicCommand::Start { park, to, codec }) => {
                        targets.insert(park, Target { to, codec, rtp: RtpSender::new(), first: true });
                    }
                    Some(MusicCommand::Stop { park }) => { targets.remove(&park); }
                    None => break,
                },
                at = tick.tick() => {
                    n += 1;
                    let due = start + Duration::from_millis(20 * (n - 1));
                    let late = at.saturating_duration_since(due) > Duration::from_millis(5)
                        || tokio::time::Instant::now().saturating_duration_since(due) > Duration::from_millis(5);
                    if targets.is_empty() {
                        continue;
                    }
                    let mut frame = Vec::with_capacity(SAMPLES);
                    for _ in 0..SAMPLES {
                        frame.push(music[pos % music.len().max(1)]);
                        pos += 1;
                    }
                    let ulaw = g711::encode_ulaw(&frame);
                    let alaw = g711::encode_alaw(&frame);
                    for t in targets.values_mut() {
                        let payload = match t.codec.kind {
                            CodecKind::Pcma => alaw.clone(),
                            _ => ulaw.clone(),
                        };
                        let pkt = t.rtp.next_packet(payload, SAMPLES as u32, t.first, t.codec.pt);
                        t.first = false;
                        let _ = socket.try_send_to(&pkt.to_bytes(), t.to);
                    }
                    stats.frames += targets.len() as u64;
                    if late {
                        stats.late_frames += targets.len() as u64;
                    }
                    let _ = stats_tx.send(stats);
                }
            }
        }
    });
    (tx, stats_rx)
}
