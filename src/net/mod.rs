//! The driver: the only place with sockets, TLS, and the wall clock. It runs the
//! sans-IO engine and park service, fulfils their requests (send bytes, bind RTP
//! sockets, run media and music) and forwards commands and events to a face.

pub mod audio_device;
pub mod dns;
pub mod media_task;
pub mod music_task;
pub mod park_driver;
pub mod phone_driver;
pub mod serve;
pub mod single_instance;
pub mod sip_socket;
pub mod sip_trace;
pub mod sound_card;
pub mod tls;
