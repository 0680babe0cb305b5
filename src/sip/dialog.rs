//! Dialogs (RFC 3261 §12): identity, CSeq spaces, route set and remote target, and
//! building in-dialog requests. Used by calls, REFER and subscriptions alike.

use super::message::{MessageExt, Method, Request, Response, header_param, name_addr_uri, random_token};

/// One dialog as seen from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID shared by both ends.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Their tag (empty while an outgoing INVITE has no tagged response yet).
    pub remote_tag: String,
    /// Our name-addr without tag, as used in From of our requests.
    pub local_party: String,
    /// Their name-addr without tag, as used in To of our requests.
    pub remote_party: String,
    /// CSeq of our last request.
    pub local_seq: u32,
    /// CSeq of their last request, to spot retransmissions and out-of-order requests.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go (their Contact).
    pub remote_target: String,
    /// Record-Route, in the order our requests must carry it as Route.
    pub route_set: Vec<String>,
    /// Our Contact URI.
    pub local_contact: String,
}

/// A name-addr value with any `;tag=` parameter removed.
pub fn strip_tag(value: &str) -> String {
    value.split(';').filter(|p| !p.trim().to_ascii_lowercase().starts_with("tag=")).collect::<Vec<_>>().join(";")
}

fn contact_uri(msg_contact: Option<String>) -> Option<String> {
    msg_contact.as_deref().and_then(name_addr_uri).map(str::to_string)
}

impl Dialog {
    /// The dialog an outgoing request (INVITE, SUBSCRIBE, REFER) creates when a tagged
    /// response arrives (§12.1.2): route set is the Record-Route list reversed.
    pub fn as_uac(req: &Request, resp: &Response, local_contact: &str) -> Option<Dialog> {
        let mut route_set: Vec<String> = resp.headers_named("Record-Route");
        route_set.reverse();
        Some(Dialog {
            call_id: req.call_id(),
            local_tag: req.from_tag()?,
            remote_tag: resp.to_tag().unwrap_or_default(),
            local_party: strip_tag(&req.header("From")?),
            remote_party: strip_tag(&req.header("To")?),
            local_seq: req.cseq().0,
            remote_seq: None,
            remote_target: contact_uri(resp.header("Contact")).unwrap_or_else(|| req.uri.to_string()),
            route_set,
            local_contact: local_contact.to_string(),
        })
    }

    /// The dialog created by answering a request (§12.1.1): route set in Record-Route order.
    pub fn as_uas(req: &Request, local_tag: &str, local_contact: &str) -> Option<Dialog> {
        Some(Dialog {
            call_id: req.call_id(),
            local_tag: local_tag.to_string(),
            remote_tag: req.from_tag().unwrap_or_default(),
            local_party: strip_tag(&req.header("To")?),
            remote_party: strip_tag(&req.header("From")?),
            local_seq: rand::random::<u16>() as u32 + 1,
            remote_seq: Some(req.cseq().0),
            remote_target: contact_uri(req.header("Contact"))?,
            route_set: req.headers_named("Record-Route"),
            local_contact: local_contact.to_string(),
        })
    }

    /// Whether an incoming request belongs to this dialog.
    pub fn matches_request(&self, req: &Request) -> bool {
        req.call_id() == self.call_id
            && req.to_tag().as_deref() == Some(self.local_tag.as_str())
            && req.from_tag().unwrap_or_default() == self.remote_tag
    }

    /// Whether a response belongs to a request we sent in this dialog.
    pub fn matches_response(&self, resp: &Response) -> bool {
        resp.call_id() == self.call_id && resp.from_tag().as_deref() == Some(self.local_tag.as_str())
    }

    /// Accept an in-dialog request's CSeq; false for a stale one (answer 500, §12.2.2).
    pub fn accept_remote_seq(&mut self, req: &Request) -> bool {
        let seq = req.cseq().0;
        if req.method == Method::Ack || req.method == Method::Cancel {
            return true;
        }
        match self.remote_seq {
            Some(last) if seq <= last => false,
            _ => {
                self.remote_seq = Some(seq);
                true
            }
        }
    }

    /// A target refresh (re-INVITE, UPDATE, their 2xx) may move the remote target.
    pub fn refresh_target(&mut self, contact_header: Option<String>) {
        if let Some(uri) = contact_uri(contact_header) {
            self.remote_target = uri;
        }
    }

    /// Build a new in-dialog request (§12.2.1.1). `via` is the full Via value with a
    /// fresh branch; ACK reuses the INVITE's CSeq number via [`Dialog::ack`].
    pub fn request(&mut self, method: Method, via: String, extra: Vec<(&str, String)>, body: Vec<u8>) -> Request {
        self.local_seq += 1;
        self.build(method, self.local_seq, via, extra, body)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `seq` (new branch, §13.2.2.4).
    pub fn ack(&self, seq: u32, via: String, body: Vec<u8>) -> Request {
        self.build(Method::Ack, seq, via, vec![], body)
    }

    fn build(&self, method: Method, seq: u32, via: String, extra: Vec<(&str, String)>, body: Vec<u8>) -> Request {
        let mut to = self.remote_party.clone();
        if !self.remote_tag.is_empty() {
            to = format!("{to};tag={}", self.remote_tag);
        }
        let mut headers = vec![
            ("Via", via),
            ("Max-Forwards", "70".to_string()),
            ("From", format!("{};tag={}", self.local_party, self.local_tag)),
            ("To", to),
            ("Call-ID", self.call_id.clone()),
            ("CSeq", format!("{seq} {method}")),
        ];
        for r in &self.route_set {
            headers.push(("Route", r.clone()));
        }
        if method != Method::Ack && method != Method::Bye {
            headers.push(("Contact", format!("<{}>", self.local_contact)));
        }
        headers.extend(extra);
        let target = self.remote_target.clone();
        super::message::request(method, &target, headers, body).unwrap_or_else(|_| {
            // The remote target came from a Contact we parsed earlier, so it parses again;
            // fall back to the bare URI form just in case a parameter confuses the parser.
            let bare = target.split(';').next().unwrap_or(&target).to_string();
            let mut req = super::message::request(method, "sip:invalid", vec![], vec![]).expect("static URI parses");
            req.uri = rsipstack::sip::parse_uri(&bare).unwrap_or_default();
            req
        })
    }

    /// The URI of the next hop for in-dialog requests: first route, else the remote target.
    pub fn next_hop(&self) -> String {
        self.route_set
            .first()
            .and_then(|r| name_addr_uri(r).map(str::to_string))
            .unwrap_or_else(|| self.remote_target.clone())
    }

    /// The Replaces value naming this dialog from the other side's point of view
    /// (RFC 3891: call-id;to-tag=<their local tag>;from-tag=<their remote tag>).
    pub fn replaces_for_peer(&self) -> String {
        format!("{};to-tag={};from-tag={}", self.call_id, self.remote_tag, self.local_tag)
    }
}

/// A fresh local tag.
pub fn new_tag() -> String {
    random_token(10)
}

/// Parse a Replaces header value into (call-id, to-tag, from-tag, early-only).
pub fn parse_replaces(value: &str) -> Option<(String, String, String, bool)> {
    let call_id = value.split(';').next()?.trim().to_string();
    let params = format!(";{}", value.split_once(';')?.1);
    let to_tag = super::message::uri_param(&params, "to-tag")?;
    let from_tag = super::message::uri_param(&params, "from-tag")?;
    let early = params.split(';').any(|p| p.trim().eq_ignore_ascii_case("early-only"));
    Some((call_id, to_tag, from_tag, early))
}

/// Read `tag` from a header value (re-export for callers that only have text).
pub fn tag_of(value: &str) -> Option<String> {
    header_param(value, "tag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, response_to};
    use rsipstack::sip::SipMessage;

    fn invite() -> Request {
        let raw = "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@a.example>;tag=at\r\nTo: <sip:bob@b.example>\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1:5060>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n";
        let SipMessage::Request(r) = parse(raw.as_bytes()).unwrap() else { panic!() };
        r
    }

    #[test]
    fn uac_and_uas_route_sets_mirror_each_other() {
        let req = invite();
        let mut resp = response_to(&req, 200, Some("bt"));
        for rr in req.headers_named("Record-Route") {
            resp.add_header("Record-Route", rr);
        }
        resp.add_header("Contact", "<sip:bob@10.0.0.2:5062>");
        let mut uac = Dialog::as_uac(&req, &resp, "sip:alice@10.0.0.1:5060").unwrap();
        let mut uas = Dialog::as_uas(&req, "bt", "sip:bob@10.0.0.2:5062").unwrap();
        assert_eq!(uac.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert_eq!(uas.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(uac.remote_target, "sip:bob@10.0.0.2:5062");
        assert_eq!(uac.next_hop(), "sip:p2;lr");
        let bye = uac.request(Method::Bye, "SIP/2.0/UDP a;branch=z9hG4bKx".into(), vec![], vec![]);
        assert_eq!(bye.cseq(), (8, "BYE".into()));
        assert!(uas.matches_request(&bye));
        assert!(uas.accept_remote_seq(&bye));
        assert!(!uas.accept_remote_seq(&bye), "a repeated CSeq is stale");
        assert_eq!(bye.headers_named("Route"), vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert_eq!(bye.uri.to_string(), "sip:bob@10.0.0.2:5062");
    }

    #[test]
    fn replaces_round_trip() {
        let (c, t, f, e) = parse_replaces("cid;to-tag=bt;from-tag=at;early-only").unwrap();
        assert_eq!((c.as_str(), t.as_str(), f.as_str(), e), ("cid", "bt", "at", true));
        assert!(parse_replaces("cid;to-tag=x").is_none());
    }
}
