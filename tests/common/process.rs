//! Child processes (own process group, killed on drop), temp dirs, tool lookup, polling.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod sys {
    use std::ffi::{c_char, c_int, c_ulong};
    unsafe extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
        pub fn prctl(option: c_int, ...) -> c_int;
        pub fn mkfifo(path: *const c_char, mode: u32) -> c_int;
    }
    pub const SIGKILL: c_int = 9;
    pub const SIGTERM: c_int = 15;
    pub const PR_SET_PDEATHSIG: c_int = 1;
    pub type Ulong = c_ulong;
}

/// Debian package that provides each tool the harness may need (for error messages).
fn package_of(tool: &str) -> &str {
    match tool {
        "kamailio" => "kamailio",
        "baresip" => "baresip-core",
        "linphonec" => "linphone-cli",
        "sipp" => "sip-tester",
        "sox" | "soxi" => "sox",
        "espeak-ng" => "espeak-ng",
        "tshark" => "tshark",
        "desktop-file-validate" => "desktop-file-utils",
        "xdg-mime" => "xdg-utils",
        "xmllint" => "libxml2-utils",
        "cargo-deb" => "cargo-deb (not a Debian package: `cargo install cargo-deb --locked`)",
        other => other,
    }
}

/// Finds `name` in PATH, /usr/sbin and /sbin (kamailio lives in /usr/sbin, which is not on a
/// normal user's PATH).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/sbin".into());
    dirs.push("/sbin".into());
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

pub fn tool_available(name: &str) -> bool {
    find_tool(name).is_some()
}

/// Returns the full path of a required binary, or panics telling how to install it.
pub fn require_tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!(
            "required tool `{name}` was not found (searched PATH, /usr/sbin, /sbin).\n\
             Run `scripts/install-deps.sh` from the repository root (as root or with sudo); \
             it installs the Debian package `{}` and the other test dependencies.",
            package_of(name)
        )
    })
}

/// Polls `f` every `every` until it returns Some or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Last `n` lines of a (log) file, lossily decoded.
pub fn tail_file(path: &Path, n: usize) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A process-wide unique token (pid, counter, time) for names, tags, branches.
pub fn unique_token() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}x{}x{}", std::process::id(), n, t.subsec_nanos())
}

/// A fresh directory under `std::env::temp_dir()`, removed on drop unless the current thread
/// is panicking or `ORBIT_KEEP_TEMP` is set (then its path is printed so logs can be read).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("orbit-{prefix}-{}", unique_token()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
    fn keep() -> bool {
        std::thread::panicking() || std::env::var_os("ORBIT_KEEP_TEMP").is_some_and(|v| !v.is_empty() && v != "0")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if Self::keep() {
            eprintln!("[harness] keeping temp dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates a named pipe (FIFO).
pub fn make_fifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { sys::mkfifo(c.as_ptr(), 0o600) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// A child process started in its own process group. It gets SIGTERM if the thread that
/// started it exits (PR_SET_PDEATHSIG), so peers do not outlive a killed/aborted test run;
/// start peers on the test's own thread. Dropping it sends SIGTERM to the group, waits up
/// to `grace`, then SIGKILLs the group and reaps the child.
pub struct PeerProcess {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    grace: Duration,
    done: bool,
}

impl PeerProcess {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf, grace: Duration) -> PeerProcess {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; the closure touches no Rust allocations/locks.
        unsafe {
            cmd.pre_exec(|| {
                sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGTERM as sys::Ulong);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("[harness] failed to spawn {name} ({cmd:?}): {e}"));
        PeerProcess { name: name.to_string(), log, child, grace, done: false }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Some(status) if the process already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics with the tail of the log if the process has exited.
    pub fn assert_running(&mut self, what: &str) {
        if let Some(st) = self.exited() {
            panic!(
                "[harness] {} exited ({st}) while {what}; log {}:\n{}",
                self.name,
                self.log.display(),
                tail_file(&self.log, 40)
            );
        }
    }

    /// Kills the whole process group (TERM, then KILL after the grace period).
    pub fn kill(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let pgid = self.child.id() as i32;
        // SAFETY: plain syscalls with integer arguments.
        unsafe { sys::kill(-pgid, sys::SIGTERM) };
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Kamailio's workers or anything left in the group.
        unsafe { sys::kill(-pgid, sys::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Prints where the log is (and its tail) when the test is failing.
    pub fn report_if_panicking(&self) {
        if std::thread::panicking() {
            eprintln!(
                "[harness] {} log: {}\n----- last lines -----\n{}\n----------------------",
                self.name,
                self.log.display(),
                tail_file(&self.log, 30)
            );
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait up to `timeout` for a child to exit; its exit code, or `None` if it is still running.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Ask a process to stop (SIGTERM), as an init system would.
pub fn sigterm(pid: u32) {
    // SAFETY: kill(2) with a plain pid and signal number has no memory effects.
    unsafe {
        sys::kill(pid as i32, sys::SIGTERM);
    }
}
