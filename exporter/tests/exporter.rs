//! `levibot-exporter` as an SRE runs it: the real binary against a journal and a counters file
//! written here with shm's `Journal` and `CountersWriter`, scraped over loopback; the body checked
//! by `promtool check metrics` and scraped by a real Prometheus when they are installed
//! (scripts/check-monitoring installs them in CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use levibot_shm::codes::{counter_type, halt_reason};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::paths::counters_path;
use levibot_shm::records::{
    BookTicker, ExecutionReport, InstrumentDef, OrderRequest, Record, SentOrder, exec_type,
    order_kind, record_type, side,
};
use levibot_shm::{Appender, Journal, JournalConfig, RetentionPolicy};

/// How long a test waits for the exporter to see something: generous, for a loaded CI machine.
const WAIT: Duration = Duration::from_secs(30);
const NKN: u32 = 3;
/// 0.03512 in NKNUSDT's price units (10^-8).
const NKN_PX: i64 = 3_512_000;
const RAW_TEXT: &str = r#"{"stream":"nknusdt@bookTicker","data":{"u":400900217,"s":"NKNUSDT","b":"0.03510000","B":"1000.00000000","a":"0.03512000","A":"250.50000000"}}"#;

/// Every metric family of the contract (docs/metrics.md), as it appears in a sample line.
const CONTRACT: &[&str] = &[
    "levibot_build_info{",
    "levibot_daemon_up ",
    "levibot_daemon_ready ",
    "levibot_daemon_heartbeat_age_seconds ",
    "levibot_trading_state ",
    "levibot_kill_switch_engaged ",
    "levibot_daemon_halt_reason{reason=\"empty_journal\"}",
    "levibot_daemon_self_halts_total ",
    "levibot_daemon_checkpoints_total ",
    "levibot_daemon_checkpoint_failures_total ",
    "levibot_daemon_last_checkpoint_timestamp_seconds ",
    "levibot_order_entry_reports_dropped_total ",
    "levibot_order_entry_gaps_unfilled_total ",
    "levibot_journal_retention_floor_held_total ",
    "levibot_journal_retention_archive_held_segments ",
    "levibot_journal_retention_archive_held_bytes ",
    "levibot_journal_retention_unarchived_pruned_total ",
    "levibot_journal_retention_watermark_unreadable_total ",
    "levibot_venue_connected{session=\"market_data\"}",
    "levibot_venue_connected{session=\"order_entry\"}",
    "levibot_venue_reconnects_total{",
    "levibot_feed_messages_total{stream=\"book_ticker\"}",
    "levibot_feed_bytes_total{stream=\"depth\"}",
    "levibot_feed_decode_errors_total ",
    "levibot_feed_sequence_gaps_total ",
    "levibot_book_resyncs_total ",
    "levibot_feed_rollovers_total ",
    "levibot_feed_rollover_fallbacks_total ",
    "levibot_orders_sent_total ",
    "levibot_orders_acked_total ",
    "levibot_orders_filled_total ",
    "levibot_orders_cancelled_total ",
    "levibot_orders_rejected_total{",
    "levibot_risk_rejects_total{",
    "levibot_position{",
    "levibot_pnl{",
    "levibot_realised_pnl{",
    "levibot_open_orders{",
    "levibot_exposure{kind=\"gross\"}",
    "levibot_exposure{kind=\"net\"}",
    "levibot_agent_duty_cycles_total{",
    "levibot_agent_cycle_max_seconds{",
    "levibot_decode_seconds_bucket{",
    "levibot_strategy_seconds_bucket{",
    "levibot_risk_seconds_bucket{",
    "levibot_encode_seconds_bucket{",
    "levibot_tick_to_trade_seconds_bucket{",
    "levibot_venue_ack_seconds_bucket{",
    "levibot_journal_bytes ",
    "levibot_journal_limit_bytes ",
    "levibot_exporter_journal_lag_seconds ",
];

struct Fixture {
    dir: tempfile::TempDir,
    journal: Journal,
    daemon: Appender,
    feed: Appender,
    gateway: Appender,
    _counters: CountersWriter,
    counters: Vec<(&'static str, Counter)>,
    next_client_order_id: u64,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("levibot-exporter")
            .tempdir()
            .unwrap();
        let mut config = JournalConfig::new(dir.path());
        config.segment_size = 64 * 1024;
        config.prefault = false;
        config.retention = RetentionPolicy::keep_all();
        let journal = Journal::open(&config).unwrap();
        let writer =
            CountersWriter::create(counters_path(dir.path()), 64, journal.epoch()).unwrap();
        let mut counters = Vec::new();
        for (label, type_id, value) in [
            ("daemon.phase", counter_type::STATE, 2), // reconciling: not ready
            ("daemon.agents_fresh", counter_type::STATE, 1),
            ("venue.market_data.up", counter_type::STATE, 1),
            ("venue.market_data.connects", counter_type::EVENTS, 2),
            ("venue.order_entry.up", counter_type::STATE, 0),
            ("venue.order_entry.reconnects", counter_type::EVENTS, 0),
            ("feed.decode_errors", counter_type::EVENTS, 4),
            ("feed.stream_gaps", counter_type::EVENTS, 1),
            ("strategy.book_resyncs", counter_type::EVENTS, 1),
            ("venue.market_data.rollovers", counter_type::EVENTS, 5),
            (
                "venue.market_data.rollover_fallbacks",
                counter_type::EVENTS,
                2,
            ),
            ("gateway.orders_sent", counter_type::EVENTS, 3),
            ("risk.reject.price_collar", counter_type::EVENTS, 2),
            ("risk.reject.halted", counter_type::EVENTS, 0),
            ("risk.trading_state", counter_type::STATE, 1),
            ("daemon.halt_reason", counter_type::STATE, 0),
            ("daemon.self_halts", counter_type::EVENTS, 0),
            ("daemon.checkpoints", counter_type::EVENTS, 7),
            ("daemon.checkpoint_failures", counter_type::EVENTS, 1),
            (
                "daemon.last_checkpoint_unix_s",
                counter_type::GAUGE,
                1_700_000_000,
            ),
            ("journal.retention_floor_held", counter_type::EVENTS, 2),
            ("venue.order_entry.reports_dropped", counter_type::EVENTS, 0),
            ("venue.order_entry.gaps_unfilled", counter_type::EVENTS, 0),
            (
                "risk.position_units.NKNUSDT",
                counter_type::GAUGE,
                1_250_000_000,
            ),
            ("risk.open_orders.NKNUSDT", counter_type::GAUGE, 2),
            (
                "risk.pnl_microquote.NKNUSDT",
                counter_type::GAUGE,
                -1_500_000,
            ),
            (
                "risk.realised_pnl_microquote.NKNUSDT",
                counter_type::GAUGE,
                250_000,
            ),
            ("book.NKNUSDT.bid_px", counter_type::GAUGE, 3_510_000),
            ("book.NKNUSDT.ask_px", counter_type::GAUGE, 3_512_000),
            (
                "agent.pipeline.duty_cycles",
                counter_type::DUTY_CYCLES,
                1000,
            ),
            (
                "agent.pipeline.cycle_ns_max",
                counter_type::CYCLE_NS_MAX,
                1_500,
            ),
        ] {
            let counter = writer.allocate(label, type_id).unwrap();
            counter.set(value);
            counters.push((label, counter));
        }
        journal.heartbeat();
        let daemon = journal.appender(0).unwrap();
        let feed = journal.appender(1).unwrap();
        let gateway = journal.appender(4).unwrap();
        Fixture {
            dir,
            journal,
            daemon,
            feed,
            gateway,
            _counters: writer,
            counters,
            next_client_order_id: 100,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set(&self, label: &str, value: i64) {
        let (_, counter) = self.counters.iter().find(|(l, _)| *l == label).unwrap();
        counter.set(value);
    }

    /// A TSC stamp `ns` after the journal's calibration point.
    fn tsc(&self, ns: u64) -> u64 {
        let cal = self.journal.calibration();
        cal.tsc_ref + (ns as f64 * cal.ticks_per_ns) as u64
    }

    fn append<R: Record>(appender: &mut Appender, record: &R) {
        appender.append(R::RECORD_TYPE, record.to_bytes()).unwrap();
    }

    /// A bookTicker message: its raw bytes and its decoded record, with one receive stamp.
    fn market_message(&mut self, recv_ns: u64) {
        let recv_tsc = self.tsc(recv_ns);
        let mut raw = recv_tsc.to_le_bytes().to_vec();
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(RAW_TEXT.as_bytes());
        self.feed.append(record_type::RAW_MESSAGE, &raw).unwrap();
        let ticker = BookTicker {
            recv_tsc,
            update_id: recv_ns,
            bid_px: 3_510_000,
            bid_qty: 1_000 * 100_000_000,
            ask_px: NKN_PX,
            ask_qty: 250 * 100_000_000,
            instrument_id: NKN,
            reserved: 0,
        };
        Fixture::append(&mut self.feed, &ticker);
    }

    /// A sent order whose stages took 60, 90, 40 and 120 ns and tick-to-trade 1.5 us, then the
    /// venue's ack 50 us later. Returns its client order id.
    fn sent_and_acked(&mut self, at_ns: u64) -> u64 {
        let id = self.next_client_order_id;
        self.next_client_order_id += 1;
        let cal = self.journal.calibration();
        let t = |ns: u64| cal.tsc_ref + ((at_ns + ns) as f64 * cal.ticks_per_ns) as u64;
        let sent = SentOrder {
            request: OrderRequest {
                created_tsc: t(390),
                risk_tsc: t(540),
                client_order_id: id,
                px: NKN_PX,
                qty: 100 * 100_000_000,
                instrument_id: NKN,
                kind: order_kind::NEW,
                side: side::BUY,
                ..OrderRequest::default()
            },
            due_tsc: t(0),
            recv_tsc: t(0),
            decoded_tsc: t(60),
            strategy_start_tsc: t(300),
            risk_start_tsc: t(500),
            encode_start_tsc: t(1_380),
            encoded_tsc: t(1_500),
            msg_seq_num: id,
            encoded_len: 180,
            reserved: 0,
        };
        Fixture::append(&mut self.gateway, &sent);
        let report = ExecutionReport {
            recv_tsc: t(51_500),
            client_order_id: id,
            venue_order_id: 9_000 + id,
            px: NKN_PX,
            leaves_qty: 100 * 100_000_000,
            instrument_id: NKN,
            exec_type: exec_type::NEW,
            ord_status: b'0',
            side: side::BUY,
            ..ExecutionReport::default()
        };
        Fixture::append(&mut self.gateway, &report);
        id
    }
}

/// The exporter, killed on drop.
pub(crate) struct Exporter {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_exporter(journal: &Path) -> Exporter {
    start_exporter_with(journal, &[])
}

/// [`start_exporter`] with more arguments.
pub(crate) fn start_exporter_with(journal: &Path, args: &[&std::ffi::OsStr]) -> Exporter {
    let mut child = Command::new(env!("CARGO_BIN_EXE_levibot-exporter"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--journal-limit-bytes",
            "1048576",
        ])
        .arg("--journal")
        .arg(journal)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // It prints `listening on http://ADDR` once bound (port 0 picks a free port).
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    Exporter { child, addr }
}

/// Sends `request` as is; returns the status and the body.
fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    raw_request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
}

/// Scrapes until `ok` holds for the /metrics body (or panics after `WAIT`, showing it).
pub(crate) fn metrics_until(addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        if ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample line that starts with `series` (its name and labels).
pub(crate) fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn serves_health_readiness_and_the_metric_contract() {
    let mut f = Fixture::new();
    let nkn = InstrumentDef::new(NKN, "NKNUSDT", (1, 8), (1, 8)).unwrap();
    Fixture::append(&mut f.daemon, &nkn);
    for i in 0..4 {
        f.market_message(1_000 * i);
    }
    for i in 0..3 {
        f.sent_and_acked(10_000 + 100_000 * i);
    }
    // An order the gateway held back (its write-ahead append failed): rejected, reason journal.
    let rejected = ExecutionReport {
        client_order_id: 99,
        instrument_id: NKN,
        exec_type: exec_type::REJECTED,
        ord_status: b'8',
        reject_reason: 1001,
        ..ExecutionReport::default()
    };
    Fixture::append(&mut f.gateway, &rejected);
    let exporter = start_exporter(f.path());
    let addr = exporter.addr;

    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_owned()));
    // Until its first read of the journal, the exporter says only that; then why not ready.
    let deadline = Instant::now() + WAIT;
    let (status, body) = loop {
        let (status, body) = get(addr, "/readyz");
        if !body.contains("has not read the journal yet") || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("daemon phase is reconciling")
            && body.contains("venue session order_entry is down"),
        "{body}"
    );
    assert_eq!(get(addr, "/nope").0, 404);

    let body = metrics_until(addr, "3 sent orders", |b| {
        value(b, "levibot_tick_to_trade_seconds_count") == Some(3.0)
    });
    for family in CONTRACT {
        assert!(
            body.contains(family),
            "{family} missing from /metrics:\n{body}"
        );
    }
    for (series, expected) in [
        ("levibot_orders_sent_total", 3.0),
        ("levibot_orders_acked_total", 3.0),
        ("levibot_orders_rejected_total{reason=\"journal\"}", 1.0),
        ("levibot_risk_rejects_total{check=\"price_collar\"}", 2.0),
        ("levibot_position{symbol=\"NKNUSDT\"}", 12.5),
        ("levibot_pnl{symbol=\"NKNUSDT\"}", -1.5),
        ("levibot_realised_pnl{symbol=\"NKNUSDT\"}", 0.25),
        ("levibot_open_orders{symbol=\"NKNUSDT\"}", 2.0),
        ("levibot_trading_state", 1.0),
        ("levibot_kill_switch_engaged", 0.0),
        ("levibot_venue_connected{session=\"order_entry\"}", 0.0),
        (
            "levibot_venue_reconnects_total{session=\"market_data\"}",
            1.0,
        ),
        ("levibot_feed_decode_errors_total", 4.0),
        ("levibot_daemon_halt_reason{reason=\"empty_journal\"}", 0.0),
        ("levibot_daemon_self_halts_total", 0.0),
        ("levibot_daemon_checkpoints_total", 7.0),
        ("levibot_daemon_checkpoint_failures_total", 1.0),
        (
            "levibot_daemon_last_checkpoint_timestamp_seconds",
            1_700_000_000.0,
        ),
        ("levibot_journal_retention_floor_held_total", 2.0),
        ("levibot_order_entry_reports_dropped_total", 0.0),
        ("levibot_order_entry_gaps_unfilled_total", 0.0),
        ("levibot_feed_sequence_gaps_total", 1.0),
        ("levibot_book_resyncs_total", 1.0),
        ("levibot_feed_rollovers_total", 5.0),
        ("levibot_feed_rollover_fallbacks_total", 2.0),
        (
            "levibot_agent_duty_cycles_total{agent=\"pipeline\"}",
            1000.0,
        ),
        (
            "levibot_agent_cycle_max_seconds{agent=\"pipeline\"}",
            1.5e-6,
        ),
        ("levibot_decode_seconds_count", 3.0),
        ("levibot_risk_seconds_count", 3.0),
        ("levibot_venue_ack_seconds_count", 3.0),
        ("levibot_journal_limit_bytes", 1_048_576.0),
        ("levibot_daemon_up", 1.0),
        ("levibot_daemon_ready", 0.0),
        ("levibot_feed_messages_total{stream=\"book_ticker\"}", 4.0),
        (
            "levibot_feed_bytes_total{stream=\"book_ticker\"}",
            4.0 * RAW_TEXT.len() as f64,
        ),
    ] {
        let got = value(&body, series);
        assert!(
            got.is_some_and(|v| (v - expected).abs() <= 1e-9 * expected.abs().max(1.0)),
            "{series}: expected {expected}, got {got:?}\n{body}"
        );
    }
    // 12.5 NKN at a mid of 0.03511.
    let gross = value(&body, "levibot_exposure{kind=\"gross\"}").unwrap();
    assert!((gross - 12.5 * 0.03511).abs() < 1e-9, "{gross}");
    // Stage times fall in their buckets: decode 60 ns (<= 80 ns), tick-to-trade 1.5 us.
    assert_eq!(
        value(&body, "levibot_decode_seconds_bucket{le=\"8e-8\"}")
            .or_else(|| value(&body, "levibot_decode_seconds_bucket{le=\"8.0e-8\"}")),
        Some(3.0),
        "{body}"
    );
    assert!(value(&body, "levibot_journal_bytes").unwrap() > 0.0);

    // Ready once the daemon runs with both sessions up and a fresh heartbeat.
    f.set("daemon.phase", 3);
    f.set("venue.order_entry.up", 1);
    f.journal.heartbeat();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(addr, "/readyz");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    metrics_until(addr, "daemon_ready 1", |b| {
        value(b, "levibot_daemon_ready") == Some(1.0)
    });

    // More frames (over a rollover of the 64 KiB segments): the counters grow.
    for i in 0..400 {
        f.market_message(1_000_000 + 1_000 * i);
    }
    for i in 0..2 {
        f.sent_and_acked(5_000_000 + 100_000 * i);
    }
    f.set("gateway.orders_sent", 5);
    f.set("risk.reject.price_collar", 3);
    let body = metrics_until(addr, "5 sent orders", |b| {
        value(b, "levibot_tick_to_trade_seconds_count") == Some(5.0)
            && value(b, "levibot_orders_sent_total") == Some(5.0)
            && value(b, "levibot_feed_messages_total{stream=\"book_ticker\"}") == Some(404.0)
    });
    assert_eq!(value(&body, "levibot_venue_ack_seconds_count"), Some(5.0));
    assert_eq!(
        value(&body, "levibot_risk_rejects_total{check=\"price_collar\"}"),
        Some(3.0)
    );

    // Bad requests get 400, and the server goes on serving.
    for garbage in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nbad header line\r\n\r\n",
    ] {
        assert_eq!(raw_request(addr, garbage).0, 400, "{garbage:?}");
    }
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.resize(64 * 1024, b'a');
    assert_eq!(raw_request(addr, &huge).0, 400);
    // A client that connects and says nothing does not block others.
    let _silent = TcpStream::connect(addr).unwrap();
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(
        raw_request(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        405
    );

    promtool_check(&get(addr, "/metrics").1);
}

/// `promtool check metrics` on a body, when promtool is installed.
pub(crate) fn promtool_check(body: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "SKIP promtool check metrics: promtool is not on PATH (scripts/check-monitoring \
             installs it)"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refuses_a_journal_of_an_unknown_major_version() {
    let f = Fixture::new();
    drop(f.daemon);
    drop(f.feed);
    drop(f.gateway);
    drop(f.journal);
    // The layout's major version is the u16 after the 8-byte magic.
    for segment in levibot_shm::list_segments(f.dir.path()).unwrap() {
        let mut bytes = std::fs::read(&segment.path).unwrap();
        bytes[8..10].copy_from_slice(&999u16.to_le_bytes());
        std::fs::write(&segment.path, &bytes).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_levibot-exporter"))
        .args(["--listen", "127.0.0.1:0", "--journal"])
        .arg(f.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to export") && stderr.contains("version"),
        "{stderr}"
    );
}

/// The daemon restarts (a new writer run: new epoch, new segment, a new counters file) after a
/// segment of the old run was deleted: the exporter reopens the counters, goes on counting the
/// new run's orders after the old run's, and keeps serving (whether it had read the deleted
/// segment already or finds it missing, which it logs and skips).
#[test]
fn follows_a_daemon_restart_past_a_deleted_segment() {
    let mut f = Fixture::new();
    let nkn = InstrumentDef::new(NKN, "NKNUSDT", (1, 8), (1, 8)).unwrap();
    Fixture::append(&mut f.daemon, &nkn);
    f.set("daemon.phase", 3);
    f.set("venue.order_entry.up", 1);
    for i in 0..3 {
        f.sent_and_acked(10_000 + 100_000 * i);
    }
    let exporter = start_exporter(f.path());
    let addr = exporter.addr;
    metrics_until(addr, "the first run's orders", |b| {
        value(b, "levibot_tick_to_trade_seconds_count") == Some(3.0)
    });

    // The old run fills more segments, one of them is deleted, and the daemon "crashes" and
    // starts again.
    let Fixture {
        dir,
        journal,
        daemon,
        feed,
        gateway,
        _counters,
        counters,
        ..
    } = f;
    let filler = vec![0u8; 1000];
    let mut feed = feed;
    let first_segment = levibot_shm::list_segments(dir.path()).unwrap().len();
    while levibot_shm::list_segments(dir.path()).unwrap().len() < first_segment + 3 {
        feed.append(levibot_shm::RecordType(0x999), &filler)
            .unwrap();
    }
    let segments = levibot_shm::list_segments(dir.path()).unwrap();
    std::fs::remove_file(&segments[segments.len() - 2].path).unwrap();
    drop((daemon, feed, gateway, counters, _counters));
    drop(journal);

    let mut config = JournalConfig::new(dir.path());
    config.segment_size = 64 * 1024;
    config.prefault = false;
    config.retention = RetentionPolicy::keep_all();
    let journal = Journal::open(&config).unwrap();
    let writer = CountersWriter::create(counters_path(dir.path()), 64, journal.epoch()).unwrap();
    let sent_counter = writer
        .allocate("gateway.orders_sent", counter_type::EVENTS)
        .unwrap();
    sent_counter.set(11);
    writer
        .allocate("daemon.phase", counter_type::STATE)
        .unwrap()
        .set(3);
    journal.heartbeat();
    let mut daemon = journal.appender(0).unwrap();
    Fixture::append(&mut daemon, &nkn);
    let mut gateway = journal.appender(4).unwrap();
    let cal = journal.calibration();
    for i in 0..4u64 {
        let t = |ns: u64| cal.tsc_ref + ((1_000_000 * i + ns) as f64 * cal.ticks_per_ns) as u64;
        let sent = SentOrder {
            request: OrderRequest {
                client_order_id: 500 + i,
                instrument_id: NKN,
                kind: order_kind::NEW,
                side: side::SELL,
                ..OrderRequest::default()
            },
            recv_tsc: t(0),
            due_tsc: t(0),
            decoded_tsc: t(50),
            encoded_tsc: t(2_000),
            ..SentOrder::default()
        };
        Fixture::append(&mut gateway, &sent);
    }
    // The new run's counters replaced the old; its orders are counted after the old run's.
    let body = metrics_until(addr, "the new run", |b| {
        value(b, "levibot_orders_sent_total") == Some(11.0)
            && value(b, "levibot_tick_to_trade_seconds_count") == Some(7.0)
    });
    assert!(body.contains("levibot_daemon_up"), "{body}");
    assert_eq!(get(addr, "/healthz").0, 200, "the exporter carried on");
    drop(dir);
}

/// Prometheus asks for OpenMetrics and gets it (counters declared without `_total`, `# EOF`);
/// everyone else gets the classic text format, as promtool reads it.
#[test]
fn openmetrics_for_those_who_ask_classic_text_for_the_rest() {
    let mut f = Fixture::new();
    let nkn = InstrumentDef::new(NKN, "NKNUSDT", (1, 8), (1, 8)).unwrap();
    Fixture::append(&mut f.daemon, &nkn);
    f.sent_and_acked(10_000);
    let exporter = start_exporter(f.path());
    let addr = exporter.addr;
    metrics_until(addr, "the order", |b| {
        value(b, "levibot_tick_to_trade_seconds_count") == Some(1.0)
    });
    let (status, open) = raw_request(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    assert!(
        open.contains("# TYPE levibot_orders_sent counter"),
        "{open}"
    );
    let (_, classic) = get(addr, "/metrics");
    assert!(!classic.contains("# EOF"), "{classic}");
    assert!(
        classic.contains("# TYPE levibot_orders_sent_total counter"),
        "{classic}"
    );
    // The samples are the same in both.
    assert_eq!(
        value(&open, "levibot_tick_to_trade_seconds_count"),
        value(&classic, "levibot_tick_to_trade_seconds_count")
    );
}

/// `/readyz` while the daemon beats: waits until its body satisfies `ok` (or panics).
fn readyz_until(f: &Fixture, addr: SocketAddr, ok: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        f.journal.heartbeat();
        let (status, body) = get(addr, "/readyz");
        if ok(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The reason series of `levibot_daemon_halt_reason` that are 1.
fn halt_reasons_in_force(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("levibot_daemon_halt_reason{reason=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .filter(|(_, v)| v.trim() == "1")
        .map(|(reason, _)| reason.to_owned())
        .collect()
}

/// The daemon halts by itself, for a known reason and for one this build does not name; an
/// operator resumes; an operator kills: `levibot_daemon_halt_reason` has one series at 1 (or
/// none), and `/readyz` (still ready: a halt does not change readiness) says why trading is
/// halted.
#[test]
fn names_the_daemons_own_halt_reason() {
    let f = Fixture::new();
    f.set("daemon.phase", 3);
    f.set("venue.order_entry.up", 1);
    f.set("risk.trading_state", 0);
    let exporter = start_exporter(f.path());
    let addr = exporter.addr;
    assert_eq!(readyz_until(&f, addr, |s, _| s == 200), "ready\n");
    let body = metrics_until(addr, "the counters", |b| {
        value(b, "levibot_daemon_checkpoints_total") == Some(7.0)
    });
    // Every named reason but none is served, at 0.
    for (code, name) in halt_reason::ALL {
        let series = format!("levibot_daemon_halt_reason{{reason=\"{name}\"}}");
        let expected = (code != halt_reason::NONE).then_some(0.0);
        assert_eq!(value(&body, &series), expected, "{series}\n{body}");
    }

    // An unfilled FIX gap: a fill may be missing, the daemon halts.
    f.set("venue.order_entry.gaps_unfilled", 1);
    f.set("daemon.self_halts", 1);
    f.set("risk.trading_state", 2);
    f.set("daemon.halt_reason", halt_reason::GAP_UNFILLED);
    let body = metrics_until(addr, "the halt", |b| {
        halt_reasons_in_force(b) == ["gap_unfilled"]
    });
    assert_eq!(
        value(&body, "levibot_order_entry_gaps_unfilled_total"),
        Some(1.0)
    );
    assert_eq!(value(&body, "levibot_daemon_self_halts_total"), Some(1.0));
    assert_eq!(value(&body, "levibot_kill_switch_engaged"), Some(1.0));
    let ready = readyz_until(&f, addr, |s, b| s == 200 && b.contains("gap_unfilled"));
    assert!(
        ready.starts_with("ready; trading halted by the daemon itself: gap_unfilled"),
        "{ready}"
    );
    // Not ready for another cause: both are said.
    f.set("venue.order_entry.up", 0);
    let not_ready = readyz_until(&f, addr, |s, _| s == 503);
    assert!(
        not_ready.contains("venue session order_entry is down")
            && not_ready.contains("trading halted by the daemon itself: gap_unfilled"),
        "{not_ready}"
    );
    f.set("venue.order_entry.up", 1);

    // A reason a newer daemon knows: served by its code, the named ones at 0.
    f.set("daemon.halt_reason", 99);
    metrics_until(addr, "code 99", |b| halt_reasons_in_force(b) == ["code_99"]);
    readyz_until(&f, addr, |s, b| s == 200 && b.contains("itself: code_99"));

    // An operator resumes: no reason in force, the unknown one's series gone.
    f.set("daemon.halt_reason", halt_reason::NONE);
    f.set("risk.trading_state", 0);
    let body = metrics_until(addr, "the resume", |b| {
        halt_reasons_in_force(b).is_empty() && value(b, "levibot_trading_state") == Some(0.0)
    });
    assert!(!body.contains("code_99"), "{body}");
    assert_eq!(value(&body, "levibot_daemon_self_halts_total"), Some(1.0));
    readyz_until(&f, addr, |s, b| s == 200 && b == "ready\n");

    // An operator's kill is no halt by the daemon; /readyz says it is halted all the same.
    f.set("risk.trading_state", 2);
    let ready = readyz_until(&f, addr, |s, b| s == 200 && b != "ready\n");
    assert_eq!(ready, "ready; trading halted (kill switch engaged)\n");
    let body = get(addr, "/metrics").1;
    assert!(halt_reasons_in_force(&body).is_empty(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Bounded work per connection, and a journal read error resumed without counting twice
// ---------------------------------------------------------------------------------------------

/// `levibot_exporter::http::CONNECTIONS_MAX`.
const CONNECTIONS_MAX: usize = levibot_exporter::http::CONNECTIONS_MAX;

/// More idle connections than there are slots (connected, nothing sent, held open) do not keep
/// a scrape out: it is answered at once, not with a 503 and not after the idle ones time out.
#[test]
fn idle_connections_past_the_bound_do_not_stop_a_scrape() {
    let f = Fixture::new();
    let exporter = start_exporter(f.path());
    let addr = exporter.addr;
    metrics_until(addr, "the first snapshot", |b| {
        b.contains("levibot_daemon_up")
    });
    let idle: Vec<TcpStream> = (0..=CONNECTIONS_MAX)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Give the server time to take them all (the scrape below must come after them).
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, body) = get(addr, "/metrics");
    assert_eq!(
        status,
        200,
        "a scrape past {} idle connections: {body}",
        idle.len()
    );
    assert!(body.contains("levibot_daemon_up"), "{body}");
    // A sound journal: no read error.
    assert_eq!(
        value(&body, "levibot_exporter_journal_read_errors_total"),
        Some(0.0),
        "{body}"
    );
    assert!(
        started.elapsed() < levibot_exporter::http::REQUEST_TIMEOUT,
        "the scrape waited for the idle connections to time out: {:?}",
        started.elapsed()
    );
    // Another scrape too (the slots are not exhausted by the idle ones still open).
    assert_eq!(get(addr, "/healthz").0, 200);
    drop(idle);
}

/// A client socket that reads slowly: a small receive buffer and a small MSS, which also keeps
/// the server's send buffer small (Linux sizes it from the MSS), so that a response of a few
/// hundred KiB cannot all be queued in the kernel and the server's write has to wait.
fn slow_reader(addr: SocketAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, connect, socket, sockopt};
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setsockopt(
            fd: i32,
            level: i32,
            name: i32,
            value: *const std::ffi::c_void,
            len: u32,
        ) -> i32;
    }
    const IPPROTO_TCP: i32 = 6;
    const TCP_MAXSEG: i32 = 2;
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 4096).unwrap();
    let mss: i32 = 536;
    // SAFETY: a valid socket, and a pointer to an i32 of the length given.
    let rc = unsafe {
        setsockopt(
            fd.as_raw_fd(),
            IPPROTO_TCP,
            TCP_MAXSEG,
            (&raw const mss).cast(),
            size_of::<i32>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(TCP_MAXSEG)");
    connect(&fd, &addr).unwrap();
    TcpStream::from(fd)
}

/// Clients that ask for a large /metrics and never read it, more of them than there are
/// slots, do not keep a scrape out; and each is cut off after the write timeout (what it reads
/// then ends before the whole body).
#[test]
fn clients_that_never_read_do_not_stop_a_scrape_and_are_cut_off() {
    let dir = tempfile::Builder::new()
        .prefix("levibot-exporter")
        .tempdir()
        .unwrap();
    let mut config = JournalConfig::new(dir.path());
    config.segment_size = 64 * 1024;
    config.prefault = false;
    config.retention = RetentionPolicy::keep_all();
    let journal = Journal::open(&config).unwrap();
    journal.heartbeat();
    // A few thousand per-symbol series: a /metrics body of some 300 KiB.
    let symbols = 2_500;
    let writer =
        CountersWriter::create(counters_path(dir.path()), 2 * symbols, journal.epoch()).unwrap();
    let mut counters = Vec::new();
    for i in 0..symbols {
        let symbol = format!("SYMBOL{i:05}LONGNAMEUSDT");
        for (prefix, value) in [
            ("risk.open_orders.", 2),
            ("risk.pnl_microquote.", 1_500_000),
        ] {
            let counter = writer
                .allocate(&format!("{prefix}{symbol}"), counter_type::GAUGE)
                .unwrap();
            counter.set(value);
            counters.push(counter);
        }
    }
    let exporter = start_exporter(dir.path());
    let addr = exporter.addr;
    let body = metrics_until(addr, "every symbol's series", |b| {
        b.contains(&format!("SYMBOL{:05}LONGNAMEUSDT", symbols - 1))
    });
    let full = body.len();
    assert!(full > 200_000, "a body of {full} bytes");

    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", exporter.child.id()))
            .unwrap()
            .count()
    };
    let fds_before = fds();
    let request = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
    let stalled: Vec<TcpStream> = (0..=CONNECTIONS_MAX)
        .map(|_| {
            let mut stream = slow_reader(addr);
            stream.write_all(request).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, body) = get(addr, "/metrics");
    assert_eq!(
        status,
        200,
        "a scrape past {} clients that do not read",
        stalled.len()
    );
    assert!(body.len() > 200_000, "the whole body: {} bytes", body.len());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the scrape took {:?}",
        started.elapsed()
    );

    // Past the write timeout, a client that never read is cut off: reading now, it gets what
    // the kernel had queued, then the end, never the whole response.
    std::thread::sleep(levibot_exporter::http::WRITE_TIMEOUT + Duration::from_secs(2));
    // Their sockets are closed on the exporter's side, though they are still open on ours.
    let fds_after = fds();
    assert!(
        fds_after <= fds_before + 2,
        "the exporter holds {fds_after} descriptors, {fds_before} before the clients came"
    );
    let mut last = stalled.into_iter().last().unwrap();
    last.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let ended = last.read_to_end(&mut got);
    assert!(
        ended.is_err() || got.len() < full,
        "the client that did not read still got the whole response ({} bytes)",
        got.len()
    );
    assert_eq!(get(addr, "/healthz").0, 200, "the exporter carried on");
    drop(counters);
}

/// A frame in the middle of the journal is corrupt: the exporter counts every record before
/// it and every record in the segments after it exactly once (it goes on past the bad frame at
/// the next segment, and never reads the journal again from its beginning), and counts the
/// read error.
#[test]
fn a_corrupt_frame_is_counted_as_an_error_and_nothing_twice() {
    let mut f = Fixture::new();
    let nkn = InstrumentDef::new(NKN, "NKNUSDT", (1, 8), (1, 8)).unwrap();
    Fixture::append(&mut f.daemon, &nkn);
    let size = 64 * 1024u64;
    let cal = f.journal.calibration();
    // (position, is a fill) of every sent order and fill.
    let mut records: Vec<(u64, bool)> = Vec::new();
    let mut i = 0u64;
    while levibot_shm::list_segments(f.path()).unwrap().len() < 4 {
        let t = |ns: u64| cal.tsc_ref + ((1_000 * i + ns) as f64 * cal.ticks_per_ns) as u64;
        let sent = SentOrder {
            request: OrderRequest {
                client_order_id: 1_000 + i,
                instrument_id: NKN,
                kind: order_kind::NEW,
                side: side::BUY,
                ..OrderRequest::default()
            },
            recv_tsc: t(0),
            due_tsc: t(0),
            decoded_tsc: t(50),
            encoded_tsc: t(1_500),
            ..SentOrder::default()
        };
        let at = f
            .gateway
            .append(SentOrder::RECORD_TYPE, sent.to_bytes())
            .unwrap();
        records.push((at.0, false));
        let fill = ExecutionReport {
            recv_tsc: t(20_000),
            client_order_id: 1_000 + i,
            instrument_id: NKN,
            exec_type: exec_type::TRADE,
            ord_status: b'2',
            side: side::BUY,
            ..ExecutionReport::default()
        };
        let at = f
            .gateway
            .append(ExecutionReport::RECORD_TYPE, fill.to_bytes())
            .unwrap();
        records.push((at.0, true));
        i += 1;
    }
    // Corrupt the 137th fill of the first segment: its length word says less than a header.
    let victim = records
        .iter()
        .filter(|(at, fill)| *fill && at / size == 0)
        .nth(137)
        .map(|(at, _)| *at)
        .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let segment = levibot_shm::list_segments(f.path()).unwrap()[0]
            .path
            .clone();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.write_all_at(&7i32.to_le_bytes(), victim % size)
            .unwrap();
    }
    // Readable: everything before the bad frame in its segment, and every later segment.
    let readable = |fill: bool| {
        records
            .iter()
            .filter(|(at, is_fill)| {
                *is_fill == fill && (*at / size > victim / size || *at < victim)
            })
            .count() as f64
    };
    let (fills, sent) = (readable(true), readable(false));
    assert!(
        fills > 137.0 && fills < (records.len() / 2) as f64,
        "{fills} fills"
    );

    let exporter = start_exporter(f.path());
    let addr = exporter.addr;
    let exact = |b: &str| {
        value(b, "levibot_orders_filled_total") == Some(fills)
            && value(b, "levibot_tick_to_trade_seconds_count") == Some(sent)
            && value(b, "levibot_exporter_journal_read_errors_total").is_some_and(|n| n >= 1.0)
    };
    metrics_until(addr, "every readable record counted once", exact);
    // Many rounds later (one every 100 ms), still once.
    std::thread::sleep(Duration::from_secs(1));
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        exact(&body),
        "expected {fills} fills and {sent} sent orders, counted once:\n{}",
        body.lines()
            .filter(|l| l.contains("filled_total")
                || l.contains("tick_to_trade_seconds_count")
                || l.contains("read_errors"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // More records after the error are counted (the follower goes on).
    for j in 0..5 {
        let fill = ExecutionReport {
            client_order_id: 9_000 + j,
            instrument_id: NKN,
            exec_type: exec_type::TRADE,
            ..ExecutionReport::default()
        };
        Fixture::append(&mut f.gateway, &fill);
    }
    metrics_until(addr, "the fills written after the error", |b| {
        value(b, "levibot_orders_filled_total") == Some(fills + 5.0)
    });
}
