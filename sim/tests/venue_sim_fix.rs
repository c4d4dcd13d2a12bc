//! venue-sim's FIX order entry over TCP on 127.0.0.1, with our FIX initiator (the gateway's
//! `FixSession` on a `FixConnection`): logon, an order that rests and is acknowledged, filled by
//! the synthetic traders later (the fill is routed to our session), an order that crosses at
//! once, a reject from the venue's filters, a cancel, logout, and a reconnect that keeps
//! sequence continuity (the venue keeps our CompID's sequence numbers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{
    ConnectionStatus, FixConnection, FixSession, SessionConfig, SessionEvent, SessionSeqNums,
    SessionState,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};
use levibot_sim::fix_server::FixServer;
use levibot_sim::md_server::{Hub, VenueCore};

const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const TICK: i64 = 10_000;
const LOT: i64 = 100_000_000;
const FAIR_TICKS: i64 = 3_500;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn table() -> InstrumentTable {
    let all = Recording::testdata().unwrap().instruments().unwrap();
    InstrumentTable::select(&all, &["NKNUSDT"]).unwrap()
}

fn session(seq: SessionSeqNums) -> FixSession {
    let config = SessionConfig {
        sender_comp_id: "LEVIBOT".into(),
        target_comp_id: "VENUE".into(),
        heart_bt_int_s: 30,
        reset_seq_num: false,
        binance_logon: None,
    };
    FixSession::new(config, table(), seq).unwrap()
}

/// Polls until `wanted` picks an event; fails on a disconnect or after `STEP_TIMEOUT`.
fn poll_until<T>(
    conn: &mut FixConnection,
    session: &mut FixSession,
    what: &str,
    mut wanted: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let mut found = None;
        let status = conn
            .poll(session, now_ns(), |event| {
                if found.is_none() {
                    found = wanted(&event);
                }
                assert!(
                    !matches!(
                        event,
                        SessionEvent::Disconnected(_) | SessionEvent::BadReport(_)
                    ),
                    "{what}: {event:?}"
                );
            })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Some(value) = found {
            return value;
        }
        assert!(
            status != ConnectionStatus::Closed,
            "{what}: connection closed"
        );
        assert!(Instant::now() < deadline, "{what}: timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn report_of(conn: &mut FixConnection, s: &mut FixSession, id: u64, exec: u8) -> ExecutionReport {
    poll_until(
        conn,
        s,
        &format!("report {exec} of {id}"),
        |event| match event {
            SessionEvent::Report(r) if r.client_order_id == id && r.exec_type == exec => Some(*r),
            _ => None,
        },
    )
}

fn limit(id: u64, order_side: u8, ticks: i64, lots: i64, tif: u8) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument_id: 0,
        kind: order_kind::NEW,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: tif,
        px: ticks * TICK,
        qty: lots * LOT,
        ..OrderRequest::default()
    }
}

fn logon(addr: SocketAddr, session: &mut FixSession) -> FixConnection {
    let mut conn = FixConnection::connect(addr).unwrap();
    poll_until(&mut conn, session, "logon", |e| {
        matches!(e, SessionEvent::LoggedOn { .. }).then_some(())
    });
    assert_eq!(session.state(), SessionState::Active);
    conn
}

fn logout(conn: &mut FixConnection, session: &mut FixSession) {
    session.logout(now_ns()).unwrap();
    poll_until(conn, session, "logout", |e| {
        matches!(e, SessionEvent::LoggedOut { .. }).then_some(())
    });
}

#[test]
fn our_fix_session_trades_on_venue_sim_over_tcp() {
    let hub = Arc::new(Hub::new(64));
    let core = Arc::new(VenueCore::new(table(), vec![FAIR_TICKS], 11, hub).unwrap());
    // Liquidity around 0.3500 from the synthetic traders.
    core.run_flow(2_000);
    let server =
        FixServer::bind("127.0.0.1:0".parse().unwrap(), Arc::clone(&core), "VENUE").unwrap();
    let addr = server.local_addr();

    let mut s = session(SessionSeqNums::default());
    let mut conn = logon(addr, &mut s);

    // Far below the market: rests, acknowledged.
    let (best_bid, best_ask) = core.with_engine(|e| e.top(0));
    let (best_bid, best_ask) = (best_bid.unwrap() / TICK, best_ask.unwrap() / TICK);
    s.send_order(
        &limit(1, side::BUY, best_bid - 5, 100, time_in_force::GTC),
        now_ns(),
    )
    .unwrap();
    let ack = report_of(&mut conn, &mut s, 1, exec_type::NEW);
    assert_eq!((ack.px, ack.leaves_qty), ((best_bid - 5) * TICK, 100 * LOT));

    // Across the spread, IOC: fills now (at the ask or better).
    s.send_order(
        &limit(2, side::BUY, best_ask + 3, 30, time_in_force::IOC),
        now_ns(),
    )
    .unwrap();
    let fill = report_of(&mut conn, &mut s, 2, exec_type::TRADE);
    assert!(
        fill.last_px <= (best_ask + 3) * TICK && fill.last_qty > 0,
        "{fill:?}"
    );

    // Below the min notional: the venue's filter refuses it.
    s.send_order(
        &limit(3, side::SELL, FAIR_TICKS + 50, 28, time_in_force::GTC),
        now_ns(),
    )
    .unwrap();
    report_of(&mut conn, &mut s, 3, exec_type::REJECTED);

    // Our resting bid is hit when others sell through it: the fills are routed to our session,
    // until it is filled entirely.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut filled = None;
    while filled.is_none() {
        assert!(
            Instant::now() < deadline,
            "the market never reached our bid"
        );
        // Push the fair price down: sell flow through our bid.
        core.execute(|e| {
            e.submit(levibot_sim::matching::NewOrder {
                owner: u32::MAX - 1,
                client_order_id: now_ns(),
                instrument_id: 0,
                side: side::SELL,
                ord_type: ord_type::LIMIT,
                time_in_force: time_in_force::IOC,
                px: (best_bid - 5) * TICK,
                qty: 200 * LOT,
                post_only: false,
            })
        });
        core.run_flow(10);
        let _ = conn.poll(&mut s, now_ns(), |event| {
            if let SessionEvent::Report(r) = event
                && r.client_order_id == 1
                && r.exec_type == exec_type::TRADE
                && r.leaves_qty == 0
            {
                filled = Some(r);
            }
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    let filled = filled.unwrap();
    assert_eq!(filled.last_px, (best_bid - 5) * TICK, "{filled:?}");

    // A cancel of something that is not working any more: a cancel reject.
    s.send_order(
        &OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 1,
            ..limit(4, side::BUY, 0, 0, time_in_force::GTC)
        },
        now_ns(),
    )
    .unwrap();
    report_of(&mut conn, &mut s, 4, exec_type::REJECTED);

    logout(&mut conn, &mut s);
    let seq = s.seq_nums();
    drop(conn);

    // Reconnect with the same sequence numbers: the venue continues the session.
    let mut s = session(seq);
    let mut conn = logon(addr, &mut s);
    s.send_order(
        &limit(5, side::BUY, best_bid - 8, 100, time_in_force::GTC),
        now_ns(),
    )
    .unwrap();
    report_of(&mut conn, &mut s, 5, exec_type::NEW);
    assert!(s.seq_nums().next_sender > seq.next_sender);
    logout(&mut conn, &mut s);
    server.shutdown();
}
