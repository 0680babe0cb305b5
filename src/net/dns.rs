//! Finding a SIP server by DNS (RFC 3263, simplified): SRV (RFC 2782) then A/AAAA.
//!
//! Two layers:
//! - sans-IO: [`build_query`] and [`parse_response`] build and parse RFC 1035 messages.
//!   The parser is bounds-checked everywhere, follows name compression pointers only
//!   backwards and at most [`MAX_POINTER_HOPS`] times, and never panics on garbage.
//! - I/O: [`resolve_sip`] sends UDP queries (2 s timeout, one retry) to a name server (the
//!   first `nameserver` of /etc/resolv.conf unless one is given) and returns the addresses
//!   to try, in order.
//!
//! What it does not do: NAPTR (transport selection), TCP fallback on truncated answers
//! (reported as an error), EDNS, and use of the additional section (every SRV target gets
//! its own A/AAAA queries).

use crate::sip::transport::Transport;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Record type A (RFC 1035).
pub const TYPE_A: u16 = 1;
/// Record type CNAME (RFC 1035).
pub const TYPE_CNAME: u16 = 5;
/// Record type AAAA (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
/// Record type SRV (RFC 2782).
pub const TYPE_SRV: u16 = 33;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// How long one UDP attempt waits for the answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts per query (the first try plus one retry).
pub const QUERY_ATTEMPTS: u32 = 2;
/// Most compression pointers followed while reading one name.
pub const MAX_POINTER_HOPS: usize = 32;
/// Longest name on the wire (RFC 1035 §2.3.4), length octets included.
pub const MAX_NAME_OCTETS: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_OCTETS: usize = 63;
/// Most CNAMEs followed for one A/AAAA lookup.
const MAX_CNAME_HOPS: usize = 8;

const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const HEADER_LEN: usize = 12;

/// One resource record of the answer section (types we understand only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, without the trailing dot (`.` for the root).
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// Type-specific data.
    pub data: RecordData,
}

/// The data of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Canonical name the owner is an alias of.
    Cname(String),
    /// Service location.
    Srv(Srv),
}

/// An SRV record's data (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of the same priority.
    pub weight: u16,
    /// Port of the service on the target.
    pub port: u16,
    /// Target host (`.` = the service is decidedly not available at this domain).
    pub target: String,
}

/// Why a DNS message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Not a well-formed DNS message.
    #[error("malformed DNS message: {0}")]
    Malformed(&'static str),
    /// A message for another query.
    #[error("DNS answer has id {got:#06x}, expected {expected:#06x}")]
    IdMismatch { expected: u16, got: u16 },
    /// A query, not a response.
    #[error("DNS message is not a response")]
    NotResponse,
    /// The answer did not fit a UDP datagram (TC bit); we do not retry over TCP.
    #[error("DNS answer truncated (TC bit set; DNS over TCP is not supported)")]
    Truncated,
    /// NXDOMAIN: the name does not exist.
    #[error("no such domain (NXDOMAIN)")]
    NameError,
    /// Any other non-zero RCODE (SERVFAIL, REFUSED, ...).
    #[error("DNS server error {} ({})", .0, rcode_name(*.0))]
    Server(u8),
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "unknown RCODE",
    }
}

/// A standard recursive query (RD set) for `name` of type `qtype`, class IN.
///
/// `name` is a dotted host name (a trailing dot is allowed). Names that [`check_name`]
/// refuses are encoded as best we can (empty labels dropped, labels cut at 63 octets)
/// so this never fails; callers check names first.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1, AN/NS/AR 0
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(MAX_LABEL_OCTETS)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Whether `name` can be put in a query: ASCII, non-empty labels of at most 63 octets,
/// at most 255 octets on the wire, no presentation-format escapes.
pub fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty host name".into());
    }
    if !trimmed.is_ascii() {
        return Err(format!("{name:?} is not an ASCII host name (use its punycode form)"));
    }
    if trimmed.contains(['\\', ' ']) || trimmed.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!("{name:?} is not a host name"));
    }
    if trimmed.split('.').any(|l| l.is_empty() || l.len() > MAX_LABEL_OCTETS) {
        return Err(format!("{name:?} has an empty label or one longer than 63 characters"));
    }
    if trimmed.len() + 2 > MAX_NAME_OCTETS {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    Ok(())
}

/// Parse the response to query `id` and return the answer-section records of the types
/// we understand (SRV, A, AAAA, CNAME; class IN). Other records are skipped, after their
/// bounds have been checked. NXDOMAIN, a truncated answer and server errors are errors;
/// "no such record" (NOERROR with no answers) is an empty list.
pub fn parse_response(buf: &[u8], id: u16) -> Result<Vec<Record>, DnsError> {
    let msg = parse_message(buf, id)?;
    match msg.rcode {
        0 => Ok(msg.answers),
        3 => Err(DnsError::NameError),
        r => Err(DnsError::Server(r)),
    }
}

/// A response, before its RCODE is judged.
#[derive(Debug)]
struct Message {
    rcode: u8,
    questions: Vec<(String, u16)>,
    answers: Vec<Record>,
}

fn parse_message(buf: &[u8], id: u16) -> Result<Message, DnsError> {
    let mut r = Reader { buf, pos: 0 };
    let got = r.u16()?;
    let flags = r.u16()?;
    let qdcount = r.u16()?;
    let ancount = r.u16()?;
    let _nscount = r.u16()?;
    let _arcount = r.u16()?;
    if got != id {
        return Err(DnsError::IdMismatch { expected: id, got });
    }
    if flags & FLAG_QR == 0 {
        return Err(DnsError::NotResponse);
    }
    if (flags >> 11) & 0xF != 0 {
        return Err(DnsError::Malformed("opcode is not QUERY"));
    }
    if flags & FLAG_TC != 0 {
        return Err(DnsError::Truncated);
    }
    let rcode = (flags & 0xF) as u8;
    let mut questions = Vec::new();
    for _ in 0..qdcount {
        let name = r.name()?;
        let qtype = r.u16()?;
        let _qclass = r.u16()?;
        questions.push((name, qtype));
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let name = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        let ttl = r.u32()?;
        let rdlen = usize::from(r.u16()?);
        let start = r.pos;
        let end = start
            .checked_add(rdlen)
            .filter(|&e| e <= buf.len())
            .ok_or(DnsError::Malformed("record data runs past the end"))?;
        r.pos = end;
        if class != CLASS_IN {
            continue;
        }
        let rdata = &buf[start..end];
        let data = match rtype {
            TYPE_A => RecordData::A(Ipv4Addr::from(
                <[u8; 4]>::try_from(rdata).map_err(|_| DnsError::Malformed("A record is not 4 octets"))?,
            )),
            TYPE_AAAA => RecordData::Aaaa(Ipv6Addr::from(
                <[u8; 16]>::try_from(rdata).map_err(|_| DnsError::Malformed("AAAA record is not 16 octets"))?,
            )),
            TYPE_CNAME => RecordData::Cname(name_in_rdata(buf, start, end)?),
            TYPE_SRV => {
                let mut d = Reader { buf: rdata, pos: 0 };
                let (priority, weight, port) = (d.u16()?, d.u16()?, d.u16()?);
                let target = name_in_rdata(buf, start + 6, end)?;
                RecordData::Srv(Srv { priority, weight, port, target })
            }
            _ => continue,
        };
        answers.push(Record { name, ttl, data });
    }
    Ok(Message { rcode, questions, answers })
}

/// A name that must lie within `buf[start..end]` (it may point elsewhere in `buf`).
fn name_in_rdata(buf: &[u8], start: usize, end: usize) -> Result<String, DnsError> {
    let (name, after) = read_name(buf, start)?;
    if after > end {
        return Err(DnsError::Malformed("name runs past its record"));
    }
    Ok(name)
}

/// Bounds-checked big-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DnsError> {
        let bytes = self
            .pos
            .checked_add(N)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or(DnsError::Malformed("message ends early"))?;
        self.pos += N;
        <[u8; N]>::try_from(bytes).map_err(|_| DnsError::Malformed("message ends early"))
    }
    fn u16(&mut self) -> Result<u16, DnsError> {
        self.take::<2>().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, DnsError> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    fn name(&mut self) -> Result<String, DnsError> {
        let (name, after) = read_name(self.buf, self.pos)?;
        self.pos = after;
        Ok(name)
    }
}

/// Read the (possibly compressed) name at `pos`; returns it and the position just after
/// it in the record stream. A pointer must point before itself, at most
/// [`MAX_POINTER_HOPS`] pointers are followed and the name may not exceed 255 octets, so
/// a malicious message cannot make this loop.
fn read_name(buf: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut out = String::new();
    let mut octets = 1; // the root label
    let mut after: Option<usize> = None;
    let mut hops = 0;
    loop {
        let len = *buf.get(pos).ok_or(DnsError::Malformed("name runs past the end"))?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = after.unwrap_or(pos + 1);
                if out.is_empty() {
                    out.push('.');
                }
                return Ok((out, end));
            }
            0x00 => {
                let len = usize::from(len);
                let label = buf.get(pos + 1..pos + 1 + len).ok_or(DnsError::Malformed("label runs past the end"))?;
                octets += len + 1;
                if octets > MAX_NAME_OCTETS {
                    return Err(DnsError::Malformed("name longer than 255 octets"));
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos += 1 + len;
            }
            0xC0 => {
                let low = *buf.get(pos + 1).ok_or(DnsError::Malformed("compression pointer runs past the end"))?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                if target >= pos {
                    return Err(DnsError::Malformed("compression pointer does not point backwards"));
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(DnsError::Malformed("too many compression pointers"));
                }
                after.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(DnsError::Malformed("unknown label type")),
        }
    }
}

/// Append a label in presentation format (`.` and `\` escaped, other non-printable
/// octets as `\DDD`).
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            b => out.push_str(&format!("\\{b:03}")),
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.').unwrap_or(a).eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// Order SRV records for trying (RFC 2782): ascending priority; within a priority, a
/// weighted random order where `pick(total)` returns a number in `0..=total` (records of
/// weight 0 come first in the running sum, so they are picked rarely, but can be).
/// With `|_| 0` the order is deterministic: priority, then weight 0 first, then the
/// order given.
pub fn order_srv(mut records: Vec<Srv>, mut pick: impl FnMut(u64) -> u64) -> Vec<Srv> {
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.priority;
        let mut group = vec![first];
        while let Some(r) = rest.next_if(|r| r.priority == priority) {
            group.push(r);
        }
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let n = pick(total).min(total);
            let mut running = 0u64;
            let idx = group
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= n
                })
                .unwrap_or(0);
            out.push(group.remove(idx));
        }
    }
    out
}

/// The first usable `nameserver` line of a resolv.conf text, on port 53.
pub fn parse_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then_some(())?;
        let ip: IpAddr = words.next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

/// The system's name server: the first `nameserver` of /etc/resolv.conf.
pub fn system_nameserver() -> Option<SocketAddr> {
    parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").ok()?)
}

/// Host (name or IP) and optional port of `host`, `host:port`, `[v6]`, `[v6]:port`, `v6`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), Some(sa.port())));
    }
    if let Ok(ip) = s.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(s).parse::<IpAddr>() {
        return Ok((ip.to_string(), None));
    }
    if s.starts_with('[') {
        return Err("bad IPv6 literal".into());
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse::<u16>().map_err(|_| format!("bad port {port:?}"))?;
            Ok((host.to_string(), Some(port)))
        }
        None => Ok((s.to_string(), None)),
    }
}

fn is_localhost(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// The SRV owner name for SIP over `transport` at `domain` (RFC 3263 §4.1).
pub fn srv_name(domain: &str, transport: Transport) -> String {
    let service = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{service}.{}", domain.strip_suffix('.').unwrap_or(domain))
}

/// Where to send SIP for `domain` (a host name or IP literal, optionally with `:port`)
/// over `transport`, best first (RFC 3263 §4.2, simplified; no NAPTR):
/// - an IP literal is used as is (default port 5060, 5061 for TLS);
/// - `host:port`: the host's A then AAAA records, no SRV;
/// - `host`: the SRV records of `_sip._udp.host` / `_sip._tcp.host` / `_sips._tcp.host`,
///   ordered by priority and weight, each target's A/AAAA with the SRV port; without SRV
///   records, the host's own A/AAAA with the default port.
///
/// Queries go to `nameserver`, or to the first `nameserver` of /etc/resolv.conf. Only
/// without a `nameserver` argument is the system resolver (`getaddrinfo`: /etc/hosts...)
/// used as well: when DNS finds no address, or the name server cannot be used.
/// `localhost` names never go to DNS (RFC 6761 §6.3).
pub async fn resolve_sip(
    domain: &str,
    transport: Transport,
    nameserver: Option<SocketAddr>,
) -> Result<Vec<SocketAddr>, String> {
    let cannot = |why: &str| format!("cannot resolve {domain}: {why}");
    let default_port = if transport == Transport::Tls { 5061 } else { 5060 };
    let (host, port) = split_host_port(domain).map_err(|e| cannot(&e))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port.unwrap_or(default_port))]);
    }
    check_name(&host).map_err(|e| cannot(&e))?;
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    let system_allowed = nameserver.is_none();
    if is_localhost(&host) {
        return system_lookup(&host, port.unwrap_or(default_port)).await.map_err(|e| cannot(&e));
    }
    let Some(ns) = nameserver.or_else(system_nameserver) else {
        return system_lookup(&host, port.unwrap_or(default_port))
            .await
            .map_err(|e| cannot(&format!("no nameserver in /etc/resolv.conf, and the system resolver failed: {e}")));
    };
    if let Some(port) = port {
        return match addresses(ns, &host, port, system_allowed).await {
            Ok(addrs) => Ok(addrs),
            Err(why) => Err(cannot(&why.describe("no A/AAAA records"))),
        };
    }

    let srv_owner = srv_name(&host, transport);
    let srvs: Vec<Srv> = match query(ns, &srv_owner, TYPE_SRV).await {
        Ok(records) => {
            let owners = alias_chain(&records, &srv_owner);
            records
                .into_iter()
                .filter(|r| owners.iter().any(|o| same_name(o, &r.name)))
                .filter_map(|r| match r.data {
                    RecordData::Srv(s) => Some(s),
                    _ => None,
                })
                .collect()
        }
        // The name server is unusable: without an explicit one, let the system try.
        Err(e) if system_allowed => {
            tracing::debug!("{srv_owner} SRV: {e}; asking the system resolver for {host}");
            return system_lookup(&host, default_port)
                .await
                .map_err(|se| cannot(&format!("{e}; system resolver: {se}")));
        }
        Err(e) => return Err(cannot(&e)),
    };
    if srvs.is_empty() {
        return match addresses(ns, &host, default_port, system_allowed).await {
            Ok(addrs) => Ok(addrs),
            Err(why) => Err(cannot(&why.describe("no SRV/A records"))),
        };
    }
    let usable: Vec<Srv> = srvs.into_iter().filter(|s| s.target != ".").collect();
    if usable.is_empty() {
        return Err(cannot(&format!("{srv_owner} SRV says there is no SIP service (target \".\")")));
    }
    let ordered = order_srv(usable, |total| rand::random_range(0..=total));
    let mut found: Vec<SocketAddr> = Vec::new();
    let mut problems = Vec::new();
    for srv in &ordered {
        match addresses(ns, &srv.target, srv.port, system_allowed).await {
            Ok(addrs) => {
                tracing::debug!(
                    "{srv_owner} SRV {} {} {}:{} -> {addrs:?}",
                    srv.priority,
                    srv.weight,
                    srv.target,
                    srv.port
                );
                for a in addrs {
                    if !found.contains(&a) {
                        found.push(a);
                    }
                }
            }
            Err(why) => problems.push(format!("{}: {}", srv.target, why.describe("no A/AAAA records"))),
        }
    }
    if found.is_empty() {
        return Err(cannot(&format!("no address for any SRV target ({})", problems.join("; "))));
    }
    Ok(found)
}

/// The system resolver (`getaddrinfo`).
async fn system_lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(|e| e.to_string())?.collect();
    if addrs.is_empty() { Err("no address".into()) } else { Ok(addrs) }
}

/// Why [`addresses`] found nothing.
#[derive(Debug, Default)]
struct NoAddress {
    /// Queries that failed (empty: DNS answered that there are no such records).
    dns: Vec<String>,
    /// The system resolver's error, when it was asked.
    system: Option<String>,
}

impl NoAddress {
    /// `none` ("no A/AAAA records") when DNS answered, else what went wrong; then the
    /// system resolver's error.
    fn describe(&self, none: &str) -> String {
        let head = if self.dns.is_empty() { none.to_string() } else { self.dns.join("; ") };
        match &self.system {
            Some(e) => format!("{head} (system resolver: {e})"),
            None => head,
        }
    }
}

/// A then AAAA addresses of `host` with `port`. With `system_allowed`, the system
/// resolver is asked when DNS gives nothing.
async fn addresses(ns: SocketAddr, host: &str, port: u16, system_allowed: bool) -> Result<Vec<SocketAddr>, NoAddress> {
    let mut why = NoAddress::default();
    if let Err(e) = check_name(host) {
        why.dns.push(e);
        return Err(why);
    }
    let (v4, v6) = tokio::join!(ips(ns, host, TYPE_A), ips(ns, host, TYPE_AAAA));
    let mut addrs = Vec::new();
    for result in [v4, v6] {
        match result {
            Ok(ips) => addrs.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port))),
            Err(e) => why.dns.push(e),
        }
    }
    if !addrs.is_empty() {
        return Ok(addrs);
    }
    if system_allowed {
        match system_lookup(host, port).await {
            Ok(addrs) => return Ok(addrs),
            Err(e) => why.system = Some(e),
        }
    }
    Err(why)
}

/// Addresses of type `qtype` (A or AAAA) of `host`, following CNAMEs.
async fn ips(ns: SocketAddr, host: &str, qtype: u16) -> Result<Vec<IpAddr>, String> {
    let mut qname = host.to_string();
    for _ in 0..MAX_CNAME_HOPS {
        let records = query(ns, &qname, qtype).await?;
        let owners = alias_chain(&records, &qname);
        let ips: Vec<IpAddr> = records
            .iter()
            .filter(|r| owners.iter().any(|o| same_name(o, &r.name)))
            .filter_map(|r| match r.data {
                RecordData::A(ip) if qtype == TYPE_A => Some(IpAddr::V4(ip)),
                RecordData::Aaaa(ip) if qtype == TYPE_AAAA => Some(IpAddr::V6(ip)),
                _ => None,
            })
            .collect();
        let canonical = owners.last().cloned().unwrap_or_default();
        if !ips.is_empty() || same_name(&canonical, &qname) {
            return Ok(ips);
        }
        // An alias whose target the server did not answer for: ask for the target.
        check_name(&canonical)?;
        qname = canonical;
    }
    Err(format!("{host}: more than {MAX_CNAME_HOPS} CNAMEs"))
}

/// `name` and the names it is an alias of, following the CNAMEs in `records`.
fn alias_chain(records: &[Record], name: &str) -> Vec<String> {
    let mut chain = vec![name.to_string()];
    while chain.len() <= records.len() {
        let current = &chain[chain.len() - 1];
        let next = records.iter().find_map(|r| match &r.data {
            RecordData::Cname(target) if same_name(&r.name, current) => Some(target.clone()),
            _ => None,
        });
        match next {
            Some(t) if !chain.iter().any(|c| same_name(c, &t)) => chain.push(t),
            _ => break,
        }
    }
    chain
}

fn type_name(qtype: u16) -> String {
    match qtype {
        TYPE_A => "A".into(),
        TYPE_AAAA => "AAAA".into(),
        TYPE_CNAME => "CNAME".into(),
        TYPE_SRV => "SRV".into(),
        t => format!("TYPE{t}"),
    }
}

/// One query over UDP: [`QUERY_ATTEMPTS`] tries of [`QUERY_TIMEOUT`] each, from a fresh
/// socket (random port) with a random id. Answers for another id or question are
/// ignored. NXDOMAIN is an empty list.
async fn query(ns: SocketAddr, name: &str, qtype: u16) -> Result<Vec<Record>, String> {
    let what = format!("{name} {}", type_name(qtype));
    let local: SocketAddr =
        if ns.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock =
        tokio::net::UdpSocket::bind(local).await.map_err(|e| format!("{what}: cannot open a UDP socket: {e}"))?;
    sock.connect(ns).await.map_err(|e| format!("{what}: cannot reach DNS server {ns}: {e}"))?;
    let id: u16 = rand::random();
    let packet = build_query(id, name, qtype);
    let mut buf = vec![0u8; 65_535];
    let mut last = String::from("no answer");
    for _ in 0..QUERY_ATTEMPTS {
        if let Err(e) = sock.send(&packet).await {
            last = e.to_string();
            continue;
        }
        let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    last = e.to_string();
                    break;
                }
                Ok(Ok(n)) => n,
            };
            let msg = match parse_message(&buf[..n], id) {
                Ok(m) => m,
                Err(DnsError::IdMismatch { .. }) | Err(DnsError::NotResponse) => continue,
                Err(e) => return Err(format!("DNS server {ns} answered {what} with {e}")),
            };
            if !matches!(msg.questions.as_slice(), [(q, t)] if *t == qtype && same_name(q, name)) {
                continue; // an answer to some other question: not ours
            }
            return match msg.rcode {
                0 => Ok(msg.answers),
                3 => Ok(Vec::new()),
                r => Err(format!("DNS server {ns} answered {what} with {}", DnsError::Server(r))),
            };
        }
    }
    let secs = QUERY_TIMEOUT.as_secs();
    Err(format!("DNS server {ns} did not answer {what} ({QUERY_ATTEMPTS} tries, {secs} s each; last: {last})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn query_bytes_match_rfc_1035_by_hand() {
        let q = build_query(0xBEEF, "_sip._udp.example.com", TYPE_SRV);
        let mut want: Vec<u8> = vec![
            0xBE, 0xEF, // ID
            0x01, 0x00, // flags: RD
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // QD=1 AN=0 NS=0 AR=0
        ];
        want.extend_from_slice(b"\x04_sip\x04_udp\x07example\x03com\x00");
        want.extend_from_slice(&[0x00, 0x21, 0x00, 0x01]); // SRV, IN
        assert_eq!(q, want);
        // A trailing dot changes nothing; A is type 1.
        let a = build_query(1, "pbx.example.com.", TYPE_A);
        assert_eq!(&a[12..], b"\x03pbx\x07example\x03com\x00\x00\x01\x00\x01");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("pbx.example.com").is_ok());
        assert!(check_name("pbx.example.com.").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a..b").is_err());
        assert!(check_name(&"x".repeat(64)).is_err());
        assert!(check_name(&["abc"; 64].join(".")).is_err());
        assert!(check_name("bücher.de").is_err());
        assert!(check_name("a b").is_err());
    }

    /// A response to `_sip._udp.example.com SRV` with two SRV answers whose targets are
    /// compressed against the question, an A for one of them, a CNAME and an unknown
    /// type that must be skipped.
    fn hand_built_response() -> Vec<u8> {
        let mut m: Vec<u8> = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0];
        // Question at offset 12: \x04_sip (12) \x04_udp (17) \x07example (22) \x03com (30) \0 (34)
        m.extend_from_slice(b"\x04_sip\x04_udp\x07example\x03com\x00\x00\x21\x00\x01");
        // SRV 10 60 5060 pbx1.example.com  (owner = pointer to 12, target "pbx1" + ptr 22)
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0x0E, 0x10, 0, 13]);
        m.extend_from_slice(&[0, 10, 0, 60, 0x13, 0xC4]);
        let pbx1 = m.len() as u8;
        m.extend_from_slice(b"\x04pbx1\xC0\x16");
        // SRV 20 0 5070 pbx2.example.com
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 13]);
        m.extend_from_slice(&[0, 20, 0, 0, 0x13, 0xCE]);
        m.extend_from_slice(b"\x04pbx2\xC0\x16");
        // pbx1.example.com A 192.0.2.1 (owner = pointer to the SRV target, itself compressed)
        m.extend_from_slice(&[0xC0, pbx1, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        // TXT (type 16) record: skipped.
        m.extend_from_slice(&[0xC0, 22, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, b'h', b'i']);
        // www.example.com CNAME example.com
        m.extend_from_slice(b"\x03www\xC0\x16");
        m.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 22]);
        m
    }

    #[test]
    fn parses_a_hand_built_response_with_compression() {
        let m = hand_built_response();
        let records = parse_response(&m, 0x1234).unwrap();
        let srv = |priority, weight, port, target: &str| Record {
            name: "_sip._udp.example.com".into(),
            ttl: if priority == 10 { 3600 } else { 60 },
            data: RecordData::Srv(Srv { priority, weight, port, target: target.into() }),
        };
        assert_eq!(
            records,
            vec![
                srv(10, 60, 5060, "pbx1.example.com"),
                srv(20, 0, 5070, "pbx2.example.com"),
                Record { name: "pbx1.example.com".into(), ttl: 60, data: RecordData::A(Ipv4Addr::new(192, 0, 2, 1)) },
                Record { name: "www.example.com".into(), ttl: 60, data: RecordData::Cname("example.com".into()) },
            ]
        );
        assert_eq!(parse_response(&m, 0x1235), Err(DnsError::IdMismatch { expected: 0x1235, got: 0x1234 }));
        let msg = parse_message(&m, 0x1234).unwrap();
        assert_eq!(msg.questions, vec![("_sip._udp.example.com".to_string(), TYPE_SRV)]);
        // Every proper prefix is an error, never a panic or a partial success.
        for cut in 0..m.len() {
            assert!(parse_response(&m[..cut], 0x1234).is_err(), "prefix of {cut} bytes parsed");
        }
    }

    #[test]
    fn aaaa_and_flags() {
        let mut m: Vec<u8> = vec![0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03pbx\x00\x00\x1c\x00\x01");
        m.extend_from_slice(&[0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 1, 0, 16]);
        m.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let records = parse_response(&m, 7).unwrap();
        assert_eq!(records[0].data, RecordData::Aaaa(Ipv6Addr::LOCALHOST));
        assert_eq!(records[0].name, "pbx");

        let with_flags = |flags: u16| {
            let mut x = m.clone();
            x[2..4].copy_from_slice(&flags.to_be_bytes());
            parse_response(&x, 7)
        };
        assert_eq!(with_flags(0x8183), Err(DnsError::NameError));
        assert_eq!(with_flags(0x8182), Err(DnsError::Server(2)));
        assert_eq!(with_flags(0x8380), Err(DnsError::Truncated));
        assert_eq!(with_flags(0x0100), Err(DnsError::NotResponse));
        assert!(DnsError::Server(2).to_string().contains("SERVFAIL"));
        // A wrong-length A record is malformed.
        let mut bad = m.clone();
        bad[23..25].copy_from_slice(&TYPE_A.to_be_bytes()); // answer type AAAA -> A, 16 octets
        assert!(matches!(parse_response(&bad, 7), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        let header = [0u8, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        // Pointer to itself.
        let mut m = header.to_vec();
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert!(matches!(parse_response(&m, 1), Err(DnsError::Malformed(_))));
        // Pointer forwards.
        let mut m = header.to_vec();
        m.extend_from_slice(&[0xC0, 14, 0, 0, 1, 0, 1]);
        assert!(matches!(parse_response(&m, 1), Err(DnsError::Malformed(_))));
        // A label followed by a (valid, backward) pointer to that label: a.a.a.a...
        // stopped by the hop limit.
        let mut m = header.to_vec();
        m.extend_from_slice(&[1, b'a', 0xC0, 12, 0, 1, 0, 1]);
        assert!(matches!(parse_response(&m, 1), Err(DnsError::Malformed(_))));
        // The same with a long label: stopped by the 255-octet limit first.
        let mut m = header.to_vec();
        m.push(63);
        m.extend_from_slice(&[b'x'; 63]);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_response(&m, 1), Err(DnsError::Malformed("name longer than 255 octets")));
        // Reserved label types 0x40 / 0x80.
        let mut m = header.to_vec();
        m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert!(matches!(parse_response(&m, 1), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn odd_label_octets_are_escaped() {
        let m = b"\x03a.b\x02\x00\\\x00";
        assert_eq!(read_name(m, 0).unwrap(), (r"a\.b.\000\\".to_string(), m.len()));
        assert_eq!(read_name(b"\x00", 0).unwrap(), (".".to_string(), 1));
    }

    #[test]
    fn srv_order_is_priority_then_weight() {
        let s = |priority, weight, target: &str| Srv { priority, weight, port: 5060, target: target.into() };
        let records = vec![s(20, 10, "c"), s(10, 10, "a"), s(10, 0, "zero"), s(10, 90, "b"), s(30, 0, "d")];
        let targets = |v: Vec<Srv>| v.into_iter().map(|s| s.target).collect::<Vec<_>>();
        // Lowest random value: weight 0 first, then as given.
        assert_eq!(targets(order_srv(records.clone(), |_| 0)), ["zero", "a", "b", "c", "d"]);
        // Highest: the last record reaching the total each time.
        assert_eq!(targets(order_srv(records.clone(), |t| t)), ["b", "a", "zero", "c", "d"]);
        // Out-of-range picks are clamped.
        assert_eq!(targets(order_srv(records.clone(), |t| t + 1000)), ["b", "a", "zero", "c", "d"]);
        // Weighted: b (90) comes first about 9 times in 10 (seeded, so deterministic).
        let mut rng = rand::rngs::StdRng::seed_from_u64(3263);
        let firsts =
            (0..2000).filter(|_| order_srv(records.clone(), |t| rng.random_range(0..=t))[0].target == "b").count();
        assert!((1700..=1900).contains(&firsts), "{firsts}");
        assert!(order_srv(Vec::new(), |_| 0).is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0D15_EA5E);
        let valid = hand_built_response();
        for i in 0..200_000 {
            let buf: Vec<u8> = if i % 2 == 0 {
                let len = rng.random_range(0..600);
                (0..len).map(|_| rng.random()).collect()
            } else {
                // Mutations of a valid response reach much deeper into the parser.
                let mut b = valid.clone();
                for _ in 0..rng.random_range(1..8) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b.truncate(rng.random_range(0..=b.len()));
                b
            };
            let id = u16::from_be_bytes([buf.first().copied().unwrap_or(0), buf.get(1).copied().unwrap_or(0)]);
            let _ = parse_response(&buf, id);
            let _ = parse_response(&buf, id.wrapping_add(1));
        }
    }

    #[test]
    fn resolv_conf_and_host_ports() {
        let conf =
            "# comment\nsearch example.com\nnameserver fe80::1%eth0\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n";
        assert_eq!(parse_resolv_conf(conf), Some("10.0.0.53:53".parse().unwrap()));
        assert_eq!(parse_resolv_conf("nameserver ::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_resolv_conf("domain x"), None);
        assert_eq!(split_host_port("example.com"), Ok(("example.com".into(), None)));
        assert_eq!(split_host_port("example.com:5080"), Ok(("example.com".into(), Some(5080))));
        assert_eq!(split_host_port("192.0.2.1"), Ok(("192.0.2.1".into(), None)));
        assert_eq!(split_host_port("[::1]:5070"), Ok(("::1".into(), Some(5070))));
        assert_eq!(split_host_port("[::1]"), Ok(("::1".into(), None)));
        assert_eq!(split_host_port("::1"), Ok(("::1".into(), None)));
        assert!(split_host_port("example.com:x").is_err());
        assert!(split_host_port("[nope]").is_err());
        assert_eq!(srv_name("example.com.", Transport::Tls), "_sips._tcp.example.com");
        assert_eq!(srv_name("example.com", Transport::Tcp), "_sip._tcp.example.com");
    }

    #[tokio::test]
    async fn literals_need_no_dns() {
        // An unroutable name server proves no query is sent.
        let ns = Some("192.0.2.53:53".parse().unwrap());
        assert_eq!(resolve_sip("192.0.2.1", Transport::Udp, ns).await, Ok(vec!["192.0.2.1:5060".parse().unwrap()]));
        assert_eq!(resolve_sip("192.0.2.1", Transport::Tls, ns).await, Ok(vec!["192.0.2.1:5061".parse().unwrap()]));
        assert_eq!(resolve_sip("[::1]:5080", Transport::Udp, ns).await, Ok(vec!["[::1]:5080".parse().unwrap()]));
        let local = resolve_sip("localhost:5099", Transport::Udp, ns).await.unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 5099), "{local:?}");
        let err = resolve_sip("bad..name", Transport::Udp, ns).await.unwrap_err();
        assert!(err.starts_with("cannot resolve bad..name: "), "{err}");
    }

    /// A one-shot-per-datagram fake server on 127.0.0.1 answering with `reply(query)`.
    fn fake_server(reply: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> SocketAddr {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if let Some(r) = reply(&buf[..n]) {
                    let _ = sock.send_to(&r, from);
                }
            }
        });
        addr
    }

    /// Echo the question with these flags and answer records (already encoded).
    fn respond(query: &[u8], flags: u16, answers: &[Vec<u8>]) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2..4].copy_from_slice(&flags.to_be_bytes());
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for a in answers {
            r.extend_from_slice(a);
        }
        r
    }

    /// An SRV answer (owner = the question) with an uncompressed target.
    fn srv_answer(priority: u16, weight: u16, port: u16, target: &str) -> Vec<u8> {
        let mut rdata = [priority, weight, port].map(u16::to_be_bytes).concat();
        for label in target.split('.').filter(|l| !l.is_empty()) {
            rdata.push(label.len() as u8);
            rdata.extend_from_slice(label.as_bytes());
        }
        rdata.push(0);
        let mut a = vec![0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60];
        a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        a.extend_from_slice(&rdata);
        a
    }

    #[tokio::test]
    async fn srv_targets_in_priority_order_per_transport() {
        let ns = fake_server(|q| {
            let name = read_name(q, 12).ok()?.0;
            let qtype = u16::from_be_bytes([*q.get(q.len() - 4)?, *q.get(q.len() - 3)?]);
            let a = |ip: u8| vec![0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 127, 0, 0, ip];
            let answers = match (name.as_str(), qtype) {
                // TCP: three targets; the best one has no address and is skipped.
                ("_sip._tcp.multi.example.test", TYPE_SRV) => vec![
                    srv_answer(20, 0, 5070, "b.example.test"),
                    srv_answer(10, 0, 5062, "a.example.test"),
                    srv_answer(5, 0, 5064, "gone.example.test"),
                ],
                // UDP: another record, so the transport picks the SRV name.
                ("_sip._udp.multi.example.test", TYPE_SRV) => {
                    vec![srv_answer(1, 0, 5090, "b.example.test")]
                }
                ("_sips._tcp.dot.example.test", TYPE_SRV) => vec![srv_answer(0, 0, 0, "")],
                ("a.example.test", TYPE_A) => vec![a(3)],
                ("b.example.test", TYPE_A) => vec![a(2)],
                _ => return Some(respond(q, 0x8183, &[])),
            };
            Some(respond(q, 0x8180, &answers))
        });
        let tcp = resolve_sip("multi.example.test", Transport::Tcp, Some(ns)).await;
        assert_eq!(tcp, Ok(vec!["127.0.0.3:5062".parse().unwrap(), "127.0.0.2:5070".parse().unwrap()]));
        let udp = resolve_sip("multi.example.test", Transport::Udp, Some(ns)).await;
        assert_eq!(udp, Ok(vec!["127.0.0.2:5090".parse().unwrap()]));
        // An explicit port skips SRV: multi.example.test has no A record.
        let err = resolve_sip("multi.example.test:5060", Transport::Udp, Some(ns)).await.unwrap_err();
        assert_eq!(err, "cannot resolve multi.example.test:5060: no A/AAAA records");
        // Target "." means: no SIP service here (RFC 2782).
        let err = resolve_sip("dot.example.test", Transport::Tls, Some(ns)).await.unwrap_err();
        assert!(err.starts_with("cannot resolve dot.example.test: ") && err.contains("no SIP service"), "{err}");
    }

    #[tokio::test]
    async fn follows_a_cname_and_reports_truncation_and_silence() {
        let ns = fake_server(|q| {
            let name = read_name(q, 12).ok()?.0;
            let qtype = u16::from_be_bytes([*q.get(q.len() - 4)?, *q.get(q.len() - 3)?]);
            match (name.as_str(), qtype) {
                // sip.example.test has no SRV; its A is a CNAME to real.example.test,
                // whose address comes only from a second query.
                ("_sip._udp.sip.example.test", _) => Some(respond(q, 0x8180, &[])),
                ("sip.example.test", TYPE_A) => Some(respond(
                    q,
                    0x8180,
                    &[[&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 7][..], b"\x04real\xC0\x10"].concat()],
                )),
                ("real.example.test", TYPE_A) => {
                    Some(respond(q, 0x8180, &[vec![0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 127, 0, 0, 9]]))
                }
                ("_sip._udp.big.example.test", _) => Some(respond(q, 0x8380, &[])),
                ("_sip._udp.silent.example.test", _) => None,
                _ => Some(respond(q, 0x8183, &[])),
            }
        });
        assert_eq!(
            resolve_sip("sip.example.test", Transport::Udp, Some(ns)).await,
            Ok(vec!["127.0.0.9:5060".parse().unwrap()])
        );
        let err = resolve_sip("big.example.test", Transport::Udp, Some(ns)).await.unwrap_err();
        assert!(err.starts_with("cannot resolve big.example.test: ") && err.contains("truncated"), "{err}");
        let err = resolve_sip("none.example.test", Transport::Udp, Some(ns)).await.unwrap_err();
        assert_eq!(err, "cannot resolve none.example.test: no SRV/A records");
        let t0 = std::time::Instant::now();
        let err = resolve_sip("silent.example.test", Transport::Udp, Some(ns)).await.unwrap_err();
        assert!(err.contains("did not answer") && err.contains("silent.example.test"), "{err}");
        assert!(t0.elapsed() >= QUERY_TIMEOUT * QUERY_ATTEMPTS, "{:?}", t0.elapsed());
    }
}
