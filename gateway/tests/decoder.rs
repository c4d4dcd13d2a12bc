//! The Binance decoder on the repository's synthetic recording, on the real corpus when it is
//! here, and on bad input.

use levibot_gateway::binance::{DecodeErrorKind, Decoder, MarketEvent, StreamKind};
use levibot_gateway::capture::{Recording, capture_lines, real_corpus_for};
use levibot_gateway::decimal::DecimalError;

fn decoder_for(recording: &Recording) -> Decoder {
    Decoder::new(recording.snapshot_instruments().unwrap())
}

fn corpus_decoder() -> Decoder {
    decoder_for(&Recording::testdata().unwrap())
}

/// Decodes every stream message of `recording`, checking each event's shape, and returns how
/// many of each kind: (book tickers, depth diffs, aggTrades, skipped).
fn decode_every_message(recording: &Recording) -> (usize, usize, usize, usize) {
    let mut decoder = decoder_for(recording);
    let (mut tickers, mut depth, mut aggs, mut skipped) = (0, 0, 0, 0);
    for line in recording.messages() {
        let line = line.unwrap();
        match decoder.decode(line.body, 7).unwrap() {
            MarketEvent::BookTicker(t) => {
                tickers += 1;
                assert!(
                    t.bid_px < t.ask_px && t.bid_qty > 0 && t.ask_qty > 0,
                    "{t:?}"
                );
                assert_eq!(t.recv_tsc, 7);
            }
            MarketEvent::Depth(d) => {
                depth += 1;
                assert!(d.first_update_id <= d.final_update_id);
                assert!(!d.bids.is_empty() || !d.asks.is_empty());
            }
            MarketEvent::AggTrade(a) => {
                aggs += 1;
                assert!(a.px > 0 && a.qty > 0);
            }
            MarketEvent::Trade(_) => panic!("no trade stream in the recordings"),
            MarketEvent::Skipped(kind) => {
                assert_eq!(kind, StreamKind::Other);
                skipped += 1;
            }
        }
    }
    let stats = decoder.stats();
    assert_eq!(
        stats.fast_path,
        (tickers + depth + aggs) as u64,
        "{stats:?}"
    );
    assert_eq!((stats.skipped, stats.errors), (skipped as u64, 0));
    (tickers, depth, aggs, skipped)
}

#[test]
fn every_testdata_message_decodes_and_the_fast_path_takes_the_known_streams() {
    let recording = Recording::testdata().unwrap();
    // The oracle: the stream names in the raw lines, counted without the decoder.
    let text = String::from_utf8(recording.stream.clone()).unwrap();
    let count = |needle: &str| text.matches(needle).count();
    let expected = (
        count("@bookTicker\","),
        count("@depth@100ms\","),
        count("@aggTrade\","),
        0,
    );
    assert!(
        expected.0 > 100 && expected.1 > 100 && expected.2 > 10,
        "{expected:?}"
    );
    assert_eq!(decode_every_message(&recording), expected);
}

#[test]
fn real_corpus_every_message_decodes_and_the_fast_path_takes_the_known_streams() {
    let Some(corpus) = real_corpus_for("real_corpus_every_message_decodes") else {
        return;
    };
    assert_eq!(corpus.instruments().unwrap().len(), 1695);
    // Counted by hand in the recording (see its NOTICE.md): 84 bookTicker, 177 depth diffs,
    // 2 aggTrade, 2 kline (a stream the decoder skips).
    assert_eq!(decode_every_message(&corpus), (84, 177, 2, 2));
}

#[test]
fn a_known_book_ticker_decodes_to_exact_units() {
    let mut decoder = corpus_decoder();
    let msg = br#"{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}"#;
    let MarketEvent::BookTicker(t) = decoder.decode(msg, 1).unwrap() else {
        panic!()
    };
    // NKNUSDT: prices and quantities in units of 10^-8; its tick is 10,000 price units.
    const Q: i64 = 100_000_000;
    assert_eq!(
        (t.update_id, t.bid_px, t.bid_qty, t.ask_px, t.ask_qty),
        (499869768, 35_210_000, 672 * Q, 35_260_000, 3199 * Q)
    );
    let nkn = decoder.instruments().find(b"NKNUSDT").unwrap();
    assert_eq!(t.bid_px % nkn.tick_units, 0);
    let id = decoder.instruments().find(b"NKNUSDT").unwrap().id;
    assert_eq!(t.instrument_id, id);
}

#[test]
fn snapshots_decode_best_first() {
    let mut decoder = corpus_decoder();
    let corpus = Recording::testdata().unwrap();
    let mut seen = 0;
    for s in corpus.snapshot_lines().unwrap() {
        let id = decoder.instruments().find(s.symbol.as_bytes()).unwrap().id;
        let snap = decoder.decode_snapshot(s.line.body, id).unwrap();
        assert!(snap.bids.windows(2).all(|w| w[0].px > w[1].px));
        assert!(snap.asks.windows(2).all(|w| w[0].px < w[1].px));
        assert!(snap.bids[0].px < snap.asks[0].px);
        assert!(snap.last_update_id > 0);
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn bad_messages_are_errors_with_offsets() {
    let mut decoder = corpus_decoder();
    // (message, the text the error's offset must point at, what the error says)
    let cases: [(&[u8], &str, &str); 6] = [
        (br#"{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"0.352150001","B":"1","a":"0.3526","A":"1"}}"#, "0.352150001", "not a whole multiple"),
        (br#"{"stream":"xyzusdt@bookTicker","data":{"u":1,"s":"XYZUSDT","b":"1","B":"1","a":"1","A":"1"}}"#, "XYZUSDT", "unknown symbol"),
        (br#"{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"0.3521","B":"1","a":"0.3526"}}"#, "nknusdt@", "\"A\" is missing"),
        (br#"{"stream":"nknusdt@bookTicker","data":{"u":"1","s":"NKNUSDT"}}"#, "nknusdt@", "wrong type"),
        (br#"{"stream":"nknusdt@bookTicker","data":{"u":1,"#, "", "invalid JSON"),
        (br#"{"e":"kline","E":1}"#, "kline", "not a market-data event"),
    ];
    for (msg, at, text) in cases {
        let err = decoder.decode(msg, 0).unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
        if at.is_empty() {
            assert!(err.offset <= msg.len(), "{err}");
            continue;
        }
        let expected = msg
            .windows(at.len())
            .position(|w| w == at.as_bytes())
            .unwrap();
        assert_eq!(
            err.offset,
            expected,
            "{err} in {}",
            String::from_utf8_lossy(msg)
        );
    }
    let err = decoder
        .decode(br#"{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"0.352150001","B":"1","a":"0.3526","A":"1"}}"#, 0)
        .unwrap_err();
    assert!(matches!(
        err.kind,
        DecodeErrorKind::Decimal {
            field: "b",
            error: DecimalError::NotMultiple
        }
    ));
    assert_eq!(decoder.stats().errors, 7);
}

#[test]
fn mangled_corpus_messages_never_panic() {
    let mut decoder = corpus_decoder();
    let mut data = Recording::testdata().unwrap().stream;
    if let Some(corpus) = real_corpus_for("mangled_corpus_messages_never_panic (its real part)") {
        data.extend_from_slice(&corpus.stream);
    }
    let messages: Vec<Vec<u8>> = capture_lines(&data)
        .map(|l| l.unwrap().body.to_vec())
        .collect();
    let seed = 0x01e7_1b07;
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("seed {seed}");
    for _ in 0..20_000 {
        let mut msg = messages[rng.usize(..messages.len())].clone();
        for _ in 0..rng.usize(1..4) {
            if msg.is_empty() {
                break;
            }
            match rng.u8(..3) {
                0 => {
                    let at = rng.usize(..msg.len());
                    msg[at] = rng.u8(..);
                }
                1 => msg.truncate(rng.usize(..msg.len())),
                _ => {
                    let at = rng.usize(..=msg.len());
                    msg.insert(at, b"\"{}[],:0.9 \\e-"[rng.usize(..14)]);
                }
            }
        }
        let _ = decoder.decode(&msg, 0);
        let _ = decoder.decode_snapshot(&msg, 0);
    }
}
