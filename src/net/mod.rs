//! The driver: the only place with sockets, TLS, and the wall clock. It runs the
//! sans-IO engine, fulfils its requests (send bytes, bind RTP sockets, run media) and
//! forwards commands and events between the engine and a face (CLI or GUI).

pub mod media_task;
pub mod phone_driver;
pub mod sip_socket;
pub mod tls;
