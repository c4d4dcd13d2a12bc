//! Make before break, against venue-sim, whose synthetic traders move three books:
//!
//! - make before break: with a short connection lifetime at the server and a shorter
//!   `reconnect_after` at the feed, the feed rolls over to a new connection again and again
//!   and the books never see a gap, a duplicate, a resync or a stale mark; at the end they are
//!   exactly the venue's own books (the oracle);
//! - when the old connection ends before the new one has caught up (no depth flush between the
//!   two), the new one takes over at once: counted as a fallback, still without a stale mark,
//!   and the books end equal to the venue's.
//!
//! The client side is the engine's book and the gateway's decoder fed by the `WsFeed` on this
//! thread, which sleeps whenever the feed has nothing. Seeds are printed; timeouts are generous.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use levibot_engine::book::{BookLimits, BookOutcome, BookState, OrderBook};
use levibot_engine::pipeline::{MessageSource, Polled, WsFeed, WsFeedConfig, WsFeedStats};
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::InstrumentTable;
use levibot_gateway::ws::{RestEndpoint, Stream};
use levibot_sim::md_server::{
    FeedConfig, FeedThread, Hub, MdConfig, MdServer, MdStats, SnapshotSource, VenueCore,
};
use levibot_sim::synth;

/// Generous: a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(120);
const SYMBOLS: [&str; 3] = ["NKNUSDT", "BLZETH", "RUNEEUR"];

struct Venue {
    table: InstrumentTable,
    core: Arc<VenueCore>,
    md: MdServer,
    flow: Option<FeedThread>,
}

impl Venue {
    fn start(seed: u64, md: MdConfig, depth_interval: Duration) -> Venue {
        let all = Recording::testdata().unwrap().instruments().unwrap();
        let table = InstrumentTable::select(&all, &SYMBOLS).unwrap();
        let fair: Vec<i64> = SYMBOLS
            .iter()
            .map(|s| synth::mid_ticks(s).unwrap())
            .collect();
        let hub = Arc::new(Hub::new(md.client_queue_len));
        let core = Arc::new(VenueCore::new(table.clone(), fair, seed, Arc::clone(&hub)).unwrap());
        core.run_flow(2_000);
        core.flush_depth();
        let server = MdServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            hub,
            Arc::clone(&core) as Arc<dyn SnapshotSource>,
            md,
        )
        .unwrap();
        let flow = FeedThread::spawn(
            Arc::clone(&core),
            FeedConfig {
                rate: 300,
                depth_interval,
            },
        )
        .unwrap();
        Venue {
            table,
            core,
            md: server,
            flow: Some(flow),
        }
    }

    fn feed_config(&self, reconnect_after: Duration) -> WsFeedConfig {
        let addr = self.md.local_addr();
        WsFeedConfig {
            addr,
            host: addr.to_string(),
            rest: RestEndpoint {
                addr,
                host: addr.to_string(),
                tls: None,
            },
            symbols: self
                .table
                .iter()
                .map(|i| (i.symbol.to_string(), i.id))
                .collect(),
            streams: vec![Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade],
            ping_interval: Duration::from_secs(1),
            pong_timeout: Duration::from_secs(30),
            tls: None,
            reconnect_after,
        }
    }

    /// Stops the traders and publishes what is pending: the venue's books as of the last depth
    /// message, with each one's update id.
    fn freeze(&mut self) -> Vec<(u64, Levels, Levels)> {
        if let Some(flow) = self.flow.take() {
            flow.stop();
        }
        self.core.flush_depth_and(|engine| {
            (0..SYMBOLS.len() as u32)
                .map(|id| {
                    let (bids, asks) = engine.depth(id, usize::MAX).unwrap();
                    (engine.update_id(id).unwrap(), bids, asks)
                })
                .collect()
        })
    }
}

type Levels = Vec<(i64, i64)>;

/// What the feed handed the books, checked as it goes.
struct Client {
    seed: u64,
    decoder: Decoder,
    books: Vec<OrderBook>,
    /// Per book: the last `u` applied once synced (every later diff must be `u + 1`).
    last_u: Vec<Option<u64>>,
    snapshots: Vec<usize>,
    depth_diffs: u64,
}

impl Client {
    fn new(seed: u64, table: &InstrumentTable) -> Client {
        Client {
            seed,
            decoder: Decoder::new(table.clone()),
            books: (0..table.len() as u32)
                .map(|id| OrderBook::new(id, BookLimits::DEFAULT).unwrap())
                .collect(),
            last_u: vec![None; table.len()],
            snapshots: vec![0; table.len()],
            depth_diffs: 0,
        }
    }

    /// One poll of the feed; `false` when it had nothing.
    fn poll(&mut self, feed: &mut WsFeed) -> bool {
        let seed = self.seed;
        match feed.poll(0) {
            Polled::Snapshot {
                instrument_id,
                body,
            } => {
                let i = instrument_id as usize;
                self.snapshots[i] += 1;
                assert_eq!(
                    self.snapshots[i], 1,
                    "seed {seed}: a second snapshot of book {i}: a resync"
                );
                let snapshot = self.decoder.decode_snapshot(body, instrument_id).unwrap();
                let outcome = self.books[i].apply_snapshot(&snapshot).unwrap();
                assert_eq!(outcome, BookOutcome::Applied, "seed {seed}: book {i}");
            }
            Polled::Message { bytes, .. } => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                match self.decoder.decode(bytes, 0) {
                    Ok(MarketEvent::Depth(d)) => {
                        self.depth_diffs += 1;
                        let i = d.instrument_id as usize;
                        if let Some(last) = self.last_u[i] {
                            assert_eq!(
                                d.first_update_id,
                                last + 1,
                                "seed {seed}: book {i}: a gap or a duplicate: {text}"
                            );
                        }
                        match self.books[i].apply_update(&d) {
                            BookOutcome::Applied => self.last_u[i] = Some(d.final_update_id),
                            // Before the snapshot, and the diffs it already holds.
                            BookOutcome::Buffered | BookOutcome::Stale
                                if self.last_u[i].is_none() => {}
                            other => panic!("seed {seed}: book {i}: {other:?} for {text}"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("seed {seed}: {e}: {text}"),
                }
            }
            Polled::Stale => panic!(
                "seed {seed}: the books were marked stale: {:?}",
                feed.last_error()
            ),
            Polled::Resync | Polled::Done => panic!("seed {seed}: not from a live feed"),
            Polled::Idle => return false,
        }
        true
    }

    /// Polls until `done` (sleeping whenever the feed has nothing), or panics after `TIMEOUT`.
    fn run_until(&mut self, feed: &mut WsFeed, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "seed {}: {what}: timed out; stats {:?}",
                self.seed,
                feed.stats()
            );
            if !self.poll(feed) {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    fn synced(&self) -> bool {
        self.books.iter().all(|b| b.state() == BookState::Synced)
    }

    /// Polls until every book is at its venue update id, then compares the levels.
    fn assert_books_are(&mut self, feed: &mut WsFeed, oracle: &[(u64, Levels, Levels)]) {
        let seed = self.seed;
        self.run_until(feed, "the books reach the venue's last update", |c| {
            c.books
                .iter()
                .zip(oracle)
                .all(|(b, (id, _, _))| b.last_update_id() == Some(*id))
        });
        for (i, (book, (_, bids, asks))) in self.books.iter().zip(oracle).enumerate() {
            let got_bids: Levels = book.bids().map(|l| (l.px, l.qty)).collect();
            let got_asks: Levels = book.asks().map(|l| (l.px, l.qty)).collect();
            assert_eq!(&got_bids, bids, "seed {seed}: book {i}: bids");
            assert_eq!(&got_asks, asks, "seed {seed}: book {i}: asks");
        }
    }
}

/// The feed's counts at one moment.
#[derive(Debug)]
struct Counts {
    connects: u64,
    disconnects: u64,
    rollovers: u64,
    fallbacks: u64,
    snapshots: u64,
}

fn load(stats: &WsFeedStats) -> Counts {
    Counts {
        connects: stats.connects.load(Ordering::Relaxed),
        disconnects: stats.disconnects.load(Ordering::Relaxed),
        rollovers: stats.rollovers.load(Ordering::Relaxed),
        fallbacks: stats.rollover_fallbacks.load(Ordering::Relaxed),
        snapshots: stats.snapshots_fetched.load(Ordering::Relaxed),
    }
}

/// Waits until the server's stats satisfy `done`.
fn wait_for_server(md: &MdServer, what: &str, done: impl Fn(&MdStats) -> bool) -> MdStats {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let stats = md.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: timed out; {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn rollovers_keep_the_books_without_a_gap() {
    const ROLLOVERS: u64 = 4;
    let seed = levibot_testkit::seed();
    // Binance's 24 h and 23 h 30 min, scaled down.
    let lifetime = Duration::from_secs(3);
    let reconnect_after = Duration::from_millis(1_500);
    let md = MdConfig {
        connection_lifetime: Some(lifetime),
        ..MdConfig::default()
    };
    let mut venue = Venue::start(seed, md, Duration::from_millis(20));
    let mut feed = WsFeed::start(venue.feed_config(reconnect_after)).unwrap();
    let stats = feed.stats();
    let mut client = Client::new(seed, &venue.table);
    client.run_until(&mut feed, "sync", Client::synced);
    client.run_until(&mut feed, "rollovers", |_| {
        stats.rollovers.load(Ordering::Relaxed) >= ROLLOVERS
    });
    let oracle = venue.freeze();
    client.assert_books_are(&mut feed, &oracle);
    let counts = load(&stats);
    let rollovers = counts.rollovers;
    eprintln!(
        "seed {seed}: {counts:?}, {} depth diffs, {:?}",
        client.depth_diffs,
        venue.md.stats()
    );
    assert_eq!(
        (counts.connects, counts.disconnects, counts.fallbacks),
        (1, 0, 0),
        "seed {seed}: one connect, no break, no fallback: {counts:?}"
    );
    assert_eq!(
        counts.snapshots,
        SYMBOLS.len() as u64,
        "seed {seed}: no resync: {counts:?}"
    );
    // Every old connection was closed by the feed with Close 1000, none by the server's limit.
    let server = wait_for_server(&venue.md, "the old connections' Close", |s| {
        s.client_closes_normal >= rollovers
    });
    assert_eq!(server.lifetime_closes, 0, "seed {seed}: {server:?}");
    assert_eq!(
        server.client_closes, server.client_closes_normal,
        "seed {seed}: {server:?}"
    );
    drop(feed);
    wait_for_server(&venue.md, "the last connection's Close", |s| {
        s.client_closes_normal > rollovers && s.open == 0
    });
}

#[test]
fn an_old_connection_that_ends_first_hands_over_at_once() {
    let seed = levibot_testkit::seed();
    // The server ends a connection 1.5 s after the feed opens the next one, and the books
    // change only every 10 s: the new connection mostly sees no diff to catch up with before
    // the old one is gone (trades still flow on both).
    let md = MdConfig {
        connection_lifetime: Some(Duration::from_secs(3)),
        ..MdConfig::default()
    };
    let mut venue = Venue::start(seed, md, Duration::from_secs(10));
    let mut feed = WsFeed::start(venue.feed_config(Duration::from_millis(1_500))).unwrap();
    let stats = feed.stats();
    let mut client = Client::new(seed, &venue.table);
    client.run_until(&mut feed, "sync", Client::synced);
    client.run_until(&mut feed, "fallbacks", |_| {
        stats.rollover_fallbacks.load(Ordering::Relaxed) >= 2
    });
    let oracle = venue.freeze();
    client.assert_books_are(&mut feed, &oracle);
    let counts = load(&stats);
    eprintln!("seed {seed}: {counts:?}, {:?}", venue.md.stats());
    assert_eq!(
        (counts.connects, counts.disconnects),
        (1, 0),
        "seed {seed}: no break: {counts:?}"
    );
    assert!(counts.rollovers >= counts.fallbacks, "seed {seed}");
    assert!(venue.md.stats().lifetime_closes >= 2, "seed {seed}");
}
