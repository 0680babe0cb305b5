//! Small SIP URI helpers on plain strings (user, host:port, socket address).

use std::net::SocketAddr;

/// User part of a SIP URI.
pub fn uri_user(uri: &str) -> Option<String> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    Some(user.split(';').next().unwrap_or(user).to_string())
}

/// host[:port] of a SIP URI.
pub fn uri_hostport(uri: &str) -> Option<String> {
    let rest = uri.split_once(':')?.1;
    let after_user = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Some(after_user.split([';', '?', '>']).next().unwrap_or(after_user).to_string())
}

/// A socket address if the URI's host is an IP literal.
pub fn uri_socket_addr(uri: &str, default_port: u16) -> Option<SocketAddr> {
    let hp = uri_hostport(uri)?;
    if let Ok(sa) = hp.parse::<SocketAddr>() {
        return Some(sa);
    }
    let ip: std::net::IpAddr = hp.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, default_port))
}
