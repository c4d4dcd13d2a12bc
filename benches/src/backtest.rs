//! `levibot-bench backtest`: how many venue messages a second `levibot-backtest` runs on one
//! core, over a long seeded synthetic market (venue-sim's generator), with the reference maker
//! trading on NKNUSDT. Each figure stands beside its baseline, in the same run:
//!
//! 1. The session: the market is generated and backtested once (as `levibot-backtest` would a
//!    capture); its journal, like a live day's, holds the venue's bytes with their receive
//!    stamps and the records the feed decoded. Reported, not the headline (the generator
//!    formats every message).
//! 2. Raw bytes: `levibot-backtest run --journal` over that journal, decoding included, beside
//!    the floor of reading the same journal and decoding each message and nothing else.
//! 3. Decoded records: `run --journal --decoded` over it, beside the floor of reading the
//!    records and nothing else.
//!
//!    Both 2 and 3 also run with `--no-market-journal` (what the journal of the market costs).
//! 4. hftbacktest (PyPI, via `scripts/hftbacktest-maker.py --timing`, the same maker) over the
//!    same market exported with `levibot-backtest export --format hftbacktest`, its loop timed
//!    after numba has compiled it; skipped, saying why, where Python or hftbacktest is
//!    missing (`scripts/install-test-deps` installs them).
//!
//! Work files go under `--work-dir` (default: a new directory under /dev/shm, removed after):
//! about 0.7 GB per million messages for the session journal, as much again for one run's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use levibot_backtest::export::npz::EventWriter;
use levibot_backtest::export::{export_hftbacktest, exported_instrument};
use levibot_backtest::input::InputSource;
use levibot_backtest::input::decoded::market_records;
use levibot_backtest::input::journal::JournalSource;
use levibot_backtest::input::synthetic::SyntheticInput;
use levibot_backtest::input::{InputKind, InputSpec};
use levibot_backtest::results::ResultsConfig;
use levibot_backtest::run::{FEED_GAP_MAX_NS, RunConfig};
use levibot_backtest::session::{Outcome, backtest, parse_config};
use levibot_daemon::config::DaemonConfig;
use levibot_gateway::binance::Decoder;
use levibot_gateway::capture::testdata_dir;
use serde_json::{Value, json};

use crate::report::{MachineInfo, round3};

#[derive(Args, Debug)]
pub struct BacktestArgs {
    /// Stream messages of the synthetic market.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Virtual time between two messages, ns.
    #[arg(long, default_value_t = 10_000)]
    interval_ns: u64,
    /// Where the session's journal and the runs' journals go (default: a new directory under
    /// /dev/shm, removed after).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Leave hftbacktest out.
    #[arg(long)]
    no_hftbacktest: bool,
    /// The Python that has hftbacktest.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

const SEED: u64 = 20_261_207;
const START_NS: u64 = 1_700_000_000_000_000_000;
/// The maker's order latency both engines simulate (each way), ns.
const LATENCY_NS: u64 = 100_000;

/// One timed pass.
struct Pass {
    messages: u64,
    seconds: f64,
}

impl Pass {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }

    fn to_json(&self) -> Value {
        json!({
            "messages": self.messages,
            "seconds": round3(self.seconds),
            "messages_per_sec": self.rate().round(),
        })
    }
}

/// The committed maker config, with its fill-rate throttle and loss limit opened wide: at 100
/// fills a second the throttle halts the maker within the first second of this busy market,
/// and the loss limit (the maker loses on this random walk) turns it reduce-only within
/// minutes; the bench is about a maker that trades all along (as hftbacktest's, which has no
/// risk stage, does). Written
/// next to the work files, for hftbacktest's script to read the same parameters.
fn config(work: &Path) -> Result<(DaemonConfig, PathBuf)> {
    let committed = testdata_dir().join("../backtest/maker-nknusdt.toml");
    let text = std::fs::read_to_string(&committed)
        .with_context(|| format!("reading {}", committed.display()))?;
    let throttle = "fill_rate = { count_max = 100, window_ms = 1000 }";
    if !text.contains(throttle) {
        bail!("{}: no `{throttle}` to open", committed.display());
    }
    let loss = "loss_max = \"1000\"";
    if !text.contains(loss) {
        bail!("{}: no `{loss}` to open", committed.display());
    }
    let text = text
        .replace(throttle, "fill_rate = { count_max = 1000, window_ms = 1 }")
        .replace(loss, "loss_max = \"100000000\"")
        .replace(
            "exchange_info = \"../binance-spot-synthetic/BINANCE.0\"",
            &format!(
                "exchange_info = \"{}\"",
                testdata_dir().join("BINANCE.0").display()
            ),
        );
    let path = work.join("maker-nknusdt-bench.toml");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok((parse_config(&text, &path)?, path))
}

fn run_config(journal_market: bool) -> RunConfig {
    let mut run = RunConfig {
        journal_market,
        ..RunConfig::default()
    };
    run.order_latency.entry_ns = LATENCY_NS;
    run.order_latency.response_ns = LATENCY_NS;
    run
}

/// One backtest, timed (`journal_market`: the run journals the market, as by default).
fn timed_backtest(
    config: &DaemonConfig,
    input: &mut dyn InputSource,
    journal: &Path,
    journal_market: bool,
) -> Result<(Pass, Outcome)> {
    let started = Instant::now();
    let outcome = backtest(
        config,
        input,
        journal,
        &run_config(journal_market),
        ResultsConfig::default(),
    )?;
    let pass = Pass {
        messages: outcome.stats.messages,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((pass, outcome))
}

pub fn run(args: &BacktestArgs) -> Result<()> {
    let machine = MachineInfo::detect();
    eprintln!("{}", machine.summary_line());
    let temp = match &args.work_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("levibot-bench-backtest")
                .tempdir_in(if Path::new("/dev/shm").is_dir() {
                    "/dev/shm"
                } else {
                    "/tmp"
                })?,
        ),
    };
    let work = match (&args.work_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => unreachable!("a temporary directory when none is given"),
    };
    let session = work.join("session");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let (config, config_path) = config(&work)?;
    let with_mids: Vec<_> = config
        .instruments
        .iter()
        .map(|i| {
            let mid = levibot_sim::synth::mid_ticks(i.symbol.as_str()).unwrap_or(10_000);
            (i, mid)
        })
        .collect();

    eprintln!(
        "levibot-bench backtest: the session, {} messages generated and backtested, journal in {}",
        args.messages,
        session.display()
    );
    let mut generated =
        SyntheticInput::new(&with_mids, args.messages, SEED, START_NS, args.interval_ns)?;
    let (generate_pass, _) = timed_backtest(&config, &mut generated, &session, true)?;

    // hftbacktest's input first, while only the session's journal is on the work disk.
    let hft_data = work.join("hftbacktest.npz");
    let hft_export = if args.no_hftbacktest {
        None
    } else {
        eprintln!("levibot-bench backtest: exporting the session for hftbacktest");
        let instrument = config.instruments.get(0).context("no instrument")?;
        let mut input = JournalSource::open(&session)?;
        let mut writer = EventWriter::create(&hft_data)?;
        let stats = export_hftbacktest(
            &config.instruments,
            instrument.id,
            &mut input,
            &mut writer,
            FEED_GAP_MAX_NS,
        )?;
        writer.finish()?;
        Some((exported_instrument(instrument), stats))
    };

    eprintln!("levibot-bench backtest: baseline, the journal's messages read and decoded");
    let raw_floor = {
        let mut decoder = Decoder::new(config.instruments.clone());
        let mut input = JournalSource::open(&session)?;
        let started = Instant::now();
        let (mut messages, mut decoded) = (0u64, 0u64);
        while let Some(event) = input.next_event()? {
            if event.kind == InputKind::Stream {
                messages += 1;
                decoded += u64::from(decoder.decode(event.bytes, 0).is_ok());
            }
        }
        if decoded == 0 {
            bail!("no message of the session decoded");
        }
        Pass {
            messages,
            seconds: started.elapsed().as_secs_f64(),
        }
    };
    // One pass over the session: its input's raw bytes or decoded records, the run journaling
    // the market or not; the run's journal is removed after.
    let pass = |decoded: bool, journal_market: bool| -> Result<(Pass, Outcome)> {
        eprintln!(
            "levibot-bench backtest: levibot-backtest --journal{}{}",
            if decoded { " --decoded" } else { "" },
            if journal_market {
                ""
            } else {
                " --no-market-journal"
            }
        );
        let mut input = InputSpec {
            journal: Some(session.clone()),
            decoded,
            ..InputSpec::default()
        }
        .open_for(&config.instruments)?;
        let journal = work.join("run");
        let timed = timed_backtest(&config, input.as_mut(), &journal, journal_market);
        std::fs::remove_dir_all(&journal).ok();
        timed
    };
    let (raw_pass, raw_outcome) = pass(false, true)?;
    let (raw_lean_pass, _) = pass(false, false)?;

    eprintln!("levibot-bench backtest: baseline, the journal's decoded records read");
    let records_floor = {
        let mut input = InputSpec {
            journal: Some(session.clone()),
            decoded: true,
            ..InputSpec::default()
        }
        .open_for(&config.instruments)?;
        let started = Instant::now();
        let (mut messages, mut records) = (0u64, 0u64);
        while let Some(event) = input.next_event()? {
            if let InputKind::Decoded(kind) = event.kind {
                messages += 1;
                records += market_records(kind, event.bytes).count() as u64;
            }
        }
        if records < messages {
            bail!("{messages} decoded messages but {records} records");
        }
        Pass {
            messages,
            seconds: started.elapsed().as_secs_f64(),
        }
    };
    let (decoded_pass, decoded_outcome) = pass(true, true)?;
    let (decoded_lean_pass, _) = pass(true, false)?;

    let hft = match &hft_export {
        None => Err("left out (--no-hftbacktest)".to_owned()),
        Some((instrument, _)) => {
            eprintln!("levibot-bench backtest: hftbacktest (numba compiles first, not timed)");
            run_hftbacktest(&args.python, &hft_data, &config_path, instrument)
        }
    };
    std::fs::remove_file(&hft_data).ok();

    let line = |name: &str, pass: &Pass| {
        println!(
            "  {:<52} {:>11} msgs {:>8.2} s {:>11.0} msgs/s",
            name,
            pass.messages,
            pass.seconds,
            pass.rate()
        );
    };
    println!(
        "backtest, one core, maker on NKNUSDT, {} µs order latency each way ({}):",
        LATENCY_NS / 1000,
        machine.summary_line()
    );
    line(
        "session: generated (formatted) and backtested",
        &generate_pass,
    );
    line(
        "raw bytes: journal read + decode only (baseline)",
        &raw_floor,
    );
    line("raw bytes: levibot-backtest --journal", &raw_pass);
    line("  the same, --no-market-journal", &raw_lean_pass);
    line(
        "decoded: journal records read only (baseline)",
        &records_floor,
    );
    line(
        "decoded: levibot-backtest --journal --decoded",
        &decoded_pass,
    );
    line("  the same, --no-market-journal", &decoded_lean_pass);
    let fills = |o: &Outcome| o.summary.fills;
    let hft_fills = match &hft {
        Ok(report) => format!(" / hftbacktest {}", report["fills"]),
        Err(_) => String::new(),
    };
    println!(
        "  fills: raw {} / decoded {}{hft_fills}; orders {} new, {} replace, {} cancel",
        fills(&raw_outcome),
        fills(&decoded_outcome),
        raw_outcome.summary.orders.new,
        raw_outcome.summary.orders.replace,
        raw_outcome.summary.orders.cancel
    );
    let hft_json = match &hft {
        Ok(report) => {
            let events = report["events"].as_u64().unwrap_or(0);
            let rate = report["events_per_sec"].as_f64().unwrap_or(0.0);
            println!(
                "  {:<52} {:>11} evts {:>8.2} s {:>11.0} evts/s",
                format!(
                    "hftbacktest {} (same market, same maker)",
                    report["hftbacktest_version"].as_str().unwrap_or("?")
                ),
                events,
                report["seconds"].as_f64().unwrap_or(0.0),
                rate
            );
            // The same market, counted each engine's way: per message and per event.
            let events_per_message = events as f64 / decoded_pass.messages.max(1) as f64;
            let decoded_events_rate = decoded_pass.rate() * events_per_message;
            println!(
                "  levibot-backtest --decoded over hftbacktest, same market and wall time: {:.2}x \
                 ({:.2}x with --no-market-journal; {:.2} hftbacktest events per message)",
                decoded_events_rate / rate.max(1e-9),
                decoded_lean_pass.rate() * events_per_message / rate.max(1e-9),
                events_per_message
            );
            json!({
                "report": report,
                "events_per_message": round3(events_per_message),
                "decoded_over_hftbacktest": round3(decoded_events_rate / rate.max(1e-9)),
                "decoded_no_market_journal_over_hftbacktest":
                    round3(decoded_lean_pass.rate() * events_per_message / rate.max(1e-9)),
                "raw_over_hftbacktest": round3(raw_pass.rate() * events_per_message / rate.max(1e-9)),
            })
        }
        Err(why) => {
            println!("  hftbacktest: not run: {why}");
            json!({ "skipped": why })
        }
    };
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "backtest",
                "machine": machine.to_json(),
                "messages": args.messages,
                "interval_ns": args.interval_ns,
                "order_latency_ns": LATENCY_NS,
                "session_generated": generate_pass.to_json(),
                "baseline_journal_read_decode": raw_floor.to_json(),
                "backtest_raw": {
                    "pass": raw_pass.to_json(),
                    "no_market_journal": raw_lean_pass.to_json(),
                    "fills": fills(&raw_outcome),
                    "over_baseline": round3(raw_pass.rate() / raw_floor.rate().max(1e-9)),
                },
                "baseline_journal_records_read": records_floor.to_json(),
                "backtest_decoded": {
                    "pass": decoded_pass.to_json(),
                    "no_market_journal": decoded_lean_pass.to_json(),
                    "fills": fills(&decoded_outcome),
                    "over_baseline": round3(decoded_pass.rate() / records_floor.rate().max(1e-9)),
                },
                "hftbacktest": hft_json,
            })
        );
    }
    Ok(())
}

/// Runs `scripts/hftbacktest-maker.py --timing` over `data`: its JSON report, or why not.
fn run_hftbacktest(
    python: &str,
    data: &Path,
    config: &Path,
    instrument: &levibot_backtest::export::ExportedInstrument,
) -> std::result::Result<Value, String> {
    let script = testdata_dir().join("../../scripts/hftbacktest-maker.py");
    let latency = LATENCY_NS.to_string();
    let output = Command::new(python)
        .arg(&script)
        .arg("--timing")
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["--symbol", &instrument.symbol])
        .args(["--tick-size", &instrument.tick_size])
        .args(["--lot-size", &instrument.lot_size])
        .args(["--tick-units", &instrument.tick_units.to_string()])
        .args(["--lot-units", &instrument.lot_units.to_string()])
        .args(["--price-unit", &instrument.price_unit])
        .args(["--qty-unit", &instrument.qty_unit])
        .args(["--entry-latency-ns", &latency])
        .args(["--response-latency-ns", &latency])
        .args(["--queue", "risk_averse", "--exchange", "no_partial_fill"])
        .output()
        .map_err(|e| {
            format!("{python}: {e} (hftbacktest runs in Python: scripts/install-test-deps)")
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").to_owned();
        return Err(format!(
            "{} failed ({}): {last} (scripts/install-test-deps installs hftbacktest)",
            script.display(),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).map_err(|e| format!("its output is not JSON ({e}): {last}"))
}
