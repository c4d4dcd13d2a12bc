//! The simulated venue's market data and its books agree: synthetic traders move NKNUSDT's
//! price through the matching engine; its level changes are published as Binance depth
//! messages (with bookTicker and aggTrade), and a snapshot is taken mid-stream. A client doing
//! what a Binance client does (the gateway's decoder, the engine's book: buffer, snapshot, drop
//! `u <= lastUpdateId`, then `U` = previous `u` + 1) ends with exactly the venue's book.

use levibot_book::{BookLimits, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::InstrumentTable;
use levibot_sim::feed::FeedEncoder;
use levibot_sim::flow::SyntheticFlow;
use levibot_sim::matching::MatchingEngine;

const WARMUP_ACTIONS: usize = 2_000;
const ACTIONS: usize = 20_000;
/// Actions between two depth messages (the venue's "100 ms").
const ACTIONS_PER_FLUSH: usize = 20;

#[test]
fn a_client_following_binances_procedure_rebuilds_the_venues_book() {
    let seed = levibot_testkit::seed();
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
    let nkn = table.get(0).unwrap().clone();
    let mut venue = MatchingEngine::new(&[&nkn], 1_000).unwrap();
    let mut feed = FeedEncoder::new(&[&nkn]);
    let mut flow = SyntheticFlow::new(vec![3_500], seed);
    let mut messages: Vec<String> = Vec::new();
    let mut snapshot: Option<(usize, String)> = None;
    let mut trades = 0;
    for action in 0..WARMUP_ACTIONS + ACTIONS {
        let next = flow.next(&venue).unwrap();
        let out = SyntheticFlow::apply(&mut venue, next);
        let before = messages.len();
        feed.apply(&out.market, action as u64, &mut messages);
        trades += messages.len() - before;
        if action % ACTIONS_PER_FLUSH == ACTIONS_PER_FLUSH - 1 {
            feed.flush_depth(action as u64, |id| venue.top_levels(id), &mut messages);
        }
        // Mid-stream, between two flushes: the snapshot's id falls inside a depth message.
        if action == WARMUP_ACTIONS + 7 {
            let (bids, asks) = venue.depth(0, usize::MAX).unwrap();
            let body = feed
                .snapshot(0, venue.update_id(0).unwrap(), &bids, &asks)
                .unwrap();
            snapshot = Some((messages.len(), body));
        }
    }
    feed.flush_depth(0, |id| venue.top_levels(id), &mut messages);
    assert!(trades > 100, "seed {seed}: only {trades} trades");
    let (snapshot_at, snapshot_body) = snapshot.unwrap();

    // The client.
    let mut decoder = Decoder::new(table.clone());
    let mut book = OrderBook::new(0, BookLimits::DEFAULT).unwrap();
    let mut last_u = None;
    let mut last_ticker = None;
    for (i, message) in messages.iter().enumerate() {
        if i == snapshot_at {
            let s = decoder
                .decode_snapshot(snapshot_body.as_bytes(), 0)
                .unwrap();
            let _ = book.apply_snapshot(&s).unwrap();
            assert_eq!(book.state(), BookState::Synced, "seed {seed}");
        }
        match decoder
            .decode(message.as_bytes(), 0)
            .unwrap_or_else(|e| panic!("seed {seed}: {message}: {e}"))
        {
            MarketEvent::Depth(d) => {
                if let Some(u) = last_u {
                    assert_eq!(d.first_update_id, u + 1, "seed {seed}: a gap in U/u");
                }
                last_u = Some(d.final_update_id);
                let _ = book.apply_update(&d);
            }
            MarketEvent::BookTicker(t) => last_ticker = Some(t),
            MarketEvent::AggTrade(_) => {}
            other => panic!("seed {seed}: unexpected {other:?}"),
        }
    }
    assert_eq!(book.state(), BookState::Synced, "seed {seed}");
    let (bids, asks) = venue.depth(0, usize::MAX).unwrap();
    let got_bids: Vec<(i64, i64)> = book.bids().map(|l| (l.px, l.qty)).collect();
    let got_asks: Vec<(i64, i64)> = book.asks().map(|l| (l.px, l.qty)).collect();
    assert_eq!(got_bids, bids, "seed {seed}: bids");
    assert_eq!(got_asks, asks, "seed {seed}: asks");
    let ticker = last_ticker.unwrap();
    assert_eq!(
        (
            Some((ticker.bid_px, ticker.bid_qty)),
            Some((ticker.ask_px, ticker.ask_qty))
        ),
        venue.top_levels(0),
        "seed {seed}: the last bookTicker is the top"
    );
}
