//! The diff buffer: diffs and journal chunks held, whole updates only and within fixed
//! capacities, while the book waits for a snapshot, and replayed by it. Its own file because it
//! is storage with its own eviction rules, apart from the sequencing that reads it.

use levibot_shm::records::Level;

use crate::sync::Chunk;

/// One buffered chunk; its levels are `bid_count` bids then `ask_count` asks from
/// `levels_start` in the buffer's level pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BufferedChunk {
    first_update_id: u64,
    final_update_id: u64,
    levels_start: usize,
    bid_count: usize,
    ask_count: usize,
    pub(crate) chunk: u16,
    chunk_count: u16,
}

/// Diffs held while the book waits for a snapshot: chunk headers plus one level pool, in arrival
/// order, always starting at an update's chunk 0. Only touched while the book is not synced.
pub(crate) struct DiffBuffer {
    /// Capacity `diffs_max`.
    pub(crate) entries: Vec<BufferedChunk>,
    /// Capacity `levels_max`.
    pub(crate) levels: Vec<Level>,
    diffs_max: usize,
    levels_max: usize,
}

/// What [`DiffBuffer::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Buffered, after dropping this many of the oldest updates.
    Yes { updates_dropped: u64 },
    /// The chunk's update does not fit in the whole buffer: not buffered (its earlier chunks
    /// were dropped too), after dropping this many older updates.
    TooLarge { updates_dropped: u64 },
}

impl DiffBuffer {
    pub(crate) fn new(diffs_max: usize, levels_max: usize) -> Self {
        DiffBuffer {
            entries: Vec::with_capacity(diffs_max),
            levels: Vec::with_capacity(levels_max),
            diffs_max,
            levels_max,
        }
    }

    pub(crate) fn chunk(&self, e: &BufferedChunk) -> Chunk<'_> {
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
    pub(crate) fn push(&mut self, c: &Chunk<'_>) -> Pushed {
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
    pub(crate) fn drop_front(&mut self, count: usize) {
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
    pub(crate) fn pop_last_update(&mut self) {
        let start = self.entries.iter().rposition(|e| e.chunk == 0).unwrap_or(0);
        let levels_start = self
            .entries
            .get(start)
            .map_or(self.levels.len(), |e| e.levels_start);
        self.entries.truncate(start);
        self.levels.truncate(levels_start);
    }
}
