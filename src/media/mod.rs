//! Media: SDP offer/answer, codecs, RTP/RTCP, DTMF, jitter buffering, WAV I/O and test analysis.
//! Everything here is sans-IO: callers own sockets and clocks and pass `now_ms` in.

pub mod analysis;
pub mod codec;
pub mod decode;
pub mod device_rate;
pub mod device_route;
pub mod g711;
pub mod jitter;
pub mod level;
pub mod music;
pub mod negotiate;
pub mod resample;
pub mod ringtone;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod wav;
