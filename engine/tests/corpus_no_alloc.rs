//! Zero allocations while decoding the whole corpus and applying it in a loop: snapshots and
//! depth updates into the books, tops and trades into the features, and everything journaled
//! (raw bytes and decoded events), as the fused hot path will do it.

use levibot_engine::book::{BookLimits, OrderBook};
use levibot_engine::features::{FeatureConfig, Features};
use levibot_engine::recorder::MarketDataRecorder;
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::Recording;
use levibot_shm::records::TRADE_FLAG_BUYER_IS_MAKER;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy};
use levibot_testkit::allocations;

#[test]
fn decoding_and_applying_the_corpus_in_a_loop_does_not_allocate() {
    let corpus = Recording::testdata().unwrap();
    let table = corpus.snapshot_instruments().unwrap();
    let mut books: Vec<OrderBook> = table
        .iter()
        .map(|i| OrderBook::new(i.id, BookLimits::DEFAULT).unwrap())
        .collect();
    let mut features: Vec<Features> = table
        .iter()
        .map(|_| Features::new(FeatureConfig::DEFAULT).unwrap())
        .collect();
    let mut decoder = Decoder::new(table);

    let journal_dir =
        std::env::temp_dir().join(format!("levibot-corpus-no-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&journal_dir);
    let journal = Journal::open(&JournalConfig {
        dir: journal_dir.clone(),
        segment_size: 64 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap();
    let mut recorder = MarketDataRecorder::new(journal.appender(0).unwrap(), 1);

    let messages: Vec<(u64, &[u8])> = corpus
        .messages()
        .map(|l| {
            let l = l.unwrap();
            ((l.epoch_seconds * 1e9) as u64, l.body)
        })
        .collect();
    let snapshots: Vec<(u32, &[u8])> = corpus
        .snapshot_lines()
        .unwrap()
        .iter()
        .map(|s| {
            (
                decoder.instruments().find(s.symbol.as_bytes()).unwrap().id,
                s.line.body,
            )
        })
        .collect();

    let mut applied = 0u64;
    let mut pass = |round: u64| {
        // Each pass starts the books over from their snapshots, then replays every message.
        for (id, body) in &snapshots {
            let snapshot = decoder.decode_snapshot(body, *id).unwrap();
            books[*id as usize].mark_needs_resync();
            let _ = books[*id as usize].apply_snapshot(&snapshot).unwrap();
        }
        for (ts_ns, body) in &messages {
            let ts_ns = ts_ns + round * 60_000_000_000;
            recorder.record_raw(ts_ns, body).unwrap();
            let event = decoder.decode(body, ts_ns).unwrap();
            recorder.record_event(&event).unwrap();
            match event {
                MarketEvent::Depth(update) => {
                    let book = &mut books[update.instrument_id as usize];
                    let _ = book.apply_update(&update);
                    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                        features[update.instrument_id as usize].on_book_top(bid, ask, ts_ns);
                    }
                    applied += 1;
                }
                MarketEvent::AggTrade(t) => features[t.instrument_id as usize].on_trade(
                    t.px,
                    t.qty,
                    t.flags & TRADE_FLAG_BUYER_IS_MAKER != 0,
                    ts_ns,
                ),
                _ => {}
            }
        }
    };
    pass(0); // warm-up
    let before = allocations();
    for round in 1..=20 {
        pass(round);
    }
    let counted = allocations() - before;
    assert!(applied > 20 * 170, "{applied}");
    assert_eq!(
        counted, 0,
        "{counted} allocations in 20 passes over the corpus"
    );
    assert!(features.iter().any(|f| f.microprice().is_some()));
    drop(recorder);
    drop(journal);
    std::fs::remove_dir_all(&journal_dir).unwrap();
}
