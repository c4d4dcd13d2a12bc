//! `levictl capture check` as an operator runs it.

use std::process::Command;

use levibot_gateway::capture::corpus_dir;

fn levictl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_levictl"))
}

#[test]
fn capture_check_reports_the_corpus_as_json() {
    let dir = corpus_dir();
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
    assert_eq!(report["messages"], 265);
    assert_eq!(report["messages_by_stream"]["depth"], 177);
    assert_eq!(report["messages_by_stream"]["bookTicker"], 84);
    assert_eq!(report["messages_by_stream"]["other"], 2);
    assert_eq!(report["decode_errors"], 0);
    let nkn = &report["symbols"]["NKNUSDT"];
    assert_eq!(nkn["state"], "synced");
    assert_eq!(nkn["last_update_id"], 499870179);
    assert!(
        nkn["best_bid"]["price"]
            .as_str()
            .unwrap()
            .starts_with("0.35")
    );
    assert_eq!(report["symbols"].as_object().unwrap().len(), 4);
}

#[test]
fn capture_check_flags_a_damaged_capture() {
    let dir = corpus_dir();
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
