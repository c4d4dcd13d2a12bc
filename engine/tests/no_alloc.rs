//! Zero allocations once a book and its features are built: snapshots, replays, depth diffs
//! (whole and as journal chunks), gaps and resyncs, far levels dropped by a full side, book tops
//! and trades, counted by a global allocator that counts the calls made on the measuring thread.

use levibot_engine::book::{BookLimits, BookOutcome, BookState, OrderBook};
use levibot_engine::features::{BarSource, FeatureConfig, Features};
use levibot_gateway::binance::{DepthSnapshot, DepthUpdate};
use levibot_shm::records::{DEPTH_LEVELS_PER_RECORD, DepthDiff, Level};
use levibot_testkit::allocations;

const INSTRUMENT: u32 = 3;
const SIDE_LEVELS_PER_DIFF_MAX: usize = DEPTH_LEVELS_PER_RECORD / 2;

/// Random levels on one side: bids in 9,000..10,000, asks in 10,001..11,001 (never crossing);
/// a third of them removals.
fn random_levels(rng: &mut fastrand::Rng, bid: bool, out: &mut [Level]) -> usize {
    let count = rng.usize(0..=out.len());
    for level in &mut out[..count] {
        let offset = rng.i64(0..1_000);
        level.px = if bid { 9_999 - offset } else { 10_001 + offset };
        level.qty = if rng.u8(..3) == 0 {
            0
        } else {
            rng.i64(1..1_000)
        };
    }
    count
}

/// The update as one journal chunk, or as two (bids, then asks) if `split`; the outcome of the
/// last chunk, or the gap that chunk 0 found.
fn feed_chunks(book: &mut OrderBook, update: &DepthUpdate<'_>, split: bool) -> BookOutcome {
    let mut diff = DepthDiff {
        recv_tsc: update.recv_tsc,
        event_time_ms: update.event_time_ms,
        first_update_id: update.first_update_id,
        final_update_id: update.final_update_id,
        instrument_id: update.instrument_id,
        bid_count: 0,
        ask_count: 0,
        chunk: 0,
        chunk_count: 1,
        reserved: 0,
        levels: [Level::default(); DEPTH_LEVELS_PER_RECORD],
    };
    let parts: [(&[Level], &[Level]); 2] = if split {
        diff.chunk_count = 2;
        [(update.bids, &[]), (&[], update.asks)]
    } else {
        [(update.bids, update.asks), (&[], &[])]
    };
    let mut outcome = BookOutcome::Discarded;
    for (chunk, (bids, asks)) in parts.iter().take(diff.chunk_count as usize).enumerate() {
        diff.chunk = chunk as u16;
        diff.bid_count = bids.len() as u16;
        diff.ask_count = asks.len() as u16;
        diff.levels[..bids.len()].copy_from_slice(bids);
        diff.levels[bids.len()..bids.len() + asks.len()].copy_from_slice(asks);
        outcome = match book.apply_diff_chunk(&diff).expect("well-formed chunk") {
            // The gap shows at chunk 0; the chunks after it are buffered.
            BookOutcome::Buffered if matches!(outcome, BookOutcome::Gap { .. }) => outcome,
            o => o,
        };
    }
    outcome
}

#[test]
fn steady_state_book_and_feature_updates_do_not_allocate() {
    let seed = 0x1e71_b075;
    println!("seed {seed:#x}");
    let mut rng = fastrand::Rng::with_seed(seed);

    // Everything is built before the count starts.
    let mut book = OrderBook::new(INSTRUMENT, BookLimits::DEFAULT).unwrap();
    // A small book fed the same updates: full sides drop their far levels all the time, and a
    // full buffer its oldest diffs.
    let small_limits = BookLimits {
        levels_per_side_max: 64,
        buffered_diffs_max: 4,
        buffered_levels_max: 64,
    };
    let mut small = OrderBook::new(INSTRUMENT, small_limits).unwrap();
    let mut features = Features::new(FeatureConfig {
        atr_bar_ns: 1_000_000,
        atr_bars: 5,
        atr_source: BarSource::Mid,
        ..FeatureConfig::DEFAULT
    })
    .unwrap();
    let mut trade_features = Features::new(FeatureConfig {
        atr_bar_ns: 1_000_000,
        atr_bars: 5,
        atr_source: BarSource::Trade,
        ..FeatureConfig::DEFAULT
    })
    .unwrap();
    let snapshot_bids: Vec<Level> = (0..1_000)
        .map(|i| Level {
            px: 9_999 - i,
            qty: 10,
        })
        .collect();
    let snapshot_asks: Vec<Level> = (0..1_000)
        .map(|i| Level {
            px: 10_001 + i,
            qty: 10,
        })
        .collect();
    let (mut bids, mut asks) = (
        [Level::default(); SIDE_LEVELS_PER_DIFF_MAX],
        [Level::default(); SIDE_LEVELS_PER_DIFF_MAX],
    );

    let before = allocations();
    let mut last_id = 100u64;
    // Diffs that arrive before the first snapshot are buffered.
    let mut pending_snapshot_id = Some(last_id);
    let mut ts_ns = 1_000_000_000u64;
    let (mut applied, mut resyncs) = (0u64, 0u64);
    for step in 0..20_000u32 {
        let first = last_id + 1;
        last_id += rng.u64(1..=2);
        if step % 4_000 == 3_999 {
            // A lost diff: the next one is a gap, and the snapshot is taken at the lost one.
            pending_snapshot_id = Some(last_id);
            continue;
        }
        let bid_count = random_levels(&mut rng, true, &mut bids);
        let ask_count = random_levels(&mut rng, false, &mut asks);
        let update = DepthUpdate {
            instrument_id: INSTRUMENT,
            recv_tsc: 0,
            event_time_ms: ts_ns / 1_000_000,
            first_update_id: first,
            final_update_id: last_id,
            bids: &bids[..bid_count],
            asks: &asks[..ask_count],
        };
        let outcome = if step % 3 == 0 {
            feed_chunks(&mut book, &update, step % 2 == 0)
        } else {
            book.apply_update(&update)
        };
        let small_outcome = small.apply_update(&update);
        assert_eq!(outcome, small_outcome, "step {step}");

        if let Some(snapshot_id) = pending_snapshot_id {
            assert!(
                matches!(outcome, BookOutcome::Buffered | BookOutcome::Gap { .. }),
                "step {step}: {outcome:?}"
            );
            if step % 4_000 == 5 {
                let snapshot = DepthSnapshot {
                    instrument_id: INSTRUMENT,
                    last_update_id: snapshot_id,
                    bids: &snapshot_bids,
                    asks: &snapshot_asks,
                };
                assert_eq!(book.apply_snapshot(&snapshot), Ok(BookOutcome::Applied));
                // The small buffer dropped its oldest diffs: its snapshot is a newer one.
                let newer = DepthSnapshot {
                    last_update_id: last_id,
                    ..snapshot
                };
                assert_eq!(small.apply_snapshot(&newer), Ok(BookOutcome::Applied));
                pending_snapshot_id = None;
                resyncs += 1;
            }
            continue;
        }
        assert_eq!(outcome, BookOutcome::Applied, "step {step}");
        applied += 1;

        ts_ns += rng.u64(1..200_000);
        if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
            features.on_book_top(bid, ask, ts_ns);
        }
        let px = 9_990 + rng.i64(0..20);
        let qty = rng.i64(1..100);
        let sell = rng.bool();
        features.on_trade(px, qty, sell, ts_ns);
        trade_features.on_trade(px, qty, sell, ts_ns);
    }
    let counted = allocations() - before;

    assert_eq!(counted, 0, "{counted} allocations");
    assert_eq!(book.state(), BookState::Synced);
    assert!(
        applied > 15_000 && resyncs == 5,
        "{applied} applied, {resyncs} snapshots"
    );
    assert!(
        small.stats().levels_dropped_capacity > 1_000,
        "{:?}",
        small.stats()
    );
    assert!(small.stats().buffered_dropped > 0, "{:?}", small.stats());
    assert!(features.atr().is_some() && trade_features.atr().is_some());
    assert!(features.microprice().is_some() && features.trade_flow_imbalance().is_some());
}
