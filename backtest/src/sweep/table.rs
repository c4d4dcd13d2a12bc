//! The sweep's results table: one row per point, the same columns for every row (a point that
//! failed has its error and empty figures).
//!
//! Columns, in this order:
//!
//! - `index`, then one column per swept key (named as given to `--set`, holding the point's
//!   value as given), then `status` (`ok` or `failed`) and `error` (why it failed, one line).
//! - The whole run: `messages`, `orders_new`, `orders_cancel`, `orders_replace`,
//!   `orders_filled`, `fill_ratio`, `fills`, `fills_maker`, `rejects` (every reason together;
//!   `sweep.jsonl` has them by reason).
//! - Money over all instruments, in their shared quote asset (`quote_asset`; all empty when the
//!   instruments' quote assets differ): `gross_pnl_quote`, `fees_quote`, `net_pnl_quote`,
//!   `turnover_quote`, `markout_<horizon>_quote` for each horizon (`100ms`, `1s`, `10s`).
//! - The equity's `sharpe`, `sharpe_annualised`, `sortino`, `sortino_annualised`,
//!   `max_drawdown_quote`.
//! - Round trips: `latency_new_p50_us`, `latency_cancel_p50_us`, `latency_replace_p50_us`.
//! - Per instrument (every symbol of the grid's configs, in the order they first come: the
//!   base config's, unless a symbol is swept), `<SYMBOL>.` then `position_base`,
//!   `fills`, `maker_share`, `turnover_quote`, `fees_quote`, `net_pnl_quote` and
//!   `markout_<horizon>_bps` (what only an instrument can say: quantities in its base asset,
//!   shares and basis points of its own fills).
//!
//! Numbers are written as Rust prints them (the shortest text that reads back as the same
//! `f64`); a figure the summary gives as `null` (not defined for the run) is an empty cell.

use serde_json::{Map, Value};

use crate::results::Summary;

/// The table's columns for one sweep.
pub struct Columns {
    /// The swept keys, in `--set` order.
    pub keys: Vec<String>,
    /// The symbols of the per-instrument columns.
    pub symbols: Vec<String>,
    /// The markout horizons, ns, shortest first.
    pub horizons_ns: Vec<u64>,
}

/// A horizon as a column names it: `100ms`, `1s`, `250us`.
pub fn horizon_label(ns: u64) -> String {
    match ns {
        0 => "0s".to_owned(),
        ns if ns % 1_000_000_000 == 0 => format!("{}s", ns / 1_000_000_000),
        ns if ns % 1_000_000 == 0 => format!("{}ms", ns / 1_000_000),
        ns if ns % 1_000 == 0 => format!("{}us", ns / 1_000),
        ns => format!("{ns}ns"),
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn int(n: u64) -> String {
    n.to_string()
}

fn num(x: f64) -> String {
    x.to_string()
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// An error on one line.
pub fn one_line(error: &str) -> String {
    error.lines().map(str::trim).collect::<Vec<_>>().join("; ")
}

const WHOLE_RUN: [&str; 10] = [
    "messages",
    "orders_new",
    "orders_cancel",
    "orders_replace",
    "orders_filled",
    "fill_ratio",
    "fills",
    "fills_maker",
    "rejects",
    "quote_asset",
];
const MONEY: [&str; 4] = [
    "gross_pnl_quote",
    "fees_quote",
    "net_pnl_quote",
    "turnover_quote",
];
const EQUITY: [&str; 8] = [
    "sharpe",
    "sharpe_annualised",
    "sortino",
    "sortino_annualised",
    "max_drawdown_quote",
    "latency_new_p50_us",
    "latency_cancel_p50_us",
    "latency_replace_p50_us",
];
const EACH: [&str; 6] = [
    "position_base",
    "fills",
    "maker_share",
    "turnover_quote",
    "fees_quote",
    "net_pnl_quote",
];

impl Columns {
    /// The header's names.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec!["index".to_owned()];
        names.extend(self.keys.iter().cloned());
        names.extend(["status".to_owned(), "error".to_owned()]);
        names.extend(WHOLE_RUN.iter().map(|s| s.to_string()));
        names.extend(MONEY.iter().map(|s| s.to_string()));
        for &h in &self.horizons_ns {
            names.push(format!("markout_{}_quote", horizon_label(h)));
        }
        names.extend(EQUITY.iter().map(|s| s.to_string()));
        for symbol in &self.symbols {
            names.extend(EACH.iter().map(|c| format!("{symbol}.{c}")));
            for &h in &self.horizons_ns {
                names.push(format!("{symbol}.markout_{}_bps", horizon_label(h)));
            }
        }
        names
    }

    /// The header line (with its newline).
    pub fn header(&self) -> String {
        let names: Vec<String> = self.names().iter().map(|n| field(n)).collect();
        format!("{}\n", names.join(","))
    }

    /// The figures of a run that gave `summary`, one cell per column after `error`.
    fn figures(&self, s: &Summary) -> Vec<String> {
        let rejects: u64 = s.rejects.values().sum();
        let mut cells = vec![
            int(s.messages),
            int(s.orders.new),
            int(s.orders.cancel),
            int(s.orders.replace),
            int(s.orders_filled),
            opt(s.fill_ratio),
            int(s.fills),
            int(s.fills_maker),
            int(rejects),
        ];
        match &s.totals {
            Some(t) => {
                cells.push(t.quote_asset.clone());
                cells.extend(
                    [
                        t.gross_pnl_quote,
                        t.fees_quote,
                        t.net_pnl_quote,
                        t.turnover_quote,
                    ]
                    .map(num),
                );
                for h in &self.horizons_ns {
                    let m = t.markouts.iter().find(|m| m.horizon_ns == *h);
                    cells.push(opt(m.map(|m| m.total_quote)));
                }
            }
            None => cells.extend(std::iter::repeat_n(
                String::new(),
                1 + MONEY.len() + self.horizons_ns.len(),
            )),
        }
        let e = &s.equity;
        let l = &s.latency;
        cells.extend(
            [
                e.sharpe,
                e.sharpe_annualised,
                e.sortino,
                e.sortino_annualised,
                e.max_drawdown_quote,
                l.new.p50_us,
                l.cancel.p50_us,
                l.replace.p50_us,
            ]
            .map(opt),
        );
        for symbol in &self.symbols {
            match s.instruments.iter().find(|i| &i.symbol == symbol) {
                Some(i) => {
                    cells.extend([
                        num(i.position_base),
                        int(i.fills),
                        opt(i.maker_share),
                        num(i.turnover_quote),
                        num(i.fees_quote),
                        num(i.net_pnl_quote),
                    ]);
                    for h in &self.horizons_ns {
                        let m = i.markouts.iter().find(|m| m.horizon_ns == *h);
                        cells.push(opt(m.and_then(|m| m.mean_bps)));
                    }
                }
                None => cells.extend(std::iter::repeat_n(
                    String::new(),
                    EACH.len() + self.horizons_ns.len(),
                )),
            }
        }
        cells
    }

    /// One row (with its newline): `values` are the point's, one per key; `result` its summary
    /// or its error.
    pub fn row(&self, index: usize, values: &[&str], result: Result<&Summary, &str>) -> String {
        let mut cells = vec![index.to_string()];
        cells.extend(values.iter().map(|v| v.to_string()));
        match result {
            Ok(summary) => {
                cells.extend(["ok".to_owned(), String::new()]);
                cells.extend(self.figures(summary));
            }
            Err(error) => {
                cells.extend(["failed".to_owned(), one_line(error)]);
                let figures = self.names().len() - cells.len();
                cells.extend(std::iter::repeat_n(String::new(), figures));
            }
        }
        debug_assert_eq!(cells.len(), self.names().len());
        let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
        format!("{}\n", cells.join(","))
    }

    /// One JSON line (with its newline): `index`, `settings` (key: value as given), `error`
    /// (`null` when it ran), and `summary`, the run's whole `--json` object (`null` when it
    /// failed), in this order.
    pub fn json_line(&self, index: usize, values: &[&str], result: Result<Value, &str>) -> String {
        let settings: Map<String, Value> = self
            .keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        let (error, summary) = match result {
            Ok(summary) => (Value::Null, summary),
            Err(e) => (Value::String(one_line(e)), Value::Null),
        };
        // Written field by field to keep `index` first (a JSON object's keys are otherwise
        // sorted): shards' lines merge with `sort -t: -k2,2n`.
        format!(
            "{{\"index\":{index},\"settings\":{},\"error\":{error},\"summary\":{summary}}}\n",
            Value::Object(settings)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_are_named_in_their_largest_whole_unit() {
        let labels: Vec<String> = [100_000_000, 1_000_000_000, 10_000_000_000, 250_000, 7, 0]
            .into_iter()
            .map(horizon_label)
            .collect();
        assert_eq!(labels, ["100ms", "1s", "10s", "250us", "7ns", "0s"]);
    }

    #[test]
    fn a_failed_point_fills_every_column_and_quotes_its_error() {
        let columns = Columns {
            keys: vec!["sim.queue".into(), "risk.loss_max".into()],
            symbols: vec!["AUSDT".into(), "BUSDT".into()],
            horizons_ns: vec![1_000_000_000],
        };
        let names = columns.names();
        assert_eq!(
            names[..5],
            ["index", "sim.queue", "risk.loss_max", "status", "error"]
        );
        assert!(names.contains(&"BUSDT.markout_1s_bps".to_owned()));
        let row = columns.row(3, &["power:2", "5"], Err("no input, \"x\"\nsecond"));
        assert!(
            row.starts_with("3,power:2,5,failed,\"no input, \"\"x\"\"; second\","),
            "{row}"
        );
        // One field per column: the quoted error's comma is not a separator.
        let unquoted = row.replace("\"no input, \"\"x\"\"; second\"", "e");
        assert_eq!(unquoted.trim_end().split(',').count(), names.len());
        let line = columns.json_line(3, &["power:2", "5"], Err("boom"));
        assert!(line.starts_with("{\"index\":3,\"settings\":{"), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["settings"]["sim.queue"], "power:2");
        assert_eq!(v["error"], "boom");
        assert!(v["summary"].is_null());
    }
}
