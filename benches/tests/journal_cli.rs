//! Runs the built `levibot-bench journal` in quick mode and checks what it reports. Timings are
//! never asserted on: they depend on the machine and its load.

use std::sync::Mutex;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;

use cli::{bench_stdout, positive_number};

/// Each run spins two threads; two runs at once would oversubscribe a 2-core machine.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `levibot-bench journal --frames 20000 --json` with `extra` arguments; returns stdout.
fn run_quick(extra: &[&str]) -> String {
    let _one = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut args = vec!["journal", "--frames", "20000", "--json"];
    args.extend_from_slice(extra);
    bench_stdout(&args)
}

#[test]
fn journal_json_has_every_figure() {
    let stdout = run_quick(&[]);
    let last_line = stdout.lines().last().expect("some output");
    let json: Value = serde_json::from_str(last_line).expect("the last line is JSON");

    assert_eq!(json["benchmark"], "journal");
    assert_eq!(positive_number(&json, "/frames"), 20000.0);
    assert_eq!(positive_number(&json, "/frame_bytes"), 64.0);
    assert_eq!(positive_number(&json, "/frame_header_bytes"), 32.0);
    assert_eq!(positive_number(&json, "/payload_bytes"), 32.0);
    positive_number(&json, "/segment_size_bytes");
    positive_number(&json, "/machine/nproc");
    for key in ["cpu_model", "kernel"] {
        let value = json["machine"][key].as_str().expect("a machine string");
        assert!(!value.is_empty(), "machine.{key} is empty");
    }

    for run in [
        "journal_1_writer",
        "journal_2_writers",
        "mutex_vec_1_thread",
        "mutex_vec_2_threads",
        "mpsc_sync_channel_send_1_producer",
    ] {
        for figure in [
            "ops",
            "ops_per_sec",
            "latency_ns_p50",
            "latency_ns_p99",
            "latency_ns_p999",
            "latency_ns_max",
        ] {
            positive_number(&json, &format!("/append/{run}/{figure}"));
        }
    }
    assert_eq!(
        positive_number(&json, "/append/journal_2_writers/ops"),
        40000.0
    );

    for run in [
        "journal_prefilled",
        "journal_live",
        "journal_live_writer",
        "mpsc_recv_prefilled",
    ] {
        for figure in [
            "frames",
            "frames_per_sec",
            "gb_per_sec",
            "payload_gb_per_sec",
        ] {
            positive_number(&json, &format!("/tail/{run}/{figure}"));
        }
    }

    // The human table comes first.
    assert!(stdout.contains("journal append (ours)"), "{stdout}");
    assert!(
        stdout.contains("mpsc recv, pre-filled (baseline)"),
        "{stdout}"
    );
}

#[test]
fn journal_removes_its_scratch_directory() {
    let parent = std::env::temp_dir().join(format!("levibot-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&parent).expect("create the parent directory");
    let stdout = run_quick(&["--dir", parent.to_str().expect("utf-8 temp dir")]);
    assert!(stdout.lines().last().is_some_and(|l| l.starts_with('{')));
    let left: Vec<_> = std::fs::read_dir(&parent)
        .expect("list the parent directory")
        .collect();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        parent.display()
    );
    std::fs::remove_dir_all(&parent).expect("remove the parent directory");
}
