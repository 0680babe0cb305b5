//! RTP packets (RFC 3550) and RFC 4733 DTMF events over them.

use std::collections::VecDeque;

use rand::Rng;

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// One RTP packet; CSRCs and header extensions are skipped on parse and never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Marker bit (start of talkspurt / start of DTMF event).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Payload with padding removed.
    pub payload: Vec<u8>,
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl RtpPacket {
    /// Parses a datagram; `None` for anything that is not well-formed RTP version 2.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let b0 = *buf.first()?;
        let b1 = *buf.get(1)?;
        if b0 >> 6 != 2 {
            return None;
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = (b0 & 0x0F) as usize;
        let sequence = be16(buf, 2)?;
        let timestamp = be32(buf, 4)?;
        let ssrc = be32(buf, 8)?;
        let mut start = RTP_HEADER_LEN + 4 * csrc_count;
        if has_extension {
            let words = be16(buf, start + 2)? as usize;
            start += 4 + 4 * words;
        }
        let mut end = buf.len();
        if start > end {
            return None;
        }
        if has_padding {
            let pad = *buf.last()? as usize;
            if pad == 0 || pad > end - start {
                return None;
            }
            end -= pad;
        }
        Some(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7F,
            sequence,
            timestamp,
            ssrc,
            payload: buf.get(start..end)?.to_vec(),
        })
    }

    /// Serializes with a plain 12-byte header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RTP_HEADER_LEN + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Whether a datagram on an rtcp-mux port is RTCP rather than RTP (RFC 5761 section 4).
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf, [b0, b1, ..] if b0 >> 6 == 2 && (192..=223).contains(b1))
}

/// Numbers outgoing packets of one stream: SSRC, sequence and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Default for RtpSender {
    fn default() -> Self {
        RtpSender::new()
    }
}

impl RtpSender {
    /// A sender with random SSRC, initial sequence and timestamp (RFC 3550 section 5.1).
    pub fn new() -> Self {
        RtpSender::with_rng(&mut rand::rng())
    }

    /// Like [`RtpSender::new`] with a caller-supplied generator (for reproducible tests).
    pub fn with_rng<R: Rng + ?Sized>(rng: &mut R) -> Self {
        RtpSender { ssrc: rng.random(), sequence: rng.random(), timestamp: rng.random() }
    }

    /// A sender starting from the given values.
    pub fn from_parts(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        RtpSender { ssrc, sequence, timestamp }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number of the next packet.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// Timestamp of the next packet.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Builds the next packet, then advances the timestamp by `samples_advanced`.
    pub fn next_packet(&mut self, payload: Vec<u8>, samples_advanced: u32, marker: bool, pt: u8) -> RtpPacket {
        let packet = self.packet_at(payload, self.timestamp, marker, pt);
        self.advance(samples_advanced);
        packet
    }

    /// Builds the next packet with an explicit timestamp, leaving the stream clock alone.
    pub fn packet_at(&mut self, payload: Vec<u8>, timestamp: u32, marker: bool, pt: u8) -> RtpPacket {
        let packet =
            RtpPacket { marker, payload_type: pt & 0x7F, sequence: self.sequence, timestamp, ssrc: self.ssrc, payload };
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }

    /// The 12-byte header of the next packet (no CSRC, no extension), then advances the
    /// stream by `samples`: for senders that put one shared payload behind many headers.
    pub fn header(&mut self, samples: u32, marker: bool, pt: u8) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = 0x80;
        h[1] = (u8::from(marker) << 7) | (pt & 0x7F);
        h[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(1);
        self.advance(samples);
        h
    }

    /// Advances the stream clock without sending (silence, or time covered by a DTMF event).
    pub fn advance(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }
}

/// One RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// Event code: 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D.
    pub event: u8,
    /// End-of-event bit.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl DtmfEvent {
    /// Parses the first event block of a payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        match payload {
            [event, flags, d0, d1, ..] => Some(DtmfEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => None,
        }
    }

    /// Serializes the 4-byte event block.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }

    /// The keypad character, for DTMF events.
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// Maps a keypad character to its RFC 4733 event code.
pub fn digit_to_event(c: char) -> Option<u8> {
    match c.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// Maps an RFC 4733 event code to its keypad character.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct ActiveTone {
    event: u8,
    start_ms: u64,
    timestamp: u32,
    next_update_ms: u64,
}

/// Plays queued digits as RFC 4733 events on an RTP stream.
///
/// While [`DtmfSender::is_active`] the caller must not send audio; the sender moves the
/// stream clock past each event when it ends.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    pt: u8,
    clock_rate: u32,
    tone_ms: u32,
    gap_ms: u32,
    update_ms: u32,
    volume: u8,
    queue: VecDeque<u8>,
    current: Option<ActiveTone>,
    next_start_ms: u64,
}

impl DtmfSender {
    /// Number of end packets; RFC 4733 section 2.5.1.4 asks for redundancy against loss.
    pub const END_PACKETS: usize = 3;

    /// A sender for payload type `pt` on a stream clocked at `clock_rate`: 100 ms tones,
    /// 70 ms gaps, updates every 50 ms.
    pub fn new(pt: u8, clock_rate: u32) -> Self {
        DtmfSender {
            pt,
            clock_rate,
            tone_ms: 100,
            gap_ms: 70,
            update_ms: 50,
            volume: 10,
            queue: VecDeque::new(),
            current: None,
            next_start_ms: 0,
        }
    }

    /// Overrides tone and gap lengths (tone at least 40 ms, as receivers need).
    pub fn with_timing(mut self, tone_ms: u32, gap_ms: u32) -> Self {
        self.tone_ms = tone_ms.max(40);
        self.gap_ms = gap_ms;
        self
    }

    /// Queues keypad digits; returns how many were valid and queued.
    pub fn send(&mut self, digits: &str) -> usize {
        let before = self.queue.len();
        self.queue.extend(digits.chars().filter_map(digit_to_event));
        self.queue.len() - before
    }

    /// Whether an event is on the wire now (audio must pause).
    pub fn is_active(&self) -> bool {
        self.current.is_some()
    }

    /// Whether nothing is playing or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// When [`DtmfSender::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        match &self.current {
            Some(t) => Some(t.next_update_ms.min(t.start_ms + u64::from(self.tone_ms))),
            None if !self.queue.is_empty() => Some(self.next_start_ms),
            None => None,
        }
    }

    fn samples(&self, ms: u64) -> u32 {
        u32::try_from(ms * u64::from(self.clock_rate) / 1000).unwrap_or(u32::MAX)
    }

    fn event_packet(
        &self,
        rtp: &mut RtpSender,
        tone: &ActiveTone,
        elapsed_ms: u64,
        end: bool,
        marker: bool,
    ) -> RtpPacket {
        let duration = u16::try_from(self.samples(elapsed_ms)).unwrap_or(u16::MAX);
        let ev = DtmfEvent { event: tone.event, end, volume: self.volume, duration };
        rtp.packet_at(ev.to_bytes().to_vec(), tone.timestamp, marker, self.pt)
    }

    /// Emits the packets due at `now_ms`, numbered by `rtp`.
    pub fn poll(&mut self, now_ms: u64, rtp: &mut RtpSender) -> Vec<RtpPacket> {
        let mut out = Vec::new();
        let tone_ms = u64::from(self.tone_ms);
        let update_ms = u64::from(self.update_ms);
        if let Some(tone) = self.current.take() {
            let elapsed = now_ms.saturating_sub(tone.start_ms);
            if elapsed >= tone_ms {
                for _ in 0..Self::END_PACKETS {
                    out.push(self.event_packet(rtp, &tone, tone_ms, true, false));
                }
                // Audio resumes where the wall clock is, so playout at the far end stays aligned.
                rtp.advance(self.samples(elapsed));
                self.next_start_ms = now_ms + u64::from(self.gap_ms);
            } else {
                let mut tone = tone;
                if now_ms >= tone.next_update_ms {
                    // Each packet covers the tone up to the next update, as in RFC 4733 section 5.
                    out.push(self.event_packet(rtp, &tone, (elapsed + update_ms).min(tone_ms), false, false));
                    tone.next_update_ms = now_ms + update_ms;
                }
                self.current = Some(tone);
                return out;
            }
        }
        if now_ms >= self.next_start_ms
            && let Some(event) = self.queue.pop_front()
        {
            let tone =
                ActiveTone { event, start_ms: now_ms, timestamp: rtp.timestamp(), next_update_ms: now_ms + update_ms };
            out.push(self.event_packet(rtp, &tone, update_ms.min(tone_ms), false, true));
            self.current = Some(tone);
        }
        out
    }
}

/// Turns received telephone-event packets into digits, each reported once.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    pt: u8,
    seen: VecDeque<(u32, u32)>,
    last: Option<LastEvent>,
}

#[derive(Debug, Clone, Copy)]
struct LastEvent {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    duration: u16,
    ended: bool,
}

impl DtmfReceiver {
    const MEMORY: usize = 16;

    /// A receiver for telephone-event payload type `pt`.
    pub fn new(pt: u8) -> Self {
        DtmfReceiver { pt, seen: VecDeque::new(), last: None }
    }

    /// Feeds one RTP packet; returns a digit the first time its event is seen.
    pub fn on_packet(&mut self, packet: &RtpPacket) -> Option<char> {
        if packet.payload_type != self.pt {
            return None;
        }
        let ev = DtmfEvent::parse(&packet.payload)?;
        let digit = ev.digit()?;
        let key = (packet.ssrc, packet.timestamp);
        if let Some(last) = self.last.as_mut().filter(|l| (l.ssrc, l.timestamp) == key) {
            last.duration = last.duration.max(ev.duration);
            last.ended |= ev.end;
            return None;
        }
        // Updates, end retransmissions and late reordered packets of earlier events.
        if self.seen.contains(&key) {
            return None;
        }
        // A long event is cut into segments with new timestamps (RFC 4733 section 2.5.1.3).
        let continues = self.last.is_some_and(|l| {
            l.ssrc == packet.ssrc
                && l.event == ev.event
                && !l.ended
                && packet.timestamp == l.timestamp.wrapping_add(u32::from(l.duration))
        });
        if self.seen.len() == Self::MEMORY {
            self.seen.pop_front();
        }
        self.seen.push_back(key);
        self.last = Some(LastEvent {
            ssrc: packet.ssrc,
            timestamp: packet.timestamp,
            event: ev.event,
            duration: ev.duration,
            ended: ev.end,
        });
        if continues { None } else { Some(digit) }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn shared_payload_header_matches_a_full_packet() {
        let mut a = RtpSender::from_parts(0x1234_5678, 65535, 4_294_967_200);
        let mut b = a.clone();
        let payload = vec![0xFFu8; 160];
        let full = a.next_packet(payload.clone(), 160, true, 0).to_bytes();
        let mut shared = b.header(160, true, 0).to_vec();
        shared.extend_from_slice(&payload);
        assert_eq!(full, shared);
        assert_eq!((a.sequence(), a.timestamp()), (b.sequence(), b.timestamp()));
        let parsed = RtpPacket::parse(&shared).unwrap();
        assert_eq!((parsed.sequence, parsed.marker, parsed.ssrc), (65535, true, 0x1234_5678));
    }

    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn sample() -> RtpPacket {
        RtpPacket {
            marker: true,
            payload_type: 0,
            sequence: 0xBEEF,
            timestamp: 0xDEADBEEF,
            ssrc: 0x12345678,
            payload: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn round_trip() {
        let p = sample();
        let bytes = p.to_bytes();
        assert_eq!(&bytes[..12], &[0x80, 0x80, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(RtpPacket::parse(&bytes), Some(p));
        let q = RtpPacket { marker: false, payload_type: 101, payload: vec![], ..sample() };
        assert_eq!(q.to_bytes()[1], 101);
        assert_eq!(RtpPacket::parse(&q.to_bytes()), Some(q));
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        let mut b = vec![0x80 | 0x20 | 0x10 | 2, 8, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // two CSRCs
        b.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD]); // one-word extension
        b.extend_from_slice(&[0xD5, 0xD5, 0xD5]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding, count in last byte
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 7);
        assert_eq!(p.timestamp, 160);
        assert_eq!(p.ssrc, 9);
        assert!(!p.marker);
        assert_eq!(p.payload, vec![0xD5; 3]);
    }

    #[test]
    fn rejects_malformed() {
        let good = sample().to_bytes();
        assert_eq!(RtpPacket::parse(&[]), None);
        assert_eq!(RtpPacket::parse(&good[..11]), None);
        let mut v1 = good.clone();
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), None);
        let mut csrc = good.clone();
        csrc[0] |= 0x0F; // 15 CSRCs but only 5 payload bytes
        assert_eq!(RtpPacket::parse(&csrc), None);
        let mut ext = good[..12].to_vec();
        ext[0] |= 0x10;
        ext.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF]);
        assert_eq!(RtpPacket::parse(&ext), None);
        let mut pad = good.clone();
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 6; // more padding than payload
        assert_eq!(RtpPacket::parse(&pad), None);
        *pad.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&pad), None);
        *pad.last_mut().unwrap() = 5; // padding eats the whole payload: fine
        assert_eq!(RtpPacket::parse(&pad).unwrap().payload, Vec::<u8>::new());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(3550);
        let good = sample().to_bytes();
        let mut accepted = 0;
        for i in 0..200_000 {
            let buf: Vec<u8> = if i % 2 == 0 {
                let len = rng.random_range(0..48);
                (0..len).map(|_| rng.random()).collect()
            } else {
                let mut b = good.clone();
                let flips = rng.random_range(1..4);
                for _ in 0..flips {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b.truncate(rng.random_range(0..=b.len()));
                b
            };
            if let Some(p) = RtpPacket::parse(&buf) {
                accepted += 1;
                assert!(p.payload.len() + RTP_HEADER_LEN <= buf.len());
            }
            let _ = is_rtcp(&buf);
            let _ = DtmfEvent::parse(&buf);
        }
        assert!(accepted > 1000, "fuzz never produced valid packets: {accepted}");
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&sample().to_bytes()));
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn sender_numbers_packets() {
        let mut s = RtpSender::from_parts(42, 0xFFFE, u32::MAX - 100);
        let a = s.next_packet(vec![0; 160], 160, true, 0);
        let b = s.next_packet(vec![0; 160], 160, false, 0);
        let c = s.next_packet(vec![0; 160], 160, false, 0);
        assert_eq!((a.sequence, b.sequence, c.sequence), (0xFFFE, 0xFFFF, 0));
        assert_eq!(a.timestamp, u32::MAX - 100);
        assert_eq!(b.timestamp, 59);
        assert_eq!(c.timestamp, 219);
        assert!(a.marker && !b.marker);
        assert_eq!(a.ssrc, 42);
        assert_eq!(s.sequence(), 1);
        assert_eq!(s.timestamp(), 379);
        let r1 = RtpSender::with_rng(&mut StdRng::seed_from_u64(1));
        let r2 = RtpSender::with_rng(&mut StdRng::seed_from_u64(2));
        assert_ne!(r1.ssrc(), r2.ssrc());
        assert_ne!(RtpSender::new().ssrc(), RtpSender::new().ssrc());
    }

    #[test]
    fn dtmf_event_codec() {
        let ev = DtmfEvent { event: 1, end: true, volume: 10, duration: 800 };
        assert_eq!(ev.to_bytes(), [0x01, 0x8A, 0x03, 0x20]);
        assert_eq!(DtmfEvent::parse(&ev.to_bytes()), Some(ev));
        assert_eq!(DtmfEvent::parse(&[1, 2, 3]), None);
        assert_eq!(DtmfEvent::parse(&[11, 0x4A, 0, 160]).unwrap().volume, 10); // R bit ignored
        let all = "0123456789*#ABCD";
        for (i, c) in all.chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(c));
        }
        assert_eq!(digit_to_event('a'), Some(12));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    /// Drives a sender every `step` ms from `t0` until idle; returns (time, packet) pairs.
    fn run_sender(dtmf: &mut DtmfSender, rtp: &mut RtpSender, t0: u64, step: u64) -> Vec<(u64, RtpPacket)> {
        let mut out = Vec::new();
        let mut t = t0;
        while !dtmf.is_idle() && t < t0 + 10_000 {
            for p in dtmf.poll(t, rtp) {
                out.push((t, p));
            }
            t += step;
        }
        out
    }

    #[test]
    fn dtmf_sender_timeline() {
        let mut rtp = RtpSender::from_parts(7, 100, 1000);
        let mut dtmf = DtmfSender::new(101, 8000);
        assert_eq!(dtmf.send("1x#"), 2);
        assert!(!dtmf.is_active());
        let pkts = run_sender(&mut dtmf, &mut rtp, 5000, 10);
        let evs: Vec<(u64, bool, DtmfEvent, u32)> =
            pkts.iter().map(|(t, p)| (*t, p.marker, DtmfEvent::parse(&p.payload).unwrap(), p.timestamp)).collect();
        // Digit 1: start at 5000, update at 5050, three ends at 5100.
        assert_eq!(evs.len(), 10);
        assert_eq!(evs[0], (5000, true, DtmfEvent { event: 1, end: false, volume: 10, duration: 400 }, 1000));
        assert_eq!(evs[1], (5050, false, DtmfEvent { event: 1, end: false, volume: 10, duration: 800 }, 1000));
        for e in &evs[2..5] {
            assert_eq!(*e, (5100, false, DtmfEvent { event: 1, end: true, volume: 10, duration: 800 }, 1000));
        }
        // Digit #: after the 70 ms gap, new timestamp past the first event.
        assert_eq!(evs[5].0, 5170);
        assert!(evs[5].1);
        assert_eq!(evs[5].2.event, 11);
        assert_eq!(evs[5].3, 1800);
        assert!(evs[6..].iter().all(|e| e.3 == 1800 && !e.1));
        assert_eq!(evs[7..].iter().filter(|e| e.2.end).count(), 3);
        // Sequence numbers are consecutive; the clock ends past both events.
        for (i, (_, p)) in pkts.iter().enumerate() {
            assert_eq!(p.sequence, 100 + i as u16);
            assert_eq!(p.payload_type, 101);
            assert_eq!(p.ssrc, 7);
        }
        assert_eq!(rtp.timestamp(), 2600);
        assert!(dtmf.is_idle() && dtmf.next_deadline().is_none());
    }

    #[test]
    fn dtmf_sender_coarse_polls_and_active_flag() {
        let mut rtp = RtpSender::from_parts(7, 0, 0);
        let mut dtmf = DtmfSender::new(96, 48000).with_timing(120, 50);
        dtmf.send("5");
        let first = dtmf.poll(0, &mut rtp);
        assert_eq!(first.len(), 1);
        assert!(dtmf.is_active());
        assert_eq!(dtmf.next_deadline(), Some(50));
        assert!(dtmf.poll(20, &mut rtp).is_empty());
        assert_eq!(dtmf.poll(60, &mut rtp).len(), 1);
        let end = dtmf.poll(140, &mut rtp);
        assert_eq!(end.len(), 3);
        assert!(!dtmf.is_active());
        let ev = DtmfEvent::parse(&end[0].payload).unwrap();
        assert_eq!(ev.duration, 5760); // 120 ms at 48 kHz
        assert_eq!(rtp.timestamp(), 140 * 48);
    }

    #[test]
    fn dtmf_send_receive_reports_each_digit_once() {
        let mut rtp = RtpSender::from_parts(99, 65530, u32::MAX - 300);
        let mut dtmf = DtmfSender::new(101, 8000);
        dtmf.send("1#");
        let pkts = run_sender(&mut dtmf, &mut rtp, 0, 20);
        let mut rx = DtmfReceiver::new(101);
        let mut got = String::new();
        for (_, p) in &pkts {
            // Through the wire format, each packet delivered twice.
            let wire = RtpPacket::parse(&p.to_bytes()).unwrap();
            got.extend(rx.on_packet(&wire));
            got.extend(rx.on_packet(&wire));
        }
        assert_eq!(got, "1#");
        // A late, reordered end packet of the first digit is not a new digit.
        let late = pkts.iter().find(|(_, p)| DtmfEvent::parse(&p.payload).unwrap().event == 1).unwrap();
        assert_eq!(rx.on_packet(&late.1), None);
        // Audio packets and other PTs are ignored.
        assert_eq!(rx.on_packet(&sample()), None);
    }

    #[test]
    fn dtmf_receiver_survives_lost_start_and_repeats_digits() {
        let mut rtp = RtpSender::from_parts(1, 0, 0);
        let mut dtmf = DtmfSender::new(101, 8000);
        dtmf.send("77");
        let pkts = run_sender(&mut dtmf, &mut rtp, 0, 10);
        let mut rx = DtmfReceiver::new(101);
        let got: String = pkts.iter().filter(|(_, p)| !p.marker).filter_map(|(_, p)| rx.on_packet(p)).collect();
        assert_eq!(got, "77");
    }

    #[test]
    fn dtmf_receiver_joins_long_event_segments() {
        let mut rx = DtmfReceiver::new(101);
        let seg = |ts: u32, dur: u16, end: bool| RtpPacket {
            marker: false,
            payload_type: 101,
            sequence: 0,
            timestamp: ts,
            ssrc: 5,
            payload: DtmfEvent { event: 3, end, volume: 10, duration: dur }.to_bytes().to_vec(),
        };
        assert_eq!(rx.on_packet(&seg(1000, 0xFFFF, false)), Some('3'));
        assert_eq!(rx.on_packet(&seg(1000 + 0xFFFF, 4000, false)), None);
        assert_eq!(rx.on_packet(&seg(1000 + 0xFFFF, 8000, true)), None);
        assert_eq!(rx.on_packet(&seg(200_000, 800, false)), Some('3'));
    }
}
