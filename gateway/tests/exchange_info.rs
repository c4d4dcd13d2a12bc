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

#[test]
fn the_request_weight_limit_comes_from_rate_limits() {
    use levibot_gateway::instrument::{RequestWeightLimit, parse_request_weight_limit};
    use std::time::Duration;
    let minute = |limit| {
        Some(RequestWeightLimit {
            limit,
            window: Duration::from_secs(60),
        })
    };
    let body = |limits: &str| format!(r#"{{"rateLimits":[{limits}],"symbols":[]}}"#);
    let weight = |n: u32, interval: &str, limit: u32| {
        format!(
            r#"{{"rateLimitType":"REQUEST_WEIGHT","interval":"{interval}","intervalNum":{n},"limit":{limit}}}"#
        )
    };
    let orders = r#"{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50}"#;
    // The synthetic venue's (and what venue-sim serves): Binance Spot's 6000 a minute.
    let testdata = Recording::testdata().unwrap();
    let bare = exchange_info_json(&testdata.instruments().unwrap());
    assert_eq!(
        parse_request_weight_limit(bare.as_bytes()).unwrap(),
        minute(6000)
    );
    // None listed; only other kinds.
    assert_eq!(parse_request_weight_limit(b"{}").unwrap(), None);
    assert_eq!(
        parse_request_weight_limit(body(orders).as_bytes()).unwrap(),
        None
    );
    // Of several, the strictest by weight a second: 100 a second (6000 a minute) is looser than
    // 3000 a minute, which is looser than nothing else here.
    let several = body(&format!(
        "{},{orders},{}",
        weight(1, "SECOND", 100),
        weight(1, "MINUTE", 3000)
    ));
    assert_eq!(
        parse_request_weight_limit(several.as_bytes()).unwrap(),
        minute(3000)
    );
    assert_eq!(
        parse_request_weight_limit(body(&weight(2, "HOUR", 10)).as_bytes()).unwrap(),
        Some(RequestWeightLimit {
            limit: 10,
            window: Duration::from_secs(7200)
        })
    );
    for (bad, says) in [
        (
            weight(1, "WEEK", 10),
            "rateLimits[1]: unknown interval \"WEEK\"",
        ),
        (weight(0, "MINUTE", 10), "rateLimits[1]"),
        (weight(1, "MINUTE", 0), "both must be positive"),
    ] {
        let err = parse_request_weight_limit(body(&format!("{orders},{bad}")).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn real_corpus_request_weight_limit() {
    use levibot_gateway::capture::exchange_info_body;
    use levibot_gateway::instrument::parse_request_weight_limit;
    let Some(corpus) = real_corpus_for("real_corpus_request_weight_limit") else {
        return;
    };
    // Binance Spot in 2021 (the recording's NOTICE.md): 1200 a minute.
    let body = exchange_info_body(&corpus.exchange_info).unwrap();
    let limit = parse_request_weight_limit(body).unwrap().unwrap();
    assert_eq!((limit.limit, limit.window.as_secs()), (1200, 60));
}
