//! Instruments: what the venue trades and its filters (tick, lot, min/max quantity, min
//! notional), loaded from Binance's `exchangeInfo`, and the table the decoder uses to map a
//! symbol to an instrument id and its scales without allocating.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::decimal::{DecimalError, Scale};

/// Longest symbol: Binance's longest is 13 bytes today.
pub const SYMBOL_LEN_MAX: usize = 16;
/// Most instruments one table holds.
pub const INSTRUMENTS_MAX: usize = 4096;

/// An upper-case ASCII symbol such as `NKNUSDT`, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol([u8; SYMBOL_LEN_MAX]);

impl Symbol {
    /// A symbol from bytes, upper-cased (stream names carry it in lower case). `None` if it is
    /// empty, too long, or not ASCII letters and digits.
    #[inline]
    pub fn from_ascii(bytes: &[u8]) -> Option<Symbol> {
        if bytes.is_empty() || bytes.len() > SYMBOL_LEN_MAX {
            return None;
        }
        let mut out = [0u8; SYMBOL_LEN_MAX];
        for (o, &b) in out.iter_mut().zip(bytes) {
            if !b.is_ascii_alphanumeric() {
                return None;
            }
            *o = b.to_ascii_uppercase();
        }
        Some(Symbol(out))
    }

    /// The symbol as one integer that sorts as the symbol does (its bytes, big-endian): what
    /// [`InstrumentTable::find`] searches by. Comparing arrays byte-wise was most of a
    /// lookup's cost, itself a tenth of decoding a message (`levibot-bench instructions`).
    #[inline]
    fn key(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub fn as_str(&self) -> &str {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(SYMBOL_LEN_MAX);
        std::str::from_utf8(&self.0[..len]).expect("symbols are ASCII")
    }
}

impl std::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tradable instrument and its filters. Decimals are for config and display; the hot path
/// works in integer units (see [`crate::decimal`]).
///
/// Market data is in the venue's precision, not in ticks and lots: prices in units of
/// `10^-quoteAssetPrecision`, quantities in units of `10^-baseAssetPrecision`. Real books hold
/// levels off today's grid, left by orders placed before a tick or step change (the corpus
/// NKNUSDT snapshot has a bid at 0.25974 with a tick of 0.0001, and 11979.3 with a step of 1);
/// rounding them would corrupt the book and rejecting them would lose it. Conversion stays exact:
/// a string finer than the precision is an error. Orders must be on the grid: a price a whole
/// number of `tick_units`, a quantity of `lot_units`, which the pre-trade filters check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// Index in its [`InstrumentTable`]; the `instrument_id` of records.
    pub id: u32,
    pub symbol: Symbol,
    pub status: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub tick_size: Decimal,
    pub min_price: Decimal,
    pub max_price: Decimal,
    pub step_size: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
    /// One unit of price: `10^-quoteAssetPrecision`.
    pub price_scale: Scale,
    /// One unit of quantity: `10^-baseAssetPrecision`.
    pub qty_scale: Scale,
    /// The tick size in price units.
    pub tick_units: i64,
    /// The lot (step) size in quantity units.
    pub lot_units: i64,
}

/// Why an `exchangeInfo` document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    #[error("exchangeInfo is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("exchangeInfo symbol {symbol}: {what}")]
    Symbol { symbol: String, what: String },
    #[error("exchangeInfo has {count} symbols, more than {INSTRUMENTS_MAX}")]
    TooMany { count: usize },
    #[error("no instrument {symbol} in exchangeInfo")]
    Unknown { symbol: String },
    #[error("exchangeInfo rateLimits[{index}]: {what}")]
    RateLimit { index: usize, what: String },
}

#[derive(Deserialize)]
struct ExchangeInfo {
    symbols: Vec<SymbolInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SymbolInfo {
    symbol: String,
    status: String,
    base_asset: String,
    base_asset_precision: u8,
    quote_asset: String,
    quote_asset_precision: u8,
    filters: Vec<serde_json::Value>,
}

fn filter_field(
    info: &SymbolInfo,
    filter_type: &str,
    field: &str,
) -> Result<Decimal, InstrumentError> {
    let problem = |what: String| InstrumentError::Symbol {
        symbol: info.symbol.clone(),
        what,
    };
    let filter = info
        .filters
        .iter()
        .find(|f| f.get("filterType").and_then(|t| t.as_str()) == Some(filter_type))
        .ok_or_else(|| problem(format!("no {filter_type} filter")))?;
    let text = filter
        .get(field)
        .and_then(|v| v.as_str())
        .ok_or_else(|| problem(format!("{filter_type}.{field} is missing or not a string")))?;
    Decimal::from_str(text).map_err(|e| problem(format!("{filter_type}.{field} {text:?}: {e}")))
}

fn instrument(id: u32, info: &SymbolInfo) -> Result<Instrument, InstrumentError> {
    let problem = |what: String| InstrumentError::Symbol {
        symbol: info.symbol.clone(),
        what,
    };
    let symbol = Symbol::from_ascii(info.symbol.as_bytes())
        .ok_or_else(|| problem(format!("not 1..={SYMBOL_LEN_MAX} ASCII letters and digits")))?;
    let tick_size = filter_field(info, "PRICE_FILTER", "tickSize")?;
    let step_size = filter_field(info, "LOT_SIZE", "stepSize")?;
    let precision = |name: &str, decimals: u8| {
        // Decimal::new panics on more than 28 decimals; the venue's bytes decide how many.
        Decimal::try_new(1, u32::from(decimals))
            .map_err(|_| DecimalError::BadScale)
            .and_then(Scale::from_decimal)
            .map_err(|e: DecimalError| problem(format!("{name} {decimals}: {e}")))
    };
    let price_scale = precision("quoteAssetPrecision", info.quote_asset_precision)?;
    let qty_scale = precision("baseAssetPrecision", info.base_asset_precision)?;
    let units = |name: &str, size: Decimal, scale: Scale| match scale.from_decimal_value(size) {
        Ok(units) if units > 0 => Ok(units),
        _ => Err(problem(format!(
            "{name} {size} is not a positive whole number of {}",
            scale.unit()
        ))),
    };
    // MIN_NOTIONAL was renamed NOTIONAL by the venue in 2023; accept either.
    let min_notional = filter_field(info, "MIN_NOTIONAL", "minNotional")
        .or_else(|_| filter_field(info, "NOTIONAL", "minNotional"))?;
    Ok(Instrument {
        id,
        symbol,
        status: info.status.clone(),
        base_asset: info.base_asset.clone(),
        quote_asset: info.quote_asset.clone(),
        tick_units: units("PRICE_FILTER.tickSize", tick_size, price_scale)?,
        lot_units: units("LOT_SIZE.stepSize", step_size, qty_scale)?,
        price_scale,
        qty_scale,
        tick_size,
        min_price: filter_field(info, "PRICE_FILTER", "minPrice")?,
        max_price: filter_field(info, "PRICE_FILTER", "maxPrice")?,
        step_size,
        min_qty: filter_field(info, "LOT_SIZE", "minQty")?,
        max_qty: filter_field(info, "LOT_SIZE", "maxQty")?,
        min_notional,
    })
}

/// Parses an `exchangeInfo` answer into instruments, numbered in document order (cold path).
pub fn parse_exchange_info(json: &[u8]) -> Result<Vec<Instrument>, InstrumentError> {
    let info: ExchangeInfo = serde_json::from_slice(json).map_err(|e| InstrumentError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if info.symbols.len() > INSTRUMENTS_MAX {
        return Err(InstrumentError::TooMany {
            count: info.symbols.len(),
        });
    }
    info.symbols
        .iter()
        .enumerate()
        .map(|(id, s)| instrument(id as u32, s))
        .collect()
}

/// A venue's `REQUEST_WEIGHT` rate limit: at most `limit` weight in any `window` (Binance Spot
/// counts it per IP; a depth snapshot weighs by its `limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestWeightLimit {
    pub limit: u32,
    pub window: std::time::Duration,
}

#[derive(Deserialize)]
struct RateLimits {
    #[serde(default, rename = "rateLimits")]
    rate_limits: Vec<RateLimitInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitInfo {
    rate_limit_type: String,
    interval: String,
    interval_num: u32,
    limit: u32,
}

/// The `REQUEST_WEIGHT` limit of an `exchangeInfo` answer's `rateLimits`
/// (`{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}`):
/// the strictest by weight per second if there are several, `None` if there is none. An entry
/// with a zero limit or interval, or an interval other than SECOND, MINUTE, HOUR or DAY, is an
/// error naming its index. Cold path.
pub fn parse_request_weight_limit(
    json: &[u8],
) -> Result<Option<RequestWeightLimit>, InstrumentError> {
    let info: RateLimits = serde_json::from_slice(json).map_err(|e| InstrumentError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let mut strictest: Option<RequestWeightLimit> = None;
    for (index, r) in info.rate_limits.iter().enumerate() {
        if r.rate_limit_type != "REQUEST_WEIGHT" {
            continue;
        }
        let problem = |what: String| InstrumentError::RateLimit { index, what };
        let unit_s: u64 = match r.interval.as_str() {
            "SECOND" => 1,
            "MINUTE" => 60,
            "HOUR" => 3_600,
            "DAY" => 86_400,
            other => return Err(problem(format!("unknown interval {other:?}"))),
        };
        if r.interval_num == 0 || r.limit == 0 {
            return Err(problem(format!(
                "a limit of {} per {} {}: both must be positive",
                r.limit, r.interval_num, r.interval
            )));
        }
        let window = std::time::Duration::from_secs(unit_s * u64::from(r.interval_num));
        let limit = RequestWeightLimit {
            limit: r.limit,
            window,
        };
        // Weight per second, compared without division: a / wa < b / wb <=> a * wb < b * wa.
        let stricter = |a: &RequestWeightLimit, b: &RequestWeightLimit| {
            u128::from(a.limit) * u128::from(b.window.as_secs())
                < u128::from(b.limit) * u128::from(a.window.as_secs())
        };
        if strictest.as_ref().is_none_or(|s| stricter(&limit, s)) {
            strictest = Some(limit);
        }
    }
    Ok(strictest)
}

/// One symbol of an `exchangeInfo` answer, its filters as the venue prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeInfoSymbol {
    pub symbol: String,
    pub status: String,
    pub base_asset: String,
    pub quote_asset: String,
    /// Decimals of quantities (`baseAssetPrecision`) and of prices (`quoteAssetPrecision`).
    pub base_precision: u8,
    pub quote_precision: u8,
    pub tick_size: String,
    pub min_price: String,
    pub max_price: String,
    pub step_size: String,
    pub min_qty: String,
    pub max_qty: String,
    pub min_notional: String,
}

impl From<&Instrument> for ExchangeInfoSymbol {
    fn from(i: &Instrument) -> Self {
        ExchangeInfoSymbol {
            symbol: i.symbol.as_str().to_owned(),
            status: i.status.clone(),
            base_asset: i.base_asset.clone(),
            quote_asset: i.quote_asset.clone(),
            base_precision: i.qty_scale.exp,
            quote_precision: i.price_scale.exp,
            tick_size: i.tick_size.to_string(),
            min_price: i.min_price.to_string(),
            max_price: i.max_price.to_string(),
            step_size: i.step_size.to_string(),
            min_qty: i.min_qty.to_string(),
            max_qty: i.max_qty.to_string(),
            min_notional: i.min_notional.to_string(),
        }
    }
}

/// The `exchangeInfo` answer that [`parse_exchange_info`] reads back to `instruments` (their
/// filters and precisions; the timezone and rate limits are Binance Spot's). Cold path: what
/// venue-sim serves at `GET /api/v3/exchangeInfo`.
pub fn exchange_info_json<'a>(instruments: impl IntoIterator<Item = &'a Instrument>) -> String {
    exchange_info_json_of(instruments.into_iter().map(ExchangeInfoSymbol::from), None)
}

/// An `exchangeInfo` answer of `symbols`, with Binance Spot's rate limits, and `serverTime`
/// when given (ms since the Unix epoch).
pub fn exchange_info_json_of(
    symbols: impl IntoIterator<Item = ExchangeInfoSymbol>,
    server_time_ms: Option<u64>,
) -> String {
    let symbols: Vec<serde_json::Value> = symbols
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "symbol": s.symbol,
                "status": s.status,
                "baseAsset": s.base_asset,
                "baseAssetPrecision": s.base_precision,
                "quoteAsset": s.quote_asset,
                "quotePrecision": s.quote_precision,
                "quoteAssetPrecision": s.quote_precision,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "isSpotTradingAllowed": true,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": s.min_price,
                     "maxPrice": s.max_price, "tickSize": s.tick_size},
                    {"filterType": "LOT_SIZE", "minQty": s.min_qty,
                     "maxQty": s.max_qty, "stepSize": s.step_size},
                    {"filterType": "MIN_NOTIONAL", "minNotional": s.min_notional,
                     "applyToMarket": true, "avgPriceMins": 5},
                ],
                "permissions": ["SPOT"],
            })
        })
        .collect();
    let mut info = serde_json::json!({
        "timezone": "UTC",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    });
    if let Some(ms) = server_time_ms {
        info["serverTime"] = ms.into();
    }
    info.to_string()
}

/// The instruments a process works with, found by symbol in `O(log n)` without allocating.
#[derive(Clone, Debug, Default)]
pub struct InstrumentTable {
    instruments: Vec<Instrument>,
    /// (symbol's key, id), sorted by key ([`Symbol::key`]: the symbols' order).
    by_symbol: Vec<(u128, u32)>,
}

impl InstrumentTable {
    /// A table of `instruments`, renumbered `0..n` in the given order.
    pub fn new(mut instruments: Vec<Instrument>) -> Result<InstrumentTable, InstrumentError> {
        if instruments.len() > INSTRUMENTS_MAX {
            return Err(InstrumentError::TooMany {
                count: instruments.len(),
            });
        }
        for (id, i) in instruments.iter_mut().enumerate() {
            i.id = id as u32;
        }
        let mut by_symbol: Vec<(u128, u32)> =
            instruments.iter().map(|i| (i.symbol.key(), i.id)).collect();
        by_symbol.sort_unstable();
        Ok(InstrumentTable {
            instruments,
            by_symbol,
        })
    }

    /// The instruments of `all` named in `symbols` (case-insensitive), in that order.
    pub fn select(
        all: &[Instrument],
        symbols: &[&str],
    ) -> Result<InstrumentTable, InstrumentError> {
        let chosen = symbols
            .iter()
            .map(|name| {
                let wanted = Symbol::from_ascii(name.as_bytes());
                all.iter()
                    .find(|i| Some(i.symbol) == wanted)
                    .cloned()
                    .ok_or_else(|| InstrumentError::Unknown {
                        symbol: name.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        InstrumentTable::new(chosen)
    }

    /// The instrument whose symbol is `bytes`, in any case.
    #[inline]
    pub fn find(&self, bytes: &[u8]) -> Option<&Instrument> {
        let key = Symbol::from_ascii(bytes)?.key();
        let at = self
            .by_symbol
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()?;
        Some(&self.instruments[self.by_symbol[at].1 as usize])
    }

    pub fn get(&self, id: u32) -> Option<&Instrument> {
        self.instruments.get(id as usize)
    }

    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{"symbols":[
        {"symbol":"NKNUSDT","status":"TRADING","baseAsset":"NKN","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.00010000","maxPrice":"1000.00000000","tickSize":"0.00010000"},
            {"filterType":"LOT_SIZE","minQty":"1.00000000","maxQty":"9000000.00000000","stepSize":"1.00000000"},
            {"filterType":"MIN_NOTIONAL","minNotional":"10.00000000","applyToMarket":true}]},
        {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8,"filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"1000000","tickSize":"0.01"},
            {"filterType":"LOT_SIZE","minQty":"0.00001","maxQty":"9000","stepSize":"0.00001"},
            {"filterType":"NOTIONAL","minNotional":"5"}]}]}"#;

    #[test]
    fn exchange_info_loads_with_scales() {
        let all = parse_exchange_info(INFO.as_bytes()).unwrap();
        assert_eq!(all.len(), 2);
        let nkn = &all[0];
        assert_eq!(nkn.symbol.as_str(), "NKNUSDT");
        assert_eq!(
            nkn.price_scale,
            Scale {
                mantissa: 1,
                exp: 8
            }
        );
        assert_eq!(
            nkn.qty_scale,
            Scale {
                mantissa: 1,
                exp: 8
            }
        );
        assert_eq!((nkn.tick_units, nkn.lot_units), (10_000, 100_000_000));
        assert_eq!(nkn.min_notional, Decimal::from(10));
        assert_eq!(all[1].min_notional, Decimal::from(5));

        let table = InstrumentTable::select(&all, &["btcusdt", "NKNUSDT"]).unwrap();
        assert_eq!(table.find(b"nknusdt").unwrap().id, 1);
        assert_eq!(table.find(b"BTCUSDT").unwrap().id, 0);
        assert!(table.find(b"ETHUSDT").is_none());
        assert!(table.find(b"nkn-usdt").is_none());
        assert!(matches!(
            InstrumentTable::select(&all, &["ETHUSDT"]),
            Err(InstrumentError::Unknown { .. })
        ));
    }

    #[test]
    fn every_symbol_of_a_large_table_is_found_and_no_other() {
        let all = parse_exchange_info(INFO.as_bytes()).unwrap();
        // Prefixes of one another, every length to the longest, digits and letters: the key
        // order must be the symbols' order for the search to find each.
        let mut names: Vec<String> = Vec::new();
        for stem in ["BTC", "BTCUSDT", "A", "Z9", "1INCH", "ETHBTC", "ETH"] {
            for tail in ["", "USDT", "X", "UP", "0", "USDTUSDTUSDT"] {
                let name = format!("{stem}{tail}");
                if name.len() <= SYMBOL_LEN_MAX && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.push("Q".repeat(SYMBOL_LEN_MAX));
        let instruments: Vec<Instrument> = names
            .iter()
            .map(|n| Instrument {
                symbol: Symbol::from_ascii(n.as_bytes()).unwrap(),
                ..all[0].clone()
            })
            .collect();
        let table = InstrumentTable::new(instruments).unwrap();
        for (id, name) in names.iter().enumerate() {
            assert_eq!(
                table.find(name.as_bytes()).map(|i| i.id),
                Some(id as u32),
                "{name}"
            );
            let lower = name.to_ascii_lowercase();
            assert_eq!(table.find(lower.as_bytes()).map(|i| i.id), Some(id as u32));
        }
        for miss in ["BT", "BTCUSD", "ETHUSDTX", "Q", "", "BTC-USDT"] {
            assert!(table.find(miss.as_bytes()).is_none(), "{miss}");
        }
        assert!(
            table
                .find("Q".repeat(SYMBOL_LEN_MAX + 1).as_bytes())
                .is_none()
        );
    }

    #[test]
    fn bad_documents_name_the_symbol_and_filter() {
        let err = parse_exchange_info(
            INFO.replace("\"tickSize\":\"0.01\"", "\"tickSize\":\"0.000000001\"")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("BTCUSDT") && err.to_string().contains("tickSize"),
            "{err}"
        );
        let err = parse_exchange_info(INFO.replace("LOT_SIZE", "LOT").as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no LOT_SIZE filter"), "{err}");
        let err = parse_exchange_info(b"{\"symbols\": [").unwrap_err();
        assert!(
            matches!(err, InstrumentError::Json { line: 1, .. }),
            "{err}"
        );
    }
}
