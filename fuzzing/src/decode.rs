//! The Binance market-data decoder: `decode` (any bytes into `Decoder::decode`: whenever the
//! fast path decodes a message, the general simd-json path decodes it to the same event) and
//! `snapshot` (any bytes into `Decoder::decode_snapshot`: levels within the limit).

use std::sync::{Mutex, OnceLock};

use levibot_gateway::binance::{Decoder, LEVELS_PER_MESSAGE_MAX};
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};

/// Two instruments with different precisions.
pub const EXCHANGE_INFO: &str = r#"{"symbols":[
 {"symbol":"NKNUSDT","status":"TRADING","baseAsset":"NKN","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.0001","maxPrice":"1000","tickSize":"0.0001"},
  {"filterType":"LOT_SIZE","minQty":"1","maxQty":"9000000","stepSize":"1"},
  {"filterType":"MIN_NOTIONAL","minNotional":"10"}]},
 {"symbol":"RUNEEUR","status":"TRADING","baseAsset":"RUNE","baseAssetPrecision":2,"quoteAsset":"EUR","quoteAssetPrecision":3,"filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.001","maxPrice":"1000","tickSize":"0.005"},
  {"filterType":"LOT_SIZE","minQty":"0.1","maxQty":"90000","stepSize":"0.1"},
  {"filterType":"MIN_NOTIONAL","minNotional":"10"}]}]}"#;

/// The two instruments of [`EXCHANGE_INFO`].
pub fn instruments() -> &'static InstrumentTable {
    static TABLE: OnceLock<InstrumentTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all = parse_exchange_info(EXCHANGE_INFO.as_bytes()).expect("valid exchangeInfo");
        InstrumentTable::new(all).expect("two instruments")
    })
}

fn decoder() -> std::sync::MutexGuard<'static, Decoder> {
    static DECODER: OnceLock<Mutex<Decoder>> = OnceLock::new();
    DECODER
        .get_or_init(|| Mutex::new(Decoder::new(instruments().clone())))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

pub fn decode(data: &[u8]) {
    let mut decoder = decoder();
    let fast_before = decoder.stats().fast_path;
    let decoded = format!("{:?}", decoder.decode(data, 1));
    if decoder.stats().fast_path > fast_before {
        let general = format!("{:?}", decoder.decode_general(data, 1));
        assert_eq!(
            decoded,
            general,
            "paths disagree on {:?}",
            String::from_utf8_lossy(data)
        );
    }
}

pub fn snapshot(data: &[u8]) {
    let mut decoder = decoder();
    for id in 0..2 {
        if let Ok(snapshot) = decoder.decode_snapshot(data, id) {
            assert_eq!(snapshot.instrument_id, id);
            assert!(snapshot.bids.len() + snapshot.asks.len() <= LEVELS_PER_MESSAGE_MAX);
        }
    }
}
