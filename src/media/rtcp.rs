//! RTCP (RFC 3550 section 6): sender and receiver reports, SDES CNAME and BYE, compound
//! packets, receiver statistics (appendix A.1 sequence tracking, A.3 loss, A.8
//! interarrival jitter) and the round-trip time from a peer's LSR/DLSR.
//!
//! [`RtcpSession`] is the sans-IO state of one RTP stream pair: the driver tells it what
//! was sent and received (with `now` as an argument), asks [`RtcpSession::poll_timeout`]
//! when the next report is due, and sends what [`RtcpSession::handle_timeout`] returns.
//! Wall-clock (NTP) time is `ntp_base` plus the monotonic `now`, so tests are
//! deterministic and the RTT does not care whether the two ends' clocks agree.
//!
//! Deviation from appendix A.1: a new source counts from its first packet (no probation),
//! since only the negotiated peer's (and with SRTP, authenticated) packets reach us.

use std::fmt;

/// RTCP packet types we build or recognise.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;

const SDES_CNAME: u8 = 1;
/// RFC 3550 section 6.2: the minimum report interval.
pub const REPORT_INTERVAL_US: u64 = 5_000_000;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
/// Seconds from 1900 (NTP era 0) to 1970 (Unix).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Why a datagram is not a valid RTCP compound packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than its headers say.
    #[error("truncated RTCP packet")]
    Truncated,
    /// Version is not 2.
    #[error("RTCP version is not 2")]
    Version,
    /// Padding flag on a packet that is not the last, or a bad padding count.
    #[error("bad RTCP padding")]
    Padding,
    /// Empty datagram.
    #[error("empty RTCP packet")]
    Empty,
}

/// One reception report block (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR from that source (0: none yet).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// A sender report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    /// Sender's SSRC.
    pub ssrc: u32,
    /// NTP timestamp (32.32 fixed point seconds since 1900).
    pub ntp: u64,
    /// The same instant in the stream's RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
    /// Reception reports.
    pub reports: Vec<ReportBlock>,
}

/// One SDES chunk: a source and its items (type, text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The source.
    pub ssrc: u32,
    /// Items as (type, value); type 1 is CNAME.
    pub items: Vec<(u8, Vec<u8>)>,
}

impl SdesChunk {
    /// The CNAME item, if any (lossy UTF-8).
    pub fn cname(&self) -> Option<String> {
        self.items.iter().find(|(t, _)| *t == SDES_CNAME).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR (200).
    SenderReport(SenderReport),
    /// RR (201).
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Reception reports.
        reports: Vec<ReportBlock>,
    },
    /// SDES (202).
    Sdes(Vec<SdesChunk>),
    /// BYE (203).
    Bye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
        /// Optional reason (raw bytes).
        reason: Option<Vec<u8>>,
    },
    /// Any other type (APP, feedback, XR), kept as its header fields and body.
    Other {
        /// Packet type.
        pt: u8,
        /// The 5-bit count field.
        count: u8,
        /// Body after the 4-byte header.
        body: Vec<u8>,
    },
}

fn be32(b: &[u8], at: usize) -> Result<u32, RtcpError> {
    let s = b.get(at..at + 4).ok_or(RtcpError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_blocks(body: &[u8], at: usize, count: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    (0..count)
        .map(|i| {
            let o = at + 24 * i;
            let word = be32(body, o + 4)?;
            // Sign-extend the 24-bit cumulative loss.
            let cumulative_lost = ((word << 8) as i32) >> 8;
            Ok(ReportBlock {
                ssrc: be32(body, o)?,
                fraction_lost: (word >> 24) as u8,
                cumulative_lost,
                extended_highest_seq: be32(body, o + 8)?,
                jitter: be32(body, o + 12)?,
                lsr: be32(body, o + 16)?,
                dlsr: be32(body, o + 20)?,
            })
        })
        .collect()
}

fn parse_sdes(body: &[u8], count: usize) -> Result<Vec<SdesChunk>, RtcpError> {
    let mut chunks = Vec::with_capacity(count.min(31));
    let mut at = 0;
    for _ in 0..count {
        let ssrc = be32(body, at)?;
        at += 4;
        let mut items = Vec::new();
        loop {
            let t = *body.get(at).ok_or(RtcpError::Truncated)?;
            if t == 0 {
                // The list ends with a null octet, then padding to the next 32-bit word.
                at = (at + 4) & !3;
                break;
            }
            let len = *body.get(at + 1).ok_or(RtcpError::Truncated)? as usize;
            let value = body.get(at + 2..at + 2 + len).ok_or(RtcpError::Truncated)?;
            items.push((t, value.to_vec()));
            at += 2 + len;
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Ok(chunks)
}

fn parse_one(pt: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let n = count as usize;
    Ok(match pt {
        PT_SR => {
            let ntp = (u64::from(be32(body, 4)?) << 32) | u64::from(be32(body, 8)?);
            RtcpPacket::SenderReport(SenderReport {
                ssrc: be32(body, 0)?,
                ntp,
                rtp_timestamp: be32(body, 12)?,
                packet_count: be32(body, 16)?,
                octet_count: be32(body, 20)?,
                reports: parse_blocks(body, 24, n)?,
            })
        }
        PT_RR => RtcpPacket::ReceiverReport { ssrc: be32(body, 0)?, reports: parse_blocks(body, 4, n)? },
        PT_SDES => RtcpPacket::Sdes(parse_sdes(body, n)?),
        PT_BYE => {
            let ssrcs = (0..n).map(|i| be32(body, 4 * i)).collect::<Result<Vec<_>, _>>()?;
            let reason = match body.get(4 * n) {
                Some(&len) => Some(body.get(4 * n + 1..4 * n + 1 + len as usize).ok_or(RtcpError::Truncated)?.to_vec()),
                None => None,
            };
            RtcpPacket::Bye { ssrcs, reason }
        }
        _ => RtcpPacket::Other { pt, count, body: body.to_vec() },
    })
}

/// Parses a compound RTCP datagram (plain, i.e. after SRTCP unprotect). Never panics.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let hdr = buf.get(at..at + 4).ok_or(RtcpError::Truncated)?;
        if hdr[0] >> 6 != 2 {
            return Err(RtcpError::Version);
        }
        let len = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
        let packet = buf.get(at..at + len).ok_or(RtcpError::Truncated)?;
        let mut body = &packet[4..];
        if hdr[0] & 0x20 != 0 {
            // RFC 3550 A.2: only the last packet of a compound may be padded.
            if at + len != buf.len() {
                return Err(RtcpError::Padding);
            }
            let pad = *packet.last().ok_or(RtcpError::Padding)? as usize;
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::Padding);
            }
            body = &body[..body.len() - pad];
        }
        out.push(parse_one(hdr[1], hdr[0] & 0x1f, body)?);
        at += len;
    }
    Ok(out)
}

fn write_header(out: &mut [u8], count: usize, pt: u8, start: usize) {
    // Body lengths are padded to words by every writer below.
    let words = (out.len() - start) / 4 - 1;
    out[start] = 0x80 | (count.min(31) as u8);
    out[start + 1] = pt;
    out[start + 2..start + 4].copy_from_slice(&(words as u16).to_be_bytes());
}

fn write_blocks(out: &mut Vec<u8>, reports: &[ReportBlock]) {
    for r in reports.iter().take(31) {
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        let lost = (r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.extend_from_slice(&((u32::from(r.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&r.extended_highest_seq.to_be_bytes());
        out.extend_from_slice(&r.jitter.to_be_bytes());
        out.extend_from_slice(&r.lsr.to_be_bytes());
        out.extend_from_slice(&r.dlsr.to_be_bytes());
    }
}

fn pad_to_word(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl RtcpPacket {
    /// Appends the packet's wire form to `out` (at most 31 blocks, chunks or sources).
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            RtcpPacket::SenderReport(sr) => {
                out.extend_from_slice(&sr.ssrc.to_be_bytes());
                out.extend_from_slice(&sr.ntp.to_be_bytes());
                out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.octet_count.to_be_bytes());
                write_blocks(out, &sr.reports);
                write_header(out, sr.reports.len(), PT_SR, start);
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                out.extend_from_slice(&ssrc.to_be_bytes());
                write_blocks(out, reports);
                write_header(out, reports.len(), PT_RR, start);
            }
            RtcpPacket::Sdes(chunks) => {
                for c in chunks.iter().take(31) {
                    out.extend_from_slice(&c.ssrc.to_be_bytes());
                    for (t, v) in c.items.iter().filter(|(t, _)| *t != 0) {
                        let v = &v[..v.len().min(255)];
                        out.push(*t);
                        out.push(v.len() as u8);
                        out.extend_from_slice(v);
                    }
                    // At least one null octet ends the item list, then pad to a word.
                    out.push(0);
                    pad_to_word(out);
                }
                write_header(out, chunks.len(), PT_SDES, start);
            }
            RtcpPacket::Bye { ssrcs, reason } => {
                for s in ssrcs.iter().take(31) {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(r) = reason {
                    let r = &r[..r.len().min(255)];
                    out.push(r.len() as u8);
                    out.extend_from_slice(r);
                    pad_to_word(out);
                }
                write_header(out, ssrcs.len(), PT_BYE, start);
            }
            RtcpPacket::Other { pt, count, body } => {
                out.extend_from_slice(body);
                pad_to_word(out);
                write_header(out, usize::from(*count), *pt, start);
            }
        }
    }
}

/// Serialises packets into one compound datagram.
pub fn build_compound(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for p in packets {
        p.write(&mut out);
    }
    out
}

/// NTP 32.32 time for a Unix time in microseconds.
pub fn ntp_from_unix_us(unix_us: u64) -> u64 {
    let secs = unix_us / 1_000_000 + NTP_UNIX_OFFSET_SECS;
    let frac = ((unix_us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR format, units of 1/65536 s).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Receiver statistics for one source (RFC 3550 appendix A.1, A.3, A.8).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    /// The source's SSRC.
    pub ssrc: u32,
    clock_rate: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i32>,
    /// Interarrival jitter estimate in timestamp units.
    jitter: f64,
}

impl SourceStats {
    /// Starts tracking `ssrc` at its first packet `seq` (counted).
    pub fn new(ssrc: u32, seq: u16, clock_rate: u32) -> Self {
        SourceStats {
            ssrc,
            clock_rate: clock_rate.max(1),
            max_seq: seq,
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: 1 << 16 | 1,
            received: 1,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
        }
    }

    fn restart(&mut self, seq: u16) {
        *self = SourceStats {
            transit: self.transit,
            jitter: self.jitter,
            ..SourceStats::new(self.ssrc, seq, self.clock_rate)
        };
    }

    /// Appendix A.1 `update_seq` for a packet after the first; false when it is
    /// discarded as a wild jump (a second consecutive jump restarts the count).
    pub fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the sender restarted.
                self.restart(seq);
                return true;
            }
            self.bad_seq = u32::from(seq.wrapping_add(1));
            return false;
        }
        // else: duplicate or reordered packet, counted as received.
        self.received = self.received.wrapping_add(1);
        true
    }

    /// Appendix A.8: updates the jitter with a packet of timestamp `rtp_ts` arriving at
    /// `arrival_us` (any monotonic microsecond clock).
    pub fn update_jitter(&mut self, arrival_us: u64, rtp_ts: u32) {
        let arrival = (u128::from(arrival_us) * u128::from(self.clock_rate) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(rtp_ts) as i32;
        if let Some(prev) = self.transit {
            let d = f64::from(transit.wrapping_sub(prev)).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Extended highest sequence number received.
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected (appendix A.3).
    pub fn expected(&self) -> u32 {
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    /// Packets received (including duplicates).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Cumulative lost, clamped to the 24-bit signed field.
    pub fn cumulative_lost(&self) -> i32 {
        (i64::from(self.expected()) - i64::from(self.received)).clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// Jitter in timestamp units.
    pub fn jitter_units(&self) -> u32 {
        self.jitter as u32
    }

    /// Jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }

    /// The report block for this source; starts a new interval for `fraction_lost`.
    pub fn report(&mut self, lsr: u32, dlsr: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost(),
            extended_highest_seq: self.extended_max(),
            jitter: self.jitter_units(),
            lsr,
            dlsr,
        }
    }
}

/// What the peer last told us about our stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteReport {
    /// Their fraction lost, in percent.
    pub loss_percent: f64,
    /// Their cumulative lost count.
    pub cumulative_lost: i32,
    /// Their jitter estimate, in milliseconds.
    pub jitter_ms: f64,
}

/// A summary of one session's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RtcpStats {
    /// RTP packets we sent.
    pub packets_sent: u64,
    /// RTP payload octets we sent.
    pub octets_sent: u64,
    /// RTP packets received from the current source.
    pub packets_received: u64,
    /// Packets lost from the current source (cumulative; may be negative with duplicates).
    pub packets_lost: i64,
    /// `packets_lost` as a percentage of the packets expected.
    pub loss_percent: f64,
    /// Interarrival jitter of what we receive, in milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time from the peer's last report on our SR, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The peer's view of our stream, from its last report block about us.
    pub remote: Option<RemoteReport>,
    /// RTCP packets received.
    pub rtcp_received: u64,
    /// RTCP packets sent.
    pub rtcp_sent: u64,
}

/// The RTCP state of one RTP session (one stream each way).
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    clock_rate: u32,
    ntp_base: u64,
    rng: u64,
    packets_sent: u32,
    octets_sent: u32,
    /// RTP timestamp and time of our last sent packet (to extrapolate the SR's).
    last_sent: Option<(u32, u64)>,
    sent_since_report: bool,
    source: Option<SourceStats>,
    received_since_report: bool,
    /// Middle NTP bits of the peer's last SR and when it arrived.
    last_sr: Option<(u32, u64)>,
    next_report_us: u64,
    rtt_ms: Option<f64>,
    remote: Option<RemoteReport>,
    rtcp_received: u64,
    rtcp_sent: u64,
    bye: bool,
}

impl RtcpSession {
    /// A session for our stream `ssrc` at `clock_rate`, started at `now_us` (monotonic).
    /// `ntp_at_now` is the NTP wall-clock time of that instant; `seed` randomises the
    /// report interval.
    pub fn new(ssrc: u32, cname: &str, clock_rate: u32, now_us: u64, ntp_at_now: u64, seed: u64) -> Self {
        let mut s = RtcpSession {
            ssrc,
            cname: cname.to_string(),
            clock_rate: clock_rate.max(1),
            ntp_base: ntp_at_now.wrapping_sub(Self::us_to_ntp(now_us)),
            rng: seed | 1,
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
            sent_since_report: false,
            source: None,
            received_since_report: false,
            last_sr: None,
            next_report_us: 0,
            rtt_ms: None,
            remote: None,
            rtcp_received: 0,
            rtcp_sent: 0,
            bye: false,
        };
        // RFC 3550 6.2: the first report comes after half the minimum interval.
        s.next_report_us = now_us + s.interval_us() / 2;
        s
    }

    fn us_to_ntp(us: u64) -> u64 {
        ((us / 1_000_000) << 32) | (((us % 1_000_000) << 32) / 1_000_000)
    }

    /// The NTP time at monotonic `now_us`.
    pub fn ntp(&self, now_us: u64) -> u64 {
        self.ntp_base.wrapping_add(Self::us_to_ntp(now_us))
    }

    /// 5 s times a uniform factor in [0.5, 1.5) (RFC 3550 6.3.1, without the
    /// reconsideration compensation: a two-party call never has many members).
    fn interval_us(&mut self) -> u64 {
        // xorshift64*: deterministic for a seed, good enough to de-synchronise reports.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        let unit = r as f64 / (1u64 << 53) as f64;
        (REPORT_INTERVAL_US as f64 * (0.5 + unit)) as u64
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Changes our SSRC (a new RTP sender), keeping the receiver side.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        if ssrc != self.ssrc {
            self.ssrc = ssrc;
            self.packets_sent = 0;
            self.octets_sent = 0;
            self.last_sent = None;
        }
    }

    /// Changes the clock rate (a codec change); the receiver statistics start over.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        if clock_rate.max(1) != self.clock_rate {
            self.clock_rate = clock_rate.max(1);
            self.source = None;
            self.last_sent = None;
        }
    }

    /// We sent an RTP packet with timestamp `rtp_ts` and `payload_len` payload octets.
    pub fn on_rtp_sent(&mut self, now_us: u64, rtp_ts: u32, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        self.last_sent = Some((rtp_ts, now_us));
        self.sent_since_report = true;
    }

    /// An RTP packet arrived. `for_jitter` is false for packets whose timestamps do not
    /// follow the sampling clock (RFC 4733 events repeat one timestamp).
    pub fn on_rtp_received(&mut self, now_us: u64, ssrc: u32, seq: u16, rtp_ts: u32, for_jitter: bool) {
        match self.source.as_mut() {
            Some(s) if s.ssrc == ssrc => {
                if !s.update_seq(seq) {
                    return;
                }
            }
            _ => self.source = Some(SourceStats::new(ssrc, seq, self.clock_rate)),
        }
        self.received_since_report = true;
        if for_jitter && let Some(s) = self.source.as_mut() {
            s.update_jitter(now_us, rtp_ts);
        }
    }

    /// A plain (unprotected) RTCP datagram arrived. Returns false if it did not parse.
    pub fn on_rtcp(&mut self, now_us: u64, data: &[u8]) -> bool {
        let Ok(packets) = parse_compound(data) else {
            return false;
        };
        self.rtcp_received += 1;
        let mut blocks = Vec::new();
        for p in &packets {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    if self.source.as_ref().is_none_or(|s| s.ssrc == sr.ssrc) {
                        self.last_sr = Some((ntp_middle(sr.ntp), now_us));
                    }
                    blocks.extend_from_slice(&sr.reports);
                }
                RtcpPacket::ReceiverReport { reports, .. } => blocks.extend_from_slice(reports),
                RtcpPacket::Bye { ssrcs, .. } if self.source.as_ref().is_some_and(|s| ssrcs.contains(&s.ssrc)) => {
                    self.bye = true;
                }
                _ => {}
            }
        }
        for b in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
            self.remote = Some(RemoteReport {
                loss_percent: f64::from(b.fraction_lost) * 100.0 / 256.0,
                cumulative_lost: b.cumulative_lost,
                jitter_ms: f64::from(b.jitter) * 1000.0 / f64::from(self.clock_rate),
            });
            if b.lsr != 0 {
                // RFC 3550 6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s.
                let a = ntp_middle(self.ntp(now_us));
                let since = a.wrapping_sub(b.lsr);
                if since >= b.dlsr && since - b.dlsr < 60 << 16 {
                    self.rtt_ms = Some(f64::from(since - b.dlsr) * 1000.0 / 65536.0);
                }
            }
        }
        true
    }

    /// Whether the peer's source said BYE.
    pub fn got_bye(&self) -> bool {
        self.bye
    }

    /// When the next report is due (monotonic microseconds).
    pub fn poll_timeout(&self) -> u64 {
        self.next_report_us
    }

    /// The report due at `now_us` (SR if we sent since the last one, else RR, plus SDES
    /// CNAME), or `None` before [`RtcpSession::poll_timeout`].
    pub fn handle_timeout(&mut self, now_us: u64) -> Option<Vec<u8>> {
        if now_us < self.next_report_us {
            return None;
        }
        let packets = self.report(now_us);
        self.next_report_us = now_us + self.interval_us();
        self.rtcp_sent += 1;
        Some(build_compound(&packets))
    }

    /// A final report with BYE (when the stream stops).
    pub fn bye(&mut self, now_us: u64) -> Vec<u8> {
        let mut packets = self.report(now_us);
        packets.push(RtcpPacket::Bye { ssrcs: vec![self.ssrc], reason: None });
        self.rtcp_sent += 1;
        build_compound(&packets)
    }

    fn report(&mut self, now_us: u64) -> Vec<RtcpPacket> {
        let mut reports = Vec::new();
        if self.received_since_report
            && let Some(s) = self.source.as_mut()
        {
            let (lsr, dlsr) = match self.last_sr {
                Some((lsr, at)) => (lsr, (now_us.saturating_sub(at) * 65536 / 1_000_000) as u32),
                None => (0, 0),
            };
            reports.push(s.report(lsr, dlsr));
        }
        self.received_since_report = false;
        let first = if self.sent_since_report {
            let rtp_timestamp = match self.last_sent {
                Some((ts, at)) => ts.wrapping_add(
                    (u128::from(now_us - at.min(now_us)) * u128::from(self.clock_rate) / 1_000_000) as u32,
                ),
                None => 0,
            };
            RtcpPacket::SenderReport(SenderReport {
                ssrc: self.ssrc,
                ntp: self.ntp(now_us),
                rtp_timestamp,
                packet_count: self.packets_sent,
                octet_count: self.octets_sent,
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport { ssrc: self.ssrc, reports }
        };
        self.sent_since_report = false;
        let sdes = RtcpPacket::Sdes(vec![SdesChunk {
            ssrc: self.ssrc,
            items: vec![(SDES_CNAME, self.cname.clone().into_bytes())],
        }]);
        vec![first, sdes]
    }

    /// The current figures.
    pub fn stats(&self) -> RtcpStats {
        let (received, lost, expected, jitter_ms) = match &self.source {
            Some(s) => (s.received(), i64::from(s.cumulative_lost()), s.expected(), s.jitter_ms()),
            None => (0, 0, 0, 0.0),
        };
        let loss_percent =
            if expected == 0 { 0.0 } else { (lost.max(0) as f64 * 100.0 / f64::from(expected)).min(100.0) };
        RtcpStats {
            packets_sent: u64::from(self.packets_sent),
            octets_sent: u64::from(self.octets_sent),
            packets_received: u64::from(received),
            packets_lost: lost,
            loss_percent,
            jitter_ms,
            rtt_ms: self.rtt_ms,
            remote: self.remote,
            rtcp_received: self.rtcp_received,
            rtcp_sent: self.rtcp_sent,
        }
    }
}

impl fmt::Display for ReportBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ssrc={:08x} fraction={}/256 lost={} ext_seq={} jitter={} lsr={:08x} dlsr={}",
            self.ssrc,
            self.fraction_lost,
            self.cumulative_lost,
            self.extended_highest_seq,
            self.jitter,
            self.lsr,
            self.dlsr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x0102_0304,
            fraction_lost: 51,
            cumulative_lost: -1,
            extended_highest_seq: 0x0001_0005,
            jitter: 37,
            lsr: 0xAABB_CCDD,
            dlsr: 0x0001_8000,
        }
    }

    #[test]
    fn sender_report_wire_form() {
        let sr = RtcpPacket::SenderReport(SenderReport {
            ssrc: 0xDEAD_BEEF,
            ntp: 0x1122_3344_5566_7788,
            rtp_timestamp: 160,
            packet_count: 50,
            octet_count: 8000,
            reports: vec![block()],
        });
        let bytes = build_compound(std::slice::from_ref(&sr));
        // 4 header + 24 sender info + 24 block = 52 bytes = 13 words, length field 12.
        assert_eq!(bytes.len(), 52);
        assert_eq!(&bytes[..4], &[0x81, 200, 0, 12]);
        assert_eq!(&bytes[8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
        // Block: fraction 51 then cumulative -1 as 24-bit two's complement.
        assert_eq!(&bytes[32..36], &[51, 0xFF, 0xFF, 0xFF]);
        assert_eq!(parse_compound(&bytes).unwrap(), vec![sr]);
    }

    #[test]
    fn compound_rr_sdes_bye_round_trip() {
        let packets = vec![
            RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![block(), ReportBlock { ssrc: 9, ..block() }] },
            RtcpPacket::Sdes(vec![SdesChunk { ssrc: 7, items: vec![(1, b"orbit@127.0.0.1".to_vec())] }]),
            RtcpPacket::Bye { ssrcs: vec![7], reason: Some(b"bye".to_vec()) },
        ];
        let bytes = build_compound(&packets);
        assert_eq!(bytes.len() % 4, 0);
        // RR: 4 + 4 + 2*24 = 56 bytes -> length 13, RC = 2.
        assert_eq!(&bytes[..4], &[0x82, 201, 0, 13]);
        // SDES: 4 + 4 + (2 + 15 + 1 null) = 26 -> padded to 28, length 6.
        assert_eq!(&bytes[56..60], &[0x81, 202, 0, 6]);
        assert_eq!(&bytes[64..66], &[1, 15]);
        // BYE: 4 + 4 + 1 + 3 = 12, length 2.
        assert_eq!(&bytes[84..88], &[0x81, 203, 0, 2]);
        let parsed = parse_compound(&bytes).unwrap();
        assert_eq!(parsed, packets);
        match &parsed[1] {
            RtcpPacket::Sdes(c) => assert_eq!(c[0].cname().as_deref(), Some("orbit@127.0.0.1")),
            other => panic!("not SDES: {other:?}"),
        }
    }

    #[test]
    fn parses_a_hand_written_rr_with_padding_and_unknown_packets() {
        // RR with no blocks, then an APP packet (204) padded by 4 octets.
        let bytes = [
            0x80, 201, 0, 1, 0, 0, 0, 42, // RR ssrc 42
            0xA0, 204, 0, 3, 0, 0, 0, 42, b'n', b'a', b'm', b'e', 0, 0, 0, 4,
        ];
        let p = parse_compound(&bytes).unwrap();
        assert_eq!(p[0], RtcpPacket::ReceiverReport { ssrc: 42, reports: vec![] });
        assert_eq!(p[1], RtcpPacket::Other { pt: 204, count: 0, body: vec![0, 0, 0, 42, b'n', b'a', b'm', b'e'] });
        // Padding anywhere but the last packet is invalid, as are bad versions and lengths.
        let mut bad = bytes;
        bad[0] = 0xA0;
        assert_eq!(parse_compound(&bad), Err(RtcpError::Padding));
        assert_eq!(parse_compound(&bytes[..10]), Err(RtcpError::Truncated));
        assert_eq!(parse_compound(&[0x40, 201, 0, 0]), Err(RtcpError::Version));
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
    }

    #[test]
    fn loss_and_fraction_per_interval() {
        // Sequence 100..=109 with 103 and 107 missing.
        let mut s = SourceStats::new(5, 100, 8000);
        for seq in [101, 102, 104, 105, 106, 108, 109] {
            assert!(s.update_seq(seq));
        }
        assert_eq!(s.expected(), 10);
        assert_eq!(s.received(), 8);
        let r = s.report(0, 0);
        assert_eq!(r.cumulative_lost, 2);
        assert_eq!(r.fraction_lost, 51); // (2 << 8) / 10
        assert_eq!(r.extended_highest_seq, 109);
        // Next interval: 110..=119 all arrive: fraction 0, cumulative stays 2.
        for seq in 110..=119 {
            s.update_seq(seq);
        }
        let r = s.report(0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 2));
        // A late duplicate makes the interval's loss negative: fraction 0, cumulative 1.
        s.update_seq(119);
        let r = s.report(0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 1));
    }

    #[test]
    fn sequence_wrap_and_restart() {
        let mut s = SourceStats::new(5, 65534, 8000);
        for seq in [65535, 0, 1] {
            s.update_seq(seq);
        }
        assert_eq!(s.extended_max(), 65536 + 1);
        assert_eq!(s.expected(), 4);
        assert_eq!(s.cumulative_lost(), 0);
        // A wild jump is dropped once; a second sequential packet restarts the count.
        assert!(!s.update_seq(30000));
        assert!(s.update_seq(30001));
        assert_eq!((s.expected(), s.received()), (1, 1));
    }

    #[test]
    fn interarrival_jitter_follows_a8() {
        // 8 kHz, 20 ms packets; odd packets arrive 10 ms late: |D| = 80 units each time.
        let mut s = SourceStats::new(1, 0, 8000);
        s.update_jitter(0, 0);
        s.update_jitter(30_000, 160);
        assert_eq!(s.jitter, 5.0); // 80 / 16
        s.update_jitter(40_000, 320);
        assert_eq!(s.jitter, 5.0 + 75.0 / 16.0); // 9.6875
        assert_eq!(s.jitter_units(), 9);
        assert!((s.jitter_ms() - 9.6875 / 8.0).abs() < 1e-9);
        // Steady spacing lets it decay toward zero.
        for i in 3..200u32 {
            s.update_jitter(u64::from(i) * 20_000 + 10_000, i * 160);
        }
        assert!(s.jitter < 0.1, "{}", s.jitter);
    }

    #[test]
    fn ntp_conversion() {
        // 1970-01-01 00:00:00.5 UTC.
        assert_eq!(ntp_from_unix_us(500_000), (NTP_UNIX_OFFSET_SECS << 32) | 0x8000_0000);
        assert_eq!(ntp_middle(0x1122_3344_5566_7788), 0x3344_5566);
    }

    /// Two sessions over a simulated link with 40 ms one way; the round trip must come
    /// out at 80 ms whatever the peer's hold time and the two wall clocks.
    #[test]
    fn round_trip_from_lsr_and_dlsr() {
        let one_way = 40_000u64;
        let ntp_a = ntp_from_unix_us(1_700_000_000_000_000);
        let ntp_b = ntp_from_unix_us(1_600_000_000_123_456); // a wildly wrong clock
        let mut a = RtcpSession::new(0xA, "a@x", 8000, 0, ntp_a, 1);
        let mut b = RtcpSession::new(0xB, "b@x", 8000, 0, ntp_b, 2);
        assert_eq!(a.stats().rtt_ms, None);
        // Both send media for a while, so both send SRs with blocks.
        for i in 0..400u64 {
            let t = i * 20_000;
            a.on_rtp_sent(t, (i * 160) as u32, 160);
            b.on_rtp_sent(t, (i * 160) as u32, 160);
            a.on_rtp_received(t + one_way, 0xB, i as u16, (i * 160) as u32, true);
            b.on_rtp_received(t + one_way, 0xA, i as u16, (i * 160) as u32, true);
        }
        // A reports at 1 s; B reports 1.234 s after receiving it.
        a.next_report_us = 1_000_000;
        let sr_a = a.handle_timeout(1_000_000).unwrap();
        assert!(b.on_rtcp(1_000_000 + one_way, &sr_a));
        b.next_report_us = 2_274_000;
        let sr_b = b.handle_timeout(2_274_000).unwrap();
        let parsed = parse_compound(&sr_b).unwrap();
        let RtcpPacket::SenderReport(sr) = &parsed[0] else { panic!("{parsed:?}") };
        assert_eq!(sr.reports[0].ssrc, 0xA);
        assert_eq!(sr.reports[0].lsr, ntp_middle(a.ntp(1_000_000)));
        assert_eq!(sr.reports[0].dlsr, (1_234_000u64 * 65536 / 1_000_000) as u32);
        assert!(a.on_rtcp(2_274_000 + one_way, &sr_b));
        let rtt = a.stats().rtt_ms.expect("rtt");
        assert!((rtt - 80.0).abs() < 0.1, "rtt {rtt}");
        assert_eq!(a.stats().remote.unwrap().cumulative_lost, 0);
        assert_eq!(a.stats().rtcp_received, 1);
    }

    #[test]
    fn reports_are_randomised_sr_or_rr_and_carry_loss() {
        let mut s = RtcpSession::new(1, "me@x", 8000, 0, 0, 42);
        let first = s.poll_timeout();
        assert!((1_250_000..3_750_000).contains(&first), "{first}");
        assert!(s.handle_timeout(first - 1).is_none());
        // Nothing sent or received: an empty RR plus SDES.
        let p = parse_compound(&s.handle_timeout(first).unwrap()).unwrap();
        assert_eq!(p[0], RtcpPacket::ReceiverReport { ssrc: 1, reports: vec![] });
        assert!(matches!(&p[1], RtcpPacket::Sdes(c) if c[0].cname().as_deref() == Some("me@x")));
        let mut gaps = Vec::new();
        let mut t = first;
        for i in 0..50u16 {
            // Receive every packet but each tenth.
            if i % 10 != 3 {
                s.on_rtp_received(t, 2, i, u32::from(i) * 160, true);
            }
            let next = s.poll_timeout();
            gaps.push(next - t);
            t = next;
            s.handle_timeout(t).unwrap();
        }
        assert!(gaps.iter().all(|g| (2_500_000..7_500_000).contains(g)), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g < 4_000_000) && gaps.iter().any(|g| *g > 6_000_000), "{gaps:?}");
        let st = s.stats();
        assert_eq!((st.packets_received, st.packets_lost), (45, 5));
        assert!((st.loss_percent - 10.0).abs() < 1e-9);
        s.on_rtp_sent(t, 0, 160);
        let p = parse_compound(&s.bye(t + 1000)).unwrap();
        assert!(matches!(&p[0], RtcpPacket::SenderReport(sr) if sr.packet_count == 1 && sr.rtp_timestamp == 8));
        assert!(matches!(&p[2], RtcpPacket::Bye { ssrcs, .. } if ssrcs == &[1]));
    }

    /// Random and mutated inputs: the parser never panics, and whatever it accepts
    /// (except unknown types, whose body padding is normalised) survives a round trip.
    #[test]
    fn parser_survives_mutations() {
        let seed = build_compound(&[
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 1,
                ntp: 2,
                rtp_timestamp: 3,
                packet_count: 4,
                octet_count: 5,
                reports: vec![block()],
            }),
            RtcpPacket::Sdes(vec![SdesChunk { ssrc: 1, items: vec![(1, b"cname".to_vec()), (6, b"tool".to_vec())] }]),
            RtcpPacket::Bye { ssrcs: vec![1, 2], reason: Some(b"x".to_vec()) },
        ]);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut accepted = 0;
        for i in 0..200_000 {
            let mut data =
                if i % 4 == 0 { (0..next() % 80).map(|_| next() as u8).collect::<Vec<u8>>() } else { seed.clone() };
            for _ in 0..1 + next() % 4 {
                if data.is_empty() {
                    break;
                }
                let at = (next() as usize) % data.len();
                match next() % 4 {
                    0 => data[at] = next() as u8,
                    1 => data[at] ^= 1 << (next() % 8),
                    2 => data.truncate(at),
                    _ => data.insert(at, next() as u8),
                }
            }
            if let Ok(p) = parse_compound(&data) {
                accepted += 1;
                if p.iter().all(|p| !matches!(p, RtcpPacket::Other { .. })) {
                    assert_eq!(parse_compound(&build_compound(&p)).as_ref(), Ok(&p), "{data:02x?}");
                }
            }
            let mut s = RtcpSession::new(1, "x", 8000, 0, 0, i);
            s.on_rtcp(10, &data);
        }
        assert!(accepted > 1000, "only {accepted} mutated inputs parsed");
    }
}
