//! One call's state as the engine tracks it.

use super::api::CallNo;
use super::session::CallMedia;
use crate::sip::dialog::Dialog;
use crate::sip::message::Request;
use crate::sip::transaction::TxKey;
use crate::sip::transport::Peer;

/// Who started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We dialled.
    Outgoing,
    /// They called us.
    Incoming,
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Waiting for the driver to bind an RTP socket.
    Allocating,
    /// Our INVITE is out; no ringing yet.
    Calling,
    /// Our INVITE got 180/183.
    Early,
    /// An incoming call is ringing here.
    Ringing,
    /// Answered, waiting for the ACK.
    Answering,
    /// The call is up.
    Established,
    /// We sent BYE/CANCEL and wait for the answer.
    Terminating,
    /// Over.
    Ended,
}

impl CallState {
    /// Stable name for `status`.
    pub fn name(self) -> &'static str {
        match self {
            CallState::Allocating | CallState::Calling => "calling",
            CallState::Early => "ringing_remote",
            CallState::Ringing => "ringing",
            CallState::Answering => "answering",
            CallState::Established => "established",
            CallState::Terminating => "terminating",
            CallState::Ended => "ended",
        }
    }
}

/// A REFER we received and must report on with NOTIFYs (RFC 3515 implicit subscription).
#[derive(Debug, Clone)]
pub struct ReferOrigin {
    /// The call the REFER arrived on.
    pub call: CallNo,
    /// `Event: refer;id=<cseq>` value.
    pub event: String,
}

/// A call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Handle.
    pub no: CallNo,
    /// Who started it.
    pub direction: Direction,
    /// State.
    pub state: CallState,
    /// The other party (URI or name-addr as shown to the user).
    pub party: String,
    /// The dialog once one exists.
    pub dialog: Option<Dialog>,
    /// Our INVITE (outgoing), kept for CANCEL and auth retries.
    pub invite: Option<Request>,
    /// Next hop of our INVITE.
    pub invite_peer: Option<Peer>,
    /// Credentials that went with the INVITE, reused on the ACK and CANCEL.
    pub invite_auth_headers: Vec<(String, String)>,
    /// Extra headers to put on our INVITE (Replaces, Referred-By…).
    pub extra_headers: Vec<(String, String)>,
    /// The incoming INVITE and its server transaction.
    pub incoming: Option<Request>,
    /// Server transaction of the incoming INVITE.
    pub server_tx: Option<TxKey>,
    /// Our To tag on an incoming call.
    pub local_tag: String,
    /// Media negotiation state.
    pub media: CallMedia,
    /// We hold the call.
    pub local_hold: bool,
    /// They hold the call.
    pub remote_hold: bool,
    /// A re-INVITE of ours is in flight.
    pub reinvite_pending: bool,
    /// Hold state wanted by the re-INVITE in flight or queued.
    pub wanted_hold: Option<bool>,
    /// CSeq of our INVITE whose 2xx we ACKed, and the ACK bytes for retransmitted 2xx.
    pub acked: Option<(u32, Vec<u8>, Peer)>,
    /// User hung up before the 2xx arrived: ACK and BYE it.
    pub cancel_requested: bool,
    /// Why the call is ending, once decided.
    pub end_reason: Option<String>,
    /// This call exists because the other side REFERred us (report progress there).
    pub refer_origin: Option<ReferOrigin>,
    /// On establishment, end this call (it was replaced, RFC 3891).
    pub replaces_call: Option<CallNo>,
    /// `party` came from P-Asserted-Identity (a retrieved parked call).
    pub asserted: bool,
    /// A blind/attended transfer we started on this call; the other call of an attended one.
    pub transfer: Option<Option<CallNo>>,
}

impl Call {
    /// A new call in the Allocating state.
    pub fn new(no: CallNo, direction: Direction, party: String) -> Self {
        Self {
            no,
            direction,
            state: CallState::Allocating,
            party,
            dialog: None,
            invite: None,
            invite_peer: None,
            invite_auth_headers: Vec::new(),
            extra_headers: Vec::new(),
            incoming: None,
            server_tx: None,
            local_tag: crate::sip::dialog::new_tag(),
            media: CallMedia::default(),
            local_hold: false,
            remote_hold: false,
            reinvite_pending: false,
            wanted_hold: None,
            acked: None,
            cancel_requested: false,
            end_reason: None,
            refer_origin: None,
            replaces_call: None,
            transfer: None,
            asserted: false,
        }
    }
}
