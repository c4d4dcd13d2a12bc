//! Fixed-size market-event records: what the engine passes through its rings and appends to the
//! journal. Prices and quantities are integers in units of the instrument's price and quantity
//! precision (see `levibot_gateway::instrument::Instrument`); `instrument_id` indexes the daemon's instrument table. Every
//! record carries the TSC stamp of the moment its bytes were read (`recv_tsc`).
//!
//! All records are `#[repr(C)]`, `Copy` and `bytemuck::Pod` (no padding, any bit pattern valid),
//! so a record is its own journal payload: [`Record::to_bytes`] and [`Record::from_bytes`].
//!
//! ```text
//!  BookTicker (56 B)                    Trade (56 B)
//!   0 u64 recv_tsc                       0 u64 recv_tsc
//!   8 u64 update_id                      8 u64 trade_id
//!  16 i64 bid_px   24 i64 bid_qty       16 u64 event_time_ms
//!  32 i64 ask_px   40 i64 ask_qty       24 u64 trade_time_ms
//!  48 u32 instrument_id                 32 i64 px     40 i64 qty
//!  52 u32 reserved                      48 u32 instrument_id  52 u32 flags (bit 0: buyer is maker)
//!
//!  AggTrade (72 B)                      DepthDiff (560 B): one chunk of a depth update
//!   0 u64 recv_tsc                       0 u64 recv_tsc
//!   8 u64 agg_id                         8 u64 event_time_ms
//!  16 u64 first_trade_id                16 u64 first_update_id (U)
//!  24 u64 last_trade_id                 24 u64 final_update_id (u)
//!  32 u64 event_time_ms                 32 u32 instrument_id
//!  40 u64 trade_time_ms                 36 u16 bid_count   38 u16 ask_count
//!  48 i64 px       56 i64 qty           40 u16 chunk       42 u16 chunk_count
//!  64 u32 instrument_id                 44 u32 reserved
//!  68 u32 flags (bit 0: buyer is maker) 48 Level[32]: bids, then asks (px i64, qty i64)
//! ```
//!
//! A depth update with more levels than one `DepthDiff` holds is split into `chunk_count` chunks
//! with the same update ids; a book applies the sequence check once, at chunk 0.

use bytemuck::{Pod, Zeroable};

use crate::layout::RecordType;

/// Journal record types of the market-data records (0x100..0x1ff).
pub mod record_type {
    use crate::layout::RecordType;
    pub const BOOK_TICKER: RecordType = RecordType(0x100);
    pub const DEPTH_DIFF: RecordType = RecordType(0x101);
    pub const TRADE: RecordType = RecordType(0x102);
    pub const AGG_TRADE: RecordType = RecordType(0x103);
    /// The exact bytes a venue sent: a [`RawMessageHeader`](super::RawMessageHeader), then them.
    pub const RAW_MESSAGE: RecordType = RecordType(0x110);
}

/// A fixed-size record with its journal record type.
pub trait Record: Pod {
    const RECORD_TYPE: RecordType;

    /// The record as its journal payload.
    fn to_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }

    /// A record from a journal payload, or `None` if the length is not the record's size.
    fn from_bytes(payload: &[u8]) -> Option<Self> {
        bytemuck::try_pod_read_unaligned(payload).ok()
    }
}

/// Best bid and offer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BookTicker {
    pub recv_tsc: u64,
    pub update_id: u64,
    pub bid_px: i64,
    pub bid_qty: i64,
    pub ask_px: i64,
    pub ask_qty: i64,
    pub instrument_id: u32,
    pub reserved: u32,
}

/// Flag bit: the buyer was the maker (the aggressor sold).
pub const TRADE_FLAG_BUYER_IS_MAKER: u32 = 1;

/// One trade.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Trade {
    pub recv_tsc: u64,
    pub trade_id: u64,
    pub event_time_ms: u64,
    pub trade_time_ms: u64,
    pub px: i64,
    pub qty: i64,
    pub instrument_id: u32,
    pub flags: u32,
}

/// Trades at one price by one taker order, aggregated.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct AggTrade {
    pub recv_tsc: u64,
    pub agg_id: u64,
    pub first_trade_id: u64,
    pub last_trade_id: u64,
    pub event_time_ms: u64,
    pub trade_time_ms: u64,
    pub px: i64,
    pub qty: i64,
    pub instrument_id: u32,
    pub flags: u32,
}

/// One price level: quantity 0 removes the level.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Level {
    pub px: i64,
    pub qty: i64,
}

/// Levels one [`DepthDiff`] carries.
pub const DEPTH_LEVELS_PER_RECORD: usize = 32;

/// One chunk of a depth update (see the module doc).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct DepthDiff {
    pub recv_tsc: u64,
    pub event_time_ms: u64,
    /// The venue's first update id in the update (`U`).
    pub first_update_id: u64,
    /// The venue's last update id in the update (`u`).
    pub final_update_id: u64,
    pub instrument_id: u32,
    /// Bids in this chunk (`levels[..bid_count]`).
    pub bid_count: u16,
    /// Asks in this chunk (after the bids).
    pub ask_count: u16,
    /// This chunk's index in its update, from 0.
    pub chunk: u16,
    /// Chunks the update was split into (at least 1).
    pub chunk_count: u16,
    pub reserved: u32,
    /// `bid_count` bids, then `ask_count` asks; the rest is unused.
    pub levels: [Level; DEPTH_LEVELS_PER_RECORD],
}

impl DepthDiff {
    /// Whether the counts fit the record (a record read from a corrupt journal may not).
    pub fn counts_are_valid(&self) -> bool {
        self.bid_count as usize + self.ask_count as usize <= DEPTH_LEVELS_PER_RECORD
            && self.chunk < self.chunk_count.max(1)
    }

    /// The bids of this chunk (clamped to the record, never a panic on bad counts).
    pub fn bids(&self) -> &[Level] {
        &self.levels[..(self.bid_count as usize).min(DEPTH_LEVELS_PER_RECORD)]
    }

    /// The asks of this chunk (clamped to the record, never a panic on bad counts).
    pub fn asks(&self) -> &[Level] {
        let start = (self.bid_count as usize).min(DEPTH_LEVELS_PER_RECORD);
        let end = (start + self.ask_count as usize).min(DEPTH_LEVELS_PER_RECORD);
        &self.levels[start..end]
    }
}

/// Precedes the venue's bytes in a `RAW_MESSAGE` frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RawMessageHeader {
    pub recv_tsc: u64,
    /// Which connection the bytes came from (the daemon's numbering).
    pub source_id: u32,
    pub reserved: u32,
}

impl Record for BookTicker {
    const RECORD_TYPE: RecordType = record_type::BOOK_TICKER;
}
impl Record for Trade {
    const RECORD_TYPE: RecordType = record_type::TRADE;
}
impl Record for AggTrade {
    const RECORD_TYPE: RecordType = record_type::AGG_TRADE;
}
impl Record for DepthDiff {
    const RECORD_TYPE: RecordType = record_type::DEPTH_DIFF;
}

const _: () = assert!(size_of::<BookTicker>() == 56);
const _: () = assert!(size_of::<Trade>() == 56);
const _: () = assert!(size_of::<AggTrade>() == 72);
const _: () = assert!(size_of::<Level>() == 16);
const _: () = assert!(size_of::<DepthDiff>() == 48 + 16 * DEPTH_LEVELS_PER_RECORD);
const _: () = assert!(size_of::<RawMessageHeader>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_bytes() {
        let t = BookTicker {
            recv_tsc: 1,
            update_id: 2,
            bid_px: 3,
            bid_qty: 4,
            ask_px: 5,
            ask_qty: 6,
            instrument_id: 7,
            reserved: 0,
        };
        assert_eq!(BookTicker::from_bytes(t.to_bytes()), Some(t));
        assert_eq!(BookTicker::from_bytes(&t.to_bytes()[1..]), None);
        let mut d = DepthDiff::zeroed();
        d.bid_count = 1;
        d.ask_count = 2;
        d.levels[0] = Level { px: 10, qty: 1 };
        d.levels[1] = Level { px: 11, qty: 2 };
        d.levels[2] = Level { px: 12, qty: 0 };
        let back = DepthDiff::from_bytes(d.to_bytes()).unwrap();
        assert_eq!(back.bids(), &[Level { px: 10, qty: 1 }]);
        assert_eq!(
            back.asks(),
            &[Level { px: 11, qty: 2 }, Level { px: 12, qty: 0 }]
        );
    }
}
