//! Message glue over the rsip-lineage parser (`rsipstack::sip`): strict validation on
//! top of its lenient parser, header helpers, and builders for requests and responses.
//!
//! The parser we build on accepts a lot (a header line without a colon is skipped, a bad
//! Content-Length becomes 0, an unknown method is a hard error). A phone that must answer
//! every malformed request with a useful `400` and every unknown method with `501`
//! therefore pre-scans the raw bytes itself before handing them to the typed parser.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{HasHeaders, Version};
pub use rsipstack::sip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode, Uri};
use std::fmt::Write as _;

/// Largest message we accept; bigger ones are refused with 513.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Methods the typed parser knows; anything else is answered 501 before parsing.
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Why an incoming datagram or stream frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Malformed; when it was a request, `reply` is a ready 400 answer.
    #[error("malformed SIP message: {reason}")]
    Malformed { reason: String, reply: Option<Vec<u8>> },
    /// A request whose method we do not implement; `reply` is a ready 501.
    #[error("unsupported method {method}")]
    UnknownMethod { method: String, reply: Option<Vec<u8>> },
    /// Larger than [`MAX_MESSAGE_SIZE`]; `reply` is a ready 513 when it was a request.
    #[error("message too large ({size} bytes)")]
    TooLarge { size: usize, reply: Option<Vec<u8>> },
}

impl ParseError {
    /// The bytes to send back to the source, if the message deserves an answer.
    pub fn reply(&self) -> Option<&[u8]> {
        match self {
            ParseError::Malformed { reply, .. }
            | ParseError::UnknownMethod { reply, .. }
            | ParseError::TooLarge { reply, .. } => reply.as_deref(),
        }
    }
}

/// Full header name for a compact form (RFC 3261 §7.3.3 and extensions).
pub fn canonical_name(name: &str) -> &str {
    match name {
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "e" | "E" => "Content-Encoding",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "f" | "F" => "From",
        "s" | "S" => "Subject",
        "k" | "K" => "Supported",
        "t" | "T" => "To",
        "v" | "V" => "Via",
        "o" | "O" => "Event",
        "r" | "R" => "Refer-To",
        "b" | "B" => "Referred-By",
        "u" | "U" => "Allow-Events",
        "x" | "X" => "Session-Expires",
        other => other,
    }
}

/// The head of a message split into lines without interpretation: enough to answer
/// a message the typed parser cannot handle.
struct RawHead<'a> {
    start_line: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    /// Lines that were neither headers nor continuations.
    bad_lines: Vec<&'a str>,
}

fn find_head_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n")
}

fn raw_head(data: &[u8]) -> Result<RawHead<'_>, String> {
    let end = find_head_end(data).ok_or("no blank line after the headers")?;
    let head = std::str::from_utf8(&data[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut bad_lines = Vec::new();
    let bare_cr_lf = |line: &str| line.as_bytes().contains(&b'\r') || line.as_bytes().contains(&b'\n');
    if bare_cr_lf(start_line) {
        bad_lines.push(start_line);
    }
    for line in lines {
        if bare_cr_lf(line) {
            // A bare CR or LF: the typed parser would end the line there, we would not.
            bad_lines.push(line);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => bad_lines.push(line),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if is_token(name.trim_end()) => {
                headers.push((canonical_name(name.trim_end()).to_string(), value.trim().to_string()))
            }
            _ => bad_lines.push(line),
        }
    }
    Ok(RawHead { start_line, headers, body: &data[end + 4..], bad_lines })
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

impl RawHead<'_> {
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A response built from the raw headers (Via, From, To, Call-ID, CSeq copied verbatim),
    /// usable even when the typed parse failed.
    fn reply(&self, code: u16, reason: &str) -> Option<Vec<u8>> {
        if self.start_line.starts_with("SIP/") {
            return None; // never answer a response
        }
        if self.start_line.split_whitespace().next() == Some("ACK") {
            return None; // ACK gets no response (RFC 3261 §17.2.1)
        }
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in self.all(name) {
                // Only CR and LF could break the framing; other controls are legal in a
                // quoted-pair (RFC 4475 §3.1.1.2) and removing them would unbalance quotes.
                let mut v: String = v.chars().map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c }).collect();
                if name == "To" && header_param(&v, "tag").is_none() {
                    // RFC 3261 §8.2.6.2: a UAS adds a To tag to every final response.
                    let _ = write!(v, ";tag={}", random_token(10));
                }
                let _ = write!(out, "{name}: {v}\r\n");
            }
        }
        let _ = write!(out, "Server: Orbit/{}\r\nContent-Length: 0\r\n\r\n", env!("CARGO_PKG_VERSION"));
        Some(out.into_bytes())
    }
}

/// Parse one complete message (a UDP datagram, or one frame cut from a stream).
pub fn parse(data: &[u8]) -> Result<SipMessage, ParseError> {
    let malformed_without_reply = |reason: &str| ParseError::Malformed { reason: reason.to_string(), reply: None };
    let raw = raw_head(data).map_err(|r| malformed_without_reply(&r))?;
    if data.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge { size: data.len(), reply: raw.reply(513, "Message Too Large") });
    }
    let bad = |reason: String| ParseError::Malformed { reply: raw.reply(400, &short(&reason)), reason };
    let is_response = raw.start_line.starts_with("SIP/");
    if !is_response {
        let mut parts = raw.start_line.split(' ');
        let (method, uri, version) = (parts.next(), parts.next(), parts.next());
        let (Some(method), Some(uri), Some(version), None) = (method, uri, version, parts.next()) else {
            return Err(bad(format!("bad request line {:?}", short(raw.start_line))));
        };
        if version != "SIP/2.0" {
            // 505 is the precise answer for a version we do not speak.
            return Err(ParseError::Malformed {
                reason: format!("unsupported version {version}"),
                reply: raw.reply(505, "Version Not Supported"),
            });
        }
        if !is_token(method) {
            return Err(bad(format!("bad method {method:?}")));
        }
        if !KNOWN_METHODS.contains(&method) {
            return Err(ParseError::UnknownMethod {
                method: method.to_string(),
                reply: raw.reply(501, "Not Implemented"),
            });
        }
        if !has_scheme(uri) {
            return Err(bad(format!("bad Request-URI {uri:?}")));
        }
        if sip_uri_has_headers(uri) {
            // RFC 3261 §19.1.1: no headers in a Request-URI (RFC 4475 §3.1.2.11).
            return Err(bad(format!("headers in Request-URI {uri:?}")));
        }
    } else {
        let mut parts = raw.start_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        if version != "SIP/2.0" || code.len() != 3 || code.parse::<u16>().map_or(true, |c| !(100..700).contains(&c)) {
            return Err(malformed_without_reply("bad status line"));
        }
    }
    if let Some(line) = raw.bad_lines.first() {
        return Err(bad(format!("bad header line {:?}", short(line))));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if raw.all(name).next().is_none() {
            return Err(bad(format!("missing {name}")));
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Content-Type", "Expires"] {
        if raw.all(name).count() > 1 {
            return Err(bad(format!("more than one {name}")));
        }
    }
    let cseq = raw.all("CSeq").next().unwrap_or_default();
    let mut cseq_parts = cseq.split_whitespace();
    let (num, cseq_method) = (cseq_parts.next(), cseq_parts.next());
    match num.map(|n| n.parse::<u32>()) {
        Some(Ok(n)) if n < (1 << 31) => {}
        _ => return Err(bad(format!("bad CSeq {cseq:?}"))),
    }
    if cseq_parts.next().is_some() {
        return Err(bad(format!("bad CSeq {cseq:?}")));
    }
    if !is_response {
        let method = raw.start_line.split(' ').next().unwrap_or_default();
        if cseq_method != Some(method) {
            return Err(bad(format!("CSeq method {} does not match {method}", cseq_method.unwrap_or_default())));
        }
    }
    if let Some(mf) = raw.all("Max-Forwards").next()
        && mf.parse::<u8>().is_err()
    {
        return Err(bad(format!("bad Max-Forwards {mf:?}")));
    }
    if let Some(cl) = raw.all("Content-Length").next() {
        match cl.parse::<usize>() {
            Ok(n) if n <= raw.body.len() => {}
            Ok(n) => return Err(bad(format!("Content-Length {n} exceeds the {} body bytes", raw.body.len()))),
            Err(_) => return Err(bad(format!("bad Content-Length {cl:?}"))),
        }
    }
    // Requests only: dropping a registrar's 200 over an informational header helps nobody.
    if !is_response
        && let Some(date) = raw.all("Date").next()
        && !is_sip_date(date)
    {
        return Err(bad(format!("bad Date {date:?}")));
    }
    for name in ["From", "To"] {
        let v = raw.all(name).next().unwrap_or_default();
        if !is_address(v) {
            return Err(bad(format!("bad {name} {:?}", short(v))));
        }
    }
    for name in ["Via", "Contact"] {
        // `1#element` has no empty elements (RFC 4475 §3.1.2.1: `Via: …;;,;,,`)
        if raw.all(name).any(|v| split_list_with_empty(v).contains(&"")) {
            return Err(bad(format!("empty element in {name}")));
        }
    }
    for v in raw.all("Contact").flat_map(split_list) {
        if v != "*" && !is_address(v) {
            return Err(bad(format!("bad Contact {:?}", short(v))));
        }
    }
    for via in raw.all("Via").flat_map(split_list) {
        if let Err(e) = check_via(via) {
            return Err(bad(format!("bad Via: {e}")));
        }
    }
    let msg = rsipstack::sip::parser::parse_message(data).map_err(|e| bad(format!("{e}")))?;
    Ok(normalize(msg))
}

/// `scheme ":" rest` with an RFC 3986 scheme; `<sip:a@b>` is refused (RFC 4475 §3.1.2.7).
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// Whether a `sip:`/`sips:` URI carries `?headers`. The user part may contain `?` but never
/// an unescaped `@`, and header values never contain `@`: the first `@` ends the userinfo.
fn sip_uri_has_headers(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    sip && rest.split_once('@').map_or(rest, |(_, host)| host).contains('?')
}

/// A From/To/Contact value: name-addr or addr-spec, with the RFC 3261 §20.10 rules the
/// typed parser skips: an unquoted display name is tokens only (RFC 4475 §3.1.2.15; UTF-8
/// is tolerated, separators are not), and an addr-spec with `?` (or `,`) must be in `<>`
/// (RFC 4475 §3.1.2.13).
fn is_address(value: &str) -> bool {
    let value = value.trim();
    if name_addr_uri(value).is_none() {
        return false;
    }
    match find_unquoted(value, '<') {
        Some(open) => {
            let name = value[..open].trim();
            let Some(close) = value[open..].find('>') else {
                return false;
            };
            let params = &value[open + close + 1..];
            let word_ok = |w: &str| w.bytes().all(|b| b >= 0x80 || is_token_byte(b));
            (name.starts_with('"') || name.split_whitespace().all(word_ok))
                && (params.trim().is_empty() || params.trim_start().starts_with(';'))
                && params_ok(params)
        }
        None => !value.split(';').next().unwrap_or_default().contains(['?', ',']) && params_ok(value),
    }
}

/// The `;name[=value]` parameters after a URI or sent-by (everything before the first `;`
/// is not looked at): each needs a token name, so `;;` is an error (RFC 4475 §3.1.2.1).
/// Quoted values may contain `;`.
fn params_ok(s: &str) -> bool {
    let (mut in_quotes, mut escaped) = (false, false);
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => {
                pieces.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    !in_quotes && pieces.iter().skip(1).all(|p| is_token(p.split('=').next().unwrap_or_default().trim()))
}

/// RFC 3261 `SIP-date` (an RFC 1123 date, always GMT): `Sat, 13 Nov 2010 23:29:00 GMT`.
fn is_sip_date(value: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some((day, rest)) = value.split_once(", ") else {
        return false;
    };
    let parts: Vec<&str> = rest.split(' ').collect();
    let [date, month, year, time, zone] = parts[..] else {
        return false;
    };
    let time: Vec<&str> = time.split(':').collect();
    DAYS.contains(&day)
        && digits(date, 2)
        && MONTHS.contains(&month)
        && digits(year, 4)
        && time.len() == 3
        && time.iter().all(|t| digits(t, 2))
        && zone == "GMT"
}

/// One Via value. The typed parser knows only the transports it implements, but any
/// token is a valid `other-transport` (RFC 4475 §3.1.1.10): check those as if UDP.
fn check_via(via: &str) -> Result<(), String> {
    if !params_ok(via) {
        return Err(format!("bad parameter in {:?}", short(via)));
    }
    let err = match rsipstack::sip::typed::Via::parse(via) {
        Ok(_) => return Ok(()),
        Err(e) => e.to_string(),
    };
    let mut slashes = via.splitn(3, '/');
    if let (Some(protocol), Some(version), Some(rest)) = (slashes.next(), slashes.next(), slashes.next())
        && let Some((transport, sent_by)) = rest.trim_start().split_once(char::is_whitespace)
        && is_token(transport)
        && rsipstack::sip::Transport::try_from(transport).is_err()
    {
        let known = format!("{protocol}/{version}/UDP {sent_by}");
        return rsipstack::sip::typed::Via::parse(&known).map(|_| ()).map_err(|e| e.to_string());
    }
    Err(err)
}

fn short(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    s
}

/// Split list-valued headers (Via, Route, Record-Route, Contact) so each value is its
/// own header: transaction matching and route sets then work on single values.
fn normalize(mut msg: SipMessage) -> SipMessage {
    let headers = match &mut msg {
        SipMessage::Request(r) => {
            unescape_userinfo(&mut r.uri);
            &mut r.headers
        }
        SipMessage::Response(r) => &mut r.headers,
    };
    let mut out = Vec::with_capacity(headers.len());
    for h in std::mem::take(&mut headers.0) {
        let name = h.name().to_string();
        if ["Via", "Route", "Record-Route", "Contact"].iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            let value = h.value().to_string();
            let parts = split_list(&value);
            if parts.len() > 1 {
                out.extend(parts.into_iter().map(|p| make_header(&name, p.to_string())));
                continue;
            }
        }
        out.push(h);
    }
    headers.0 = out;
    msg
}

/// rsipstack keeps a URI's userinfo as written (`%40` stays `%40`) but percent-encodes it
/// again when printing, so `sip:a%40b@x` would go out as `sip:a%2540b@x`. Decoding it once
/// after parsing makes printing restore the escapes (RFC 4475 §3.1.1.3, §3.1.1.4).
fn unescape_userinfo(uri: &mut Uri) {
    if let Some(auth) = uri.auth.as_mut() {
        auth.user = percent_decode(&auth.user);
        if let Some(password) = auth.password.as_mut() {
            *password = percent_decode(password);
        }
    }
}

/// `%XX` escapes decoded; the input unchanged when the result would not be UTF-8.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Split a comma-separated header value, respecting quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = split_list_with_empty(value);
    parts.retain(|p| !p.is_empty());
    parts
}

/// [`split_list`] keeping empty elements (`a,,b` → `a`, ``, `b`), for validation.
fn split_list_with_empty(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut in_angle, mut escaped) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts
}

/// The URI inside a name-addr or addr-spec (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`).
pub fn name_addr_uri(value: &str) -> Option<&str> {
    let value = value.trim();
    let uri = if let Some(open) = find_unquoted(value, '<') {
        let rest = &value[open + 1..];
        &rest[..rest.find('>')?]
    } else {
        // addr-spec: parameters after ';' belong to the header, not the URI
        value.split(';').next()?.trim()
    };
    let (scheme, rest) = uri.split_once(':')?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) && !rest.is_empty())
        .then_some(uri)
}

/// The display name of a name-addr, unquoted.
pub fn display_name(value: &str) -> Option<String> {
    let value = value.trim();
    let open = find_unquoted(value, '<')?;
    let name = value[..open].trim();
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        // quoted-pair: a backslash escapes the next character, `\\` included
        Some(quoted) => {
            let mut out = String::with_capacity(quoted.len());
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or(c) } else { c });
            }
            out
        }
        None => name.to_string(),
    };
    (!name.is_empty()).then_some(name)
}

fn find_unquoted(s: &str, needle: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && in_quotes {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == needle && !in_quotes {
            return Some(i);
        }
    }
    None
}

/// A header parameter (`;tag=…`, `;branch=…`) from a header value, outside the `<…>` URI.
pub fn header_param(value: &str, name: &str) -> Option<String> {
    let after_uri = match find_unquoted(value, '<') {
        Some(open) => &value[open + value[open..].find('>')? + 1..],
        None => value,
    };
    uri_param(after_uri, name)
}

/// A `;name=value` parameter from a parameter list (no URI brackets involved).
pub fn uri_param(params: &str, name: &str) -> Option<String> {
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Convenience accessors used everywhere in the SIP layer.
pub trait MessageExt: HasHeaders {
    /// First value of a header (compact forms already expanded by the parser).
    fn header(&self, name: &str) -> Option<String> {
        self.headers().iter().find(|h| h.name().eq_ignore_ascii_case(name)).map(|h| h.value().trim().to_string())
    }
    /// Every value of a header, in order.
    fn headers_named(&self, name: &str) -> Vec<String> {
        self.headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value().trim().to_string())
            .collect()
    }
    /// Replace all values of a header by one.
    fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.remove_header(name);
        self.headers_mut().push(make_header(name, value.into()));
    }
    /// Append a header value.
    fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers_mut().push(make_header(name, value.into()));
    }
    /// Remove all values of a header.
    fn remove_header(&mut self, name: &str) {
        self.headers_mut().retain(|h| !h.name().eq_ignore_ascii_case(name));
    }
    /// Call-ID value.
    fn call_id(&self) -> String {
        self.header("Call-ID").unwrap_or_default()
    }
    /// CSeq number and method name.
    fn cseq(&self) -> (u32, String) {
        let v = self.header("CSeq").unwrap_or_default();
        let mut it = v.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (n, it.next().unwrap_or_default().to_string())
    }
    /// The tag of the From header.
    #[allow(clippy::wrong_self_convention)] // the SIP From header's tag, not a conversion
    fn from_tag(&self) -> Option<String> {
        self.header("From").and_then(|v| header_param(&v, "tag"))
    }
    /// The tag of the To header.
    fn to_tag(&self) -> Option<String> {
        self.header("To").and_then(|v| header_param(&v, "tag"))
    }
    /// The branch parameter of the top Via.
    fn top_branch(&self) -> Option<String> {
        self.header("Via").and_then(|v| uri_param(&v, "branch"))
    }
    /// The body as text (SDP, sipfrag, JSON are all text).
    fn body_text(&self) -> String;
}

impl MessageExt for Request {
    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
impl MessageExt for Response {
    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Status code as a number.
pub fn code(resp: &Response) -> u16 {
    u16::from(resp.status_code.clone())
}

/// A response status as `(code, reason phrase)` with the phrase the peer sent, if any.
pub fn status_text(resp: &Response) -> String {
    resp.wire_reason.clone().unwrap_or_else(|| resp.status_code.text().to_string())
}

/// Build a request; headers are given in order as (name, value).
pub fn request(
    method: Method,
    uri: &str,
    headers: Vec<(&str, String)>,
    body: Vec<u8>,
) -> Result<Request, rsipstack::sip::Error> {
    let mut uri: Uri = rsipstack::sip::parse_uri(uri)?;
    unescape_userinfo(&mut uri);
    let mut req = Request { method, uri, version: Version::V2, headers: Headers::default(), body };
    for (n, v) in headers {
        req.add_header(n, v);
    }
    Ok(req)
}

/// Build a response to `req` (RFC 3261 §8.2.6): Via, From, To, Call-ID, CSeq copied,
/// a To tag added when `to_tag` is given and the request had none.
pub fn response_to(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let status_code = StatusCode::from(code);
    let mut resp =
        Response { status_code, wire_reason: None, version: Version::V2, headers: Headers::default(), body: vec![] };
    for v in req.headers_named("Via") {
        resp.add_header("Via", v);
    }
    if let Some(from) = req.header("From") {
        resp.add_header("From", from);
    }
    if let Some(mut to) = req.header("To") {
        if let (Some(tag), None) = (to_tag, header_param(&to, "tag")) {
            to.push_str(";tag=");
            to.push_str(tag);
        }
        resp.add_header("To", to);
    }
    resp.add_header("Call-ID", req.call_id());
    if let Some(cseq) = req.header("CSeq") {
        resp.add_header("CSeq", cseq);
    }
    resp
}

/// Serialise a request, fixing Content-Length to the body.
pub fn request_bytes(req: &Request) -> Vec<u8> {
    let mut out = format!("{} {} SIP/2.0\r\n", req.method, req.uri);
    write_headers(&mut out, req.headers(), req.body.len());
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// Serialise a response with its own reason phrase when it has one.
pub fn response_bytes(resp: &Response) -> Vec<u8> {
    let reason = resp.wire_reason.clone().unwrap_or_else(|| resp.status_code.text().to_string());
    let mut out = format!("SIP/2.0 {} {}\r\n", code(resp), reason);
    write_headers(&mut out, resp.headers(), resp.body.len());
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp.body);
    bytes
}

/// Serialise any message.
pub fn message_bytes(msg: &SipMessage) -> Vec<u8> {
    match msg {
        SipMessage::Request(r) => request_bytes(r),
        SipMessage::Response(r) => response_bytes(r),
    }
}

fn write_headers(out: &mut String, headers: &Headers, body_len: usize) {
    for h in headers.iter() {
        if h.name().eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        let _ = write!(out, "{}: {}\r\n", h.name(), h.value());
    }
    let _ = write!(out, "Content-Length: {body_len}\r\n\r\n");
}

/// The To header of a request without any tag (for CANCEL, which must match the INVITE).
pub fn dialog_free_to(req: &Request) -> String {
    crate::sip::dialog::strip_tag(&req.header("To").unwrap_or_default())
}

/// Fresh random token for tags, branches and Call-IDs.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// A new RFC 3261 branch (magic cookie prefix).
pub fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nf: \"Alice A\" <sip:alice@example.com>;tag=abc\r\nt: <sip:bob@example.com>\r\ni: call1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn parses_compact_and_splits_vias() {
        let SipMessage::Request(req) = parse(INVITE.as_bytes()).expect("valid") else { panic!("request") };
        assert_eq!(req.headers_named("Via").len(), 2);
        assert_eq!(req.top_branch().as_deref(), Some("z9hG4bK1"));
        assert_eq!(req.from_tag().as_deref(), Some("abc"));
        assert_eq!(req.to_tag(), None);
        assert_eq!(req.call_id(), "call1");
        assert_eq!(req.cseq(), (1, "INVITE".to_string()));
        assert_eq!(req.body, b"v=0\n");
        assert_eq!(display_name(&req.header("From").unwrap()).as_deref(), Some("Alice A"));
    }

    #[test]
    fn unknown_method_gets_501() {
        let msg = INVITE.replace("INVITE sip", "FOOBAR sip").replace("1 INVITE", "1 FOOBAR");
        let err = parse(msg.as_bytes()).unwrap_err();
        let reply = String::from_utf8(err.reply().unwrap().to_vec()).unwrap();
        assert!(reply.starts_with("SIP/2.0 501 "), "{reply}");
        assert!(reply.contains("Call-ID: call1"));
        assert!(reply.contains("branch=z9hG4bK1"));
    }

    #[test]
    fn missing_call_id_gets_400_with_reason() {
        let msg = INVITE.replace("i: call1\r\n", "");
        let err = parse(msg.as_bytes()).unwrap_err();
        let reply = String::from_utf8(err.reply().unwrap().to_vec()).unwrap();
        assert!(reply.starts_with("SIP/2.0 400 missing Call-ID"), "{reply}");
    }

    #[test]
    fn bad_content_length_and_cseq_are_refused() {
        assert!(parse(INVITE.replace("Content-Length: 4", "Content-Length: 400").as_bytes()).is_err());
        assert!(parse(INVITE.replace("Content-Length: 4", "Content-Length: -4").as_bytes()).is_err());
        assert!(parse(INVITE.replace("1 INVITE", "1 BYE").as_bytes()).is_err());
        assert!(parse(INVITE.replace("1 INVITE", "99999999999 INVITE").as_bytes()).is_err());
    }

    #[test]
    fn oversized_is_513() {
        let big = INVITE.replace("Contact:", &format!("X-Pad: {}\r\nContact:", "a".repeat(MAX_MESSAGE_SIZE)));
        let err = parse(big.as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::TooLarge { .. }));
        assert!(err.reply().unwrap().starts_with(b"SIP/2.0 513"));
    }

    #[test]
    fn response_roundtrip_keeps_reason_and_headers() {
        let SipMessage::Request(req) = parse(INVITE.as_bytes()).unwrap() else { panic!() };
        let mut resp = response_to(&req, 180, Some("xyz"));
        resp.wire_reason = Some("Ringing Now".into());
        let bytes = response_bytes(&resp);
        let SipMessage::Response(back) = parse(&bytes).unwrap() else { panic!() };
        assert_eq!(code(&back), 180);
        assert_eq!(status_text(&back), "Ringing Now");
        assert_eq!(back.to_tag().as_deref(), Some("xyz"));
        assert_eq!(back.headers_named("Via").len(), 2);
    }

    #[test]
    fn header_params() {
        assert_eq!(header_param("<sip:a@b;tag=no>;tag=yes", "tag").as_deref(), Some("yes"));
        assert_eq!(header_param("sip:a@b;tag=yes", "tag").as_deref(), Some("yes"));
        assert_eq!(split_list("<sip:a,b@x>, \"x,y\" <sip:c@d>"), vec!["<sip:a,b@x>", "\"x,y\" <sip:c@d>"]);
    }
}
