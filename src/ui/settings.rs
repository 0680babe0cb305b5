//! Account and app settings, stored as TOML in the per-user config directory
//! (`~/.config/orbitphone/settings.toml` on Linux). Passwords are never written here:
//! there is no keyring integration yet, so the app asks for the password at each start
//! and says so on the account form.

use super::model::HistoryEntry;
use crate::phone::account::Account;
use crate::sip::transport::Transport;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Overrides the config directory (tests, screenshots, several profiles).
pub const CONFIG_DIR_ENV: &str = "ORBIT_CONFIG_DIR";

/// One SIP account as the user entered it (no password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// `sip:alice@example.com`.
    pub address: String,
    /// Name others see.
    pub display_name: String,
    /// Digest user when it differs from the address's user.
    pub auth_user: String,
    /// Outbound proxy or registrar, `sip:host:port` or `host:port`; empty = the domain.
    pub proxy: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Register with the server (off: direct IP calls only).
    pub register: bool,
    /// Park service URI; empty = `sip:park@DOMAIN`.
    pub park_uri: String,
    /// How Park works for this account.
    pub park_mode: ParkMode,
    /// The phone system's park extension (e.g. `700`), for [`ParkMode::Extension`].
    pub park_extension: String,
}

/// How the Park button parks a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParkMode {
    /// Ask the Orbit park service (orbit, countdown, pickup notice).
    #[default]
    Service,
    /// Transfer the call to the PBX's park extension (Asterisk 700, FreeSWITCH valet park).
    Extension,
    /// The same as an attended transfer: Park calls the extension (you hear the slot),
    /// Complete park hands the call over.
    ExtensionAttended,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            address: String::new(),
            display_name: String::new(),
            auth_user: String::new(),
            proxy: String::new(),
            transport: "udp".into(),
            register: true,
            park_uri: String::new(),
            park_mode: ParkMode::Service,
            park_extension: String::new(),
        }
    }
}

/// Light, dark, or follow the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemeChoice {
    /// As the desktop says.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// The chosen sound devices, by id or name; empty = the system default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSettings {
    /// Microphone.
    pub input: String,
    /// Speaker or headset.
    pub output: String,
    /// Where calls ring.
    pub ring: String,
}

impl AudioSettings {
    /// The device for `role`, `None` for the default.
    pub fn get(&self, role: crate::phone::AudioRole) -> Option<String> {
        use crate::phone::AudioRole;
        let v = match role {
            AudioRole::Input => &self.input,
            AudioRole::Output => &self.output,
            AudioRole::Ring => &self.ring,
        };
        Some(v.clone()).filter(|v| !v.is_empty())
    }

    /// Remember `device` (`None`: the default) for `role`.
    pub fn set(&mut self, role: crate::phone::AudioRole, device: Option<String>) {
        use crate::phone::AudioRole;
        let slot = match role {
            AudioRole::Input => &mut self.input,
            AudioRole::Output => &mut self.output,
            AudioRole::Ring => &mut self.ring,
        };
        *slot = device.unwrap_or_default();
    }

    /// Media settings for an engine that uses the sound card with these devices.
    pub fn audio_io(&self) -> crate::net::media_task::AudioIo {
        use crate::phone::AudioRole;
        crate::net::media_task::AudioIo {
            input_device: self.get(AudioRole::Input),
            output_device: self.get(AudioRole::Output),
            ring_device: self.get(AudioRole::Ring),
            ..crate::net::media_task::AudioIo::desktop()
        }
    }
}

/// Everything in `settings.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Accounts; the app signs in to `active`.
    pub accounts: Vec<AccountSettings>,
    /// Index into `accounts`.
    pub active: usize,
    /// Colour scheme.
    pub theme: ThemeChoice,
    /// UI zoom (1.0 = the system's scale).
    pub ui_scale: f32,
    /// Sound devices.
    pub audio: AudioSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            accounts: Vec::new(),
            active: 0,
            theme: ThemeChoice::System,
            ui_scale: 1.0,
            audio: AudioSettings::default(),
        }
    }
}

/// The config directory: `$ORBIT_CONFIG_DIR`, else the platform's (`directories`).
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("org", "Orbit", "orbitphone").map(|d| d.config_dir().to_path_buf())
}

impl Settings {
    /// The active account, if any.
    pub fn account(&self) -> Option<&AccountSettings> {
        self.accounts.get(self.active).or(self.accounts.first())
    }

    /// Read `dir/settings.toml`; a missing file is empty settings, a bad one an error naming it.
    pub fn load(dir: &Path) -> Result<Settings, String> {
        let path = dir.join("settings.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Write `dir/settings.toml` (creating the directory).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let text = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_file(&dir.join("settings.toml"), &text)
    }

    /// Put an account first in the list and make it active (replacing one with the same address).
    pub fn use_account(&mut self, account: AccountSettings) {
        self.accounts.retain(|a| a.address != account.address);
        self.accounts.insert(0, account);
        self.active = 0;
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // Write then rename, so a crash never leaves half a file.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[derive(Serialize, Deserialize, Default)]
struct HistoryFile {
    #[serde(default)]
    call: Vec<HistoryEntry>,
}

/// Read `dir/history.toml` (recent calls, newest first); missing or unreadable = empty.
pub fn load_history(dir: &Path) -> Vec<HistoryEntry> {
    std::fs::read_to_string(dir.join("history.toml"))
        .ok()
        .and_then(|t| toml::from_str::<HistoryFile>(&t).ok())
        .map(|h| h.call)
        .unwrap_or_default()
}

/// Write `dir/history.toml`.
pub fn save_history(dir: &Path, history: &[HistoryEntry]) -> Result<(), String> {
    let text = toml::to_string(&HistoryFile { call: history.to_vec() }).map_err(|e| e.to_string())?;
    write_file(&dir.join("history.toml"), &text)
}

impl AccountSettings {
    /// `alice@example.com` → `sip:alice@example.com`; checks it is a SIP address.
    pub fn aor(&self) -> Result<String, String> {
        let a = self.address.trim();
        let aor = if a.starts_with("sip:") || a.starts_with("sips:") { a.to_string() } else { format!("sip:{a}") };
        if !aor.contains('@') || rsipstack::sip::parse_uri(&aor).is_err() {
            return Err(format!("\u{201c}{a}\u{201d} is not a SIP address like alice@example.com"));
        }
        Ok(aor)
    }

    /// What is wrong with the form, in words, or `None`.
    pub fn problem(&self) -> Option<String> {
        if self.address.trim().is_empty() {
            return Some("Enter your SIP address, like alice@example.com".into());
        }
        if let Err(e) = self.aor() {
            return Some(e);
        }
        if Transport::parse(&self.transport).is_none() {
            return Some("Transport must be UDP, TCP or TLS".into());
        }
        if self.park_mode != ParkMode::Service && self.park_extension.trim().is_empty() {
            return Some("Enter the park extension of your phone system, like 700".into());
        }
        None
    }

    /// Build the engine's account, resolving the proxy (or the domain) by DNS.
    pub async fn to_account(&self, password: Option<String>) -> Result<Account, String> {
        if let Some(p) = self.problem() {
            return Err(p);
        }
        let aor = self.aor()?;
        let transport = Transport::parse(&self.transport).unwrap_or(Transport::Udp);
        let user = crate::phone::account::uri_user(&aor).unwrap_or_default();
        let proxy = self.proxy.trim();
        let outbound = if !proxy.is_empty() {
            Some(crate::cli::resolve(proxy, transport).await?)
        } else if self.register {
            let domain = crate::phone::account::uri_hostport(&aor).unwrap_or_default();
            Some(crate::cli::resolve(&domain, transport).await?)
        } else {
            None
        };
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(Account {
            aor,
            display_name: opt(&self.display_name),
            auth_user: opt(&self.auth_user).unwrap_or(user),
            password: password.filter(|p| !p.is_empty()),
            transport,
            outbound,
            register: self.register,
            expires: 600,
            auto_answer: false,
            park_uri: opt(&self.park_uri),
            keepalive_secs: 30,
            park_extension: match self.park_mode {
                ParkMode::Extension | ParkMode::ExtensionAttended => opt(&self.park_extension),
                ParkMode::Service => None,
            },
            park_attended: self.park_mode == ParkMode::ExtensionAttended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_without_passwords() {
        let dir = std::env::temp_dir().join(format!("orbit-settings-{}", std::process::id()));
        let mut s = Settings::default();
        s.use_account(AccountSettings {
            address: "alice@example.com".into(),
            proxy: "127.0.0.1:5080".into(),
            ..Default::default()
        });
        s.audio.set(crate::phone::AudioRole::Output, Some("hw:CARD=USB,DEV=0".into()));
        s.save(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join("settings.toml")).unwrap();
        assert!(!text.to_lowercase().contains("password"), "{text}");
        assert_eq!(Settings::load(&dir).unwrap(), s);
        assert!(text.contains("[audio]") && text.contains("hw:CARD=USB,DEV=0"), "{text}");
        let io = Settings::load(&dir).unwrap().audio.audio_io();
        assert!(io.sound_card && io.opus);
        assert_eq!((io.input_device, io.output_device), (None, Some("hw:CARD=USB,DEV=0".to_string())));
        std::fs::write(dir.join("settings.toml"), "accounts = 3\n").unwrap();
        assert!(Settings::load(&dir).unwrap_err().contains("settings.toml"));
        assert_eq!(Settings::load(&dir.join("none")).unwrap(), Settings::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn form_problems_are_sentences() {
        let mut a = AccountSettings::default();
        assert!(a.problem().unwrap().contains("SIP address"));
        a.address = "alice".into();
        assert!(a.problem().unwrap().contains("not a SIP address"));
        a.address = "alice@example.com".into();
        assert_eq!(a.problem(), None);
        assert_eq!(a.aor().unwrap(), "sip:alice@example.com");
        a.transport = "sctp".into();
        assert!(a.problem().is_some());
        a.transport = "udp".into();
        a.park_mode = ParkMode::Extension;
        assert!(a.problem().unwrap().contains("park extension"));
    }

    #[test]
    fn park_mode_reaches_the_engine_account_and_round_trips() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut a = AccountSettings {
            address: "alice@127.0.0.1".into(),
            register: false,
            park_extension: " 700 ".into(),
            ..Default::default()
        };
        // The extension is only used in extension mode.
        assert_eq!(rt.block_on(a.to_account(None)).unwrap().park_extension, None);
        a.park_mode = ParkMode::Extension;
        let acc = rt.block_on(a.to_account(None)).unwrap();
        assert_eq!((acc.park_extension.as_deref(), acc.park_attended), (Some("700"), false));
        let attended = AccountSettings { park_mode: ParkMode::ExtensionAttended, ..a.clone() };
        let acc = rt.block_on(attended.to_account(None)).unwrap();
        assert_eq!((acc.park_extension.as_deref(), acc.park_attended), (Some("700"), true));
        let mut s = Settings::default();
        s.use_account(a.clone());
        let text = toml::to_string_pretty(&s).unwrap();
        assert!(text.contains("park_mode = \"extension\""), "{text}");
        assert_eq!(toml::from_str::<Settings>(&text).unwrap(), s);
        // Settings written before park modes existed still load (service mode).
        let old: Settings = toml::from_str("[[accounts]]\naddress = \"bob@x\"\n").unwrap();
        assert_eq!(old.accounts[0].park_mode, ParkMode::Service);
    }
}
