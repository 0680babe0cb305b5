//! RFC 3264 offer/answer for a single audio stream over plain RTP.
//!
//! We negotiate exactly one audio codec plus optional telephone-event, and answer with a
//! single codec so the offerer never has to guess which one we will send.
//!
//! SRTP is keyed with SDES (RFC 4568): with [`LocalCaps::srtp`] set we offer
//! `a=crypto` (on RTP/SAVP when mandatory, on RTP/AVP as best effort when optional),
//! answer a keyed offer with our own key for the first suite we support, and refuse
//! (488) RTP/SAVP when SRTP is off or no offered suite is usable.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::sdp::{MediaDescription, RtpMap, SessionDescription};
use super::srtp::{CryptoAttr, CryptoSuite, MasterKey, SrtpMode, SrtpParams};

/// Media direction attribute (RFC 3264 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// Only sending.
    SendOnly,
    /// Only receiving.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The direction as seen from the other end.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether this side sends media.
    pub fn can_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn can_recv(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The SDP attribute name, e.g. `sendonly`.
    pub fn as_attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses an SDP attribute name (case-insensitive).
    pub fn from_attr(name: &str) -> Option<Self> {
        [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive]
            .into_iter()
            .find(|d| name.eq_ignore_ascii_case(d.as_attr()))
    }

    /// Builds a direction from send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Keeps only what both directions allow.
    pub fn intersect(self, other: Self) -> Self {
        Direction::from_flags(self.can_send() && other.can_send(), self.can_recv() && other.can_recv())
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_attr())
    }
}

/// Codecs Orbit can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus (RFC 7587).
    Opus,
    /// RFC 4733 DTMF events.
    TelephoneEvent,
}

impl CodecKind {
    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
            CodecKind::TelephoneEvent => "telephone-event",
        }
    }

    /// Looks up an rtpmap encoding name (case-insensitive, as RFC 4855 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus, CodecKind::TelephoneEvent]
            .into_iter()
            .find(|k| name.eq_ignore_ascii_case(k.name()))
    }
}

/// A codec with its RTP parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Which codec.
    pub kind: CodecKind,
    /// RTP payload type.
    pub pt: u8,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count as signalled (Opus always says 2).
    pub channels: u8,
    /// fmtp parameters.
    pub fmtp: Option<String>,
}

impl Codec {
    /// The rtpmap encoding name.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// PCMU on its static payload type 0.
    pub fn pcmu() -> Self {
        Codec { kind: CodecKind::Pcmu, pt: 0, clock_rate: 8000, channels: 1, fmtp: None }
    }

    /// PCMA on its static payload type 8.
    pub fn pcma() -> Self {
        Codec { kind: CodecKind::Pcma, pt: 8, clock_rate: 8000, channels: 1, fmtp: None }
    }

    /// Opus/48000/2 on payload type 111 with in-band FEC.
    pub fn opus() -> Self {
        Codec {
            kind: CodecKind::Opus,
            pt: 111,
            clock_rate: 48000,
            channels: 2,
            fmtp: Some("useinbandfec=1".to_string()),
        }
    }

    /// telephone-event at `clock_rate` on `pt`, events 0-16.
    pub fn telephone_event(pt: u8, clock_rate: u32) -> Self {
        Codec { kind: CodecKind::TelephoneEvent, pt, clock_rate, channels: 1, fmtp: Some("0-16".to_string()) }
    }

    fn rtpmap(&self) -> RtpMap {
        RtpMap { pt: self.pt, encoding: self.name().to_string(), clock_rate: self.clock_rate, channels: self.channels }
    }
}

/// Our SRTP side of offer/answer: the policy and the key we send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSrtp {
    /// RTP/SAVP and no call without SRTP (otherwise RTP/AVP with `a=crypto`, best effort).
    pub mandatory: bool,
    /// Our master key and salt (what we protect our packets with).
    pub key: MasterKey,
}

/// What we offer and accept, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaps {
    /// Codecs in preference order; telephone-event entries enable DTMF.
    pub codecs: Vec<Codec>,
    /// SRTP (SDES) when enabled; `None` is plain RTP only.
    pub srtp: Option<LocalSrtp>,
}

impl Default for LocalCaps {
    fn default() -> Self {
        LocalCaps { codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::telephone_event(101, 8000)], srtp: None }
    }
}

impl LocalCaps {
    /// Opus first, then the G.711 defaults; adds telephone-event/48000 (pt 110) because
    /// RFC 4733 events must share the audio codec's clock rate.
    pub fn with_opus() -> Self {
        let mut codecs = vec![Codec::opus()];
        codecs.extend(LocalCaps::default().codecs);
        codecs.push(Codec::telephone_event(110, 48000));
        LocalCaps { codecs, srtp: None }
    }

    /// The same caps with SRTP per `mode`, keyed with `key` (`Off` clears it).
    pub fn with_srtp(mut self, mode: SrtpMode, key: MasterKey) -> Self {
        self.srtp = match mode {
            SrtpMode::Off => None,
            SrtpMode::Optional => Some(LocalSrtp { mandatory: false, key }),
            SrtpMode::Mandatory => Some(LocalSrtp { mandatory: true, key }),
        };
        self
    }

    fn audio_match(&self, kind: CodecKind, clock_rate: u32) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.kind == kind && c.kind != CodecKind::TelephoneEvent && c.clock_rate == clock_rate)
    }

    fn has_dtmf(&self) -> bool {
        self.codecs.iter().any(|c| c.kind == CodecKind::TelephoneEvent)
    }

    fn dtmf_fmtp(&self, clock_rate: u32) -> Option<String> {
        let mut te = self.codecs.iter().filter(|c| c.kind == CodecKind::TelephoneEvent);
        let first = te.clone().next();
        te.find(|c| c.clock_rate == clock_rate).or(first).and_then(|c| c.fmtp.clone())
    }
}

/// Why offer/answer failed; every case maps to 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No enabled audio stream in the SDP.
    #[error("no usable audio stream")]
    NoAudio,
    /// The audio stream offers no codec we support.
    #[error("no common codec")]
    NoCommonCodec,
    /// The audio stream uses a transport we do not speak (e.g. RTP/SAVP).
    #[error("unsupported media transport {0}")]
    UnsupportedTransport(String),
    /// The audio stream has no `c=` line at either level.
    #[error("audio stream has no connection address")]
    MissingConnection,
    /// The answer rejected our audio stream (port 0).
    #[error("audio stream rejected by peer")]
    Rejected,
    /// SRTP is required (RTP/SAVP, or our policy) but no usable `a=crypto` was given.
    #[error("no usable SRTP crypto suite")]
    NoCrypto,
}

impl NegotiationError {
    /// The SIP status to reply with.
    pub fn sip_status(&self) -> u16 {
        488
    }
}

/// The outcome of offer/answer: everything the media engine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; `None` when the peer gave `c=0.0.0.0` (old-style hold).
    pub remote_addr: Option<SocketAddr>,
    /// The audio codec to send with (payload type as the peer expects; fmtp as the peer sent).
    pub codec: Codec,
    /// telephone-event payload type, when both sides support it at the codec's clock rate.
    pub dtmf_pt: Option<u8>,
    /// Packetization to send with, in milliseconds.
    pub ptime_ms: u32,
    /// What we do.
    pub direction: Direction,
    /// What the peer declared (c=0.0.0.0 counts as not receiving).
    pub remote_direction: Direction,
    /// SRTP suite and keys when the stream is encrypted.
    pub srtp: Option<SrtpParams>,
    /// Where to send RTCP: the peer's `a=rtcp` (RFC 3605), else its RTP port + 1, or
    /// its RTP address with rtcp-mux; `None` while it does not receive (`c=0.0.0.0`).
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP port (RFC 5761): the offer had `a=rtcp-mux` and the answer too.
    pub rtcp_mux: bool,
}

impl Negotiated {
    /// RTP timestamp units per packet.
    pub fn samples_per_packet(&self) -> u32 {
        self.codec.clock_rate / 1000 * self.ptime_ms
    }

    /// Whether the peer has put us on hold (it no longer receives).
    pub fn remote_holds(&self) -> bool {
        !self.remote_direction.can_recv()
    }
}

const ORIGIN_USER: &str = "orbit";
const SESSION_NAME: &str = "Orbit";
const DEFAULT_PTIME: u32 = 20;

fn session_skeleton(local_ip: IpAddr, session_id: u64, version: u64) -> SessionDescription {
    SessionDescription {
        origin_user: ORIGIN_USER.to_string(),
        session_id,
        session_version: version,
        origin_addr: local_ip.to_string(),
        session_name: SESSION_NAME.to_string(),
        connection: Some(local_ip),
        ..SessionDescription::default()
    }
}

fn push_codec(m: &mut MediaDescription, c: &Codec) {
    m.payload_types.push(c.pt);
    m.rtpmaps.push(c.rtpmap());
    if let Some(f) = &c.fmtp {
        m.fmtps.push((c.pt, f.clone()));
    }
}

/// Builds our offer: one audio stream with every codec in `caps`.
pub fn build_offer(
    local_ip: IpAddr,
    rtp_port: u16,
    caps: &LocalCaps,
    direction: Direction,
    session_id: u64,
    version: u64,
) -> SessionDescription {
    let proto = match caps.srtp {
        Some(LocalSrtp { mandatory: true, .. }) => "RTP/SAVP",
        _ => "RTP/AVP",
    };
    let mut m = MediaDescription::new("audio", rtp_port, proto);
    for c in &caps.codecs {
        push_codec(&mut m, c);
    }
    if let Some(local) = &caps.srtp {
        let attr = CryptoAttr { tag: 1, suite: CryptoSuite::AesCm128HmacSha1_80, key: local.key };
        m.crypto.push(attr.to_string());
    }
    m.ptime = Some(DEFAULT_PTIME);
    m.direction = Some(direction);
    let mut sd = session_skeleton(local_ip, session_id, version);
    sd.media.push(m);
    sd
}

fn is_plain_rtp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn is_savp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

/// Index of the audio stream we negotiate on: the first enabled audio section in a
/// transport we speak (RTP/SAVP only with `srtp`).
fn pick_audio(sd: &SessionDescription, srtp: bool) -> Result<usize, NegotiationError> {
    let enabled = |m: &&MediaDescription| m.kind.eq_ignore_ascii_case("audio") && m.port != 0;
    if let Some(i) =
        sd.media.iter().position(|m| enabled(&m) && (is_plain_rtp(&m.proto) || (srtp && is_savp(&m.proto))))
    {
        return Ok(i);
    }
    match sd.media.iter().find(enabled) {
        Some(m) => Err(NegotiationError::UnsupportedTransport(m.proto.clone())),
        None => Err(NegotiationError::NoAudio),
    }
}

/// Resolves a payload type to a codec we know, with its clock rate and channels.
fn resolve(m: &MediaDescription, pt: u8) -> Option<(CodecKind, u32, u8)> {
    let map = m.rtpmap(pt)?;
    let kind = CodecKind::from_name(&map.encoding)?;
    Some((kind, map.clock_rate, map.channels))
}

/// The peer's effective direction and RTP address for stream `m`.
fn remote_side(
    sd: &SessionDescription,
    m: &MediaDescription,
) -> Result<(Direction, Option<SocketAddr>), NegotiationError> {
    let declared = m.direction.or(sd.direction).unwrap_or_default();
    let conn = m.connection.or(sd.connection).ok_or(NegotiationError::MissingConnection)?;
    if conn.is_unspecified() {
        // RFC 2543 hold: the peer does not want to receive, whatever the attribute says.
        Ok((declared.intersect(Direction::SendOnly), None))
    } else {
        Ok((declared, Some(SocketAddr::new(conn, m.port))))
    }
}

/// Whether a stream carries `a=rtcp-mux`.
fn has_rtcp_mux(m: &MediaDescription) -> bool {
    m.attribute("rtcp-mux").is_some()
}

/// Where the peer wants RTCP for stream `m` whose RTP goes to `rtp`.
fn remote_rtcp(
    sd: &SessionDescription,
    m: &MediaDescription,
    rtp: Option<SocketAddr>,
    mux: bool,
) -> Option<SocketAddr> {
    let rtp = rtp?;
    if mux {
        return Some(rtp);
    }
    match m.rtcp_port {
        Some(port) => {
            let ip = m.rtcp_addr.filter(|a| !a.is_unspecified()).or(m.connection).or(sd.connection).unwrap_or(rtp.ip());
            Some(SocketAddr::new(ip, port))
        }
        None => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
    }
}

fn normalize_ptime(ptime: Option<u32>, kind: CodecKind) -> u32 {
    let Some(p) = ptime else { return DEFAULT_PTIME };
    let p = (p.clamp(10, 120) / 10) * 10;
    // Opus frames are 2.5..60 ms; anything else would need repacketization.
    if kind == CodecKind::Opus && ![10, 20, 40, 60].contains(&p) { DEFAULT_PTIME } else { p }
}

/// Finds the telephone-event payload type in `m` at `clock_rate`.
fn find_dtmf(m: &MediaDescription, clock_rate: u32) -> Option<u8> {
    m.payload_types
        .iter()
        .copied()
        .find(|&pt| matches!(resolve(m, pt), Some((CodecKind::TelephoneEvent, rate, _)) if rate == clock_rate))
}

/// Answers `offer`: picks the first codec in the offerer's order that `caps` supports.
pub fn answer(
    offer: &SessionDescription,
    local_ip: IpAddr,
    rtp_port: u16,
    caps: &LocalCaps,
    our_direction: Direction,
    session_id: u64,
    version: u64,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let idx = pick_audio(offer, caps.srtp.is_some())?;
    let om = &offer.media[idx];
    let (codec, ours) = om
        .payload_types
        .iter()
        .find_map(|&pt| {
            let (kind, rate, channels) = resolve(om, pt)?;
            let ours = caps.audio_match(kind, rate)?;
            let fmtp = om.fmtp(pt).map(str::to_string);
            Some((Codec { kind, pt, clock_rate: rate, channels, fmtp }, ours))
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let dtmf_pt = if caps.has_dtmf() { find_dtmf(om, codec.clock_rate) } else { None };
    let (remote_direction, remote_addr) = remote_side(offer, om)?;
    let direction = remote_direction.reverse().intersect(our_direction);
    // SDES: take the first offered line we can use and answer it with our key.
    let crypto = match &caps.srtp {
        None => None,
        Some(local) => match om.crypto.iter().find_map(|c| CryptoAttr::parse(c).ok()) {
            Some(theirs) => Some((theirs, local.key)),
            None if local.mandatory || is_savp(&om.proto) => {
                return Err(NegotiationError::NoCrypto);
            }
            None => None,
        },
    };

    let mut am = MediaDescription::new("audio", rtp_port, &om.proto);
    // Offerer's PT number, our fmtp: the fmtp in an answer describes what we receive.
    push_codec(&mut am, &Codec { pt: codec.pt, fmtp: ours.fmtp.clone(), ..codec.clone() });
    if let Some(pt) = dtmf_pt {
        push_codec(
            &mut am,
            &Codec { fmtp: caps.dtmf_fmtp(codec.clock_rate), ..Codec::telephone_event(pt, codec.clock_rate) },
        );
    }
    am.ptime = Some(DEFAULT_PTIME);
    am.direction = Some(direction);
    // RFC 5761 section 5.1.1: accept multiplexing when offered, by echoing the attribute.
    let rtcp_mux = has_rtcp_mux(om);
    if rtcp_mux {
        am.attributes.push(("rtcp-mux".to_string(), None));
    }
    let remote_rtcp = remote_rtcp(offer, om, remote_addr, rtcp_mux);
    let srtp = crypto.map(|(theirs, key)| {
        am.crypto.push(CryptoAttr { tag: theirs.tag, suite: theirs.suite, key }.to_string());
        SrtpParams { suite: theirs.suite, local_key: key, remote_key: theirs.key }
    });

    let mut sd = session_skeleton(local_ip, session_id, version);
    // RFC 3264 section 6: one answer stream per offered stream, rejected ones with port 0.
    for (i, m) in offer.media.iter().enumerate() {
        if i == idx {
            sd.media.push(am.clone());
        } else {
            let mut rejected = MediaDescription::new(&m.kind, 0, &m.proto);
            rejected.payload_types = m.payload_types.clone();
            rejected.other_formats = m.other_formats.clone();
            sd.media.push(rejected);
        }
    }
    let ptime_ms = normalize_ptime(om.ptime, codec.kind);
    Ok((
        sd,
        Negotiated { remote_addr, codec, dtmf_pt, ptime_ms, direction, remote_direction, srtp, remote_rtcp, rtcp_mux },
    ))
}

/// Reads the peer's answer to our `offer`.
pub fn apply_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<Negotiated, NegotiationError> {
    let idx = pick_audio(offer, true)?;
    let om = &offer.media[idx];
    let am = match answer.media.get(idx) {
        Some(m) if m.kind.eq_ignore_ascii_case("audio") => m,
        _ => answer.audio().ok_or(NegotiationError::NoAudio)?,
    };
    if am.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    let offered = |kind: CodecKind, rate: u32| {
        om.payload_types.iter().any(|&pt| matches!(resolve(om, pt), Some((k, r, _)) if k == kind && r == rate))
    };
    let codec = am
        .payload_types
        .iter()
        .find_map(|&pt| {
            let (kind, rate, channels) = resolve(am, pt)?;
            if kind == CodecKind::TelephoneEvent || !offered(kind, rate) {
                return None;
            }
            // The answerer receives on the PT it wrote, even if it renumbered ours.
            Some(Codec { kind, pt, clock_rate: rate, channels, fmtp: am.fmtp(pt).map(str::to_string) })
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let we_offered_dtmf =
        om.payload_types.iter().any(|&pt| matches!(resolve(om, pt), Some((CodecKind::TelephoneEvent, ..))));
    let dtmf_pt = if we_offered_dtmf { find_dtmf(am, codec.clock_rate) } else { None };
    let (remote_direction, remote_addr) = remote_side(answer, am)?;
    let ours = om.direction.or(offer.direction).unwrap_or_default();
    let direction = ours.intersect(remote_direction.reverse());
    let ptime_ms = normalize_ptime(am.ptime, codec.kind);
    let srtp = answered_srtp(om, am)?;
    let rtcp_mux = has_rtcp_mux(om) && has_rtcp_mux(am);
    let remote_rtcp = remote_rtcp(answer, am, remote_addr, rtcp_mux);
    Ok(Negotiated { remote_addr, codec, dtmf_pt, ptime_ms, direction, remote_direction, srtp, remote_rtcp, rtcp_mux })
}

/// The SRTP outcome of our offer `om` and their answer `am`: the answered line must carry
/// a tag and suite we offered; without one, an RTP/SAVP offer fails and a best-effort
/// RTP/AVP one falls back to plain RTP.
fn answered_srtp(om: &MediaDescription, am: &MediaDescription) -> Result<Option<SrtpParams>, NegotiationError> {
    let ours: Vec<CryptoAttr> = om.crypto.iter().filter_map(|c| CryptoAttr::parse(c).ok()).collect();
    if ours.is_empty() {
        return Ok(None);
    }
    let pair = am.crypto.iter().find_map(|c| {
        let theirs = CryptoAttr::parse(c).ok()?;
        let mine = ours.iter().find(|o| o.tag == theirs.tag && o.suite == theirs.suite)?;
        Some(SrtpParams { suite: theirs.suite, local_key: mine.key, remote_key: theirs.key })
    });
    match pair {
        Some(p) => Ok(Some(p)),
        None if is_savp(&om.proto) || is_savp(&am.proto) => Err(NegotiationError::NoCrypto),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

    const BARESIP: &str = "v=0\r\no=- 3907364719 3907364720 IN IP4 192.168.1.50\r\ns=-\r\n\
c=IN IP4 192.168.1.50\r\nt=0 0\r\nm=audio 10388 RTP/AVP 0 8 101\r\nb=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=ptime:20\r\n";

    const LINPHONE: &str = "v=0\r\no=alice 3012 2394 IN IP4 192.168.0.17\r\ns=Talk\r\n\
c=IN IP4 192.168.0.17\r\nt=0 0\r\na=ice-ufrag:95e02fca\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\na=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\na=fmtp:98 vbr=on\r\na=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/48000\r\na=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\na=rtcp:7079\r\n\
m=video 9078 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";

    fn parse(s: &str) -> SessionDescription {
        SessionDescription::parse(s).unwrap()
    }

    fn with_direction(base: &str, attr: &str) -> SessionDescription {
        parse(&base.replace("a=sendrecv\r\n", &format!("a={attr}\r\n")))
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(RecvOnly.reverse(), SendOnly);
        assert_eq!(Inactive.reverse(), Inactive);
        assert_eq!(SendRecv.reverse(), SendRecv);
        assert!(SendRecv.can_send() && SendRecv.can_recv());
        assert!(SendOnly.can_send() && !SendOnly.can_recv());
        assert!(!RecvOnly.can_send() && RecvOnly.can_recv());
        assert!(!Inactive.can_send() && !Inactive.can_recv());
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attr(d.as_attr()), Some(d));
        }
        assert_eq!(Direction::from_attr("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attr("rtcp-mux"), None);
    }

    #[test]
    fn caps_defaults() {
        let caps = LocalCaps::default();
        let names: Vec<(&str, u8)> = caps.codecs.iter().map(|c| (c.name(), c.pt)).collect();
        assert_eq!(names, vec![("PCMU", 0), ("PCMA", 8), ("telephone-event", 101)]);
        assert_eq!(caps.codecs[2].fmtp.as_deref(), Some("0-16"));
        let opus = LocalCaps::with_opus();
        assert_eq!(opus.codecs[0], Codec::opus());
        assert_eq!(opus.codecs[0].fmtp.as_deref(), Some("useinbandfec=1"));
        assert_eq!((opus.codecs[0].clock_rate, opus.codecs[0].channels), (48000, 2));
        assert_eq!(opus.codecs[1].name(), "PCMU");
    }

    #[test]
    fn offer_lists_all_codecs() {
        let sd = build_offer(LOCAL, 40000, &LocalCaps::default(), Direction::SendRecv, 77, 1);
        let text = sd.to_string();
        assert!(text.contains("o=orbit 77 1 IN IP4 10.0.0.9\r\n"));
        assert!(text.contains("c=IN IP4 10.0.0.9\r\n"));
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"));
        assert!(text.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.contains("a=fmtp:101 0-16\r\n"));
        assert!(text.contains("a=ptime:20\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
        let hold = build_offer(LOCAL, 40000, &LocalCaps::with_opus(), Direction::SendOnly, 77, 2).to_string();
        assert!(hold.contains("m=audio 40000 RTP/AVP 111 0 8 101 110\r\n"));
        assert!(hold.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(hold.contains("a=fmtp:111 useinbandfec=1\r\n"));
        assert!(hold.contains("a=sendonly\r\n"));
    }

    #[test]
    fn answers_baresip_with_pcmu_and_dtmf() {
        let (sd, neg) =
            answer(&parse(BARESIP), LOCAL, 40000, &LocalCaps::default(), Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.codec.kind, CodecKind::Pcmu);
        assert_eq!(neg.codec.pt, 0);
        assert_eq!(neg.dtmf_pt, Some(101));
        assert_eq!(neg.remote_addr, Some("192.168.1.50:10388".parse().unwrap()));
        assert_eq!(neg.ptime_ms, 20);
        assert_eq!(neg.samples_per_packet(), 160);
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.remote_direction, Direction::SendRecv);
        let text = sd.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
        // The offerer can read our answer back.
        let back = apply_answer(&parse(BARESIP), &parse(&text)).unwrap();
        assert_eq!(back.codec.kind, CodecKind::Pcmu);
        assert_eq!(back.dtmf_pt, Some(101));
        assert_eq!(back.remote_addr, Some("10.0.0.9:40000".parse().unwrap()));
    }

    #[test]
    fn answers_linphone_without_opus_picks_pcmu_keeps_pts() {
        let offer = parse(LINPHONE);
        let (sd, neg) = answer(&offer, LOCAL, 40000, &LocalCaps::default(), Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.codec, Codec { kind: CodecKind::Pcmu, pt: 0, clock_rate: 8000, channels: 1, fmtp: None });
        assert_eq!(neg.dtmf_pt, Some(100));
        assert_eq!(neg.remote_addr, Some("192.168.0.17:7078".parse().unwrap()));
        assert_eq!(sd.media.len(), 2);
        assert_eq!(sd.media[0].payload_types, vec![0, 100]);
        assert_eq!(sd.media[1].kind, "video");
        assert_eq!(sd.media[1].port, 0);
        assert_eq!(sd.media[1].payload_types, vec![96]);
    }

    #[test]
    fn answers_linphone_with_opus() {
        let (sd, neg) =
            answer(&parse(LINPHONE), LOCAL, 40000, &LocalCaps::with_opus(), Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.codec.kind, CodecKind::Opus);
        assert_eq!(neg.codec.pt, 96);
        assert_eq!(neg.codec.clock_rate, 48000);
        assert_eq!(neg.codec.fmtp.as_deref(), Some("useinbandfec=1"));
        assert_eq!(neg.dtmf_pt, Some(101));
        assert_eq!(neg.samples_per_packet(), 960);
        let text = sd.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 96 101\r\n"));
        assert!(text.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/48000\r\n"));
    }

    #[test]
    fn respects_offer_order_over_ours() {
        let offer = parse(&BARESIP.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101"));
        let (_, neg) = answer(&offer, LOCAL, 40000, &LocalCaps::default(), Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.codec.kind, CodecKind::Pcma);
        assert_eq!(neg.codec.pt, 8);
    }

    #[test]
    fn dynamic_pt_renumbering_is_kept() {
        let offer = parse(
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 120 97\r\na=rtpmap:120 OPUS/48000/2\r\na=rtpmap:97 telephone-event/48000\r\n",
        );
        let (_, neg) = answer(&offer, LOCAL, 4000, &LocalCaps::with_opus(), Direction::SendRecv, 1, 1).unwrap();
        assert_eq!((neg.codec.kind, neg.codec.pt, neg.dtmf_pt), (CodecKind::Opus, 120, Some(97)));
        // Without telephone-event in our caps there is no DTMF.
        let (_, neg) = answer(
            &offer,
            LOCAL,
            4000,
            &LocalCaps { codecs: vec![Codec::opus()], srtp: None },
            Direction::SendRecv,
            1,
            1,
        )
        .unwrap();
        assert_eq!(neg.dtmf_pt, None);
    }

    #[test]
    fn no_common_codec_is_488() {
        let offer = parse(
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 18 9 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let err = answer(&offer, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err();
        assert_eq!(err, NegotiationError::NoCommonCodec);
        assert_eq!(err.sip_status(), 488);
        // Opus only offered, Opus not enabled.
        let opus_only = parse(&LINPHONE.replace("RTP/AVP 96 97 98 0 8 18 101 99 100", "RTP/AVP 96 101"));
        assert_eq!(
            answer(&opus_only, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::NoCommonCodec
        );
    }

    #[test]
    fn srtp_only_and_no_audio_are_refused() {
        let srtp = parse(&BARESIP.replace("RTP/AVP", "RTP/SAVP"));
        assert_eq!(
            answer(&srtp, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::UnsupportedTransport("RTP/SAVP".into())
        );
        let disabled = parse(&BARESIP.replace("m=audio 10388", "m=audio 0"));
        assert_eq!(
            answer(&disabled, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::NoAudio
        );
        let no_c = parse(&BARESIP.replace("c=IN IP4 192.168.1.50\r\n", ""));
        assert_eq!(
            answer(&no_c, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::MissingConnection
        );
    }

    #[test]
    fn hold_offers() {
        let caps = LocalCaps::default();
        let cases = [
            ("sendonly", Direction::SendRecv, Direction::RecvOnly),
            ("recvonly", Direction::SendRecv, Direction::SendOnly),
            ("inactive", Direction::SendRecv, Direction::Inactive),
            ("sendrecv", Direction::SendRecv, Direction::SendRecv),
            // We are holding too: the answer is the intersection.
            ("sendonly", Direction::SendOnly, Direction::Inactive),
            ("sendrecv", Direction::SendOnly, Direction::SendOnly),
        ];
        for (attr, ours, expect) in cases {
            let offer = with_direction(BARESIP, attr);
            let (sd, neg) = answer(&offer, LOCAL, 4000, &caps, ours, 1, 2).unwrap();
            assert_eq!(neg.direction, expect, "offer {attr}, ours {ours}");
            assert_eq!(neg.remote_direction.as_attr(), attr);
            assert_eq!(sd.media[0].direction, Some(expect));
            assert!(sd.to_string().contains(&format!("a={}\r\n", expect.as_attr())));
        }
        let (_, neg) =
            answer(&with_direction(BARESIP, "sendonly"), LOCAL, 4000, &caps, Direction::SendRecv, 1, 2).unwrap();
        assert!(neg.remote_holds());
        // Session-level direction applies when the media has none.
        let session_level =
            parse(&BARESIP.replace("a=sendrecv\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n"));
        let (_, neg) = answer(&session_level, LOCAL, 4000, &caps, Direction::SendRecv, 1, 2).unwrap();
        assert_eq!(neg.direction, Direction::Inactive);
    }

    #[test]
    fn old_style_hold_zero_address() {
        let offer = parse(&BARESIP.replace("c=IN IP4 192.168.1.50", "c=IN IP4 0.0.0.0"));
        let (sd, neg) = answer(&offer, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 2).unwrap();
        assert_eq!(neg.remote_addr, None);
        assert_eq!(neg.remote_direction, Direction::SendOnly);
        assert_eq!(neg.direction, Direction::RecvOnly);
        assert!(neg.remote_holds());
        assert_eq!(sd.media[0].direction, Some(Direction::RecvOnly));
        // 0.0.0.0 with a=inactive stays inactive.
        let offer = with_direction(&BARESIP.replace("c=IN IP4 192.168.1.50", "c=IN IP4 0.0.0.0"), "inactive");
        let (_, neg) = answer(&offer, LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 2).unwrap();
        assert_eq!(neg.direction, Direction::Inactive);
    }

    #[test]
    fn apply_answer_cases() {
        let offer = build_offer(LOCAL, 40000, &LocalCaps::default(), Direction::SendRecv, 1, 1);
        let ans = parse(
            "v=0\r\no=- 9 9 IN IP4 2.2.2.2\r\ns=-\r\nc=IN IP4 2.2.2.2\r\nt=0 0\r\n\
             m=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=ptime:30\r\na=recvonly\r\n",
        );
        let neg = apply_answer(&offer, &ans).unwrap();
        assert_eq!(neg.codec.kind, CodecKind::Pcma);
        assert_eq!(neg.dtmf_pt, Some(101));
        assert_eq!(neg.ptime_ms, 30);
        assert_eq!(neg.remote_addr, Some("2.2.2.2:6000".parse().unwrap()));
        assert_eq!(neg.remote_direction, Direction::RecvOnly);
        assert_eq!(neg.direction, Direction::SendOnly);

        let rejected = parse(&ans.to_string().replace("m=audio 6000", "m=audio 0"));
        assert_eq!(apply_answer(&offer, &rejected).unwrap_err(), NegotiationError::Rejected);
        let wrong =
            parse(&ans.to_string().replace("RTP/AVP 8 101", "RTP/AVP 18").replace("a=rtpmap:8 PCMA/8000\r\n", ""));
        assert_eq!(apply_answer(&offer, &wrong).unwrap_err(), NegotiationError::NoCommonCodec);

        // We offered hold (sendonly); the peer answers recvonly.
        let hold = build_offer(LOCAL, 40000, &LocalCaps::default(), Direction::SendOnly, 1, 2);
        let neg = apply_answer(&hold, &ans).unwrap();
        assert_eq!(neg.direction, Direction::SendOnly);
        let inactive = parse(&ans.to_string().replace("a=recvonly", "a=inactive"));
        assert_eq!(apply_answer(&hold, &inactive).unwrap().direction, Direction::Inactive);
    }

    #[test]
    fn ptime_normalization() {
        assert_eq!(normalize_ptime(None, CodecKind::Pcmu), 20);
        assert_eq!(normalize_ptime(Some(1), CodecKind::Pcmu), 10);
        assert_eq!(normalize_ptime(Some(25), CodecKind::Pcmu), 20);
        assert_eq!(normalize_ptime(Some(1000), CodecKind::Pcmu), 120);
        assert_eq!(normalize_ptime(Some(30), CodecKind::Opus), 20);
        assert_eq!(normalize_ptime(Some(60), CodecKind::Opus), 60);
    }
    fn srtp_caps(mode: SrtpMode) -> (LocalCaps, MasterKey) {
        let key = MasterKey::random();
        (LocalCaps::default().with_srtp(mode, key), key)
    }

    #[test]
    fn srtp_offers() {
        let (caps, key) = srtp_caps(SrtpMode::Optional);
        let text = build_offer(LOCAL, 40000, &caps, Direction::SendRecv, 1, 1).to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"), "{text}");
        let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n", key.to_base64());
        assert!(text.contains(&line), "{text}");
        let (caps, _) = srtp_caps(SrtpMode::Mandatory);
        let text = build_offer(LOCAL, 40000, &caps, Direction::SendRecv, 1, 1).to_string();
        assert!(text.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        let (caps, _) = srtp_caps(SrtpMode::Off);
        assert_eq!(caps, LocalCaps::default());
    }

    #[test]
    fn srtp_answers() {
        let theirs = MasterKey::random();
        let keyed = |proto: &str| {
            parse(&BARESIP.replace("RTP/AVP", proto).replace(
                "a=sendrecv\r\n",
                &format!(
                    "a=sendrecv\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n\
                     a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}|2^31\r\n\
                     a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
                    theirs.to_base64(),
                    theirs.to_base64()
                ),
            ))
        };
        for (mode, proto) in [
            (SrtpMode::Optional, "RTP/SAVP"),
            (SrtpMode::Mandatory, "RTP/SAVP"),
            (SrtpMode::Optional, "RTP/AVP"),
            (SrtpMode::Mandatory, "RTP/AVP"),
        ] {
            let (caps, ours) = srtp_caps(mode);
            let offer = keyed(proto);
            let (sd, neg) = answer(&offer, LOCAL, 4000, &caps, Direction::SendRecv, 1, 1).unwrap();
            let srtp = neg.srtp.expect("keyed");
            assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_32);
            assert_eq!(srtp.local_key, ours);
            assert_eq!(srtp.remote_key, theirs);
            let text = sd.to_string();
            assert!(text.contains(&format!("m=audio 4000 {proto} 0 101\r\n")), "{text}");
            assert!(
                text.contains(&format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n", ours.to_base64())),
                "{text}"
            );
            assert_eq!(sd.media[0].crypto.len(), 1);
        }
        // Off: SAVP is refused, crypto on AVP ignored.
        assert_eq!(
            answer(&keyed("RTP/SAVP"), LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::UnsupportedTransport("RTP/SAVP".into())
        );
        let (sd, neg) =
            answer(&keyed("RTP/AVP"), LOCAL, 4000, &LocalCaps::default(), Direction::SendRecv, 1, 1).unwrap();
        assert_eq!(neg.srtp, None);
        assert!(sd.media[0].crypto.is_empty());
        // Mandatory refuses a plain offer; optional takes it as plain RTP.
        let (mand, _) = srtp_caps(SrtpMode::Mandatory);
        let err = answer(&parse(BARESIP), LOCAL, 4000, &mand, Direction::SendRecv, 1, 1).unwrap_err();
        assert_eq!((err.clone(), err.sip_status()), (NegotiationError::NoCrypto, 488));
        let (opt, _) = srtp_caps(SrtpMode::Optional);
        let (_, neg) = answer(&parse(BARESIP), LOCAL, 4000, &opt, Direction::SendRecv, 1, 1).unwrap();
        assert_eq!(neg.srtp, None);
        // SAVP with no usable line.
        let unusable = parse(
            &BARESIP
                .replace("RTP/AVP", "RTP/SAVP")
                .replace("a=sendrecv\r\n", "a=sendrecv\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:AAAA\r\n"),
        );
        assert_eq!(
            answer(&unusable, LOCAL, 4000, &opt, Direction::SendRecv, 1, 1).unwrap_err(),
            NegotiationError::NoCrypto
        );
    }

    #[test]
    fn srtp_offer_answer_roundtrip() {
        for (offerer, answerer) in [
            (SrtpMode::Mandatory, SrtpMode::Optional),
            (SrtpMode::Optional, SrtpMode::Mandatory),
            (SrtpMode::Optional, SrtpMode::Optional),
        ] {
            let (a_caps, a_key) = srtp_caps(offerer);
            let (b_caps, b_key) = srtp_caps(answerer);
            let offer = build_offer(LOCAL, 4000, &a_caps, Direction::SendRecv, 1, 1);
            let offer = parse(&offer.to_string());
            let (ans, b_neg) = answer(&offer, LOCAL, 5000, &b_caps, Direction::SendRecv, 2, 2).unwrap();
            let a_neg = apply_answer(&offer, &parse(&ans.to_string())).unwrap();
            let (a, b) = (a_neg.srtp.unwrap(), b_neg.srtp.unwrap());
            assert_eq!((a.local_key, a.remote_key), (a_key, b_key));
            assert_eq!((b.local_key, b.remote_key), (b_key, a_key));
            assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        }
        // Best effort offer, plain answer: plain RTP. SAVP offer, plain answer: failure.
        let (opt, _) = srtp_caps(SrtpMode::Optional);
        let offer = build_offer(LOCAL, 4000, &opt, Direction::SendRecv, 1, 1);
        let (plain, _) = answer(&offer, LOCAL, 5000, &LocalCaps::default(), Direction::SendRecv, 2, 2).unwrap();
        assert_eq!(apply_answer(&offer, &plain).unwrap().srtp, None);
        let (mand, _) = srtp_caps(SrtpMode::Mandatory);
        let offer = build_offer(LOCAL, 4000, &mand, Direction::SendRecv, 1, 1);
        let stripped = parse(&plain.to_string().replace("RTP/AVP", "RTP/SAVP"));
        assert_eq!(apply_answer(&offer, &stripped).unwrap_err(), NegotiationError::NoCrypto);
        // An answer keyed with a tag we never offered does not count.
        let (_, other) = srtp_caps(SrtpMode::Optional);
        let wrong_tag = parse(&plain.to_string().replace(
            "a=sendrecv\r\n",
            &format!("a=sendrecv\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n", other.to_base64()),
        ));
        let offer = build_offer(LOCAL, 4000, &opt, Direction::SendRecv, 1, 1);
        assert_eq!(apply_answer(&offer, &wrong_tag).unwrap().srtp, None);
    }

    #[test]
    fn rtcp_address_port_plus_one_rfc3605_and_mux() {
        let caps = LocalCaps::default();
        let (_, neg) = answer(&parse(BARESIP), LOCAL, 40000, &caps, Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.remote_rtcp, Some("192.168.1.50:10389".parse().unwrap()));
        assert!(!neg.rtcp_mux);
        let (_, neg) =
            answer(&parse(LINPHONE), LOCAL, 40000, &LocalCaps::with_opus(), Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.remote_rtcp, Some("192.168.0.17:7079".parse().unwrap()));
        let other_host = BARESIP.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp:9000 IN IP4 10.1.2.3\r\n");
        let (_, neg) = answer(&parse(&other_host), LOCAL, 40000, &caps, Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.remote_rtcp, Some("10.1.2.3:9000".parse().unwrap()));
        // rtcp-mux offered: accepted in the answer, RTCP goes to the RTP address.
        let mux = BARESIP.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-mux\r\n");
        let (sd, neg) = answer(&parse(&mux), LOCAL, 40000, &caps, Direction::SendRecv, 5, 1).unwrap();
        assert!(neg.rtcp_mux);
        assert_eq!(neg.remote_rtcp, neg.remote_addr);
        assert!(sd.to_string().contains("a=rtcp-mux\r\n"), "{sd}");
        // Our offer has no rtcp-mux, so an answer echoing it alone does not turn it on.
        let offer = build_offer(LOCAL, 4000, &caps, Direction::SendRecv, 1, 1);
        assert!(!offer.to_string().contains("rtcp-mux"));
        let back = apply_answer(&offer, &parse(&mux)).unwrap();
        assert!(!back.rtcp_mux);
        assert_eq!(back.remote_rtcp, Some("192.168.1.50:10389".parse().unwrap()));
        // Old-style hold: nowhere to send.
        let hold = BARESIP.replace("c=IN IP4 192.168.1.50", "c=IN IP4 0.0.0.0");
        let (_, neg) = answer(&parse(&hold), LOCAL, 40000, &caps, Direction::SendRecv, 5, 1).unwrap();
        assert_eq!(neg.remote_rtcp, None);
    }
}
