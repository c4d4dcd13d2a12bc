//! `levictl research dataset` against an oracle from outside it: DuckDB's ASOF JOIN over the
//! same snapshots as `levictl export --format jsonl` gives them, read back from the dataset's
//! Parquet file with pyarrow (Python's `duckdb` and `pyarrow`, installed by
//! scripts/install-test-deps).

use std::path::Path;

use levibot_shm::Journal;
use levibot_shm::codes::writer_id;
use levibot_shm::records::{FeatureSnapshot, InstrumentDef, feature_flag};
use serde_json::Value;

use super::levictl_journal::{Fixture, config, python, require_python, run_failing, run_ok};

/// Snapshots of two instruments at irregular whole-microsecond times (seeded), mids a random
/// walk with a few missing; returns how many.
fn journal_of_snapshots(dir: &Path, seed: u64) -> usize {
    let journal = Journal::open(&config(dir)).unwrap();
    let mut daemon = journal.appender(writer_id::DAEMON).unwrap();
    let mut strategy = journal.appender(writer_id::STRATEGY).unwrap();
    for (id, symbol) in [(0, "NKNUSDT"), (1, "BTCUSDT")] {
        let def = InstrumentDef::new(id, symbol, (1, 5), (1, 8)).unwrap();
        Fixture::append(&mut daemon, &def);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut t = [1_800_000_000_000_000_000u64; 2];
    let mut mid = [3_500.0f64, 9_000_000.0];
    let mut n = 0;
    for _ in 0..400 {
        let i = rng.usize(..2);
        // 1 µs to 400 ms apart, in whole µs: DuckDB and the dataset agree on every tie rule.
        t[i] += rng.u64(1..400_000) * 1_000;
        mid[i] += rng.i64(-3..=3) as f64;
        let missing = rng.u8(..20) == 0;
        let s = FeatureSnapshot {
            ts_ns: t[i],
            mid: if missing { f64::NAN } else { mid[i] },
            microprice: mid[i] + 0.25,
            top_imbalance: rng.f64() * 2.0 - 1.0,
            ewma_mid: mid[i] - 1.0,
            atr: f64::NAN,
            trade_flow_imbalance: 0.5,
            momentum: 1.0,
            output: rng.f64(),
            instrument_id: i as u32,
            strategy_id: 1,
            flags: feature_flag::BOOK_SYNCED,
            ..FeatureSnapshot::default()
        };
        Fixture::append(&mut strategy, &s);
        n += 1;
    }
    n
}

/// The dataset's rows (pyarrow) and DuckDB's ASOF join of the JSONL export, as JSON.
const ORACLE: &str = r#"
import json, sys
import duckdb, pyarrow.parquet as pq
dataset, jsonl, horizons = sys.argv[1], sys.argv[2], [int(h) for h in sys.argv[3].split(",")]
import pyarrow as pa
table = pq.read_table(dataset)
out = {"schema": {f.name: str(f.type) for f in table.schema}, "rows": [], "oracle": []}
ns = table.column("event_time").cast(pa.int64()).to_pylist()
for r, t in zip(table.to_pylist(), ns):
    out["rows"].append([r["instrument_id"], t, r["mid"]] + [r[f"ret_{h}"] for h in sys.argv[4].split(",")])
con = duckdb.connect()
con.execute(f"""CREATE TABLE f AS SELECT instrument_id::BIGINT AS i, event_unix_ns::BIGINT AS t, mid
                FROM read_json_auto('{jsonl}') WHERE type = 'feature_snapshot'""")
cols = []
for n, h in enumerate(horizons):
    con.execute(f"""CREATE TABLE r{n} AS
        SELECT a.i, a.t, CASE WHEN a.t + {h} > (SELECT max(t) FROM f WHERE f.i = a.i) THEN NULL
                              ELSE b.mid / a.mid - 1 END AS ret
        FROM (SELECT *, t + {h} AS at FROM f) a ASOF LEFT JOIN f b ON a.i = b.i AND a.at >= b.t""")
q = "SELECT r0.i, r0.t, " + ", ".join(f"r{n}.ret" for n in range(len(horizons))) + " FROM r0 " + \
    " ".join(f"JOIN r{n} USING (i, t)" for n in range(1, len(horizons))) + " ORDER BY 1, 2"
out["oracle"] = con.execute(q).fetchall()
print(json.dumps(out))
"#;

#[test]
fn forward_returns_equal_duckdbs_asof_join_of_the_same_snapshots() {
    require_python("duckdb, pyarrow");
    let seed = levibot_testkit::seed();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let snapshots = journal_of_snapshots(&journal, seed);
    let dataset = dir.path().join("dataset.parquet");
    let printed = run_ok(
        &journal,
        &[
            "research",
            "dataset",
            "--out",
            dataset.to_str().unwrap(),
            "--horizon",
            "1s",
            "--horizon",
            "250ms",
        ],
    );
    assert_eq!(
        printed.trim(),
        format!(
            "dataset: {snapshots} feature snapshots of 2 instruments with ret_250ms, ret_1s to {}",
            dataset.display()
        ),
        "seed {seed}"
    );
    let jsonl = dir.path().join("snapshots.jsonl");
    run_ok(
        &journal,
        &[
            "export",
            "--format",
            "jsonl",
            "--type",
            "feature_snapshot",
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    let out = python(
        ORACLE,
        &[
            dataset.as_ref(),
            jsonl.as_ref(),
            "250000000,1000000000".as_ref(),
            "250ms,1s".as_ref(),
        ],
    );
    let read: Value = serde_json::from_str(&out).unwrap();
    let schema = &read["schema"];
    assert_eq!(schema["event_time"], "timestamp[ns, tz=UTC]");
    assert_eq!(schema["ret_1s"], "double");
    assert_eq!(schema["symbol"], "string");
    let mut rows: Vec<&Vec<Value>> = read["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap())
        .collect();
    rows.sort_by_key(|r| (r[0].as_u64(), r[1].as_u64()));
    let oracle = read["oracle"].as_array().unwrap();
    assert_eq!(rows.len(), snapshots, "seed {seed}");
    assert_eq!(oracle.len(), snapshots, "seed {seed}");
    let mut compared = [0usize; 2];
    for (row, want) in rows.iter().zip(oracle) {
        assert_eq!(row[0], want[0], "seed {seed}");
        assert_eq!(row[1], want[1], "seed {seed}: times");
        for h in 0..2 {
            let (got, want) = (&row[3 + h], &want[2 + h]);
            match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() <= 1e-12, "seed {seed}: {row:?} vs {want}");
                    compared[h] += 1;
                }
                (None, None) => {}
                _ => panic!("seed {seed}: {row:?}: {got} but DuckDB says {want}"),
            }
        }
    }
    // Most returns exist: the comparison compared numbers, not nulls.
    assert!(
        compared.iter().all(|&c| c > snapshots / 2),
        "seed {seed}: {compared:?}"
    );
}

#[test]
fn a_dataset_without_snapshots_or_with_a_bad_horizon_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    drop(Journal::open(&config(&journal)).unwrap());
    let out_file = dir.path().join("d.parquet");
    let out = run_failing(
        &journal,
        &["research", "dataset", "-o", out_file.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no feature snapshot") && stderr.contains("[features] journal"),
        "{stderr}"
    );
    assert!(!out_file.exists() && !dir.path().join("d.parquet.partial").exists());
    let out = run_failing(
        &journal,
        &[
            "research",
            "dataset",
            "-o",
            out_file.to_str().unwrap(),
            "--horizon",
            "1d",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("horizon \"1d\""), "{stderr}");
}
