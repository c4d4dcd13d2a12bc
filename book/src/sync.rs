//! The sync procedure (see the crate doc): the sequence checks that decide whether a diff, or a
//! journal chunk of one, continues the book, its application to both sides, and the crossing
//! check. Its own file because it is the book's state machine, apart from the diff buffer
//! (`buffer.rs`) it replays and from the [`OrderBook`](crate::OrderBook) API that routes to it.

use levibot_shm::records::Level;

use crate::side::{SetEffect, SideBook};
use crate::{BookOutcome, BookState, BookStats};

/// One update or one journal chunk of an update, the unit the sequencer works on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk<'a> {
    pub(crate) first_update_id: u64,
    pub(crate) final_update_id: u64,
    pub(crate) chunk: u16,
    pub(crate) chunk_count: u16,
    pub(crate) bids: &'a [Level],
    pub(crate) asks: &'a [Level],
}

impl Chunk<'_> {
    fn is_last(&self) -> bool {
        self.chunk + 1 >= self.chunk_count
    }
}

/// What happens to the remaining chunks of a multi-chunk update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkMode {
    /// Chunk 0 passed the sequence check: apply the rest.
    Apply,
    /// Chunk 0 was buffered: buffer the rest.
    Buffer,
    /// Chunk 0 was dropped: drop the rest with the same outcome.
    Skip(BookOutcome),
}

/// The multi-chunk update in progress.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkCursor {
    first_update_id: u64,
    final_update_id: u64,
    next_chunk: u16,
    chunk_count: u16,
    pub(crate) mode: ChunkMode,
}

impl ChunkCursor {
    /// The cursor after `c` was handled with `mode`: `None` once the update is complete.
    pub(crate) fn after(c: &Chunk<'_>, mode: ChunkMode) -> Option<ChunkCursor> {
        (!c.is_last()).then_some(ChunkCursor {
            first_update_id: c.first_update_id,
            final_update_id: c.final_update_id,
            next_chunk: c.chunk + 1,
            chunk_count: c.chunk_count,
            mode,
        })
    }

    pub(crate) fn continues(&self, c: &Chunk<'_>) -> bool {
        c.chunk == self.next_chunk
            && c.chunk_count == self.chunk_count
            && c.first_update_id == self.first_update_id
            && c.final_update_id == self.final_update_id
    }
}

/// The levels and the sequencing state: everything but the diff buffer, so that a replay can
/// read the buffer while it changes the book.
pub(crate) struct Core {
    pub(crate) instrument_id: u32,
    pub(crate) state: BookState,
    pub(crate) bids: SideBook<true>,
    pub(crate) asks: SideBook<false>,
    /// `u` of the last applied update (or the snapshot's `lastUpdateId`); valid when synced.
    pub(crate) last_update_id: u64,
    /// The next update is the first since the snapshot: `U <= L + 1` instead of `U == L + 1`.
    pub(crate) first_after_snapshot: bool,
    pub(crate) cursor: Option<ChunkCursor>,
    pub(crate) stats: BookStats,
}

impl Core {
    /// One chunk while synced: sequence check, apply, crossing check. Never buffers.
    pub(crate) fn step_synced(&mut self, c: &Chunk<'_>) -> BookOutcome {
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

    pub(crate) fn check_crossed(&mut self) -> Option<BookOutcome> {
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
    pub(crate) fn enter_resync(&mut self) {
        self.state = BookState::NeedsResync;
        self.bids.levels.clear();
        self.asks.levels.clear();
        self.cursor = None;
        self.first_after_snapshot = false;
        self.stats.resyncs += 1;
    }
}
