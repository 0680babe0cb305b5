//! RFC 4475 torture tests: the §3.1.1 (valid) and §3.1.2 (invalid) parser test messages,
//! byte-exact, under tests/torture/{valid,invalid}/NAME.sip.
//!
//! Every valid message must parse, except where the RFC itself says a UA answers it with
//! 501 (an unknown method is well-formed, but not ours to serve). Every invalid message must
//! be refused; a refused request is answered with the status the RFC asks for (400, 501,
//! 505), a refused response is dropped without an answer. Anything our parser still gets
//! wrong goes into [`KNOWN_GAPS`], which is asserted to still fail so it cannot rot.

use orbitphone::phone::account::Account;
use orbitphone::phone::{Engine, Output};
use orbitphone::sip::message::{self, MessageExt, Method, ParseError, SipMessage};
use orbitphone::sip::transaction::{Output as TxOutput, TransactionLayer};
use orbitphone::sip::transport::{Frame, Peer, StreamFramer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// What `message::parse` must do with a torture message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parses as a request with this method.
    Request(&'static str),
    /// Parses as a response with this status code.
    Response(u16),
    /// Refused; the ready answer has this status code.
    Reply(u16),
    /// Refused without an answer (a response is never answered).
    Dropped,
}
use Expect::*;

/// RFC 4475 §3.1.1: valid messages.
const VALID: &[(&str, Expect)] = &[
    // §3.1.1.1 A Short Tortuous INVITE: folding, odd LWS, compact forms, unknown headers.
    ("wsinv", Request("INVITE")),
    // §3.1.1.2 Wide Range of Valid Characters: the method is an (unusual) extension
    // method; "an element receiving this request will respond with a 501 Not Implemented"
    // unless it knows the method. We know only the RFC 3261-family methods: 501.
    ("intmeth", Reply(501)),
    // §3.1.1.3 Valid Use of the % Escaping Mechanism.
    ("esc01", Request("INVITE")),
    // §3.1.1.4 Escaped Nulls in URIs.
    ("escnull", Request("REGISTER")),
    // §3.1.1.5 Use of % When It Is Not an Escape: `RE%47IST%45R` is NOT REGISTER but an
    // unknown method, so the RFC expects a 501 Not Implemented from a UA.
    ("esc02", Reply(501)),
    // §3.1.1.6 Message with No LWS between Display Name and <.
    ("lwsdisp", Request("OPTIONS")),
    // §3.1.1.7 Long Values in Header Fields (34 Vias in every spelling).
    ("longreq", Request("INVITE")),
    // §3.1.1.8 Extra Trailing Octets in a UDP Datagram: the REGISTER is used, the INVITE
    // after its Content-Length is discarded.
    ("dblreq", Request("REGISTER")),
    // §3.1.1.9 Semicolon-Separated Parameters in URI User Part.
    ("semiuri", Request("OPTIONS")),
    // §3.1.1.10 Varied and Unknown Transport Types (SCTP, UNKNOWN in lower Vias).
    ("transports", Request("OPTIONS")),
    // §3.1.1.11 Multipart MIME Message with a binary part.
    ("mpart01", Request("MESSAGE")),
    // §3.1.1.12 Unusual Reason Phrase (UTF-8).
    ("unreason", Response(200)),
    // §3.1.1.13 Empty Reason Phrase.
    ("noreason", Response(100)),
];

/// RFC 4475 §3.1.2: invalid messages.
const INVALID: &[(&str, Expect)] = &[
    // §3.1.2.1 Extraneous Header Field Separators: "should respond with a 400".
    ("badinv01", Reply(400)),
    // §3.1.2.2 Content Length Larger Than Message: over UDP, 400.
    ("clerr", Reply(400)),
    // §3.1.2.3 Negative Content-Length: 400.
    ("ncl", Reply(400)),
    // §3.1.2.4 Request Scalar Fields with Overlarge Values: 400.
    ("scalar02", Reply(400)),
    // §3.1.2.5 Response Scalar Fields with Overlarge Values: a response, dropped.
    ("scalarlg", Dropped),
    // §3.1.2.6 Unterminated Quoted String in Display Name: 400.
    ("quotbal", Reply(400)),
    // §3.1.2.7 <> Enclosing Request-URI: 400.
    ("ltgtruri", Reply(400)),
    // §3.1.2.8 Malformed SIP Request-URI (embedded LWS): 400.
    ("lwsruri", Reply(400)),
    // §3.1.2.9 Multiple SP Separating Request-Line Elements: rejecting (400) is acceptable.
    ("lwsstart", Reply(400)),
    // §3.1.2.10 SP Characters at End of Request-Line: rejecting (400) is acceptable.
    ("trws", Reply(400)),
    // §3.1.2.11 Escaped Headers in SIP Request-URI: rejecting with 400 is acceptable.
    ("escruri", Reply(400)),
    // §3.1.2.12 Invalid Time Zone in Date Header Field: rejecting (400) is acceptable.
    ("baddate", Reply(400)),
    // §3.1.2.13 Failure to Enclose name-addr URI in <>: 400.
    ("regbadct", Reply(400)),
    // §3.1.2.14 Spaces within addr-spec: rejecting with 400 is reasonable.
    ("badaspec", Reply(400)),
    // §3.1.2.15 Non-token Characters in Display Name: 400.
    ("baddn", Reply(400)),
    // §3.1.2.16 Unknown Protocol Version: 505 Version Not Supported.
    ("badvers", Reply(505)),
    // §3.1.2.17 Start Line and CSeq Method Mismatch: 400.
    ("mismatch01", Reply(400)),
    // §3.1.2.18 Unknown Method with CSeq Method Mismatch: "should respond with a 501 Not
    // Implemented. A 400 Bad Request is also acceptable"; the method check comes first.
    ("mismatch02", Reply(501)),
    // §3.1.2.19 Overlarge Response Code: a response, dropped.
    ("bigcode", Dropped),
];

/// Messages our parser still handles against the RFC, as (name, what goes wrong). Each
/// one is asserted to still miss its expectation above: when a fix lands, the test
/// fails until the entry is removed here.
const KNOWN_GAPS: &[(&str, &str)] = &[];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

fn load(kind: &str, name: &str) -> Vec<u8> {
    let path = dir().join(kind).join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names_on_disk(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line.strip_prefix(b"SIP/2.0 ")?).ok()?.get(..3)?.parse().ok()
}

/// What actually happened, in the vocabulary of [`Expect`].
fn outcome(result: &Result<SipMessage, ParseError>) -> Result<Expect, String> {
    match result {
        Ok(SipMessage::Request(r)) => Ok(Request(match r.method.to_string().as_str() {
            "INVITE" => "INVITE",
            "REGISTER" => "REGISTER",
            "OPTIONS" => "OPTIONS",
            "MESSAGE" => "MESSAGE",
            other => return Err(format!("parsed as an unexpected {other} request")),
        })),
        Ok(SipMessage::Response(r)) => Ok(Response(message::code(r))),
        Err(e) => match e.reply() {
            None => Ok(Dropped),
            Some(reply) => status_of(reply)
                .map(Reply)
                .ok_or_else(|| format!("unparseable reply {:?}", String::from_utf8_lossy(reply))),
        },
    }
}

fn check_table(kind: &str, table: &[(&str, Expect)]) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut failures = Vec::new();
    for &(name, expect) in table {
        let result = message::parse(&load(kind, name));
        let got = outcome(&result);
        let ok = got.as_ref() == Ok(&expect);
        match KNOWN_GAPS.iter().find(|(gap, _)| *gap == name) {
            Some((_, why)) if ok => {
                failures.push(format!("{kind}/{name} is listed in KNOWN_GAPS ({why}) but now works: remove it"))
            }
            Some(_) => passed += 1,
            None if ok => passed += 1,
            None => failures.push(format!("{kind}/{name}: expected {expect:?}, got {got:?} from {result:?}")),
        }
    }
    (passed, failures)
}

#[test]
fn every_torture_file_has_an_expectation() {
    for (kind, table) in [("valid", VALID), ("invalid", INVALID)] {
        let mut listed: Vec<String> = table.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(names_on_disk(kind), listed, "tests/torture/{kind} and the table differ");
    }
    assert_eq!(VALID.len(), 13, "RFC 4475 §3.1.1 has 13 messages");
    assert_eq!(INVALID.len(), 19, "RFC 4475 §3.1.2 has 19 messages");
    for (gap, _) in KNOWN_GAPS {
        assert!(VALID.iter().chain(INVALID).any(|(n, _)| n == gap), "KNOWN_GAPS names unknown message {gap}");
    }
}

#[test]
fn valid_messages_parse() {
    let (passed, failures) = check_table("valid", VALID);
    assert!(failures.is_empty(), "{passed} passed, failures:\n{}", failures.join("\n"));
}

#[test]
fn invalid_messages_are_refused() {
    for &(name, expect) in INVALID {
        assert!(!matches!(expect, Request(_) | Response(_)), "{name}: an invalid message must be expected to fail");
    }
    let (passed, failures) = check_table("invalid", INVALID);
    assert!(failures.is_empty(), "{passed} passed, failures:\n{}", failures.join("\n"));
}

/// The canned answer to a refused request is itself a proper RFC 3261 response: it copies
/// every Via, From, Call-ID and CSeq, adds a To tag (§8.2.6.2), and never answers an ACK.
#[test]
fn refusals_copy_the_transaction_headers() {
    for &(name, expect) in VALID.iter().chain(INVALID) {
        let Reply(code) = expect else { continue };
        let data = load(if VALID.contains(&(name, expect)) { "valid" } else { "invalid" }, name);
        let err = message::parse(&data).unwrap_err();
        let reply = String::from_utf8(err.reply().unwrap().to_vec()).unwrap();
        assert!(reply.starts_with(&format!("SIP/2.0 {code} ")), "{name}: {reply}");
        assert!(reply.ends_with("Content-Length: 0\r\n\r\n"), "{name}: {reply}");
        let head = String::from_utf8_lossy(&data[..data.windows(4).position(|w| w == b"\r\n\r\n").unwrap()]);
        for line in head.split("\r\n").skip(1) {
            if let Some(v) = line.strip_prefix("Call-ID: ") {
                assert!(reply.contains(&format!("Call-ID: {v}\r\n")), "{name}: {reply}");
            }
        }
        let to = reply.lines().find(|l| l.starts_with("To: ")).unwrap_or_else(|| panic!("{name}: {reply}"));
        assert!(message::header_param(to, "tag").is_some(), "{name}: no To tag in {to:?}");
        assert_eq!(
            reply.lines().filter(|l| l.starts_with("Via: ")).count(),
            head.split("\r\n").filter(|l| l.starts_with("Via")).count(),
            "{name}: every Via is copied"
        );
    }
}

#[test]
fn the_501_for_intmeth_keeps_its_control_characters_quoted() {
    // §3.1.1.2's To display name holds escaped BEL, NUL and DEL: dropping them would leave
    // `\"` closing nothing, so the answer must copy them as they are.
    let err = message::parse(&load("valid", "intmeth")).unwrap_err();
    assert!(matches!(err, ParseError::UnknownMethod { ref method, .. } if method.starts_with("!interesting")));
    let reply = err.reply().unwrap();
    let to = b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>;tag=";
    assert!(reply.windows(to.len()).any(|w| w == to), "{}", String::from_utf8_lossy(reply));
    assert!(reply.windows(30).any(|w| w == b"CSeq: 139122385 !interesting-M"));
}

fn request(kind: &str, name: &str) -> message::Request {
    match message::parse(&load(kind, name)) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn wsinv_is_understood_not_just_accepted() {
    let req = request("valid", "wsinv");
    assert_eq!(req.uri.to_string(), "sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert_eq!(req.to_tag().as_deref(), Some("1918181833n"));
    assert_eq!(req.from_tag().as_deref(), Some("98asjd8"));
    assert_eq!(message::display_name(&req.header("From").unwrap()).as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(req.call_id(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(req.cseq(), (9, "INVITE".to_string()));
    // One folded Via plus a `v:` carrying two values: three after splitting.
    let vias = req.headers_named("Via");
    assert_eq!(vias.len(), 3, "{vias:?}");
    assert_eq!(req.top_branch().as_deref(), Some("390skdjuw"));
    assert_eq!(message::uri_param(&vias[2], "branch").as_deref(), Some("z9hG4bK30239"));
    assert_eq!(req.headers_named("Contact").len(), 1);
    assert_eq!(req.header("Max-Forwards").as_deref(), Some("0068"));
    assert_eq!(req.header("NewFangledHeader").as_deref(), Some("newfangled value continued newfangled value"));
    assert_eq!(req.body.len(), 150);
}

#[test]
fn escapes_and_nulls_stay_as_sent() {
    let req = request("valid", "esc01");
    assert_eq!(req.uri.to_string(), "sip:sips%3Auser%40example.com@example.net");
    assert_eq!(req.body.len(), 150);
    let req = request("valid", "escnull");
    assert_eq!(req.headers_named("Contact").len(), 2);
    assert_eq!(req.to_tag(), None);
    let req = request("valid", "semiuri");
    assert_eq!(req.uri.to_string(), "sip:user;par=u%40example.net@example.com");
    let req = request("valid", "lwsdisp");
    assert_eq!(message::display_name(&req.header("From").unwrap()).as_deref(), Some("caller"));
}

#[test]
fn escapes_go_out_as_they_came_in() {
    // The typed URI re-encodes its userinfo when printed; it must not escape `%` twice.
    let req = request("valid", "esc01");
    let bytes = message::request_bytes(&req);
    assert!(bytes.starts_with(b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"));
    let req = message::request(Method::Invite, "sip:I%20have%20spaces@example.net", vec![], vec![]).unwrap();
    let bytes = message::request_bytes(&req);
    assert!(bytes.starts_with(b"INVITE sip:I%20have%20spaces@example.net SIP/2.0\r\n"));
}

/// Choices beyond RFC 4475 made with the fixes for it, pinned here.
#[test]
fn liberal_where_it_is_harmless() {
    let base = String::from_utf8(load("valid", "lwsdisp")).unwrap();
    // An unquoted UTF-8 display name is not a token, but no separator hides in it.
    let utf8 = base.replace("From: caller<", "From: Jürgen Müller <");
    assert!(message::parse(utf8.as_bytes()).is_ok());
    // A well-formed Date is fine in a request; a bad one only costs a response nothing.
    let dated = base.replace("l: 0", "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\nl: 0");
    assert!(message::parse(dated.as_bytes()).is_ok());
    let noreason = String::from_utf8(load("valid", "noreason")).unwrap();
    let bad_date = noreason.replace("Content-Length: 0", "Date: 13 Nov 2010 EST\r\nContent-Length: 0");
    assert!(message::parse(bad_date.as_bytes()).is_ok());
}

#[test]
fn long_values_and_many_vias_survive() {
    let req = request("valid", "longreq");
    let vias = req.headers_named("Via");
    assert_eq!(vias.len(), 34, "every spelling of Via (and v) counts");
    assert!(vias[0].contains("sip33.example.com"));
    assert!(req.top_branch().is_none(), "the top Via has no branch");
    assert!(req.call_id().starts_with("longreq.onereally"));
    assert_eq!(req.body.len(), 150);
}

#[test]
fn trailing_octets_after_content_length_are_discarded() {
    let req = request("valid", "dblreq");
    assert_eq!(req.call_id(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
    assert!(req.body.is_empty(), "the second request is not a body: {:?}", req.body);
}

#[test]
fn unknown_transports_are_kept() {
    let req = request("valid", "transports");
    let vias = req.headers_named("Via");
    assert_eq!(vias.len(), 5);
    assert!(vias[3].starts_with("SIP/2.0/UNKNOWN "));
    assert_eq!(req.top_branch().as_deref(), Some("z9hG4bKkdjuw"));
}

#[test]
fn binary_multipart_body_is_kept_byte_exact() {
    let data = load("valid", "mpart01");
    let req = request("valid", "mpart01");
    assert_eq!(req.body.len(), 553);
    assert_eq!(&data[data.len() - 553..], &req.body[..]);
}

#[test]
fn reason_phrases_are_kept() {
    let SipMessage::Response(resp) = message::parse(&load("valid", "unreason")).unwrap() else {
        panic!("unreason is a response")
    };
    assert_eq!(message::status_text(&resp), "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert_eq!(resp.body.len(), 154);
    let SipMessage::Response(resp) = message::parse(&load("valid", "noreason")).unwrap() else {
        panic!("noreason is a response")
    };
    assert_eq!(message::code(&resp), 100);
}

fn peer() -> Peer {
    Peer { transport: Transport::Udp, addr: SocketAddr::from(([127, 0, 0, 1], 5099)) }
}

fn engine() -> Engine {
    let account = Account::new("sip:user@example.com");
    let local = HashMap::from([(Transport::Udp, SocketAddr::from(([127, 0, 0, 1], 5060)))]);
    Engine::new(account, local)
}

/// Every torture message through the engine and the transaction layer: no panic, and a
/// refused request gets exactly the parser's answer, sent back to where it came from.
#[test]
fn engine_and_transactions_take_every_torture_message() {
    let now = Instant::now();
    for &(name, expect) in VALID.iter().chain(INVALID) {
        let data = load(if VALID.contains(&(name, expect)) { "valid" } else { "invalid" }, name);
        let mut e = engine();
        e.handle_datagram(now, &data, peer());
        let sent: Vec<Vec<u8>> = std::iter::from_fn(|| e.poll_output())
            .filter_map(|o| match o {
                Output::Transmit { to, bytes } => {
                    assert_eq!(to, peer(), "{name}: answers go back to the source");
                    Some(bytes)
                }
                _ => None,
            })
            .collect();
        match expect {
            Reply(code) => {
                assert_eq!(sent.len(), 1, "{name}: one answer");
                assert_eq!(status_of(&sent[0]), Some(code), "{name}");
            }
            Dropped | Response(_) => {
                assert!(sent.is_empty(), "{name}: responses are never answered")
            }
            Request(_) => {
                for bytes in &sent {
                    let answer = message::parse(bytes).unwrap_or_else(|e| panic!("{name}: our answer {e}"));
                    assert!(matches!(answer, SipMessage::Response(_)), "{name}");
                }
            }
        }
        if let Ok(msg) = message::parse(&data) {
            let mut tl = TransactionLayer::new();
            tl.receive(now, msg, peer());
            while let Some(out) = tl.poll_output() {
                if let TxOutput::Transmit { to, .. } = out {
                    assert_eq!(to, peer(), "{name}");
                }
            }
        }
    }
}

/// The valid messages, sent back to back on one TCP connection in odd-sized reads, come
/// out of the stream framer one by one (dblreq is two messages on a stream: §3.1.1.8's
/// discard rule is for datagrams).
#[test]
fn stream_framer_cuts_the_valid_messages_apart() {
    let names: Vec<&str> = VALID.iter().map(|(n, _)| *n).filter(|n| *n != "dblreq").collect();
    let stream: Vec<u8> = names.iter().flat_map(|n| load("valid", n)).collect();
    for chunk in [1, 7, 100, 4096] {
        let mut framer = StreamFramer::default();
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk) {
            framer.push(piece);
            while let Some(f) = framer.next_frame() {
                frames.push(f);
            }
        }
        assert_eq!(framer.pending(), 0, "chunk {chunk}");
        let expected: Vec<Frame> = names.iter().map(|n| Frame::Message(load("valid", n))).collect();
        assert_eq!(frames, expected, "chunk {chunk}");
    }
}
