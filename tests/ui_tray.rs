//! The tray icon. In the window (egui_kittest, local mode, a memory tray): the tray shows
//! the registration and the quick actions work like the window's buttons; with no tray
//! host the window says so once. On a real D-Bus (`dbus-run-session`): the
//! StatusNotifierItem registers with a minimal StatusNotifierWatcher this test serves, its
//! ToolTip follows the view, and a menu click comes back; without a watcher or without a
//! bus the tray reports an error quickly instead of panicking.

#[path = "common/window.rs"]
mod window;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use orbitphone::net::serve;
use orbitphone::ui::OrbitApp;
use orbitphone::ui::tray::{MemoryTray, TrayItem};
use window::*;

fn window(rt: &tokio::runtime::Runtime, local: &serve::LocalMode, tray: &MemoryTray) -> Harness<'static, OrbitApp> {
    let mut app = local_mode_app(rt, local, true);
    app.set_tray(Box::new(tray.clone()));
    harness(app)
}

#[test]
fn tray_shows_registration_and_its_quick_action_rings_the_window() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = rt.block_on(serve::start_local_mode()).expect("local mode");
    let tray = MemoryTray::default();
    let mut h = window(&rt, &local, &tray);
    step_until(&mut h, "the tray saying registered", |_| {
        tray.last().is_some_and(|v| v.status.starts_with("Registered as me@"))
    });
    let v = tray.last().expect("a view");
    assert_eq!(v.menu, vec![TrayItem::ShowWindow, TrayItem::HaveBobCallMe, TrayItem::Quit]);
    assert_eq!((v.parked, v.ringing), (0, false));

    // The tray's "Have Bob call me" is the window's button: the demo line rings us.
    assert!(tray.click(TrayItem::HaveBobCallMe));
    step_until(&mut h, "the incoming popup from Bob", |h| {
        h.query_all_by_label("Bob (calls you back) is calling").next().is_some()
    });
    step_until(&mut h, "the tray ringing", |_| tray.last().is_some_and(|v| v.ringing));
    assert!(tray.last().expect("a view").tooltip.ends_with("\nIncoming call"));
    assert!(tray.click(TrayItem::ShowWindow));
    h.step();
    h.step();
    assert!(
        !h.state().model().notices.iter().any(|n| n.starts_with("No system tray")),
        "{:?}",
        h.state().model().notices
    );
}

#[test]
fn no_tray_host_is_said_once_in_the_window() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = rt.block_on(serve::start_local_mode()).expect("local mode");
    let tray = MemoryTray { fail: true, ..Default::default() };
    let mut h = window(&rt, &local, &tray);
    step_until(&mut h, "the no-tray notice", |h| h.query_all_by_label_contains("No system tray here").next().is_some());
    for _ in 0..10 {
        h.step();
    }
    let n = h.state().model().notices.iter().filter(|n| n.starts_with("No system tray here")).count();
    assert_eq!(n, 1, "{:?}", h.state().model().notices);
    assert!(!tray.click(TrayItem::Quit), "no tray, nothing to click");
    // The window still works.
    step_until(&mut h, "registered as me", |h| h.query_all_by_label_contains("Registered as me@").next().is_some());
}

#[cfg(target_os = "linux")]
mod real_bus {
    use orbitphone::ui::tray::{OnClick, TrayBackend, TrayItem, TrayView, sni::SniTray};
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tokio::sync::{mpsc, watch};
    use zbus::zvariant::OwnedValue;

    /// The bare minimum of `org.kde.StatusNotifierWatcher` (what a panel runs): it takes
    /// registrations and says a host is there.
    struct Watcher {
        items: mpsc::UnboundedSender<String>,
    }

    #[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
    impl Watcher {
        fn register_status_notifier_item(&self, service: &str) {
            let _ = self.items.send(service.to_string());
        }
        fn register_status_notifier_host(&self, _service: &str) {}
        #[zbus(property)]
        fn registered_status_notifier_items(&self) -> Vec<String> {
            Vec::new()
        }
        #[zbus(property)]
        fn is_status_notifier_host_registered(&self) -> bool {
            true
        }
        #[zbus(property)]
        fn protocol_version(&self) -> i32 {
            0
        }
    }

    type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);
    /// A dbusmenu item: id, properties, children.
    type MenuNode = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

    fn view(tooltip: &str) -> TrayView {
        TrayView {
            status: tooltip.lines().next().unwrap_or_default().into(),
            tooltip: tooltip.into(),
            menu: vec![TrayItem::ShowWindow, TrayItem::Quit],
            ..Default::default()
        }
    }

    fn rerun(name: &str, mode: &str, under_bus: bool) -> String {
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = if under_bus {
            let mut c = std::process::Command::new("dbus-run-session");
            c.arg("--").arg(exe);
            c
        } else {
            let mut c = std::process::Command::new(exe);
            c.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/orbit-tray-test-bus");
            c
        };
        let out = cmd.args(["--exact", name, "--nocapture"]).env("ORBIT_TRAY_INNER", mode).output().expect("rerun");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        for line in text
            .lines()
            .filter(|l| l.starts_with("no bus: ") || l.starts_with("no watcher: ") || l.contains("click ok"))
        {
            eprintln!("{mode}: {line}");
        }
        text
    }

    fn have_dbus_run_session() -> bool {
        std::process::Command::new("dbus-run-session").args(["--version"]).output().is_ok_and(|o| o.status.success())
    }

    /// Run the real tray with `tooltip`; clicks go to the returned receiver.
    fn start(
        rt: &tokio::runtime::Runtime,
        tooltip: &str,
    ) -> (watch::Sender<TrayView>, mpsc::UnboundedReceiver<TrayItem>, tokio::task::JoinHandle<Result<(), String>>) {
        let (tx, rx) = watch::channel(view(tooltip));
        let (click_tx, clicks) = mpsc::unbounded_channel();
        let on_click: OnClick = Arc::new(move |item| {
            let _ = click_tx.send(item);
        });
        let task = rt.spawn(Box::new(SniTray).run(rx, on_click));
        (tx, clicks, task)
    }

    #[test]
    fn sni_tray_on_a_real_session_bus() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        match std::env::var("ORBIT_TRAY_INNER").as_deref() {
            Ok("no-bus") => {
                let started = Instant::now();
                let (_tx, _clicks, task) = start(&rt, "Offline");
                let r = rt.block_on(task).expect("no panic");
                assert_eq!(r, Err("no session bus".to_string()));
                assert!(started.elapsed() < Duration::from_secs(5));
                eprintln!("no bus: {}", r.unwrap_err());
            }
            Ok("bus") => rt.block_on(on_a_bus(&rt)),
            _ => {
                let name = "real_bus::sni_tray_on_a_real_session_bus";
                let text = rerun(name, "no-bus", false);
                assert!(text.contains("no bus: "), "{text}");
                if !have_dbus_run_session() {
                    eprintln!("skipped the bus half: dbus-run-session not installed (package dbus)");
                    return;
                }
                let text = rerun(name, "bus", true);
                assert!(text.contains("no watcher: ") && text.contains("menu click ok"), "{text}");
            }
        }
    }

    async fn on_a_bus(rt: &tokio::runtime::Runtime) {
        // No watcher yet (no panel): an error, quickly.
        let (_tx, _clicks, task) = start(rt, "Offline");
        let r = tokio::time::timeout(Duration::from_secs(5), task).await.expect("quick").expect("no panic");
        assert_eq!(r, Err("the desktop shows no StatusNotifierItem icons".to_string()));
        eprintln!("no watcher: {}", r.unwrap_err());

        // A watcher (a panel): the item registers and shows our tooltip.
        let (items_tx, mut items) = mpsc::unbounded_channel();
        let _watcher = zbus::connection::Builder::session()
            .expect("session")
            .name("org.kde.StatusNotifierWatcher")
            .expect("name")
            .serve_at("/StatusNotifierWatcher", Watcher { items: items_tx })
            .expect("serve")
            .build()
            .await
            .expect("watcher on the bus");
        let (tx, mut clicks, task) = start(rt, "Registered as alice@example.com\n1 parked call");
        let item = tokio::time::timeout(Duration::from_secs(5), items.recv()).await.expect("registers").expect("name");
        assert!(item.starts_with("org.kde.StatusNotifierItem-"), "{item}");

        let conn = zbus::connection::Builder::session().expect("session").build().await.expect("client");
        let sni = zbus::Proxy::new(&conn, item.clone(), "/StatusNotifierItem", "org.kde.StatusNotifierItem")
            .await
            .expect("proxy");
        let tip =
            |sni: zbus::Proxy<'static>| async move { sni.get_property::<ToolTip>("ToolTip").await.expect("ToolTip") };
        let (_, _, title, text) = tip(sni.clone()).await;
        assert_eq!((title.as_str(), text.as_str()), ("Orbit", "Registered as alice@example.com\n1 parked call"));
        assert_eq!(sni.get_property::<String>("Id").await.expect("Id"), "orbitphone");
        assert_eq!(sni.get_property::<String>("Status").await.expect("Status"), "Active");

        // The view changes: the tooltip follows (the app only sends changed views).
        tx.send_replace(TrayView { ringing: true, ..view("Registration failed: 403 Forbidden") });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let sni = zbus::Proxy::new(&conn, item.clone(), "/StatusNotifierItem", "org.kde.StatusNotifierItem")
                .await
                .expect("proxy");
            let (_, _, _, text) = tip(sni.clone()).await;
            if text == "Registration failed: 403 Forbidden" {
                assert_eq!(sni.get_property::<String>("Status").await.expect("Status"), "NeedsAttention");
                break;
            }
            assert!(Instant::now() < deadline, "tooltip still {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // The menu (com.canonical.dbusmenu): find "Quit" and click it as a panel would.
        let menu =
            zbus::Proxy::new(&conn, item.clone(), "/MenuBar", "com.canonical.dbusmenu").await.expect("menu proxy");
        let (_rev, (_root, _props, children)): (u32, MenuNode) =
            menu.call("GetLayout", &(0i32, -1i32, Vec::<String>::new())).await.expect("GetLayout");
        let mut labels = Vec::new();
        let mut quit = None;
        for child in children {
            let (id, props, _): MenuNode = child.try_into().expect("menu item");
            if let Some(label) = props.get("label").and_then(|l| String::try_from(l.try_clone().ok()?).ok()) {
                if label == "Quit" {
                    quit = Some(id);
                }
                labels.push(label);
            }
        }
        assert_eq!(labels, ["Registration failed: 403 Forbidden", "Show Orbit", "Quit"]);
        let quit = quit.expect("a Quit item");
        let () = menu.call("Event", &(quit, "clicked", zbus::zvariant::Value::from(0i32), 0u32)).await.expect("click");
        let got = tokio::time::timeout(Duration::from_secs(5), clicks.recv()).await.expect("click arrives");
        assert_eq!(got, Some(TrayItem::Quit));
        eprintln!("menu click ok");

        // The app goes away: the tray ends cleanly.
        drop(tx);
        let r = tokio::time::timeout(Duration::from_secs(5), task).await.expect("ends").expect("no panic");
        assert_eq!(r, Ok(()));
    }
}
