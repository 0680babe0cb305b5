//! sipp as a load driver for the park service: three sipp processes play the parkee (UAS),
//! the parker (UAC: SUBSCRIBE call-park with digest, NOTIFYs) and the retriever (a 3pcc
//! twin of the parker that dials the orbit it is handed and hangs up). One sipp "call" of
//! the parker is one full park → parked → retrieve → hang-up cycle. Scenarios are in
//! `tests/sipp/`. Used by `tests/park_load.rs` and `benches/park_load.rs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What one sipp process reported at the end (its `-trace_stat` file's last line).
#[derive(Debug, Clone, Default)]
pub struct SippStats {
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
    /// sipp's exit code (0: every call succeeded).
    pub exit: Option<i32>,
    /// The first 3 KB of its error log, for assertion messages.
    pub errors: String,
}

/// The three sides of a park load run.
#[derive(Debug, Clone, Default)]
pub struct ParkLoadResult {
    pub parker: SippStats,
    pub retriever: SippStats,
    pub parkee: SippStats,
    /// Wall time from the parker's start to its exit.
    pub elapsed: Duration,
}

/// One park load run against a service listening on UDP `127.0.0.1:service_port`, whose
/// config has `digest_algorithms = ["MD5"]` (sipp 3.6 only does MD5 and reads only the
/// first challenge) and `user`/`password` in `[users]` and `policy.allow`.
pub struct ParkLoad<'a> {
    pub dir: &'a Path,
    pub service_port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub cycles: u64,
    /// New cycles per second.
    pub rate: u64,
    /// CPU list for `taskset -c` of the sipp processes (e.g. "1"), if any.
    pub cpus: Option<&'a str>,
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

fn sipp(cpus: Option<&str>) -> Command {
    match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", c, "sipp"]);
            cmd
        }
        None => Command::new("sipp"),
    }
}

fn free_udp_tcp_port() -> u16 {
    super::ports::free_port()
}

struct Proc {
    child: Child,
    stat: PathBuf,
    errors: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(mut cmd: Command, dir: &Path, name: &str) -> Proc {
        let stat = dir.join(format!("{name}.csv"));
        let errors = dir.join(format!("{name}-errors.log"));
        let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("sipp output file");
        cmd.arg("-nostdin")
            .arg("-trace_stat")
            .arg("-stf")
            .arg(&stat)
            .arg("-fd")
            .arg("3600")
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start sipp ({name}): {e}"));
        Proc { child, stat, errors }
    }

    fn finish(&mut self, timeout: Duration) -> SippStats {
        let exit = super::process::wait_exit(&mut self.child, timeout);
        if exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut stats = parse_stat(&std::fs::read_to_string(&self.stat).unwrap_or_default());
        stats.exit = exit;
        let errors = std::fs::read_to_string(&self.errors).unwrap_or_default();
        stats.errors = errors.chars().take(3000).collect();
        stats
    }
}

/// The last line of a sipp `-trace_stat` CSV, by column name.
pub fn parse_stat(csv: &str) -> SippStats {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return SippStats::default() };
    let Some(last) = lines.next_back() else { return SippStats::default() };
    let names: Vec<&str> = header.split(';').collect();
    let values: Vec<&str> = last.split(';').collect();
    let get = |name: &str| -> u64 {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    SippStats {
        successful: get("SuccessfulCall(C)"),
        failed: get("FailedCall(C)"),
        retransmissions: get("Retransmissions(C)"),
        exit: None,
        errors: String::new(),
    }
}

impl ParkLoad<'_> {
    /// Runs the three sipp processes to completion (or until a generous deadline).
    pub fn run(&self) -> ParkLoadResult {
        let service = format!("127.0.0.1:{}", self.service_port);
        let parkee_port = free_udp_tcp_port();
        let retriever_port = free_udp_tcp_port();
        let parker_port = free_udp_tcp_port();
        let twin_port = free_udp_tcp_port();
        let media = super::ports::free_port_block(20);
        let twin = format!("127.0.0.1:{twin_port}");
        let cycles = self.cycles.to_string();

        let mut parkee = sipp(self.cpus);
        parkee.arg("-sf").arg(scenario("park_parkee.xml"));
        parkee.args(["-i", "127.0.0.1", "-p", &parkee_port.to_string(), "-mp", &media.to_string()]);
        parkee.args(["-m", &cycles, &service]);
        let parkee = Proc::start(parkee, self.dir, "parkee");

        let mut retriever = sipp(self.cpus);
        retriever.arg("-sf").arg(scenario("park_retriever.xml"));
        retriever.args(["-i", "127.0.0.1", "-p", &retriever_port.to_string()]);
        retriever.args(["-mp", &(media + 10).to_string(), "-3pcc", &twin, &service]);
        let retriever = Proc::start(retriever, self.dir, "retriever");

        // The twin with recvCmd first listens; wait until it does before starting the parker
        // (without connecting: the first connection is taken as the parker).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tcp_listening(twin_port) {
            assert!(Instant::now() < deadline, "sipp retriever twin did not listen on {twin}");
            std::thread::sleep(Duration::from_millis(50));
        }

        let mut parker = sipp(self.cpus);
        parker.arg("-sf").arg(scenario("park_parker.xml"));
        parker.args(["-i", "127.0.0.1", "-p", &parker_port.to_string(), "-3pcc", &twin]);
        parker.args(["-key", "parkee_port", &parkee_port.to_string(), "-key", "user", self.user]);
        parker.args(["-au", self.user, "-ap", self.password]);
        parker.args(["-m", &cycles, "-r", &self.rate.to_string(), "-l", "4000", &service]);
        let started = Instant::now();
        let parker = Proc::start(parker, self.dir, "parker");
        let budget = Duration::from_secs(30 + 3 * self.cycles / self.rate.max(1));
        let parker = { parker }.finish(budget);
        let elapsed = started.elapsed();
        let retriever = { retriever }.finish(Duration::from_secs(10));
        let parkee = { parkee }.finish(Duration::from_secs(10));
        ParkLoadResult { parker, retriever, parkee, elapsed }
    }
}

/// True when something listens on TCP 127.0.0.1:`port` (read from /proc/net/tcp).
fn tcp_listening(port: u16) -> bool {
    // sipp binds its twin socket on 0.0.0.0 whatever `-i` says.
    let wanted = [format!("0100007F:{port:04X}"), format!("00000000:{port:04X}")];
    std::fs::read_to_string("/proc/net/tcp").unwrap_or_default().lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && wanted.iter().any(|w| w == f[1]) && f[3] == "0A"
    })
}

/// The park service config used by the load runs: orbits 7000–7999, MD5 challenges, no
/// anti-scanning limit to speak of (all retrieves come from one address), music on.
pub fn park_load_config(port: u16, user: &str, password: &str) -> String {
    format!(
        r#"[service]
listen = ["udp:127.0.0.1:{port}"]
domain = "127.0.0.1"
digest_algorithms = ["MD5"]
[users]
{user} = "{password}"
[[orbits]]
first = "7000"
last = "7999"
[park]
timeout_s = 90
music = true
[policy]
allow = ["{user}"]
[limits]
retrieve_attempts_per_minute = 1000000
"#
    )
}

/// The service's shutdown census: (orbits in use, parks in progress), from its log line
/// `stopping: N orbits in use, M parks in progress, …`.
pub fn shutdown_census(log: &str) -> Option<(u64, u64)> {
    let line =
        log.lines().find_map(|l| l.split_once("stopping: ").map(|x| x.1).filter(|r| r.contains("orbits in use")))?;
    let mut nums = line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??))
}
