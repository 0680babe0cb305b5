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
