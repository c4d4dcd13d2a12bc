//! The book's limits and errors: the capacities it is built with ([`BookLimits`], checked
//! against [`BOOK_LIMIT_MAX`]) and everything it refuses ([`BookError`]). Its own file because
//! it is configuration and refusal, read by whoever builds a book, and none of the procedure.

use crate::BookSide;

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
///
/// [`BookStats::levels_dropped_capacity`]: crate::BookStats::levels_dropped_capacity
/// [`BookStats::buffered_dropped`]: crate::BookStats::buffered_dropped
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
