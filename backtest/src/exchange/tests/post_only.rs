//! Post-only orders (FIX ExecInst 6): refused when they would take liquidity on arrival, from
//! the market or from our own resting orders; resting as makers otherwise; a post-only replace
//! that would take is refused whole and the order it names works on.

use super::*;
use levibot_shm::records::order_flag;

fn post_only(mut order: OrderRequest) -> OrderRequest {
    order.flags = order_flag::POST_ONLY;
    order
}

fn book(v: &mut Venue) {
    v.snapshot(&[(3498, 10)], &[(3500, 10), (3501, 10)]);
    v.clear();
}

#[test]
fn a_post_only_order_at_or_through_the_touch_is_refused_and_takes_nothing() {
    let mut v = Venue::plain();
    book(&mut v);
    for (order, side_name) in [
        (post_only(buy(1, 3500, 5)), "buy at the ask"),
        (post_only(buy(2, 3501, 5)), "buy through the ask"),
        (post_only(sell(3, 3498, 5)), "sell at the bid"),
    ] {
        v.send(&order);
        let reports = v.reports();
        assert_eq!(reports.len(), 1, "{side_name}: {reports:?}");
        assert_eq!(
            (reports[0].client_order_id, reports[0].exec_type),
            (order.client_order_id, exec_type::REJECTED),
            "{side_name}"
        );
        assert_eq!(v.rejects(), ["post_only_would_take"], "{side_name}");
        assert!(v.fills().is_empty(), "{side_name}");
    }
    assert_eq!(v.ex.position(NKN), 0);
    assert!(v.ex.working_order_ids().is_empty());
}

#[test]
fn a_post_only_order_inside_the_spread_rests_and_fills_as_a_maker() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&post_only(buy(1, 3499, 5)));
    assert_eq!(brief(&v.reports()[0]), new_ack(1, qty(5)));
    assert_eq!(v.ex.working_order_ids(), vec![1]);
    // The market sells through it: filled whole, as a maker.
    v.sold(3497, 20);
    let fills = v.fills();
    assert_eq!(fills.len(), 1);
    assert!(fills[0].maker);
    assert_eq!((fills[0].px, fills[0].qty), (px(3499), qty(5)));
}

#[test]
fn a_post_only_order_that_would_meet_our_own_is_refused() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&sell(1, 3499, 5));
    v.clear();
    v.send(&post_only(buy(2, 3499, 5)));
    assert_eq!(v.rejects(), ["post_only_would_take"]);
    assert_eq!(v.ex.working_order_ids(), vec![1]);
}

#[test]
fn a_post_only_replace_that_would_take_is_refused_and_the_order_works_on() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&post_only(buy(1, 3499, 5)));
    v.clear();
    let mut onto_the_ask = replace(2, 1, 3500, 5);
    onto_the_ask.flags = order_flag::POST_ONLY;
    v.send(&onto_the_ask);
    let reports = v.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        (reports[0].client_order_id, reports[0].exec_type),
        (2, exec_type::REJECTED)
    );
    assert_eq!(v.ex.working_order_ids(), vec![1]);
    assert!(v.fills().is_empty());
    // The same replace without the flag takes.
    v.send(&replace(3, 1, 3500, 5));
    assert!(!v.fills().is_empty());
}
