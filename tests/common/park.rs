//! Runs the real `orbitphone park-service` binary with a generated config.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running park service.
pub struct ParkProc {
    child: Child,
    /// The config file it runs with.
    pub config: PathBuf,
    /// Its stderr (the service log).
    pub log: PathBuf,
    /// SIP port.
    pub port: u16,
}

impl ParkProc {
    /// Write `toml` next to a log and start the service; waits until it listens.
    pub fn start(dir: &std::path::Path, port: u16, toml: &str) -> ParkProc {
        let config = dir.join("park.toml");
        std::fs::write(&config, toml).expect("write park.toml");
        let log = dir.join("park.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_orbitphone"))
            .arg("park-service")
            .arg("--config")
            .arg(&config)
            .env("ORBIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn park-service");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening") => break,
                _ if Instant::now() > deadline => {
                    panic!("park service did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
                }
                _ => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "park service exited with {status}:\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                }
            }
        }
        ParkProc { child, config, log, port }
    }

    /// The service's process id (to pin it to a core, read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        super::process::sigterm(self.child.id());
        super::process::wait_exit(&mut self.child, timeout)
    }
}

impl Drop for ParkProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("park service log ({}):\n{}", self.log.display(), self.log());
        }
    }
}
