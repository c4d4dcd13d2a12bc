//! `levibotd`: the daemon.
//!
//! ```text
//! levibotd run --config /etc/levibot/levibot.toml   # the service (systemd: Type=notify)
//! levibotd run --config FILE --check                # validate the config, start nothing
//! levibotd demo                                      # trade against an embedded venue-sim
//! ```
//!
//! Exit codes: 0 a clean stop (SIGTERM/SIGINT: every open order cancelled or the deadline
//! passed, the journal closed); 1 the daemon failed (systemd restarts it); 2 the config is
//! invalid (every problem printed, nothing started); 75 the journal's filesystem is full
//! (trading halted, every open order cancelled, then stopped; systemd does not restart it:
//! free room first).
//!
//! The binary lives in `tools/` rather than `engine/` (where the daemon's library is) because
//! the demo starts the simulated venue in-process, and the venue is a tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use levibot_engine::daemon::config::{self, LogFormat};
use levibot_engine::daemon::run::{DaemonError, RunOptions, run};
use levibot_tools::demo::{DemoArgs, run_demo};
use tracing_subscriber::EnvFilter;

// pub(crate): tools/examples/cli-docs.rs makes the man pages and completions from it.
#[derive(Parser, Debug)]
#[command(name = "levibotd", version, about = "LeviBot's execution daemon")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon on a config file (see systemd/levibot.toml).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Only validate the config: print every problem, exit 2 if there is one.
        #[arg(long)]
        check: bool,
    },
    /// Trade against an embedded simulated venue, with a live summary.
    Demo(DemoArgs),
}

/// Logs go to stderr (journald keeps them under systemd); `RUST_LOG` overrides the config.
fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn main() -> ExitCode {
    // A panic on any thread ends the process, in every build: the release profile aborts on
    // panic, and a debug build (the tests') must not quietly lose a thread (a feed connector, a
    // control connection) and go on. Abort is a signal the tests, systemd and operators see.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    match Cli::parse().command {
        Command::Run { config, check } => {
            let config = match config::load(&config) {
                Ok(config) => config,
                Err(errors) => {
                    eprintln!(
                        "levibotd: {} problem(s) in the config; nothing started:",
                        errors.problems.len()
                    );
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            if check {
                println!("{}: valid", config.path.display());
                return ExitCode::SUCCESS;
            }
            init_logging(&config.daemon.log_level, config.daemon.log_format);
            let options = RunOptions {
                handle_signals: true,
                ..RunOptions::default()
            };
            match run(config, options) {
                Ok(report) => {
                    tracing::info!(
                        open_orders_left = report.open_orders_left,
                        "levibotd stopped cleanly"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("levibotd: {e}");
                    eprintln!("levibotd: {e}");
                    ExitCode::from(e.exit_status() as u8)
                }
            }
        }
        Command::Demo(args) => {
            init_logging("warn", LogFormat::Text);
            match run_demo(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("levibotd demo: {e:#}");
                    // A full journal stops the demo as it stops the service (status 75).
                    let status = e
                        .downcast_ref::<DaemonError>()
                        .map_or(1, |d| d.exit_status());
                    ExitCode::from(status as u8)
                }
            }
        }
    }
}
