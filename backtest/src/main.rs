//! `levibot-backtest`: the live engine's stages on a virtual clock against a simulated venue
//! (see the library's documentation and docs/backtest.md).
//!
//! ```text
//! levibot-backtest run --config levibot.toml --capture DIR --out DIR [--json]
//! ```
//!
//! Exit status: 0 done, 1 a run that failed (the message says why), 2 bad arguments.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use levibot_backtest::exchange::{ExchangeConfig, QueueModel, SelfTradePrevention};
use levibot_backtest::input::InputSource;
use levibot_backtest::input::capture::CaptureSource;
use levibot_backtest::input::tardis::TardisSource;
use levibot_backtest::report::write_report;
use levibot_backtest::results::ResultsConfig;
use levibot_backtest::run::{FeedLatency, RunConfig};
use levibot_backtest::session::backtest;
use levibot_backtest::venue::OrderLatency;
use levibot_daemon::config::{ParseOptions, parse_with};

#[derive(Parser)]
#[command(
    name = "levibot-backtest",
    version,
    about = "Backtests levibotd's strategies on recorded market data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the config's strategies, limits and parameters over recorded market data.
    Run(RunArgs),
    /// Writes one symbol of the input as another engine's data (hftbacktest's event array).
    Export(levibot_backtest::export::ExportArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The levibotd config file (strategies, parameters, risk limits, instruments).
    #[arg(long)]
    config: PathBuf,
    /// A capture directory in the corpus's format (stream and REST files).
    #[arg(long, conflicts_with_all = ["tardis_book", "tardis_trades"])]
    capture: Option<PathBuf>,
    /// Tardis `incremental_book_L2` CSV (plain or gzip).
    #[arg(long)]
    tardis_book: Option<PathBuf>,
    /// Tardis `trades` CSV (plain or gzip).
    #[arg(long)]
    tardis_trades: Option<PathBuf>,
    /// Where the run's journal (and its report) go; must not hold a journal.
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Write the HTML report (report.html) into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Order-entry latency, one way, µs.
    #[arg(long, default_value_t = 100)]
    order_latency_us: u64,
    /// Report latency, venue to us, µs (default: the order-entry latency).
    #[arg(long)]
    response_latency_us: Option<u64>,
    /// When the venue made each market message: `recorded` (the data's own venue times:
    /// Tardis' `timestamp`, a message's `E`/`T`), or a receive-time lag in µs.
    #[arg(long, default_value = "recorded")]
    feed_latency: String,
    /// With `--feed-latency recorded`: the longest gap believed, ms (longer ones are cut to it
    /// and counted).
    #[arg(long, default_value_t = 1000)]
    feed_gap_max_ms: u64,
    /// Queue-position model: risk_averse, log, log2, power:N, power2:N, power3:N.
    #[arg(long, default_value = "risk_averse")]
    queue: QueueModel,
    /// Maker fee, basis points of the notional (negative: a rebate).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    maker_fee_bps: f64,
    /// Taker fee, basis points of the notional.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    taker_fee_bps: f64,
    /// Self-trade prevention: expire_taker, expire_maker, expire_both.
    #[arg(long, default_value = "expire_taker")]
    self_trade: SelfTradePrevention,
    /// Seed of the run (its journal's epoch, and any sampled model).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Export(args) => levibot_backtest::export::export_command(args),
    };
    if let Err(e) = result {
        eprintln!("levibot-backtest: {e:#}");
        std::process::exit(1);
    }
}

fn bps_to_ppm(bps: f64, what: &str) -> Result<i64> {
    let ppm = bps * 100.0;
    anyhow::ensure!(
        ppm.is_finite() && ppm.abs() <= 1e6 && ppm.fract() == 0.0,
        "--{what} {bps}: basis points with at most two decimals, within ±10,000"
    );
    Ok(ppm as i64)
}

fn run_command(args: RunArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let options = ParseOptions {
        resolve_hosts: false,
        files_under: None,
    };
    let config = parse_with(&text, &args.config, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let symbols: Vec<String> = config
        .instruments
        .iter()
        .map(|i| i.symbol.to_string())
        .collect();
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let mut input: Box<dyn InputSource> =
        match (&args.capture, &args.tardis_book, &args.tardis_trades) {
            (Some(dir), _, _) => Box::new(CaptureSource::open(dir)?),
            (None, None, None) => anyhow::bail!(
                "no input: give --capture DIR, or --tardis-book and/or --tardis-trades FILE"
            ),
            (None, book, trades) => Box::new(TardisSource::open(
                book.as_deref(),
                trades.as_deref(),
                &symbols,
            )?),
        };
    let run_config = RunConfig {
        exchange: ExchangeConfig {
            queue: args.queue,
            maker_fee_ppm: bps_to_ppm(args.maker_fee_bps, "maker-fee-bps")?,
            taker_fee_ppm: bps_to_ppm(args.taker_fee_bps, "taker-fee-bps")?,
            self_trade: args.self_trade,
        },
        order_latency: OrderLatency {
            entry_ns: args.order_latency_us * 1000,
            response_ns: args.response_latency_us.unwrap_or(args.order_latency_us) * 1000,
        },
        feed_latency: match args.feed_latency.as_str() {
            "recorded" => FeedLatency::Recorded {
                gap_max_ns: args.feed_gap_max_ms.saturating_mul(1_000_000),
            },
            us => FeedLatency::Constant(
                us.parse::<u64>()
                    .map_err(|_| {
                        anyhow::anyhow!("--feed-latency {us}: `recorded` or a whole number of µs")
                    })?
                    .saturating_mul(1000),
            ),
        },
        seed: args.seed,
        ..RunConfig::default()
    };
    let journal_dir = args.out.join("journal");
    let outcome = backtest(
        &config,
        input.as_mut(),
        &journal_dir,
        &run_config,
        ResultsConfig::default(),
    )?;
    if let Some(dir) = &args.report {
        let path = write_report(dir, &outcome.report)
            .with_context(|| format!("writing the report into {}", dir.display()))?;
        eprintln!("levibot-backtest: report in {}", path.display());
    }
    if args.json {
        println!("{}", outcome.to_json(&run_config));
    } else {
        for (label, value) in &outcome.report.summary {
            println!("{label:>32}  {value}");
        }
        println!("{:>32}  {}", "journal", journal_dir.display());
    }
    Ok(())
}
