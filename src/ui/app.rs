//! The eframe app: each frame drains engine events into the [`Model`], draws it, and
//! turns clicks into [`Command`]s sent with `try_send`. It never waits on the engine: a
//! small task forwards events and wakes the window, and countdowns ask for a repaint
//! only when their text changes, so an idle window uses no CPU.

use super::account_form::AccountForm;
use super::clipboard::Clipboard;
use super::model::{Clock, Model, Registration};
use super::notify::{self, Notifier};
use super::secrets::{self, AtStart, SecretStore};
use super::settings::{self, AccountSettings, Settings, ThemeChoice};
use super::tray::{self, TrayBackend, TrayItem, TrayView};
use super::{audio_settings, conversation, incoming, main_window, settings_window, trace_window};
use crate::net::phone_driver::{self, PhoneConfig, PhoneHandle};
use crate::net::single_instance::Handover;
use crate::phone::api::{AudioRole, CallNo, Command, Event};
use crate::sip::transport::Transport;
use eframe::egui;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// What a click asks for; the views return these and the app carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a command to the engine.
    Send(Command),
    /// Put the park's IM line on the clipboard (`call` shows "Copied").
    Copy { call: CallNo, text: String },
    /// Close a conversation window.
    Close(CallNo),
    /// Open the account form.
    EditAccount,
    /// Leave the account form without changes.
    CancelAccount,
    /// Save the account and (re)start the phone with it.
    SignIn { account: AccountSettings, password: String },
    /// Forget a notice.
    DismissNotice(usize),
    /// Open the audio settings (lists devices, starts the input meter).
    OpenAudioSettings,
    /// Close them (stops the meter).
    CloseAudioSettings,
    /// Use and remember a sound device for `role` (`None`: the default).
    ChooseAudio { role: AudioRole, device: Option<String> },
    /// Open the SIP trace window.
    ShowTrace,
    /// Put the whole SIP trace on the clipboard.
    CopyTrace(String),
    /// Open the Settings window.
    ShowSettings,
    /// Sign in with the saved account at this index.
    SwitchAccount(usize),
    /// Forget the saved account at this index (not the one in use).
    RemoveAccount(usize),
    /// Open the account form for a new account.
    AddAccount,
    /// Theme or scale changed: save the settings.
    SaveSettings,
    /// Local mode: the demo line calls you.
    HaveBobCallMe,
    /// Bring the window forward (tray).
    ShowWindow,
    /// Quit like closing the window (tray).
    Quit,
}

impl From<TrayItem> for Action {
    /// A tray click is the same action as the window's button for it.
    fn from(item: TrayItem) -> Action {
        match item {
            TrayItem::ShowWindow => Action::ShowWindow,
            TrayItem::HaveBobCallMe => Action::HaveBobCallMe,
            TrayItem::Quit => Action::Quit,
        }
    }
}

/// Local mode's "Have Bob call me": the demo line's command channel and the address it
/// should call (yours). Only the local mode has one.
#[derive(Debug, Clone)]
pub struct DemoCaller {
    /// The `callme` demo line's engine.
    pub commands: mpsc::Sender<Command>,
    /// Whom it dials: the window's own account.
    pub target: String,
}

/// Per-window state that is not the engine's (open keypads, typed transfer targets).
#[derive(Debug, Default)]
pub struct ViewState {
    /// The number/URI entry.
    pub dial: String,
    /// Calls whose keypad is open.
    pub keypad: HashSet<CallNo>,
    /// Calls whose transfer row is open, with the typed target.
    pub transfer: HashMap<CallNo, String>,
    /// Closed windows of parks still running (the Parked calls panel shows them).
    pub hidden: HashSet<CallNo>,
    /// "Copied" feedback: call and the Unix time of the copy.
    pub copied: Option<(CallNo, f64)>,
    /// The last copy failed: why.
    pub copy_error: Option<String>,
    /// The dial field should take keyboard focus.
    pub focus_dial: bool,
    /// The audio settings window is open.
    pub audio_open: bool,
    /// The SIP trace window is open.
    pub trace_open: bool,
    /// The Settings window is open.
    pub settings_open: bool,
    /// Show "Have Bob call me" (local mode).
    pub demo_caller: bool,
}

/// How the app gets its engine.
pub enum Start {
    /// Show the account form (first run, or no saved account).
    Form,
    /// Sign in with saved settings; the password is asked for on the form unless given.
    Saved { password: Option<String> },
    /// Start an engine for this account at once (quick start from the command line).
    Account(Box<PhoneConfig>),
    /// Use an engine that is already running (tests); `registers` says whether its account REGISTERs.
    Running { phone: PhoneHandle, registers: bool },
}

/// Everything the app is built from.
pub struct AppOptions {
    /// The tokio runtime the engine runs on.
    pub runtime: tokio::runtime::Handle,
    /// Where settings and history live (`None`: nothing is saved).
    pub config_dir: Option<PathBuf>,
    /// The clipboard for Copy.
    pub clipboard: Box<dyn Clipboard>,
    /// How to get an engine.
    pub start: Start,
    /// Dial this once the engine runs (a `sip:`/`tel:` link the app was opened with).
    pub dial: Option<String>,
    /// Where the engine binds SIP.
    pub listen: SocketAddr,
    /// A first notice to show (the local mode explains itself).
    pub welcome: Option<String>,
    /// Where account passwords are kept (the OS keyring; memory in tests).
    pub secrets: Arc<dyn SecretStore>,
    /// Where desktop notifications go (the desktop's daemon; memory in tests).
    pub notifier: Arc<dyn Notifier>,
}

/// What background helpers (keyring, notifications) report back to the window.
#[derive(Debug)]
enum SideNote {
    /// Show this in the notice bar.
    Notice(String),
    /// A desktop notification could not be shown; why.
    NotifyFailed(String),
    /// A tray menu click.
    TrayClick(TrayItem),
    /// There is no tray; why.
    TrayUnavailable(String),
}

/// The engine as the window sees it.
enum Engine {
    /// Not running.
    Off,
    /// `phone_driver::start` is running on the runtime.
    Starting(oneshot::Receiver<Result<PhoneHandle, String>>),
    /// Started; events are forwarded from the first frame that has a context.
    Ready(PhoneHandle),
    /// Running.
    Running { commands: mpsc::Sender<Command>, events: mpsc::UnboundedReceiver<Event> },
}

/// The Orbit window.
pub struct OrbitApp {
    rt: tokio::runtime::Handle,
    model: Model,
    view: ViewState,
    settings: Settings,
    config_dir: Option<PathBuf>,
    clipboard: Box<dyn Clipboard>,
    engine: Engine,
    form: Option<AccountForm>,
    pending_dial: Option<String>,
    listen: SocketAddr,
    /// Theme and scale applied to the context.
    applied_style: Option<(ThemeChoice, f32)>,
    /// Where the running engine's SIP sockets are bound.
    local: HashMap<Transport, SocketAddr>,
    secrets: Arc<dyn SecretStore>,
    notifier: Arc<dyn Notifier>,
    /// Notifications failed once (told the user); no more are tried.
    notify_failed: bool,
    side_tx: mpsc::UnboundedSender<SideNote>,
    side_rx: mpsc::UnboundedReceiver<SideNote>,
    /// The window's context once drawn, so background helpers can wake it.
    ctx: Option<egui::Context>,
    /// The window title last set: "Orbit — Registered as me@…", so the taskbar (and a
    /// script with `xdotool getwindowname`) sees the registration state.
    title: String,
    /// The running phone's SIP trace.
    trace: Option<crate::net::sip_trace::SipTrace>,
    /// URIs handed over by later launches (`orbitphone sip:…` while we run).
    handover: Option<mpsc::UnboundedReceiver<Handover>>,
    /// The same, forwarded so that each wakes the window.
    handover_rx: Option<mpsc::UnboundedReceiver<Handover>>,
    /// The local mode's demo caller.
    demo_caller: Option<DemoCaller>,
    /// The tray to start on the first frame.
    tray_backend: Option<Box<dyn TrayBackend>>,
    /// What the running tray shows.
    tray_views: Option<watch::Sender<TrayView>>,
    /// Actions that came from outside the window (tray clicks), for the next frame.
    pending: Vec<Action>,
}

impl OrbitApp {
    /// Build the app; starts the engine in the background when there is one to start.
    pub fn new(opts: AppOptions) -> OrbitApp {
        let (settings, settings_error) = match opts.config_dir.as_deref().map(Settings::load) {
            Some(Ok(s)) => (s, None),
            Some(Err(e)) => (Settings::default(), Some(e)),
            None => (Settings::default(), None),
        };
        let mut model = Model::default();
        if let Some(welcome) = &opts.welcome {
            model.notice(welcome.clone());
        }
        if let Some(dir) = &opts.config_dir {
            model.history = settings::load_history(dir);
        }
        if let Some(e) = settings_error {
            model.notice(format!("Your settings could not be read ({e}); please enter the account again."));
        }
        let (side_tx, side_rx) = mpsc::unbounded_channel();
        let mut app = OrbitApp {
            rt: opts.runtime,
            model,
            view: ViewState::default(),
            settings,
            config_dir: opts.config_dir,
            clipboard: opts.clipboard,
            engine: Engine::Off,
            form: None,
            pending_dial: opts.dial,
            listen: opts.listen,
            applied_style: None,
            local: HashMap::new(),
            secrets: opts.secrets,
            notifier: opts.notifier,
            notify_failed: false,
            side_tx,
            side_rx,
            ctx: None,
            title: String::new(),
            trace: None,
            handover: None,
            handover_rx: None,
            demo_caller: None,
            tray_backend: None,
            tray_views: None,
            pending: Vec::new(),
        };
        match opts.start {
            Start::Form => {
                let acc = app.settings.account().cloned().unwrap_or_default();
                app.form = Some(AccountForm::new(acc, true).with_note(app.keyring_note()));
            }
            Start::Saved { password } => match app.settings.account().cloned() {
                Some(acc) => match secrets::at_start(app.secrets.as_ref(), &acc.aor().unwrap_or_default(), password) {
                    AtStart::SignIn(pw) => app.sign_in(acc, pw, false),
                    AtStart::Ask { note } => {
                        if note.starts_with("No system keyring") {
                            app.model.notice(note.clone());
                        }
                        app.form = Some(AccountForm::new(acc, false).with_note(note));
                    }
                },
                None => {
                    let note = app.keyring_note();
                    app.form = Some(AccountForm::new(AccountSettings::default(), true).with_note(note));
                }
            },
            Start::Account(mut cfg) => {
                if cfg.audio.sound_card && cfg.audio.input_device.is_none() && cfg.audio.output_device.is_none() {
                    // The devices chosen in the audio settings.
                    let io = app.settings.audio.audio_io();
                    cfg.audio = crate::net::media_task::AudioIo {
                        input_device: io.input_device,
                        output_device: io.output_device,
                        ring_device: io.ring_device,
                        ..cfg.audio
                    };
                }
                app.model.account = cfg.account.aor.clone();
                let registers = cfg.account.register;
                app.start_engine(async move { phone_driver::start(*cfg).await });
                if !registers {
                    app.model.registration = Registration::Direct;
                }
            }
            Start::Running { phone, registers } => {
                app.engine = Engine::Ready(phone);
                app.model.registration = if registers { Registration::Registering } else { Registration::Direct };
            }
        }
        app
    }

    /// Dial what later launches hand over (see [`crate::net::single_instance`]).
    pub fn listen_for_handover(&mut self, rx: mpsc::UnboundedReceiver<Handover>) {
        self.handover = Some(rx);
    }

    /// Start forwarding hand-overs so each wakes the window (needs the context).
    fn forward_handover(&mut self, ctx: &egui::Context) {
        let Some(mut rx) = self.handover.take() else { return };
        let (tx, out) = mpsc::unbounded_channel();
        let ctx = ctx.clone();
        self.rt.spawn(async move {
            while let Some(h) = rx.recv().await {
                if tx.send(h).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        self.handover_rx = Some(out);
    }

    /// Carry out hand-overs that arrived: dial (now, or once the engine runs) and come forward.
    fn take_handovers(&mut self, ctx: &egui::Context) {
        let mut got = Vec::new();
        if let Some(rx) = &mut self.handover_rx {
            while let Ok(h) = rx.try_recv() {
                got.push(h);
            }
        }
        for h in got {
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
            if let Handover::Dial(target) = h {
                if matches!(self.engine, Engine::Running { .. }) {
                    self.send(Command::Dial { target });
                } else {
                    self.pending_dial = Some(target);
                }
            }
        }
    }

    /// Use this colour scheme for this run (not saved).
    pub fn set_theme(&mut self, theme: ThemeChoice) {
        self.settings.theme = theme;
    }

    /// Local mode: show "Have Bob call me", which makes this demo line call you.
    pub fn set_demo_caller(&mut self, caller: DemoCaller) {
        self.view.demo_caller = true;
        self.demo_caller = Some(caller);
    }

    /// Show a tray icon here (started on the first frame; see [`tray`]).
    pub fn set_tray(&mut self, backend: Box<dyn TrayBackend>) {
        self.tray_backend = Some(backend);
    }

    /// Start the tray's task: it publishes views and reports clicks through the side
    /// channel, waking the window; the window never waits on it.
    fn start_tray(&mut self, ctx: &egui::Context) {
        let Some(backend) = self.tray_backend.take() else { return };
        let (tx, rx) = watch::channel(tray::tray_view(&self.model, self.view.demo_caller));
        let (side, wake) = (self.side_tx.clone(), ctx.clone());
        let on_click: tray::OnClick = Arc::new(move |item| {
            let _ = side.send(SideNote::TrayClick(item));
            wake.request_repaint();
        });
        let (side, wake) = (self.side_tx.clone(), ctx.clone());
        self.rt.spawn(async move {
            if let Err(why) = backend.run(rx, on_click).await {
                let _ = side.send(SideNote::TrayUnavailable(why));
                wake.request_repaint();
            }
        });
        self.tray_views = Some(tx);
    }

    /// The running engine's SIP address (UDP), once it runs.
    pub fn local_sip(&self) -> Option<SocketAddr> {
        self.local.get(&Transport::Udp).copied()
    }

    /// The view model (tests look at it).
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn start_engine(&mut self, start: impl std::future::Future<Output = Result<PhoneHandle, String>> + Send + 'static) {
        let (tx, rx) = oneshot::channel();
        self.rt.spawn(async move {
            let _ = tx.send(start.await);
        });
        self.model.registration = Registration::Registering;
        self.model.stopped = false;
        self.engine = Engine::Starting(rx);
    }

    /// Write `settings.toml` (when the app has a config dir); a failure is a notice.
    fn save_settings(&mut self) {
        if let Some(dir) = &self.config_dir
            && let Err(e) = self.settings.save(dir)
        {
            self.model.notice(format!("Settings not saved: {e}"));
        }
    }

    /// The account form's line about the password: kept in the keyring, or why not.
    fn keyring_note(&self) -> String {
        match secrets::availability(self.secrets.as_ref()) {
            Ok(()) => secrets::KEPT_IN_KEYRING.to_string(),
            Err(why) => secrets::no_keyring_note(&why),
        }
    }

    /// Sign in; `save_password` puts the password in the keyring (off the UI thread).
    fn sign_in(&mut self, account: AccountSettings, password: String, save_password: bool) {
        // Another account: the local demo line would call `me`, not this phone.
        self.view.demo_caller = false;
        self.settings.use_account(account.clone());
        self.save_settings();
        if save_password && let Ok(aor) = account.aor() {
            let (store, pw, side, ctx) =
                (self.secrets.clone(), password.clone(), self.side_tx.clone(), self.ctx.clone());
            self.rt.spawn_blocking(move || {
                if let Some(notice) = secrets::remember(store.as_ref(), &aor, &pw) {
                    let _ = side.send(SideNote::Notice(notice));
                    if let Some(ctx) = ctx {
                        ctx.request_repaint();
                    }
                }
            });
        }
        self.stop_engine();
        self.model.account = account.aor().unwrap_or_default();
        let listen = self.listen;
        let register = account.register;
        let audio = self.settings.audio.audio_io();
        self.start_engine(async move {
            let acc = account.to_account(Some(password)).await?;
            phone_driver::start(PhoneConfig { account: acc, listen, ca_file: None, audio }).await
        });
        if !register {
            self.model.registration = Registration::Direct;
        }
        self.form = None;
    }

    fn stop_engine(&mut self) {
        if let Engine::Running { commands, .. } = &self.engine {
            let _ = commands.try_send(Command::Quit);
        }
        self.engine = Engine::Off;
    }

    /// Show a desktop notification, off the UI thread (a D-Bus round trip).
    fn notify(&mut self, note: notify::Note) {
        let (notifier, side, ctx) = (self.notifier.clone(), self.side_tx.clone(), self.ctx.clone());
        self.rt.spawn_blocking(move || {
            if let Err(why) = notifier.show(&note) {
                let _ = side.send(SideNote::NotifyFailed(why));
                if let Some(ctx) = ctx {
                    ctx.request_repaint();
                }
            }
        });
    }

    /// Take what the engine said since the last frame.
    fn poll(&mut self, ctx: &egui::Context, clock: &Clock) {
        while let Ok(note) = self.side_rx.try_recv() {
            match note {
                SideNote::Notice(text) => self.model.notice(text),
                SideNote::NotifyFailed(why) if !self.notify_failed => {
                    self.notify_failed = true;
                    self.model.notice(notify::unavailable_notice(&why));
                }
                SideNote::NotifyFailed(_) => {}
                SideNote::TrayClick(item) => self.pending.push(item.into()),
                SideNote::TrayUnavailable(why) => {
                    if self.tray_views.take().is_some() {
                        self.model.notice(tray::unavailable_notice(&why));
                    }
                }
            }
        }
        if let Engine::Starting(rx) = &mut self.engine {
            match rx.try_recv() {
                Ok(Ok(handle)) => self.engine = Engine::Ready(handle),
                Ok(Err(e)) => {
                    self.model.registration = Registration::Failed { reason: e.clone() };
                    self.model.notice(format!("The phone could not start: {e}"));
                    self.engine = Engine::Off;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => self.engine = Engine::Off,
            }
        }
        if matches!(self.engine, Engine::Ready(_)) {
            let Engine::Ready(handle) = std::mem::replace(&mut self.engine, Engine::Off) else { unreachable!() };
            self.engine = self.forward(handle, ctx.clone());
            if matches!(self.model.registration, Registration::Offline) {
                self.model.registration = Registration::Registering;
            }
            // Learn the account's address for the status line.
            self.send(Command::Status);
            // Busy-lamp of the orbits, when the server is an Orbit park service.
            self.send(Command::WatchOrbits);
            if let Some(target) = self.pending_dial.take() {
                self.send(Command::Dial { target });
            }
        }
        let mut notes = Vec::new();
        if let Engine::Running { events, .. } = &mut self.engine {
            let mut n = 0;
            while let Ok(ev) = events.try_recv() {
                let direct = matches!(self.model.registration, Registration::Direct);
                self.model.apply(ev.clone(), clock);
                if !self.notify_failed
                    && let Some(note) = notify::notification_for(&ev, &self.model, clock)
                {
                    notes.push(note);
                }
                if direct && matches!(self.model.registration, Registration::Offline) && !self.model.stopped {
                    self.model.registration = Registration::Direct;
                }
                n += 1;
                // Bounded work per frame; the rest next frame (the forwarder woke us).
                if n >= 256 {
                    ctx.request_repaint();
                    break;
                }
            }
            if self.model.stopped {
                self.engine = Engine::Off;
            }
        }
        for note in notes {
            self.notify(note);
        }
    }

    /// A task that moves events from the engine to the window and wakes it: the window
    /// sleeps until something happens.
    fn forward(&mut self, handle: PhoneHandle, ctx: egui::Context) -> Engine {
        let PhoneHandle { commands, mut events, local, trace } = handle;
        self.trace = Some(trace);
        self.local = local;
        let (tx, rx) = mpsc::unbounded_channel();
        self.rt.spawn(async move {
            while let Some(ev) = events.recv().await {
                if tx.send(ev).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        Engine::Running { commands, events: rx }
    }

    fn send(&mut self, cmd: Command) {
        let result = match &self.engine {
            Engine::Running { commands, .. } => commands.try_send(cmd).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => "The phone is busy; try again in a moment.",
                mpsc::error::TrySendError::Closed(_) => "The phone has stopped.",
            }),
            _ => Err("Not signed in: open Account to sign in."),
        };
        if let Err(msg) = result {
            self.model.notice(msg.to_string());
        }
    }

    fn run(&mut self, actions: Vec<Action>, clock: &Clock) {
        for action in actions {
            match action {
                Action::Send(cmd) => {
                    if let Command::Dial { .. } | Command::Retrieve { .. } = cmd {
                        self.view.dial.clear();
                    }
                    self.send(cmd);
                }
                Action::Copy { call, text } => match self.clipboard.set_text(&text) {
                    Ok(()) => {
                        self.view.copied = Some((call, clock.unix));
                        self.view.copy_error = None;
                    }
                    Err(e) => self.view.copy_error = Some(e),
                },
                Action::Close(call) => {
                    let live = self.model.calls.get(&call).and_then(|c| c.park.as_ref()).is_some_and(|p| p.is_live());
                    if live {
                        self.view.hidden.insert(call);
                    } else {
                        self.model.dismiss(call);
                    }
                }
                Action::EditAccount => {
                    let acc = self.settings.account().cloned().unwrap_or_default();
                    self.form = Some(AccountForm::new(acc, false).with_note(self.keyring_note()));
                }
                Action::CancelAccount => self.form = None,
                Action::SignIn { account, password } => self.sign_in(account, password, true),
                Action::ShowTrace => self.view.trace_open = true,
                Action::ShowSettings => self.view.settings_open = true,
                Action::SwitchAccount(i) => {
                    if let Some(acc) = self.settings.accounts.get(i).cloned() {
                        match secrets::at_start(self.secrets.as_ref(), &acc.aor().unwrap_or_default(), None) {
                            AtStart::SignIn(pw) => self.sign_in(acc, pw, false),
                            AtStart::Ask { note } => self.form = Some(AccountForm::new(acc, false).with_note(note)),
                        }
                        self.view.settings_open = false;
                    }
                }
                Action::RemoveAccount(i) => {
                    if i != self.settings.active && i < self.settings.accounts.len() {
                        self.settings.accounts.remove(i);
                        if i < self.settings.active {
                            self.settings.active -= 1;
                        }
                        self.save_settings();
                    }
                }
                Action::AddAccount => {
                    self.form =
                        Some(AccountForm::new(AccountSettings::default(), false).with_note(self.keyring_note()));
                    self.view.settings_open = false;
                }
                Action::SaveSettings => self.save_settings(),
                Action::CopyTrace(text) => match self.clipboard.set_text(&text) {
                    Ok(()) => self.model.notice("SIP trace copied: paste it into your support request.".into()),
                    Err(e) => self.model.notice(e),
                },
                Action::DismissNotice(i) => {
                    if i < self.model.notices.len() {
                        self.model.notices.remove(i);
                    }
                }
                Action::OpenAudioSettings => {
                    self.view.audio_open = true;
                    self.send(Command::ListAudioDevices);
                    self.send(Command::AudioMeter { on: true });
                }
                Action::CloseAudioSettings => {
                    self.view.audio_open = false;
                    self.send(Command::AudioMeter { on: false });
                }
                Action::ChooseAudio { role, device } => {
                    self.settings.audio.set(role, device.clone());
                    if let Some(dir) = &self.config_dir
                        && let Err(e) = self.settings.save(dir)
                    {
                        self.model.notice(format!("Settings not saved: {e}"));
                    }
                    self.send(Command::ChooseAudioDevice { role, device });
                }
                Action::ShowWindow => {
                    if let Some(ctx) = &self.ctx {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
                        ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                        ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                    }
                }
                Action::Quit => {
                    if let Some(ctx) = &self.ctx {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                }
                Action::HaveBobCallMe => {
                    let sent = self.demo_caller.as_ref().map(|d| {
                        d.commands.try_send(Command::Dial { target: d.target.clone() }).map_err(|e| match e {
                            mpsc::error::TrySendError::Full(_) => "The demo line is busy; try again in a moment.",
                            mpsc::error::TrySendError::Closed(_) => "The demo line has stopped.",
                        })
                    });
                    if let Some(Err(msg)) = sent {
                        self.model.notice(msg.to_string());
                    }
                }
            }
        }
    }

    fn apply_style(&mut self, ctx: &egui::Context) {
        let want = (self.settings.theme, self.settings.ui_scale);
        if self.applied_style == Some(want) {
            return;
        }
        self.applied_style = Some(want);
        ctx.set_theme(match self.settings.theme {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Light => egui::ThemePreference::Light,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
        });
        if (0.5..=3.0).contains(&self.settings.ui_scale) {
            ctx.set_zoom_factor(self.settings.ui_scale);
        }
    }

    /// Keyboard: Esc hangs up a ringing outgoing call, Ctrl+P parks the active call.
    fn shortcuts(&self, ctx: &egui::Context) -> Vec<Action> {
        let mut actions = Vec::new();
        let park = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::P);
        if ctx.input_mut(|i| i.consume_shortcut(&park))
            && let Some(c) = main_window::active_call(&self.model)
        {
            actions.push(Action::Send(Command::Park { call: Some(c) }));
        }
        if ctx.input(|i| i.key_pressed(egui::Key::Escape))
            && let Some(c) = main_window::ringing_outgoing(&self.model)
        {
            actions.push(Action::Send(Command::Hangup { call: Some(c) }));
        }
        actions
    }

    /// Draw one frame (eframe calls this through [`eframe::App::ui`]; tests call it directly).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.ctx.is_none() {
            self.ctx = Some(ctx.clone());
        }
        if self.handover.is_some() {
            self.forward_handover(&ctx);
        }
        let title = format!("Orbit — {}", main_window::registration_text(&self.model));
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        if self.tray_backend.is_some() {
            self.start_tray(&ctx);
        }
        let clock = Clock::now();
        self.apply_style(&ctx);
        self.poll(&ctx, &clock);
        self.take_handovers(&ctx);
        self.model.tick(&clock);
        self.view.hidden.retain(|c| self.model.calls.contains_key(c));
        if self.view.copied.is_some_and(|(_, at)| clock.unix - at > 3.0) {
            self.view.copied = None;
        }
        let mut actions = std::mem::take(&mut self.pending);
        actions.extend(self.shortcuts(&ctx));
        main_window::status_panel(ui, &self.model, &mut actions);
        main_window::notices_panel(ui, &self.model, &mut actions);
        if let Some(form) = &mut self.form {
            egui::CentralPanel::default().show(ui, |ui| form.show(ui, &mut actions));
        } else {
            main_window::show(ui, &self.model, &mut self.view, &clock, &mut actions);
            let visible: Vec<CallNo> =
                self.model.conversations().map(|c| c.no).filter(|c| !self.view.hidden.contains(c)).collect();
            for (i, no) in visible.iter().enumerate() {
                if let Some(call) = self.model.calls.get(no) {
                    conversation::show(&ctx, i, call, &self.model, &mut self.view, &clock, &mut actions);
                }
            }
            incoming::show(&ctx, &self.model, &mut actions);
            if self.view.audio_open {
                audio_settings::show(&ctx, &self.model.audio, &self.settings.audio, &mut actions);
            }
        }
        if self.view.settings_open {
            settings_window::show(&ctx, &mut self.view.settings_open, &mut self.settings, &mut actions);
        }
        if self.view.trace_open {
            trace_window::show(&ctx, &mut self.view.trace_open, self.trace.as_ref(), &mut actions);
        }
        self.run(actions, &clock);
        if let Some(tx) = &self.tray_views {
            let view = tray::tray_view(&self.model, self.view.demo_caller);
            tx.send_if_modified(|shown| {
                let changed = *shown != view;
                if changed {
                    *shown = view;
                }
                changed
            });
        }
        if self.model.history_dirty {
            self.model.history_dirty = false;
            if let Some(dir) = &self.config_dir
                && let Err(e) = settings::save_history(dir, &self.model.history)
            {
                self.model.notice(format!("Recent calls not saved: {e}"));
            }
        }
        // Wake up when a countdown or timer changes its text, not before.
        let mut next = self.model.next_change(&clock);
        if let Some((_, at)) = self.view.copied {
            next = Some(next.map_or(at + 3.0, |n| n.min(at + 3.0)));
        }
        if matches!(self.engine, Engine::Starting(_)) {
            next = Some(next.map_or(clock.unix + 0.1, |n| n.min(clock.unix + 0.1)));
        }
        if self.view.trace_open {
            // Messages without an event (keepalives, retransmissions) show within a second.
            next = Some(next.map_or(clock.unix + 1.0, |n| n.min(clock.unix + 1.0)));
        }
        if let Some(at) = next {
            ctx.request_repaint_after(Duration::from_secs_f64((at - clock.unix).clamp(0.0, 3600.0) + 0.01));
        }
    }

    /// On close: un-register and hang up (the engine does it on Quit); wait briefly.
    pub fn shutdown(&mut self) {
        if let Engine::Running { commands, events } = &mut self.engine
            && commands.try_send(Command::Quit).is_ok()
        {
            let deadline = std::time::Instant::now() + Duration::from_millis(1500);
            while std::time::Instant::now() < deadline {
                match events.try_recv() {
                    Ok(Event::Stopped) | Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Ok(_) => {}
                    Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.engine = Engine::Off;
    }
}

impl eframe::App for OrbitApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.shutdown();
    }
}
