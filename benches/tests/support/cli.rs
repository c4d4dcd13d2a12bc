//! What the `levibot-bench` CLI tests share: running the built binary, and reading the figures
//! of its JSON. Each test file includes it with `#[path = "support/cli.rs"] mod cli;` (every
//! file of `tests/` is a test binary of its own here; this directory is not).

#![allow(dead_code)] // each test file uses part of it

use std::process::Command;

use serde_json::Value;

/// `levibot-bench` with `args`, which must succeed; its stdout.
pub fn bench_stdout(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .args(args)
        .output()
        .expect("run levibot-bench");
    assert!(
        output.status.success(),
        "levibot-bench failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// The JSON object on the last line of `stdout` (`--json`).
pub fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().expect("some output"))
        .expect("the last line is JSON")
}

/// The figures of a latency object (`LatencySummary::to_json`) that are positive whenever
/// anything ran; `ops` is checked against the count each test expects.
pub const LATENCY_FIGURES: [&str; 6] = [
    "ops_per_sec",
    "latency_ns_p50",
    "latency_ns_p99",
    "latency_ns_p999",
    "latency_ns_max",
    "latency_ns_mean",
];

/// The number at `pointer` in `json`, which must be there and positive.
pub fn positive_number(json: &Value, pointer: &str) -> f64 {
    let value = json
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} missing from {json}"));
    let number = value
        .as_f64()
        .unwrap_or_else(|| panic!("{pointer} is not a number: {value}"));
    assert!(number > 0.0, "{pointer} is {number}, expected > 0");
    number
}
