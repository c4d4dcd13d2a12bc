//! `levictl`: the operator's command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use levibot_tools::capture_check;

#[derive(Parser, Debug)]
#[command(name = "levictl", version, about = "LeviBot's operator tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Recorded venue captures.
    #[command(subcommand)]
    Capture(CaptureCommand),
}

#[derive(Subcommand, Debug)]
enum CaptureCommand {
    /// Decode a capture and build its books: messages per stream, decode errors, gaps and
    /// resyncs, each symbol's final best bid/ask. Exits 1 if anything was wrong.
    Check {
        /// The stream capture (`<epoch>: <json>` lines).
        file: PathBuf,
        /// The REST depth snapshots (`<url> -> <epoch>: <json>` lines).
        #[arg(long)]
        snapshots: PathBuf,
        /// The venue's exchangeInfo (default: BINANCE.0 beside the capture).
        #[arg(long)]
        exchange_info: Option<PathBuf>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Capture(CaptureCommand::Check {
            file,
            snapshots,
            exchange_info,
            json,
        }) => {
            let exchange_info = exchange_info.unwrap_or_else(|| {
                file.parent()
                    .unwrap_or_else(|| std::path::Path::new("."))
                    .join("BINANCE.0")
            });
            let report =
                capture_check::check(&file, &snapshots, &exchange_info).context("capture check")?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{report}");
            }
            let clean = report.decode_errors == 0
                && report
                    .symbols
                    .values()
                    .all(|s| s.gaps == 0 && s.resyncs == 0 && s.state == "synced");
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
