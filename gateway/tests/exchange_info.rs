//! `exchange_info_json` writes what `parse_exchange_info` reads back: every field of every
//! instrument, on the synthetic recording's exchangeInfo and, when it is here, on the real one
//! (1,695 Binance Spot symbols: every precision, tick and lot the venue uses).

use levibot_gateway::capture::{Recording, real_corpus_for};
use levibot_gateway::instrument::{Instrument, exchange_info_json, parse_exchange_info};

fn round_trips(instruments: &[Instrument]) {
    let json = exchange_info_json(instruments);
    let back = parse_exchange_info(json.as_bytes()).unwrap();
    assert_eq!(back.len(), instruments.len());
    for (a, b) in instruments.iter().zip(&back) {
        assert_eq!(a, b, "{}", a.symbol);
    }
}

#[test]
fn the_testdata_instruments_round_trip() {
    let instruments = Recording::testdata().unwrap().instruments().unwrap();
    assert!(instruments.len() >= 6);
    round_trips(&instruments);
}

#[test]
fn real_corpus_instruments_round_trip() {
    let Some(corpus) = real_corpus_for("real_corpus_instruments_round_trip") else {
        return;
    };
    round_trips(&corpus.instruments().unwrap());
}
