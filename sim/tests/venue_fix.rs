//! The simulated venue's FIX acceptor against our own initiator (`levibot_gateway::fix`), both
//! sans-IO, bytes shuttled in memory with a fake clock: logon, an order that rests and is
//! acknowledged, a fill caused by another trader, cancel and replace under the pipeline's id
//! conventions, rejects from the venue's filters, a cancel of an unknown order, a skipped
//! sequence number that the initiator repairs with a ResendRequest the venue gap-fills, garbage
//! that is skipped, and the logout handshake; a mass status request answered with exactly the
//! working orders.

use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{
    FixSession, INSTRUMENT_UNKNOWN, SessionConfig, SessionEvent, SessionSeqNums, SessionState,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, report_flag, side,
    time_in_force,
};
use levibot_sim::fix_acceptor::{AcceptorState, FixAcceptor};
use levibot_sim::matching::{MatchingEngine, NewOrder};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_764_000_000 * SEC;
/// NKNUSDT: a tick (0.0001) in price units and a lot (1) in quantity units.
const TICK: i64 = 10_000;
const LOT: i64 = 100_000_000;
const US: u32 = 7;
const OTHER: u32 = 8;

struct Pair {
    client: FixSession,
    venue: FixAcceptor,
    engine: MatchingEngine,
    events: Vec<SessionEvent>,
}

impl Pair {
    fn new() -> Pair {
        let all = Recording::testdata().unwrap().instruments().unwrap();
        let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
        let nkn = table.get(0).unwrap().clone();
        let config = SessionConfig {
            sender_comp_id: "LEVIBOT".into(),
            target_comp_id: "VENUE".into(),
            heart_bt_int_s: 30,
            reset_seq_num: false,
            binance_logon: None,
        };
        Pair {
            client: FixSession::new(config, table.clone(), SessionSeqNums::default()).unwrap(),
            venue: FixAcceptor::new("VENUE", US, table),
            engine: MatchingEngine::new(&[&nkn], 1).unwrap(),
            events: Vec::new(),
        }
    }

    /// Moves bytes both ways until both sides are quiet; engine notices go to the venue
    /// session (it ignores other owners').
    fn pump(&mut self, now: u64) {
        for _ in 0..100 {
            let out = self.client.outbound().to_vec();
            self.client.consume_outbound(out.len());
            for outcome in self.venue.on_bytes(&out, &mut self.engine, now) {
                for notice in &outcome.notices {
                    self.venue.deliver(notice, now);
                }
            }
            let back = self.venue.outbound().to_vec();
            self.venue.consume_outbound(back.len());
            let mut at = 0;
            while at < back.len() {
                let handled = self.client.handle(&back[at..], now);
                if handled.consumed == 0 {
                    break;
                }
                at += handled.consumed;
                self.events.extend(handled.event);
            }
            if out.is_empty() && back.is_empty() && self.client.outbound().is_empty() {
                return;
            }
        }
        panic!("the two sides never went quiet");
    }

    fn reports(&mut self) -> Vec<ExecutionReport> {
        let reports = self
            .events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Report(r) => Some(*r),
                _ => None,
            })
            .collect();
        self.events.clear();
        reports
    }

    fn send(&mut self, order: OrderRequest, now: u64) {
        self.client.send_order(&order, now).unwrap();
        self.pump(now);
    }
}

fn limit(id: u64, order_side: u8, ticks: i64, lots: i64) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument_id: 0,
        kind: order_kind::NEW,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px: ticks * TICK,
        qty: lots * LOT,
        ..OrderRequest::default()
    }
}

#[test]
fn our_initiator_trades_against_the_venue_acceptor() {
    let mut p = Pair::new();
    p.client.logon(T0).unwrap();
    p.pump(T0);
    assert_eq!(p.client.state(), SessionState::Active);
    assert_eq!(p.venue.state(), AcceptorState::Active);
    assert!(matches!(
        p.events[0],
        SessionEvent::LoggedOn { heart_bt_int_s: 30 }
    ));
    p.events.clear();

    // A bid rests: acknowledged (NEW), the whole quantity leaves.
    p.send(limit(1, side::BUY, 3_500, 100), T0 + 1);
    let r = p.reports();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (
            r[0].client_order_id,
            r[0].exec_type,
            r[0].px,
            r[0].leaves_qty
        ),
        (1, exec_type::NEW, 3_500 * TICK, 100 * LOT)
    );

    // Another trader sells 40 into it: our session hears of the fill.
    let out = p.engine.submit(NewOrder {
        owner: OTHER,
        client_order_id: 1,
        instrument_id: 0,
        side: side::SELL,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::IOC,
        px: 3_500 * TICK,
        qty: 40 * LOT,
        post_only: false,
    });
    for notice in &out.notices {
        p.venue.deliver(notice, T0 + 2);
    }
    p.pump(T0 + 2);
    let r = p.reports();
    assert_eq!(r.len(), 1, "only our own order's news: {r:?}");
    assert_eq!(
        (
            r[0].exec_type,
            r[0].last_px,
            r[0].last_qty,
            r[0].cum_qty,
            r[0].leaves_qty
        ),
        (exec_type::TRADE, 3_500 * TICK, 40 * LOT, 40 * LOT, 60 * LOT)
    );

    // Replace to 0.3490 x 100 (id 2): REPLACED under the new id.
    p.send(
        OrderRequest {
            kind: order_kind::REPLACE,
            orig_client_order_id: 1,
            ..limit(2, side::BUY, 3_490, 100)
        },
        T0 + 3,
    );
    let r = p.reports();
    assert_eq!(
        (r[0].client_order_id, r[0].exec_type, r[0].px),
        (2, exec_type::REPLACED, 3_490 * TICK),
        "{r:?}"
    );
    assert_eq!(p.engine.top(0).0, Some(3_490 * TICK));

    // Cancel it (request id 3): CANCELED under the cancelled order's id.
    p.send(
        OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 2,
            ..limit(3, side::BUY, 0, 0)
        },
        T0 + 4,
    );
    let r = p.reports();
    assert_eq!(
        (r[0].client_order_id, r[0].exec_type),
        (2, exec_type::CANCELED),
        "{r:?}"
    );
    assert_eq!(p.engine.top(0), (None, None));

    // Cancel of an order that is not working: an OrderCancelReject, REJECTED under the request.
    p.send(
        OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 2,
            ..limit(4, side::BUY, 0, 0)
        },
        T0 + 5,
    );
    let r = p.reports();
    assert_eq!(
        (r[0].client_order_id, r[0].exec_type),
        (4, exec_type::REJECTED),
        "{r:?}"
    );

    // Below the min notional (28 NKN at 0.35 = 9.8 USDT): REJECTED by the venue's filter.
    p.send(limit(5, side::SELL, 3_500, 28), T0 + 6);
    let r = p.reports();
    assert_eq!(
        (r[0].client_order_id, r[0].exec_type),
        (5, exec_type::REJECTED),
        "{r:?}"
    );

    // A skipped sequence number: the initiator asks for a resend, the venue gap-fills, and
    // the session goes on.
    p.venue.faults.skip_seq_num = true;
    p.send(limit(6, side::BUY, 3_400, 100), T0 + 7);
    assert!(
        p.events
            .iter()
            .any(|e| matches!(e, SessionEvent::GapDetected { .. })),
        "{:?}",
        p.events
    );
    p.events.clear();
    p.send(limit(7, side::BUY, 3_300, 100), T0 + 8);
    let r = p.reports();
    assert!(
        r.iter()
            .any(|r| r.client_order_id == 7 && r.exec_type == exec_type::NEW),
        "{r:?}"
    );
    assert_eq!(p.client.state(), SessionState::Active);

    // Garbage on the wire is skipped by the initiator; the next report still arrives.
    p.venue.faults.garbage = true;
    p.send(limit(8, side::BUY, 3_200, 100), T0 + 9);
    let r = p.reports();
    assert!(r.iter().any(|r| r.client_order_id == 8), "{r:?}");
    assert!(p.client.garbled_count() > 0);

    // Heartbeats while quiet, then the logout handshake.
    p.venue.poll_timers(T0 + 40 * SEC);
    p.pump(T0 + 40 * SEC);
    p.client.logout(T0 + 41 * SEC).unwrap();
    p.pump(T0 + 41 * SEC);
    assert_eq!(p.venue.state(), AcceptorState::Closed);
    assert!(
        p.events
            .iter()
            .any(|e| matches!(e, SessionEvent::LoggedOut { .. })),
        "{:?}",
        p.events
    );
}

#[test]
fn the_acceptor_refuses_what_it_must() {
    let mut p = Pair::new();
    // Not a Logon first: logged out.
    let mut raw = FixAcceptor::new("VENUE", US, p.client.instruments().clone());
    let garbage_first = b"8=FIX.4.4\x019=5\x0135=0\x01\x0110=000\x01";
    raw.on_bytes(garbage_first, &mut p.engine, T0);
    assert_eq!(
        raw.state(),
        AcceptorState::AwaitingLogon,
        "garbled input is skipped"
    );
    assert_eq!(raw.garbled, 1);
    // A Logon to another venue: logged out.
    let mut wrong = FixSession::new(
        SessionConfig {
            sender_comp_id: "LEVIBOT".into(),
            target_comp_id: "ELSEWHERE".into(),
            heart_bt_int_s: 30,
            reset_seq_num: false,
            binance_logon: None,
        },
        p.client.instruments().clone(),
        SessionSeqNums::default(),
    )
    .unwrap();
    wrong.logon(T0).unwrap();
    let bytes = wrong.outbound().to_vec();
    raw.on_bytes(&bytes, &mut p.engine, T0);
    assert_eq!(raw.state(), AcceptorState::Closed);
    assert!(String::from_utf8_lossy(raw.outbound()).contains("35=5"));
}

/// Another trader's order, its notices delivered (our session ignores them).
fn other_trader(p: &mut Pair, id: u64, order_side: u8, tif: u8, ticks: i64, lots: i64, now: u64) {
    let out = p.engine.submit(NewOrder {
        owner: OTHER,
        client_order_id: id,
        instrument_id: 0,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: tif,
        px: ticks * TICK,
        qty: lots * LOT,
        post_only: false,
    });
    for notice in &out.notices {
        p.venue.deliver(notice, now);
    }
    p.pump(now);
}

fn mass_status(id: u64, instrument_id: u32) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument_id,
        kind: order_kind::MASS_STATUS,
        ..OrderRequest::default()
    }
}

#[test]
fn a_mass_status_request_reads_back_exactly_the_working_orders() {
    let mut p = Pair::new();
    p.client.logon(T0).unwrap();
    p.pump(T0);
    p.events.clear();

    // Nothing working: one report that names no order, flagged last.
    p.send(mass_status(70, u32::MAX), T0 + 1);
    let r = p.reports();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (
            r[0].client_order_id,
            r[0].instrument_id,
            r[0].exec_type,
            r[0].flags,
            r[0].leaves_qty
        ),
        (
            0,
            INSTRUMENT_UNKNOWN,
            exec_type::ORDER_STATUS,
            report_flag::LAST_OF_MASS_STATUS,
            0
        )
    );

    // Order 1 rests and is partly filled by another trader; 2 rests and is cancelled; 3
    // rests; 4 takes two asks of another trader (30 at 0.3550, 30 at 0.3560) and rests the
    // rest; 5 takes another trader's ask entirely.
    p.send(limit(1, side::BUY, 3_500, 100), T0 + 2);
    other_trader(&mut p, 1, side::SELL, time_in_force::IOC, 3_500, 40, T0 + 3);
    p.send(limit(2, side::BUY, 3_490, 50), T0 + 4);
    p.send(
        OrderRequest {
            kind: order_kind::CANCEL,
            orig_client_order_id: 2,
            ..limit(20, side::BUY, 0, 0)
        },
        T0 + 5,
    );
    p.send(limit(3, side::SELL, 3_600, 80), T0 + 6);
    other_trader(&mut p, 2, side::SELL, time_in_force::GTC, 3_550, 30, T0 + 7);
    other_trader(&mut p, 3, side::SELL, time_in_force::GTC, 3_560, 30, T0 + 8);
    p.send(limit(4, side::BUY, 3_560, 100), T0 + 9);
    other_trader(
        &mut p,
        4,
        side::SELL,
        time_in_force::GTC,
        3_580,
        30,
        T0 + 10,
    );
    p.send(limit(5, side::BUY, 3_580, 30), T0 + 11);
    assert_eq!(p.engine.position_of(US, 0), (40 + 60 + 30) * LOT);
    assert_eq!(p.engine.working_order_ids_of(US), vec![1, 3, 4]);
    p.events.clear();

    p.send(mass_status(71, u32::MAX), T0 + 12);
    let r = p.reports();
    let working = p.engine.working_orders_detail_of(US, None);
    assert_eq!(r.len(), working.len(), "{r:?}");
    for (i, (report, order)) in r.iter().zip(&working).enumerate() {
        let last = if i + 1 == r.len() {
            report_flag::LAST_OF_MASS_STATUS
        } else {
            0
        };
        assert_eq!(
            *report,
            ExecutionReport {
                client_order_id: order.client_order_id,
                venue_order_id: order.venue_order_id,
                px: order.px,
                last_px: order.avg_px,
                cum_qty: order.cum_qty,
                leaves_qty: order.qty - order.cum_qty,
                instrument_id: 0,
                exec_type: exec_type::ORDER_STATUS,
                ord_status: if order.cum_qty > 0 { b'1' } else { b'0' },
                side: order.side,
                flags: last,
                ..ExecutionReport::default()
            }
        );
    }
    // And by hand: what each order filled, at what average.
    let by_hand: Vec<(u64, u8, i64, i64, i64, i64)> = r
        .iter()
        .map(|r| {
            (
                r.client_order_id,
                r.side,
                r.px,
                r.cum_qty,
                r.leaves_qty,
                r.last_px,
            )
        })
        .collect();
    assert_eq!(
        by_hand,
        vec![
            (1, side::BUY, 3_500 * TICK, 40 * LOT, 60 * LOT, 3_500 * TICK),
            (3, side::SELL, 3_600 * TICK, 0, 80 * LOT, 0),
            (4, side::BUY, 3_560 * TICK, 60 * LOT, 40 * LOT, 3_555 * TICK),
        ]
    );

    // By security (585=1 with Symbol): the same orders; the session goes on afterwards.
    p.send(mass_status(72, 0), T0 + 13);
    let again = p.reports();
    assert_eq!(
        again.iter().map(|r| r.client_order_id).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert_eq!(
        again.last().unwrap().flags,
        report_flag::LAST_OF_MASS_STATUS
    );
    p.send(limit(6, side::BUY, 3_300, 100), T0 + 14);
    let r = p.reports();
    assert_eq!((r[0].client_order_id, r[0].exec_type), (6, exec_type::NEW));
    assert_eq!(p.client.state(), SessionState::Active);
}
