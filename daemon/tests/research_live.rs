//! The research loop on a live demo session, end to end (docs/research.md): `levibotd` trades
//! the demo's venue with the `signal` strategy's weights and journals its features; from the
//! live journal `levictl research dataset` builds a Parquet dataset and
//! `scripts/research/train.py` trains an XGBoost model (DuckDB and xgboost-cpu from PyPI);
//! `levictl reload` swaps the model in while the daemon trades; `levibot-backtest` replays the
//! session with the weights and with the model. The journal then answers which model made
//! each snapshot and order.
//!
//! Oracles from outside the code under test: XGBoost's own `predict` on the features the live
//! strategy journaled (its outputs must equal it to 1e-6), Python's `hashlib` for the model
//! file's SHA-256, the exporter's page and `levictl status` against both.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use levibot_testkit::{python3_runs, stdout_of, train_on_journal, workspace_bin, xgboost_predict};
use serde_json::Value;

use crate::common::harness::*;
use crate::exporter_live::{Exporter, get_http, sample};

/// The demo's config with the signal strategy on every symbol: the weights (at a threshold
/// nothing passes), or `model`, at a threshold low enough that the model trades.
fn signal_config(demo: &str, model: Option<&Path>) -> String {
    let table = match model {
        Some(m) => signal_table(&format!("model = {:?}", m.to_str().unwrap()), "1e-6"),
        None => signal_table(
            "weights = { top_imbalance = 1.0, microprice_premium = 2.0 }",
            "1000.0",
        ),
    };
    signal_demo_config(demo, &table, &table)
}

fn tail_json(journal: &Path) -> Vec<Value> {
    stdout_of(
        Command::new(workspace_bin("levictl", "levictl"))
            .args(["tail", "--json", "--journal"])
            .arg(journal),
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// `levibot-backtest run` over the live journal with `config`: its summary and its journal.
fn backtest(dir: &Path, journal: &Path, config: &Path) -> (Value, Vec<Value>) {
    let out = dir.join("out");
    let summary: Value = serde_json::from_str(&stdout_of(
        Command::new(workspace_bin("levibot-backtest", "levibot-backtest"))
            .args(["run", "--json", "--journal"])
            .arg(journal)
            .arg("--config")
            .arg(config)
            .arg("--out")
            .arg(&out),
    ))
    .unwrap();
    (summary, tail_json(&out.join("journal")))
}

#[test]
fn a_demo_session_trains_deploys_and_backtests_a_model_and_the_journal_names_it() {
    assert!(
        python3_runs("import duckdb, xgboost, pyarrow"),
        "python3 with duckdb, xgboost and pyarrow is needed (scripts/install-test-deps installs them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (venue, config_path) = venue_and_config(dir.path(), levibot_testkit::seed());
    let demo = std::fs::read_to_string(&config_path).unwrap();
    let weights = signal_config(&demo, None);
    std::fs::write(&config_path, &weights).unwrap();
    let mut daemon = Daemon::start(&config_path, dir.path());
    daemon.wait_running();
    let exporter = Exporter::start(dir.path());

    // 1. Features journaled live, then a dataset and a model from the live journal.
    daemon.wait_for("feature snapshots", |c| {
        get(c, "strategy.feature_snapshots") > 3000
    });
    let (model, trained) = train_on_journal(dir.path(), dir.path());
    println!("trained: {trained}");
    assert!(trained["rows"].as_u64().unwrap() > 500, "{trained}");
    let sha256 = xgboost_predict(&model, &[], dir.path()).sha256;
    let model_id = sha256[..16].to_owned();
    let model_id_bits = u64::from_str_radix(&model_id, 16).unwrap() as i64;

    // 2. Deployed live: the config names the model, `levictl reload` swaps it in.
    let (_, page) = get_http(exporter.addr, "/metrics");
    let none = "symbol=\"NKNUSDT\",model_id=\"none\"";
    assert_eq!(
        sample(&page, "levibot_model_info", none),
        Some(1.0),
        "{page}"
    );
    let with_model = signal_config(&demo, Some(&model));
    std::fs::write(&config_path, &with_model).unwrap();
    let out = levictl(dir.path(), &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_for("the strategy to take the model", |c| {
        ["NKNUSDT", "BTCUSDT", "ETHUSDT"]
            .iter()
            .all(|s| get(c, &format!("strategy.model_id.{s}")) == model_id_bits)
    });
    let status: Value =
        serde_json::from_slice(&levictl(dir.path(), &["status", "--json"]).stdout).unwrap();
    for i in status["instruments"].as_array().unwrap() {
        assert_eq!(i["model"]["sha256"], sha256.as_str(), "{status}");
        assert_eq!(i["model"]["path"], model.to_str().unwrap(), "{status}");
        assert_eq!(i["model"]["in_use"], true, "{status}");
    }
    let deployed_at = get(&counters(dir.path()), "strategy.feature_snapshots");
    daemon.wait_for("snapshots and orders with the model", |c| {
        get(c, "strategy.feature_snapshots") > deployed_at + 1500 && get(c, "strategy.orders") > 0
    });
    std::thread::sleep(Duration::from_millis(500)); // a scrape interval
    let (_, page) = get_http(exporter.addr, "/metrics");
    let live = format!("symbol=\"NKNUSDT\",model_id=\"{model_id}\"");
    assert_eq!(
        sample(&page, "levibot_model_info", &live),
        Some(1.0),
        "{page}"
    );
    assert_eq!(sample(&page, "levibot_model_info", none), None, "{page}");
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    venue.stop();

    // 3. The lineage, from the journal alone.
    let records = tail_json(dir.path());
    let models: Vec<(usize, &Value)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["type"] == "model_in_force")
        .collect();
    assert_eq!(models.len(), 6, "{models:?}"); // 3 symbols at start, 3 at the reload
    for (_, m) in &models[..3] {
        assert_eq!(m["model_id"], "0000000000000000", "{m}");
        assert_eq!(
            (&m["sha256"], &m["path"], &m["reload"]),
            (&"".into(), &"".into(), &0.into())
        );
    }
    for (_, m) in &models[3..] {
        assert_eq!(m["sha256"], sha256.as_str(), "{m}");
        assert_eq!(m["model_id"], model_id.as_str(), "{m}");
        assert_eq!(m["path"], model.to_str().unwrap(), "{m}");
        assert_eq!(m["reload"], 1, "{m}");
    }
    let reloaded_at = models[3].0;
    let (before, after) = records.split_at(reloaded_at);
    // Nothing before the record was made with the model; everything of the strategy's after
    // the first snapshot that was is.
    assert!(before.iter().all(|r| r["model_id"] != model_id.as_str()));
    assert!(before.iter().all(|r| r["model_tag"].is_null()));
    let first = after
        .iter()
        .position(|r| r["type"] == "feature_snapshot" && r["model_id"] == model_id.as_str())
        .expect("no snapshot with the model");
    let snapshots: Vec<&Value> = after[first..]
        .iter()
        .filter(|r| r["type"] == "feature_snapshot" && !r["paused"].as_bool().unwrap())
        .collect();
    assert!(snapshots.len() > 1000, "{} snapshots", snapshots.len());
    assert!(snapshots.iter().all(|s| s["model_id"] == model_id.as_str()));
    // The live hot path's outputs are XGBoost's own predictions on the features it saw.
    let xgboost = xgboost_predict(&model, &snapshots, dir.path());
    for (s, want) in snapshots.iter().zip(xgboost.predictions) {
        let (got, want) = (num(&s["output"]), want);
        assert!((got - want).abs() <= 1e-6, "{got} but XGBoost {want}: {s}");
    }
    let orders: Vec<&Value> = after[first..]
        .iter()
        .filter(|r| r["type"] == "order_request" && r["kind"] == "new")
        .collect();
    assert!(!orders.is_empty(), "the model sent no order");
    for order in orders {
        assert_eq!(order["model_tag"], model_id[..8], "{order}");
    }

    // 4. The session backtested with both: the weights' config as it was live, and the model.
    let (weights_config, model_config) = (dir.path().join("w.toml"), dir.path().join("m.toml"));
    std::fs::write(&weights_config, &weights).unwrap();
    std::fs::write(&model_config, &with_model).unwrap();
    let bt = |name: &str, config: &Path| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        backtest(&d, dir.path(), config)
    };
    let (weights_summary, weights_run) = bt("bt-weights", &weights_config);
    let (model_summary, model_run) = bt("bt-model", &model_config);
    println!(
        "weights: {}\nmodel: {}",
        weights_summary["totals"], model_summary["totals"]
    );
    let messages = |s: &Value| s["messages"].as_u64().unwrap();
    assert!(messages(&weights_summary) > 1000, "{weights_summary}");
    assert_eq!(messages(&weights_summary), messages(&model_summary));
    let named = |run: &[Value], id: &str| {
        run.iter()
            .filter(|r| r["type"] == "feature_snapshot")
            .all(|r| r["model_id"] == id)
    };
    assert!(named(&weights_run, "0000000000000000"));
    assert!(named(&model_run, &model_id));
    let backtest_models: Vec<&Value> = model_run
        .iter()
        .filter(|r| r["type"] == "model_in_force")
        .collect();
    assert_eq!(backtest_models.len(), 3);
    assert!(
        backtest_models
            .iter()
            .all(|m| m["sha256"] == sha256.as_str())
    );
    // The backtest's strategy votes as XGBoost predicts, too.
    let replayed: Vec<&Value> = model_run
        .iter()
        .filter(|r| r["type"] == "feature_snapshot" && r["output"].is_number())
        .collect();
    assert!(replayed.len() > 1000, "{} snapshots", replayed.len());
    let xgboost = xgboost_predict(&model, &replayed, dir.path());
    for (s, want) in replayed.iter().zip(xgboost.predictions) {
        let (got, want) = (num(&s["output"]), want);
        assert!((got - want).abs() <= 1e-6, "{got} but XGBoost {want}: {s}");
    }
}
