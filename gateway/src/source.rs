//! Where the feed stage's venue bytes come from: the [`MessageSource`] seam the engine's feed
//! polls, and the sources that are not a socket: a recorded capture replayed from memory, or a
//! synthetic generator, either as fast as possible or paced at a fixed rate. The engine's
//! `WsFeed` is the live source. They live in the gateway because they produce venue bytes: the
//! simulated venue writes its synthetic recording with the same generator, without the engine.
//!
//! A paced source says when each message was *due* (`due_tsc`); the feed stamps when it really
//! handed the bytes to the decoder (`recv_tsc`). Latency measured from `due_tsc` counts the time a
//! message waited behind a slow one, so a stall cannot hide (no coordinated omission).

use std::io::Write;

use crate::binance::DepthSnapshot;
use crate::capture::{CaptureError, Recording};
use crate::decimal::Scale;
use crate::instrument::Instrument;
use levibot_shm::TscCalibration;
use levibot_shm::records::Level;

/// What a source has for the feed now.
#[derive(Debug)]
pub enum Polled<'a> {
    /// One venue message; the bytes are valid until the next poll.
    Message { bytes: &'a [u8], due_tsc: u64 },
    /// The stream starts over (a replay's next pass): the books must reload their snapshots.
    Resync,
    /// A REST depth snapshot of one instrument (a live feed's (re)sync): its book loads it.
    Snapshot { instrument_id: u32, body: &'a [u8] },
    /// The live feed lost its connection: every book is stale until its next snapshot.
    Stale,
    /// Nothing is due yet.
    Idle,
    /// The source has nothing more, ever.
    Done,
}

/// A source of venue messages, polled by the feed agent. Hot path: `poll` must not allocate,
/// lock or make a syscall.
pub trait MessageSource: Send {
    fn poll(&mut self, now_tsc: u64) -> Polled<'_>;

    /// Whether [`poll`](Self::poll) may hand something now; `true` when the source cannot
    /// tell without polling (a socket, a paced replay).
    fn may_have_message(&self) -> bool {
        true
    }

    /// The depth stream of `instrument_id` lost an update: a live source fetches a new
    /// snapshot (cold path, off the feed's thread); a replay has nothing to fetch.
    fn resync(&mut self, _instrument_id: u32) {}
}

/// Hands out message `i` at `start + i x interval`, or at once when unpaced.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    /// TSC ticks between two messages; 0 = as fast as possible.
    interval_ticks: f64,
    start_tsc: Option<u64>,
    issued: u64,
}

impl Pacer {
    /// `rate_per_sec` messages a second (`None`: as fast as possible).
    pub fn new(rate_per_sec: Option<u64>, calibration: &TscCalibration) -> Pacer {
        let interval_ticks = match rate_per_sec {
            Some(rate) if rate > 0 => calibration.ticks_per_ns * 1e9 / rate as f64,
            _ => 0.0,
        };
        Pacer {
            interval_ticks,
            start_tsc: None,
            issued: 0,
        }
    }

    /// When the next message is due, if it is due by `now_tsc`; counts it as issued.
    #[inline]
    pub fn next_due(&mut self, now_tsc: u64) -> Option<u64> {
        if self.interval_ticks == 0.0 {
            self.issued += 1;
            return Some(now_tsc);
        }
        let start = *self.start_tsc.get_or_insert(now_tsc);
        let due = start + (self.issued as f64 * self.interval_ticks) as u64;
        if due > now_tsc {
            return None;
        }
        self.issued += 1;
        Some(due)
    }
}

/// A snapshot the books can reload (owned, taken on the cold path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedSnapshot {
    pub instrument_id: u32,
    pub last_update_id: u64,
    /// Best first.
    pub bids: Vec<Level>,
    /// Best first.
    pub asks: Vec<Level>,
}

impl OwnedSnapshot {
    /// No snapshot: the book waits for one from the feed.
    pub fn none(instrument_id: u32) -> OwnedSnapshot {
        OwnedSnapshot {
            instrument_id,
            last_update_id: 0,
            bids: Vec::new(),
            asks: Vec::new(),
        }
    }

    pub fn from_snapshot(snapshot: &DepthSnapshot<'_>) -> OwnedSnapshot {
        OwnedSnapshot {
            instrument_id: snapshot.instrument_id,
            last_update_id: snapshot.last_update_id,
            bids: snapshot.bids.to_vec(),
            asks: snapshot.asks.to_vec(),
        }
    }

    pub fn view(&self) -> DepthSnapshot<'_> {
        DepthSnapshot {
            instrument_id: self.instrument_id,
            last_update_id: self.last_update_id,
            bids: &self.bids,
            asks: &self.asks,
        }
    }
}

/// A recorded capture's messages, replayed from memory for a number of passes; each pass after
/// the first starts with [`Polled::Resync`].
#[derive(Debug)]
pub struct ReplaySource {
    bytes: Vec<u8>,
    /// End offset of each message in `bytes`.
    ends: Vec<usize>,
    next: usize,
    passes_left: u64,
    resync_due: bool,
    pacer: Pacer,
}

impl ReplaySource {
    /// The messages of `recording`, `passes` times, paced at `rate_per_sec` if given.
    pub fn new(
        recording: &Recording,
        passes: u64,
        rate_per_sec: Option<u64>,
        calibration: &TscCalibration,
    ) -> Result<ReplaySource, CaptureError> {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for line in recording.messages() {
            bytes.extend_from_slice(line?.body);
            ends.push(bytes.len());
        }
        Ok(ReplaySource {
            bytes,
            ends,
            next: 0,
            passes_left: passes,
            resync_due: false,
            pacer: Pacer::new(rate_per_sec, calibration),
        })
    }

    /// Messages in one pass.
    pub fn messages_per_pass(&self) -> usize {
        self.ends.len()
    }
}

impl MessageSource for ReplaySource {
    #[inline]
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.passes_left == 0 || self.ends.is_empty() {
            return Polled::Done;
        }
        if self.resync_due {
            self.resync_due = false;
            return Polled::Resync;
        }
        let Some(due_tsc) = self.pacer.next_due(now_tsc) else {
            return Polled::Idle;
        };
        let start = if self.next == 0 {
            0
        } else {
            self.ends[self.next - 1]
        };
        let end = self.ends[self.next];
        self.next += 1;
        if self.next == self.ends.len() {
            self.next = 0;
            self.passes_left -= 1;
            self.resync_due = self.passes_left > 0;
        }
        Polled::Message {
            bytes: &self.bytes[start..end],
            due_tsc,
        }
    }
}

/// Levels on each side of the synthetic book.
pub const SYNTHETIC_DEPTH_LEVELS: i64 = 20;
/// Longest synthetic message, bytes (the generator writes into a buffer of this size).
const SYNTHETIC_MESSAGE_LEN_MAX: usize = 512;

/// A synthetic Binance Spot combined stream for one instrument: a random walk of the mid, one
/// tick at a time, as a `depthUpdate` then a `bookTicker` for each step, with an `aggTrade` every
/// fourth step. The book always holds [`SYNTHETIC_DEPTH_LEVELS`] levels a side, one tick apart,
/// around the mid; update ids follow Binance's U/u rule, so the books stay synced indefinitely.
/// Deterministic for a seed; generated in place, without allocating.
#[derive(Debug)]
pub struct SyntheticSource {
    stream: [u8; 16],
    stream_len: usize,
    symbol: [u8; 16],
    symbol_len: usize,
    instrument_id: u32,
    /// Price units per tick, and the price's and quantity's decimals.
    tick_units: i64,
    price_scale: Scale,
    qty_scale: Scale,
    lot_units: i64,
    mid_ticks: i64,
    /// Quantity resting `k + 1` ticks below and above the mid.
    bid_qty: [i64; SYNTHETIC_DEPTH_LEVELS as usize],
    ask_qty: [i64; SYNTHETIC_DEPTH_LEVELS as usize],
    mid_ticks_min: i64,
    mid_ticks_max: i64,
    update_id: u64,
    trade_id: u64,
    step: u64,
    /// The venue time (`E`, `T`) of the next message, ms; `None`: a fixed start plus one ms a
    /// message.
    event_time_ms: Option<u64>,
    /// 0: depth update next, 1: book ticker next, 2: trade next.
    phase: u8,
    rng: u64,
    messages_left: u64,
    pacer: Pacer,
    buffer: [u8; SYNTHETIC_MESSAGE_LEN_MAX],
    len: usize,
}

/// Why a synthetic source cannot be made for an instrument.
#[derive(Debug, thiserror::Error)]
#[error("synthetic source for {symbol}: {reason}")]
pub struct SyntheticError {
    pub symbol: String,
    pub reason: &'static str,
}

impl SyntheticSource {
    /// `messages` messages for `instrument`, starting around `mid_ticks` ticks, paced at
    /// `rate_per_sec` if given.
    pub fn new(
        instrument: &Instrument,
        mid_ticks: i64,
        messages: u64,
        seed: u64,
        rate_per_sec: Option<u64>,
        calibration: &TscCalibration,
    ) -> Result<SyntheticSource, SyntheticError> {
        let err = |reason| SyntheticError {
            symbol: instrument.symbol.to_string(),
            reason,
        };
        let symbol = instrument.symbol.as_str();
        if symbol.len() > 10 {
            return Err(err("symbol longer than 10 bytes"));
        }
        if mid_ticks <= SYNTHETIC_DEPTH_LEVELS * 2 {
            return Err(err("the mid must be above twice the book depth in ticks"));
        }
        let mut stream = [0u8; 16];
        let lower = symbol.to_ascii_lowercase();
        stream[..lower.len()].copy_from_slice(lower.as_bytes());
        let mut sym = [0u8; 16];
        sym[..symbol.len()].copy_from_slice(symbol.as_bytes());
        let depth: [i64; SYNTHETIC_DEPTH_LEVELS as usize] =
            std::array::from_fn(|k| level_qty(k as i64 + 1, instrument.lot_units));
        Ok(SyntheticSource {
            stream,
            stream_len: lower.len(),
            symbol: sym,
            symbol_len: symbol.len(),
            instrument_id: instrument.id,
            tick_units: instrument.tick_units,
            price_scale: instrument.price_scale,
            qty_scale: instrument.qty_scale,
            lot_units: instrument.lot_units,
            mid_ticks,
            bid_qty: depth,
            ask_qty: depth,
            mid_ticks_min: mid_ticks / 2,
            mid_ticks_max: mid_ticks * 2,
            update_id: 1_000,
            trade_id: 1,
            step: 0,
            event_time_ms: None,
            phase: 0,
            rng: seed | 1,
            messages_left: messages,
            pacer: Pacer::new(rate_per_sec, calibration),
            buffer: [0; SYNTHETIC_MESSAGE_LEN_MAX],
            len: 0,
        })
    }

    /// The book the stream starts from (load it before the first message).
    pub fn snapshot(&self) -> OwnedSnapshot {
        let side = |sign: i64, qty: &[i64]| -> Vec<Level> {
            (1..=SYNTHETIC_DEPTH_LEVELS)
                .map(|k| Level {
                    px: (self.mid_ticks + sign * k) * self.tick_units,
                    qty: qty[k as usize - 1],
                })
                .collect()
        };
        OwnedSnapshot {
            instrument_id: self.instrument_id,
            last_update_id: self.update_id,
            bids: side(-1, &self.bid_qty),
            asks: side(1, &self.ask_qty),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic, no allocation, good enough for a random walk.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Writes the next message into the buffer.
    fn generate(&mut self) {
        let mut buffer = [0u8; SYNTHETIC_MESSAGE_LEN_MAX];
        let mut out = std::io::Cursor::new(&mut buffer[..]);
        let (stream, symbol) = (self.stream, self.symbol);
        let stream = std::str::from_utf8(&stream[..self.stream_len]).unwrap_or("");
        let symbol = std::str::from_utf8(&symbol[..self.symbol_len]).unwrap_or("");
        // Exact decimals at the instrument's precision, as Binance prints them ("0.35130000"):
        // `Scale::to_decimal` keeps the scale, and its Display writes without allocating.
        let (ps, qs, tick_units) = (self.price_scale, self.qty_scale, self.tick_units);
        let px = |ticks: i64| ps.to_decimal(ticks * tick_units);
        let event_ms = self.event_time_ms.unwrap_or(1_700_000_000_000 + self.step);
        // The buffer holds the longest message these formats make: writes cannot fail.
        let _ = match self.phase {
            0 => {
                let r = self.next_random();
                let old = self.mid_ticks;
                let up = match r % 3 {
                    0 if old < self.mid_ticks_max => 1,
                    1 if old > self.mid_ticks_min => -1,
                    _ => 0,
                };
                let new = old + up;
                self.mid_ticks = new;
                let first = self.update_id + 1;
                self.update_id += 2;
                let d = SYNTHETIC_DEPTH_LEVELS;
                let last = d as usize - 1;
                let deep = level_qty(d, self.lot_units);
                let top = level_qty(1, self.lot_units) + (r >> 8) as i64 % 50 * self.lot_units;
                // Moving up: a new best bid at the old mid, the old best ask (the new mid) goes,
                // the deepest bid goes and a new deepest ask comes; down is the mirror image;
                // a step in place changes the best bid's quantity and refills the deepest levels.
                let (bids, asks) = match up {
                    1 => {
                        self.bid_qty.rotate_right(1);
                        self.bid_qty[0] = top;
                        self.ask_qty.rotate_left(1);
                        self.ask_qty[last] = deep;
                        (
                            [(new - 1, top), (new - d - 1, 0)],
                            [(new, 0), (new + d, deep)],
                        )
                    }
                    -1 => {
                        self.bid_qty.rotate_left(1);
                        self.bid_qty[last] = deep;
                        self.ask_qty.rotate_right(1);
                        self.ask_qty[0] = level_qty(1, self.lot_units);
                        (
                            [(new, 0), (new - d, deep)],
                            [(new + 1, self.ask_qty[0]), (new + d + 1, 0)],
                        )
                    }
                    _ => {
                        self.bid_qty[0] = top;
                        self.bid_qty[last] = deep;
                        self.ask_qty[last] = deep;
                        (
                            [(new - 1, top), (new - d, deep)],
                            [(new + 1, self.ask_qty[0]), (new + d, deep)],
                        )
                    }
                };
                let q = |units: i64| qs.to_decimal(units);
                write!(
                    out,
                    r#"{{"stream":"{stream}@depth@100ms","data":{{"e":"depthUpdate","E":{event_ms},"s":"{symbol}","U":{first},"u":{last_id},"b":[["{}","{}"],["{}","{}"]],"a":[["{}","{}"],["{}","{}"]]}}}}"#,
                    px(bids[0].0),
                    q(bids[0].1),
                    px(bids[1].0),
                    q(bids[1].1),
                    px(asks[0].0),
                    q(asks[0].1),
                    px(asks[1].0),
                    q(asks[1].1),
                    last_id = self.update_id,
                )
            }
            1 => {
                let mid = self.mid_ticks;
                write!(
                    out,
                    r#"{{"stream":"{stream}@bookTicker","data":{{"u":{},"s":"{symbol}","b":"{}","B":"{}","a":"{}","A":"{}"}}}}"#,
                    self.update_id,
                    px(mid - 1),
                    qs.to_decimal(self.bid_qty[0]),
                    px(mid + 1),
                    qs.to_decimal(self.ask_qty[0]),
                )
            }
            _ => {
                let r = self.next_random();
                let buyer_is_maker = r & 1 == 1;
                let ticks = if buyer_is_maker {
                    self.mid_ticks - 1
                } else {
                    self.mid_ticks + 1
                };
                self.trade_id += 1;
                write!(
                    out,
                    r#"{{"stream":"{stream}@aggTrade","data":{{"e":"aggTrade","E":{event_ms},"s":"{symbol}","a":{id},"p":"{}","q":"{}","f":{id},"l":{id},"T":{event_ms},"m":{buyer_is_maker},"M":true}}}}"#,
                    px(ticks),
                    qs.to_decimal((1 + (r >> 8) as i64 % 20) * self.lot_units),
                    id = self.trade_id,
                )
            }
        };
        self.len = out.position() as usize;
        self.buffer[..self.len].copy_from_slice(&buffer[..self.len]);
        self.phase = match self.phase {
            0 => 1,
            1 if self.step % 4 == 3 => 2,
            _ => {
                self.step += 1;
                0
            }
        };
    }
}

impl SyntheticSource {
    /// Stamps the next messages with venue time `event_time_ms` (`E`, and `T` of trades), as a
    /// recording does whose receive times are known: a recording's venue times trail its
    /// receive times by the feed's latency.
    pub fn set_event_time_ms(&mut self, event_time_ms: u64) {
        self.event_time_ms = Some(event_time_ms);
    }
}

impl MessageSource for SyntheticSource {
    #[inline]
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.messages_left == 0 {
            return Polled::Done;
        }
        let Some(due_tsc) = self.pacer.next_due(now_tsc) else {
            return Polled::Idle;
        };
        self.messages_left -= 1;
        self.generate();
        Polled::Message {
            bytes: &self.buffer[..self.len],
            due_tsc,
        }
    }
}

/// The quantity first resting `k` ticks from the mid, in quantity units.
fn level_qty(k: i64, lot_units: i64) -> i64 {
    (100 + 10 * k) * lot_units
}
