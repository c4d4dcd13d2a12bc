//! `levibot-bench`: LeviBot's latency and throughput benchmarks. Each subcommand measures one
//! part of the system beside a standard-library baseline, prints a table, and with `--json` also
//! a single JSON object on the last line of stdout (for scripts and CI history). Progress goes to
//! stderr so that stdout stays parseable.

mod backtest;
mod decode;
mod exporter;
mod instructions;
mod journal;
mod model;
mod per_call;
mod report;
mod scratch;
mod soak;
mod tick_to_trade;
mod wire;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "levibot-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Shared-memory journal: append latency (1 and 2 writers) and tailer throughput, each
    /// beside a std baseline (Mutex<Vec>, mpsc).
    Journal(journal::JournalArgs),
    /// Binance market-data decoding: per-message latency by message type on the corpus
    /// recordings, ours (scanner and simd-json paths) beside serde_json and sonic-rs baselines
    /// that produce the same records.
    Decode(decode::DecodeArgs),
    /// The whole hot path, venue bytes to FIX order bytes: decode, strategy, risk, encode and
    /// tick-to-trade percentiles from the journal, over the corpus and a paced synthetic
    /// stream, with rtrb rings beside a std::sync::mpsc baseline, fused or spread.
    TickToTrade(tick_to_trade::TickToTradeArgs),
    /// Wire to wire over loopback, as the venue sees it: a market-data frame written -> the
    /// order it caused read on the FIX session; the whole pipeline beside an echo baseline.
    Wire(wire::WireArgs),
    /// The metrics sidecar's cost to the hot path: the fused pipeline alone, then with a real
    /// levibot-exporter following its journal while a client scrapes it (100/s by default).
    Exporter(exporter::ExporterArgs),
    /// A soak with faults: the real levibotd against venue-sim with every fault switch
    /// cycling, while levictl kills, resumes, sets and reloads; each check interval, quiet,
    /// it checks memory, fds, positions against the venue's, no unknown order, and the
    /// exporter's counts against the journal's. Exits non-zero naming a failed check.
    Soak(soak::SoakArgs),
    /// levibot-backtest's throughput on one core: messages a second over a long synthetic
    /// market, raw bytes with decoding included, beside generating and decoding them alone.
    Backtest(backtest::BacktestArgs),
    /// A gradient-boosted tree model on the hot path: ns per event of TreeModel::predict (a
    /// generated model, 100 trees of depth 6 on six features by default, or an XGBoost model
    /// file), beside the signal strategy's linear vote of four weights.
    Model(model::ModelArgs),
    /// Instructions a message of the fused pipeline over a fixed synthetic stream, counted by
    /// valgrind's callgrind (steady on a noisy machine, unlike times), beside decoding alone
    /// and beside the same pipeline on std::sync::mpsc channels.
    Instructions(instructions::InstructionsArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Journal(args) => journal::run(&args),
        Command::Decode(args) => decode::run(&args),
        Command::TickToTrade(args) => tick_to_trade::run(&args),
        Command::Wire(args) => wire::run(&args),
        Command::Exporter(args) => exporter::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Model(args) => model::run(&args),
        Command::Instructions(args) => instructions::run(&args),
    }
}
