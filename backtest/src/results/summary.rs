//! The `--json` summary: what a run did, in a stable field order, units in the names.
//!
//! Amounts are the exact integer sums of the run converted once to the nearest `f64` (so a
//! decimal of up to 15 significant digits prints as itself). Quote amounts are in the
//! instrument's quote asset, base amounts in its base asset, prices in quote per base. `null`
//! means "not defined for this run" (no sample, no spread, no fill ...), never zero.

use std::collections::BTreeMap;

use serde::Serialize;

/// Order requests that reached the venue, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrderCounts {
    pub new: u64,
    pub cancel: u64,
    pub replace: u64,
}

/// Everything the run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Venue time of the first event, ns since the Unix epoch (`null`: no event).
    pub start_t_ns: Option<u64>,
    /// The end of the run as the caller gave it (at least the last event's time).
    pub end_t_ns: u64,
    /// Market messages replayed.
    pub messages: u64,
    pub orders: OrderCounts,
    /// Orders filled at least in part (each order's first fill).
    pub orders_filled: u64,
    /// `orders_filled / (orders.new + orders.replace)` (a replace places a new order);
    /// `null` when no order was placed.
    pub fill_ratio: Option<f64>,
    pub fills: u64,
    pub fills_maker: u64,
    /// Requests refused, by reason (the venue's, or `risk.<check>`).
    pub rejects: BTreeMap<String, u64>,
    /// Events not counted: of an instrument not in the run, or a fill of an unknown side.
    pub events_ignored: u64,
    /// Events earlier than one before them (taken as happening at the later time).
    pub events_out_of_order: u64,
    /// One per instrument of the run, in the order given.
    pub instruments: Vec<InstrumentSummary>,
    /// Sums over the instruments when they all share a quote asset; else `null`.
    pub totals: Option<Totals>,
    /// Why `totals` (and the equity statistics) are `null`, else `null`.
    pub totals_absent_reason: Option<String>,
    pub equity: EquitySummary,
    /// Order round trips as the engine saw them (local time from request sent to first
    /// answer).
    pub latency: LatencySummary,
}

/// One instrument's trading.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstrumentSummary {
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub orders: OrderCounts,
    /// Orders of this instrument filled at least in part.
    pub orders_filled: u64,
    /// `orders_filled / (orders.new + orders.replace)`; `null` when none was placed.
    pub fill_ratio: Option<f64>,
    pub fills: u64,
    pub fills_maker: u64,
    /// Position at the end (bought - sold), base asset.
    pub position_base: f64,
    pub bought_base: f64,
    pub sold_base: f64,
    /// `bought_base + sold_base`.
    pub traded_base: f64,
    /// Maker fills' quantity over all fills' quantity; `null` without fills.
    pub maker_share: Option<f64>,
    /// Sum of `price x quantity` of the fills, quote asset.
    pub turnover_quote: f64,
    /// Fees paid, quote asset (negative: rebates received exceed fees paid).
    pub fees_quote: f64,
    /// Mark-to-market before fees: cash from the fills (sells - buys) plus the position at
    /// the last mid (at the last fill's price while no mid was seen), quote asset.
    pub gross_pnl_quote: f64,
    /// `gross_pnl_quote - fees_quote`.
    pub net_pnl_quote: f64,
    /// The last mid, quote per base (`null`: no mid was seen).
    pub last_mid_px: Option<f64>,
    pub queue_ahead: QueueAheadSummary,
    /// One per horizon, shortest first.
    pub markouts: Vec<MarkoutSummary>,
    /// Fills left out of the markouts because too many were waiting for their horizons.
    pub markout_fills_dropped: u64,
}

/// Market quantity ahead of our order in its level's queue when it filled, over maker fills.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueAheadSummary {
    pub maker_fills: u64,
    /// Exact mean, base asset (`null` without maker fills).
    pub mean_base: Option<f64>,
    /// Percentiles to 3 significant digits (the upper end of the histogram's bucket, within
    /// the exact least and greatest), base asset.
    pub p50_base: Option<f64>,
    pub p90_base: Option<f64>,
}

/// How the mid moved after our fills: for a fill at `t`, the instrument's mid at `t +
/// horizon` (the last mid at or before then) minus the fill price, `+` for a buy and `-` for a
/// sell (positive: the market moved our way).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarkoutSummary {
    pub horizon_ns: u64,
    /// Fills marked (their horizon passed within the run and a mid was known).
    pub fills_marked: u64,
    pub qty_marked_base: f64,
    /// Quantity-weighted mean of each fill's markout in basis points of its price (`null`:
    /// no fill marked).
    pub mean_bps: Option<f64>,
    /// Sum of `markout x quantity`, quote asset.
    pub total_quote: f64,
    /// Fills whose horizon ends after the run (not marked).
    pub fills_past_end: u64,
    /// Fills with no mid of their instrument at or before their horizon (not marked).
    pub fills_without_mid: u64,
}

/// The instruments' sums, in their shared quote asset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    pub quote_asset: String,
    pub turnover_quote: f64,
    pub fees_quote: f64,
    pub gross_pnl_quote: f64,
    pub net_pnl_quote: f64,
    /// One per horizon, shortest first.
    pub markouts: Vec<TotalMarkout>,
}

/// A horizon's markouts over all instruments.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TotalMarkout {
    pub horizon_ns: u64,
    pub fills_marked: u64,
    pub total_quote: f64,
}

/// Equity: the net PnL of all instruments in their shared quote asset, 0 at the start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EquitySummary {
    /// The grid equity is sampled on: `floor(start / interval) x interval + k x interval`,
    /// each sample the equity after every event at or before its time.
    pub sample_interval_ns: u64,
    /// The same interval in seconds: the period of the unannualised ratios.
    pub sharpe_interval_s: f64,
    /// Per-interval equity changes the ratios are computed over (samples - 1); the last,
    /// partial interval before the end is not one.
    pub intervals: u64,
    /// Mean over sample standard deviation (n - 1) of the per-interval changes; `null` with
    /// fewer than 2 intervals, no spread, or no equity (see `totals_absent_reason`).
    pub sharpe: Option<f64>,
    /// `sharpe x sqrt(365 x 86,400 s / sharpe_interval_s)` (crypto trades all year).
    pub sharpe_annualised: Option<f64>,
    /// Mean over the downside deviation `sqrt(mean(min(change, 0)^2))`; `null` with fewer
    /// than 2 intervals or no losing interval.
    pub sortino: Option<f64>,
    pub sortino_annualised: Option<f64>,
    /// Largest fall of equity from a running peak (the start counts as a peak of 0), over
    /// every change of equity rather than the samples, quote asset (0: it never fell).
    pub max_drawdown_quote: Option<f64>,
    /// When the fall started (its peak) and ended (its trough), ns since the Unix epoch
    /// (`null` when equity never fell).
    pub max_drawdown_peak_t_ns: Option<u64>,
    pub max_drawdown_trough_t_ns: Option<u64>,
}

/// Round trips per request kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    pub new: LatencyStats,
    pub cancel: LatencyStats,
    pub replace: LatencyStats,
}

/// One kind's round trips, µs; percentiles to 3 significant digits (the upper end of the
/// histogram's bucket, within the exact least and greatest), mean and max exact; `null`
/// without a round trip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub mean_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
}
