//! The SIP layer: message glue over the parser, transactions, dialogs, subscriptions,
//! digest and registration. Sans-IO: nothing here touches a socket or the clock.

pub mod dialog;
pub mod dialog_info;
pub mod digest;
pub mod message;
pub mod subscription;
pub mod transaction;
pub mod transport;
pub mod uri;
