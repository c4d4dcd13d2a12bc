//! The research loop on the committed capture, as a quant runs it (docs/research.md): a
//! backtest journals the features, `levictl research dataset` joins forward returns,
//! `scripts/research/train.py` trains an XGBoost model (DuckDB and xgboost-cpu from PyPI), and
//! a second backtest votes with that model. The oracle is XGBoost itself: its `predict` on
//! every journaled snapshot's features must be the strategy's output to 1e-6, and each
//! snapshot names the model by its file's SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use levibot_testkit::workspace_bin;
use serde_json::Value;

use crate::features::{config, num, run};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command that must succeed; its stdout.
pub(crate) fn ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The signal strategy's table: `model` instead of the weights when given.
fn signal(model: Option<&Path>, entry_threshold: f64) -> String {
    let vote = match model {
        Some(m) => format!("model = {:?}\n", m.to_str().unwrap()),
        None => "weights = { top_imbalance = 1.0, microprice_premium = 2.0 }\n".to_owned(),
    };
    format!(
        "[instruments.signal]\n{vote}entry_threshold = {entry_threshold:e}\nrisk_budget = \"5\"\n\
         atr_multiple = 2\ntake_profit_atr = 2.0\nstop_loss_atr = 1.0\nqty_max_lots = 100\n"
    )
}

/// The features' section of both runs: 50 ms ATR bars, so that the ATR (which sizes an
/// entry) exists within the capture's seconds.
const FEATURES: &str = "journal = \"book\"\natr_bar_ms = 50";

/// |vote| past which the model run enters: a forward return of 1e-6 (the model predicts
/// returns of about 1e-4 on this capture), so that it trades.
const ENTRY_THRESHOLD: f64 = 1e-6;

/// XGBoost's own predictions on the snapshots' features, and the model file's SHA-256.
const PREDICT: &str = r#"
import hashlib, json, math, sys
import numpy as np, xgboost as xgb
model, rows = sys.argv[1], json.load(open(sys.argv[2]))
booster = xgb.Booster()
booster.load_model(model)
names = booster.feature_names
x = np.array([[math.nan if r[n] is None else r[n] for n in names] for r in rows], dtype=np.float64)
p = booster.predict(xgb.DMatrix(x, feature_names=names, missing=math.nan))
print(json.dumps({"predictions": [float(v) for v in p],
                  "sha256": hashlib.sha256(open(model, "rb").read()).hexdigest(),
                  "features": names}))
"#;

#[test]
fn features_to_dataset_to_xgboost_to_a_backtest_that_votes_with_the_model() {
    let have = Command::new("python3")
        .args(["-c", "import duckdb, xgboost, pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with duckdb, xgboost and pyarrow is needed (scripts/install-test-deps installs them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("linear");
    std::fs::create_dir(&first).unwrap();
    run(
        &first,
        &config(&first, FEATURES, Some(&signal(None, 1000.0))),
    );

    let dataset = dir.path().join("dataset.parquet");
    ok(Command::new(workspace_bin("levictl", "levictl"))
        .arg("--journal")
        .arg(first.join("out/journal"))
        .args(["research", "dataset", "--horizon", "500ms", "-o"])
        .arg(&dataset));
    let model = dir.path().join("model.json");
    let trained: Value = serde_json::from_str(&ok(Command::new("python3")
        .arg(repo().join("scripts/research/train.py"))
        .arg("--dataset")
        .arg(&dataset)
        .args([
            "--target",
            "ret_500ms",
            "--rounds",
            "20",
            "--depth",
            "3",
            "--out",
        ])
        .arg(&model)))
    .unwrap();
    println!("{trained}");
    assert!(trained["rows"].as_u64().unwrap() > 100, "{trained}");

    let second = dir.path().join("model");
    std::fs::create_dir(&second).unwrap();
    let records = run(
        &second,
        &config(
            &second,
            FEATURES,
            Some(&signal(Some(&model), ENTRY_THRESHOLD)),
        ),
    );
    let snapshots: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "feature_snapshot")
        .collect();
    let rows = dir.path().join("snapshots.json");
    std::fs::write(&rows, serde_json::to_vec(&snapshots).unwrap()).unwrap();
    let xgboost: Value = serde_json::from_str(&ok(Command::new("python3")
        .args(["-c", PREDICT])
        .arg(&model)
        .arg(&rows)))
    .unwrap();
    let predictions = xgboost["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), snapshots.len());
    let model_id = &xgboost["sha256"].as_str().unwrap()[..16];
    let mut compared = 0;
    for (s, want) in snapshots.iter().zip(predictions) {
        assert_eq!(s["model_id"], model_id, "{s}");
        let (got, want) = (num(&s["output"]), want.as_f64().unwrap());
        assert!((got - want).abs() <= 1e-6, "{got} but XGBoost {want}: {s}");
        compared += 1;
    }
    assert!(compared > 100, "{compared} snapshots");
    // Not a constant: the model's output moves with the features.
    let distinct: std::collections::BTreeSet<u64> = predictions
        .iter()
        .map(|p| p.as_f64().unwrap().to_bits())
        .collect();
    assert!(distinct.len() > 3, "{distinct:?}");
    // The orders name the model they were voted with: its SHA-256's first 4 bytes.
    let orders: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "order_request" || r["type"] == "order_sent")
        .collect();
    assert!(
        !orders.is_empty(),
        "the model never voted past {ENTRY_THRESHOLD}"
    );
    for order in orders {
        assert_eq!(order["model_tag"], model_id[..8], "{order}");
    }
    // The linear run's orders (if any) and snapshots name no model.
    assert!(
        run_records(&first)
            .iter()
            .all(|r| r["model_tag"].is_null() && r["model_id"] != model_id)
    );
}

/// The journal of a run in `dir` again.
fn run_records(dir: &Path) -> Vec<Value> {
    crate::cli::tail_json(&dir.join("out/journal"))
}
