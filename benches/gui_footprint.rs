//! The desktop window's footprint, side by side in one run under Xvfb
//! (`cargo bench --bench gui_footprint`; `make bench` installs what it needs):
//!
//! - **bare eframe**: this benchmark binary itself, re-run with `--bare-window`, opens an
//!   eframe window (glow, same features as Orbit) with one label: the floor of the GL stack;
//! - **Orbit**: the optimised `orbitphone` with no account, so it starts its local mode
//!   (registrar, park service and demo lines in-process) and registers as `me`;
//! - **Linphone** 4.4 (Debian package `linphone`), when installed.
//!
//! For each, one after the other on the same X server: time until its first window is
//! visible, RSS and private memory (Private_Clean + Private_Dirty of
//! `/proc/PID/smaps_rollup`) after settling, and CPU over an idle period with the window
//! open. Then Orbit once more, started with `echo` so it calls the local echo line (Opus),
//! for CPU during a call with the window open. Without `--bench` (under `cargo test
//! --all-targets`) it does a 2-second smoke round of the bare window and Orbit, when Xvfb is
//! there.

#[path = "../tests/common/procstat.rs"]
mod procstat;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bare_window() {
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default().with_title("Bare eframe").with_inner_size([960.0, 660.0]),
        ..Default::default()
    };
    let _ = eframe::run_ui_native("bare", native, |ui, _frame| {
        ui.label("A bare eframe window");
    });
}

fn found(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Option<Xvfb> {
        let n = (90..200).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())?;
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            // -noreset: by default the server resets when its last client leaves, and the next
            // app (started right after the previous one quits) would find no server.
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Xvfb { child, display })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (RSS, private) in MB.
fn memory(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let kb = |key: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("Rss:") / 1024.0, (kb("Private_Clean:") + kb("Private_Dirty:")) / 1024.0)
}

fn visible_window(display: &str, pid: u32) -> bool {
    Command::new("xdotool")
        .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
        .env("DISPLAY", display)
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false)
}

struct Figures {
    name: &'static str,
    first_window_ms: Option<f64>,
    rss_mb: f64,
    private_mb: f64,
    idle_cpu_pct: f64,
}

struct App {
    child: Child,
    _home: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        // SIGTERM first so Orbit un-registers and Linphone saves cleanly; then kill.
        // The app and whatever it started (dbus-run-session's daemon and Linphone).
        for pid in descendants(self.child.id()) {
            // SAFETY: plain kill(2) on our own (grand)children.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(display: &str, program: &Path, args: &[&str], tag: &str) -> App {
    let home = std::env::temp_dir().join(format!("orbit-gui-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("temp home");
    let log = std::fs::File::create(home.join("log.txt")).expect("log");
    let child = Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    App { child, _home: home }
}

/// `root` and every process below it.
fn descendants(root: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut frontier = vec![root];
    while let Some(pid) = frontier.pop() {
        all.push(pid);
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            frontier.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    all
}

/// The pid of a descendant of `root` whose command name is `comm` (or `root` itself).
fn find_process(root: u32, comm: &str) -> Option<u32> {
    descendants(root)
        .into_iter()
        .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
}

fn measure(name: &'static str, display: &str, app: &mut App, comm: &str, settle: Duration, idle: Duration) -> Figures {
    let started = Instant::now();
    // Linphone runs under dbus-run-session: measure the app, not the wrapper.
    let mut pid = app.child.id();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(p) = find_process(app.child.id(), comm) {
            pid = p;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut first_window_ms = None;
    while started.elapsed() < Duration::from_secs(20) {
        if visible_window(display, pid) {
            first_window_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            break;
        }
        if let Ok(Some(status)) = app.child.try_wait() {
            println!("  {name} exited early: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(settle);
    let (rss_mb, private_mb) = memory(pid);
    let before = procstat::cpu_ticks(pid);
    std::thread::sleep(idle);
    let idle_cpu_pct =
        (procstat::cpu_ticks(pid) - before) as f64 / procstat::ticks_per_second() / idle.as_secs_f64() * 100.0;
    Figures { name, first_window_ms, rss_mb, private_mb, idle_cpu_pct }
}

fn print(f: &Figures, idle: Duration) {
    let first = f.first_window_ms.map_or("   never".to_string(), |ms| format!("{ms:>6.0} ms"));
    println!(
        "{:<14} first window {first}   RSS {:>6.1} MB   private {:>6.1} MB   CPU over {} s idle {:>6.3} %",
        f.name,
        f.rss_mb,
        f.private_mb,
        idle.as_secs(),
        f.idle_cpu_pct
    );
}

fn main() {
    if std::env::args().any(|a| a == "--bare-window") {
        bare_window();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    for tool in ["Xvfb", "xdotool"] {
        if !found(tool) {
            println!("gui_footprint: {tool} is not installed (scripts/install-deps.sh installs it); skipped");
            return;
        }
    }
    let Some(x) = Xvfb::start() else {
        println!("gui_footprint: Xvfb did not start; skipped");
        return;
    };
    let (settle, idle) = if full {
        (Duration::from_secs(5), Duration::from_secs(30))
    } else {
        (Duration::from_secs(1), Duration::from_secs(2))
    };
    let me = std::env::current_exe().expect("own path");
    let orbit = PathBuf::from(env!("CARGO_BIN_EXE_orbitphone"));
    println!("GUI footprint under Xvfb {} (software GL), one app at a time", x.display);

    // In the full run each app is launched once unmeasured first, so every first-window
    // time is with the binary and its libraries already in the page cache (a just-built
    // binary read from disk took 1 s instead of 0.3 s).
    let warm = |program: &Path, args: &[&str], tag: &str, comm: &str| {
        if full {
            let mut app = spawn(&x.display, program, args, tag);
            let _ = measure("warm-up", &x.display, &mut app, comm, Duration::ZERO, Duration::ZERO);
        }
    };
    let bare_comm: String = me.file_name().unwrap_or_default().to_string_lossy().chars().take(15).collect();
    warm(&me, &["--bare-window"], "bare", &bare_comm);
    warm(&orbit, &[], "orbit", "orbitphone");
    let mut all = Vec::new();
    {
        let mut app = spawn(&x.display, &me, &["--bare-window"], "bare");
        all.push(measure("bare eframe", &x.display, &mut app, &bare_comm, settle, idle));
    }
    {
        let mut app = spawn(&x.display, &orbit, &[], "orbit");
        all.push(measure("Orbit", &x.display, &mut app, "orbitphone", settle, idle));
    }
    if full {
        if found("linphone") && found("dbus-run-session") {
            // Linphone quits without a session bus.
            warm(Path::new("/usr/bin/dbus-run-session"), &["--", "linphone"], "linphone", "linphone");
            let mut app = spawn(&x.display, Path::new("/usr/bin/dbus-run-session"), &["--", "linphone"], "linphone");
            all.push(measure("Linphone 4.4", &x.display, &mut app, "linphone", settle, idle));
        } else {
            println!("(Linphone or dbus-run-session not installed: `make bench` installs them to compare)");
        }
    }
    for f in &all {
        print(f, idle);
    }
    // The figures are meaningless if a window never came up: fail the run (also in the
    // smoke round under `cargo test --all-targets`).
    for f in all.iter().filter(|f| !f.name.starts_with("Linphone")) {
        assert!(f.first_window_ms.is_some(), "{} never showed a window", f.name);
    }
    if let (Some(bare), Some(orbit)) =
        (all.iter().find(|f| f.name == "bare eframe"), all.iter().find(|f| f.name == "Orbit"))
    {
        println!(
            "Orbit over the bare window: private +{:.1} MB, RSS +{:.1} MB",
            orbit.private_mb - bare.private_mb,
            orbit.rss_mb - bare.rss_mb
        );
        if let Some(lin) = all.iter().find(|f| f.name.starts_with("Linphone")) {
            println!("Orbit private memory is {:.2} of Linphone's", orbit.private_mb / lin.private_mb);
        }
    }
    if full {
        // A call to the local echo line (Opus) with the window open.
        let mut app = spawn(&x.display, &orbit, &["echo"], "orbit-call");
        let f = measure(
            "Orbit in call",
            &x.display,
            &mut app,
            "orbitphone",
            Duration::from_secs(8),
            Duration::from_secs(20),
        );
        println!(
            "Orbit during an Opus call to the echo line (window open): CPU {:.2} % of one core, RSS {:.1} MB, private {:.1} MB",
            f.idle_cpu_pct, f.rss_mb, f.private_mb
        );
    }
}
