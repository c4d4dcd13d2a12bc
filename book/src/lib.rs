//! An L2 order book per instrument, kept from a REST snapshot plus depth diffs with Binance's
//! documented procedure.
//!
//! ```text
//!                  diff: buffer                     diff: apply, or drop if stale
//!                    ┌─────┐        snapshot          ┌─────┐
//!                    v     │      (replay ok)         v     │
//!            AwaitingSnapshot ───────────────────> Synced ──┘
//!                    │                              │  ^
//!   snapshot (replay │    gap, lost chunk, crossed, │  │ snapshot
//!      fails), error │    bad snapshot: levels      │  │ (replay ok)
//!                    │    cleared, outcome reported v  │
//!                    └───────────────────────> NeedsResync ──┐
//!                                                     ^      │ diff: buffer
//!                                                     └──────┘
//! ```
//!
//! Sequencing (`U` = `first_update_id`, `u` = `final_update_id`, `L` = the snapshot's
//! `lastUpdateId`):
//!
//! - Before a snapshot, and while the book needs a resync, diffs are buffered.
//! - A snapshot replaces both sides; buffered diffs with `u <= L` are dropped (counted stale);
//!   the first diff applied after it must have `U <= L + 1 <= u`, every later one
//!   `U == previous u + 1`. Anything else is a gap: the book clears its levels, goes to
//!   [`BookState::NeedsResync`] and returns [`BookOutcome::Gap`]; the caller fetches a new
//!   snapshot. The diff that broke the sequence is buffered, since it starts the stream the next
//!   snapshot continues.
//! - A diff with `u <=` the last applied `u` is stale (duplicates included): dropped, counted.
//! - Quantity 0 removes a level; removing a level the book does not hold is a no-op, counted
//!   (Binance says it happens).
//! - Bids and asks never cross after a correct sequence: if an update leaves
//!   `best bid >= best ask`, the book is corrupt: counted, [`BookOutcome::Crossed`], resync.
//!
//! Journal [`DepthDiff`] records carry one update in `chunk_count` chunks with the same ids; the
//! sequence check runs on chunk 0, the crossing check after the last chunk, and a chunk that does
//! not continue the update in progress means a chunk was lost (a gap).
//!
//! No allocation after [`OrderBook::new`]: every buffer is a `Vec` allocated to its limit there,
//! and the book checks the limit before each push or insert (a `Vec` never reallocates below its
//! capacity).

use std::fmt;

use levibot_gateway::binance::{DepthSnapshot, DepthUpdate};
use levibot_shm::records::{DEPTH_LEVELS_PER_RECORD, DepthDiff, Level};

/// Largest value accepted for each [`BookLimits`] field (keeps a typo from allocating gigabytes).
pub const BOOK_LIMIT_MAX: usize = 1 << 24;

/// A book's capacities, fixed at construction. What happens beyond them:
///
/// - `levels_per_side_max`: a side keeps its best `levels_per_side_max` levels. Inserting a
///   level into a full side drops the worst-priced level (or the new one, if it is the worst);
///   a snapshot deeper than the limit loads its best levels. Counted in
///   [`BookStats::levels_dropped_capacity`]. The near-touch book stays exact; far levels may be
///   missing (a later removal of one is then a counted no-op).
/// - `buffered_diffs_max` and `buffered_levels_max`: while it waits for a snapshot, a full
///   buffer drops its oldest whole update to make room (the newest diffs are the ones a fresh
///   snapshot needs; if the dropped one was needed, the replay finds a gap and asks for another
///   snapshot). An update larger than the whole buffer is dropped. Counted in
///   [`BookStats::buffered_dropped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookLimits {
    /// Price levels kept on each side (Binance snapshots go up to 5,000).
    pub levels_per_side_max: usize,
    /// Diff messages (or journal chunks) held while the book waits for a snapshot.
    pub buffered_diffs_max: usize,
    /// Levels held while the book waits for a snapshot, summed over the buffered diffs.
    pub buffered_levels_max: usize,
}

impl BookLimits {
    /// 5,000 levels a side; 1,024 buffered diffs of up to 65,536 levels in all (1 MiB).
    pub const DEFAULT: BookLimits = BookLimits {
        levels_per_side_max: 5000,
        buffered_diffs_max: 1024,
        buffered_levels_max: 1 << 16,
    };

    /// Checks every limit is in `1..=BOOK_LIMIT_MAX`, naming the first one that is not.
    pub fn validate(&self) -> Result<(), BookError> {
        let limits = [
            ("levels_per_side_max", self.levels_per_side_max),
            ("buffered_diffs_max", self.buffered_diffs_max),
            ("buffered_levels_max", self.buffered_levels_max),
        ];
        for (name, value) in limits {
            if !(1..=BOOK_LIMIT_MAX).contains(&value) {
                return Err(BookError::LimitOutOfRange {
                    name,
                    value,
                    min: 1,
                    max: BOOK_LIMIT_MAX,
                });
            }
        }
        Ok(())
    }
}

impl Default for BookLimits {
    fn default() -> Self {
        BookLimits::DEFAULT
    }
}

/// A side of the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// Buy orders: the best is the highest price.
    Bid,
    /// Sell orders: the best is the lowest price.
    Ask,
}

impl fmt::Display for BookSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BookSide::Bid => "bid",
            BookSide::Ask => "ask",
        })
    }
}

/// Errors of the book: bad limits, and input it refuses (the rejected values are in them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// A [`BookLimits`] field is out of range.
    #[error("book limit {name} = {value} is outside {min}..={max}")]
    LimitOutOfRange {
        name: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    /// A snapshot side is not sorted best-first with distinct prices.
    #[error(
        "instrument {instrument_id}, snapshot {last_update_id}: {side} level {index} \
         (px {px}) is not strictly worse than the level before it"
    )]
    SnapshotNotSorted {
        instrument_id: u32,
        last_update_id: u64,
        side: BookSide,
        index: usize,
        px: i64,
    },
    /// A snapshot level has a quantity that is not positive.
    #[error(
        "instrument {instrument_id}, snapshot {last_update_id}: {side} level {index} \
         (px {px}) has quantity {qty}; snapshot levels need a positive quantity"
    )]
    SnapshotBadQuantity {
        instrument_id: u32,
        last_update_id: u64,
        side: BookSide,
        index: usize,
        px: i64,
        qty: i64,
    },
    /// A journal depth chunk whose counts do not fit the record.
    #[error(
        "instrument {instrument_id}, update {final_update_id}: malformed depth chunk \
         {chunk}/{chunk_count} with {bid_count} bids and {ask_count} asks"
    )]
    MalformedChunk {
        instrument_id: u32,
        final_update_id: u64,
        chunk: u16,
        chunk_count: u16,
        bid_count: u16,
        ask_count: u16,
    },
}

/// Where the book is in the sync procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookState {
    /// No snapshot yet: diffs are buffered.
    AwaitingSnapshot,
    /// Snapshot applied and every diff since in sequence: the levels are the venue's book.
    Synced,
    /// A gap, a crossed book or a bad snapshot: the levels were cleared, diffs are buffered, and
    /// the caller must fetch a new snapshot.
    NeedsResync,
}

/// What one call did. After `Gap`, `LostChunk` and `Crossed` the book is in
/// [`BookState::NeedsResync`] and the caller must fetch a snapshot.
#[must_use = "a gap or a crossed book needs a new snapshot"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookOutcome {
    /// The update (or the snapshot and its buffered diffs) was applied; the book is synced.
    Applied,
    /// A chunk of a multi-chunk journal update was applied; the update completes at its last
    /// chunk (do not read the book in between).
    Partial,
    /// Held until a snapshot arrives.
    Buffered,
    /// `u` is not past the last applied update (duplicates included): dropped.
    Stale,
    /// The diff does not continue the sequence: `expected_first` is the `U` it needed
    /// (`last u + 1`; after a snapshot, any `U <= expected_first` would do).
    Gap { expected_first: u64, got_first: u64 },
    /// A journal update lost a chunk: chunk `got_chunk` came where `expected_chunk` was due.
    LostChunk {
        final_update_id: u64,
        expected_chunk: u16,
        got_chunk: u16,
    },
    /// The update left `best bid >= best ask`: the book was corrupt.
    Crossed { bid_px: i64, ask_px: i64 },
    /// A chunk of an update that was already given up (lost chunk, or too large to buffer):
    /// dropped.
    Discarded,
}

/// Counts kept by a book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BookStats {
    /// Snapshots loaded (valid ones, crossed included).
    pub snapshots: u64,
    /// Updates applied in sequence (live or replayed from the buffer).
    pub updates_applied: u64,
    /// Updates buffered while waiting for a snapshot.
    pub updates_buffered: u64,
    /// Stale updates dropped (`u <=` the last applied `u`), buffered ones older than a snapshot
    /// included.
    pub updates_stale: u64,
    /// Sequence gaps, lost chunks included.
    pub gaps: u64,
    /// Updates that left the book crossed (and crossed snapshots).
    pub crossed: u64,
    /// Times the book went to [`BookState::NeedsResync`].
    pub resyncs: u64,
    /// Quantity-0 levels for prices the book did not hold (no-ops).
    pub removes_missing: u64,
    /// Levels dropped because a side was full (see [`BookLimits`]).
    pub levels_dropped_capacity: u64,
    /// Buffered updates dropped: buffer full, too large, or left incomplete by a lost chunk.
    pub buffered_dropped: u64,
    /// Chunks dropped because their update was already given up.
    pub chunks_discarded: u64,
}

/// One side's levels, sorted worst to best: the best price is at the END (bids ascending, asks
/// descending). Most updates land near the touch, and inserting or removing at index `i` moves
/// the `len - i` levels after it, so near the end that is a handful of levels, not the side.
/// `BID` picks the order at compile time.
struct SideBook<const BID: bool> {
    /// Capacity `len_max`, allocated once.
    levels: Vec<Level>,
    len_max: usize,
}

/// What setting one level did to a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetEffect {
    Inserted,
    Updated,
    Removed,
    RemovedMissing,
    /// Inserted into a full side: the worst level (or the new one, if it was the worst) dropped.
    DroppedFar,
}

impl<const BID: bool> SideBook<BID> {
    fn new(len_max: usize) -> Self {
        SideBook {
            levels: Vec::with_capacity(len_max),
            len_max,
        }
    }

    /// `a` is a worse price than `b` on this side.
    #[inline]
    fn worse(a: i64, b: i64) -> bool {
        if BID { a < b } else { a > b }
    }

    fn side() -> BookSide {
        if BID { BookSide::Bid } else { BookSide::Ask }
    }

    /// `Ok(index)` of `px`, or `Err(index)` where it would be inserted. Gallops from the best end
    /// before the binary search, so a price `d` levels from the touch costs O(log d).
    #[inline]
    fn search(&self, px: i64) -> Result<usize, usize> {
        let levels = &self.levels[..];
        // levels[hi..] are all at least as good as px.
        let mut hi = levels.len();
        let mut step = 1;
        let lo = loop {
            if step > hi {
                break 0;
            }
            let i = hi - step;
            if Self::worse(levels[i].px, px) {
                break i + 1;
            }
            hi = i;
            step *= 2;
        };
        let at = lo + levels[lo..hi].partition_point(|l| Self::worse(l.px, px));
        if at < levels.len() && levels[at].px == px {
            Ok(at)
        } else {
            Err(at)
        }
    }

    /// Sets one level from a diff: quantity 0 removes it (the decoder never produces a negative
    /// quantity; one would remove the level too).
    #[inline]
    fn set(&mut self, level: Level) -> SetEffect {
        match self.search(level.px) {
            Ok(at) if level.qty > 0 => {
                self.levels[at].qty = level.qty;
                SetEffect::Updated
            }
            Ok(at) => {
                self.levels.remove(at);
                SetEffect::Removed
            }
            Err(_) if level.qty <= 0 => SetEffect::RemovedMissing,
            Err(at) if self.levels.len() < self.len_max => {
                // Below capacity: no reallocation.
                self.levels.insert(at, level);
                SetEffect::Inserted
            }
            Err(0) => SetEffect::DroppedFar,
            Err(at) => {
                // Full: the worst level (index 0) makes room; only the levels below `at` move.
                self.levels.copy_within(1..at, 0);
                self.levels[at - 1] = level;
                SetEffect::DroppedFar
            }
        }
    }

    fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Replaces the side with a snapshot side given best-first (already checked); keeps the
    /// best `len_max` levels and returns how many it dropped.
    fn load_best_first(&mut self, best_first: &[Level]) -> usize {
        let kept = best_first.len().min(self.len_max);
        self.levels.clear();
        self.levels.extend(best_first[..kept].iter().rev().copied());
        best_first.len() - kept
    }

    /// Checks a snapshot side: strictly worse prices after the first, positive quantities.
    fn check_best_first(
        best_first: &[Level],
        instrument_id: u32,
        last_update_id: u64,
    ) -> Result<(), BookError> {
        for (index, level) in best_first.iter().enumerate() {
            if level.qty <= 0 {
                return Err(BookError::SnapshotBadQuantity {
                    instrument_id,
                    last_update_id,
                    side: Self::side(),
                    index,
                    px: level.px,
                    qty: level.qty,
                });
            }
            if index > 0 && !Self::worse(level.px, best_first[index - 1].px) {
                return Err(BookError::SnapshotNotSorted {
                    instrument_id,
                    last_update_id,
                    side: Self::side(),
                    index,
                    px: level.px,
                });
            }
        }
        Ok(())
    }
}

/// One update or one journal chunk of an update, the unit the sequencer works on.
#[derive(Clone, Copy, Debug)]
struct Chunk<'a> {
    first_update_id: u64,
    final_update_id: u64,
    chunk: u16,
    chunk_count: u16,
    bids: &'a [Level],
    asks: &'a [Level],
}

impl Chunk<'_> {
    fn is_last(&self) -> bool {
        self.chunk + 1 >= self.chunk_count
    }
}

/// What happens to the remaining chunks of a multi-chunk update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkMode {
    /// Chunk 0 passed the sequence check: apply the rest.
    Apply,
    /// Chunk 0 was buffered: buffer the rest.
    Buffer,
    /// Chunk 0 was dropped: drop the rest with the same outcome.
    Skip(BookOutcome),
}

/// The multi-chunk update in progress.
#[derive(Clone, Copy, Debug)]
struct ChunkCursor {
    first_update_id: u64,
    final_update_id: u64,
    next_chunk: u16,
    chunk_count: u16,
    mode: ChunkMode,
}

impl ChunkCursor {
    /// The cursor after `c` was handled with `mode`: `None` once the update is complete.
    fn after(c: &Chunk<'_>, mode: ChunkMode) -> Option<ChunkCursor> {
        (!c.is_last()).then_some(ChunkCursor {
            first_update_id: c.first_update_id,
            final_update_id: c.final_update_id,
            next_chunk: c.chunk + 1,
            chunk_count: c.chunk_count,
            mode,
        })
    }

    fn continues(&self, c: &Chunk<'_>) -> bool {
        c.chunk == self.next_chunk
            && c.chunk_count == self.chunk_count
            && c.first_update_id == self.first_update_id
            && c.final_update_id == self.final_update_id
    }
}

/// The levels and the sequencing state: everything but the diff buffer, so that a replay can
/// read the buffer while it changes the book.
struct Core {
    instrument_id: u32,
    state: BookState,
    bids: SideBook<true>,
    asks: SideBook<false>,
    /// `u` of the last applied update (or the snapshot's `lastUpdateId`); valid when synced.
    last_update_id: u64,
    /// The next update is the first since the snapshot: `U <= L + 1` instead of `U == L + 1`.
    first_after_snapshot: bool,
    cursor: Option<ChunkCursor>,
    stats: BookStats,
}

impl Core {
    /// One chunk while synced: sequence check, apply, crossing check. Never buffers.
    fn step_synced(&mut self, c: &Chunk<'_>) -> BookOutcome {
        debug_assert_eq!(self.state, BookState::Synced);
        if c.chunk == 0 {
            if let Some(cur) = self.cursor.take()
                && cur.mode == ChunkMode::Apply
            {
                // The update in progress lost its last chunks: the book holds half of it.
                return self.lost_chunk(cur.final_update_id, cur.next_chunk, 0);
            }
            if c.final_update_id <= self.last_update_id {
                self.stats.updates_stale += 1;
                self.cursor = ChunkCursor::after(c, ChunkMode::Skip(BookOutcome::Stale));
                return BookOutcome::Stale;
            }
            // Here u >= last + 1, so the first-after-snapshot rule U <= L + 1 <= u needs only U.
            let expected_first = self.last_update_id + 1;
            let in_sequence = if self.first_after_snapshot {
                c.first_update_id <= expected_first
            } else {
                c.first_update_id == expected_first
            };
            if !in_sequence {
                self.stats.gaps += 1;
                self.enter_resync();
                return BookOutcome::Gap {
                    expected_first,
                    got_first: c.first_update_id,
                };
            }
            self.first_after_snapshot = false;
        } else {
            match self.cursor {
                Some(cur) if cur.continues(c) => match cur.mode {
                    ChunkMode::Apply => {}
                    ChunkMode::Skip(outcome) => {
                        self.cursor = ChunkCursor::after(c, cur.mode);
                        return outcome;
                    }
                    // Buffering ends with the snapshot, which resets the cursor.
                    ChunkMode::Buffer => unreachable!("buffering cursor while synced"),
                },
                Some(cur) if cur.mode == ChunkMode::Apply => {
                    return self.lost_chunk(cur.final_update_id, cur.next_chunk, c.chunk);
                }
                _ => {
                    self.cursor = None;
                    if c.final_update_id <= self.last_update_id {
                        // A late chunk of an update already applied or dropped.
                        return BookOutcome::Stale;
                    }
                    // A newer update whose chunk 0 never came.
                    return self.lost_chunk(c.final_update_id, 0, c.chunk);
                }
            }
        }
        self.apply_levels(c.bids, c.asks);
        if !c.is_last() {
            self.cursor = ChunkCursor::after(c, ChunkMode::Apply);
            return BookOutcome::Partial;
        }
        self.cursor = None;
        self.finish(c.final_update_id)
    }

    #[inline]
    fn apply_levels(&mut self, bids: &[Level], asks: &[Level]) {
        for &level in bids {
            let effect = self.bids.set(level);
            self.count(effect);
        }
        for &level in asks {
            let effect = self.asks.set(level);
            self.count(effect);
        }
    }

    #[inline]
    fn count(&mut self, effect: SetEffect) {
        match effect {
            SetEffect::Inserted | SetEffect::Updated | SetEffect::Removed => {}
            SetEffect::RemovedMissing => self.stats.removes_missing += 1,
            SetEffect::DroppedFar => self.stats.levels_dropped_capacity += 1,
        }
    }

    /// The update is complete: advance the sequence, then the crossing check (only now, since
    /// chunks of one update may cross each other transiently).
    fn finish(&mut self, final_update_id: u64) -> BookOutcome {
        self.last_update_id = final_update_id;
        if let Some(outcome) = self.check_crossed() {
            return outcome;
        }
        self.stats.updates_applied += 1;
        BookOutcome::Applied
    }

    fn check_crossed(&mut self) -> Option<BookOutcome> {
        let (bid, ask) = (self.bids.best()?, self.asks.best()?);
        if bid.px < ask.px {
            return None;
        }
        self.stats.crossed += 1;
        self.enter_resync();
        Some(BookOutcome::Crossed {
            bid_px: bid.px,
            ask_px: ask.px,
        })
    }

    fn lost_chunk(
        &mut self,
        final_update_id: u64,
        expected_chunk: u16,
        got_chunk: u16,
    ) -> BookOutcome {
        self.stats.gaps += 1;
        self.enter_resync();
        BookOutcome::LostChunk {
            final_update_id,
            expected_chunk,
            got_chunk,
        }
    }

    /// Clears the levels (stale prices must not reach a strategy) and waits for a snapshot.
    fn enter_resync(&mut self) {
        self.state = BookState::NeedsResync;
        self.bids.levels.clear();
        self.asks.levels.clear();
        self.cursor = None;
        self.first_after_snapshot = false;
        self.stats.resyncs += 1;
    }
}

/// One buffered chunk; its levels are `bid_count` bids then `ask_count` asks from
/// `levels_start` in the buffer's level pool.
#[derive(Clone, Copy, Debug)]
struct BufferedChunk {
    first_update_id: u64,
    final_update_id: u64,
    levels_start: usize,
    bid_count: usize,
    ask_count: usize,
    chunk: u16,
    chunk_count: u16,
}

/// Diffs held while the book waits for a snapshot: chunk headers plus one level pool, in arrival
/// order, always starting at an update's chunk 0. Only touched while the book is not synced.
struct DiffBuffer {
    /// Capacity `diffs_max`.
    entries: Vec<BufferedChunk>,
    /// Capacity `levels_max`.
    levels: Vec<Level>,
    diffs_max: usize,
    levels_max: usize,
}

/// What [`DiffBuffer::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pushed {
    /// Buffered, after dropping this many of the oldest updates.
    Yes { updates_dropped: u64 },
    /// The chunk's update does not fit in the whole buffer: not buffered (its earlier chunks
    /// were dropped too), after dropping this many older updates.
    TooLarge { updates_dropped: u64 },
}

impl DiffBuffer {
    fn new(diffs_max: usize, levels_max: usize) -> Self {
        DiffBuffer {
            entries: Vec::with_capacity(diffs_max),
            levels: Vec::with_capacity(levels_max),
            diffs_max,
            levels_max,
        }
    }

    fn chunk(&self, e: &BufferedChunk) -> Chunk<'_> {
        let bids_end = e.levels_start + e.bid_count;
        Chunk {
            first_update_id: e.first_update_id,
            final_update_id: e.final_update_id,
            chunk: e.chunk,
            chunk_count: e.chunk_count,
            bids: &self.levels[e.levels_start..bids_end],
            asks: &self.levels[bids_end..bids_end + e.ask_count],
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.levels.clear();
    }

    /// Buffers a chunk, dropping the oldest updates while it does not fit.
    fn push(&mut self, c: &Chunk<'_>) -> Pushed {
        let need = c.bids.len() + c.asks.len();
        let mut updates_dropped = 0;
        if need > self.levels_max {
            self.pop_partial_update(c);
            return Pushed::TooLarge { updates_dropped };
        }
        while self.entries.len() == self.diffs_max || self.levels.len() + need > self.levels_max {
            // The oldest update: its chunk 0 is entry 0, it ends before the next chunk 0.
            let end = self.entries[1..]
                .iter()
                .position(|e| e.chunk == 0)
                .map_or(self.entries.len(), |p| p + 1);
            if end == self.entries.len() && c.chunk > 0 {
                // The oldest update is this chunk's own: it cannot fit.
                self.clear();
                return Pushed::TooLarge { updates_dropped };
            }
            self.drop_front(end);
            updates_dropped += 1;
        }
        self.entries.push(BufferedChunk {
            first_update_id: c.first_update_id,
            final_update_id: c.final_update_id,
            levels_start: self.levels.len(),
            bid_count: c.bids.len(),
            ask_count: c.asks.len(),
            chunk: c.chunk,
            chunk_count: c.chunk_count,
        });
        // Within capacity (checked above): no reallocation.
        self.levels.extend_from_slice(c.bids);
        self.levels.extend_from_slice(c.asks);
        Pushed::Yes { updates_dropped }
    }

    /// Removes the first `count` entries and their levels (memmoves; no allocation).
    fn drop_front(&mut self, count: usize) {
        let offset = self
            .entries
            .get(count)
            .map_or(self.levels.len(), |e| e.levels_start);
        self.entries.drain(..count);
        self.levels.copy_within(offset.., 0);
        self.levels.truncate(self.levels.len() - offset);
        for e in &mut self.entries {
            e.levels_start -= offset;
        }
    }

    /// Removes the trailing incomplete update that `c` (a chunk > 0) belonged to, if buffered.
    fn pop_partial_update(&mut self, c: &Chunk<'_>) {
        if c.chunk == 0 {
            return;
        }
        self.pop_last_update();
    }

    /// Removes the last update (from its chunk 0 on).
    fn pop_last_update(&mut self) {
        let start = self.entries.iter().rposition(|e| e.chunk == 0).unwrap_or(0);
        let levels_start = self
            .entries
            .get(start)
            .map_or(self.levels.len(), |e| e.levels_start);
        self.entries.truncate(start);
        self.levels.truncate(levels_start);
    }
}

/// An L2 order book for one instrument (see the module doc for the procedure).
///
/// Usage: feed every depth diff to [`apply_update`](OrderBook::apply_update) (or journal chunks
/// to [`apply_diff_chunk`](OrderBook::apply_diff_chunk)) from the moment the stream opens; when
/// [`state`](OrderBook::state) is not [`BookState::Synced`], fetch a REST snapshot and pass it to
/// [`apply_snapshot`](OrderBook::apply_snapshot), which replays the buffered diffs. Read the
/// levels only while synced (they are cleared when the book needs a resync).
pub struct OrderBook {
    core: Core,
    buffer: DiffBuffer,
    limits: BookLimits,
}

impl OrderBook {
    /// An empty book awaiting its snapshot, with every buffer allocated to `limits`.
    pub fn new(instrument_id: u32, limits: BookLimits) -> Result<OrderBook, BookError> {
        limits.validate()?;
        Ok(OrderBook {
            core: Core {
                instrument_id,
                state: BookState::AwaitingSnapshot,
                bids: SideBook::new(limits.levels_per_side_max),
                asks: SideBook::new(limits.levels_per_side_max),
                last_update_id: 0,
                first_after_snapshot: false,
                cursor: None,
                stats: BookStats::default(),
            },
            buffer: DiffBuffer::new(limits.buffered_diffs_max, limits.buffered_levels_max),
            limits,
        })
    }

    /// The instrument this book is for.
    pub fn instrument_id(&self) -> u32 {
        self.core.instrument_id
    }

    /// The limits it was built with.
    pub fn limits(&self) -> BookLimits {
        self.limits
    }

    /// Where the book is in the sync procedure.
    pub fn state(&self) -> BookState {
        self.core.state
    }

    /// `u` of the last applied update (or the snapshot's `lastUpdateId` before any), while
    /// synced.
    pub fn last_update_id(&self) -> Option<u64> {
        (self.core.state == BookState::Synced).then_some(self.core.last_update_id)
    }

    /// The book's counters.
    pub fn stats(&self) -> &BookStats {
        &self.core.stats
    }

    /// Chunks held in the buffer (diff messages count one each).
    pub fn buffered_diffs(&self) -> usize {
        self.buffer.entries.len()
    }

    /// The highest bid (`None` if that side is empty, or not synced).
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.core.bids.best()
    }

    /// The lowest ask (`None` if that side is empty, or not synced).
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.core.asks.best()
    }

    /// Bids, best (highest) first.
    pub fn bids(&self) -> impl ExactSizeIterator<Item = Level> + DoubleEndedIterator + '_ {
        self.core.bids.levels.iter().rev().copied()
    }

    /// Asks, best (lowest) first.
    pub fn asks(&self) -> impl ExactSizeIterator<Item = Level> + DoubleEndedIterator + '_ {
        self.core.asks.levels.iter().rev().copied()
    }

    /// Applies (or buffers, or drops) one depth diff message.
    ///
    /// # Panics
    ///
    /// If the update is for another instrument (a routing bug).
    pub fn apply_update(&mut self, update: &DepthUpdate<'_>) -> BookOutcome {
        assert_eq!(
            update.instrument_id, self.core.instrument_id,
            "depth update routed to the wrong book"
        );
        self.on_chunk(&Chunk {
            first_update_id: update.first_update_id,
            final_update_id: update.final_update_id,
            chunk: 0,
            chunk_count: 1,
            bids: update.bids,
            asks: update.asks,
        })
    }

    /// Applies (or buffers, or drops) one journal chunk of a depth update: the sequence check
    /// runs on chunk 0, the crossing check after the last one. An error means the record's counts
    /// are inconsistent; it is not applied (the chunks after it then count as lost).
    ///
    /// # Panics
    ///
    /// If the chunk is for another instrument (a routing bug).
    pub fn apply_diff_chunk(&mut self, diff: &DepthDiff) -> Result<BookOutcome, BookError> {
        assert_eq!(
            diff.instrument_id, self.core.instrument_id,
            "depth chunk routed to the wrong book"
        );
        let levels = diff.bid_count as usize + diff.ask_count as usize;
        if levels > DEPTH_LEVELS_PER_RECORD || diff.chunk >= diff.chunk_count {
            return Err(BookError::MalformedChunk {
                instrument_id: diff.instrument_id,
                final_update_id: diff.final_update_id,
                chunk: diff.chunk,
                chunk_count: diff.chunk_count,
                bid_count: diff.bid_count,
                ask_count: diff.ask_count,
            });
        }
        Ok(self.on_chunk(&Chunk {
            first_update_id: diff.first_update_id,
            final_update_id: diff.final_update_id,
            chunk: diff.chunk,
            chunk_count: diff.chunk_count,
            bids: diff.bids(),
            asks: diff.asks(),
        }))
    }

    /// Replaces the book with a snapshot, then replays the buffered diffs (dropping those with
    /// `u <= lastUpdateId`). Returns `Applied` (or `Partial`, if the last buffered update is a
    /// multi-chunk one still arriving) when the book is synced; `Gap` when the snapshot is older
    /// than the first buffered diff it needs (or the buffer has a hole): fetch a newer one;
    /// `Crossed` for a crossed snapshot or replay. Also accepted while synced (a forced resync).
    ///
    /// Errors: a snapshot side not sorted best-first or with a non-positive quantity; the book
    /// then needs a resync (the buffer is kept).
    ///
    /// # Panics
    ///
    /// If the snapshot is for another instrument (a routing bug).
    pub fn apply_snapshot(
        &mut self,
        snapshot: &DepthSnapshot<'_>,
    ) -> Result<BookOutcome, BookError> {
        let core = &mut self.core;
        assert_eq!(
            snapshot.instrument_id, core.instrument_id,
            "snapshot routed to the wrong book"
        );
        let (id, last) = (core.instrument_id, snapshot.last_update_id);
        let checked = SideBook::<true>::check_best_first(snapshot.bids, id, last)
            .and_then(|()| SideBook::<false>::check_best_first(snapshot.asks, id, last));
        if let Err(error) = checked {
            core.enter_resync();
            self.resume_buffering();
            return Err(error);
        }
        core.stats.snapshots += 1;
        let dropped =
            core.bids.load_best_first(snapshot.bids) + core.asks.load_best_first(snapshot.asks);
        core.stats.levels_dropped_capacity += dropped as u64;
        core.state = BookState::Synced;
        core.last_update_id = snapshot.last_update_id;
        core.first_after_snapshot = true;
        core.cursor = None;
        if let Some(crossed) = core.check_crossed() {
            self.resume_buffering();
            return Ok(crossed);
        }

        // Replay. Buffered diffs with u <= L come out Stale.
        let mut keep_from = self.buffer.entries.len();
        let mut outcome = BookOutcome::Applied;
        for (i, entry) in self.buffer.entries.iter().enumerate() {
            match core.step_synced(&self.buffer.chunk(entry)) {
                // The diff that broke the sequence starts what the next snapshot continues.
                o @ (BookOutcome::Gap { .. } | BookOutcome::LostChunk { .. }) => {
                    (keep_from, outcome) = (i, o);
                    break;
                }
                o @ BookOutcome::Crossed { .. } => {
                    (keep_from, outcome) = (i + 1, o);
                    break;
                }
                BookOutcome::Applied
                | BookOutcome::Partial
                | BookOutcome::Stale
                | BookOutcome::Buffered
                | BookOutcome::Discarded => {}
            }
        }
        self.buffer.drop_front(keep_from);
        // The replay stops only at a chunk 0 (a gap, or a lost chunk shown by the next update's
        // chunk 0) or after an update's last chunk (crossed), so what is left starts with a
        // whole update. (Were it not so, the next replay would meet the stray chunk without its
        // chunk 0 and resync: safe, only slower.)
        debug_assert!(
            self.buffer.entries.first().is_none_or(|e| e.chunk == 0),
            "the buffer left after a replay starts mid-update"
        );
        self.resume_buffering();
        if outcome == BookOutcome::Applied
            && matches!(
                self.core.cursor,
                Some(ChunkCursor {
                    mode: ChunkMode::Apply,
                    ..
                })
            )
        {
            outcome = BookOutcome::Partial;
        }
        Ok(outcome)
    }

    /// Forces [`BookState::NeedsResync`] (for instance when the caller knows the stream lost
    /// messages): the levels are cleared, buffered diffs kept.
    pub fn mark_needs_resync(&mut self) {
        if self.core.state == BookState::Synced {
            self.core.enter_resync();
        } else {
            self.core.state = BookState::NeedsResync;
        }
    }

    /// After a snapshot that did not sync the book: if the buffer ends with a multi-chunk update
    /// still arriving, its next chunks go to the buffer too.
    fn resume_buffering(&mut self) {
        if self.core.state == BookState::Synced {
            return;
        }
        self.core.cursor = self
            .buffer
            .entries
            .last()
            .and_then(|e| ChunkCursor::after(&self.buffer.chunk(e), ChunkMode::Buffer));
    }

    fn on_chunk(&mut self, c: &Chunk<'_>) -> BookOutcome {
        if self.core.state != BookState::Synced {
            return self.buffer_chunk(c);
        }
        let outcome = self.core.step_synced(c);
        if self.core.state != BookState::Synced
            && c.chunk == 0
            && !matches!(outcome, BookOutcome::Crossed { .. })
        {
            // The diff that broke the sequence starts the stream the next snapshot continues.
            let _ = self.buffer_chunk(c);
        }
        outcome
    }

    /// One chunk while not synced: into the buffer, keeping whole updates only.
    fn buffer_chunk(&mut self, c: &Chunk<'_>) -> BookOutcome {
        let core = &mut self.core;
        if c.chunk == 0 {
            if let Some(cur) = core.cursor.take()
                && cur.mode == ChunkMode::Buffer
            {
                // The previous update never completed.
                self.buffer.pop_last_update();
                core.stats.buffered_dropped += 1;
            }
        } else {
            match core.cursor {
                // (An applying cursor cannot outlive the synced state: enter_resync resets it.)
                Some(cur) if cur.continues(c) && cur.mode != ChunkMode::Apply => {
                    if let ChunkMode::Skip(outcome) = cur.mode {
                        core.cursor = ChunkCursor::after(c, cur.mode);
                        return outcome;
                    }
                }
                cursor => {
                    // A chunk whose update is not in progress: lost chunks.
                    if let Some(ChunkCursor {
                        mode: ChunkMode::Buffer,
                        ..
                    }) = cursor
                    {
                        self.buffer.pop_last_update();
                        core.stats.buffered_dropped += 1;
                    }
                    core.cursor = None;
                    core.stats.chunks_discarded += 1;
                    return BookOutcome::Discarded;
                }
            }
        }
        match self.buffer.push(c) {
            Pushed::Yes { updates_dropped } => {
                core.stats.buffered_dropped += updates_dropped;
                if c.chunk == 0 {
                    core.stats.updates_buffered += 1;
                }
                core.cursor = ChunkCursor::after(c, ChunkMode::Buffer);
                BookOutcome::Buffered
            }
            Pushed::TooLarge { updates_dropped } => {
                core.stats.buffered_dropped += updates_dropped + 1;
                core.stats.chunks_discarded += 1;
                core.cursor = ChunkCursor::after(c, ChunkMode::Skip(BookOutcome::Discarded));
                BookOutcome::Discarded
            }
        }
    }
}

impl fmt::Debug for OrderBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderBook")
            .field("instrument_id", &self.core.instrument_id)
            .field("state", &self.core.state)
            .field("last_update_id", &self.core.last_update_id)
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("bid_levels", &self.core.bids.levels.len())
            .field("ask_levels", &self.core.asks.levels.len())
            .field("buffered_diffs", &self.buffer.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod edge_tests;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(super) const ID: u32 = 7;

    pub(super) fn lv(px: i64, qty: i64) -> Level {
        Level { px, qty }
    }

    fn book() -> OrderBook {
        OrderBook::new(ID, BookLimits::DEFAULT).unwrap()
    }

    fn update<'a>(first: u64, last: u64, bids: &'a [Level], asks: &'a [Level]) -> DepthUpdate<'a> {
        DepthUpdate {
            instrument_id: ID,
            recv_tsc: 0,
            event_time_ms: 0,
            first_update_id: first,
            final_update_id: last,
            bids,
            asks,
        }
    }

    fn apply(
        book: &mut OrderBook,
        first: u64,
        last: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> BookOutcome {
        book.apply_update(&update(first, last, bids, asks))
    }

    pub(super) fn snapshot(
        book: &mut OrderBook,
        last_update_id: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> Result<BookOutcome, BookError> {
        book.apply_snapshot(&DepthSnapshot {
            instrument_id: ID,
            last_update_id,
            bids,
            asks,
        })
    }

    fn sides(book: &OrderBook) -> (Vec<Level>, Vec<Level>) {
        (book.bids().collect(), book.asks().collect())
    }

    /// A book synced at update 10: bids 100x5, 99x3; asks 101x4, 102x6.
    pub(super) fn synced() -> OrderBook {
        let mut b = book();
        let outcome = snapshot(
            &mut b,
            10,
            &[lv(100, 5), lv(99, 3)],
            &[lv(101, 4), lv(102, 6)],
        );
        assert_eq!(outcome, Ok(BookOutcome::Applied));
        b
    }

    /// The update split into journal chunks of `DEPTH_LEVELS_PER_RECORD` levels.
    pub(super) fn chunks_of(
        first: u64,
        last: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> Vec<DepthDiff> {
        let all: Vec<(bool, Level)> = bids
            .iter()
            .map(|&l| (true, l))
            .chain(asks.iter().map(|&l| (false, l)))
            .collect();
        let groups: Vec<&[(bool, Level)]> = if all.is_empty() {
            vec![&[]]
        } else {
            all.chunks(DEPTH_LEVELS_PER_RECORD).collect()
        };
        let chunk_count = groups.len() as u16;
        groups
            .iter()
            .enumerate()
            .map(|(i, group)| {
                let mut d = DepthDiff {
                    recv_tsc: 0,
                    event_time_ms: 0,
                    first_update_id: first,
                    final_update_id: last,
                    instrument_id: ID,
                    bid_count: group.iter().filter(|(bid, _)| *bid).count() as u16,
                    ask_count: group.iter().filter(|(bid, _)| !*bid).count() as u16,
                    chunk: i as u16,
                    chunk_count,
                    reserved: 0,
                    levels: [Level::default(); DEPTH_LEVELS_PER_RECORD],
                };
                for (slot, (_, level)) in d.levels.iter_mut().zip(group.iter()) {
                    *slot = *level;
                }
                d
            })
            .collect()
    }

    #[test]
    fn limits_are_validated_by_name() {
        let limits = BookLimits {
            buffered_diffs_max: 0,
            ..BookLimits::DEFAULT
        };
        let error = OrderBook::new(ID, limits).unwrap_err();
        assert_eq!(
            error,
            BookError::LimitOutOfRange {
                name: "buffered_diffs_max",
                value: 0,
                min: 1,
                max: BOOK_LIMIT_MAX
            }
        );
        assert!(error.to_string().contains("buffered_diffs_max"), "{error}");
        let limits = BookLimits {
            levels_per_side_max: BOOK_LIMIT_MAX + 1,
            ..BookLimits::DEFAULT
        };
        assert!(matches!(
            OrderBook::new(ID, limits),
            Err(BookError::LimitOutOfRange {
                name: "levels_per_side_max",
                ..
            })
        ));
    }

    #[test]
    fn diffs_before_the_snapshot_are_buffered_then_replayed() {
        let mut b = book();
        assert_eq!(b.state(), BookState::AwaitingSnapshot);
        assert_eq!(
            apply(&mut b, 5, 6, &[lv(90, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 7, 9, &[lv(100, 0), lv(98, 2)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 10, 10, &[], &[lv(101, 9)]),
            BookOutcome::Buffered
        );
        assert_eq!(b.buffered_diffs(), 3);
        assert_eq!((b.best_bid(), b.last_update_id()), (None, None));

        // L = 7: (5, 6) is older; (7, 9) holds L + 1 = 8; then (10, 10).
        let outcome = snapshot(
            &mut b,
            7,
            &[lv(100, 5), lv(99, 3)],
            &[lv(101, 4), lv(102, 6)],
        );
        assert_eq!(outcome, Ok(BookOutcome::Applied));
        assert_eq!(b.state(), BookState::Synced);
        assert_eq!(b.last_update_id(), Some(10));
        assert_eq!(b.buffered_diffs(), 0);
        assert_eq!(
            sides(&b),
            (vec![lv(99, 3), lv(98, 2)], vec![lv(101, 9), lv(102, 6)])
        );
        let s = b.stats();
        assert_eq!(
            (
                s.snapshots,
                s.updates_buffered,
                s.updates_stale,
                s.updates_applied
            ),
            (1, 3, 1, 2)
        );
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(97, 1)], &[]),
            BookOutcome::Applied
        );
        assert_eq!(b.last_update_id(), Some(11));
    }

    #[test]
    fn a_snapshot_older_than_the_first_diff_is_a_gap() {
        let mut b = book();
        assert_eq!(
            apply(&mut b, 20, 22, &[lv(100, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 23, 30, &[lv(100, 2)], &[]),
            BookOutcome::Buffered
        );
        // Snapshot at 10: update 11 is nowhere.
        let outcome = snapshot(&mut b, 10, &[lv(99, 1)], &[lv(101, 1)]);
        assert_eq!(
            outcome,
            Ok(BookOutcome::Gap {
                expected_first: 11,
                got_first: 20
            })
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!((b.best_bid(), b.best_ask()), (None, None));
        assert_eq!(
            b.buffered_diffs(),
            2,
            "the buffer waits for a newer snapshot"
        );
        assert_eq!((b.stats().gaps, b.stats().resyncs), (1, 1));
        assert_eq!(
            apply(&mut b, 31, 31, &[], &[lv(105, 1)]),
            BookOutcome::Buffered
        );

        // A newer snapshot, at 25: (20, 22) is older, (23, 30) holds 26.
        let outcome = snapshot(&mut b, 25, &[lv(99, 1)], &[lv(101, 1)]);
        assert_eq!(outcome, Ok(BookOutcome::Applied));
        assert_eq!(b.last_update_id(), Some(31));
        assert_eq!(
            sides(&b),
            (vec![lv(100, 2), lv(99, 1)], vec![lv(101, 1), lv(105, 1)])
        );
    }

    #[test]
    fn the_first_diff_after_a_snapshot_must_hold_l_plus_1() {
        // Buffer empty: the rule applies to the next live diff.
        let mut b = synced();
        assert_eq!(apply(&mut b, 5, 10, &[lv(100, 1)], &[]), BookOutcome::Stale);
        assert_eq!(
            apply(&mut b, 9, 12, &[lv(100, 1)], &[]),
            BookOutcome::Applied
        );
        assert_eq!(b.best_bid(), Some(lv(100, 1)));
        // From now on U must be exactly u + 1.
        assert_eq!(
            apply(&mut b, 12, 14, &[], &[]),
            BookOutcome::Gap {
                expected_first: 13,
                got_first: 12
            }
        );

        let mut b = synced();
        assert_eq!(
            apply(&mut b, 12, 14, &[], &[]),
            BookOutcome::Gap {
                expected_first: 11,
                got_first: 12
            }
        );
        // U == L + 1 exactly is fine.
        let mut b = synced();
        assert_eq!(apply(&mut b, 11, 11, &[], &[]), BookOutcome::Applied);
    }

    #[test]
    fn duplicate_and_stale_diffs_are_dropped_and_counted() {
        let mut b = synced();
        assert_eq!(
            apply(&mut b, 11, 12, &[lv(100, 8)], &[]),
            BookOutcome::Applied
        );
        let before = sides(&b);
        assert_eq!(
            apply(&mut b, 11, 12, &[lv(100, 1)], &[]),
            BookOutcome::Stale
        );
        assert_eq!(apply(&mut b, 3, 9, &[lv(100, 2)], &[]), BookOutcome::Stale);
        assert_eq!(
            apply(&mut b, 12, 12, &[lv(100, 3)], &[]),
            BookOutcome::Stale
        );
        assert_eq!(sides(&b), before);
        assert_eq!(b.last_update_id(), Some(12));
        assert_eq!((b.stats().updates_stale, b.stats().gaps), (3, 0));
        assert_eq!(b.state(), BookState::Synced);
    }

    #[test]
    fn a_gap_mid_stream_asks_for_a_resync_and_keeps_buffering() {
        let mut b = synced();
        assert_eq!(
            apply(&mut b, 11, 12, &[lv(100, 8)], &[]),
            BookOutcome::Applied
        );
        assert_eq!(
            apply(&mut b, 14, 15, &[lv(100, 1)], &[]),
            BookOutcome::Gap {
                expected_first: 13,
                got_first: 14
            }
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!(
            (b.best_bid(), b.best_ask(), b.last_update_id()),
            (None, None, None)
        );
        assert_eq!(
            b.buffered_diffs(),
            1,
            "the diff that broke the sequence is kept"
        );
        assert_eq!(
            apply(&mut b, 16, 17, &[lv(96, 2)], &[]),
            BookOutcome::Buffered
        );
        // Snapshot at 13: (14, 15) holds 14, then (16, 17).
        let outcome = snapshot(&mut b, 13, &[lv(100, 5)], &[lv(101, 4)]);
        assert_eq!(outcome, Ok(BookOutcome::Applied));
        assert_eq!(b.last_update_id(), Some(17));
        assert_eq!(sides(&b), (vec![lv(100, 1), lv(96, 2)], vec![lv(101, 4)]));
        let s = b.stats();
        assert_eq!((s.gaps, s.resyncs, s.snapshots), (1, 1, 2));
    }

    #[test]
    fn empty_level_lists_advance_the_sequence() {
        let mut b = book();
        assert_eq!(snapshot(&mut b, 10, &[], &[]), Ok(BookOutcome::Applied));
        assert_eq!((b.best_bid(), b.best_ask()), (None, None));
        assert_eq!(b.bids().len() + b.asks().len(), 0);
        assert_eq!(apply(&mut b, 11, 11, &[], &[]), BookOutcome::Applied);
        assert_eq!(
            apply(&mut b, 12, 13, &[lv(5, 1)], &[]),
            BookOutcome::Applied
        );
        assert_eq!(apply(&mut b, 14, 15, &[], &[]), BookOutcome::Applied);
        assert_eq!(b.last_update_id(), Some(15));
        assert_eq!(sides(&b), (vec![lv(5, 1)], vec![]));
    }

    #[test]
    fn quantity_zero_on_a_missing_level_is_a_counted_no_op() {
        let mut b = synced();
        let before = sides(&b);
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(98, 0)], &[lv(103, 0), lv(50, 0)]),
            BookOutcome::Applied
        );
        assert_eq!(sides(&b), before);
        assert_eq!(b.stats().removes_missing, 3);
        // An existing level goes; its neighbours stay.
        assert_eq!(
            apply(&mut b, 12, 12, &[lv(100, 0)], &[lv(101, 0)]),
            BookOutcome::Applied
        );
        assert_eq!(sides(&b), (vec![lv(99, 3)], vec![lv(102, 6)]));
        assert_eq!(b.stats().removes_missing, 3);
    }

    #[test]
    fn levels_are_set_inserted_and_removed_in_order() {
        let mut b = synced();
        let bids = [lv(100, 7), lv(95, 1), lv(97, 4), lv(99, 0)];
        let asks = [lv(104, 1), lv(102, 0), lv(103, 2)];
        assert_eq!(apply(&mut b, 11, 11, &bids, &asks), BookOutcome::Applied);
        assert_eq!(
            sides(&b),
            (
                vec![lv(100, 7), lv(97, 4), lv(95, 1)],
                vec![lv(101, 4), lv(103, 2), lv(104, 1)]
            )
        );
        assert_eq!(
            (b.best_bid(), b.best_ask()),
            (Some(lv(100, 7)), Some(lv(101, 4)))
        );
        assert_eq!(b.bids().next_back(), Some(lv(95, 1)), "worst bid last");
    }

    #[test]
    fn a_crossed_book_is_corruption() {
        let mut b = synced();
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(101, 1)], &[]),
            BookOutcome::Crossed {
                bid_px: 101,
                ask_px: 101
            }
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!((b.best_bid(), b.best_ask()), (None, None));
        assert_eq!((b.stats().crossed, b.stats().resyncs), (1, 1));
        assert_eq!(b.buffered_diffs(), 0, "the crossing diff is not kept");

        // Crossing within one update is fine if the update ends uncrossed (checked at its end).
        let mut b = synced();
        let outcome = apply(
            &mut b,
            11,
            11,
            &[lv(101, 1)],
            &[lv(101, 0), lv(102, 0), lv(103, 2)],
        );
        assert_eq!(outcome, BookOutcome::Applied);
        assert_eq!(
            (b.best_bid(), b.best_ask()),
            (Some(lv(101, 1)), Some(lv(103, 2)))
        );

        // A crossed snapshot.
        let mut b = book();
        let outcome = snapshot(&mut b, 10, &[lv(102, 1)], &[lv(101, 1)]);
        assert_eq!(
            outcome,
            Ok(BookOutcome::Crossed {
                bid_px: 102,
                ask_px: 101
            })
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        // A crossing replayed diff: the diffs after it stay buffered.
        let mut b = book();
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(200, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 12, 12, &[lv(99, 1)], &[]),
            BookOutcome::Buffered
        );
        let outcome = snapshot(&mut b, 10, &[lv(100, 1)], &[lv(101, 1)]);
        assert_eq!(
            outcome,
            Ok(BookOutcome::Crossed {
                bid_px: 200,
                ask_px: 101
            })
        );
        assert_eq!(b.buffered_diffs(), 1);
    }

    #[test]
    fn bad_snapshots_are_errors_and_need_a_resync() {
        let mut b = book();
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(100, 1)], &[]),
            BookOutcome::Buffered
        );
        let error = snapshot(&mut b, 10, &[lv(100, 1), lv(100, 2)], &[]).unwrap_err();
        assert_eq!(
            error,
            BookError::SnapshotNotSorted {
                instrument_id: ID,
                last_update_id: 10,
                side: BookSide::Bid,
                index: 1,
                px: 100
            }
        );
        let error = snapshot(&mut b, 10, &[], &[lv(101, 1), lv(100, 1)]).unwrap_err();
        assert!(matches!(
            error,
            BookError::SnapshotNotSorted {
                side: BookSide::Ask,
                index: 1,
                ..
            }
        ));
        let error = snapshot(&mut b, 10, &[lv(100, 1)], &[lv(101, 0)]).unwrap_err();
        assert!(matches!(
            error,
            BookError::SnapshotBadQuantity {
                side: BookSide::Ask,
                qty: 0,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            format!(
                "instrument {ID}, snapshot 10: ask level 0 (px 101) has quantity 0; snapshot \
                 levels need a positive quantity"
            )
        );
        let unsorted = snapshot(&mut b, 10, &[lv(100, 1), lv(100, 2)], &[]).unwrap_err();
        assert!(
            unsorted.to_string().contains(": bid level 1 (px 100)"),
            "{unsorted}"
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!(b.buffered_diffs(), 1);
        assert_eq!(
            snapshot(&mut b, 10, &[lv(99, 1)], &[lv(101, 1)]),
            Ok(BookOutcome::Applied)
        );
        assert_eq!(b.best_bid(), Some(lv(100, 1)));
    }

    #[test]
    fn a_full_side_drops_its_worst_levels() {
        let limits = BookLimits {
            levels_per_side_max: 3,
            ..BookLimits::DEFAULT
        };
        let mut b = OrderBook::new(ID, limits).unwrap();
        let bids = [lv(100, 1), lv(99, 1), lv(98, 1), lv(97, 1), lv(96, 1)];
        let asks = [lv(101, 1), lv(102, 1)];
        assert_eq!(snapshot(&mut b, 10, &bids, &asks), Ok(BookOutcome::Applied));
        assert_eq!(b.bids().collect::<Vec<_>>(), &bids[..3]);
        assert_eq!(b.stats().levels_dropped_capacity, 2);
        // 99 is updated in place; 95, worse than every level of a full side, is dropped itself.
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(99, 5), lv(95, 1)], &[lv(103, 1)]),
            BookOutcome::Applied
        );
        assert_eq!(
            apply(&mut b, 12, 12, &[lv(100, 2), lv(98, 0), lv(97, 0)], &[]),
            BookOutcome::Applied
        );
        assert_eq!(b.bids().collect::<Vec<_>>(), vec![lv(100, 2), lv(99, 5)]);
        assert_eq!(b.stats().levels_dropped_capacity, 3);
        assert_eq!(
            b.stats().removes_missing,
            1,
            "97 was dropped at the snapshot"
        );
        assert_eq!(
            apply(&mut b, 13, 13, &[lv(100, 0)], &[lv(100, 0)]),
            BookOutcome::Applied
        );
        let bids = [lv(99, 0), lv(97, 1), lv(96, 1), lv(94, 1)];
        assert_eq!(apply(&mut b, 14, 14, &bids, &[]), BookOutcome::Applied);
        // Full sides: 98 goes mid-side and pushes out 94; 93 and 104 are worse than every level
        // and dropped themselves; the ask at 100 pushes out the worst ask, 103.
        let (bids, asks) = ([lv(98, 1), lv(93, 1)], [lv(104, 1), lv(100, 1)]);
        assert_eq!(apply(&mut b, 15, 15, &bids, &asks), BookOutcome::Applied);
        assert_eq!(
            sides(&b),
            (
                vec![lv(98, 1), lv(97, 1), lv(96, 1)],
                vec![lv(100, 1), lv(101, 1), lv(102, 1)]
            )
        );
        assert_eq!(b.stats().levels_dropped_capacity, 7);
        assert_eq!(b.stats().removes_missing, 2);
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_updates() {
        let limits = BookLimits {
            buffered_diffs_max: 2,
            buffered_levels_max: 4,
            ..BookLimits::DEFAULT
        };
        let mut b = OrderBook::new(ID, limits).unwrap();
        assert_eq!(
            apply(&mut b, 11, 11, &[lv(100, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 12, 12, &[lv(99, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!(
            apply(&mut b, 13, 13, &[lv(98, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!((b.buffered_diffs(), b.stats().buffered_dropped), (2, 1));
        // Three levels need room: the oldest update goes.
        assert_eq!(
            apply(&mut b, 14, 14, &[lv(97, 1), lv(96, 1), lv(95, 1)], &[]),
            BookOutcome::Buffered
        );
        assert_eq!((b.buffered_diffs(), b.stats().buffered_dropped), (2, 2));
        // Larger than the whole buffer: dropped.
        let big = [lv(1, 1), lv(2, 1), lv(3, 1), lv(4, 1), lv(5, 1)];
        assert_eq!(apply(&mut b, 15, 15, &big, &[]), BookOutcome::Discarded);
        assert_eq!((b.buffered_diffs(), b.stats().buffered_dropped), (2, 3));
        // Snapshot at 13: update 13 is stale, 14 applies; then 15 is missing.
        assert_eq!(
            snapshot(&mut b, 13, &[lv(100, 1)], &[lv(101, 1)]),
            Ok(BookOutcome::Applied)
        );
        assert_eq!(b.bids().len(), 4);
        assert_eq!(
            apply(&mut b, 16, 16, &[], &[]),
            BookOutcome::Gap {
                expected_first: 15,
                got_first: 16
            }
        );
        // A snapshot older than the oldest kept diff: a gap, as it should be.
        let mut b = OrderBook::new(ID, limits).unwrap();
        for id in 11..=13 {
            assert_eq!(
                apply(&mut b, id, id, &[lv(100, 1)], &[]),
                BookOutcome::Buffered
            );
        }
        let outcome = snapshot(&mut b, 10, &[lv(100, 1)], &[lv(101, 1)]);
        assert_eq!(
            outcome,
            Ok(BookOutcome::Gap {
                expected_first: 11,
                got_first: 12
            })
        );
    }

    #[test]
    fn journal_chunks_apply_as_one_update() {
        let bids: Vec<Level> = (0..40).map(|i| lv(100 - i, 1 + i)).collect();
        let asks = [lv(101, 1), lv(102, 0)];
        let chunks = chunks_of(11, 12, &bids, &asks);
        assert_eq!(
            (chunks.len(), chunks[1].bid_count, chunks[1].ask_count),
            (2, 8, 2)
        );

        let mut b = synced();
        assert_eq!(b.apply_diff_chunk(&chunks[0]), Ok(BookOutcome::Partial));
        assert_eq!(b.last_update_id(), Some(10));
        assert_eq!(b.apply_diff_chunk(&chunks[1]), Ok(BookOutcome::Applied));
        assert_eq!(b.last_update_id(), Some(12));
        assert_eq!(b.bids().len(), 40);
        assert_eq!(b.asks().collect::<Vec<_>>(), vec![lv(101, 1)]);
        assert_eq!(b.stats().updates_applied, 1);
        // The same update again: both chunks stale.
        assert_eq!(b.apply_diff_chunk(&chunks[0]), Ok(BookOutcome::Stale));
        assert_eq!(b.apply_diff_chunk(&chunks[1]), Ok(BookOutcome::Stale));
        assert_eq!(b.stats().updates_stale, 1);

        // Buffered before the snapshot, replayed after it.
        let mut b = book();
        for chunk in &chunks {
            assert_eq!(b.apply_diff_chunk(chunk), Ok(BookOutcome::Buffered));
        }
        assert_eq!(
            snapshot(&mut b, 10, &[lv(100, 5)], &[lv(101, 4)]),
            Ok(BookOutcome::Applied)
        );
        assert_eq!((b.bids().len(), b.last_update_id()), (40, Some(12)));

        // A snapshot arriving between the chunks: the rest applies live.
        let mut b = book();
        assert_eq!(b.apply_diff_chunk(&chunks[0]), Ok(BookOutcome::Buffered));
        assert_eq!(snapshot(&mut b, 10, &[], &[]), Ok(BookOutcome::Partial));
        assert_eq!(b.apply_diff_chunk(&chunks[1]), Ok(BookOutcome::Applied));
        assert_eq!((b.bids().len(), b.last_update_id()), (40, Some(12)));
    }

    #[test]
    fn a_lost_chunk_is_a_gap() {
        let bids: Vec<Level> = (0..70).map(|i| lv(100 - i, 1)).collect();
        let first = chunks_of(11, 12, &bids, &[]);
        let next = chunks_of(13, 13, &[lv(50, 1)], &[]);
        assert_eq!(first.len(), 3);

        // Chunk 1 lost.
        let mut b = synced();
        assert_eq!(b.apply_diff_chunk(&first[0]), Ok(BookOutcome::Partial));
        assert_eq!(
            b.apply_diff_chunk(&first[2]),
            Ok(BookOutcome::LostChunk {
                final_update_id: 12,
                expected_chunk: 1,
                got_chunk: 2
            })
        );
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!(b.stats().gaps, 1);

        // The last chunk lost: the next update's chunk 0 shows it, and is buffered.
        let mut b = synced();
        assert_eq!(b.apply_diff_chunk(&first[0]), Ok(BookOutcome::Partial));
        assert_eq!(b.apply_diff_chunk(&first[1]), Ok(BookOutcome::Partial));
        assert_eq!(
            b.apply_diff_chunk(&next[0]),
            Ok(BookOutcome::LostChunk {
                final_update_id: 12,
                expected_chunk: 2,
                got_chunk: 0
            })
        );
        assert_eq!(b.buffered_diffs(), 1);
        assert_eq!(snapshot(&mut b, 12, &[], &[]), Ok(BookOutcome::Applied));
        assert_eq!(b.best_bid(), Some(lv(50, 1)));

        // While buffering, an incomplete update is dropped from the buffer.
        let mut b = book();
        assert_eq!(b.apply_diff_chunk(&first[0]), Ok(BookOutcome::Buffered));
        assert_eq!(b.apply_diff_chunk(&first[1]), Ok(BookOutcome::Buffered));
        assert_eq!(b.apply_diff_chunk(&next[0]), Ok(BookOutcome::Buffered));
        assert_eq!((b.buffered_diffs(), b.stats().buffered_dropped), (1, 1));
        assert_eq!(b.apply_diff_chunk(&first[2]), Ok(BookOutcome::Discarded));
        assert_eq!(b.stats().chunks_discarded, 1);

        // A chunk with impossible counts.
        let mut bad = next[0];
        bad.bid_count = 40;
        assert!(matches!(
            b.apply_diff_chunk(&bad),
            Err(BookError::MalformedChunk { bid_count: 40, .. })
        ));
        bad = next[0];
        bad.chunk = 1;
        assert!(b.apply_diff_chunk(&bad).is_err());
    }

    #[test]
    fn mark_needs_resync_clears_the_levels() {
        let mut b = synced();
        b.mark_needs_resync();
        assert_eq!(b.state(), BookState::NeedsResync);
        assert_eq!((b.best_bid(), b.last_update_id()), (None, None));
        assert_eq!(apply(&mut b, 11, 11, &[], &[]), BookOutcome::Buffered);
    }

    /// The venue's book, as a map per side.
    #[derive(Clone, Debug, Default)]
    struct Reference {
        bids: BTreeMap<i64, i64>,
        asks: BTreeMap<i64, i64>,
    }

    impl Reference {
        fn apply(&mut self, bids: &[Level], asks: &[Level]) {
            for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
                for l in levels {
                    if l.qty == 0 {
                        side.remove(&l.px);
                    } else {
                        side.insert(l.px, l.qty);
                    }
                }
            }
        }

        fn bids_best_first(&self) -> Vec<Level> {
            self.bids
                .iter()
                .rev()
                .map(|(&px, &qty)| lv(px, qty))
                .collect()
        }

        fn asks_best_first(&self) -> Vec<Level> {
            self.asks.iter().map(|(&px, &qty)| lv(px, qty)).collect()
        }
    }

    /// A random diff near the touch that leaves `reference` uncrossed: sets, removals (some of
    /// missing levels), sometimes empty; asks the bids would cross are removed in the same diff.
    fn random_diff(rng: &mut fastrand::Rng, reference: &Reference) -> (Vec<Level>, Vec<Level>) {
        let best_bid = reference.bids.keys().next_back().copied().unwrap_or(10_000);
        let best_ask = reference.asks.keys().next().copied().unwrap_or(10_010);
        let count = if rng.u8(..) < 20 {
            0
        } else {
            rng.usize(1..=60)
        };
        let (mut bids, mut asks): (BTreeMap<i64, i64>, BTreeMap<i64, i64>) = Default::default();
        for _ in 0..count {
            let qty = if rng.u8(..) < 80 { 0 } else { rng.i64(1..1000) };
            if rng.bool() {
                bids.insert(best_bid + rng.i64(-40..=3), qty);
            } else {
                asks.insert(best_ask + rng.i64(-3..=40), qty);
            }
        }
        let mut after = reference.clone();
        let bid_levels: Vec<Level> = bids.iter().map(|(&px, &qty)| lv(px, qty)).collect();
        after.apply(&bid_levels, &[]);
        if let Some(&top_bid) = after.bids.keys().next_back() {
            let crossing: Vec<i64> = after.asks.range(..=top_bid).map(|(&px, _)| px).collect();
            for px in crossing {
                asks.insert(px, 0);
            }
            for (_, qty) in asks.range_mut(..=top_bid) {
                *qty = 0;
            }
        }
        // Random order within a side, as the book must not depend on it.
        let mut ask_levels: Vec<Level> = asks.iter().map(|(&px, &qty)| lv(px, qty)).collect();
        let mut bid_levels = bid_levels;
        rng.shuffle(&mut bid_levels);
        rng.shuffle(&mut ask_levels);
        (bid_levels, ask_levels)
    }

    /// Feeds one update whole or as journal chunks; the outcome that matters (a gap or crossing
    /// if any chunk reported one, else the last chunk's).
    fn feed(
        book: &mut OrderBook,
        chunked: bool,
        first: u64,
        last: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> BookOutcome {
        if !chunked {
            return apply(book, first, last, bids, asks);
        }
        let outcomes: Vec<BookOutcome> = chunks_of(first, last, bids, asks)
            .iter()
            .map(|c| book.apply_diff_chunk(c).unwrap())
            .collect();
        for (i, o) in outcomes.iter().enumerate() {
            if i + 1 < outcomes.len() {
                assert!(
                    matches!(
                        o,
                        BookOutcome::Partial
                            | BookOutcome::Buffered
                            | BookOutcome::Stale
                            | BookOutcome::Gap { .. }
                    ),
                    "chunk {i}: {o:?}"
                );
            }
        }
        outcomes
            .iter()
            .copied()
            .find(|o| {
                matches!(
                    o,
                    BookOutcome::Gap { .. }
                        | BookOutcome::LostChunk { .. }
                        | BookOutcome::Crossed { .. }
                )
            })
            .unwrap_or(*outcomes.last().unwrap())
    }

    fn assert_matches(book: &OrderBook, reference: &Reference, context: &str) {
        assert_eq!(book.state(), BookState::Synced, "{context}");
        assert_eq!(
            book.bids().collect::<Vec<_>>(),
            reference.bids_best_first(),
            "{context}: bids"
        );
        assert_eq!(
            book.asks().collect::<Vec<_>>(),
            reference.asks_best_first(),
            "{context}: asks"
        );
        let best_bid = reference
            .bids
            .iter()
            .next_back()
            .map(|(&px, &qty)| lv(px, qty));
        let best_ask = reference.asks.iter().next().map(|(&px, &qty)| lv(px, qty));
        assert_eq!(
            (book.best_bid(), book.best_ask()),
            (best_bid, best_ask),
            "{context}"
        );
    }

    /// Random valid streams against a `BTreeMap` book: buffering and replay, live diffs,
    /// duplicates, lost diffs and resyncs from snapshots taken before or after the diffs that
    /// followed the gap.
    fn random_streams(seed: u64, chunked: bool) {
        println!("random_streams seed {seed} chunked {chunked} (set LEVIBOT_SEED to replay)");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut b = book();
        let mut reference = Reference::default();
        for i in 0..200 {
            reference.bids.insert(10_000 - i, rng.i64(1..100));
            reference.asks.insert(10_001 + i, rng.i64(1..100));
        }
        let mut last_id = 1_000u64;
        // Diffs that a gap left unsent, plus the history to take old snapshots from.
        let mut steps = 0;
        let mut sent: Vec<(u64, u64, Vec<Level>, Vec<Level>)> = Vec::new();
        let mut resyncs = 0;
        let mut snapshot_at = (last_id, reference.clone());
        let mut pending_snapshot = true;
        while steps < 3_000 {
            // A new diff from the venue.
            let (bids, asks) = random_diff(&mut rng, &reference);
            let first = last_id + 1;
            last_id += rng.u64(1..=3);
            reference.apply(&bids, &asks);
            steps += 1;
            let context = format!("seed {seed} step {steps} diff {first}..={last_id}");
            let lost = !pending_snapshot && rng.u16(..1000) < 5;
            if lost {
                // Never reaches the book; the next diff finds the gap.
                pending_snapshot = true;
                snapshot_at = (last_id, reference.clone());
                continue;
            }
            let outcome = feed(&mut b, chunked, first, last_id, &bids, &asks);
            sent.push((first, last_id, bids.clone(), asks.clone()));
            if pending_snapshot {
                assert!(
                    matches!(outcome, BookOutcome::Buffered | BookOutcome::Gap { .. }),
                    "{context}: {outcome:?}"
                );
                if rng.u8(..) < 60 {
                    // The snapshot arrives: taken at a random id between the pending one and now.
                    if rng.bool() {
                        snapshot_at = (last_id, reference.clone());
                    }
                    let (l, ref_at) = &snapshot_at;
                    let outcome = snapshot(
                        &mut b,
                        *l,
                        &ref_at.bids_best_first(),
                        &ref_at.asks_best_first(),
                    );
                    assert_eq!(outcome, Ok(BookOutcome::Applied), "{context}: snapshot {l}");
                    assert_matches(&b, &reference, &context);
                    pending_snapshot = false;
                    resyncs += 1;
                }
                continue;
            }
            assert_eq!(outcome, BookOutcome::Applied, "{context}");
            assert_matches(&b, &reference, &context);
            assert_eq!(b.last_update_id(), Some(last_id), "{context}");
            if rng.u8(..) < 25 {
                // The venue resends an old diff: stale, no change.
                let (f, l, bids, asks) = &sent[rng.usize(sent.len().saturating_sub(5)..sent.len())];
                let outcome = feed(&mut b, chunked, *f, *l, bids, asks);
                assert_eq!(outcome, BookOutcome::Stale, "{context}: resent {f}..={l}");
                assert_matches(&b, &reference, &context);
            }
        }
        let s = *b.stats();
        println!("seed {seed}: {resyncs} snapshots, {s:?}");
        assert!(s.updates_applied > 1000 && s.removes_missing > 0, "{s:?}");
        assert_eq!(
            (s.crossed, s.levels_dropped_capacity, s.buffered_dropped),
            (0, 0, 0)
        );
        assert_eq!(s.resyncs, s.gaps);
    }

    fn seeds() -> Vec<u64> {
        match std::env::var("LEVIBOT_SEED") {
            Ok(seed) => vec![seed.parse().expect("LEVIBOT_SEED is a u64")],
            Err(_) => vec![1, 2, 3, 0x5eed_cafe],
        }
    }

    #[test]
    fn random_diff_streams_match_a_btreemap_book() {
        for seed in seeds() {
            random_streams(seed, false);
        }
    }

    #[test]
    fn random_chunked_streams_match_a_btreemap_book() {
        for seed in seeds() {
            random_streams(seed, true);
        }
    }

    #[test]
    fn search_finds_every_price_and_insertion_point() {
        let mut side = SideBook::<false>::new(64);
        for px in (10..50).rev().step_by(2) {
            side.levels.push(lv(px, 1));
        }
        // Asks descending: 48, 46, ..., 10 (best).
        for px in 0..60 {
            let expected = side.levels.binary_search_by(|l| px.cmp(&l.px));
            assert_eq!(side.search(px), expected, "px {px}");
        }
        let mut side = SideBook::<true>::new(64);
        for px in (10..50).step_by(3) {
            side.levels.push(lv(px, 1));
        }
        for px in 0..60 {
            let expected = side.levels.binary_search_by(|l| l.px.cmp(&px));
            assert_eq!(side.search(px), expected, "px {px}");
        }
    }
}
