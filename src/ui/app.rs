//! The eframe app: each frame drains engine events into the [`Model`], draws it, and
//! turns clicks into [`Command`]s sent with `try_send`. It never waits on the engine: a
//! small task forwards events and wakes the window, and countdowns ask for a repaint
//! only when their text changes, so an idle window uses no CPU.

use super::account_form::AccountForm;
use super::clipboard::Clipboard;
use super::model::{Clock, Model, Registration};
use super::settings::{self, AccountSettings, Settings, ThemeChoice};
use super::{conversation, incoming, main_window};
use crate::net::phone_driver::{self, PhoneConfig, PhoneHandle};
use crate::phone::api::{CallNo, Command, Event};
use crate::sip::transport::Transport;
use eframe::egui;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
    /// Local mode: the demo line calls you.
    HaveBobCallMe,
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
    /// The local mode's demo caller.
    demo_caller: Option<DemoCaller>,
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
            demo_caller: None,
        };
        match opts.start {
            Start::Form => app.form = Some(AccountForm::new(app.settings.account().cloned().unwrap_or_default(), true)),
            Start::Saved { password } => match (app.settings.account().cloned(), password) {
                (Some(acc), Some(pw)) => app.sign_in(acc, pw),
                (Some(acc), None) => app.form = Some(AccountForm::new(acc, false)),
                (None, _) => app.form = Some(AccountForm::new(AccountSettings::default(), true)),
            },
            Start::Account(cfg) => {
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

    /// Use this colour scheme for this run (not saved).
    pub fn set_theme(&mut self, theme: ThemeChoice) {
        self.settings.theme = theme;
    }

    /// Local mode: show "Have Bob call me", which makes this demo line call you.
    pub fn set_demo_caller(&mut self, caller: DemoCaller) {
        self.view.demo_caller = true;
        self.demo_caller = Some(caller);
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

    fn sign_in(&mut self, account: AccountSettings, password: String) {
        // Another account: the local demo line would call `me`, not this phone.
        self.view.demo_caller = false;
        self.settings.use_account(account.clone());
        if let Some(dir) = &self.config_dir
            && let Err(e) = self.settings.save(dir)
        {
            self.model.notice(format!("Settings not saved: {e}"));
        }
        self.stop_engine();
        self.model.account = account.aor().unwrap_or_default();
        let listen = self.listen;
        let register = account.register;
        self.start_engine(async move {
            let acc = account.to_account(Some(password)).await?;
            phone_driver::start(PhoneConfig { account: acc, listen, ca_file: None, audio: Default::default() }).await
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

    /// Take what the engine said since the last frame.
    fn poll(&mut self, ctx: &egui::Context, clock: &Clock) {
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
        if let Engine::Running { events, .. } = &mut self.engine {
            let mut n = 0;
            while let Ok(ev) = events.try_recv() {
                let direct = matches!(self.model.registration, Registration::Direct);
                self.model.apply(ev, clock);
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
    }

    /// A task that moves events from the engine to the window and wakes it: the window
    /// sleeps until something happens.
    fn forward(&mut self, handle: PhoneHandle, ctx: egui::Context) -> Engine {
        let PhoneHandle { commands, mut events, local } = handle;
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
                    self.form = Some(AccountForm::new(acc, false));
                }
                Action::CancelAccount => self.form = None,
                Action::SignIn { account, password } => self.sign_in(account, password),
                Action::DismissNotice(i) => {
                    if i < self.model.notices.len() {
                        self.model.notices.remove(i);
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
        let clock = Clock::now();
        self.apply_style(&ctx);
        self.poll(&ctx, &clock);
        self.model.tick(&clock);
        self.view.hidden.retain(|c| self.model.calls.contains_key(c));
        if self.view.copied.is_some_and(|(_, at)| clock.unix - at > 3.0) {
            self.view.copied = None;
        }
        let mut actions = self.shortcuts(&ctx);
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
        }
        self.run(actions, &clock);
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
