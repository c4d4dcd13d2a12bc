//! Reconciliation by order mass status (`RiskEngine::begin_status_round` and `ORDER_STATUS`
//! reports): missed fills applied exactly as TRADE reports would be, orders the venue does not
//! work dropped at the last report (an empty answer drops them all), orders only the venue has
//! adopted with their working leaves, replaces the venue confirmed only by its status (one that
//! leaves nothing open drops the order), a missed fill with no price anywhere not invented, reports
//! outside a round ignored, and no allocation on the way.

use levibot_engine::risk::{
    OPEN_ORDERS_MAX, QTY_UNITS_MAX, RESTORED_WORST_MAX, RISK_INSTRUMENTS_MAX, RiskLimits,
    TradingState,
};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, order_kind, report_flag, side,
};

use crate::common::desk::{Desk, desk_with, order};
use crate::common::{A, B};
/// The risk tests' limits, with room for every open order of a test and fewer fills a
/// second than the missed fills of one test below.
fn limits() -> RiskLimits {
    let mut l = crate::common::limits();
    for i in l.instruments.iter_mut().flatten() {
        i.open_orders_max = 64;
    }
    l.open_orders_max = 128;
    l.fill_rate.count_max = 10;
    l
}

/// The common desk (a reference of 100.00 on both instruments, and a clock) with these limits.
fn desk() -> Desk {
    desk_with(limits())
}

/// The venue's status of one order: `last_px` is its AvgPx (0: not given).
fn status(
    client_order_id: u64,
    instrument_id: u32,
    order_side: u8,
    px: i64,
    (cum_qty, leaves_qty): (i64, i64),
    avg_px: i64,
) -> ExecutionReport {
    ExecutionReport {
        client_order_id,
        venue_order_id: client_order_id + 1_000,
        instrument_id,
        side: order_side,
        px,
        last_px: avg_px,
        cum_qty,
        leaves_qty,
        exec_type: exec_type::ORDER_STATUS,
        ord_status: if cum_qty > 0 { b'1' } else { b'0' },
        ..ExecutionReport::default()
    }
}

fn last(mut report: ExecutionReport) -> ExecutionReport {
    report.flags |= report_flag::LAST_OF_MASS_STATUS;
    report
}

/// The one report of an answer without orders.
fn empty_answer() -> ExecutionReport {
    ExecutionReport {
        instrument_id: u32::MAX,
        exec_type: exec_type::ORDER_STATUS,
        ord_status: b'8',
        flags: report_flag::LAST_OF_MASS_STATUS,
        ..ExecutionReport::default()
    }
}

impl Desk {
    /// Hands `report` to risk, a microsecond after the last event.
    fn apply(&mut self, report: ExecutionReport) {
        self.now_ns += 1_000;
        self.risk.on_execution(&report, self.now_ns);
    }

    /// What positions, open orders and money look like.
    fn view(&self) -> impl PartialEq + std::fmt::Debug + use<> {
        let r = &self.risk;
        let mut orders: Vec<_> = r
            .open_order_ids()
            .filter_map(|id| r.open_order(id))
            .collect();
        orders.sort_by_key(|o| o.client_order_id);
        (
            [A, B].map(|i| (r.position(i), r.open_qty(i), r.realised_pnl(i))),
            r.exposure(),
            r.pnl(),
            orders,
            r.trading_state(),
        )
    }
}

#[test]
fn missed_fills_of_known_orders_are_applied_as_trades_would_be() {
    let mut d = desk();
    let mut twin = desk();
    for desk in [&mut d, &mut twin] {
        let buy = desk.pass(order(A, side::BUY, 10_000, 1_000));
        desk.fill(buy, 10_000, 300, 700);
        desk.pass(order(B, side::SELL, 10_050, 1_000));
        desk.pass(order(A, side::SELL, 10_020, 400));
    }
    // The venue filled 200 more of the buy (AvgPx 99.95), 100 of the sell (neither AvgPx nor
    // a price in the status: at the order's own price) and all of the third order while we
    // were down.
    d.risk.begin_status_round();
    assert!(d.risk.status_round_open());
    d.apply(status(1, A, side::BUY, 10_000, (500, 500), 9_995));
    d.apply(status(2, B, side::SELL, 0, (100, 900), 0));
    d.apply(last(status(3, A, side::SELL, 10_020, (400, 0), 10_020)));
    twin.fill(1, 9_995, 200, 500);
    twin.fill(2, 10_050, 100, 900);
    twin.fill(3, 10_020, 400, 0);
    assert_eq!(d.view(), twin.view());
    assert_eq!(d.risk.position(A), 300 + 200 - 400);
    assert_eq!(d.risk.open_order(1).unwrap().cum_qty, 500);
    assert_eq!(d.risk.status_fills_applied(), 3);
    assert_eq!(
        (d.risk.status_rounds(), d.risk.status_dropped()),
        (1, 0),
        "orders the venue reported stay open"
    );
    assert!(!d.risk.status_round_open());
    // What risk already saw is not applied again: the same answer changes nothing.
    d.risk.begin_status_round();
    d.apply(status(1, A, side::BUY, 10_000, (500, 500), 9_995));
    d.apply(last(status(2, B, side::SELL, 10_050, (50, 900), 0)));
    assert_eq!(d.view(), twin.view());
    assert_eq!(
        (d.risk.status_rounds(), d.risk.status_fills_applied()),
        (2, 3)
    );
}

#[test]
fn status_fills_do_not_count_in_the_repeated_execution_throttle() {
    let mut d = desk();
    let ids: Vec<u64> = (0..30)
        .map(|i| d.pass(order(A, side::BUY, 9_950 + 5 * (i % 20), 10)))
        .collect();
    d.risk.begin_status_round();
    for &id in &ids {
        let px = d.risk.open_order(id).unwrap().px;
        d.apply(status(id, A, side::BUY, px, (10, 0), px));
    }
    d.apply(empty_answer());
    assert_eq!(d.risk.status_fills_applied(), 30);
    assert_eq!(d.risk.position(A), 300);
    assert_eq!(d.risk.open_orders(), 0);
    assert_eq!(d.risk.trading_state(), TradingState::Active);
}

#[test]
fn orders_the_venue_does_not_report_are_dropped_at_the_last_report() {
    let mut d = desk();
    let kept = d.pass(order(A, side::BUY, 10_000, 1_000));
    let gone = d.pass(order(A, side::BUY, 9_995, 500));
    let other = d.pass(order(B, side::SELL, 10_050, 700));
    d.risk.begin_status_round();
    d.apply(status(kept, A, side::BUY, 10_000, (0, 1_000), 0));
    // Not the last report yet: nothing dropped.
    assert_eq!(d.risk.open_orders(), 3);
    d.apply(last(status(kept, A, side::BUY, 10_000, (0, 1_000), 0)));
    assert_eq!(d.risk.status_dropped(), 2);
    assert!(d.risk.open_order(gone).is_none() && d.risk.open_order(other).is_none());
    assert_eq!(d.risk.open_order(kept).unwrap().leaves_qty, 1_000);
    assert_eq!(
        (d.risk.open_qty(A), d.risk.open_qty(B)),
        ((1_000, 0), (0, 0))
    );
    assert_eq!(d.risk.position(A), 0);
}

#[test]
fn a_known_order_the_venue_works_less_of_takes_the_venues_leaves() {
    let mut d = desk();
    let smaller = d.pass(order(A, side::BUY, 10_000, 1_000));
    let done = d.pass(order(A, side::BUY, 9_995, 500));
    d.risk.begin_status_round();
    d.apply(status(smaller, A, side::BUY, 10_000, (0, 600), 0));
    // Nothing working and no fill risk missed: it is not working, it leaves.
    d.apply(last(status(done, A, side::BUY, 9_995, (0, 0), 0)));
    assert_eq!(d.risk.open_order(smaller).unwrap().leaves_qty, 600);
    assert!(d.risk.open_order(done).is_none());
    assert_eq!(d.risk.open_qty(A), (600, 0));
    assert_eq!(d.risk.status_dropped(), 1);
    assert_eq!(d.risk.position(A), 0);
    // Statuses of known orders with no fill missed: nothing ignored.
    assert_eq!(d.risk.ignored_reports(), 0);
}

#[test]
fn an_empty_answer_drops_every_open_order() {
    let mut d = desk();
    d.pass(order(A, side::BUY, 10_000, 1_000));
    let sell = d.pass(order(B, side::SELL, 10_050, 700));
    d.fill(sell, 10_050, 200, 500);
    let position = d.risk.position(B);
    d.risk.begin_status_round();
    d.apply(empty_answer());
    assert_eq!(d.risk.open_orders(), 0);
    assert_eq!((d.risk.open_qty(A), d.risk.open_qty(B)), ((0, 0), (0, 0)));
    assert_eq!(d.risk.position(B), position, "fills seen stay");
    assert_eq!((d.risk.status_dropped(), d.risk.status_rounds()), (2, 1));
    // The answer is not garbage: nothing was ignored, and it names no order risk could miss.
    assert_eq!(d.risk.ignored_reports(), 0);
    assert_eq!(d.risk.status_unaccounted(), 0);
}

#[test]
fn a_missed_fill_with_no_price_anywhere_is_not_applied() {
    // A market order: no price of its own; the status gives neither AvgPx nor a price.
    let mut d = desk();
    let id = d.pass(crate::common::desk::market(A, side::BUY, 100));
    d.risk.begin_status_round();
    let ignored = d.risk.ignored_reports();
    d.apply(last(status(id, A, side::BUY, 0, (60, 40), 0)));
    assert_eq!(d.risk.position(A), 0, "no fill invented at price 0");
    assert_eq!(d.risk.status_fills_applied(), 0);
    assert_eq!(d.risk.ignored_reports(), ignored + 1);
    // What the venue still works is taken.
    assert_eq!(d.risk.open_order(id).unwrap().leaves_qty, 40);
    assert_eq!(d.risk.open_qty(A), (40, 0));
}

#[test]
fn an_order_only_the_venue_has_is_adopted_with_its_working_leaves() {
    let mut d = desk();
    d.risk.begin_status_round();
    d.apply(status(500, A, side::SELL, 10_020, (200, 800), 10_020));
    d.apply(last(status(501, B, side::BUY, 9_990, (0, 300), 0)));
    assert_eq!(d.risk.status_adopted(), 2);
    let adopted = d.risk.open_order(500).unwrap();
    assert_eq!(
        (
            adopted.side,
            adopted.px,
            adopted.leaves_qty,
            adopted.cum_qty,
            adopted.acked
        ),
        (side::SELL, 10_020, 800, 200, true)
    );
    // Accounted: it counts in open quantities and exposure; its past fills are not invented.
    assert_eq!(
        (d.risk.open_qty(A), d.risk.open_qty(B)),
        ((0, 800), (300, 0))
    );
    assert_eq!((d.risk.position(A), d.risk.position(B)), (0, 0));
    assert!(d.risk.exposure().gross > 0);
    assert_eq!(d.risk.status_dropped(), 0);
    // Then cancelled: risk knows the order, so the cancel passes.
    d.risk.set_trading_state(TradingState::Halted);
    d.pass(OrderRequest {
        kind: order_kind::CANCEL,
        instrument_id: A,
        orig_client_order_id: 500,
        ..OrderRequest::default()
    });
    d.apply(ExecutionReport {
        client_order_id: 500,
        instrument_id: A,
        exec_type: exec_type::CANCELED,
        cum_qty: 200,
        ..ExecutionReport::default()
    });
    assert!(d.risk.open_order(500).is_none());
    assert_eq!(d.risk.open_qty(A), (0, 0));
    // A fill of the adopted order reported later moves the position as any other.
    d.fill(501, 9_990, 100, 200);
    assert_eq!(d.risk.position(B), 100);
}

#[test]
fn orders_risk_cannot_take_in_are_counted_unaccounted() {
    let mut d = desk();
    d.risk.begin_status_round();
    // An instrument without limits, no price (a market order), no side, no client order id.
    d.apply(status(600, 5, side::BUY, 10_000, (0, 100), 0));
    d.apply(status(601, A, side::BUY, 0, (0, 100), 0));
    d.apply(status(602, A, 0, 10_000, (0, 100), 0));
    d.apply(status(0, A, side::BUY, 10_000, (0, 100), 0));
    // An order that ended, unknown to risk: nothing to do.
    let ignored = d.risk.ignored_reports();
    d.apply(last(status(603, A, side::BUY, 10_000, (100, 0), 10_000)));
    assert_eq!(d.risk.ignored_reports(), ignored + 1);
    assert_eq!(d.risk.status_unaccounted(), 4);
    assert_eq!((d.risk.status_adopted(), d.risk.open_orders()), (0, 0));
    assert_eq!(d.risk.position(A), 0);
}

#[test]
fn adopted_orders_stop_at_the_engines_bounds() {
    // An instrument id beyond the engine's table: unaccounted, never an index out of bounds.
    let mut d = desk();
    d.risk.begin_status_round();
    d.apply(status(
        700,
        RISK_INSTRUMENTS_MAX as u32,
        side::BUY,
        10_000,
        (0, 10),
        0,
    ));
    assert_eq!(d.risk.status_unaccounted(), 1);

    // Worst cases up to RESTORED_WORST_MAX (2 x QTY_UNITS_MAX) are taken, and raise the bound
    // the reference price is held to; one unit more is not taken.
    d.apply(status(701, A, side::BUY, 10_000, (0, QTY_UNITS_MAX), 0));
    d.apply(status(702, A, side::BUY, 10_000, (0, QTY_UNITS_MAX), 0));
    assert_eq!(d.risk.status_adopted(), 2);
    assert_eq!(d.risk.worst_case_bound(A), RESTORED_WORST_MAX);
    d.apply(status(703, A, side::BUY, 10_000, (0, 1), 0));
    assert_eq!(
        (d.risk.status_adopted(), d.risk.status_unaccounted()),
        (2, 2)
    );
    assert!(d.risk.open_order(703).is_none());

    // A full open-order table: the next order is unaccounted.
    let mut d = desk();
    d.risk.begin_status_round();
    for id in 0..OPEN_ORDERS_MAX as u64 {
        d.apply(status(1_000 + id, B, side::SELL, 10_050, (0, 10), 0));
    }
    assert_eq!(d.risk.status_adopted(), OPEN_ORDERS_MAX as u64);
    d.apply(status(5_000, B, side::SELL, 10_050, (0, 10), 0));
    assert_eq!(d.risk.status_unaccounted(), 1);
    assert_eq!(d.risk.open_orders(), OPEN_ORDERS_MAX);
}

#[test]
fn a_status_under_a_pending_replace_commits_it() {
    let mut d = desk();
    let original = d.pass(order(A, side::BUY, 10_000, 1_000));
    let replacement = d.pass(OrderRequest {
        kind: order_kind::REPLACE,
        orig_client_order_id: original,
        ..order(A, side::BUY, 10_050, 1_500)
    });
    assert_eq!(d.risk.open_qty(A), (1_500, 0));
    d.risk.begin_status_round();
    d.apply(last(status(
        replacement,
        A,
        side::BUY,
        10_050,
        (0, 1_500),
        0,
    )));
    assert!(d.risk.open_order(original).is_none());
    let order = d.risk.open_order(replacement).unwrap();
    assert_eq!(
        (order.px, order.leaves_qty, order.replaces_pending),
        (10_050, 1_500, 0)
    );
    assert_eq!(d.risk.status_dropped(), 0);
}

#[test]
fn a_status_under_a_replace_that_leaves_nothing_open_drops_the_order() {
    // 0.100 filled after the replace was sent, up to its new total of 0.500: committed, the
    // order leaves the table, counted as dropped.
    let mut d = desk();
    let original = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.fill(original, 10_000, 400, 600);
    let replacement = d.pass(OrderRequest {
        kind: order_kind::REPLACE,
        orig_client_order_id: original,
        ..order(A, side::BUY, 10_000, 500)
    });
    d.fill(original, 10_000, 100, 500);
    d.risk.begin_status_round();
    d.apply(last(status(replacement, A, side::BUY, 10_000, (500, 0), 0)));
    assert!(d.risk.open_order(original).is_none() && d.risk.open_order(replacement).is_none());
    assert_eq!((d.risk.open_orders(), d.risk.status_dropped()), (0, 1));
    assert_eq!(d.risk.position(A), 500);
}

#[test]
fn reports_outside_a_round_and_garbage_in_one_are_ignored() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    let before = d.view();
    d.apply(status(buy, A, side::BUY, 10_000, (500, 500), 10_000));
    d.apply(empty_answer());
    assert_eq!(d.risk.ignored_reports(), 2);
    assert_eq!(d.view(), before);
    assert_eq!(d.risk.status_rounds(), 0);
    // In a round: another instrument or side than the order's is not its status.
    d.risk.begin_status_round();
    d.apply(status(buy, B, side::BUY, 10_000, (500, 500), 10_000));
    d.apply(status(buy, A, side::SELL, 10_000, (500, 500), 10_000));
    assert_eq!(d.risk.ignored_reports(), 4);
    assert_eq!(d.view(), before);
    // Given up (no answer in time): nothing dropped, and a late answer is ignored.
    d.risk.abandon_status_round();
    assert!(!d.risk.status_round_open());
    d.apply(empty_answer());
    assert_eq!(d.risk.ignored_reports(), 5);
    assert_eq!(d.view(), before);
    assert_eq!((d.risk.status_rounds(), d.risk.status_dropped()), (0, 0));
}

#[test]
fn orders_sent_after_the_round_began_are_not_dropped() {
    let mut d = desk();
    let before_round = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.risk.begin_status_round();
    // The caller halts trading first; were an order to pass, the round would not drop it.
    let during = d.pass(order(A, side::BUY, 9_995, 500));
    d.apply(empty_answer());
    assert!(d.risk.open_order(before_round).is_none());
    assert!(d.risk.open_order(during).is_some());
    assert_eq!(d.risk.status_dropped(), 1);
}

#[test]
fn status_reports_allocate_nothing() {
    let mut d = desk();
    let ids: Vec<u64> = (0..20)
        .map(|i| d.pass(order(A, side::BUY, 9_950 + 5 * i, 10)))
        .collect();
    let mut reports: Vec<ExecutionReport> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let px = d.risk.open_order(id).unwrap().px;
        match i % 4 {
            0 => reports.push(status(id, A, side::BUY, px, (5, 5), px)),
            1 => reports.push(status(id, A, side::BUY, px, (0, 10), 0)),
            2 => reports.push(status(id, A, side::BUY, px, (0, 0), 0)),
            _ => {} // dropped at the end
        }
    }
    for i in 0..10 {
        reports.push(status(
            700 + i,
            B,
            side::SELL,
            10_000 + 5 * i as i64,
            (0, 10),
            0,
        ));
    }
    reports.push(empty_answer());
    d.risk.begin_status_round();
    let before = levibot_testkit::allocations();
    for report in &reports {
        d.risk.on_execution(report, d.now_ns);
    }
    assert_eq!(levibot_testkit::allocations() - before, 0);
    assert_eq!(
        (
            d.risk.status_fills_applied(),
            d.risk.status_adopted(),
            d.risk.status_dropped()
        ),
        (5, 10, 10)
    );
}
