//! The simulated venue's matching engine on a real instrument (NKNUSDT from the corpus
//! exchangeInfo: tick 0.0001, step 1, min qty 1, min notional 10 USDT): filters, price-time
//! priority, partial fills, IOC and FOK, cancel, replace and mass cancel, the feed's level
//! updates with increasing update ids, and a random order flow that keeps the book uncrossed
//! and every quantity accounted for.

use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::records::{ord_type, side, time_in_force};
use levibot_sim::matching::{
    MarketUpdate, MatchingEngine, NewOrder, OrderEvent, Outcome, RejectReason,
};

/// 1 tick of NKNUSDT in price units (10^-8 USDT).
const TICK: i64 = 10_000;
/// 1 lot (1 NKN) in quantity units.
const LOT: i64 = 100_000_000;

fn engine() -> (MatchingEngine, Instrument) {
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
    let nkn = table.get(0).unwrap().clone();
    (MatchingEngine::new(&[&nkn], 1_000).unwrap(), nkn)
}

fn limit(owner: u32, id: u64, order_side: u8, ticks: i64, lots: i64) -> NewOrder {
    NewOrder {
        owner,
        client_order_id: id,
        instrument_id: 0,
        side: order_side,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px: ticks * TICK,
        qty: lots * LOT,
        post_only: false,
    }
}

fn events_of(out: &Outcome, owner: u32, id: u64) -> Vec<OrderEvent> {
    out.notices
        .iter()
        .filter(|n| n.owner == owner && n.client_order_id == id)
        .map(|n| n.event)
        .collect()
}

#[test]
fn filters_refuse_what_the_exchange_would() {
    let (mut venue, _) = engine();
    let cases = [
        (
            NewOrder {
                px: 3_500 * TICK + 1,
                ..limit(1, 1, side::BUY, 0, 100)
            },
            RejectReason::PriceOffTick,
        ),
        (
            NewOrder {
                qty: 100 * LOT + 1,
                ..limit(1, 2, side::BUY, 3_500, 0)
            },
            RejectReason::QtyOffLot,
        ),
        (limit(1, 3, side::BUY, 3_500, 0), RejectReason::QtyOffLot),
        // 28 NKN at 0.35 = 9.8 USDT < 10.
        (
            limit(1, 4, side::BUY, 3_500, 28),
            RejectReason::NotionalTooSmall,
        ),
        (
            NewOrder {
                side: 7,
                ..limit(1, 5, side::BUY, 3_500, 100)
            },
            RejectReason::Unsupported,
        ),
        (
            NewOrder {
                instrument_id: 9,
                ..limit(1, 6, side::BUY, 3_500, 100)
            },
            RejectReason::UnknownInstrument,
        ),
        (
            limit(1, 7, side::BUY, 20_000_000, 100),
            RejectReason::PriceOutOfRange,
        ),
    ];
    for (order, reason) in cases {
        let out = venue.submit(order);
        assert_eq!(out.notices.len(), 1, "{order:?}");
        assert_eq!(
            out.notices[0].event,
            OrderEvent::Rejected { reason },
            "{order:?}"
        );
        assert!(out.market.is_empty());
    }
    // 29 NKN at 0.35 = 10.15 USDT: accepted, and rests.
    let out = venue.submit(limit(1, 8, side::BUY, 3_500, 29));
    assert!(matches!(out.notices[0].event, OrderEvent::Accepted { .. }));
    assert_eq!(venue.top(0), (Some(3_500 * TICK), None));
    // The same client order id again, while working: a duplicate.
    let out = venue.submit(limit(1, 8, side::BUY, 3_400, 29));
    assert_eq!(
        out.notices[0].event,
        OrderEvent::Rejected {
            reason: RejectReason::DuplicateClientOrderId
        }
    );
}

#[test]
fn price_time_priority_partial_fills_and_feed_updates() {
    let (mut venue, _) = engine();
    let mut last_update = 1_000;
    let mut check_ids = |out: &Outcome| {
        for m in &out.market {
            if let MarketUpdate::Level { update_id, .. } = m {
                assert_eq!(*update_id, last_update + 1, "one id per change, in order");
                last_update = *update_id;
            }
        }
    };
    // Two sellers at 0.3510 (A first, then B), one at 0.3520.
    for (owner, id, ticks, lots) in [(1, 1, 3_510, 100), (2, 1, 3_510, 50), (3, 1, 3_520, 100)] {
        let out = venue.submit(limit(owner, id, side::SELL, ticks, lots));
        check_ids(&out);
    }
    assert_eq!(
        venue.depth(0, 5).unwrap().1,
        vec![(3_510 * TICK, 150 * LOT), (3_520 * TICK, 100 * LOT)]
    );
    // A buyer of 170 through 0.3520: A's 100, then B's 50 (time priority), then 20 of C at 0.3520.
    let out = venue.submit(limit(9, 1, side::BUY, 3_520, 170));
    check_ids(&out);
    let fills: Vec<(u32, i64, i64)> = out
        .notices
        .iter()
        .filter_map(|n| match n.event {
            OrderEvent::Filled {
                last_px, last_qty, ..
            } if n.owner != 9 => Some((n.owner, last_px / TICK, last_qty / LOT)),
            _ => None,
        })
        .collect();
    assert_eq!(fills, vec![(1, 3_510, 100), (2, 3_510, 50), (3, 3_520, 20)]);
    let taker = events_of(&out, 9, 1);
    assert!(matches!(taker[0], OrderEvent::Accepted { .. }));
    assert!(matches!(
        taker.last().unwrap(),
        OrderEvent::Filled { cum_qty, leaves_qty: 0, .. } if *cum_qty == 170 * LOT
    ));
    let trades = out
        .market
        .iter()
        .filter(|m| matches!(m, MarketUpdate::Trade { .. }))
        .count();
    assert_eq!(trades, 3);
    assert_eq!(venue.depth(0, 5).unwrap().1, vec![(3_520 * TICK, 80 * LOT)]);
    assert_eq!(venue.update_id(0), Some(last_update));
}

#[test]
fn ioc_fok_cancel_replace_and_mass_cancel() {
    let (mut venue, _) = engine();
    venue.submit(limit(1, 1, side::SELL, 3_510, 100));
    // IOC for 150: 100 fill, the rest is cancelled, nothing rests.
    let ioc = NewOrder {
        time_in_force: time_in_force::IOC,
        ..limit(2, 1, side::BUY, 3_510, 150)
    };
    let out = venue.submit(ioc);
    assert!(matches!(
        events_of(&out, 2, 1).last().unwrap(),
        OrderEvent::Canceled { cum_qty, .. } if *cum_qty == 100 * LOT
    ));
    assert_eq!(venue.top(0), (None, None));
    // FOK that cannot fill entirely: rejected, the book untouched.
    venue.submit(limit(1, 2, side::SELL, 3_510, 100));
    let fok = NewOrder {
        time_in_force: time_in_force::FOK,
        ..limit(2, 2, side::BUY, 3_510, 150)
    };
    let out = venue.submit(fok);
    assert_eq!(
        events_of(&out, 2, 2),
        vec![OrderEvent::Rejected {
            reason: RejectReason::WouldNotFill
        }]
    );
    assert_eq!(venue.top(0), (None, Some(3_510 * TICK)));
    // Replace the resting sell to 0.3530 x 80 under id 3, then cancel it.
    let out = venue.replace(2, limit(1, 3, side::SELL, 3_530, 80));
    assert!(matches!(
        events_of(&out, 1, 3)[0],
        OrderEvent::Replaced { orig_client_order_id: 2, leaves_qty, .. } if leaves_qty == 80 * LOT
    ));
    assert_eq!(venue.depth(0, 5).unwrap().1, vec![(3_530 * TICK, 80 * LOT)]);
    let out = venue.cancel(1, 4, 2);
    assert!(matches!(
        out.notices[0].event,
        OrderEvent::CancelRejected {
            orig_client_order_id: 2,
            ..
        }
    ));
    let out = venue.cancel(1, 4, 3);
    assert!(matches!(out.notices[0].event, OrderEvent::Canceled { .. }));
    assert_eq!(
        out.notices[0].client_order_id, 3,
        "reported under the cancelled order"
    );
    assert_eq!(venue.top(0), (None, None));
    // Mass cancel takes only the owner's orders.
    for (owner, id, ticks) in [(1, 10, 3_400), (1, 11, 3_410), (2, 10, 3_420)] {
        venue.submit(limit(owner, id, side::BUY, ticks, 100));
    }
    let out = venue.mass_cancel(1, None);
    assert_eq!(out.notices.len(), 2);
    assert_eq!(
        venue.depth(0, 5).unwrap().0,
        vec![(3_420 * TICK, 100 * LOT)]
    );
    // A replace that crosses the book trades at once.
    venue.submit(limit(3, 1, side::SELL, 3_500, 100));
    let out = venue.replace(10, limit(2, 12, side::BUY, 3_500, 100));
    assert!(
        events_of(&out, 2, 12)
            .iter()
            .any(|e| matches!(e, OrderEvent::Filled { leaves_qty: 0, .. }))
    );
}

#[test]
fn random_flow_never_crosses_and_conserves_quantity() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut venue, _) = engine();
    let mut bought = 0i64;
    let mut sold = 0i64;
    for id in 1..20_000u64 {
        let owner = rng.u32(0..4);
        let order_side = if rng.bool() { side::BUY } else { side::SELL };
        let out = match rng.u8(0..10) {
            0 => venue.cancel(owner, id, rng.u64(1..=id)),
            1 => venue.replace(
                rng.u64(1..=id),
                limit(
                    owner,
                    id,
                    order_side,
                    rng.i64(3_480..3_520),
                    rng.i64(29..200),
                ),
            ),
            _ => {
                let mut order = limit(
                    owner,
                    id,
                    order_side,
                    rng.i64(3_480..3_520),
                    rng.i64(29..200),
                );
                order.time_in_force =
                    [time_in_force::GTC, time_in_force::IOC, time_in_force::FOK][rng.usize(0..3)];
                venue.submit(order)
            }
        };
        for n in &out.notices {
            if let OrderEvent::Filled { last_qty, .. } = n.event {
                if n.side == side::BUY {
                    bought += last_qty;
                } else {
                    sold += last_qty;
                }
            }
        }
        if let (Some(bid), Some(ask)) = venue.top(0) {
            assert!(
                bid < ask,
                "seed {seed}: crossed at order {id}: {bid} >= {ask}"
            );
        }
    }
    assert_eq!(bought, sold, "seed {seed}: every fill has two sides");
    assert!(bought > 0, "seed {seed}: nothing traded");
}

#[test]
fn a_post_only_order_that_would_take_is_refused_and_one_that_would_not_rests() {
    let (mut venue, _) = engine();
    // A resting ask at 0.3501 from another owner.
    let out = venue.submit(limit(2, 1, side::SELL, 3_501, 100));
    assert!(matches!(
        events_of(&out, 2, 1)[..],
        [OrderEvent::Accepted { .. }]
    ));
    let post_only = |id, ticks| NewOrder {
        post_only: true,
        ..limit(1, id, side::BUY, ticks, 100)
    };
    // At the ask it would take: refused, nothing traded, the ask still there.
    let out = venue.submit(post_only(10, 3_501));
    assert_eq!(
        events_of(&out, 1, 10),
        vec![OrderEvent::Rejected {
            reason: RejectReason::WouldTakeLiquidity
        }]
    );
    assert!(out.market.is_empty(), "{:?}", out.market);
    assert_eq!(venue.working_order_ids_of(2), vec![1]);
    // A tick under it would not: it rests as a maker.
    let out = venue.submit(post_only(11, 3_500));
    assert!(matches!(
        events_of(&out, 1, 11)[..],
        [OrderEvent::Accepted { .. }]
    ));
    assert_eq!(venue.working_order_ids_of(1), vec![11]);
    // Replacing it post-only onto the ask is refused whole: the order works on, unchanged.
    let out = venue.replace(11, post_only(12, 3_501));
    assert!(
        matches!(
            events_of(&out, 1, 11)[..],
            [OrderEvent::CancelRejected {
                reason: RejectReason::WouldTakeLiquidity,
                replace: true,
                ..
            }]
        ) || matches!(
            events_of(&out, 1, 12)[..],
            [OrderEvent::CancelRejected {
                reason: RejectReason::WouldTakeLiquidity,
                replace: true,
                ..
            }]
        ),
        "{:?}",
        out.notices
    );
    assert_eq!(venue.working_order_ids_of(1), vec![11]);
    // Without the flag the same order takes.
    let out = venue.submit(limit(1, 13, side::BUY, 3_501, 100));
    assert!(!out.market.is_empty());
}
