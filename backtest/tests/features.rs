//! `[features] journal`: the backtest (the live engine on a virtual clock) journals feature
//! snapshots that `levictl` reads, checked against arithmetic on the venue's own records (a
//! book ticker's mid, microprice and imbalance) and on the config's weights (the `signal`
//! strategy's vote).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use levibot_gateway::capture::testdata_dir;
use serde_json::Value;

/// The maker's backtest config with `exchange_info` made absolute, `signal` (a table of the
/// signal strategy's keys) instead of the maker when given, and `[features]` appended.
pub(crate) fn config(dir: &Path, features: &str, signal: Option<&str>) -> PathBuf {
    let testdata = testdata_dir().join("..");
    let mut text = std::fs::read_to_string(testdata.join("backtest/maker-nknusdt.toml")).unwrap();
    let exchange_info = testdata.join("binance-spot-synthetic/BINANCE.0");
    text = text.replacen(
        "\"../binance-spot-synthetic/BINANCE.0\"",
        &format!("{:?}", exchange_info.to_str().unwrap()),
        1,
    );
    if let Some(signal) = signal {
        let maker = text.find("[instruments.maker]").unwrap();
        text.truncate(maker);
        text.push_str(signal);
        text = text.replacen("kind = \"maker\"", "kind = \"signal\"", 1);
    }
    text.push_str(&format!("\n[features]\n{features}\n"));
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the backtest on the committed capture; returns the run's journal as `levictl tail
/// --json` prints it.
pub(crate) fn run(dir: &Path, config: &Path) -> Vec<Value> {
    run_into(&dir.join("out"), config, &[]).1
}

/// Runs the backtest on the committed capture into `out` with `extra` arguments; its summary
/// and its journal as `levictl tail --json` prints it.
pub(crate) fn run_into(out: &Path, config: &Path, extra: &[&str]) -> (Value, Vec<Value>) {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let capture = path(&testdata_dir());
    let (config, out_dir) = (path(config), path(out));
    let mut run = vec![
        "run",
        "--config",
        &config,
        "--capture",
        &capture,
        "--out",
        &out_dir,
        "--json",
    ];
    run.extend_from_slice(extra);
    let summary = crate::cli::summary_of(&crate::cli::backtest(&run));
    (summary, crate::cli::tail_json(&out.join("journal")))
}

pub(crate) fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-9),
        "{what}: {a} != {b}"
    );
}

#[test]
fn every_book_change_is_journaled_with_the_features_of_that_top() {
    let dir = tempfile::tempdir().unwrap();
    let records = run(dir.path(), &config(dir.path(), "journal = \"book\"", None));
    let snapshots: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "feature_snapshot")
        .collect();
    let mut by_recv: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for s in &snapshots {
        assert_eq!(s["symbol"], "NKNUSDT");
        assert_eq!(s["strategy_id"], 1);
        assert_eq!(s["writer"], "strategy");
        by_recv
            .entry(s["recv_tsc"].as_u64().unwrap())
            .or_default()
            .push(s);
    }
    let tickers: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "book_ticker")
        .collect();
    assert!(tickers.len() > 100, "{} tickers", tickers.len());
    // The oracle: the ticker the venue sent, by hand.
    for t in &tickers {
        let (bid, ask) = (num(&t["bid_px"]), num(&t["ask_px"]));
        let (bid_qty, ask_qty) = (num(&t["bid_qty"]), num(&t["ask_qty"]));
        let mid = (bid + ask) / 2.0;
        let micro = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty);
        let imbalance = (bid_qty - ask_qty) / (bid_qty + ask_qty);
        let at = by_recv
            .get(&t["recv_tsc"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("no snapshot for the ticker {t}"));
        let s = at
            .iter()
            .find(|s| (num(&s["mid"]) - mid).abs() <= 1e-12)
            .unwrap_or_else(|| panic!("no snapshot with the ticker's mid {mid}: {at:?}"));
        close(num(&s["microprice"]), micro, "microprice");
        close(num(&s["top_imbalance"]), imbalance, "top_imbalance");
        close(
            num(&s["momentum"]),
            num(&s["mid"]) - num(&s["ewma_mid"]),
            "momentum",
        );
        // The maker has no output.
        assert!(s["output"].is_null(), "{s}");
    }
    // Depth updates change the book too: more snapshots than tickers.
    assert!(snapshots.len() > tickers.len(), "{}", snapshots.len());
}

#[test]
fn on_an_interval_one_snapshot_per_interval_carries_the_signals_vote() {
    let dir = tempfile::tempdir().unwrap();
    let signal = "[instruments.signal]\n\
        weights = { top_imbalance = 1.0, trade_flow_imbalance = 0.5, \
                    microprice_premium = 2.0, mid_momentum = -0.25 }\n\
        entry_threshold = 1000.0\nrisk_budget = \"5\"\natr_multiple = 2\n\
        take_profit_atr = 2.0\nstop_loss_atr = 1.0\nqty_max_lots = 100\n";
    let records = run(
        dir.path(),
        &config(
            dir.path(),
            "journal = \"100ms\"\natr_bar_ms = 50",
            Some(signal),
        ),
    );
    let tick = 0.0001; // NKNUSDT's tickSize in the committed exchangeInfo
    let snapshots: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "feature_snapshot")
        .collect();
    assert!(snapshots.len() > 5, "{}", snapshots.len());
    let mut last_interval = None;
    let mut votes = 0;
    for s in &snapshots {
        let interval = s["event_unix_ns"].as_u64().unwrap() / 100_000_000;
        assert!(
            last_interval < Some(interval),
            "two snapshots in one 100 ms interval"
        );
        last_interval = Some(interval);
        if s["microprice"].is_null() || s["ewma_mid"].is_null() {
            assert!(s["output"].is_null(), "{s}");
            continue;
        }
        let flow = if s["trade_flow_imbalance"].is_null() {
            0.0
        } else {
            num(&s["trade_flow_imbalance"])
        };
        let mid = num(&s["mid"]);
        let vote =
            num(&s["top_imbalance"]) + 0.5 * flow + 2.0 * (num(&s["microprice"]) - mid) / tick
                - 0.25 * (mid - num(&s["ewma_mid"])) / tick;
        assert!(s["output"].is_number(), "{s}");
        assert!((num(&s["output"]) - vote).abs() < 1e-6, "{vote}: {s}");
        votes += 1;
        // 50 ms bars over 14: an ATR after 0.7 s of data.
        if s["atr"].is_number() {
            assert!(num(&s["atr"]) >= 0.0);
        }
    }
    assert!(votes > 5, "{votes} votes");
    assert!(
        snapshots.iter().any(|s| s["atr"].is_number()),
        "never an ATR"
    );
}
