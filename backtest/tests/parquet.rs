//! `levibot-backtest run --parquet DIR` on the committed synthetic capture, read back with
//! pyarrow and DuckDB (Python's `pyarrow` and `duckdb`, installed by
//! scripts/install-test-deps; the tests fail, saying so, without them). The oracles are
//! outside the writer: `levictl export --format parquet` of the same journal (the export must
//! be the same files), the journal's execution reports as `levictl tail --json` prints them
//! (the fills), the `--json` summary flattened here by its documented naming rule (every
//! figure of `summary.parquet`), DuckDB's own sums of the fills (the summary's turnover and
//! traded quantity), and `sweep.jsonl` (one `sweep.parquet` row per point).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use levibot_gateway::capture::testdata_dir;
use levibot_testkit::workspace_bin;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::cli::{backtest, summary_of, tail_json};
use crate::research_loop::require_python;
use crate::sweep::{grid_args, run};
use levibot_testkit::stdout_of;

/// A scratch directory and, in it, where a run's journal and its Parquet go. Fails, saying
/// what to install, without python3's pyarrow and duckdb (CI installs them).
fn scratch() -> (tempfile::TempDir, PathBuf, PathBuf) {
    require_python("duckdb, pyarrow");
    let dir = tempfile::tempdir().unwrap();
    let (out, parquet) = (dir.path().join("out"), dir.path().join("parquet"));
    (dir, out, parquet)
}

/// The maker on NKNUSDT, requoting only past 2 ticks so that the market comes to its quotes
/// and they fill, with the features journaled after every book change.
fn config(dir: &Path) -> PathBuf {
    let path = crate::features::config(dir, "journal = \"book\"", None);
    let text = std::fs::read_to_string(&path).unwrap();
    let requote = "requote_threshold_ticks = 0";
    assert!(text.contains(requote));
    std::fs::write(&path, text.replace(requote, "requote_threshold_ticks = 2")).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Reads run directories (their export's files, `summary.parquet`, the execution reports and
/// DuckDB's sums of the fills) or a sweep's (`sweep.parquet`, and each point's as a run's),
/// with pyarrow and DuckDB; prints what it read as one JSON object.
const READER: &str = r#"
import json, pathlib, sys
import duckdb, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq

def table(t):
    # Decimals, dates and the rest that JSON has no type for are printed as str() gives them.
    columns = {}
    for name in t.column_names:
        col = t.column(name)
        ty = str(col.type)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        columns[name] = {"type": ty, "values": col.to_pylist()}
    return {"names": t.column_names, "rows": t.num_rows, "columns": columns}

def duck(query):
    return table(duckdb.sql(query).arrow().read_all())

def one_file(path):
    return {"pyarrow": table(pq.read_table(path)),
            "duckdb": duck(f"select * from '{path}' order by all"),
            "duckdb_types": dict(duckdb.sql(
                f"select column_name, column_type from (describe select * from '{path}')").fetchall())}

def run_dir(d):
    out = {"entries": sorted(p.name for p in d.iterdir()), "files": {},
           "manifest": json.loads((d / "_levictl_export.json").read_text())}
    for f in sorted(d.glob("type=*/**/*.parquet")):
        pf = pq.ParquetFile(f)
        meta = {k.decode(): v.decode() for k, v in pf.metadata.metadata.items()
                if k.startswith(b"levibot.")}
        out["files"][str(f.relative_to(d))] = {
            "metadata": meta, "created_by": pf.metadata.created_by, "table": table(pf.read())}
    if (d / "summary.parquet").exists():
        out["summary"] = one_file(d / "summary.parquet")
    reports = d / "type=execution_report"
    if reports.exists():
        glob = f"{reports}/**/*.parquet"
        scan = f"read_parquet('{glob}', hive_partitioning = true)"
        out["reports"] = {
            "duckdb": duck(f"select * from {scan} order by pos"),
            "pyarrow": table(ds.dataset(reports, format="parquet", partitioning="hive")
                             .to_table().sort_by("pos"))}
        count, turnover, qty = duckdb.sql(
            f"select count(*), sum(last_px * last_qty), sum(last_qty) from {scan} "
            "where exec_type = 'trade'").fetchone()
        out["fills"] = {"count": count, "turnover": str(turnover), "qty": str(qty)}
    return out

root = pathlib.Path(sys.argv[2])
if sys.argv[1] == "run":
    print(json.dumps(run_dir(root), default=str))
else:
    sweep = one_file(root / "sweep.parquet")
    sweep["entries"] = sorted(p.name for p in root.iterdir())
    sweep["points"] = {p.name: run_dir(p) for p in sorted((root / "points").iterdir())}
    print(json.dumps(sweep, default=str))
"#;

/// What `READER` read of `dir` (`mode`: `run` or `sweep`).
fn read(mode: &str, dir: &Path) -> Value {
    let stdout = stdout_of(Command::new("python3").args(["-c", READER, mode]).arg(dir));
    serde_json::from_str(&stdout).unwrap()
}

/// A horizon as a column names it: its largest whole unit.
fn horizon(ns: u64) -> String {
    match ns {
        ns if ns % 1_000_000_000 == 0 => format!("{}s", ns / 1_000_000_000),
        ns if ns % 1_000_000 == 0 => format!("{}ms", ns / 1_000_000),
        ns => panic!("a horizon of {ns} ns"),
    }
}

/// A JSON key as part of a column's name.
fn part(key: &str) -> String {
    key.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
}

/// The `--json` summary's values by the column that holds each (docs/backtest.md: the keys
/// of its path joined with `_`, a list's items by their symbol, horizon or side).
fn flatten(summary: &Value) -> BTreeMap<String, Value> {
    let symbols: Vec<String> = summary["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["symbol"].as_str().unwrap().to_owned())
        .collect();
    let mut out = BTreeMap::new();
    walk("", "", summary, &symbols, &mut out);
    out
}

fn walk(
    path: &str,
    key: &str,
    value: &Value,
    symbols: &[String],
    out: &mut BTreeMap<String, Value>,
) {
    let join = |k: &str| match path {
        "" => part(k),
        p => format!("{p}_{}", part(k)),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(&join(k), k, v, symbols, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let (name, skip) = match key {
                    "instruments" => (item["symbol"].as_str().unwrap().to_owned(), "symbol"),
                    "markouts" => (horizon(item["horizon_ns"].as_u64().unwrap()), "horizon_ns"),
                    "positions_units" => (symbols[i].clone(), ""),
                    "first_decision_difference" => (["live", "backtest"][i].to_owned(), ""),
                    other => panic!("{path}: a list ({other}) the naming rule does not know"),
                };
                let mut item = item.clone();
                if let Some(map) = item.as_object_mut() {
                    map.remove(skip);
                }
                walk(&join(&name), &name, &item, symbols, out);
            }
        }
        scalar => {
            out.insert(path.to_owned(), scalar.clone());
        }
    }
}

/// Row `row` of a table read back holds the `--json` summary `summary`: every value of the
/// JSON in its column (timestamps read to `ns_per_unit`), a `null` object's columns all
/// null, and every other column null (a value the JSON leaves out) or, for a reject reason
/// only other runs of a sweep had, 0. Columns in `skip` are the caller's.
fn assert_summary_row(table: &Value, row: usize, summary: &Value, ns_per_unit: u64, skip: &[&str]) {
    let columns = table["columns"].as_object().unwrap();
    let names: Vec<&str> = table["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .filter(|n| !skip.contains(n))
        .collect();
    let got = |name: &str| &columns[name]["values"][row];
    let leaves = flatten(summary);
    let null_objects: Vec<String> = leaves
        .iter()
        .filter(|(name, v)| v.is_null() && !columns.contains_key(*name))
        .map(|(name, _)| format!("{name}_"))
        .collect();
    for (name, expected) in &leaves {
        let Some(column) = columns.get(name) else {
            assert!(expected.is_null(), "{name} = {expected} has no column");
            let prefix = format!("{name}_");
            let under: Vec<&&str> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
            assert!(!under.is_empty(), "{name}: null, and no column under it");
            // (A sibling of the same prefix, such as `totals_absent_reason` beside `totals`,
            // is a value of its own.)
            for n in under.into_iter().filter(|n| !leaves.contains_key(**n)) {
                assert!(got(n).is_null(), "{n}: {} under null {name}", got(n));
            }
            continue;
        };
        let ty = column["type"].as_str().unwrap();
        if ty.starts_with("timestamp") {
            let want = expected.as_u64().map(|ns| ns / ns_per_unit);
            assert_eq!(got(name).as_u64(), want, "{name} ({ty}): JSON {expected}");
        } else {
            assert_eq!(got(name), expected, "{name} ({ty})");
        }
    }
    for name in names {
        if leaves.contains_key(name) || null_objects.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let value = got(name);
        let zero_reason = name.starts_with("rejects_") && value.as_u64() == Some(0);
        assert!(
            value.is_null() || zero_reason,
            "{name} = {value}, and the JSON has no {name}"
        );
    }
}

fn decimal(v: &Value) -> Decimal {
    let text = v.as_str().unwrap_or_else(|| panic!("{v} is no decimal"));
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The execution reports read back (DuckDB and pyarrow, in journal order) are the journal's
/// as `levictl tail --json` prints them, and the fills among them are the summary's.
fn assert_fills(read: &Value, journal: &[Value], summary: &Value) {
    let reports: Vec<&Value> = journal
        .iter()
        .filter(|r| r["type"] == "execution_report")
        .collect();
    for reader in ["duckdb", "pyarrow"] {
        let table = &read["reports"][reader];
        assert_eq!(
            table["rows"].as_u64(),
            Some(reports.len() as u64),
            "{reader}"
        );
        let column = |name: &str| &table["columns"][name]["values"];
        for (i, report) in reports.iter().enumerate() {
            for name in [
                "pos",
                "client_order_id",
                "venue_order_id",
                "exec_type",
                "side",
            ] {
                assert_eq!(column(name)[i], report[name], "{reader} {name} of {report}");
            }
            for name in ["px", "last_px", "last_qty", "cum_qty", "leaves_qty"] {
                assert_eq!(
                    decimal(&column(name)[i]),
                    decimal(&report[name]),
                    "{reader} {name} of {report}"
                );
            }
            assert_eq!(column("symbol")[i], report["symbol"], "{reader}");
        }
    }
    let fills: Vec<&&Value> = reports
        .iter()
        .filter(|r| r["exec_type"] == "trade")
        .collect();
    assert!(!fills.is_empty(), "the run has no fill to check");
    assert_eq!(summary["fills"].as_u64(), Some(fills.len() as u64));
    assert_eq!(read["fills"]["count"].as_u64(), Some(fills.len() as u64));
    // DuckDB's exact sums of the fills are the summary's figures, which it converts once to
    // the nearest f64.
    let f64_of = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let turnover = summary["totals"]["turnover_quote"].as_f64().unwrap();
    assert_eq!(f64_of(&read["fills"]["turnover"]), turnover);
    let traded = summary["instruments"][0]["traded_base"].as_f64().unwrap();
    assert_eq!(f64_of(&read["fills"]["qty"]), traded);
}

/// The export in a run's directory is `levictl export --format parquet` of the same journal:
/// the same partitions and files, each with the same schema, rows and partition metadata, and
/// a manifest with the same summary.
fn assert_export_is_levictls(read: &Value, journal: &Path, scratch: &Path) {
    let reference = scratch.join("levictl-export");
    stdout_of(
        Command::new(workspace_bin("levictl", "levictl"))
            .arg("--journal")
            .arg(journal)
            .args(["export", "--format", "parquet", "--out"])
            .arg(&reference),
    );
    let reference = self::read("run", &reference);
    let (files, expected) = (
        read["files"].as_object().unwrap(),
        reference["files"].as_object().unwrap(),
    );
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, file) in files {
        assert_eq!(file["table"], expected[path]["table"], "{path}");
        assert_eq!(file["metadata"], expected[path]["metadata"], "{path}");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(file["created_by"], format!("levibot-backtest {version}"));
    }
    let manifest = &read["manifest"];
    assert_eq!(manifest["format"], "levictl-parquet");
    assert_eq!(manifest["complete"], true);
    assert_eq!(manifest["summary"], reference["manifest"]["summary"]);
    assert_eq!(manifest["levibot-backtest"], env!("CARGO_PKG_VERSION"));
}

/// The one row of a `summary.parquet` read back, as pyarrow and DuckDB read it.
fn assert_summary_file(read: &Value, summary: &Value) {
    let file = &read["summary"];
    for (reader, ns_per_unit) in [("pyarrow", 1), ("duckdb", 1_000)] {
        assert_eq!(file[reader]["rows"], 1, "{reader}");
        assert_summary_row(&file[reader], 0, summary, ns_per_unit, &[]);
    }
}

/// The `--json` summary of a run on the committed capture that must succeed.
fn run_ok(config: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend(extra);
    summary_of(&run(config, out, &args))
}

#[test]
fn a_run_writes_its_journal_as_levictl_exports_it_and_its_summary_as_one_typed_row() {
    let (dir, out, parquet) = scratch();
    let config = config(dir.path());
    let summary = run_ok(&config, &out, &["--parquet", arg(&parquet)]);
    let read = read("run", &parquet);
    let journal = out.join("journal");
    assert_export_is_levictls(&read, &journal, dir.path());
    let records = tail_json(&journal);
    assert_fills(&read, &records, &summary);
    assert_summary_file(&read, &summary);

    // What DIR holds: the backtest's manifest, the export, the summary; nothing left beside.
    let entries = read["entries"].as_array().unwrap();
    assert_eq!(
        entries[..3],
        [
            "_levibot_backtest.json",
            "_levictl_export.json",
            "summary.parquet"
        ]
    );
    for kind in [
        "execution_report",
        "order_sent",
        "risk_reject",
        "feature_snapshot",
    ] {
        assert!(
            entries.contains(&Value::from(format!("type={kind}"))),
            "{kind}: {entries:?}"
        );
    }
    assert!(!dir.path().join("parquet.partial").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(parquet.join("_levibot_backtest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], "levibot-backtest-parquet");
    assert_eq!(
        (manifest["complete"].clone(), manifest["kind"].clone()),
        (true.into(), "run".into())
    );
    // The columns' types as DuckDB names them.
    let types = &read["summary"]["duckdb_types"];
    for (column, ty) in [
        ("start_t_ns", "TIMESTAMP WITH TIME ZONE"),
        ("messages", "UBIGINT"),
        ("fill_ratio", "DOUBLE"),
        ("rejects_risk_self_trade", "UBIGINT"),
        ("instruments_NKNUSDT_markouts_1s_mean_bps", "DOUBLE"),
        ("totals_net_pnl_quote", "DOUBLE"),
        ("latency_new_p99_us", "DOUBLE"),
        ("simulation_queue_model", "VARCHAR"),
        ("simulation_maker_fee_ppm", "BIGINT"),
        ("venue_positions_units_NKNUSDT", "BIGINT"),
        ("versus_live_decisions_equal", "BOOLEAN"),
    ] {
        assert_eq!(types[column], ty, "{column}: {types}");
    }
}

#[test]
fn a_replay_writes_its_comparison_with_the_live_session_in_its_summary_row() {
    require_python("duckdb, pyarrow");
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let first = dir.path().join("first");
    run_ok(&config, &first, &[]);
    // The live session replayed with another requote threshold: its decisions differ.
    let maker = testdata_dir().join("../backtest/maker-nknusdt.toml");
    let parquet = dir.path().join("parquet");
    let summary = summary_of(&backtest(&[
        "run",
        "--config",
        arg(&maker),
        "--journal",
        arg(&first.join("journal")),
        "--out",
        arg(&dir.path().join("second")),
        "--parquet",
        arg(&parquet),
        "--json",
    ]));
    let versus = &summary["versus_live"];
    assert_eq!(versus["decisions_equal"], false, "{versus}");
    assert!(versus["live"]["pnl_quote"]["NKNUSDT"].is_f64(), "{versus}");
    assert_summary_file(&read("run", &parquet), &summary);
}

/// `run` of the 2x2 sweep (requote threshold by order latency), 2 jobs at a time.
fn sweep(config: &Path, out: &Path, parquet: &Path) -> Output {
    let grid = grid_args();
    let mut args = vec!["--parquet", arg(parquet), "--jobs", "2"];
    args.extend(grid.iter().map(String::as_str));
    run(config, out, &args)
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `sweep.parquet` read back holds one row per line of `sweep.jsonl`, in index order: its
/// point's index, settings, status and error, then its summary (null for a point that failed).
fn assert_sweep_rows(read: &Value, lines: &[Value]) {
    let keys: Vec<&String> = lines[0]["settings"].as_object().unwrap().keys().collect();
    let mut own: Vec<&str> = vec!["index", "status", "error"];
    own.extend(keys.iter().map(|k| k.as_str()));
    for (reader, ns_per_unit) in [("pyarrow", 1), ("duckdb", 1_000)] {
        let table = &read[reader];
        assert_eq!(table["rows"].as_u64(), Some(lines.len() as u64), "{reader}");
        let names = table["names"].as_array().unwrap();
        assert_eq!(names[0], "index");
        let column = |name: &str| &table["columns"][name]["values"];
        for (row, line) in lines.iter().enumerate() {
            assert_eq!(column("index")[row], line["index"], "{reader}");
            for key in &keys {
                assert_eq!(
                    column(key)[row],
                    line["settings"][key.as_str()],
                    "{reader} {key}"
                );
            }
            let status = if line["error"].is_null() {
                "ok"
            } else {
                "failed"
            };
            assert_eq!(column("status")[row], status, "{reader}");
            assert_eq!(column("error")[row], line["error"], "{reader}");
            if line["summary"].is_null() {
                for name in names.iter().map(|n| n.as_str().unwrap()) {
                    if !own.contains(&name) {
                        assert!(column(name)[row].is_null(), "{reader} {name} of a failure");
                    }
                }
            } else {
                assert_summary_row(table, row, &line["summary"], ns_per_unit, &own);
            }
        }
    }
}

#[test]
fn a_sweep_writes_one_row_per_point_as_sweep_jsonl_and_each_points_run() {
    let (dir, out, parquet) = scratch();
    let maker = testdata_dir().join("../backtest/maker-nknusdt.toml");
    let output = sweep(&maker, &out, &parquet);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&out.join("sweep.jsonl"));
    assert_eq!(lines.len(), 4);
    let read = read("sweep", &parquet);
    assert_sweep_rows(&read, &lines);
    assert_eq!(
        read["entries"],
        serde_json::json!(["_levibot_backtest.json", "points", "sweep.parquet"])
    );
    // A reason only the requote-2 points had is a column of every row: 0 in the others.
    let reasons: Vec<&String> = lines
        .iter()
        .flat_map(|l| l["summary"]["rejects"].as_object().unwrap().keys())
        .collect();
    assert!(!reasons.is_empty() && lines[0]["summary"]["rejects"] == serde_json::json!({}));
    // Each point's own directory: its run as a plain run's --parquet writes it.
    for line in &lines {
        let index = line["index"].to_string();
        let point = &read["points"][&index];
        assert_summary_file(point, &line["summary"]);
        let journal = out.join("points").join(&index).join("journal");
        let records = tail_json(&journal);
        assert_fills_if_any(point, &records, &line["summary"]);
    }
    assert!(!dir.path().join("parquet.partial").exists());
}

/// [`assert_fills`], or for a run without fills, none in its export either.
fn assert_fills_if_any(read: &Value, journal: &[Value], summary: &Value) {
    if summary["fills"] == 0 {
        assert_eq!(read["fills"]["count"], 0);
    } else {
        assert_fills(read, journal, summary);
    }
}

#[test]
fn a_sweep_point_that_fails_is_a_row_of_nulls_with_its_error() {
    let (_dir, out, parquet) = scratch();
    // The Tardis sample holds NKNUSDT only: the BTCUSDT point has no market data.
    let sample = testdata_dir().join("../tardis-sample");
    let output = Command::new(env!("CARGO_BIN_EXE_levibot-backtest"))
        .args(["run", "--config"])
        .arg(testdata_dir().join("../backtest/maker-nknusdt.toml"))
        .args(["--tardis-trades", arg(&sample.join("trades.csv.gz"))])
        .args(["--out", arg(&out), "--parquet", arg(&parquet)])
        .args(["--set", "instruments[NKNUSDT].symbol=BTCUSDT,NKNUSDT"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&out.join("sweep.jsonl"));
    let read = read("sweep", &parquet);
    assert_sweep_rows(&read, &lines);
    assert!(lines[0]["summary"].is_null() && lines[1]["summary"].is_object());
    // Both symbols have their columns; only the point that ran has a directory.
    let names = read["pyarrow"]["names"].as_array().unwrap();
    for symbol in ["BTCUSDT", "NKNUSDT"] {
        let name = format!("instruments_{symbol}_net_pnl_quote");
        assert!(names.contains(&Value::from(name.clone())), "{name}");
    }
    assert_eq!(
        read["points"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["1"]
    );
    assert_summary_file(&read["points"]["1"], &lines[1]["summary"]);
}

#[test]
fn a_directory_that_is_not_free_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = dir.path().join("out");
    let attempt = |parquet: &Path, extra: &[&str]| {
        let mut args = vec!["--parquet", arg(parquet)];
        args.extend(extra);
        let output = run(&config, &out, &args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let refused = |parquet: &Path, extra: &[&str], code: i32, why: &str| {
        let (got, stderr) = attempt(parquet, extra);
        assert_eq!(got, Some(code), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    };
    // A directory of the user's notes, and where DIR is written first.
    let notes = |path: &Path| {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("notes.txt"), "mine").unwrap();
    };
    let taken = dir.path().join("taken");
    notes(&taken);
    let why = format!("--parquet {}: not empty", taken.display());
    refused(&taken, &[], 1, &why);
    // A sweep refuses it too, as a bad argument, before any point runs.
    refused(&taken, &["--set", "sim.seed=1,2"], 2, &why);
    // --out itself, or a directory that holds it.
    for holder in [out.as_path(), dir.path()] {
        refused(holder, &[], 1, "holds --out");
    }
    let parquet = dir.path().join("parquet");
    let partial = dir.path().join("parquet.partial");
    notes(&partial);
    refused(&parquet, &[], 1, "parquet.partial: is in the way");
    // Nothing ran: no journal, nothing written, nothing of the user's touched.
    assert!(!out.exists());
    assert!(!parquet.exists());
    for dir in [&taken, &partial] {
        let text = std::fs::read_to_string(dir.join("notes.txt")).unwrap();
        assert_eq!(text, "mine");
    }

    // What a killed run leaves there (its manifest, unfinished) is cleared by the next.
    std::fs::remove_file(partial.join("notes.txt")).unwrap();
    std::fs::write(
        partial.join("_levibot_backtest.json"),
        r#"{"format": "levibot-backtest-parquet", "complete": false}"#,
    )
    .unwrap();
    std::fs::create_dir(partial.join("type=trade")).unwrap();
    let (code, stderr) = attempt(&parquet, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(parquet.join("summary.parquet").exists() && !partial.exists());
}
