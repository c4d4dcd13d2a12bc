//! Runs the built `levibot-bench model` in quick mode, on the generated model and on a model
//! file, and checks what it reports. Timings are never asserted on: they depend on the machine
//! and its load.

use std::process::Command;

use levibot_model::Objective;
use levibot_model::synthetic::{FEATURES, SyntheticModel, model_json};
use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;

use cli::{LATENCY_FIGURES, bench_stdout, last_json, positive_number};

const ITERATIONS: u64 = 20;
const EVENTS: u64 = 50;

fn run(extra: &[&str]) -> (String, Value) {
    let (iterations, events) = (ITERATIONS.to_string(), EVENTS.to_string());
    let mut args = vec![
        "model",
        "--iterations",
        &iterations,
        "--events",
        &events,
        "--json",
    ];
    args.extend_from_slice(extra);
    let stdout = bench_stdout(&args);
    let json = last_json(&stdout);
    (stdout, json)
}

#[test]
fn model_json_has_the_tree_model_beside_the_linear_vote() {
    let (stdout, json) = run(&[]);
    assert_eq!(json["benchmark"], "model");
    assert_eq!(positive_number(&json, "/iterations"), ITERATIONS as f64);
    assert_eq!(positive_number(&json, "/events"), EVENTS as f64);
    positive_number(&json, "/events_missing_values");
    positive_number(&json, "/rounds");
    positive_number(&json, "/machine/nproc");
    positive_number(&json, "/clock_resolution_ns");
    positive_number(&json, "/timer_overhead/ops");

    assert_eq!(json["model"]["source"], "generated");
    assert_eq!(json["model"]["trees"], 100);
    assert_eq!(json["model"]["nodes"], 100 * 127);
    assert_eq!(json["model"]["depth_max"], 6);
    assert_eq!(json["model"]["node_visits_max"], 600);
    assert_eq!(json["model"]["objective"], "binary:logistic");
    positive_number(&json, "/model/bytes");
    positive_number(&json, "/model/load_ms");

    for implementation in ["tree_model", "linear_vote"] {
        for figure in LATENCY_FIGURES.iter().chain(&["batch_ns_per_event"]) {
            positive_number(&json, &format!("/{implementation}/{figure}"));
        }
        // Every event timed once per pass.
        assert_eq!(
            positive_number(&json, &format!("/{implementation}/ops")),
            (EVENTS * ITERATIONS) as f64
        );
    }
    positive_number(&json, "/tree_model_p50_over_linear");
    positive_number(&json, "/tree_model_batch_over_linear");

    // The human table comes first.
    assert!(
        stdout.contains("tree model: TreeModel::predict"),
        "{stdout}"
    );
    assert!(
        stdout.contains("linear vote: 4 weights (baseline)"),
        "{stdout}"
    );
}

#[test]
fn model_generates_the_size_asked_for() {
    let (_, json) = run(&["--trees", "9", "--depth", "3"]);
    assert_eq!(json["model"]["trees"], 9);
    assert_eq!(json["model"]["nodes"], 9 * 15);
    assert_eq!(json["model"]["node_visits_max"], 9 * 3);
}

#[test]
fn model_reads_a_model_file_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    let text = model_json(&SyntheticModel {
        features: &FEATURES,
        trees: 7,
        depth: 3,
        objective: Objective::SquaredError,
        base_score: 0.0,
        seed: 3,
    });
    std::fs::write(&path, text).unwrap();
    let (_, json) = run(&["--model", path.to_str().unwrap()]);
    assert_eq!(json["model"]["source"], path.to_str().unwrap());
    assert_eq!(json["model"]["trees"], 7);
    assert_eq!(json["model"]["nodes"], 7 * 15);
    assert_eq!(json["model"]["objective"], "reg:squarederror");

    // A model of other features is refused, naming the file and the feature.
    let mut other = FEATURES;
    other[5] = "spread";
    let text = model_json(&SyntheticModel {
        features: &other,
        trees: 1,
        depth: 1,
        objective: Objective::SquaredError,
        base_score: 0.0,
        seed: 3,
    });
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .args(["model", "--model", path.to_str().unwrap()])
        .output()
        .expect("run levibot-bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(path.to_str().unwrap())
            && stderr.contains("learner.feature_names[5]: feature 5 is `spread` in the model"),
        "{stderr}"
    );
}
