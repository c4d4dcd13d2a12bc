//! Resting orders: where they join their queue, how trades and depth move them, when they
//! fill and for how much.

use super::*;

/// A book with bids 3.498 x 110, 3.497 x 130 and asks 3.500 x 110, 3.501 x 50.
fn book(v: &mut Venue) {
    v.snapshot(&[(3498, 110), (3497, 130)], &[(3500, 110), (3501, 50)]);
}

#[test]
fn a_resting_bid_fills_by_the_trades_that_pass_its_queue_rounded_down_to_the_lot() {
    let mut v = Venue::new(ExchangeConfig {
        maker_fee_ppm: -50,
        taker_fee_ppm: 300,
        ..ExchangeConfig::default()
    });
    book(&mut v);
    v.clear();
    v.send(&buy(1, 3498, 30));
    assert_eq!(v.briefs(), [new_ack(1, qty(30))]);
    assert_eq!(v.ahead(1), 110.0, "joins behind the level's 110");

    v.sold(3498, 40);
    assert_eq!(v.ahead(1), 70.0);
    // A buyer taking the asks, and a seller hitting a better bid, do not reach our queue.
    v.bought(3498, 50);
    v.sold(3499, 50);
    assert_eq!(v.ahead(1), 70.0);
    v.sold(3498, 60);
    assert_eq!(v.ahead(1), 10.0);
    assert!(v.fills().is_empty());
    assert!(v.reports().is_empty());

    // 25.5 pass the 10 ahead by 15.5: 15 whole lots fill.
    v.trade_units(3498, qty(25) + LOT / 2, true);
    let fills = v.fills();
    assert_eq!(fills.len(), 1);
    let f = fills[0];
    assert_eq!(
        (f.client_order_id, f.side, f.px, f.qty, f.maker),
        (1, side::BUY, px(3498), qty(15), true)
    );
    assert_eq!(f.fee_scaled, 349_800_000i128 * 1_500_000_000 * -50);
    assert_eq!((f.queue_ahead, f.order_first_fill), (qty(110), true));
    assert_eq!(
        v.briefs(),
        [trade_report(1, px(3498), qty(15), qty(15), qty(15))]
    );
    assert_eq!(v.position(), qty(15));
    assert_eq!(v.ahead(1), 0.0, "now at the front");

    // 30 more at the front: the 15 left fill, the order is done.
    v.sold(3498, 30);
    let fills = v.fills();
    assert_eq!(fills.len(), 1);
    assert_eq!((fills[0].qty, fills[0].order_first_fill), (qty(15), false));
    assert_eq!(v.briefs(), [trade_report(1, px(3498), qty(15), qty(30), 0)]);
    assert_eq!(v.position(), qty(30));
    assert!(v.working().is_empty());
}

#[test]
fn a_resting_ask_moves_only_on_buyers_at_its_price() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3501, 20));
    assert_eq!(v.ahead(1), 50.0);
    v.sold(3501, 10);
    v.bought(3500, 10);
    assert_eq!(v.ahead(1), 50.0);
    v.bought(3501, 57);
    assert_eq!(v.position(), -qty(7));
    assert_eq!(v.ahead(1), 0.0);
}

#[test]
fn risk_averse_ignores_a_cancel_that_power_2_splits_by_its_formula() {
    let run = |queue: QueueModel| {
        let mut v = Venue::new(ExchangeConfig {
            queue,
            ..ExchangeConfig::default()
        });
        v.snapshot(&[(3498, 100)], &[(3500, 100)]);
        v.send(&buy(1, 3498, 10));
        v.depth(&[(3498, 140)], &[]); // 40 join behind us
        v.depth(&[(3498, 120)], &[]); // 20 cancelled, no trade
        let ahead = v.ahead(1);
        v.sold(3498, 90);
        (ahead, v.position())
    };
    // Risk-averse: the cancel was behind us; 90 traded of 100 ahead fills nothing.
    assert_eq!(run(QueueModel::RiskAverse), (100.0, 0));
    // power:2: front 100, back 40: p (the cancel was behind) = 40^2 / (40^2 + 100^2).
    let p = 1600.0 / 11_600.0;
    let expected = 100.0 - (1.0 - p) * 20.0; // 82.76
    let (ahead, position) = run(QueueModel::Power(2.0));
    assert!((ahead - expected).abs() < 1e-9, "{ahead} vs {expected}");
    // 90 traded pass 82.76 ahead by 7.24: 7 lots.
    assert_eq!(position, qty(7));
}

#[test]
fn our_second_order_at_a_price_is_behind_the_first_and_gets_only_what_the_first_left() {
    // The worked example: the market 10 ahead, ours A 5; 2 join; ours B 5 (12 ahead at its
    // arrival). A 15-lot trade: 10 reach A's front and 5 fill A; B sees 15 - 5 = 10 of it
    // and has 12 - 10 = 2 ahead.
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 10)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.depth(&[(3498, 12)], &[]);
    v.send(&buy(2, 3498, 5));
    assert_eq!((v.ahead(1), v.ahead(2)), (10.0, 12.0));
    v.clear();
    v.sold(3498, 15);
    assert_eq!(v.fill_briefs(), [(1, px(3498), qty(5), true)]);
    assert_eq!(v.ahead(2), 2.0);
    // 6 more: B is 2 behind the front, so 4 fill.
    v.sold(3498, 6);
    let fills = v.fills();
    assert_eq!(
        (fills[0].client_order_id, fills[0].qty, fills[0].queue_ahead),
        (2, qty(4), qty(12))
    );
    assert_eq!(v.position(), qty(9));
}

#[test]
fn the_second_order_never_fills_while_the_first_has_quantity_left() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 10)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.send(&buy(2, 3498, 5));
    assert_eq!((v.ahead(1), v.ahead(2)), (10.0, 10.0));
    v.clear();
    // 12 pass the 10 ahead of both by 2: A takes them, B is still behind A.
    v.sold(3498, 12);
    assert_eq!(v.fill_briefs(), [(1, px(3498), qty(2), true)]);
    assert_eq!(v.ahead(2), 0.0);
    // 8 more: A's 3 left fill, B gets the other 5.
    v.sold(3498, 8);
    assert_eq!(
        v.fill_briefs(),
        [(1, px(3498), qty(3), true), (2, px(3498), qty(5), true)]
    );
    assert_eq!(v.position(), qty(10));
}

#[test]
fn a_shrinking_level_caps_what_is_ahead_and_keeps_our_orders_in_order() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 10)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.depth(&[(3498, 30)], &[]);
    v.send(&buy(2, 3498, 5));
    assert_eq!((v.ahead(1), v.ahead(2)), (10.0, 30.0));
    v.depth(&[(3498, 20)], &[]);
    assert_eq!((v.ahead(1), v.ahead(2)), (10.0, 20.0));
    v.depth(&[(3498, 4)], &[]);
    assert_eq!((v.ahead(1), v.ahead(2)), (4.0, 4.0));
    // Gone from the book: nothing ahead of either.
    v.depth(&[(3498, 0)], &[]);
    assert_eq!((v.ahead(1), v.ahead(2)), (0.0, 0.0));
}

#[test]
fn a_later_order_is_never_estimated_ahead_of_an_earlier_one() {
    // power:2 moves the later order (little behind it) less than the earlier one would
    // alone; the FIFO keeps it at least where the earlier one is.
    let mut v = Venue::new(ExchangeConfig {
        queue: QueueModel::Power(2.0),
        ..ExchangeConfig::default()
    });
    v.snapshot(&[(3498, 10)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.depth(&[(3498, 100)], &[]);
    v.send(&buy(2, 3498, 5));
    // 100 -> 50: A (front 10, back 90) and B (front 100, back 0).
    v.depth(&[(3498, 50)], &[]);
    // A: p = 90^2 / (90^2 + 10^2), front 10 - (1 - p) 50 = 9.39.
    let p = 8100.0 / 8200.0;
    let a = 10.0 - (1.0 - p) * 50.0;
    assert!((v.ahead(1) - a).abs() < 1e-9, "{}", v.ahead(1));
    // B: p = 0 (nothing behind it): all 50 came from ahead: 100 - 50 = 50, capped at 50.
    assert_eq!(v.ahead(2), 50.0);
    v.depth(&[(3498, 1)], &[]);
    assert_eq!((v.ahead(1), v.ahead(2)), (1.0, 1.0));
}

#[test]
fn a_snapshot_reloads_the_market_quantity_at_our_levels() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 50)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.send(&sell(2, 3501, 5));
    assert_eq!((v.ahead(1), v.ahead(2)), (50.0, 0.0));
    // A later snapshot shows 20 at our bid and 7 at our ask (7 joined behind us).
    v.snapshot(&[(3498, 20)], &[(3500, 10), (3501, 7)]);
    assert_eq!((v.ahead(1), v.ahead(2)), (20.0, 0.0));
    // Its level is what the next change is measured from: 20 -> 8.
    v.depth(&[(3498, 8)], &[]);
    assert_eq!(v.ahead(1), 8.0);
}

#[test]
fn a_sell_trade_below_our_bid_fills_it_whole_at_its_own_price() {
    let mut v = Venue::new(ExchangeConfig {
        maker_fee_ppm: 20,
        ..ExchangeConfig::default()
    });
    book(&mut v);
    v.send(&buy(1, 3498, 30));
    v.clear();
    v.sold(3497, 1);
    let fills = v.fills();
    assert_eq!(
        (
            fills[0].px,
            fills[0].qty,
            fills[0].maker,
            fills[0].fee_scaled
        ),
        (
            px(3498),
            qty(30),
            true,
            349_800_000i128 * 3_000_000_000 * 20
        )
    );
    assert_eq!(v.briefs(), [trade_report(1, px(3498), qty(30), qty(30), 0)]);
    assert_eq!(v.position(), qty(30));
}

#[test]
fn a_buy_trade_above_our_ask_fills_it_whole_at_its_own_price() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3501, 20));
    v.clear();
    v.bought(3501, 1);
    v.sold(3500, 1); // a seller at 3.500 is not a buyer above us
    assert!(v.fills().is_empty());
    v.bought(3502, 1);
    assert_eq!(v.fill_briefs(), [(1, px(3501), qty(20), true)]);
    assert_eq!(v.position(), -qty(20));
}

#[test]
fn a_book_that_reaches_our_bid_fills_it_whole_as_maker() {
    let mut v = Venue::new(ExchangeConfig {
        maker_fee_ppm: 10,
        taker_fee_ppm: 99,
        ..ExchangeConfig::default()
    });
    book(&mut v);
    v.send(&buy(1, 3498, 30));
    v.clear();
    v.depth(&[], &[(3499, 5)]); // the ask comes down to 3.499: not yet
    assert!(v.fills().is_empty());
    v.depth(&[(3498, 0)], &[(3498, 5)]); // an ask at our price
    let fills = v.fills();
    assert_eq!(
        (
            fills[0].px,
            fills[0].qty,
            fills[0].maker,
            fills[0].fee_scaled
        ),
        (
            px(3498),
            qty(30),
            true,
            349_800_000i128 * 3_000_000_000 * 10
        )
    );
    assert_eq!(v.position(), qty(30));
}

#[test]
fn a_book_ticker_that_reaches_our_ask_fills_it_whole_as_maker() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3501, 20));
    v.send(&buy(2, 3497, 20));
    v.clear();
    v.ticker(3499, 3500);
    assert!(v.fills().is_empty());
    v.ticker(3501, 3502);
    assert_eq!(v.fill_briefs(), [(1, px(3501), qty(20), true)]);
    v.ticker(3495, 3497);
    assert_eq!(v.fill_briefs(), [(2, px(3497), qty(20), true)]);
    assert_eq!(v.position(), 0);
}

#[test]
fn trades_on_another_instrument_leave_our_orders_alone() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 30));
    let json = trade_json(RUNE, 1, px(3498), qty(500), true);
    v.stream(&json);
    assert_eq!(v.ahead(1), 110.0);
    assert_eq!(v.ex.position(RUNE), 0);
}

#[test]
fn an_instrument_follows_the_trade_stream_it_shows_first() {
    // aggTrade first: trade messages are the same executions, ignored.
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 30));
    let agg = agg_trade_json(NKN, 1, px(3498), qty(10), true);
    v.stream(&agg);
    assert_eq!(v.ahead(1), 100.0);
    v.sold(3498, 10);
    assert_eq!(v.ahead(1), 100.0);
    v.stream(&agg);
    assert_eq!(v.ahead(1), 90.0);

    // trade first: aggTrade ignored.
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 30));
    v.sold(3498, 10);
    v.stream(&agg);
    assert_eq!(v.ahead(1), 100.0);
}

#[test]
fn queue_fills_on_a_finer_lot_round_down_to_it() {
    // RUNEEUR's lot is 0.1: 1.37 past the front fill 1.3.
    let mut v = Venue::plain();
    let (bid, ask) = (889_800_000, 890_100_000);
    v.snapshot_of(RUNE, &[(bid, 20 * RUNE_LOT)], &[(ask, 20 * RUNE_LOT)]);
    let order = OrderRequest {
        instrument_id: RUNE,
        ..limit(1, side::BUY, bid, 30 * RUNE_LOT, time_in_force::GTC)
    };
    v.send(&order);
    v.clear();
    let json = trade_json(RUNE, 1, bid, 20 * RUNE_LOT + 137_000_000, true);
    v.stream(&json);
    let fills = v.fills();
    assert_eq!((fills[0].px, fills[0].qty), (bid, 13 * RUNE_LOT));
    assert_eq!(v.ex.position(RUNE), 13 * RUNE_LOT);
}

#[test]
fn a_trade_fills_a_resting_order_by_no_more_than_the_trade() {
    // power3:0.5: a cancel can put the estimate past the front. Front 1, back 100; the level
    // falls 101 -> 51 with no trade: p = 1 - (1/101)^0.5, front 1 - (1 - p) 50 = -3.98.
    let mut v = Venue::new(ExchangeConfig {
        queue: QueueModel::Power3(0.5),
        ..ExchangeConfig::default()
    });
    v.snapshot(&[(3498, 1)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 20));
    v.depth(&[(3498, 101)], &[]);
    v.depth(&[(3498, 51)], &[]);
    let p = 1.0 - (1.0f64 / 101.0).sqrt();
    let expected = 1.0 - (1.0 - p) * 50.0;
    assert!((v.ahead(1) - expected).abs() < 1e-9, "{}", v.ahead(1));
    v.clear();
    // A 1-lot trade fills 1 lot, not the 4 the estimate is past the front.
    v.sold(3498, 1);
    assert_eq!(v.fill_briefs(), [(1, px(3498), qty(1), true)]);
    assert_eq!(v.ahead(1), 0.0);
}

#[test]
fn trade_volume_our_first_order_took_still_explains_the_level_falling_for_the_second() {
    // power:2. A (10 ahead), then B (30 ahead) with 6 behind it. A 25-lot trade: A takes 5,
    // B sees 20 of it and has 10 ahead. The next diff shows the level fell by the whole 25 and
    // nothing else: no cancel to split, B stays 10 behind the front.
    let mut v = Venue::new(ExchangeConfig {
        queue: QueueModel::Power(2.0),
        ..ExchangeConfig::default()
    });
    v.snapshot(&[(3498, 10)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.depth(&[(3498, 30)], &[]);
    v.send(&buy(2, 3498, 5));
    v.depth(&[(3498, 36)], &[]);
    v.sold(3498, 25);
    assert_eq!(v.ahead(2), 10.0);
    v.depth(&[(3498, 11)], &[]);
    assert_eq!(v.ahead(2), 10.0);
}

#[test]
fn the_log_models_take_their_probability_on_base_asset_quantities() {
    // As hftbacktest's, whose quantities are the asset's: front 10 NKN, back 30 NKN, the level
    // falls 40 -> 32 with no trade. (On 1e-8 units, ln(1 + x) would give other odds.)
    for (model, p) in [
        (QueueModel::Log, 31f64.ln() / (31f64.ln() + 11f64.ln())),
        (QueueModel::Log2, 31f64.ln() / 41f64.ln()),
    ] {
        let mut v = Venue::new(ExchangeConfig {
            queue: model,
            ..ExchangeConfig::default()
        });
        v.snapshot(&[(3498, 10)], &[(3500, 10)]);
        v.send(&buy(1, 3498, 5));
        v.depth(&[(3498, 40)], &[]);
        v.depth(&[(3498, 32)], &[]);
        let expected = 10.0 - (1.0 - p) * 8.0;
        assert!(
            (v.ahead(1) - expected).abs() < 1e-9,
            "{model}: {}",
            v.ahead(1)
        );
    }
    // RUNEEUR's unit is 1e-8 RUNE as well, its lot 0.1: front 1 RUNE, back 3 RUNE.
    let mut v = Venue::new(ExchangeConfig {
        queue: QueueModel::Log,
        ..ExchangeConfig::default()
    });
    let bid = 889_800_000;
    v.snapshot_of(RUNE, &[(bid, UNIT)], &[(890_100_000, UNIT)]);
    let order = OrderRequest {
        instrument_id: RUNE,
        ..limit(1, side::BUY, bid, 30 * RUNE_LOT, time_in_force::GTC)
    };
    v.send(&order);
    v.depth_of(RUNE, &[(bid, 4 * UNIT)], &[]);
    v.depth_of(RUNE, &[(bid, 3 * UNIT)], &[]);
    let p = 4f64.ln() / (4f64.ln() + 2f64.ln());
    let expected = 1.0 - (1.0 - p) * 1.0;
    let ahead = v.ex.core.orders[&1].pos.front / UNIT as f64;
    assert!((ahead - expected).abs() < 1e-9, "{ahead} vs {expected}");
}

#[test]
fn a_stale_diff_the_book_drops_does_not_move_our_queue() {
    // After a snapshot at update 100, a diff ending at 100 is older than it (the stream lags the
    // REST answer): the book drops it, and its quantity is not the level's.
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 50)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    let stale = depth_json(NKN, 1, 100, 100, &nkn_levels(&[(3498, 10)]), &[]);
    v.stream(&stale);
    assert_eq!(v.ahead(1), 50.0);
    v.depth(&[(3498, 45)], &[]);
    assert_eq!(v.ahead(1), 45.0);
}

#[test]
fn a_snapshot_the_book_refuses_leaves_our_queue_where_it_was() {
    // A snapshot whose bids are not best first, or that is crossed, leaves the book empty
    // until the next good one: it says nothing about the quantity ahead of us.
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 50)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 5));
    v.snapshot(&[(3497, 5), (3498, 5)], &[(3500, 10)]);
    assert_eq!(v.ahead(1), 50.0);
    v.snapshot(&[(3498, 5)], &[(3497, 10)]);
    assert_eq!(v.ahead(1), 50.0);
    assert!(v.fills().is_empty());
    v.snapshot(&[(3498, 30)], &[(3500, 10)]);
    assert_eq!(v.ahead(1), 30.0);
}

#[test]
fn a_trade_that_is_not_whole_lots_fills_whole_lots_only() {
    // 1 ahead; 1.5 traded: 0.5 past the front, no whole lot. Then 1.7: 2.2 past the front
    // in all, but only 1.7 of it traded now: 1 lot fills.
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 1)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 10));
    v.clear();
    v.trade_units(3498, qty(1) + LOT / 2, true);
    assert!(v.fills().is_empty());
    assert_eq!(v.ahead(1), -0.5);
    v.trade_units(3498, qty(1) + LOT * 7 / 10, true);
    assert_eq!(v.fill_briefs(), [(1, px(3498), qty(1), true)]);
    assert_eq!(v.ahead(1), 0.0);
}

#[test]
fn a_side_of_the_book_left_empty_crosses_none_of_ours() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3497, 30));
    v.send(&sell(2, 3501, 30));
    v.clear();
    v.depth(&[], &[(3500, 0), (3501, 0)]); // no asks
    v.depth(&[(3498, 0), (3497, 0)], &[]); // no bids either
    v.ticker(3496, 3502);
    assert!(v.fills().is_empty());
    assert_eq!(v.working(), [1, 2]);
}
