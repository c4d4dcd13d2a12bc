//! The baselines of `levibot-bench decode`: the usual way to read these messages in Rust, a
//! serde-derived struct per message type deserialized by `serde_json` or `sonic-rs`, then the
//! same exact conversion to integer units (`parse_units`) and the same symbol lookup as ours, into
//! the same records. So that the comparison is only about reading JSON:
//!
//! - strings are borrowed (`&str`), never copied into a `String`;
//! - levels go into a `Vec<Level>` reused from message to message, as our decoder's is (the
//!   `Vec<[&str; 2]>` that serde fills is allocated per message, as serde does);
//! - each baseline checks what ours checks: the stream kind and event type, the symbol, every
//!   decimal, the level limit.
//!
//! The baselines are told which message type to read (the benchmark groups messages by type),
//! where ours finds it from the stream name: a small head start for them.

use std::marker::PhantomData;

use anyhow::{Context, Result, anyhow, ensure};
use levibot_gateway::binance::{
    AggTrade, BookTicker, DepthSnapshot, DepthUpdate, LEVELS_PER_MESSAGE_MAX, Level, StreamKind,
};
use levibot_gateway::decimal::{Scale, parse_units};
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::records::TRADE_FLAG_BUYER_IS_MAKER;
use serde::Deserialize;

/// A JSON library that deserializes serde types from bytes, borrowing strings from them.
pub trait JsonParser {
    fn from_slice<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T>;
}

/// `serde_json::from_slice`.
pub struct SerdeJson;

impl JsonParser for SerdeJson {
    #[inline]
    fn from_slice<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T> {
        serde_json::from_slice(json).map_err(|e| anyhow!("serde_json: {e}"))
    }
}

/// `sonic_rs::from_slice` (which checks UTF-8, as `serde_json::from_slice` does).
pub struct SonicRs;

impl JsonParser for SonicRs {
    #[inline]
    fn from_slice<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T> {
        sonic_rs::from_slice(json).map_err(|e| anyhow!("sonic-rs: {e}"))
    }
}

/// `{"stream":"nknusdt@bookTicker","data":{...}}`
#[derive(Deserialize)]
struct Combined<'a, T> {
    stream: &'a str,
    data: T,
}

/// `{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}`
#[derive(Deserialize)]
struct BookTickerData<'a> {
    u: u64,
    s: &'a str,
    b: &'a str,
    #[serde(rename = "B")]
    bid_qty: &'a str,
    a: &'a str,
    #[serde(rename = "A")]
    ask_qty: &'a str,
}

/// `{"e":"depthUpdate","E":..,"s":"NKNUSDT","U":..,"u":..,"b":[["px","qty"],..],"a":[..]}`
#[derive(Deserialize)]
struct DepthUpdateData<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time_ms: u64,
    s: &'a str,
    #[serde(rename = "U")]
    first_update_id: u64,
    u: u64,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

/// `{"e":"aggTrade","E":..,"s":"..","a":..,"p":"..","q":"..","f":..,"l":..,"T":..,"m":true,"M":true}`
#[derive(Deserialize)]
struct AggTradeData<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time_ms: u64,
    s: &'a str,
    a: u64,
    p: &'a str,
    q: &'a str,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    trade_time_ms: u64,
    m: bool,
    // Read (and so type-checked) as ours does, though nothing uses it.
    #[serde(rename = "M")]
    _best_match: bool,
}

/// `{"lastUpdateId":..,"bids":[["px","qty"],..],"asks":[..]}`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotBody<'a> {
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    asks: Vec<[&'a str; 2]>,
}

/// One baseline decoder: JSON library `P`, then our conversion into our records.
pub struct Baseline<P> {
    instruments: InstrumentTable,
    levels: Vec<Level>,
    parser: PhantomData<P>,
}

impl<P: JsonParser> Baseline<P> {
    pub fn new(instruments: InstrumentTable) -> Self {
        Baseline {
            instruments,
            levels: Vec::with_capacity(LEVELS_PER_MESSAGE_MAX),
            parser: PhantomData,
        }
    }

    #[inline]
    pub fn book_ticker(&self, message: &[u8], recv_tsc: u64) -> Result<BookTicker> {
        let m: Combined<BookTickerData> = P::from_slice(message)?;
        expect_stream(m.stream, StreamKind::BookTicker)?;
        let d = m.data;
        let i = self.instrument(d.s)?;
        Ok(BookTicker {
            recv_tsc,
            update_id: d.u,
            bid_px: units(d.b, i.price_scale)?,
            bid_qty: units(d.bid_qty, i.qty_scale)?,
            ask_px: units(d.a, i.price_scale)?,
            ask_qty: units(d.ask_qty, i.qty_scale)?,
            instrument_id: i.id,
            reserved: 0,
        })
    }

    #[inline]
    pub fn depth_update(&mut self, message: &[u8], recv_tsc: u64) -> Result<DepthUpdate<'_>> {
        let m: Combined<DepthUpdateData> = P::from_slice(message)?;
        expect_stream(m.stream, StreamKind::Depth)?;
        let d = m.data;
        expect_event(d.e, "depthUpdate")?;
        let i = find(&self.instruments, d.s)?;
        self.levels.clear();
        let bid_count = push_levels(&mut self.levels, &d.b, i)?;
        push_levels(&mut self.levels, &d.a, i)?;
        Ok(DepthUpdate {
            instrument_id: i.id,
            recv_tsc,
            event_time_ms: d.event_time_ms,
            first_update_id: d.first_update_id,
            final_update_id: d.u,
            bids: &self.levels[..bid_count],
            asks: &self.levels[bid_count..],
        })
    }

    #[inline]
    pub fn agg_trade(&self, message: &[u8], recv_tsc: u64) -> Result<AggTrade> {
        let m: Combined<AggTradeData> = P::from_slice(message)?;
        expect_stream(m.stream, StreamKind::AggTrade)?;
        let d = m.data;
        expect_event(d.e, "aggTrade")?;
        let i = self.instrument(d.s)?;
        Ok(AggTrade {
            recv_tsc,
            agg_id: d.a,
            first_trade_id: d.f,
            last_trade_id: d.l,
            event_time_ms: d.event_time_ms,
            trade_time_ms: d.trade_time_ms,
            px: units(d.p, i.price_scale)?,
            qty: units(d.q, i.qty_scale)?,
            instrument_id: i.id,
            flags: if d.m { TRADE_FLAG_BUYER_IS_MAKER } else { 0 },
        })
    }

    #[inline]
    pub fn snapshot(&mut self, body: &[u8], instrument_id: u32) -> Result<DepthSnapshot<'_>> {
        let i = self
            .instruments
            .get(instrument_id)
            .with_context(|| format!("no instrument id {instrument_id}"))?;
        let d: SnapshotBody = P::from_slice(body)?;
        self.levels.clear();
        let bid_count = push_levels(&mut self.levels, &d.bids, i)?;
        push_levels(&mut self.levels, &d.asks, i)?;
        Ok(DepthSnapshot {
            instrument_id,
            last_update_id: d.last_update_id,
            bids: &self.levels[..bid_count],
            asks: &self.levels[bid_count..],
        })
    }

    fn instrument(&self, symbol: &str) -> Result<&Instrument> {
        find(&self.instruments, symbol)
    }
}

#[inline]
fn find<'t>(instruments: &'t InstrumentTable, symbol: &str) -> Result<&'t Instrument> {
    instruments
        .find(symbol.as_bytes())
        .with_context(|| format!("unknown symbol {symbol:?}"))
}

#[inline]
fn units(text: &str, scale: Scale) -> Result<i64> {
    parse_units(text.as_bytes(), scale).map_err(|e| anyhow!("{text:?}: {e}"))
}

#[inline]
fn expect_stream(stream: &str, kind: StreamKind) -> Result<()> {
    ensure!(
        StreamKind::of_stream(stream.as_bytes()) == kind,
        "stream {stream:?} is not a {} stream",
        kind.name()
    );
    Ok(())
}

#[inline]
fn expect_event(event: &str, expected: &str) -> Result<()> {
    ensure!(event == expected, "event {event:?}, expected {expected:?}");
    Ok(())
}

/// Converts `levels` into `out`; returns how many there were.
#[inline]
fn push_levels(out: &mut Vec<Level>, levels: &[[&str; 2]], i: &Instrument) -> Result<usize> {
    for [px, qty] in levels {
        ensure!(
            out.len() < LEVELS_PER_MESSAGE_MAX,
            "more than {LEVELS_PER_MESSAGE_MAX} levels"
        );
        out.push(Level {
            px: units(px, i.price_scale)?,
            qty: units(qty, i.qty_scale)?,
        });
    }
    Ok(levels.len())
}
