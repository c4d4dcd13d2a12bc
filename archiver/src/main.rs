//! `levibot-archiver`: the archive sidecar. See `levibot_archiver`.

use std::process::ExitCode;

use clap::Parser;
use levibot_archiver::{Args, run};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("levibot-archiver: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
