//! Equality with XGBoost itself: scripts/xgboost-train.py (xgboost-cpu 3.2.0 from PyPI, which
//! scripts/install-test-deps installs) trains models of several objectives, depths and tree
//! methods on a seeded synthetic dataset with missing values, and writes XGBoost's own
//! predictions on held-out rows (some exactly at, or just below, a split's condition). Every
//! prediction and margin of ours must be within 1e-6 of XGBoost's. The models XGBoost writes
//! that this crate does not read (dart, gblinear, multi-class, multi-target, categorical, the
//! features in another order) must be refused, naming why.

use std::path::{Path, PathBuf};
use std::process::Command;

use levibot_model::TreeModel;
use serde_json::Value;

use crate::common::FEATURES;

/// Largest difference allowed from XGBoost's prediction (in practice they are equal: the same
/// f32 operations in the same order).
const TOLERANCE: f64 = 1e-6;

/// xgboost-cpu 3.2.0 and numpy in this machine's python3, or the test fails saying how.
fn require_xgboost() {
    assert!(
        levibot_testkit::python3_runs(
            "import numpy, xgboost, importlib.metadata as m; \
             assert m.version('xgboost-cpu') == '3.2.0'"
        ),
        "python3 with xgboost-cpu 3.2.0 and numpy is needed: run scripts/install-test-deps"
    );
}

fn train(out: &Path, seed: u64) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/xgboost-train.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(out)
        .arg("--seed")
        .arg(seed.to_string())
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    serde_json::from_str(&manifest).unwrap()
}

/// One held-out row: the features, then XGBoost's prediction and margin.
struct Row {
    features: [f64; 6],
    prediction: f64,
    margin: f64,
}

fn rows(path: &PathBuf) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let cells: Vec<f64> = line
                .split(',')
                .map(|c| c.parse().unwrap_or_else(|_| panic!("{c:?} in {line}")))
                .collect();
            assert_eq!(cells.len(), 8, "{line}");
            Row {
                features: std::array::from_fn(|i| cells[i]),
                prediction: cells[6],
                margin: cells[7],
            }
        })
        .collect()
}

#[test]
fn predictions_equal_xgboost_3_2_on_trained_models() {
    require_xgboost();
    // XGBoost's seed is a 32-bit integer.
    let seed = levibot_testkit::seed() % (1 << 31);
    let dir = tempfile::tempdir().unwrap();
    let manifest = train(dir.path(), seed);
    assert_eq!(manifest["xgboost"], "3.2.0");
    assert_eq!(manifest["features"], serde_json::json!(FEATURES));

    let mut failures = Vec::new();
    let models = manifest["models"].as_array().unwrap();
    assert!(models.len() >= 8, "{manifest}");
    for entry in models {
        let name = entry["name"].as_str().unwrap();
        let model = TreeModel::load(&dir.path().join(format!("{name}.json")), &FEATURES)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.objective().name(), entry["objective"], "{name}");
        let rows = rows(&dir.path().join(format!("{name}.csv")));
        assert_eq!(rows.len() as u64, entry["rows"].as_u64().unwrap(), "{name}");
        let (mut exact, mut diff_max, mut missing) = (0, 0.0_f64, 0);
        for (i, row) in rows.iter().enumerate() {
            let prediction = model.predict(&row.features);
            let margin = model.predict_margin(&row.features);
            let diff = (prediction - row.prediction)
                .abs()
                .max((margin - row.margin).abs());
            diff_max = diff_max.max(diff);
            exact += usize::from(prediction == row.prediction && margin == row.margin);
            missing += usize::from(row.features.iter().any(|x| x.is_nan()));
            // NaN on either side is a failure too.
            if diff.is_nan() || diff > TOLERANCE {
                failures.push(format!(
                    "{name} row {i} {:?}: ours {prediction} (margin {margin}), XGBoost {} (margin {})",
                    row.features, row.prediction, row.margin
                ));
            }
        }
        println!(
            "{name:<22} {:<16} {:>3} trees {:>5} nodes depth {:>2}: {} rows ({missing} with a missing value), {exact} equal to the bit, largest difference {diff_max:e}",
            entry["objective"].as_str().unwrap(),
            model.trees(),
            model.nodes(),
            model.depth_max(),
            rows.len(),
        );
    }
    assert!(
        failures.is_empty(),
        "{} predictions differ from XGBoost's by more than {TOLERANCE} (seed {seed}):\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );

    let refused = manifest["refused"].as_array().unwrap();
    assert!(refused.len() >= 6, "{manifest}");
    for entry in refused {
        let name = entry["name"].as_str().unwrap();
        let expect = entry["expect"].as_str().unwrap();
        let path = dir.path().join(format!("{name}.json"));
        match TreeModel::load(&path, &FEATURES) {
            Ok(_) => panic!("{name}: loaded, but XGBoost's {name} model must be refused"),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains(expect),
                    "{name}: {expect:?} is not in: {message}"
                );
                println!("{name:<22} refused: {message}");
            }
        }
    }
}
