//! Our FIX session against a standard FIX engine: QuickFIX's Executor example on 127.0.0.1
//! (installed by `scripts/install-test-deps` as `target/interop/executor`).
//!
//! Logon; a limit NewOrderSingle, which the Executor fills at once (ExecutionReport 150=F,
//! 39=2, no separate New ack); a market order, which it rejects at session level (35=3,
//! 373=5, 371=40) and which we surface as a REJECTED report for that order; Logout; then a new
//! connection and a new session restored from the saved sequence numbers, without a reset: the
//! Executor takes our next numbers and we take its, and another order fills.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use levibot_gateway::capture::Recording;
use levibot_gateway::decimal::parse_units;
use levibot_gateway::fix::{
    ConnectionStatus, FixConnection, FixSession, SessionConfig, SessionEvent, SessionSeqNums,
    SessionState,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::codes::reject_reason;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};

/// Generous: the machine is a busy 2-core VM.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_PAUSE: Duration = Duration::from_millis(1);
const OUR_COMP_ID: &str = "LEVI";
const EXECUTOR_COMP_ID: &str = "EXEC";
/// What the Executor prints once it listens.
const READY_LINE: &str = "Type Ctrl-C to quit";

/// The Executor process in its own scratch directory; killed and removed on drop, also when
/// the test fails.
struct Executor {
    child: Child,
    dir: PathBuf,
    port: u16,
    output: Arc<Mutex<Vec<String>>>,
}

impl Executor {
    fn start() -> Executor {
        // $LEVIBOT_QUICKFIX_EXECUTOR: where a copy of the tree (cargo-mutants builds one) finds it.
        let binary = std::env::var_os("LEVIBOT_QUICKFIX_EXECUTOR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop/executor"),
            PathBuf::from,
        );
        assert!(
            binary.is_file(),
            "{} is missing: run scripts/install-test-deps (it installs QuickFIX's Executor)",
            binary.display()
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("levibot-quickfix-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("store")).unwrap();
        // A free port: bind port 0, note it, release it.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptPort={port}\n\
             SocketAcceptAddress=127.0.0.1\nFileStorePath={}\nStartTime=00:00:00\n\
             EndTime=00:00:00\nUseDataDictionary=N\n\n[SESSION]\nBeginString=FIX.4.4\n\
             SenderCompID={EXECUTOR_COMP_ID}\nTargetCompID={OUR_COMP_ID}\n",
            dir.join("store").display()
        );
        let config_path = dir.join("executor.cfg");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(&binary)
            .arg(&config_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut executor = Executor {
            child,
            dir,
            port,
            output,
        };
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !executor
            .output
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(READY_LINE))
        {
            if let Ok(Some(status)) = executor.child.try_wait() {
                panic!("the Executor exited ({status}): {}", executor.output());
            }
            assert!(
                Instant::now() < deadline,
                "the Executor did not start: {}",
                executor.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        executor
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// What it printed so far (its message log), for failure messages.
    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn session(table: &InstrumentTable, seq: SessionSeqNums) -> FixSession {
    let config = SessionConfig {
        sender_comp_id: OUR_COMP_ID.into(),
        target_comp_id: EXECUTOR_COMP_ID.into(),
        heart_bt_int_s: 30,
        reset_seq_num: false,
        binance_logon: None,
    };
    FixSession::new(config, table.clone(), seq).unwrap()
}

/// Polls until `wanted` picks an event (returned) or the connection status is `until_status`
/// (then `None`); fails on a disconnect event or after [`STEP_TIMEOUT`].
fn poll_until<T>(
    executor: &Executor,
    conn: &mut FixConnection,
    session: &mut FixSession,
    what: &str,
    mut wanted: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let mut found = None;
        let mut unexpected = Vec::new();
        let status = conn
            .poll(session, now_ns(), |event| {
                if found.is_none()
                    && let Some(value) = wanted(&event)
                {
                    found = Some(value);
                    return;
                }
                if matches!(
                    event,
                    SessionEvent::Disconnected(_)
                        | SessionEvent::GapDetected { .. }
                        | SessionEvent::BadReport(_)
                        | SessionEvent::Rejected { .. }
                ) {
                    unexpected.push(event);
                }
            })
            .unwrap_or_else(|e| panic!("{what}: {e}\nexecutor:\n{}", executor.output()));
        assert!(
            unexpected.is_empty(),
            "{what}: unexpected {unexpected:?}\nexecutor:\n{}",
            executor.output()
        );
        if let Some(value) = found {
            return value;
        }
        assert!(
            status != ConnectionStatus::Closed,
            "{what}: connection closed\nexecutor:\n{}",
            executor.output()
        );
        assert!(
            Instant::now() < deadline,
            "{what}: timed out\nexecutor:\n{}",
            executor.output()
        );
        std::thread::sleep(POLL_PAUSE);
    }
}

fn logon(executor: &Executor, session: &mut FixSession) -> FixConnection {
    let mut conn = FixConnection::connect(executor.addr()).unwrap();
    poll_until(executor, &mut conn, session, "logon", |event| {
        matches!(event, SessionEvent::LoggedOn { .. }).then_some(())
    });
    assert_eq!(session.state(), SessionState::Active);
    conn
}

fn logout(executor: &Executor, conn: &mut FixConnection, session: &mut FixSession) {
    session.logout(now_ns()).unwrap();
    poll_until(executor, conn, session, "logout", |event| {
        matches!(event, SessionEvent::LoggedOut { by_peer: false }).then_some(())
    });
    let deadline = Instant::now() + STEP_TIMEOUT;
    while conn.poll(session, now_ns(), |_| {}).unwrap() != ConnectionStatus::Closed {
        assert!(Instant::now() < deadline, "the connection did not close");
        std::thread::sleep(POLL_PAUSE);
    }
}

fn report(
    executor: &Executor,
    conn: &mut FixConnection,
    session: &mut FixSession,
    what: &str,
) -> ExecutionReport {
    poll_until(executor, conn, session, what, |event| match event {
        SessionEvent::Report(report) => Some(*report),
        _ => None,
    })
}

#[test]
fn executor_fills_rejects_and_keeps_sequence_across_reconnect() {
    let executor = Executor::start();
    let instruments = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::new(instruments).unwrap();
    let nknusdt = table.find(b"NKNUSDT").unwrap().clone();
    let px = parse_units(b"0.3513", nknusdt.price_scale).unwrap();
    let qty = parse_units(b"1.5", nknusdt.qty_scale).unwrap();
    let limit = |client_order_id| OrderRequest {
        client_order_id,
        px,
        qty,
        instrument_id: nknusdt.id,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        ..OrderRequest::default()
    };
    let expected_fill = |client_order_id| ExecutionReport {
        client_order_id,
        px: 0,
        last_px: px,
        last_qty: qty,
        cum_qty: qty,
        leaves_qty: 0,
        instrument_id: nknusdt.id,
        exec_type: exec_type::TRADE,
        ord_status: b'2',
        side: side::BUY,
        ..ExecutionReport::default()
    };

    let mut first = session(&table, SessionSeqNums::default());
    let mut conn = logon(&executor, &mut first);

    // A limit order: filled at once.
    assert_eq!(first.send_order(&limit(1001), now_ns()).unwrap(), 2);
    let fill = report(&executor, &mut conn, &mut first, "limit order fill");
    assert!(fill.venue_order_id > 0, "OrderID: {fill:?}");
    assert_eq!(
        fill,
        ExecutionReport {
            venue_order_id: fill.venue_order_id,
            ..expected_fill(1001)
        }
    );

    // A market order: rejected at session level, surfaced as REJECTED for that order.
    let market = OrderRequest {
        client_order_id: 1002,
        ord_type: ord_type::MARKET,
        time_in_force: 0,
        px: 0,
        ..limit(1002)
    };
    assert_eq!(first.send_order(&market, now_ns()).unwrap(), 3);
    let rejected = report(&executor, &mut conn, &mut first, "market order reject");
    assert_eq!(rejected.client_order_id, 1002);
    assert_eq!(rejected.exec_type, exec_type::REJECTED);
    assert_eq!(rejected.instrument_id, nknusdt.id);
    // SessionRejectReason 5: value is incorrect (OrdType 40).
    assert_eq!(rejected.reject_reason, reject_reason::SESSION_BASE + 5);

    logout(&executor, &mut conn, &mut first);
    let saved = first.seq_nums();
    // Logon, two orders, Logout each way.
    assert_eq!(
        saved,
        SessionSeqNums {
            next_sender: 5,
            next_target: 5
        }
    );
    drop(conn);
    drop(first);

    // A new session restored from the saved numbers, no reset.
    let mut second = session(&table, saved);
    let mut conn = logon(&executor, &mut second);
    assert_eq!(
        second.seq_nums().next_target,
        6,
        "the Executor's Logon was its 5"
    );
    assert_eq!(second.send_order(&limit(1003), now_ns()).unwrap(), 6);
    let fill = report(&executor, &mut conn, &mut second, "fill after reconnect");
    assert_eq!(
        fill,
        ExecutionReport {
            venue_order_id: fill.venue_order_id,
            ..expected_fill(1003)
        }
    );
    logout(&executor, &mut conn, &mut second);
    assert_eq!(
        second.seq_nums(),
        SessionSeqNums {
            next_sender: 8,
            next_target: 8
        }
    );
    let log = executor.output();
    assert!(!log.contains("MsgSeqNum too"), "executor:\n{log}");
    assert!(
        !log.contains("35=2\u{1}"),
        "the Executor asked for a resend:\n{log}"
    );
}
