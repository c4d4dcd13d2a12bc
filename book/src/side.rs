//! One side of the book: its levels sorted worst to best, the galloping search that finds a
//! price near the touch, and what setting a level does at the side's capacity. Its own file
//! because it is the book's one hot data structure, measured and mutation-tested apart from the
//! sync procedure that drives it.

use std::fmt;

use levibot_shm::records::Level;

use crate::BookError;

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

/// One side's levels, sorted worst to best: the best price is at the END (bids ascending, asks
/// descending). Most updates land near the touch, and inserting or removing at index `i` moves
/// the `len - i` levels after it, so near the end that is a handful of levels, not the side.
/// `BID` picks the order at compile time.
pub(crate) struct SideBook<const BID: bool> {
    /// Capacity `len_max`, allocated once.
    pub(crate) levels: Vec<Level>,
    len_max: usize,
}

/// What setting one level did to a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetEffect {
    Inserted,
    Updated,
    Removed,
    RemovedMissing,
    /// Inserted into a full side: the worst level (or the new one, if it was the worst) dropped.
    DroppedFar,
}

impl<const BID: bool> SideBook<BID> {
    pub(crate) fn new(len_max: usize) -> Self {
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
    pub(crate) fn search(&self, px: i64) -> Result<usize, usize> {
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
    pub(crate) fn set(&mut self, level: Level) -> SetEffect {
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

    pub(crate) fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Replaces the side with a snapshot side given best-first (already checked); keeps the
    /// best `len_max` levels and returns how many it dropped.
    pub(crate) fn load_best_first(&mut self, best_first: &[Level]) -> usize {
        let kept = best_first.len().min(self.len_max);
        self.levels.clear();
        self.levels.extend(best_first[..kept].iter().rev().copied());
        best_first.len() - kept
    }

    /// Checks a snapshot side: strictly worse prices after the first, positive quantities.
    pub(crate) fn check_best_first(
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
