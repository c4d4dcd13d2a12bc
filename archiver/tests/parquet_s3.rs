//! `levictl export --format parquet --out s3://...` from the archive: pyarrow reads the
//! objects from the S3 server (`pyarrow.fs.S3FileSystem`) and finds every table equal, row for
//! row, to the same export written to a directory from the journal itself; the objects are
//! all under `box=<box>/`, a partition column when many boxes' exports are read as one; and
//! `levibot-backtest run --parquet s3://...` publishes its run's files there too.

use serde_json::Value;

use crate::common::*;
use crate::readback::{archived_session, levictl, ok, run, strings};

#[test]
fn a_parquet_export_to_s3_reads_back_with_pyarrow_as_the_local_export() {
    let session = archived_session();
    let local = session.scratch.path().join("local-export");
    let summary = ok(
        levictl(&strings(&[
            "--journal",
            session.journal.to_str().unwrap(),
            "export",
            "--format",
            "parquet",
            "--out",
            local.to_str().unwrap(),
        ])),
        "the local export",
    );
    let mut args = strings(&[
        "export",
        "--format",
        "parquet",
        "--out",
        &format!("s3://{BUCKET}/exports"),
    ]);
    args.extend(session.dir_args());
    args.extend(session.s3_args().into_iter().skip(2));
    let to_s3 = ok(levictl(&args), "the export to S3");
    let count = |out: &[u8]| {
        String::from_utf8_lossy(out)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(count(&to_s3), count(&summary), "records exported");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/parquet_s3.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(session.moto.endpoint())
        .arg(format!("{BUCKET}/exports"))
        .arg(&local)
        .arg(BOX)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let types = result["types"].as_object().unwrap();
    for kind in [
        "execution_report",
        "order_sent",
        "raw_message",
        "instrument_def",
    ] {
        assert!(types.contains_key(kind), "{kind} exported: {result}");
    }
    for (kind, check) in types {
        assert!(check[0].as_u64().unwrap() > 0, "{kind}: {check}");
        assert_eq!(check[0], check[1], "{kind}: rows here and in S3");
        assert_eq!(check[2], true, "{kind}: the tables differ");
    }
    assert_eq!(
        result["keys_outside_box"],
        serde_json::json!([]),
        "{result}"
    );
    assert_eq!(
        result["execution_report_boxes"],
        serde_json::json!([BOX]),
        "{result}"
    );

    // The backtest's --parquet to the bucket: the run's export and summary.parquet.
    let mut bt_args = strings(&[
        "run",
        "--out",
        session.scratch.path().join("bt").to_str().unwrap(),
        "--parquet",
        &format!("s3://{BUCKET}/backtests/run-1"),
    ]);
    bt_args.extend(session.dir_args());
    bt_args.extend(session.s3_args().into_iter().skip(2));
    ok(
        run("levibot-backtest", "levibot-backtest", &bt_args),
        "backtest --parquet s3://",
    );
    let keys = session.moto.keys();
    let summary = session.moto.get("backtests/run-1/summary.parquet");
    assert!(summary.starts_with(b"PAR1") && summary.ends_with(b"PAR1"));
    assert!(
        keys.iter()
            .any(|k| k.starts_with("backtests/run-1/type=order_sent/date=")),
        "{keys:?}"
    );

    // A second export of the same day writes the same objects again; one that would leave an
    // earlier export's object in a partition it writes is refused before writing anything.
    ok(levictl(&args), "the export again");
    let stray = format!("exports/box={BOX}/type=order_sent/");
    let key = session
        .moto
        .keys()
        .into_iter()
        .find(|k| k.starts_with(&stray))
        .expect("an order_sent object");
    let dir = key.rsplit_once('/').unwrap().0;
    session.moto.boto(&format!(
        "s3.put_object(Bucket='{BUCKET}', Key='{dir}/part-09999.parquet', Body=b'old')"
    ));
    let output = levictl(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("part-09999.parquet"), "{stderr}");
}
