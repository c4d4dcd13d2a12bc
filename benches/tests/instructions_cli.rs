//! Runs the built `levibot-bench instructions` on a short stream (valgrind's callgrind counts,
//! Debian's `valgrind`, installed by scripts/install-test-deps) and checks what it reports:
//! every workload counted, the pipeline above decoding alone, the figures the table prints.

#[path = "support/cli.rs"]
mod cli;

use cli::{bench_stdout, last_json};

const MESSAGES: u64 = 2_000;

#[test]
fn instructions_counts_the_pipeline_beside_decoding_alone() {
    let have = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "valgrind is needed (scripts/install-test-deps installs it)"
    );
    let messages = MESSAGES.to_string();
    let stdout = bench_stdout(&["instructions", "--messages", &messages, "--json"]);
    let json = last_json(&stdout);
    assert_eq!(json["bench"], "instructions");
    assert_eq!(json["messages"], MESSAGES);
    let total = |w: &str| json["workloads"][w]["instructions"].as_u64().unwrap();
    let per_message = |w: &str| {
        let each = json["workloads"][w]["per_message"].as_f64().unwrap();
        assert_eq!(
            each,
            (total(w) as f64 / MESSAGES as f64).round(),
            "{w}: {json}"
        );
        each
    };
    let (decode, rtrb, std) = (
        per_message("decode"),
        per_message("pipeline_rtrb"),
        per_message("pipeline_std_mpsc"),
    );
    // Decoding a message takes hundreds of instructions at least; the pipeline decodes each
    // and does the rest of the engine's work besides.
    assert!(decode > 100.0, "{json}");
    assert!(rtrb > decode && std > decode, "{json}");
    // From the totals, not the rounded figures (which may differ from it by one).
    let past_decode = (total("pipeline_rtrb") as f64 - total("decode") as f64) / MESSAGES as f64;
    assert_eq!(
        json["pipeline_rtrb_past_decode_per_message"]
            .as_f64()
            .unwrap(),
        past_decode.round(),
        "{json}"
    );
    assert!(stdout.contains("pipeline_rtrb"), "{stdout}");
}
