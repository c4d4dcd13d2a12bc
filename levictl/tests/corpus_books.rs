//! Replaying a recording through the decoder and the books gives, for each of its 4 symbols, the
//! same full book as an independent slow reference: BTreeMaps of rust_decimal built straight from
//! the JSON with serde_json, following Binance's documented procedure. On the repository's
//! synthetic recording, and on the real Binance corpus when it is here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use levibot_book::BookState;
use levibot_gateway::capture::{corpus_dir, real_corpus_for, testdata_dir};
use rust_decimal::Decimal;
use serde_json::Value;

#[derive(Default)]
struct ReferenceBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    last_update_id: Option<u64>,
    buffered: Vec<Value>,
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap().normalize()
}

fn apply_levels(side: &mut BTreeMap<Decimal, Decimal>, levels: &Value) {
    for level in levels.as_array().unwrap() {
        let (px, qty) = (dec(&level[0]), dec(&level[1]));
        if qty.is_zero() {
            side.remove(&px);
        } else {
            side.insert(px, qty);
        }
    }
}

impl ReferenceBook {
    fn diff(&mut self, d: Value) {
        let Some(last) = self.last_update_id else {
            self.buffered.push(d);
            return;
        };
        let (first, fin) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        if fin <= last {
            return; // stale
        }
        assert!(
            first <= last + 1,
            "reference: gap before U={first} (last u={last})"
        );
        apply_levels(&mut self.bids, &d["b"]);
        apply_levels(&mut self.asks, &d["a"]);
        self.last_update_id = Some(fin);
    }

    fn snapshot(&mut self, s: &Value) {
        self.bids.clear();
        self.asks.clear();
        apply_levels(&mut self.bids, &s["bids"]);
        apply_levels(&mut self.asks, &s["asks"]);
        self.last_update_id = Some(s["lastUpdateId"].as_u64().unwrap());
        for d in std::mem::take(&mut self.buffered) {
            self.diff(d);
        }
    }
}

/// `<prefix>: <json>` -> (epoch, json), from a line of the corpus.
fn split_line(line: &str) -> (Option<&str>, f64, Value) {
    let (url, rest) = match line.split_once(" -> ") {
        Some((url, rest)) => (Some(url), rest),
        None => (None, line),
    };
    let (epoch, json) = rest.split_once(": ").unwrap();
    (
        url,
        epoch.parse().unwrap(),
        serde_json::from_str(json).unwrap(),
    )
}

fn reference_books(dir: &Path) -> BTreeMap<String, ReferenceBook> {
    let mut books: BTreeMap<String, ReferenceBook> = BTreeMap::new();
    let rest = std::fs::read_to_string(dir.join("BINANCE.http.0.0")).unwrap();
    let mut snapshots: Vec<(f64, String, Value)> = rest
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(|l| {
            let (url, epoch, json) = split_line(l);
            let symbol = url
                .unwrap()
                .split("symbol=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            (epoch, symbol.to_owned(), json)
        })
        .collect();
    snapshots.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut snapshots = snapshots.into_iter().peekable();
    let stream = std::fs::read_to_string(dir.join("BINANCE.ws.1.0")).unwrap();
    for line in stream
        .lines()
        .filter(|l| !l.contains(" <-> ") && !l.trim().is_empty())
    {
        let (_, epoch, msg) = split_line(line);
        while snapshots.peek().is_some_and(|s| s.0 <= epoch) {
            let (_, symbol, snap) = snapshots.next().unwrap();
            books.entry(symbol).or_default().snapshot(&snap);
        }
        let data = &msg["data"];
        if data["e"] == "depthUpdate" {
            let symbol = data["s"].as_str().unwrap().to_owned();
            books.entry(symbol).or_default().diff(data.clone());
        }
    }
    for (_, symbol, snap) in snapshots {
        books.entry(symbol).or_default().snapshot(&snap);
    }
    books
}

#[test]
fn replayed_books_equal_the_reference_books() {
    // The synthetic books hold 20 levels a side.
    replayed_books_equal_the_reference_books_in(&testdata_dir(), 20);
}

#[test]
fn real_corpus_replayed_books_equal_the_reference_books() {
    if real_corpus_for("real_corpus_replayed_books_equal_the_reference_books").is_none() {
        return;
    }
    let dir = corpus_dir().unwrap().unwrap();
    replayed_books_equal_the_reference_books_in(&dir, 100);
}

fn replayed_books_equal_the_reference_books_in(dir: &Path, levels_min: usize) {
    let dir: PathBuf = dir.to_owned();
    let reference = reference_books(&dir);
    assert_eq!(reference.len(), 4);
    let replay = levictl::capture_check::replay(
        &dir.join("BINANCE.ws.1.0"),
        &dir.join("BINANCE.http.0.0"),
        &dir.join("BINANCE.0"),
    )
    .unwrap();
    for instrument in replay.instruments.iter() {
        let book = &replay.books[instrument.id as usize];
        let expected = &reference[instrument.symbol.as_str()];
        assert_eq!(book.state(), BookState::Synced, "{}", instrument.symbol);
        assert_eq!(
            book.last_update_id(),
            expected.last_update_id,
            "{}",
            instrument.symbol
        );
        let ours = |levels: Vec<levibot_shm::records::Level>| -> Vec<(Decimal, Decimal)> {
            levels
                .into_iter()
                .map(|l| {
                    (
                        instrument.price_scale.to_decimal(l.px).normalize(),
                        instrument.qty_scale.to_decimal(l.qty).normalize(),
                    )
                })
                .collect()
        };
        let bids = ours(book.bids().collect());
        let asks = ours(book.asks().collect());
        let ref_bids: Vec<(Decimal, Decimal)> =
            expected.bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
        let ref_asks: Vec<(Decimal, Decimal)> =
            expected.asks.iter().map(|(p, q)| (*p, *q)).collect();
        assert!(
            bids.len() >= levels_min && asks.len() >= levels_min,
            "{}: a full book",
            instrument.symbol
        );
        assert_eq!(bids, ref_bids, "{} bids", instrument.symbol);
        assert_eq!(asks, ref_asks, "{} asks", instrument.symbol);
        assert!(
            bids[0].0 < asks[0].0,
            "{} is not crossed",
            instrument.symbol
        );
        let report = &replay.report.symbols[instrument.symbol.as_str()];
        assert_eq!((report.gaps, report.resyncs), (0, 0));
    }
}
