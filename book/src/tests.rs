//! The book's unit tests: the sync procedure, the buffer, the capacities and the side search,
//! through the public API and the crate's private parts. (`edge_tests.rs` takes the edge cases,
//! with this file's helpers.)

use std::collections::BTreeMap;

use super::*;
use levibot_shm::records::{DEPTH_LEVELS_PER_RECORD, DepthDiff};

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
pub(super) fn chunks_of(first: u64, last: u64, bids: &[Level], asks: &[Level]) -> Vec<DepthDiff> {
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
