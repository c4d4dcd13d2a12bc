//! `levictl tail`, `stat` and `export` as an operator runs them: the real binary against a
//! journal and a counters file written here with shm's `Journal` and `CountersWriter`; exports
//! read back with DuckDB (Python's `duckdb`, installed by scripts/install-test-deps).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use levibot_shm::codes::{RiskCheck, counter_type, writer_id};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::paths::counters_path;
use levibot_shm::records::{
    BookTicker, DaemonEvent, ExecutionReport, InstrumentDef, OrderRequest, RawMessageHeader,
    Record, RiskReject, SentOrder, daemon_event, event_source, exec_type, ord_type, order_kind,
    record_type, side, time_in_force,
};
use levibot_shm::{Appender, Journal, JournalConfig, RecordType, RetentionPolicy};
use serde_json::Value;

/// How long a test waits for a line from a follower: generous, for a loaded CI machine.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);
/// Small segments, so that a few hundred records roll over.
const SEGMENT_SIZE: usize = 64 * 1024;

const NKN: u32 = 3;
const BTC: u32 = 4;
/// 0.03512 in NKNUSDT's price units (10^-8).
const NKN_PX: i64 = 3_512_000;
const RAW_TEXT: &str = r#"{"stream":"nknusdt@bookTicker","data":{"u":400900217,"s":"NKNUSDT","b":"0.03510000","B":"1000.00000000","a":"0.03512000","A":"250.50000000"}}"#;
const CONFIG: &str = "[risk]\nloss_max = 500\n";
/// Records the fixture journals (an unknown type and an invalid ticker included).
const FIXTURE_RECORDS: usize = 13;

pub(crate) struct Fixture {
    dir: tempfile::TempDir,
    journal: Journal,
    daemon: Appender,
    feed: Appender,
    gateway: Appender,
    _counters: CountersWriter,
    _counter_handles: Vec<Counter>,
    /// Wall clock around the appends (ns since the epoch).
    appended_between: (u64, u64),
}

impl Fixture {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A TSC stamp `ns` after the journal's calibration point.
    fn tsc(&self, ns: u64) -> u64 {
        let cal = self.journal.calibration();
        cal.tsc_ref + (ns as f64 * cal.ticks_per_ns) as u64
    }

    pub(crate) fn append<R: Record>(appender: &mut Appender, record: &R) {
        appender.append(R::RECORD_TYPE, record.to_bytes()).unwrap();
    }

    fn execution_report(&self, client_order_id: u64) -> ExecutionReport {
        ExecutionReport {
            recv_tsc: self.tsc(5_000),
            client_order_id,
            venue_order_id: 9_001,
            px: NKN_PX,
            last_px: NKN_PX,
            last_qty: 100 * 100_000_000,
            cum_qty: 100 * 100_000_000,
            leaves_qty: 0,
            instrument_id: NKN,
            exec_type: exec_type::TRADE,
            ord_status: b'2',
            side: side::BUY,
            ..ExecutionReport::default()
        }
    }
}

pub(crate) fn config(dir: &Path) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    config.segment_size = SEGMENT_SIZE;
    config.prefault = false;
    config.retention = RetentionPolicy::keep_all();
    config
}

fn daemon_event(kind: u16, value: i64, source: u16, peer_uid: u32) -> DaemonEvent {
    DaemonEvent {
        unix_ns: levibot_shm::clock::unix_now_ns(),
        value,
        kind,
        source,
        peer_uid,
    }
}

fn ticker(instrument_id: u32, update_id: u64, bid_px: i64, ask_px: i64) -> BookTicker {
    BookTicker {
        recv_tsc: 0,
        update_id,
        bid_px,
        bid_qty: 1_000 * 100_000_000,
        ask_px,
        ask_qty: 25_050_000_000,
        instrument_id,
        reserved: 0,
    }
}

/// A journal as a daemon run leaves it: start-up events and defs, market data, an order sent,
/// filled and one refused, the kill switch; an unknown record type and a corrupt ticker; and the
/// counters file.
fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("levictl-journal")
        .tempdir()
        .unwrap();
    let journal = Journal::open(&config(dir.path())).unwrap();
    let counters = CountersWriter::create(counters_path(dir.path()), 64, journal.epoch()).unwrap();
    let mut handles = Vec::new();
    for (label, type_id, value) in [
        ("feed.messages", counter_type::EVENTS, 265),
        ("feed.decode_errors", counter_type::EVENTS, 0),
        ("risk.passed", counter_type::EVENTS, 1),
        ("risk.rejected", counter_type::EVENTS, 1),
        ("risk.reject.price_collar", counter_type::EVENTS, 1),
        ("risk.trading_state", counter_type::STATE, 2),
        ("gateway.orders_sent", counter_type::EVENTS, 1),
        ("agent.feed.cycle_ns_max", counter_type::CYCLE_NS_MAX, 1_500),
    ] {
        let counter = counters.allocate(label, type_id).unwrap();
        counter.set(value);
        handles.push(counter);
    }
    let mut f = Fixture {
        daemon: journal.appender(writer_id::DAEMON).unwrap(),
        feed: journal.appender(writer_id::FEED).unwrap(),
        gateway: journal.appender(writer_id::GATEWAY).unwrap(),
        journal,
        dir,
        _counters: counters,
        _counter_handles: handles,
        appended_between: (levibot_shm::clock::unix_now_ns(), 0),
    };
    let started = daemon_event(daemon_event::STARTED, 0, event_source::DAEMON, 0);
    Fixture::append(&mut f.daemon, &started);
    f.daemon
        .append(record_type::CONFIG_TEXT, CONFIG.as_bytes())
        .unwrap();
    let nkn = InstrumentDef::new(NKN, "NKNUSDT", (1, 8), (1, 8)).unwrap();
    let btc = InstrumentDef::new(BTC, "BTCUSDT", (1, 2), (1, 8)).unwrap();
    Fixture::append(&mut f.daemon, &nkn);
    Fixture::append(&mut f.daemon, &btc);

    // A RawMessageHeader (recv_tsc, source_id, snapshot_of), then the venue's bytes.
    let mut raw = f.tsc(0).to_le_bytes().to_vec();
    raw.extend_from_slice(&1u32.to_le_bytes());
    raw.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(raw.len(), size_of::<RawMessageHeader>());
    raw.extend_from_slice(RAW_TEXT.as_bytes());
    f.feed.append(record_type::RAW_MESSAGE, &raw).unwrap();
    Fixture::append(&mut f.feed, &ticker(NKN, 400_900_217, 3_510_000, NKN_PX));
    Fixture::append(&mut f.feed, &ticker(BTC, 77, 9_123_456, 9_123_457));

    // Stage edges 0..1250 ns: decode 200, strategy 100, risk 30, encode 750, t2t 1200.
    let sent = SentOrder {
        request: OrderRequest {
            created_tsc: f.tsc(400),
            risk_tsc: f.tsc(480),
            client_order_id: 42,
            px: NKN_PX,
            qty: 100 * 100_000_000,
            instrument_id: NKN,
            strategy_id: 1,
            kind: order_kind::NEW,
            side: side::BUY,
            ord_type: ord_type::LIMIT,
            time_in_force: time_in_force::GTC,
            ..OrderRequest::default()
        },
        due_tsc: f.tsc(0),
        recv_tsc: f.tsc(50),
        decoded_tsc: f.tsc(250),
        strategy_start_tsc: f.tsc(300),
        risk_start_tsc: f.tsc(450),
        encode_start_tsc: f.tsc(500),
        encoded_tsc: f.tsc(1_250),
        msg_seq_num: 7,
        encoded_len: 180,
        reserved: 0,
    };
    Fixture::append(&mut f.gateway, &sent);
    let report = f.execution_report(42);
    Fixture::append(&mut f.gateway, &report);
    let reject = RiskReject {
        request: OrderRequest {
            client_order_id: 43,
            px: 4_000_000,
            qty: 5_000 * 100_000_000,
            side: side::SELL,
            ..sent.request
        },
        limit: 50,
        value: 1_390,
        check: RiskCheck::PriceCollar as u16,
        ..RiskReject::default()
    };
    Fixture::append(&mut f.gateway, &reject);
    let halted = daemon_event(
        daemon_event::TRADING_STATE,
        2,
        event_source::CONTROL_SOCKET,
        1000,
    );
    Fixture::append(&mut f.daemon, &halted);
    f.daemon.append(RecordType(0x999), b"hello").unwrap();
    f.feed.append(record_type::BOOK_TICKER, &[1, 2, 3]).unwrap();
    f.journal.heartbeat();
    f.appended_between.1 = levibot_shm::clock::unix_now_ns();
    f
}

pub(crate) fn levictl(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_levictl"));
    command
        .env_remove(levibot_shm::paths::DIR_ENV)
        .arg("--journal")
        .arg(dir);
    command
}

/// Runs levictl to completion; panics with its stderr if it failed.
pub(crate) fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = levictl(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "levictl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn run_failing(dir: &Path, args: &[&str]) -> Output {
    let out = levictl(dir).args(args).output().unwrap();
    assert!(!out.status.success(), "levictl {args:?} should have failed");
    out
}

pub(crate) fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn types_of(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect()
}

#[test]
fn tail_prints_every_record_as_a_human_line() {
    let f = fixture();
    let text = run_ok(f.path(), &["tail"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), FIXTURE_RECORDS, "{text}");
    for line in &lines {
        // 2026-11-26T01:02:03.123456789Z  TYPE ...
        assert_eq!(line.as_bytes()[10], b'T', "{line}");
        assert_eq!(&line[29..32], "Z  ", "{line}");
    }
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
            .to_string()
    };
    assert!(find("DAEMON_EVENT").contains("STARTED value=0"));
    assert!(find("CONFIG_TEXT").contains(&format!("{} bytes, 2 lines  [risk]", CONFIG.len())));
    assert!(
        find("BTCUSDT id=")
            .contains("INSTRUMENT_DEF    BTCUSDT id=4 price_unit=0.01 qty_unit=0.00000001")
    );
    assert!(find("RAW_MESSAGE").contains(&format!(
        "source=1 {} bytes  {{\"stream\":\"nknusdt@bookTicker\"",
        RAW_TEXT.len()
    )));
    assert!(
        find("BOOK_TICKER       NKNUSDT")
            .contains("NKNUSDT bid 1000 @ 0.0351  ask 250.5 @ 0.03512  update=400900217")
    );
    assert!(find("BTCUSDT bid").contains("bid 1000 @ 91234.56  ask 250.5 @ 91234.57"));
    let sent = find("ORDER_SENT");
    assert!(
        sent.contains("ORDER_SENT        NKNUSDT BUY 100 @ 0.03512 GTC  clid=42 seq=7 t2t=1.2us"),
        "{sent}"
    );
    assert!(find("EXECUTION_REPORT").contains(
        "NKNUSDT TRADE BUY 100 @ 0.03512  px=0.03512 cum=100 leaves=0 status=FILLED clid=42"
    ));
    assert!(
        find("RISK_REJECT").contains(
            "NKNUSDT SELL 5000 @ 0.04 GTC  check=price_collar limit=50 value=1390 clid=43"
        )
    );
    assert!(
        find("TRADING_STATE")
            .contains("DAEMON_EVENT      TRADING_STATE halted  source=control_socket uid=1000")
    );
    assert!(find("0x0999").ends_with("0x0999            5 bytes"));
    assert!(find("invalid").ends_with("BOOK_TICKER       invalid (3 bytes)"));
}

#[test]
fn tail_json_has_symbols_decimals_times_and_latencies() {
    let f = fixture();
    let records = json_lines(&run_ok(f.path(), &["tail", "--json"]));
    assert_eq!(
        types_of(&records),
        [
            "daemon_event",
            "config_text",
            "instrument_def",
            "instrument_def",
            "raw_message",
            "book_ticker",
            "book_ticker",
            "order_sent",
            "execution_report",
            "risk_reject",
            "daemon_event",
            "unknown",
            "book_ticker",
        ]
    );
    let (start, end) = f.appended_between;
    let mut last_pos = 0;
    for r in &records {
        let pos = r["pos"].as_u64().unwrap();
        assert!(pos > last_pos);
        last_pos = pos;
        // The frame's TSC through the segment's calibration: the wall clock of the append.
        let ts = r["ts_unix_ns"].as_u64().unwrap();
        assert!(
            ts + 1_000_000_000 > start && ts < end + 1_000_000_000,
            "{r}"
        );
        assert_eq!(r["ts"].as_str().unwrap().len(), 30);
        assert_eq!(r["epoch"], f.journal.epoch());
    }
    let nkn_ticker = &records[5];
    assert_eq!(nkn_ticker["symbol"], "NKNUSDT");
    assert_eq!(nkn_ticker["writer"], "feed");
    assert_eq!(nkn_ticker["bid_px"], "0.0351");
    assert_eq!(nkn_ticker["ask_px"], "0.03512");
    assert_eq!(nkn_ticker["ask_qty"], "250.5");
    assert_eq!(records[6]["bid_px"], "91234.56");

    let sent = &records[7];
    assert_eq!(sent["symbol"], "NKNUSDT");
    assert_eq!(sent["writer"], "gateway");
    assert_eq!(sent["side"], "buy");
    assert_eq!(sent["px"], "0.03512");
    assert_eq!(sent["qty"], "100");
    assert_eq!(sent["client_order_id"], 42);
    assert_eq!(sent["msg_seq_num"], 7);
    for (field, ns) in [
        ("decode_ns", 200),
        ("strategy_ns", 100),
        ("risk_ns", 30),
        ("encode_ns", 750),
        ("between_stages_ns", 120),
        ("tick_to_trade_ns", 1_200),
        ("due_to_trade_ns", 1_250),
    ] {
        let got = sent[field].as_i64().unwrap();
        assert!((got - ns).abs() <= 3, "{field}: {got} vs {ns}");
    }
    let report = &records[8];
    assert_eq!(report["exec_type"], "trade");
    assert_eq!(report["ord_status"], "filled");
    assert_eq!(report["last_px"], "0.03512");
    let reject = &records[9];
    assert_eq!(reject["check"], "price_collar");
    assert_eq!(reject["px"], "0.04");
    assert_eq!(reject["limit"], 50);
    assert_eq!(records[10]["event"], "trading_state");
    assert_eq!(records[10]["writer"], "daemon");
    assert_eq!(records[10]["source"], "control_socket");
    assert_eq!(records[1]["text"], CONFIG);
    assert_eq!(records[4]["text"], RAW_TEXT);
    assert_eq!(records[11]["record_type"], "0x0999");
    assert_eq!(records[12]["invalid"], true);
    assert_eq!(records[12]["len"], 3);
}

#[test]
fn tail_filters_by_type_and_symbol_and_keeps_the_last_n() {
    let f = fixture();
    let dir = f.path();
    let picked = json_lines(&run_ok(
        dir,
        &[
            "tail",
            "--json",
            "--type",
            "order_sent",
            "--type",
            "EXECUTION_REPORT",
        ],
    ));
    assert_eq!(types_of(&picked), ["order_sent", "execution_report"]);

    let btc = json_lines(&run_ok(dir, &["tail", "--json", "--symbol", "btcusdt"]));
    assert_eq!(types_of(&btc), ["instrument_def", "book_ticker"]);
    assert!(btc.iter().all(|r| r["symbol"] == "BTCUSDT"));

    // The corrupt ticker names no instrument: a symbol filter leaves it out.
    let nkn_tickers = json_lines(&run_ok(
        dir,
        &[
            "tail",
            "--json",
            "--type",
            "book-ticker",
            "--symbol",
            "NKNUSDT",
        ],
    ));
    assert_eq!(nkn_tickers.len(), 1);

    let last3 = json_lines(&run_ok(dir, &["tail", "--json", "-n", "3"]));
    assert_eq!(types_of(&last3), ["daemon_event", "unknown", "book_ticker"]);
    let last_orders = json_lines(&run_ok(
        dir,
        &[
            "tail", "--json", "-n", "1", "--symbol", "NKNUSDT", "--type", "0x201",
        ],
    ));
    assert_eq!(types_of(&last_orders), ["order_sent"]);
    assert_eq!(run_ok(dir, &["tail", "-n", "0"]), "");

    let out = run_failing(dir, &["tail", "--type", "orders"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("order_sent, risk_reject"), "{stderr}");
    let help = run_ok(dir, &["tail", "--help"]);
    assert!(help.contains("execution_report"), "{help}");
}

#[test]
fn tail_since_a_position_or_a_time() {
    let f = fixture();
    let dir = f.path();
    let all = json_lines(&run_ok(dir, &["tail", "--json"]));
    let sent = &all[7];
    let pos = sent["pos"].as_u64().unwrap().to_string();
    let from_pos = json_lines(&run_ok(dir, &["tail", "--json", "--since", &pos]));
    assert_eq!(from_pos, all[7..]);

    let ts = sent["ts"].as_str().unwrap();
    let from_time = json_lines(&run_ok(dir, &["tail", "--json", "--since", ts]));
    assert_eq!(from_time, all[7..]);
    let recent = json_lines(&run_ok(dir, &["tail", "--json", "--since", "1h"]));
    assert_eq!(recent.len(), FIXTURE_RECORDS);
    let two = json_lines(&run_ok(
        dir,
        &["tail", "--json", "--since", &pos, "-n", "2"],
    ));
    assert_eq!(two, all[FIXTURE_RECORDS - 2..]);

    // Not the start of a frame: the tailer's own error.
    let inside = (sent["pos"].as_u64().unwrap() + 8).to_string();
    let out = run_failing(dir, &["tail", "--since", &inside]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not the start of a frame"), "{stderr}");
    let out = run_failing(dir, &["tail", "--since", "yesterday-ish"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}

#[test]
fn tail_n_reaches_back_across_segments_and_stops_quietly_on_a_closed_pipe() {
    let mut f = fixture();
    // About 680 tickers fill a 64 KiB segment: these span three.
    for update_id in 1..=1_500 {
        Fixture::append(&mut f.feed, &ticker(NKN, update_id, 3_510_000, NKN_PX));
    }
    let segments = std::fs::read_dir(f.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".lvj")
        })
        .count();
    assert!(segments >= 3, "{segments} segments");
    let last = json_lines(&run_ok(
        f.path(),
        &["tail", "--json", "-n", "1000", "--type", "book_ticker"],
    ));
    let ids: Vec<u64> = last
        .iter()
        .map(|r| r["update_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (501..=1_500).collect::<Vec<_>>());
    assert!(last.iter().all(|r| r["symbol"] == "NKNUSDT"));
    // Everything from the start, across the rollovers, defs still known.
    let everything = run_ok(f.path(), &["tail"]);
    assert_eq!(everything.lines().count(), FIXTURE_RECORDS + 1_500);

    // `levictl tail | head -1`: more than a pipe holds, the reader leaves after one line.
    let mut child = levictl(f.path())
        .arg("tail")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("STARTED"), "{first}");
    drop(stdout);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

/// A follower's stdout, line by line, with a timeout.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn spawn(dir: &Path, args: &[&str]) -> Follower {
        let mut child = levictl(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .expect("a line from the follower in time")
    }

    /// SIGTERM, as systemd or Ctrl-C would: the follower exits cleanly.
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "follower exited with {status}");
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tail_follow_sees_new_records_across_rollovers() {
    let mut f = fixture();
    let follower = Follower::spawn(f.path(), &["tail", "-f", "--json", "-n", "1"]);
    // The last record there was: the follower is reading.
    let first: Value = serde_json::from_str(&follower.line()).unwrap();
    assert_eq!(first["invalid"], true);
    let report = f.execution_report(44);
    Fixture::append(&mut f.gateway, &report);
    let next: Value = serde_json::from_str(&follower.line()).unwrap();
    assert_eq!(next["type"], "execution_report");
    assert_eq!(next["client_order_id"], 44);
    assert_eq!(next["symbol"], "NKNUSDT");
    // Into later segments.
    for update_id in 1..=1_000 {
        Fixture::append(&mut f.feed, &ticker(NKN, update_id, 3_510_000, NKN_PX));
    }
    for update_id in 1..=1_000 {
        let r: Value = serde_json::from_str(&follower.line()).unwrap();
        assert_eq!(r["update_id"], update_id);
    }
    follower.stop();
}

#[test]
fn tail_follow_marks_a_writer_restart() {
    let f = fixture();
    let dir: PathBuf = f.path().to_owned();
    let follower = Follower::spawn(&dir, &["tail", "-f", "--type", "daemon_event"]);
    // -f starts with the last 10 matching: the fixture's two events.
    assert!(follower.line().contains("STARTED"));
    assert!(follower.line().contains("TRADING_STATE halted"));
    let old_epoch = f.journal.epoch();
    let Fixture {
        dir: tempdir,
        journal,
        daemon,
        feed,
        gateway,
        ..
    } = f;
    drop((daemon, feed, gateway, journal));
    // A new run: a new segment with a new epoch.
    let journal = Journal::open(&config(&dir)).unwrap();
    assert_ne!(journal.epoch(), old_epoch);
    let mut appender = journal.appender(writer_id::DAEMON).unwrap();
    let started = daemon_event(daemon_event::STARTED, 1, event_source::DAEMON, 0);
    Fixture::append(&mut appender, &started);
    let marker = follower.line();
    assert_eq!(
        marker,
        format!(
            "-- writer restarted: epoch {old_epoch} -> {} --",
            journal.epoch()
        )
    );
    assert!(follower.line().contains("STARTED value=1"));
    follower.stop();
    drop(tempdir);
}

#[test]
fn tail_reads_each_run_with_its_own_instruments() {
    let f = fixture();
    let dir: PathBuf = f.path().to_owned();
    let old_epoch = f.journal.epoch();
    let Fixture {
        dir: tempdir,
        journal,
        daemon,
        feed,
        gateway,
        ..
    } = f;
    drop((daemon, feed, gateway, journal));
    // The next run trades another instrument under id 3.
    let journal = Journal::open(&config(&dir)).unwrap();
    let mut appender = journal.appender(writer_id::FEED).unwrap();
    let eth = InstrumentDef::new(NKN, "ETHUSDT", (1, 2), (1, 8)).unwrap();
    Fixture::append(&mut appender, &eth);
    Fixture::append(&mut appender, &ticker(NKN, 1, 300_012, 300_013));

    let tickers = json_lines(&run_ok(&dir, &["tail", "--json", "--type", "book_ticker"]));
    let symbols: Vec<Value> = tickers.iter().map(|r| r["symbol"].clone()).collect();
    assert_eq!(
        symbols,
        [
            Value::from("NKNUSDT"),
            Value::from("BTCUSDT"),
            Value::Null,
            Value::from("ETHUSDT")
        ]
    );
    assert_eq!(tickers[3]["bid_px"], "3000.12");
    assert_eq!(tickers[3]["epoch"], journal.epoch());
    // From the newest segment back into the older run, whose defs it looks up.
    let last = json_lines(&run_ok(
        &dir,
        &["tail", "--json", "-n", "4", "--type", "book_ticker"],
    ));
    assert_eq!(last, tickers);
    let human = run_ok(&dir, &["tail", "-n", "3"]);
    let lines: Vec<&str> = human.lines().collect();
    assert!(lines[0].ends_with("invalid (3 bytes)"), "{human}");
    assert_eq!(
        lines[1],
        format!("-- writer restarted: epoch {} --", journal.epoch())
    );
    assert!(lines[3].contains("ETHUSDT bid 1000 @ 3000.12"), "{human}");
    assert_ne!(old_epoch, journal.epoch());
    drop(tempdir);
}

#[test]
fn stat_once_shows_every_counter_and_the_writer() {
    let f = fixture();
    let dir = f.path();
    f.journal.heartbeat();
    let text = run_ok(dir, &["stat", "--once"]);
    assert!(
        text.contains(&format!("writer pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("alive"), "{text}");
    let value_of = |label: &str| {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no {label} in\n{text}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(value_of("feed.messages"), "265");
    assert_eq!(value_of("risk.reject.price_collar"), "1");
    assert_eq!(value_of("agent.feed.cycle_ns_max"), "1500");
    assert!(text.contains("(halted)"), "{text}");

    f.journal.heartbeat();
    let json: Value = serde_json::from_str(&run_ok(dir, &["stat", "--once", "--json"])).unwrap();
    assert_eq!(json["writer_pid"], std::process::id());
    assert_eq!(json["epoch"], f.journal.epoch());
    assert_eq!(json["process_running"], true);
    assert_eq!(json["alive"], true, "{json}");
    assert!(json["heartbeat_unix_ns"].as_u64().unwrap() > 0);
    assert_eq!(json["counters"]["feed.messages"], 265);
    assert_eq!(json["counters"]["risk.trading_state"], 2);
    assert_eq!(json["counters"].as_object().unwrap().len(), 8);

    let risk = run_ok(dir, &["stat", "--once", "--filter", "risk."]);
    assert!(
        risk.contains("risk.rejected") && !risk.contains("feed.messages"),
        "{risk}"
    );

    let missing = dir.join("nowhere");
    let out = run_failing(&missing, &["stat", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&missing.join("counters.lvc").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("is levibotd running?"), "{stderr}");
    assert!(stderr.contains("LEVIBOT_JOURNAL"), "{stderr}");
}

#[test]
fn stat_refreshes_with_rates_until_sigterm() {
    let f = fixture();
    let follower = Follower::spawn(f.path(), &["stat", "--interval-ms", "100"]);
    // Not a terminal: one listing after another, the second with rates.
    let mut headers = 0;
    while headers < 2 {
        let line = follower.line();
        if line.starts_with("COUNTER") {
            headers += 1;
            assert_eq!(line.contains("RATE/s"), headers == 2, "{line}");
        }
    }
    follower.stop();
    drop(f);
}

/// Panics, saying what to install, unless python3 imports `modules` (`duckdb, pyarrow`).
pub(crate) fn require_python(modules: &str) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with Python's {modules} is needed (scripts/install-test-deps installs them)"
    );
}

/// Runs SQL in DuckDB (Python's module); the rows as `a|b|c` lines.
fn duckdb(sql: &str) -> String {
    require_python("duckdb");
    python(
        "import sys, duckdb\n\
         for row in duckdb.sql(sys.argv[1]).fetchall():\n    \
         print('|'.join(str(v) for v in row))",
        &[sql.as_ref()],
    )
    .trim_end()
    .to_owned()
}

/// Runs a Python script with `args`; its stdout (it must succeed, or the test fails with its
/// stderr).
pub(crate) fn python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn export_jsonl_and_csv_read_back_in_duckdb() {
    let f = fixture();
    let dir = f.path();
    let jsonl = dir.join("all.jsonl");
    let out = run_ok(
        dir,
        &[
            "export",
            "--format",
            "jsonl",
            "--out",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.trim(),
        format!("exported {FIXTURE_RECORDS} records to {}", jsonl.display())
    );
    // The same objects as tail --json.
    let tailed = run_ok(dir, &["tail", "--json"]);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), tailed);
    let rows = duckdb(&format!(
        "select count(*), count(*) filter (where type = 'order_sent'), \
         max(px) filter (where type = 'order_sent'), \
         max(tick_to_trade_ns) filter (where type = 'order_sent') between 1197 and 1203 \
         from read_json_auto('{}')",
        jsonl.display()
    ));
    assert_eq!(rows, format!("{FIXTURE_RECORDS}|1|0.03512|True"));

    let csv = dir.join("tickers.csv");
    let out = run_ok(
        dir,
        &[
            "export",
            "--format",
            "csv",
            "--type",
            "book_ticker",
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.contains("exported 2 records"), "{out}");
    assert!(out.contains("skipped 1 invalid"), "{out}");
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(header.starts_with(
        "pos,ts,ts_unix_ns,type,epoch,writer,writer_id,seq,tsc,instrument_id,symbol,update_id,\
         bid_px,bid_qty,ask_px,ask_qty,recv_tsc\n"
    ));
    let rows = duckdb(&format!(
        "select count(*), sum(bid_qty), max(bid_px) filter (where symbol = 'BTCUSDT') \
         from read_csv_auto('{}')",
        csv.display()
    ));
    assert_eq!(rows, "2|2000|91234.56");

    // A window: from the order sent (inclusive) to the reject (exclusive).
    let all = json_lines(&tailed);
    let (from, to) = (all[7]["pos"].to_string(), all[9]["pos"].to_string());
    let window = dir.join("window.jsonl");
    run_ok(
        dir,
        &[
            "export",
            "--format",
            "jsonl",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            window.to_str().unwrap(),
        ],
    );
    let rows = duckdb(&format!(
        "select string_agg(type, ',' order by pos) from read_json_auto('{}')",
        window.display()
    ));
    assert_eq!(rows, "order_sent,execution_report");

    let out = run_failing(dir, &["export", "--format", "csv", "--out", "x.csv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exactly one --type"), "{stderr}");
}

/// Fuzzer finding (fuzz/regressions/journal/def-symbol-newlines): an instrument def whose
/// symbol held line breaks (or a terminal escape) put them into `levictl tail`'s lines, so a
/// forged journal could print lines of its own. Such a def is invalid now: its line says so,
/// and the records of its instrument name it by id.
#[test]
fn tail_lines_carry_no_control_characters_from_a_forged_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&config(dir.path())).unwrap();
    let mut daemon = journal.appender(writer_id::DAEMON).unwrap();
    for (id, symbol) in [(7, "NKN\nUSDT"), (8, "\u{1b}[2J\u{1b}[31mBTC"), (9, "ÉTH")] {
        let def = InstrumentDef::new(id, symbol, (1, 8), (1, 8)).unwrap();
        Fixture::append(&mut daemon, &def);
        Fixture::append(&mut daemon, &ticker(id, 1, NKN_PX, NKN_PX + 1));
    }
    drop(daemon);
    let text = run_ok(dir.path(), &["tail"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text:?}");
    for line in &lines {
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("invalid (48 bytes)"))
            .count(),
        3,
        "{text}"
    );
    for id in [7, 8, 9] {
        assert!(
            text.contains(&format!("BOOK_TICKER       #{id} bid")),
            "{text}"
        );
    }
    // The JSON escapes what it carries anyway; no symbol is claimed for a forged def.
    for record in json_lines(&run_ok(dir.path(), &["tail", "--json"])) {
        assert!(record["symbol"].is_null(), "{record}");
    }
}
