//! Fixed-size market-event records: what the engine passes through its rings and appends to the
//! journal. Prices and quantities are integers in units of the instrument's price and quantity
//! precision (see `levibot_gateway::instrument::Instrument`); `instrument_id` indexes the daemon's instrument table. Every
//! record carries the TSC stamp of the moment its bytes were read (`recv_tsc`).
//!
//! All records are `#[repr(C)]`, `Copy` and `bytemuck::Pod` (no padding, any bit pattern valid),
//! so a record is its own journal payload: [`Record::to_bytes`] and [`Record::from_bytes`]. One
//! exception: a `DepthDiff`'s payload ends after its levels (48 + 16 x levels bytes; layout
//! 1 wrote all 32, 560 bytes, which readers still take). Most updates carry a few levels, so
//! the journal (and whatever copies it) holds a few hundred bytes fewer per update.
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
//!  AggTrade (72 B)                      DepthDiff (560 B; payload 48 + 16 x levels)
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
//! Order-side records (`OrderRequest`, `RiskReject`, `SentOrder`, `ExecutionReport`) are drawn where they
//! are defined, below; so are the daemon's records (`InstrumentDef`, `DaemonEvent`) and the
//! checkpoint records that let recovery start from a checkpoint instead of the first segment
//! (`CheckpointBegin` .. `CheckpointEnd`).
//!
//! A depth update with more levels than one chunk holds is split into `chunk_count` chunks with
//! the same update ids; a book applies the sequence check once, at chunk 0. The engine chunks by
//! 8 levels ([`DepthChunk`], what its rings carry and its feed journals); a journal's chunk may
//! hold up to 32 ([`DepthDiff`], what readers take: journals written before chunked by 32). Both
//! have one payload: the 48 fixed bytes, then the chunk's levels.

use bytemuck::{Pod, Zeroable};

use crate::layout::RecordType;

mod feature;
mod model;
pub use feature::{FEATURE_IS_PRICE, FEATURE_NAMES, FeatureSnapshot, feature_flag};
pub use model::{MODEL_PATH_LEN_MAX, ModelInForce, model_id_hex};

/// Journal record types of the market-data records (0x100..0x1ff).
pub mod record_type {
    use crate::layout::RecordType;
    pub const BOOK_TICKER: RecordType = RecordType(0x100);
    pub const DEPTH_DIFF: RecordType = RecordType(0x101);
    pub const TRADE: RecordType = RecordType(0x102);
    pub const AGG_TRADE: RecordType = RecordType(0x103);
    /// The exact bytes a venue sent: a [`RawMessageHeader`](super::RawMessageHeader), then them.
    pub const RAW_MESSAGE: RecordType = RecordType(0x110);
    /// An order request a strategy emitted (before risk).
    pub const ORDER_REQUEST: RecordType = RecordType(0x200);
    /// An order that passed every risk check and was encoded for the venue: a
    /// [`SentOrder`](super::SentOrder) with every stage's TSC stamp.
    pub const ORDER_SENT: RecordType = RecordType(0x201);
    /// An order request a risk check refused, with the reason.
    pub const RISK_REJECT: RecordType = RecordType(0x202);
    /// An execution report from the venue (ack, fill, cancel, reject).
    pub const EXECUTION_REPORT: RecordType = RecordType(0x203);
    /// The venue session's sequence numbers after they changed: what a restart resumes from.
    pub const FIX_SEQ_NUMS: RecordType = RecordType(0x204);
    /// An instrument the daemon trades or decodes: an [`InstrumentDef`](super::InstrumentDef),
    /// journaled at start-up so that readers turn ids and units into symbols and decimals.
    pub const INSTRUMENT_DEF: RecordType = RecordType(0x120);
    /// Something the daemon did or was told to do (start, ready, kill, resume, reload, stop):
    /// a [`DaemonEvent`](super::DaemonEvent).
    pub const DAEMON_EVENT: RecordType = RecordType(0x300);
    /// The text of the configuration file the daemon started with or reloaded (UTF-8 TOML,
    /// variable length): what the limits and parameters in force came from.
    pub const CONFIG_TEXT: RecordType = RecordType(0x301);
    /// A checkpoint of the state recovery rebuilds begins: a
    /// [`CheckpointBegin`](super::CheckpointBegin), then its instruments, open orders,
    /// client-order-id marks and fill stamps, then a
    /// [`CheckpointEnd`](super::CheckpointEnd) with the same id (see `CheckpointBegin`).
    pub const CHECKPOINT_BEGIN: RecordType = RecordType(0x302);
    /// One instrument of a checkpoint: a [`CheckpointInstrument`](super::CheckpointInstrument).
    pub const CHECKPOINT_INSTRUMENT: RecordType = RecordType(0x303);
    /// One open order of a checkpoint: a [`CheckpointOrder`](super::CheckpointOrder).
    pub const CHECKPOINT_ORDER: RecordType = RecordType(0x304);
    /// Client-order-id marks of a checkpoint: a [`CheckpointMarks`](super::CheckpointMarks).
    pub const CHECKPOINT_MARKS: RecordType = RecordType(0x305);
    /// Fill stamps of a checkpoint: a [`CheckpointFills`](super::CheckpointFills).
    pub const CHECKPOINT_FILLS: RecordType = RecordType(0x306);
    /// A checkpoint is complete: a [`CheckpointEnd`](super::CheckpointEnd).
    pub const CHECKPOINT_END: RecordType = RecordType(0x307);
    /// The features a strategy saw at a market event and its output: a
    /// [`FeatureSnapshot`](super::FeatureSnapshot), at the cadence `[features] journal` sets.
    pub const FEATURE_SNAPSHOT: RecordType = RecordType(0x205);
    /// Which model a `signal` strategy votes with from then on: a
    /// [`ModelInForce`](super::ModelInForce), then the model file's path.
    pub const MODEL_IN_FORCE: RecordType = RecordType(0x308);
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

    /// A record from a journal payload that a newer minor layout version may have made longer
    /// (fields it appended, which this reader ignores): what readers of a journal use.
    fn from_payload(payload: &[u8]) -> Option<Self> {
        Self::from_bytes(payload.get(..size_of::<Self>())?)
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

/// Levels one [`DepthDiff`] carries: the most a journal's depth chunk holds (layout 1 wrote
/// all of them).
pub const DEPTH_LEVELS_PER_RECORD: usize = 32;

/// Levels one [`DepthChunk`] carries: the engine's in-memory chunk, what its rings hold and
/// its feed journals. Most updates carry a few levels (the Binance recordings 1 to 13, the
/// synthetic market 4): a 32-level record in every ring slot made each market record 600
/// bytes moved per stage, even a book ticker; with 8 levels a slot is about 200.
pub const DEPTH_LEVELS_PER_CHUNK: usize = 8;

/// A depth chunk's journal record, as every reader takes it: up to 32 levels, whichever
/// writer chunked it (see the module doc).
pub type DepthDiff = DepthChunkOf<DEPTH_LEVELS_PER_RECORD>;

/// A depth chunk as the engine holds it: up to 8 levels. Its journal payload is a
/// [`DepthDiff`]'s (the same fixed fields, then its levels), so old readers read it.
pub type DepthChunk = DepthChunkOf<DEPTH_LEVELS_PER_CHUNK>;

/// One chunk of a depth update (see the module doc), with room for `N` levels. The journal's
/// payload is the same for every `N`: the fixed fields, then `bid_count + ask_count` levels.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthChunkOf<const N: usize> {
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
    pub levels: [Level; N],
}

// SAFETY: `repr(C)`, every field is plain integers (`Level` is `Pod`), any bit pattern is
// valid, and there is no padding for any `N`: 48 bytes of fixed fields at their natural
// alignment, then `N` levels of 16 bytes at offset 48 (checked below for both sizes used).
unsafe impl<const N: usize> Zeroable for DepthChunkOf<N> {}
// SAFETY: as above; `Copy` and `'static`.
unsafe impl<const N: usize> Pod for DepthChunkOf<N> {}

impl<const N: usize> DepthChunkOf<N> {
    /// Bytes of the fixed fields, before the levels (the same for every `N`).
    pub const FIXED_LEN: usize = std::mem::offset_of!(DepthChunkOf<N>, levels);

    /// Bytes of this chunk's journal payload: the fixed fields and its levels (clamped to the
    /// record).
    #[inline]
    pub fn payload_len(&self) -> usize {
        let levels = (self.bid_count as usize + self.ask_count as usize).min(N);
        Self::FIXED_LEN + levels * size_of::<Level>()
    }

    /// The payload length a chunk's counts call for, read from the start of `bytes` (a journal
    /// payload, or chunks back to back); `None` when the fixed fields are not all there or the
    /// counts exceed this record's `N` levels.
    #[inline]
    pub fn payload_len_of(bytes: &[u8]) -> Option<usize> {
        let count = |at: usize| -> Option<usize> {
            Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize)
        };
        if bytes.len() < Self::FIXED_LEN {
            return None;
        }
        let levels = count(std::mem::offset_of!(DepthDiff, bid_count))?
            + count(std::mem::offset_of!(DepthDiff, ask_count))?;
        (levels <= N).then_some(Self::FIXED_LEN + levels * size_of::<Level>())
    }

    /// Whether the counts fit the record (a record read from a corrupt journal may not).
    pub fn counts_are_valid(&self) -> bool {
        self.bid_count as usize + self.ask_count as usize <= N
            && self.chunk < self.chunk_count.max(1)
    }

    /// The bids of this chunk (clamped to the record, never a panic on bad counts).
    pub fn bids(&self) -> &[Level] {
        &self.levels[..(self.bid_count as usize).min(N)]
    }

    /// The asks of this chunk (clamped to the record, never a panic on bad counts).
    pub fn asks(&self) -> &[Level] {
        let start = (self.bid_count as usize).min(N);
        let end = (start + self.ask_count as usize).min(N);
        &self.levels[start..end]
    }
}

/// What an [`OrderRequest`] asks for. Values are stable: they are journaled.
pub mod order_kind {
    pub const NEW: u8 = 1;
    pub const CANCEL: u8 = 2;
    /// Cancel/replace: new price and quantity for `orig_client_order_id`.
    pub const REPLACE: u8 = 3;
    /// Cancel every open order of the instrument (or of all, with `instrument_id == u32::MAX`).
    pub const MASS_CANCEL: u8 = 4;
    /// Ask the venue for the status of every working order of the instrument (or of all, with
    /// `instrument_id == u32::MAX`); `client_order_id` is the request's id (FIX MassStatusReqID
    /// 584). The venue answers with `exec_type::ORDER_STATUS` reports, the last one flagged
    /// [`report_flag::LAST_OF_MASS_STATUS`](super::report_flag::LAST_OF_MASS_STATUS).
    pub const MASS_STATUS: u8 = 5;
}

/// Order sides, as FIX tag 54 (`1` buy, `2` sell).
pub mod side {
    pub const BUY: u8 = 1;
    pub const SELL: u8 = 2;
}

/// Order types, as FIX tag 40 (`1` market, `2` limit).
pub mod ord_type {
    pub const MARKET: u8 = 1;
    pub const LIMIT: u8 = 2;
}

/// Time in force, as FIX tag 59 (`1` GTC, `3` IOC, `4` FOK).
pub mod time_in_force {
    pub const GTC: u8 = 1;
    pub const IOC: u8 = 3;
    pub const FOK: u8 = 4;
}

/// An order request: from a strategy to risk, and (if it passes) to the gateway.
///
/// ```text
///   0 u64 created_tsc          8 u64 risk_tsc (0 until risk has checked it)
///  16 u64 client_order_id     24 u64 orig_client_order_id (cancel/replace target; else 0)
///  32 i64 px (price units; 0 for market orders)   40 i64 qty (quantity units)
///  48 u32 instrument_id       52 u16 strategy_id
///  54 u8 kind (order_kind)    55 u8 side   56 u8 ord_type   57 u8 time_in_force
///  58 u16 flags (order_flag)  60 u32 model_tag
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OrderRequest {
    /// TSC when the strategy emitted it.
    pub created_tsc: u64,
    /// TSC when risk finished checking it.
    pub risk_tsc: u64,
    pub client_order_id: u64,
    pub orig_client_order_id: u64,
    pub px: i64,
    pub qty: i64,
    pub instrument_id: u32,
    pub strategy_id: u16,
    pub kind: u8,
    pub side: u8,
    pub ord_type: u8,
    pub time_in_force: u8,
    /// [`order_flag`] bits (layout 1.1; 0 before).
    pub flags: u16,
    /// The model the strategy voted with when it sent this: the high 32 bits of
    /// [`FeatureSnapshot::model_id`] (the first 4 bytes of the model file's SHA-256); 0 for
    /// none (layout 2.0; reserved, 0, before).
    pub model_tag: u32,
}

/// Bits of [`OrderRequest::flags`]. Values are stable: they are journaled.
pub mod order_flag {
    /// Post-only (FIX ExecInst 18=6, "participate, don't initiate"; Binance's LIMIT_MAKER): a
    /// limit order the venue refuses rather than let it take liquidity.
    pub const POST_ONLY: u16 = 1;
    /// Every bit with a meaning.
    pub const KNOWN: u16 = POST_ONLY;
}

/// A refused order request and why (`check` is a risk check code, defined by the engine's risk
/// module; `limit` and `value` are the limit and the value that broke it, in the check's units).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RiskReject {
    pub request: OrderRequest,
    pub limit: i64,
    pub value: i64,
    pub check: u16,
    pub reserved_a: u16,
    pub reserved_b: u32,
}

/// Execution types, as FIX tag 150.
pub mod exec_type {
    pub const NEW: u8 = b'0';
    pub const CANCELED: u8 = b'4';
    pub const REPLACED: u8 = b'5';
    pub const REJECTED: u8 = b'8';
    pub const EXPIRED: u8 = b'C';
    pub const TRADE: u8 = b'F';
    /// Order Status: one working order's state in the answer to a mass status request
    /// (`last_px` is the order's AvgPx, 6, or 0).
    pub const ORDER_STATUS: u8 = b'I';
}

/// Bits of [`ExecutionReport::flags`]. Values are stable: they are journaled.
pub mod report_flag {
    /// The last report of the answer to a mass status request (FIX LastRptRequested 912=Y).
    pub const LAST_OF_MASS_STATUS: u8 = 1;
}

/// What the venue said about one of our orders.
///
/// ```text
///   0 u64 recv_tsc            8 u64 client_order_id    16 u64 venue_order_id
///  24 i64 px (order price)   32 i64 last_px   40 i64 last_qty
///  48 i64 cum_qty            56 i64 leaves_qty
///  64 u32 instrument_id      68 u8 exec_type (FIX 150)  69 u8 ord_status (FIX 39)
///  70 u8 side                71 u8 flags (report_flag)  72 u32 reject_reason (FIX 103)
///  76 u32 reserved
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ExecutionReport {
    pub recv_tsc: u64,
    pub client_order_id: u64,
    pub venue_order_id: u64,
    pub px: i64,
    pub last_px: i64,
    pub last_qty: i64,
    pub cum_qty: i64,
    pub leaves_qty: i64,
    pub instrument_id: u32,
    pub exec_type: u8,
    pub ord_status: u8,
    pub side: u8,
    /// [`report_flag`] bits.
    pub flags: u8,
    pub reject_reason: u32,
    pub reserved_b: u32,
}

/// An order on its way to the venue, journaled by the gateway stage once its bytes are ready
/// (before they are sent: write-ahead). Its stamps are the pipeline's stage edges, so per-stage
/// latency comes from the journal alone:
///
/// - decode = `decoded_tsc - recv_tsc`, strategy = `request.created_tsc - strategy_start_tsc`,
///   risk = `request.risk_tsc - risk_start_tsc`, encode = `encoded_tsc - encode_start_tsc`:
///   the work of each stage (the strategy's includes the book and features);
/// - between stages = the rest: ring hops, queueing behind other messages, and the journal
///   appends each stage makes after handing its output on;
/// - tick-to-trade = `encoded_tsc - recv_tsc` (bytes handed to the decoder -> order bytes
///   ready); `encoded_tsc - due_tsc` counts from when the message was due (a paced replay or
///   benchmark's schedule, so that a stall cannot hide: no coordinated omission). For a live
///   feed `due_tsc` = `recv_tsc`.
///
/// An order caused by an execution report or a timer carries that event's stamps.
///
/// ```text
///   0 OrderRequest request (64 B; created_tsc = strategy end, risk_tsc = risk end)
///  64 u64 due_tsc              72 u64 recv_tsc (decode start)
///  80 u64 decoded_tsc          88 u64 strategy_start_tsc
///  96 u64 risk_start_tsc      104 u64 encode_start_tsc
/// 112 u64 encoded_tsc         120 u64 msg_seq_num (the venue session's sequence number)
/// 128 u32 encoded_len (bytes of the venue message)   132 u32 reserved
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SentOrder {
    pub request: OrderRequest,
    pub due_tsc: u64,
    pub recv_tsc: u64,
    pub decoded_tsc: u64,
    pub strategy_start_tsc: u64,
    pub risk_start_tsc: u64,
    pub encode_start_tsc: u64,
    pub encoded_tsc: u64,
    pub msg_seq_num: u64,
    pub encoded_len: u32,
    pub reserved: u32,
}

/// A FIX session's next sequence numbers (both directions), journaled when they change so that
/// a restarted daemon logs on where the session stopped.
///
/// ```text
///   0 u64 next_sender (our next MsgSeqNum)   8 u64 next_target (the venue's next, expected)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FixSeqNums {
    pub next_sender: u64,
    pub next_target: u64,
}

/// Longest symbol an [`InstrumentDef`] holds (Binance's are at most 20 bytes).
pub const SYMBOL_LEN_MAX: usize = 24;

/// An instrument as the journal's readers need it: its id, symbol and the decimal value of one
/// price and one quantity unit (`mantissa x 10^-exp`, as `levibot_gateway::decimal::Scale`).
///
/// ```text
///   0 u32 instrument_id    4 u8 symbol_len   5 u8 price_exp   6 u8 qty_exp   7 u8 reserved
///   8 u64 price_mantissa  16 u64 qty_mantissa
///  24 [u8; 24] symbol (ASCII, symbol_len bytes used)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct InstrumentDef {
    pub instrument_id: u32,
    pub symbol_len: u8,
    pub price_exp: u8,
    pub qty_exp: u8,
    pub reserved: u8,
    pub price_mantissa: u64,
    pub qty_mantissa: u64,
    pub symbol: [u8; SYMBOL_LEN_MAX],
}

impl InstrumentDef {
    /// The symbol, or `None` if it is not what [`new`](Self::new) wrote (a corrupt record).
    pub fn symbol(&self) -> Option<&str> {
        let bytes = self.symbol.get(..self.symbol_len as usize)?;
        std::str::from_utf8(bytes).ok()
    }

    /// `None` if `symbol` is longer than [`SYMBOL_LEN_MAX`].
    pub fn new(
        instrument_id: u32,
        symbol: &str,
        (price_mantissa, price_exp): (u64, u8),
        (qty_mantissa, qty_exp): (u64, u8),
    ) -> Option<InstrumentDef> {
        let mut def = InstrumentDef {
            instrument_id,
            symbol_len: u8::try_from(symbol.len()).ok()?,
            price_exp,
            qty_exp,
            reserved: 0,
            price_mantissa,
            qty_mantissa,
            symbol: [0; SYMBOL_LEN_MAX],
        };
        def.symbol
            .get_mut(..symbol.len())?
            .copy_from_slice(symbol.as_bytes());
        Some(def)
    }
}

/// What a [`DaemonEvent`] reports. Values are stable: they are journaled.
pub mod daemon_event {
    /// The daemon started (`value`: 1 if it recovered state from an earlier run, else 0).
    pub const STARTED: u16 = 1;
    /// Sessions up, books synced, reconciliation done: trading may begin.
    pub const READY: u16 = 2;
    /// The trading state was set (`value`: 0 active, 1 reduce-only, 2 halted).
    pub const TRADING_STATE: u16 = 3;
    /// Cancel-all was requested (`value`: open orders at that moment).
    pub const CANCEL_ALL: u16 = 4;
    /// Cancel-all finished (`value`: open orders left; 0 = every cancel confirmed).
    pub const CANCEL_ALL_DONE: u16 = 5;
    /// New risk limits and strategy parameters were applied (the `CONFIG_TEXT` before it says
    /// which; `value`: the reload's number).
    pub const RELOADED: u16 = 6;
    /// A reload was refused; nothing changed (`value`: the problems found).
    pub const RELOAD_REFUSED: u16 = 7;
    /// One risk limit was set (`levictl set`; the `CONFIG_TEXT` before it names it).
    pub const LIMIT_SET: u16 = 8;
    /// State rebuilt from the journal after a restart (`value`: open orders recovered).
    pub const RECOVERED: u16 = 9;
    /// Reconciliation with the venue finished (`value`: orders it changed).
    pub const RECONCILED: u16 = 10;
    /// Shutdown began (SIGTERM).
    pub const STOPPING: u16 = 11;
    /// Clean shutdown: the last record of a run.
    pub const STOPPED: u16 = 12;
    /// An order mass status round with the venue finished (`value`: what it changed in risk:
    /// missed fills applied + orders dropped + orders adopted; -1: no answer in time).
    pub const MASS_STATUS: u16 = 13;
    /// The daemon halted trading by itself (`value`: the [`halt_reason`](crate::codes::halt_reason)
    /// code). An operator's `levictl resume` is what lifts it.
    pub const SELF_HALT: u16 = 14;
    /// The journal could not take a record (filesystem full, or a rollover failed): the
    /// daemon halted and cancelled, and stops with
    /// [`JOURNAL_EXIT_STATUS`](crate::codes::halt_reason::JOURNAL_EXIT_STATUS)
    /// (`value`: open orders the venue had not confirmed cancelled). It may itself not fit.
    pub const JOURNAL_FAILED: u16 = 15;
    /// Retention pruned a segment the archive did not have yet: the journal was over its
    /// hard limit (`journal.retention.hard_max_total_mib`). `value`: the segment's index
    /// (`journal-<index>.lvj`); one event per segment.
    pub const UNARCHIVED_PRUNED: u16 = 16;
}

/// Who asked for a [`DaemonEvent`]. Values are stable: they are journaled.
pub mod event_source {
    pub const DAEMON: u16 = 0;
    pub const SIGNAL: u16 = 1;
    pub const CONTROL_SOCKET: u16 = 2;
}

/// Something the daemon did or was told to do (cold path).
///
/// ```text
///   0 u64 unix_ns   8 i64 value   16 u16 kind (daemon_event)   18 u16 source (event_source)
///  20 u32 peer_uid (control socket requests; else 0)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DaemonEvent {
    pub unix_ns: u64,
    pub value: i64,
    pub kind: u16,
    pub source: u16,
    pub peer_uid: u32,
}

/// Precedes the venue's bytes in a `RAW_MESSAGE` frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RawMessageHeader {
    pub recv_tsc: u64,
    /// Which connection the bytes came from (the daemon's numbering).
    pub source_id: u32,
    /// A REST depth snapshot's instrument id + 1 (its body does not name its symbol); 0 for a
    /// stream message, and in journals of layout 1.0, which did not say.
    pub snapshot_of: u32,
}

impl RawMessageHeader {
    /// The instrument of a REST depth snapshot, if these bytes are one.
    pub fn snapshot_instrument(&self) -> Option<u32> {
        self.snapshot_of.checked_sub(1)
    }

    /// The header at the start of a `RAW_MESSAGE` payload, and the venue's bytes after it;
    /// `None` if the payload is shorter than a header.
    pub fn split(payload: &[u8]) -> Option<(RawMessageHeader, &[u8])> {
        let head = payload.get(..size_of::<RawMessageHeader>())?;
        let header = bytemuck::pod_read_unaligned(head);
        Some((header, &payload[head.len()..]))
    }
}

/// Bits of [`CheckpointBegin::flags`]. Values are stable: they are journaled.
pub mod checkpoint_flag {
    /// The last daemon event before the checkpoint's position was `STOPPED`, and nothing
    /// order-related came after it.
    pub const CLEAN_STOP: u16 = 1;
    /// `client_order_id_max` holds a value (some client order id was seen).
    pub const CLIENT_ORDER_ID_MAX: u16 = 2;
    /// `fix_next_sender` and `fix_next_target` hold the last `FixSeqNums` journaled.
    pub const FIX_SEQ_NUMS: u16 = 4;
    /// `sent_msg_seq_num_max` holds a value (some order was sent).
    pub const SENT_MSG_SEQ_NUM_MAX: u16 = 8;
    /// A trip is pending: `trip_check`, `trip_limit`, `trip_value` hold it.
    pub const TRIP: u16 = 16;
    /// A status round (order mass status) awaits the venue's last report.
    pub const STATUS_ROUND_OPEN: u16 = 32;
}

/// Bits of [`CheckpointInstrument::flags`].
pub mod checkpoint_instrument_flag {
    /// `def` is the instrument's definition (else the id had risk limits and no definition).
    pub const DEFINED: u32 = 1;
    /// The instrument has risk limits: the ledger fields hold its state.
    pub const RISK: u32 = 2;
}

/// Bits of [`CheckpointOrder::flags`].
pub mod checkpoint_order_flag {
    /// The venue acknowledged the order.
    pub const ACKED: u8 = 1;
    /// A cancel awaits the venue (`cancel_client_order_id` is its id).
    pub const CANCEL_PENDING: u8 = 2;
    /// Open when the status round began and not yet reported on in it.
    pub const AWAITING_STATUS: u8 = 4;
}

/// Replaces one [`CheckpointOrder`] holds (the risk engine's `REPLACES_PENDING_MAX`, which must
/// not exceed it).
pub const CHECKPOINT_REPLACES_MAX: usize = 3;
/// Marks one [`CheckpointMarks`] holds.
pub const CHECKPOINT_MARKS_PER_RECORD: usize = 16;
/// Stamps one [`CheckpointFills`] holds.
pub const CHECKPOINT_FILLS_PER_RECORD: usize = 64;

/// An `i128` as two `u64` words, low word first (records keep 8-byte alignment).
pub fn i128_to_words(value: i128) -> [u64; 2] {
    [value as u64, (value >> 64) as u64]
}

/// The `i128` of [`i128_to_words`].
pub fn i128_from_words(words: [u64; 2]) -> i128 {
    (words[0] as u128 | (words[1] as u128) << 64) as i128
}

/// The first record of a checkpoint: the state recovery rebuilds, as of journal position
/// `replay_from` (exactly what a replay of every frame before it gives). Recovery restores the
/// last complete checkpoint and replays only the frames from `replay_from` on, so segments
/// before it may be pruned. The records of one checkpoint, in this order: this one, `instruments`
/// [`CheckpointInstrument`]s, `orders` [`CheckpointOrder`]s, `ceil(marks / 16)`
/// [`CheckpointMarks`], `ceil(fills / 64)` [`CheckpointFills`], then a [`CheckpointEnd`]; every
/// one carries `checkpoint_id` and comes from the same writer. Other writers' frames may lie
/// between them. A checkpoint without its end (a crash while writing it) is ignored.
///
/// ```text
///   0 u64 checkpoint_id         8 u64 replay_from (journal position P)
///  16 u64 unix_ns (written)    24 u64 frames (before P)
///  32 u64 runs (writer runs before P)   40 u64 epoch (run of the last frame before P; 0: none)
///  48 u64 orders_sent          56 u64 reports
///  64 u64 targets_gone         72 u64 skipped
///  80 u64 client_order_id_max (flag CLIENT_ORDER_ID_MAX)
///  88 u64 fix_next_sender      96 u64 fix_next_target (flag FIX_SEQ_NUMS)
/// 104 u64 sent_msg_seq_num_max (flag SENT_MSG_SEQ_NUM_MAX)
/// 112 u64 ignored_reports     120 i64 trip_limit   128 i64 trip_value (flag TRIP)
/// 136 [u64; 2] pnl_total (i128 notional, low word first)
/// 152 u32 instruments   156 u32 orders   160 u32 marks   164 u32 fills
/// 168 u16 flags (checkpoint_flag)   170 u16 trip_check (risk check code)
/// 172 u8 trading_state (0 active, 1 reduce-only, 2 halted)   173 [u8; 3] reserved
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointBegin {
    pub checkpoint_id: u64,
    /// `Position.0` of the first frame the checkpoint does not cover.
    pub replay_from: u64,
    pub unix_ns: u64,
    pub frames: u64,
    pub runs: u64,
    pub epoch: u64,
    pub orders_sent: u64,
    pub reports: u64,
    pub targets_gone: u64,
    pub skipped: u64,
    pub client_order_id_max: u64,
    pub fix_next_sender: u64,
    pub fix_next_target: u64,
    pub sent_msg_seq_num_max: u64,
    pub ignored_reports: u64,
    pub trip_limit: i64,
    pub trip_value: i64,
    pub pnl_total: [u64; 2],
    pub instruments: u32,
    pub orders: u32,
    pub marks: u32,
    pub fills: u32,
    pub flags: u16,
    pub trip_check: u16,
    pub trading_state: u8,
    pub reserved: [u8; 3],
}

/// One instrument of a checkpoint: what it is (checked against the configuration, as an
/// [`InstrumentDef`] is) and its risk ledger. Money is in the instrument's `px x qty` units
/// (`pnl` in notional units), each `i128` as two words, low first.
///
/// ```text
///   0 u64 checkpoint_id
///   8 InstrumentDef def (48 B)
///  56 i64 position            64 i64 open_buy_qty    72 i64 open_sell_qty (as its orders add up)
///  80 i64 mark_px             88 i64 worst_max (the bound restored/adopted orders raised)
///  96 [u64; 2] realised      112 [u64; 2] open_cost  128 [u64; 2] pnl
/// 144 u32 flags (checkpoint_instrument_flag)         148 u32 reserved
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointInstrument {
    pub checkpoint_id: u64,
    pub def: InstrumentDef,
    pub position: i64,
    pub open_buy_qty: i64,
    pub open_sell_qty: i64,
    pub mark_px: i64,
    /// The largest worst-case bound that restored or adopted orders raised the ledger to (0:
    /// none; the position limits' part comes from the limits in force).
    pub worst_max: i64,
    pub realised: [u64; 2],
    pub open_cost: [u64; 2],
    pub pnl: [u64; 2],
    pub flags: u32,
    pub reserved: u32,
}

/// A replace awaiting the venue, in a [`CheckpointOrder`]: the order's new total quantity.
///
/// ```text
///   0 u64 client_order_id   8 i64 px   16 i64 qty
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointReplace {
    pub client_order_id: u64,
    pub px: i64,
    pub qty: i64,
}

/// One open order of a checkpoint, as risk's open-order table holds it.
///
/// ```text
///   0 u64 checkpoint_id
///   8 u64 client_order_id (the working order's)   16 u64 cancel_client_order_id (0: none)
///  24 i64 px (a market order: its side's crossing sentinel)
///  32 i64 leaves_qty          40 i64 cum_qty        48 i64 counted_qty
///  56 CheckpointReplace[3] pending (oldest first; 24 B each)
/// 128 u32 instrument_id      132 u8 side   133 u8 ord_type   134 u8 pending_len
/// 135 u8 flags (checkpoint_order_flag)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointOrder {
    pub checkpoint_id: u64,
    pub client_order_id: u64,
    pub cancel_client_order_id: u64,
    pub px: i64,
    pub leaves_qty: i64,
    pub cum_qty: i64,
    pub counted_qty: i64,
    pub pending: [CheckpointReplace; CHECKPOINT_REPLACES_MAX],
    pub instrument_id: u32,
    pub side: u8,
    pub ord_type: u8,
    pub pending_len: u8,
    pub flags: u8,
}

/// A strategy's lowest client order id not yet seen, in a [`CheckpointMarks`].
///
/// ```text
///   0 u64 next_client_order_id   8 u16 strategy_id   10 u16 reserved   12 u32 reserved
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct StrategyMark {
    pub next_client_order_id: u64,
    pub strategy_id: u16,
    pub reserved_a: u16,
    pub reserved_b: u32,
}

/// Up to [`CHECKPOINT_MARKS_PER_RECORD`] client-order-id marks of a checkpoint.
///
/// ```text
///   0 u64 checkpoint_id   8 u32 count   12 u32 reserved
///  16 StrategyMark[16] (count used; 16 B each)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointMarks {
    pub checkpoint_id: u64,
    pub count: u32,
    pub reserved: u32,
    pub marks: [StrategyMark; CHECKPOINT_MARKS_PER_RECORD],
}

impl CheckpointMarks {
    /// The marks used (clamped to the record, never a panic on a bad count).
    pub fn used(&self) -> &[StrategyMark] {
        &self.marks[..(self.count as usize).min(CHECKPOINT_MARKS_PER_RECORD)]
    }
}

/// Up to [`CHECKPOINT_FILLS_PER_RECORD`] stamps (ns) of the fills the repeated-execution
/// throttle remembers, oldest first across the checkpoint's records.
///
/// ```text
///   0 u64 checkpoint_id   8 u32 count   12 u32 reserved
///  16 u64 stamps_ns[64] (count used)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointFills {
    pub checkpoint_id: u64,
    pub count: u32,
    pub reserved: u32,
    pub stamps_ns: [u64; CHECKPOINT_FILLS_PER_RECORD],
}

impl Default for CheckpointFills {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl CheckpointFills {
    /// The stamps used (clamped to the record, never a panic on a bad count).
    pub fn used(&self) -> &[u64] {
        &self.stamps_ns[..(self.count as usize).min(CHECKPOINT_FILLS_PER_RECORD)]
    }
}

/// The last record of a checkpoint: it is complete.
///
/// ```text
///   0 u64 checkpoint_id   8 u64 records (between begin and end)   16 u64 replay_from (as begun)
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CheckpointEnd {
    pub checkpoint_id: u64,
    pub records: u64,
    pub replay_from: u64,
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
impl<const N: usize> Record for DepthChunkOf<N> {
    const RECORD_TYPE: RecordType = record_type::DEPTH_DIFF;

    /// The fixed fields and this chunk's levels, not the unused rest (layout 2).
    #[inline]
    fn to_bytes(&self) -> &[u8] {
        &bytemuck::bytes_of(self)[..self.payload_len()]
    }

    /// A chunk from its payload: the fixed fields and as many levels as its counts say (layout
    /// 2), or the whole record (layout 1 wrote all 32 levels of a [`DepthDiff`]). The unused
    /// levels are zero. `None` for more levels than `N`.
    fn from_bytes(payload: &[u8]) -> Option<Self> {
        if payload.len() == size_of::<Self>() {
            return bytemuck::try_pod_read_unaligned(payload).ok();
        }
        if Self::payload_len_of(payload)? != payload.len() {
            return None;
        }
        let mut diff = Self::zeroed();
        bytemuck::bytes_of_mut(&mut diff)[..payload.len()].copy_from_slice(payload);
        Some(diff)
    }

    /// As [`from_bytes`](Record::from_bytes): a chunk's payload has no room for appended fields.
    fn from_payload(payload: &[u8]) -> Option<Self> {
        Self::from_bytes(payload)
    }
}
impl Record for OrderRequest {
    /// As emitted by a strategy (journaled by the strategy stage); what passed risk and was
    /// encoded is journaled as a [`SentOrder`].
    const RECORD_TYPE: RecordType = record_type::ORDER_REQUEST;
}
impl Record for SentOrder {
    const RECORD_TYPE: RecordType = record_type::ORDER_SENT;
}
impl Record for FixSeqNums {
    const RECORD_TYPE: RecordType = record_type::FIX_SEQ_NUMS;
}
impl Record for RiskReject {
    const RECORD_TYPE: RecordType = record_type::RISK_REJECT;
}
impl Record for ExecutionReport {
    const RECORD_TYPE: RecordType = record_type::EXECUTION_REPORT;
}
impl Record for InstrumentDef {
    const RECORD_TYPE: RecordType = record_type::INSTRUMENT_DEF;
}
impl Record for DaemonEvent {
    const RECORD_TYPE: RecordType = record_type::DAEMON_EVENT;
}
impl Record for CheckpointBegin {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_BEGIN;
}
impl Record for CheckpointInstrument {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_INSTRUMENT;
}
impl Record for CheckpointOrder {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_ORDER;
}
impl Record for CheckpointMarks {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_MARKS;
}
impl Record for CheckpointFills {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_FILLS;
}
impl Record for CheckpointEnd {
    const RECORD_TYPE: RecordType = record_type::CHECKPOINT_END;
}

const _: () = assert!(size_of::<BookTicker>() == 56);
const _: () = assert!(size_of::<Trade>() == 56);
const _: () = assert!(size_of::<AggTrade>() == 72);
const _: () = assert!(size_of::<Level>() == 16);
const _: () = assert!(size_of::<DepthDiff>() == 48 + 16 * DEPTH_LEVELS_PER_RECORD);
const _: () = assert!(size_of::<DepthChunk>() == 48 + 16 * DEPTH_LEVELS_PER_CHUNK);
const _: () = assert!(DepthChunk::FIXED_LEN == 48 && DepthDiff::FIXED_LEN == 48);
const _: () = assert!(size_of::<RawMessageHeader>() == 16);
const _: () = assert!(size_of::<OrderRequest>() == 64);
const _: () = assert!(size_of::<RiskReject>() == 88);
const _: () = assert!(size_of::<SentOrder>() == 136);
const _: () = assert!(size_of::<FixSeqNums>() == 16);
const _: () = assert!(size_of::<ExecutionReport>() == 80);
const _: () = assert!(size_of::<InstrumentDef>() == 48);
const _: () = assert!(size_of::<DaemonEvent>() == 24);
const _: () = assert!(size_of::<CheckpointBegin>() == 176);
const _: () = assert!(size_of::<CheckpointInstrument>() == 152);
const _: () = assert!(size_of::<CheckpointReplace>() == 24);
const _: () = assert!(size_of::<CheckpointOrder>() == 136);
const _: () = assert!(size_of::<StrategyMark>() == 16);
const _: () = assert!(size_of::<CheckpointMarks>() == 16 + 16 * CHECKPOINT_MARKS_PER_RECORD);
const _: () = assert!(size_of::<CheckpointFills>() == 16 + 8 * CHECKPOINT_FILLS_PER_RECORD);
const _: () = assert!(size_of::<CheckpointEnd>() == 24);

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
        d.levels[5] = Level { px: 99, qty: 9 }; // unused: not journaled
        assert_eq!(d.to_bytes().len(), 48 + 3 * 16);
        let back = DepthDiff::from_bytes(d.to_bytes()).unwrap();
        assert_eq!(back.bids(), &[Level { px: 10, qty: 1 }]);
        assert_eq!(
            back.asks(),
            &[Level { px: 11, qty: 2 }, Level { px: 12, qty: 0 }]
        );
        assert_eq!(back.levels[5], Level::default());
        // Layout 1's whole record reads as it is; a payload cut short, or longer than its
        // levels but not whole, or counting more levels than a record holds, does not.
        assert_eq!(DepthDiff::from_bytes(bytemuck::bytes_of(&d)), Some(d));
        assert_eq!(DepthDiff::from_payload(bytemuck::bytes_of(&d)), Some(d));
        assert_eq!(DepthDiff::from_bytes(&d.to_bytes()[..90]), None);
        assert_eq!(DepthDiff::from_bytes(&bytemuck::bytes_of(&d)[..120]), None);
        assert_eq!(DepthDiff::from_bytes(&d.to_bytes()[..40]), None);
        let mut full = d;
        full.bid_count = DEPTH_LEVELS_PER_RECORD as u16;
        full.ask_count = 0;
        assert_eq!(full.to_bytes().len(), size_of::<DepthDiff>());
        full.ask_count = 1;
        assert_eq!(full.to_bytes().len(), size_of::<DepthDiff>());
        assert_eq!(DepthDiff::payload_len_of(full.to_bytes()), None);
        // Fields appended by a newer minor version are ignored by from_payload only.
        let mut longer = t.to_bytes().to_vec();
        longer.extend_from_slice(&[1; 8]);
        assert_eq!(BookTicker::from_bytes(&longer), None);
        assert_eq!(BookTicker::from_payload(&longer), Some(t));
    }

    #[test]
    fn i128_words_round_trip_and_checkpoint_counts_are_clamped() {
        for v in [0i128, 1, -1, i128::MAX, i128::MIN, 1 << 64, -(1 << 64) + 7] {
            assert_eq!(i128_from_words(i128_to_words(v)), v);
        }
        let mut marks = CheckpointMarks {
            count: 2,
            ..CheckpointMarks::default()
        };
        marks.marks[1].strategy_id = 9;
        let back = CheckpointMarks::from_bytes(marks.to_bytes()).unwrap();
        assert_eq!(back.used().len(), 2);
        assert_eq!(back.used()[1].strategy_id, 9);
        let fills = CheckpointFills {
            count: u32::MAX,
            ..CheckpointFills::default()
        };
        assert_eq!(fills.used().len(), CHECKPOINT_FILLS_PER_RECORD);
    }

    #[test]
    fn instrument_defs_keep_their_symbol_and_refuse_long_ones() {
        let def = InstrumentDef::new(3, "NKNUSDT", (1, 8), (1, 8)).unwrap();
        let back = InstrumentDef::from_bytes(def.to_bytes()).unwrap();
        assert_eq!(back.symbol(), Some("NKNUSDT"));
        assert_eq!((back.instrument_id, back.price_exp), (3, 8));
        assert!(InstrumentDef::new(0, &"X".repeat(SYMBOL_LEN_MAX + 1), (1, 0), (1, 0)).is_none());
        let mut corrupt = def;
        corrupt.symbol_len = 200;
        assert_eq!(corrupt.symbol(), None);
    }
}
