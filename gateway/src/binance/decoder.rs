//! The decoder: the scanner's fast path first, the simd-json general path whenever the fast path
//! does not match.
//!
//! Allocation: the general path copies the message into a scratch buffer sized for
//! `MESSAGE_LEN_MAX` at construction, and parses it with `simd_json::fill_tape_padded`, reusing
//! the decoder's `Buffers` and tape (`simd_json::from_slice` would allocate on every call). Levels
//! go into a buffer of `LEVELS_PER_MESSAGE_MAX`. After the first messages have grown simd-json's
//! internal stacks to their working size, decoding allocates nothing
//! (`tests/decoder_no_alloc.rs`).

use simd_json::prelude::*;
use simd_json::tape::Value;
use simd_json::{Buffers, INPUT_PADDING, Tape, fill_tape_padded};

use levibot_shm::records::{AggTrade, BookTicker, Level, TRADE_FLAG_BUYER_IS_MAKER, Trade};

use super::scanner::Cursor;
use super::{DepthSnapshot, DepthUpdate, MarketEvent, StreamKind};
use crate::decimal::{DecimalError, Scale, parse_units};
use crate::instrument::{Instrument, InstrumentTable};

/// Largest message accepted: a REST depth snapshot of 5,000 levels a side is about 400 KB.
pub const MESSAGE_LEN_MAX: usize = 1 << 20;
/// Most levels in one message (bids and asks together): a 5,000-level snapshot.
pub const LEVELS_PER_MESSAGE_MAX: usize = 2 * 5000;

/// Why a message could not be decoded; `offset` is the byte offset in the message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("byte {offset}: {kind}")]
pub struct DecodeError {
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("message of {len} bytes is over the {MESSAGE_LEN_MAX}-byte limit")]
    TooLarge { len: usize },
    #[error("field {0:?} is missing")]
    MissingField(&'static str),
    #[error("field {0:?} has the wrong type")]
    WrongType(&'static str),
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    #[error("field {field:?}: {error}")]
    Decimal {
        field: &'static str,
        error: DecimalError,
    },
    #[error("more than {LEVELS_PER_MESSAGE_MAX} levels")]
    TooManyLevels,
    #[error("event type {0:?} is not a market-data event this decoder knows")]
    UnknownEvent(String),
}

/// Counts kept by a decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Messages the fast path decoded.
    pub fast_path: u64,
    /// Messages the general path decoded.
    pub general_path: u64,
    /// Messages of streams this decoder does not handle, skipped.
    pub skipped: u64,
    /// Messages that failed to decode.
    pub errors: u64,
}

/// A decoded message before its levels are borrowed from the decoder (keeps the borrow checker
/// out of the fast/general fallback).
#[derive(Clone, Copy)]
enum Parsed {
    BookTicker(BookTicker),
    Depth {
        instrument_id: u32,
        recv_tsc: u64,
        event_time_ms: u64,
        first_update_id: u64,
        final_update_id: u64,
        bid_count: usize,
    },
    Trade(Trade),
    AggTrade(AggTrade),
    Skipped(StreamKind),
}

/// Decodes Binance Spot market data for the instruments of its table.
pub struct Decoder {
    instruments: InstrumentTable,
    levels: Vec<Level>,
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    stats: DecodeStats,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("instruments", &self.instruments.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for `instruments`, with every buffer allocated now.
    pub fn new(instruments: InstrumentTable) -> Decoder {
        Decoder {
            instruments,
            levels: Vec::with_capacity(LEVELS_PER_MESSAGE_MAX),
            scratch: Vec::with_capacity(MESSAGE_LEN_MAX + INPUT_PADDING),
            buffers: Buffers::new(MESSAGE_LEN_MAX),
            tape: Some(Tape(Vec::with_capacity(4 * LEVELS_PER_MESSAGE_MAX))),
            stats: DecodeStats::default(),
        }
    }

    pub fn instruments(&self) -> &InstrumentTable {
        &self.instruments
    }

    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Decodes one combined-stream message (or a bare event, as sent on `/ws/<stream>`).
    #[inline]
    pub fn decode(
        &mut self,
        message: &[u8],
        recv_tsc: u64,
    ) -> Result<MarketEvent<'_>, DecodeError> {
        self.levels.clear();
        if let Some(parsed) = fast_combined(&self.instruments, &mut self.levels, message, recv_tsc)
        {
            self.stats.fast_path += 1;
            return Ok(self.event(parsed));
        }
        self.decode_general(message, recv_tsc)
    }

    /// Decodes with the general (simd-json) path only. [`decode`](Self::decode) is the same but
    /// faster for messages in the venue's documented layout; this is public for the tests and
    /// benchmarks that compare the two.
    pub fn decode_general(
        &mut self,
        message: &[u8],
        recv_tsc: u64,
    ) -> Result<MarketEvent<'_>, DecodeError> {
        self.levels.clear();
        let result = self.with_tape(message, |instruments, levels, root, base| {
            general_event(instruments, levels, root, base, recv_tsc)
        });
        match result {
            Ok(parsed) => {
                if matches!(parsed, Parsed::Skipped(_)) {
                    self.stats.skipped += 1;
                } else {
                    self.stats.general_path += 1;
                }
                Ok(self.event(parsed))
            }
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }

    /// Decodes a REST depth snapshot (`/api/v3/depth`) of the instrument `instrument_id`.
    pub fn decode_snapshot(
        &mut self,
        body: &[u8],
        instrument_id: u32,
    ) -> Result<DepthSnapshot<'_>, DecodeError> {
        let unknown = || DecodeError {
            offset: 0,
            kind: DecodeErrorKind::UnknownSymbol(format!("instrument id {instrument_id}")),
        };
        let instrument = self.instruments.get(instrument_id).ok_or_else(unknown)?;
        self.levels.clear();
        let (last_update_id, bid_count) = match fast_snapshot(instrument, &mut self.levels, body) {
            Some(found) => found,
            None => {
                self.levels.clear();
                self.with_tape(body, |instruments, levels, root, base| {
                    let instrument = instruments.get(instrument_id).ok_or_else(unknown)?;
                    general_snapshot(instrument, levels, root, base)
                })?
            }
        };
        Ok(DepthSnapshot {
            instrument_id,
            last_update_id,
            bids: &self.levels[..bid_count],
            asks: &self.levels[bid_count..],
        })
    }

    fn event(&self, parsed: Parsed) -> MarketEvent<'_> {
        match parsed {
            Parsed::BookTicker(t) => MarketEvent::BookTicker(t),
            Parsed::Trade(t) => MarketEvent::Trade(t),
            Parsed::AggTrade(t) => MarketEvent::AggTrade(t),
            Parsed::Skipped(kind) => MarketEvent::Skipped(kind),
            Parsed::Depth {
                instrument_id,
                recv_tsc,
                event_time_ms,
                first_update_id,
                final_update_id,
                bid_count,
            } => MarketEvent::Depth(DepthUpdate {
                instrument_id,
                recv_tsc,
                event_time_ms,
                first_update_id,
                final_update_id,
                bids: &self.levels[..bid_count],
                asks: &self.levels[bid_count..],
            }),
        }
    }

    /// Parses `message` into the reused tape and hands its root to `read`, with the address of
    /// the scratch copy (to turn strings back into offsets).
    fn with_tape<T>(
        &mut self,
        message: &[u8],
        read: impl FnOnce(
            &InstrumentTable,
            &mut Vec<Level>,
            Value<'_, '_>,
            usize,
        ) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if message.len() > MESSAGE_LEN_MAX {
            return Err(DecodeError {
                offset: MESSAGE_LEN_MAX,
                kind: DecodeErrorKind::TooLarge { len: message.len() },
            });
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(message);
        self.scratch.resize(message.len() + INPUT_PADDING, 0);
        let base = self.scratch.as_ptr() as usize;
        let mut tape: Tape<'_> = self
            .tape
            .take()
            .map(Tape::reset)
            .unwrap_or_else(|| Tape(Vec::new()));
        let result = match fill_tape_padded(
            &mut self.scratch,
            message.len(),
            &mut self.buffers,
            &mut tape,
        ) {
            Ok(()) => read(&self.instruments, &mut self.levels, tape.as_value(), base),
            Err(e) => Err(DecodeError {
                offset: e.index().min(message.len()),
                kind: DecodeErrorKind::Json(format!("{:?}", e.error())),
            }),
        };
        self.tape = Some(tape.reset());
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Fast path: the documented layouts, byte by byte.

fn fast_combined(
    instruments: &InstrumentTable,
    levels: &mut Vec<Level>,
    message: &[u8],
    recv_tsc: u64,
) -> Option<Parsed> {
    let mut c = Cursor::new(message);
    c.lit(br#"{"stream":""#)?;
    let kind = StreamKind::of_stream(c.string_body()?);
    c.lit(br#","data":{"#)?;
    let parsed = match kind {
        StreamKind::BookTicker => {
            c.lit(br#""u":"#)?;
            let update_id = c.u64()?;
            c.lit(br#","s":""#)?;
            let i = instruments.find(c.string_body()?)?;
            c.lit(br#","b":"#)?;
            let bid_px = c.units(i.price_scale)?;
            c.lit(br#","B":"#)?;
            let bid_qty = c.units(i.qty_scale)?;
            c.lit(br#","a":"#)?;
            let ask_px = c.units(i.price_scale)?;
            c.lit(br#","A":"#)?;
            let ask_qty = c.units(i.qty_scale)?;
            Parsed::BookTicker(BookTicker {
                recv_tsc,
                update_id,
                bid_px,
                bid_qty,
                ask_px,
                ask_qty,
                instrument_id: i.id,
                reserved: 0,
            })
        }
        StreamKind::Depth => {
            c.lit(br#""e":"depthUpdate","E":"#)?;
            let event_time_ms = c.u64()?;
            c.lit(br#","s":""#)?;
            let i = instruments.find(c.string_body()?)?;
            c.lit(br#","U":"#)?;
            let first_update_id = c.u64()?;
            c.lit(br#","u":"#)?;
            let final_update_id = c.u64()?;
            c.lit(br#","b":"#)?;
            let bid_count = c.levels(i.price_scale, i.qty_scale, levels)?;
            c.lit(br#","a":"#)?;
            c.levels(i.price_scale, i.qty_scale, levels)?;
            Parsed::Depth {
                instrument_id: i.id,
                recv_tsc,
                event_time_ms,
                first_update_id,
                final_update_id,
                bid_count,
            }
        }
        StreamKind::Trade => {
            c.lit(br#""e":"trade","E":"#)?;
            let event_time_ms = c.u64()?;
            c.lit(br#","s":""#)?;
            let i = instruments.find(c.string_body()?)?;
            c.lit(br#","t":"#)?;
            let trade_id = c.u64()?;
            c.lit(br#","p":"#)?;
            let px = c.units(i.price_scale)?;
            c.lit(br#","q":"#)?;
            let qty = c.units(i.qty_scale)?;
            c.lit(br#","T":"#)?;
            let trade_time_ms = c.u64()?;
            c.lit(br#","m":"#)?;
            let buyer_is_maker = c.bool()?;
            c.lit(br#","M":"#)?;
            c.bool()?;
            Parsed::Trade(Trade {
                recv_tsc,
                trade_id,
                event_time_ms,
                trade_time_ms,
                px,
                qty,
                instrument_id: i.id,
                flags: trade_flags(buyer_is_maker),
            })
        }
        StreamKind::AggTrade => {
            c.lit(br#""e":"aggTrade","E":"#)?;
            let event_time_ms = c.u64()?;
            c.lit(br#","s":""#)?;
            let i = instruments.find(c.string_body()?)?;
            c.lit(br#","a":"#)?;
            let agg_id = c.u64()?;
            c.lit(br#","p":"#)?;
            let px = c.units(i.price_scale)?;
            c.lit(br#","q":"#)?;
            let qty = c.units(i.qty_scale)?;
            c.lit(br#","f":"#)?;
            let first_trade_id = c.u64()?;
            c.lit(br#","l":"#)?;
            let last_trade_id = c.u64()?;
            c.lit(br#","T":"#)?;
            let trade_time_ms = c.u64()?;
            c.lit(br#","m":"#)?;
            let buyer_is_maker = c.bool()?;
            c.lit(br#","M":"#)?;
            c.bool()?;
            Parsed::AggTrade(AggTrade {
                recv_tsc,
                agg_id,
                first_trade_id,
                last_trade_id,
                event_time_ms,
                trade_time_ms,
                px,
                qty,
                instrument_id: i.id,
                flags: trade_flags(buyer_is_maker),
            })
        }
        // Unknown streams are skipped by the general path, after it has checked the JSON.
        StreamKind::Other => return None,
    };
    c.lit(b"}}")?;
    c.at_end().then_some(parsed)
}

fn fast_snapshot(
    instrument: &Instrument,
    levels: &mut Vec<Level>,
    body: &[u8],
) -> Option<(u64, usize)> {
    let mut c = Cursor::new(body);
    c.lit(br#"{"lastUpdateId":"#)?;
    let last_update_id = c.u64()?;
    c.lit(br#","bids":"#)?;
    let bid_count = c.levels(instrument.price_scale, instrument.qty_scale, levels)?;
    c.lit(br#","asks":"#)?;
    c.levels(instrument.price_scale, instrument.qty_scale, levels)?;
    c.lit(b"}")?;
    c.at_end().then_some((last_update_id, bid_count))
}

fn trade_flags(buyer_is_maker: bool) -> u32 {
    if buyer_is_maker {
        TRADE_FLAG_BUYER_IS_MAKER
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// General path: any field order, whitespace and escapes, via the simd-json tape.

/// Reads fields of one JSON object, with errors that name the field and the offset.
struct Fields<'t, 'i> {
    object: Value<'t, 'i>,
    /// Offset of the object (its first string, or 0) for errors about missing fields.
    base: usize,
    /// Address of the scratch copy: a string's offset is its address minus this.
    scratch: usize,
}

impl<'t, 'i> Fields<'t, 'i> {
    fn new(value: Value<'t, 'i>, what: &'static str, scratch: usize) -> Result<Self, DecodeError> {
        if value.as_object().is_none() {
            return Err(DecodeError {
                offset: 0,
                kind: DecodeErrorKind::WrongType(what),
            });
        }
        Ok(Fields {
            object: value,
            base: 0,
            scratch,
        })
    }

    fn offset_of(&self, s: &str) -> usize {
        (s.as_ptr() as usize).saturating_sub(self.scratch)
    }

    fn error(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset, kind }
    }

    fn field(&self, name: &'static str) -> Result<Value<'t, 'i>, DecodeError> {
        self.object
            .get(name)
            .ok_or_else(|| self.error(self.base, DecodeErrorKind::MissingField(name)))
    }

    fn str(&self, name: &'static str) -> Result<&'i str, DecodeError> {
        self.field(name)?
            .into_string()
            .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))
    }

    fn u64(&self, name: &'static str) -> Result<u64, DecodeError> {
        self.field(name)?
            .as_u64()
            .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))
    }

    fn bool(&self, name: &'static str) -> Result<bool, DecodeError> {
        self.field(name)?
            .as_bool()
            .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))
    }

    fn units(&self, name: &'static str, scale: Scale) -> Result<i64, DecodeError> {
        let text = self.str(name)?;
        parse_units(text.as_bytes(), scale).map_err(|error| {
            self.error(
                self.offset_of(text),
                DecodeErrorKind::Decimal { field: name, error },
            )
        })
    }

    fn instrument<'a>(
        &self,
        instruments: &'a InstrumentTable,
    ) -> Result<&'a Instrument, DecodeError> {
        let symbol = self.str("s")?;
        instruments.find(symbol.as_bytes()).ok_or_else(|| {
            self.error(
                self.offset_of(symbol),
                DecodeErrorKind::UnknownSymbol(symbol.to_owned()),
            )
        })
    }

    fn levels(
        &self,
        name: &'static str,
        instrument: &Instrument,
        out: &mut Vec<Level>,
    ) -> Result<usize, DecodeError> {
        let array = self
            .field(name)?
            .as_array()
            .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))?;
        let mut count = 0;
        for level in array.iter() {
            let pair = level
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))?;
            let number = |index: usize| -> Result<(i64, usize), DecodeError> {
                let text = pair
                    .get(index)
                    .and_then(|v| v.into_string())
                    .ok_or_else(|| self.error(self.base, DecodeErrorKind::WrongType(name)))?;
                let scale = if index == 0 {
                    instrument.price_scale
                } else {
                    instrument.qty_scale
                };
                let offset = self.offset_of(text);
                parse_units(text.as_bytes(), scale)
                    .map(|units| (units, offset))
                    .map_err(|error| {
                        self.error(offset, DecodeErrorKind::Decimal { field: name, error })
                    })
            };
            let (px, offset) = number(0)?;
            let (qty, _) = number(1)?;
            if out.len() == LEVELS_PER_MESSAGE_MAX {
                return Err(self.error(offset, DecodeErrorKind::TooManyLevels));
            }
            out.push(Level { px, qty });
            count += 1;
        }
        Ok(count)
    }
}

fn general_event(
    instruments: &InstrumentTable,
    levels: &mut Vec<Level>,
    root: Value<'_, '_>,
    scratch: usize,
    recv_tsc: u64,
) -> Result<Parsed, DecodeError> {
    let outer = Fields::new(root, "message", scratch)?;
    // Combined stream: {"stream": "...", "data": {...}}; otherwise a bare event.
    let (kind, data) = match root.get("stream") {
        Some(stream) => {
            let name = stream
                .into_string()
                .ok_or_else(|| outer.error(0, DecodeErrorKind::WrongType("stream")))?;
            let kind = StreamKind::of_stream(name.as_bytes());
            if kind == StreamKind::Other {
                return Ok(Parsed::Skipped(kind));
            }
            let mut data = Fields::new(outer.field("data")?, "data", scratch)?;
            data.base = outer.offset_of(name);
            (kind, data)
        }
        None => {
            let kind = match root.get("e").and_then(|e| e.into_string()) {
                Some("depthUpdate") => StreamKind::Depth,
                Some("trade") => StreamKind::Trade,
                Some("aggTrade") => StreamKind::AggTrade,
                Some(other) => {
                    return Err(outer.error(
                        outer.offset_of(other),
                        DecodeErrorKind::UnknownEvent(other.to_owned()),
                    ));
                }
                // bookTicker events carry no "e".
                None if root.get("u").is_some() && root.get("b").is_some() => {
                    StreamKind::BookTicker
                }
                None => return Err(outer.error(0, DecodeErrorKind::MissingField("e"))),
            };
            (kind, outer)
        }
    };
    let d = &data;
    Ok(match kind {
        StreamKind::BookTicker => {
            let i = d.instrument(instruments)?;
            Parsed::BookTicker(BookTicker {
                recv_tsc,
                update_id: d.u64("u")?,
                bid_px: d.units("b", i.price_scale)?,
                bid_qty: d.units("B", i.qty_scale)?,
                ask_px: d.units("a", i.price_scale)?,
                ask_qty: d.units("A", i.qty_scale)?,
                instrument_id: i.id,
                reserved: 0,
            })
        }
        StreamKind::Depth => {
            expect_event(d, "depthUpdate")?;
            let i = d.instrument(instruments)?;
            let event_time_ms = d.u64("E")?;
            let first_update_id = d.u64("U")?;
            let final_update_id = d.u64("u")?;
            let bid_count = d.levels("b", i, levels)?;
            d.levels("a", i, levels)?;
            Parsed::Depth {
                instrument_id: i.id,
                recv_tsc,
                event_time_ms,
                first_update_id,
                final_update_id,
                bid_count,
            }
        }
        StreamKind::Trade => {
            expect_event(d, "trade")?;
            let i = d.instrument(instruments)?;
            Parsed::Trade(Trade {
                recv_tsc,
                trade_id: d.u64("t")?,
                event_time_ms: d.u64("E")?,
                trade_time_ms: d.u64("T")?,
                px: d.units("p", i.price_scale)?,
                qty: d.units("q", i.qty_scale)?,
                instrument_id: i.id,
                flags: trade_flags(d.bool("m")?),
            })
        }
        StreamKind::AggTrade => {
            expect_event(d, "aggTrade")?;
            let i = d.instrument(instruments)?;
            Parsed::AggTrade(AggTrade {
                recv_tsc,
                agg_id: d.u64("a")?,
                first_trade_id: d.u64("f")?,
                last_trade_id: d.u64("l")?,
                event_time_ms: d.u64("E")?,
                trade_time_ms: d.u64("T")?,
                px: d.units("p", i.price_scale)?,
                qty: d.units("q", i.qty_scale)?,
                instrument_id: i.id,
                flags: trade_flags(d.bool("m")?),
            })
        }
        StreamKind::Other => unreachable!("handled above"),
    })
}

fn expect_event(d: &Fields<'_, '_>, expected: &'static str) -> Result<(), DecodeError> {
    let event = d.str("e")?;
    if event == expected {
        Ok(())
    } else {
        Err(d.error(
            d.offset_of(event),
            DecodeErrorKind::UnknownEvent(event.to_owned()),
        ))
    }
}

fn general_snapshot(
    instrument: &Instrument,
    levels: &mut Vec<Level>,
    root: Value<'_, '_>,
    scratch: usize,
) -> Result<(u64, usize), DecodeError> {
    let d = Fields::new(root, "snapshot", scratch)?;
    let last_update_id = d.u64("lastUpdateId")?;
    let bid_count = d.levels("bids", instrument, levels)?;
    d.levels("asks", instrument, levels)?;
    Ok((last_update_id, bid_count))
}
