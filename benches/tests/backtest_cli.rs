//! Runs the built `levibot-bench backtest` on a short market and checks what it reports. Rates
//! are never asserted on: they depend on the machine and its load. What must hold whatever the
//! machine: every pass read every message, the raw-byte and decoded-record passes made the same
//! trading, and hftbacktest either ran on the same market or says why not.

use std::process::Command;

use serde_json::Value;

const MESSAGES: u64 = 20_000;

#[test]
fn backtest_json_has_every_pass_beside_its_floor() {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-bench"))
        .args(["backtest", "--messages", &MESSAGES.to_string(), "--json"])
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .expect("run levibot-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    let json: Value =
        serde_json::from_str(stdout.lines().last().expect("some output")).expect("JSON last");

    assert_eq!(json["bench"], "backtest");
    assert_eq!(json["messages"].as_u64(), Some(MESSAGES));
    let messages = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{pointer} missing from {json}"))
    };
    for pass in [
        "/session_generated/messages",
        "/baseline_journal_read_decode/messages",
        "/backtest_raw/pass/messages",
        "/backtest_raw/no_market_journal/messages",
        "/baseline_journal_records_read/messages",
        "/backtest_decoded/pass/messages",
        "/backtest_decoded/no_market_journal/messages",
    ] {
        assert_eq!(messages(pass), MESSAGES, "{pass}");
    }
    // The same market and maker: the same fills from the bytes as from the records.
    let fills = messages("/backtest_raw/fills");
    assert!(fills > 0, "the maker traded: {json}");
    assert_eq!(messages("/backtest_decoded/fills"), fills);

    let hft = &json["hftbacktest"];
    match hft.get("skipped") {
        Some(why) => {
            // Only where Python or hftbacktest is missing; it says so.
            let why = why.as_str().unwrap_or_default();
            assert!(why.contains("hftbacktest"), "{why}");
            println!("hftbacktest not run: {why}");
        }
        None => {
            assert!(
                hft["report"]["events"].as_u64().unwrap_or(0) > MESSAGES,
                "{hft}"
            );
            assert!(hft["report"]["fills"].as_u64().unwrap_or(0) > 0, "{hft}");
            assert_eq!(hft["report"]["strategy"], "numba", "{hft}");
        }
    }
    // The work files are gone but for what the caller's directory holds.
    assert!(!work.path().join("run").exists());
    assert!(!work.path().join("hftbacktest.npz").exists());
}
