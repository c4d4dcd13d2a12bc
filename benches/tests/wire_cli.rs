//! Runs the built `levibot-bench wire` briefly (200 frames) and checks what it reports: both
//! runs (the pipeline against the in-process venue over loopback, and the echo baseline) with
//! their percentiles. Timings are never asserted on.

use std::process::Command;

use serde_json::Value;

#[test]
fn wire_json_has_both_runs() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .args(["wire", "--messages", "200", "--rate", "1000", "--json"])
        .output()
        .expect("run levibot-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if cores < 2 {
        assert!(
            !output.status.success() && stderr.contains("2 cores"),
            "{stderr}"
        );
        return;
    }
    assert!(output.status.success(), "levibot-bench failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let json: Value =
        serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON");
    assert_eq!(json["benchmark"], "wire");
    for run in ["pipeline", "echo_baseline"] {
        let r = &json[run];
        let answered = r["answered"].as_u64().expect("answered");
        assert!(answered > 0, "{run}: no frame was answered: {r}");
        let p50 = r["p50_ns"].as_u64().expect("p50");
        assert!(
            p50 > 0 && p50 <= r["max_ns"].as_u64().unwrap(),
            "{run}: {r}"
        );
    }
}
