//! Account passwords in the OS keyring (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows), behind [`SecretStore`] so the decisions — sign in at
//! once, or ask, and what to tell the user — are plain functions tested with
//! [`MemoryStore`]. Where there is no keyring (no session bus, no Secret Service) Orbit
//! says so and asks for the password at each start; it never falls back to a file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The keyring's service name; the entry's user is the account's address of record.
pub const SERVICE: &str = "orbitphone";

/// Why the store could not do it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// There is no usable keyring here (headless, no Secret Service, locked…).
    #[error("no keyring is available ({0})")]
    Unavailable(String),
}

/// Where passwords are kept, keyed by the account's address of record.
pub trait SecretStore: Send + Sync {
    /// The saved password, `None` when there is none for `aor`.
    fn get(&self, aor: &str) -> Result<Option<String>, StoreError>;
    /// Save (or replace) the password of `aor`.
    fn set(&self, aor: &str, password: &str) -> Result<(), StoreError>;
}

/// The OS keyring (the `keyring` crate's platform store).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyringStore;

impl KeyringStore {
    fn entry(aor: &str) -> Result<keyring::Entry, StoreError> {
        keyring::Entry::new(SERVICE, aor).map_err(|e| match e {
            // The store could not start at all: no session bus or no Secret Service on it.
            keyring::Error::NoDefaultStore => StoreError::Unavailable("no keyring service is running".into()),
            e => StoreError::Unavailable(e.to_string()),
        })
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, aor: &str) -> Result<Option<String>, StoreError> {
        match Self::entry(aor)?.get_password() {
            Ok(p) => Ok(Some(p)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    fn set(&self, aor: &str, password: &str) -> Result<(), StoreError> {
        Self::entry(aor)?.set_password(password).map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

/// A store in memory: tests, and a stand-in that can play "no keyring".
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<HashMap<String, String>>>,
    unavailable: bool,
}

impl MemoryStore {
    /// A store that behaves like a machine without a keyring.
    pub fn unavailable() -> MemoryStore {
        MemoryStore { unavailable: true, ..Default::default() }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable { Err(StoreError::Unavailable("no Secret Service".into())) } else { Ok(()) }
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, aor: &str) -> Result<Option<String>, StoreError> {
        self.check()?;
        Ok(self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(aor).cloned())
    }

    fn set(&self, aor: &str, password: &str) -> Result<(), StoreError> {
        self.check()?;
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(aor.to_string(), password.to_string());
        Ok(())
    }
}

/// What to do with a saved account at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtStart {
    /// Sign in with this password.
    SignIn(String),
    /// Show the account form and ask; `note` says why, in words.
    Ask { note: String },
}

/// The form's line about where the password goes, when the keyring works.
pub const KEPT_IN_KEYRING: &str = "Your password is kept in the system keyring, never in Orbit's settings file.";

/// The line shown when there is no keyring: visible on the form and as a notice.
pub fn no_keyring_note(why: &str) -> String {
    format!(
        "No system keyring is available ({why}): Orbit keeps your password in memory only, never writes it to a file, and asks for it each time it starts."
    )
}

/// Decide how to start a saved account: a password given on the command line wins, then
/// the keyring's; otherwise ask, saying why.
pub fn at_start(store: &dyn SecretStore, aor: &str, given: Option<String>) -> AtStart {
    if let Some(p) = given {
        return AtStart::SignIn(p);
    }
    match store.get(aor) {
        Ok(Some(p)) => AtStart::SignIn(p),
        Ok(None) => AtStart::Ask { note: format!("Enter the password for {aor}. {KEPT_IN_KEYRING}") },
        Err(StoreError::Unavailable(why)) => AtStart::Ask { note: no_keyring_note(&why) },
    }
}

/// Save the password after a sign-in; the notice to show when it could not be saved.
pub fn remember(store: &dyn SecretStore, aor: &str, password: &str) -> Option<String> {
    if password.is_empty() {
        return None;
    }
    match store.set(aor, password) {
        Ok(()) => None,
        Err(StoreError::Unavailable(why)) => Some(no_keyring_note(&why)),
    }
}

/// Whether the store works at all (for the account form's note); the reason when not.
pub fn availability(store: &dyn SecretStore) -> Result<(), String> {
    match store.get("sip:probe@orbit.invalid") {
        Ok(_) => Ok(()),
        Err(StoreError::Unavailable(why)) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AOR: &str = "sip:alice@example.com";

    #[test]
    fn saved_password_signs_in_and_a_given_one_wins() {
        let store = MemoryStore::default();
        assert!(matches!(at_start(&store, AOR, None), AtStart::Ask { note } if note.contains("keyring")));
        assert_eq!(remember(&store, AOR, "pw1"), None);
        assert_eq!(at_start(&store, AOR, None), AtStart::SignIn("pw1".into()));
        assert_eq!(at_start(&store, AOR, Some("env-pw".into())), AtStart::SignIn("env-pw".into()));
        assert_eq!(
            at_start(&store, "sip:bob@example.com", None),
            AtStart::Ask { note: format!("Enter the password for sip:bob@example.com. {KEPT_IN_KEYRING}") }
        );
        assert_eq!(availability(&store), Ok(()));
    }

    #[test]
    fn without_a_keyring_it_asks_and_says_so() {
        let store = MemoryStore::unavailable();
        match at_start(&store, AOR, None) {
            AtStart::Ask { note } => {
                assert!(note.starts_with("No system keyring is available"), "{note}");
                assert!(note.contains("never writes it to a file"), "{note}");
            }
            other => panic!("{other:?}"),
        }
        let notice = remember(&store, AOR, "pw1").expect("a visible notice");
        assert!(notice.contains("asks for it each time"), "{notice}");
        assert!(availability(&store).is_err());
        // An empty password (an account without one) is nothing to save or complain about.
        assert_eq!(remember(&store, AOR, ""), None);
    }

    /// The real keyring of this machine. Without a session bus it must report
    /// "unavailable" rather than fail otherwise; `tests/keyring.rs` runs it with a real
    /// Secret Service (gnome-keyring under dbus-run-session).
    #[test]
    fn real_keyring_round_trips_or_is_unavailable() {
        let store = KeyringStore;
        let aor = format!("sip:orbit-test-{}@example.com", std::process::id());
        match store.set(&aor, "s3cret") {
            Ok(()) => {
                assert_eq!(store.get(&aor), Ok(Some("s3cret".into())));
                if std::env::var_os("ORBIT_EXPECT_KEYRING").is_some() {
                    eprintln!("keyring round trip ok");
                }
                if let Ok(e) = keyring::Entry::new(SERVICE, &aor) {
                    let _ = e.delete_credential();
                }
            }
            Err(StoreError::Unavailable(why)) => {
                assert!(std::env::var_os("ORBIT_EXPECT_KEYRING").is_none(), "keyring expected but: {why}");
                assert!(matches!(store.get(&aor), Err(StoreError::Unavailable(_))));
            }
        }
    }

    /// Runs the test above again in a private session bus with gnome-keyring unlocked,
    /// where it must really round-trip. Skipped (and says so) when the tools are missing.
    #[test]
    fn real_keyring_round_trips_under_a_session_bus() {
        if std::env::var_os("ORBIT_EXPECT_KEYRING").is_some() {
            return; // we are the inner run
        }
        let have = |tool: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("dbus-run-session") || !have("gnome-keyring-daemon") {
            eprintln!("skipped: dbus-run-session / gnome-keyring-daemon not installed (scripts/install-deps.sh)");
            return;
        }
        let home = std::env::temp_dir().join(format!("orbit-keyring-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("temp home");
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new("dbus-run-session")
            .args(["--", "sh", "-c"])
            .arg(r#"printf unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" "$@""#)
            .arg(exe)
            .args(["--exact", "ui::secrets::tests::real_keyring_round_trips_or_is_unavailable", "--nocapture"])
            .env("ORBIT_EXPECT_KEYRING", "1")
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &home)
            .output()
            .expect("dbus-run-session");
        let _ = std::fs::remove_dir_all(&home);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        assert!(text.contains("keyring round trip ok") && text.contains("1 passed"), "{text}");
    }
}
