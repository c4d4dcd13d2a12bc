//! `levibot-demo`: the daemon trading against the simulated venue, in one command.
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
use levibot_daemon::{config, run};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::codes::{Phase, TradingState, label, label::microquote_text};
use levibot_shm::counters::CountersReader;
use levibot_shm::records::{ExecutionReport, Record, SentOrder, exec_type};
use levibot_shm::{StartAt, Tailer};

use levibot_sim::demo::{start_venue, venue_config, write_config};

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
    #[arg(long, default_value = levibot_exporter::DEFAULT_LISTEN)]
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
        "levibot-demo: venue-sim on {} (market data) and {} (FIX); journal in {}",
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
    let args = levibot_exporter::Args {
        journal: journal.to_owned(),
        listen,
        journal_limit_bytes: levibot_exporter::DEFAULT_JOURNAL_LIMIT_BYTES,
        // The demo runs no archiver: the box's, if any, is what would show.
        archiver_counters: levibot_exporter::archive::DEFAULT_ARCHIVER_COUNTERS.into(),
    };
    // The address it bound, or why it could not: port 0 picks a port the screen must show.
    let (bound_tx, bound) = std::sync::mpsc::channel::<Result<std::net::SocketAddr, String>>();
    let spawned = std::thread::Builder::new()
        .name("exporter".into())
        .spawn(move || {
            let on_bound = bound_tx.clone();
            let served = levibot_exporter::run_with(&args, move |addr| {
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
        println!("levibot-demo: {}", screen.exporter);
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
        "made by levibot-demo; emptied by the next one\n",
    )
    .with_context(|| format!("writing {}", dir.join(DEMO_MARKER).display()))?;
    Ok(())
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
