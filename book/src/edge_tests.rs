//! The book at its edges. Journal chunks at the edges of its sequencing and of its diff buffer:
//! chunks that come without their chunk 0, or while a stale update is being skipped; a buffer
//! filled to its level limit exactly, or by one level more; an update too large for the buffer
//! on its own, or a chunk too large for it. Also a snapshot deeper than the book on both sides,
//! and what the book says of itself.

use super::tests::{ID, chunks_of, lv, snapshot, synced};
use super::*;
use levibot_shm::records::DEPTH_LEVELS_PER_RECORD;

/// A book waiting for its snapshot whose diff buffer holds `levels` levels in all.
fn buffering(levels: usize) -> OrderBook {
    let limits = BookLimits {
        buffered_levels_max: levels,
        ..BookLimits::DEFAULT
    };
    OrderBook::new(ID, limits).unwrap()
}

/// `n` bid levels from 100 down.
fn bids(n: i64) -> Vec<Level> {
    (0..n).map(|i| lv(100 - i, 1)).collect()
}

#[test]
fn a_chunk_without_its_chunk_0_is_stale_if_old_and_a_lost_chunk_if_new() {
    let mut b = synced(); // at update 10
    let old = chunks_of(5, 9, &bids(40), &[]);
    assert_eq!(b.apply_diff_chunk(&old[1]), Ok(BookOutcome::Stale));
    assert_eq!(b.state(), BookState::Synced);
    let new = chunks_of(11, 12, &bids(40), &[]);
    assert_eq!(
        b.apply_diff_chunk(&new[1]),
        Ok(BookOutcome::LostChunk {
            final_update_id: 12,
            expected_chunk: 0,
            got_chunk: 1
        })
    );
    assert_eq!(b.state(), BookState::NeedsResync);
}

#[test]
fn while_a_stale_update_is_skipped_a_late_chunk_of_another_is_stale_too() {
    let mut b = synced();
    let applied = chunks_of(11, 12, &bids(70), &[]);
    let outcomes: Vec<_> = applied.iter().map(|c| b.apply_diff_chunk(c)).collect();
    assert_eq!(outcomes.last(), Some(&Ok(BookOutcome::Applied)));
    assert_eq!(b.last_update_id(), Some(12));
    // The same update again: its chunk 0 is stale, and its other chunks are skipped...
    assert_eq!(b.apply_diff_chunk(&applied[0]), Ok(BookOutcome::Stale));
    // ...when a chunk of an even older update arrives, late: stale as well, no resync.
    let older = chunks_of(9, 10, &bids(40), &[]);
    assert_eq!(b.apply_diff_chunk(&older[1]), Ok(BookOutcome::Stale));
    assert_eq!(b.state(), BookState::Synced);
    assert_eq!(b.stats().gaps, 0);
}

#[test]
fn a_chunk_as_large_as_the_buffer_fits_and_one_level_more_drops_the_oldest_update() {
    let mut b = buffering(DEPTH_LEVELS_PER_RECORD);
    let full = chunks_of(11, 11, &bids(DEPTH_LEVELS_PER_RECORD as i64), &[]);
    assert_eq!(full.len(), 1);
    assert_eq!(b.apply_diff_chunk(&full[0]), Ok(BookOutcome::Buffered));
    assert_eq!(b.buffered_diffs(), 1);
    // One more level does not fit beside it: the oldest update goes, the new one is kept.
    let one = chunks_of(12, 12, &[lv(50, 2)], &[]);
    assert_eq!(b.apply_diff_chunk(&one[0]), Ok(BookOutcome::Buffered));
    assert_eq!((b.buffered_diffs(), b.stats().buffered_dropped), (1, 1));
    assert_eq!(snapshot(&mut b, 11, &[], &[]), Ok(BookOutcome::Applied));
    assert_eq!(b.bids().collect::<Vec<_>>(), [lv(50, 2)]);
}

#[test]
fn an_update_too_large_for_the_buffer_leaves_none_of_its_chunks_in_it() {
    let mut b = buffering(40);
    let large = chunks_of(11, 11, &bids(42), &[]);
    assert_eq!(large.len(), 2);
    assert_eq!(b.apply_diff_chunk(&large[0]), Ok(BookOutcome::Buffered));
    assert_eq!(b.apply_diff_chunk(&large[1]), Ok(BookOutcome::Discarded));
    assert_eq!(b.buffered_diffs(), 0, "no half of the update is kept");
    assert_eq!(
        (b.stats().buffered_dropped, b.stats().chunks_discarded),
        (1, 1)
    );
    // After the snapshot, the book is the snapshot's: nothing of the half update.
    assert_eq!(
        snapshot(&mut b, 11, &[lv(10, 1)], &[]),
        Ok(BookOutcome::Applied)
    );
    assert_eq!(b.bids().collect::<Vec<_>>(), [lv(10, 1)]);
}

#[test]
fn a_chunk_too_large_for_the_buffer_takes_the_earlier_chunks_of_its_update_with_it() {
    let mut b = buffering(20);
    // A hand-made update: chunk 0 with 5 levels, chunk 1 with 30 (more than the buffer holds).
    let mut chunks = chunks_of(11, 11, &bids(35), &[]);
    assert_eq!(chunks.len(), 2);
    let all: Vec<Level> = bids(35);
    chunks[0].bid_count = 5;
    chunks[0].levels[..5].copy_from_slice(&all[..5]);
    chunks[1].bid_count = 30;
    chunks[1].levels[..30].copy_from_slice(&all[5..]);
    assert_eq!(b.apply_diff_chunk(&chunks[0]), Ok(BookOutcome::Buffered));
    assert_eq!(b.apply_diff_chunk(&chunks[1]), Ok(BookOutcome::Discarded));
    assert_eq!(b.buffered_diffs(), 0, "chunk 0 went with it");
    assert_eq!(
        snapshot(&mut b, 10, &[lv(10, 1)], &[]),
        Ok(BookOutcome::Applied)
    );
    assert_eq!(b.bids().collect::<Vec<_>>(), [lv(10, 1)]);
}

#[test]
fn a_snapshot_deeper_than_the_book_counts_the_levels_dropped_on_both_sides() {
    let limits = BookLimits {
        levels_per_side_max: 2,
        ..BookLimits::DEFAULT
    };
    let mut b = OrderBook::new(ID, limits).unwrap();
    assert_eq!((b.instrument_id(), b.limits()), (ID, limits));
    // 5 bids and 3 asks into 2 a side: 3 + 1 dropped, the worst ones.
    let asks = [lv(101, 1), lv(102, 1), lv(103, 1)];
    assert_eq!(
        snapshot(&mut b, 10, &bids(5), &asks),
        Ok(BookOutcome::Applied)
    );
    assert_eq!(b.stats().levels_dropped_capacity, 4);
    assert_eq!(b.bids().collect::<Vec<_>>(), [lv(100, 1), lv(99, 1)]);
    assert_eq!(b.asks().collect::<Vec<_>>(), [lv(101, 1), lv(102, 1)]);
}

#[test]
fn while_buffering_a_chunk_of_another_update_drops_the_one_in_progress() {
    let mut b = book_waiting();
    let a = chunks_of(11, 11, &bids(70), &[]);
    let other = chunks_of(12, 12, &bids(40), &[]);
    assert_eq!(b.apply_diff_chunk(&a[0]), Ok(BookOutcome::Buffered));
    assert_eq!(b.apply_diff_chunk(&a[1]), Ok(BookOutcome::Buffered));
    // Chunk 1 of another update: update 11 lost its last chunk, and this one its first.
    assert_eq!(b.apply_diff_chunk(&other[1]), Ok(BookOutcome::Discarded));
    assert_eq!(b.buffered_diffs(), 0);
    assert_eq!(
        (b.stats().buffered_dropped, b.stats().chunks_discarded),
        (1, 1)
    );
}

#[test]
fn a_snapshot_that_does_not_sync_leaves_the_update_in_progress_buffering() {
    let mut b = book_waiting();
    let early = chunks_of(15, 15, &[lv(90, 1)], &[]);
    let next = chunks_of(16, 17, &bids(40), &[]);
    assert_eq!(b.apply_diff_chunk(&early[0]), Ok(BookOutcome::Buffered));
    assert_eq!(b.apply_diff_chunk(&next[0]), Ok(BookOutcome::Buffered));
    // A snapshot at 10: update 15 does not follow it (11..=14 are missing).
    assert!(matches!(
        snapshot(&mut b, 10, &[lv(10, 1)], &[]),
        Ok(BookOutcome::Gap { .. })
    ));
    assert_ne!(b.state(), BookState::Synced);
    // The rest of update 16..=17 still goes to the buffer, for the next snapshot.
    assert_eq!(b.apply_diff_chunk(&next[1]), Ok(BookOutcome::Buffered));
    assert_eq!(b.buffered_diffs(), 3);
    assert_eq!(
        snapshot(&mut b, 14, &[lv(10, 1)], &[]),
        Ok(BookOutcome::Applied)
    );
    assert_eq!(b.last_update_id(), Some(17));
    assert_eq!(
        b.bids().count(),
        41,
        "the update's 40 (90 among them) and the snapshot's 10"
    );
}

/// A book with the default limits, waiting for its snapshot.
fn book_waiting() -> OrderBook {
    OrderBook::new(ID, BookLimits::DEFAULT).unwrap()
}
