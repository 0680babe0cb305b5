//! The small registrar and stateless proxy of `orbitphone serve` (the built-in local
//! mode and small offices): REGISTER with digest auth, proxy auth for new requests,
//! forwarding to registered contacts, and `park`/orbit numbers to the park service.
//! Sans-IO like the rest; `net/serve.rs` runs it.

mod proxy;

pub use proxy::{Output, Registrar, RegistrarConfig};
