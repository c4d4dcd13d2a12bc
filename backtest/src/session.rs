//! One backtest from start to end: the run, its results folded into the summary and the
//! report's data, the simulation's settings written beside them (a summary says what was
//! assumed). `levibot-backtest run` prints it; sweeps run it once per point of their grid.

use std::path::Path;

use anyhow::{Context, Result};
use levibot_daemon::config::{DaemonConfig, ParseOptions, parse_with};
use levibot_view::format_unix_ns;
use serde_json::{Value, json};

use crate::compare::VersusLive;

/// How a backtest parses a daemon config: host names are left unresolved (nothing connects)
/// and the files it names may be anywhere.
pub const PARSE_OPTIONS: ParseOptions = ParseOptions {
    resolve_hosts: false,
    files_under: None,
};

/// A daemon config from its text (`path` names it in errors and anchors its relative paths).
pub fn parse_config(text: &str, path: &Path) -> Result<DaemonConfig> {
    parse_with(text, path, &PARSE_OPTIONS).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A daemon config file, read and parsed.
pub fn read_config(path: &Path) -> Result<DaemonConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_config(&text, path)
}
use crate::input::InputSource;
use crate::report::ReportData;
use crate::results::{Results, ResultsConfig, Summary};
use crate::run::{RunConfig, RunStats, run};
use crate::window::ResultsGate;

/// What one backtest gives.
pub struct Outcome {
    pub summary: Summary,
    pub report: ReportData,
    pub stats: RunStats,
    /// A replayed live journal, compared with what it did live.
    pub versus_live: Option<VersusLive>,
}

impl Outcome {
    /// Adds the comparison with the live session replayed, to the summary and the report.
    pub fn add_versus_live(&mut self, versus: VersusLive) {
        let rows = &mut self.report.summary;
        rows.push((
            "Versus live: decisions equal".into(),
            format!(
                "{} ({} compared, up to the first fill that differs)",
                versus.decisions_equal, versus.decisions_compared
            ),
        ));
        rows.push((
            "Versus live: fills, live / backtest".into(),
            format!("{} / {}", versus.live.fills, versus.backtest.fills),
        ));
        for (symbol, live_pnl) in &versus.live.pnl_quote {
            let backtest_pnl = versus
                .backtest
                .pnl_quote
                .get(symbol)
                .copied()
                .unwrap_or(0.0);
            rows.push((
                format!("Versus live: {symbol} PnL, live / backtest"),
                format!("{live_pnl:.6} / {backtest_pnl:.6}"),
            ));
        }
        self.versus_live = Some(versus);
    }

    /// The summary as one JSON object: the results' fields, then `simulation` (what the
    /// venue assumed) and `venue` (its own view at the end).
    pub fn to_json(&self, run_config: &RunConfig) -> Value {
        let mut value = serde_json::to_value(&self.summary).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("simulation".into(), simulation(run_config));
            map.insert(
                "venue".into(),
                json!({
                    "positions_units": self.stats.venue_positions,
                    "working_orders": self.stats.working_orders,
                }),
            );
            map.insert(
                "input".into(),
                json!({
                    "feed_gaps_cut": self.stats.feed_gaps_cut,
                    "feed_late": self.stats.feed_late,
                }),
            );
            map.insert(
                "versus_live".into(),
                serde_json::to_value(&self.versus_live).unwrap_or(Value::Null),
            );
        }
        value
    }
}

/// The simulation's settings, as the summary states them.
pub fn simulation(c: &RunConfig) -> Value {
    json!({
        "queue_model": c.exchange.queue.to_string(),
        "order_latency_in_order": c.order_latency_in_order,
        "order_latency_sampled_from": c.order_round_trips.as_ref().map(|t| json!({
            "new_ack": t.new_ack.len(),
            "new_fill": t.new_fill.len(),
            "cancel": t.cancel.len(),
            "replace": t.replace.len(),
        })),
        "order_entry_latency_ns": c.order_latency.entry_ns,
        "order_response_latency_ns": c.order_latency.response_ns,
        "feed_latency": c.feed_latency.to_string(),
        "compute_time": c.compute_time.to_string(),
        "journal_market": c.journal_market,
        "maker_fee_ppm": c.exchange.maker_fee_ppm,
        "taker_fee_ppm": c.exchange.taker_fee_ppm,
        "self_trade_prevention": c.exchange.self_trade.to_string(),
        "seed": c.seed,
        "market_impact": false,
        "window": {
            "trade_from_ns": c.window.trade_from_ns,
            "until_ns": c.window.until_ns,
        },
    })
}

/// The simulation's settings as the report's summary rows.
fn simulation_rows(c: &RunConfig) -> Vec<(String, String)> {
    let us = |ns: u64| format!("{}", ns as f64 / 1000.0);
    let bps = |ppm: i64| format!("{}", ppm as f64 / 100.0);
    vec![
        ("Queue model".into(), c.exchange.queue.to_string()),
        (
            "Order latency, entry / response (µs)".into(),
            format!(
                "{} / {}",
                us(c.order_latency.entry_ns),
                us(c.order_latency.response_ns)
            ),
        ),
        (
            "Order latency sampled from".into(),
            c.order_round_trips
                .as_ref()
                .map_or("(constant)".into(), |t| {
                    format!(
                        "{} new, {} fill, {} cancel, {} replace round trips (half each way)",
                        t.new_ack.len(),
                        t.new_fill.len(),
                        t.cancel.len(),
                        t.replace.len()
                    )
                }),
        ),
        ("Feed latency".into(), c.feed_latency.to_string()),
        (
            "Fees, maker / taker (bps)".into(),
            format!(
                "{} / {}",
                bps(c.exchange.maker_fee_ppm),
                bps(c.exchange.taker_fee_ppm)
            ),
        ),
        (
            "Self-trade prevention".into(),
            c.exchange.self_trade.to_string(),
        ),
        (
            "Market impact".into(),
            "none (fills take nothing from the recorded book)".into(),
        ),
        ("Seed".into(), c.seed.to_string()),
        (
            "Evaluated window".into(),
            match (c.window.trade_from_ns, c.window.until_ns) {
                (None, None) => "the whole input".into(),
                (from, until) => format!(
                    "trading from {} (warm-up before), input until {}",
                    from.map_or("the start".into(), format_unix_ns),
                    until.map_or("its end".into(), format_unix_ns)
                ),
            },
        ),
    ]
}

/// Runs `config` over `input`, journaling into `journal_dir`.
pub fn backtest(
    config: &DaemonConfig,
    input: &mut dyn InputSource,
    journal_dir: &Path,
    run_config: &RunConfig,
    results_config: ResultsConfig,
) -> Result<Outcome> {
    let mut results = Results::new(config.instruments.iter(), results_config);
    // A window's results count from its start (`crate::window`).
    let mut gate = ResultsGate::new(run_config.window.trade_from_ns);
    let stats = run(config, input, journal_dir, run_config, &mut |e| {
        gate.on_event(e, &mut |e| results.on_event(e))
    })?;
    gate.finish(stats.last_ns, &mut |e| results.on_event(e));
    let (mut summary, mut report) = results.finish(stats.last_ns);
    for (reason, count) in &stats.risk_rejects {
        *summary.rejects.entry(reason.clone()).or_default() += count;
    }
    report.summary.extend(simulation_rows(run_config));
    Ok(Outcome {
        summary,
        report,
        stats,
        versus_live: None,
    })
}
