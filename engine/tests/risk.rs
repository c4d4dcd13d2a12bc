//! Pre-trade risk: every check and its edges (exactly at the limit passes, one tick, lot or unit
//! beyond fails), self-trade prevention, and random input that never panics. After the order
//! (reports, replaces, trading states): `risk_reports.rs`; limits as values: `risk_limits.rs`.

use levibot_engine::risk::{
    INSTRUMENT_NOTIONAL_MAX, OPEN_ORDERS_MAX, RATE_WINDOW_MAX, RISK_INSTRUMENTS_MAX, RateLimit,
    RiskCheck, RiskEngine, TradingState, invalid_field, quote,
};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, exec_type, ord_type, order_kind, side, time_in_force,
};

use crate::common::desk::{desk, desk_with, market, order, why};
use crate::common::{A, B, limits};

#[test]
fn check_codes_are_stable_and_named() {
    assert_eq!(RiskCheck::COUNT, RiskCheck::ALL.len());
    for (i, check) in RiskCheck::ALL.iter().enumerate() {
        assert_eq!(
            check.code() as usize,
            i + 1,
            "{check:?}: codes are 1.. in order"
        );
        assert_eq!(check.index(), i);
        assert_eq!(RiskCheck::from_code(check.code()), Some(*check));
        let name = check.name();
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
        assert_eq!(
            RiskCheck::ALL.iter().filter(|c| c.name() == name).count(),
            1
        );
        // What an operator reads (a reject's reason in logs and levictl) is the same name.
        assert_eq!(check.to_string(), name);
    }
    assert_eq!(RiskCheck::from_code(0), None);
    assert_eq!(RiskCheck::from_code(RiskCheck::COUNT as u16 + 1), None);
    // Journaled codes never change.
    assert_eq!(RiskCheck::Halted.code(), 3);
    assert_eq!(RiskCheck::PriceCollar.code(), 16);
    assert_eq!(RiskCheck::MaxLoss.code(), 27);
    assert_eq!(RiskCheck::ReplacesPending.code(), 29);
}

#[test]
fn an_order_within_every_limit_passes_and_is_recorded() {
    let mut d = desk();
    let id = d.pass(order(A, side::BUY, 10_000, 1_000));
    let open = d.risk.open_order(id).unwrap();
    assert_eq!(
        (open.px, open.leaves_qty, open.acked),
        (10_000, 1_000, false)
    );
    assert_eq!(d.risk.open_orders(), 1);
    assert_eq!(d.risk.open_orders_of(A), 1);
    assert_eq!(d.risk.open_qty(A), (1_000, 0));
    // 1.000 at 100.00 = 100 USDT of worst-case long exposure.
    let e = d.risk.exposure();
    assert_eq!(
        (e.gross, e.net_long, e.net_short),
        (quote(100), quote(100), 0)
    );
    assert_eq!(d.risk.rejects().iter().sum::<u64>(), 0);
    d.report(id, exec_type::NEW, None, 1_000);
    assert!(d.risk.open_order(id).unwrap().acked);
}

#[test]
fn malformed_requests_are_refused_naming_the_field() {
    let mut d = desk();
    let ok = order(A, side::BUY, 10_000, 1_000);
    let cases = [
        (OrderRequest { kind: 9, ..ok }, invalid_field::KIND),
        (OrderRequest { side: 0, ..ok }, invalid_field::SIDE),
        (OrderRequest { ord_type: 7, ..ok }, invalid_field::ORD_TYPE),
        (
            OrderRequest {
                time_in_force: 0,
                ..ok
            },
            invalid_field::TIME_IN_FORCE,
        ),
        (OrderRequest { qty: 0, ..ok }, invalid_field::QTY),
        (OrderRequest { qty: -10, ..ok }, invalid_field::QTY),
        (OrderRequest { px: 0, ..ok }, invalid_field::PX),
        (OrderRequest { px: -5, ..ok }, invalid_field::PX),
    ];
    for (o, field) in cases {
        assert_eq!(d.refuse(o), (RiskCheck::InvalidOrder, 0, field), "{o:?}");
    }
    assert_eq!(
        d.risk.rejects_of(RiskCheck::InvalidOrder),
        cases.len() as u64
    );
    assert_eq!(d.risk.open_orders(), 0);
}

#[test]
fn unknown_instruments_are_refused() {
    let mut d = desk();
    let max = RISK_INSTRUMENTS_MAX as i64;
    assert_eq!(
        d.refuse(order(2, side::BUY, 10_000, 1_000)),
        (RiskCheck::UnknownInstrument, max, 2)
    );
    assert_eq!(
        d.refuse(order(u32::MAX, side::BUY, 10_000, 1_000)).0,
        RiskCheck::UnknownInstrument
    );
    // The edges of the table: the last slot (not configured) and the first id past it, which
    // an off-by-one in the bound would index out of bounds on the hot path (issue 13).
    for id in [max - 1, max] {
        assert_eq!(
            d.refuse(order(id as u32, side::BUY, 10_000, 1_000)),
            (RiskCheck::UnknownInstrument, max, id)
        );
    }
    assert_eq!(
        d.cancel(7, 1).map_err(|r| why(&r).0),
        Err(RiskCheck::UnknownInstrument)
    );
}

#[test]
fn prices_off_the_tick_and_quantities_off_the_lot_are_refused() {
    let mut d = desk();
    d.pass(order(A, side::BUY, 10_005, 1_010));
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_001, 1_000)),
        (RiskCheck::PriceTick, 5, 10_001)
    );
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_004, 1_000)),
        (RiskCheck::PriceTick, 5, 10_004)
    );
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 1_005)),
        (RiskCheck::QtyLot, 10, 1_005)
    );
    // Market orders have no price to check.
    d.pass(market(A, side::BUY, 1_000));
}

#[test]
fn quantity_filters_edges() {
    let mut l = limits();
    let a = l.instruments[0].as_mut().unwrap();
    a.qty_min_units = 200;
    a.qty_max_units = 5_000;
    a.notional_min = quote(1);
    let mut d = desk_with(l);
    d.pass(order(A, side::BUY, 10_000, 200));
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 190)),
        (RiskCheck::QtyMin, 200, 190)
    );
    d.pass(order(A, side::BUY, 10_000, 5_000));
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 5_010)),
        (RiskCheck::QtyMax, 5_000, 5_010)
    );
}

#[test]
fn price_filters_edges_and_zero_means_no_limit() {
    let mut l = limits();
    let a = l.instruments[0].as_mut().unwrap();
    a.collar_bps = 10_000;
    a.price_min_units = 9_000;
    a.price_max_units = 11_000;
    a.notional_min = 0;
    let b = l.instruments[1].as_mut().unwrap();
    b.collar_bps = 10_000;
    b.price_min_units = 0;
    b.price_max_units = 0;
    b.notional_min = 0;
    let mut d = desk_with(l);
    d.pass(order(A, side::BUY, 9_000, 100));
    assert_eq!(
        d.refuse(order(A, side::BUY, 8_995, 100)),
        (RiskCheck::PriceMin, 9_000, 8_995)
    );
    d.pass(order(A, side::SELL, 11_000, 100));
    assert_eq!(
        d.refuse(order(A, side::SELL, 11_005, 100)),
        (RiskCheck::PriceMax, 11_000, 11_005)
    );
    // No price filter on B: only the (100%) collar bounds it.
    d.pass(order(B, side::BUY, 5, 10));
    d.pass(order(B, side::SELL, 20_000, 10));
}

#[test]
fn min_notional_edges_limit_and_market() {
    let mut l = limits();
    l.instruments[0].as_mut().unwrap().notional_min = quote(10);
    let mut d = desk_with(l);
    // 100.00 x 1.000... the minimum is px x qty >= 10^6 (10 USDT): 100.00 x 0.100.
    d.pass(order(A, side::BUY, 10_000, 100));
    let (check, limit, value) = d.refuse(order(A, side::BUY, 10_000, 90));
    // Notionals in rejects are in 10^-8 USDT.
    assert_eq!(
        (check, limit, value),
        (RiskCheck::NotionalMin, 1_000_000_000, 900_000_000)
    );
    // 99.00 x 0.100 = 9.9 USDT.
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 100)).0,
        RiskCheck::NotionalMin
    );
    // A market order is valued at the reference (100.00).
    d.pass(market(A, side::BUY, 100));
    assert_eq!(d.refuse(market(A, side::BUY, 90)).0, RiskCheck::NotionalMin);
}

#[test]
fn the_collar_is_inclusive_and_needs_a_reference() {
    let mut risk = RiskEngine::new(limits()).unwrap();
    let mut o = order(A, side::BUY, 10_000, 1_000);
    o.client_order_id = 1;
    let r = risk.check(&o, 1).unwrap_err();
    assert_eq!(why(&r), (RiskCheck::NoReferencePrice, 0, 0));
    o.client_order_id = 2;
    o.ord_type = ord_type::MARKET;
    o.px = 0;
    assert_eq!(
        why(&risk.check(&o, 2).unwrap_err()).0,
        RiskCheck::NoReferencePrice,
        "a market order needs a reference too"
    );
    assert_eq!(risk.reference_px(A), None);

    let mut d = desk();
    assert_eq!(d.risk.reference_px(A), Some(10_000));
    // 1% of 100.00: 99.00 ..= 101.00.
    d.pass(order(A, side::BUY, 10_100, 100));
    d.pass(order(A, side::BUY, 9_900, 110));
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_105, 100)),
        (RiskCheck::PriceCollar, 100, 105)
    );
    assert_eq!(
        d.refuse(order(A, side::SELL, 9_895, 100)),
        (RiskCheck::PriceCollar, 100, 105)
    );
    // One side of the book is enough; none keeps the last reference.
    d.risk.on_market(A, 0, 12_000);
    assert_eq!(d.risk.reference_px(A), Some(12_000));
    d.risk.on_market(A, 0, 0);
    assert_eq!(d.risk.reference_px(A), Some(12_000));
    d.risk.on_market(A, 11_000, 0);
    assert_eq!(d.risk.reference_px(A), Some(11_000));
    d.risk.on_market(A, 11_000, 11_001);
    assert_eq!(d.risk.reference_px(A), Some(11_000), "mid rounded down");
    d.pass(order(A, side::SELL, 11_110, 100));
    assert_eq!(
        d.refuse(order(A, side::SELL, 11_115, 100)).0,
        RiskCheck::PriceCollar
    );
}

#[test]
fn max_order_quantity_and_notional_edges() {
    let mut d = desk();
    // 10.000 at 99.00: within the quantity and notional limits.
    d.pass(order(A, side::BUY, 9_900, 10_000));
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 10_010)),
        (RiskCheck::OrderQtyMax, 10_000, 10_010)
    );
    d.pass(order(B, side::BUY, 10_000, 10_000));
    // 10.000 at 100.05: 1,000.5 USDT, over 1,000.
    assert_eq!(
        d.refuse(order(B, side::SELL, 10_005, 10_000)),
        (
            RiskCheck::OrderNotionalMax,
            100_000_000_000,
            100_050_000_000
        )
    );
}

#[test]
fn position_limit_counts_open_orders_and_fills_both_ways() {
    let mut d = desk();
    let first = d.pass(order(A, side::BUY, 9_900, 10_000));
    d.pass(order(A, side::BUY, 9_900, 9_990));
    // Worst long 19.990; one more lot makes 20.000 (the limit), two make 20.010.
    d.pass(order(A, side::BUY, 9_900, 10));
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 10)),
        (RiskCheck::PositionMax, 20_000, 20_010)
    );
    // A fill moves quantity from the open order to the position: the worst case is unchanged.
    d.fill(first, 9_900, 4_000, 6_000);
    assert_eq!(d.risk.position(A), 4_000);
    assert_eq!(d.risk.open_qty(A), (16_000, 0));
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 10)).0,
        RiskCheck::PositionMax
    );
    // Short side: worst short = 4.000 - open sells. Sells down to -20.000 pass.
    d.pass(order(A, side::SELL, 10_000, 10_000));
    d.pass(order(A, side::SELL, 10_000, 10_000));
    d.pass(order(A, side::SELL, 10_000, 4_000));
    assert_eq!(
        d.refuse(order(A, side::SELL, 10_000, 10)),
        (RiskCheck::PositionMax, 20_000, 20_010)
    );
}

#[test]
fn gross_and_net_exposure_across_instruments() {
    let mut d = desk();
    // A: worst long 20.000 = 2,000 USDT.
    d.pass(order(A, side::BUY, 9_900, 10_000));
    d.pass(order(A, side::BUY, 9_900, 10_000));
    // B long 5.000: net 2,500 = the limit.
    let b = d.pass(order(B, side::BUY, 9_900, 5_000));
    assert_eq!(d.risk.exposure().net(), quote(2_500));
    let (check, limit, value) = d.refuse(order(B, side::BUY, 9_900, 10));
    assert_eq!(
        (check, limit, value),
        (RiskCheck::NetExposure, 250_000_000_000, 250_100_000_000)
    );
    // Replace B's buy by a sell: gross 2,000 + 1,000 = 3,000 (the limit), net 2,000.
    d.report(b, exec_type::CANCELED, None, 0);
    d.pass(order(B, side::SELL, 10_000, 10_000));
    let e = d.risk.exposure();
    assert_eq!(
        (e.gross, e.net_long, e.net_short),
        (quote(3_000), quote(2_000), quote(-1_000))
    );
    assert_eq!(
        d.refuse(order(B, side::SELL, 10_000, 10)).0,
        RiskCheck::GrossExposure
    );
    // Exposure follows the reference: at 50.00 everything is worth half.
    d.risk.on_market(A, 5_000, 5_000);
    d.risk.on_market(B, 5_000, 5_000);
    assert_eq!(d.risk.exposure().gross, quote(1_500));
    d.pass(order(B, side::SELL, 5_050, 10));
}

#[test]
fn net_exposure_bounds_the_short_side_too() {
    let mut d = desk();
    // A: worst short -20.000 = -2,000 USDT; B short 5.000: net short 2,500 = the limit. Nothing
    // is long: the net exposure is the short side's, made positive.
    d.pass(order(A, side::SELL, 10_000, 10_000));
    d.pass(order(A, side::SELL, 10_000, 10_000));
    d.pass(order(B, side::SELL, 10_000, 5_000));
    let e = d.risk.exposure();
    assert_eq!((e.net_long, e.net_short), (0, quote(-2_500)));
    assert_eq!(e.net(), quote(2_500));
    assert_eq!(
        d.refuse(order(B, side::SELL, 10_000, 10)),
        (RiskCheck::NetExposure, 250_000_000_000, 250_100_000_000)
    );
}

#[test]
fn open_order_limits_total_per_instrument_and_a_full_table() {
    let mut d = desk();
    for i in 0..8 {
        d.pass(order(A, side::BUY, 10_000 - 5 * i, 100));
    }
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 110)),
        (RiskCheck::InstrumentOpenOrders, 8, 9)
    );
    for i in 0..4 {
        d.pass(order(B, side::BUY, 10_000 - 5 * i, 100));
    }
    assert_eq!(
        d.refuse(order(B, side::BUY, 9_900, 110)),
        (RiskCheck::OpenOrders, 12, 13)
    );
    assert_eq!((d.risk.open_orders_of(A), d.risk.open_orders_of(B)), (8, 4));
    // An id past the engine's table has none (the gauge reads it for any instrument).
    assert_eq!(d.risk.open_orders_of(RISK_INSTRUMENTS_MAX as u32), 0);

    // The table at its capacity refuses; it never panics.
    let mut l = limits();
    l.open_orders_max = OPEN_ORDERS_MAX as u32;
    for each in l.instruments_mut() {
        each.open_orders_max = OPEN_ORDERS_MAX as u32;
        each.position_max_units = 1 << 40;
        each.notional_min = 0;
    }
    l.gross_exposure_max = quote(1 << 40);
    l.net_exposure_max = quote(1 << 40);
    l.order_rate = RateLimit {
        count_max: RATE_WINDOW_MAX as u32,
        window_ns: 1,
    };
    l.message_rate = l.order_rate;
    l.duplicate_window_ns = 1;
    let mut d = desk_with(l);
    for i in 0..OPEN_ORDERS_MAX as i64 {
        d.pass(order(A, side::BUY, 9_900, 10 + 10 * (i % 100)));
    }
    assert_eq!(
        d.refuse(order(A, side::BUY, 9_900, 10)),
        (
            RiskCheck::OpenOrders,
            OPEN_ORDERS_MAX as i64,
            OPEN_ORDERS_MAX as i64 + 1
        )
    );
}

/// Sends `o` with client order id `id` at `now_ns`.
fn at(
    risk: &mut RiskEngine,
    id: u64,
    o: OrderRequest,
    now_ns: u64,
) -> Result<(), (RiskCheck, i64, i64)> {
    let o = OrderRequest {
        client_order_id: id,
        ..o
    };
    risk.check(&o, now_ns).map_err(|r| why(&r))
}

#[test]
fn the_order_rate_is_an_exact_sliding_window_counting_replaces() {
    let mut l = limits();
    l.order_rate = RateLimit {
        count_max: 3,
        window_ns: 1_000_000,
    };
    l.duplicate_window_ns = 1_000;
    let mut risk = RiskEngine::new(l).unwrap();
    risk.on_market(A, 10_000, 10_000);
    let t = 10_000_000;
    at(&mut risk, 1, order(A, side::BUY, 9_950, 100), t).unwrap();
    at(&mut risk, 2, order(A, side::BUY, 9_955, 100), t + 10).unwrap();
    let replace = OrderRequest {
        kind: order_kind::REPLACE,
        orig_client_order_id: 1,
        ..order(A, side::BUY, 9_945, 100)
    };
    at(&mut risk, 3, replace, t + 20).unwrap();
    assert_eq!(
        at(&mut risk, 4, order(A, side::BUY, 9_960, 100), t + 999_999),
        Err((RiskCheck::OrderRate, 3, 4))
    );
    // Cancels are not orders.
    let cancel = OrderRequest {
        kind: order_kind::CANCEL,
        instrument_id: A,
        orig_client_order_id: 2,
        ..OrderRequest::default()
    };
    at(&mut risk, 5, cancel, t + 999_999).unwrap();
    // Exactly one window after the first order, it has left the window; the second has not.
    at(&mut risk, 6, order(A, side::BUY, 9_960, 100), t + 1_000_000).unwrap();
    assert_eq!(
        at(&mut risk, 7, order(A, side::BUY, 9_965, 100), t + 1_000_009),
        Err((RiskCheck::OrderRate, 3, 4))
    );
    at(&mut risk, 8, order(A, side::BUY, 9_965, 100), t + 1_000_010).unwrap();
    assert_eq!(risk.rejects_of(RiskCheck::OrderRate), 2);
}

#[test]
fn the_message_rate_counts_every_request_and_spares_mass_cancels() {
    let mut l = limits();
    l.message_rate = RateLimit {
        count_max: 3,
        window_ns: 1_000_000,
    };
    l.duplicate_window_ns = 1_000;
    let mut risk = RiskEngine::new(l).unwrap();
    risk.on_market(A, 10_000, 10_000);
    let t = 10_000_000;
    at(&mut risk, 1, order(A, side::BUY, 9_900, 100), t).unwrap();
    let cancel = OrderRequest {
        kind: order_kind::CANCEL,
        instrument_id: A,
        orig_client_order_id: 1,
        ..OrderRequest::default()
    };
    at(&mut risk, 2, cancel, t + 1).unwrap();
    at(&mut risk, 3, cancel, t + 2).unwrap();
    assert_eq!(
        at(&mut risk, 4, cancel, t + 3),
        Err((RiskCheck::MessageRate, 3, 4))
    );
    // A mass cancel always goes (the kill switch's tool), and counts.
    let mass = OrderRequest {
        kind: order_kind::MASS_CANCEL,
        instrument_id: u32::MAX,
        ..OrderRequest::default()
    };
    at(&mut risk, 5, mass, t + 3).unwrap();
    assert_eq!(
        at(&mut risk, 6, order(A, side::BUY, 9_905, 100), t + 3),
        Err((RiskCheck::MessageRate, 3, 5))
    );
    // The window slides: at t + 1_000_001 the first two have left it.
    assert_eq!(
        at(&mut risk, 7, order(A, side::BUY, 9_905, 100), t + 1_000_000),
        Err((RiskCheck::MessageRate, 3, 4))
    );
    at(&mut risk, 8, order(A, side::BUY, 9_905, 100), t + 1_000_001).unwrap();
    assert_eq!(risk.rejects_of(RiskCheck::MessageRate), 3);
}

#[test]
fn duplicate_client_order_ids_and_identical_orders() {
    let mut d = desk();
    let mut o = order(A, side::BUY, 9_900, 100);
    o.client_order_id = 100;
    d.risk.check(&o, 1).unwrap();
    // The same id, a lower one, or another strategy's open id.
    o.px = 9_950;
    assert_eq!(
        why(&d.risk.check(&o, 2).unwrap_err()),
        (RiskCheck::DuplicateClientOrderId, 101, 100)
    );
    o.client_order_id = 50;
    assert_eq!(
        why(&d.risk.check(&o, 3).unwrap_err()),
        (RiskCheck::DuplicateClientOrderId, 101, 50)
    );
    o.client_order_id = 100;
    o.strategy_id = 2;
    assert_eq!(
        why(&d.risk.check(&o, 4).unwrap_err()),
        (RiskCheck::DuplicateClientOrderId, 100, 100)
    );
    o.client_order_id = 101;
    d.risk.check(&o, 5).unwrap();

    // Identical (instrument, side, px, qty) within the window (1 ms).
    let mut same = order(A, side::BUY, 9_920, 100);
    same.client_order_id = 200;
    d.risk.check(&same, 1_000_000).unwrap();
    same.client_order_id = 201;
    assert_eq!(
        why(&d.risk.check(&same, 1_999_999).unwrap_err()),
        (RiskCheck::DuplicateOrder, 1_000_000, 999_999)
    );
    // Another side, price or quantity is another order.
    for (i, other) in [
        order(A, side::SELL, 10_050, 100),
        order(A, side::BUY, 9_925, 100),
        order(A, side::BUY, 9_920, 110),
        order(B, side::BUY, 9_920, 100),
    ]
    .into_iter()
    .enumerate()
    {
        let other = OrderRequest {
            client_order_id: 300 + i as u64,
            ..other
        };
        d.risk.check(&other, 1_999_999).unwrap();
    }
    same.client_order_id = 400;
    d.risk.check(&same, 2_000_000).unwrap();
}

#[test]
fn self_trade_prevention_against_resting_and_pending_prices() {
    let mut d = desk();
    let sell = d.pass(order(A, side::SELL, 10_050, 100));
    let buy = d.pass(order(A, side::BUY, 9_950, 100));
    d.pass(order(A, side::BUY, 10_045, 110));
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_050, 100)),
        (RiskCheck::SelfTrade, 10_050, 10_050)
    );
    assert_eq!(
        d.refuse(order(A, side::SELL, 10_045, 100)),
        (RiskCheck::SelfTrade, 10_045, 10_045)
    );
    d.pass(order(A, side::SELL, 10_050, 110));
    // A market buy crosses any sell of ours.
    assert_eq!(d.refuse(market(A, side::BUY, 100)).0, RiskCheck::SelfTrade);
    // Another instrument is another book.
    d.pass(market(B, side::BUY, 100));
    // A pending replace's price rests too.
    let r = d.replace(buy, order(A, side::BUY, 9_990, 100)).unwrap();
    assert_eq!(
        d.refuse(order(A, side::SELL, 9_990, 100)).0,
        RiskCheck::SelfTrade
    );
    // The venue refused the replace: 9_990 no longer rests, 10_045 still does.
    d.report(r, exec_type::REJECTED, None, 0);
    assert_eq!(
        d.refuse(order(A, side::SELL, 10_045, 120)).0,
        RiskCheck::SelfTrade
    );
    // Once our sells are gone, buying there is fine.
    for id in d.risk.open_order_ids().collect::<Vec<_>>() {
        if d.risk.open_order(id).unwrap().side == side::SELL {
            d.report(id, exec_type::CANCELED, None, 0);
        }
    }
    assert!(d.risk.open_order(sell).is_none());
    d.pass(order(A, side::BUY, 10_100, 100));
}

/// Gross and net exposure recomputed from scratch from the public state.
fn exposure_from_scratch(risk: &RiskEngine, multiplier: i128) -> (i128, i128, i128) {
    let (mut gross, mut long, mut short) = (0, 0, 0);
    for id in 0..RISK_INSTRUMENTS_MAX as u32 {
        let Some(px) = risk.reference_px(id) else {
            continue;
        };
        let (buy, sell) = risk.open_qty(id);
        let p = risk.position(id);
        let (wl, ws) = (p + buy, p - sell);
        let unit = px as i128 * multiplier;
        gross += wl.max(-ws) as i128 * unit;
        long += wl as i128 * unit;
        short += ws as i128 * unit;
    }
    (gross, long, short)
}

#[test]
fn random_requests_and_reports_never_panic_and_keep_the_books_consistent() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut l = limits();
    l.fill_rate.count_max = RATE_WINDOW_MAX as u32;
    l.loss_max = quote(1 << 60);
    let mut risk = RiskEngine::new(l).unwrap();
    let mut sent: Vec<u64> = Vec::new();
    let mut now_ns = 0u64;
    let mut next_id = 1u64;
    let mut passed = 0u64;
    for step in 0..200_000u64 {
        now_ns += rng.u64(0..2_000_000);
        let instrument_id = match rng.u8(..50) {
            0 => rng.u32(..),
            1 => 2, // no limits
            _ => rng.u32(0..2),
        };
        let open: Vec<u64> = risk.open_order_ids().collect();
        let target = match rng.u8(..10) {
            0 => rng.u64(..),
            1..=3 if !sent.is_empty() => sent[rng.usize(..sent.len())],
            _ if !open.is_empty() => open[rng.usize(..open.len())],
            _ => rng.u64(..),
        };
        match rng.u8(..10) {
            0..=5 => {
                let o = OrderRequest {
                    client_order_id: if rng.u8(..20) == 0 {
                        rng.u64(..=next_id)
                    } else {
                        next_id += 1;
                        next_id
                    },
                    orig_client_order_id: target,
                    instrument_id,
                    strategy_id: rng.u16(0..3),
                    kind: if rng.u8(..20) == 0 {
                        rng.u8(..)
                    } else {
                        rng.u8(1..5)
                    },
                    side: if rng.u8(..20) == 0 {
                        rng.u8(..)
                    } else {
                        rng.u8(1..3)
                    },
                    ord_type: match rng.u8(..20) {
                        0 => rng.u8(..),
                        1..=3 => ord_type::MARKET,
                        _ => ord_type::LIMIT,
                    },
                    time_in_force: match rng.u8(..20) {
                        0 => rng.u8(..),
                        _ => time_in_force::GTC,
                    },
                    px: match rng.u8(..20) {
                        0 => rng.i64(..),
                        1 => 9_800 + rng.i64(0..400),
                        _ => 9_800 + 5 * rng.i64(0..80),
                    },
                    qty: match rng.u8(..20) {
                        0 => rng.i64(..),
                        _ => 10 * rng.i64(-1..1_200),
                    },
                    ..OrderRequest::default()
                };
                if risk.check(&o, now_ns).is_ok() && o.kind != order_kind::MASS_CANCEL {
                    passed += 1;
                    sent.push(o.client_order_id);
                    if sent.len() > 4_000 {
                        sent.drain(..2_000);
                    }
                }
            }
            6..=8 => {
                let report = ExecutionReport {
                    client_order_id: target,
                    instrument_id: risk.open_order(target).map_or(instrument_id, |o| {
                        if rng.u8(..20) == 0 {
                            instrument_id
                        } else {
                            o.instrument_id
                        }
                    }),
                    exec_type: [
                        exec_type::NEW,
                        exec_type::TRADE,
                        exec_type::TRADE,
                        exec_type::CANCELED,
                        exec_type::REPLACED,
                        exec_type::REJECTED,
                        exec_type::EXPIRED,
                        rng.u8(..),
                    ][rng.usize(..8)],
                    last_px: match rng.u8(..100) {
                        0 => rng.i64(..),
                        _ => 9_800 + rng.i64(0..400),
                    },
                    last_qty: match rng.u8(..10) {
                        0 => rng.i64(..),
                        _ => 10 * rng.i64(-1..500),
                    },
                    leaves_qty: match rng.u8(..10) {
                        0 => rng.i64(..),
                        _ => 10 * rng.i64(-1..1_000),
                    },
                    ..ExecutionReport::default()
                };
                risk.on_execution(&report, now_ns);
            }
            _ => {
                let (bid, ask) = match rng.u16(..500) {
                    0 => (rng.i64(..), rng.i64(..)),
                    _ => {
                        let mid = 9_500 + rng.i64(0..1_000);
                        (mid - rng.i64(0..20), mid + rng.i64(0..20))
                    }
                };
                risk.on_market(instrument_id, bid, ask);
            }
        }
        if risk.trading_state() != TradingState::Active && rng.u8(..100) == 0 {
            risk.set_trading_state(TradingState::Active);
        }
        if rng.u16(..1_000) == 0 {
            let state = [
                TradingState::Active,
                TradingState::ReduceOnly,
                TradingState::Halted,
            ][rng.usize(..3)];
            risk.set_trading_state(state);
        }
        if step % 997 == 0 {
            // The open quantities are the sum of the open orders' counted quantities...
            let mut buys = [0i64; 3];
            let mut sells = [0i64; 3];
            for id in risk.open_order_ids() {
                let o = risk.open_order(id).unwrap();
                assert!(
                    o.leaves_qty > 0 && o.counted_qty >= o.leaves_qty,
                    "seed {seed}: {o:?}"
                );
                if o.side == side::BUY {
                    buys[o.instrument_id as usize] += o.counted_qty;
                } else {
                    sells[o.instrument_id as usize] += o.counted_qty;
                }
            }
            for i in 0..3 {
                assert_eq!(risk.open_qty(i as u32), (buys[i], sells[i]), "seed {seed}");
            }
            // ...and the incremental exposure totals are the sums from scratch.
            let e = risk.exposure();
            let scratch = exposure_from_scratch(&risk, 10i128.pow(13));
            assert_eq!((e.gross, e.net_long, e.net_short), scratch, "seed {seed}");
            assert_eq!(risk.open_orders(), risk.open_order_ids().count());
        }
    }
    let rejected: u64 = risk.rejects().iter().sum();
    assert!(passed > 0 && rejected > 0 && risk.ignored_reports() > 0);
    assert!(risk.open_orders() <= limits().open_orders_max as usize);
}

/// A market order alone on its instrument crosses nothing of ours and passes, on either side;
/// against a resting order of ours on the other side it is a self-trade (issue 13: the market
/// sell's sentinel price, one above "no buy", had no test alone).
#[test]
fn a_lone_market_order_passes_and_crosses_our_other_side() {
    let mut d = desk();
    d.pass(market(A, side::SELL, 100));
    d.pass(market(B, side::BUY, 100));
    let mut d = desk();
    d.pass(order(A, side::BUY, 9_950, 100));
    assert_eq!(d.refuse(market(A, side::SELL, 100)).0, RiskCheck::SelfTrade);
    d.pass(order(B, side::SELL, 10_050, 100));
    assert_eq!(d.refuse(market(B, side::BUY, 100)).0, RiskCheck::SelfTrade);
}

/// Notionals in rejects are in 10^-8 quote units, but limits are kept in 10^-18: a limit finer
/// than a reject unit is rounded so that the journaled value is always beyond the journaled
/// limit. Below a minimum the limit rounds up; above a maximum it rounds down (issue 13: the
/// rounding direction had no test).
#[test]
fn notional_limits_finer_than_a_reject_unit_round_away_from_the_value() {
    let mut l = limits();
    let a = l.instruments[0].as_mut().unwrap();
    // 10 USDT less 10^-18, and 1,000 USDT plus 10^-18.
    a.notional_min = quote(10) - 1;
    a.order_notional_max = quote(1_000) + 1;
    let mut d = desk_with(l);
    // Exactly 10.00 USDT (100.00 x 0.100) is above the minimum: it passes.
    d.pass(order(A, side::BUY, 10_000, 100));
    // 9 USDT (100.00 x 0.090): the limit 9.999999999999999999 is journaled as 10.00000000 (up),
    // the value as 9.00000000.
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_000, 90)),
        (RiskCheck::NotionalMin, 1_000_000_000, 900_000_000)
    );
    // 1,000.5 USDT (100.05 x 10.000): the limit 1,000.000000000000000001 is journaled as
    // 1,000.00000000 (down), the value as 1,000.50000000.
    assert_eq!(
        d.refuse(order(A, side::SELL, 10_005, 10_000)),
        (
            RiskCheck::OrderNotionalMax,
            100_000_000_000,
            100_050_000_000
        )
    );
}

/// A top of book at which the largest position would be worth more than
/// `INSTRUMENT_NOTIONAL_MAX` is garbage: it does not become the reference price (the bound keeps
/// every exposure sum exact without overflow checks). One unit below the bound is taken (issue
/// 13: nothing sent a price beyond it).
#[test]
fn a_reference_beyond_the_notional_bound_is_ignored() {
    let mut d = desk();
    let a = limits().instruments[0].unwrap();
    let m = a.notional_multiplier().unwrap() as i128;
    // The largest price whose position_max is worth at most the bound, worked out here.
    let max_px = (INSTRUMENT_NOTIONAL_MAX / a.position_max_units as i128 / m) as i64;
    assert!(max_px > 10_000 && max_px < i64::MAX / 2);
    d.risk.on_market(A, max_px, max_px);
    assert_eq!(d.risk.reference_px(A), Some(max_px));
    d.risk.on_market(A, max_px + 1, max_px + 1);
    assert_eq!(
        d.risk.reference_px(A),
        Some(max_px),
        "garbage taken as the reference"
    );
    d.risk.on_market(A, i64::MAX, i64::MAX);
    assert_eq!(d.risk.reference_px(A), Some(max_px));
    // A sane price is taken again.
    d.risk.on_market(A, 9_990, 10_010);
    assert_eq!(d.risk.reference_px(A), Some(10_000));
}

/// The minimum notional is compared as `px x qty >= ceil(min / multiplier)`: with a minimum that
/// is not a multiple of the multiplier (10 USDT less 10^-18), exactly 10 USDT passes and one
/// px x qty unit less is refused (issue 13). Tick and lot of one unit and a 5% collar, so that
/// 999,999 units (101.01 x 0.099) can be sent.
#[test]
fn min_notional_one_unit_below_a_limit_off_the_multiplier() {
    let mut l = limits();
    let a = l.instruments[0].as_mut().unwrap();
    a.tick_units = 1;
    a.lot_units = 1;
    a.collar_bps = 500;
    a.notional_min = quote(10) - 1;
    let mut d = desk_with(l);
    // 100.00 x 0.100 = 10 USDT: px x qty = 1,000,000.
    d.pass(order(A, side::BUY, 10_000, 100));
    // 101.01 x 0.099 = 9.99999 USDT: px x qty = 999,999, one unit below.
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_101, 99)),
        (RiskCheck::NotionalMin, 1_000_000_000, 999_999_000)
    );
}
