//! Runs the built `levibot-bench decode` in quick mode on the corpus and checks what it reports.
//! Timings are never asserted on: they depend on the machine and its load. (The run itself
//! checks that every baseline decodes every corpus message to the same records as ours, and
//! fails otherwise.)

use std::process::Command;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;

use cli::{LATENCY_FIGURES, bench_stdout, positive_number};

const ITERATIONS: u64 = 20;

fn run_quick() -> String {
    bench_stdout(&["decode", "--iterations", &ITERATIONS.to_string(), "--json"])
}

#[test]
fn decode_json_has_every_figure() {
    let stdout = run_quick();
    let last_line = stdout.lines().last().expect("some output");
    let json: Value = serde_json::from_str(last_line).expect("the last line is JSON");

    assert_eq!(json["benchmark"], "decode");
    assert_eq!(positive_number(&json, "/iterations"), ITERATIONS as f64);
    positive_number(&json, "/rounds");
    positive_number(&json, "/machine/nproc");
    positive_number(&json, "/clock_resolution_ns");
    positive_number(&json, "/timer_overhead/ops");
    for key in ["cpu_model", "kernel"] {
        let value = json["machine"][key].as_str().expect("a machine string");
        assert!(!value.is_empty(), "machine.{key} is empty");
    }

    // The recording it read (the real one if this machine has it, else the repository's
    // synthetic one), counted from its files without a decoder: stream names in the lines, and
    // the REST snapshot lines.
    let dir = std::path::Path::new(json["data"]["dir"].as_str().expect("data.dir"));
    let capture = std::fs::read_to_string(dir.join("BINANCE.ws.1.0")).unwrap();
    let snapshots = std::fs::read_to_string(dir.join("BINANCE.http.0.0")).unwrap();
    let count = |needle: &str| capture.matches(needle).count() as f64;
    let lines = capture.lines().filter(|l| !l.trim().is_empty()).count() as f64 - 1.0;
    let types = [
        ("book_ticker", count("@bookTicker\",")),
        ("depth_update", count("@depth@100ms\",")),
        ("agg_trade", count("@aggTrade\",")),
        (
            "depth_snapshot",
            snapshots.lines().filter(|l| l.contains(" -> ")).count() as f64,
        ),
    ];
    let timed: f64 = types[..3].iter().map(|(_, n)| n).sum();
    assert_eq!(json["types"].as_object().expect("types").len(), types.len());
    assert_eq!(json["untimed_messages"].as_f64(), Some(lines - timed));
    for (kind, messages) in types {
        let at = |key: &str| format!("/types/{kind}/{key}");
        assert_eq!(positive_number(&json, &at("messages")), messages);
        positive_number(&json, &at("mean_message_bytes"));
        let passes = positive_number(&json, &at("passes"));
        positive_number(&json, &at("warmup_passes"));

        let mut implementations = vec!["ours", "serde_json", "sonic_rs"];
        if kind == "depth_snapshot" {
            // There is no general-path-only snapshot decoder.
            assert!(json.pointer(&at("ours_general")).is_none(), "{json}");
        } else {
            implementations.push("ours_general");
        }
        for implementation in implementations {
            for figure in LATENCY_FIGURES.iter().chain(&["batch_ns_per_message"]) {
                positive_number(&json, &at(&format!("{implementation}/{figure}")));
            }
            // Every message timed once per pass.
            assert_eq!(
                positive_number(&json, &at(&format!("{implementation}/ops"))),
                messages * passes
            );
        }
        for ratio in [
            "serde_json_p50_over_ours",
            "serde_json_batch_over_ours",
            "sonic_rs_p50_over_ours",
            "sonic_rs_batch_over_ours",
        ] {
            positive_number(&json, &at(ratio));
        }
    }
    assert_eq!(
        positive_number(&json, "/types/book_ticker/passes"),
        ITERATIONS as f64
    );

    // The human table comes first.
    assert!(
        stdout.contains("ours: Decoder::decode (scanner)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sonic_rs::from_slice + parse_units"),
        "{stdout}"
    );
}

#[test]
fn decode_rejects_too_few_iterations() {
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .args(["decode", "--iterations", "1"])
        .output()
        .expect("run levibot-bench");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--iterations"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
