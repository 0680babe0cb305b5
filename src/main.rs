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
    ParkService,
    /// Registrar + park service for a small office or the built-in local mode.
    Serve,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ORBIT_LOG").unwrap_or_else(|_| "warn".into()))
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
        Some(Cmd::ParkService) | Some(Cmd::Serve) => Err(anyhow::anyhow!("the park service is not built yet (issue 4)")),
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
