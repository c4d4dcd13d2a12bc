//! The finished run as the `--json` summary and the report's data.

use crate::report::{Curve, InstrumentReport, ReportData};

use super::numbers::{duration, grouped, people, people_or_na, percent, span, utc};
use super::summary::{
    EquitySummary, InstrumentSummary, OrderCounts, Summary, TotalMarkout, Totals,
};
use super::{Equity, Results};

/// Seconds in a year of trading every day.
const YEAR_S: f64 = 365.0 * 86_400.0;

pub(super) fn build(results: Results, end: u64) -> (Summary, ReportData) {
    let summary = summary(&results, end);
    let report = report(results, &summary);
    (summary, report)
}

fn summary(results: &Results, end: u64) -> Summary {
    let instruments: Vec<InstrumentSummary> =
        results.instruments.iter().map(|s| s.summary()).collect();
    let mut orders = OrderCounts::default();
    for s in &instruments {
        orders.new += s.orders.new;
        orders.cancel += s.orders.cancel;
        orders.replace += s.orders.replace;
    }
    let orders_filled = instruments.iter().map(|s| s.orders_filled).sum();
    let placed = orders.new + orders.replace;
    let (totals, totals_absent_reason) = match totals(results) {
        Ok(totals) => (Some(totals), None),
        Err(reason) => (None, Some(reason)),
    };
    Summary {
        start_t_ns: results.start_ns,
        end_t_ns: end,
        messages: results.messages,
        orders,
        orders_filled,
        fill_ratio: (placed > 0).then(|| orders_filled as f64 / placed as f64),
        fills: instruments.iter().map(|s| s.fills).sum(),
        fills_maker: instruments.iter().map(|s| s.fills_maker).sum(),
        rejects: results
            .rejects
            .iter()
            .map(|(&reason, &n)| (reason.to_string(), n))
            .collect(),
        events_ignored: results.events_ignored,
        events_out_of_order: results.events_out_of_order,
        instruments,
        totals,
        totals_absent_reason,
        equity: equity_summary(results.equity.as_ref().ok(), results),
        latency: results.latency.summary(),
    }
}

fn totals(results: &Results) -> Result<Totals, String> {
    let equity = results.equity.as_ref().map_err(Clone::clone)?;
    let common = &equity.common;
    let overflow = || "the totals overflowed 128 bits".to_string();
    let mut sums = [0i128; 4];
    let horizons = results.config.markout_horizons_ns.len();
    let mut markouts = vec![(0u64, 0i128); horizons];
    for (i, state) in results.instruments.iter().enumerate() {
        for (sum, amount) in sums.iter_mut().zip(state.fee_unit_amounts()) {
            *sum = common
                .of_fee_units(i, amount)
                .and_then(|a| sum.checked_add(a))
                .ok_or_else(overflow)?;
        }
        for (total, (fills, amount)) in markouts.iter_mut().zip(state.markout_fee_units()) {
            total.0 += fills;
            total.1 = common
                .of_fee_units(i, amount)
                .and_then(|a| total.1.checked_add(a))
                .ok_or_else(overflow)?;
        }
    }
    let quote = |v: i128| common.unit.to_f64(v);
    Ok(Totals {
        quote_asset: common.quote_asset.clone(),
        turnover_quote: quote(sums[0]),
        fees_quote: quote(sums[1]),
        gross_pnl_quote: quote(sums[2]),
        net_pnl_quote: quote(sums[3]),
        markouts: results
            .config
            .markout_horizons_ns
            .iter()
            .zip(markouts)
            .map(|(&horizon_ns, (fills_marked, total))| TotalMarkout {
                horizon_ns,
                fills_marked,
                total_quote: quote(total),
            })
            .collect(),
    })
}

fn equity_summary(equity: Option<&Equity>, results: &Results) -> EquitySummary {
    let interval_ns = results.config.sample_interval_ns;
    let interval_s = interval_ns as f64 / 1e9;
    let annual = (YEAR_S / interval_s).sqrt();
    let returns = equity.map(|e| e.returns).unwrap_or_default();
    let sharpe = equity.and_then(|e| e.returns.sharpe());
    let sortino = equity.and_then(|e| e.returns.sortino());
    let fell = equity.map(|e| e.drawdown).filter(|d| d.max > 0);
    EquitySummary {
        sample_interval_ns: interval_ns,
        sharpe_interval_s: interval_s,
        intervals: returns.n,
        sharpe,
        sharpe_annualised: sharpe.map(|s| s * annual),
        sortino,
        sortino_annualised: sortino.map(|s| s * annual),
        max_drawdown_quote: equity.map(|e| e.common.unit.to_f64(e.drawdown.max)),
        max_drawdown_peak_t_ns: fell.map(|d| d.max_peak_t_ns),
        max_drawdown_trough_t_ns: fell.map(|d| d.max_trough_t_ns),
    }
}

fn report(results: Results, summary: &Summary) -> ReportData {
    let title = results.config.title.clone().unwrap_or_else(|| {
        let symbols: Vec<&str> = results
            .instruments
            .iter()
            .map(|s| s.symbol.as_str())
            .collect();
        match symbols.is_empty() {
            true => "levibot-backtest".to_string(),
            false => symbols.join(", "),
        }
    });
    let quote = summary
        .totals
        .as_ref()
        .map(|t| t.quote_asset.clone())
        .unwrap_or_default();
    let latency_us = results.latency.buckets_us();
    let Results {
        instruments,
        equity,
        mid_curves,
        position_curves,
        ..
    } = results;
    let (equity_points, drawdown_points) = match equity {
        Ok(e) => (e.curve.points, e.drawdown_curve.points),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let instruments = instruments
        .into_iter()
        .zip(mid_curves.into_iter().zip(position_curves))
        .map(|(state, (mid, position))| {
            let last = state.last_fill();
            InstrumentReport {
                mid: Curve {
                    name: format!("{} mid", state.symbol),
                    unit: state.quote_asset.clone(),
                    points: mid.points,
                },
                position: Curve {
                    name: format!("{} position", state.symbol),
                    unit: state.base_asset.clone(),
                    points: position.points,
                },
                symbol: state.symbol,
                fills: state.fills_drawn.finish(last),
            }
        })
        .collect();
    ReportData {
        title,
        summary: rows(summary),
        equity: Curve {
            name: "equity".to_string(),
            unit: quote.clone(),
            points: equity_points,
        },
        drawdown: Curve {
            name: "drawdown".to_string(),
            unit: quote,
            points: drawdown_points,
        },
        instruments,
        latency_us,
    }
}

/// The summary table, for people.
fn rows(s: &Summary) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |label: String, value: String| rows.push((label, value));
    if let Some(start) = s.start_t_ns {
        row("Start".into(), utc(start));
        row("End".into(), utc(s.end_t_ns));
        row(
            "Duration".into(),
            duration(s.end_t_ns.saturating_sub(start)),
        );
    }
    row("Market messages".into(), grouped(s.messages));
    row(
        "Orders new / cancel / replace".into(),
        format!(
            "{} / {} / {}",
            grouped(s.orders.new),
            grouped(s.orders.cancel),
            grouped(s.orders.replace)
        ),
    );
    row(
        "Fills (maker)".into(),
        format!("{} ({})", grouped(s.fills), grouped(s.fills_maker)),
    );
    row("Fill ratio".into(), percent(s.fill_ratio));
    let rejected: u64 = s.rejects.values().sum();
    let reasons: Vec<String> = s
        .rejects
        .iter()
        .map(|(reason, n)| format!("{reason} {}", grouped(*n)))
        .collect();
    row(
        "Rejects".into(),
        match reasons.is_empty() {
            true => "0".into(),
            false => format!("{} ({})", grouped(rejected), reasons.join(", ")),
        },
    );
    if s.events_ignored + s.events_out_of_order > 0 {
        row(
            "Events ignored / out of order".into(),
            format!(
                "{} / {}",
                grouped(s.events_ignored),
                grouped(s.events_out_of_order)
            ),
        );
    }
    match (&s.totals, &s.totals_absent_reason) {
        (Some(t), _) => {
            let q = &t.quote_asset;
            row(format!("Net PnL ({q})"), people(t.net_pnl_quote));
            row(format!("Gross PnL ({q})"), people(t.gross_pnl_quote));
            row(format!("Fees ({q})"), people(t.fees_quote));
            row(format!("Turnover ({q})"), people(t.turnover_quote));
        }
        (None, reason) => row(
            "Totals".into(),
            format!("none: {}", reason.as_deref().unwrap_or("unknown")),
        ),
    }
    let e = &s.equity;
    let every = span(e.sample_interval_ns);
    row(
        format!("Sharpe, annualised (per {every})"),
        format!(
            "{} ({})",
            people_or_na(e.sharpe_annualised),
            people_or_na(e.sharpe)
        ),
    );
    row(
        format!("Sortino, annualised (per {every})"),
        format!(
            "{} ({})",
            people_or_na(e.sortino_annualised),
            people_or_na(e.sortino)
        ),
    );
    if let (Some(dd), Some(t)) = (e.max_drawdown_quote, &s.totals) {
        let when = match (e.max_drawdown_peak_t_ns, e.max_drawdown_trough_t_ns) {
            (Some(peak), Some(trough)) => format!(", {} to {}", utc(peak), utc(trough)),
            _ => String::new(),
        };
        row(
            format!("Max drawdown ({})", t.quote_asset),
            format!("{}{when}", people(dd)),
        );
    }
    for i in &s.instruments {
        let (sym, base, q) = (&i.symbol, &i.base_asset, &i.quote_asset);
        row(format!("{sym} position ({base})"), people(i.position_base));
        row(format!("{sym} traded ({base})"), people(i.traded_base));
        row(format!("{sym} net PnL ({q})"), people(i.net_pnl_quote));
        row(format!("{sym} fees ({q})"), people(i.fees_quote));
        row(format!("{sym} maker share"), percent(i.maker_share));
        row(format!("{sym} fill ratio"), percent(i.fill_ratio));
        for m in &i.markouts {
            row(
                format!("{sym} markout {} (bps; {q})", span(m.horizon_ns)),
                format!(
                    "{}; {} over {} fills ({} past the end)",
                    people_or_na(m.mean_bps),
                    people(m.total_quote),
                    grouped(m.fills_marked),
                    grouped(m.fills_past_end)
                ),
            );
        }
        let a = &i.queue_ahead;
        if a.maker_fills > 0 {
            row(
                format!("{sym} queue ahead at maker fill ({base})"),
                format!(
                    "mean {}, p50 {}, p90 {}",
                    people_or_na(a.mean_base),
                    people_or_na(a.p50_base),
                    people_or_na(a.p90_base)
                ),
            );
        }
    }
    for (kind, l) in [
        ("new", &s.latency.new),
        ("cancel", &s.latency.cancel),
        ("replace", &s.latency.replace),
    ] {
        if l.count > 0 {
            row(
                format!("Order latency, {kind} (µs)"),
                format!(
                    "p50 {}, p90 {}, p99 {}, max {} (n = {})",
                    people_or_na(l.p50_us),
                    people_or_na(l.p90_us),
                    people_or_na(l.p99_us),
                    people_or_na(l.max_us),
                    grouped(l.count)
                ),
            );
        }
    }
    rows
}
