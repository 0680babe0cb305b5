//! The SIP trace for support: the driver records every SIP message it sends and receives
//! (with the time and the peer) in a bounded ring, so memory stays flat however long the
//! phone runs. The window's "SIP trace" reads it; `trace` on the CLI prints it as an event.
//! Keepalives (CRLF) are not messages and are not recorded.

use crate::phone::api::TraceMessage;
use crate::sip::transport::Peer;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many messages the trace keeps by default (a few calls' worth).
pub const TRACE_LEN: usize = 300;

/// Longest message text kept (a message with a large body is cut, and says so).
const TEXT_MAX: usize = 16 * 1024;

/// A bounded ring of the last SIP messages, shared between the driver (writes) and a
/// face (reads a copy). The lock is held only to push or clone.
#[derive(Debug, Clone)]
pub struct SipTrace {
    ring: Arc<Mutex<VecDeque<TraceMessage>>>,
    cap: usize,
}

impl Default for SipTrace {
    fn default() -> Self {
        SipTrace::new(TRACE_LEN)
    }
}

impl SipTrace {
    /// An empty trace keeping at most `cap` messages.
    pub fn new(cap: usize) -> SipTrace {
        SipTrace { ring: Arc::new(Mutex::new(VecDeque::with_capacity(cap.min(1024)))), cap: cap.max(1) }
    }

    /// Record one message at `at` (Unix seconds); whitespace-only data (keepalives) is skipped.
    pub fn record(&self, at: f64, sent: bool, peer: Peer, bytes: &[u8]) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(TEXT_MAX)]).into_owned();
        if bytes.len() > TEXT_MAX {
            text.push_str(&format!("\n[… {} more bytes not kept]", bytes.len() - TEXT_MAX));
        }
        let msg = TraceMessage {
            at,
            direction: if sent { "sent" } else { "received" },
            peer: format!("{}:{}", peer.transport, peer.addr),
            text,
        };
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == self.cap {
            ring.pop_front();
        }
        ring.push_back(msg);
    }

    /// A copy of the messages, oldest first.
    pub fn snapshot(&self) -> Vec<TraceMessage> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// How many messages are kept now.
    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The first line of a message (`REGISTER sip:x SIP/2.0`, `SIP/2.0 200 OK`).
pub fn first_line(msg: &TraceMessage) -> &str {
    msg.text.lines().next().unwrap_or_default().trim()
}

/// The whole trace as text for a support ticket: a header line per message with the
/// time (UTC, `HH:MM:SS.mmm`), the direction and the peer, then the message.
pub fn as_text(messages: &[TraceMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        let arrow = if m.direction == "sent" { "sent to" } else { "received from" };
        out.push_str(&format!("----- {} {arrow} {}\n", clock_text(m.at), m.peer));
        out.push_str(m.text.trim_end());
        out.push_str("\n\n");
    }
    out
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time.
pub fn clock_text(at: f64) -> String {
    let ms = (at * 1000.0).round() as i64;
    let day_ms = ms.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", day_ms / 3_600_000, (day_ms / 60_000) % 60, (day_ms / 1000) % 60, day_ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::Transport;

    fn peer() -> Peer {
        Peer { transport: Transport::Udp, addr: "127.0.0.1:5060".parse().unwrap() }
    }

    #[test]
    fn ring_is_bounded_and_keeps_the_newest() {
        let t = SipTrace::new(3);
        for i in 0..5 {
            t.record(i as f64, i % 2 == 0, peer(), format!("OPTIONS sip:{i}@x SIP/2.0\r\n\r\n").as_bytes());
        }
        t.record(9.0, false, peer(), b"\r\n\r\n");
        let msgs = t.snapshot();
        assert_eq!(msgs.len(), 3);
        assert_eq!(first_line(&msgs[0]), "OPTIONS sip:2@x SIP/2.0");
        assert_eq!(first_line(&msgs[2]), "OPTIONS sip:4@x SIP/2.0");
        assert_eq!(msgs[2].direction, "sent");
        assert_eq!(msgs[2].peer, "udp:127.0.0.1:5060");
    }

    #[test]
    fn huge_messages_are_cut_and_text_reads_well() {
        let t = SipTrace::new(10);
        let mut big = b"MESSAGE sip:a@x SIP/2.0\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 20_000));
        t.record(3_723.5, false, peer(), &big);
        let m = &t.snapshot()[0];
        assert!(m.text.len() < 17_000 && m.text.ends_with("more bytes not kept]"));
        let text = as_text(&t.snapshot());
        assert!(text.starts_with("----- 01:02:03.500 received from udp:127.0.0.1:5060\nMESSAGE sip:a@x"), "{text}");
    }

    /// A real phone registering with the built-in registrar (`serve`) on loopback:
    /// the trace holds the REGISTER and its 200, and `trace` reports the same.
    #[test]
    fn after_registration_the_trace_has_register_and_200() {
        use crate::net::phone_driver::{self, PhoneConfig};
        use crate::net::serve;
        use crate::phone::{Command, Event, account::Account};
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let ip = std::net::IpAddr::from([127, 0, 0, 1]);
            let listen = std::net::UdpSocket::bind((ip, 0)).unwrap().local_addr().unwrap();
            let park = serve::local_park_config(&listen.to_string(), ip, serve::demo_accounts());
            let server = serve::start(listen, park).await.unwrap();
            let account = Account {
                password: server.accounts.get("me").cloned(),
                outbound: Some(server.registrar),
                register: true,
                ..Account::new(&format!("sip:me@{}", server.registrar))
            };
            let cfg = PhoneConfig {
                account,
                listen: "127.0.0.1:0".parse().unwrap(),
                ca_file: None,
                audio: Default::default(),
            };
            let mut phone = phone_driver::start(cfg).await.unwrap();
            let mut wait = async |what: &str, pred: &dyn Fn(&Event) -> bool| loop {
                let ev = tokio::time::timeout(std::time::Duration::from_secs(10), phone.events.recv())
                    .await
                    .unwrap_or_else(|_| panic!("no {what}"))
                    .expect("engine stopped");
                if pred(&ev) {
                    return ev;
                }
            };
            wait("registration", &|e| matches!(e, Event::Registered { .. })).await;
            phone.commands.send(Command::Trace).await.unwrap();
            let Event::SipTrace { messages } = wait("trace", &|e| matches!(e, Event::SipTrace { .. })).await else {
                unreachable!()
            };
            let register =
                messages.iter().position(|m| m.direction == "sent" && first_line(m).starts_with("REGISTER "));
            let ok = messages.iter().position(|m| {
                m.direction == "received" && first_line(m).starts_with("SIP/2.0 200") && m.text.contains("REGISTER")
            });
            assert!(register.is_some() && ok.is_some() && register < ok, "{}", as_text(&messages));
            assert_eq!(messages[ok.unwrap()].peer, format!("udp:{}", server.registrar));
            assert_eq!(phone.trace.snapshot().len(), messages.len());
            let line = serde_json::to_string(&Event::SipTrace { messages: messages[..1].to_vec() }).unwrap();
            assert!(line.starts_with(r#"{"event":"sip_trace","messages":[{"at":"#), "{line}");
        });
    }
}
