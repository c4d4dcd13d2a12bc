//! `levictl export --format parquet` as a quant uses it: a journal holding every record kind,
//! written here on a mock clock (so that its records fall on two UTC dates), exported, and
//! every file read back with pyarrow and with DuckDB (Python's `pyarrow` and `duckdb`,
//! installed by scripts/install-test-deps). The values must be what `levictl export --format
//! jsonl` says for the same records: decimals exact, times to the ns (to the µs in DuckDB,
//! whose TIMESTAMP WITH TIME ZONE has no finer unit), the partition columns from the path.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use levibot_shm::codes::{RiskCheck, writer_id};
use levibot_shm::records::{
    AggTrade, BookTicker, DaemonEvent, DepthDiff, ExecutionReport, FeatureSnapshot, FixSeqNums,
    InstrumentDef, Level, OrderRequest, RawMessageHeader, Record, RiskReject, SentOrder,
    TRADE_FLAG_BUYER_IS_MAKER, Trade, daemon_event, event_source, exec_type, feature_flag,
    ord_type, order_kind, record_type, side, time_in_force,
};
use levibot_shm::{Journal, JournalClock, RecordType, TscCalibration};
use levibot_view::Selection;
use levictl::export::parquet::{self, Limits};
use rust_decimal::Decimal;
use serde_json::Value;

use super::levictl_journal::{
    Fixture, config, json_lines, levictl, require_python, run_failing, run_ok,
};

const NKN: u32 = 3;
const BTC: u32 = 4;
/// An instrument the journal has no def of.
const UNDEFINED: u32 = 99;
/// 2026-11-26T00:00:00Z less a second and some ns: the journal's clock starts here.
const ORIGIN_NS: u64 = 1_795_651_198_987_654_321;
/// Records the fixture journals, and those an export keeps (not the unknown type, nor the
/// corrupt ticker), one partition each.
const FIXTURE_RECORDS: usize = 21;
const EXPORTED_RECORDS: usize = 19;

/// A journal of every record kind, on a mock clock: the first records before midnight UTC,
/// the rest after. Dropped (and its directory with it) at the end of the test.
struct Session {
    dir: tempfile::TempDir,
}

fn level(px: i64, qty: i64) -> Level {
    Level { px, qty }
}

fn depth(instrument_id: u32, bids: &[Level], asks: &[Level], event_time_ms: u64) -> DepthDiff {
    let mut diff: DepthDiff = Record::from_bytes(&[0; size_of::<DepthDiff>()]).unwrap();
    diff.recv_tsc = 11;
    diff.event_time_ms = event_time_ms;
    diff.first_update_id = 500;
    diff.final_update_id = 502;
    diff.instrument_id = instrument_id;
    diff.bid_count = bids.len() as u16;
    diff.ask_count = asks.len() as u16;
    diff.chunk_count = 1;
    diff.levels[..bids.len()].copy_from_slice(bids);
    diff.levels[bids.len()..bids.len() + asks.len()].copy_from_slice(asks);
    diff
}

fn session() -> Session {
    let dir = tempfile::Builder::new()
        .prefix("levictl-parquet")
        .tempdir()
        .unwrap();
    let (clock, mock) = quanta::Clock::mock();
    let journal = Journal::open_with_clock(
        &config(dir.path()),
        JournalClock {
            clock,
            calibration: TscCalibration {
                ticks_per_ns: 1.0,
                tsc_ref: 0,
                unix_ns_ref: ORIGIN_NS,
            },
            epoch: 7,
        },
    )
    .unwrap();
    let mut daemon = journal.appender(writer_id::DAEMON).unwrap();
    let mut feed = journal.appender(writer_id::FEED).unwrap();
    let mut gateway = journal.appender(writer_id::GATEWAY).unwrap();
    let tick = |ns: u64| mock.increment(ns);
    let ms = |ns: u64| ns / 1_000_000;

    let started = DaemonEvent {
        unix_ns: ORIGIN_NS - 5,
        kind: daemon_event::STARTED,
        ..DaemonEvent::default()
    };
    Fixture::append(&mut daemon, &started);
    tick(1_001);
    daemon
        .append(record_type::CONFIG_TEXT, b"[risk]\nloss_max = 500\n")
        .unwrap();
    Fixture::append(
        &mut daemon,
        &InstrumentDef::new(NKN, "NKNUSDT", (1, 5), (1, 0)).unwrap(),
    );
    Fixture::append(
        &mut daemon,
        &InstrumentDef::new(BTC, "BTCUSDT", (1, 2), (1, 5)).unwrap(),
    );
    tick(333);
    let mut raw = raw_header(RawMessageHeader {
        recv_tsc: 9,
        source_id: 1,
        snapshot_of: 0,
    });
    raw.extend_from_slice(br#"{"stream":"nknusdt@trade","data":{"e":"trade"}}"#);
    feed.append(record_type::RAW_MESSAGE, &raw).unwrap();
    let ticker = |instrument_id, bid_px, ask_px, qty| BookTicker {
        recv_tsc: 10,
        update_id: 77,
        bid_px,
        bid_qty: qty,
        ask_px,
        ask_qty: qty * 3,
        instrument_id,
        reserved: 0,
    };
    Fixture::append(&mut feed, &ticker(NKN, 3_510, 3_512, 1_000));
    Fixture::append(&mut feed, &ticker(BTC, 9_123_456, 9_123_457, 150_001));
    Fixture::append(&mut feed, &ticker(UNDEFINED, 1, 2, 3));
    tick(7);
    let event_ms = ms(ORIGIN_NS);
    let nkn_depth = depth(
        NKN,
        &[level(3_510, 1_000), level(3_509, 0), level(3_508, 77)],
        &[level(3_512, 250), level(3_513, 1)],
        event_ms,
    );
    Fixture::append(&mut feed, &nkn_depth);

    // Past midnight: a new date partition.
    tick(2_000_000_000);
    let btc_depth = depth(
        BTC,
        &[level(9_123_400, 5)],
        &[level(9_123_500, 1)],
        event_ms + 2_000,
    );
    Fixture::append(&mut feed, &btc_depth);
    let trade = Trade {
        recv_tsc: 12,
        trade_id: 1_234,
        event_time_ms: event_ms + 2_001,
        trade_time_ms: event_ms + 2_000,
        px: 3_511,
        qty: 42,
        instrument_id: NKN,
        flags: TRADE_FLAG_BUYER_IS_MAKER,
    };
    Fixture::append(&mut feed, &trade);
    let agg = AggTrade {
        recv_tsc: 13,
        agg_id: 88,
        first_trade_id: 100,
        last_trade_id: 103,
        event_time_ms: event_ms + 2_002,
        trade_time_ms: event_ms + 2_002,
        px: 9_123_456,
        qty: 1,
        instrument_id: BTC,
        flags: 0,
    };
    Fixture::append(&mut feed, &agg);
    tick(1);
    let limit = OrderRequest {
        created_tsc: 40,
        risk_tsc: 45,
        client_order_id: 1_001,
        px: 3_511,
        qty: 100,
        instrument_id: NKN,
        strategy_id: 2,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        ..OrderRequest::default()
    };
    let market = OrderRequest {
        client_order_id: 1_002,
        instrument_id: BTC,
        qty: 2_500,
        side: side::SELL,
        ord_type: ord_type::MARKET,
        time_in_force: time_in_force::IOC,
        ..limit
    };
    Fixture::append(&mut gateway, &market);
    let sent = SentOrder {
        request: limit,
        due_tsc: 1,
        recv_tsc: 10,
        decoded_tsc: 20,
        strategy_start_tsc: 30,
        risk_start_tsc: 42,
        encode_start_tsc: 50,
        encoded_tsc: 90,
        msg_seq_num: 7,
        encoded_len: 180,
        reserved: 0,
    };
    Fixture::append(&mut gateway, &sent);
    let report = ExecutionReport {
        recv_tsc: 95,
        client_order_id: 1_001,
        venue_order_id: 9_001,
        px: 3_511,
        last_px: 3_511,
        last_qty: 60,
        cum_qty: 60,
        leaves_qty: 40,
        instrument_id: NKN,
        exec_type: exec_type::TRADE,
        ord_status: b'1',
        side: side::BUY,
        ..ExecutionReport::default()
    };
    Fixture::append(&mut gateway, &report);
    let reject = RiskReject {
        request: OrderRequest {
            client_order_id: 1_003,
            px: 4_000,
            ..limit
        },
        limit: 50,
        value: -1_390,
        check: RiskCheck::PriceCollar as u16,
        ..RiskReject::default()
    };
    Fixture::append(&mut gateway, &reject);
    let seq = FixSeqNums {
        next_sender: 8,
        next_target: 12,
    };
    Fixture::append(&mut gateway, &seq);
    // Features in NKN's price units (1e-5), the ATR not there yet (null).
    let features = FeatureSnapshot {
        ts_ns: ORIGIN_NS + 1_500,
        mid: 3_511.0,
        microprice: 3_511.25,
        top_imbalance: -0.5,
        ewma_mid: 3_510.5,
        atr: f64::NAN,
        trade_flow_imbalance: 0.125,
        momentum: 0.5,
        output: 0.75,
        model_id: 0x0123_4567_89ab_cdef,
        instrument_id: NKN,
        strategy_id: 1,
        flags: feature_flag::BOOK_SYNCED,
        ..FeatureSnapshot::default()
    };
    Fixture::append(&mut gateway, &features);
    tick(5);
    let halted = DaemonEvent {
        unix_ns: ORIGIN_NS + 2_000_001_347,
        value: 2,
        kind: daemon_event::TRADING_STATE,
        source: event_source::CONTROL_SOCKET,
        peer_uid: 1_000,
    };
    Fixture::append(&mut daemon, &halted);
    daemon.append(RecordType(0x999), b"hello").unwrap();
    feed.append(record_type::BOOK_TICKER, &[1, 2, 3]).unwrap();
    drop((daemon, feed, gateway, journal));
    Session { dir }
}

fn raw_header(header: RawMessageHeader) -> Vec<u8> {
    let mut bytes = header.recv_tsc.to_le_bytes().to_vec();
    bytes.extend_from_slice(&header.source_id.to_le_bytes());
    bytes.extend_from_slice(&header.snapshot_of.to_le_bytes());
    assert_eq!(bytes.len(), size_of::<RawMessageHeader>());
    bytes
}

/// Reads an export with pyarrow (each file, and each type as a Hive dataset) and DuckDB (each
/// type, and every type at once), and prints what it read as one JSON object.
const READER: &str = r#"
import datetime, decimal, json, pathlib, sys
import duckdb, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq

root = pathlib.Path(sys.argv[1])

def plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v

def table(t):
    columns = {}
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_timestamp(col.type):
            values = col.cast(pa.int64()).to_pylist()
        else:
            values = plain(col.to_pylist())
        columns[name] = {"type": str(col.type), "values": values}
    return {"names": t.column_names, "rows": t.num_rows, "columns": columns}

out = {"files": {}, "datasets": {}, "duckdb": {}, "duckdb_types": {}}
for f in sorted(root.glob("**/*.parquet")):
    pf = pq.ParquetFile(f)
    meta = {k.decode(): v.decode() for k, v in pf.metadata.metadata.items()
            if k.startswith(b"levibot.")}
    out["files"][str(f.relative_to(root))] = {
        "metadata": meta, "row_groups": pf.num_row_groups, "table": table(pf.read())}
for d in sorted(root.glob("type=*")):
    name = d.name[len("type="):]
    out["datasets"][name] = table(ds.dataset(d, format="parquet", partitioning="hive").to_table())
    glob = f"{d}/**/*.parquet"
    query = f"select * from read_parquet('{glob}', hive_partitioning = true) order by pos"
    out["duckdb"][name] = table(duckdb.sql(query).arrow().read_all())
    out["duckdb_types"][name] = dict(duckdb.sql(f"select column_name, column_type from (describe {query})").fetchall())
every = f"select type, count(*) from read_parquet('{root}/**/*.parquet', hive_partitioning = true, union_by_name = true) group by type order by type"
out["every_type"] = dict(duckdb.sql(every).fetchall())
print(json.dumps(out))
"#;

/// What `READER` read from the export in `dir`.
fn read_export(dir: &Path) -> Value {
    require_python("duckdb, pyarrow");
    let out = Command::new("python3")
        .args(["-c", READER])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reading {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn decimal(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
}

/// The ns of a timestamp column's JSON counterpart: `ts` is `ts_unix_ns`, `*_ms` are ms.
fn expected_ns(name: &str, record: &Value) -> u64 {
    match name {
        "ts" => record["ts_unix_ns"].as_u64().unwrap(),
        n if n.ends_with("_ms") => record[n].as_u64().unwrap() * 1_000_000,
        n => record[n].as_u64().unwrap(),
    }
}

/// One value read back against the JSONL's: decimals equal and of the column's scale,
/// timestamps to the unit read (`ns_per_unit`), levels pair by pair, the rest as they are.
fn assert_value(name: &str, ty: &str, got: &Value, record: &Value, ns_per_unit: u64) {
    let expected = &record[name];
    let context = format!("{name} ({ty}) of {record}");
    if ty.starts_with("timestamp") {
        assert_eq!(
            got.as_u64(),
            Some(expected_ns(name, record) / ns_per_unit),
            "{context}"
        );
    } else if ty.starts_with("decimal128(38, ") {
        if expected.is_null() {
            assert!(got.is_null(), "{context}");
            return;
        }
        let got = got.as_str().unwrap();
        let scale = ty["decimal128(38, ".len()..ty.len() - 1]
            .parse::<u32>()
            .unwrap();
        assert_eq!(decimal(got).scale(), scale, "{context}");
        assert_eq!(
            decimal(got),
            decimal(expected.as_str().unwrap()),
            "{context}"
        );
    } else if ty.starts_with("list<") {
        let (got, expected) = (got.as_array().unwrap(), expected.as_array().unwrap());
        assert_eq!(got.len(), expected.len(), "{context}");
        for (level, pair) in got.iter().zip(expected) {
            for (field, i) in [("px", 0), ("qty", 1)] {
                let text = level[field].as_str().unwrap();
                assert_eq!(
                    decimal(text),
                    decimal(pair[i].as_str().unwrap()),
                    "{context}"
                );
            }
        }
    } else {
        assert_eq!(got, expected, "{context}");
    }
}

/// The columns of a type's JSON objects, in their order: the header of its CSV export.
fn columns_of(dir: &Path, kind: &str) -> Vec<String> {
    let csv = dir.join(format!("{kind}.csv"));
    run_ok(
        dir,
        &[
            "export",
            "--format",
            "csv",
            "--type",
            kind,
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines()
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A table read back holds `records`, in order, column by column; its columns are the JSON
/// object's (`columns`) without the partition columns, then `extra` (those a reader adds).
fn assert_table(
    table: &Value,
    records: &[&Value],
    columns: &[String],
    extra: &[&str],
    ns_per_unit: u64,
) {
    let file_columns: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|n| !["type", "symbol"].contains(n))
        .collect();
    let mut names = file_columns.clone();
    names.extend(extra);
    let got: Vec<&str> = table["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(got, names, "{}", records[0]);
    assert_eq!(table["rows"].as_u64(), Some(records.len() as u64));
    for name in file_columns {
        let column = &table["columns"][name];
        let ty = column["type"].as_str().unwrap();
        for (i, record) in records.iter().enumerate() {
            assert_value(name, ty, &column["values"][i], record, ns_per_unit);
        }
    }
}

/// The partition of a JSONL record: `type=../date=../symbol=..`.
fn partition_of(record: &Value) -> String {
    format!(
        "type={}/date={}/symbol={}",
        record["type"].as_str().unwrap(),
        date_of(record),
        symbol_of(record)
    )
}

fn date_of(record: &Value) -> &str {
    &record["ts"].as_str().unwrap()[..10]
}

fn symbol_of(record: &Value) -> &str {
    record["symbol"].as_str().unwrap_or("_")
}

fn type_of(record: &Value) -> &str {
    record["type"].as_str().unwrap()
}

/// `levictl export --format jsonl` of the selection `args`: the records a Parquet export of the
/// same selection must hold.
fn export_jsonl(dir: &Path, args: &[&str]) -> Vec<Value> {
    let jsonl = dir.join("selection.jsonl");
    let mut all = vec![
        "export",
        "--format",
        "jsonl",
        "--out",
        jsonl.to_str().unwrap(),
    ];
    all.extend(args);
    run_ok(dir, &all);
    json_lines(&std::fs::read_to_string(jsonl).unwrap())
}

/// Checks the export in `out` against `records` (the JSONL of the same selection), as pyarrow
/// and DuckDB read it: every partition's files (its parts in order) hold its records, each
/// file names its partition in its metadata, each type read as a table holds its records with
/// the partition columns, and DuckDB reads every type at once. Returns what was read.
fn check_export(dir: &Path, out: &Path, records: &[Value]) -> Value {
    let read = read_export(out);
    let mut expected = BTreeMap::<String, Vec<&Value>>::new();
    let mut by_type = BTreeMap::<&str, Vec<&Value>>::new();
    for record in records {
        if type_of(record) != "unknown" && record.get("invalid").is_none() {
            expected
                .entry(partition_of(record))
                .or_default()
                .push(record);
            by_type.entry(type_of(record)).or_default().push(record);
        }
    }
    let columns: BTreeMap<&str, Vec<String>> =
        by_type.keys().map(|k| (*k, columns_of(dir, k))).collect();

    let mut parts = BTreeMap::<&str, Vec<&Value>>::new();
    for (path, file) in read["files"].as_object().unwrap() {
        let (partition, part) = path.rsplit_once('/').unwrap();
        assert!(
            part.starts_with("part-") && part.ends_with(".parquet"),
            "{path}"
        );
        parts.entry(partition).or_default().push(file);
    }
    let partitions: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), partitions);
    for (partition, records) in &expected {
        let mut rest = &records[..];
        for file in &parts[partition.as_str()] {
            let rows = file["table"]["rows"].as_u64().unwrap() as usize;
            let (these, after) = rest.split_at(rows);
            let kind = type_of(these[0]);
            assert_table(&file["table"], these, &columns[kind], &[], 1);
            let metadata = serde_json::json!({
                "levibot.type": kind,
                "levibot.date": date_of(these[0]),
                "levibot.symbol": symbol_of(these[0]),
            });
            assert_eq!(file["metadata"], metadata, "{partition}");
            rest = after;
        }
        assert!(
            rest.is_empty(),
            "{partition}: {} records not read back",
            rest.len()
        );
    }

    for (kind, records) in &by_type {
        let duckdb = &read["duckdb"][kind];
        let extra = ["date", "symbol", "type"];
        assert_table(duckdb, records, &columns[kind], &extra, 1_000);
        let dates: Vec<&str> = records.iter().map(|r| date_of(r)).collect();
        let symbols: Vec<&str> = records.iter().map(|r| symbol_of(r)).collect();
        let columns_read = &duckdb["columns"];
        assert_eq!(columns_read["date"]["values"], serde_json::json!(dates));
        assert_eq!(columns_read["symbol"]["values"], serde_json::json!(symbols));
        let types = vec![kind; records.len()];
        assert_eq!(columns_read["type"]["values"], serde_json::json!(types));
        // pyarrow's dataset: the rows in partition order; sorted back by position.
        let dataset = &read["datasets"][kind]["columns"];
        let mut rows: Vec<(u64, &Value)> = (0..records.len())
            .map(|i| {
                let pos = dataset["pos"]["values"][i].as_u64().unwrap();
                (pos, &dataset["symbol"]["values"][i])
            })
            .collect();
        rows.sort_by_key(|row| row.0);
        let symbols_read: Vec<&Value> = rows.iter().map(|row| row.1).collect();
        assert_eq!(serde_json::json!(symbols_read), serde_json::json!(symbols));
    }
    let counts: BTreeMap<&str, usize> = by_type.iter().map(|(k, r)| (*k, r.len())).collect();
    assert_eq!(read["every_type"], serde_json::json!(counts));
    read
}

fn export_parquet(dir: &Path, out: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "export",
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend(args);
    run_ok(dir, &all)
}

fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join(parquet::MANIFEST)).unwrap()).unwrap()
}

#[test]
fn every_record_kind_reads_back_in_pyarrow_and_duckdb_as_jsonl_says() {
    let session = session();
    let dir = session.dir.path();
    let records = export_jsonl(dir, &[]);
    assert_eq!(records.len(), FIXTURE_RECORDS);
    let out = dir.join("export");
    let printed = export_parquet(dir, &out, &[]);
    assert_eq!(
        printed.trim(),
        format!(
            "exported {EXPORTED_RECORDS} records in {EXPORTED_RECORDS} files to {} (skipped 1 \
             invalid record, 1 record of unknown types)",
            out.display()
        )
    );
    let read = check_export(dir, &out, &records);

    let files = read["files"].as_object().unwrap();
    let kinds: Vec<&str> = records.iter().map(type_of).collect();
    for kind in [
        "book_ticker",
        "depth_diff",
        "trade",
        "agg_trade",
        "raw_message",
        "instrument_def",
        "order_request",
        "order_sent",
        "risk_reject",
        "execution_report",
        "fix_seq_nums",
        "daemon_event",
        "config_text",
        "feature_snapshot",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in the fixture");
    }
    // The midnight between the records: two dates, and a record without a def under `_`.
    for partition in [
        "type=depth_diff/date=2026-11-25/symbol=NKNUSDT",
        "type=depth_diff/date=2026-11-26/symbol=BTCUSDT",
        "type=book_ticker/date=2026-11-25/symbol=_",
        "type=daemon_event/date=2026-11-26/symbol=_",
    ] {
        let file = format!("{partition}/part-00000.parquet");
        assert!(files.contains_key(&file), "{file} is missing");
    }
    // The types as DuckDB names them: one scale for each of NKN's (5, 0) and BTC's (2, 5).
    let types = &read["duckdb_types"];
    for (kind, column, ty) in [
        ("trade", "ts", "TIMESTAMP WITH TIME ZONE"),
        ("trade", "event_time_ms", "TIMESTAMP WITH TIME ZONE"),
        ("trade", "ts_unix_ns", "UBIGINT"),
        ("trade", "px", "DECIMAL(38,5)"),
        ("trade", "qty", "DECIMAL(38,5)"),
        ("trade", "trade_id", "UBIGINT"),
        ("trade", "instrument_id", "UINTEGER"),
        ("trade", "writer_id", "USMALLINT"),
        ("trade", "aggressor", "VARCHAR"),
        ("trade", "buyer_is_maker", "BOOLEAN"),
        ("trade", "date", "DATE"),
        ("trade", "symbol", "VARCHAR"),
        (
            "depth_diff",
            "bids",
            "STRUCT(px DECIMAL(38,5), qty DECIMAL(38,5))[]",
        ),
        ("risk_reject", "value", "BIGINT"),
        ("daemon_event", "event_unix_ns", "TIMESTAMP WITH TIME ZONE"),
        ("instrument_def", "price_unit", "DECIMAL(38,5)"),
        ("feature_snapshot", "mid", "DOUBLE"),
        (
            "feature_snapshot",
            "event_unix_ns",
            "TIMESTAMP WITH TIME ZONE",
        ),
    ] {
        assert_eq!(types[kind][column], ty, "{kind}.{column}: {}", types[kind]);
    }
    // Some values exactly, to be sure what the comparisons compared.
    let depth = &files["type=depth_diff/date=2026-11-25/symbol=NKNUSDT/part-00000.parquet"]["table"]
        ["columns"];
    assert_eq!(
        depth["bids"]["type"],
        "list<item: struct<px: decimal128(38, 5), qty: decimal128(38, 5)>>"
    );
    assert_eq!(
        depth["bids"]["values"][0],
        serde_json::json!([
            {"px": "0.03510", "qty": "1000.00000"},
            {"px": "0.03509", "qty": "0.00000"},
            {"px": "0.03508", "qty": "77.00000"},
        ])
    );
    assert_eq!(depth["ts"]["type"], "timestamp[ns, tz=UTC]");
    assert_eq!(
        depth["ts"]["values"][0],
        serde_json::json!(ORIGIN_NS + 1_001 + 333 + 7)
    );
    let order = &files["type=order_request/date=2026-11-26/symbol=BTCUSDT/part-00000.parquet"]["table"]
        ["columns"];
    assert_eq!(order["px"]["values"][0], Value::Null, "a market order");
    assert_eq!(order["qty"]["values"][0], "0.02500");

    let features = &files
        .iter()
        .find(|(name, _)| name.starts_with("type=feature_snapshot/"))
        .expect("a feature_snapshot file")
        .1["table"]["columns"];
    // Units x one unit's worth (1e-5), as the strategies compute it: the same bits.
    assert_eq!(
        features["microprice"]["values"][0],
        3_511.25 * (1.0 / 100_000.0)
    );
    assert_eq!(features["atr"]["values"][0], Value::Null);
    assert_eq!(features["top_imbalance"]["values"][0], -0.5);

    let manifest = manifest(&out);
    assert_eq!(manifest["format"], "levictl-parquet");
    assert_eq!(manifest["complete"], true);
    assert_eq!(
        manifest["summary"]["scales"],
        serde_json::json!({"price": 5, "qty": 5})
    );
    assert_eq!(
        manifest["summary"]["types"]["depth_diff"],
        serde_json::json!({"records": 2, "files": 2})
    );
}

#[test]
fn a_selection_exports_its_records_at_its_instruments_scales_and_replaces_an_export() {
    let session = session();
    let dir = session.dir.path();
    let all = export_jsonl(dir, &[]);
    let from = all
        .iter()
        .find(|r| type_of(r) == "depth_diff" && symbol_of(r) == "BTCUSDT")
        .unwrap()["pos"]
        .to_string();
    let out = dir.join("btc");
    export_parquet(dir, &out, &[]);
    let selection = ["--symbol", "btcusdt", "--from", &from];
    let records = export_jsonl(dir, &selection);
    assert_eq!(
        records.iter().map(type_of).collect::<Vec<_>>(),
        ["depth_diff", "agg_trade", "order_request"]
    );
    // Into the previous export, which it replaces whole.
    let printed = export_parquet(dir, &out, &selection);
    assert!(
        printed.starts_with("exported 3 records in 3 files"),
        "{printed}"
    );
    let read = check_export(dir, &out, &records);
    let mut entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            parquet::MANIFEST,
            "type=agg_trade",
            "type=depth_diff",
            "type=order_request"
        ]
    );
    assert!(!dir.join("btc.partial").exists());
    // BTCUSDT's own scales.
    let types = &read["duckdb_types"];
    assert_eq!(types["agg_trade"]["px"], "DECIMAL(38,2)");
    assert_eq!(types["agg_trade"]["qty"], "DECIMAL(38,5)");
    assert_eq!(
        types["depth_diff"]["asks"],
        "STRUCT(px DECIMAL(38,2), qty DECIMAL(38,5))[]"
    );
    assert_eq!(manifest(&out)["summary"]["records"], 3);

    // An empty directory is free too; a selection of nothing writes an empty export.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let printed = export_parquet(dir, &empty, &["--type", "trade", "--symbol", "ETHUSDT"]);
    assert!(
        printed.starts_with("exported 0 records in 0 files"),
        "{printed}"
    );
    assert_eq!(manifest(&empty)["summary"]["files"], 0);
}

#[test]
fn small_limits_split_row_groups_and_files_and_lose_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("levictl-parquet-limits")
        .tempdir()
        .unwrap();
    let journal = Journal::open(&config(dir.path())).unwrap();
    let mut feed = journal.appender(writer_id::FEED).unwrap();
    for (id, symbol) in [(1, "AAAUSDT"), (2, "BBBUSDT"), (3, "CCCUSDT")] {
        let def = InstrumentDef::new(id, symbol, (1, 4), (1, 2)).unwrap();
        Fixture::append(&mut feed, &def);
    }
    // Three partitions interleaved, with two files open at most: every switch closes one.
    for i in 0..30 {
        let id = 1 + (i % 3) as u32;
        let trade = Trade {
            trade_id: i,
            px: 10_000 + i as i64,
            qty: 100,
            instrument_id: id,
            ..Trade::default()
        };
        Fixture::append(&mut feed, &trade);
        if i % 3 == 0 {
            let bids: Vec<Level> = (0..5).map(|l| level(9_000 - l, 1 + l)).collect();
            Fixture::append(&mut feed, &depth(id, &bids, &[], 0));
        }
    }
    drop((feed, journal));
    let dir = dir.path();
    let records = export_jsonl(dir, &["--type", "trade", "--type", "depth_diff"]);
    let out = dir.join("small");
    let limits = Limits {
        open_writers_max: 2,
        batch_rows_max: 2,
        batch_bytes_max: 1 << 20,
        row_group_rows_max: 3,
        row_group_bytes_max: 1 << 20,
        buffered_bytes_max: 1 << 20,
    };
    let selection = Selection {
        types: vec![record_type::TRADE, record_type::DEPTH_DIFF],
        ..Selection::default()
    };
    let summary = parquet::export(dir, &selection, &out, limits).unwrap();
    assert_eq!(summary.records, 40);
    let read = check_export(dir, &out, &records);
    let files = read["files"].as_object().unwrap();
    assert_eq!(files.len() as u64, summary.files);
    assert!(summary.files > 10, "{summary:?}");
    for (path, file) in files {
        let rows = file["table"]["rows"].as_u64().unwrap();
        let groups = file["row_groups"].as_u64().unwrap();
        assert_eq!(groups, rows.div_ceil(3), "{path}: {rows} rows");
    }

    // The same export with every byte limit at its least: row groups of one row.
    let tiny = Limits {
        batch_bytes_max: 1,
        buffered_bytes_max: 1,
        ..Limits::DEFAULT
    };
    let out = dir.join("tiny");
    parquet::export(dir, &selection, &out, tiny).unwrap();
    let read = check_export(dir, &out, &records);
    for (path, file) in read["files"].as_object().unwrap() {
        let rows = file["table"]["rows"].as_u64().unwrap();
        assert_eq!(file["row_groups"].as_u64(), Some(rows), "{path}");
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_leaves_nothing_behind() {
    let session = session();
    let dir = session.dir.path();
    let refused = |out: &Path, extra: &[&str]| -> String {
        let mut args = vec![
            "export",
            "--format",
            "parquet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let output = run_failing(dir, &args);
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    // A directory that holds something else.
    let foreign = dir.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let stderr = refused(&foreign, &[]);
    assert!(
        stderr.contains("not empty, and not a previous parquet export of levictl"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
    // Nor a previous export with something of the user's added.
    let previous = dir.join("previous");
    export_parquet(dir, &previous, &[]);
    std::fs::write(previous.join("notes.txt"), "mine").unwrap();
    let stderr = refused(&previous, &[]);
    assert!(stderr.contains("not a previous parquet export"), "{stderr}");
    assert!(previous.join("notes.txt").exists());
    // A file.
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(refused(&file, &[]).contains("not a directory"));
    // Something of the user's where the export is written first.
    let out = dir.join("out");
    std::fs::create_dir(dir.join("out.partial")).unwrap();
    std::fs::write(dir.join("out.partial/notes.txt"), "mine").unwrap();
    let stderr = refused(&out, &[]);
    assert!(stderr.contains("out.partial: is in the way"), "{stderr}");
    assert!(dir.join("out.partial/notes.txt").exists());
    // Types: one this levictl does not know, and one that is no type at all.
    let stderr = refused(&out, &["--type", "0x999"]);
    assert!(
        stderr.contains("--format parquet exports the record types this levictl knows")
            && stderr.contains("export type 0x0999 as jsonl"),
        "{stderr}"
    );
    let stderr = refused(&out, &["--type", "orders"]);
    assert!(
        stderr.contains("unknown record type \"orders\""),
        "{stderr}"
    );
    assert!(!out.exists());
    // A journal that is not there.
    let missing = levictl(&dir.join("nothing"))
        .args(["export", "--format", "parquet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading the journal"));
    assert!(!out.exists());
}
