//! Self-trade prevention: what happens when a new order of ours would trade with a resting one
//! of ours. As on Binance, the new order trades with the market in price and time priority
//! until it meets our own order; only then does the mode act.

use super::*;

fn venue(self_trade: SelfTradePrevention) -> Venue {
    let mut v = Venue::new(ExchangeConfig {
        self_trade,
        ..ExchangeConfig::default()
    });
    // Bids 3.498 x 10; asks 3.500 x 10, 3.503 x 50.
    v.snapshot(&[(3498, 10)], &[(3500, 10), (3503, 50)]);
    v
}

const EXPIRED: u8 = exec_type::EXPIRED;

/// Our ask at 3.502 (inside the book's 3.500 and 3.503), then our buy of 30 up to 3.503: it
/// takes the 10 at 3.500, then meets our ask.
fn buy_into_our_ask(self_trade: SelfTradePrevention) -> Venue {
    let mut v = venue(self_trade);
    v.send(&sell(1, 3502, 5));
    v.clear();
    v.send(&buy(2, 3503, 30));
    v
}

#[test]
fn expire_taker_keeps_what_traded_before_our_own_order_and_expires_the_rest() {
    let mut v = buy_into_our_ask(SelfTradePrevention::ExpireTaker);
    assert_eq!(
        v.briefs(),
        [
            new_ack(2, qty(30)),
            trade_report(2, px(3500), qty(10), qty(10), qty(20)),
            (2, EXPIRED, 0, 0, qty(10), 0, EXPIRED),
        ]
    );
    assert_eq!(v.rejects(), ["self_trade_prevented"]);
    assert_eq!(v.working(), [1]);
    assert_eq!(v.position(), qty(10));
}

#[test]
fn expire_maker_expires_our_resting_order_and_the_new_one_goes_on() {
    let mut v = buy_into_our_ask(SelfTradePrevention::ExpireMaker);
    assert_eq!(
        v.briefs(),
        [
            new_ack(2, qty(30)),
            trade_report(2, px(3500), qty(10), qty(10), qty(20)),
            (1, EXPIRED, 0, 0, 0, 0, EXPIRED),
            trade_report(2, px(3503), qty(20), qty(30), 0),
        ]
    );
    assert!(v.rejects().is_empty());
    assert!(v.working().is_empty());
    assert_eq!(v.position(), qty(30));
}

#[test]
fn expire_both_expires_our_resting_order_and_the_rest_of_the_new_one() {
    let mut v = buy_into_our_ask(SelfTradePrevention::ExpireBoth);
    assert_eq!(
        v.briefs(),
        [
            new_ack(2, qty(30)),
            trade_report(2, px(3500), qty(10), qty(10), qty(20)),
            (1, EXPIRED, 0, 0, 0, 0, EXPIRED),
            (2, EXPIRED, 0, 0, qty(10), 0, EXPIRED),
        ]
    );
    assert_eq!(v.rejects(), ["self_trade_prevented"]);
    assert!(v.working().is_empty());
    assert_eq!(v.position(), qty(10));
}

#[test]
fn an_order_filled_by_the_market_before_it_reaches_our_own_price_is_not_prevented() {
    for stp in [
        SelfTradePrevention::ExpireTaker,
        SelfTradePrevention::ExpireMaker,
        SelfTradePrevention::ExpireBoth,
    ] {
        let mut v = venue(stp);
        v.send(&sell(1, 3510, 5));
        v.clear();
        // 10 at 3.500 and 20 at 3.503 fill it before 3.510.
        v.send(&buy(2, 3510, 30));
        assert_eq!(
            v.fill_briefs(),
            [(2, px(3500), qty(10), false), (2, px(3503), qty(20), false)],
            "{stp}"
        );
        assert_eq!(v.working(), [1], "{stp}");
    }
}

#[test]
fn the_market_queue_ahead_of_our_own_order_trades_first() {
    // Our ask joins 3.503 behind the market's 50.
    let mut v = venue(SelfTradePrevention::ExpireTaker);
    v.send(&sell(1, 3503, 5));
    v.clear();
    v.send(&buy(2, 3503, 30)); // 10 + 20 of the 50 ahead: never meets ours
    assert_eq!(
        v.fill_briefs(),
        [(2, px(3500), qty(10), false), (2, px(3503), qty(20), false)]
    );
    assert!(v.rejects().is_empty());
    v.send(&buy(3, 3503, 70)); // 10 + the 50 ahead, then ours with 10 left
    assert_eq!(
        v.fill_briefs(),
        [(3, px(3500), qty(10), false), (3, px(3503), qty(50), false)]
    );
    assert_eq!(v.rejects(), ["self_trade_prevented"]);
    assert_eq!(v.position(), qty(90));
    assert_eq!(v.working(), [1]);
}

#[test]
fn expire_maker_expires_only_the_own_orders_the_new_one_reaches() {
    // Ours at 3.503: A behind the market's 50, then B behind 60 (10 joined).
    let mut v = venue(SelfTradePrevention::ExpireMaker);
    v.send(&sell(1, 3503, 5));
    v.depth(&[], &[(3503, 60)]);
    v.send(&sell(2, 3503, 5));
    v.clear();
    // 10 at 3.500, then 55 at 3.503 of the 60 there: past A (50 ahead), not B (60).
    v.send(&buy(3, 3503, 65));
    assert_eq!(
        v.briefs(),
        [
            new_ack(3, qty(65)),
            trade_report(3, px(3500), qty(10), qty(10), qty(55)),
            trade_report(3, px(3503), qty(50), qty(60), qty(5)),
            (1, EXPIRED, 0, 0, 0, 0, EXPIRED),
            trade_report(3, px(3503), qty(5), qty(65), 0),
        ]
    );
    assert_eq!(v.working(), [2]);
}

#[test]
fn an_order_that_crosses_only_our_own_is_prevented_without_a_fill() {
    // Our ask at 3.499, inside the book; our bid at 3.499 crosses nothing else.
    let mut v = venue(SelfTradePrevention::ExpireTaker);
    v.send(&sell(1, 3499, 5));
    v.clear();
    v.send(&buy(2, 3499, 5));
    assert_eq!(
        v.briefs(),
        [new_ack(2, qty(5)), (2, EXPIRED, 0, 0, 0, 0, EXPIRED)]
    );
    assert_eq!(v.working(), [1]);

    let mut v = venue(SelfTradePrevention::ExpireMaker);
    v.send(&sell(1, 3499, 5));
    v.clear();
    v.send(&buy(2, 3499, 5));
    assert_eq!(
        v.briefs(),
        [new_ack(2, qty(5)), (1, EXPIRED, 0, 0, 0, 0, EXPIRED)]
    );
    assert_eq!(v.working(), [2], "the new bid rests");
}

#[test]
fn a_sell_meets_our_own_bid_at_a_better_price_than_the_market_first() {
    // Our bid at 3.499 is above the book's 3.498: a market sell meets it before any market bid.
    let mut v = venue(SelfTradePrevention::ExpireTaker);
    v.send(&buy(1, 3499, 5));
    v.clear();
    v.send(&market(2, side::SELL, 5));
    assert!(v.fills().is_empty());
    assert_eq!(v.working(), [1]);
    // Our bid at 3.497, below the book's 10 at 3.498: a sell of 5 is filled before it.
    let mut v = venue(SelfTradePrevention::ExpireTaker);
    v.send(&buy(1, 3497, 5));
    v.clear();
    v.send(&market(2, side::SELL, 5));
    assert_eq!(v.fill_briefs(), [(2, px(3498), qty(5), false)]);
    // A sell of 15 takes the 10, then meets ours.
    v.send(&market(3, side::SELL, 15));
    assert_eq!(v.fill_briefs(), [(3, px(3498), qty(10), false)]);
    assert_eq!(v.rejects(), ["self_trade_prevented"]);
}

#[test]
fn a_fok_that_would_meet_our_own_order_expires_with_no_fill_and_leaves_ours() {
    for stp in [
        SelfTradePrevention::ExpireTaker,
        SelfTradePrevention::ExpireBoth,
    ] {
        let mut v = venue(stp);
        v.send(&sell(1, 3502, 5));
        v.clear();
        v.send(&limit(2, side::BUY, px(3503), qty(30), time_in_force::FOK));
        assert_eq!(
            v.briefs(),
            [new_ack(2, qty(30)), (2, EXPIRED, 0, 0, 0, 0, EXPIRED)],
            "{stp}"
        );
        assert_eq!(v.rejects(), ["fill_or_kill_not_filled"]);
        assert_eq!(v.working(), [1]);
    }
    // expire_maker: the market can fill it whole, so ours expires and it fills.
    let mut v = venue(SelfTradePrevention::ExpireMaker);
    v.send(&sell(1, 3502, 5));
    v.clear();
    v.send(&limit(2, side::BUY, px(3503), qty(30), time_in_force::FOK));
    assert_eq!(v.position(), qty(30));
    assert!(v.working().is_empty());
}

#[test]
fn orders_on_the_same_side_or_another_instrument_are_not_our_counterparty() {
    let mut v = venue(SelfTradePrevention::ExpireBoth);
    v.send(&buy(1, 3499, 5));
    let rune_ask = OrderRequest {
        instrument_id: RUNE,
        ..limit(2, side::SELL, 10 * UNIT, 30 * RUNE_LOT, time_in_force::GTC)
    };
    v.send(&rune_ask);
    v.clear();
    v.send(&buy(3, 3500, 5));
    assert_eq!(v.fill_briefs(), [(3, px(3500), qty(5), false)]);
    assert_eq!(v.working(), [1, 2]);
}

#[test]
fn expire_maker_meets_our_orders_at_a_price_in_queue_order_each_behind_its_market_quantity() {
    // At 3.503: the market's 50 ahead of A, then 5 that joined ahead of B; the level has 60.
    // A buy of 100 up to 3.503: 10 at 3.500; at 3.503 50, A, 5, B, the last 5; 30 rest.
    let mut v = venue(SelfTradePrevention::ExpireMaker);
    v.send(&sell(1, 3503, 5));
    v.depth(&[], &[(3503, 55)]);
    v.send(&sell(2, 3503, 5));
    v.depth(&[], &[(3503, 60)]);
    v.clear();
    v.send(&buy(3, 3503, 100));
    assert_eq!(
        v.briefs(),
        [
            new_ack(3, qty(100)),
            trade_report(3, px(3500), qty(10), qty(10), qty(90)),
            trade_report(3, px(3503), qty(50), qty(60), qty(40)),
            (1, EXPIRED, 0, 0, 0, 0, EXPIRED),
            trade_report(3, px(3503), qty(5), qty(65), qty(35)),
            (2, EXPIRED, 0, 0, 0, 0, EXPIRED),
            trade_report(3, px(3503), qty(5), qty(70), qty(30)),
        ]
    );
    assert_eq!(v.working(), [3]);
}

#[test]
fn a_sell_meets_our_bids_from_the_highest_down_among_the_market_bids() {
    // Ours at 3.499 (above the book's 3.498 x 10) and 3.497 (below it). A market sell of 15
    // under expire_maker: ours at 3.499, the market's 10 at 3.498, ours at 3.497; 5 expire.
    let mut v = venue(SelfTradePrevention::ExpireMaker);
    v.send(&buy(1, 3499, 5));
    v.send(&buy(2, 3497, 5));
    v.clear();
    v.send(&market(3, side::SELL, 15));
    assert_eq!(
        v.briefs(),
        [
            new_ack(3, qty(15)),
            (1, EXPIRED, 0, 0, 0, 0, EXPIRED),
            trade_report(3, px(3498), qty(10), qty(10), qty(5)),
            (2, EXPIRED, 0, 0, 0, 0, EXPIRED),
            (3, EXPIRED, 0, 0, qty(10), 0, EXPIRED),
        ]
    );
}
