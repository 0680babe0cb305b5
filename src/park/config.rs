//! The park service's configuration file (TOML), validated at load.
//!
//! Every error names the key (or orbit range) and the 1-based line it is on:
//! `park.toml line 9: park.timeout_s = 5 is out of range (10..=600)`. Unknown keys are errors.
//! Orbit ranges may not overlap within a file ([`ParkConfig::parse`]) nor across the files of
//! one deployment ([`check_deployment`]); the same files generate the proxy's routing table
//! ([`kamailio_routes`]), so the instances and the proxy cannot disagree about who owns an
//! orbit.
//!
//! ```toml
//! [service]
//! listen = ["udp:127.0.0.1:5099", "tcp:127.0.0.1:5099"]
//! domain = "127.0.0.1"
//! trusted_proxies = ["127.0.0.1:5080"]
//! digest_algorithms = ["SHA-256", "MD5"]
//! [users]
//! alice = "alicepw"
//! [[orbits]]
//! first = "7000"
//! last  = "7099"
//! [park]
//! timeout_s = 90
//! ringback_attempts = 3
//! ringback_ring_s = 20
//! fallback = "sip:operator@127.0.0.1"
//! music = true
//! music_file = "hold.wav"
//! [policy]
//! allow = ["alice", "bob"]
//! [limits]
//! retrieve_attempts_per_minute = 30
//! ```

use super::orbits::OrbitRange;
use crate::sip::digest::Algorithm;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// `park.timeout_s`: allowed values and default.
pub const TIMEOUT_S: RangeInclusive<i64> = 10..=600;
pub const DEFAULT_TIMEOUT_S: u64 = 90;
/// `park.ringback_attempts`: allowed values and default.
pub const RINGBACK_ATTEMPTS: RangeInclusive<i64> = 1..=10;
pub const DEFAULT_RINGBACK_ATTEMPTS: u32 = 3;
/// `park.ringback_ring_s`: allowed values and default.
pub const RINGBACK_RING_S: RangeInclusive<i64> = 5..=120;
pub const DEFAULT_RINGBACK_RING_S: u64 = 20;
/// `service.digest_algorithms` when not given: SHA-256 preferred, MD5 for older phones.
pub const DEFAULT_DIGEST_ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];
/// `limits.retrieve_attempts_per_minute`: allowed values and default (a proxy that sends
/// every user's retrieves from one address needs a high value).
pub const RETRIEVE_ATTEMPTS_PER_MINUTE: RangeInclusive<i64> = 1..=1_000_000;
pub const DEFAULT_RETRIEVE_ATTEMPTS_PER_MINUTE: u32 = 30;

/// A configuration error. Its `Display` is `<file> line N: <message>` when the line is known,
/// else `<file>: <message>`; the message names the key or orbit range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file, as given to `load`/`parse`.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// The dotted key (`park.timeout_s`) or `orbits`, when known.
    pub key: Option<String>,
    /// What is wrong, naming the key or range (without the file/line prefix).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One address the service listens on: `udp:127.0.0.1:5099`, `tcp:[::1]:5099`, `tls:...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// `"udp"`, `"tcp"` or `"tls"` (always lower case).
    pub transport: String,
    pub addr: SocketAddr,
}

impl ListenAddr {
    /// Parses `TRANSPORT:IP:PORT`; the transport is case-insensitive.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((transport, addr)) = s.split_once(':') else {
            return Err(format!("{s:?} is not TRANSPORT:IP:PORT (e.g. \"udp:127.0.0.1:5099\")"));
        };
        let transport = transport.to_ascii_lowercase();
        if !matches!(transport.as_str(), "udp" | "tcp" | "tls") {
            return Err(format!("{s:?} has unknown transport {transport:?}: use udp, tcp or tls"));
        }
        let addr: SocketAddr = addr.parse().map_err(|_| {
            format!("{s:?}: {addr:?} is not IP:PORT (e.g. \"udp:127.0.0.1:5099\" or \"udp:[::1]:5099\")")
        })?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// At least one address.
    pub listen: Vec<ListenAddr>,
    /// Orbit URIs are `sip:ORBIT@domain`.
    pub domain: String,
    /// Requests from these source addresses are authenticated by the proxy (identity from
    /// P-Asserted-Identity, else From).
    pub trusted_proxies: Vec<SocketAddr>,
    /// The digest algorithms offered in challenges, most preferred first (default SHA-256,
    /// then MD5). Clients that only read the first challenge (e.g. sipp 3.6) need `["MD5"]`.
    pub digest_algorithms: Vec<Algorithm>,
}

/// `[park]`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkSettings {
    /// How long a call waits on its orbit before ringing the parker back.
    pub timeout: Duration,
    /// How many times the parker is rung back (1 to 10).
    pub ringback_attempts: u32,
    /// How long each ring-back rings.
    pub ringback_ring: Duration,
    /// Where a call goes when the parker does not answer: a `sip:`/`sips:` URI.
    pub fallback: Option<String>,
    /// Whether parked callers hear music.
    pub music: bool,
    /// Custom music, resolved against the configuration file's directory.
    pub music_file: Option<PathBuf>,
}

impl Default for ParkSettings {
    fn default() -> Self {
        ParkSettings {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
            ringback_attempts: DEFAULT_RINGBACK_ATTEMPTS,
            ringback_ring: Duration::from_secs(DEFAULT_RINGBACK_RING_S),
            fallback: None,
            music: true,
            music_file: None,
        }
    }
}

/// `[policy]`: who may park calls. The default allows nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow_all: bool,
    allow: BTreeSet<String>,
}

impl Policy {
    /// Everyone may park (`allow = ["*"]`).
    pub fn allow_all() -> Self {
        Policy { allow_all: true, allow: BTreeSet::new() }
    }

    /// Nobody may park (`allow = []`, the default).
    pub fn nobody() -> Self {
        Policy::default()
    }

    /// Only these users may park; a `"*"` among them allows everyone.
    pub fn only<I, S>(users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut policy = Policy::default();
        for user in users {
            let user = user.as_ref();
            if user == "*" {
                policy.allow_all = true;
            } else {
                policy.allow.insert(user.to_string());
            }
        }
        policy
    }

    /// Whether `user` may park calls (exact, case-sensitive match of the user name).
    pub fn allows(&self, user: &str) -> bool {
        self.allow_all || self.allow.contains(user)
    }

    /// Whether everyone is allowed.
    pub fn allows_everyone(&self) -> bool {
        self.allow_all
    }

    /// The users named in the allow list (empty when everyone or nobody is allowed).
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.allow.iter().map(String::as_str)
    }
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Retrieve attempts (INVITEs to orbits) accepted per source IP per minute.
    pub retrieve_attempts_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { retrieve_attempts_per_minute: DEFAULT_RETRIEVE_ATTEMPTS_PER_MINUTE }
    }
}

/// A validated park service configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkConfig {
    pub service: ServiceConfig,
    /// Digest credentials for direct clients: user name → password.
    pub users: BTreeMap<String, String>,
    /// One or more non-overlapping ranges, each with the line it was read from.
    pub orbits: Vec<OrbitRange>,
    pub park: ParkSettings,
    pub policy: Policy,
    pub limits: Limits,
    /// The file this configuration came from (`<built-in>` for [`ParkConfig::default_local`]).
    pub path: PathBuf,
    /// Things that load but are probably not what was meant, each `<file> [line N]: ...`.
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// The file as written. Numbers are read as i64 so that out-of-range values get our message.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    service: Option<Spanned<RawService>>,
    users: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    orbits: Option<Spanned<Vec<Spanned<RawRange>>>>,
    park: Option<RawPark>,
    policy: Option<Spanned<RawPolicy>>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    listen: Spanned<Vec<Spanned<String>>>,
    domain: Spanned<String>,
    trusted_proxies: Option<Vec<Spanned<String>>>,
    digest_algorithms: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    first: Spanned<String>,
    last: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPark {
    timeout_s: Option<Spanned<i64>>,
    ringback_attempts: Option<Spanned<i64>>,
    ringback_ring_s: Option<Spanned<i64>>,
    fallback: Option<Spanned<String>>,
    music: Option<bool>,
    music_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    allow: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    retrieve_attempts_per_minute: Option<Spanned<i64>>,
}

/// The text being validated, for turning byte offsets into lines.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    fn err(&self, span: Option<Range<usize>>, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            line: span.map(|s| self.line(s.start)),
            key: Some(key.to_string()),
            message,
        }
    }

    fn warn(&self, span: Option<Range<usize>>, message: String) -> String {
        match span {
            Some(s) => format!("{} line {}: {message}", self.path.display(), self.line(s.start)),
            None => format!("{}: {message}", self.path.display()),
        }
    }

    /// An integer setting checked against its range; `default` when absent.
    fn int(
        &self,
        value: Option<&Spanned<i64>>,
        key: &str,
        allowed: RangeInclusive<i64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let n = *v.get_ref();
        if !allowed.contains(&n) {
            return Err(self.err(
                Some(v.span()),
                key,
                format!("{key} = {n} is out of range ({}..={})", allowed.start(), allowed.end()),
            ));
        }
        // In range, so non-negative and small.
        Ok(n.unsigned_abs())
    }

    /// Turns a `toml` error into one that names the key and line.
    fn toml_error(&self, e: &toml::de::Error, syntax: bool) -> ConfigError {
        let span = e.span();
        let line = span.as_ref().map(|s| self.line(s.start));
        let msg = e.message().trim();
        let fail =
            |key: Option<String>, message: String| ConfigError { file: self.path.to_path_buf(), line, key, message };
        let loc = span.map(|s| locate(self.text, s.start)).unwrap_or_default();
        if syntax {
            let at = loc.header.clone().unwrap_or_else(|| loc.full()).join(".");
            let msg = readable_types(msg);
            return if at.is_empty() {
                fail(None, format!("invalid TOML: {msg}"))
            } else {
                fail(Some(at.clone()), format!("invalid TOML at `{at}`: {msg}"))
            };
        }
        let join = |parts: &[String], last: &str| {
            let mut all: Vec<&str> = parts.iter().map(String::as_str).collect();
            all.push(last);
            all.join(".")
        };
        if let Some(field) = backticked(msg, "unknown field `") {
            let context = match &loc.header {
                Some(h) => &h[..h.len().saturating_sub(1)],
                None => &loc.tables[..],
            };
            let key = join(context, field);
            let expected = msg.split_once(", expected ").map(|(_, e)| format!(" (expected {e})")).unwrap_or_default();
            return fail(Some(key.clone()), format!("unknown key `{key}`{expected}"));
        }
        if let Some(field) = backticked(msg, "missing field `") {
            let context = match &loc.header {
                Some(h) => h.clone(),
                None => loc.full(),
            };
            let key = join(&context, field);
            return fail(Some(key.clone()), format!("missing key `{key}`"));
        }
        let key = loc.header.clone().unwrap_or_else(|| loc.full()).join(".");
        let msg = readable_types(msg);
        if key.is_empty() { fail(None, msg) } else { fail(Some(key.clone()), format!("{key}: {msg}")) }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The text between `prefix` and the next backtick in `msg`.
fn backticked<'m>(msg: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = msg.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Serde's type names, as a person writing TOML would say them.
fn readable_types(msg: &str) -> String {
    if let Some(n) = backticked(msg, "invalid type: integer `")
        && msg.contains(" as i128")
    {
        return format!("integer {n} is too large");
    }
    let mut out = msg
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace(" as i128", "");
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a table");
    }
    out
}

/// Where an offset sits in the document: the enclosing `[table]`, the keys of inline tables
/// it is in, the key whose value it is in, or the header it is part of.
#[derive(Default, Debug)]
struct Location {
    /// The `[header]` path (and inline table keys) enclosing the offset.
    tables: Vec<String>,
    /// The key whose value contains the offset, if any.
    value_of: Vec<String>,
    /// Set when the offset is inside a `[header]` line: that header's path.
    header: Option<Vec<String>>,
}

impl Location {
    fn full(&self) -> Vec<String> {
        let mut v = self.tables.clone();
        v.extend(self.value_of.iter().cloned());
        v
    }
}

/// Splits a (possibly dotted, possibly quoted) TOML key into its parts.
fn key_parts(raw: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in raw.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => parts.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) => cur.push(c),
        }
    }
    parts.push(cur.trim().to_string());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A small TOML scanner that finds which table and key a byte offset belongs to. Used only
/// to name keys in error messages; the document has already parsed, so it is well formed.
fn locate(text: &str, offset: usize) -> Location {
    let mut header: Vec<String> = Vec::new();
    // Open brackets of the current value: ('{' | '[', key path that opened it).
    let mut stack: Vec<(char, Vec<String>)> = Vec::new();
    let mut pending: Option<Vec<String>> = None;
    let mut key: Vec<u8> = Vec::new();
    let bytes = text.as_bytes();
    let end = offset.min(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Stop at the offset, unless a table header starts there (then it is "in" it).
        if i >= end && !(i == end && c == b'[' && stack.is_empty() && pending.is_none()) {
            break;
        }
        let in_key_position = pending.is_none() && stack.last().is_none_or(|(b, _)| *b == '{');
        match c {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' if stack.is_empty() && pending.is_none() => {
                // A table header: read to the end of the line.
                let line_end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                let inner = text[i..line_end]
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                header = key_parts(inner);
                if offset < line_end {
                    return Location { tables: Vec::new(), value_of: Vec::new(), header: Some(header) };
                }
                key.clear();
                i = line_end;
                continue;
            }
            b'"' | b'\'' if !in_key_position => {
                // Skip a string value (basic, literal, or multi-line).
                let q = c;
                let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
                i += if triple { 3 } else { 1 };
                while i < end {
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple {
                        if bytes.get(i..i + 3) == Some(&[q, q, q][..]) {
                            i += 3;
                            break;
                        }
                    } else if bytes[i] == q {
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'=' if in_key_position => {
                pending = Some(key_parts(&String::from_utf8_lossy(&key)));
                key.clear();
            }
            b'{' | b'[' if !in_key_position => {
                let opener = pending.take().unwrap_or_default();
                stack.push((c as char, opener));
            }
            b'}' | b']' => {
                stack.pop();
                pending = None;
            }
            b',' if stack.last().is_some_and(|(b, _)| *b == '{') => {
                pending = None;
                key.clear();
            }
            b'\n' if stack.is_empty() => {
                pending = None;
                key.clear();
            }
            _ if in_key_position => key.push(c),
            _ => {}
        }
        i += 1;
    }
    let mut tables = header;
    for (_, opener) in &stack {
        tables.extend(opener.iter().cloned());
    }
    Location { tables, value_of: pending.unwrap_or_default(), header: None }
}

/// A domain for orbit URIs: a host name or IP, optionally with a port. No spaces, no URI
/// delimiters.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("service.domain is empty".to_string());
    }
    if let Some(c) = domain.chars().find(|c| c.is_whitespace() || c.is_control() || "@;<>\"/?,".contains(*c)) {
        return Err(format!("service.domain = {domain:?} is not a host name or address (contains {c:?})"));
    }
    Ok(())
}

/// A `sip:`/`sips:` URI with something after the scheme and no spaces or angle brackets.
fn check_sip_uri(key: &str, uri: &str) -> Result<(), String> {
    let lower = uri.to_ascii_lowercase();
    let rest = lower.strip_prefix("sip:").or_else(|| lower.strip_prefix("sips:"));
    match rest {
        None => Err(format!("{key} = {uri:?} is not a SIP URI: it must start with sip: or sips:")),
        Some("") => Err(format!("{key} = {uri:?} has nothing after the scheme")),
        Some(_) if uri.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c)) => {
            Err(format!("{key} = {uri:?} is not a SIP URI: it contains spaces, quotes or angle brackets"))
        }
        Some(_) => Ok(()),
    }
}

/// A user name for `[users]` or `policy.allow`.
fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_string());
    }
    match name.chars().find(|c| c.is_whitespace() || c.is_control() || "@:<>\"".contains(*c)) {
        Some(c) => Err(format!("contains {c:?}")),
        None => Ok(()),
    }
}

/// The host part of a domain (drops a `:port`), for use in a URI.
fn domain_host(domain: &str) -> &str {
    if domain.starts_with('[') {
        return domain.split_once(']').map_or(domain, |(h, _)| &domain[..h.len() + 1]);
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    }
}

impl ParkConfig {
    /// Reads and validates a configuration file. Adds a warning when `park.music_file` does
    /// not exist (the service then plays its built-in music).
    pub fn load(path: &Path) -> Result<ParkConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the park service configuration: {e}"),
        })?;
        let mut cfg = ParkConfig::parse(&text, path)?;
        if let Some(music) = &cfg.park.music_file
            && !music.is_file()
        {
            cfg.warnings.push(format!(
                "{}: park.music_file {} does not exist; parked callers will hear the built-in music",
                path.display(),
                music.display()
            ));
        }
        Ok(cfg)
    }

    /// Validates configuration text. `path` names the file in messages and is the base for a
    /// relative `park.music_file`; the file system is not touched.
    pub fn parse(text: &str, path: &Path) -> Result<ParkConfig, ConfigError> {
        let src = Source { text, path };
        // Syntax first, so that a syntax error is never reported as a schema error.
        if let Err(e) = toml::from_str::<toml::Table>(text) {
            return Err(src.toml_error(&e, true));
        }
        let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e, false))?;
        let mut warnings = Vec::new();

        // [service]
        let Some(service) = raw.service else {
            return Err(src.err(
                None,
                "service",
                "missing [service] table (listen and domain are required)".to_string(),
            ));
        };
        let service_span = service.span();
        let service = service.into_inner();
        let mut listen: Vec<ListenAddr> = Vec::new();
        for entry in service.listen.get_ref() {
            let addr = ListenAddr::parse(entry.get_ref())
                .map_err(|e| src.err(Some(entry.span()), "service.listen", format!("service.listen: {e}")))?;
            if listen.contains(&addr) {
                return Err(src.err(
                    Some(entry.span()),
                    "service.listen",
                    format!("service.listen: {addr} is listed twice"),
                ));
            }
            if addr.addr.port() == 0 {
                warnings.push(src.warn(
                    Some(entry.span()),
                    format!("service.listen {addr}: port 0 lets the system pick a port, which a proxy cannot route to"),
                ));
            }
            listen.push(addr);
        }
        if listen.is_empty() {
            return Err(src.err(
                Some(service.listen.span()),
                "service.listen",
                "service.listen is empty: give at least one address such as \"udp:127.0.0.1:5099\"".to_string(),
            ));
        }
        let domain = service.domain.get_ref().clone();
        check_domain(&domain).map_err(|e| src.err(Some(service.domain.span()), "service.domain", e))?;
        let mut trusted_proxies = Vec::new();
        for entry in service.trusted_proxies.iter().flatten() {
            let addr: SocketAddr = entry.get_ref().parse().map_err(|_| {
                src.err(
                    Some(entry.span()),
                    "service.trusted_proxies",
                    format!("service.trusted_proxies: {:?} is not IP:PORT (e.g. \"127.0.0.1:5080\")", entry.get_ref()),
                )
            })?;
            if !trusted_proxies.contains(&addr) {
                trusted_proxies.push(addr);
            }
        }
        let mut digest_algorithms = Vec::new();
        if let Some(list) = &service.digest_algorithms {
            for entry in list.get_ref() {
                let alg = match entry.get_ref().to_ascii_uppercase().as_str() {
                    "SHA-256" => Algorithm::Sha256,
                    "MD5" => Algorithm::Md5,
                    _ => {
                        return Err(src.err(
                            Some(entry.span()),
                            "service.digest_algorithms",
                            format!(
                                "service.digest_algorithms: {:?} is not supported (use \"SHA-256\" and/or \"MD5\")",
                                entry.get_ref()
                            ),
                        ));
                    }
                };
                if !digest_algorithms.contains(&alg) {
                    digest_algorithms.push(alg);
                }
            }
            if digest_algorithms.is_empty() {
                return Err(src.err(
                    Some(list.span()),
                    "service.digest_algorithms",
                    "service.digest_algorithms is empty: give \"SHA-256\" and/or \"MD5\"".to_string(),
                ));
            }
        } else {
            digest_algorithms = DEFAULT_DIGEST_ALGORITHMS.to_vec();
        }

        // [users]
        let mut users = BTreeMap::new();
        for (name, password) in raw.users.into_iter().flatten() {
            check_user_name(name.get_ref()).map_err(|e| {
                src.err(Some(name.span()), "users", format!("users: user name {:?} {e}", name.get_ref()))
            })?;
            if password.get_ref().is_empty() {
                return Err(src.err(
                    Some(password.span()),
                    &format!("users.{}", name.get_ref()),
                    format!("users.{} has an empty password", name.get_ref()),
                ));
            }
            users.insert(name.into_inner(), password.into_inner());
        }

        // [[orbits]]
        let Some(raw_orbits) = raw.orbits else {
            return Err(src.err(
                None,
                "orbits",
                "no orbit ranges: add at least one [[orbits]] table with first and last".to_string(),
            ));
        };
        if raw_orbits.get_ref().is_empty() {
            return Err(src.err(
                Some(raw_orbits.span()),
                "orbits",
                "no orbit ranges: add at least one [[orbits]] table with first and last".to_string(),
            ));
        }
        let mut orbits: Vec<OrbitRange> = Vec::new();
        for r in raw_orbits.into_inner() {
            let r = r.into_inner();
            let (first, last) = (r.first.get_ref(), r.last.get_ref());
            let first_line = src.line(r.first.span().start);
            let range = OrbitRange::parse(first, last).map_err(|e| {
                // Point at `last` when only `last` is malformed, else at the range's `first`.
                let bad_last = OrbitRange::parse(first, first).is_ok() && OrbitRange::parse(last, last).is_err();
                let span = if bad_last { r.last.span() } else { r.first.span() };
                src.err(Some(span), "orbits", e)
            })?;
            let range = range.with_line(first_line);
            if let Some(other) = orbits.iter().find(|o| o.overlaps(&range)) {
                return Err(src.err(
                    Some(r.first.span()),
                    "orbits",
                    format!("orbit range {range} overlaps {other} (line {})", other.line),
                ));
            }
            orbits.push(range);
        }

        // [park]
        let mut park = ParkSettings::default();
        if let Some(p) = raw.park {
            park.timeout =
                Duration::from_secs(src.int(p.timeout_s.as_ref(), "park.timeout_s", TIMEOUT_S, DEFAULT_TIMEOUT_S)?);
            let attempts = src.int(
                p.ringback_attempts.as_ref(),
                "park.ringback_attempts",
                RINGBACK_ATTEMPTS,
                u64::from(DEFAULT_RINGBACK_ATTEMPTS),
            )?;
            park.ringback_attempts = u32::try_from(attempts).unwrap_or(DEFAULT_RINGBACK_ATTEMPTS);
            park.ringback_ring = Duration::from_secs(src.int(
                p.ringback_ring_s.as_ref(),
                "park.ringback_ring_s",
                RINGBACK_RING_S,
                DEFAULT_RINGBACK_RING_S,
            )?);
            if let Some(f) = &p.fallback {
                check_sip_uri("park.fallback", f.get_ref()).map_err(|e| src.err(Some(f.span()), "park.fallback", e))?;
                park.fallback = Some(f.get_ref().clone());
            }
            park.music = p.music.unwrap_or(true);
            if let Some(m) = &p.music_file {
                if m.get_ref().trim().is_empty() {
                    return Err(src.err(
                        Some(m.span()),
                        "park.music_file",
                        "park.music_file is empty: remove it to use the built-in music".to_string(),
                    ));
                }
                let file = Path::new(m.get_ref());
                let resolved = if file.is_absolute() {
                    file.to_path_buf()
                } else {
                    path.parent().unwrap_or(Path::new("")).join(file)
                };
                if !park.music {
                    warnings.push(src.warn(
                        Some(m.span()),
                        "park.music_file is set but park.music = false: parked callers hear silence".to_string(),
                    ));
                }
                park.music_file = Some(resolved);
            }
        }

        // [policy]
        let mut policy = Policy::nobody();
        let mut allow_span = None;
        if let Some(p) = raw.policy {
            allow_span = Some(p.span());
            if let Some(allow) = &p.get_ref().allow {
                allow_span = Some(allow.span());
                for name in allow.get_ref() {
                    let n = name.get_ref();
                    if n != "*" {
                        check_user_name(n).map_err(|e| {
                            src.err(Some(name.span()), "policy.allow", format!("policy.allow: user name {n:?} {e}"))
                        })?;
                    }
                }
                let names: Vec<&str> = allow.get_ref().iter().map(|n| n.get_ref().as_str()).collect();
                if names.contains(&"*") && names.len() > 1 {
                    warnings.push(src.warn(
                        Some(allow.span()),
                        "policy.allow lists \"*\" together with user names: everyone is allowed".to_string(),
                    ));
                }
                policy = Policy::only(names);
            }
        }
        if !policy.allows_everyone() && policy.users().next().is_none() {
            warnings.push(src.warn(
                allow_span.clone(),
                "policy.allow is empty, so nobody may park calls: list user names, or [\"*\"] for everyone".to_string(),
            ));
        }
        if users.is_empty() && trusted_proxies.is_empty() {
            warnings.push(
                src.warn(
                    Some(service_span),
                    "no [users] and no service.trusted_proxies: no client can authenticate, so nobody can park calls"
                        .to_string(),
                ),
            );
        } else if trusted_proxies.is_empty() {
            let unknown: Vec<&str> = policy.users().filter(|u| !users.contains_key(*u)).collect();
            if !unknown.is_empty() {
                warnings.push(src.warn(
                    allow_span,
                    format!(
                        "policy.allow names {} but [users] has no password for them and there is no trusted proxy: they cannot park",
                        unknown.join(", ")
                    ),
                ));
            }
        }

        // [limits]
        let mut limits = Limits::default();
        if let Some(l) = raw.limits {
            let n = src.int(
                l.retrieve_attempts_per_minute.as_ref(),
                "limits.retrieve_attempts_per_minute",
                RETRIEVE_ATTEMPTS_PER_MINUTE,
                u64::from(DEFAULT_RETRIEVE_ATTEMPTS_PER_MINUTE),
            )?;
            limits.retrieve_attempts_per_minute = u32::try_from(n).unwrap_or(DEFAULT_RETRIEVE_ATTEMPTS_PER_MINUTE);
        }

        Ok(ParkConfig {
            service: ServiceConfig { listen, domain, trusted_proxies, digest_algorithms },
            users,
            orbits,
            park,
            policy,
            limits,
            path: path.to_path_buf(),
            warnings,
        })
    }

    /// The built-in local mode's configuration: listens on UDP and TCP at `listen`, orbits
    /// 7000-7099 on `domain`, everyone may park, no users or trusted proxies (the caller adds
    /// what its mode authenticates with), default park settings and limits.
    pub fn default_local(domain: &str, listen: SocketAddr) -> ParkConfig {
        let orbits = OrbitRange::parse("7000", "7099").into_iter().collect();
        ParkConfig {
            service: ServiceConfig {
                listen: vec![
                    ListenAddr { transport: "udp".to_string(), addr: listen },
                    ListenAddr { transport: "tcp".to_string(), addr: listen },
                ],
                domain: domain.to_string(),
                trusted_proxies: Vec::new(),
                digest_algorithms: DEFAULT_DIGEST_ALGORITHMS.to_vec(),
            },
            users: BTreeMap::new(),
            orbits,
            park: ParkSettings::default(),
            policy: Policy::allow_all(),
            limits: Limits::default(),
            path: PathBuf::from("<built-in>"),
            warnings: Vec::new(),
        }
    }
}

/// `file line N` (or just `file` for a range not read from a file).
fn range_location(cfg: &ParkConfig, range: &OrbitRange) -> String {
    if range.line > 0 { format!("{} line {}", cfg.path.display(), range.line) } else { cfg.path.display().to_string() }
}

/// Checks the configurations of all park service instances of one deployment together:
/// no orbit may belong to two ranges, in the same file or in different ones. The error
/// lists every overlap, one a line, naming both files, ranges and lines:
/// `b.toml line 8: orbit range 7050-7150 overlaps 7000-7099 (a.toml line 8)`.
pub fn check_deployment(configs: &[ParkConfig]) -> Result<(), String> {
    let all: Vec<(&ParkConfig, &OrbitRange)> =
        configs.iter().flat_map(|c| c.orbits.iter().map(move |r| (c, r))).collect();
    let mut problems = Vec::new();
    for (j, (cb, rb)) in all.iter().enumerate() {
        for (ca, ra) in &all[..j] {
            if ra.overlaps(rb) {
                problems.push(format!(
                    "{}: orbit range {rb} overlaps {ra} ({})",
                    range_location(cb, rb),
                    range_location(ca, ra)
                ));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// Where the proxy should send a range's requests: the instance's first UDP listen address,
/// else its first TCP one, else TLS. An unspecified IP (0.0.0.0, ::) is replaced by the
/// service domain's host.
fn route_destination(cfg: &ParkConfig) -> Option<String> {
    let pick = ["udp", "tcp", "tls"].iter().find_map(|t| cfg.service.listen.iter().find(|l| l.transport == *t))?;
    let host = if pick.addr.ip().is_unspecified() {
        let h = domain_host(&cfg.service.domain);
        match h.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ if h.is_empty() => Ipv4Addr::LOCALHOST.to_string(),
            _ => h.to_string(),
        }
    } else {
        match pick.addr.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        }
    };
    Some(format!("sip:{host}:{};transport={}", pick.addr.port(), pick.transport))
}

/// Text safe inside a one-line `#` comment.
fn comment_text(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A Kamailio configuration snippet, `route[ORBIT_ROUTES]`, that sends a request whose
/// R-URI user is an orbit to the park service instance owning that orbit (`$du`, then
/// `t_relay(); exit;`). Call it with `route(ORBIT_ROUTES);` in `request_route` for initial
/// requests, before the user location lookup; it needs the `tm` module. Each range's regex
/// matches exactly that range's orbits. Run [`check_deployment`] first.
pub fn kamailio_routes(configs: &[ParkConfig]) -> String {
    let mut out = String::new();
    out.push_str("# Orbit call park: send each orbit to the park service instance that owns it.\n");
    out.push_str(&format!(
        "# Generated by orbitphone from {} park service configuration file(s); regenerate, do not edit.\n",
        configs.len()
    ));
    out.push_str("# Use: route(ORBIT_ROUTES); in request_route for initial requests (needs tm).\n");
    out.push_str("route[ORBIT_ROUTES] {\n");
    for cfg in configs {
        let dest = route_destination(cfg);
        for range in &cfg.orbits {
            out.push_str(&format!(
                "\t# {}: orbits {range} ({} orbits)\n",
                comment_text(&range_location(cfg, range)),
                range.len()
            ));
            let Some(dest) = &dest else {
                out.push_str("\t# not routed: this instance has no listen address\n");
                continue;
            };
            out.push_str(&format!("\tif ($rU =~ \"{}\") {{\n", range.to_regex()));
            out.push_str(&format!("\t\t$du = \"{dest}\";\n"));
            out.push_str("\t\tt_relay();\n");
            out.push_str("\t\texit;\n");
            out.push_str("\t}\n");
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::orbits::test_support;
    use super::*;

    const GOOD: &str = r#"[service]
listen = ["udp:127.0.0.1:5099", "tcp:127.0.0.1:5099"]
domain = "127.0.0.1"
trusted_proxies = ["127.0.0.1:5080"]
[users]
alice = "alicepw"
[[orbits]]
first = "7000"
last  = "7099"
[park]
timeout_s = 90
ringback_attempts = 3
ringback_ring_s = 20
fallback = "sip:operator@127.0.0.1"
music = true
music_file = "hold.wav"
[policy]
allow = ["alice", "bob"]
[limits]
retrieve_attempts_per_minute = 30
"#;

    const MINIMAL: &str = r#"[service]
listen = ["udp:127.0.0.1:5099"]
domain = "example.test"

[[orbits]]
first = "7000"
last = "7099"
"#;

    fn parse(text: &str) -> Result<ParkConfig, ConfigError> {
        ParkConfig::parse(text, Path::new("park.toml"))
    }

    fn ok(text: &str) -> ParkConfig {
        parse(text).unwrap_or_else(|e| panic!("should parse: {e}"))
    }

    /// Parses `text`, expects an error on `line` whose text contains every `needle`.
    fn fails(text: &str, line: usize, needles: &[&str]) -> ConfigError {
        let err = match parse(text) {
            Ok(c) => panic!("should fail, parsed {c:?}"),
            Err(e) => e,
        };
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("park.toml line {line}: ")), "wanted line {line}: {shown}");
        assert_eq!(err.line, Some(line), "{shown}");
        for n in needles {
            assert!(shown.contains(n), "{shown:?} lacks {n:?}");
        }
        err
    }

    /// GOOD with the line that starts with `old` replaced by `new`.
    fn good_with(old: &str, new: &str) -> String {
        let mut found = false;
        let out: Vec<String> = GOOD
            .lines()
            .map(|l| {
                if !found && l.starts_with(old) {
                    found = true;
                    new.to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(found, "no line starts with {old}");
        out.join("\n") + "\n"
    }

    #[test]
    fn good_file_parses() {
        let c = ok(GOOD);
        assert_eq!(
            c.service.listen,
            vec![
                ListenAddr { transport: "udp".into(), addr: "127.0.0.1:5099".parse().unwrap() },
                ListenAddr { transport: "tcp".into(), addr: "127.0.0.1:5099".parse().unwrap() },
            ]
        );
        assert_eq!(c.service.listen[0].to_string(), "udp:127.0.0.1:5099");
        assert_eq!(c.service.domain, "127.0.0.1");
        assert_eq!(c.service.trusted_proxies, vec!["127.0.0.1:5080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.users.get("alice").map(String::as_str), Some("alicepw"));
        assert_eq!(c.orbits.len(), 1);
        assert_eq!((c.orbits[0].lo, c.orbits[0].hi, c.orbits[0].line), (7000, 7099, 8));
        assert_eq!(c.park.timeout, Duration::from_secs(90));
        assert_eq!(c.park.ringback_attempts, 3);
        assert_eq!(c.park.ringback_ring, Duration::from_secs(20));
        assert_eq!(c.park.fallback.as_deref(), Some("sip:operator@127.0.0.1"));
        assert!(c.park.music);
        assert_eq!(c.park.music_file.as_deref(), Some(Path::new("hold.wav")));
        assert!(c.policy.allows("alice") && c.policy.allows("bob"));
        assert!(!c.policy.allows("carol") && !c.policy.allows("Alice"));
        assert_eq!(c.limits.retrieve_attempts_per_minute, 30);
        assert_eq!(c.path, Path::new("park.toml"));
        // bob has no password, but a trusted proxy may vouch for him: no warning.
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_applied_and_empty_policy_warned() {
        let c = ok(MINIMAL);
        assert_eq!(c.park, ParkSettings::default());
        assert_eq!(c.park.timeout, Duration::from_secs(90));
        assert_eq!(c.park.ringback_attempts, 3);
        assert_eq!(c.park.ringback_ring, Duration::from_secs(20));
        assert!(c.park.music && c.park.fallback.is_none() && c.park.music_file.is_none());
        assert_eq!(c.limits.retrieve_attempts_per_minute, 30);
        assert!(c.users.is_empty() && c.service.trusted_proxies.is_empty());
        assert!(!c.policy.allows("alice") && !c.policy.allows_everyone());
        assert!(c.warnings.iter().any(|w| w.starts_with("park.toml: policy.allow is empty")), "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.contains("no client can authenticate")), "{:?}", c.warnings);
        // An explicit empty list is warned about at its line.
        let c = ok(&format!("{MINIMAL}[policy]\nallow = []\n"));
        assert!(
            c.warnings.iter().any(|w| w.starts_with("park.toml line 9: policy.allow is empty")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn allow_star_allows_everyone() {
        let c = ok(&format!("{MINIMAL}[policy]\nallow = [\"*\"]\n"));
        assert!(c.policy.allows("anyone") && c.policy.allows_everyone());
        assert!(!c.warnings.iter().any(|w| w.contains("policy.allow")), "{:?}", c.warnings);
        let c = ok(&format!("{MINIMAL}[policy]\nallow = [\"*\", \"bob\"]\n"));
        assert!(c.policy.allows("anyone"));
        assert!(c.warnings.iter().any(|w| w.contains("together with user names")));
    }

    #[test]
    fn policy_constructors() {
        assert!(!Policy::nobody().allows("a"));
        assert!(Policy::allow_all().allows("a"));
        let p = Policy::only(["a", "b"]);
        assert!(p.allows("a") && p.allows("b") && !p.allows("c"));
        assert_eq!(p.users().collect::<Vec<_>>(), ["a", "b"]);
        assert!(Policy::only(["*"]).allows("z"));
        let names: &[&str] = &["carol"];
        assert!(Policy::only(names).allows("carol"));
        assert!(Policy::only(vec![String::from("dave")]).allows("dave"));
    }

    #[test]
    fn out_of_range_numbers_name_key_and_line() {
        let e = fails(&good_with("timeout_s", "timeout_s = 5"), 11, &["park.timeout_s = 5 is out of range (10..=600)"]);
        assert_eq!(e.key.as_deref(), Some("park.timeout_s"));
        assert_eq!(e.to_string(), "park.toml line 11: park.timeout_s = 5 is out of range (10..=600)");
        fails(&good_with("timeout_s", "timeout_s = 601"), 11, &["park.timeout_s = 601"]);
        fails(
            &good_with("ringback_attempts", "ringback_attempts = 0"),
            12,
            &["park.ringback_attempts = 0 is out of range (1..=10)"],
        );
        fails(
            &good_with("ringback_attempts", "ringback_attempts = 11"),
            12,
            &["park.ringback_attempts = 11 is out of range (1..=10)"],
        );
        fails(
            &good_with("ringback_ring_s", "ringback_ring_s = -1"),
            13,
            &["park.ringback_ring_s = -1 is out of range (5..=120)"],
        );
        fails(
            &good_with("retrieve_attempts", "retrieve_attempts_per_minute = 0"),
            20,
            &["limits.retrieve_attempts_per_minute = 0 is out of range"],
        );
        // Edges are accepted.
        let c = ok(&good_with("ringback_attempts", "ringback_attempts = 10"));
        assert_eq!(c.park.ringback_attempts, 10);
        let c = ok(&good_with("timeout_s", "timeout_s = 10"));
        assert_eq!(c.park.timeout, Duration::from_secs(10));
    }

    #[test]
    fn wrong_types_name_key_and_line() {
        fails(&good_with("timeout_s", "timeout_s = \"90\""), 11, &["park.timeout_s", "expected an integer"]);
        fails(&good_with("music =", "music = 1"), 15, &["park.music", "boolean"]);
        fails(&good_with("first", "first = 7000"), 8, &["orbits.first", "string"]);
        fails(
            &good_with("timeout_s", "timeout_s = 99999999999999999999"),
            11,
            &["park.timeout_s", "integer 99999999999999999999 is too large"],
        );
    }

    #[test]
    fn bad_fallback_uri() {
        fails(
            &good_with("fallback", "fallback = \"tel:+15551234\""),
            14,
            &["park.fallback", "tel:+15551234", "must start with sip: or sips:"],
        );
        fails(&good_with("fallback", "fallback = \"operator\""), 14, &["park.fallback"]);
        fails(&good_with("fallback", "fallback = \"sip:\""), 14, &["park.fallback"]);
        fails(&good_with("fallback", "fallback = \"sip:a b@c\""), 14, &["park.fallback"]);
        let c = ok(&good_with("fallback", "fallback = \"sips:op@example.test\""));
        assert_eq!(c.park.fallback.as_deref(), Some("sips:op@example.test"));
    }

    #[test]
    fn unknown_keys_are_named_with_their_table() {
        let e = fails(&good_with("music =", "colour = \"blue\""), 15, &["unknown key `park.colour`", "timeout_s"]);
        assert_eq!(e.key.as_deref(), Some("park.colour"));
        fails(&format!("{GOOD}[parking]\nx = 1\n"), 21, &["unknown key `parking`"]);
        fails(&format!("volume = 3\n{GOOD}"), 1, &["unknown key `volume`"]);
        fails(&good_with("last", "lats = \"7099\""), 9, &["unknown key `orbits.lats`"]);
        fails(
            &good_with("listen", "listen = [\"udp:127.0.0.1:5099\"]\nport = 5099"),
            3,
            &["unknown key `service.port`"],
        );
        // Inline tables are followed too.
        fails(
            "[service]\nlisten = [\"udp:127.0.0.1:1\"]\ndomain = \"d\"\n[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n\
             limits = { retrieve_attempts_per_minute = 3, burst = 4 }\n",
            7,
            &["unknown key `orbits.limits`"],
        );
        fails(
            "limits = { retrieve_attempts_per_minute = 3, burst = 4 }\n[service]\n",
            1,
            &["unknown key `limits.burst`"],
        );
    }

    #[test]
    fn missing_required_keys() {
        fails(
            "[service]\nlisten = [\"udp:127.0.0.1:1\"]\n\n[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n",
            1,
            &["missing key `service.domain`"],
        );
        fails(
            "[service]\nlisten = [\"udp:127.0.0.1:1\"]\ndomain = \"d\"\n[[orbits]]\nfirst = \"1\"\n",
            4,
            &["missing key `orbits.last`"],
        );
        let e = parse("[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n").unwrap_err();
        assert_eq!(e.to_string(), "park.toml: missing [service] table (listen and domain are required)");
        let e = parse("[service]\nlisten = [\"udp:127.0.0.1:1\"]\ndomain = \"d\"\n").unwrap_err();
        assert!(e.to_string().starts_with("park.toml: no orbit ranges"), "{e}");
        fails("orbits = []\n[service]\nlisten = [\"udp:127.0.0.1:1\"]\ndomain = \"d\"\n", 1, &["no orbit ranges"]);
        // A key placed under the wrong table is named with that table.
        fails(
            "[service]\nlisten = [\"udp:127.0.0.1:1\"]\ndomain = \"d\"\norbits = []\n",
            4,
            &["unknown key `service.orbits`"],
        );
    }

    #[test]
    fn bad_listen_strings() {
        fails(
            &good_with("listen", "listen = [\"udp:127.0.0.1:5099\", \"sctp:127.0.0.1:5099\"]"),
            2,
            &["service.listen", "sctp", "udp, tcp or tls"],
        );
        fails(&good_with("listen", "listen = [\"127.0.0.1:5099\"]"), 2, &["service.listen", "127.0.0.1:5099"]);
        fails(&good_with("listen", "listen = [\"udp:localhost\"]"), 2, &["service.listen", "IP:PORT"]);
        fails(&good_with("listen", "listen = [\"udp:1.2.3.4:99999\"]"), 2, &["service.listen"]);
        fails(&good_with("listen", "listen = []"), 2, &["service.listen is empty"]);
        fails(&good_with("listen", "listen = [\"udp:127.0.0.1:5\", \"UDP:127.0.0.1:5\"]"), 2, &["listed twice"]);
        // A multi-line array: the bad entry's own line.
        fails(
            &good_with("listen", "listen = [\n  \"udp:127.0.0.1:5099\",\n  \"bogus\",\n]"),
            4,
            &["service.listen", "bogus"],
        );
        fails(
            &good_with("listen", "listen = [\n  \"udp:127.0.0.1:5099\",\n  5,\n]"),
            4,
            &["service.listen", "expected a string"],
        );
        let c = ok(&good_with("listen", "listen = [\"TLS:[::1]:5061\"]"));
        assert_eq!(c.service.listen[0].transport, "tls");
        assert_eq!(c.service.listen[0].addr, "[::1]:5061".parse().unwrap());
    }

    #[test]
    fn other_service_errors() {
        fails(&good_with("domain", "domain = \"\""), 3, &["service.domain is empty"]);
        fails(&good_with("domain", "domain = \"a b\""), 3, &["service.domain"]);
        fails(&good_with("domain", "domain = \"u@h\""), 3, &["service.domain"]);
        fails(
            &good_with("trusted_proxies", "trusted_proxies = [\"proxy.example\"]"),
            4,
            &["service.trusted_proxies", "proxy.example"],
        );
        fails(&good_with("alice", "\"al ice\" = \"pw\""), 6, &["users", "al ice"]);
        fails(&good_with("alice", "alice = \"\""), 6, &["users.alice has an empty password"]);
        fails(&good_with("allow", "allow = [\"bob\", \"\"]"), 18, &["policy.allow"]);
    }

    #[test]
    fn digest_algorithms_ordered_and_checked() {
        assert_eq!(ok(GOOD).service.digest_algorithms, vec![Algorithm::Sha256, Algorithm::Md5]);
        let md5_only = good_with("trusted_proxies", "trusted_proxies = []\ndigest_algorithms = [\"md5\"]");
        assert_eq!(ok(&md5_only).service.digest_algorithms, vec![Algorithm::Md5]);
        let swapped = good_with("trusted_proxies", "digest_algorithms = [\"MD5\", \"SHA-256\", \"MD5\"]");
        assert_eq!(ok(&swapped).service.digest_algorithms, vec![Algorithm::Md5, Algorithm::Sha256]);
        fails(
            &good_with("trusted_proxies", "digest_algorithms = [\"SHA-1\"]"),
            4,
            &["service.digest_algorithms", "\"SHA-1\" is not supported"],
        );
        fails(&good_with("trusted_proxies", "digest_algorithms = []"), 4, &["service.digest_algorithms is empty"]);
    }

    #[test]
    fn orbit_range_errors() {
        fails(&good_with("last", "last = \"17999\""), 8, &["orbit range 7000-17999", "same number of digits"]);
        fails(&good_with("last", "last = \"6999\""), 8, &["orbit range 7000-6999", "greater than last"]);
        fails(&good_with("first", "first = \"*7000\""), 8, &["orbit range *7000-7099", "same prefix"]);
        // Over 10,000 orbits: 10000..=20000 is 10,001.
        let big = good_with("first", "first = \"10000\"").replace("last  = \"7099\"", "last = \"20000\"");
        fails(&big, 8, &["orbit range 10000-20000", "10001 orbits", "at most 10000"]);
        let ok_big = good_with("first", "first = \"10000\"").replace("last  = \"7099\"", "last = \"19999\"");
        assert_eq!(ok(&ok_big).orbits[0].len(), 10_000);
        // Only `last` malformed: its own line.
        fails(&good_with("last", "last = \"70x9\""), 9, &["orbit range 7000-70x9", "not an orbit number"]);
        fails(&good_with("first", "first = \"\""), 8, &["not an orbit number"]);
    }

    #[test]
    fn overlapping_ranges_in_one_file() {
        let text = format!(
            "{MINIMAL}\n[[orbits]]\nfirst = \"*7000\"\nlast = \"*7099\"\n\n[[orbits]]\nfirst = \"7050\"\nlast = \"7150\"\n"
        );
        let e = fails(&text, 14, &["orbit range 7050-7150 overlaps 7000-7099 (line 6)"]);
        assert_eq!(e.to_string(), "park.toml line 14: orbit range 7050-7150 overlaps 7000-7099 (line 6)");
        // Different prefixes and widths are distinct orbits.
        let text = format!(
            "{MINIMAL}[[orbits]]\nfirst = \"*7000\"\nlast = \"*7099\"\n[[orbits]]\nfirst = \"#7000\"\nlast = \"#7099\"\n\
             [[orbits]]\nfirst = \"700\"\nlast = \"709\"\n[[orbits]]\nfirst = \"07000\"\nlast = \"07099\"\n"
        );
        let c = ok(&text);
        assert_eq!(c.orbits.len(), 5);
        assert_eq!(c.orbits.iter().map(|r| r.line).collect::<Vec<_>>(), [6, 9, 12, 15, 18]);
        assert!(check_deployment(std::slice::from_ref(&c)).is_ok());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = fails(&good_with("music =", "music = tru"), 15, &["invalid TOML at `park.music`"]);
        assert_eq!(e.key.as_deref(), Some("park.music"));
        fails(&good_with("[park]", "[park"), 10, &["invalid TOML"]);
        fails(&format!("{GOOD}retrieve_attempts_per_minute = 31\n"), 21, &["invalid TOML", "duplicate"]);
        fails(&good_with("domain", "domain = \"unterminated"), 3, &["invalid TOML"]);
    }

    #[test]
    fn music_file_resolves_against_config_dir() {
        let c = ParkConfig::parse(GOOD, Path::new("/etc/orbit/park.toml")).unwrap();
        assert_eq!(c.park.music_file.as_deref(), Some(Path::new("/etc/orbit/hold.wav")));
        let text = good_with("music_file", "music_file = \"sounds/hold.wav\"");
        let c = ParkConfig::parse(&text, Path::new("conf/park.toml")).unwrap();
        assert_eq!(c.park.music_file.as_deref(), Some(Path::new("conf/sounds/hold.wav")));
        let text = good_with("music_file", "music_file = \"/srv/hold.wav\"");
        let c = ParkConfig::parse(&text, Path::new("/etc/orbit/park.toml")).unwrap();
        assert_eq!(c.park.music_file.as_deref(), Some(Path::new("/srv/hold.wav")));
        let text = good_with("music =", "music = false");
        assert!(ok(&text).warnings.iter().any(|w| w.contains("park.music = false")));
        fails(&good_with("music_file", "music_file = \"\""), 16, &["park.music_file is empty"]);
    }

    #[test]
    fn load_reads_file_and_checks_music() {
        let dir = std::env::temp_dir().join(format!("orbit-park-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("park.toml");
        std::fs::write(&path, GOOD).unwrap();
        let c = ParkConfig::load(&path).unwrap();
        assert_eq!(c.park.music_file, Some(dir.join("hold.wav")));
        assert!(c.warnings.iter().any(|w| w.contains("does not exist")), "{:?}", c.warnings);
        std::fs::write(dir.join("hold.wav"), b"RIFF").unwrap();
        let c = ParkConfig::load(&path).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        std::fs::write(&path, good_with("timeout_s", "timeout_s = 5")).unwrap();
        let e = ParkConfig::load(&path).unwrap_err();
        assert_eq!(e.to_string(), format!("{} line 11: park.timeout_s = 5 is out of range (10..=600)", path.display()));
        let missing = dir.join("nope.toml");
        let e = ParkConfig::load(&missing).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{}: cannot read", missing.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_local_is_safe() {
        let c = ParkConfig::default_local("127.0.0.1", "127.0.0.1:5099".parse().unwrap());
        assert_eq!(c.orbits.len(), 1);
        assert_eq!(c.orbits[0].to_string(), "7000-7099");
        assert!(c.policy.allows("anyone"));
        assert_eq!(c.service.domain, "127.0.0.1");
        assert_eq!(c.service.listen.len(), 2);
        assert_eq!(c.park, ParkSettings::default());
        assert!(check_deployment(&[c]).is_ok());
    }

    fn named(name: &str, text: &str) -> ParkConfig {
        ParkConfig::parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn instance(port: u16, ranges: &[(&str, &str)]) -> String {
        let mut s = format!(
            "[service]\nlisten = [\"tcp:10.0.0.{port}:5099\", \"udp:127.0.0.1:{port}\"]\ndomain = \"pbx.test\"\n"
        );
        for (a, b) in ranges {
            s.push_str(&format!("[[orbits]]\nfirst = \"{a}\"\nlast = \"{b}\"\n"));
        }
        s
    }

    #[test]
    fn deployment_overlap_across_files() {
        let a = named("a.toml", &instance(1, &[("7000", "7099"), ("*100", "*199")]));
        let b = named("b.toml", &instance(2, &[("7200", "7299"), ("7050", "7150")]));
        assert_eq!(
            check_deployment(&[a.clone(), b.clone()]),
            Err("b.toml line 8: orbit range 7050-7150 overlaps 7000-7099 (a.toml line 5)".to_string())
        );
        // Every overlap is listed, one a line.
        let e = named("e.toml", &instance(5, &[("7299", "7300")]));
        let err = check_deployment(&[a.clone(), b.clone(), e]).unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "b.toml line 8: orbit range 7050-7150 overlaps 7000-7099 (a.toml line 5)",
                "e.toml line 5: orbit range 7299-7300 overlaps 7200-7299 (b.toml line 5)",
            ]
        );
        // The same file twice overlaps itself.
        assert!(check_deployment(&[b.clone(), b.clone()]).is_err());
        let c = named("c.toml", &instance(3, &[("#100", "#199"), ("100", "199"), ("1000", "1099")]));
        assert_eq!(check_deployment(&[a.clone(), c.clone()]), Ok(()));
        let d = named("d.toml", &instance(4, &[("*150", "*150")]));
        assert_eq!(
            check_deployment(&[a, c, d]),
            Err("d.toml line 5: orbit range *150-*150 overlaps *100-*199 (a.toml line 8)".to_string())
        );
    }

    /// The (comment, regex, destination) triples of a generated route block.
    fn routes_of(cfg: &str) -> Vec<(String, String, String)> {
        let lines: Vec<&str> = cfg.lines().map(str::trim).collect();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("if ($rU =~ \"") {
                let re = rest.strip_suffix("\") {").expect("if line shape").to_string();
                let dest = lines[i + 1]
                    .strip_prefix("$du = \"")
                    .and_then(|d| d.strip_suffix("\";"))
                    .expect("$du line")
                    .to_string();
                assert_eq!(lines[i + 2], "t_relay();");
                assert_eq!(lines[i + 3], "exit;");
                assert_eq!(lines[i + 4], "}");
                out.push((lines[i - 1].to_string(), re, dest));
            }
        }
        out
    }

    #[test]
    fn kamailio_routes_shape() {
        let a = named("/etc/orbit/a.toml", &instance(1, &[("7000", "7099"), ("*100", "*199")]));
        let b = named("b.toml", &instance(2, &[("7100", "7123")]));
        let cfg = kamailio_routes(&[a, b]);
        assert!(cfg.contains("route[ORBIT_ROUTES] {\n"), "{cfg}");
        assert!(cfg.trim_end().ends_with('}'));
        assert_eq!(cfg.matches('{').count(), cfg.matches('}').count(), "{cfg}");
        let routes = routes_of(&cfg);
        assert_eq!(
            routes,
            [
                (
                    "# /etc/orbit/a.toml line 5: orbits 7000-7099 (100 orbits)".to_string(),
                    "^70[0-9]{2}$".to_string(),
                    "sip:127.0.0.1:1;transport=udp".to_string()
                ),
                (
                    "# /etc/orbit/a.toml line 8: orbits *100-*199 (100 orbits)".to_string(),
                    "^\\*1[0-9]{2}$".to_string(),
                    "sip:127.0.0.1:1;transport=udp".to_string()
                ),
                (
                    "# b.toml line 5: orbits 7100-7123 (24 orbits)".to_string(),
                    "^71([0-1][0-9]|2[0-3])$".to_string(),
                    "sip:127.0.0.1:2;transport=udp".to_string()
                ),
            ]
        );
    }

    #[test]
    fn kamailio_destination_prefers_udp_then_tcp() {
        let tcp_only = "[service]\nlisten = [\"tls:127.0.0.1:5061\", \"tcp:127.0.0.2:5098\"]\ndomain = \"d\"\n[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n";
        let routes = routes_of(&kamailio_routes(&[named("t.toml", tcp_only)]));
        assert_eq!(routes[0].2, "sip:127.0.0.2:5098;transport=tcp");
        let tls_only =
            "[service]\nlisten = [\"tls:[::1]:5061\"]\ndomain = \"d\"\n[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n";
        let routes = routes_of(&kamailio_routes(&[named("t.toml", tls_only)]));
        assert_eq!(routes[0].2, "sip:[::1]:5061;transport=tls");
        let any = "[service]\nlisten = [\"udp:0.0.0.0:5099\"]\ndomain = \"park1.example.test:5099\"\n[[orbits]]\nfirst = \"1\"\nlast = \"2\"\n";
        let routes = routes_of(&kamailio_routes(&[named("t.toml", any)]));
        assert_eq!(routes[0].2, "sip:park1.example.test:5099;transport=udp");
        let local = ParkConfig::default_local("127.0.0.1", "127.0.0.1:5099".parse().unwrap());
        let routes = routes_of(&kamailio_routes(&[local]));
        assert_eq!(routes[0].0, "# <built-in>: orbits 7000-7099 (100 orbits)");
        assert_eq!(routes[0].2, "sip:127.0.0.1:5099;transport=udp");
    }

    /// Every generated regex matches exactly its range: each number of the range's width
    /// (or a window around wide ranges), other prefixes and widths, checked one by one.
    #[test]
    fn kamailio_regexes_are_exact() {
        // Built by hand: these test ranges overlap each other, which a file would refuse.
        let mut configs = Vec::new();
        for (i, chunk) in test_support::REGEX_RANGES.chunks(3).enumerate() {
            let addr = SocketAddr::from(([127, 0, 0, 1], 5100 + i as u16));
            let mut c = ParkConfig::default_local("pbx.test", addr);
            c.path = PathBuf::from(format!("p{i}.toml"));
            c.orbits = chunk
                .iter()
                .map(|&(a, b)| OrbitRange::parse(a, b).map(|r| r.with_line(7)))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{e}"));
            configs.push(c);
        }
        let routes = routes_of(&kamailio_routes(&configs));
        let ranges: Vec<&OrbitRange> = configs.iter().flat_map(|c| &c.orbits).collect();
        assert_eq!(routes.len(), ranges.len());
        for ((comment, re, _), range) in routes.iter().zip(&ranges) {
            assert!(comment.contains(&format!("orbits {range} ")), "{comment} vs {range}");
            for c in test_support::candidates(range) {
                assert_eq!(test_support::is_match(re, &c), range.contains(&c), "range {range}: regex {re} on {c:?}");
            }
        }
    }

    /// The same check with a real POSIX extended-regex engine (GNU grep -E, the same regcomp
    /// flavour Kamailio uses), when grep is installed.
    #[test]
    fn kamailio_regexes_agree_with_posix_grep() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        if Command::new("grep").arg("--version").output().is_err() {
            eprintln!("grep not found; skipped");
            return;
        }
        for &(a, b) in test_support::REGEX_RANGES {
            let Ok(range) = OrbitRange::parse(a, b) else { panic!("{a}-{b}") };
            let re = range.to_regex();
            let candidates = test_support::candidates(&range);
            let mut child = Command::new("grep")
                .args(["-E", "--", &re])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn grep");
            let input = candidates.join("\n") + "\n";
            let mut stdin = child.stdin.take().expect("stdin");
            let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
            let out = child.wait_with_output().expect("grep output");
            writer.join().expect("writer thread").expect("write to grep");
            let matched: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
            let expected: BTreeSet<String> = candidates.into_iter().filter(|c| range.contains(c)).collect();
            assert_eq!(matched, expected, "range {range}: grep -E {re}");
        }
    }
}
