//! `orbitphone`: the desktop phone, its headless CLI, and the park service.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orbitphone",
    version,
    about = "Orbit: a softphone with call park done right",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// With no subcommand: the desktop window.
    #[command(flatten)]
    window: WindowArgs,
}

/// Flags of the desktop window (all optional: without them it uses the saved account
/// or shows the account form).
#[derive(clap::Args, Debug)]
struct WindowArgs {
    /// Quick start with this address of record, e.g. sip:alice@example.com (not saved).
    #[arg(long)]
    account: Option<String>,
    /// Outbound proxy or registrar, e.g. sip:127.0.0.1:5060.
    #[arg(long)]
    proxy: Option<String>,
    /// Name of the environment variable holding the password (never pass it on the command line).
    #[arg(long)]
    password_env: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Signalling transport (udp, tcp, tls).
    #[arg(long, default_value = "udp")]
    transport: String,
    /// Do not REGISTER (direct IP calls).
    #[arg(long)]
    no_register: bool,
    /// Park service URI (default sip:park@DOMAIN).
    #[arg(long)]
    park_uri: Option<String>,
    /// Local SIP address to bind.
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: std::net::SocketAddr,
    /// Microphone by id or name (`orbitphone cli` → `devices` lists them); overrides the saved choice.
    #[arg(long)]
    input_device: Option<String>,
    /// Speaker by id or name; overrides the saved choice.
    #[arg(long)]
    output_device: Option<String>,
    /// Ringtone device by id or name (default: ring on the speaker).
    #[arg(long)]
    ring_device: Option<String>,
    /// Colour scheme: system, light or dark.
    #[arg(long)]
    theme: Option<String>,
    /// Start a separate window even if Orbit already runs for this profile
    /// (normally a second launch hands its URI to the running window and exits).
    #[arg(long)]
    new_instance: bool,
    /// A sip: or tel: URI (or number) to call once the phone is up.
    uri: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The phone without a window: commands on stdin, JSON events on stdout.
    Cli(Box<orbitphone::cli::CliArgs>),
    /// The park service (orbits, music on hold, retrieve, ring-back).
    ParkService(ParkArgs),
    /// Registrar + park service for a small office or the built-in local mode.
    Serve {
        /// A park service configuration (its [users] become the registrar's accounts).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Where the registrar listens.
        #[arg(long, default_value = "127.0.0.1:5060")]
        listen: std::net::SocketAddr,
    },
}

#[derive(clap::Args)]
struct ParkArgs {
    /// The service's configuration file (TOML).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    action: Option<ParkAction>,
}

#[derive(Subcommand)]
enum ParkAction {
    /// Validate one or more instances' files; overlapping orbit ranges across them are refused.
    Check { files: Vec<std::path::PathBuf> },
    /// Print the Kamailio routing block that sends each orbit range to its instance.
    KamailioRoutes { files: Vec<std::path::PathBuf> },
}

fn load_all(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<orbitphone::park::config::ParkConfig>> {
    if files.is_empty() {
        anyhow::bail!("name at least one configuration file");
    }
    files.iter().map(|f| orbitphone::park::config::ParkConfig::load(f).map_err(|e| anyhow::anyhow!("{e}"))).collect()
}

fn park_service(rt: &tokio::runtime::Runtime, args: ParkArgs) -> anyhow::Result<()> {
    use orbitphone::park::config::{check_deployment, kamailio_routes};
    match args.action {
        Some(ParkAction::Check { files }) => {
            let configs = load_all(&files)?;
            check_deployment(&configs).map_err(anyhow::Error::msg)?;
            for c in &configs {
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
            }
            println!(
                "ok: {} file(s), {} orbit range(s), no overlaps",
                configs.len(),
                configs.iter().map(|c| c.orbits.len()).sum::<usize>()
            );
            Ok(())
        }
        Some(ParkAction::KamailioRoutes { files }) => {
            let configs = load_all(&files)?;
            check_deployment(&configs).map_err(anyhow::Error::msg)?;
            print!("{}", kamailio_routes(&configs));
            Ok(())
        }
        None => {
            let Some(path) = args.config else { anyhow::bail!("--config FILE is required (see docs/park-service.md)") };
            let cfg = orbitphone::park::config::ParkConfig::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            rt.block_on(orbitphone::net::park_driver::run_forever(cfg))
        }
    }
}

/// No account anywhere: start the built-in local service (registrar, park service, the
/// demo lines) in this process and sign in as "me", so the phone works at once.
fn local_mode(
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(orbitphone::ui::Start, String, Option<orbitphone::ui::app::DemoCaller>)> {
    let local = rt.block_on(orbitphone::net::serve::start_local_mode()).map_err(anyhow::Error::msg)?;
    let handle = &local.server;
    let welcome = format!(
        "Local demo mode (no account configured): call bob — he answers and talks — press Park, then pick him up by clicking the orbit or dialling 7000; call echo to hear yourself; press \"Have Bob call me\" (or call callme) and Bob calls you. A second account to try from another phone: carol@{} password {}. Use Account to sign in to your own server.",
        handle.registrar,
        handle.accounts.get("carol").map(String::as_str).unwrap_or("?")
    );
    eprintln!("orbit: {welcome}");
    let demo = handle
        .demo_caller
        .clone()
        .map(|commands| orbitphone::ui::app::DemoCaller { commands, target: local.me.aor.clone() });
    let start = orbitphone::ui::Start::Account(Box::new(orbitphone::net::phone_driver::PhoneConfig {
        account: local.me.clone(),
        listen: "127.0.0.1:0".parse().expect("static address"),
        ca_file: None,
        audio: orbitphone::net::media_task::AudioIo::desktop(),
    }));
    // The service lives as long as the process.
    std::mem::forget(local);
    Ok((start, welcome, demo))
}

/// Open the desktop window; returns when it is closed.
fn window(rt: &tokio::runtime::Runtime, args: WindowArgs) -> anyhow::Result<()> {
    use orbitphone::net::single_instance::{self, Instance};
    use orbitphone::ui::{self, AppOptions, OrbitApp, Start};
    // A running window for this profile takes the URI (a clicked sip:/tel: link); we exit.
    let mut handover = None;
    if !args.new_instance {
        let path = single_instance::socket_path(ui::settings::config_dir().as_deref());
        match single_instance::claim(&path, args.uri.as_deref()) {
            Ok(Instance::Handed) => {
                eprintln!("orbit: handed {} to the running Orbit window", args.uri.as_deref().unwrap_or("\"show\""));
                return Ok(());
            }
            Ok(Instance::First(listener)) => handover = Some(listener.serve(rt.handle())),
            Err(e) => eprintln!("orbit: cannot check for a running window ({e}); starting anyway"),
        }
    }
    let password = match &args.password_env {
        Some(var) => Some(
            std::env::var(var).map_err(|_| anyhow::anyhow!("--password-env: environment variable {var} is not set"))?,
        ),
        None => None,
    };
    let mut welcome = None;
    let mut demo = None;
    let start = match &args.account {
        Some(aor) => {
            // The same fields as the account form; nothing is saved for a quick start.
            let form = ui::settings::AccountSettings {
                address: aor.clone(),
                display_name: args.name.clone().unwrap_or_default(),
                auth_user: String::new(),
                proxy: args.proxy.clone().unwrap_or_default(),
                transport: args.transport.clone(),
                register: !args.no_register,
                park_uri: args.park_uri.clone().unwrap_or_default(),
                ..Default::default()
            };
            let account = rt.block_on(form.to_account(password)).map_err(anyhow::Error::msg)?;
            Start::Account(Box::new(orbitphone::net::phone_driver::PhoneConfig {
                account,
                listen: args.listen,
                ca_file: None,
                audio: orbitphone::net::media_task::AudioIo {
                    input_device: args.input_device.clone(),
                    output_device: args.output_device.clone(),
                    ring_device: args.ring_device.clone(),
                    ..orbitphone::net::media_task::AudioIo::desktop()
                },
            }))
        }
        None => {
            let saved = ui::settings::config_dir()
                .and_then(|d| ui::settings::Settings::load(&d).ok())
                .is_some_and(|s| s.account().is_some());
            if saved {
                Start::Saved { password }
            } else {
                let (start, text, caller) = local_mode(rt)?;
                welcome = Some(text);
                demo = caller;
                start
            }
        }
    };
    let theme = match args.theme.as_deref() {
        None => None,
        Some("light") => Some(ui::settings::ThemeChoice::Light),
        Some("dark") => Some(ui::settings::ThemeChoice::Dark),
        Some("system") => Some(ui::settings::ThemeChoice::System),
        Some(other) => anyhow::bail!("--theme: {other:?} is not system, light or dark"),
    };
    let opts = AppOptions {
        runtime: rt.handle().clone(),
        config_dir: ui::settings::config_dir(),
        clipboard: Box::new(ui::clipboard::SystemClipboard::default()),
        start,
        dial: args.uri.clone(),
        listen: args.listen,
        welcome,
        secrets: std::sync::Arc::new(ui::secrets::KeyringStore),
        notifier: std::sync::Arc::new(ui::notify::DesktopNotifier),
    };
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Orbit")
            .with_app_id("orbitphone")
            .with_inner_size([960.0, 660.0])
            .with_min_inner_size([640.0, 480.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Orbit",
        native,
        Box::new(move |_cc| {
            let mut app = OrbitApp::new(opts);
            if let Some(rx) = handover {
                app.listen_for_handover(rx);
            }
            if let Some(t) = theme {
                app.set_theme(t);
            }
            if let Some(d) = demo {
                app.set_demo_caller(d);
            }
            if let Some(tray) = ui::tray::desktop() {
                app.set_tray(tray);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!("cannot open the window: {e} (is there a display? `orbitphone cli` works without one)")
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The service's log is its admin's view of parks; the phone stays quiet by default.
    let default_log =
        if matches!(args.command, Some(Cmd::ParkService(_)) | Some(Cmd::Serve { .. })) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORBIT_LOG").unwrap_or_else(|_| default_log.into()),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orbitphone: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(Cmd::Cli(cli)) => rt.block_on(orbitphone::cli::run(*cli)),
        Some(Cmd::ParkService(args)) => park_service(&rt, args),
        Some(Cmd::Serve { config, listen }) => {
            match config.map(|c| orbitphone::park::config::ParkConfig::load(&c)).transpose() {
                Ok(cfg) => rt.block_on(orbitphone::net::serve::run_forever(listen, cfg)),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        None => window(&rt, args.window),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orbitphone: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
