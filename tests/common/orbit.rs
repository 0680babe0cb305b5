//! Drives the real `orbitphone cli` binary: commands to its stdin, JSON events read from
//! its stdout on a thread, stderr kept in a log file for failure reports.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A running `orbitphone cli`.
pub struct Orbit {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<(Mutex<Vec<Value>>, Condvar)>,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// Index of the first event not yet consumed by `wait`.
    cursor: Mutex<usize>,
}

impl Orbit {
    /// Start `orbitphone cli` with these arguments (plus `ORBIT_PASSWORD` when given).
    pub fn start(args: &[&str], password: Option<&str>) -> Orbit {
        Orbit::start_with_env(args, password, &[])
    }

    /// Like [`Orbit::start`], with extra environment variables (e.g. `HOME` for an ALSA config).
    pub fn start_with_env(args: &[&str], password: Option<&str>, env: &[(&str, &str)]) -> Orbit {
        let dir = std::env::temp_dir().join(format!("orbit-cli-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("stderr.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orbitphone"));
        cmd.arg("cli").args(args).stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&log).expect("log file"));
        cmd.env("ORBIT_LOG", "info");
        cmd.envs(env.iter().copied());
        if let Some(pw) = password {
            cmd.env("ORBIT_PASSWORD", pw).arg("--password-env").arg("ORBIT_PASSWORD");
        }
        let mut child = cmd.spawn().expect("spawn orbitphone cli");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let events: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| panic!("stdout line is not JSON: {line:?}"));
                let (lock, cv) = &*ev;
                lock.lock().unwrap().push(value);
                cv.notify_all();
            }
        });
        Orbit { child, stdin, events, log, cursor: Mutex::new(0) }
    }

    /// Send one command line.
    pub fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Close stdin (EOF), which must end the process cleanly.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Wait for an event matching `pred` after the last one returned; panics with the
    /// event list and log on timeout.
    pub fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.try_wait(timeout, pred).unwrap_or_else(|| {
            panic!(
                "orbit: no {what} within {timeout:?}\nevents: {:#?}\nstderr tail:\n{}",
                self.all_events(),
                tail(&self.log)
            )
        })
    }

    /// Like [`Orbit::wait`] but returns `None` on timeout.
    pub fn try_wait(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.events;
        let mut events = lock.lock().unwrap();
        let mut cursor = self.cursor.lock().unwrap();
        loop {
            if let Some(i) = events[*cursor..].iter().position(&pred) {
                let v = events[*cursor + i].clone();
                *cursor += i + 1;
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            events = cv.wait_timeout(events, deadline - now).unwrap().0;
        }
    }

    /// Wait for an event by name.
    pub fn wait_event(&self, name: &str, timeout: Duration) -> Value {
        self.wait(name, timeout, |v| v["event"] == name)
    }

    /// Every event so far.
    pub fn all_events(&self) -> Vec<Value> {
        self.events.0.lock().unwrap().clone()
    }

    /// Wait for the process to exit; returns its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        super::process::wait_exit(&mut self.child, timeout)
    }
}

impl Drop for Orbit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
        ^ (std::thread::current().id().as_u64_fallback())
}

trait ThreadIdExt {
    fn as_u64_fallback(&self) -> u64;
}

impl ThreadIdExt for std::thread::ThreadId {
    fn as_u64_fallback(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

fn tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
