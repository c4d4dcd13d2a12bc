//! Binance Spot market data: the combined-stream wrapper `{"stream":..,"data":..}` around
//! `bookTicker`, `depthUpdate` (`<symbol>@depth` and `@depth@100ms`), `trade` and `aggTrade`
//! events, and the REST depth snapshot (`/api/v3/depth`).
//!
//! [`Decoder::decode`] turns one message into a [`MarketEvent`], prices in ticks and quantities in
//! lots of the instrument (exactly; see [`crate::decimal`]), without allocating in steady state.

mod decoder;
mod scanner;

pub use decoder::{
    DecodeError, DecodeErrorKind, DecodeStats, Decoder, LEVELS_PER_MESSAGE_MAX, MESSAGE_LEN_MAX,
};
pub use levibot_shm::records::{AggTrade, BookTicker, Level, Trade};

/// One level-2 depth update: the levels that changed between update ids `first_update_id` (`U`)
/// and `final_update_id` (`u`). Quantity 0 removes a level. The level slices borrow the
/// decoder's buffer until its next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthUpdate<'a> {
    pub instrument_id: u32,
    pub recv_tsc: u64,
    pub event_time_ms: u64,
    pub first_update_id: u64,
    pub final_update_id: u64,
    pub bids: &'a [Level],
    pub asks: &'a [Level],
}

/// A REST depth snapshot: the whole book (up to its limit) as of `last_update_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthSnapshot<'a> {
    pub instrument_id: u32,
    pub last_update_id: u64,
    /// Best (highest) first, as the venue sends them.
    pub bids: &'a [Level],
    /// Best (lowest) first.
    pub asks: &'a [Level],
}

/// What one market-data message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketEvent<'a> {
    BookTicker(BookTicker),
    Depth(DepthUpdate<'a>),
    Trade(Trade),
    AggTrade(AggTrade),
    /// A stream this decoder does not handle (such as `kline_1m`): counted and skipped.
    Skipped(StreamKind),
}

/// The kind of a combined stream, from its name's suffix (`nknusdt@depth@100ms` -> `Depth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    BookTicker,
    Depth,
    Trade,
    AggTrade,
    /// Any other stream (klines, tickers...).
    Other,
}

impl StreamKind {
    /// The kind of a stream name such as `nknusdt@bookTicker`.
    pub fn of_stream(name: &[u8]) -> StreamKind {
        let Some(at) = name.iter().position(|&b| b == b'@') else {
            return StreamKind::Other;
        };
        match &name[at + 1..] {
            b"bookTicker" => StreamKind::BookTicker,
            b"trade" => StreamKind::Trade,
            b"aggTrade" => StreamKind::AggTrade,
            suffix if suffix == b"depth" || suffix.starts_with(b"depth@") => StreamKind::Depth,
            _ => StreamKind::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StreamKind::BookTicker => "bookTicker",
            StreamKind::Depth => "depth",
            StreamKind::Trade => "trade",
            StreamKind::AggTrade => "aggTrade",
            StreamKind::Other => "other",
        }
    }
}
