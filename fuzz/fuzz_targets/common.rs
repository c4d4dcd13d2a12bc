//! The decoder every fuzz target shares: two instruments with different precisions, built once.

use std::sync::{Mutex, OnceLock};

use levibot_gateway::binance::Decoder;
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};

const EXCHANGE_INFO: &str = r#"{"symbols":[
 {"symbol":"NKNUSDT","status":"TRADING","baseAsset":"NKN","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.0001","maxPrice":"1000","tickSize":"0.0001"},
  {"filterType":"LOT_SIZE","minQty":"1","maxQty":"9000000","stepSize":"1"},
  {"filterType":"MIN_NOTIONAL","minNotional":"10"}]},
 {"symbol":"RUNEEUR","status":"TRADING","baseAsset":"RUNE","baseAssetPrecision":2,"quoteAsset":"EUR","quoteAssetPrecision":3,"filters":[
  {"filterType":"PRICE_FILTER","minPrice":"0.001","maxPrice":"1000","tickSize":"0.005"},
  {"filterType":"LOT_SIZE","minQty":"0.1","maxQty":"90000","stepSize":"0.1"},
  {"filterType":"MIN_NOTIONAL","minNotional":"10"}]}]}"#;

pub fn decoder() -> &'static Mutex<Decoder> {
    static DECODER: OnceLock<Mutex<Decoder>> = OnceLock::new();
    DECODER.get_or_init(|| {
        let all = parse_exchange_info(EXCHANGE_INFO.as_bytes()).expect("valid exchangeInfo");
        Mutex::new(Decoder::new(InstrumentTable::new(all).expect("two instruments")))
    })
}
