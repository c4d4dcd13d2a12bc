//! Risk limits as values: replaced all or nothing (also through the mailbox), validated with the
//! key and the reason, built from exchangeInfo (the synthetic recording's and hand-made ones).

use levibot_engine::risk::{
    LimitProblem, OPEN_ORDERS_MAX, RATE_WINDOW_MAX, RECENT_ORDERS_MAX, RISK_INSTRUMENTS_MAX,
    RateLimit, RiskCheck, RiskEngine, RiskLimits, TradingState, quote,
};
use levibot_engine::strategy::params_mailbox;
use levibot_gateway::capture::Recording;
use levibot_gateway::decimal::Scale;
use levibot_gateway::instrument::{Instrument, InstrumentTable, Symbol, parse_exchange_info};
use levibot_shm::records::{OrderRequest, side};

use crate::common::desk::{desk, order};
use crate::common::{A, instrument, limits};

#[test]
fn limits_are_replaced_all_or_nothing_and_apply_to_the_next_order() {
    let mut d = desk();
    d.pass(order(A, side::BUY, 10_000, 1_000));
    // Invalid: a good change to A with a bad one elsewhere. Nothing changes.
    let mut bad = limits();
    bad.instruments[0].as_mut().unwrap().collar_bps = 1_000;
    bad.instruments[1].as_mut().unwrap().collar_bps = 0;
    let err = d.risk.replace_limits(bad).unwrap_err();
    assert_eq!(err.key, "instruments[BBBUSDT].collar_bps");
    assert_eq!(err.problem, LimitProblem::NotSet);
    assert!(
        err.to_string().contains("instruments[BBBUSDT].collar_bps"),
        "{err}"
    );
    assert_eq!(d.risk.limits(), &limits());
    assert_eq!(
        d.refuse(order(A, side::BUY, 10_500, 100)).0,
        RiskCheck::PriceCollar
    );
    // An instrument cannot change identity or disappear.
    let mut renamed = limits();
    renamed.instruments[1].as_mut().unwrap().symbol = Symbol::from_ascii(b"CCCUSDT").unwrap();
    let err = d.risk.replace_limits(renamed).unwrap_err();
    assert!(matches!(err.problem, LimitProblem::Changed { .. }), "{err}");
    let mut removed = limits();
    removed.instruments[1] = None;
    assert_eq!(
        d.risk.replace_limits(removed).unwrap_err().key,
        "instruments[BBBUSDT]"
    );
    // Valid: in force for the very next order; added instruments too.
    let mut good = limits();
    good.instruments[0].as_mut().unwrap().collar_bps = 1_000;
    good.instruments[2] = Some(instrument("CCCUSDT"));
    d.risk.replace_limits(good).unwrap();
    d.pass(order(A, side::BUY, 10_500, 100));
    assert_eq!(
        d.refuse(order(2, side::BUY, 10_000, 100)).0,
        RiskCheck::NoReferencePrice
    );
}

#[test]
fn limits_travel_whole_through_the_mailbox() {
    let mut d = desk();
    let (mut tx, mut rx) = params_mailbox::<RiskLimits>();
    assert!(d.risk.apply_pending_limits(&mut rx).is_none());
    let sender = std::thread::spawn(move || {
        let mut l = limits();
        l.instruments[0].as_mut().unwrap().collar_bps = 500;
        assert!(tx.send(l));
        tx
    });
    let mut tx = sender.join().unwrap();
    assert_eq!(d.risk.apply_pending_limits(&mut rx), Some(Ok(())));
    d.pass(order(A, side::BUY, 10_500, 100));
    let mut bad = limits();
    bad.open_orders_max = OPEN_ORDERS_MAX as u32 + 1;
    assert!(tx.send(bad));
    let err = d.risk.apply_pending_limits(&mut rx).unwrap().unwrap_err();
    assert_eq!(err.key, "open_orders_max");
    assert_eq!(d.risk.limits().instruments[0].unwrap().collar_bps, 500);
}

#[test]
fn validation_names_the_key_and_why() {
    type Spoil = Box<dyn Fn(&mut RiskLimits)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "instruments",
            Box::new(|l| l.instruments = [None; RISK_INSTRUMENTS_MAX]),
        ),
        ("open_orders_max", Box::new(|l| l.open_orders_max = 0)),
        (
            "instruments[AAAUSDT].open_orders_max",
            Box::new(|l| l.instruments[0].as_mut().unwrap().open_orders_max = 13),
        ),
        (
            "instruments[AAAUSDT].tick_units",
            Box::new(|l| l.instruments[0].as_mut().unwrap().tick_units = -5),
        ),
        (
            "instruments[AAAUSDT].collar_bps",
            Box::new(|l| l.instruments[0].as_mut().unwrap().collar_bps = 10_001),
        ),
        (
            "instruments[AAAUSDT].qty_max_units",
            Box::new(|l| l.instruments[0].as_mut().unwrap().qty_max_units = 5),
        ),
        (
            "instruments[BBBUSDT].order_notional_max",
            Box::new(|l| l.instruments[1].as_mut().unwrap().order_notional_max = 0),
        ),
        (
            "instruments[BBBUSDT].position_max_units",
            Box::new(|l| l.instruments[1].as_mut().unwrap().position_max_units = i64::MAX),
        ),
        (
            "instruments[BBBUSDT].quote_asset",
            Box::new(|l| {
                l.instruments[1].as_mut().unwrap().quote_asset = Symbol::from_ascii(b"BTC").unwrap()
            }),
        ),
        (
            "instruments[BBBUSDT].price_scale",
            Box::new(|l| {
                let b = l.instruments[1].as_mut().unwrap();
                b.price_scale = Scale {
                    mantissa: 1,
                    exp: 10,
                };
                b.qty_scale = Scale {
                    mantissa: 1,
                    exp: 9,
                };
            }),
        ),
        (
            "gross_exposure_max",
            Box::new(|l| l.gross_exposure_max = -1),
        ),
        (
            "loss_state",
            Box::new(|l| l.loss_state = TradingState::Active),
        ),
        (
            "order_rate.count_max",
            Box::new(|l| l.order_rate.count_max = RATE_WINDOW_MAX as u32 + 1),
        ),
        (
            "fill_rate.window_ns",
            Box::new(|l| l.fill_rate.window_ns = 0),
        ),
        (
            "duplicate_window_ns",
            Box::new(|l| l.duplicate_window_ns = 5_000_000_000),
        ),
    ];
    for (key, spoil) in cases {
        let mut l = limits();
        spoil(&mut l);
        let err = RiskEngine::new(l)
            .err()
            .unwrap_or_else(|| panic!("{key} accepted"));
        assert_eq!(err.key, key, "{err}");
    }
    assert!(limits().validate().is_ok());
}

#[test]
fn validation_accepts_each_bound_itself() {
    // A minimum equal to its maximum: one allowed price, one allowed quantity.
    let mut l = limits();
    let a = l.instruments[0].as_mut().unwrap();
    a.price_max_units = a.price_min_units;
    a.qty_max_units = a.qty_min_units;
    l.validate().unwrap();

    // The duplicate window may hold exactly as many orders at the order rate as are remembered
    // (RECENT_ORDERS_MAX, 4,096): 4 windows of 1,024 orders. A nanosecond longer starts a fifth.
    let mut l = limits();
    l.order_rate = RateLimit {
        count_max: 1_024,
        window_ns: 1_000_000,
    };
    assert_eq!(RECENT_ORDERS_MAX, 4 * 1_024);
    l.duplicate_window_ns = 4_000_000;
    l.validate().unwrap();
    l.duplicate_window_ns = 4_000_001;
    let err = l.validate().unwrap_err();
    assert_eq!(err.key, "duplicate_window_ns");
    assert!(err.to_string().contains("5120 new orders"), "{err}");
}

const EXCHANGE_INFO: &str = r#"{"symbols":[
    {"symbol":"AAAUSDT","status":"TRADING","baseAsset":"AAA","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
        {"filterType":"PRICE_FILTER","minPrice":"0.00010000","maxPrice":"1000.00000000","tickSize":"0.00010000"},
        {"filterType":"LOT_SIZE","minQty":"1.00000000","maxQty":"9000000.00000000","stepSize":"1.00000000"},
        {"filterType":"MIN_NOTIONAL","minNotional":"10.00000000"}]},
    {"symbol":"BBBUSDT","status":"TRADING","baseAsset":"BBB","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
        {"filterType":"PRICE_FILTER","minPrice":"0.000000001","maxPrice":"0","tickSize":"0.01"},
        {"filterType":"LOT_SIZE","minQty":"0.00001","maxQty":"9000","stepSize":"0.00001"},
        {"filterType":"NOTIONAL","minNotional":"5"}]}]}"#;

#[test]
fn limits_for_the_corpus_instruments() {
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["BTCUSDT", "ETHUSDT", "NKNUSDT"]).unwrap();
    let instruments: Vec<&Instrument> = table.iter().collect();
    let mut l = RiskLimits::for_instruments(&instruments).unwrap();
    let btc = l.instrument_mut("btcusdt").unwrap();
    // BTCUSDT: prices and quantities in 10^-8; tick 0.01, lot 0.00001, min notional 10.
    assert_eq!((btc.tick_units, btc.lot_units), (1_000_000, 1_000));
    assert_eq!(
        (btc.price_min_units, btc.price_max_units),
        (1_000_000, 100_000_000_000_000)
    );
    assert_eq!(
        (btc.qty_min_units, btc.qty_max_units),
        (1_000, 900_000_000_000)
    );
    assert_eq!(btc.notional_min, quote(10));
    assert_eq!(btc.notional_multiplier(), Some(100));
    // Unset risk limits are refused by name.
    assert_eq!(RiskEngine::new(l).err().unwrap().key, "open_orders_max");
    // Fill them, per instrument in its own units.
    for each in l.instruments_mut() {
        each.collar_bps = 50;
        each.order_notional_max = quote(50_000);
        each.open_orders_max = 16;
    }
    let one_btc = 100_000_000;
    let btc = l.instrument_mut("BTCUSDT").unwrap();
    btc.order_qty_max_units = one_btc;
    btc.position_max_units = 2 * one_btc;
    for symbol in ["ETHUSDT", "NKNUSDT"] {
        let each = l.instrument_mut(symbol).unwrap();
        each.order_qty_max_units = 100_000 * one_btc;
        each.position_max_units = 200_000 * one_btc;
    }
    l.open_orders_max = 32;
    l.gross_exposure_max = quote(250_000);
    l.net_exposure_max = quote(150_000);
    l.loss_max = quote(5_000);
    l.loss_state = TradingState::ReduceOnly;
    l.order_rate = RateLimit {
        count_max: 50,
        window_ns: 10_000_000_000,
    };
    l.message_rate = RateLimit {
        count_max: 200,
        window_ns: 10_000_000_000,
    };
    l.fill_rate = RateLimit {
        count_max: 100,
        window_ns: 1_000_000_000,
    };
    l.duplicate_window_ns = 1_000_000_000;
    let mut risk = RiskEngine::new(l).unwrap();
    let btc = table.find(b"BTCUSDT").unwrap().id;
    // 0.5 BTC at 54,000.00 against a 54,000.00 mid.
    risk.on_market(btc, 5_399_900_000_000, 5_400_100_000_000);
    let o = OrderRequest {
        client_order_id: 1,
        ..order(btc, side::BUY, 5_400_000_000_000, one_btc / 2)
    };
    risk.check(&o, 1).unwrap();
    assert_eq!(risk.exposure().gross, quote(27_000));

    // Mixing quote assets is refused, naming the instrument.
    let table = InstrumentTable::select(&all, &["NKNUSDT", "LRCBTC"]).unwrap();
    let err = RiskLimits::for_instruments(&table.iter().collect::<Vec<_>>()).unwrap_err();
    assert_eq!(err.key, "instruments[LRCBTC].quote_asset");
}

#[test]
fn the_builder_converts_filters_exactly_and_names_what_it_cannot() {
    let all = parse_exchange_info(EXCHANGE_INFO.as_bytes()).unwrap();
    let a = RiskLimits::for_instruments(&[&all[0]]).unwrap();
    let a = a.instruments[0].unwrap();
    assert_eq!((a.tick_units, a.lot_units), (10_000, 100_000_000));
    assert_eq!((a.price_min_units, a.qty_min_units), (10_000, 100_000_000));
    // minPrice 0.000000001 is finer than BBBUSDT's 10^-8 price unit.
    let err = RiskLimits::for_instruments(&[&all[0], &all[1]]).unwrap_err();
    assert_eq!(err.key, "instruments[BBBUSDT].price_min_units");
    // Two instruments on one id, or an id beyond the engine's.
    let mut twice = all[1].clone();
    twice.id = 0;
    twice.min_price = all[0].min_price;
    let err = RiskLimits::for_instruments(&[&all[0], &twice]).unwrap_err();
    assert_eq!(err.key, "instruments[BBBUSDT].id");
    let mut far = all[0].clone();
    far.id = RISK_INSTRUMENTS_MAX as u32;
    let err = RiskLimits::for_instruments(&[&far]).unwrap_err();
    assert_eq!(err.key, "instruments[AAAUSDT].id");
    assert_eq!(
        err.problem,
        LimitProblem::OutOfRange {
            value: RISK_INSTRUMENTS_MAX as i128,
            min: 0,
            max: RISK_INSTRUMENTS_MAX as i128 - 1
        }
    );
    far.id = RISK_INSTRUMENTS_MAX as u32 - 1;
    let last = RiskLimits::for_instruments(&[&far]).unwrap();
    assert!(last.instruments[RISK_INSTRUMENTS_MAX - 1].is_some());
    // A scale of zero (limits built by hand: exchangeInfo's precisions give powers of ten)
    // would make every notional zero: refused by name, not a notional limit that never binds.
    let mut zero = limits();
    zero.instruments[A as usize]
        .as_mut()
        .unwrap()
        .qty_scale
        .mantissa = 0;
    let err = RiskEngine::new(zero).err().unwrap();
    assert_eq!(err.key, "instruments[AAAUSDT].price_scale", "{err}");
}

/// A decimal's notional in 10^-18 quote units (`notional_from_decimal_parts(mantissa, scale)` is
/// `mantissa x 10^-scale`), exact or `None`: up to 18 places it scales up; beyond, it must end in
/// zeros that divide out, else it is finer than a notional unit (issue 13: more than 18 places
/// had no test).
#[test]
fn decimal_notionals_are_exact_or_refused() {
    use levibot_engine::risk::notional_from_decimal_parts as notional;
    assert_eq!(notional(15, 1), Some(1_500_000_000_000_000_000)); // 1.5
    assert_eq!(notional(7, 18), Some(7)); // 7 x 10^-18
    assert_eq!(notional(-25, 0), Some(-25 * 10i128.pow(18)));
    // 19 and 20 places: 10 x 10^-19 = 10^-18, 500 x 10^-20 = 5 x 10^-18.
    assert_eq!(notional(10, 19), Some(1));
    assert_eq!(notional(500, 20), Some(5));
    assert_eq!(notional(-300, 20), Some(-3));
    // Finer than 10^-18: refused, not rounded.
    assert_eq!(notional(1, 19), None);
    assert_eq!(notional(501, 20), None);
    assert_eq!(notional(-1, 19), None);
    // Too large either way: refused, not wrapped.
    assert_eq!(notional(i128::MAX, 0), None);
    assert_eq!(notional(1, 60), None);
}
