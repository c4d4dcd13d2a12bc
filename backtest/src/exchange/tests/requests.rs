//! Requests: the filters' refusals, cancels, replaces, mass cancels, and the reports' fields.

use super::*;

fn book(v: &mut Venue) {
    v.snapshot(&[(3498, 10)], &[(3500, 10), (3501, 10)]);
    v.clear();
}

/// The request is refused, REJECTED under its own id, for `reason`.
#[track_caller]
fn refused(v: &mut Venue, order: &OrderRequest, reason: &str) {
    v.send(order);
    let reports = v.reports();
    assert_eq!(reports.len(), 1, "{reason}: {reports:?}");
    let r = reports[0];
    assert_eq!(
        (
            r.client_order_id,
            r.exec_type,
            r.ord_status,
            r.reject_reason
        ),
        (order.client_order_id, exec_type::REJECTED, b'8', 99),
        "{reason}"
    );
    assert_eq!(
        (r.px, r.side, r.instrument_id),
        (order.px, order.side, order.instrument_id)
    );
    assert_eq!((r.cum_qty, r.leaves_qty, r.venue_order_id), (0, 0, 0));
    assert_eq!(v.rejects(), [reason]);
}

#[test]
fn orders_that_break_a_filter_are_rejected_with_its_name() {
    let mut v = Venue::plain();
    book(&mut v);
    let gtc = time_in_force::GTC;
    let cases = [
        (
            limit(1, side::BUY, px(3498) + TICK / 2, qty(5), gtc),
            "price_off_tick",
        ),
        (
            limit(2, side::BUY, px(3498), qty(5) + LOT / 2, gtc),
            "qty_off_lot",
        ),
        (limit(3, side::BUY, px(3498), 0, gtc), "qty_off_lot"),
        // 2 NKN at 3.498 = 6.996 USDT, under the 10 minimum.
        (
            limit(4, side::BUY, px(3498), qty(2), gtc),
            "notional_too_small",
        ),
        (
            limit(5, side::BUY, px(3498), qty(9_000_001), gtc),
            "qty_out_of_range",
        ),
        // Above the 1,000 USDT maximum price.
        (
            limit(6, side::SELL, 1000 * UNIT + TICK, qty(5), gtc),
            "price_out_of_range",
        ),
        (limit(7, 3, px(3498), qty(5), gtc), "unsupported"),
        (limit(8, side::BUY, px(3498), qty(5), 2), "unsupported"),
        (
            OrderRequest {
                ord_type: 9,
                ..limit(9, side::BUY, px(3498), qty(5), gtc)
            },
            "unsupported",
        ),
        (
            OrderRequest {
                instrument_id: 2,
                ..limit(10, side::BUY, px(3498), qty(5), gtc)
            },
            "unknown_instrument",
        ),
        (
            OrderRequest {
                kind: levibot_shm::records::order_kind::MASS_STATUS,
                ..limit(11, side::BUY, px(3498), qty(5), gtc)
            },
            "unsupported_request",
        ),
    ];
    for (order, reason) in cases {
        refused(&mut v, &order, reason);
    }
    assert!(v.working().is_empty());
}

#[test]
fn a_market_order_needs_no_price_nor_the_minimum_notional() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&market(1, side::BUY, 1));
    assert_eq!(v.position(), qty(1));
}

#[test]
fn a_client_order_id_that_is_working_is_refused() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3497, 5));
    v.clear();
    refused(&mut v, &buy(1, 3496, 5), "duplicate_client_order_id");
    assert_eq!(v.working(), [1]);
    // Once it is done, the id may be used again.
    v.send(&cancel(2, 1));
    v.send(&buy(1, 3496, 5));
    assert!(v.briefs().contains(&new_ack(1, qty(5))));
}

#[test]
fn reports_carry_the_order_and_venue_ids_side_price_and_instrument() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(7, 3497, 5));
    v.send(&sell(8, 3500, 5));
    let reports = v.reports();
    let got: Vec<(u64, u64, u8, i64, u32)> = reports
        .iter()
        .map(|r| {
            (
                r.client_order_id,
                r.venue_order_id,
                r.side,
                r.px,
                r.instrument_id,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (7, 1, side::BUY, px(3497), NKN),
            (8, 2, side::SELL, px(3500), NKN),
        ]
    );
}

#[test]
fn a_cancel_is_reported_canceled_under_the_cancelled_order_id() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 8));
    v.sold(3498, 13); // 10 ahead: 3 fill
    v.clear();
    v.send(&cancel(2, 1));
    assert_eq!(
        v.briefs(),
        [(1, exec_type::CANCELED, 0, 0, qty(3), 0, exec_type::CANCELED)]
    );
    assert!(v.working().is_empty());
    // Nothing of it is left to fill.
    v.sold(3490, 1);
    assert!(v.fills().is_empty());
    assert_eq!(v.position(), qty(3));
}

#[test]
fn a_cancel_of_an_unknown_or_filled_order_is_rejected_under_the_cancel_id() {
    let mut v = Venue::plain();
    book(&mut v);
    refused(&mut v, &cancel(2, 1), "unknown_order");
    v.send(&buy(3, 3500, 5)); // fills at once
    v.clear();
    refused(&mut v, &cancel(4, 3), "unknown_order");
}

#[test]
fn a_replace_to_a_smaller_quantity_at_the_same_price_keeps_its_queue_place() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 10));
    v.depth(&[(3498, 12)], &[]);
    v.send(&buy(2, 3498, 5));
    v.clear();
    v.send(&replace(3, 1, 3498, 8));
    assert_eq!(
        v.briefs(),
        [(3, exec_type::REPLACED, 0, 0, 0, qty(8), exec_type::REPLACED)]
    );
    assert_eq!(v.working(), [2, 3]);
    assert_eq!(v.ahead(3), 10.0);
    // Still first: 11 pass its 10 ahead by 1.
    v.sold(3498, 11);
    assert_eq!(v.fill_briefs(), [(3, px(3498), qty(1), true)]);
}

#[test]
fn a_replace_to_a_larger_quantity_goes_to_the_back() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 10));
    v.depth(&[(3498, 12)], &[]);
    v.send(&buy(2, 3498, 5));
    v.send(&replace(3, 1, 3498, 20));
    assert_eq!(v.ahead(3), 12.0);
    v.clear();
    // 13: B (12 ahead) fills 1; the replaced order is behind B and sees 12.
    v.sold(3498, 13);
    assert_eq!(v.fill_briefs(), [(2, px(3498), qty(1), true)]);
    assert_eq!(v.ahead(3), 0.0);
}

#[test]
fn a_replace_to_another_price_joins_that_queue_at_its_back() {
    let mut v = Venue::plain();
    v.snapshot(&[(3498, 10), (3497, 40)], &[(3500, 10)]);
    v.send(&buy(1, 3498, 10));
    v.send(&replace(2, 1, 3497, 10));
    assert_eq!(v.ahead(2), 40.0);
    v.clear();
    v.sold(3498, 100); // the old price trades, past its old place: not ours any more
    assert!(v.fills().is_empty());
    v.sold(3497, 41);
    assert_eq!(v.fill_briefs(), [(2, px(3497), qty(1), true)]);
}

#[test]
fn a_replace_through_the_book_takes_then_rests_and_keeps_what_had_filled() {
    let mut v = Venue::new(ExchangeConfig {
        taker_fee_ppm: 100,
        ..ExchangeConfig::default()
    });
    book(&mut v);
    v.send(&buy(1, 3498, 10));
    v.sold(3498, 14); // 4 fill
    v.clear();
    v.send(&replace(2, 1, 3500, 20));
    // 16 left of 20: 10 taken at 3.500, 6 rest.
    assert_eq!(
        v.briefs(),
        [
            (
                2,
                exec_type::REPLACED,
                0,
                0,
                qty(4),
                qty(16),
                exec_type::REPLACED
            ),
            trade_report(2, px(3500), qty(10), qty(14), qty(6)),
        ]
    );
    let fills = v.fills();
    assert_eq!(
        (fills[0].maker, fills[0].fee_scaled),
        (false, 350_000_000i128 * 1_000_000_000 * 100)
    );
    assert_eq!(v.working(), [2]);
    assert_eq!(v.position(), qty(14));
}

#[test]
fn a_replace_to_no_more_than_what_filled_cancels_the_order() {
    for new_qty in [4, 3] {
        let mut v = Venue::plain();
        book(&mut v);
        v.send(&buy(1, 3498, 10));
        v.sold(3498, 14); // 4 fill
        v.clear();
        v.send(&replace(2, 1, 3498, new_qty));
        assert_eq!(
            v.briefs(),
            [(1, exec_type::CANCELED, 0, 0, qty(4), 0, exec_type::CANCELED)],
            "{new_qty}"
        );
        assert!(v.working().is_empty());
    }
}

#[test]
fn a_replace_is_refused_when_unknown_off_the_filters_or_its_id_is_taken() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3497, 10));
    v.send(&buy(2, 3496, 10));
    v.clear();
    refused(&mut v, &replace(3, 9, 3497, 10), "unknown_order");
    let off_tick = OrderRequest {
        px: px(3497) + 1,
        ..replace(3, 1, 3497, 10)
    };
    refused(&mut v, &off_tick, "price_off_tick");
    refused(&mut v, &replace(3, 1, 3497, 2), "notional_too_small");
    refused(&mut v, &replace(2, 1, 3497, 5), "duplicate_client_order_id");
    assert_eq!(v.working(), [1, 2]);
}

#[test]
fn a_mass_cancel_cancels_an_instrument_or_everything_in_id_order() {
    let mut v = Venue::plain();
    book(&mut v);
    let rune_bid = OrderRequest {
        instrument_id: RUNE,
        ..limit(5, side::BUY, 889_800_000, 30 * RUNE_LOT, time_in_force::GTC)
    };
    v.send(&buy(9, 3497, 5));
    v.send(&rune_bid);
    v.send(&buy(3, 3496, 5));
    v.clear();
    let mass = |id: u64, instrument_id: u32| OrderRequest {
        instrument_id,
        ..request(order_kind::MASS_CANCEL, id)
    };
    v.send(&mass(20, NKN));
    let canceled: Vec<(u64, u8)> = v
        .reports()
        .iter()
        .map(|r| (r.client_order_id, r.exec_type))
        .collect();
    assert_eq!(
        canceled,
        [(3, exec_type::CANCELED), (9, exec_type::CANCELED)]
    );
    assert_eq!(v.working(), [5]);
    v.send(&buy(4, 3496, 5));
    v.clear();
    v.send(&mass(21, u32::MAX));
    let canceled: Vec<u64> = v.reports().iter().map(|r| r.client_order_id).collect();
    assert_eq!(canceled, [4, 5]);
    assert!(v.working().is_empty());
    // A mass cancel is not an order: the results see no request.
    assert!(
        !v.results()
            .iter()
            .any(|e| matches!(e, ResultEvent::Order { .. }))
    );
}

#[test]
fn requests_are_counted_by_kind_for_the_results() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3497, 5));
    v.send(&replace(2, 1, 3497, 4));
    v.send(&cancel(3, 2));
    let t = v.t_ns;
    let kinds: Vec<(u64, RequestKind)> = v
        .results()
        .into_iter()
        .filter_map(|e| match e {
            ResultEvent::Order {
                t_ns,
                instrument_id: NKN,
                kind,
            } => Some((t_ns, kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (t - 2 * MS, RequestKind::New),
            (t - MS, RequestKind::Replace),
            (t, RequestKind::Cancel),
        ]
    );
}

#[test]
fn reports_are_stamped_with_the_venue_time_of_what_made_them() {
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 5));
    let sent = v.t_ns;
    v.sold(3497, 1);
    let traded = v.t_ns;
    let times: Vec<u64> = v.ex.drain_answers().map(|a| a.venue_ns).collect();
    assert_eq!(times, [sent, traded]);
    let fills = v.fills();
    assert_eq!(fills[0].t_ns, traded);
}

#[test]
fn a_fill_after_a_replace_is_the_first_of_the_new_order() {
    // A replace places a new order (the results count it among the orders placed): its first
    // fill says so, even when the order it replaced had filled.
    let mut v = Venue::plain();
    book(&mut v);
    v.send(&buy(1, 3498, 10));
    v.sold(3498, 14); // 4 fill
    v.send(&replace(2, 1, 3498, 8));
    v.clear();
    v.sold(3498, 1);
    v.sold(3498, 1);
    let first: Vec<(u64, bool)> = v
        .fills()
        .iter()
        .map(|f| (f.client_order_id, f.order_first_fill))
        .collect();
    assert_eq!(first, [(2, true), (2, false)]);
}

#[test]
fn reports_and_fills_carry_the_instrument_of_the_order() {
    let mut v = Venue::plain();
    let (bid, ask) = (889_800_000, 890_100_000);
    v.snapshot_of(RUNE, &[(bid, 20 * RUNE_LOT)], &[(ask, 20 * RUNE_LOT)]);
    v.clear();
    let order = OrderRequest {
        instrument_id: RUNE,
        ..limit(1, side::BUY, ask, 30 * RUNE_LOT, time_in_force::GTC)
    };
    v.send(&order);
    let instruments: Vec<u32> = v.reports().iter().map(|r| r.instrument_id).collect();
    assert_eq!(instruments, [RUNE, RUNE]); // new, a trade of 2.0 (1.0 rests)
    let fills = v.fills();
    assert_eq!(
        (fills[0].instrument_id, fills[0].qty),
        (RUNE, 20 * RUNE_LOT)
    );
    assert_eq!((v.ex.position(RUNE), v.position()), (20 * RUNE_LOT, 0));
    let results = v.results();
    assert!(results.contains(&ResultEvent::Order {
        t_ns: v.t_ns,
        instrument_id: RUNE,
        kind: RequestKind::New
    }));
}
