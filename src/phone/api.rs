//! The engine's public contract: commands in, events out. The CLI prints events as
//! JSON lines and the GUI draws them, so names here are stable: extend, don't break.

use serde::Serialize;

/// A call's handle: a small integer, unique for the engine's lifetime.
pub type CallNo = u32;

/// What a face (CLI, GUI) asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Call a URI or a number (a number is completed with the account's domain).
    Dial { target: String },
    /// Answer a ringing incoming call (the newest when `None`).
    Answer { call: Option<CallNo> },
    /// Hang up, cancel or decline.
    Hangup { call: Option<CallNo> },
    /// Put a call on hold (re-INVITE with `a=sendonly`).
    Hold { call: Option<CallNo> },
    /// Take a call off hold.
    Resume { call: Option<CallNo> },
    /// Mute (`on`) or unmute a call's microphone.
    Mute { call: Option<CallNo>, on: bool },
    /// Send RFC 4733 digits.
    Dtmf { digits: String, call: Option<CallNo> },
    /// Blind transfer (REFER).
    Transfer { target: String, call: Option<CallNo> },
    /// Attended transfer: connect the far ends of `a` and `b` (REFER with Replaces on `a`).
    TransferAttended { a: CallNo, b: CallNo },
    /// Park a call on the park service.
    Park { call: Option<CallNo> },
    /// Watch the park service's orbits (busy-lamp, RFC 4235) and report changes.
    WatchOrbits,
    /// Retrieve a parked call by orbit number or retrieve URI.
    Retrieve { target: String },
    /// Report registration and calls.
    Status,
    /// List the sound devices (answered with [`Event::AudioDevices`]; the driver answers, not the engine).
    ListAudioDevices,
    /// Use this sound device for `role` (`None`: the system default).
    ChooseAudioDevice { role: AudioRole, device: Option<String> },
    /// Play a one-second 440 Hz tone on the speaker.
    TestTone,
    /// Report the microphone level ([`Event::AudioLevel`]) while `on`.
    AudioMeter { on: bool },
    /// Report the last SIP messages sent and received (answered by the driver with
    /// [`Event::SipTrace`]; the engine itself ignores it).
    Trace,
    /// Un-register, end calls, stop.
    Quit,
}

/// What a sound device is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioRole {
    /// The microphone.
    Input,
    /// The speaker or headset.
    Output,
    /// Where incoming calls ring.
    Ring,
}

/// One sound device in an [`Event::AudioDevices`] list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioDevice {
    /// What to choose it by (ALSA PCM name on Linux, such as `hw:CARD=PCH,DEV=0`).
    pub id: String,
    /// Its human-readable name.
    pub name: String,
}

/// Identity of a returning parked call (ring-back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recall {
    /// The orbit the call was parked on.
    pub orbit: String,
    /// Who is parked (the original caller).
    pub parkee: String,
}

/// One call in a `status` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStatus {
    /// Call handle.
    pub call: CallNo,
    /// `incoming`/`outgoing`.
    pub direction: &'static str,
    /// Current state name.
    pub state: &'static str,
    /// The other party.
    pub party: String,
    /// Negotiated codec, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Whether we or they hold the call.
    pub held: bool,
    /// Media figures, once the media task has reported them (about every 2 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<CallStats>,
}

/// Media figures of one call (RTP counters, RFC 3550 receiver statistics, RTCP round
/// trip, jitter buffer). Floats are rounded to 0.1 (ms or %).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStats {
    /// Codec name as in SDP (`PCMU`, `opus`, ...).
    pub codec: String,
    /// RTP packets we sent.
    pub packets_sent: u64,
    /// RTP packets we received (from the peer's current SSRC).
    pub packets_received: u64,
    /// Packets lost on the way to us (expected - received, RFC 3550 A.3).
    pub packets_lost: i64,
    /// `packets_lost` as a percentage of the packets expected.
    pub loss_percent: f64,
    /// Interarrival jitter of what we receive (RFC 3550 A.8), ms.
    pub jitter_ms: f64,
    /// The jitter buffer's current depth, ms.
    pub jitter_buffer_ms: u32,
    /// Round-trip time from RTCP (LSR/DLSR), ms; `null` until the peer has reported on
    /// one of our sender reports.
    pub rtt_ms: Option<f64>,
    /// Loss the peer reports for our stream (its last RTCP report block), %.
    pub remote_loss_percent: Option<f64>,
    /// Jitter the peer reports for our stream, ms.
    pub remote_jitter_ms: Option<f64>,
    /// RTCP packets received from the peer.
    pub rtcp_received: u64,
    /// The media is SRTP-protected.
    pub srtp: bool,
}

// The floats are finite by construction (counters and rounded ratios, never NaN), so
// equality is reflexive and `Event` can keep deriving `Eq`.
impl Eq for CallStats {}

/// One SIP message in the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceMessage {
    /// Unix time, seconds.
    pub at: f64,
    /// `sent` or `received`.
    pub direction: &'static str,
    /// The other end, `udp:127.0.0.1:5060`.
    pub peer: String,
    /// The message as on the wire (lossy UTF-8).
    pub text: String,
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The account is registered.
    Registered { account: String, expires: u32 },
    /// Registration failed; `reason` says why in words ("wrong password", "timeout …").
    RegistrationFailed { account: String, reason: String },
    /// The account is no longer registered (on exit).
    Unregistered { account: String },
    /// A new incoming call.
    CallIncoming {
        call: CallNo,
        from: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        recall: Option<Recall>,
        #[serde(skip_serializing_if = "Option::is_none")]
        replaces: Option<CallNo>,
    },
    /// An outgoing call has been started.
    CallDialing { call: CallNo, to: String },
    /// The far end is ringing (180/183).
    CallRinging { call: CallNo },
    /// The call is up.
    CallEstablished {
        call: CallNo,
        party: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        codec: Option<String>,
    },
    /// The call is on hold (`by` = "local" or "remote").
    CallHeld { call: CallNo, by: &'static str },
    /// The call is off hold.
    CallResumed { call: CallNo },
    /// Our microphone on the call is muted or not.
    CallMuted { call: CallNo, muted: bool },
    /// A transfer we started progressed (sipfrag status from the transferee).
    TransferProgress { call: CallNo, status: u16, reason: String },
    /// The far end asked us to call someone else (we were transferred).
    TransferRequested { call: CallNo, target: String, new_call: CallNo },
    /// Media figures for a call, about every 2 s while its media runs (also in `status`).
    CallStats { call: CallNo, stats: CallStats },
    /// A digit arrived (RFC 4733).
    DtmfReceived { call: CallNo, digit: String },
    /// The call is over.
    CallEnded { call: CallNo, reason: String },
    /// Park requested; waiting for the service.
    ParkPending { call: CallNo },
    /// The call is parked on an orbit.
    Parked { call: CallNo, orbit: String, orbit_uri: String, retrieve_uri: String, ringback_at: u64, parkee: String },
    /// The parked call is ringing us back: attempt `attempt` of `of`.
    ParkRingback { call: CallNo, attempt: u32, of: u32 },
    /// The parked call went to the fallback destination.
    ParkFallback { call: CallNo, to: String },
    /// Somebody picked the parked call up.
    ParkRetrieved { call: CallNo, by: String },
    /// The parked caller hung up.
    ParkAbandoned { call: CallNo },
    /// The park is over for another reason (disconnected, service stopped).
    ParkEnded { call: CallNo, reason: String },
    /// The call was handed to a park extension (account `park_extension`, Asterisk/FreeSWITCH
    /// style): the phone system holds it now and announces or shows the slot.
    ParkedExtension { call: CallNo, extension: String },
    /// Attended park by extension: `call` is on hold and `consult` calls the extension so
    /// the user hears the slot; `park` on either call completes the transfer.
    ParkConsulting { call: CallNo, consult: CallNo, extension: String },
    /// Park did not work; `reason` is readable (no free orbit, not allowed…).
    ParkFailed { call: CallNo, reason: String },
    /// An orbit became occupied (`parkee` set) or free, seen through busy-lamp.
    OrbitStatus {
        orbit: String,
        busy: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        parkee: Option<String>,
    },
    /// Answer to `status`.
    Status { account: String, registered: bool, calls: Vec<CallStatus> },
    /// Answer to `trace`: the last SIP messages, oldest first.
    SipTrace { messages: Vec<TraceMessage> },
    /// Something went wrong with a command or a call; the engine goes on.
    Error {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        call: Option<CallNo>,
    },
    /// Media devices: none usable, calls go on with silence.
    AudioUnavailable { message: String },
    /// Answer to `devices`: the sound devices, and the defaults that really open.
    AudioDevices {
        inputs: Vec<AudioDevice>,
        outputs: Vec<AudioDevice>,
        #[serde(skip_serializing_if = "Option::is_none")]
        default_input: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        default_output: Option<String>,
    },
    /// The sound devices in use changed (`null`: none, silence).
    AudioRoute { input: Option<String>, output: Option<String> },
    /// Something about sound the user should know (device unplugged, switched, back).
    AudioNotice { message: String },
    /// The microphone level while the meter is on, in whole dBFS (-96 is silence).
    AudioLevel { rms_dbfs: i32, peak_dbfs: i32 },
    /// The engine has stopped (after `quit` or EOF).
    Stopped,
}

impl Command {
    /// Parse one CLI line (`dial sip:bob@x`, `hangup 2`). The error is shown to the user.
    pub fn parse_line(line: &str) -> Result<Option<Command>, String> {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else { return Ok(None) };
        let args: Vec<&str> = words.collect();
        let call_arg = |i: usize| -> Result<Option<CallNo>, String> {
            args.get(i).map(|a| a.parse::<CallNo>().map_err(|_| format!("not a call number: {a:?}"))).transpose()
        };
        let need = |i: usize, what: &str| -> Result<String, String> {
            args.get(i).map(|s| s.to_string()).ok_or_else(|| format!("{verb}: missing {what}"))
        };
        let cmd = match verb.to_ascii_lowercase().as_str() {
            "dial" | "call" => Command::Dial { target: need(0, "URI or number")? },
            "answer" | "accept" => Command::Answer { call: call_arg(0)? },
            "hangup" | "bye" | "decline" => Command::Hangup { call: call_arg(0)? },
            "hold" => Command::Hold { call: call_arg(0)? },
            "resume" | "unhold" => Command::Resume { call: call_arg(0)? },
            "mute" => Command::Mute { call: call_arg(0)?, on: true },
            "unmute" => Command::Mute { call: call_arg(0)?, on: false },
            "dtmf" => Command::Dtmf { digits: need(0, "digits")?, call: call_arg(1)? },
            "transfer" => Command::Transfer { target: need(0, "target URI")?, call: call_arg(1)? },
            "transfer-attended" => {
                let a = call_arg(0)?.ok_or("transfer-attended: missing CALL_A")?;
                let b = call_arg(1)?.ok_or("transfer-attended: missing CALL_B")?;
                Command::TransferAttended { a, b }
            }
            "park" => Command::Park { call: call_arg(0)? },
            "watch-orbits" => Command::WatchOrbits,
            "retrieve" => Command::Retrieve { target: need(0, "orbit or URI")? },
            "status" => Command::Status,
            "devices" => Command::ListAudioDevices,
            "audio-device" => {
                let role = match need(0, "role (input, output or ring)")?.as_str() {
                    "input" | "mic" | "microphone" => AudioRole::Input,
                    "output" | "speaker" => AudioRole::Output,
                    "ring" => AudioRole::Ring,
                    other => return Err(format!("audio-device: {other:?} is not input, output or ring")),
                };
                // Device names may contain spaces: everything after the role is the name.
                let name = args[1..].join(" ");
                if name.is_empty() {
                    return Err("audio-device: missing device id or name (or \"default\")".into());
                }
                Command::ChooseAudioDevice { role, device: (name != "default").then_some(name) }
            }
            "test-tone" => Command::TestTone,
            "meter" => match args.first().copied() {
                Some("on") | None => Command::AudioMeter { on: true },
                Some("off") => Command::AudioMeter { on: false },
                Some(other) => return Err(format!("meter: {other:?} is not on or off")),
            },
            "trace" => Command::Trace,
            "quit" | "exit" => Command::Quit,
            other => {
                return Err(format!(
                    "unknown command {other:?} (try dial, answer, hangup, hold, resume, mute, unmute, dtmf, transfer, transfer-attended, park, retrieve, watch-orbits, status, devices, audio-device, test-tone, meter, trace, quit)"
                ));
            }
        };
        if let Some(d) = match &cmd {
            Command::Dtmf { digits, .. } => digits.chars().find(|c| !"0123456789*#ABCDabcd".contains(*c)),
            _ => None,
        } {
            return Err(format!("dtmf: {d:?} is not a DTMF digit"));
        }
        Ok(Some(cmd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_rejects_bad_ones() {
        assert_eq!(Command::parse_line("dial sip:bob@x").unwrap(), Some(Command::Dial { target: "sip:bob@x".into() }));
        assert_eq!(Command::parse_line("  hangup 3 ").unwrap(), Some(Command::Hangup { call: Some(3) }));
        assert_eq!(
            Command::parse_line("transfer-attended 1 2").unwrap(),
            Some(Command::TransferAttended { a: 1, b: 2 })
        );
        assert_eq!(Command::parse_line("").unwrap(), None);
        assert!(Command::parse_line("hangup x").unwrap_err().contains("not a call number"));
        assert!(Command::parse_line("frobnicate").unwrap_err().contains("unknown command"));
        assert!(Command::parse_line("dtmf 12x").is_err());
        assert!(Command::parse_line("dial").unwrap_err().contains("missing"));
    }

    #[test]
    fn parses_audio_commands() {
        assert_eq!(Command::parse_line("devices").unwrap(), Some(Command::ListAudioDevices));
        assert_eq!(
            Command::parse_line("audio-device output USB Headset Analog").unwrap(),
            Some(Command::ChooseAudioDevice { role: AudioRole::Output, device: Some("USB Headset Analog".into()) })
        );
        assert_eq!(
            Command::parse_line("audio-device mic default").unwrap(),
            Some(Command::ChooseAudioDevice { role: AudioRole::Input, device: None })
        );
        assert!(Command::parse_line("audio-device ring").unwrap_err().contains("missing device"));
        assert!(Command::parse_line("audio-device tv x").unwrap_err().contains("not input"));
        assert_eq!(Command::parse_line("meter off").unwrap(), Some(Command::AudioMeter { on: false }));
        assert_eq!(Command::parse_line("test-tone").unwrap(), Some(Command::TestTone));
        let e = Event::AudioDevices {
            inputs: vec![],
            outputs: vec![AudioDevice { id: "null".into(), name: "Discard all samples".into() }],
            default_input: None,
            default_output: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"audio_devices","inputs":[],"outputs":[{"id":"null","name":"Discard all samples"}]}"#
        );
        let e = Event::AudioLevel { rms_dbfs: -20, peak_dbfs: -6 };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"event":"audio_level","rms_dbfs":-20,"peak_dbfs":-6}"#);
    }

    #[test]
    fn events_serialise_with_event_tag() {
        let e = Event::CallEnded { call: 2, reason: "remote hangup".into() };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"event":"call_ended","call":2,"reason":"remote hangup"}"#);
        let e = Event::CallIncoming { call: 1, from: "sip:bob@x".into(), name: None, recall: None, replaces: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"event":"call_incoming","call":1,"from":"sip:bob@x"}"#);
    }
}
