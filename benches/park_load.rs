//! Park service capacity with sipp as the load driver (`cargo bench --bench park_load`).
//!
//! The optimised `orbitphone park-service` is pinned to one core (CPU 0) and sipp's three
//! processes (parker, retriever, parkee; see `tests/common/sipp.rs` and `tests/sipp/`) to the
//! other. At each offered rate it runs `8 × rate` full cycles — digest-authenticated park,
//! pull with Replaces, parked on an orbit with music, retrieve by dialling the orbit (3PCC
//! re-INVITE), relayed hang-up — and prints the achieved cycles/s, failures, retransmissions,
//! the service's CPU time per cycle (so the one-core ceiling is 1 / that), and the shutdown
//! census of orbits and parks left over. Without `--bench` (under `cargo test
//! --all-targets`) it runs one short smoke round.

#[path = "../tests/common/mod.rs"]
mod common;

use common::sipp::{ParkLoad, park_load_config, shutdown_census};
use common::{ParkProc, TempDir, free_port};
use std::time::Duration;

fn two_cores() -> bool {
    std::thread::available_parallelism().map(|n| n.get() >= 2).unwrap_or(false)
}

fn round(rate: u64, cycles: u64, pin: bool) {
    let dir = TempDir::new("park-bench");
    let port = free_port();
    let mut service = ParkProc::start(dir.path(), port, &park_load_config(port, "alice", "alice-pw"));
    let pid = service.pid();
    if pin {
        let _ = std::process::Command::new("taskset").args(["-a", "-pc", "0", &pid.to_string()]).output();
    }
    let before = common::procstat::cpu_ticks(pid);
    let r = ParkLoad {
        dir: dir.path(),
        service_port: port,
        user: "alice",
        password: "alice-pw",
        cycles,
        rate,
        cpus: if pin { Some("1") } else { None },
    }
    .run();
    let cpu_s = (common::procstat::cpu_ticks(pid) - before) as f64 / common::procstat::ticks_per_second();
    let _ = service.terminate(Duration::from_secs(10));
    let census = shutdown_census(&service.log());
    let ok = r.parker.successful;
    let achieved = ok as f64 / r.elapsed.as_secs_f64();
    let per_cycle_ms = if ok > 0 { cpu_s * 1000.0 / ok as f64 } else { f64::NAN };
    println!(
        "offered {rate:>5}/s  cycles {ok:>6}/{cycles}  achieved {achieved:>7.1}/s  failed {}  retransmissions {}  \
         service CPU {per_cycle_ms:.3} ms/cycle (one-core ceiling {:.0}/s)  left at shutdown (orbits, parks) {:?}  \
         retriever ok {} parkee ok {}",
        r.parker.failed,
        r.parker.retransmissions + r.retriever.retransmissions + r.parkee.retransmissions,
        1000.0 / per_cycle_ms,
        census,
        r.retriever.successful,
        r.parkee.successful,
    );
    if r.parker.failed > 0 {
        println!("  first parker errors: {}", r.parker.errors.lines().take(6).collect::<Vec<_>>().join(" | "));
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !common::tool_available("sipp") {
        println!("park_load: sipp is not installed (scripts/install-deps.sh installs it); skipped");
        return;
    }
    let pin = full && two_cores();
    println!(
        "park+retrieve cycles with sipp; service {} ",
        if pin {
            "pinned to CPU 0, sipp to CPU 1"
        } else if full {
            "unpinned (fewer than 2 cores)"
        } else {
            "unpinned (smoke run)"
        }
    );
    if full {
        let rates: Vec<u64> = std::env::var("PARK_LOAD_RATES")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![250, 500, 750, 1000]);
        for rate in rates {
            round(rate, rate * 8, pin);
        }
    } else {
        round(50, 50, false);
    }
}
