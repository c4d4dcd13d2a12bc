//! Tests of the Tardis reader: exact bytes, decoding with the live decoder, the book they build,
//! merge order, errors, memory, and the committed sample against its original capture.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::Compression;
use flate2::write::GzEncoder;
use levibot_book::{BookLimits, BookOutcome, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::{exchange_info_body, testdata_dir};
use levibot_gateway::instrument::{Instrument, InstrumentTable, parse_exchange_info};
use levibot_shm::records::{Level, TRADE_FLAG_BUYER_IS_MAKER};
use rust_decimal::Decimal;

use super::*;

const BOOK_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";
const TRADES_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// A message as the test keeps it (the source's event borrows its buffer).
#[derive(Clone, Debug, PartialEq)]
struct Event {
    kind: InputKind,
    recv_ns: u64,
    exchange_ns: Option<u64>,
    symbol: Option<String>,
    text: String,
}

fn write_file(dir: &Path, name: &str, text: &str, gzip: bool) -> PathBuf {
    let path = dir.join(name);
    let bytes = if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    } else {
        text.as_bytes().to_vec()
    };
    std::fs::write(&path, bytes).unwrap();
    path
}

fn next(source: &mut TardisSource) -> Result<Option<Event>, InputError> {
    Ok(source.next_event()?.map(|e| Event {
        kind: e.kind,
        recv_ns: e.recv_ns,
        exchange_ns: e.exchange_ns,
        symbol: e.symbol.map(str::to_owned),
        text: String::from_utf8(e.bytes.to_vec()).unwrap(),
    }))
}

fn read_all(source: &mut TardisSource) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = next(source).unwrap() {
        events.push(event);
    }
    events
}

fn open_and_read(book: Option<&Path>, trades: Option<&Path>, symbols: &[&str]) -> Vec<Event> {
    read_all(&mut TardisSource::open(book, trades, symbols).unwrap())
}

fn instruments() -> Vec<Instrument> {
    let bytes = std::fs::read(testdata_dir().join("BINANCE.0")).unwrap();
    parse_exchange_info(exchange_info_body(&bytes).unwrap()).unwrap()
}

fn decoder(symbols: &[&str]) -> Decoder {
    Decoder::new(InstrumentTable::select(&instruments(), symbols).unwrap())
}

fn units(s: &str) -> i64 {
    // Every instrument used here has 8-decimal prices and quantities.
    let value = Decimal::from_str(s).unwrap() * Decimal::from(100_000_000);
    assert!(value.fract().is_zero(), "{s}");
    i64::try_from(value).unwrap()
}

fn level(px: &str, qty: &str) -> Level {
    Level {
        px: units(px),
        qty: units(qty),
    }
}

/// A book of `instrument_id` fed with `events` (the decoder's instruments), and what each
/// event did.
fn feed_book(decoder: &mut Decoder, instrument_id: u32, events: &[Event]) -> OrderBook {
    let limits = BookLimits {
        levels_per_side_max: 2 * DEPTH_LEVELS_MAX,
        ..BookLimits::DEFAULT
    };
    let mut book = OrderBook::new(instrument_id, limits).unwrap();
    for event in events {
        match event.kind {
            InputKind::Trading | InputKind::Decoded(_) => {
                panic!("Tardis files hold no trading changes, no decoded records")
            }
            InputKind::Snapshot => {
                let snapshot = decoder
                    .decode_snapshot(event.text.as_bytes(), instrument_id)
                    .unwrap();
                let outcome = book.apply_snapshot(&snapshot).unwrap();
                assert_eq!(outcome, BookOutcome::Applied, "{}", event.text);
            }
            InputKind::Stream => match decoder.decode(event.text.as_bytes(), 0).unwrap() {
                MarketEvent::Depth(update) if update.instrument_id == instrument_id => {
                    let outcome = book.apply_update(&update);
                    assert_eq!(outcome, BookOutcome::Applied, "{}", event.text);
                }
                _ => {}
            },
        }
    }
    book
}

// ---------------------------------------------------------------------------------------------
// Bytes, decoding, the book.

const BOOK_CSV: &str = "\
exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,NKNUSDT,1699999999000000,1700000000000100,false,bid,0.3,5
binance,NKNUSDT,1700000000000000,1700000000001000,true,ask,0.3502,20
binance,NKNUSDT,1700000000000000,1700000000001000,true,bid,0.3499,10
binance,NKNUSDT,1700000000000000,1700000000001000,true,ask,0.3501,15.5
binance,NKNUSDT,1700000000000000,1700000000001000,true,bid,0.35,0
binance,NKNUSDT,1700000000000000,1700000000001000,true,bid,0.3498,1e-05
binance,NKNUSDT,1700000000000000,1700000000001000,true,bid,0.3499,12
binance,NKNUSDT,1700000000100000,1700000000102000,false,bid,0.3499,0
binance,NKNUSDT,1700000000100000,1700000000102000,false,ask,0.3503,7
binance,NKNUSDT,1700000000100000,1700000000102000,false,bid,0.3497,3.25
binance,NKNUSDT,1700000000200000,1700000000203000,false,ask,0.3501,0
";

const TRADES_CSV: &str = "\
exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,NKNUSDT,1700000000050000,1700000000052000,41,sell,0.3499,2
binance,NKNUSDT,1700000000150000,1700000000152000,42,buy,0.3501,1.5
";

fn expected_events() -> Vec<Event> {
    let stream = |recv_us: u64, exchange_us: u64, text: &str| Event {
        kind: InputKind::Stream,
        recv_ns: recv_us * 1000,
        exchange_ns: Some(exchange_us * 1000),
        symbol: None,
        text: text.to_owned(),
    };
    vec![
        Event {
            kind: InputKind::Snapshot,
            recv_ns: 1_700_000_000_001_000_000,
            exchange_ns: Some(1_700_000_000_000_000_000),
            symbol: Some("NKNUSDT".to_owned()),
            text: concat!(
                r#"{"lastUpdateId":1,"#,
                r#""bids":[["0.34990000","12.00000000"],["0.34980000","0.00001000"]],"#,
                r#""asks":[["0.35010000","15.50000000"],["0.35020000","20.00000000"]]}"#
            )
            .to_owned(),
        },
        stream(
            1_700_000_000_052_000,
            1_700_000_000_050_000,
            concat!(
                r#"{"stream":"nknusdt@trade","data":{"e":"trade","E":1700000000050,"#,
                r#""s":"NKNUSDT","t":41,"p":"0.34990000","q":"2.00000000","#,
                r#""T":1700000000050,"m":true,"M":true}}"#
            ),
        ),
        stream(
            1_700_000_000_102_000,
            1_700_000_000_100_000,
            concat!(
                r#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000100,"#,
                r#""s":"NKNUSDT","U":2,"u":4,"#,
                r#""b":[["0.34990000","0.00000000"],["0.34970000","3.25000000"]],"#,
                r#""a":[["0.35030000","7.00000000"]]}}"#
            ),
        ),
        stream(
            1_700_000_000_152_000,
            1_700_000_000_150_000,
            concat!(
                r#"{"stream":"nknusdt@trade","data":{"e":"trade","E":1700000000150,"#,
                r#""s":"NKNUSDT","t":42,"p":"0.35010000","q":"1.50000000","#,
                r#""T":1700000000150,"m":false,"M":true}}"#
            ),
        ),
        stream(
            1_700_000_000_203_000,
            1_700_000_000_200_000,
            concat!(
                r#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000200,"#,
                r#""s":"NKNUSDT","U":5,"u":5,"b":[],"a":[["0.35010000","0.00000000"]]}}"#
            ),
        ),
    ]
}

#[test]
fn rows_become_binance_messages_byte_for_byte_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        // The names say nothing: gzip is told by the magic bytes.
        let book = write_file(dir.path(), &format!("book-{gzip}.csv"), BOOK_CSV, gzip);
        let trades = write_file(dir.path(), &format!("trades-{gzip}"), TRADES_CSV, gzip);
        let mut source = TardisSource::open(Some(&book), Some(&trades), &["nknusdt"]).unwrap();
        assert_eq!(read_all(&mut source), expected_events(), "gzip: {gzip}");
        assert_eq!(next(&mut source).unwrap(), None, "stays at the end");
        let stats = *source.stats();
        assert_eq!(stats.rows_before_snapshot, 1);
        assert_eq!(
            stats.snapshot_rows_dropped, 2,
            "amount 0 and a repeated price"
        );
        assert_eq!(
            (stats.snapshots, stats.depth_messages, stats.trades),
            (1, 2, 2)
        );
    }
}

#[test]
fn messages_decode_with_the_live_decoder_on_its_fast_path_and_build_the_book() {
    let mut decoder = decoder(&["NKNUSDT"]);
    let events = expected_events();
    let mut trades = Vec::new();
    let mut depth_ids = Vec::new();
    for event in &events[1..] {
        match decoder.decode(event.text.as_bytes(), 7).unwrap() {
            MarketEvent::Trade(t) => {
                trades.push((t.trade_id, t.px, t.qty, t.flags, t.event_time_ms))
            }
            MarketEvent::Depth(d) => depth_ids.push((d.first_update_id, d.final_update_id)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        trades,
        vec![
            (
                41,
                units("0.3499"),
                units("2"),
                TRADE_FLAG_BUYER_IS_MAKER,
                1_700_000_000_050
            ),
            (42, units("0.3501"), units("1.5"), 0, 1_700_000_000_150),
        ]
    );
    assert_eq!(depth_ids, vec![(2, 4), (5, 5)]);
    let stats = decoder.stats();
    assert_eq!((stats.fast_path, stats.general_path), (4, 0));

    let snapshot = decoder
        .decode_snapshot(events[0].text.as_bytes(), 0)
        .unwrap();
    assert_eq!(snapshot.last_update_id, 1);
    assert_eq!(
        snapshot.bids,
        [level("0.3499", "12"), level("0.3498", "0.00001")]
    );
    assert_eq!(
        snapshot.asks,
        [level("0.3501", "15.5"), level("0.3502", "20")]
    );

    let book = feed_book(&mut decoder, 0, &events);
    assert_eq!(book.state(), BookState::Synced);
    assert_eq!(
        book.bids().collect::<Vec<_>>(),
        [level("0.3498", "0.00001"), level("0.3497", "3.25")]
    );
    assert_eq!(
        book.asks().collect::<Vec<_>>(),
        [level("0.3502", "20"), level("0.3503", "7")]
    );
}

/// One book row of the generated day.
struct Row {
    snapshot: bool,
    timestamp: u64,
    local: u64,
    bid: bool,
    price: String,
    amount: String,
}

/// A generated day of NKNUSDT: a snapshot, thousands of messages, a second snapshot (a
/// reconnection) half way, then more messages. Bids stay below 0.35 and asks above, so the book
/// never crosses. Amounts are written in Tardis' styles (`12`, `0.5`, `5e-05`, `0`).
fn generated_day(seed: u64) -> Vec<Row> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rows = Vec::new();
    let mut time = 1_700_000_000_000_000u64;
    let price = |rng: &mut fastrand::Rng, bid: bool| {
        let ticks = rng.u32(1..=60);
        let px = if bid { 3500 - ticks } else { 3500 + ticks };
        format!("0.{px}")
    };
    let amount = |rng: &mut fastrand::Rng, zero: bool| match (zero, rng.u8(0..4)) {
        (true, _) => "0".to_owned(),
        (false, 0) => format!("{}", rng.u32(1..5000)),
        (false, 1) => format!("{}.{}", rng.u32(0..100), rng.u32(1..10)),
        (false, 2) => format!("{}e-05", rng.u32(1..10)),
        (false, _) => format!("{}.{:02}", rng.u32(1..100), rng.u32(1..100)),
    };
    for phase in 0..2 {
        time += 1_000;
        for i in 0..40 {
            let bid = i % 2 == 0;
            rows.push(Row {
                snapshot: true,
                timestamp: time,
                local: time + 500,
                bid,
                price: price(&mut rng, bid),
                amount: amount(&mut rng, phase == 1 && i == 7),
            });
        }
        time += 1_000;
        for _ in 0..1500 {
            time += rng.u64(0..3) * 1_000;
            let local = time + rng.u64(100..900);
            for _ in 0..rng.usize(1..8) {
                let bid = rng.bool();
                let zero = rng.u8(0..3) == 0;
                rows.push(Row {
                    snapshot: false,
                    timestamp: time,
                    local,
                    bid,
                    price: price(&mut rng, bid),
                    amount: amount(&mut rng, zero),
                });
            }
            time += 1_000;
        }
    }
    rows
}

fn book_csv(rows: &[Row], symbol: &str) -> String {
    let mut text = format!("{BOOK_HEADER}\n");
    for r in rows {
        let side = if r.bid { "bid" } else { "ask" };
        text += &format!(
            "binance,{symbol},{},{},{},{side},{},{}\n",
            r.timestamp, r.local, r.snapshot, r.price, r.amount
        );
    }
    text
}

/// The book the rows describe, by Tardis' rules (a new snapshot resets it; amount 0 removes a
/// level), in units: the test's oracle.
fn oracle(rows: &[Row]) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
    let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
    let mut in_snapshot = false;
    for r in rows {
        if r.snapshot && !in_snapshot {
            bids.clear();
            asks.clear();
        }
        in_snapshot = r.snapshot;
        let side = if r.bid { &mut bids } else { &mut asks };
        let (px, qty) = (
            units(&r.price),
            units(
                &super::csv::parse_decimal(r.amount.as_bytes())
                    .unwrap()
                    .to_string(),
            ),
        );
        if qty == 0 {
            side.remove(&px);
        } else {
            side.insert(px, qty);
        }
    }
    (bids, asks)
}

#[test]
fn a_generated_day_builds_the_book_its_rows_describe() {
    let rows = generated_day(7);
    let dir = tempfile::tempdir().unwrap();
    let book_path = write_file(dir.path(), "book.csv.gz", &book_csv(&rows, "NKNUSDT"), true);
    let events = open_and_read(Some(&book_path), None, &["NKNUSDT"]);
    let mut decoder = decoder(&["NKNUSDT"]);
    let book = feed_book(&mut decoder, 0, &events);
    assert_eq!(book.state(), BookState::Synced);
    assert_eq!(decoder.stats().general_path, 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == InputKind::Snapshot)
            .count(),
        2
    );

    let (bids, asks) = oracle(&rows);
    let got_bids: Vec<Level> = book.bids().collect();
    let want_bids: Vec<Level> = bids
        .iter()
        .rev()
        .map(|(&px, &qty)| Level { px, qty })
        .collect();
    assert_eq!(got_bids, want_bids);
    let got_asks: Vec<Level> = book.asks().collect();
    let want_asks: Vec<Level> = asks.iter().map(|(&px, &qty)| Level { px, qty }).collect();
    assert_eq!(got_asks, want_asks);
    assert!(!want_bids.is_empty() && !want_asks.is_empty());

    // recv_ns never goes back, and is local_timestamp x 1000.
    assert!(events.windows(2).all(|w| w[0].recv_ns <= w[1].recv_ns));
    assert_eq!(events[0].recv_ns, rows[0].local * 1000);
}

#[test]
fn a_group_larger_than_a_message_is_split_with_consecutive_ids() {
    let rows_in_group = DEPTH_LEVELS_MAX + 5;
    let mut text = format!("{BOOK_HEADER}\n");
    text += "binance,NKNUSDT,1000000,1000000,true,bid,0.1,1\n";
    text += "binance,NKNUSDT,1000000,1000000,true,ask,9,1\n";
    for i in 0..rows_in_group {
        text += &format!(
            "binance,NKNUSDT,2000000,2000100,false,bid,0.{:05},{}\n",
            20000 + i,
            i + 1
        );
    }
    text += "binance,NKNUSDT,3000000,3000100,false,ask,8,2\n";
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "book.csv", &text, false);
    let mut source = TardisSource::open(Some(&path), None, &["NKNUSDT"]).unwrap();
    let events = read_all(&mut source);
    assert_eq!(events.len(), 4);
    assert_eq!(source.stats().depth_splits, 1);
    let mut decoder = decoder(&["NKNUSDT"]);
    let mut ids = Vec::new();
    for event in &events[1..] {
        match decoder.decode(event.text.as_bytes(), 0).unwrap() {
            MarketEvent::Depth(d) => ids.push((
                d.first_update_id,
                d.final_update_id,
                d.bids.len() + d.asks.len(),
            )),
            other => panic!("{other:?}"),
        }
    }
    let n = DEPTH_LEVELS_MAX as u64;
    assert_eq!(
        ids,
        vec![
            (2, 1 + n, DEPTH_LEVELS_MAX),
            (2 + n, 6 + n, 5),
            (7 + n, 7 + n, 1)
        ]
    );
    assert_eq!(
        (events[1].recv_ns, events[2].recv_ns),
        (2_000_100_000, 2_000_100_000)
    );
    let book = feed_book(&mut decoder, 0, &events);
    assert_eq!(book.bids().count(), 1 + rows_in_group);
    assert_eq!(book.best_ask(), Some(level("8", "2")));
}

#[test]
fn a_snapshot_over_the_cap_is_an_error_naming_the_row() {
    let mut text = format!("{BOOK_HEADER}\n");
    for i in 0..=SNAPSHOT_LEVELS_MAX {
        text += &format!("binance,NKNUSDT,1000000,1000000,true,bid,{},1\n", i + 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "book.csv", &text, false);
    let mut source = TardisSource::open(Some(&path), None, &["NKNUSDT"]).unwrap();
    match next(&mut source) {
        Err(InputError::Format {
            path: p,
            line,
            problem,
        }) => {
            assert_eq!((p, line), (path, SNAPSHOT_LEVELS_MAX as u64 + 2));
            assert!(problem.contains("snapshot of more than"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn exponent_numbers_convert_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let book = write_file(
        dir.path(),
        "book.csv",
        &format!(
            "{BOOK_HEADER}\nbinance,BLZETH,1000,1000,true,bid,5.429e-5,1E+2\n\
             binance,BLZETH,1000,1000,true,ask,0.00005431,3.0000000\n\
             binance,BLZETH,2000,2000,false,bid,5.43e-05,1e-8\n"
        ),
        false,
    );
    let events = open_and_read(Some(&book), None, &["BLZETH"]);
    assert!(
        events[0]
            .text
            .contains(r#"[["0.00005429","100.00000000"]]"#),
        "{}",
        events[0].text
    );
    assert!(
        events[1]
            .text
            .contains(r#""b":[["0.00005430","0.00000001"]]"#),
        "{}",
        events[1].text
    );
    let mut decoder = decoder(&["BLZETH"]);
    let book = feed_book(&mut decoder, 0, &events);
    assert_eq!(book.best_bid(), Some(Level { px: 5430, qty: 1 }));
    assert_eq!(
        book.best_ask(),
        Some(Level {
            px: 5431,
            qty: 300_000_000
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Merge, symbols, trades.

#[test]
fn the_files_merge_by_local_timestamp_then_timestamp_then_book_first() {
    let dir = tempfile::tempdir().unwrap();
    let book = write_file(
        dir.path(),
        "book.csv",
        &format!(
            "{BOOK_HEADER}\n\
             binance,NKNUSDT,100,1000,true,bid,0.1,1\n\
             binance,NKNUSDT,100,1000,true,ask,0.2,1\n\
             binance,NKNUSDT,1900,2000,false,bid,0.1,2\n\
             binance,NKNUSDT,2950,3000,false,bid,0.1,3\n\
             binance,NKNUSDT,3900,4000,false,bid,0.1,4\n"
        ),
        false,
    );
    let trades = write_file(
        dir.path(),
        "trades.csv",
        &format!(
            "{TRADES_HEADER}\n\
             binance,NKNUSDT,500,500,1,buy,0.2,1\n\
             binance,NKNUSDT,1800,2000,2,buy,0.2,1\n\
             binance,NKNUSDT,2950,3000,3,buy,0.2,1\n\
             binance,NKNUSDT,3950,4000,4,buy,0.2,1\n\
             binance,NKNUSDT,5000,5000,5,buy,0.2,1\n"
        ),
        false,
    );
    let order: Vec<(u64, &str)> = open_and_read(Some(&book), Some(&trades), &["NKNUSDT"])
        .iter()
        .map(|e| {
            let what = if e.kind == InputKind::Snapshot {
                "snapshot"
            } else if e.text.contains("@trade") {
                "trade"
            } else {
                "depth"
            };
            (e.recv_ns / 1000, what)
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (500, "trade"),
            (1000, "snapshot"),
            (2000, "trade"), // timestamp 1800 before the depth's 1900
            (2000, "depth"),
            (3000, "depth"), // both at 2950: the book first
            (3000, "trade"),
            (4000, "depth"),
            (4000, "trade"),
            (5000, "trade"),
        ]
    );
}

#[test]
fn symbols_are_filtered_ignoring_case_and_written_upper_case() {
    let dir = tempfile::tempdir().unwrap();
    let book = write_file(
        dir.path(),
        "book.csv",
        &format!(
            "{BOOK_HEADER}\n\
             binance,BLZETH,100,1000,true,bid,0.1,1\n\
             binance,nknusdt,100,1000,true,bid,0.1,1\n\
             binance,BTC-USD,100,1000,true,bid,0.1,1\n\
             binance,BLZETH,200,2000,false,bid,0.1,2\n\
             binance,NknUsdt,200,2000,false,bid,0.1,2\n"
        ),
        false,
    );
    let mut source = TardisSource::open(Some(&book), None, &["NKNusdt"]).unwrap();
    let events = read_all(&mut source);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].symbol.as_deref(), Some("NKNUSDT"));
    assert!(
        events[1]
            .text
            .starts_with(r#"{"stream":"nknusdt@depth@100ms","#)
    );
    assert!(events[1].text.contains(r#""s":"NKNUSDT""#));
    assert_eq!(source.stats().rows_other_symbols, 3);

    // No list: every symbol; one that is not Binance's is an error naming it (met while
    // looking for the end of NKNUSDT's snapshot).
    let mut all = TardisSource::open(Some(&book), None, &[]).unwrap();
    let first = next(&mut all).unwrap().unwrap();
    assert_eq!(first.symbol.as_deref(), Some("BLZETH"));
    let err = next(&mut all).unwrap_err().to_string();
    assert!(err.contains(":4: column symbol: \"BTC-USD\""), "{err}");

    let bad = TardisSource::open(Some(&book), None, &["NKN USDT"]).unwrap_err();
    assert!(bad.to_string().contains("\"NKN USDT\""), "{bad}");
    assert!(TardisSource::open(None, None, &["NKNUSDT"]).is_err());
}

#[test]
fn unknown_sides_and_non_numeric_ids_are_written_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let trades = write_file(
        dir.path(),
        "trades.csv",
        &format!(
            "{TRADES_HEADER}\n\
             binance,NKNUSDT,1000,1000,,unknown,0.2,1\n\
             binance,NKNUSDT,2000,2000,7a1c-9f,sell,0.2,1\n\
             binance,NKNUSDT,3000,3000,100,sell,0.2,1\n\
             binance,NKNUSDT,4000,4000,18446744073709551616,buy,0.2,1\n"
        ),
        false,
    );
    let mut source = TardisSource::open(None, Some(&trades), &["NKNUSDT"]).unwrap();
    let events = read_all(&mut source);
    let mut decoder = decoder(&["NKNUSDT"]);
    let decoded: Vec<(u64, u32)> = events
        .iter()
        .map(|e| match decoder.decode(e.text.as_bytes(), 0).unwrap() {
            MarketEvent::Trade(t) => (t.trade_id, t.flags),
            other => panic!("{other:?}"),
        })
        .collect();
    let maker = TRADE_FLAG_BUYER_IS_MAKER;
    assert_eq!(decoded, vec![(1, 0), (2, maker), (100, maker), (101, 0)]);
    let stats = source.stats();
    assert_eq!((stats.trades_side_unknown, stats.trades_id_counted), (1, 3));
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// The error of reading `rows` after a header to the end: (line, problem).
fn error_of(header: &str, rows: &str, book: bool) -> (u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "in.csv", &format!("{header}\n{rows}"), false);
    let (book_path, trades_path) = if book {
        (Some(&*path), None)
    } else {
        (None, Some(&*path))
    };
    let result = TardisSource::open(book_path, trades_path, &["NKNUSDT"]).and_then(|mut source| {
        while next(&mut source)?.is_some() {}
        Ok(())
    });
    match result {
        Err(InputError::Format {
            path: p,
            line,
            problem,
        }) => {
            assert_eq!(p, path);
            (line, problem)
        }
        other => panic!("{header} {rows}: {other:?}"),
    }
}

#[test]
fn every_malformed_row_is_an_error_naming_file_line_and_column() {
    let book_ok = "binance,NKNUSDT,100,1000,true,bid,0.1,1\n";
    let book_cases: &[(&str, &str)] = &[
        (
            "binance,NKNUSDT,100,1000,true,bid,0.1\n",
            "7 columns where the header has 8",
        ),
        (
            "binance,NKNUSDT,100,1000,true,bid,0.1,1,x\n",
            "9 columns where the header has 8",
        ),
        (
            "binance,NKNUSDT,1e2,1000,true,bid,0.1,1\n",
            "column timestamp: \"1e2\"",
        ),
        (
            "binance,NKNUSDT,100,-5,true,bid,0.1,1\n",
            "column local_timestamp: \"-5\"",
        ),
        (
            "binance,NKNUSDT,100,1000,yes,bid,0.1,1\n",
            "column is_snapshot: \"yes\" is not true or false",
        ),
        (
            "binance,NKNUSDT,100,1000,true,buy,0.1,1\n",
            "column side: \"buy\" is not bid or ask",
        ),
        (
            "binance,NKNUSDT,100,1000,true,bid,0.1.2,1\n",
            "column price: \"0.1.2\" is not a number",
        ),
        (
            "binance,NKNUSDT,100,1000,true,bid,0.1,-1\n",
            "column amount: \"-1\" is not a number",
        ),
        (
            "binance,NKNUSDT,100,1000,true,bid,0.1,NaN\n",
            "column amount: \"NaN\"",
        ),
        (
            "binance,NKNUSDT,100,999,true,bid,0.1,1\n",
            "column local_timestamp: 999 goes back in time",
        ),
        // A row of a symbol not read is still checked for its time.
        (
            "binance,BLZETH,100,999,true,bid,0.1,1\n",
            "column local_timestamp: 999 goes back in time",
        ),
    ];
    for (row, problem) in book_cases {
        let (line, got) = error_of(BOOK_HEADER, &format!("{book_ok}{row}"), true);
        assert_eq!(line, 3, "{row}");
        assert!(got.contains(problem), "{row}: {got}");
    }
    let trade_ok = "binance,NKNUSDT,100,1000,1,buy,0.1,1\n";
    let trade_cases: &[(&str, &str)] = &[
        (
            "binance,NKNUSDT,100,1000,2,taker,0.1,1\n",
            "column side: \"taker\" is not buy, sell or unknown",
        ),
        (
            "binance,NKNUSDT,100,1000,2,sell,abc,1\n",
            "column price: \"abc\"",
        ),
        (
            "binance,NKNUSDT,100,1000,2,sell,0.1,\n",
            "column amount: \"\"",
        ),
        (
            "binance,NKNUSDT,100,10,2,sell,0.1,1\n",
            "column local_timestamp: 10 goes back",
        ),
    ];
    for (row, problem) in trade_cases {
        let (line, got) = error_of(TRADES_HEADER, &format!("{trade_ok}{row}"), false);
        assert_eq!(line, 3, "{row}");
        assert!(got.contains(problem), "{row}: {got}");
    }
    // Headers.
    let (line, got) = error_of(
        "exchange,symbol,timestamp,local_timestamp,side,price,amount",
        "",
        true,
    );
    assert_eq!(line, 1);
    assert!(got.contains("no column \"is_snapshot\""), "{got}");
    let (line, got) = error_of("", "", true);
    assert_eq!(line, 1);
    assert!(got.contains("no column"), "{got}");
    // A line without an end, longer than the limit.
    let long = "9".repeat(csv::LINE_LEN_MAX + 10);
    let (line, got) = error_of(
        BOOK_HEADER,
        &format!("{book_ok}binance,NKNUSDT,{long}"),
        true,
    );
    assert_eq!(line, 3);
    assert!(got.contains("longer than"), "{got}");
    // The Display form names all three.
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "b.csv", &format!("{BOOK_HEADER}\nx\n"), false);
    let err = TardisSource::open(Some(&path), None, &[])
        .and_then(|mut s| s.next_event().map(|_| ()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: 1 columns where the header has 8", path.display())
    );
}

#[test]
fn empty_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_file(dir.path(), "empty.csv", "", false);
    match TardisSource::open(Some(&empty), None, &[]) {
        Err(InputError::Format {
            line: 1, problem, ..
        }) => assert!(problem.contains("empty")),
        other => panic!("{other:?}"),
    }
    // A header only: no events.
    let header_only = write_file(dir.path(), "h.csv.gz", &format!("{TRADES_HEADER}\n"), true);
    assert!(open_and_read(None, Some(&header_only), &[]).is_empty());
    // A gzip file cut short: an I/O error naming the file.
    let full = std::fs::read(write_file(
        dir.path(),
        "full.gz",
        &book_csv(&generated_day(1), "NKNUSDT"),
        true,
    ))
    .unwrap();
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let mut source = TardisSource::open(Some(&cut), None, &[]).unwrap();
    let err = loop {
        match source.next_event() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a cut gzip file read to its end"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, InputError::Io { path, .. } if *path == cut),
        "{err:?}"
    );
    let missing = dir.path().join("missing.csv");
    assert!(matches!(
        TardisSource::open(Some(&missing), None, &[]),
        Err(InputError::Io { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Memory.

#[test]
fn the_reused_buffers_stay_bounded_over_many_groups() {
    // The first message is the largest; after it, 40,000 more rows must not grow anything.
    let mut rows = generated_day(3);
    rows.truncate(40 + 6000);
    let dir = tempfile::tempdir().unwrap();
    let book = write_file(dir.path(), "book.csv.gz", &book_csv(&rows, "NKNUSDT"), true);
    let mut trades_text = format!("{TRADES_HEADER}\n");
    for i in 0..20_000u64 {
        let t = 1_700_000_000_000_000 + i * 700;
        trades_text += &format!("binance,NKNUSDT,{t},{t},{i},buy,0.35,{}\n", i % 97 + 1);
    }
    let trades = write_file(dir.path(), "trades.csv", &trades_text, false);
    let mut source = TardisSource::open(Some(&book), Some(&trades), &["NKNUSDT"]).unwrap();
    let mut count = 0;
    let mut capacity_early = 0;
    while source.next_event().unwrap().is_some() {
        count += 1;
        if count == 500 {
            capacity_early = source.buffer_capacity();
        }
    }
    assert!(count > 20_000, "{count}");
    assert_eq!(source.buffer_capacity(), capacity_early);
    assert!(capacity_early < 1 << 20, "{capacity_early}");
}

// ---------------------------------------------------------------------------------------------
// The committed sample (scripts/capture-to-tardis on the synthetic recording).

fn sample_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/tardis-sample"
    ))
    .to_owned()
}

#[test]
fn the_sample_decodes_and_builds_the_book_of_its_original_capture() {
    let dir = sample_dir();
    let events = open_and_read(
        Some(&dir.join("incremental_book_L2.csv.gz")),
        Some(&dir.join("trades.csv.gz")),
        &["NKNUSDT"],
    );
    let mut decoder = decoder(&["NKNUSDT"]);
    let mut trades = Vec::new();
    for event in &events {
        match event.kind {
            InputKind::Trading | InputKind::Decoded(_) => {
                panic!("Tardis files hold no trading changes, no decoded records")
            }
            InputKind::Snapshot => {
                decoder.decode_snapshot(event.text.as_bytes(), 0).unwrap();
            }
            InputKind::Stream => match decoder.decode(event.text.as_bytes(), 0).unwrap() {
                MarketEvent::Trade(t) => {
                    trades.push((t.trade_id, t.px, t.qty, t.flags, t.trade_time_ms))
                }
                MarketEvent::Depth(_) => {}
                other => panic!("{other:?}"),
            },
        }
    }
    assert_eq!(decoder.stats().general_path, 0);
    let book = feed_book(&mut decoder, 0, &events);
    assert_eq!(book.state(), BookState::Synced);

    // The original: the capture's diffs and snapshot, by Binance's procedure.
    let recording = levibot_gateway::capture::Recording::testdata().unwrap();
    let mut original = OrderBook::new(0, BookLimits::DEFAULT).unwrap();
    let snapshot_line = recording
        .snapshot_lines()
        .unwrap()
        .into_iter()
        .find(|s| s.symbol == "NKNUSDT")
        .unwrap()
        .line;
    let mut snapshot_applied = false;
    let mut original_trades = Vec::new();
    for line in recording.messages() {
        let line = line.unwrap();
        if !snapshot_applied && line.epoch_seconds > snapshot_line.epoch_seconds {
            let snapshot = decoder.decode_snapshot(snapshot_line.body, 0).unwrap();
            assert_eq!(
                original.apply_snapshot(&snapshot).unwrap(),
                BookOutcome::Applied
            );
            snapshot_applied = true;
        }
        match decoder.decode(line.body, 0) {
            Ok(MarketEvent::Depth(update)) => {
                let _ = original.apply_update(&update);
            }
            Ok(MarketEvent::AggTrade(t)) => {
                original_trades.push((t.agg_id, t.px, t.qty, t.flags, t.trade_time_ms));
            }
            // Other symbols' messages (not in this decoder's table), bookTickers.
            Ok(_) | Err(_) => {}
        }
    }
    assert!(snapshot_applied);
    assert_eq!(original.state(), BookState::Synced);
    assert!(original.stats().updates_applied > 100);
    assert_eq!(
        book.bids().collect::<Vec<_>>(),
        original.bids().collect::<Vec<_>>()
    );
    assert_eq!(
        book.asks().collect::<Vec<_>>(),
        original.asks().collect::<Vec<_>>()
    );
    assert_eq!(trades, original_trades);
    assert!(!trades.is_empty());
}
