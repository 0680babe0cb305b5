//! The packaging files are valid: the desktop entry (with the sip/tel handlers) passes
//! `desktop-file-validate`, and the default park configuration passes the service's own
//! check.

mod common;
use common::require_tool;

#[test]
fn desktop_entry_is_valid_and_handles_sip_and_tel() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/linux/orbitphone.desktop");
    let out = std::process::Command::new(require_tool("desktop-file-validate")).arg(path).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("x-scheme-handler/sip;") && text.contains("x-scheme-handler/tel;"));
}

#[test]
fn default_park_config_passes_the_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/linux/park.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orbitphone"))
        .args(["park-service", "check", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 1 file(s)"));
}

/// `cargo-deb` on PATH, else in cargo's own bin directory (where `cargo install` puts it).
fn cargo_deb() -> std::path::PathBuf {
    if let Some(p) = common::process::find_tool("cargo-deb") {
        return p;
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    match home.map(|h| h.join("bin/cargo-deb")).filter(|p| p.is_file()) {
        Some(p) => p,
        None => require_tool("cargo-deb"),
    }
}

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg, retried while another dpkg/apt run holds its lock (this machine is shared).
fn dpkg(args: &[&str]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let out = std::process::Command::new("dpkg").args(args).output().expect("dpkg runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if err.contains("lock") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        panic!("dpkg {args:?} failed: {}{err}", String::from_utf8_lossy(&out.stdout));
    }
}

fn installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout) == "installed")
        .unwrap_or(false)
}

/// Purges the package when dropped, so a failing assertion still leaves the machine clean.
struct Installed;
impl Drop for Installed {
    fn drop(&mut self) {
        if installed("orbitphone") {
            let _ = std::process::Command::new("dpkg").args(["--purge", "orbitphone"]).status();
        }
    }
}

/// The .deb, built from the test's own (debug) binary without a release build, installed
/// with dpkg as an administrator would, checked (version, files, desktop entry, the sip:
/// handler as xdg-mime sees it), then purged.
#[test]
fn deb_installs_the_phone_and_registers_the_sip_handler() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED deb_installs_the_phone_and_registers_the_sip_handler: dpkg -i needs root");
        return;
    }
    if common::process::find_tool("dpkg").is_none() {
        eprintln!("SKIPPED deb_installs_the_phone_and_registers_the_sip_handler: not a dpkg system");
        return;
    }
    // One run at a time on this machine (other checkouts run the same test).
    let lock = std::fs::File::create(std::env::temp_dir().join("orbitphone-deb-test.lock")).expect("lock file");
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "flock");
    if installed("orbitphone") {
        eprintln!(
            "SKIPPED deb_installs_the_phone_and_registers_the_sip_handler: orbitphone is installed on this machine; not touching it"
        );
        return;
    }
    let cargo_deb = cargo_deb();
    let xdg_mime = require_tool("xdg-mime");
    let validate = require_tool("desktop-file-validate");

    // cargo-deb takes the binary from $CARGO_TARGET_DIR/release: put the debug binary there.
    let dir = std::env::temp_dir().join(format!("orbit-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let release = dir.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_orbitphone"));
    if std::fs::hard_link(bin, release.join("orbitphone")).is_err() {
        std::fs::copy(bin, release.join("orbitphone")).unwrap();
    }
    let built = run(std::process::Command::new(&cargo_deb)
        .args(["--no-build", "--fast", "--strip", "--no-dbgsym", "--no-separate-debug-symbols", "--quiet"])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--output")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target")));
    let deb = std::path::PathBuf::from(built.lines().last().expect("cargo-deb prints the .deb's path").trim());
    assert!(deb.is_file() && deb.extension().is_some_and(|e| e == "deb"), "{built}");

    let _guard = Installed;
    dpkg(&["-i", deb.to_str().unwrap()]);
    assert!(installed("orbitphone"));

    let version = run(std::process::Command::new("/usr/bin/orbitphone").arg("--version"));
    assert_eq!(version.trim(), format!("orbitphone {}", env!("CARGO_PKG_VERSION")));

    let files = dpkg(&["-L", "orbitphone"]);
    for want in [
        "/usr/bin/orbitphone",
        "/usr/share/applications/orbitphone.desktop",
        "/usr/share/icons/hicolor/scalable/apps/orbitphone.svg",
        "/usr/share/icons/hicolor/48x48/apps/orbitphone.png",
        "/usr/share/icons/hicolor/256x256/apps/orbitphone.png",
        "/usr/lib/systemd/system/orbitphone-park.service",
        "/etc/orbitphone/park.toml",
        "/usr/share/doc/orbitphone/park-service.md",
        "/usr/share/doc/orbitphone/user-guide.md",
        "/usr/share/doc/orbitphone/copyright",
    ] {
        assert!(files.lines().any(|l| l == want), "{want} not in dpkg -L:\n{files}");
        assert!(std::path::Path::new(want).exists(), "{want} listed but missing");
    }
    let conffiles = run(std::process::Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "orbitphone"]));
    assert!(conffiles.contains("/etc/orbitphone/park.toml"), "park.toml is a conffile: {conffiles}");
    // The installed configuration passes the installed binary's own check.
    run(std::process::Command::new("/usr/bin/orbitphone").args(["park-service", "check", "/etc/orbitphone/park.toml"]));
    run(std::process::Command::new(&validate).arg("/usr/share/applications/orbitphone.desktop"));

    // What a user's desktop asks: a fresh home, no desktop-specific settings, only what
    // dpkg's trigger (update-desktop-database) wrote into /usr/share/applications.
    let xdg = |home: &std::path::Path, args: &[&str]| {
        run(std::process::Command::new(&xdg_mime)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home))
        .trim()
        .to_string()
    };
    let fresh_home = |name: &str| {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        home
    };
    let handlers = |scheme: &str| -> Vec<String> {
        let cache = std::fs::read_to_string("/usr/share/applications/mimeinfo.cache").unwrap_or_default();
        let key = format!("x-scheme-handler/{scheme}=");
        cache
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .map(|v| v.split(';').filter(|d| !d.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    };
    let home = fresh_home("home");
    for scheme in ["sip", "sips", "tel"] {
        let mime = format!("x-scheme-handler/{scheme}");
        let listed = handlers(scheme);
        assert!(listed.iter().any(|d| d == "orbitphone.desktop"), "{scheme}: not in mimeinfo.cache: {listed:?}");
        let default = xdg(&home, &["query", "default", &mime]);
        if listed.len() == 1 {
            // The only handler on the machine: a user gets Orbit without choosing.
            assert_eq!(default, "orbitphone.desktop", "{scheme}");
        } else {
            // Another phone (e.g. linphone-desktop) handles it too: the desktop picks one of
            // them until the user chooses, as they would in their settings.
            assert!(listed.contains(&default), "{scheme}: {default:?} is not one of {listed:?}");
            xdg(&home, &["default", "orbitphone.desktop", &mime]);
            assert_eq!(xdg(&home, &["query", "default", &mime]), "orbitphone.desktop", "{scheme} once chosen");
        }
    }

    dpkg(&["--purge", "orbitphone"]);
    assert!(!installed("orbitphone"));
    assert!(!std::path::Path::new("/usr/bin/orbitphone").exists());
    assert!(!std::path::Path::new("/etc/orbitphone/park.toml").exists(), "purge removes the conffile");
    assert!(!handlers("sip").iter().any(|d| d == "orbitphone.desktop"), "the handler is gone with the package");
    let after = fresh_home("home-after");
    assert_ne!(xdg(&after, &["query", "default", "x-scheme-handler/sip"]), "orbitphone.desktop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `xmllint --xpath` on a file of the repository.
fn xpath(file: &str, expr: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = run(std::process::Command::new(require_tool("xmllint")).arg("--xpath").arg(expr).arg(&path));
    out.trim_end_matches('\n').to_string()
}

/// The Windows recipe (cargo-wix) is well-formed WiX and registers sip:, sips: and tel: as
/// URL protocols that start orbitphone.exe with the link; the file it installs is the
/// binary cargo-wix builds.
#[test]
fn windows_installer_registers_the_url_protocols() {
    let file = "packaging/windows/main.wxs";
    run(std::process::Command::new(require_tool("xmllint"))
        .arg("--noout")
        .arg(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))));
    let exe_id = xpath(file, "string(//*[local-name()='File'][@Name='orbitphone.exe']/@Id)");
    assert_eq!(exe_id, "OrbitExe");
    let source = xpath(file, "string(//*[local-name()='File'][@Id='OrbitExe']/@Source)");
    assert_eq!(source, r"$(var.CargoTargetBinDir)\orbitphone.exe");
    for scheme in ["sip", "sips", "tel"] {
        let key = format!("//*[local-name()='RegistryKey'][@Root='HKCR' and @Key='{scheme}']");
        let marker = xpath(file, &format!("count({key}/*[local-name()='RegistryValue'][@Name='URL Protocol'])"));
        assert_eq!(marker, "1", "{scheme}: the `URL Protocol` value marks it as a protocol");
        let command =
            xpath(file, &format!("string({key}/*[local-name()='RegistryValue'][@Key='shell\\open\\command']/@Value)"));
        assert_eq!(command, r#""[#OrbitExe]" "%1""#, "{scheme}: opens the link with orbitphone.exe");
        let assoc = xpath(
            file,
            &format!(
                "count(//*[local-name()='RegistryKey'][@Key='Software\\Orbit\\Capabilities']/*[@Key='URLAssociations' and @Name='{scheme}'])"
            ),
        );
        assert_eq!(assoc, "1", "{scheme}: listed under Default apps");
    }
    let icon = xpath(file, "string(//*[local-name()='Icon']/@SourceFile)");
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(icon.replace('\\', "/")).is_file(), "{icon}");
}

/// The macOS recipe's Info.plist is well-formed and declares the URL types; its executable
/// is the binary's name.
#[test]
fn macos_bundle_declares_the_url_types() {
    let file = "packaging/macos/Info.plist";
    run(std::process::Command::new(require_tool("xmllint"))
        .arg("--noout")
        .arg(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))));
    let schemes = xpath(
        file,
        "//key[.='CFBundleURLTypes']/following-sibling::array[1]//key[.='CFBundleURLSchemes']/following-sibling::array[1]/string/text()",
    );
    assert_eq!(schemes.split_whitespace().collect::<Vec<_>>(), ["sip", "sips", "tel"]);
    let exe = xpath(file, "string(//key[.='CFBundleExecutable']/following-sibling::string[1])");
    assert_eq!(exe, "orbitphone");
    let id = xpath(file, "string(//key[.='CFBundleIdentifier']/following-sibling::string[1])");
    assert_eq!(id, "org.orbitphone.Orbit");
}

/// The icons the packages install exist at the sizes their names claim.
#[test]
fn icons_have_their_sizes() {
    for size in [48u32, 128, 256] {
        let path = format!("{}/assets/orbitphone-{size}.png", env!("CARGO_MANIFEST_DIR"));
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{path}");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (size, size), "{path}");
    }
    let svg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/orbitphone.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("viewBox=\"0 0 256 256\""));
}
