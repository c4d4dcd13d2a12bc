//! `levibot-backtest run --set ...`: parameter sweeps on the committed synthetic capture with the
//! maker on NKNUSDT. The grid's points become rows in index order, each the same summary as a
//! plain run of its settings; shards together make the whole table; `--jobs 2` writes the same
//! bytes as `--jobs 1`; bad keys and values are refused, naming them, before anything runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use levibot_gateway::capture::testdata_dir;
use serde_json::Value;

const REQUOTE: &str = "instruments[NKNUSDT].maker.requote_threshold_ticks";
const LATENCY: &str = "sim.order_latency_us";

fn config() -> PathBuf {
    testdata_dir().join("../backtest/maker-nknusdt.toml")
}

/// `levibot-backtest run` on the capture with `config`, into `out`, with `extra` arguments.
pub(crate) fn run(config: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levibot-backtest"))
        .args(["run", "--config"])
        .arg(config)
        .arg("--capture")
        .arg(testdata_dir())
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The 2x2 grid: requote threshold (0 ticks requotes on every move, 2 ticks far less) by order
/// latency.
pub(crate) fn grid_args() -> Vec<String> {
    vec![
        "--set".into(),
        format!("{REQUOTE}=0,2"),
        "--set".into(),
        format!("{LATENCY}=50,200"),
    ]
}

fn sweep(out: &Path, extra: &[&str]) -> Output {
    let mut args = grid_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&config(), out, &args)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CSV's header and rows, split into fields (no field of these tables is quoted).
fn table(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = read(out.join("sweep.csv"));
    let mut lines = text.lines().map(|l| {
        assert!(!l.contains('"'), "{l}");
        l.split(',').map(str::to_owned).collect::<Vec<_>>()
    });
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[test]
fn a_two_by_two_grid_gives_four_rows_each_a_plain_run_of_its_point() {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("reports");
    let output = sweep(out.path(), &["--report", report.to_str().unwrap()]);
    ok(&output);
    let (header, rows) = table(out.path());
    assert_eq!(header[..5], ["index", REQUOTE, LATENCY, "status", "error"]);
    let points: Vec<[&str; 4]> = rows
        .iter()
        .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
        .collect();
    assert_eq!(
        points,
        [
            ["0", "0", "50", "ok"],
            ["1", "0", "200", "ok"],
            ["2", "2", "50", "ok"],
            ["3", "2", "200", "ok"],
        ]
    );
    // The figures come from the points: the requote threshold changes how many orders are
    // sent, the latency the round trips (twice the one-way latency).
    let (replace, p50) = (
        column(&header, "orders_replace"),
        column(&header, "latency_new_p50_us"),
    );
    let replaces: Vec<u64> = rows.iter().map(|r| r[replace].parse().unwrap()).collect();
    assert_eq!(replaces[0], replaces[1]);
    assert_eq!(replaces[2], replaces[3]);
    assert!(replaces[0] > 2 * replaces[2], "{replaces:?}");
    let p50s: Vec<&str> = rows.iter().map(|r| r[p50].as_str()).collect();
    assert_eq!(p50s, ["100", "400", "100", "400"]);
    for r in &rows {
        assert_eq!(r[column(&header, "messages")], "1200");
    }

    // Each point has its journal and report.
    for index in 0..4 {
        let point = out.path().join(format!("points/{index}/journal"));
        assert!(std::fs::read_dir(&point).unwrap().count() > 0);
        assert!(report.join(format!("points/{index}/report.html")).is_file());
    }

    // Point 2 (threshold 2 ticks, 50 µs) is a plain run of that config with that latency.
    let lines: Vec<Value> = read(out.path().join("sweep.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let point = &lines[2];
    assert_eq!(point["index"], 2);
    assert_eq!(point["settings"][REQUOTE], "2");
    assert_eq!(point["settings"][LATENCY], "50");
    assert!(point["error"].is_null());
    let dir = tempfile::tempdir().unwrap();
    let text = read(config())
        .replace("requote_threshold_ticks = 0", "requote_threshold_ticks = 2")
        .replace(
            "\"../binance-spot-synthetic/BINANCE.0\"",
            &format!("{:?}", testdata_dir().join("BINANCE.0")),
        );
    let edited = dir.path().join("point-2.toml");
    std::fs::write(&edited, text).unwrap();
    let plain = run(
        &edited,
        &dir.path().join("out"),
        &["--order-latency-us", "50", "--json"],
    );
    ok(&plain);
    let plain: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(point["summary"], plain);
    assert_eq!(
        rows[2][replace],
        plain["orders"]["replace"].as_u64().unwrap().to_string()
    );
    assert_eq!(
        rows[2][column(&header, "NKNUSDT.net_pnl_quote")],
        plain["instruments"][0]["net_pnl_quote"]
            .as_f64()
            .unwrap()
            .to_string()
    );
}

#[test]
fn jobs_2_writes_the_same_table_as_jobs_1() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ok(&sweep(one.path(), &["--jobs", "1"]));
    ok(&sweep(two.path(), &["--jobs", "2"]));
    for file in ["sweep.csv", "sweep.jsonl"] {
        let (a, b) = (read(one.path().join(file)), read(two.path().join(file)));
        assert_eq!(a.lines().count(), 5 - usize::from(file == "sweep.jsonl"));
        assert_eq!(a, b, "{file}");
    }
}

#[test]
fn shards_together_are_the_whole_table_once() {
    let whole = tempfile::tempdir().unwrap();
    ok(&sweep(whole.path(), &[]));
    let (whole_header, whole_rows) = table(whole.path());
    let mut merged = Vec::new();
    let mut merged_json: Vec<String> = Vec::new();
    for shard in ["0/2", "1/2"] {
        let out = tempfile::tempdir().unwrap();
        ok(&sweep(out.path(), &["--shard", shard, "--jobs", "2"]));
        let (header, rows) = table(out.path());
        assert_eq!(header, whole_header);
        assert_eq!(rows.len(), 2);
        // Only this shard's points, index % 2 == I.
        let i: usize = shard[..1].parse().unwrap();
        assert!(rows.iter().all(|r| r[0].parse::<usize>().unwrap() % 2 == i));
        assert!(!out.path().join(format!("points/{}", 1 - i)).exists());
        merged.extend(rows);
        merged_json.extend(
            read(out.path().join("sweep.jsonl"))
                .lines()
                .map(str::to_owned),
        );
    }
    merged.sort_by_key(|r| r[0].parse::<usize>().unwrap());
    assert_eq!(merged, whole_rows);
    // JSON lines start with their index: they merge by it too.
    let index_of = |line: &String| -> usize {
        let rest = line.strip_prefix("{\"index\":").unwrap();
        rest[..rest.find(',').unwrap()].parse().unwrap()
    };
    merged_json.sort_by_key(index_of);
    assert_eq!(
        merged_json.join("\n") + "\n",
        read(whole.path().join("sweep.jsonl"))
    );
}

#[test]
fn bad_keys_and_values_are_refused_naming_them_before_any_run() {
    for (sets, names) in [
        (
            vec![
                format!("{REQUOTE}=0,2"),
                "instruments[NKNUSDT].maker.spread=1".into(),
            ],
            vec![
                "point 0",
                "instruments[NKNUSDT].maker.spread",
                "`spread` is not in",
            ],
        ),
        (
            vec!["instruments[NKNUSDT].maker.half_spread_ticks=1,0".into()],
            vec![
                "point 1 (instruments[NKNUSDT].maker.half_spread_ticks=0)",
                "instruments[NKNUSDT].maker.half_spread_ticks: 0 is outside",
            ],
        ),
        (
            vec![format!("{REQUOTE}=0,2"), "sim.queue=log,fifo".into()],
            vec!["point 1", "--set sim.queue=fifo", "queue model fifo"],
        ),
        (
            vec!["sim.latency=1".into()],
            vec!["--set sim.latency=1", "not a simulation setting"],
        ),
        (
            vec!["instruments[ETHUSDT].collar_bps=1".into()],
            vec!["no instruments[ETHUSDT]"],
        ),
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut args = Vec::new();
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        let output = run(&config(), out.path(), &args);
        assert_eq!(output.status.code(), Some(2), "{sets:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        for name in names {
            assert!(err.contains(name), "{sets:?}: {err}");
        }
        // Nothing ran.
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "{err}");
    }
}

#[test]
fn a_point_that_fails_is_a_row_with_its_error_and_the_sweep_goes_on() {
    // The Tardis sample holds NKNUSDT only: the BTCUSDT point has no market data.
    let out = tempfile::tempdir().unwrap();
    let sample = testdata_dir().join("../tardis-sample");
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-backtest"))
        .args(["run", "--config"])
        .arg(config())
        .arg("--tardis-trades")
        .arg(sample.join("trades.csv.gz"))
        .arg("--out")
        .arg(out.path())
        .args(["--set", "instruments[NKNUSDT].symbol=BTCUSDT,NKNUSDT"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("1 of 2 points failed"), "{err}");
    let (header, rows) = table(out.path());
    assert_eq!(rows.len(), 2);
    let (status, error) = (column(&header, "status"), column(&header, "error"));
    assert_eq!(rows[0][status], "failed");
    assert!(
        rows[0][error].contains("no market message"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[1][status], "ok");
    assert_eq!(rows[1][column(&header, "messages")], "58");
    // Both symbols have their columns; the sweep does not overwrite its table.
    column(&header, "BTCUSDT.net_pnl_quote");
    column(&header, "NKNUSDT.net_pnl_quote");
    let again = run(&config(), out.path(), &["--set", "sim.seed=1,2"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a sweep"));
}
