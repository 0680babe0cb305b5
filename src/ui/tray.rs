//! The tray icon: what it shows ([`tray_view`], a pure function of the view model, unit
//! tested) and where it is shown ([`TrayBackend`]: on Linux the desktop's
//! StatusNotifierItem host over D-Bus through `ksni`, or memory in tests). Menu clicks come
//! back as [`TrayItem`]s, which the app turns into the same [`super::app::Action`]s as the
//! window's buttons. Without a session bus or a tray host the app says so once in the
//! window and carries on. Other systems build no tray (see `docs/user-guide.md`).

use super::model::{Model, Phase, Registration};
use super::text;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A quick action in the tray menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayItem {
    /// Bring the window forward.
    ShowWindow,
    /// Local mode: the demo line calls you.
    HaveBobCallMe,
    /// Quit Orbit (un-registers and hangs up like closing the window).
    Quit,
}

impl TrayItem {
    /// The menu label.
    pub fn label(self) -> &'static str {
        match self {
            TrayItem::ShowWindow => "Show Orbit",
            TrayItem::HaveBobCallMe => "Have Bob call me",
            TrayItem::Quit => "Quit",
        }
    }
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrayView {
    /// The registration line: "Registered as alice@example.com", "Registration failed: …", "Offline".
    pub status: String,
    /// My calls the park service holds.
    pub parked: usize,
    /// A call is ringing here (the host may make the icon blink).
    pub ringing: bool,
    /// The tooltip's text: the status line, then the parked calls if any.
    pub tooltip: String,
    /// The menu's actions, in order.
    pub menu: Vec<TrayItem>,
}

/// What the tray shows for this model; `demo_caller` adds "Have Bob call me" (local mode).
pub fn tray_view(model: &Model, demo_caller: bool) -> TrayView {
    let who = text::bare_uri(&model.account).trim_start_matches("sip:").trim_start_matches("sips:").to_string();
    let status = match &model.registration {
        Registration::Offline => "Offline".to_string(),
        Registration::Registering => format!("Signing in as {who}…"),
        Registration::Registered { .. } => format!("Registered as {who}"),
        Registration::Failed { reason } => format!("Registration failed: {}", text::error(reason)),
        Registration::Direct => format!("{who}: direct calls only"),
    };
    let parked = model.parked().count();
    let ringing = model.calls.values().any(|c| c.phase == Phase::Incoming);
    let mut tooltip = status.clone();
    match parked {
        0 => {}
        1 => tooltip.push_str("\n1 parked call"),
        n => tooltip.push_str(&format!("\n{n} parked calls")),
    }
    if ringing {
        tooltip.push_str("\nIncoming call");
    }
    let mut menu = vec![TrayItem::ShowWindow];
    if demo_caller {
        menu.push(TrayItem::HaveBobCallMe);
    }
    menu.push(TrayItem::Quit);
    TrayView { status, parked, ringing, tooltip, menu }
}

/// The in-window line shown once when there is no tray.
pub fn unavailable_notice(why: &str) -> String {
    format!("No system tray here ({why}); Orbit stays in its window.")
}

/// Called with each menu click (from the tray's task; it must not block).
pub type OnClick = Arc<dyn Fn(TrayItem) + Send + Sync>;

/// A future the app spawns on its runtime.
pub type TrayTask = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Where the tray is shown. `run` publishes each view `views` carries until the app drops
/// its sender, and reports clicks through `on_click`; it returns `Err(why)` when there is
/// no tray to show (no session bus, no StatusNotifierWatcher).
pub trait TrayBackend: Send {
    /// The task that runs the tray; the app spawns it, so the window never waits on it.
    fn run(self: Box<Self>, views: watch::Receiver<TrayView>, on_click: OnClick) -> TrayTask;
}

/// The desktop's tray, where this system has one Orbit can use (Linux: StatusNotifierItem).
pub fn desktop() -> Option<Box<dyn TrayBackend>> {
    #[cfg(target_os = "linux")]
    {
        Some(Box::new(sni::SniTray))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A tray kept in memory (tests): records the views and can click; can play "no tray host".
#[derive(Clone, Default)]
pub struct MemoryTray {
    /// Every view published, oldest first.
    pub shown: Arc<Mutex<Vec<TrayView>>>,
    /// The app's click callback once running.
    pub clicker: Arc<Mutex<Option<OnClick>>>,
    /// Fail like a desktop without a tray host.
    pub fail: bool,
}

impl MemoryTray {
    /// The last view published.
    pub fn last(&self) -> Option<TrayView> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).last().cloned()
    }

    /// Click a menu item as the user would; false if the tray is not running.
    pub fn click(&self, item: TrayItem) -> bool {
        let clicker = self.clicker.lock().unwrap_or_else(|p| p.into_inner()).clone();
        clicker.map(|f| f(item)).is_some()
    }
}

impl TrayBackend for MemoryTray {
    fn run(self: Box<Self>, mut views: watch::Receiver<TrayView>, on_click: OnClick) -> TrayTask {
        Box::pin(async move {
            if self.fail {
                return Err("org.freedesktop.DBus.Error.ServiceUnknown: no StatusNotifierWatcher".into());
            }
            *self.clicker.lock().unwrap_or_else(|p| p.into_inner()) = Some(on_click);
            loop {
                let v = views.borrow_and_update().clone();
                self.shown.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                if views.changed().await.is_err() {
                    return Ok(());
                }
            }
        })
    }
}

/// The StatusNotifierItem tray (KDE, GNOME with the AppIndicator extension, most Linux
/// panels) through `ksni`, which speaks D-Bus with zbus: no GTK, nothing to build.
#[cfg(target_os = "linux")]
pub mod sni {
    use super::{OnClick, TrayBackend, TrayItem, TrayTask, TrayView};
    use ksni::TrayMethods;
    use std::time::Duration;
    use tokio::sync::watch;

    /// The icon's D-Bus object: the view to show and where clicks go.
    struct Item {
        view: TrayView,
        on_click: OnClick,
    }

    impl ksni::Tray for Item {
        fn id(&self) -> String {
            "orbitphone".into()
        }
        fn title(&self) -> String {
            "Orbit".into()
        }
        fn category(&self) -> ksni::Category {
            ksni::Category::Communications
        }
        fn status(&self) -> ksni::Status {
            if self.view.ringing { ksni::Status::NeedsAttention } else { ksni::Status::Active }
        }
        fn icon_name(&self) -> String {
            // Installed by the .deb (hicolor); hosts fall back to a generic icon otherwise.
            "orbitphone".into()
        }
        fn attention_icon_name(&self) -> String {
            "call-start".into()
        }
        fn tool_tip(&self) -> ksni::ToolTip {
            ksni::ToolTip {
                title: "Orbit".into(),
                description: self.view.tooltip.clone(),
                icon_name: "orbitphone".into(),
                icon_pixmap: Vec::new(),
            }
        }
        fn activate(&mut self, _x: i32, _y: i32) {
            (self.on_click)(TrayItem::ShowWindow);
        }
        fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
            let mut items: Vec<ksni::MenuItem<Self>> = Vec::new();
            for line in self.view.tooltip.lines() {
                items
                    .push(ksni::menu::StandardItem { label: line.into(), enabled: false, ..Default::default() }.into());
            }
            items.push(ksni::MenuItem::Separator);
            for &item in &self.view.menu {
                items.push(
                    ksni::menu::StandardItem {
                        label: item.label().into(),
                        activate: Box::new(move |t: &mut Self| (t.on_click)(item)),
                        ..Default::default()
                    }
                    .into(),
                );
            }
            items
        }
    }

    /// Short words for the window's notice; the details go to the log.
    fn why(e: &ksni::Error) -> String {
        tracing::info!("no tray icon: {e}");
        match e {
            ksni::Error::Dbus(_) => "no session bus".into(),
            ksni::Error::Watcher(_) | ksni::Error::WontShow => "the desktop shows no StatusNotifierItem icons".into(),
            _ => e.to_string(),
        }
    }

    /// The desktop's StatusNotifierItem host.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct SniTray;

    impl TrayBackend for SniTray {
        fn run(self: Box<Self>, mut views: watch::Receiver<TrayView>, on_click: OnClick) -> TrayTask {
            Box::pin(async move {
                let view = views.borrow_and_update().clone();
                let spawn = Item { view, on_click }.spawn();
                let handle = match tokio::time::timeout(Duration::from_secs(10), spawn).await {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => return Err(why(&e)),
                    Err(_) => return Err("the session bus did not answer".into()),
                };
                while views.changed().await.is_ok() {
                    let view = views.borrow_and_update().clone();
                    if handle.update(move |t| t.view = view).await.is_none() {
                        return Err("the tray stopped".into());
                    }
                }
                handle.shutdown().await;
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::api::Event;
    use crate::ui::model::Clock;

    fn clock(unix: f64) -> Clock {
        Clock { unix, utc_offset_s: 0 }
    }

    #[test]
    fn status_follows_registration() {
        let mut m = Model::new("sip:alice@example.com");
        m.registration = Registration::Offline;
        assert_eq!(tray_view(&m, false).status, "Offline");
        m.registration = Registration::Registering;
        assert_eq!(tray_view(&m, false).status, "Signing in as alice@example.com…");
        m.apply(Event::Registered { account: "sip:alice@example.com".into(), expires: 60 }, &clock(0.0));
        let v = tray_view(&m, false);
        assert_eq!(v.status, "Registered as alice@example.com");
        assert_eq!(v.tooltip, "Registered as alice@example.com");
        m.registration = Registration::Failed { reason: "timeout".into() };
        assert!(tray_view(&m, false).status.starts_with("Registration failed: "), "{:?}", tray_view(&m, false));
        m.registration = Registration::Direct;
        assert_eq!(tray_view(&m, false).status, "alice@example.com: direct calls only");
    }

    #[test]
    fn tooltip_counts_parked_calls_and_rings() {
        let mut m = Model::new("sip:alice@example.com");
        m.registration = Registration::Registered { expires: 60 };
        m.apply(Event::CallDialing { call: 1, to: "sip:bob@example.com".into() }, &clock(0.0));
        m.apply(Event::CallEstablished { call: 1, party: "sip:bob@example.com".into(), codec: None }, &clock(1.0));
        m.apply(Event::ParkPending { call: 1 }, &clock(2.0));
        m.apply(
            Event::Parked {
                call: 1,
                orbit: "7001".into(),
                orbit_uri: "sip:7001@example.com".into(),
                retrieve_uri: "sip:7001@example.com".into(),
                ringback_at: 62,
                parkee: "Bob".into(),
            },
            &clock(2.0),
        );
        let v = tray_view(&m, false);
        assert_eq!((v.parked, v.ringing), (1, false));
        assert_eq!(v.tooltip, "Registered as alice@example.com\n1 parked call");
        m.apply(
            Event::CallIncoming {
                call: 2,
                from: "sip:carol@example.com".into(),
                name: None,
                recall: None,
                replaces: None,
            },
            &clock(3.0),
        );
        let v = tray_view(&m, false);
        assert!(v.ringing);
        assert_eq!(v.tooltip, "Registered as alice@example.com\n1 parked call\nIncoming call");
    }

    #[test]
    fn menu_has_show_and_quit_and_the_demo_caller_in_local_mode() {
        let m = Model::new("sip:me@127.0.0.1");
        assert_eq!(tray_view(&m, false).menu, vec![TrayItem::ShowWindow, TrayItem::Quit]);
        assert_eq!(tray_view(&m, true).menu, vec![TrayItem::ShowWindow, TrayItem::HaveBobCallMe, TrayItem::Quit]);
        assert_eq!(TrayItem::HaveBobCallMe.label(), "Have Bob call me");
        assert!(unavailable_notice("no bus").starts_with("No system tray here"));
    }
}
