//! RFC 4235 `application/dialog-info+xml`: building the busy-lamp document the park
//! service sends for an orbit, and reading one (the phone's Orbits panel).

/// One dialog in a dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    /// Dialog id (unique within the document).
    pub id: String,
    /// `trying`/`proceeding`/`early`/`confirmed`/`terminated`.
    pub state: String,
    /// The remote party (the parked caller, for an orbit).
    pub remote_identity: Option<String>,
    /// Display name of the remote party.
    pub remote_display: Option<String>,
}

/// A dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// The watched URI (`sip:7001@example.com`).
    pub entity: String,
    /// `full` or `partial`.
    pub state: String,
    /// Version, incremented per NOTIFY on a subscription.
    pub version: u32,
    /// Dialogs; empty = the orbit is free.
    pub dialogs: Vec<DialogEntry>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

impl DialogInfo {
    /// Serialise.
    pub fn to_xml(&self) -> String {
        let mut x = format!(
            "<?xml version=\"1.0\"?>\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{}\" state=\"{}\" entity=\"{}\">\n",
            self.version,
            xml_escape(&self.state),
            xml_escape(&self.entity)
        );
        for d in &self.dialogs {
            x.push_str(&format!(
                "  <dialog id=\"{}\" direction=\"recipient\">\n    <state>{}</state>\n",
                xml_escape(&d.id),
                xml_escape(&d.state)
            ));
            if let Some(identity) = &d.remote_identity {
                let display =
                    d.remote_display.as_ref().map(|n| format!(" display=\"{}\"", xml_escape(n))).unwrap_or_default();
                x.push_str(&format!(
                    "    <remote>\n      <identity{display}>{}</identity>\n    </remote>\n",
                    xml_escape(identity)
                ));
            }
            x.push_str("  </dialog>\n");
        }
        x.push_str("</dialog-info>\n");
        x
    }

    /// Parse leniently (attribute order, whitespace, namespaces prefixes are tolerated).
    pub fn parse(xml: &str) -> Option<DialogInfo> {
        let root_start = xml.find("<dialog-info")?;
        let root_end = root_start + xml[root_start..].find('>')?;
        let root = &xml[root_start..root_end];
        let entity = attr(root, "entity")?;
        let state = attr(root, "state").unwrap_or_else(|| "full".into());
        let version = attr(root, "version").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut dialogs = Vec::new();
        let mut rest = &xml[root_end..];
        while let Some(start) = rest.find("<dialog ").or_else(|| rest.find("<dialog>")) {
            let body_start = start + rest[start..].find('>')?;
            let head = &rest[start..body_start];
            let end = body_start + rest[body_start..].find("</dialog>")?;
            let body = &rest[body_start + 1..end];
            let id = attr(head, "id").unwrap_or_default();
            let state = element_text(body, "state").unwrap_or_default();
            let remote = element(body, "remote");
            let (remote_identity, remote_display) = match remote {
                Some(r) => {
                    let ident_head = r.find("<identity").map(|i| &r[i..i + r[i..].find('>').unwrap_or(0)]);
                    (element_text(r, "identity"), ident_head.and_then(|h| attr(h, "display")))
                }
                None => (None, None),
            };
            dialogs.push(DialogEntry { id, state, remote_identity, remote_display });
            rest = &rest[end + "</dialog>".len()..];
        }
        Some(DialogInfo { entity, state, version, dialogs })
    }

    /// Whether any dialog is confirmed/early (the orbit is occupied).
    pub fn busy(&self) -> bool {
        self.dialogs.iter().any(|d| d.state != "terminated")
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!("{name}=");
    let mut search = 0;
    while let Some(i) = tag[search..].find(&pat) {
        let pos = search + i;
        let preceded_ok = pos == 0 || tag.as_bytes()[pos - 1].is_ascii_whitespace();
        let after = &tag[pos + pat.len()..];
        if preceded_ok {
            let quote = after.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = after[1..].find(quote)?;
                return Some(xml_unescape(&after[1..1 + end]));
            }
        }
        search = pos + pat.len();
    }
    None
}

fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = body.find(&format!("<{name}"))?;
    let content_start = open + body[open..].find('>')? + 1;
    let close = content_start + body[content_start..].find(&format!("</{name}>"))?;
    Some(&body[content_start..close])
}

fn element_text(body: &str, name: &str) -> Option<String> {
    element(body, name).map(|t| xml_unescape(t.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_documents() {
        let info = DialogInfo {
            entity: "sip:7001@example.com".into(),
            state: "full".into(),
            version: 3,
            dialogs: vec![DialogEntry {
                id: "orbit-7001".into(),
                state: "confirmed".into(),
                remote_identity: Some("sip:bob@example.com".into()),
                remote_display: Some("Bob & Co".into()),
            }],
        };
        let back = DialogInfo::parse(&info.to_xml()).unwrap();
        assert_eq!(back, info);
        assert!(back.busy());
        let asterisk = r#"<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:701@pbx"><dialog id="701" direction="recipient"><state>terminated</state></dialog></dialog-info>"#;
        let parsed = DialogInfo::parse(asterisk).unwrap();
        assert_eq!(parsed.entity, "sip:701@pbx");
        assert!(!parsed.busy());
        assert!(DialogInfo::parse("<nonsense").is_none());
    }
}
