//! `levictl capture check` as an operator runs it.

use std::process::Command;

use std::path::Path;

use levibot_gateway::capture::{corpus_dir, real_corpus_for, testdata_dir};

fn levictl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_levictl"))
}

/// `levictl capture check --json` on the recording in `dir`: its report.
fn capture_check_json(dir: &Path) -> serde_json::Value {
    let out = levictl()
        .args(["capture", "check"])
        .arg(dir.join("BINANCE.ws.1.0"))
        .arg("--snapshots")
        .arg(dir.join("BINANCE.http.0.0"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["decode_errors"], 0);
    assert_eq!(report["symbols"].as_object().unwrap().len(), 4);
    assert_eq!(report["symbols"]["NKNUSDT"]["state"], "synced");
    report
}

#[test]
fn capture_check_reports_the_testdata_as_json() {
    let dir = testdata_dir();
    let report = capture_check_json(&dir);
    // The oracle: the capture's lines read with serde_json, without the decoder or the books.
    let text = std::fs::read_to_string(dir.join("BINANCE.ws.1.0")).unwrap();
    let messages: Vec<serde_json::Value> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l.split_once(": ").unwrap().1).unwrap())
        .collect();
    let of = |suffix: &str| {
        messages
            .iter()
            .filter(|m| m["stream"].as_str().unwrap().ends_with(suffix))
            .count()
    };
    let last_nkn_diff = messages
        .iter()
        .rfind(|m| m["stream"] == "nknusdt@depth@100ms")
        .unwrap();
    assert_eq!(report["messages"], messages.len());
    assert_eq!(report["messages_by_stream"]["depth"], of("@depth@100ms"));
    assert_eq!(
        report["messages_by_stream"]["bookTicker"],
        of("@bookTicker")
    );
    let nkn = &report["symbols"]["NKNUSDT"];
    assert_eq!(nkn["last_update_id"], last_nkn_diff["data"]["u"]);
    assert!(
        nkn["best_bid"]["price"]
            .as_str()
            .unwrap()
            .starts_with("0.3")
    );
}

#[test]
fn real_corpus_capture_check_reports_the_corpus_as_json() {
    if real_corpus_for("real_corpus_capture_check_reports_the_corpus_as_json").is_none() {
        return;
    }
    let report = capture_check_json(&corpus_dir().unwrap().unwrap());
    // Counted by hand in the recording (its NOTICE.md).
    assert_eq!(report["messages"], 265);
    assert_eq!(report["messages_by_stream"]["depth"], 177);
    assert_eq!(report["messages_by_stream"]["bookTicker"], 84);
    assert_eq!(report["messages_by_stream"]["other"], 2);
    let nkn = &report["symbols"]["NKNUSDT"];
    assert_eq!(nkn["last_update_id"], 499870179);
    assert!(
        nkn["best_bid"]["price"]
            .as_str()
            .unwrap()
            .starts_with("0.35")
    );
}

#[test]
fn capture_check_flags_a_damaged_capture() {
    let dir = testdata_dir();
    let tmp = std::env::temp_dir().join(format!("levictl-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let original = std::fs::read_to_string(dir.join("BINANCE.ws.1.0")).unwrap();
    // Drop one NKNUSDT depth update (a gap) and garble one message (a decode error).
    let mut dropped = false;
    let mut damaged = String::new();
    for (n, line) in original.lines().enumerate() {
        if !dropped && n > 60 && line.contains("nknusdt@depth") {
            dropped = true;
            continue;
        }
        if n == 5 {
            damaged.push_str(&line.replacen("\"data\":{", "\"data\":{{", 1));
        } else {
            damaged.push_str(line);
        }
        damaged.push('\n');
    }
    let capture = tmp.join("capture");
    std::fs::write(&capture, damaged).unwrap();
    let out = levictl()
        .args(["capture", "check"])
        .arg(&capture)
        .arg("--snapshots")
        .arg(dir.join("BINANCE.http.0.0"))
        .arg("--exchange-info")
        .arg(dir.join("BINANCE.0"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("decode errors 1"), "{text}");
    assert!(text.contains("line 6 (byte"), "{text}");
    let nkn = text.lines().find(|l| l.starts_with("NKNUSDT")).unwrap();
    assert!(nkn.contains("needs_resync"), "{nkn}");

    let missing = levictl()
        .args([
            "capture",
            "check",
            "/nonexistent/capture",
            "--snapshots",
            "/nonexistent/snaps",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Every command, as listed in `levictl --help`.
const COMMANDS: [&str; 10] = [
    "capture",
    "tail",
    "stat",
    "export",
    "status",
    "kill",
    "resume",
    "reload",
    "set",
    "completions",
];

#[test]
fn every_command_has_help_and_the_shells_get_completions_for_all_of_them() {
    for command in COMMANDS {
        let out = levictl().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help");
        assert!(help.contains("Usage: levictl"), "{command}: {help}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = levictl().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in COMMANDS {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
    let out = levictl().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn kill_help_lists_its_exit_statuses() {
    let out = levictl().args(["kill", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(
        help.contains("3  the kill was taken but not everything is confirmed"),
        "{help}"
    );
    assert!(help.contains("prints what is confirmed"), "{help}");
}
