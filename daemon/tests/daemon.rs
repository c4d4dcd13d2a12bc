//! `levibotd` as operators run it: the real binary on a config file, against venue-sim on
//! loopback (the demo's venue and config), driven by signals and `levictl`. Each test checks
//! what the venue itself saw, not only what the daemon says:
//!
//! - a bad config exits 2, names every problem and starts nothing;
//! - SIGTERM cancels every open order at the venue before the process exits 0;
//! - `levictl kill` stops order flow at once and cancels everything; `resume` trades again;
//! - SIGHUP and `levictl set` change a limit while trading, with no market-data message lost;
//! - kill -9 while trading, then a restart: the journal gives back exactly the venue's open
//!   orders and positions, the daemon reconciles (cancel-all) and no order id is ever sent twice;
//! - the books sync from a REST API on a port of its own (`rest_url`), and the daemon trades.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::harness::*;

use levibot_daemon::{config, recovery};
use levibot_shm::codes::reject_reason;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, Record, SentOrder, daemon_event, exec_type, order_kind,
};
use levibot_sim::fix_server::FIRST_OWNER;

#[test]
fn a_bad_config_exits_2_naming_every_problem_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
log_levle = "info"
cancel_deadline_ms = 0

[journal]
dir = "{}"
segment_size_mib = 3

[venue]
exchange_info = "/nonexistent/exchangeInfo.json"
credentials = "/nonexistent/credentials.toml"

[venue.market_data]
url = "http://127.0.0.1:1"

[venue.order_entry]
url = "tcp://127.0.0.1:2"
sender_comp_id = "LEVIBOT"
target_comp_id = "VENUE"
binance_logon = true

[strategy]
kind = "maker"
id = 1

[layout]
kind = "fused"
pipeline = {{ core = 100000 }}
"#,
            journal.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_levibotd"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for key in [
        "daemon.log_levle",
        "daemon.cancel_deadline_ms",
        "journal.segment_size_mib",
        "venue.exchange_info",
        "venue.credentials",
        "venue.market_data.url",
        "layout.pipeline.core",
    ] {
        assert!(stderr.contains(key), "{key} not named:\n{stderr}");
    }
    assert!(
        !journal.exists(),
        "a journal was created: nothing may start"
    );
    // --check says the same without starting anything either.
    let check = Command::new(env!("CARGO_BIN_EXE_levibotd"))
        .args(["run", "--check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
}

#[test]
fn sigterm_cancels_every_open_order_at_the_venue_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("open orders", |c| get(c, "risk.open_orders") > 0);
    let until = Instant::now() + TIMEOUT;
    while venue_working(&venue).is_empty() {
        assert!(Instant::now() < until, "no order reached the venue");
        std::thread::sleep(Duration::from_millis(20));
    }

    daemon.signal(rustix::process::Signal::TERM);
    let status = daemon.wait();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert_eq!(
        venue_working(&venue),
        Vec::<u64>::new(),
        "orders left at the venue"
    );
    let events = events(dir.path());
    let kinds: Vec<u16> = events.iter().map(|e| e.kind).collect();
    let done = events
        .iter()
        .rev()
        .find(|e| e.kind == daemon_event::CANCEL_ALL_DONE)
        .expect("a cancel-all on SIGTERM");
    assert_eq!(done.value, 0, "unconfirmed cancels: {kinds:?}");
    assert_eq!(kinds.last(), Some(&daemon_event::STOPPED), "{kinds:?}");
    assert!(kinds.contains(&daemon_event::STOPPING));
    venue.stop();
}

#[test]
fn levictl_kill_stops_order_flow_and_cancels_everything_and_resume_trades_again() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("open orders", |c| get(c, "risk.open_orders") > 0);

    let out = levictl(dir.path(), &["kill"]);
    assert!(
        out.status.success(),
        "kill: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        venue_working(&venue),
        Vec::<u64>::new(),
        "orders left at the venue"
    );
    let c = counters(dir.path());
    assert_eq!(get(&c, "risk.trading_state"), 2);
    assert_eq!(get(&c, "risk.open_orders"), 0);
    // The market moves on; nothing new leaves.
    let sent = get(&c, "gateway.orders_sent");
    std::thread::sleep(Duration::from_millis(1_000));
    let c = counters(dir.path());
    assert_eq!(
        get(&c, "gateway.orders_sent"),
        sent,
        "orders sent after the kill"
    );
    // In the journal: once the mass cancel went out, no new order or replace followed it.
    let orders = sent_orders(dir.path());
    let mass = orders
        .iter()
        .rposition(|o| o.request.kind == order_kind::MASS_CANCEL)
        .expect("the kill's mass cancel was sent");
    let after: Vec<&OrderRequest> = orders[mass..]
        .iter()
        .map(|o| &o.request)
        .filter(|r| r.kind == order_kind::NEW || r.kind == order_kind::REPLACE)
        .collect();
    assert!(after.is_empty(), "sent after the kill: {after:?}");

    let out = levictl(dir.path(), &["resume"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_for("orders after resume", move |c| {
        get(c, "gateway.orders_sent") > sent + 1
    });
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0));
    venue.stop();
}

#[test]
fn reload_and_set_change_limits_while_trading_without_losing_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config_path) = venue_and_config(dir.path(), levibot_testkit::seed());
    let mut daemon = Daemon::start(&config_path, dir.path());
    daemon.wait_running();
    daemon.wait_for("orders", |c| get(c, "gateway.orders_sent") > 5);

    // SIGHUP after the file changed: NKNUSDT's price collar is now 1 bp (the maker quotes
    // two ticks, ~6 bp, from the microprice), so its orders are refused from the next on.
    let text = std::fs::read_to_string(&config_path).unwrap();
    let edited = text.replacen("collar_bps = 500", "collar_bps = 1", 1);
    assert_ne!(text, edited);
    std::fs::write(&config_path, edited).unwrap();
    let before = counters(dir.path());
    daemon.signal(rustix::process::Signal::HUP);
    daemon.wait_for("the new limit to refuse orders", |c| {
        get(c, "risk.reject.price_collar") > 0 && get(c, "risk.limits_updates") >= 1
    });
    assert!(
        events(dir.path())
            .iter()
            .any(|e| e.kind == daemon_event::RELOADED)
    );

    // levictl set: one limit, journaled.
    let out = levictl(dir.path(), &["set", "risk.loss_max", "900"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        events(dir.path())
            .iter()
            .any(|e| e.kind == daemon_event::LIMIT_SET)
    );
    // A refused reload changes nothing and says why.
    std::fs::write(
        &config_path,
        text.replace("kind = \"fused\"", "kind = \"sideways\""),
    )
    .unwrap();
    let out = levictl(dir.path(), &["reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("layout"));

    // Market data went on throughout: more messages, no gap, no decode error, no reconnect.
    let after = counters(dir.path());
    assert!(get(&after, "feed.messages") > get(&before, "feed.messages"));
    assert_eq!(get(&after, "feed.stream_gaps"), 0);
    assert_eq!(get(&after, "feed.decode_errors"), 0);
    assert_eq!(get(&after, "venue.market_data.disconnects"), 0);
    assert_eq!(get(&after, "strategy.book_resyncs"), 0);
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    venue.stop();
}

/// kill -9 while trading; the journal's state is checked against the venue's own view; one
/// order is then journaled as sent though its bytes never left (the crash came between the
/// write-ahead and the send); a restart reconciles by `reconcile` and trades on.
fn kill_9_then_restart(reconcile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config_path) = venue_and_config(dir.path(), levibot_testkit::seed());
    let text = std::fs::read_to_string(&config_path).unwrap();
    let text = text.replacen(
        "[daemon]\n",
        &format!("[daemon]\nreconcile = \"{reconcile}\"\n"),
        1,
    );
    std::fs::write(&config_path, text).unwrap();
    let mut daemon = Daemon::start(&config_path, dir.path());
    daemon.wait_running();
    daemon.wait_for("fills and open orders", |c| {
        get(c, "venue.order_entry.fills") > 0 && get(c, "risk.open_orders") > 0
    });
    // Freeze the market so the venue's view holds still, then kill -9 mid-session.
    venue.set_rate(0);
    std::thread::sleep(Duration::from_millis(500));
    daemon.signal(rustix::process::Signal::KILL);
    daemon.wait();

    // What the journal says we own is exactly what the venue says we own.
    let config = config::load(&config_path).unwrap();
    let recovered =
        recovery::recover(&config.journal.dir, config.risk_limits, &config.instruments).unwrap();
    let ids: Vec<u64> = recovered
        .open_orders
        .iter()
        .map(|o| o.client_order_id)
        .collect();
    assert_eq!(ids, venue_working(&venue), "open orders");
    let venue_positions: Vec<i64> = (0..config.instruments.len() as u32)
        .map(|id| venue.core.with_engine(|e| e.position_of(FIRST_OWNER, id)))
        .collect();
    for (id, venue_position) in venue_positions.iter().enumerate() {
        assert_eq!(
            recovered.engine.position(id as u32),
            *venue_position,
            "position of instrument {id}"
        );
    }

    // The phantom: journaled as sent with the next sequence number, never on the wire.
    let phantom_id = recovered.next_client_order_id;
    let nkn = config.instruments.get(0).unwrap();
    let bid = venue.core.with_engine(|e| e.top(0)).0.unwrap();
    {
        let mut journal = levibot_shm::JournalConfig::new(&config.journal.dir);
        journal.segment_size = config.journal.segment_size;
        journal.prefault = false;
        let journal = levibot_shm::Journal::open(&journal).unwrap();
        let mut appender = journal
            .appender(levibot_shm::codes::writer_id::GATEWAY)
            .unwrap();
        let phantom = SentOrder {
            request: OrderRequest {
                client_order_id: phantom_id,
                px: bid - 10 * nkn.tick_units,
                qty: 100 * nkn.lot_units,
                instrument_id: 0,
                strategy_id: config.strategy_id,
                kind: order_kind::NEW,
                side: levibot_shm::records::side::BUY,
                ord_type: levibot_shm::records::ord_type::LIMIT,
                time_in_force: levibot_shm::records::time_in_force::GTC,
                ..OrderRequest::default()
            },
            msg_seq_num: recovered.seq_nums.unwrap().next_sender,
            ..SentOrder::default()
        };
        appender
            .append(SentOrder::RECORD_TYPE, phantom.to_bytes())
            .unwrap();
    }

    // Restart: it logs on where the session stopped, reconciles, trades on.
    let mut daemon = Daemon::start(&config_path, dir.path());
    daemon.wait_running();
    let after_restart = events(dir.path());
    let reconciled = after_restart
        .iter()
        .rev()
        .find(|e| e.kind == daemon_event::RECONCILED)
        .expect("reconciled");
    let status = after_restart
        .iter()
        .rev()
        .find(|e| e.kind == daemon_event::MASS_STATUS);
    let log = || format!("{}\n{:?}", daemon.log(), counters(dir.path()));
    let c = counters(dir.path());
    // Everything we had at the venue was cancelled and confirmed, the phantom let go (the
    // daemon trades again at once, so its new quotes may already be working).
    let working = venue_working(&venue);
    assert!(
        ids.iter().all(|id| !working.contains(id)),
        "{working:?} {}",
        log()
    );
    let cancelled = after_restart
        .iter()
        .rev()
        .find(|e| e.kind == daemon_event::CANCEL_ALL_DONE)
        .unwrap();
    assert_eq!(cancelled.value, 0, "{}", log());
    match reconcile {
        "mass_status" => {
            // The venue does not have the phantom: the status round drops it (or the resend
            // gap fill reported it lost first); the rest were cancelled.
            let status = status.expect("a mass status event");
            assert!(status.value >= 0, "no answer: {}", log());
            assert!(reconciled.value as usize >= ids.len(), "{}", log());
        }
        _ => {
            assert!(status.is_none());
            assert_eq!(reconciled.value as usize, ids.len(), "{}", log());
            // The venue asked for the phantom's number again: reported lost, let go.
            let lost = journal(dir.path())
                .iter()
                .filter(|(t, _)| *t == ExecutionReport::RECORD_TYPE.0)
                .filter_map(|(_, p)| ExecutionReport::from_bytes(p))
                .any(|r| {
                    r.client_order_id == phantom_id
                        && r.exec_type == exec_type::REJECTED
                        && r.reject_reason == reject_reason::LOST_IN_FLIGHT
                });
            assert!(
                lost,
                "the phantom was not reported lost in flight: {}",
                log()
            );
        }
    }
    // The phantom never reached the venue and is not open anywhere.
    assert!(!venue_working(&venue).contains(&phantom_id));
    for (id, venue_position) in venue_positions.iter().enumerate() {
        let symbol = config
            .instruments
            .get(id as u32)
            .unwrap()
            .symbol
            .to_string();
        assert_eq!(
            get(&c, &format!("risk.position_units.{symbol}")),
            *venue_position,
            "position of {symbol} after the restart"
        );
    }

    venue.set_rate(400);
    let sent_before = sent_orders(dir.path()).len();
    daemon.wait_for("orders after the restart", |c| {
        get(c, "gateway.orders_sent") > 3
    });
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    assert_eq!(venue_working(&venue), Vec::<u64>::new());

    // No client order id went out twice, across both runs (the phantom counts as used).
    let sent = sent_orders(dir.path());
    assert!(sent.len() > sent_before);
    let mut seen = HashSet::new();
    for s in &sent {
        assert!(
            seen.insert(s.request.client_order_id),
            "client order id {} sent twice",
            s.request.client_order_id
        );
    }
    venue.stop();
}

#[test]
fn after_kill_9_a_restart_recovers_exactly_cancels_all_and_sends_no_order_twice() {
    kill_9_then_restart("cancel_all");
}

#[test]
fn after_kill_9_a_restart_reconciles_by_order_mass_status() {
    kill_9_then_restart("mass_status");
}

#[test]
fn systemd_hears_ready_then_the_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = dir.path().join("levibotd.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_levibotd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut heard: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    let until = Instant::now() + TIMEOUT;
    let mut stopping_sent = false;
    loop {
        if let Ok(n) = socket.recv(&mut buf) {
            heard.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
        let watchdogs = heard.iter().filter(|l| *l == "WATCHDOG=1").count();
        if !stopping_sent && heard.iter().any(|l| l == "READY=1") && watchdogs >= 3 {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            stopping_sent = true;
        }
        if stopping_sent && heard.iter().any(|l| l == "STOPPING=1") {
            break;
        }
        assert!(
            Instant::now() < until,
            "heard {heard:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let ready = heard.iter().position(|l| l == "READY=1").unwrap();
    let stopping = heard.iter().position(|l| l == "STOPPING=1").unwrap();
    assert!(ready < stopping, "{heard:?}");
    assert!(
        heard[ready..stopping]
            .iter()
            .filter(|l| *l == "WATCHDOG=1")
            .count()
            >= 2,
        "{heard:?}"
    );
    venue.stop();
}

/// Binance serves its streams and its REST API from different hosts. The demo's venue does the
/// same with two ports: the streams' port answers a REST request with a 404, so books that sync
/// prove the daemon took its snapshots from `venue.market_data.rest_url`.
#[test]
fn books_sync_from_a_rest_api_on_its_own_port_and_the_daemon_trades() {
    let dir = tempfile::tempdir().unwrap();
    let (venue, config) = venue_and_config(dir.path(), levibot_testkit::seed());
    let rest = venue
        .rest
        .as_ref()
        .expect("the demo's venue has a REST port");
    assert_ne!(rest.local_addr(), venue.md_addr());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("rest_url = \"http://{}\"", rest.local_addr())),
        "{text}"
    );
    // The streams' port refuses REST, naming where it is.
    let misdirected = levibot_gateway::ws::fetch_depth_snapshot(
        venue.md_addr(),
        &venue.md_addr().to_string(),
        "NKNUSDT",
        5,
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        misdirected.contains("404") && misdirected.contains("REST API is on its own port"),
        "{misdirected}"
    );

    let mut daemon = Daemon::start(&config, dir.path());
    daemon.wait_running();
    daemon.wait_for("fills", |c| get(c, "venue.order_entry.fills") > 0);
    // One snapshot per symbol at least, all from the REST port; the streams from the other.
    assert!(rest.stats().snapshots_served >= 3, "{:?}", rest.stats());
    assert_eq!(rest.stats().websocket_clients, 0, "{:?}", rest.stats());
    assert_eq!(
        venue.md.stats().snapshots_served,
        0,
        "{:?}",
        venue.md.stats()
    );
    assert!(venue.md.stats().websocket_clients >= 1);
    assert_eq!(get(&counters(dir.path()), "venue.market_data.up"), 1);
    daemon.signal(rustix::process::Signal::TERM);
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log());
    assert_eq!(venue_working(&venue), Vec::<u64>::new());
    venue.stop();
}

#[test]
fn the_demo_trades_and_says_where_the_journal_is() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("demo");
    let out = Command::new(levibot_testkit::workspace_bin(
        "levibot-demo",
        "levibot-demo",
    ))
    .args([
        "--duration",
        "8",
        "--plain",
        "--exporter-listen",
        "127.0.0.1:0",
    ])
    .arg("--journal")
    .arg(&journal)
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&journal.display().to_string()), "{stdout}");
    assert!(stdout.contains("levictl tail"), "{stdout}");
    // Asked for port 0, the demo shows the port the exporter really bound.
    let metrics_port: u16 = stdout
        .split("metrics: http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no exporter address: {stdout}"));
    assert_ne!(metrics_port, 0, "{stdout}");
    assert!(!sent_orders(&journal).is_empty(), "the demo sent no order");
    // A second run empties its own old journal; a non-demo journal is refused.
    let other = dir.path().join("service");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("journal-0.lvj"), b"x").unwrap();
    let out = Command::new(levibot_testkit::workspace_bin(
        "levibot-demo",
        "levibot-demo",
    ))
    .args(["--duration", "1", "--plain", "--exporter-listen", "none"])
    .arg("--journal")
    .arg(&other)
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a demo"));
}
