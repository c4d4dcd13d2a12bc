//! Pre-trade risk after the order: execution reports move positions, open orders and PnL;
//! replaces (chains, refusals, fills of replacements); refused cancels; and the trading states
//! reports and operators move: the kill switch, reduce-only, max loss, repeated executions.

use levibot_engine::risk::{
    REPLACES_PENDING_MAX, RateLimit, RiskCheck, TradingState, invalid_field, quote,
};
use levibot_shm::records::{ExecutionReport, OrderRequest, exec_type, order_kind, side};

use crate::common::desk::{desk, desk_with, order, why};
use crate::common::{A, B, limits};

#[test]
fn execution_reports_move_positions_open_orders_and_pnl() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 3_000));
    d.report(buy, exec_type::NEW, None, 3_000);
    d.fill(buy, 10_000, 1_000, 2_000);
    assert_eq!(d.risk.position(A), 1_000);
    assert_eq!(d.risk.open_order(buy).unwrap().leaves_qty, 2_000);
    assert_eq!(d.risk.open_qty(A), (2_000, 0));
    d.fill(buy, 9_990, 2_000, 0);
    assert_eq!(d.risk.position(A), 3_000);
    assert!(d.risk.open_order(buy).is_none(), "filled orders leave");
    assert_eq!(d.risk.open_orders(), 0);
    // Average cost (1 x 100.00 + 2 x 99.90) / 3; marked at 100.00: +0.2 USDT.
    assert_eq!(d.risk.pnl(), quote(2) / 10);
    assert_eq!(d.risk.realised_pnl(A), 0);

    // Sell 2.000 at 101.00: realised 2 x (101.00 - 99.9333) = 2.1333.. USDT.
    let sell = d.pass(order(A, side::SELL, 10_100, 2_000));
    d.fill(sell, 10_100, 2_000, 0);
    assert_eq!(d.risk.position(A), 1_000);
    let realised = d.risk.realised_pnl(A);
    assert!(
        (realised - quote(32) / 15).abs() <= 10i128.pow(13),
        "{realised}"
    );
    // Total = cash + position x mark: -300 + 199.8 + 202 + 1 x 100 = +1.8... exactly:
    // bought 100.00 + 199.80, sold 202.00, hold 1.000 at 100.00 -> 2.2 USDT.
    assert_eq!(d.risk.pnl(), quote(22) / 10);

    // Cancels, expiries and rejects remove; unknown ids are ignored and counted.
    let a = d.pass(order(A, side::BUY, 9_950, 100));
    let b = d.pass(order(A, side::BUY, 9_955, 100));
    let c = d.pass(order(A, side::BUY, 9_960, 100));
    d.report(a, exec_type::CANCELED, None, 0);
    d.report(b, exec_type::EXPIRED, None, 0);
    d.report(c, exec_type::REJECTED, None, 0);
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
    let ignored = d.risk.ignored_reports();
    d.report(a, exec_type::TRADE, Some((9_950, 100)), 0);
    d.report(999_999, exec_type::NEW, None, 0);
    assert_eq!(d.risk.ignored_reports(), ignored + 2);
    assert_eq!(d.risk.position(A), 1_000);
}

#[test]
fn a_fill_that_flips_the_position_realises_the_closed_part_and_opens_the_rest_at_its_price() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.fill(buy, 10_000, 1_000, 0);
    // Long 1.000 bought at 100.00; one sell of 3.000 at 101.00 closes it (+1 USDT) and opens
    // 2.000 short at 101.00.
    let sell = d.pass(order(A, side::SELL, 10_100, 3_000));
    d.fill(sell, 10_100, 3_000, 0);
    assert_eq!(d.risk.position(A), -2_000);
    assert_eq!(d.risk.realised_pnl(A), quote(1));
    // Marked at the reference, 100.00: cash 303 - 100 = +203, the short worth -200: +3 USDT,
    // all of it A's.
    assert_eq!(d.risk.pnl(), quote(3));
    assert_eq!(
        (d.risk.instrument_pnl(A), d.risk.instrument_pnl(B)),
        (quote(3), 0)
    );
    // Buying the 2.000 back at 100.50 realises 2 x 0.50 more: flat, +2 USDT in all.
    let cover = d.pass(order(A, side::BUY, 10_050, 2_000));
    d.fill(cover, 10_050, 2_000, 0);
    assert_eq!(d.risk.position(A), 0);
    assert_eq!(d.risk.realised_pnl(A), quote(2));
    assert_eq!(d.risk.pnl(), quote(2));
}

#[test]
fn garbage_reports_are_ignored_and_fills_never_exceed_the_order() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    let ignored = d.risk.ignored_reports();
    // Zero and negative fills, an unknown exec type, another instrument.
    d.fill(buy, 10_000, 0, 1_000);
    d.fill(buy, 10_000, -5, 1_000);
    d.fill(buy, 0, 100, 1_000);
    d.report(buy, b'Z', None, 1_000);
    let mut other = ExecutionReport {
        client_order_id: buy,
        instrument_id: B,
        exec_type: exec_type::CANCELED,
        ..ExecutionReport::default()
    };
    d.risk.on_execution(&other, d.now_ns);
    assert_eq!(d.risk.ignored_reports(), ignored + 5);
    assert_eq!(d.risk.open_orders(), 1);
    // A fill larger than the order counts as the order.
    d.fill(buy, 10_000, 1_000_000, 0);
    assert_eq!(d.risk.position(A), 1_000);
    other.instrument_id = A;
    d.risk.on_execution(&other, d.now_ns);
    assert_eq!(d.risk.position(A), 1_000);
}

#[test]
fn replaces_are_checked_as_the_new_order_instead_of_the_original() {
    let mut d = desk();
    let first = d.pass(order(A, side::BUY, 9_900, 10_000));
    d.pass(order(A, side::BUY, 9_900, 10_000));
    // Worst long 20.000: a replace to 10.000 (same size) passes, to 10.010 does not.
    assert_eq!(
        why(&d
            .replace(first, order(A, side::BUY, 9_905, 10_010))
            .unwrap_err()),
        (RiskCheck::OrderQtyMax, 10_000, 10_010)
    );
    let mut l = limits();
    l.instruments[0].as_mut().unwrap().order_qty_max_units = 20_000;
    l.instruments[0].as_mut().unwrap().order_notional_max = quote(5_000);
    d.risk.replace_limits(l).unwrap();
    assert_eq!(
        why(&d
            .replace(first, order(A, side::BUY, 9_905, 10_010))
            .unwrap_err()),
        (RiskCheck::PositionMax, 20_000, 20_010)
    );
    // Checked like a new order: tick, collar...
    assert_eq!(
        why(&d
            .replace(first, order(A, side::BUY, 9_901, 100))
            .unwrap_err())
        .0,
        RiskCheck::PriceTick
    );
    assert_eq!(
        why(&d
            .replace(first, order(A, side::BUY, 9_000, 100))
            .unwrap_err())
        .0,
        RiskCheck::PriceCollar
    );
    // Down to 5.000 passes; until the venue answers, the larger (10.000) still counts.
    let r1 = d.replace(first, order(A, side::BUY, 9_905, 5_000)).unwrap();
    let open = d.risk.open_order(r1).unwrap();
    assert_eq!(
        (
            open.client_order_id,
            open.counted_qty,
            open.replaces_pending
        ),
        (first, 10_000, 1)
    );
    assert_eq!(d.risk.open_qty(A), (20_000, 0));
    // The venue confirms: the order is now r1 at 99.05 for 5.000.
    d.report(r1, exec_type::REPLACED, None, 5_000);
    let open = d.risk.open_order(r1).unwrap();
    assert_eq!(
        (
            open.client_order_id,
            open.px,
            open.leaves_qty,
            open.replaces_pending
        ),
        (r1, 9_905, 5_000, 0)
    );
    assert!(d.risk.open_order(first).is_none(), "the old id is gone");
    assert_eq!(d.risk.open_qty(A), (15_000, 0));
    // A refused replace leaves the order as it was.
    let r2 = d.replace(r1, order(A, side::BUY, 9_910, 8_000)).unwrap();
    assert_eq!(d.risk.open_qty(A), (18_000, 0));
    d.report(r2, exec_type::REJECTED, None, 0);
    let open = d.risk.open_order(r1).unwrap();
    assert_eq!(
        (open.px, open.leaves_qty, open.counted_qty),
        (9_905, 5_000, 5_000)
    );
    assert_eq!(d.risk.open_qty(A), (15_000, 0));
    // Unknown targets, another side or instrument.
    assert_eq!(
        why(&d
            .replace(first, order(A, side::BUY, 9_905, 100))
            .unwrap_err()),
        (RiskCheck::UnknownOrder, 0, first as i64)
    );
    assert_eq!(
        why(&d
            .replace(r1, order(A, side::SELL, 10_005, 100))
            .unwrap_err()),
        (RiskCheck::InvalidOrder, 0, invalid_field::TARGET)
    );
    assert_eq!(
        why(&d.cancel(B, r1).unwrap_err()),
        (RiskCheck::UnknownOrder, 0, r1 as i64)
    );
    assert_eq!(
        why(&d.cancel(A, 123_456).unwrap_err()),
        (RiskCheck::UnknownOrder, 0, 123_456)
    );
}

#[test]
fn chained_replaces_are_bounded_and_fills_follow_them() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 9_900, 1_000));
    let mut ids = vec![id];
    for i in 0..REPLACES_PENDING_MAX as i64 {
        let last = *ids.last().unwrap();
        ids.push(
            d.replace(last, order(A, side::BUY, 9_905 + 5 * i, 1_000 + 100 * i))
                .unwrap(),
        );
    }
    let last = *ids.last().unwrap();
    assert_eq!(
        why(&d
            .replace(last, order(A, side::BUY, 9_950, 100))
            .unwrap_err()),
        (
            RiskCheck::ReplacesPending,
            REPLACES_PENDING_MAX as i64,
            REPLACES_PENDING_MAX as i64 + 1
        )
    );
    // Every id finds the order; the largest quantity counts.
    for &i in &ids {
        assert_eq!(d.risk.open_order(i).unwrap().client_order_id, id);
    }
    assert_eq!(d.risk.open_qty(A), (1_200, 0));
    // The venue confirms the second replace: the first replace's id is gone with the original.
    d.report(ids[2], exec_type::REPLACED, None, 1_100);
    assert!(d.risk.open_order(ids[0]).is_none() && d.risk.open_order(ids[1]).is_none());
    assert_eq!(d.risk.open_order(ids[3]).unwrap().client_order_id, ids[2]);
    // A fill on the last replacement means the venue replaced it.
    d.fill(ids[3], 9_915, 200, 1_000);
    assert_eq!(d.risk.position(A), 200);
    let open = d.risk.open_order(ids[3]).unwrap();
    assert_eq!(
        (
            open.client_order_id,
            open.px,
            open.leaves_qty,
            open.replaces_pending
        ),
        (ids[3], 9_915, 1_000, 0)
    );
    assert_eq!(d.risk.open_qty(A), (1_000, 0));
    // A cancel's id finds the order too.
    let c = d.cancel(A, ids[3]).unwrap();
    assert!(d.risk.open_order(c).unwrap().cancel_pending);
    d.report(c, exec_type::CANCELED, None, 0);
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
    assert!(d.risk.open_order(c).is_none());
}

#[test]
fn a_replace_quantity_is_the_new_total_including_what_filled() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 9_900, 1_000));
    d.fill(id, 9_900, 600, 400);
    assert_eq!((d.risk.position(A), d.risk.open_qty(A)), (600, (400, 0)));
    // 500 in total when 600 have filled leaves nothing: refused.
    assert_eq!(
        why(&d.replace(id, order(A, side::BUY, 9_905, 500)).unwrap_err()),
        (RiskCheck::InvalidOrder, 0, invalid_field::QTY)
    );
    // 1.200 in total leaves 600 open, more than the 400 working: 600 counts.
    let r1 = d.replace(id, order(A, side::BUY, 9_905, 1_200)).unwrap();
    assert_eq!(d.risk.open_qty(A), (600, 0));
    // A fill of the working order lowers what the replace would leave by as much: the worst
    // case (position + open buys) does not move.
    d.fill(id, 9_900, 100, 300);
    assert_eq!((d.risk.position(A), d.risk.open_qty(A)), (700, (500, 0)));
    d.report(r1, exec_type::REPLACED, None, 0);
    let open = d.risk.open_order(r1).unwrap();
    assert_eq!((open.leaves_qty, open.cum_qty, open.px), (500, 700, 9_905));
}

#[test]
fn a_fill_of_a_replacement_that_leaves_nothing_is_ignored() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 9_900, 1_000));
    d.fill(id, 9_900, 600, 400);
    let r1 = d.replace(id, order(A, side::BUY, 9_905, 700)).unwrap();
    // 150 more fill before the replace lands: 700 in total is less than the 750 filled.
    d.fill(id, 9_900, 150, 250);
    assert_eq!(d.risk.open_qty(A), (250, 0));
    let ignored = d.risk.ignored_reports();
    d.fill(r1, 9_905, 100, 0);
    assert_eq!(d.risk.ignored_reports(), ignored + 1);
    assert_eq!((d.risk.position(A), d.risk.open_orders()), (750, 0));
    assert_eq!(d.risk.open_qty(A), (0, 0));
    // The table is intact: orders come and go as before.
    let ids: Vec<u64> = (0..4)
        .map(|i| d.pass(order(A, side::BUY, 9_900 + 5 * i, 100)))
        .collect();
    assert_eq!(d.risk.open_orders(), 4);
    for id in ids {
        d.report(id, exec_type::CANCELED, None, 0);
    }
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
}

/// A cancel the venue refuses comes back as REJECTED under the cancel's own id. It ends the
/// cancel, not the order: the order stays open with its quantity and exposure, and a new cancel
/// may go (issue 13: a `Role::of` that took it for the order would under-count exposure).
#[test]
fn a_refused_cancel_leaves_the_order_open() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.report(id, exec_type::NEW, None, 1_000);
    let cancel = d.cancel(A, id).unwrap();
    assert!(d.risk.open_order(id).unwrap().cancel_pending);
    let before = d.risk.exposure();
    d.report(cancel, exec_type::REJECTED, None, 0);
    let open = d.risk.open_order(id).expect("the order is still open");
    assert_eq!((open.leaves_qty, open.cancel_pending), (1_000, false));
    assert_eq!(d.risk.open_orders(), 1);
    assert_eq!(d.risk.open_qty(A), (1_000, 0));
    // 1.000 at 100.00: still 100 USDT long, as before the refusal.
    let after = d.risk.exposure();
    assert_eq!((after.gross, after.net_long), (quote(100), quote(100)));
    assert_eq!(
        (after.gross, after.net_long),
        (before.gross, before.net_long)
    );
    // The order can be cancelled again, and this time the venue confirms it.
    let again = d.cancel(A, id).unwrap();
    assert_ne!(again, cancel);
    d.report(id, exec_type::CANCELED, None, 0);
    assert!(d.risk.open_order(id).is_none());
    assert_eq!(d.risk.open_orders(), 0);
}

/// The order itself refused (a late REJECTED under its own id) while our cancel of it is
/// pending: the order is gone, whatever the cancel's fate.
#[test]
fn a_rejected_order_with_a_cancel_pending_leaves() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.cancel(A, id).unwrap();
    assert!(d.risk.open_order(id).unwrap().cancel_pending);
    d.report(id, exec_type::REJECTED, None, 0);
    assert!(d.risk.open_order(id).is_none());
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
}

#[test]
fn the_kill_switch_halts_new_orders_and_replaces_but_not_cancels() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 9_900, 100));
    d.risk.set_trading_state(TradingState::Halted);
    assert_eq!(d.risk.trading_state(), TradingState::Halted);
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 110)),
        (RiskCheck::Halted, 0, TradingState::Halted as i64)
    );
    assert_eq!(
        why(&d.replace(id, order(A, side::BUY, 9_905, 100)).unwrap_err()).0,
        RiskCheck::Halted
    );
    d.cancel(A, id).unwrap();
    d.send(OrderRequest {
        kind: order_kind::MASS_CANCEL,
        instrument_id: u32::MAX,
        ..OrderRequest::default()
    })
    .unwrap();
    d.risk.set_trading_state(TradingState::Active);
    d.pass(order(A, side::BUY, 9_905, 110));
}

#[test]
fn reduce_only_admits_what_cannot_increase_the_position() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 5_000));
    d.fill(buy, 10_000, 5_000, 0);
    let sell = d.pass(order(A, side::SELL, 10_100, 2_000));
    d.risk.set_trading_state(TradingState::ReduceOnly);
    // Long 5.000 with 2.000 to sell: selling 3.000 more reaches 0, 3.010 would flip.
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 100)),
        (RiskCheck::ReduceOnly, 0, 5_100)
    );
    assert_eq!(
        d.refuse(order(A, side::SELL, 10_100, 3_010)),
        (RiskCheck::ReduceOnly, 0, -10)
    );
    d.pass(order(A, side::SELL, 10_095, 3_000));
    // Flat instrument: nothing reduces.
    assert_eq!(
        d.refuse(order(B, side::SELL, 10_000, 100)).0,
        RiskCheck::ReduceOnly
    );
    // A replace that grows the open sell past flat is refused; one that shrinks it passes.
    assert_eq!(
        why(&d
            .replace(sell, order(A, side::SELL, 10_100, 2_010))
            .unwrap_err())
        .0,
        RiskCheck::ReduceOnly
    );
    d.replace(sell, order(A, side::SELL, 10_100, 1_000))
        .unwrap();
    d.cancel(A, sell).unwrap();
}

#[test]
fn max_loss_moves_the_state_at_one_unit_beyond_the_limit() {
    for loss_state in [TradingState::Halted, TradingState::ReduceOnly] {
        let mut l = limits();
        l.loss_state = loss_state;
        let mut d = desk_with(l);
        let buy = d.pass(order(A, side::BUY, 10_000, 10_000));
        d.fill(buy, 10_000, 10_000, 0);
        // 10.000 bought at 100.00 marked at 90.00: -100 USDT, exactly the limit.
        d.risk.on_market(A, 9_000, 9_000);
        assert_eq!(d.risk.pnl(), -quote(100));
        assert_eq!(d.risk.trading_state(), TradingState::Active);
        // 89.99: -100.1 USDT.
        d.risk.on_market(A, 8_998, 9_000);
        assert_eq!(d.risk.trading_state(), loss_state);
        assert_eq!(d.risk.pending_trip(), Some(RiskCheck::MaxLoss));
        // The first refused order carries the trip, the next the state.
        let (check, limit, value) = d.refuse(order(A, side::BUY, 9_000, 100));
        assert_eq!(
            (check, limit, value),
            (RiskCheck::MaxLoss, -10_000_000_000, -10_010_000_000)
        );
        let state_check = match loss_state {
            TradingState::Halted => RiskCheck::Halted,
            _ => RiskCheck::ReduceOnly,
        };
        assert_eq!(d.refuse(order(A, side::BUY, 9_000, 110)).0, state_check);
        // Reducing is allowed in reduce-only, nothing in halted.
        let reduce = d.send(order(A, side::SELL, 9_000, 5_000));
        assert_eq!(reduce.is_ok(), loss_state == TradingState::ReduceOnly);
    }
}

#[test]
fn max_loss_counts_realised_losses_on_fills() {
    let mut l = limits();
    l.loss_max = quote(5);
    let mut d = desk_with(l);
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.fill(buy, 10_000, 1_000, 0);
    let sell = d.pass(order(A, side::SELL, 9_900, 1_000));
    // Sold 1.000 at 99.50: realised -0.5 USDT... then the same at a far worse fill.
    d.fill(sell, 9_500, 1_000, 0);
    assert_eq!(d.risk.realised_pnl(A), -quote(5));
    assert_eq!(d.risk.trading_state(), TradingState::Active);
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.fill(buy, 10_000, 1_000, 0);
    let sell = d.pass(order(A, side::SELL, 9_900, 10));
    d.fill(sell, 9_990, 10, 0);
    assert_eq!(d.risk.trading_state(), TradingState::Halted);
}

#[test]
fn repeated_executions_halt_trading() {
    let mut l = limits();
    l.fill_rate = RateLimit {
        count_max: 3,
        window_ns: 1_000_000_000,
    };
    let mut d = desk_with(l);
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    for _ in 0..3 {
        d.fill(buy, 10_000, 100, 1_000);
    }
    assert_eq!(d.risk.trading_state(), TradingState::Active);
    d.fill(buy, 10_000, 100, 1_000);
    assert_eq!(d.risk.trading_state(), TradingState::Halted);
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 100)),
        (RiskCheck::RepeatedExecution, 3, 4)
    );
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 110)).0,
        RiskCheck::Halted
    );
    d.cancel(A, buy).unwrap();
    assert_eq!(d.risk.rejects_of(RiskCheck::RepeatedExecution), 1);
    // The operator resumes.
    d.risk.set_trading_state(TradingState::Active);
    assert_eq!(d.risk.pending_trip(), None);
    d.pass(order(A, side::BUY, 10_000, 120));
}

/// The first trip into a state is the one journaled: a second trip into the same state (here
/// repeated executions after a max-loss halt) does not overwrite its reason, and the first
/// refused order still carries the max loss with the loss it tripped at (issue 13).
#[test]
fn a_second_trip_into_the_same_state_keeps_the_first_reason() {
    let mut l = limits();
    l.loss_state = TradingState::Halted;
    l.fill_rate = RateLimit {
        count_max: 3,
        window_ns: 1_000_000_000,
    };
    let mut d = desk_with(l);
    let buy = d.pass(order(A, side::BUY, 10_000, 10_000));
    let mut leaves = 10_000;
    for _ in 0..3 {
        leaves -= 2_500;
        d.fill(buy, 10_000, 2_500, leaves);
    }
    // 7.500 bought at 100.00, marked at 86.00: -105 USDT, beyond the 100 USDT limit.
    d.risk.on_market(A, 8_600, 8_600);
    assert_eq!(d.risk.trading_state(), TradingState::Halted);
    assert_eq!(d.risk.pending_trip(), Some(RiskCheck::MaxLoss));
    // The fourth fill in the window would trip repeated executions into the same state.
    d.fill(buy, 10_000, 2_500, 0);
    assert_eq!(d.risk.pending_trip(), Some(RiskCheck::MaxLoss));
    assert_eq!(
        d.refuse(order(A, side::SELL, 8_600, 100)),
        (RiskCheck::MaxLoss, -10_000_000_000, -10_500_000_000)
    );
    assert_eq!(
        d.refuse(order(A, side::SELL, 8_600, 110)).0,
        RiskCheck::Halted
    );
}

/// After a fill the order's leaves are the smaller of what risk had open less the fill and what
/// the venue says is left (never below zero): a venue that says more is left cannot reopen
/// exposure risk never approved, one that says less (it cancelled part) is believed, and a
/// negative figure closes the order (issue 13: the clamp had no test of its own).
#[test]
fn leaves_after_a_fill_are_clamped_to_what_was_open() {
    let mut d = desk();
    let buy = d.pass(order(A, side::BUY, 10_000, 1_000));
    // 0.300 filled; the venue claims 5.000 left: 0.700 is.
    d.fill(buy, 10_000, 300, 5_000);
    assert_eq!(d.risk.open_order(buy).unwrap().leaves_qty, 700);
    assert_eq!(d.risk.open_qty(A), (700, 0));
    // 0.100 filled; the venue says 0.200 left (it cancelled 0.400): 0.200 is.
    d.fill(buy, 10_000, 100, 200);
    assert_eq!(d.risk.open_order(buy).unwrap().leaves_qty, 200);
    assert_eq!(d.risk.open_qty(A), (200, 0));
    assert_eq!(d.risk.position(A), 400);
    // 0.100 filled; a negative figure left: the order is closed.
    d.fill(buy, 10_000, 100, -5);
    assert!(d.risk.open_order(buy).is_none());
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
    assert_eq!(d.risk.position(A), 500);
}

/// REPLACED reports (issue 13: their edges had no test). The venue may report under the
/// original id: with a replace pending that commits the oldest one, without one it is garbage.
/// The leaves after a replace are the venue's when it gives them (never more than the replace
/// leaves open: its quantity less what filled) and, at zero (not given), what the replace
/// leaves open.
#[test]
fn replaced_reports_under_either_id_and_their_leaves() {
    // Under the original id, a replace pending: 1.000 at 100.00 becomes 2.000 at 99.50.
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.report(id, exec_type::NEW, None, 1_000);
    let r = d.replace(id, order(A, side::BUY, 9_950, 2_000)).unwrap();
    d.report(id, exec_type::REPLACED, None, 2_000);
    assert!(d.risk.open_order(id).is_none());
    let o = d
        .risk
        .open_order(r)
        .expect("the replacement is the order now");
    assert_eq!((o.px, o.leaves_qty), (9_950, 2_000));
    assert_eq!(d.risk.open_qty(A), (2_000, 0));
    // Under the original id again, nothing pending: ignored, nothing changes.
    let ignored = d.risk.ignored_reports();
    d.report(r, exec_type::REPLACED, None, 500);
    assert_eq!(d.risk.ignored_reports(), ignored + 1);
    assert_eq!(d.risk.open_order(r).unwrap().leaves_qty, 2_000);

    // The leaves a REPLACED gives: fewer than the replace leaves open, more, or zero.
    for (reported, leaves) in [(700, 700), (5_000, 1_600), (0, 1_600)] {
        let mut d = desk();
        let id = d.pass(order(A, side::BUY, 10_000, 1_000));
        d.fill(id, 10_000, 400, 600);
        // The new total is 2.000, 0.400 of it filled: 1.600 open.
        let r = d.replace(id, order(A, side::BUY, 10_000, 2_000)).unwrap();
        d.report(r, exec_type::REPLACED, None, reported);
        let o = d.risk.open_order(r).unwrap();
        assert_eq!(o.leaves_qty, leaves, "REPLACED with {reported} left");
        assert_eq!(d.risk.open_qty(A), (leaves, 0));
        assert_eq!(d.risk.position(A), 400);
    }

    // A replace that leaves nothing open once it takes effect: 1.000 with 0.400 filled is cut
    // to 0.500, and 0.100 more fills before the venue confirms. The order is done: it leaves.
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 10_000, 1_000));
    d.fill(id, 10_000, 400, 600);
    let r = d.replace(id, order(A, side::BUY, 10_000, 500)).unwrap();
    d.fill(id, 10_000, 100, 500);
    d.report(r, exec_type::REPLACED, None, 0);
    assert!(d.risk.open_order(id).is_none() && d.risk.open_order(r).is_none());
    assert_eq!((d.risk.open_orders(), d.risk.open_qty(A)), (0, (0, 0)));
    assert_eq!(d.risk.position(A), 500);
}

/// A replace the venue refuses in the middle of a chain goes alone: the ones before and after it
/// stay pending, in order, and the worst-case quantity forgets only its size (issue 13: a
/// refusal mid-chain, and the pending count after it, had no test).
#[test]
fn a_refused_replace_mid_chain_leaves_the_others_pending() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 9_900, 1_000));
    let r1 = d.replace(id, order(A, side::BUY, 9_905, 1_100)).unwrap();
    let r2 = d.replace(r1, order(A, side::BUY, 9_910, 1_500)).unwrap();
    let r3 = d.replace(r2, order(A, side::BUY, 9_915, 1_200)).unwrap();
    assert_eq!(d.risk.open_order(id).unwrap().replaces_pending, 3);
    // The largest of the original and the pending quantities counts: 1.500.
    assert_eq!(d.risk.open_qty(A), (1_500, 0));
    d.report(r2, exec_type::REJECTED, None, 0);
    let o = d.risk.open_order(id).unwrap();
    assert_eq!((o.client_order_id, o.replaces_pending), (id, 2));
    assert!(d.risk.open_order(r2).is_none());
    // Without r2's 1.500, r3's 1.200 is the largest.
    assert_eq!(d.risk.open_qty(A), (1_200, 0));
    // The venue confirms r3: r1 goes with the original, nothing is pending.
    d.report(r3, exec_type::REPLACED, None, 1_200);
    assert!(d.risk.open_order(id).is_none() && d.risk.open_order(r1).is_none());
    let o = d.risk.open_order(r3).unwrap();
    assert_eq!(
        (o.client_order_id, o.px, o.leaves_qty, o.replaces_pending),
        (r3, 9_915, 1_200, 0)
    );
    assert_eq!(d.risk.open_qty(A), (1_200, 0));
}
