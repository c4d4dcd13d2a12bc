//! The backtest against the live session it replays: `levibot-demo` runs levibotd against the
//! simulated venue for a few seconds; `levibot-backtest run --journal` replays the journal it
//! wrote, with the order latency each request had live (`--order-latency-in-order`). Up to
//! the first fill that differs, both engines saw the same market and the same answers, so
//! they must have made the same decisions; after it, the fills and the PnL may drift, within
//! the bounds below.
//!
//! Bounds, and why: the venue-sim's synthetic traders trade against our quotes in the live
//! session (market impact, which a backtest does not model, and its FIX reports lag its feed
//! by a few ms), so fills differ in time and a little in number. Fill count within half the
//! live count (or 4); PnL of each instrument within 50 bps of its live turnover.

use std::path::Path;
use std::process::Command;

use levibot_testkit::workspace_bin;
use serde_json::Value;

#[test]
fn a_backtest_of_a_live_session_makes_its_decisions_until_a_fill_differs() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("live");
    let demo = Command::new(workspace_bin("levibot-demo", "levibot-demo"))
        .args([
            "--duration",
            "8",
            "--plain",
            "--exporter-listen",
            "none",
            "--journal",
        ])
        .arg(&journal)
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let out = dir.path().join("backtest");
    let run = Command::new(env!("CARGO_BIN_EXE_levibot-backtest"))
        .args(["run", "--json", "--order-latency-in-order"])
        .arg("--journal")
        .arg(&journal)
        .arg("--order-latency-from")
        .arg(&journal)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: Value = serde_json::from_slice(&run.stdout).unwrap();
    let versus = &summary["versus_live"];
    println!("{}", serde_json::to_string_pretty(versus).unwrap());
    assert_eq!(versus["decisions_equal"], true, "{versus}");
    // At least the first quotes were compared (a fill may come before every instrument's).
    assert!(
        versus["decisions_compared"].as_u64().unwrap() >= 2,
        "{versus}"
    );
    assert!(Path::new(&out).join("journal").exists());

    let fills = |side: &str| versus[side]["fills"].as_u64().unwrap();
    let (live, backtest) = (fills("live"), fills("backtest"));
    assert!(live > 0, "the live session filled nothing in 8 s: {versus}");
    assert!(
        live.abs_diff(backtest) <= (live / 2).max(4),
        "fills: live {live}, backtest {backtest}"
    );
    let pnl = |side: &str, symbol: &str| versus[side]["pnl_quote"][symbol].as_f64().unwrap_or(0.0);
    for (symbol, turnover) in versus["live"]["turnover_quote"].as_object().unwrap() {
        let turnover = turnover.as_f64().unwrap();
        let gap = (pnl("live", symbol) - pnl("backtest", symbol)).abs();
        assert!(
            gap <= turnover * 0.005 + 1e-9,
            "{symbol}: PnL live {} vs backtest {}, turnover {turnover}",
            pnl("live", symbol),
            pnl("backtest", symbol)
        );
    }
}
