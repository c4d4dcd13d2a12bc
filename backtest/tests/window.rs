//! `--trade-from` and `--until`: a held-out window of the input. The oracles are the uncut
//! run of the same config (after a moment both are flat, they must make the same fills) and
//! the capture file itself (which messages come before `--until`).

use std::path::{Path, PathBuf};
use std::process::Command;

use levibot_gateway::capture::testdata_dir;
use levibot_view::format_unix_ns;
use serde_json::Value;

use crate::cli::backtest;
use crate::features::{config, num, run_into};
use crate::research_loop::require_python;
use levibot_testkit::stdout_of;

/// The signal strategy with a threshold it passes often on the capture: it enters, exits and
/// is flat again many times.
const SIGNAL: &str = "[instruments.signal]\nweights = { top_imbalance = 1.0, microprice_premium = 2.0 }\n\
entry_threshold = 0.5\nrisk_budget = \"5\"\natr_multiple = 2\ntake_profit_atr = 2.0\n\
stop_loss_atr = 1.0\nqty_max_lots = 100\n";

/// Runs the capture with `extra` arguments into `dir/name`; the summary and the journal.
fn run(dir: &Path, name: &str, extra: &[&str]) -> (Value, Vec<Value>) {
    let config = config(dir, "journal = \"book\"\natr_bar_ms = 50", Some(SIGNAL));
    run_into(&dir.join(name), &config, extra)
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn t(r: &Value) -> u64 {
    r["ts_unix_ns"].as_u64().unwrap()
}

/// Trades (exec reports of fills): (time, side, price, quantity).
fn trades(records: &[Value]) -> Vec<(u64, String, String, String)> {
    records
        .iter()
        .filter(|r| r["type"] == "execution_report" && r["exec_type"] == "trade")
        .map(|r| {
            (
                t(r),
                r["side"].to_string(),
                r["last_px"].to_string(),
                r["last_qty"].to_string(),
            )
        })
        .collect()
}

/// The times of the reports after which the run held no position and no open order.
fn flat_moments(records: &[Value]) -> Vec<u64> {
    let (mut position, mut open) = (0.0, std::collections::BTreeSet::new());
    let mut flat = Vec::new();
    for r in records.iter().filter(|r| r["type"] == "execution_report") {
        if r["exec_type"] == "trade" {
            let qty = num(&r["last_qty"]);
            position += if r["side"] == "buy" { qty } else { -qty };
        }
        let id = r["client_order_id"].as_u64().unwrap();
        match r["ord_status"].as_str().unwrap() {
            "new" | "partially_filled" => open.insert(id),
            _ => open.remove(&id),
        };
        if position.abs() < 1e-9 && open.is_empty() {
            flat.push(t(r));
        }
    }
    flat
}

/// Cash of trades (sells - buys), quote asset.
fn cash(trades: &[(u64, String, String, String)]) -> f64 {
    let unquote = |s: &str| s.trim_matches('"').parse::<f64>().unwrap();
    trades
        .iter()
        .map(|(_, side, px, qty)| {
            let notional = unquote(px) * unquote(qty);
            if side == "\"sell\"" {
                notional
            } else {
                -notional
            }
        })
        .sum()
}

#[test]
fn from_trade_from_the_run_trades_as_the_uncut_run_does_after_a_flat_moment() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, whole_records) = run(dir.path(), "whole", &[]);
    let whole_trades = trades(&whole_records);
    assert!(whole_trades.len() > 20, "{} trades", whole_trades.len());
    // A moment in the middle where the uncut run is flat, with trades after it.
    let flat = flat_moments(&whole_records);
    let from = flat[flat.len() / 2] + 1;
    let text = format_unix_ns(from);
    let (cut, cut_records) = run(dir.path(), "cut", &["--trade-from", &text]);

    // Nothing was asked of risk or the venue before the start; the strategy was paused.
    for r in &cut_records {
        let order = [
            "order_request",
            "order_sent",
            "risk_reject",
            "execution_report",
        ];
        if order.contains(&r["type"].as_str().unwrap()) {
            assert!(t(r) >= from, "before --trade-from {text}: {r}");
        }
        if r["type"] == "feature_snapshot" {
            assert_eq!(r["paused"], t(r) < from, "{r}");
        }
    }
    // From the start on, the same fills as the uncut run: the market is the same, and both
    // were flat with nothing working.
    let after: Vec<_> = whole_trades
        .iter()
        .filter(|(t, ..)| *t >= from)
        .cloned()
        .collect();
    assert!(after.len() > 5, "{} trades after {text}", after.len());
    assert_eq!(trades(&cut_records), after);

    // The summary counts from the start: its fills, and its PnL is the uncut run's less what
    // the trades before the start made (flat then: their cash is their PnL; no fees).
    assert_eq!(cut["start_t_ns"].as_u64(), Some(from));
    assert_eq!(cut["fills"].as_u64(), Some(after.len() as u64));
    assert!(cut["messages"].as_u64() < whole["messages"].as_u64());
    let before: Vec<_> = whole_trades
        .iter()
        .filter(|(t, ..)| *t < from)
        .cloned()
        .collect();
    let pnl = |s: &Value| num(&s["totals"]["net_pnl_quote"]);
    assert!(
        (pnl(&whole) - cash(&before) - pnl(&cut)).abs() < 1e-9,
        "whole {} = before {} + cut {}",
        pnl(&whole),
        cash(&before),
        pnl(&cut)
    );
    assert_eq!(
        cut["simulation"]["window"]["trade_from_ns"].as_u64(),
        Some(from)
    );
}

/// Receive times of the capture's stream messages, from its lines (`<epoch s>: <json>`).
fn capture_times() -> Vec<u64> {
    let text = std::fs::read_to_string(testdata_dir().join("BINANCE.ws.1.0")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let (epoch, _) = line.split_once(':').unwrap();
            let (s, frac) = epoch.split_once('.').unwrap();
            let frac = format!("{frac:0<9}");
            s.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
        })
        .collect()
}

#[test]
fn until_ends_the_input_at_its_first_message_at_or_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let times = capture_times();
    let until = times[times.len() / 2];
    let (summary, records) = run(dir.path(), "until", &["--until", &format_unix_ns(until)]);
    let before = times.iter().filter(|&&t| t < until).count() as u64;
    assert_eq!(summary["messages"].as_u64(), Some(before));
    let raw: Vec<u64> = records
        .iter()
        .filter(|r| r["type"] == "raw_message")
        .map(t)
        .collect();
    assert!(
        raw.iter().all(|&t| t < until),
        "a message at or after --until"
    );
    assert_eq!(
        summary["simulation"]["window"]["until_ns"].as_u64(),
        Some(until)
    );
}

#[test]
fn a_window_that_is_empty_or_not_a_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = config(dir.path(), "journal = \"off\"", Some(SIGNAL));
    let capture = path(&testdata_dir());
    let out = path(&dir.path().join("out"));
    for (window, says) in [
        (
            [
                "--trade-from",
                "2023-11-14T22:13:30Z",
                "--until",
                "2023-11-14T22:13:30Z",
            ],
            "not before --until",
        ),
        (
            [
                "--trade-from",
                "yesterday",
                "--until",
                "2023-11-14T22:13:30Z",
            ],
            "not an RFC 3339 time",
        ),
    ] {
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap(),
            "--capture",
            &capture,
            "--out",
            &out,
        ];
        args.extend_from_slice(&window);
        let output = backtest(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// The dataset's event times (ns) and `ret_500ms` (null: `None`), by DuckDB.
const READ_DATASET: &str = r#"
import json, sys, duckdb
rows = duckdb.connect().execute(
    "SELECT epoch_ns(event_time), ret_500ms FROM read_parquet(?) ORDER BY 1", [sys.argv[1]]
).fetchall()
print(json.dumps(rows))
"#;

#[test]
fn a_dataset_of_a_time_range_holds_its_snapshots_and_no_return_from_past_it() {
    require_python("duckdb");
    let dir = tempfile::tempdir().unwrap();
    let (_, records) = run(dir.path(), "whole", &[]);
    let snapshots: Vec<u64> = records
        .iter()
        .filter(|r| r["type"] == "feature_snapshot")
        .map(|r| r["event_unix_ns"].as_u64().unwrap())
        .collect();
    let (from, to) = (
        snapshots[snapshots.len() / 4],
        snapshots[snapshots.len() * 3 / 4],
    );
    let dataset = dir.path().join("dataset.parquet");
    stdout_of(
        Command::new(levibot_testkit::workspace_bin("levictl", "levictl"))
            .arg("--journal")
            .arg(dir.path().join("whole/journal"))
            .args(["research", "dataset", "--horizon", "500ms", "--from"])
            .arg(format_unix_ns(from))
            .arg("--to")
            .arg(format_unix_ns(to))
            .arg("-o")
            .arg(&dataset),
    );
    let read = stdout_of(
        Command::new("python3")
            .args(["-c", READ_DATASET])
            .arg(&dataset),
    );
    let rows: Vec<(u64, Option<f64>)> = serde_json::from_str(&read).unwrap();
    // Exactly the snapshots of the range.
    let want: Vec<u64> = snapshots
        .iter()
        .copied()
        .filter(|t| (from..to).contains(t))
        .collect();
    let got: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(got, want);
    // A return is known only where its horizon ends within the range: nothing from after it.
    let last = *want.last().unwrap();
    for &(t, ret) in &rows {
        if t + 500_000_000 > last {
            assert_eq!(ret, None, "a return at {t} looks past {last}");
        }
    }
    assert!(rows.iter().filter(|r| r.1.is_some()).count() > 10);
}
