//! `levibot-backtest run` as a quant runs it: on the committed synthetic capture and on the
//! Tardis sample made from it, with the summary, the journal and the report it writes; and the
//! errors a wrong command gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use levibot_gateway::capture::testdata_dir;
use levibot_testkit::workspace_bin;
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    testdata_dir().join("..").join(rel)
}

/// `levibot-backtest` with `args`.
pub(crate) fn backtest(args: &[&str]) -> Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_levibot-backtest"));
    Command::new(bin).args(args).output().unwrap()
}

/// The `--json` summary of a run that must have succeeded.
pub(crate) fn summary_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A journal as `levictl tail --json` prints it.
pub(crate) fn tail_json(journal: &Path) -> Vec<Value> {
    let out = Command::new(workspace_bin("levictl", "levictl"))
        .args(["tail", "--json", "--journal"])
        .arg(journal)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn a_capture_run_prints_its_summary_and_writes_a_journal_levictl_reads() {
    let out = tempfile::tempdir().unwrap();
    let config = testdata("backtest/maker-nknusdt.toml");
    let capture = testdata_dir();
    let output = backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        capture.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--report",
        out.path().join("report").to_str().unwrap(),
        "--json",
    ]);
    let summary = summary_of(&output);
    assert_eq!(summary["messages"], 1200);
    assert_eq!(summary["simulation"]["queue_model"], "risk_averse");
    assert_eq!(summary["simulation"]["order_entry_latency_ns"], 100_000);
    let orders = &summary["orders"];
    let sent = orders["new"].as_u64().unwrap()
        + orders["cancel"].as_u64().unwrap()
        + orders["replace"].as_u64().unwrap();
    assert!(sent > 0, "{summary}");
    // The journal is LeviBot's own: levictl reads every order the run sent.
    let records = tail_json(&out.path().join("journal"));
    let journaled_sent = records.iter().filter(|r| r["type"] == "order_sent").count() as u64;
    let kinds: std::collections::BTreeSet<String> =
        records.iter().map(|r| r["type"].to_string()).collect();
    assert_eq!(journaled_sent, sent, "record types: {kinds:?}");
    let html = std::fs::read_to_string(out.path().join("report/report.html")).unwrap();
    assert!(html.contains("NKNUSDT") && html.contains("<svg"));
}

#[test]
fn a_tardis_run_reads_the_book_and_trades_files() {
    let out = tempfile::tempdir().unwrap();
    let config = testdata("backtest/maker-nknusdt.toml");
    let book = testdata("tardis-sample/incremental_book_L2.csv.gz");
    let trades = testdata("tardis-sample/trades.csv.gz");
    let output = backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--tardis-book",
        book.to_str().unwrap(),
        "--tardis-trades",
        trades.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    let summary = summary_of(&output);
    // The sample holds NKNUSDT's 232 depth updates and 58 trades (its README).
    assert_eq!(summary["messages"], 232 + 58);
    assert!(summary["orders"]["new"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn wrong_commands_say_what_is_wrong() {
    let out = tempfile::tempdir().unwrap();
    let config = testdata("backtest/maker-nknusdt.toml");
    // No input.
    let output = backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--capture"), "{err}");
    // A queue model that does not exist: clap names the allowed ones.
    let output = backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        testdata_dir().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--queue",
        "fifo",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("risk_averse"));
    // A journal already there is not overwritten.
    for expected in [true, false] {
        let output = backtest(&[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--capture",
            testdata_dir().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert_eq!(output.status.success(), expected);
        if !expected {
            assert!(String::from_utf8_lossy(&output.stderr).contains("already holds a journal"));
        }
    }
}

#[test]
fn a_backtest_journal_replays_to_the_same_summary_as_its_capture() {
    let out = tempfile::tempdir().unwrap();
    let config = testdata("backtest/maker-nknusdt.toml");
    let first = out.path().join("first");
    let mut capture_run = summary_of(&backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        testdata_dir().to_str().unwrap(),
        "--out",
        first.to_str().unwrap(),
        "--json",
    ]));
    // The journal keeps the venue's bytes with their receive times, and which instrument
    // each REST snapshot was for: replayed, the same market gives the same run.
    let second = out.path().join("second");
    let journal_run = summary_of(&backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--journal",
        first.join("journal").to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
        "--json",
    ]));
    // Replaying a journal also compares the run with what the journal's session did.
    let mut journal_run = journal_run;
    let versus = journal_run
        .as_object_mut()
        .unwrap()
        .insert("versus_live".into(), Value::Null)
        .unwrap();
    assert_eq!(versus["decisions_equal"], true, "{versus}");
    let sent = capture_run["orders"]["new"].as_u64().unwrap()
        + capture_run["orders"]["replace"].as_u64().unwrap()
        + capture_run["orders"]["cancel"].as_u64().unwrap();
    assert_eq!(versus["decisions_compared"].as_u64(), Some(sent));
    assert_eq!(versus["first_fill_difference"], Value::Null);
    assert_eq!(capture_run, journal_run);
    let orders = |dir: &Path| -> Vec<String> {
        tail_json(&dir.join("journal"))
            .into_iter()
            .filter(|r| r["type"] == "order_sent")
            .map(|r| format!("{} {} {} {}", r["kind"], r["side"], r["px"], r["qty"]))
            .collect()
    };
    let sent = orders(&first);
    assert!(!sent.is_empty());
    assert_eq!(sent, orders(&second));

    // The journal's decoded records (no decoding on either side) make the same run as its
    // bytes: the records are what the live decoder made of them.
    let third = out.path().join("third");
    let mut decoded_run = summary_of(&backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--journal",
        first.join("journal").to_str().unwrap(),
        "--decoded",
        "--out",
        third.to_str().unwrap(),
        "--json",
    ]));
    let versus = decoded_run
        .as_object_mut()
        .unwrap()
        .insert("versus_live".into(), Value::Null)
        .unwrap();
    assert_eq!(versus["decisions_equal"], true, "{versus}");
    assert_eq!(versus["first_fill_difference"], Value::Null);
    assert_eq!(sent, orders(&third));
    // Its journal holds the records, not the bytes, of the market it replayed.
    let types = |dir: &Path, t: &str| {
        tail_json(&dir.join("journal"))
            .iter()
            .filter(|r| r["type"] == t)
            .count()
    };
    // Only the messages the feed decoded have records: those of the config's instruments
    // (the capture also has other symbols' messages, which the bytes' replay counts).
    let records = ["depth_diff", "book_ticker", "agg_trade", "trade"]
        .iter()
        .map(|t| types(&first, t))
        .sum::<usize>();
    assert_eq!(decoded_run["messages"].as_u64(), Some(records as u64));
    assert!(capture_run["messages"].as_u64().unwrap() > records as u64);
    for run in [&mut capture_run, &mut decoded_run] {
        let run = run.as_object_mut().unwrap();
        run.remove("messages");
        // The last message of all was another symbol's.
        run.remove("end_t_ns");
    }
    assert_eq!(capture_run, decoded_run);
    assert_eq!(types(&third, "depth_diff"), types(&first, "depth_diff"));
    // Only the REST snapshots come raw.
    let raw = types(&third, "raw_message");
    assert!(
        raw > 0 && raw * 100 < types(&first, "raw_message"),
        "{raw} raw messages"
    );
}

#[test]
fn without_the_market_journal_the_run_is_the_same_and_its_journal_has_what_the_engine_did() {
    let out = tempfile::tempdir().unwrap();
    let config = testdata("backtest/maker-nknusdt.toml");
    let capture = testdata_dir();
    let run = |name: &str, extra: &[&str]| {
        let dir = out.path().join(name);
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap(),
            "--capture",
            capture.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut summary = summary_of(&backtest(&args));
        let simulation = summary["simulation"].as_object_mut().unwrap();
        let journal_market = simulation.remove("journal_market").unwrap();
        (summary, journal_market, tail_json(&dir.join("journal")))
    };
    let (full, full_market, full_journal) = run("full", &[]);
    let (lean, lean_market, lean_journal) = run("lean", &["--no-market-journal"]);
    assert_eq!(
        (full_market, lean_market),
        (Value::Bool(true), Value::Bool(false))
    );
    assert_eq!(full, lean);
    let count = |journal: &[Value], t: &str| journal.iter().filter(|r| r["type"] == t).count();
    for market in ["raw_message", "depth_diff", "book_ticker", "agg_trade"] {
        assert!(count(&full_journal, market) > 0, "{market}");
        assert_eq!(count(&lean_journal, market), 0, "{market}");
    }
    for engine in [
        "order_request",
        "order_sent",
        "execution_report",
        "instrument_def",
    ] {
        assert_eq!(
            count(&full_journal, engine),
            count(&lean_journal, engine),
            "{engine}"
        );
    }
    assert!(count(&lean_journal, "order_sent") > 0);

    // Such a journal cannot be replayed: the error says what it lacks and where.
    let lean_dir = out.path().join("lean").join("journal");
    for extra in [&[][..], &["--decoded"][..]] {
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap(),
            "--journal",
            lean_dir.to_str().unwrap(),
            "--out",
        ];
        let replay = out.path().join(format!("replay{}", extra.len()));
        args.push(replay.to_str().unwrap());
        args.extend_from_slice(extra);
        let output = backtest(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains(lean_dir.to_str().unwrap()) && stderr.contains("--no-market-journal"),
            "{stderr}"
        );
    }
}

#[test]
fn real_corpus_a_binance_recording_runs_through_the_backtest() {
    let Some(recording) =
        levibot_gateway::capture::real_corpus_for("real_corpus_a_binance_recording_runs")
    else {
        return;
    };
    let dir = levibot_gateway::capture::corpus_dir().unwrap().unwrap();
    let out = tempfile::tempdir().unwrap();
    // The test config with the recording's own exchangeInfo.
    let text = std::fs::read_to_string(testdata("backtest/maker-nknusdt.toml"))
        .unwrap()
        .replace(
            "\"../binance-spot-synthetic/BINANCE.0\"",
            &format!("{:?}", dir.join("BINANCE.0")),
        );
    let config = out.path().join("maker.toml");
    std::fs::write(&config, text).unwrap();
    let summary = summary_of(&backtest(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--capture",
        dir.to_str().unwrap(),
        "--out",
        out.path().join("run").to_str().unwrap(),
        "--report",
        out.path().join("report").to_str().unwrap(),
        "--json",
    ]));
    // Every stream message of the recording is replayed (kline_1m and the other symbols'
    // included: the venue and the engine read them, and skip what they do not trade).
    let stream_messages = recording.messages().count() as u64;
    assert_eq!(summary["messages"].as_u64(), Some(stream_messages));
    // The maker quoted NKNUSDT once its book synced from the recording's snapshot.
    assert!(summary["orders"]["new"].as_u64().unwrap() > 0, "{summary}");
    assert!(out.path().join("report/report.html").exists());
}
