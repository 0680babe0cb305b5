//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760), client and
//! server side.
//!
//! Sans-IO and clock-free: header values go in and out as strings and callers pass `now_secs`,
//! so the same code serves the UA, the park service and deterministic tests. The header values
//! are parsed here rather than by the SIP parser because that parser rejects
//! `algorithm=SHA-256` and quoted multi-value lists such as `qop="auth,auth-int"`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use md5::Md5;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Digest hash algorithm; the `-sess` variants bind HA1 to the nonce and cnonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the RFC 2617 default, still the only one many SIP servers speak.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760), preferred whenever offered.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The standard spelling, which is what goes on the wire regardless of how a peer cased it.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Higher is better: stronger hash first, then the plain variant because it interoperates more widely.
    fn preference(self) -> u8 {
        match self {
            Algorithm::Sha256 => 3,
            Algorithm::Sha256Sess => 2,
            Algorithm::Md5 => 1,
            Algorithm::Md5Sess => 0,
        }
    }

    /// Mixed into server nonces so a nonce issued for one algorithm cannot be answered with another.
    fn tag(self) -> u8 {
        match self {
            Algorithm::Md5 => 1,
            Algorithm::Md5Sess => 2,
            Algorithm::Sha256 => 3,
            Algorithm::Sha256Sess => 4,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| DigestError::UnsupportedAlgorithm(t.to_owned()))
    }
}

/// Why a challenge or authorization header value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Nothing to parse, usually a header present with an empty value.
    #[error("header value is empty")]
    Empty,
    /// Another scheme (Basic, Bearer, ...) that this module cannot answer.
    #[error("authentication scheme is `{0}`, expected `Digest`")]
    NotDigest(String),
    /// The value breaks the auth-param grammar; `pos` is a byte offset into the input.
    #[error("malformed header value at byte {pos}: {what}")]
    Syntax {
        /// Byte offset into the header value where parsing stopped.
        pos: usize,
        /// What the parser expected or found.
        what: &'static str,
    },
    /// A parameter that the digest computation cannot do without.
    #[error("required parameter `{0}` is missing")]
    MissingParam(&'static str),
    /// RFC 7616 forbids repeats, and accepting one would make the value ambiguous.
    #[error("parameter `{0}` appears more than once")]
    DuplicateParam(&'static str),
    /// An algorithm such as SHA-512-256 that we do not implement.
    #[error("unsupported digest algorithm `{0}`")]
    UnsupportedAlgorithm(String),
}

/// What a server should answer when a request's credentials are not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, or a stale nonce: challenge (again).
    Challenge {
        /// Tell the client its password was right but the nonce is old.
        stale: bool,
    },
    /// The credentials header does not parse.
    Malformed,
    /// No such user.
    UnknownUser,
    /// Wrong password, forged nonce, replay.
    Forbidden,
}

/// Why the server refused a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Credentials meant for another realm (e.g. an upstream proxy), so not ours to judge.
    #[error("credentials are for another realm")]
    WrongRealm,
    /// The nonce was not issued by this server (forged, truncated or for another algorithm).
    #[error("nonce was not issued by this server")]
    BadNonce,
    /// The password was right but the nonce is too old: re-challenge with `stale=true`.
    #[error("nonce has expired")]
    StaleNonce,
    /// The password was right but this nonce count was already used: a replay or a reordered request.
    #[error("nonce count was already used")]
    Replay,
    /// The digest does not match: wrong password or altered request.
    #[error("digest response does not match")]
    WrongResponse,
    /// Required protection parameters are missing or unusable.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
}

impl VerifyError {
    /// True when the client evidently knows the password, so a fresh challenge should carry `stale=true` instead of making the user re-enter it.
    pub fn is_stale(&self) -> bool {
        matches!(self, VerifyError::StaleNonce | VerifyError::Replay)
    }
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space; also the key under which the client caches the nonce.
    pub realm: String,
    /// Server nonce, echoed back verbatim.
    pub nonce: String,
    /// Server state that must be echoed back unchanged.
    pub opaque: Option<String>,
    /// Hash to use; MD5 when the challenge does not say.
    pub algorithm: Algorithm,
    /// Offered qop values, lower-cased; empty means RFC 2069 compatibility mode.
    pub qop: Vec<String>,
    /// The previous credentials were right but the nonce expired, so retry without prompting.
    pub stale: bool,
}

/// A parsed `Authorization` / `Proxy-Authorization` Digest header value (server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Who claims to be authenticating.
    pub username: String,
    /// Realm the credentials are for; several realms may be present on one request.
    pub realm: String,
    /// Nonce from the challenge being answered.
    pub nonce: String,
    /// Digest-URI as the client hashed it; callers should check it matches the Request-URI.
    pub uri: String,
    /// Hex digest to check.
    pub response: String,
    /// Hash the client used; MD5 when absent.
    pub algorithm: Algorithm,
    /// Chosen qop, lower-cased; None for RFC 2069 style credentials.
    pub qop: Option<String>,
    /// Nonce count as sent (8 hex digits expected).
    pub nc: Option<String>,
    /// Client nonce.
    pub cnonce: Option<String>,
    /// Opaque echoed from the challenge.
    pub opaque: Option<String>,
}

/// Username and password; Debug hides the password so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authentication user name (often differs from the AOR user part).
    pub username: String,
    /// Plain password; digest needs it in the clear to derive HA1.
    pub password: String,
}

impl Credentials {
    /// Convenience constructor for literals and config values.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Everything that goes into a digest, shared by client and server so both hash identically.
#[derive(Debug, Clone, Copy)]
pub struct ResponseParams<'a> {
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// User name as sent in the header (unquoted).
    pub username: &'a str,
    /// Realm (unquoted).
    pub realm: &'a str,
    /// Plain password.
    pub password: &'a str,
    /// SIP method, e.g. `REGISTER`; ACK and CANCEL reuse the INVITE's credentials with their own method.
    pub method: &'a str,
    /// Digest-URI (unquoted).
    pub uri: &'a str,
    /// Server nonce.
    pub nonce: &'a str,
    /// `auth`, `auth-int`, or None for RFC 2069 style.
    pub qop: Option<&'a str>,
    /// Nonce count as 8 hex digits; used only with qop.
    pub nc: Option<&'a str>,
    /// Client nonce; needed with qop and with `-sess` algorithms (empty if absent).
    pub cnonce: Option<&'a str>,
    /// Message body; hashed only for `auth-int`.
    pub body: &'a [u8],
}

/// Computes the lower-case hex `response` value; public so callers can check vectors or build custom headers.
pub fn compute_response(p: &ResponseParams<'_>) -> String {
    let alg = p.algorithm;
    let cnonce = p.cnonce.unwrap_or("");
    let mut ha1 = hash_hex(alg, &[p.username.as_bytes(), p.realm.as_bytes(), p.password.as_bytes()]);
    if alg.is_sess() {
        ha1 = hash_hex(alg, &[ha1.as_bytes(), p.nonce.as_bytes(), cnonce.as_bytes()]);
    }
    let ha2 = if p.qop.is_some_and(|q| q.eq_ignore_ascii_case("auth-int")) {
        let hbody = hash_hex(alg, &[p.body]);
        hash_hex(alg, &[p.method.as_bytes(), p.uri.as_bytes(), hbody.as_bytes()])
    } else {
        hash_hex(alg, &[p.method.as_bytes(), p.uri.as_bytes()])
    };
    match p.qop {
        Some(qop) => hash_hex(
            alg,
            &[
                ha1.as_bytes(),
                p.nonce.as_bytes(),
                p.nc.unwrap_or("").as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ],
        ),
        None => hash_hex(alg, &[ha1.as_bytes(), p.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Parses one Digest challenge header value; SIP never folds several challenges into one value (RFC 3261 §7.3.1).
pub fn parse_challenge(value: &str) -> Result<Challenge, DigestError> {
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut algorithm = None;
    let mut qop = None;
    let mut stale = None;
    parse_digest_params(value, |name, v| {
        let (slot, key) = match name.to_ascii_lowercase().as_str() {
            "realm" => (&mut realm, "realm"),
            "nonce" => (&mut nonce, "nonce"),
            "opaque" => (&mut opaque, "opaque"),
            "algorithm" => (&mut algorithm, "algorithm"),
            "qop" => (&mut qop, "qop"),
            "stale" => (&mut stale, "stale"),
            _ => return Ok(()),
        };
        set_once(slot, key, v)
    })?;
    Ok(Challenge {
        realm: realm.ok_or(DigestError::MissingParam("realm"))?,
        nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
        opaque,
        algorithm: parse_algorithm(algorithm)?,
        qop: qop
            .map(|q| {
                q.split(',')
                    .map(|t| t.trim_matches(|c: char| c.is_ascii_whitespace()))
                    .filter(|t| !t.is_empty())
                    .map(|t| t.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default(),
        stale: stale.is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
    })
}

/// Picks the strongest usable challenge (SHA-256 over MD5, RFC 8760), the first one winning ties as the server's preference.
pub fn best_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for value in values {
        let Ok(ch) = parse_challenge(value) else {
            continue;
        };
        if best.as_ref().is_none_or(|b| ch.algorithm.preference() > b.algorithm.preference()) {
            best = Some(ch);
        }
    }
    best
}

/// Parses a Digest `Authorization` / `Proxy-Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization, DigestError> {
    let mut username = None;
    let mut realm = None;
    let mut nonce = None;
    let mut uri = None;
    let mut response = None;
    let mut algorithm = None;
    let mut qop = None;
    let mut nc = None;
    let mut cnonce = None;
    let mut opaque = None;
    parse_digest_params(value, |name, v| {
        let (slot, key) = match name.to_ascii_lowercase().as_str() {
            "username" => (&mut username, "username"),
            "realm" => (&mut realm, "realm"),
            "nonce" => (&mut nonce, "nonce"),
            "uri" => (&mut uri, "uri"),
            "response" => (&mut response, "response"),
            "algorithm" => (&mut algorithm, "algorithm"),
            "qop" => (&mut qop, "qop"),
            "nc" => (&mut nc, "nc"),
            "cnonce" => (&mut cnonce, "cnonce"),
            "opaque" => (&mut opaque, "opaque"),
            _ => return Ok(()),
        };
        set_once(slot, key, v)
    })?;
    Ok(Authorization {
        username: username.ok_or(DigestError::MissingParam("username"))?,
        realm: realm.ok_or(DigestError::MissingParam("realm"))?,
        nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
        uri: uri.ok_or(DigestError::MissingParam("uri"))?,
        response: response.ok_or(DigestError::MissingParam("response"))?,
        algorithm: parse_algorithm(algorithm)?,
        qop: qop.map(|q| q.trim().to_ascii_lowercase()),
        nc: nc.map(|n| n.trim().to_owned()),
        cnonce,
        opaque,
    })
}

/// Realms a client remembers; bounded so a hostile server cannot grow it by inventing realms.
const MAX_CLIENT_REALMS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// `auth` when offered because SIP proxies may legitimately rewrite bodies; `auth-int` only when it is all we get.
    fn choose(offered: &[String]) -> Option<Qop> {
        if offered.iter().any(|q| q == "auth") {
            Some(Qop::Auth)
        } else if offered.iter().any(|q| q == "auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
struct ClientSession {
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    qop: Option<Qop>,
    nc: u32,
    last_used: u64,
}

/// Client side: remembers the last nonce per realm so later requests can authenticate preemptively with nc++.
#[derive(Debug, Default)]
pub struct DigestClient {
    sessions: HashMap<String, ClientSession>,
    tick: u64,
}

impl DigestClient {
    /// Starts with no cached nonces.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers a challenge with a fresh random cnonce; the result is the Authorization / Proxy-Authorization value.
    pub fn respond(&mut self, ch: &Challenge, creds: &Credentials, method: &str, uri: &str, body: &[u8]) -> String {
        let cnonce = random_cnonce();
        self.respond_with_cnonce(ch, creds, method, uri, body, &cnonce)
    }

    /// Like `respond` but with a caller-chosen cnonce, so published test vectors can be reproduced.
    pub fn respond_with_cnonce(
        &mut self,
        ch: &Challenge,
        creds: &Credentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> String {
        self.tick += 1;
        let tick = self.tick;
        let qop = Qop::choose(&ch.qop);
        let session = match self.sessions.get_mut(&ch.realm) {
            Some(s) if s.nonce == ch.nonce && s.algorithm == ch.algorithm => {
                s.nc = s.nc.saturating_add(1);
                s.opaque.clone_from(&ch.opaque);
                s.qop = qop;
                s.last_used = tick;
                s.clone()
            }
            _ => {
                let s = ClientSession {
                    nonce: ch.nonce.clone(),
                    opaque: ch.opaque.clone(),
                    algorithm: ch.algorithm,
                    qop,
                    nc: 1,
                    last_used: tick,
                };
                self.insert_session(&ch.realm, s.clone());
                s
            }
        };
        render(&ch.realm, &session, creds, method, uri, body, cnonce)
    }

    /// Preemptive credentials for a realm we already hold a nonce for; None means wait for a challenge.
    pub fn reuse(&mut self, realm: &str, creds: &Credentials, method: &str, uri: &str, body: &[u8]) -> Option<String> {
        self.tick += 1;
        let tick = self.tick;
        let s = self.sessions.get_mut(realm)?;
        // At the top of the counter any further value would look like a replay; a new challenge is the only way on.
        s.nc = s.nc.checked_add(1)?;
        s.last_used = tick;
        let s = s.clone();
        Some(render(realm, &s, creds, method, uri, body, &random_cnonce()))
    }

    /// Drops the cached nonce, e.g. after the server rejected it or the account changed.
    pub fn forget(&mut self, realm: &str) {
        self.sessions.remove(realm);
    }

    fn insert_session(&mut self, realm: &str, s: ClientSession) {
        if !self.sessions.contains_key(realm) && self.sessions.len() >= MAX_CLIENT_REALMS {
            let oldest = self.sessions.iter().min_by_key(|(_, v)| v.last_used).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.sessions.remove(&k);
            }
        }
        self.sessions.insert(realm.to_owned(), s);
    }
}

fn render(
    realm: &str,
    s: &ClientSession,
    creds: &Credentials,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
) -> String {
    let nc = format!("{:08x}", s.nc);
    let qop = s.qop.map(Qop::as_str);
    // RFC 2617 omits cnonce without qop, but a -sess HA1 cannot be computed without one.
    let cnonce = (qop.is_some() || s.algorithm.is_sess()).then_some(cnonce);
    let response = compute_response(&ResponseParams {
        algorithm: s.algorithm,
        username: &creds.username,
        realm,
        password: &creds.password,
        method,
        uri,
        nonce: &s.nonce,
        qop,
        nc: qop.map(|_| nc.as_str()),
        cnonce,
        body,
    });
    let mut h = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
        quote(&creds.username),
        quote(realm),
        quote(&s.nonce),
        quote(uri),
        response,
        s.algorithm,
    );
    if let Some(c) = cnonce {
        h.push_str(", cnonce=");
        h.push_str(&quote(c));
    }
    if let Some(q) = qop {
        h.push_str(", qop=");
        h.push_str(q);
        h.push_str(", nc=");
        h.push_str(&nc);
    }
    if let Some(o) = &s.opaque {
        h.push_str(", opaque=");
        h.push_str(&quote(o));
    }
    h
}

fn random_cnonce() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    to_hex(&b)
}

/// Default number of nonces whose highest nc the server remembers.
const DEFAULT_REPLAY_CAPACITY: usize = 4096;
const NONCE_MAC_LABEL: &[u8] = b"orbit digest nonce v1";

/// Bytes of a decoded server nonce: 8 timestamp, 8 salt, 16 truncated HMAC.
const NONCE_LEN: usize = 32;

/// Server side: nonces verify statelessly (timestamp + HMAC); only nonce counts need memory, and that memory is bounded.
pub struct DigestServer {
    realm: String,
    lifetime: u64,
    secret: [u8; 32],
    replay: ReplayGuard,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("lifetime", &self.lifetime)
            .field("secret", &"<redacted>")
            .field("tracked_nonces", &self.replay.highest.len())
            .finish()
    }
}

impl DigestServer {
    /// Uses a random secret, so nonces die with the process, which is what a restart should do.
    pub fn new(realm: &str, nonce_lifetime_secs: u64) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self::with_secret(realm, nonce_lifetime_secs, secret)
    }

    /// Fixed secret: deterministic tests, or several processes sharing one realm.
    pub fn with_secret(realm: &str, nonce_lifetime_secs: u64, secret: [u8; 32]) -> Self {
        DigestServer {
            realm: realm.to_owned(),
            lifetime: nonce_lifetime_secs,
            secret,
            replay: ReplayGuard {
                highest: HashMap::new(),
                order: VecDeque::new(),
                capacity: DEFAULT_REPLAY_CAPACITY,
                evicted_upto: None,
            },
        }
    }

    /// Sizes the replay table; once full, the oldest nonces are retired and their clients get `StaleNonce`.
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay.capacity = capacity.max(1);
        self
    }

    /// The realm this server speaks for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// One header value per algorithm, in the given order (RFC 8760: most preferred first), each with its own nonce.
    pub fn challenges(&self, now_secs: u64, algs: &[Algorithm], stale: bool) -> Vec<String> {
        let mut rng = rand::rng();
        algs.iter()
            .map(|&alg| {
                let mut salt = [0u8; 8];
                rng.fill_bytes(&mut salt);
                let nonce = self.make_nonce(now_secs, &salt, alg);
                let mut h = format!(
                    "Digest realm={}, nonce=\"{}\", algorithm={}, qop=\"auth\"",
                    quote(&self.realm),
                    nonce,
                    alg
                );
                if stale {
                    h.push_str(", stale=true");
                }
                h
            })
            .collect()
    }

    /// The whole server-side check of one request: `header_value` is its Authorization
    /// (or Proxy-Authorization) value, `password_of` looks users up. Ok(user) or what to answer.
    pub fn check(
        &mut self,
        now_secs: u64,
        header_value: Option<&str>,
        method: &str,
        body: &[u8],
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Result<String, Refusal> {
        let value = header_value.ok_or(Refusal::Challenge { stale: false })?;
        let auth = parse_authorization(value).map_err(|_| Refusal::Malformed)?;
        let password = password_of(&auth.username).ok_or(Refusal::UnknownUser)?;
        match self.verify(now_secs, &auth, method, &password, body) {
            Ok(user) => Ok(user),
            Err(e) if e.is_stale() => Err(Refusal::Challenge { stale: true }),
            Err(_) => Err(Refusal::Forbidden),
        }
    }

    /// Checks credentials against the user's password; the caller still has to match `auth.uri` to the Request-URI.
    pub fn verify(
        &mut self,
        now_secs: u64,
        auth: &Authorization,
        method: &str,
        password: &str,
        body: &[u8],
    ) -> Result<String, VerifyError> {
        if auth.realm != self.realm {
            return Err(VerifyError::WrongRealm);
        }
        let raw: [u8; NONCE_LEN] = from_hex(&auth.nonce).ok_or(VerifyError::BadNonce)?;
        let (ts_bytes, rest) = raw.split_at(8);
        let (salt, mac) = rest.split_at(8);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(ts_bytes);
        let ts = u64::from_be_bytes(ts);
        let expected_mac = self.nonce_mac(ts, salt, auth.algorithm);
        if !ct_eq(&expected_mac[..16], mac) {
            return Err(VerifyError::BadNonce);
        }

        // Without qop there is no nonce count, hence no replay protection; we always offer qop, so insist on it.
        let qop = auth.qop.as_deref().ok_or(VerifyError::Malformed("qop is required"))?;
        if qop != "auth" && qop != "auth-int" {
            return Err(VerifyError::Malformed("unsupported qop"));
        }
        let nc_text = auth.nc.as_deref().ok_or(VerifyError::Malformed("nc is missing"))?;
        let nc = parse_nc(nc_text).ok_or(VerifyError::Malformed("nc must be 8 hex digits"))?;
        if nc == 0 {
            return Err(VerifyError::Malformed("nc must start at 1"));
        }
        let cnonce =
            auth.cnonce.as_deref().filter(|c| !c.is_empty()).ok_or(VerifyError::Malformed("cnonce is missing"))?;

        let expected = compute_response(&ResponseParams {
            algorithm: auth.algorithm,
            username: &auth.username,
            realm: &auth.realm,
            password,
            method,
            uri: &auth.uri,
            nonce: &auth.nonce,
            qop: Some(qop),
            nc: Some(nc_text),
            cnonce: Some(cnonce),
            body,
        });
        if !ct_eq(expected.as_bytes(), auth.response.to_ascii_lowercase().as_bytes()) {
            return Err(VerifyError::WrongResponse);
        }
        // Staleness is judged only after the digest proved correct (RFC 2617 §3.2.1), so stale=true never helps a guesser.
        if now_secs.saturating_sub(ts) > self.lifetime {
            return Err(VerifyError::StaleNonce);
        }
        self.replay.record(raw, ts, nc, now_secs, self.lifetime)?;
        Ok(auth.username.clone())
    }

    fn make_nonce(&self, ts: u64, salt: &[u8; 8], alg: Algorithm) -> String {
        let mac = self.nonce_mac(ts, salt, alg);
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&ts.to_be_bytes());
        raw[8..16].copy_from_slice(salt);
        raw[16..].copy_from_slice(&mac[..16]);
        to_hex(&raw)
    }

    fn nonce_mac(&self, ts: u64, salt: &[u8], alg: Algorithm) -> [u8; 32] {
        hmac_sha256(&self.secret, &[NONCE_MAC_LABEL, &ts.to_be_bytes(), salt, &[alg.tag()], self.realm.as_bytes()])
    }
}

/// Highest nc per nonce, evicting in first-seen order.
struct ReplayGuard {
    highest: HashMap<[u8; NONCE_LEN], u32>,
    order: VecDeque<([u8; NONCE_LEN], u64)>,
    capacity: usize,
    /// Newest issue time among forgotten nonces: an untracked nonce this old may have been used already.
    evicted_upto: Option<u64>,
}

impl ReplayGuard {
    fn record(&mut self, key: [u8; NONCE_LEN], ts: u64, nc: u32, now: u64, lifetime: u64) -> Result<(), VerifyError> {
        if let Some(h) = self.highest.get_mut(&key) {
            if nc <= *h {
                return Err(VerifyError::Replay);
            }
            *h = nc;
            return Ok(());
        }
        if self.evicted_upto.is_some_and(|floor| ts <= floor) {
            return Err(VerifyError::StaleNonce);
        }
        while let Some(&(old, old_ts)) = self.order.front() {
            if self.order.len() < self.capacity && now.saturating_sub(old_ts) <= lifetime {
                break;
            }
            self.order.pop_front();
            self.highest.remove(&old);
            self.evicted_upto = Some(self.evicted_upto.map_or(old_ts, |f| f.max(old_ts)));
        }
        self.highest.insert(key, nc);
        self.order.push_back((key, ts));
        Ok(())
    }
}

fn parse_algorithm(value: Option<String>) -> Result<Algorithm, DigestError> {
    value.map_or(Ok(Algorithm::Md5), |a| a.parse())
}

fn set_once(slot: &mut Option<String>, key: &'static str, value: String) -> Result<(), DigestError> {
    if slot.is_some() {
        return Err(DigestError::DuplicateParam(key));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn syntax(pos: usize, what: &'static str) -> DigestError {
    DigestError::Syntax { pos, what }
}

/// RFC 3261 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// Unquoted values are accepted a little beyond `token` because servers send base64 nonces and URIs bare.
fn is_bare_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b','
}

/// CR and LF count as whitespace outside quotes so folded header values parse without pre-processing.
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Only ever given ASCII predicates, so the slice always falls on char boundaries.
    fn take_while(&mut self, f: fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(f) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn quoted(&mut self) -> Result<String, DigestError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(syntax(open, "unterminated quoted string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => match self.peek_at(self.pos + 1) {
                    None => return Err(syntax(open, "unterminated quoted string")),
                    Some(b'\r' | b'\n') => {
                        return Err(syntax(self.pos, "line break cannot be escaped"));
                    }
                    Some(e) => {
                        out.push(e);
                        self.pos += 2;
                    }
                },
                b'\r' | b'\n' => {
                    // A fold (line break + whitespace) stays as the whitespace; a bare line break would end the header.
                    let mut next = self.pos + 1;
                    if b == b'\r' && self.peek_at(next) == Some(b'\n') {
                        next += 1;
                    }
                    if !matches!(self.peek_at(next), Some(b' ' | b'\t')) {
                        return Err(syntax(self.pos, "line break inside quoted string"));
                    }
                    self.pos = next;
                }
                b'\t' => {
                    out.push(b);
                    self.pos += 1;
                }
                0x00..=0x1f | 0x7f => {
                    return Err(syntax(self.pos, "control character inside quoted string"));
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| syntax(open, "invalid UTF-8 in quoted string"))
    }
}

/// Walks `Digest name=value, ...`, handing each parameter to `on_param` so callers keep only what they know.
fn parse_digest_params<'a>(
    value: &'a str,
    mut on_param: impl FnMut(&'a str, String) -> Result<(), DigestError>,
) -> Result<(), DigestError> {
    let mut lx = Lexer { src: value, pos: 0 };
    lx.skip_lws();
    if lx.peek().is_none() {
        return Err(DigestError::Empty);
    }
    let scheme = lx.take_while(is_token_byte);
    if scheme.is_empty() {
        return Err(syntax(lx.pos, "expected authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest(scheme.to_owned()));
    }
    if !lx.skip_lws() && lx.peek().is_some() {
        return Err(syntax(lx.pos, "expected whitespace after the scheme"));
    }
    loop {
        lx.skip_lws();
        match lx.peek() {
            None => return Ok(()),
            // Empty list elements are legal in the #rule and some stacks emit them.
            Some(b',') => {
                lx.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_pos = lx.pos;
        let name = lx.take_while(is_token_byte);
        if name.is_empty() {
            return Err(syntax(name_pos, "expected parameter name"));
        }
        lx.skip_lws();
        if lx.peek() != Some(b'=') {
            return Err(syntax(lx.pos, "expected `=` after parameter name"));
        }
        lx.pos += 1;
        lx.skip_lws();
        let v = if lx.peek() == Some(b'"') {
            lx.quoted()?
        } else {
            let v = lx.take_while(is_bare_value_byte);
            if v.is_empty() {
                return Err(syntax(lx.pos, "expected parameter value"));
            }
            v.to_owned()
        };
        on_param(name, v)?;
        lx.skip_lws();
        match lx.peek() {
            None => return Ok(()),
            Some(b',') => lx.pos += 1,
            Some(_) => return Err(syntax(lx.pos, "expected `,` between parameters")),
        }
    }
}

/// Quoted-string for output; control characters (other than tab) are dropped so no input can inject header lines.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// H(p1:p2:...) as lower-case hex, the building block of every digest value.
fn hash_hex(alg: Algorithm, parts: &[&[u8]]) -> String {
    match alg {
        Algorithm::Md5 | Algorithm::Md5Sess => hash_parts(Md5::new(), parts),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hash_parts(Sha256::new(), parts),
    }
}

fn hash_parts<D: Digest>(mut d: D, parts: &[&[u8]]) -> String {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    to_hex(&d.finalize())
}

/// HMAC-SHA256 (RFC 2104) by hand, as the allowed dependencies do not include an hmac crate.
fn hmac_sha256(key: &[u8], msg: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > k.len() {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for m in msg {
        inner.update(m);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// Comparison whose time does not depend on where the inputs differ, so MACs and digests cannot be guessed byte by byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SECRET: [u8; 32] = [7; 32];

    fn server(lifetime: u64) -> DigestServer {
        DigestServer::with_secret("orbit.test", lifetime, SECRET)
    }

    fn alice() -> Credentials {
        Credentials::new("alice", "s3cret")
    }

    /// Runs challenge -> respond -> parse for one algorithm, returning the parsed Authorization.
    fn answer(
        srv: &DigestServer,
        client: &mut DigestClient,
        alg: Algorithm,
        now: u64,
        creds: &Credentials,
    ) -> Authorization {
        let values = srv.challenges(now, &[alg], false);
        let ch = parse_challenge(&values[0]).expect("server challenge parses");
        assert_eq!(ch.algorithm, alg);
        let hdr = client.respond(&ch, creds, "REGISTER", "sip:orbit.test", b"");
        parse_authorization(&hdr).expect("client header parses")
    }

    #[test]
    fn rfc2617_example() {
        let ch = parse_challenge(
            "Digest\r\n                 realm=\"testrealm@host.com\",\r\n                 \
             qop=\"auth,auth-int\",\r\n                 \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n                 \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("RFC 2617 challenge parses");
        assert_eq!(ch.realm, "testrealm@host.com");
        assert_eq!(ch.qop, vec!["auth", "auth-int"]);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let hdr = DigestClient::new().respond_with_cnonce(&ch, &creds, "GET", "/dir/index.html", b"", "0a4f113b");
        assert_eq!(
            hdr,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
             qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );

        // Server side: the RFC's own Authorization header, in its own parameter order.
        let auth = parse_authorization(
            "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
             qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
             response=\"6629fae49393a05397450978507c4ef1\",\r\n \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("RFC 2617 authorization parses");
        assert_eq!(auth.qop.as_deref(), Some("auth"));
        assert_eq!(auth.nc.as_deref(), Some("00000001"));
        let recomputed = compute_response(&ResponseParams {
            algorithm: auth.algorithm,
            username: &auth.username,
            realm: &auth.realm,
            password: "Circle Of Life",
            method: "GET",
            uri: &auth.uri,
            nonce: &auth.nonce,
            qop: auth.qop.as_deref(),
            nc: auth.nc.as_deref(),
            cnonce: auth.cnonce.as_deref(),
            body: b"",
        });
        assert_eq!(recomputed, auth.response);
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616_response(alg_param: &str) -> Authorization {
        let value = format!(
            "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    \
             algorithm={alg_param},\r\n    nonce=\"{RFC7616_NONCE}\",\r\n    opaque=\"{RFC7616_OPAQUE}\""
        );
        let ch = parse_challenge(&value).expect("RFC 7616 challenge parses");
        assert_eq!(ch.qop, vec!["auth", "auth-int"]);
        assert_eq!(ch.opaque.as_deref(), Some(RFC7616_OPAQUE));
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let hdr = DigestClient::new().respond_with_cnonce(&ch, &creds, "GET", "/dir/index.html", b"", RFC7616_CNONCE);
        parse_authorization(&hdr).expect("own header parses")
    }

    #[test]
    fn rfc7616_sha256_example() {
        let auth = rfc7616_response("SHA-256");
        assert_eq!(auth.algorithm, Algorithm::Sha256);
        assert_eq!(auth.response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        assert_eq!(auth.qop.as_deref(), Some("auth"));
        assert_eq!(auth.nc.as_deref(), Some("00000001"));
        assert_eq!(auth.cnonce.as_deref(), Some(RFC7616_CNONCE));
        assert_eq!(auth.opaque.as_deref(), Some(RFC7616_OPAQUE));
    }

    #[test]
    fn rfc7616_md5_example() {
        let auth = rfc7616_response("MD5");
        assert_eq!(auth.algorithm, Algorithm::Md5);
        assert_eq!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc2069_style_without_qop() {
        let ch = parse_challenge("Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"")
            .expect("parses");
        assert!(ch.qop.is_empty());
        let hdr = DigestClient::new().respond(
            &ch,
            &Credentials::new("Mufasa", "Circle Of Life"),
            "GET",
            "/dir/index.html",
            b"",
        );
        assert!(!hdr.contains("qop="), "{hdr}");
        assert!(!hdr.contains("nc="), "{hdr}");
        assert!(!hdr.contains("cnonce="), "{hdr}");
        // H(H(A1):nonce:H(A2)) spelled out independently.
        let ha1 = to_hex(&Md5::digest(b"Mufasa:testrealm@host.com:Circle Of Life"));
        let ha2 = to_hex(&Md5::digest(b"GET:/dir/index.html"));
        let expected = to_hex(&Md5::digest(format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}").as_bytes()));
        let auth = parse_authorization(&hdr).expect("parses");
        assert_eq!(auth.response, expected);
        assert_eq!(auth.qop, None);
    }

    #[test]
    fn algorithm_names() {
        for (text, alg) in [
            ("MD5", Algorithm::Md5),
            ("md5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("md5-SESS", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("sha-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
        ] {
            assert_eq!(text.parse::<Algorithm>(), Ok(alg), "{text}");
        }
        assert_eq!(Algorithm::Sha256Sess.to_string(), "SHA-256-sess");
        assert_eq!("SHA-512-256".parse::<Algorithm>(), Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into())));
    }

    #[test]
    fn parse_challenge_tricky_inputs() {
        let ch = parse_challenge(
            "dIgEsT ReAlM=\"Example\" ,NONCE = abc/def== ,  QOP=\"Auth , AUTH-INT\", \
             Algorithm=sha-256, STALE=TRUE, domain=\"sip:a sip:b\", extra=token",
        )
        .expect("mixed case parses");
        assert_eq!(ch.realm, "Example");
        assert_eq!(ch.nonce, "abc/def==");
        assert_eq!(ch.qop, vec!["auth", "auth-int"]);
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert!(ch.stale);
        assert_eq!(ch.opaque, None);

        let quoted_alg = parse_challenge("Digest algorithm=\"SHA-256\", nonce=\"n\", realm=\"r\", stale=false")
            .expect("quoted algorithm parses");
        assert_eq!(quoted_alg.algorithm, Algorithm::Sha256);
        assert!(!quoted_alg.stale);

        let escaped = parse_challenge("Digest realm=\"say \\\"hi\\\" \\\\ bye\", nonce=\"a\\bc\", opaque=\"\"")
            .expect("escapes parse");
        assert_eq!(escaped.realm, "say \"hi\" \\ bye");
        assert_eq!(escaped.nonce, "abc");
        assert_eq!(escaped.opaque.as_deref(), Some(""));

        let folded = parse_challenge("Digest realm=\"two\r\n words\",\r\n\tnonce=\"n\"").expect("folds parse");
        assert_eq!(folded.realm, "two words");
        assert_eq!(folded.nonce, "n");

        let utf8 = parse_challenge("Digest realm=\"Zürich ☎\", nonce=\"n\"").expect("UTF-8");
        assert_eq!(utf8.realm, "Zürich ☎");

        assert_eq!(parse_challenge("Digest realm=\"r\", qop=\"auth\""), Err(DigestError::MissingParam("nonce")));
        assert_eq!(parse_challenge("Basic realm=\"r\""), Err(DigestError::NotDigest("Basic".into())));
        assert_eq!(parse_challenge("  \r\n "), Err(DigestError::Empty));
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\", Realm=\"x\""),
            Err(DigestError::DuplicateParam("realm"))
        );
        assert!(matches!(parse_challenge("Digest realm=\"r, nonce=\"n\""), Err(DigestError::Syntax { .. })));
        assert!(matches!(parse_challenge("Digest realm=\"r\" nonce=\"n\""), Err(DigestError::Syntax { .. })));
        assert!(matches!(parse_challenge("Digest realm=\"a\r\nb\", nonce=\"n\""), Err(DigestError::Syntax { .. })));
        assert!(matches!(parse_challenge("Digest realm=, nonce=\"n\""), Err(DigestError::Syntax { .. })));
        assert!(matches!(parse_challenge("Digest, realm=\"r\", nonce=\"n\""), Err(DigestError::Syntax { .. })));
        let err = parse_challenge("Digest realm=\"r\", nonce").expect_err("no `=`");
        assert_eq!(err.to_string(), "malformed header value at byte 23: expected `=` after parameter name");
    }

    #[test]
    fn best_challenge_prefers_sha256() {
        let values = [
            "Basic realm=\"r\"",
            "Digest realm=\"r\", nonce=\"m\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"x\", algorithm=SHA-512-256",
            "Digest realm=\"r\", nonce=\"s\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"s2\", algorithm=SHA-256, qop=\"auth\"",
            "garbage",
        ];
        let best = best_challenge(values).expect("one usable");
        assert_eq!(best.algorithm, Algorithm::Sha256);
        assert_eq!(best.nonce, "s", "ties go to the topmost challenge");

        let md5_only = best_challenge(["Digest realm=\"r\", nonce=\"m\""]).expect("md5");
        assert_eq!(md5_only.algorithm, Algorithm::Md5);
        assert_eq!(best_challenge(["Basic realm=\"r\"", ""]), None);

        let srv = server(60);
        let offered = srv.challenges(0, &[Algorithm::Md5, Algorithm::Sha256], false);
        let best = best_challenge(offered.iter().map(String::as_str)).expect("usable");
        assert_eq!(best.algorithm, Algorithm::Sha256);
    }

    #[test]
    fn nonce_reuse_counts_up_and_resets() {
        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"").expect("ok");
        let creds = alice();
        let mut c = DigestClient::new();
        let nc_of = |h: &str| parse_authorization(h).expect("parses").nc;

        assert_eq!(c.reuse("r", &creds, "INVITE", "sip:b@x", b""), None);
        let h1 = c.respond(&ch, &creds, "REGISTER", "sip:x", b"");
        assert_eq!(nc_of(&h1).as_deref(), Some("00000001"));
        let h2 = c.respond(&ch, &creds, "REGISTER", "sip:x", b"");
        assert_eq!(nc_of(&h2).as_deref(), Some("00000002"));
        let h3 = c.reuse("r", &creds, "INVITE", "sip:b@x", b"").expect("cached");
        let a3 = parse_authorization(&h3).expect("parses");
        assert_eq!(a3.nc.as_deref(), Some("00000003"));
        assert_eq!(a3.nonce, "n1");
        assert_eq!(a3.uri, "sip:b@x");
        assert_ne!(parse_authorization(&h1).expect("parses").cnonce, a3.cnonce, "cnonce is fresh per request");
        assert_eq!(c.reuse("other", &creds, "INVITE", "sip:b@x", b""), None);

        let ch2 = parse_challenge("Digest realm=\"r\", nonce=\"n2\", qop=\"auth\", stale=true").expect("ok");
        let h4 = c.respond(&ch2, &creds, "INVITE", "sip:b@x", b"");
        let a4 = parse_authorization(&h4).expect("parses");
        assert_eq!(a4.nc.as_deref(), Some("00000001"));
        assert_eq!(a4.nonce, "n2");
        let h5 = c.reuse("r", &creds, "BYE", "sip:b@x", b"").expect("cached");
        assert_eq!(nc_of(&h5).as_deref(), Some("00000002"));

        c.forget("r");
        assert_eq!(c.reuse("r", &creds, "BYE", "sip:b@x", b""), None);
    }

    #[test]
    fn client_realm_cache_is_bounded() {
        let mut c = DigestClient::new();
        let creds = alice();
        for i in 0..(MAX_CLIENT_REALMS + 10) {
            let ch = parse_challenge(&format!("Digest realm=\"r{i}\", nonce=\"n\", qop=auth")).expect("ok");
            c.respond(&ch, &creds, "REGISTER", "sip:x", b"");
        }
        assert_eq!(c.sessions.len(), MAX_CLIENT_REALMS);
        assert!(c.reuse("r0", &creds, "BYE", "sip:x", b"").is_none());
        let last = format!("r{}", MAX_CLIENT_REALMS + 9);
        assert!(c.reuse(&last, &creds, "BYE", "sip:x", b"").is_some());
    }

    #[test]
    fn round_trip_all_algorithms() {
        for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Md5Sess, Algorithm::Sha256Sess] {
            let mut srv = server(60);
            let mut client = DigestClient::new();
            let auth = answer(&srv, &mut client, alg, 1000, &alice());
            assert_eq!(auth.algorithm, alg);
            assert_eq!(auth.qop.as_deref(), Some("auth"));
            assert_eq!(srv.verify(1010, &auth, "REGISTER", "s3cret", b""), Ok("alice".to_owned()), "{alg}");
            // Preemptive reuse of the same nonce is accepted with the next nc.
            let h = client.reuse("orbit.test", &alice(), "INVITE", "sip:bob@orbit.test", b"v=0").expect("cached");
            let again = parse_authorization(&h).expect("parses");
            assert_eq!(again.nc.as_deref(), Some("00000002"));
            assert_eq!(srv.verify(1020, &again, "INVITE", "s3cret", b"other body"), Ok("alice".to_owned()));
            // Replaying either earlier request fails.
            assert_eq!(srv.verify(1021, &auth, "REGISTER", "s3cret", b""), Err(VerifyError::Replay));
            assert_eq!(srv.verify(1021, &again, "INVITE", "s3cret", b""), Err(VerifyError::Replay));
        }
    }

    #[test]
    fn auth_int_when_only_option() {
        let mut srv = server(60);
        let values = srv.challenges(5, &[Algorithm::Sha256], false);
        let mut ch = parse_challenge(&values[0]).expect("ok");
        ch.qop = vec!["auth-int".into()];
        let hdr = DigestClient::new().respond(&ch, &alice(), "MESSAGE", "sip:b@x", b"hello");
        let auth = parse_authorization(&hdr).expect("parses");
        assert_eq!(auth.qop.as_deref(), Some("auth-int"));
        assert_eq!(
            srv.verify(6, &auth, "MESSAGE", "s3cret", b"hell0"),
            Err(VerifyError::WrongResponse),
            "body is covered"
        );
        assert_eq!(srv.verify(6, &auth, "MESSAGE", "s3cret", b"hello"), Ok("alice".into()));
    }

    #[test]
    fn verify_failures() {
        let mut srv = server(30);
        let mut client = DigestClient::new();

        let wrong = answer(&srv, &mut client, Algorithm::Md5, 100, &alice());
        let err = srv.verify(101, &wrong, "REGISTER", "not-it", b"").expect_err("wrong password");
        assert_eq!(err, VerifyError::WrongResponse);
        assert!(!err.is_stale());
        assert_eq!(
            srv.verify(101, &wrong, "INVITE", "s3cret", b""),
            Err(VerifyError::WrongResponse),
            "method is covered"
        );

        // Tampered nonce: the client answers it correctly, but the MAC no longer matches.
        let values = srv.challenges(100, &[Algorithm::Sha256], false);
        let mut ch = parse_challenge(&values[0]).expect("ok");
        let mut bytes = ch.nonce.into_bytes();
        bytes[3] = if bytes[3] == b'0' { b'1' } else { b'0' };
        ch.nonce = String::from_utf8(bytes).expect("hex stays ASCII");
        let hdr = client.respond(&ch, &alice(), "REGISTER", "sip:orbit.test", b"");
        let tampered = parse_authorization(&hdr).expect("parses");
        assert_eq!(srv.verify(101, &tampered, "REGISTER", "s3cret", b""), Err(VerifyError::BadNonce));

        // A nonce minted with another secret, and a non-hex nonce.
        let other = DigestServer::with_secret("orbit.test", 30, [9; 32]);
        let forged = answer(&other, &mut client, Algorithm::Md5, 100, &alice());
        assert_eq!(srv.verify(101, &forged, "REGISTER", "s3cret", b""), Err(VerifyError::BadNonce));
        let mut junk = forged.clone();
        junk.nonce = "not a nonce".into();
        assert_eq!(srv.verify(101, &junk, "REGISTER", "s3cret", b""), Err(VerifyError::BadNonce));

        // Nonce issued for SHA-256 answered with MD5.
        let sha = answer(&srv, &mut client, Algorithm::Sha256, 100, &alice());
        let mut downgraded = sha.clone();
        downgraded.algorithm = Algorithm::Md5;
        assert_eq!(srv.verify(101, &downgraded, "REGISTER", "s3cret", b""), Err(VerifyError::BadNonce));

        // Expired: lifetime 30s, so 131 is the last good second.
        let old = answer(&srv, &mut client, Algorithm::Sha256, 100, &alice());
        assert_eq!(
            srv.verify(131, &old, "REGISTER", "wrong", b""),
            Err(VerifyError::WrongResponse),
            "stale is only reported for correct digests"
        );
        let err = srv.verify(131, &old, "REGISTER", "s3cret", b"").expect_err("expired");
        assert_eq!(err, VerifyError::StaleNonce);
        assert!(err.is_stale());
        assert_eq!(srv.verify(130, &old, "REGISTER", "s3cret", b""), Ok("alice".into()));

        // Replayed nc.
        let fresh = answer(&srv, &mut client, Algorithm::Md5, 200, &alice());
        assert_eq!(srv.verify(201, &fresh, "REGISTER", "s3cret", b""), Ok("alice".into()));
        assert_eq!(srv.verify(202, &fresh, "REGISTER", "s3cret", b""), Err(VerifyError::Replay));

        let mut realm = fresh.clone();
        realm.realm = "elsewhere".into();
        assert_eq!(srv.verify(202, &realm, "REGISTER", "s3cret", b""), Err(VerifyError::WrongRealm));

        let mut no_qop = answer(&srv, &mut client, Algorithm::Md5, 200, &alice());
        no_qop.qop = None;
        assert_eq!(srv.verify(201, &no_qop, "REGISTER", "s3cret", b""), Err(VerifyError::Malformed("qop is required")));
        let mut bad_nc = answer(&srv, &mut client, Algorithm::Md5, 200, &alice());
        bad_nc.nc = Some("1".into());
        assert_eq!(
            srv.verify(201, &bad_nc, "REGISTER", "s3cret", b""),
            Err(VerifyError::Malformed("nc must be 8 hex digits"))
        );
    }

    #[test]
    fn stale_challenge_flag() {
        let srv = server(30);
        let values = srv.challenges(1, &[Algorithm::Sha256, Algorithm::Md5], true);
        assert_eq!(values.len(), 2);
        let parsed: Vec<Challenge> = values.iter().map(|v| parse_challenge(v).expect("parses")).collect();
        assert!(parsed.iter().all(|c| c.stale && c.realm == "orbit.test"));
        assert!(parsed.iter().all(|c| c.qop == vec!["auth".to_owned()]));
        assert_eq!(parsed[0].algorithm, Algorithm::Sha256);
        assert_eq!(parsed[1].algorithm, Algorithm::Md5);
        assert_ne!(parsed[0].nonce, parsed[1].nonce);
        assert!(values[0].starts_with("Digest realm=\"orbit.test\", nonce=\""));
        assert!(values[0].ends_with(", algorithm=SHA-256, qop=\"auth\", stale=true"));
    }

    #[test]
    fn replay_table_is_bounded_and_fails_safe() {
        let mut srv = server(3600).with_replay_capacity(2);
        let mut client = DigestClient::new();
        let a = answer(&srv, &mut client, Algorithm::Md5, 10, &alice());
        let mut c2 = DigestClient::new();
        let b = answer(&srv, &mut c2, Algorithm::Md5, 11, &alice());
        let mut c3 = DigestClient::new();
        let c = answer(&srv, &mut c3, Algorithm::Md5, 12, &alice());
        let mut c4 = DigestClient::new();
        let d = answer(&srv, &mut c4, Algorithm::Md5, 11, &alice());
        for x in [&a, &b, &c] {
            assert_eq!(srv.verify(20, x, "REGISTER", "s3cret", b""), Ok("alice".into()));
        }
        assert_eq!(srv.replay.highest.len(), 2);
        // `a` was forgotten to make room: replaying it must fail safe (stale), not succeed.
        assert_eq!(srv.verify(21, &a, "REGISTER", "s3cret", b""), Err(VerifyError::StaleNonce));
        // `d` is newer than anything forgotten, so it is provably unused and accepted; that pushes `b` out.
        assert_eq!(srv.verify(21, &d, "REGISTER", "s3cret", b""), Ok("alice".into()));
        assert_eq!(srv.verify(22, &b, "REGISTER", "s3cret", b""), Err(VerifyError::StaleNonce));
        assert_eq!(srv.verify(22, &c, "REGISTER", "s3cret", b""), Err(VerifyError::Replay));
        assert_eq!(srv.verify(22, &d, "REGISTER", "s3cret", b""), Err(VerifyError::Replay));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(to_hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn credentials_debug_hides_password() {
        let shown = format!("{:?}", alice());
        assert!(shown.contains("alice") && !shown.contains("s3cret"), "{shown}");
        let srv = format!("{:?}", server(1));
        assert!(srv.contains("redacted"), "{srv}");
    }

    #[test]
    fn fuzz_parsers_never_panic() {
        const PIECES: &[&str] = &[
            "Digest",
            "digest",
            "Basic",
            " ",
            "  ",
            "\t",
            ",",
            ",,",
            "=",
            "\"",
            "\\",
            "\\\"",
            "\r\n",
            "\r\n ",
            "\r",
            "\n",
            "realm",
            "nonce",
            "opaque",
            "qop",
            "algorithm",
            "stale",
            "username",
            "uri",
            "response",
            "nc",
            "cnonce",
            "SHA-256",
            "md5-sess",
            "auth",
            "auth,auth-int",
            "true",
            "00000001",
            "ffffffff",
            "x",
            "Z9/+=",
            "é",
            "☎",
            "\u{0}",
            "\u{7f}",
            "sip:a@b;x=y",
            "\"quoted\"",
        ];
        let mut rng = StdRng::seed_from_u64(0x0b17_d16e);
        let creds = alice();
        let mut client = DigestClient::new();
        let mut srv = server(60);
        let mut parsed_ok = 0usize;
        for i in 0..30_000 {
            let s: String = match i % 3 {
                0 => (0..rng.random_range(0..24)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect(),
                1 => {
                    let bytes: Vec<u8> = (0..rng.random_range(0..48)).map(|_| rng.random()).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => {
                    // Mutate a valid header so the parser gets deep before it meets garbage.
                    let base = "Digest realm=\"a\\\"b\", nonce=\"n\", qop=\"auth,auth-int\", \
                                algorithm=SHA-256, username=\"u\", uri=\"sip:x\", \
                                response=\"00\", nc=00000001, cnonce=\"c\", opaque=\"o\"";
                    let mut chars: Vec<char> = base.chars().collect();
                    for _ in 0..rng.random_range(1..5) {
                        let at = rng.random_range(0..chars.len());
                        let piece = PIECES[rng.random_range(0..PIECES.len())];
                        match rng.random_range(0..3) {
                            0 => {
                                chars.remove(at);
                            }
                            1 => chars.splice(at..at, piece.chars()).for_each(drop),
                            _ => chars.truncate(at),
                        }
                        if chars.is_empty() {
                            break;
                        }
                    }
                    chars.into_iter().collect()
                }
            };
            let _ = parse_authorization(&s);
            if let Some(auth) = parse_authorization(&s).ok().filter(|a| a.realm == "orbit.test") {
                let _ = srv.verify(0, &auth, "REGISTER", "pw", b"");
            }
            let _ = best_challenge([s.as_str(), "Digest realm=\"r\", nonce=\"n\""]);
            if let Ok(ch) = parse_challenge(&s) {
                parsed_ok += 1;
                // Whatever the parser accepts must survive our own quoting unchanged.
                let hdr = client.respond(&ch, &creds, "REGISTER", "sip:x", b"");
                let auth = parse_authorization(&hdr).expect("own output always parses");
                assert_eq!(auth.realm, ch.realm);
                assert_eq!(auth.nonce, ch.nonce);
                assert_eq!(auth.opaque, ch.opaque);
                let recomputed = compute_response(&ResponseParams {
                    algorithm: auth.algorithm,
                    username: &auth.username,
                    realm: &auth.realm,
                    password: &creds.password,
                    method: "REGISTER",
                    uri: &auth.uri,
                    nonce: &auth.nonce,
                    qop: auth.qop.as_deref(),
                    nc: auth.nc.as_deref(),
                    cnonce: auth.cnonce.as_deref(),
                    body: b"",
                });
                assert_eq!(recomputed, auth.response);
            }
        }
        assert!(parsed_ok > 100, "fuzz reached valid inputs only {parsed_ok} times");
    }
}
