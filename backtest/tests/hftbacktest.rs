//! The cross-check against hftbacktest 2.4.4 (PyPI; installed with numpy by
//! scripts/install-test-deps): the same data, exported with `levibot-backtest export --format
//! hftbacktest`, and the same market maker (testdata/backtest/hftbacktest-maker.toml on our
//! engine, its transcription scripts/hftbacktest-maker.py on hftbacktest) with the same queue
//! model and constant latency, on the committed synthetic capture and on a longer one that
//! `venue-sim synth` writes. docs/backtest.md ("Against hftbacktest") says what is compared,
//! the tolerance and why, and every disagreement seen.
//!
//! The data both engines run on is the capture without its book tickers (hftbacktest's L2
//! model has no top-of-book feed; our engine would price its quotes from them), with an
//! exchangeInfo whose MIN_NOTIONAL lets a one-lot quote through (hftbacktest has no such
//! filter, and a one-lot order cannot fill in part on either engine).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use levibot_gateway::capture::testdata_dir;
use levibot_testkit::workspace_bin;
use serde_json::Value;

/// Order latency both ways, µs.
const LATENCY_US: u64 = 100;
/// Money differences allowed, quote asset: hftbacktest sums `f64`s, we count exact units.
const MONEY_TOLERANCE: f64 = 1e-6;

fn repo(rel: &str) -> PathBuf {
    testdata_dir().join("../..").join(rel)
}

fn ok(output: Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn backtest(args: &[&str]) -> Vec<u8> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_levibot-backtest"));
    ok(
        Command::new(bin).args(args).output().unwrap(),
        &format!("levibot-backtest {}", args[0]),
    )
}

/// hftbacktest 2.4.4 and numpy in this machine's python3, or the test fails saying how.
fn require_hftbacktest() {
    assert!(
        levibot_testkit::python3_runs(
            "import numpy, hftbacktest, importlib.metadata as m; \
             assert m.version('hftbacktest') == '2.4.4'"
        ),
        "python3 with hftbacktest 2.4.4 and numpy is needed: run scripts/install-test-deps"
    );
}

/// `capture` as both engines take it, in `dir`: the stream without book tickers, the REST
/// snapshots, an exchangeInfo whose MIN_NOTIONAL is one unit, and the config beside them.
fn prepare(capture: &Path, dir: &Path) -> PathBuf {
    for entry in std::fs::read_dir(capture).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if name.contains(".ws.") {
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("@bookTicker\""))
                .collect();
            kept.join("\n") + "\n"
        } else if name == "BINANCE.0" {
            let info = text.replace(
                "\"minNotional\":\"10.00000000\"",
                "\"minNotional\":\"0.00000001\"",
            );
            assert_ne!(info, text, "the exchangeInfo's MIN_NOTIONAL was not found");
            info
        } else if name.contains(".http.") {
            text
        } else {
            continue;
        };
        std::fs::write(dir.join(&name), text).unwrap();
    }
    let config = std::fs::read_to_string(repo("testdata/backtest/hftbacktest-maker.toml")).unwrap();
    let config = config.replace(
        "exchange_info = \"../binance-spot-synthetic/BINANCE.0\"",
        "exchange_info = \"BINANCE.0\"",
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// What both engines report, in the same units.
#[derive(Debug)]
struct Figures {
    fills: u64,
    volume_base: f64,
    turnover_quote: f64,
    fees_quote: f64,
    position_base: f64,
    gross_pnl_quote: f64,
    net_pnl_quote: f64,
    orders_new: u64,
    orders_replace: u64,
    self_trade_refused: u64,
}

fn ours(dir: &Path, config: &Path, fees: (&str, &str)) -> Figures {
    let out = dir.join("ours");
    let json = backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        dir.to_str().unwrap(),
        "--queue",
        "risk_averse",
        "--order-latency-us",
        &LATENCY_US.to_string(),
        "--feed-latency",
        "recorded",
        "--maker-fee-bps",
        fees.0,
        "--taker-fee-bps",
        fees.1,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&out).unwrap();
    let summary: Value = serde_json::from_slice(&json).unwrap();
    let i = &summary["instruments"][0];
    let f = |k: &str| i[k].as_f64().unwrap_or_else(|| panic!("{k} in {i}"));
    Figures {
        fills: i["fills"].as_u64().unwrap(),
        volume_base: f("bought_base") + f("sold_base"),
        turnover_quote: f("turnover_quote"),
        fees_quote: f("fees_quote"),
        position_base: f("position_base"),
        gross_pnl_quote: f("gross_pnl_quote"),
        net_pnl_quote: f("net_pnl_quote"),
        orders_new: i["orders"]["new"].as_u64().unwrap(),
        orders_replace: i["orders"]["replace"].as_u64().unwrap(),
        self_trade_refused: summary["rejects"]["risk.self_trade"].as_u64().unwrap_or(0),
    }
}

/// Exports `dir` and runs the maker on hftbacktest, once per fee pair (in one process: numba
/// compiles hftbacktest's bindings once).
fn theirs(dir: &Path, config: &Path, fee_sets: &[(&str, &str)]) -> Vec<Figures> {
    let data = dir.join("nknusdt.npz");
    let export: Value = serde_json::from_slice(&backtest(&[
        "export",
        "--format",
        "hftbacktest",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        dir.to_str().unwrap(),
        "--symbol",
        "NKNUSDT",
        "--out",
        data.to_str().unwrap(),
    ]))
    .unwrap();
    let i = &export["instrument"];
    let s = |k: &str| i[k].as_str().unwrap().to_owned();
    let n = |k: &str| i[k].as_i64().unwrap().to_string();
    let latency_ns = (LATENCY_US * 1000).to_string();
    let fees: Vec<String> = fee_sets
        .iter()
        .map(|(maker, taker)| format!("--fees={maker}:{taker}"))
        .collect();
    let json = ok(
        Command::new("python3")
            .arg(repo("scripts/hftbacktest-maker.py"))
            .args(["--data", data.to_str().unwrap()])
            .args(["--config", config.to_str().unwrap(), "--symbol", "NKNUSDT"])
            .args(["--tick-size", &s("tick_size"), "--lot-size", &s("lot_size")])
            .args([
                "--tick-units",
                &n("tick_units"),
                "--lot-units",
                &n("lot_units"),
            ])
            .args([
                "--price-unit",
                &s("price_unit"),
                "--qty-unit",
                &s("qty_unit"),
            ])
            .args(["--entry-latency-ns", &latency_ns])
            .args(["--response-latency-ns", &latency_ns])
            .args(["--queue", "risk_averse", "--exchange", "no_partial_fill"])
            .args(&fees)
            .output()
            .unwrap(),
        "scripts/hftbacktest-maker.py",
    );
    let runs: Vec<Value> = json
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(runs.len(), fee_sets.len());
    runs.iter().map(figures_of).collect()
}

fn figures_of(r: &Value) -> Figures {
    assert!(r["error"].is_null(), "hftbacktest stopped: {r}");
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    Figures {
        fills: r["fills"].as_u64().unwrap(),
        volume_base: f("volume_base"),
        turnover_quote: f("turnover_quote"),
        fees_quote: f("fees_quote"),
        position_base: f("position_base"),
        gross_pnl_quote: f("gross_pnl_quote"),
        net_pnl_quote: f("net_pnl_quote"),
        orders_new: r["orders"]["new"].as_u64().unwrap(),
        orders_replace: r["orders"]["replace"].as_u64().unwrap(),
        self_trade_refused: r["orders"]["risk_self_trade"].as_u64().unwrap(),
    }
}

/// Runs both on `capture`, once per fee pair, and checks they agree (docs/backtest.md, "Against
/// hftbacktest": the tolerance and why).
fn cross_check(capture: &Path, fee_sets: &[(&str, &str)], fills_at_least: u64) {
    require_hftbacktest();
    let dir = tempfile::tempdir().unwrap();
    let config = prepare(capture, dir.path());
    let theirs = theirs(dir.path(), &config, fee_sets);
    for (fees, b) in fee_sets.iter().zip(theirs) {
        let a = ours(dir.path(), &config, *fees);
        agree(capture, *fees, &a, &b, fills_at_least);
    }
}

fn agree(capture: &Path, fees: (&str, &str), a: &Figures, b: &Figures, fills_at_least: u64) {
    eprintln!(
        "{} (maker/taker fee {}/{} bps, {LATENCY_US} µs):\n  levibot-backtest {a:?}\n  hftbacktest 2.4.4 {b:?}",
        capture.display(),
        fees.0,
        fees.1
    );
    assert!(
        a.fills >= fills_at_least,
        "too few fills to compare anything: {a:?}"
    );
    assert_eq!(a.fills, b.fills, "fills");
    assert_eq!(a.volume_base, b.volume_base, "traded volume");
    assert_eq!(a.position_base, b.position_base, "position");
    assert_eq!(
        (a.orders_new, a.orders_replace, a.self_trade_refused),
        (b.orders_new, b.orders_replace, b.self_trade_refused),
        "orders placed, replaced, refused by the self-trade check"
    );
    for (what, x, y) in [
        ("turnover", a.turnover_quote, b.turnover_quote),
        ("fees", a.fees_quote, b.fees_quote),
        ("gross PnL", a.gross_pnl_quote, b.gross_pnl_quote),
        ("net PnL", a.net_pnl_quote, b.net_pnl_quote),
    ] {
        assert!(
            (x - y).abs() <= MONEY_TOLERANCE,
            "{what}: levibot-backtest {x}, hftbacktest {y}"
        );
    }
}

#[test]
fn hftbacktest_agrees_on_the_committed_capture() {
    cross_check(&testdata_dir(), &[("0", "0")], 10);
}

#[test]
fn hftbacktest_agrees_on_a_longer_synthetic_capture_with_and_without_fees() {
    let synth = tempfile::tempdir().unwrap();
    let status = Command::new(workspace_bin("levibot-sim", "venue-sim"))
        .args(["synth", "--messages", "50000", "--out"])
        .arg(synth.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // No fees, then a maker rebate and a taker fee.
    cross_check(synth.path(), &[("0", "0"), ("-0.5", "7.5")], 1000);
}

/// The export of the committed capture, read back by numpy with hftbacktest's own dtype: its
/// events are what the capture holds for the symbol.
#[test]
fn the_export_loads_in_numpy_with_hftbacktests_dtype_and_holds_the_capture() {
    require_hftbacktest();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nknusdt.npz");
    let export: Value = serde_json::from_slice(&backtest(&[
        "export",
        "--format",
        "hftbacktest",
        "--config",
        repo("testdata/backtest/maker-nknusdt.toml")
            .to_str()
            .unwrap(),
        "--capture",
        testdata_dir().to_str().unwrap(),
        "--symbol",
        "nknusdt",
        "--out",
        data.to_str().unwrap(),
    ]))
    .unwrap();
    let stats = &export["stats"];

    // What the capture holds for NKNUSDT, read here independently of the decoder.
    let ws = std::fs::read_to_string(testdata_dir().join("BINANCE.ws.1.0")).unwrap();
    let http = std::fs::read_to_string(testdata_dir().join("BINANCE.http.0.0")).unwrap();
    let snapshot_line = http.lines().find(|l| l.contains("symbol=NKNUSDT")).unwrap();
    let (head, body) = snapshot_line.split_once(": ").unwrap();
    let snapshot_recv_ns = epoch_ns(head.rsplit_once(" -> ").unwrap().1);
    let snapshot: Value = serde_json::from_str(body).unwrap();
    let last_update_id = snapshot["lastUpdateId"].as_u64().unwrap();
    let snapshot_levels =
        snapshot["bids"].as_array().unwrap().len() + snapshot["asks"].as_array().unwrap().len();
    let (mut trades, mut depth_levels, mut tickers) = (Vec::new(), 0usize, 0u64);
    for line in ws.lines().skip(1) {
        let (t, msg) = line.split_once(": ").unwrap();
        let msg: Value = serde_json::from_str(msg).unwrap();
        let stream = msg["stream"].as_str().unwrap();
        if !stream.starts_with("nknusdt@") {
            continue;
        }
        let d = &msg["data"];
        match stream {
            "nknusdt@aggTrade" => trades.push((epoch_ns(t), d.clone())),
            "nknusdt@bookTicker" => tickers += 1,
            _ if d["u"].as_u64().unwrap() > last_update_id => {
                depth_levels += d["b"].as_array().unwrap().len() + d["a"].as_array().unwrap().len()
            }
            _ => {}
        }
    }
    assert_eq!(stats["trades"].as_u64().unwrap(), trades.len() as u64);
    assert_eq!(stats["book_tickers"].as_u64().unwrap(), tickers);
    assert_eq!(stats["snapshots"].as_u64().unwrap(), 1);
    assert_eq!(stats["gaps"].as_u64().unwrap(), 0);
    let rows = 1 + snapshot_levels + depth_levels + trades.len();
    assert_eq!(stats["rows"].as_u64().unwrap(), rows as u64);

    // numpy's view of the file, with hftbacktest's dtype and flags.
    let (first_trade_ns, first_trade) = &trades[0];
    let script = r#"
import json, sys
import numpy as np
from hftbacktest.types import (event_dtype, EXCH_EVENT, LOCAL_EVENT, BUY_EVENT, SELL_EVENT,
    DEPTH_EVENT, TRADE_EVENT, DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT)
d = np.load(sys.argv[1])["data"]
kind = d["ev"] & 0xff
both = EXCH_EVENT | LOCAL_EVENT
ex, lo = d[(d["ev"] & EXCH_EVENT) != 0], d[(d["ev"] & LOCAL_EVENT) != 0]
trades = d[kind == TRADE_EVENT]
snap = d[kind == DEPTH_SNAPSHOT_EVENT]
print(json.dumps({
    "dtype": d.dtype == event_dtype,
    "rows": len(d),
    "both_flags": int(((d["ev"] & both) == both).sum()),
    "clear": int((kind == DEPTH_CLEAR_EVENT).sum()),
    "snapshot": len(snap),
    "depth": int((kind == DEPTH_EVENT).sum()),
    "trade": len(trades),
    "exch_sorted": bool((np.diff(ex["exch_ts"]) >= 0).all()),
    "local_sorted": bool((np.diff(lo["local_ts"]) >= 0).all()),
    "exch_not_after_local": bool((d["exch_ts"] <= d["local_ts"]).all()),
    "first_snapshot": [int(snap[0]["ev"]), int(snap[0]["local_ts"]), float(snap[0]["px"]), float(snap[0]["qty"])],
    "first_trade": [bool(trades[0]["ev"] & BUY_EVENT), bool(trades[0]["ev"] & SELL_EVENT),
                    int(trades[0]["exch_ts"]), int(trades[0]["local_ts"]),
                    float(trades[0]["px"]), float(trades[0]["qty"])],
}))
"#;
    let out = ok(
        Command::new("python3")
            .args(["-c", script])
            .arg(&data)
            .output()
            .unwrap(),
        "numpy",
    );
    let np: Value = serde_json::from_slice(&out).unwrap();
    eprintln!("{np}");
    assert_eq!(np["dtype"], true);
    assert_eq!(np["rows"].as_u64().unwrap(), rows as u64);
    // Every event of this capture is in the same place in both orders: one row each.
    assert_eq!(np["both_flags"].as_u64().unwrap(), rows as u64);
    assert_eq!(np["clear"], 1);
    assert_eq!(np["snapshot"].as_u64().unwrap(), snapshot_levels as u64);
    assert_eq!(np["depth"].as_u64().unwrap(), depth_levels as u64);
    assert_eq!(np["trade"].as_u64().unwrap(), trades.len() as u64);
    assert_eq!(np["exch_sorted"], true);
    assert_eq!(np["local_sorted"], true);
    assert_eq!(np["exch_not_after_local"], true);
    // The snapshot's best bid, at its receive time.
    let best_bid = &snapshot["bids"][0];
    let snap = &np["first_snapshot"];
    assert_eq!(
        snap[0].as_u64().unwrap(),
        (1u64 << 31) | (1 << 30) | (1 << 29) | 4,
        "EXCH | LOCAL | BUY | DEPTH_SNAPSHOT"
    );
    assert_eq!(snap[1].as_u64().unwrap(), snapshot_recv_ns);
    assert_eq!(snap[2].as_f64().unwrap(), decimal(&best_bid[0]));
    assert_eq!(snap[3].as_f64().unwrap(), decimal(&best_bid[1]));
    // The first trade: the taker's side (`m`: the buyer was the maker, so the seller took), its
    // trade time `T` as the exchange time, its receive time as the local time.
    let t = &np["first_trade"];
    let seller_took = first_trade["m"].as_bool().unwrap();
    assert_eq!(
        (t[0].as_bool(), t[1].as_bool()),
        (Some(!seller_took), Some(seller_took))
    );
    assert_eq!(
        t[2].as_u64().unwrap(),
        first_trade["T"].as_u64().unwrap() * 1_000_000
    );
    assert_eq!(t[3].as_u64().unwrap(), *first_trade_ns);
    assert_eq!(t[4].as_f64().unwrap(), decimal(&first_trade["p"]));
    assert_eq!(t[5].as_f64().unwrap(), decimal(&first_trade["q"]));
}

/// A capture's `<epoch seconds>` (three decimals) in ns.
fn epoch_ns(text: &str) -> u64 {
    let (s, ms) = text.trim().split_once('.').unwrap();
    s.parse::<u64>().unwrap() * 1_000_000_000 + format!("{ms:0<9}").parse::<u64>().unwrap()
}

fn decimal(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}
