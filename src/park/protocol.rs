//! The park wire protocol's bodies (see docs/park-protocol.md): what the parker puts in
//! its SUBSCRIBE and what the service reports in NOTIFYs. Shared by the service and the
//! phone's park client so both always agree.

use serde::{Deserialize, Serialize};

/// Event package name of the park control subscription.
pub const EVENT: &str = "call-park";
/// Content type of park bodies.
pub const CONTENT_TYPE: &str = "application/call-park+json";

/// The SUBSCRIBE body: which dialog to park, as the parker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkRequest {
    /// Call-ID of the parker↔parkee dialog.
    pub call_id: String,
    /// The parker's tag in that dialog.
    pub local_tag: String,
    /// The parkee's tag in that dialog.
    pub remote_tag: String,
    /// The parkee's remote target (Contact) URI.
    pub target: String,
    /// The parkee as the parker knows them (name-addr), shown to retrievers.
    pub parkee: String,
}

/// A NOTIFY body: the park's state as it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ParkNotice {
    /// Accepted; pulling the call.
    Parking,
    /// The parkee refused Replaces: the parker must REFER it to `refer_to` (push).
    Transfer { refer_to: String },
    /// Parked on an orbit.
    Parked {
        orbit: String,
        orbit_uri: String,
        retrieve_uri: String,
        parkee: String,
        /// Unix time (seconds) of the first ring-back.
        ringback_at: u64,
    },
    /// Ringing the parker back: attempt `attempt` of `of`.
    Ringback { attempt: u32, of: u32 },
    /// Sent to the fallback destination.
    Fallback { to: String },
    /// Picked up (final).
    Retrieved { by: String },
    /// The parked caller hung up (final).
    Abandoned,
    /// Disconnected by the service: nobody answered, or the service stopped (final).
    Disconnected { reason: String },
    /// Park failed (final): `no free orbit`, `double park`, `not allowed`, `parkee refused`…
    Failed { reason: String },
}

impl ParkNotice {
    /// Whether this notice ends the subscription.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ParkNotice::Retrieved { .. }
                | ParkNotice::Abandoned
                | ParkNotice::Disconnected { .. }
                | ParkNotice::Failed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_have_the_documented_shape() {
        let n = ParkNotice::Ringback { attempt: 1, of: 3 };
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"{"state":"ringback","attempt":1,"of":3}"#);
        let back: ParkNotice = serde_json::from_str(r#"{"state":"retrieved","by":"\"Carol\" <sip:carol@x>"}"#).unwrap();
        assert!(back.is_final());
        assert!(!ParkNotice::Parking.is_final());
    }
}
