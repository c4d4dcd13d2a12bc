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
//! Depth chunks ([`DepthChunkOf`]: the engine's 8-level chunks, a journal's of up to 32) carry
//! one update in `chunk_count` chunks with the same ids; the sequence check runs on chunk 0, the
//! crossing check after the last chunk, and a chunk that does not continue the update in
//! progress means a chunk was lost (a gap).
//!
//! No allocation after [`OrderBook::new`]: every buffer is a `Vec` allocated to its limit there,
//! and the book checks the limit before each push or insert (a `Vec` never reallocates below its
//! capacity).

use std::fmt;

use levibot_gateway::binance::{DepthSnapshot, DepthUpdate};
use levibot_shm::records::{DepthChunkOf, Level};

mod buffer;
mod limits;
mod side;
mod sync;

pub use limits::{BOOK_LIMIT_MAX, BookError, BookLimits};
pub use side::BookSide;

use buffer::{DiffBuffer, Pushed};
use side::SideBook;
use sync::{Chunk, ChunkCursor, ChunkMode, Core};

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
    pub fn apply_diff_chunk<const N: usize>(
        &mut self,
        diff: &DepthChunkOf<N>,
    ) -> Result<BookOutcome, BookError> {
        assert_eq!(
            diff.instrument_id, self.core.instrument_id,
            "depth chunk routed to the wrong book"
        );
        let levels = diff.bid_count as usize + diff.ask_count as usize;
        if levels > N || diff.chunk >= diff.chunk_count {
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
mod tests;
