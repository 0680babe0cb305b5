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
    let Some(path) = file else { return (crate::media::music::builtin_music(RATE), None) };
    let is_wav = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("wav"));
    let decoded = if is_wav {
        WavSource::open(path, RATE).map(|s| s.samples().to_vec()).map_err(|e| e.to_string())
    } else {
        crate::media::decode::decode_file(path, RATE)
    };
    match decoded {
        Ok(samples) if !samples.is_empty() => (samples, None),
        Ok(_) => (
            crate::media::music::builtin_music(RATE),
            Some(format!("music file {} is empty; using the built-in music", path.display())),
        ),
        Err(e) => (
            crate::media::music::builtin_music(RATE),
            Some(format!("music file {} cannot be played ({e}); using the built-in music", path.display())),
        ),
    }
}

/// Start the music task on `socket`.
///
/// Parked calls are spread over 20 one-millisecond slots of the 20 ms frame (like
/// independent RTP streams, which are never phase-aligned), so 10,000 calls mean ~500
/// sends per millisecond instead of a 10,000-packet burst that would leave the last
/// packets late. Each 20 ms frame is still encoded once per codec.
pub fn spawn(
    socket: Arc<UdpSocket>,
    music: Vec<i16>,
) -> (mpsc::UnboundedSender<MusicCommand>, tokio::sync::watch::Receiver<MusicStats>) {
    const SLOTS: usize = 20;
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
        let mut slots: Vec<Vec<ParkId>> = vec![Vec::new(); SLOTS];
        let mut pos = 0usize;
        let mut stats = MusicStats::default();
        let mut start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut k: u64 = 0;
        let (mut ulaw, mut alaw) = (Vec::new(), Vec::new());
        let mut batch = Batch::default();
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(MusicCommand::Start { park, to, codec }) => {
                        if targets.is_empty() {
                            // The clock was stopped (nobody parked): start a fresh frame grid now.
                            start = tokio::time::Instant::now();
                            tick = tokio::time::interval(Duration::from_millis(1));
                            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                            k = 0;
                            ulaw.clear();
                            alaw.clear();
                        }
                        if targets.insert(park, Target { to, codec, rtp: RtpSender::new(), first: true }).is_none() {
                            slots[(park % SLOTS as u64) as usize].push(park);
                        }
                    }
                    Some(MusicCommand::Stop { park }) => {
                        if targets.remove(&park).is_some() {
                            slots[(park % SLOTS as u64) as usize].retain(|p| *p != park);
                        }
                    }
                    None => break,
                },
                // No parked call, no clock: an idle service (or the phone's local mode) must
                // not wake up a thousand times a second.
                _ = tick.tick(), if !targets.is_empty() => {
                    let slot = (k % SLOTS as u64) as usize;
                    let due = start + Duration::from_millis(k);
                    k += 1;
                    if slot == 0 {
                        if targets.is_empty() {
                            continue;
                        }
                        let mut frame = Vec::with_capacity(SAMPLES);
                        for _ in 0..SAMPLES {
                            frame.push(music[pos % music.len().max(1)]);
                            pos += 1;
                        }
                        ulaw = g711::encode_ulaw(&frame);
                        alaw = g711::encode_alaw(&frame);
                    }
                    if ulaw.is_empty() {
                        continue;
                    }
                    batch.clear();
                    for park in &slots[slot] {
                        let Some(t) = targets.get_mut(park) else { continue };
                        let payload = match t.codec.kind {
                            CodecKind::Pcma => &alaw,
                            _ => &ulaw,
                        };
                        batch.push(&t.rtp.header(SAMPLES as u32, t.first, t.codec.pt), payload, t.to);
                        t.first = false;
                    }
                    let sent = batch.send(&socket);
                    stats.frames += sent as u64;
                    if tokio::time::Instant::now().saturating_duration_since(due) > Duration::from_millis(5) {
                        // The whole slot went out late (one batch, one clock reading).
                        stats.late_frames += sent as u64;
                    }
                    if slot == SLOTS - 1 {
                        let _ = stats_tx.send(stats);
                    }
                }
            }
        }
    });
    (tx, stats_rx)
}

/// Packets of one slot, laid out in one buffer and sent with as few syscalls as the OS
/// allows (`sendmmsg` on Linux).
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    packets: Vec<(usize, usize, SocketAddr)>,
}

impl Batch {
    fn clear(&mut self) {
        self.buf.clear();
        self.packets.clear();
    }

    fn push(&mut self, header: &[u8; 12], payload: &[u8], to: SocketAddr) {
        let start = self.buf.len();
        self.buf.extend_from_slice(header);
        self.buf.extend_from_slice(payload);
        self.packets.push((start, self.buf.len(), to));
    }

    #[cfg(target_os = "linux")]
    fn send(&self, socket: &UdpSocket) -> usize {
        use std::os::fd::AsRawFd;
        let n = self.packets.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: zeroed sockaddr_storage/iovec/mmsghdr are valid "empty" values.
        let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; n];
        let mut iovs: Vec<libc::iovec> = Vec::with_capacity(n);
        let mut lens: Vec<libc::socklen_t> = Vec::with_capacity(n);
        for (i, (start, end, to)) in self.packets.iter().enumerate() {
            lens.push(write_sockaddr(&mut addrs[i], to));
            iovs.push(libc::iovec {
                iov_base: self.buf[*start..*end].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            });
        }
        let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = &mut addrs[i] as *mut _ as *mut libc::c_void;
            m.msg_hdr.msg_namelen = lens[i];
            m.msg_hdr.msg_iov = &mut iovs[i] as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            msgs.push(m);
        }
        let fd = socket.as_raw_fd();
        let mut sent = 0;
        while sent < n {
            // SAFETY: msgs[sent..] are initialised mmsghdr pointing at live buffers;
            // MSG_DONTWAIT keeps the (async) task from blocking.
            let r = unsafe {
                libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (n - sent) as libc::c_uint, libc::MSG_DONTWAIT)
            };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
        sent
    }

    #[cfg(not(target_os = "linux"))]
    fn send(&self, socket: &UdpSocket) -> usize {
        self.packets.iter().filter(|(s, e, to)| socket.try_send_to(&self.buf[*s..*e], *to).is_ok()).count()
    }
}

#[cfg(target_os = "linux")]
fn write_sockaddr(storage: &mut libc::sockaddr_storage, addr: &SocketAddr) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analysis::{dominant_frequency, rms_dbfs};

    /// Configured music in every supported format plays as itself; a broken file falls
    /// back to the built-in music with a warning that names it.
    #[test]
    fn music_files_in_wav_flac_and_ogg_play_and_a_broken_file_falls_back() {
        let dir = std::env::temp_dir().join(format!("orbit-music-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for ext in ["wav", "flac", "ogg"] {
            let path = dir.join(format!("hold.{ext}"));
            let made = std::process::Command::new("sox")
                .args(["-n", "-r", "44100", "-c", "2"])
                .arg(&path)
                .args(["synth", "2", "sine", "440", "vol", "0.5"])
                .status()
                .expect("sox is installed by scripts/install-deps.sh");
            assert!(made.success(), "sox could not write {ext}");
            let (samples, warning) = load_music(Some(&path));
            assert_eq!(warning, None, "{ext}");
            let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
            let f = dominant_frequency(middle, RATE);
            assert!((f - 440.0).abs() < 5.0, "{ext}: {f} Hz");
            assert!(rms_dbfs(middle) > -12.0, "{ext}: level {}", rms_dbfs(middle));
            assert!((samples.len() as i64 - 16_000).abs() < 1_000, "{ext}: 2 s at 8 kHz, got {}", samples.len());
        }
        let broken = dir.join("broken.mp3");
        std::fs::write(&broken, b"this is not audio").unwrap();
        let (samples, warning) = load_music(Some(&broken));
        assert_eq!(samples, crate::media::music::builtin_music(RATE));
        assert!(warning.unwrap().contains("broken.mp3"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
