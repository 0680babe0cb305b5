//! sipp drives the real park service: every cycle is a digest-authenticated park
//! (SUBSCRIBE call-park), a pull of the sipp parkee (INVITE with Replaces), "parked" with an
//! orbit, a retrieve by a second sipp that dials that orbit, the 3PCC re-INVITE of the
//! parkee, and the relayed hang-up. The service must complete every cycle and, at shutdown,
//! report no orbit and no park left over. The capacity figure (cycles/s on one core) is
//! `cargo bench --bench park_load`; this test runs a modest rate on the debug build.

mod common;
use common::sipp::{ParkLoad, park_load_config, shutdown_census};
use common::*;
use std::time::Duration;

#[test]
fn sipp_park_retrieve_cycles_all_complete_and_leave_no_orbit_behind() {
    require_tool("sipp");
    let dir = TempDir::new("park-load");
    let port = free_port();
    let mut service = ParkProc::start(dir.path(), port, &park_load_config(port, "alice", "alice-pw"));
    let result = ParkLoad {
        dir: dir.path(),
        service_port: port,
        user: "alice",
        password: "alice-pw",
        cycles: 200,
        rate: 40,
        cpus: None,
    }
    .run();
    let context = format!("{result:#?}");
    assert_eq!(result.parker.successful, 200, "every park cycle completes: {context}");
    assert_eq!(result.parker.failed, 0, "{context}");
    assert_eq!(result.parker.exit, Some(0), "{context}");
    assert_eq!(result.retriever.successful, 200, "every orbit was retrieved and hung up: {context}");
    assert_eq!(result.parkee.successful, 200, "every parkee was pulled, re-INVITEd and hung up: {context}");

    assert_eq!(service.terminate(Duration::from_secs(10)), Some(0));
    let log = service.log();
    assert!(log.matches("parked on 7").count() >= 200, "{log}");
    assert_eq!(shutdown_census(&log), Some((0, 0)), "no orbit or park left at shutdown:\n{log}");
}

#[test]
fn census_line_is_parsed() {
    let log =
        "x\nINFO park_driver: stopping: 3 orbits in use, 4 parks in progress, 0 busy-lamp watchers, 9 transactions\n";
    assert_eq!(shutdown_census(log), Some((3, 4)));
    assert_eq!(shutdown_census("stopping: hanging up parked calls"), None);
}
