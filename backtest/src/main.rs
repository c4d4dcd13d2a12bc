//! `levibot-backtest`: the live engine's stages on a virtual clock against a simulated venue
//! (see the library's documentation and docs/backtest.md).
//!
//! ```text
//! levibot-backtest run --config levibot.toml --capture DIR --out DIR [--json] [--parquet DIR]
//! levibot-backtest run ... --set KEY=V1,V2,... [--set ...] [--jobs N] [--shard I/N]
//! levibot-backtest run ... --trade-from TIME [--until TIME]   (a held-out window)
//! levibot-backtest run --archive DIR|s3://BUCKET/PREFIX [--box NAME] [--from TIME] [--until TIME] ...
//! ```
//!
//! Exit status: 0 done, 1 a run that failed (the message says why; a sweep: one of its points
//! or more), 2 bad arguments (a sweep: a bad `--set`, `--shard`, or a point its config refuses;
//! an empty window: `--trade-from` not before `--until`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use levibot_archiver::publish::publish_dir;
use levibot_archiver::read::{self, ArchiveArgs, Fetched, Range};
use levibot_backtest::compare::versus_live;
use levibot_backtest::exchange::{QueueModel, SelfTradePrevention};
use levibot_backtest::input::journal::journal_config_text;
use levibot_backtest::latency::RoundTrips;
use levibot_backtest::parquet::{self, summary::Figures};
use levibot_backtest::report::write_report;
use levibot_backtest::results::ResultsConfig;
use levibot_backtest::session::{PARSE_OPTIONS, backtest};
use levibot_backtest::sweep::sim::{bps_to_ppm, parse_feed_latency};
use levibot_backtest::sweep::{BadSweep, Grid, InputSpec, Shard, SimSettings, Sweep, run_sweep};
use levibot_backtest::venue::ComputeTime;
use levibot_backtest::window::{EmptyWindow, Window, parse_time};
use levibot_daemon::config::{ParseOptions, parse_with};

#[derive(Parser)]
#[command(
    name = "levibot-backtest",
    version,
    about = "Backtests levibotd's strategies on recorded market data"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the config's strategies, limits and parameters over recorded market data.
    Run(Box<RunArgs>),
    /// Writes one symbol of the input as another engine's data (hftbacktest's event array).
    Export(levibot_backtest::export::ExportArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The levibotd config file (strategies, parameters, risk limits, instruments); with
    /// --journal or --archive, the config the journal recorded if left out.
    #[arg(long, required_unless_present_any = ["journal", "archive"])]
    config: Option<PathBuf>,
    /// A capture directory in the corpus's format (stream and REST files).
    #[arg(long, conflicts_with_all = ["tardis_book", "tardis_trades", "journal", "archive"])]
    capture: Option<PathBuf>,
    /// A LeviBot journal directory: the venue's bytes a live session received, replayed with
    /// its trading changes (start, resume, halt, kill), and compared with what it did live.
    #[arg(long, conflicts_with_all = ["tardis_book", "tardis_trades", "archive"])]
    journal: Option<PathBuf>,
    #[command(flatten)]
    archive: ArchiveArgs,
    /// With --archive: the writer run live at this time (RFC 3339, or a UTC day: its
    /// midnight) is replayed, from its start (a replay needs the session from its start: its
    /// config, instruments and trading state); --trade-from evaluates from a later time,
    /// --until ends the input, and no segment created after it is fetched.
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "archive")]
    from: Option<u64>,
    /// With --journal or --archive: replay the records the live feed decoded and journaled,
    /// not its raw bytes: no decoding on either side, the fastest replay (the decoder itself
    /// is then not under test).
    #[arg(long)]
    decoded: bool,
    /// Tardis `incremental_book_L2` CSV (plain or gzip).
    #[arg(long, conflicts_with = "archive")]
    tardis_book: Option<PathBuf>,
    /// Tardis `trades` CSV (plain or gzip).
    #[arg(long, conflicts_with = "archive")]
    tardis_trades: Option<PathBuf>,
    /// Where the run's journal goes; must not hold a journal. A sweep: its table
    /// (sweep.csv, sweep.jsonl) and each point's journal (points/<index>/journal).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as one JSON object (a sweep: each point's JSON line, as written).
    #[arg(long)]
    json: bool,
    /// Write the HTML report (report.html) into this directory (a sweep: each point's into
    /// points/<index>/ under it).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the run as Parquet into this directory (absent or empty; not --out): its journal
    /// exported as `levictl export --format parquet` exports it (a table per record type in
    /// type=/date=/symbol= partitions: type=execution_report holds the fills, type=order_sent,
    /// type=risk_reject, type=feature_snapshot ...) and summary.parquet, the --json summary as
    /// one row of typed columns. A sweep: sweep.parquet, one row per point, and each point's
    /// in points/<index>/. Written under DIR.partial and renamed when complete. A plain run
    /// may write to s3://BUCKET/PREFIX instead (empty, or a previous export of the same run;
    /// with --endpoint, --region, --credentials-file): written locally, then each file
    /// uploaded and read back for its SHA-256.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    parquet: Option<PathBuf>,
    /// Order-entry latency, one way, µs.
    #[arg(long, default_value_t = 100)]
    order_latency_us: u64,
    /// Sample order latency from the round trips a LeviBot journal measured (new, cancel,
    /// replace; ack vs fill), half each way; the constant latency stands in for a kind it has
    /// none of.
    #[arg(long)]
    order_latency_from: Option<PathBuf>,
    /// With --order-latency-from: the n-th request of each kind takes the journal's n-th
    /// round trip of that kind (replaying a session: the latency each order had live), drawn
    /// only past them.
    #[arg(long, requires = "order_latency_from")]
    order_latency_in_order: bool,
    /// What the engine's own work costs: `off` (requests leave at the time of the event
    /// that caused them), µs after it, or `measured` (as long as the engine took in this run,
    /// on this machine: the run is then not repeatable).
    #[arg(long, default_value = "off")]
    compute_time: ComputeTime,
    /// Leave the market data (the feed's bytes and records) out of the run's journal: it keeps
    /// what the engine did (orders, reports, risk, the run's events). The input already holds
    /// the market; a long input's copy is gigabytes, and a sweep writes one per point.
    #[arg(long)]
    no_market_journal: bool,
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
    /// Sweep: run once per value of KEY (repeatable: every combination, the last --set varying
    /// fastest). KEY is a config key as its errors name it
    /// (instruments[NKNUSDT].maker.half_spread_ticks, risk.loss_max) or sim.<flag>
    /// (sim.queue, sim.order_latency_us, sim.maker_fee_bps, ...). Writes OUT/sweep.csv,
    /// OUT/sweep.jsonl and each point's journal in OUT/points/<index>/.
    #[arg(long = "set", value_name = "KEY=V1,V2,...")]
    set: Vec<String>,
    /// Sweep: points run at once, each on its own thread (at most the machine's cores).
    #[arg(long, value_name = "N", requires = "set")]
    jobs: Option<usize>,
    /// Sweep: run only the points whose index % N == I (0-based), so that N machines given
    /// 0/N .. N-1/N cover the grid once.
    #[arg(long, value_name = "I/N", requires = "set")]
    shard: Option<Shard>,
    /// Evaluate from this time on (a held-out window): the input before it replays so that
    /// books and features warm up, but nothing trades (the engine is halted; a replayed
    /// journal's session takes the state it had then), and the summary counts from it. An RFC
    /// 3339 time (2026-11-26T01:02:03.5Z; no offset means UTC), as levictl takes.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    trade_from: Option<u64>,
    /// Stop reading the input at its first message received at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<u64>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(*args),
        Command::Export(args) => levibot_backtest::export::export_command(args),
    };
    if let Err(e) = result {
        eprintln!("levibot-backtest: {e:#}");
        let bad_arguments =
            e.downcast_ref::<BadSweep>().is_some() || e.downcast_ref::<EmptyWindow>().is_some();
        std::process::exit(if bad_arguments { 2 } else { 1 });
    }
}

/// The simulation flags as settings.
fn sim_settings(args: &RunArgs) -> Result<SimSettings> {
    let fee = |bps: f64, flag: &str| {
        bps_to_ppm(bps).map_err(|why| anyhow::anyhow!("--{flag} {bps}: {why}"))
    };
    Ok(SimSettings {
        order_latency_us: args.order_latency_us,
        response_latency_us: args.response_latency_us,
        feed_latency_us: parse_feed_latency(&args.feed_latency)
            .map_err(|why| anyhow::anyhow!("--feed-latency {}: {why}", args.feed_latency))?,
        feed_gap_max_ms: args.feed_gap_max_ms,
        queue: args.queue,
        maker_fee_ppm: fee(args.maker_fee_bps, "maker-fee-bps")?,
        taker_fee_ppm: fee(args.taker_fee_bps, "taker-fee-bps")?,
        self_trade: args.self_trade,
        seed: args.seed,
        order_latency_in_order: args.order_latency_in_order,
        compute_time: args.compute_time,
        journal_market: !args.no_market_journal,
        window: Window::new(args.trade_from, args.until)?,
        order_round_trips: match &args.order_latency_from {
            None => None,
            Some(dir) => {
                let trips = RoundTrips::from_journal(dir)
                    .with_context(|| format!("reading round trips from {}", dir.display()))?;
                anyhow::ensure!(
                    !trips.is_empty(),
                    "{} holds no order round trip to sample",
                    dir.display()
                );
                Some(std::sync::Arc::new(trips))
            }
        },
    })
}

/// The config's text and path: the file given, else what the journal recorded (relative
/// paths in it taken from the journal's directory).
fn config_text(path: Option<&Path>, journal: Option<&Path>) -> Result<(String, PathBuf)> {
    Ok(match (path, journal) {
        (Some(path), _) => (
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            path.to_owned(),
        ),
        (None, Some(dir)) => (
            journal_config_text(dir)?
                .with_context(|| format!("{} holds no config: give --config", dir.display()))?,
            dir.join("journaled-config.toml"),
        ),
        (None, None) => anyhow::bail!("--config is needed"),
    })
}

/// `--archive`: the range's journal fetched from the archive (kept until the run ends).
fn fetch_archive(args: &RunArgs) -> Result<Option<(Fetched, PathBuf)>> {
    if args.archive.archive.is_none() {
        return Ok(None);
    }
    let range = Range {
        from_ns: args.from,
        until_ns: args.until,
        // The replay reads the session straight through from its start.
        from_run_start: true,
    };
    let fetched = read::fetch(&args.archive, range).with_context(|| {
        format!(
            "reading the archive {}",
            args.archive.archive.as_deref().unwrap_or_default()
        )
    })?;
    let journal = fetched
        .single_journal()
        .map_err(anyhow::Error::msg)?
        .to_owned();
    Ok(Some((fetched, journal)))
}

fn run_command(mut args: RunArgs) -> Result<()> {
    // The archive's journal stands in for --journal (the fetched copy lives until the end).
    let _fetched = match fetch_archive(&args)? {
        Some((fetched, journal)) => {
            args.journal = Some(journal);
            Some(fetched)
        }
        None => None,
    };
    let (text, config_path) = config_text(args.config.as_deref(), args.journal.as_deref())?;
    let options = PARSE_OPTIONS;
    let input = InputSpec {
        capture: args.capture.clone(),
        tardis_book: args.tardis_book.clone(),
        tardis_trades: args.tardis_trades.clone(),
        journal: args.journal.clone(),
        decoded: args.decoded,
    };
    let sim = sim_settings(&args)?;
    let s3_parquet = args
        .parquet
        .as_deref()
        .and_then(Path::to_str)
        .filter(|p| p.starts_with("s3://"));
    if !args.set.is_empty() {
        anyhow::ensure!(
            s3_parquet.is_none(),
            "--parquet s3://...: a plain run's; a sweep writes its Parquet to a directory"
        );
        return sweep_command(args, config_path, text, options, sim, input);
    }
    let config = parse_with(&text, &config_path, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A bucket: written locally (in a temporary directory), then published, verified.
    let (store, scratch) = match s3_parquet {
        Some(url) => (
            Some(
                args.archive
                    .s3
                    .store(url)
                    .with_context(|| format!("--parquet {url}"))?,
            ),
            Some(tempfile::tempdir().context("a temporary directory for --parquet")?),
        ),
        None => (None, None),
    };
    let local_parquet = match (&scratch, &args.parquet) {
        (Some(scratch), _) => Some(scratch.path().join("parquet")),
        (None, dir) => dir.clone(),
    };
    if let (Some(dir), None) = (&local_parquet, &store) {
        parquet::check_dir(dir, &args.out)?;
    }
    let mut input = input.open_for(&config.instruments)?;
    let run_config = sim.run_config();
    let journal_dir = args.out.join("journal");
    let mut outcome = backtest(
        &config,
        input.as_mut(),
        &journal_dir,
        &run_config,
        ResultsConfig::default(),
    )?;
    if let Some(live) = &args.journal {
        let versus = versus_live(live, &journal_dir)
            .with_context(|| format!("comparing with {}", live.display()))?;
        outcome.add_versus_live(versus);
    }
    if let Some(dir) = &args.report {
        let path = write_report(dir, &outcome.report)
            .with_context(|| format!("writing the report into {}", dir.display()))?;
        eprintln!("levibot-backtest: report in {}", path.display());
    }
    if let (Some(dir), Some(named)) = (&local_parquet, &args.parquet) {
        let figures = Figures {
            summary: &outcome.summary,
            stats: &outcome.stats,
            run_config: &run_config,
            versus_live: outcome.versus_live.as_ref(),
        };
        parquet::publish_run(dir, &journal_dir, &figures)
            .with_context(|| format!("writing Parquet into {}", named.display()))?;
        if let Some(store) = &store {
            read::block_on(publish_dir(store, dir, ".parquet", ""))
                .with_context(|| format!("writing Parquet to {}", named.display()))?;
        }
        eprintln!("levibot-backtest: Parquet in {}", named.display());
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

/// `run --set ...`: the grid's points, `--jobs` at a time; `--json` prints each point's JSON
/// line as it is written.
fn sweep_command(
    args: RunArgs,
    config_path: PathBuf,
    text: String,
    options: ParseOptions,
    sim: SimSettings,
    input: InputSpec,
) -> Result<()> {
    let grid = Grid::parse(&args.set)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = match args.jobs {
        Some(0) => return Err(BadSweep("--jobs 0: at least 1".into()).into()),
        Some(n) if n > cores => {
            eprintln!("levibot-backtest: --jobs {n}: this machine has {cores} cores; {cores} jobs");
            cores
        }
        Some(n) => n,
        None => 1,
    };
    let shard = args.shard.unwrap_or(Shard::ALL);
    let points = grid.len();
    let sweep = Sweep {
        config_path,
        config_text: text,
        parse_options: options,
        sim,
        input,
        out: args.out,
        report: args.report,
        parquet: args.parquet,
        grid,
        jobs,
        shard,
    };
    let json = args.json;
    let done = run_sweep(&sweep, &mut |row| {
        let point = format!("point {} ({})", row.index, sweep.grid.describe(row.index));
        match &row.error {
            None => eprintln!("levibot-backtest: {point}: ok"),
            Some(e) => eprintln!("levibot-backtest: {point}: failed: {e}"),
        }
        if json {
            print!("{}", row.json);
        }
    })?;
    eprintln!(
        "levibot-backtest: {} points run ({} of the grid's {points}), {} failed; table in {} and {}",
        done.points,
        if shard == Shard::ALL {
            "all".to_owned()
        } else {
            format!("shard {}/{}", shard.index, shard.count)
        },
        done.failed,
        done.csv.display(),
        done.jsonl.display()
    );
    if let Some(dir) = &done.parquet {
        eprintln!("levibot-backtest: Parquet in {}", dir.display());
    }
    anyhow::ensure!(
        done.failed == 0,
        "{} of {} points failed (their errors are in {})",
        done.failed,
        done.points,
        done.csv.display()
    );
    Ok(())
}
