//! `orbitphone`: the desktop phone, its headless CLI, and the park service.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "orbitphone", version, about = "Orbit: a softphone with call park done right")]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The phone without a window: commands on stdin, JSON events on stdout.
    Cli(orbitphone::cli::CliArgs),
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
    files
        .iter()
        .map(|f| orbitphone::park::config::ParkConfig::load(f).map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
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
            println!("ok: {} file(s), {} orbit range(s), no overlaps", configs.len(), configs.iter().map(|c| c.orbits.len()).sum::<usize>());
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

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The service's log is its admin's view of parks; the phone stays quiet by default.
    let default_log = if matches!(args.command, Some(Cmd::ParkService(_)) | Some(Cmd::Serve { .. })) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ORBIT_LOG").unwrap_or_else(|_| default_log.into()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orbitphone: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Some(Cmd::Cli(cli)) => rt.block_on(orbitphone::cli::run(cli)),
        Some(Cmd::ParkService(args)) => park_service(&rt, args),
        Some(Cmd::Serve { config, listen }) => match config.map(|c| orbitphone::park::config::ParkConfig::load(&c)).transpose() {
            Ok(cfg) => rt.block_on(orbitphone::net::serve::run_forever(listen, cfg)),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        },
        None => Err(anyhow::anyhow!("the desktop window is not built yet (issue 5); use `orbitphone cli --help`")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orbitphone: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
