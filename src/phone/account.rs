//! Account settings the engine needs (the config file and the CLI flags map onto this).

use crate::sip::transport::{Peer, Transport};
use std::net::SocketAddr;

/// One SIP account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Address of record, e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Display name shown to others.
    pub display_name: Option<String>,
    /// Digest user name (usually the AOR user).
    pub auth_user: String,
    /// Digest password; `None` means requests are sent without credentials.
    pub password: Option<String>,
    /// Transport for signalling.
    pub transport: Transport,
    /// Where every out-of-dialog request goes (outbound proxy or the registrar), resolved.
    pub outbound: Option<SocketAddr>,
    /// Whether to REGISTER at start.
    pub register: bool,
    /// Requested registration lifetime in seconds.
    pub expires: u32,
    /// Answer incoming calls at once (automation, tests).
    pub auto_answer: bool,
    /// Park service URI (`sip:park@DOMAIN` by default).
    pub park_uri: Option<String>,
    /// Interval of OPTIONS keepalives on UDP, 0 = off.
    pub keepalive_secs: u64,
    /// Park by transferring the call to this extension (Asterisk `700`, FreeSWITCH valet
    /// style) instead of asking the Orbit park service; `None` = the park service.
    pub park_extension: Option<String>,
    /// With `park_extension`: an attended transfer (hold, call the extension so the user
    /// hears the slot, then Park again completes) instead of a blind one.
    pub park_attended: bool,
}

impl Account {
    /// An account for `aor` with the defaults: UDP, no outbound proxy, no registration,
    /// no password, ten-minute registrations, no keepalive, default park URI.
    pub fn new(aor: &str) -> Self {
        Account {
            aor: aor.to_string(),
            display_name: None,
            auth_user: uri_user(aor).unwrap_or_default(),
            password: None,
            transport: Transport::Udp,
            outbound: None,
            register: false,
            expires: 600,
            auto_answer: false,
            park_uri: None,
            keepalive_secs: 0,
            park_extension: None,
            park_attended: false,
        }
    }

    /// The user part of the AOR.
    pub fn user(&self) -> String {
        uri_user(&self.aor).unwrap_or_else(|| self.auth_user.clone())
    }

    /// The host part of the AOR (the SIP domain).
    pub fn domain(&self) -> String {
        uri_hostport(&self.aor).unwrap_or_default()
    }

    /// The next hop for out-of-dialog requests as a transport peer.
    pub fn outbound_peer(&self) -> Option<Peer> {
        self.outbound.map(|addr| Peer { transport: self.transport, addr })
    }

    /// Our From/To name-addr.
    pub fn name_addr(&self) -> String {
        match &self.display_name {
            Some(n) => format!("\"{}\" <{}>", n.replace('"', ""), self.aor),
            None => format!("<{}>", self.aor),
        }
    }

    /// Complete what the user typed into a request URI: a full URI stays, a bare
    /// number or name gets the account's domain (`7001` → `sip:7001@example.com`).
    pub fn complete_target(&self, target: &str) -> String {
        let t = target.trim();
        if t.starts_with("sip:") || t.starts_with("sips:") {
            t.to_string()
        } else if let Some(num) = t.strip_prefix("tel:") {
            format!("sip:{}@{};user=phone", num.replace(['-', ' ', '.', '(', ')'], ""), self.domain())
        } else if t.contains('@') {
            format!("sip:{t}")
        } else {
            format!("sip:{t}@{}", self.domain())
        }
    }
}

pub use crate::sip::uri::{uri_hostport, uri_socket_addr, uri_user};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_targets() {
        let a = Account::new("sip:alice@127.0.0.1:5080");
        assert_eq!(a.complete_target("7001"), "sip:7001@127.0.0.1:5080");
        assert_eq!(a.complete_target("bob@x.org"), "sip:bob@x.org");
        assert_eq!(a.complete_target("sip:bob@x.org;transport=tcp"), "sip:bob@x.org;transport=tcp");
        assert_eq!(a.complete_target("tel:+1-555-0100"), "sip:+15550100@127.0.0.1:5080;user=phone");
        assert_eq!(uri_user("sip:bob@x:5060;transport=tcp").as_deref(), Some("bob"));
        assert_eq!(
            uri_socket_addr("sip:bob@127.0.0.1:5062;transport=tcp", 5060),
            Some("127.0.0.1:5062".parse().unwrap())
        );
        assert_eq!(uri_socket_addr("sip:bob@127.0.0.1", 5060), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(uri_socket_addr("sip:bob@example.com", 5060), None);
    }
}
