//! `levibot-bench backtest`: how many venue messages a second `levibot-backtest` runs on one
//! core, raw bytes with decoding included, over a long seeded synthetic market (venue-sim's
//! generator, made as it is read: no file), with the reference maker trading. Beside it, in the
//! same run, the baseline: the same messages generated and decoded by the live decoder and
//! nothing else (the floor a backtest of raw bytes cannot go under).
//!
//! The run's journal goes to `--journal-dir` (default: a new directory under /dev/shm, removed
//! afterwards): a backtest journals every message, as the daemon does.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use levibot_backtest::input::InputSource;
use levibot_backtest::input::synthetic::SyntheticInput;
use levibot_backtest::results::ResultsConfig;
use levibot_backtest::run::RunConfig;
use levibot_backtest::session::backtest;
use levibot_daemon::config::{ParseOptions, parse_with};
use levibot_gateway::binance::Decoder;
use levibot_gateway::capture::testdata_dir;
use serde_json::json;

use crate::report::{MachineInfo, round3};

#[derive(Args, Debug)]
pub struct BacktestArgs {
    /// Stream messages of the synthetic market (over its symbols in turn).
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Virtual time between two messages, ns.
    #[arg(long, default_value_t = 10_000)]
    interval_ns: u64,
    /// Where the run's journal goes (default: a new directory under /dev/shm, removed after).
    #[arg(long)]
    journal_dir: Option<PathBuf>,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

const SEED: u64 = 20_261_207;
const START_NS: u64 = 1_700_000_000_000_000_000;

pub fn run(args: &BacktestArgs) -> Result<()> {
    let machine = MachineInfo::detect();
    eprintln!("{}", machine.summary_line());
    let config_path = testdata_dir().join("../backtest/maker-nknusdt.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let options = ParseOptions {
        resolve_hosts: false,
        files_under: None,
    };
    let config = parse_with(&text, &config_path, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let instruments: Vec<_> = config.instruments.iter().collect();
    let with_mids: Vec<_> = instruments
        .iter()
        .map(|i| {
            let mid = levibot_sim::synth::mid_ticks(i.symbol.as_str()).unwrap_or(10_000);
            (*i, mid)
        })
        .collect();
    let input = || SyntheticInput::new(&with_mids, args.messages, SEED, START_NS, args.interval_ns);

    // Baseline: generate and decode, nothing else.
    eprintln!(
        "levibot-bench backtest: baseline, {} messages generated and decoded",
        args.messages
    );
    let mut decoder = Decoder::new(config.instruments.clone());
    let mut source = input()?;
    let started = Instant::now();
    let (mut decoded, mut errors) = (0u64, 0u64);
    while let Some(event) = source.next_event()? {
        match decoder.decode(event.bytes, 0) {
            Ok(_) => decoded += 1,
            Err(_) => errors += 1,
        }
    }
    let baseline_s = started.elapsed().as_secs_f64();

    // The backtest.
    let temp = match &args.journal_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("levibot-bench-backtest")
                .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                    "/dev/shm"
                } else {
                    "/tmp"
                })?,
        ),
    };
    let journal_dir = args.journal_dir.clone().unwrap_or_else(|| {
        temp.as_ref()
            .map(|t| t.path().join("journal"))
            .unwrap_or_default()
    });
    eprintln!(
        "levibot-bench backtest: levibot-backtest, {} messages, journal in {}",
        args.messages,
        journal_dir.display()
    );
    let mut source = input()?;
    let run_config = RunConfig::default();
    let started = Instant::now();
    let outcome = backtest(
        &config,
        &mut source,
        &journal_dir,
        &run_config,
        ResultsConfig::default(),
    )?;
    let backtest_s = started.elapsed().as_secs_f64();
    let summary = &outcome.summary;
    let per_s = |n: u64, s: f64| n as f64 / s.max(1e-9);
    let raw_rate = per_s(outcome.stats.messages, backtest_s);
    let baseline_rate = per_s(decoded + errors, baseline_s);

    println!(
        "backtest, raw venue bytes, decoding included, one core ({}):",
        machine.summary_line()
    );
    println!(
        "  {:<44} {:>12} msgs {:>9.2} s {:>12.0} msgs/s",
        "generate + decode only (baseline)",
        decoded + errors,
        baseline_s,
        baseline_rate
    );
    println!(
        "  {:<44} {:>12} msgs {:>9.2} s {:>12.0} msgs/s",
        "levibot-backtest (maker on NKNUSDT)", outcome.stats.messages, backtest_s, raw_rate
    );
    println!(
        "  orders {} new / {} replace / {} cancel, {} fills",
        summary.orders.new, summary.orders.replace, summary.orders.cancel, summary.fills
    );
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "backtest",
                "machine": machine.to_json(),
                "messages": args.messages,
                "interval_ns": args.interval_ns,
                "baseline_generate_decode": {
                    "messages": decoded + errors,
                    "decode_errors": errors,
                    "seconds": round3(baseline_s),
                    "messages_per_sec": baseline_rate.round(),
                },
                "backtest_raw": {
                    "messages": outcome.stats.messages,
                    "seconds": round3(backtest_s),
                    "messages_per_sec": raw_rate.round(),
                    "orders": summary.orders.new + summary.orders.replace + summary.orders.cancel,
                    "fills": summary.fills,
                },
                "backtest_over_baseline": round3(raw_rate / baseline_rate.max(1e-9)),
            })
        );
    }
    Ok(())
}
