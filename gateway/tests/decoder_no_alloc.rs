//! Zero allocations while decoding the whole corpus (stream messages and snapshots) in a loop,
//! counted by a global allocator on the decoding thread. The first pass is the warm-up that lets
//! simd-json's internal stacks reach their working size.

use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::Recording;
use levibot_testkit::allocations;

#[test]
fn decoding_the_corpus_in_a_loop_does_not_allocate() {
    let corpus = Recording::testdata().unwrap();
    let mut decoder = Decoder::new(corpus.snapshot_instruments().unwrap());
    let messages: Vec<&[u8]> = corpus.messages().map(|l| l.unwrap().body).collect();
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

    let mut levels_seen = 0usize;
    let mut pass = |decoder: &mut Decoder| {
        for (id, body) in &snapshots {
            let snap = decoder.decode_snapshot(body, *id).unwrap();
            levels_seen += snap.bids.len() + snap.asks.len();
        }
        for msg in &messages {
            if let MarketEvent::Depth(d) = decoder.decode(msg, 1).unwrap() {
                levels_seen += d.bids.len() + d.asks.len();
            }
        }
    };
    pass(&mut decoder); // warm-up
    let before = allocations();
    for _ in 0..20 {
        pass(&mut decoder);
    }
    let counted = allocations() - before;
    assert!(levels_seen > 0);
    assert_eq!(
        counted, 0,
        "{counted} allocations in 20 passes over the corpus"
    );
    assert_eq!(decoder.stats().errors, 0);
}
