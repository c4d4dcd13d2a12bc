//! `levictl`: the operator's command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use levictl::archive::Input;
use levictl::{capture_check, control_cli, export, research, stat, tail, venue_cli};

// pub(crate): packaging/examples/cli-docs.rs makes the man pages and completions from it.
#[derive(Parser, Debug)]
#[command(name = "levictl", version, about = "LeviBot's operator tool")]
pub(crate) struct Cli {
    /// The daemon's journal directory (also holds its counters and control socket).
    #[arg(long, global = true, env = levibot_shm::paths::DIR_ENV,
          default_value = levibot_shm::paths::DEFAULT_DIR)]
    journal: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Recorded venue captures.
    #[command(subcommand)]
    Capture(CaptureCommand),
    /// Print journal records, like journalctl: human lines or JSONL.
    Tail(tail::TailArgs),
    /// A live screen of the daemon's counters, like AeronStat or top.
    Stat(stat::StatArgs),
    /// Write journal records to a file DuckDB reads (JSONL or CSV).
    Export(export::ExportArgs),
    /// The daemon's state: sessions, trading state, positions, open orders.
    Status(control_cli::StatusArgs),
    /// Kill switch: halt trading and cancel every open order; returns once the venue confirmed
    /// or the deadline passed, and prints what is confirmed.
    #[command(after_help = control_cli::KILL_EXIT_HELP)]
    Kill(control_cli::KillArgs),
    /// Lift the kill switch: trading resumes.
    Resume(control_cli::ResumeArgs),
    /// Reload risk limits and strategy parameters from the config file (as SIGHUP does).
    Reload(control_cli::ReloadArgs),
    /// Set one risk limit, e.g. `levictl set risk.loss_max 500`.
    Set(control_cli::SetArgs),
    /// The venue's own data, fetched for the daemon's config.
    #[command(subcommand)]
    Venue(VenueCommand),
    /// Datasets for research from the journal's feature snapshots (docs/research.md).
    #[command(subcommand)]
    Research(ResearchCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
enum VenueCommand {
    /// Fetch the exchangeInfo of some symbols over the venue's REST API, check it as the
    /// daemon will, and write it atomically (for venue.exchange_info).
    ExchangeInfo(venue_cli::ExchangeInfoArgs),
}

#[derive(Subcommand, Debug)]
enum ResearchCommand {
    /// Feature snapshots joined with forward mid returns at stated horizons, as one Parquet
    /// file (columns in docs/research.md).
    Dataset(research::dataset::DatasetArgs),
}

#[derive(Subcommand, Debug)]
enum CaptureCommand {
    /// Decode a capture and build its books: messages per stream, decode errors, gaps and
    /// resyncs, each symbol's final best bid/ask. Exits 1 if anything was wrong.
    Check(capture_check::CheckArgs),
}

fn main() -> Result<ExitCode> {
    let matches = Cli::command().get_matches();
    // Given on the command line (not its default or LEVIBOT_JOURNAL): then it names the
    // input, and --archive another.
    let journal_given = matches.value_source("journal") == Some(ValueSource::CommandLine);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let journal = cli.journal;
    match cli.command {
        Command::Capture(CaptureCommand::Check(args)) => {
            let input = Input::choose(&journal, journal_given, &args.archive)?;
            print_capture_report(&capture_check::run(&args, input)?, args.json)
        }
        Command::Tail(args) => tail::run(
            &args,
            Input::choose(&journal, journal_given, &args.archive)?,
        ),
        Command::Stat(args) => stat::run(&args, &journal),
        Command::Export(args) => export::run(
            &args,
            Input::choose(&journal, journal_given, &args.archive)?,
        ),
        Command::Status(args) => control_cli::status(&args, &journal),
        Command::Kill(args) => control_cli::kill(&args, &journal),
        Command::Resume(args) => control_cli::resume(&args, &journal),
        Command::Reload(args) => control_cli::reload(&args, &journal),
        Command::Set(args) => control_cli::set(&args, &journal),
        Command::Research(ResearchCommand::Dataset(args)) => {
            research::dataset::run(&args, &journal).map(|()| ExitCode::SUCCESS)
        }
        Command::Venue(VenueCommand::ExchangeInfo(args)) => {
            venue_cli::exchange_info(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "levictl",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_capture_report(report: &capture_check::CaptureReport, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
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
