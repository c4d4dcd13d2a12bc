//! The `--json` summary as one row of typed columns (`summary.parquet`, and the figures of
//! each row of `sweep.parquet`).
//!
//! A column is named by its value's path in the JSON object, the keys joined with `_`:
//! `messages`, `orders_new`, `totals_net_pnl_quote`, `equity_sharpe`, `latency_new_p99_us`,
//! `simulation_queue_model`, `input_feed_late`. Where the JSON has a list or a map, the item's
//! key stands in the path: an instrument's symbol (`instruments_NKNUSDT_net_pnl_quote`, and
//! `venue_positions_units_NKNUSDT`, whose list is in the instruments' order), a markout's
//! horizon in its largest whole unit (`instruments_NKNUSDT_markouts_1s_mean_bps`,
//! `totals_markouts_100ms_total_quote`), a reject's reason (`rejects_post_only_would_take`,
//! `rejects_risk_self_trade`), a side of `versus_live` (`versus_live_first_decision_difference_live`,
//! `versus_live_backtest_pnl_quote_NKNUSDT`). A character of a key other than a letter, a
//! digit or `_` is written `_`. The key that names an item (`symbol`, `horizon_ns`) is not
//! repeated in a column of its own.
//!
//! Types: counts and nanosecond durations `UInt64`; fees in ppm `Int64`; money, quantities,
//! prices, ratios and µs `Float64`, exactly the `f64` the JSON prints (the summary computes
//! money exactly in integer units and converts it once, to the nearest `f64`); times
//! (`*_t_ns`) `Timestamp(ns, UTC)`; names and settings `Utf8`; flags `Boolean`. A value the
//! JSON gives as `null`, or leaves out (a map without that symbol, a run that is not a replay),
//! is null; a reason that refused nothing in this run but others of a sweep is 0.

use std::collections::BTreeSet;

use levibot_parquet::table::TableColumn;
use levibot_parquet::{ColumnType, Val};

use crate::compare::{SideFigures, VersusLive};
use crate::results::{LatencyStats, MarkoutSummary, OrderCounts, Summary};
use crate::run::{RunConfig, RunStats};
use crate::sweep::table::horizon_label;

/// What one run's row is made of: its summary, its run's own figures and settings, and the
/// comparison with a replayed live session.
#[derive(Clone, Copy)]
pub struct Figures<'a> {
    pub summary: &'a Summary,
    pub stats: &'a RunStats,
    pub run_config: &'a RunConfig,
    pub versus_live: Option<&'a VersusLive>,
}

/// The keys that name columns: the symbols, horizons and reasons of a run, or the union of a
/// sweep's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// In the order they first come.
    pub symbols: Vec<String>,
    /// Shortest first.
    pub horizons_ns: Vec<u64>,
    pub reasons: BTreeSet<String>,
}

impl Shape {
    /// The keys of one run.
    pub fn of(f: &Figures) -> Shape {
        let s = f.summary;
        let mut shape = Shape {
            symbols: s.instruments.iter().map(|i| i.symbol.clone()).collect(),
            horizons_ns: Vec::new(),
            reasons: s.rejects.keys().cloned().collect(),
        };
        let horizons = s
            .instruments
            .iter()
            .flat_map(|i| i.markouts.iter().map(|m| m.horizon_ns))
            .chain(
                s.totals
                    .iter()
                    .flat_map(|t| t.markouts.iter().map(|m| m.horizon_ns)),
            );
        shape.add_horizons(horizons);
        if let Some(v) = f.versus_live {
            let maps = [&v.live, &v.backtest].into_iter().flat_map(|side| {
                [
                    &side.filled_base,
                    &side.position_base,
                    &side.pnl_quote,
                    &side.turnover_quote,
                ]
            });
            shape.add_symbols(maps.flat_map(|m| m.keys().cloned()));
        }
        shape
    }

    /// Adds `other`'s keys.
    pub fn merge(&mut self, other: &Shape) {
        self.add_symbols(other.symbols.iter().cloned());
        self.add_horizons(other.horizons_ns.iter().copied());
        self.reasons.extend(other.reasons.iter().cloned());
    }

    fn add_symbols(&mut self, symbols: impl IntoIterator<Item = String>) {
        for symbol in symbols {
            if !self.symbols.contains(&symbol) {
                self.symbols.push(symbol);
            }
        }
    }

    fn add_horizons(&mut self, horizons: impl IntoIterator<Item = u64>) {
        self.horizons_ns.extend(horizons);
        self.horizons_ns.sort_unstable();
        self.horizons_ns.dedup();
    }
}

/// Columns and their values, built side by side.
#[derive(Debug, Default)]
pub struct Row {
    pub columns: Vec<TableColumn>,
    pub values: Vec<Val>,
}

impl Row {
    fn push(&mut self, name: String, ty: ColumnType, value: Option<Val>) {
        self.columns.push((name, ty));
        self.values.push(value.unwrap_or(Val::Null));
    }

    pub fn u64(&mut self, name: impl Into<String>, v: Option<u64>) {
        self.push(name.into(), ColumnType::U64, v.map(Val::U64));
    }

    fn count(&mut self, name: impl Into<String>, v: Option<usize>) {
        self.u64(name, v.map(|n| n as u64));
    }

    fn i64(&mut self, name: impl Into<String>, v: Option<i64>) {
        self.push(name.into(), ColumnType::I64, v.map(Val::I64));
    }

    fn f64(&mut self, name: impl Into<String>, v: Option<f64>) {
        self.push(name.into(), ColumnType::F64, v.map(Val::F64));
    }

    /// `f64` columns named `prefix` then each name.
    fn f64s<'n>(&mut self, prefix: &str, values: impl IntoIterator<Item = (&'n str, Option<f64>)>) {
        for (name, v) in values {
            self.f64(format!("{prefix}{name}"), v);
        }
    }

    pub fn text(&mut self, name: impl Into<String>, v: Option<&str>) {
        self.push(
            name.into(),
            ColumnType::Text,
            v.map(|t| Val::Str(t.to_owned())),
        );
    }

    fn flag(&mut self, name: impl Into<String>, v: Option<bool>) {
        self.push(name.into(), ColumnType::Bool, v.map(Val::Bool));
    }

    /// A time, ns since the Unix epoch.
    fn time(&mut self, name: impl Into<String>, v: Option<u64>) {
        self.push(name.into(), ColumnType::UnixNs, v.map(Val::U64));
    }
}

/// A key as a part of a column's name.
pub fn name_part(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Appends the summary's columns for `shape` to `row`, with `f`'s values (all null without
/// one: a sweep's point that failed).
pub fn summary_columns(row: &mut Row, shape: &Shape, f: Option<&Figures>) {
    let s = f.map(|f| f.summary);
    row.time("start_t_ns", s.and_then(|s| s.start_t_ns));
    row.time("end_t_ns", s.map(|s| s.end_t_ns));
    row.u64("messages", s.map(|s| s.messages));
    orders(row, "orders", s.map(|s| &s.orders));
    row.u64("orders_filled", s.map(|s| s.orders_filled));
    row.f64("fill_ratio", s.and_then(|s| s.fill_ratio));
    row.u64("fills", s.map(|s| s.fills));
    row.u64("fills_maker", s.map(|s| s.fills_maker));
    for reason in &shape.reasons {
        let n = s.map(|s| s.rejects.get(reason).copied().unwrap_or(0));
        row.u64(format!("rejects_{}", name_part(reason)), n);
    }
    row.u64("events_ignored", s.map(|s| s.events_ignored));
    row.u64("events_out_of_order", s.map(|s| s.events_out_of_order));
    for symbol in &shape.symbols {
        let i = s.and_then(|s| s.instruments.iter().find(|i| &i.symbol == symbol));
        let p = format!("instruments_{}_", name_part(symbol));
        row.text(p.clone() + "base_asset", i.map(|i| i.base_asset.as_str()));
        row.text(p.clone() + "quote_asset", i.map(|i| i.quote_asset.as_str()));
        orders(row, &(p.clone() + "orders"), i.map(|i| &i.orders));
        row.u64(p.clone() + "orders_filled", i.map(|i| i.orders_filled));
        row.f64(p.clone() + "fill_ratio", i.and_then(|i| i.fill_ratio));
        row.u64(p.clone() + "fills", i.map(|i| i.fills));
        row.u64(p.clone() + "fills_maker", i.map(|i| i.fills_maker));
        row.f64s(
            &p,
            [
                ("position_base", i.map(|i| i.position_base)),
                ("bought_base", i.map(|i| i.bought_base)),
                ("sold_base", i.map(|i| i.sold_base)),
                ("traded_base", i.map(|i| i.traded_base)),
                ("maker_share", i.and_then(|i| i.maker_share)),
                ("turnover_quote", i.map(|i| i.turnover_quote)),
                ("fees_quote", i.map(|i| i.fees_quote)),
                ("gross_pnl_quote", i.map(|i| i.gross_pnl_quote)),
                ("net_pnl_quote", i.map(|i| i.net_pnl_quote)),
                ("last_mid_px", i.and_then(|i| i.last_mid_px)),
            ],
        );
        let q = i.map(|i| &i.queue_ahead);
        let queue = format!("{p}queue_ahead_");
        row.u64(format!("{queue}maker_fills"), q.map(|q| q.maker_fills));
        row.f64s(
            &queue,
            [
                ("mean_base", q.and_then(|q| q.mean_base)),
                ("p50_base", q.and_then(|q| q.p50_base)),
                ("p90_base", q.and_then(|q| q.p90_base)),
            ],
        );
        for &h in &shape.horizons_ns {
            let m = i.and_then(|i| i.markouts.iter().find(|m| m.horizon_ns == h));
            markout(row, &format!("{p}markouts_{}_", horizon_label(h)), m);
        }
        let dropped = i.map(|i| i.markout_fills_dropped);
        row.u64(p + "markout_fills_dropped", dropped);
    }
    let t = s.and_then(|s| s.totals.as_ref());
    row.text("totals_quote_asset", t.map(|t| t.quote_asset.as_str()));
    row.f64("totals_turnover_quote", t.map(|t| t.turnover_quote));
    row.f64("totals_fees_quote", t.map(|t| t.fees_quote));
    row.f64("totals_gross_pnl_quote", t.map(|t| t.gross_pnl_quote));
    row.f64("totals_net_pnl_quote", t.map(|t| t.net_pnl_quote));
    for &h in &shape.horizons_ns {
        let m = t.and_then(|t| t.markouts.iter().find(|m| m.horizon_ns == h));
        let p = format!("totals_markouts_{}_", horizon_label(h));
        row.u64(p.clone() + "fills_marked", m.map(|m| m.fills_marked));
        row.f64(p + "total_quote", m.map(|m| m.total_quote));
    }
    let reason = s.and_then(|s| s.totals_absent_reason.as_deref());
    row.text("totals_absent_reason", reason);
    let e = s.map(|s| &s.equity);
    row.u64("equity_sample_interval_ns", e.map(|e| e.sample_interval_ns));
    row.f64("equity_sharpe_interval_s", e.map(|e| e.sharpe_interval_s));
    row.u64("equity_intervals", e.map(|e| e.intervals));
    row.f64s(
        "equity_",
        [
            ("sharpe", e.and_then(|e| e.sharpe)),
            ("sharpe_annualised", e.and_then(|e| e.sharpe_annualised)),
            ("sortino", e.and_then(|e| e.sortino)),
            ("sortino_annualised", e.and_then(|e| e.sortino_annualised)),
            ("max_drawdown_quote", e.and_then(|e| e.max_drawdown_quote)),
        ],
    );
    let peak = e.and_then(|e| e.max_drawdown_peak_t_ns);
    row.time("equity_max_drawdown_peak_t_ns", peak);
    let trough = e.and_then(|e| e.max_drawdown_trough_t_ns);
    row.time("equity_max_drawdown_trough_t_ns", trough);
    let l = s.map(|s| &s.latency);
    latency(row, "latency_new_", l.map(|l| &l.new));
    latency(row, "latency_cancel_", l.map(|l| &l.cancel));
    latency(row, "latency_replace_", l.map(|l| &l.replace));
    simulation_columns(row, f.map(|f| f.run_config));
    let stats = f.map(|f| f.stats);
    for symbol in &shape.symbols {
        // The venue's positions are in the order of the run's instruments.
        let at = s.and_then(|s| s.instruments.iter().position(|i| &i.symbol == symbol));
        let units = stats.and_then(|st| at.and_then(|at| st.venue_positions.get(at)).copied());
        row.i64(
            format!("venue_positions_units_{}", name_part(symbol)),
            units,
        );
    }
    row.count("venue_working_orders", stats.map(|st| st.working_orders));
    row.u64("input_feed_gaps_cut", stats.map(|st| st.feed_gaps_cut));
    row.u64("input_feed_late", stats.map(|st| st.feed_late));
    versus_columns(row, shape, f.and_then(|f| f.versus_live));
}

fn orders(row: &mut Row, prefix: &str, o: Option<&OrderCounts>) {
    row.u64(format!("{prefix}_new"), o.map(|o| o.new));
    row.u64(format!("{prefix}_cancel"), o.map(|o| o.cancel));
    row.u64(format!("{prefix}_replace"), o.map(|o| o.replace));
}

fn markout(row: &mut Row, p: &str, m: Option<&MarkoutSummary>) {
    row.u64(format!("{p}fills_marked"), m.map(|m| m.fills_marked));
    row.f64(format!("{p}qty_marked_base"), m.map(|m| m.qty_marked_base));
    row.f64(format!("{p}mean_bps"), m.and_then(|m| m.mean_bps));
    row.f64(format!("{p}total_quote"), m.map(|m| m.total_quote));
    row.u64(format!("{p}fills_past_end"), m.map(|m| m.fills_past_end));
    row.u64(
        format!("{p}fills_without_mid"),
        m.map(|m| m.fills_without_mid),
    );
}

fn latency(row: &mut Row, p: &str, l: Option<&LatencyStats>) {
    row.u64(format!("{p}count"), l.map(|l| l.count));
    row.f64s(
        p,
        [
            ("mean_us", l.and_then(|l| l.mean_us)),
            ("p50_us", l.and_then(|l| l.p50_us)),
            ("p90_us", l.and_then(|l| l.p90_us)),
            ("p99_us", l.and_then(|l| l.p99_us)),
            ("max_us", l.and_then(|l| l.max_us)),
        ],
    );
}

/// `simulation`: the settings the venue assumed (`session::simulation`'s object).
fn simulation_columns(row: &mut Row, c: Option<&RunConfig>) {
    let queue = c.map(|c| c.exchange.queue.to_string());
    row.text("simulation_queue_model", queue.as_deref());
    let in_order = c.map(|c| c.order_latency_in_order);
    row.flag("simulation_order_latency_in_order", in_order);
    let trips = c.and_then(|c| c.order_round_trips.as_deref());
    let p = "simulation_order_latency_sampled_from_";
    row.count(format!("{p}new_ack"), trips.map(|t| t.new_ack.len()));
    row.count(format!("{p}new_fill"), trips.map(|t| t.new_fill.len()));
    row.count(format!("{p}cancel"), trips.map(|t| t.cancel.len()));
    row.count(format!("{p}replace"), trips.map(|t| t.replace.len()));
    let entry = c.map(|c| c.order_latency.entry_ns);
    row.u64("simulation_order_entry_latency_ns", entry);
    let response = c.map(|c| c.order_latency.response_ns);
    row.u64("simulation_order_response_latency_ns", response);
    let feed = c.map(|c| c.feed_latency.to_string());
    row.text("simulation_feed_latency", feed.as_deref());
    let compute = c.map(|c| c.compute_time.to_string());
    row.text("simulation_compute_time", compute.as_deref());
    row.flag("simulation_journal_market", c.map(|c| c.journal_market));
    row.i64(
        "simulation_maker_fee_ppm",
        c.map(|c| c.exchange.maker_fee_ppm),
    );
    row.i64(
        "simulation_taker_fee_ppm",
        c.map(|c| c.exchange.taker_fee_ppm),
    );
    let stp = c.map(|c| c.exchange.self_trade.to_string());
    row.text("simulation_self_trade_prevention", stp.as_deref());
    row.u64("simulation_seed", c.map(|c| c.seed));
    row.flag("simulation_market_impact", c.map(|_| false));
    // The evaluated window (`--trade-from`, `--until`), ns since the Unix epoch as in JSON.
    let window = c.map(|c| c.window);
    let from = window.and_then(|w| w.trade_from_ns);
    row.u64("simulation_window_trade_from_ns", from);
    row.u64(
        "simulation_window_until_ns",
        window.and_then(|w| w.until_ns),
    );
}

/// `versus_live`: a replayed live session against its backtest (null but for a replay).
fn versus_columns(row: &mut Row, shape: &Shape, v: Option<&VersusLive>) {
    let p = "versus_live_";
    row.count(
        format!("{p}decisions_compared"),
        v.map(|v| v.decisions_compared),
    );
    row.flag(format!("{p}decisions_equal"), v.map(|v| v.decisions_equal));
    let first = v.and_then(|v| v.first_decision_difference.as_ref());
    let live = first.map(|(live, _)| live.as_str());
    row.text(format!("{p}first_decision_difference_live"), live);
    let backtest = first.map(|(_, backtest)| backtest.as_str());
    row.text(format!("{p}first_decision_difference_backtest"), backtest);
    let fill = v.and_then(|v| v.first_fill_difference);
    row.count(format!("{p}first_fill_difference"), fill);
    let t = v.and_then(|v| v.first_fill_difference_t_ns);
    row.time(format!("{p}first_fill_difference_t_ns"), t);
    let tolerance = v.map(|v| v.fill_time_tolerance_ns);
    row.u64(format!("{p}fill_time_tolerance_ns"), tolerance);
    side_columns(row, shape, &format!("{p}live_"), v.map(|v| &v.live));
    side_columns(row, shape, &format!("{p}backtest_"), v.map(|v| &v.backtest));
    row.flag(format!("{p}truncated"), v.map(|v| v.truncated));
}

fn side_columns(row: &mut Row, shape: &Shape, p: &str, side: Option<&SideFigures>) {
    row.count(format!("{p}decisions"), side.map(|s| s.decisions));
    row.count(format!("{p}fills"), side.map(|s| s.fills));
    let maps = side.map(|s| {
        [
            &s.filled_base,
            &s.position_base,
            &s.pnl_quote,
            &s.turnover_quote,
        ]
    });
    for (at, name) in [
        "filled_base",
        "position_base",
        "pnl_quote",
        "turnover_quote",
    ]
    .into_iter()
    .enumerate()
    {
        for symbol in &shape.symbols {
            let v = maps.and_then(|m| m[at].get(symbol).copied());
            row.f64(format!("{p}{name}_{}", name_part(symbol)), v);
        }
    }
}
