//! `levibotd`: the daemon.
//!
//! ```text
//! levibotd run --config /etc/levibot/levibot.toml   # the service (systemd: Type=notify)
//! levibotd run --config FILE --check                # validate the config, start nothing
//! ```
//!
//! Exit codes: 0 a clean stop (SIGTERM/SIGINT: every open order cancelled or the deadline
//! passed, the journal closed); 1 the daemon failed (systemd restarts it); 2 the config is
//! invalid (every problem printed, nothing started); 75 the journal's filesystem is full
//! (trading halted, every open order cancelled, then stopped; systemd does not restart it:
//! free room first).
//!
//! The demo is `levibot-demo` (crate `demo/`): this binary links no simulated venue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use levibot_daemon::config;
use levibot_daemon::logging;
use levibot_daemon::run::{RunOptions, run};

// pub(crate): packaging/examples/cli-docs.rs makes the man pages and completions from it.
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
}

fn main() -> ExitCode {
    levibot_daemon::abort_on_panic();
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
            logging::init(&config.daemon.log_level, config.daemon.log_format);
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
    }
}
