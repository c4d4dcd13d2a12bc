//! Orders that cross on arrival: they walk the recorded book, which they do not change.

use super::*;

/// Asks 3.500 x 10, 3.501 x 20, 3.502 x 30, 3.504 x 40; bids 3.498 x 15, 3.497 x 25.
fn book(v: &mut Venue) {
    v.snapshot(
        &[(3498, 15), (3497, 25)],
        &[(3500, 10), (3501, 20), (3502, 30), (3504, 40)],
    );
    v.clear();
}

fn fees() -> ExchangeConfig {
    ExchangeConfig {
        maker_fee_ppm: -10,
        taker_fee_ppm: 400,
        ..ExchangeConfig::default()
    }
}

#[test]
fn a_buy_limit_through_the_ask_walks_the_levels_at_their_prices_with_the_taker_fee() {
    let mut v = Venue::new(fees());
    book(&mut v);
    v.send(&buy(1, 3502, 50));
    let fills = v.fills();
    let got: Vec<(i64, i64, bool, i128, i64)> = fills
        .iter()
        .map(|f| (f.px, f.qty, f.maker, f.fee_scaled, f.queue_ahead))
        .collect();
    assert_eq!(
        got,
        [
            (
                px(3500),
                qty(10),
                false,
                350_000_000i128 * 1_000_000_000 * 400,
                0
            ),
            (
                px(3501),
                qty(20),
                false,
                350_100_000i128 * 2_000_000_000 * 400,
                0
            ),
            (
                px(3502),
                qty(20),
                false,
                350_200_000i128 * 2_000_000_000 * 400,
                0
            ),
        ]
    );
    let first: Vec<bool> = fills.iter().map(|f| f.order_first_fill).collect();
    assert_eq!(first, [true, false, false]);
    assert_eq!(
        v.briefs(),
        [
            new_ack(1, qty(50)),
            trade_report(1, px(3500), qty(10), qty(10), qty(40)),
            trade_report(1, px(3501), qty(20), qty(30), qty(20)),
            trade_report(1, px(3502), qty(20), qty(50), 0),
        ]
    );
    assert_eq!(v.position(), qty(50));
    assert!(v.working().is_empty());
}

#[test]
fn a_gtc_limit_stops_at_its_price_and_rests_the_rest() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3502, 70));
    assert_eq!(
        v.fill_briefs(),
        [
            (1, px(3500), qty(10), false),
            (1, px(3501), qty(20), false),
            (1, px(3502), qty(30), false),
        ]
    );
    let reports = v.briefs();
    assert_eq!(reports.len(), 4);
    assert_eq!(
        reports[3],
        trade_report(1, px(3502), qty(30), qty(60), qty(10))
    );
    assert_eq!(v.working(), [1]);
    assert_eq!(v.ahead(1), 0.0, "no bids at 3.502");
}

#[test]
fn the_rest_of_a_gtc_limit_that_took_the_book_to_its_price_is_not_filled_again_by_that_book() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3502, 70));
    v.clear();
    // The recorded asks it took are still there (no market impact): a change elsewhere in the
    // book, or the same top again, must not fill its rest from them a second time.
    v.depth(&[(3490, 5)], &[(3510, 5)]);
    v.ticker(3498, 3500);
    assert!(
        v.fills().is_empty(),
        "filled from liquidity it already took"
    );
    assert_eq!(v.working(), [1]);
    // A seller below its price would have met it: that fills it.
    v.sold(3497, 1);
    assert_eq!(v.fill_briefs(), [(1, px(3502), qty(10), true)]);
    assert_eq!(v.position(), qty(70));
}

#[test]
fn the_rest_of_a_gtc_limit_fills_when_the_book_offers_below_what_it_took() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3502, 70));
    v.clear();
    v.depth(&[], &[(3499, 3)]); // a new seller under the 3.500 it took: it meets our bid
    assert_eq!(v.fill_briefs(), [(1, px(3502), qty(10), true)]);
}

#[test]
fn the_rest_of_a_gtc_limit_fills_when_the_book_crosses_it_again_after_leaving_it() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3502, 70));
    v.clear();
    v.ticker(3498, 3503); // the asks it took are gone
    v.ticker(3498, 3502); // a new seller at its price
    assert_eq!(v.fill_briefs(), [(1, px(3502), qty(10), true)]);
}

#[test]
fn an_ioc_limit_expires_what_it_could_not_take() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&limit(1, side::BUY, px(3502), qty(70), time_in_force::IOC));
    let reports = v.briefs();
    assert_eq!(reports.len(), 5);
    assert_eq!(
        reports[4],
        (1, exec_type::EXPIRED, 0, 0, qty(60), 0, exec_type::EXPIRED)
    );
    assert_eq!(v.position(), qty(60));
    assert!(v.working().is_empty());
}

#[test]
fn an_ioc_limit_that_crosses_nothing_expires_unfilled() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&limit(1, side::SELL, px(3499), qty(5), time_in_force::IOC));
    assert_eq!(
        v.briefs(),
        [
            new_ack(1, qty(5)),
            (1, exec_type::EXPIRED, 0, 0, 0, 0, exec_type::EXPIRED)
        ]
    );
    assert!(v.fills().is_empty());
}

#[test]
fn a_fok_that_cannot_fill_whole_expires_with_no_fill() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&limit(1, side::BUY, px(3502), qty(61), time_in_force::FOK));
    assert_eq!(
        v.briefs(),
        [
            new_ack(1, qty(61)),
            (1, exec_type::EXPIRED, 0, 0, 0, 0, exec_type::EXPIRED)
        ]
    );
    assert_eq!(v.rejects(), ["fill_or_kill_not_filled"]);
    assert_eq!(v.position(), 0);
}

#[test]
fn a_fok_that_can_fill_whole_does() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&limit(1, side::BUY, px(3502), qty(60), time_in_force::FOK));
    assert_eq!(v.fills().len(), 3);
    assert_eq!(v.position(), qty(60));
}

#[test]
fn a_market_buy_walks_until_filled_and_a_market_sell_walks_the_bids() {
    let mut v = Venue::new(fees());
    book(&mut v);
    v.send(&market(1, side::BUY, 75));
    assert_eq!(
        v.fill_briefs(),
        [
            (1, px(3500), qty(10), false),
            (1, px(3501), qty(20), false),
            (1, px(3502), qty(30), false),
            (1, px(3504), qty(15), false),
        ]
    );
    v.send(&market(2, side::SELL, 20));
    let fills = v.fills();
    let got: Vec<(i64, i64, i128)> = fills.iter().map(|f| (f.px, f.qty, f.fee_scaled)).collect();
    assert_eq!(
        got,
        [
            (px(3498), qty(15), 349_800_000i128 * 1_500_000_000 * 400),
            (px(3497), qty(5), 349_700_000i128 * 500_000_000 * 400),
        ]
    );
    assert_eq!(v.position(), qty(55));
}

#[test]
fn a_market_order_larger_than_the_book_expires_the_rest() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&market(1, side::SELL, 100));
    assert_eq!(v.position(), -qty(40));
    let reports = v.briefs();
    assert_eq!(
        reports.last(),
        Some(&(1, exec_type::EXPIRED, 0, 0, qty(40), 0, exec_type::EXPIRED))
    );
}

#[test]
fn the_recorded_book_is_unchanged_by_our_fills_so_the_same_order_again_gets_the_same() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3501, 25));
    let first = v.fill_briefs();
    v.send(&buy(2, 3501, 25));
    let second = v.fill_briefs();
    let prices = |fills: &[(u64, i64, i64, bool)]| -> Vec<(i64, i64)> {
        fills.iter().map(|f| (f.1, f.2)).collect()
    };
    assert_eq!(prices(&first), [(px(3500), qty(10)), (px(3501), qty(15))]);
    assert_eq!(prices(&second), prices(&first));
    assert_eq!(v.position(), qty(50));
}

#[test]
fn a_walk_stops_after_a_thousand_levels() {
    // 1,001 asks of 1 lot: a market buy of 1,001 takes the first 1,000 and expires the last.
    let mut v = Venue::plain();
    let asks: Vec<(i64, i64)> = (0..1001).map(|i| (3500 + i, 1)).collect();
    v.snapshot(&[(3498, 1)], &asks);
    v.clear();
    v.send(&market(1, side::BUY, 1001));
    let fills = v.fills();
    assert_eq!(fills.len(), 1000);
    assert_eq!(fills[999].px, px(4499));
    assert_eq!(v.position(), qty(1000));
}

#[test]
fn a_taker_on_an_empty_book_takes_nothing() {
    let mut v = Venue::plain();
    v.send(&market(1, side::BUY, 5));
    assert!(v.fills().is_empty());
    v.send(&buy(2, 3500, 5));
    assert_eq!(v.working(), [2]);
    assert_eq!(v.ahead(2), 0.0);
}

#[test]
fn the_rest_of_a_sell_limit_through_the_bids_waits_for_a_better_bid() {
    let mut v = Venue::plain();
    book(&mut v);
    // 15 at 3.498 and 25 at 3.497 taken; 10 rest at 3.497 with the book's bids still there.
    v.send(&sell(1, 3497, 50));
    assert_eq!(v.position(), -qty(40));
    v.clear();
    v.depth(&[(3490, 5)], &[(3510, 5)]);
    v.ticker(3498, 3500);
    assert!(v.fills().is_empty());
    v.depth(&[(3499, 2)], &[]); // a new buyer above the 3.498 it took
    assert_eq!(v.fill_briefs(), [(1, px(3497), qty(10), true)]);
}

#[test]
fn the_rest_of_a_sell_limit_fills_when_the_bids_cross_it_again_after_leaving_it() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3497, 50));
    v.clear();
    v.ticker(3496, 3500); // the bids it took are gone
    assert!(v.fills().is_empty());
    v.ticker(3497, 3500);
    assert_eq!(v.fill_briefs(), [(1, px(3497), qty(10), true)]);
}

#[test]
fn a_side_emptied_by_a_resync_does_not_make_the_same_liquidity_new() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3497, 50)); // 10 rest at 3.497 through the bids at 3.498
    v.clear();
    // A crossed diff: the book clears and waits for a snapshot, which shows the same bids.
    v.depth(&[(3501, 1)], &[]);
    v.snapshot(&[(3498, 15), (3497, 25)], &[(3500, 10)]);
    assert!(v.fills().is_empty());
    assert_eq!(v.working(), [1]);
}

#[test]
fn a_market_order_ignores_the_price_it_carries() {
    let mut v = Venue::plain();
    book(&mut v);
    let sell = OrderRequest {
        px: px(3600),
        ..market(1, side::SELL, 20)
    };
    v.send(&sell);
    let buy = OrderRequest {
        px: px(3400),
        ..market(2, side::BUY, 20)
    };
    v.send(&buy);
    assert_eq!(
        v.fill_briefs(),
        [
            (1, px(3498), qty(15), false),
            (1, px(3497), qty(5), false),
            (2, px(3500), qty(10), false),
            (2, px(3501), qty(10), false),
        ]
    );
}
