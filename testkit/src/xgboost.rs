//! XGBoost's own predictions on rows of features: the oracle of the tests that check the
//! `signal` strategy's model outputs (`python3` with `xgboost` and `numpy`, which
//! `scripts/install-test-deps` installs).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// What XGBoost said, and the model file's identity.
pub struct XgboostPredictions {
    /// One per row, in order.
    pub predictions: Vec<f64>,
    /// Python's `hashlib.sha256` of the model file, 64 hex digits.
    pub sha256: String,
    /// The model's feature names, in order.
    pub features: Vec<String>,
}

const PREDICT: &str = r#"
import hashlib, json, math, sys
import numpy as np, xgboost as xgb
model, rows = sys.argv[1], json.load(open(sys.argv[2]))
booster = xgb.Booster()
booster.load_model(model)
names = booster.feature_names
x = np.array([[math.nan if r[n] is None else r[n] for n in names] for r in rows], dtype=np.float64)
p = booster.predict(xgb.DMatrix(x, feature_names=names, missing=math.nan)) if rows else []
print(json.dumps({"predictions": [float(v) for v in p],
                  "sha256": hashlib.sha256(open(model, "rb").read()).hexdigest(),
                  "features": names}))
"#;

/// XGBoost's `predict` with the model file at `model` on `rows` (JSON objects holding the
/// model's features by name, null for missing), written to a file in `scratch`.
pub fn xgboost_predict(model: &Path, rows: &[&Value], scratch: &Path) -> XgboostPredictions {
    let file = scratch.join("xgboost-rows.json");
    std::fs::write(&file, serde_json::to_vec(rows).unwrap()).unwrap();
    let out: Value = serde_json::from_str(&crate::stdout_of(
        Command::new("python3")
            .args(["-c", PREDICT])
            .arg(model)
            .arg(&file),
    ))
    .unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    XgboostPredictions {
        predictions: out["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect(),
        sha256: out["sha256"].as_str().unwrap().to_owned(),
        features: strings(&out["features"]),
    }
}

/// The research loop's first steps on a journal, as docs/research.md runs them: `levictl
/// research dataset --horizon 500ms`, then `scripts/research/train.py` (20 rounds of depth 3 on
/// `ret_500ms`). Writes `dataset.parquet` and `model.json` in `dir`; returns the model's path
/// and what train.py printed.
pub fn train_on_journal(journal: &Path, dir: &Path) -> (PathBuf, Value) {
    let dataset = dir.join("dataset.parquet");
    crate::stdout_of(
        Command::new(crate::workspace_bin("levictl", "levictl"))
            .arg("--journal")
            .arg(journal)
            .args(["research", "dataset", "--horizon", "500ms", "-o"])
            .arg(&dataset),
    );
    let model = dir.join("model.json");
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/research/train.py");
    let trained = serde_json::from_str(&crate::stdout_of(
        Command::new("python3")
            .arg(train)
            .arg("--dataset")
            .arg(&dataset)
            .args(["--target", "ret_500ms", "--rounds", "20", "--depth", "3"])
            .arg("--out")
            .arg(&model),
    ))
    .unwrap();
    (model, trained)
}
