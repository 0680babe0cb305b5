//! Free port allocation on 127.0.0.1.
//!
//! A port is handed out only if it can be bound on both UDP and TCP right now, and it is
//! remembered process-wide so parallel tests never get the same one twice. Ports come from
//! the kernel's ephemeral range (binding port 0), which the peers' RTP ranges stay out of.

use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Every block handed out is this long, so instances are spaced 10 apart
/// (baresip binds SIP on P, TLS on P+1; the harness puts control/RTP ports at P+2..).
pub const BLOCK: u16 = 10;

fn bindable(port: u16) -> bool {
    let udp = UdpSocket::bind(("127.0.0.1", port));
    let tcp = TcpListener::bind(("127.0.0.1", port));
    udp.is_ok() && tcp.is_ok()
}

/// One free port (free on UDP and TCP); reserves a block of 10 starting at it.
pub fn free_port() -> u16 {
    free_port_block(1)
}

/// A base port P such that P..P+n are all free on UDP and TCP on 127.0.0.1 and not handed
/// out before by this process. Reserves P..P+max(n, 10).
pub fn free_port_block(n: u16) -> u16 {
    let n = n.max(1);
    let span = n.max(BLOCK);
    for _ in 0..500 {
        let base = match UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()) {
            Ok(a) => a.port(),
            Err(e) => panic!("[harness] cannot bind an UDP socket on 127.0.0.1: {e}"),
        };
        if base.checked_add(span).is_none() {
            continue;
        }
        let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
        if (base..base + span).any(|p| reserved.contains(&p)) {
            continue;
        }
        if !(base..base + n).all(bindable) {
            continue;
        }
        reserved.extend(base..base + span);
        return base;
    }
    panic!("[harness] could not find {n} free consecutive ports on 127.0.0.1");
}
