//! Criterion micro-benchmark of order-book updates on the corpus recordings:
//! `cargo bench -p levibot-bench --bench book`.
//!
//! For each instrument, a book (`BookLimits::DEFAULT`) is synced from its REST snapshot, then the
//! recorded depth updates that follow the snapshot are applied in order. The updates are decoded
//! beforehand: only `OrderBook::apply_update` is timed. Each iteration starts from a freshly
//! synced book (criterion's setup, untimed), since an update applies only once in sequence.
//!
//! - `book/apply_update/all`: the four books, the updates in the order they were recorded (as the
//!   daemon routes them);
//! - `book/apply_update/<SYMBOL>`: one book and its own updates.
//!
//! Throughput is in updates (elements), so criterion also reports updates per second.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use levibot_engine::book::{BookLimits, BookOutcome, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, DepthSnapshot, DepthUpdate, Level, MarketEvent};
use levibot_gateway::capture::{capture_lines, testdata_dir};
use levibot_gateway::instrument::{InstrumentTable, parse_exchange_info};

const SYMBOLS: [&str; 4] = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"];

/// A decoded depth update that owns its levels.
struct Update {
    instrument_id: u32,
    event_time_ms: u64,
    first_update_id: u64,
    final_update_id: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Update {
    fn as_update(&self) -> DepthUpdate<'_> {
        DepthUpdate {
            instrument_id: self.instrument_id,
            recv_tsc: 0,
            event_time_ms: self.event_time_ms,
            first_update_id: self.first_update_id,
            final_update_id: self.final_update_id,
            bids: &self.bids,
            asks: &self.asks,
        }
    }
}

/// A decoded REST snapshot that owns its levels.
struct Snapshot {
    instrument_id: u32,
    last_update_id: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Snapshot {
    fn as_snapshot(&self) -> DepthSnapshot<'_> {
        DepthSnapshot {
            instrument_id: self.instrument_id,
            last_update_id: self.last_update_id,
            bids: &self.bids,
            asks: &self.asks,
        }
    }

    fn synced_book(&self) -> OrderBook {
        let mut book = OrderBook::new(self.instrument_id, BookLimits::DEFAULT).expect("limits");
        let outcome = book.apply_snapshot(&self.as_snapshot());
        assert_eq!(outcome, Ok(BookOutcome::Applied), "snapshot");
        book
    }
}

struct Corpus {
    /// Indexed by instrument id.
    snapshots: Vec<Snapshot>,
    /// In recorded order, only those that apply after the snapshot (the stale ones before it
    /// are left out).
    updates: Vec<Update>,
}

fn load() -> Corpus {
    let dir = testdata_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("reading {name} in {}: {e}", dir.display()))
    };
    let info = read("BINANCE.0");
    let info = capture_lines(&info).next().expect("exchangeInfo").unwrap();
    let all = parse_exchange_info(info.body).unwrap();
    let instruments = InstrumentTable::select(&all, &SYMBOLS).unwrap();
    let mut decoder = Decoder::new(instruments.clone());

    let mut snapshots: Vec<Option<Snapshot>> = (0..instruments.len()).map(|_| None).collect();
    let rest = read("BINANCE.http.0.0");
    for line in capture_lines(&rest) {
        let line = line.unwrap();
        let url = line.url.expect("REST line with its URL");
        let symbol = url.split("symbol=").nth(1).unwrap().split('&').next();
        let id = instruments.find(symbol.unwrap().as_bytes()).unwrap().id;
        let s = decoder.decode_snapshot(line.body, id).unwrap();
        snapshots[id as usize] = Some(Snapshot {
            instrument_id: id,
            last_update_id: s.last_update_id,
            bids: s.bids.to_vec(),
            asks: s.asks.to_vec(),
        });
    }
    let snapshots: Vec<Snapshot> = snapshots
        .into_iter()
        .map(|s| s.expect("a snapshot for every instrument"))
        .collect();

    // Keep the updates that apply in sequence after each instrument's snapshot.
    let mut books: Vec<OrderBook> = snapshots.iter().map(Snapshot::synced_book).collect();
    let mut updates = Vec::new();
    let stream = read("BINANCE.ws.1.0");
    for line in capture_lines(&stream) {
        let line = line.unwrap();
        let MarketEvent::Depth(d) = decoder.decode(line.body, 0).unwrap() else {
            continue;
        };
        let update = Update {
            instrument_id: d.instrument_id,
            event_time_ms: d.event_time_ms,
            first_update_id: d.first_update_id,
            final_update_id: d.final_update_id,
            bids: d.bids.to_vec(),
            asks: d.asks.to_vec(),
        };
        match books[d.instrument_id as usize].apply_update(&update.as_update()) {
            BookOutcome::Applied => updates.push(update),
            BookOutcome::Stale => {}
            other => panic!("corpus line {}: {other:?}", line.line),
        }
    }
    assert!(books.iter().all(|b| b.state() == BookState::Synced));
    Corpus { snapshots, updates }
}

fn apply_all(books: &mut [OrderBook], updates: &[Update]) {
    for u in updates {
        let outcome = books[u.instrument_id as usize].apply_update(&u.as_update());
        let _ = black_box(outcome);
    }
}

fn book_updates(c: &mut Criterion) {
    let corpus = load();
    let mut group = c.benchmark_group("book/apply_update");
    group.throughput(Throughput::Elements(corpus.updates.len() as u64));
    group.bench_function("all", |b| {
        b.iter_batched_ref(
            || {
                corpus
                    .snapshots
                    .iter()
                    .map(Snapshot::synced_book)
                    .collect::<Vec<_>>()
            },
            |books| apply_all(books, &corpus.updates),
            BatchSize::LargeInput,
        )
    });
    for snapshot in &corpus.snapshots {
        let own: Vec<&Update> = corpus
            .updates
            .iter()
            .filter(|u| u.instrument_id == snapshot.instrument_id)
            .collect();
        if own.is_empty() {
            continue;
        }
        group.throughput(Throughput::Elements(own.len() as u64));
        group.bench_function(SYMBOLS[snapshot.instrument_id as usize], |b| {
            b.iter_batched_ref(
                || snapshot.synced_book(),
                |book| {
                    for u in &own {
                        let _ = black_box(book.apply_update(&u.as_update()));
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, book_updates);
criterion_main!(benches);
