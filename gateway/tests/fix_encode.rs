//! The FIX 4.4 order encoder and reader: exact bytes, every message kind read back, exact
//! prices and quantities for the corpus instruments, timestamps, errors, random records, and
//! the reader's answers to corrupted and partial input.

use std::str::FromStr;
use std::sync::OnceLock;

use levibot_gateway::capture::Recording;
use levibot_gateway::decimal::{Scale, parse_units};
use levibot_gateway::fix::{
    FIX_MESSAGE_LEN_MAX, FixConfigError, FixEncodeError, FixParseError, FixWriter, OrderEncoder,
    UtcTimestamp, civil_from_unix_days, parse_message, tag, value_u64,
};
use levibot_gateway::instrument::{Instrument, InstrumentTable, Symbol};
use levibot_shm::records::{OrderRequest, ord_type, order_flag, order_kind, side, time_in_force};
use rust_decimal::Decimal;

/// 2024-02-29T12:34:56.789123456Z.
const LEAP_DAY_NS: u64 = 1_709_210_096_789_123_456;
const LEAP_DAY_TEXT: &str = "20240229-12:34:56.789";

fn table() -> &'static InstrumentTable {
    static TABLE: OnceLock<InstrumentTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let instruments = Recording::testdata().unwrap().instruments().unwrap();
        InstrumentTable::new(instruments).unwrap()
    })
}

fn instrument(symbol: &str) -> &'static Instrument {
    table().find(symbol.as_bytes()).unwrap()
}

fn encoder() -> OrderEncoder {
    OrderEncoder::new("LEVIBOT", "BINANCE", table()).unwrap()
}

/// `|` -> SOH.
fn wire(text: &str) -> Vec<u8> {
    text.replace('|', "\x01").into_bytes()
}

/// SOH -> `|`, for readable failures.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\x01', "|")
}

fn nknusdt_limit_buy() -> OrderRequest {
    OrderRequest {
        client_order_id: 42,
        instrument_id: instrument("NKNUSDT").id,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px: 35_130_000,      // 0.3513 USDT in units of 10^-8
        qty: 10_000_000_000, // 100 NKN in units of 10^-8
        ..OrderRequest::default()
    }
}

/// The fields of a message, as (tag, text) pairs.
fn fields(message: &[u8]) -> Vec<(u32, String)> {
    let parsed = parse_message(message).unwrap_or_else(|e| panic!("{e}: {}", show(message)));
    assert_eq!(parsed.as_bytes(), message);
    parsed
        .fields()
        .map(|(t, v)| (t, String::from_utf8(v.to_vec()).unwrap()))
        .collect()
}

/// The body fields after the standard header (35, 49, 56, 34, 52), checking the header.
fn body_after_header(message: &[u8], msg_type: &str, seq: u64, time: &str) -> Vec<(u32, String)> {
    let all = fields(message);
    let header: Vec<(u32, String)> = [
        (35, msg_type.to_owned()),
        (49, "LEVIBOT".to_owned()),
        (56, "BINANCE".to_owned()),
        (34, seq.to_string()),
        (52, time.to_owned()),
    ]
    .into();
    assert_eq!(all[0], (8, "FIX.4.4".to_owned()));
    assert_eq!(all[1].0, 9);
    assert_eq!(all[2..7], header[..], "{}", show(message));
    assert_eq!(all.last().unwrap().0, 10);
    all[7..all.len() - 1].to_vec()
}

fn pairs(expected: &[(u32, &str)]) -> Vec<(u32, String)> {
    expected.iter().map(|&(t, v)| (t, v.to_owned())).collect()
}

#[test]
fn new_order_single_exact_bytes() {
    let mut encoder = encoder();
    let message = encoder
        .encode(&nknusdt_limit_buy(), 7, LEAP_DAY_NS)
        .unwrap()
        .to_vec();

    let body = wire(
        "35=D|49=LEVIBOT|56=BINANCE|34=7|52=20240229-12:34:56.789|11=42|55=NKNUSDT|54=1|\
         60=20240229-12:34:56.789|38=100|40=2|44=0.3513|59=1|",
    );
    // BodyLength and CheckSum computed here, independently of the encoder.
    let mut expected = wire(&format!("8=FIX.4.4|9={}|", body.len()));
    expected.extend_from_slice(&body);
    let sum = expected.iter().map(|&b| u32::from(b)).sum::<u32>() % 256;
    expected.extend_from_slice(&wire(&format!("10={sum:03}|")));
    assert_eq!(show(&message), show(&expected));
    // And as computed by hand once (python: sum(bytes) % 256).
    assert_eq!(
        show(&message),
        "8=FIX.4.4|9=131|35=D|49=LEVIBOT|56=BINANCE|34=7|52=20240229-12:34:56.789|11=42|\
         55=NKNUSDT|54=1|60=20240229-12:34:56.789|38=100|40=2|44=0.3513|59=1|10=127|"
    );
}

#[test]
fn a_post_only_order_says_participate_dont_initiate() {
    let mut encoder = encoder();
    let post_only = OrderRequest {
        flags: order_flag::POST_ONLY,
        ..nknusdt_limit_buy()
    };
    let message = encoder.encode(&post_only, 7, LEAP_DAY_NS).unwrap().to_vec();
    let body = wire(
        "35=D|49=LEVIBOT|56=BINANCE|34=7|52=20240229-12:34:56.789|11=42|55=NKNUSDT|54=1|\
         60=20240229-12:34:56.789|38=100|40=2|44=0.3513|59=1|18=6|",
    );
    let mut expected = wire(&format!("8=FIX.4.4|9={}|", body.len()));
    expected.extend_from_slice(&body);
    let sum = expected.iter().map(|&b| u32::from(b)).sum::<u32>() % 256;
    expected.extend_from_slice(&wire(&format!("10={sum:03}|")));
    assert_eq!(show(&message), show(&expected));
    // A replace keeps it post-only; an order without the flag says nothing of it.
    let replace = OrderRequest {
        kind: order_kind::REPLACE,
        orig_client_order_id: 41,
        ..post_only
    };
    let message = encoder.encode(&replace, 8, LEAP_DAY_NS).unwrap();
    assert_eq!(parse_message(message).unwrap().get(18), Some(&b"6"[..]));
    let message = encoder
        .encode(&nknusdt_limit_buy(), 9, LEAP_DAY_NS)
        .unwrap();
    assert_eq!(parse_message(message).unwrap().get(18), None);
    // A market order cannot be post-only, and a flag with no meaning is refused.
    for (ord, flags) in [
        (ord_type::MARKET, order_flag::POST_ONLY),
        (ord_type::LIMIT, 2),
    ] {
        let bad = OrderRequest {
            ord_type: ord,
            flags,
            ..nknusdt_limit_buy()
        };
        let err = encoder.encode(&bad, 10, LEAP_DAY_NS).unwrap_err();
        assert!(matches!(err, FixEncodeError::BadFlags { .. }), "{err}");
    }
}

#[test]
fn every_kind_reads_back_with_its_fields() {
    let mut encoder = encoder();
    let nkn = instrument("NKNUSDT").id;
    let time = LEAP_DAY_TEXT;

    // NewOrderSingle, market IOC sell: no Price.
    let market = OrderRequest {
        client_order_id: 43,
        side: side::SELL,
        ord_type: ord_type::MARKET,
        time_in_force: time_in_force::IOC,
        px: 999, // ignored for market orders
        qty: 150_000_000,
        ..nknusdt_limit_buy()
    };
    let message = encoder.encode(&market, 8, LEAP_DAY_NS).unwrap();
    assert_eq!(
        body_after_header(message, "D", 8, time),
        pairs(&[
            (11, "43"),
            (55, "NKNUSDT"),
            (54, "2"),
            (60, time),
            (38, "1.5"),
            (40, "1"),
            (59, "3"),
        ])
    );
    // Market order without a time in force: no 59.
    let message = encoder
        .encode(
            &OrderRequest {
                time_in_force: 0,
                ..market
            },
            9,
            LEAP_DAY_NS,
        )
        .unwrap();
    assert!(!fields(message).iter().any(|(t, _)| *t == 59));

    // OrderCancelRequest, with and without OrderQty.
    let cancel = OrderRequest {
        kind: order_kind::CANCEL,
        client_order_id: 44,
        orig_client_order_id: 42,
        ..nknusdt_limit_buy()
    };
    let message = encoder.encode(&cancel, 10, LEAP_DAY_NS).unwrap();
    assert_eq!(
        body_after_header(message, "F", 10, time),
        pairs(&[
            (41, "42"),
            (11, "44"),
            (55, "NKNUSDT"),
            (54, "1"),
            (60, time),
            (38, "100"),
        ])
    );
    let message = encoder
        .encode(&OrderRequest { qty: 0, ..cancel }, 11, LEAP_DAY_NS)
        .unwrap();
    assert_eq!(
        body_after_header(message, "F", 11, time),
        pairs(&[
            (41, "42"),
            (11, "44"),
            (55, "NKNUSDT"),
            (54, "1"),
            (60, time)
        ])
    );

    // OrderCancelReplaceRequest.
    let replace = OrderRequest {
        kind: order_kind::REPLACE,
        client_order_id: 45,
        orig_client_order_id: 42,
        px: 35_140_000,
        qty: 20_000_000_000,
        time_in_force: time_in_force::FOK,
        ..nknusdt_limit_buy()
    };
    let message = encoder.encode(&replace, 12, LEAP_DAY_NS).unwrap();
    assert_eq!(
        body_after_header(message, "G", 12, time),
        pairs(&[
            (41, "42"),
            (11, "45"),
            (55, "NKNUSDT"),
            (54, "1"),
            (60, time),
            (38, "200"),
            (40, "2"),
            (44, "0.3514"),
            (59, "4"),
        ])
    );

    // OrderMassCancelRequest, by security and for all.
    let mass = OrderRequest {
        kind: order_kind::MASS_CANCEL,
        client_order_id: 46,
        instrument_id: nkn,
        side: 0,
        ..OrderRequest::default()
    };
    let message = encoder.encode(&mass, 13, LEAP_DAY_NS).unwrap();
    assert_eq!(
        body_after_header(message, "q", 13, time),
        pairs(&[(11, "46"), (530, "1"), (55, "NKNUSDT"), (60, time)])
    );
    let message = encoder
        .encode(
            &OrderRequest {
                instrument_id: u32::MAX,
                side: side::SELL, // ignored: a mass cancel cancels both sides
                ..mass
            },
            u64::MAX,
            LEAP_DAY_NS,
        )
        .unwrap();
    assert_eq!(
        body_after_header(message, "q", u64::MAX, time),
        pairs(&[(11, "46"), (530, "7"), (60, time)])
    );
    let parsed = parse_message(message).unwrap();
    assert_eq!(parsed.msg_type(), b"q");
    assert_eq!(parsed.get(34).and_then(value_u64), Some(u64::MAX));
}

#[test]
fn order_mass_status_request_exact_bytes() {
    let mut encoder = encoder();
    let all = OrderRequest {
        kind: order_kind::MASS_STATUS,
        client_order_id: 77,
        instrument_id: u32::MAX,
        side: side::SELL, // ignored, as are the terms
        px: 5,
        qty: 5,
        ..OrderRequest::default()
    };
    let message = encoder.encode(&all, 9, LEAP_DAY_NS).unwrap().to_vec();
    // BodyLength and CheckSum computed by hand (python: sum(bytes) % 256). No ClOrdID (11)
    // and no TransactTime (60): FIX 4.4 defines neither for 35=AF.
    assert_eq!(
        show(&message),
        "8=FIX.4.4|9=71|35=AF|49=LEVIBOT|56=BINANCE|34=9|52=20240229-12:34:56.789|584=77|\
         585=7|10=174|"
    );
    let by_security = OrderRequest {
        client_order_id: 78,
        instrument_id: instrument("NKNUSDT").id,
        ..all
    };
    let message = encoder.encode(&by_security, 10, LEAP_DAY_NS).unwrap();
    assert_eq!(
        show(message),
        "8=FIX.4.4|9=83|35=AF|49=LEVIBOT|56=BINANCE|34=10|52=20240229-12:34:56.789|584=78|\
         585=1|55=NKNUSDT|10=163|"
    );
    assert_eq!(
        body_after_header(message, "AF", 10, LEAP_DAY_TEXT),
        pairs(&[(584, "78"), (585, "1"), (55, "NKNUSDT")])
    );
    // An instrument the encoder does not know is an error, as for a mass cancel.
    assert_eq!(
        encoder.encode(
            &OrderRequest {
                instrument_id: 100_000,
                ..all
            },
            11,
            LEAP_DAY_NS
        ),
        Err(FixEncodeError::UnknownInstrument {
            instrument_id: 100_000
        })
    );
}

/// A small xorshift generator, so that the random tests need no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Positive units with a random number of digits, at most 10^max_digits - 1.
    fn units(&mut self, max_digits: u32) -> i64 {
        let digits = 1 + self.below(u64::from(max_digits)) as u32;
        (1 + self.below(10u64.pow(digits) - 1)) as i64
    }
}

#[test]
fn prices_and_quantities_round_trip_for_every_corpus_instrument() {
    let seed = levibot_testkit::seed();
    let mut rng = Rng::new(seed);
    let mut encoder = encoder();
    let mut scales_seen = std::collections::BTreeSet::new();
    for instrument in table().iter() {
        scales_seen.insert((instrument.price_scale.exp, instrument.qty_scale.exp));
        for round in 0..20 {
            // parse_units takes up to 18 significant digits.
            let (px, qty) = match round {
                0 => (1, 1),
                1 => (instrument.tick_units, instrument.lot_units),
                2 => (999_999_999_999_999_999, 100_000_000),
                _ => (rng.units(18), rng.units(18)),
            };
            let order = OrderRequest {
                client_order_id: rng.next(),
                instrument_id: instrument.id,
                px,
                qty,
                ..nknusdt_limit_buy()
            };
            let message = encoder
                .encode(&order, 1 + round, LEAP_DAY_NS)
                .unwrap_or_else(|e| panic!("seed {seed}: {} {order:?}: {e}", instrument.symbol));
            let parsed = parse_message(message).unwrap();
            let check = |tag: u32, units: i64, scale: Scale| {
                let text = parsed.get(tag).unwrap();
                assert_eq!(
                    parse_units(text, scale),
                    Ok(units),
                    "seed {seed}: {} tag {tag} {}",
                    instrument.symbol,
                    show(text)
                );
                // The same text as rust_decimal's, trailing zeros trimmed.
                let reference = scale.to_decimal(units).normalize().to_string();
                assert_eq!(show(text), reference, "seed {seed}: {}", instrument.symbol);
                assert_eq!(Decimal::from_str(&show(text)), Ok(scale.to_decimal(units)));
            };
            check(44, px, instrument.price_scale);
            check(38, qty, instrument.qty_scale);
            assert_eq!(parsed.get(55), Some(instrument.symbol.as_str().as_bytes()));
            assert_eq!(
                parsed.get(11).and_then(value_u64),
                Some(order.client_order_id)
            );
        }
    }
    // The corpus has both 8-decimal and 2-decimal assets.
    assert!(scales_seen.contains(&(8, 8)) && scales_seen.contains(&(8, 2)));
    assert!(scales_seen.contains(&(2, 8)));
}

#[test]
fn timestamps_at_known_dates() {
    let mut encoder = encoder();
    let order = nknusdt_limit_buy();
    for (ns, text) in [
        (0, "19700101-00:00:00.000"),
        (LEAP_DAY_NS, LEAP_DAY_TEXT),
        (1_709_251_199_999_000_000, "20240229-23:59:59.999"),
        (1_709_251_200_000_000_000, "20240301-00:00:00.000"),
        (1_704_067_199_999_999_999, "20231231-23:59:59.999"),
        (1_704_067_200_000_000_000, "20240101-00:00:00.000"),
        (951_782_400_000_000_000, "20000229-00:00:00.000"), // 2000 is a leap year
        (4_107_542_399_000_000_000, "21000228-23:59:59.000"), // 2100 is not
        (4_107_542_400_000_000_000, "21000301-00:00:00.000"),
    ] {
        let message = encoder.encode(&order, 1, ns).unwrap();
        let parsed = parse_message(message).unwrap();
        assert_eq!(show(parsed.get(52).unwrap()), text, "{ns}");
        assert_eq!(show(parsed.get(60).unwrap()), text, "{ns}");
        assert_eq!(UtcTimestamp::from_unix_ns(ns).as_str(), text);
    }
}

#[test]
fn the_calendar_matches_a_day_by_day_count() {
    let leap = |y: u32| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let (mut y, mut m, mut d) = (1970u32, 1u8, 1u8);
    // Every day from 1970 to 2554 (the end of u64 nanoseconds).
    for days in 0..213_503u64 {
        assert_eq!(civil_from_unix_days(days), (y, m, d), "day {days}");
        let month_len = match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if days.is_multiple_of(97) {
            let ns = days * 86_400_000_000_000 + 45_296_007_000_000; // 12:34:56.007
            assert_eq!(
                UtcTimestamp::from_unix_ns(ns).as_str(),
                format!("{y:04}{m:02}{d:02}-12:34:56.007")
            );
        }
        d += 1;
        if d > month_len {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
}

#[test]
fn bad_requests_are_errors_that_name_the_problem() {
    let mut encoder = encoder();
    let good = nknusdt_limit_buy();
    let cases = [
        (
            OrderRequest { kind: 0, ..good },
            FixEncodeError::UnknownKind { kind: 0 },
        ),
        (
            OrderRequest { kind: 9, ..good },
            FixEncodeError::UnknownKind { kind: 9 },
        ),
        (
            OrderRequest {
                instrument_id: 100_000,
                ..good
            },
            FixEncodeError::UnknownInstrument {
                instrument_id: 100_000,
            },
        ),
        (
            // u32::MAX means "all instruments" only for a mass cancel.
            OrderRequest {
                instrument_id: u32::MAX,
                ..good
            },
            FixEncodeError::UnknownInstrument {
                instrument_id: u32::MAX,
            },
        ),
        (
            OrderRequest {
                kind: order_kind::MASS_CANCEL,
                instrument_id: 5_000,
                ..good
            },
            FixEncodeError::UnknownInstrument {
                instrument_id: 5_000,
            },
        ),
        (
            OrderRequest { side: 0, ..good },
            FixEncodeError::UnknownSide { side: 0 },
        ),
        (
            OrderRequest { side: 3, ..good },
            FixEncodeError::UnknownSide { side: 3 },
        ),
        (
            OrderRequest {
                kind: order_kind::CANCEL,
                side: b'1',
                ..good
            },
            FixEncodeError::UnknownSide { side: b'1' },
        ),
        (
            OrderRequest {
                ord_type: 3,
                ..good
            },
            FixEncodeError::UnknownOrdType { ord_type: 3 },
        ),
        (
            OrderRequest {
                time_in_force: 0,
                ..good
            },
            FixEncodeError::UnknownTimeInForce { time_in_force: 0 },
        ),
        (
            OrderRequest {
                time_in_force: 2,
                ord_type: ord_type::MARKET,
                ..good
            },
            FixEncodeError::UnknownTimeInForce { time_in_force: 2 },
        ),
        (
            OrderRequest { qty: 0, ..good },
            FixEncodeError::NonPositiveQuantity { qty: 0 },
        ),
        (
            OrderRequest {
                qty: -5,
                kind: order_kind::REPLACE,
                ..good
            },
            FixEncodeError::NonPositiveQuantity { qty: -5 },
        ),
        (
            OrderRequest {
                qty: -1,
                kind: order_kind::CANCEL,
                ..good
            },
            FixEncodeError::NegativeQuantity { qty: -1 },
        ),
        (
            OrderRequest { px: 0, ..good },
            FixEncodeError::NonPositivePrice { px: 0 },
        ),
        (
            OrderRequest {
                px: i64::MIN,
                kind: order_kind::REPLACE,
                ..good
            },
            FixEncodeError::NonPositivePrice { px: i64::MIN },
        ),
    ];
    for (order, expected) in cases {
        assert_eq!(encoder.encode(&order, 1, 0), Err(expected), "{order:?}");
        assert!(!expected.to_string().is_empty());
    }
    assert_eq!(
        encoder.encode(&good, 0, 0),
        Err(FixEncodeError::ZeroMsgSeqNum)
    );
    let message = encoder.encode(&good, 1, 0).unwrap();
    parse_message(message).unwrap();
    assert_eq!(
        FixEncodeError::UnknownSide { side: 3 }.to_string(),
        "unknown side 3 (expected 1 buy or 2 sell)"
    );
}

#[test]
fn bad_comp_ids_are_config_errors() {
    let t = table();
    let long = "X".repeat(33);
    assert!(OrderEncoder::new(&"X".repeat(32), "T", t).is_ok());
    for (sender, target, expected) in [
        (
            "",
            "T",
            FixConfigError::EmptyCompId {
                field: "SenderCompID (49)",
            },
        ),
        (
            "S",
            "",
            FixConfigError::EmptyCompId {
                field: "TargetCompID (56)",
            },
        ),
        (
            long.as_str(),
            "T",
            FixConfigError::CompIdTooLong {
                field: "SenderCompID (49)",
                len: 33,
            },
        ),
        (
            "S",
            "A\x01B",
            FixConfigError::CompIdInvalidByte {
                field: "TargetCompID (56)",
                offset: 1,
                byte: 1,
            },
        ),
        (
            "S=1",
            "T",
            FixConfigError::CompIdInvalidByte {
                field: "SenderCompID (49)",
                offset: 1,
                byte: b'=',
            },
        ),
        (
            "S",
            "T T",
            FixConfigError::CompIdInvalidByte {
                field: "TargetCompID (56)",
                offset: 1,
                byte: b' ',
            },
        ),
    ] {
        assert_eq!(
            OrderEncoder::new(sender, target, t).unwrap_err(),
            expected,
            "{sender:?} {target:?}"
        );
    }
    // An instrument whose scale cannot be written.
    let mut odd = instrument("NKNUSDT").clone();
    odd.price_scale = Scale {
        mantissa: 0,
        exp: 8,
    };
    let odd = InstrumentTable::new(vec![odd]).unwrap();
    let err = OrderEncoder::new("S", "T", &odd).unwrap_err();
    assert!(
        matches!(
            err,
            FixConfigError::BadScale {
                instrument_id: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NKNUSDT"), "{err}");
}

#[test]
fn the_longest_order_message_fits() {
    let mut widest = instrument("NKNUSDT").clone();
    widest.symbol = Symbol::from_ascii(b"ABCDEFGHIJKLMNOP").unwrap();
    widest.price_scale = Scale {
        mantissa: 1,
        exp: 19,
    };
    widest.qty_scale = widest.price_scale;
    let table = InstrumentTable::new(vec![widest]).unwrap();
    let id = "X".repeat(32);
    let mut encoder = OrderEncoder::new(&id, &id, &table).unwrap();
    let order = OrderRequest {
        kind: order_kind::REPLACE,
        client_order_id: u64::MAX,
        orig_client_order_id: u64::MAX,
        instrument_id: 0,
        px: i64::MAX,
        qty: i64::MAX,
        flags: order_flag::POST_ONLY,
        ..nknusdt_limit_buy()
    };
    let message = encoder.encode(&order, u64::MAX, u64::MAX).unwrap();
    assert_eq!(message.len(), 312, "{}", show(message));
    assert!(message.len() <= FIX_MESSAGE_LEN_MAX);
    let parsed = parse_message(message).unwrap();
    assert_eq!(parsed.get(44), Some(&b"0.9223372036854775807"[..]));
    assert_eq!(parsed.get(38), Some(&b"0.9223372036854775807"[..]));
}

#[test]
fn random_requests_never_panic_and_every_message_reads_back() {
    let seed = levibot_testkit::seed();
    let mut rng = Rng::new(seed);
    let mut encoder = encoder();
    let instruments = table().len() as u64;
    let (mut encoded, mut refused) = (0u32, 0u32);
    for i in 0..200_000u64 {
        // Half the time plausible values, so that the encoding paths are reached; else any bits.
        let plausible = rng.below(2) == 0;
        let small = |rng: &mut Rng, n: u64| {
            if plausible {
                rng.below(n) as u8
            } else {
                rng.next() as u8
            }
        };
        let order = OrderRequest {
            created_tsc: rng.next(),
            risk_tsc: rng.next(),
            client_order_id: rng.next(),
            orig_client_order_id: rng.next(),
            px: if plausible {
                rng.units(18)
            } else {
                rng.next() as i64
            },
            qty: if plausible {
                rng.units(18) - 2
            } else {
                rng.next() as i64
            },
            instrument_id: match rng.below(8) {
                0 => u32::MAX,
                1 => rng.next() as u32,
                _ => rng.below(instruments + 2) as u32,
            },
            strategy_id: rng.next() as u16,
            kind: small(&mut rng, 6),
            side: small(&mut rng, 4),
            ord_type: small(&mut rng, 4),
            time_in_force: small(&mut rng, 6),
            flags: rng.next() as u16 & 3,
            model_tag: rng.next() as u32,
        };
        let seq = rng.next() >> rng.below(64);
        let ns = rng.next() >> rng.below(64);
        match encoder.encode(&order, seq, ns) {
            Ok(message) => {
                encoded += 1;
                assert!(message.len() <= FIX_MESSAGE_LEN_MAX);
                let parsed = parse_message(message)
                    .unwrap_or_else(|e| panic!("seed {seed}, record {i}: {e}: {}", show(message)));
                assert_eq!(parsed.as_bytes().len(), message.len());
                assert_eq!(parsed.get(34).and_then(value_u64), Some(seq));
                // A mass status request carries its id in 584 and has no TransactTime.
                let (id_tag, transact_time) = match order.kind {
                    order_kind::MASS_STATUS => (584, false),
                    _ => (11, true),
                };
                assert_eq!(
                    parsed.get(id_tag).and_then(value_u64),
                    Some(order.client_order_id)
                );
                let time = UtcTimestamp::from_unix_ns(ns);
                assert_eq!(parsed.get(52), Some(&time.as_bytes()[..]));
                assert_eq!(parsed.get(60).is_some(), transact_time, "{}", show(message));
                if transact_time {
                    assert_eq!(parsed.get(60), Some(&time.as_bytes()[..]));
                }
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(
        encoded > 10_000 && refused > 10_000,
        "seed {seed}: {encoded} / {refused}"
    );
}

#[test]
fn the_writer_builds_session_messages_too() {
    let mut w = FixWriter::new();
    w.begin(b"A").unwrap();
    w.field(tag::SENDER_COMP_ID, b"LEVIBOT").unwrap();
    w.field(tag::TARGET_COMP_ID, b"SPOT").unwrap();
    w.field_u64(tag::MSG_SEQ_NUM, 1).unwrap();
    w.field_timestamp(tag::SENDING_TIME, &UtcTimestamp::from_unix_ns(0))
        .unwrap();
    w.field_char(tag::ENCRYPT_METHOD, b'0').unwrap();
    w.field_u64(tag::HEART_BT_INT, 30).unwrap();
    // A data field holding SOH and '=': the reader takes its length from tag 95.
    let raw = b"a\x01b=c";
    w.field_u64(tag::RAW_DATA_LENGTH, raw.len() as u64).unwrap();
    assert_eq!(
        w.field(tag::RAW_DATA, raw),
        Err(FixEncodeError::InvalidValue {
            tag: 96,
            offset: 1,
            byte: 1
        })
    );
    let mut fields = w.body().to_vec();
    fields.extend_from_slice(b"96=a\x01b=c\x01");
    assert_eq!(
        w.field(tag::TEXT, b""),
        Err(FixEncodeError::EmptyValue { tag: 58 })
    );
    assert_eq!(
        w.field_char(tag::SIDE, 1),
        Err(FixEncodeError::InvalidValue {
            tag: 54,
            offset: 0,
            byte: 1
        })
    );
    w.begin(b"A").unwrap();
    w.encoded_fields(tag::SENDER_COMP_ID, &fields[5..]).unwrap();
    let message = w.finish().to_vec();
    let parsed = parse_message(&message).unwrap();
    assert_eq!(parsed.msg_type(), b"A");
    assert_eq!(parsed.get(96), Some(&raw[..]));
    assert_eq!(parsed.get(108), Some(&b"30"[..]));
    let tags: Vec<u32> = parsed.fields().map(|(t, _)| t).collect();
    assert_eq!(tags, [8, 9, 35, 49, 56, 34, 52, 98, 108, 95, 96, 10]);
    let body_tags: Vec<u32> = parsed.body_fields().map(|(t, _)| t).collect();
    assert_eq!(body_tags, tags[2..tags.len() - 1]);
}

fn encoded_nos() -> Vec<u8> {
    encoder()
        .encode(&nknusdt_limit_buy(), 7, LEAP_DAY_NS)
        .unwrap()
        .to_vec()
}

#[test]
fn the_reader_reads_a_third_party_message_and_back_to_back_messages() {
    // An OrderMassCancelRequest from a venue's public documentation (HashKey), with its
    // BodyLength and CheckSum as published.
    let theirs = wire(
        "8=FIX.4.4|9=92|35=q|49=JOSEPH|56=TradingGateway|34=42|52=20240218-15:56:32|\
         11=1981400112|530=3|55=ETH-USDC|10=117|",
    );
    let parsed = parse_message(&theirs).unwrap();
    assert_eq!(
        (parsed.msg_type(), parsed.body_length(), parsed.checksum()),
        (&b"q"[..], 92, 117)
    );
    assert_eq!(parsed.get(55), Some(&b"ETH-USDC"[..]));
    assert_eq!(parsed.get(999), None);

    let ours = encoded_nos();
    let mut stream = ours.clone();
    stream.extend_from_slice(&theirs);
    stream.extend_from_slice(&ours[..20]);
    let first = parse_message(&stream).unwrap();
    assert_eq!(first.as_bytes(), &ours[..]);
    let rest = &stream[first.as_bytes().len()..];
    let second = parse_message(rest).unwrap();
    assert_eq!(second.as_bytes(), &theirs[..]);
    let rest = &rest[second.as_bytes().len()..];
    assert_eq!(
        parse_message(rest),
        Err(FixParseError::Incomplete {
            have: 20,
            need: ours.len()
        })
    );
}

#[test]
fn every_prefix_of_a_message_is_incomplete() {
    let message = encoded_nos();
    for len in 0..message.len() {
        match parse_message(&message[..len]) {
            Err(FixParseError::Incomplete { have, need }) => {
                assert_eq!(have, len);
                assert!(need > len && need <= message.len(), "{len}: need {need}");
            }
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    assert!(parse_message(&message).is_ok());
}

#[test]
fn the_reader_rejects_corrupted_messages_with_the_right_error() {
    let message = encoded_nos();
    let text = show(&message);
    let corrupt = |from: &str, to: &str| wire(&text.replacen(from, to, 1));

    // A wrong checksum.
    assert_eq!(
        parse_message(&corrupt("10=127", "10=128")),
        Err(FixParseError::BadChecksum {
            expected: 127,
            found: 128
        })
    );
    // A changed byte in the body: the checksum catches it.
    assert_eq!(
        parse_message(&corrupt("44=0.3513", "44=0.3523")),
        Err(FixParseError::BadChecksum {
            expected: 128,
            found: 127
        })
    );
    assert!(matches!(
        parse_message(&corrupt("10=127", "10=1x7")),
        Err(FixParseError::Garbled { offset, .. }) if offset == message.len() - 4
    ));
    // BodyLength one short and one long.
    assert_eq!(
        parse_message(&corrupt("9=131", "9=130")),
        Err(FixParseError::BodyLengthMismatch {
            declared: 130,
            actual: Some(131)
        })
    );
    let mut longer = corrupt("9=131", "9=132");
    assert_eq!(
        parse_message(&longer),
        Err(FixParseError::BodyLengthMismatch {
            declared: 132,
            actual: Some(131)
        })
    );
    longer.extend_from_slice(b"8=FIX");
    assert_eq!(
        parse_message(&longer),
        Err(FixParseError::BodyLengthMismatch {
            declared: 132,
            actual: Some(131)
        })
    );
    assert_eq!(
        parse_message(&corrupt("9=131", "9=99999")),
        Err(FixParseError::TooLong {
            body_length: 99_999
        })
    );
    assert_eq!(
        parse_message(&corrupt("9=131", "9=1x1")),
        Err(FixParseError::BadBodyLength { offset: 13 })
    );
    assert_eq!(
        parse_message(&corrupt("9=131", "9=")),
        Err(FixParseError::BadBodyLength { offset: 12 })
    );
    // Not FIX 4.4, not FIX at all.
    assert_eq!(
        parse_message(&corrupt("FIX.4.4", "FIX.4.2")),
        Err(FixParseError::BadBeginString { offset: 8 })
    );
    assert_eq!(
        parse_message(b"GET / HTTP/1.1\r\n"),
        Err(FixParseError::BadBeginString { offset: 0 })
    );
    assert_eq!(
        parse_message(&corrupt("|9=131", "|34=131")),
        Err(FixParseError::BadBodyLength { offset: 10 })
    );
    // Truncated in the middle, and followed by a new message: CheckSum shows up elsewhere.
    let mut truncated = message[..60].to_vec();
    truncated.extend_from_slice(&message);
    assert_eq!(
        parse_message(&truncated),
        Err(FixParseError::BodyLengthMismatch {
            declared: 131,
            actual: Some(60 + 147 - 16)
        })
    );

    // Field syntax, in messages with the right length and checksum.
    let frame = |body: &str| {
        let body = wire(body);
        let mut bytes = wire(&format!("8=FIX.4.4|9={}|", body.len()));
        bytes.extend_from_slice(&body);
        let sum = bytes.iter().map(|&b| u32::from(b)).sum::<u32>() % 256;
        bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        bytes
    };
    // "8=FIX.4.4|9=nn|" is 15 bytes; "8=FIX.4.4|9=n|" 14.
    assert!(parse_message(&frame("35=0|")).is_ok());
    assert_eq!(
        parse_message(&frame("35=0|4x=2|")),
        Err(FixParseError::Garbled {
            offset: 21,
            reason: "expected a tag (1 to 9 digits, no leading zero) and '='"
        })
    );
    assert_eq!(
        parse_message(&frame("35=0|059=1|")),
        Err(FixParseError::Garbled {
            offset: 20,
            reason: "expected a tag (1 to 9 digits, no leading zero) and '='"
        })
    );
    // (A body under 10 bytes has a 14-byte header.)
    assert!(matches!(
        parse_message(&frame("35=0|=1|")),
        Err(FixParseError::Garbled { offset: 19, .. })
    ));
    assert!(matches!(
        parse_message(&frame("35=0|1234567890=1|")),
        Err(FixParseError::Garbled { offset: 29, .. })
    ));
    assert!(matches!(
        parse_message(&frame("35=0|58|")),
        Err(FixParseError::Garbled { offset: 21, .. })
    ));
    assert_eq!(
        parse_message(&frame("35=0|402=|")),
        Err(FixParseError::EmptyValue {
            offset: 20,
            tag: 402
        })
    );
    assert_eq!(
        parse_message(&frame("35=|")),
        Err(FixParseError::EmptyValue {
            offset: 14,
            tag: 35
        })
    );
    assert_eq!(
        parse_message(&frame("49=X|35=0|")),
        Err(FixParseError::MissingMsgType {
            offset: 15,
            tag: 49
        })
    );
    assert!(matches!(
        parse_message(&frame("35=0|9=11|")),
        Err(FixParseError::Garbled { offset: 20, .. })
    ));
    assert_eq!(
        parse_message(&frame("35=0|10=000|")),
        Err(FixParseError::BodyLengthMismatch {
            declared: 12,
            actual: Some(5)
        })
    );
    // Data fields: exactly their length, SOH and '=' included.
    let whole = frame("35=A|95=5|96=a|b=c|98=0|");
    let logon = parse_message(&whole).unwrap();
    assert_eq!(logon.get(96), Some(&wire("a|b=c")[..]));
    assert_eq!(logon.get(98), Some(&b"0"[..]));
    assert_eq!(
        parse_message(&frame("35=A|95=50|96=abc|")),
        Err(FixParseError::Garbled {
            offset: 26,
            reason: "a data field runs past the end of the body"
        })
    );
    assert_eq!(
        parse_message(&frame("35=A|95=2|96=abc|")),
        Err(FixParseError::Garbled {
            offset: 30,
            reason: "a data field is longer than its length field says"
        })
    );
    assert_eq!(
        parse_message(&frame("35=A|95=x|96=abc|")),
        Err(FixParseError::BadDataLength {
            offset: 20,
            tag: 95
        })
    );
    // A partial data field holding SOH is still just incomplete.
    for len in 0..whole.len() {
        assert!(
            matches!(
                parse_message(&whole[..len]),
                Err(FixParseError::Incomplete { .. })
            ),
            "{len}"
        );
    }
    // Errors say what and where.
    let err = parse_message(&corrupt("10=127", "10=128")).unwrap_err();
    assert_eq!(err.to_string(), "CheckSum 128 in the message, 127 computed");
    let err = parse_message(&corrupt("9=131", "9=130")).unwrap_err();
    assert!(err.to_string().contains("131"), "{err}");
}
