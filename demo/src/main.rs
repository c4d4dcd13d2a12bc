//! `levibot-demo`: levibotd trading against the simulated venue, in one command (see the
//! library's doc). Exit status as `levibotd`'s: 0 a clean stop, 1 a failure, 75 a full journal.

use std::process::ExitCode;

use clap::Parser;
use levibot_daemon::config::LogFormat;
use levibot_daemon::logging;
use levibot_daemon::run::DaemonError;
use levibot_demo::{DemoArgs, run_demo};

// pub(crate): the packaging's cli-docs example makes the man page and completions from it.
#[derive(Parser, Debug)]
#[command(
    name = "levibot-demo",
    version,
    about = "Trade against an embedded simulated venue, with a live summary"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    demo: DemoArgs,
}

fn main() -> ExitCode {
    // As levibotd: a panic on any thread ends the process, in every build.
    levibot_daemon::abort_on_panic();
    let cli = Cli::parse();
    logging::init("warn", LogFormat::Text);
    match run_demo(&cli.demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("levibot-demo: {e:#}");
            // A full journal stops the demo as it stops the service (status 75).
            let status = e
                .downcast_ref::<DaemonError>()
                .map_or(1, |d| d.exit_status());
            ExitCode::from(status as u8)
        }
    }
}
