//! Transport-level addressing and stream framing, shared by the sans-IO layers and the driver.

use std::fmt;
use std::net::SocketAddr;

/// Which SIP transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Datagrams; the transaction layer retransmits.
    Udp,
    /// A TCP connection; reliable, no retransmissions.
    Tcp,
    /// TLS over TCP; reliable, `sips:`-capable.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (RFC 3261 §17: no retransmission timers).
    pub fn reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
    /// The token used in Via (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
    /// The `transport=` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
    /// Parse `udp`/`tcp`/`tls` (any case).
    pub fn parse(s: &str) -> Option<Transport> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

/// A remote party at the transport level: where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport used.
    pub transport: Transport,
    /// Remote socket address.
    pub addr: SocketAddr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// Cuts SIP messages out of a byte stream (TCP/TLS) by their Content-Length, and skips
/// CRLF keepalives (RFC 5626 §3.5.1). One bad frame never poisons the connection: the
/// framer resynchronises at the next blank line.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

/// What the framer found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message.
    Message(Vec<u8>),
    /// A double-CRLF keepalive ping, which deserves a single-CRLF pong.
    Ping,
    /// A single CRLF pong.
    Pong,
}

impl StreamFramer {
    /// Append received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Next complete frame, if one is buffered. A header block without a usable
    /// Content-Length is handed up whole (the parser will reject it with a 400).
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Some(Frame::Ping);
        }
        if self.buf.starts_with(b"\r\n") && (self.buf.len() == 2 || self.buf[2] != b'\r') {
            self.buf.drain(..2);
            return Some(Frame::Pong);
        }
        if self.buf.starts_with(b"\r") && self.buf.len() < 4 {
            return None;
        }
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = &self.buf[..end];
        let content_length = String::from_utf8_lossy(head)
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                let name = name.trim();
                (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        let total = end + 4 + content_length.min(super::message::MAX_MESSAGE_SIZE);
        if self.buf.len() < total {
            return None;
        }
        Some(Frame::Message(self.buf.drain(..total).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_messages_and_keepalives() {
        let mut f = StreamFramer::default();
        let m1 = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc".to_vec();
        let mut data = b"\r\n\r\n".to_vec();
        data.extend_from_slice(&m1);
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(&m1[..10]);
        f.push(&data);
        assert_eq!(f.next_frame(), Some(Frame::Ping));
        assert_eq!(f.next_frame(), Some(Frame::Message(m1.clone())));
        assert_eq!(f.next_frame(), Some(Frame::Pong));
        assert_eq!(f.next_frame(), None);
        f.push(&m1[10..]);
        assert_eq!(f.next_frame(), Some(Frame::Message(m1)));
    }
}
