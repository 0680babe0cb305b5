//! The real `orbitphone` window under Xvfb, as a person would start it: no account, so it
//! starts its local mode and registers as `me`; the window title follows the registration
//! state; a screenshot of the screen shows the window (not a blank screen).

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn window_name(display: &str, pid: u32) -> Option<String> {
    let ids = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
        .env("DISPLAY", display)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&ids.stdout).lines().next()?.trim().to_string();
    let name = Command::new("xdotool").args(["getwindowname", &id]).env("DISPLAY", display).output().ok()?;
    Some(String::from_utf8_lossy(&name.stdout).trim().to_string())
}

#[test]
fn the_real_window_starts_registers_and_shows_up_on_screen() {
    for tool in ["Xvfb", "xdotool", "import"] {
        require_tool(tool);
    }
    let dir = TempDir::new("gui-xvfb");
    let n = (150..250).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()).expect("a free display");
    let display = format!(":{n}");
    let _x = Killed(
        Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb"),
    );
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || Path::new(&format!("/tmp/.X11-unix/X{n}"))
            .exists()
            .then_some(()))
        .is_some(),
        "Xvfb did not start"
    );
    let home = dir.path();
    let log = std::fs::File::create(home.join("orbit.log")).expect("log");
    let app = Killed(
        Command::new(env!("CARGO_BIN_EXE_orbitphone"))
            .env("DISPLAY", &display)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", home)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("orbitphone"),
    );
    let pid = app.0.id();
    let started = Instant::now();
    let title = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        window_name(&display, pid).filter(|t| t.contains("Registered as me@"))
    });
    let shown_log = || std::fs::read_to_string(home.join("orbit.log")).unwrap_or_default();
    let title = title.unwrap_or_else(|| {
        panic!(
            "the window never said it registered (title now {:?}); log:\n{}",
            window_name(&display, pid),
            shown_log()
        )
    });
    assert!(title.starts_with("Orbit — "), "{title}");
    eprintln!("registered window after {:?}: {title}", started.elapsed());

    // A screenshot of the whole screen: the window is drawn, not a blank (black) screen.
    std::thread::sleep(Duration::from_millis(500));
    let shot = home.join("shot.png");
    let ok = Command::new("import")
        .args(["-window", "root"])
        .arg(&shot)
        .env("DISPLAY", &display)
        .status()
        .expect("import")
        .success();
    assert!(ok, "import failed");
    // Count distinct colours with ImageMagick: a drawn window has text, buttons, panels.
    let colours = Command::new("identify").args(["-format", "%k"]).arg(&shot).output().expect("identify");
    let colours: u32 = String::from_utf8_lossy(&colours.stdout).trim().parse().unwrap_or(0);
    assert!(colours > 20, "the screenshot has only {colours} colours: the window was not drawn");
}
