//! Runs the built `levibot-bench tick-to-trade` briefly and checks what it reports: every run
//! (corpus and synthetic, rtrb and the std channel baseline) with every stage's percentiles, the
//! ring hop, and the refusal of a busy-spinning spread layout on a machine with too few cores.
//! Timings are never asserted on. Agents yield (the test machine has 2 cores and other tests).

use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;

use cli::bench_stdout;

const STAGES: [&str; 7] = [
    "decode",
    "strategy",
    "risk",
    "encode",
    "between_stages",
    "tick_to_trade",
    "tick_to_trade_from_due",
];

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .arg("tick-to-trade")
        .args(args)
        .output()
        .expect("run levibot-bench")
}

#[test]
fn tick_to_trade_json_has_every_stage_of_every_run() {
    let stdout = bench_stdout(&[
        "tick-to-trade",
        "--idle",
        "yield",
        "--rate",
        "20000",
        "--duration",
        "0.2",
        "--corpus-passes",
        "4",
        "--hop-messages",
        "1000",
        "--json",
    ]);
    assert!(stdout.contains("tick_to_trade"), "{stdout}");
    let json: Value =
        serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON");
    assert_eq!(json["benchmark"], "tick_to_trade");
    assert_eq!(json["layout"], "fused");
    // The recording the corpus runs replayed (the real one if this machine has it, else the
    // repository's synthetic one), its messages counted from the file: lines after the header.
    let dir = json["data"]["dir"].as_str().expect("data.dir");
    let capture =
        std::fs::read_to_string(std::path::Path::new(dir).join("BINANCE.ws.1.0")).unwrap();
    let recorded = capture.lines().filter(|l| !l.trim().is_empty()).count() - 1;
    assert!(
        json["data"]["source"]
            .as_str()
            .unwrap()
            .contains("recording")
    );
    for source in ["corpus", "synthetic"] {
        for rings in ["rtrb", "std_mpsc"] {
            let run = &json["runs"][source][rings];
            let messages = run["messages"].as_u64().expect("messages");
            let expected = if source == "corpus" {
                4 * recorded
            } else {
                4_000
            };
            assert_eq!(messages, expected as u64, "{source}/{rings}");
            assert!(run["orders_sent"].as_u64().unwrap() > 0, "{source}/{rings}");
            assert_eq!(run["decode_errors"], 0);
            for stage in STAGES {
                let p = &run["stages"][stage];
                let p50 = p["p50_ns"].as_u64().expect("p50");
                let max = p["max_ns"].as_u64().expect("max");
                assert!(p50 >= 1 && p50 <= max, "{source}/{rings}/{stage}: {p}");
            }
        }
    }
    for rings in ["rtrb", "std_mpsc"] {
        assert!(json["ring_hop"][rings]["p50_ns"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_spread_layout_of_spinners_needs_a_core_each() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 4 {
        eprintln!("{cores} cores: the refusal cannot happen here");
        return;
    }
    let output = bench(&["--layout", "spread", "--duration", "0.1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--idle yield"), "{stderr}");
}
