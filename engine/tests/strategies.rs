//! The two strategies on a real book and real features: what they send, and how they react to
//! execution reports and to new parameters.

use levibot_engine::book::{BookLimits, OrderBook};
use levibot_engine::features::{BarSource, FeatureConfig, Features};
use levibot_engine::strategy::maker::{Maker, MakerParams};
use levibot_engine::strategy::signal::{Signal, SignalParams};
use levibot_engine::strategy::{Grid, MarketView, OrderSink, Strategy, params_mailbox};
use levibot_gateway::binance::DepthSnapshot;
use levibot_shm::records::{
    ExecutionReport, Level, exec_type, order_flag, order_kind, side, time_in_force,
};

const ID: u32 = 0;
const GRID: Grid = Grid {
    tick_units: 10,
    lot_units: 100,
};

fn book(bid: Level, ask: Level) -> OrderBook {
    let mut book = OrderBook::new(ID, BookLimits::DEFAULT).unwrap();
    let _ = book
        .apply_snapshot(&DepthSnapshot {
            instrument_id: ID,
            last_update_id: 1,
            bids: &[bid],
            asks: &[ask],
        })
        .unwrap();
    book
}

fn view<'a>(book: &'a OrderBook, features: &'a Features, ts_ns: u64) -> MarketView<'a> {
    MarketView {
        instrument_id: ID,
        grid: GRID,
        book,
        features,
        ts_ns,
        recv_tsc: 9,
        output_wanted: true,
    }
}

fn fill(client_order_id: u64, order_side: u8, px: i64, qty: i64, leaves: i64) -> ExecutionReport {
    ExecutionReport {
        client_order_id,
        instrument_id: ID,
        exec_type: exec_type::TRADE,
        side: order_side,
        px,
        last_px: px,
        last_qty: qty,
        leaves_qty: leaves,
        ..ExecutionReport::default()
    }
}

fn ack(client_order_id: u64, order_side: u8, px: i64) -> ExecutionReport {
    ExecutionReport {
        client_order_id,
        instrument_id: ID,
        exec_type: exec_type::NEW,
        side: order_side,
        px,
        ..ExecutionReport::default()
    }
}

fn maker_params() -> MakerParams {
    MakerParams {
        half_spread_units: 25,
        quote_qty: 100,
        skew_units_per_qty: 0.1,
        requote_threshold_units: 15,
        inventory_max: 200,
        post_only: false,
    }
}

#[test]
fn a_post_only_maker_flags_its_quotes_and_their_replacements() {
    let bid = Level { px: 1000, qty: 500 };
    let ask = Level { px: 1100, qty: 500 };
    let b = book(bid, ask);
    let mut f = Features::new(FeatureConfig::DEFAULT).unwrap();
    f.on_book_top(bid, ask, 1);
    let params = MakerParams {
        post_only: true,
        requote_threshold_units: 0,
        ..maker_params()
    };
    let mut maker = Maker::new(ID, params).unwrap();
    let mut out = OrderSink::new(1, 1);
    out.begin(9);
    maker.on_market(&view(&b, &f, 1), &mut out);
    let orders = out.orders().to_vec();
    assert_eq!(orders.len(), 2);
    assert!(
        orders.iter().all(|o| o.flags == order_flag::POST_ONLY),
        "{orders:?}"
    );
    for o in &orders {
        maker.on_execution(&ack(o.client_order_id, o.side, o.px), &mut out);
    }
    out.begin(10);
    f.on_book_top(
        Level { px: 1040, qty: 500 },
        Level { px: 1140, qty: 500 },
        2,
    );
    maker.on_market(&view(&b, &f, 2), &mut out);
    let replaces = out.orders();
    assert!(!replaces.is_empty());
    assert!(
        replaces
            .iter()
            .all(|o| o.kind == order_kind::REPLACE && o.flags == order_flag::POST_ONLY)
    );
    // Without it, nothing is flagged.
    let mut plain = Maker::new(ID, maker_params()).unwrap();
    let mut out = OrderSink::new(1, 1);
    out.begin(9);
    plain.on_market(&view(&b, &f, 1), &mut out);
    assert!(out.orders().iter().all(|o| o.flags == 0));
}

#[test]
fn maker_quotes_around_the_microprice_on_the_grid_and_skews_with_inventory() {
    let bid = Level { px: 1000, qty: 500 };
    let ask = Level { px: 1100, qty: 500 };
    let b = book(bid, ask);
    let mut f = Features::new(FeatureConfig::DEFAULT).unwrap();
    f.on_book_top(bid, ask, 1);
    let mut maker = Maker::new(ID, maker_params()).unwrap();
    let mut out = OrderSink::new(1, 1);
    out.begin(9);
    maker.on_market(&view(&b, &f, 1), &mut out);
    // Microprice 1050: bid floor(1025) = 1020, ask ceil(1075) = 1080.
    let orders = out.orders();
    assert_eq!(orders.len(), 2);
    assert_eq!(
        (orders[0].side, orders[0].px, orders[0].qty, orders[0].kind),
        (side::BUY, 1020, 100, order_kind::NEW)
    );
    assert_eq!(
        (orders[1].side, orders[1].px, orders[1].time_in_force),
        (side::SELL, 1080, time_in_force::GTC)
    );
    assert_eq!(orders[0].created_tsc, 9);
    let bid_id = orders[0].client_order_id;
    let ask_id = orders[1].client_order_id;
    maker.on_execution(&ack(bid_id, side::BUY, 1020), &mut out);
    maker.on_execution(&ack(ask_id, side::SELL, 1080), &mut out);

    // A small move (within the threshold) sends nothing.
    out.begin(10);
    f.on_book_top(Level { px: 1000, qty: 600 }, ask, 2);
    maker.on_market(&view(&b, &f, 2), &mut out);
    assert!(out.orders().is_empty(), "{:?}", out.orders());

    // Bought 100: the fair price skews down by 10; with 200 held it stops bidding.
    maker.on_execution(&fill(bid_id, side::BUY, 1020, 100, 0), &mut out);
    assert_eq!(maker.inventory(), 100);
    assert_eq!(maker.quotes().0, None, "the filled bid is gone");
    out.begin(11);
    f.on_book_top(bid, ask, 3);
    maker.on_market(&view(&b, &f, 3), &mut out);
    // Fair 1040: bid floor(1015) = 1010 re-placed; ask target ceil(1065) = 1070, moved 10 <= 15.
    assert_eq!(out.orders().len(), 1);
    assert_eq!(
        (out.orders()[0].side, out.orders()[0].px),
        (side::BUY, 1010)
    );
    let bid_id = out.orders()[0].client_order_id;
    maker.on_execution(&fill(bid_id, side::BUY, 1010, 100, 0), &mut out);
    out.begin(12);
    maker.on_market(&view(&b, &f, 4), &mut out);
    // Inventory 200 = max: no bid; fair 1030 -> ask ceil(1055) = 1060, moved 20 > 15: replaced.
    assert_eq!(out.orders().len(), 1, "{:?}", out.orders());
    assert_eq!(
        (
            out.orders()[0].kind,
            out.orders()[0].side,
            out.orders()[0].px
        ),
        (order_kind::REPLACE, side::SELL, 1060)
    );
    let replace_id = out.orders()[0].client_order_id;
    assert_eq!(out.orders()[0].orig_client_order_id, ask_id);

    // One request at a time: while the replace is unanswered, a further move sends nothing.
    out.begin(13);
    f.on_book_top(Level { px: 900, qty: 500 }, Level { px: 1000, qty: 500 }, 5);
    maker.on_market(&view(&b, &f, 5), &mut out);
    assert!(out.orders().is_empty(), "{:?}", out.orders());

    // Refused (by risk or the venue): the original ask at 1080 is still the working quote...
    let mut refused = ack(replace_id, side::SELL, 1060);
    refused.exec_type = exec_type::REJECTED;
    maker.on_execution(&refused, &mut out);
    assert_eq!(maker.quotes().1, Some(1080));
    // ...and the next move replaces it again.
    out.begin(14);
    maker.on_market(&view(&b, &f, 6), &mut out);
    assert_eq!(out.orders().len(), 1, "{:?}", out.orders());
    assert_eq!(
        (out.orders()[0].kind, out.orders()[0].orig_client_order_id),
        (order_kind::REPLACE, ask_id)
    );
}

#[test]
fn a_refused_quote_is_not_asked_again_until_the_target_moves_or_a_report_comes() {
    let bid = Level { px: 1000, qty: 500 };
    let ask = Level { px: 1100, qty: 500 };
    let b = book(bid, ask);
    let mut f = Features::new(FeatureConfig::DEFAULT).unwrap();
    f.on_book_top(bid, ask, 1);
    let mut maker = Maker::new(ID, maker_params()).unwrap();
    let mut out = OrderSink::new(1, 1);
    out.begin(9);
    maker.on_market(&view(&b, &f, 1), &mut out);
    let (bid_id, ask_id) = (
        out.orders()[0].client_order_id,
        out.orders()[1].client_order_id,
    );
    // Risk refuses the bid at 1020 (say, self-trade while the ask is unanswered).
    let mut refused = ack(bid_id, side::BUY, 1020);
    refused.exec_type = exec_type::REJECTED;
    maker.on_execution(&refused, &mut out);
    assert_eq!(maker.quotes().0, None);
    // The same market, event after event: the refused bid is not sent again.
    for ts in 2..6 {
        out.begin(10 + ts);
        maker.on_market(&view(&b, &f, ts), &mut out);
        assert!(out.orders().is_empty(), "event {ts}: {:?}", out.orders());
    }
    // A report changes what is working (the ask is acknowledged): the bid is asked again, once.
    maker.on_execution(&ack(ask_id, side::SELL, 1080), &mut out);
    out.begin(20);
    maker.on_market(&view(&b, &f, 6), &mut out);
    assert_eq!(out.orders().len(), 1, "{:?}", out.orders());
    assert_eq!(
        (out.orders()[0].side, out.orders()[0].px),
        (side::BUY, 1020)
    );
    let again = out.orders()[0].client_order_id;
    let mut refused = ack(again, side::BUY, 1020);
    refused.exec_type = exec_type::REJECTED;
    maker.on_execution(&refused, &mut out);
    out.begin(21);
    maker.on_market(&view(&b, &f, 7), &mut out);
    assert!(out.orders().is_empty(), "{:?}", out.orders());
    // The target moves (microprice 1000 -> bid floor(975) = 970): asked at the new price (and
    // the ask, 50 away, is replaced).
    f.on_book_top(Level { px: 900, qty: 500 }, Level { px: 1100, qty: 500 }, 8);
    out.begin(22);
    maker.on_market(&view(&b, &f, 8), &mut out);
    let bids: Vec<_> = out
        .orders()
        .iter()
        .filter(|o| o.side == side::BUY)
        .collect();
    assert_eq!(bids.len(), 1, "{:?}", out.orders());
    assert_eq!((bids[0].kind, bids[0].px), (order_kind::NEW, 970));
}

#[test]
fn a_restarted_maker_starts_from_the_position_it_holds() {
    let bid = Level { px: 1000, qty: 500 };
    let ask = Level { px: 1100, qty: 500 };
    let b = book(bid, ask);
    let mut f = Features::new(FeatureConfig::DEFAULT).unwrap();
    f.on_book_top(bid, ask, 1);
    // Long 200 (inventory_max): skewed down by 20 and only offering.
    let mut maker = Maker::new(ID, maker_params()).unwrap();
    maker.start_from_position(200);
    assert_eq!(maker.inventory(), 200);
    let mut out = OrderSink::new(1, 1);
    out.begin(9);
    maker.on_market(&view(&b, &f, 1), &mut out);
    let orders = out.orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    // Microprice 1050 - 20 = 1030: ask ceil(1055) = 1060.
    assert_eq!((orders[0].side, orders[0].px), (side::SELL, 1060));
}

#[test]
fn maker_pulls_its_quotes_when_the_book_is_not_synced() {
    let bid = Level { px: 1000, qty: 500 };
    let ask = Level { px: 1100, qty: 500 };
    let mut b = book(bid, ask);
    let mut f = Features::new(FeatureConfig::DEFAULT).unwrap();
    f.on_book_top(bid, ask, 1);
    let mut maker = Maker::new(ID, maker_params()).unwrap();
    let mut out = OrderSink::new(1, 1);
    out.begin(1);
    maker.on_market(&view(&b, &f, 1), &mut out);
    assert_eq!(out.orders().len(), 2);
    b.mark_needs_resync();
    // The book is cleared: no top, nothing to quote from; features still hold the old top.
    out.begin(2);
    maker.on_market(&view(&b, &f, 2), &mut out);
    assert!(out.orders().len() <= 2);
    assert!(out.orders().iter().all(|o| o.kind == order_kind::CANCEL));
}

#[test]
fn maker_params_are_validated_and_replaced_through_the_mailbox() {
    let mut bad = maker_params();
    bad.quote_qty = 0;
    let err = Maker::new(ID, bad).unwrap_err();
    assert!(err.to_string().contains("quote_qty"), "{err}");
    let mut maker = Maker::new(ID, maker_params()).unwrap();
    let (mut tx, mut rx) = params_mailbox();
    let mut wider = maker_params();
    wider.half_spread_units = 100;
    assert!(tx.send(maker_params()) && tx.send(wider));
    assert!(rx.apply_to(&mut maker));
    assert_eq!(maker.params(), wider, "the newest update wins");
    assert!(!rx.apply_to(&mut maker));
}

fn signal_params() -> SignalParams {
    SignalParams {
        weights: [1.0, 0.0, 0.0, 0.0],
        entry_threshold: 0.5,
        risk_budget: 60_000.0,
        atr_multiple: 2.0,
        // Off the grid's ticks at the test's ATR (100 units): the take-profit is rounded.
        take_profit_atr: 2.13,
        stop_loss_atr: 1.0,
        qty_max: 10_000,
        model: None,
        price_unit: 1e-8,
    }
}

/// Features whose ATR is known: 1 ms bars of the mid over a range of 100 units, then a
/// bid-heavy top (imbalance 0.8).
fn warmed_features() -> (Features, u64) {
    let config = FeatureConfig {
        atr_bar_ns: 1_000_000,
        atr_bars: 2,
        atr_source: BarSource::Mid,
        ..FeatureConfig::DEFAULT
    };
    let mut f = Features::new(config).unwrap();
    let mut ts = 0;
    for bar in 0..4u64 {
        for (k, mid_offset) in [0i64, 100, 0].into_iter().enumerate() {
            ts = bar * 1_000_000 + k as u64 * 300_000;
            f.on_book_top(
                Level {
                    px: 1000 + mid_offset,
                    qty: 500,
                },
                Level {
                    px: 1100 + mid_offset,
                    qty: 500,
                },
                ts,
            );
        }
    }
    ts += 1_000_000;
    f.on_book_top(
        Level { px: 1000, qty: 900 },
        Level { px: 1100, qty: 100 },
        ts,
    );
    assert!(f.atr().is_some(), "ATR ready");
    (f, ts)
}

#[test]
fn signal_enters_sized_by_atr_brackets_the_fill_and_stops_out() {
    let (f, ts) = warmed_features();
    let atr = f.atr().unwrap();
    let b = book(Level { px: 1000, qty: 900 }, Level { px: 1100, qty: 100 });
    let mut s = Signal::new(ID, signal_params()).unwrap();
    let mut out = OrderSink::new(2, 50);
    out.begin(1);
    s.on_market(&view(&b, &f, ts), &mut out);
    let entry = out.orders()[0];
    let expected_qty = GRID.floor_qty((60_000.0 / (2.0 * atr)) as i64);
    assert!(expected_qty > 0);
    assert_eq!(
        (entry.side, entry.px, entry.qty, entry.time_in_force),
        (side::BUY, 1100, expected_qty, time_in_force::IOC)
    );

    // Filled at 1100: take-profit resting at 1100 + 2.13 ATR, up to the next tick (10 units);
    // stop watched at 1100 - 1 ATR.
    out.begin(2);
    s.on_execution(
        &fill(entry.client_order_id, side::BUY, 1100, expected_qty, 0),
        &mut out,
    );
    assert_eq!(s.position(), expected_qty);
    let tp = out.orders()[0];
    let tp_px = 1100 + (2.13 * atr) as i64;
    assert_ne!(tp_px % 10, 0, "the test needs a take-profit off the grid");
    let tp_on_grid = (tp_px + 9) / 10 * 10;
    assert_eq!(
        (tp.side, tp.px, tp.qty, tp.time_in_force),
        (side::SELL, tp_on_grid, expected_qty, time_in_force::GTC)
    );
    assert!(tp_on_grid >= tp_px && tp_on_grid - tp_px < 10);
    assert_eq!(s.stop_px(), Some(1100 - atr as i64));

    // The bid falls through the stop: cancel the take-profit, exit with an IOC at the bid.
    let low = book(Level { px: 900, qty: 100 }, Level { px: 1000, qty: 100 });
    out.begin(3);
    s.on_market(&view(&low, &f, ts + 1), &mut out);
    let orders = out.orders().to_vec();
    assert_eq!(
        (orders[0].kind, orders[0].orig_client_order_id),
        (order_kind::CANCEL, tp.client_order_id)
    );
    assert_eq!(
        (
            orders[1].side,
            orders[1].px,
            orders[1].qty,
            orders[1].time_in_force
        ),
        (side::SELL, 900, expected_qty, time_in_force::IOC)
    );
    out.begin(4);
    s.on_execution(
        &fill(orders[1].client_order_id, side::SELL, 900, expected_qty, 0),
        &mut out,
    );
    assert_eq!(s.position(), 0);
    assert_eq!(s.stop_px(), None);
}

#[test]
fn signal_stays_out_below_its_threshold_and_rejects_bad_params() {
    let (f, ts) = warmed_features();
    let b = book(Level { px: 1000, qty: 900 }, Level { px: 1100, qty: 100 });
    let mut p = signal_params();
    p.entry_threshold = 0.95;
    let mut s = Signal::new(ID, p).unwrap();
    let mut out = OrderSink::new(2, 1);
    out.begin(1);
    s.on_market(&view(&b, &f, ts), &mut out);
    assert!(out.orders().is_empty());
    p.atr_multiple = 0.0;
    assert!(
        Signal::new(ID, p)
            .unwrap_err()
            .to_string()
            .contains("atr_multiple")
    );
}

/// A bid-light top: the vote (imbalance, weight 1) is -0.8, a sell.
fn sell_book() -> OrderBook {
    book(Level { px: 1000, qty: 100 }, Level { px: 1100, qty: 900 })
}

#[test]
fn a_short_entry_takes_profit_below_on_the_grid() {
    let (mut f, ts) = warmed_features();
    f.on_book_top(
        Level { px: 1000, qty: 100 },
        Level { px: 1100, qty: 900 },
        ts + 1,
    );
    let atr = f.atr().unwrap();
    let b = sell_book();
    let mut s = Signal::new(ID, signal_params()).unwrap();
    let mut out = OrderSink::new(2, 50);
    out.begin(1);
    s.on_market(&view(&b, &f, ts + 1), &mut out);
    let entry = out.orders()[0];
    assert_eq!((entry.side, entry.px), (side::SELL, 1000));
    out.begin(2);
    s.on_execution(
        &fill(entry.client_order_id, side::SELL, 1000, entry.qty, 0),
        &mut out,
    );
    let tp = out.orders()[0];
    let tp_px = 1000 - (2.13 * atr) as i64;
    assert_ne!(tp_px % 10, 0, "the test needs a take-profit off the grid");
    let tp_on_grid = tp_px.div_euclid(10) * 10;
    assert_eq!((tp.side, tp.px, tp.qty), (side::BUY, tp_on_grid, entry.qty));
    assert!(tp_on_grid <= tp_px && tp_px - tp_on_grid < 10);
    assert_eq!(s.position(), -entry.qty);
}

#[test]
fn a_refused_entry_is_not_sent_again_until_the_vote_falls_back() {
    let (mut f, ts) = warmed_features();
    let b = book(Level { px: 1000, qty: 900 }, Level { px: 1100, qty: 100 });
    let mut s = Signal::new(ID, signal_params()).unwrap();
    let mut out = OrderSink::new(2, 50);
    out.begin(1);
    s.on_market(&view(&b, &f, ts), &mut out);
    let entry = out.orders()[0];
    // Risk refuses it (a notional minimum, say): nothing filled.
    out.begin(2);
    s.on_execution(
        &ExecutionReport {
            client_order_id: entry.client_order_id,
            instrument_id: ID,
            exec_type: exec_type::REJECTED,
            side: entry.side,
            px: entry.px,
            ..ExecutionReport::default()
        },
        &mut out,
    );
    assert_eq!(s.position(), 0);
    // The vote still says buy: no new entry, event after event.
    for n in 0..5 {
        out.begin(3 + n);
        s.on_market(&view(&b, &f, ts + n), &mut out);
        assert!(out.orders().is_empty(), "entry sent again at event {n}");
    }
    // The vote falls back below the threshold (a balanced top), then rises again: a new entry.
    let even = book(Level { px: 1000, qty: 500 }, Level { px: 1100, qty: 500 });
    f.on_book_top(
        Level { px: 1000, qty: 500 },
        Level { px: 1100, qty: 500 },
        ts + 10,
    );
    out.begin(20);
    s.on_market(&view(&even, &f, ts + 10), &mut out);
    assert!(out.orders().is_empty());
    f.on_book_top(
        Level { px: 1000, qty: 900 },
        Level { px: 1100, qty: 100 },
        ts + 11,
    );
    out.begin(21);
    s.on_market(&view(&b, &f, ts + 11), &mut out);
    assert_eq!(out.orders().len(), 1);
    assert_eq!(out.orders()[0].side, side::BUY);
    // An entry that expires unfilled (the book moved) is no refusal: the next event may enter.
    let again = out.orders()[0];
    out.begin(22);
    s.on_execution(
        &ExecutionReport {
            client_order_id: again.client_order_id,
            instrument_id: ID,
            exec_type: exec_type::EXPIRED,
            side: again.side,
            px: again.px,
            ..ExecutionReport::default()
        },
        &mut out,
    );
    out.begin(23);
    s.on_market(&view(&b, &f, ts + 12), &mut out);
    assert_eq!(out.orders().len(), 1);
}
