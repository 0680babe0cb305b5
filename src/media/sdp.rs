//! SDP (RFC 4566) session descriptions: a lenient parser and a CRLF serializer.
//!
//! Parsing accepts what real phones send (LF-only line ends, stray whitespace, lines out of
//! the RFC order) but rejects anything that is not `<letter>=<value>` lines, so a garbage
//! body turns into a 400/488 instead of a guess.

use std::fmt;
use std::net::IpAddr;

use super::negotiate::Direction;

/// Why an SDP body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body holds no SDP lines at all.
    #[error("empty SDP body")]
    Empty,
    /// A line is not of the form `<letter>=<value>`.
    #[error("SDP line {line}: not a <type>=<value> line")]
    Malformed {
        /// 1-based line number.
        line: usize,
    },
    /// A known line or attribute carries a value we cannot read.
    #[error("SDP line {line}: invalid {what}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// Which field was wrong.
        what: &'static str,
    },
    /// A mandatory line is absent.
    #[error("SDP has no {0}= line")]
    Missing(char),
    /// `v=` is something other than 0.
    #[error("unsupported SDP version {0:?}")]
    Version(String),
}

/// An `a=rtpmap` entry (or the implied mapping of a static payload type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type number.
    pub pt: u8,
    /// Encoding name as written, e.g. `PCMU`, `opus`, `telephone-event`.
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count; 1 when the rtpmap omits it.
    pub channels: u8,
}

impl RtpMap {
    /// The RFC 3551 mapping of a static payload type, for offers that omit its rtpmap.
    pub fn static_pt(pt: u8) -> Option<RtpMap> {
        let (encoding, clock_rate) = match pt {
            0 => ("PCMU", 8000),
            3 => ("GSM", 8000),
            4 => ("G723", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            18 => ("G729", 8000),
            _ => return None,
        };
        Some(RtpMap { pt, encoding: encoding.to_string(), clock_rate, channels: 1 })
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaDescription {
    /// Media type, e.g. `audio`.
    pub kind: String,
    /// Transport port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// The `/<count>` suffix of the port, rarely used.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// RTP payload types in preference order.
    pub payload_types: Vec<u8>,
    /// Non-numeric formats of non-RTP streams (e.g. `t38`, `*`), kept for re-serialization.
    pub other_formats: Vec<String>,
    /// Media-level `c=` address (overrides the session one).
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` entries.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` entries as (payload type, parameters).
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=crypto` values (SDES), kept verbatim.
    pub crypto: Vec<String>,
    /// `a=rtcp` port (RFC 3605).
    pub rtcp_port: Option<u16>,
    /// `a=rtcp` address, when given.
    pub rtcp_addr: Option<IpAddr>,
    /// Other attributes as (name, value) in their original order.
    pub attributes: Vec<(String, Option<String>)>,
    /// Other media-level lines (`i=`, `b=`, `k=`) as (type, value).
    pub other_lines: Vec<(char, String)>,
}

/// A whole SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` username (`-` when none).
    pub origin_user: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version; bumped on every changed offer.
    pub session_version: u64,
    /// `o=` unicast address.
    pub origin_addr: String,
    /// `s=` session name.
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// First `t=` value.
    pub timing: String,
    /// Session-level direction attribute (applies to media without their own).
    pub direction: Option<Direction>,
    /// Other session-level attributes as (name, value).
    pub attributes: Vec<(String, Option<String>)>,
    /// Other session-level lines (`i=`, `b=`, `z=`, ...) as (type, value).
    pub other_lines: Vec<(char, String)>,
    /// The `m=` sections in order.
    pub media: Vec<MediaDescription>,
}

impl Default for SessionDescription {
    fn default() -> Self {
        SessionDescription {
            origin_user: "-".to_string(),
            session_id: 0,
            session_version: 0,
            origin_addr: "0.0.0.0".to_string(),
            session_name: "-".to_string(),
            connection: None,
            timing: "0 0".to_string(),
            direction: None,
            attributes: Vec::new(),
            other_lines: Vec::new(),
            media: Vec::new(),
        }
    }
}

impl MediaDescription {
    /// An empty section of the given type, port and protocol.
    pub fn new(kind: &str, port: u16, proto: &str) -> Self {
        MediaDescription { kind: kind.to_string(), port, proto: proto.to_string(), ..Default::default() }
    }

    /// The rtpmap for `pt`, falling back to the static RFC 3551 table.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps.iter().find(|m| m.pt == pt).cloned().or_else(|| RtpMap::static_pt(pt))
    }

    /// The fmtp parameters for `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps.iter().find(|(p, _)| *p == pt).map(|(_, s)| s.as_str())
    }

    /// The value of the first other attribute named `name` (`Some("")` for flags).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }

    /// Whether the protocol is RTP-based, so formats are payload type numbers.
    pub fn is_rtp(&self) -> bool {
        self.proto.to_ascii_uppercase().contains("RTP")
    }
}

impl SessionDescription {
    /// Parses an SDP body; tolerant of layout, strict about content.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut sd = SessionDescription::default();
        let mut saw_line = false;
        let mut saw_origin = false;
        let mut saw_timing = false;
        for (idx, raw) in text.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let lineno = idx + 1;
            let (key, value) = line.split_once('=').ok_or(SdpError::Malformed { line: lineno })?;
            let key = key.trim();
            let value = value.trim();
            let mut chars = key.chars();
            let kind = match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_lowercase() => c,
                _ => return Err(SdpError::Malformed { line: lineno }),
            };
            saw_line = true;
            let invalid = |what| SdpError::Invalid { line: lineno, what };
            match kind {
                // Session-only lines are taken wherever they appear (lenient on order).
                'v' => {
                    if value != "0" {
                        return Err(SdpError::Version(value.to_string()));
                    }
                }
                'o' => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    let [user, id, version, _, _, addr, ..] = f.as_slice() else {
                        return Err(invalid("origin"));
                    };
                    sd.origin_user = user.to_string();
                    sd.session_id = id.parse().map_err(|_| invalid("origin session id"))?;
                    sd.session_version = version.parse().map_err(|_| invalid("origin version"))?;
                    sd.origin_addr = addr.to_string();
                    saw_origin = true;
                }
                's' => sd.session_name = value.to_string(),
                't' if !saw_timing => {
                    sd.timing = value.to_string();
                    saw_timing = true;
                }
                'm' => sd.media.push(parse_media_line(value).ok_or_else(|| invalid("media line"))?),
                'c' => {
                    let addr = parse_connection(value).ok_or_else(|| invalid("connection"))?;
                    match sd.media.last_mut() {
                        Some(m) => {
                            if m.connection.is_none() {
                                m.connection = Some(addr);
                            }
                        }
                        None => {
                            if sd.connection.is_none() {
                                sd.connection = Some(addr);
                            }
                        }
                    }
                }
                'a' => {
                    let (name, val) = match value.split_once(':') {
                        Some((n, v)) => (n.trim(), Some(v.trim())),
                        None => (value, None),
                    };
                    if name.is_empty() {
                        return Err(invalid("attribute"));
                    }
                    match sd.media.last_mut() {
                        Some(m) => parse_media_attr(m, name, val).map_err(invalid)?,
                        None => match (Direction::from_attr(name), val) {
                            (Some(d), None) => sd.direction = Some(d),
                            _ => sd.attributes.push((name.to_string(), val.map(str::to_string))),
                        },
                    }
                }
                'i' | 'b' | 'k' if !sd.media.is_empty() => {
                    if let Some(m) = sd.media.last_mut() {
                        m.other_lines.push((kind, value.to_string()));
                    }
                }
                _ => sd.other_lines.push((kind, value.to_string())),
            }
        }
        if !saw_line {
            return Err(SdpError::Empty);
        }
        if !saw_origin {
            return Err(SdpError::Missing('o'));
        }
        Ok(sd)
    }

    /// The first `m=audio` section, if any.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.kind.eq_ignore_ascii_case("audio"))
    }

    /// The value of the first session-level attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }
}

fn find_attr<'a>(attrs: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref().unwrap_or(""))
}

fn parse_media_line(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_whitespace();
    let kind = f.next()?;
    let port_field = f.next()?;
    let proto = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let mut m = MediaDescription { port_count, ..MediaDescription::new(kind, port, proto) };
    let rtp = m.is_rtp();
    for fmt in f {
        match fmt.parse::<u8>() {
            Ok(pt) if pt <= 127 => m.payload_types.push(pt),
            // RTP formats must be payload type numbers; anything else means a broken body.
            _ if rtp => return None,
            _ => m.other_formats.push(fmt.to_string()),
        }
    }
    Some(m)
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut f = value.split_whitespace();
    let nettype = f.next()?;
    let _addrtype = f.next()?;
    let addr = f.next()?;
    if !nettype.eq_ignore_ascii_case("IN") {
        return None;
    }
    // Multicast addresses carry /ttl[/count]; the address itself is all we use.
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().ok()
}

fn parse_media_attr(m: &mut MediaDescription, name: &str, val: Option<&str>) -> Result<(), &'static str> {
    if let (Some(dir), None) = (Direction::from_attr(name), val) {
        m.direction = Some(dir);
        return Ok(());
    }
    match (name.to_ascii_lowercase().as_str(), val) {
        ("rtpmap", Some(v)) => m.rtpmaps.push(parse_rtpmap(v).ok_or("rtpmap")?),
        ("fmtp", Some(v)) => {
            let (fmt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            match fmt.parse::<u8>() {
                Ok(pt) => m.fmtps.push((pt, params.trim().to_string())),
                Err(_) => m.attributes.push((name.to_string(), Some(v.to_string()))),
            }
        }
        ("ptime", Some(v)) => {
            // Some phones write "20.0"; a ptime is advisory so round rather than refuse.
            let ms = match v.parse::<u32>() {
                Ok(ms) => ms,
                Err(_) => match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && (0.0..=10_000.0).contains(&f) => f.round() as u32,
                    _ => return Err("ptime"),
                },
            };
            m.ptime = Some(ms);
        }
        ("crypto", Some(v)) => m.crypto.push(v.to_string()),
        ("rtcp", Some(v)) => {
            let mut f = v.split_whitespace();
            let port = f.next().and_then(|p| p.parse().ok()).ok_or("rtcp")?;
            m.rtcp_port = Some(port);
            let rest: Vec<&str> = f.collect();
            if rest.len() >= 3 {
                m.rtcp_addr = parse_connection(&rest.join(" "));
            }
        }
        _ => m.attributes.push((name.to_string(), val.map(str::to_string))),
    }
    Ok(())
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok()?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim();
    let clock_rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels: u8 = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    if pt > 127 || encoding.is_empty() || clock_rate == 0 || channels == 0 {
        return None;
    }
    Some(RtpMap { pt, encoding: encoding.to_string(), clock_rate, channels })
}

fn addr_type(addr: &str) -> &'static str {
    if addr.parse::<std::net::Ipv6Addr>().is_ok() { "IP6" } else { "IP4" }
}

fn write_connection(f: &mut fmt::Formatter<'_>, addr: &IpAddr) -> fmt::Result {
    let t = if addr.is_ipv6() { "IP6" } else { "IP4" };
    write!(f, "c=IN {t} {addr}\r\n")
}

fn write_attr(f: &mut fmt::Formatter<'_>, name: &str, value: &Option<String>) -> fmt::Result {
    match value {
        Some(v) => write!(f, "a={name}:{v}\r\n"),
        None => write!(f, "a={name}\r\n"),
    }
}

/// RFC 4566 section 5 order of the session-level lines we keep verbatim.
fn session_line_rank(kind: char) -> u8 {
    match kind {
        'i' | 'u' | 'e' | 'p' => 0,
        'b' => 1,
        't' | 'r' => 2,
        'z' => 3,
        'k' => 4,
        _ => 5,
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |s: &str| {
            if s.is_empty() { "-".to_string() } else { s.to_string() }
        };
        let origin_addr = if self.origin_addr.is_empty() { "0.0.0.0" } else { &self.origin_addr };
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            or_dash(&self.origin_user),
            self.session_id,
            self.session_version,
            addr_type(origin_addr),
            origin_addr
        )?;
        write!(f, "s={}\r\n", or_dash(&self.session_name))?;
        let mut others: Vec<&(char, String)> = self.other_lines.iter().collect();
        others.sort_by_key(|(k, _)| session_line_rank(*k));
        let (before_c, after_c): (Vec<_>, Vec<_>) = others.into_iter().partition(|(k, _)| session_line_rank(*k) == 0);
        for (k, v) in before_c {
            write!(f, "{k}={v}\r\n")?;
        }
        if let Some(addr) = &self.connection {
            write_connection(f, addr)?;
        }
        let (bandwidth, after_t): (Vec<_>, Vec<_>) = after_c.into_iter().partition(|(k, _)| session_line_rank(*k) == 1);
        for (k, v) in bandwidth {
            write!(f, "{k}={v}\r\n")?;
        }
        write!(f, "t={}\r\n", if self.timing.is_empty() { "0 0" } else { &self.timing })?;
        for (k, v) in after_t {
            write!(f, "{k}={v}\r\n")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_attr())?;
        }
        for (name, value) in &self.attributes {
            write_attr(f, name, value)?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for pt in &self.payload_types {
            write!(f, " {pt}")?;
        }
        for fmt_name in &self.other_formats {
            write!(f, " {fmt_name}")?;
        }
        write!(f, "\r\n")?;
        for (k, v) in self.other_lines.iter().filter(|(k, _)| *k == 'i') {
            write!(f, "{k}={v}\r\n")?;
        }
        if let Some(addr) = &self.connection {
            write_connection(f, addr)?;
        }
        for (k, v) in self.other_lines.iter().filter(|(k, _)| *k != 'i') {
            write!(f, "{k}={v}\r\n")?;
        }
        for m in &self.rtpmaps {
            write!(f, "a=rtpmap:{} {}/{}", m.pt, m.encoding, m.clock_rate)?;
            if m.channels != 1 {
                write!(f, "/{}", m.channels)?;
            }
            write!(f, "\r\n")?;
        }
        for (pt, params) in &self.fmtps {
            write!(f, "a=fmtp:{pt} {params}\r\n")?;
        }
        if let Some(p) = self.ptime {
            write!(f, "a=ptime:{p}\r\n")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_attr())?;
        }
        if let Some(port) = self.rtcp_port {
            match &self.rtcp_addr {
                Some(a) => write!(f, "a=rtcp:{port} IN {} {a}\r\n", if a.is_ipv6() { "IP6" } else { "IP4" })?,
                None => write!(f, "a=rtcp:{port}\r\n")?,
            }
        }
        for c in &self.crypto {
            write!(f, "a=crypto:{c}\r\n")?;
        }
        for (name, value) in &self.attributes {
            write_attr(f, name, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const BARESIP: &str = "v=0\r\n\
o=- 3907364719 3907364720 IN IP4 192.168.1.50\r\n\
s=-\r\n\
c=IN IP4 192.168.1.50\r\n\
t=0 0\r\n\
m=audio 10388 RTP/AVP 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:1795362838 cname:a1b2c3d4-e5f6\r\n\
a=ptime:20\r\n";

    // Linphone 5 style: session-level ICE/RTCP-XR attributes, static PTs without rtpmap,
    // three telephone-event rates, rtcp port and candidates.
    const LINPHONE: &str = "v=0\n\
o=alice 3012 2394 IN IP4 192.168.0.17\n\
s=Talk\n\
c=IN IP4 192.168.0.17\n\
t=0 0\n\
a=ice-pwd:31ec21eb38b2ec6d36e8dc7b\n\
a=ice-ufrag:95e02fca\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\n\
a=record:off\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\n\
a=rtpmap:96 opus/48000/2\n\
a=fmtp:96 useinbandfec=1\n\
a=rtpmap:97 speex/16000\n\
a=fmtp:97 vbr=on\n\
a=rtpmap:98 speex/8000\n\
a=fmtp:98 vbr=on\n\
a=fmtp:18 annexb=yes\n\
a=rtpmap:101 telephone-event/48000\n\
a=rtpmap:99 telephone-event/16000\n\
a=rtpmap:100 telephone-event/8000\n\
a=rtcp:7079\n\
a=candidate:1 1 UDP 2130706303 192.168.0.17 7078 typ host\n\
a=candidate:1 2 UDP 2130706302 192.168.0.17 7079 typ host\n\
a=rtcp-fb:* trr-int 1000\n\
a=rtcp-fb:* ccm tmmbr\n";

    #[test]
    fn parses_baresip_offer() {
        let sd = SessionDescription::parse(BARESIP).unwrap();
        assert_eq!(sd.origin_user, "-");
        assert_eq!(sd.session_id, 3907364719);
        assert_eq!(sd.session_version, 3907364720);
        assert_eq!(sd.origin_addr, "192.168.1.50");
        assert_eq!(sd.connection, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 50))));
        assert_eq!(sd.media.len(), 1);
        let m = &sd.media[0];
        assert_eq!(m.kind, "audio");
        assert_eq!(m.port, 10388);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.payload_types, vec![0, 8, 101]);
        assert_eq!(m.rtpmaps.len(), 3);
        assert_eq!(m.rtpmaps[2], RtpMap { pt: 101, encoding: "telephone-event".into(), clock_rate: 8000, channels: 1 });
        assert_eq!(m.fmtp(101), Some("0-15"));
        assert_eq!(m.ptime, Some(20));
        assert_eq!(m.direction, Some(Direction::SendRecv));
        assert_eq!(m.other_lines, vec![('b', "AS:64".to_string())]);
        assert_eq!(m.attribute("label"), Some("1"));
        assert_eq!(m.attribute("rtcp-rsize"), Some(""));
        assert_eq!(m.attribute("ssrc"), Some("1795362838 cname:a1b2c3d4-e5f6"));
        assert_eq!(m.connection, None);
    }

    #[test]
    fn parses_linphone_offer() {
        let sd = SessionDescription::parse(LINPHONE).unwrap();
        assert_eq!(sd.origin_user, "alice");
        assert_eq!(sd.session_id, 3012);
        assert_eq!(sd.session_version, 2394);
        assert_eq!(sd.session_name, "Talk");
        assert_eq!(sd.attribute("ice-ufrag"), Some("95e02fca"));
        assert_eq!(sd.attribute("record"), Some("off"));
        assert_eq!(sd.attributes.len(), 4);
        let m = sd.audio().unwrap();
        assert_eq!(m.port, 7078);
        assert_eq!(m.payload_types, vec![96, 97, 98, 0, 8, 18, 101, 99, 100]);
        assert_eq!(m.rtpmaps.len(), 6);
        let opus = m.rtpmap(96).unwrap();
        assert_eq!((opus.encoding.as_str(), opus.clock_rate, opus.channels), ("opus", 48000, 2));
        assert_eq!(m.rtpmap(0).unwrap().encoding, "PCMU");
        assert_eq!(m.rtpmap(8).unwrap().encoding, "PCMA");
        assert_eq!(m.rtpmap(18).unwrap().encoding, "G729");
        assert_eq!(m.rtpmap(99).unwrap().clock_rate, 16000);
        assert_eq!(m.rtpmap(42), None);
        assert_eq!(m.fmtp(18), Some("annexb=yes"));
        assert_eq!(m.fmtps.len(), 4);
        assert_eq!(m.rtcp_port, Some(7079));
        assert_eq!(m.direction, None);
        assert_eq!(m.ptime, None);
        assert_eq!(m.attributes.iter().filter(|(n, _)| n == "candidate").count(), 2);
        assert_eq!(m.attributes.iter().filter(|(n, _)| n == "rtcp-fb").count(), 2);
    }

    #[test]
    fn display_emits_crlf_and_round_trips() {
        for text in [BARESIP, LINPHONE] {
            let sd = SessionDescription::parse(text).unwrap();
            let out = sd.to_string();
            assert!(out.ends_with("\r\n"));
            assert!(!out.replace("\r\n", "").contains('\n'), "bare LF in {out:?}");
            assert_eq!(SessionDescription::parse(&out).unwrap(), sd);
        }
        let out = SessionDescription::parse(BARESIP).unwrap().to_string();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0], "v=0");
        assert_eq!(lines[1], "o=- 3907364719 3907364720 IN IP4 192.168.1.50");
        assert_eq!(lines[2], "s=-");
        assert_eq!(lines[3], "c=IN IP4 192.168.1.50");
        assert_eq!(lines[4], "t=0 0");
        assert_eq!(lines[5], "m=audio 10388 RTP/AVP 0 8 101");
        assert_eq!(lines[6], "b=AS:64");
        assert_eq!(lines[7], "a=rtpmap:0 PCMU/8000");
        assert_eq!(lines[10], "a=fmtp:101 0-15");
        assert_eq!(lines[11], "a=ptime:20");
        assert_eq!(lines[12], "a=sendrecv");
    }

    #[test]
    fn opus_rtpmap_keeps_channels_and_ordering_of_session_lines() {
        let sd = SessionDescription::parse(LINPHONE).unwrap();
        let out = sd.to_string();
        assert!(out.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(out.contains("a=rtpmap:97 speex/16000\r\n"));
        assert!(out.contains("a=rtcp:7079\r\n"));
        let t = out.find("t=0 0").unwrap();
        let ice = out.find("a=ice-pwd").unwrap();
        let m = out.find("m=audio").unwrap();
        assert!(t < ice && ice < m);
    }

    #[test]
    fn lenient_on_order_whitespace_and_line_ends() {
        let text = "\n  v=0 \r\ns=x\r\nt=0 0\nc=IN IP4 10.0.0.1\r\no=bob 1 2 IN IP4 10.0.0.1\n\n\
                    m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000 \r\na=ptime:20.0\r\na=recvonly";
        let sd = SessionDescription::parse(text).unwrap();
        assert_eq!(sd.origin_user, "bob");
        assert_eq!(sd.session_version, 2);
        assert_eq!(sd.connection, Some("10.0.0.1".parse().unwrap()));
        let m = &sd.media[0];
        assert_eq!(m.payload_types, vec![8]);
        assert_eq!(m.ptime, Some(20));
        assert_eq!(m.direction, Some(Direction::RecvOnly));
    }

    #[test]
    fn unspecified_connection_is_kept() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
                    m=audio 4000 RTP/AVP 0\r\n";
        let sd = SessionDescription::parse(text).unwrap();
        assert_eq!(sd.connection, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(sd.to_string().contains("c=IN IP4 0.0.0.0\r\n"));
    }

    #[test]
    fn media_level_connection_ipv6_and_session_direction() {
        let text = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\n\
                    m=audio 4000 RTP/AVP 0\r\nc=IN IP6 2001:db8::5\r\nm=video 0 RTP/AVP 96\r\n\
                    m=image 0 udptl t38\r\n";
        let sd = SessionDescription::parse(text).unwrap();
        assert_eq!(sd.direction, Some(Direction::SendOnly));
        assert_eq!(sd.media[0].connection, Some("2001:db8::5".parse().unwrap()));
        assert_eq!(sd.media[1].kind, "video");
        assert_eq!(sd.media[1].port, 0);
        assert_eq!(sd.media[2].other_formats, vec!["t38".to_string()]);
        let out = sd.to_string();
        assert!(out.contains("o=- 1 1 IN IP6 ::1\r\n"));
        assert!(out.contains("c=IN IP6 2001:db8::5\r\n"));
        assert!(out.contains("m=image 0 udptl t38\r\n"));
        assert_eq!(SessionDescription::parse(&out).unwrap(), sd);
    }

    #[test]
    fn multicast_connection_strips_ttl() {
        let sd = SessionDescription::parse("o=- 1 1 IN IP4 1.2.3.4\nc=IN IP4 224.2.1.1/127/3\n").unwrap();
        assert_eq!(sd.connection, Some("224.2.1.1".parse().unwrap()));
    }

    #[test]
    fn errors_on_garbage() {
        assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
        assert_eq!(SessionDescription::parse(" \r\n\r\n"), Err(SdpError::Empty));
        assert_eq!(SessionDescription::parse("hello world"), Err(SdpError::Malformed { line: 1 }));
        assert_eq!(SessionDescription::parse("v=0\r\nxx=1\r\n"), Err(SdpError::Malformed { line: 2 }));
        assert_eq!(SessionDescription::parse("v=1\r\n"), Err(SdpError::Version("1".into())));
        assert_eq!(SessionDescription::parse("v=0\r\ns=-\r\n"), Err(SdpError::Missing('o')));
        let base = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n";
        for bad in [
            "o=- x 1 IN IP4 1.2.3.4",
            "o=- 1",
            "c=IN IP4 not-an-ip",
            "c=IN",
            "m=audio",
            "m=audio 99999 RTP/AVP 0",
            "m=audio 4000 RTP/AVP PCMU",
            "m=audio 4000 RTP/AVP 200",
            "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU",
            "m=audio 4000 RTP/AVP 0\r\na=rtpmap:x PCMU/8000",
            "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/0",
            "m=audio 4000 RTP/AVP 0\r\na=ptime:abc",
            "m=audio 4000 RTP/AVP 0\r\na=rtcp:port",
            "a=:x",
        ] {
            let text = format!("{base}{bad}\r\n");
            assert!(matches!(SessionDescription::parse(&text), Err(SdpError::Invalid { .. })), "accepted {bad:?}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(4566);
        let alphabet = b"vosctmab=: /\r\n0123456789.RTPAVIN4audio";
        for _ in 0..20_000 {
            let len = rng.random_range(0..120);
            let bytes: Vec<u8> =
                (0..len)
                    .map(|_| {
                        if rng.random_bool(0.8) { alphabet[rng.random_range(0..alphabet.len())] } else { rng.random() }
                    })
                    .collect();
            let _ = SessionDescription::parse(&String::from_utf8_lossy(&bytes));
        }
        // Mutations of a valid body, truncated at every byte.
        for cut in 0..LINPHONE.len() {
            if LINPHONE.is_char_boundary(cut) {
                let _ = SessionDescription::parse(&LINPHONE[..cut]);
            }
        }
    }
}
