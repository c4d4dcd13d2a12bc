//! A backtest of a live journal, checked against what happened live: the order decisions
//! (instrument, kind, side, price, quantity, in order) must be the same up to the first fill
//! that differs, since until then both engines saw the same market and the same answers; after
//! it, the fills and the PnL drift apart, and how far is reported.
//!
//! A fill differs when its instrument, side, price or quantity differs, or its report arrived
//! at another time (more than [`FILL_TIME_TOLERANCE_NS`], which is 0): a report that arrives a
//! little earlier or later can change what the strategy does at the next market event, so from
//! then on the strategies may have seen different answers. PnL of both is marked at the same price (the live journal's last book
//! ticker mid of each instrument), so the difference is the fills' alone.

use std::collections::BTreeMap;
use std::path::Path;

use levibot_shm::records::{
    BookTicker, ExecutionReport, InstrumentDef, Record, SentOrder, exec_type, order_kind, side,
};
use levibot_shm::{ShmError, StartAt, Tailer};
use serde::Serialize;

/// How far apart in time two fills may be and still be the same fill, ns: none (a fill
/// reported 0.3 ms later than live reordered the maker's next two replaces in a test run).
pub const FILL_TIME_TOLERANCE_NS: u64 = 0;
/// Decisions and fills read from one journal at most (a bound on memory; a longer journal is
/// compared on its beginning, and says so).
pub const TRADES_READ_MAX: usize = 1 << 20;

/// One order decision: what was sent, when.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Decision {
    t_ns: u64,
    symbol: String,
    kind: u8,
    side: u8,
    px: i64,
    qty: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Fill {
    t_ns: u64,
    symbol: String,
    side: u8,
    px: i64,
    qty: i64,
}

/// What one journal did.
#[derive(Debug, Default)]
struct Trades {
    decisions: Vec<Decision>,
    fills: Vec<Fill>,
    /// Per symbol: price and quantity units, last mid (price units).
    units: BTreeMap<String, (f64, f64)>,
    last_mid: BTreeMap<String, f64>,
    truncated: bool,
}

fn read(dir: &Path) -> Result<Trades, ShmError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let mut t = Trades::default();
    let mut symbols: Vec<Option<String>> = Vec::new();
    loop {
        let calibration = tailer.calibration();
        let polled = tailer.poll(4096, |frame| {
            let symbol_of = |id: u32| symbols.get(id as usize).cloned().flatten();
            match frame.record_type {
                InstrumentDef::RECORD_TYPE => {
                    if let Some(def) = InstrumentDef::from_bytes(frame.payload)
                        && let Some(symbol) = def.symbol()
                        && def.instrument_id < 1 << 16
                    {
                        let id = def.instrument_id as usize;
                        if symbols.len() <= id {
                            symbols.resize(id + 1, None);
                        }
                        symbols[id] = Some(symbol.to_owned());
                        let unit = |m: u64, e: u8| m as f64 / 10f64.powi(i32::from(e));
                        t.units.insert(
                            symbol.to_owned(),
                            (
                                unit(def.price_mantissa, def.price_exp),
                                unit(def.qty_mantissa, def.qty_exp),
                            ),
                        );
                    }
                }
                SentOrder::RECORD_TYPE => {
                    let Some(sent) = SentOrder::from_bytes(frame.payload) else {
                        return;
                    };
                    let r = sent.request;
                    if !matches!(
                        r.kind,
                        order_kind::NEW | order_kind::CANCEL | order_kind::REPLACE
                    ) {
                        return;
                    }
                    if t.decisions.len() >= TRADES_READ_MAX {
                        t.truncated = true;
                        return;
                    }
                    if let Some(symbol) = symbol_of(r.instrument_id) {
                        t.decisions.push(Decision {
                            t_ns: calibration.to_unix_ns(sent.encoded_tsc),
                            symbol,
                            kind: r.kind,
                            side: r.side,
                            px: r.px,
                            qty: r.qty,
                        });
                    }
                }
                ExecutionReport::RECORD_TYPE => {
                    let Some(report) = ExecutionReport::from_bytes(frame.payload) else {
                        return;
                    };
                    if report.exec_type != exec_type::TRADE || t.fills.len() >= TRADES_READ_MAX {
                        return;
                    }
                    if let Some(symbol) = symbol_of(report.instrument_id) {
                        t.fills.push(Fill {
                            t_ns: calibration.to_unix_ns(report.recv_tsc),
                            symbol,
                            side: report.side,
                            px: report.last_px,
                            qty: report.last_qty,
                        });
                    }
                }
                BookTicker::RECORD_TYPE => {
                    if let Some(tick) = BookTicker::from_bytes(frame.payload)
                        && let Some(symbol) = symbol_of(tick.instrument_id)
                        && tick.bid_px > 0
                        && tick.ask_px > 0
                    {
                        t.last_mid
                            .insert(symbol, (tick.bid_px as f64 + tick.ask_px as f64) / 2.0);
                    }
                }
                _ => {}
            }
        })?;
        if polled.frames == 0 && polled.writer_restart.is_none() {
            break;
        }
    }
    Ok(t)
}

/// One side's fills and PnL.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SideFigures {
    pub decisions: usize,
    pub fills: usize,
    /// Per symbol: filled quantity (base asset), net position, PnL (quote asset, fees apart)
    /// marked at the live journal's last mid.
    pub filled_base: BTreeMap<String, f64>,
    pub position_base: BTreeMap<String, f64>,
    pub pnl_quote: BTreeMap<String, f64>,
    /// Per symbol: the quote value of every fill, added up.
    pub turnover_quote: BTreeMap<String, f64>,
}

/// The comparison of a live journal and its backtest.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VersusLive {
    /// Decisions compared: those either side made before the first fill that differs.
    pub decisions_compared: usize,
    /// Whether those were the same, in the same order.
    pub decisions_equal: bool,
    /// The first that was not, live then backtest, as text.
    pub first_decision_difference: Option<(String, String)>,
    /// Index (in fill order) and time of the first fill that differs (`None`: none did).
    pub first_fill_difference: Option<usize>,
    pub first_fill_difference_t_ns: Option<u64>,
    pub fill_time_tolerance_ns: u64,
    pub live: SideFigures,
    pub backtest: SideFigures,
    /// A journal longer than `TRADES_READ_MAX` decisions or fills, compared on its beginning.
    pub truncated: bool,
}

fn describe(d: &Decision) -> String {
    let kind = match d.kind {
        order_kind::NEW => "new",
        order_kind::CANCEL => "cancel",
        _ => "replace",
    };
    let side = if d.side == side::BUY { "buy" } else { "sell" };
    format!("{} {kind} {side} {} @ {} units", d.symbol, d.qty, d.px)
}

fn figures(
    t: &Trades,
    marks: &BTreeMap<String, f64>,
    units: &BTreeMap<String, (f64, f64)>,
) -> SideFigures {
    let mut f = SideFigures {
        decisions: t.decisions.len(),
        fills: t.fills.len(),
        ..SideFigures::default()
    };
    let mut cash: BTreeMap<String, f64> = BTreeMap::new();
    for fill in &t.fills {
        let (px_unit, qty_unit) = units.get(&fill.symbol).copied().unwrap_or((1.0, 1.0));
        let qty = fill.qty as f64 * qty_unit;
        let signed = if fill.side == side::BUY { qty } else { -qty };
        *f.filled_base.entry(fill.symbol.clone()).or_default() += qty;
        *f.position_base.entry(fill.symbol.clone()).or_default() += signed;
        *cash.entry(fill.symbol.clone()).or_default() -= signed * fill.px as f64 * px_unit;
        *f.turnover_quote.entry(fill.symbol.clone()).or_default() += qty * fill.px as f64 * px_unit;
    }
    for (symbol, c) in cash {
        let (px_unit, _) = units.get(&symbol).copied().unwrap_or((1.0, 1.0));
        let mark = marks.get(&symbol).copied().unwrap_or(0.0) * px_unit;
        let position = f.position_base.get(&symbol).copied().unwrap_or(0.0);
        f.pnl_quote.insert(symbol, c + position * mark);
    }
    f
}

/// Compares the journal of a live session with the journal of its backtest.
pub fn versus_live(live_dir: &Path, backtest_dir: &Path) -> Result<VersusLive, ShmError> {
    let live = read(live_dir)?;
    let backtest = read(backtest_dir)?;
    let same_fill = |a: &Fill, b: &Fill| {
        (&a.symbol, a.side, a.px, a.qty) == (&b.symbol, b.side, b.px, b.qty)
            // FILL_TIME_TOLERANCE_NS is 0: the same time, to the nanosecond.
            && a.t_ns == b.t_ns
    };
    let first_fill_difference = (0..live.fills.len().max(backtest.fills.len())).find(|&i| {
        match (live.fills.get(i), backtest.fills.get(i)) {
            (Some(a), Some(b)) => !same_fill(a, b),
            _ => true,
        }
    });
    // From the earlier of the two differing fills on, the strategies saw different answers.
    let cut_ns = first_fill_difference.map(|i| {
        let at = |fills: &[Fill]| fills.get(i).map_or(u64::MAX, |f| f.t_ns);
        at(&live.fills).min(at(&backtest.fills))
    });
    let before = |d: &&Decision| cut_ns.is_none_or(|cut| d.t_ns < cut);
    let live_decisions: Vec<&Decision> = live.decisions.iter().filter(before).collect();
    let backtest_decisions: Vec<&Decision> = backtest.decisions.iter().filter(before).collect();
    let key = |d: &Decision| (d.symbol.clone(), d.kind, d.side, d.px, d.qty);
    let mismatch = (0..live_decisions.len().max(backtest_decisions.len())).find(|&i| {
        match (live_decisions.get(i), backtest_decisions.get(i)) {
            (Some(a), Some(b)) => key(a) != key(b),
            _ => true,
        }
    });
    let show = |d: Option<&&Decision>| d.map_or_else(|| "(none)".to_owned(), |d| describe(d));
    Ok(VersusLive {
        decisions_compared: live_decisions.len().max(backtest_decisions.len()),
        decisions_equal: mismatch.is_none(),
        first_decision_difference: mismatch
            .map(|i| (show(live_decisions.get(i)), show(backtest_decisions.get(i)))),
        first_fill_difference,
        first_fill_difference_t_ns: cut_ns,
        fill_time_tolerance_ns: FILL_TIME_TOLERANCE_NS,
        live: figures(&live, &live.last_mid, &live.units),
        backtest: figures(&backtest, &live.last_mid, &live.units),
        truncated: live.truncated || backtest.truncated,
    })
}
