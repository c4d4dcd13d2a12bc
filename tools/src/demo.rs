//! `levibotd demo`: the daemon trading against the simulated venue, in one command.
//!
//! It starts `venue-sim` in-process (synthetic traders on NKNUSDT, BTCUSDT and ETHUSDT, market
//! data and FIX order entry on loopback ports), writes a config for it beside the journal, and
//! runs the real daemon on that config (`daemon::run`, exactly as `levibotd run` does: recovery,
//! reconciliation, the control socket, signals). While it trades, a one-screen summary is drawn
//! from what any operator tool sees: the counters file and the journal. Ctrl-C (or the end of
//! `--duration`) stops it the way SIGTERM stops the service: halt, cancel every open order,
//! close the journal.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use levibot_engine::daemon::{config, run};
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};
use levibot_shm::codes::label::microquote_text;
use levibot_shm::codes::{Phase, TradingState, label};
use levibot_shm::counters::CountersReader;
use levibot_shm::records::{ExecutionReport, Record, SentOrder, exec_type};
use levibot_shm::{StartAt, Tailer};

use crate::venue::md_server::{FeedConfig, MdConfig};
use crate::venue::sim::{SimVenue, SimVenueConfig};

/// The demo's instruments (an extract of Binance's exchangeInfo, from the corpus).
const EXCHANGE_INFO: &str = include_str!("../data/demo-exchangeInfo.json");
/// Symbols traded and where their prices start, in ticks (0.35, 57,000 and 3,500 USDT).
const SYMBOLS: [(&str, i64); 3] = [
    ("NKNUSDT", 3_500),
    ("BTCUSDT", 5_700_000),
    ("ETHUSDT", 350_000),
];
/// A file in the journal directory that says the demo made it (and may empty it again).
const DEMO_MARKER: &str = ".levibot-demo";
/// How often the screen is redrawn.
const REFRESH: Duration = Duration::from_millis(500);

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seconds to trade before stopping (0: until Ctrl-C).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Journal directory (levictl finds it there without being told).
    #[arg(long, env = levibot_shm::paths::DIR_ENV, default_value = levibot_shm::paths::DEFAULT_DIR)]
    pub journal: PathBuf,
    /// Synthetic order actions a second at the simulated venue.
    #[arg(long, default_value_t = 400)]
    pub rate: u32,
    /// Seed of the venue's synthetic traders.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one summary line a second instead of redrawing the screen.
    #[arg(long)]
    pub plain: bool,
    /// Where the demo's exporter serves /metrics, /healthz and /readyz (port 0: any free one;
    /// `none`: no exporter).
    #[arg(long, default_value = crate::exporter::DEFAULT_LISTEN)]
    pub exporter_listen: String,
}

/// Runs the demo; returns once the daemon has stopped.
pub fn run_demo(args: &DemoArgs) -> Result<()> {
    prepare_journal_dir(&args.journal)?;
    let venue_config = venue_config(args.seed, args.rate)?;
    let table = venue_config.instruments.clone();
    let venue = start_venue(venue_config)?;
    let config_path = write_config(&args.journal, &args.journal, &venue)?;
    let config = config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    println!(
        "levibotd demo: venue-sim on {} (market data) and {} (FIX); journal in {}",
        venue.md_addr(),
        venue.fix_addr().map_or_else(String::new, |a| a.to_string()),
        args.journal.display()
    );
    println!(
        "  in another terminal: levictl tail -f | levictl stat | levictl status | levictl kill"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let options = run::RunOptions {
        stop: Arc::clone(&stop),
        handle_signals: true,
    };
    let daemon = std::thread::Builder::new()
        .name("levibotd".into())
        .spawn(move || run::run(config, options))?;

    let started = Instant::now();
    let mut exporter_started = false;
    let mut screen = Screen::new(
        &args.journal,
        table,
        !args.plain && std::io::stdout().is_terminal(),
    );
    let until = (args.duration > 0).then(|| started + Duration::from_secs(args.duration));
    while !daemon.is_finished() {
        if until.is_some_and(|u| Instant::now() >= u) {
            stop.store(true, Ordering::Release);
        }
        std::thread::sleep(REFRESH);
        screen.update();
        // The exporter starts once the daemon runs (its journal is there), as the service's.
        if !exporter_started && screen.phase() == Some(Phase::Running) {
            exporter_started = true;
            start_exporter(&args.journal, &args.exporter_listen, &mut screen);
        }
        screen.draw(started.elapsed());
    }
    let result = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))?;
    venue.stop();
    screen.update();
    screen.draw(started.elapsed());
    let report = result.context("levibotd")?;
    println!();
    println!(
        "Stopped: {} open orders left after the cancel-all.",
        report.open_orders_left
    );
    println!("The journal is in {}. Next:", report.journal_dir.display());
    println!("  levictl tail                 # what happened, like journalctl (--json for JSONL)");
    println!("  levictl tail --type order_sent -n 20");
    println!("  levictl stat --once          # every counter");
    println!("  levictl export --format csv --out orders.csv --type order_sent   # for DuckDB");
    println!("(cargo run --release --bin levictl -- ... from a checkout)");
    Ok(())
}

/// The demo's venue: its symbols at their prices, synthetic traders at `rate` actions a
/// second, market data and FIX on free loopback ports.
pub fn venue_config(seed: u64, rate: u32) -> Result<SimVenueConfig> {
    let all = parse_exchange_info(EXCHANGE_INFO.as_bytes()).context("demo exchangeInfo")?;
    let symbols: Vec<&str> = SYMBOLS.iter().map(|(s, _)| *s).collect();
    let instruments = InstrumentTable::select(&all, &symbols).context("demo instruments")?;
    Ok(SimVenueConfig {
        instruments,
        fair_ticks: SYMBOLS.iter().map(|(_, t)| *t).collect(),
        seed,
        md_addr: "127.0.0.1:0".parse()?,
        // REST on a port of its own, as Binance serves it from another host than its streams.
        rest_addr: Some("127.0.0.1:0".parse()?),
        md: MdConfig::default(),
        fix_addr: Some("127.0.0.1:0".parse()?),
        fix_comp_id: "VENUE".into(),
        feed: FeedConfig {
            rate,
            depth_interval: Duration::from_millis(100),
        },
    })
}

/// Starts the venue with books already filled by its traders.
pub fn start_venue(config: SimVenueConfig) -> Result<SimVenue> {
    let venue = SimVenue::start(config).context("starting the simulated venue")?;
    venue.core.run_flow(2_000);
    venue.core.flush_depth();
    Ok(venue)
}

/// Writes the demo's exchangeInfo and config (journal in `journal`) into `dir`; returns the
/// config's path.
pub fn write_config(dir: &Path, journal: &Path, venue: &SimVenue) -> Result<PathBuf> {
    let exchange_info = dir.join("demo-exchangeInfo.json");
    std::fs::write(&exchange_info, EXCHANGE_INFO)
        .with_context(|| format!("writing {}", exchange_info.display()))?;
    let config_path = dir.join("levibot-demo.toml");
    let text = demo_config(
        journal,
        &exchange_info,
        venue.md_addr(),
        venue.rest_addr(),
        venue.fix_addr().context("the venue has no FIX endpoint")?,
    );
    std::fs::write(&config_path, &text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

/// Starts the exporter (`levibot-exporter`'s code) on its own threads; it lives until the demo
/// exits. A port already taken is reported on the screen, not fatal.
fn start_exporter(journal: &Path, listen: &str, screen: &mut Screen) {
    if listen == "none" {
        return;
    }
    let listen = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            screen.exporter = format!("exporter not started: --exporter-listen {listen}: {e}");
            return;
        }
    };
    let args = crate::exporter::Args {
        journal: journal.to_owned(),
        listen,
        journal_limit_bytes: crate::exporter::DEFAULT_JOURNAL_LIMIT_BYTES,
    };
    // The address it bound, or why it could not: port 0 picks a port the screen must show.
    let (bound_tx, bound) = std::sync::mpsc::channel::<Result<std::net::SocketAddr, String>>();
    let spawned = std::thread::Builder::new()
        .name("exporter".into())
        .spawn(move || {
            let on_bound = bound_tx.clone();
            let served = crate::exporter::run_with(&args, move |addr| {
                let _ = on_bound.send(Ok(addr));
            });
            if let Err(e) = served {
                tracing::warn!("the demo's exporter stopped: {e:#}");
                let _ = bound_tx.send(Err(format!("{e:#}")));
            }
        });
    screen.exporter = match spawned {
        Err(e) => format!("exporter not started: {e}"),
        Ok(_) => match bound.recv_timeout(EXPORTER_BIND_TIMEOUT) {
            Ok(Ok(addr)) => format!("metrics: http://{addr}/metrics (Prometheus exposition)"),
            Ok(Err(e)) => format!("exporter not started: {e}"),
            Err(_) => {
                format!("exporter on {listen}: not listening after {EXPORTER_BIND_TIMEOUT:?}")
            }
        },
    };
    if !screen.terminal {
        // The live screen shows it on every refresh; plain output says it once.
        println!("levibotd demo: {}", screen.exporter);
    }
}

/// How long the demo waits for its exporter to bind before it shows the screen without it.
const EXPORTER_BIND_TIMEOUT: Duration = Duration::from_secs(5);

/// Empties a demo's old journal directory; refuses one that is not a demo's.
fn prepare_journal_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .count();
        if entries > 0 {
            if !dir.join(DEMO_MARKER).exists() {
                bail!(
                    "{} holds a journal that is not a demo's (a levibotd service's?); \
                     run the demo with --journal /dev/shm/levibot-demo or set LEVIBOT_JOURNAL",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("emptying the old demo journal {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        "made by levibotd demo; emptied by the next one\n",
    )
    .with_context(|| format!("writing {}", dir.join(DEMO_MARKER).display()))?;
    Ok(())
}

/// The demo's config: the reference maker on each symbol, fused on one unpinned thread that
/// backs off when idle (a demo shares the machine with the venue and a terminal).
pub fn demo_config(
    journal: &Path,
    exchange_info: &Path,
    md_addr: std::net::SocketAddr,
    rest_addr: std::net::SocketAddr,
    fix_addr: std::net::SocketAddr,
) -> String {
    let sizes = JournalSizes::for_dir(journal);
    let mut text = format!(
        r#"# Written by `levibotd demo`: the maker on three symbols against venue-sim.
[daemon]
log_level = "warn"
lock_memory = false
# A demo's journal is new every run: trade after reconciling (the service halts instead).
empty_journal = "trade"
cancel_deadline_ms = 5000
start_timeout_ms = 30000

[journal]
dir = "{journal}"
segment_size_mib = {segment_mib}
prefault = false
[journal.retention]
max_total_mib = {total_mib}
compress = {compress}

[venue]
exchange_info = "{exchange_info}"

[venue.market_data]
url = "ws://{md_addr}"
rest_url = "http://{rest_addr}"
streams = ["depth@100ms", "bookTicker", "aggTrade"]
ping_interval_ms = 5000
pong_timeout_ms = 5000

[venue.order_entry]
url = "tcp://{fix_addr}"
sender_comp_id = "LEVIBOT"
target_comp_id = "VENUE"
heart_bt_int_s = 30

[strategy]
kind = "maker"
id = 1

[risk]
open_orders_max = 64
gross_exposure_max = "100000"
net_exposure_max = "100000"
loss_max = "1000"
loss_state = "reduce_only"
order_rate = {{ count_max = 1000, window_ms = 10 }}
message_rate = {{ count_max = 1000, window_ms = 10 }}
fill_rate = {{ count_max = 100, window_ms = 1000 }}
duplicate_window_us = 50

[layout]
kind = "fused"
pipeline = {{ idle = "backoff" }}
"#,
        journal = journal.display(),
        exchange_info = exchange_info.display(),
        segment_mib = sizes.segment_mib,
        total_mib = sizes.total_mib,
        compress = sizes.compress,
    );
    for (symbol, qty) in [("NKNUSDT", "1000"), ("BTCUSDT", "0.01"), ("ETHUSDT", "0.1")] {
        text.push_str(&format!(
            r#"
[[instruments]]
symbol = "{symbol}"
collar_bps = 500
order_qty_max = "{qty}"
order_notional_max = "10000"
position_max = "{position}"
open_orders_max = 16
[instruments.maker]
half_spread_ticks = 2
quote_lots = 100
skew_ticks_per_quote = 1.0
requote_threshold_ticks = 0
inventory_max_lots = 1000
"#,
            position = double_decimal(qty),
        ));
    }
    text
}

/// The demo's journal sizes, fitted to the filesystem it is on (a demo on a small tmpfs still
/// runs, and meets a full filesystem as the daemon must: halted, cancelled, stopped).
struct JournalSizes {
    segment_mib: u64,
    total_mib: u64,
    /// Gzip finished segments: not on a small filesystem, where the compressed copy needs room
    /// the pruning has not freed yet.
    compress: bool,
}

impl JournalSizes {
    /// Segments of 64 MiB and 4 GiB in all, or, on a smaller filesystem, segments of an eighth
    /// of it (a power of two, at least 1 MiB) and half of it in all (at least two segments).
    fn for_dir(dir: &Path) -> JournalSizes {
        let fs_mib = dir
            .ancestors()
            .find_map(|d| rustix::fs::statvfs(d).ok())
            .map_or(u64::MAX, |s| s.f_blocks.saturating_mul(s.f_frsize) >> 20);
        let mut segment_mib = 64;
        while segment_mib > 1 && segment_mib * 8 > fs_mib {
            segment_mib /= 2;
        }
        JournalSizes {
            segment_mib,
            total_mib: (fs_mib / 2).clamp(2 * segment_mib, 4096),
            compress: fs_mib >= 64,
        }
    }
}

/// `qty` x 2, for decimal strings like "0.01".
fn double_decimal(qty: &str) -> String {
    let d: rust_decimal::Decimal = qty.parse().unwrap_or_default();
    (d * rust_decimal::Decimal::TWO).normalize().to_string()
}

/// The live summary, from the counters file and the journal.
struct Screen {
    dir: PathBuf,
    instruments: InstrumentTable,
    terminal: bool,
    counters: Option<CountersReader>,
    values: HashMap<String, i64>,
    tailer: Option<Tailer>,
    tick_to_trade_ns: Histogram<u64>,
    /// Where the exporter serves, or why it does not.
    exporter: String,
    fills: u64,
    cancels: u64,
    venue_rejects: u64,
    last_plain: Option<Instant>,
}

impl Screen {
    fn new(dir: &Path, instruments: InstrumentTable, terminal: bool) -> Screen {
        Screen {
            dir: dir.to_owned(),
            instruments,
            terminal,
            counters: None,
            values: HashMap::new(),
            tailer: None,
            tick_to_trade_ns: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("static bounds"),
            exporter: String::new(),
            fills: 0,
            cancels: 0,
            venue_rejects: 0,
            last_plain: None,
        }
    }

    fn update(&mut self) {
        if self.counters.is_none() {
            self.counters = CountersReader::open(levibot_shm::paths::counters_path(&self.dir)).ok();
        }
        if let Some(c) = &self.counters {
            self.values = c
                .counters()
                .into_iter()
                .map(|c| (c.label, c.value))
                .collect();
        }
        if self.tailer.is_none() {
            self.tailer = Tailer::open(&self.dir, StartAt::Beginning).ok();
        }
        let Some(tailer) = self.tailer.as_mut() else {
            return;
        };
        let calibration = tailer.calibration();
        let (histogram, fills, cancels, rejects) = (
            &mut self.tick_to_trade_ns,
            &mut self.fills,
            &mut self.cancels,
            &mut self.venue_rejects,
        );
        while let Ok(polled) = tailer.poll(4096, |frame| {
            if frame.record_type == SentOrder::RECORD_TYPE
                && let Some(sent) = SentOrder::from_bytes(frame.payload)
                && sent.decoded_tsc > sent.recv_tsc
            {
                let ns = calibration.ticks_to_ns(sent.encoded_tsc.saturating_sub(sent.recv_tsc));
                let _ = histogram.record((ns as u64).max(1));
            } else if frame.record_type == ExecutionReport::RECORD_TYPE
                && let Some(report) = ExecutionReport::from_bytes(frame.payload)
            {
                match report.exec_type {
                    exec_type::TRADE => *fills += 1,
                    exec_type::CANCELED => *cancels += 1,
                    exec_type::REJECTED => *rejects += 1,
                    _ => {}
                }
            }
        }) {
            if polled.frames == 0 {
                break;
            }
        }
    }

    fn get(&self, label: &str) -> i64 {
        self.values.get(label).copied().unwrap_or(0)
    }

    /// The daemon's phase, from its counter.
    fn phase(&self) -> Option<Phase> {
        Phase::from_code(self.get(label::DAEMON_PHASE))
    }

    fn draw(&mut self, elapsed: Duration) {
        if !self.terminal {
            if self
                .last_plain
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
            {
                return;
            }
            self.last_plain = Some(Instant::now());
        }
        let mut out = String::new();
        if self.terminal {
            out.push_str("\x1b[H\x1b[2J");
        }
        let state = match TradingState::from_code(self.get(label::RISK_TRADING_STATE)) {
            Some(TradingState::Halted) | None => "HALTED",
            Some(state) => state.name(),
        };
        let phase = self.phase();
        let waiting = phase.is_none_or(|p| p < Phase::Running);
        let phase = phase.map_or("?", Phase::name);
        let up = |label: &str| if self.get(label) == 1 { "up" } else { "down" };
        out.push_str(&format!(
            "LeviBot demo  {:>5.1}s  phase {phase}{}  trading {state}  market data {}  FIX {}\n",
            elapsed.as_secs_f64(),
            if waiting {
                " (waiting for sessions and books)"
            } else {
                ""
            },
            up(label::MARKET_DATA_UP),
            up(label::ORDER_ENTRY_UP),
        ));
        if !self.terminal {
            out.push_str(&format!(
                "  orders {} fills {} rejects {} open {} pnl {}\n",
                self.get(label::GATEWAY_ORDERS_SENT),
                self.fills,
                self.get(label::RISK_REJECTED),
                self.get(label::RISK_OPEN_ORDERS),
                microquote_text(self.get(label::RISK_PNL_MICROQUOTE)),
            ));
            print!("{out}");
            let _ = std::io::stdout().flush();
            return;
        }
        out.push_str(&format!(
            "\n{:<10} {:>14} {:>14} {:>14} {:>14}\n",
            "symbol", "bid", "ask", "position", "PnL (USDT)"
        ));
        for i in self.instruments.iter() {
            let s = i.symbol.to_string();
            let px = |field: &str| {
                let v = self.get(&label::book(&s, field));
                if v > 0 {
                    i.price_scale.to_decimal(v).normalize().to_string()
                } else {
                    "-".into()
                }
            };
            let position = i
                .qty_scale
                .to_decimal(self.get(&label::risk_position_units(&s)))
                .normalize();
            out.push_str(&format!(
                "{:<10} {:>14} {:>14} {:>14} {:>14}\n",
                s,
                px(label::BOOK_BID_PX),
                px(label::BOOK_ASK_PX),
                position.to_string(),
                microquote_text(self.get(&label::risk_pnl_microquote(&s))),
            ));
        }
        let h = &self.tick_to_trade_ns;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
        out.push_str(&format!(
            "\norders sent {:>8}   fills {:>6}   cancels {:>6}   open {:>3}   total PnL {} USDT\n",
            self.get(label::GATEWAY_ORDERS_SENT),
            self.fills,
            self.cancels,
            self.get(label::RISK_OPEN_ORDERS),
            microquote_text(self.get(label::RISK_PNL_MICROQUOTE)),
        ));
        out.push_str(&format!(
            "risk passed {:>8}   rejected {:>6}   venue rejects {:>6}\n",
            self.get(label::RISK_PASSED),
            self.get(label::RISK_REJECTED),
            self.venue_rejects,
        ));
        let mut reasons: Vec<(String, i64)> = self
            .values
            .iter()
            .filter(|(l, v)| l.starts_with(label::RISK_REJECT_PREFIX) && **v > 0)
            .map(|(l, v)| (l[label::RISK_REJECT_PREFIX.len()..].to_owned(), *v))
            .collect();
        reasons.sort();
        if !reasons.is_empty() {
            let list: Vec<String> = reasons.iter().map(|(r, v)| format!("{r} {v}")).collect();
            out.push_str(&format!("  rejects by check: {}\n", list.join(", ")));
        }
        if !h.is_empty() {
            out.push_str(&format!(
                "tick-to-trade (bytes in -> order out, {} orders): p50 {:.2} us  p99 {:.2} us  p99.9 {:.2} us  max {:.2} us\n",
                h.len(),
                us(0.5),
                us(0.99),
                us(0.999),
                h.max() as f64 / 1_000.0
            ));
        }
        out.push_str(&format!(
            "market data: {} messages, {} decode errors, {} gaps; journal {}\n",
            self.get(label::FEED_MESSAGES),
            self.get(label::FEED_DECODE_ERRORS),
            self.get(label::FEED_STREAM_GAPS),
            self.dir.display()
        ));
        if !self.exporter.is_empty() {
            out.push_str(&format!("{}\n", self.exporter));
        }
        out.push_str("\nCtrl-C stops (cancels every open order first).\n");
        print!("{out}");
        let _ = std::io::stdout().flush();
    }
}
