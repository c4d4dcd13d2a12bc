//! The maker over the corpus, through risk, against a venue that fills some of its orders:
//! every order that reaches the venue obeys every limit, checked independently of the risk
//! engine:
//! - the collar and gross and net exposure at the reference price of a book rebuilt from the
//!   journal, with the worst case from the venue's own view of positions and resting orders;
//! - the position and open-order limits and self-trade by the venue's own view;
//! - the price filter and the order's notional by the test's own arithmetic;
//! - the rates and duplicates from the sent orders' stamps;
//! - the halted state by the venue: after the kill nothing new arrives and nothing rests.
//!
//! A limit changed mid-run holds from the very next order.

use std::collections::BTreeMap;

use levibot_engine::book::{BookLimits, BookOutcome, OrderBook};
use levibot_engine::pipeline::reference::{self, QUOTE_LOTS};
use levibot_engine::pipeline::{
    MessageSource, Pipeline, Polled, Queued, ReplaySource, Venue, VenueSendError,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::risk::{RiskCheck, RiskLimits};
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::Recording;
use levibot_shm::counters::CountersWriter;
use levibot_shm::records::{
    BookTicker, DepthDiff, ExecutionReport, OrderRequest, Record, RiskReject, SentOrder, exec_type,
    order_kind, record_type, side,
};
use levibot_shm::{Journal, JournalConfig, RetentionPolicy, StartAt, Tailer};

const PASSES: u64 = 30;
/// The venue fills every `FILL_EVERY`th order it accepts, in full, at its price.
const FILL_EVERY: u64 = 3;

/// A venue that acknowledges everything, fills some orders, and keeps its own view of what
/// rests and what we hold, checking each order against the limits as it arrives.
#[derive(Clone)]
struct CheckingVenue {
    limits: RiskLimits,
    instrument_id: u32,
    resting: BTreeMap<u64, (u8, i64, i64)>,
    position: i64,
    accepted: u64,
    reports: std::collections::VecDeque<ExecutionReport>,
    violations: Vec<String>,
    /// NEW and REPLACE orders seen, for the test's own counts.
    entries: u64,
    /// Orders whose notional this venue computed and checked, and the largest.
    notionals_checked: u64,
    notional_max_seen: i128,
    /// The worst-case position (long, short) with each NEW or REPLACE, by this venue's view.
    worst: BTreeMap<u64, (i64, i64)>,
    /// Orders that a mass cancel took off the book.
    mass_canceled: u64,
    seq: u64,
}

impl CheckingVenue {
    fn check(&mut self, order: &OrderRequest) {
        let Some(l) = self.limits.instruments[order.instrument_id as usize] else {
            self.violations
                .push(format!("unknown instrument: {order:?}"));
            return;
        };
        let mut bad = |what: &str| self.violations.push(format!("{what}: {order:?}"));
        if order.px % l.tick_units != 0 {
            bad("price off the tick grid");
        }
        if order.qty % l.lot_units != 0 {
            bad("quantity off the lot grid");
        }
        if order.qty < l.qty_min_units || (l.qty_max_units > 0 && order.qty > l.qty_max_units) {
            bad("quantity outside the exchange filter");
        }
        if order.qty > l.order_qty_max_units {
            bad("quantity over order_qty_max_units");
        }
        // The exchange's price filter (0: no bound that side).
        if order.px < l.price_min_units || (l.price_max_units > 0 && order.px > l.price_max_units) {
            bad("price outside the exchange filter");
        }
        // The order's notional in 10^-18 quote units, by this test's own arithmetic: price and
        // quantity units are mantissa x 10^-exp of the quote and base assets.
        let notional = order.px as i128 * order.qty as i128 * multiplier(&l);
        if notional < l.notional_min {
            bad("notional under the exchange's min notional");
        }
        if notional > l.order_notional_max {
            bad("notional over order_notional_max");
        }
        self.notionals_checked += 1;
        self.notional_max_seen = self.notional_max_seen.max(notional);
        // Worst case with this order, counting what rests (a replace instead of its original).
        let (mut buys, mut sells) = (0, 0);
        let mut count = 0;
        for (&id, &(s, _, qty)) in &self.resting {
            if order.kind == order_kind::REPLACE && id == order.orig_client_order_id {
                continue;
            }
            count += 1;
            if s == side::BUY {
                buys += qty;
            } else {
                sells += qty;
            }
        }
        if order.side == side::BUY {
            buys += order.qty;
        } else {
            sells += order.qty;
        }
        self.worst.insert(
            order.client_order_id,
            (self.position + buys, self.position - sells),
        );
        let worst = (self.position + buys).max(sells - self.position);
        if worst > l.position_max_units {
            bad("worst-case position over position_max_units");
        }
        if order.kind == order_kind::NEW && count + 1 > l.open_orders_max as usize {
            bad("open orders over open_orders_max");
        }
        // Self-trade: never at or through one of our own resting orders on the other side.
        for (&id, &(s, px, _)) in &self.resting {
            let same_order = order.kind == order_kind::REPLACE && id == order.orig_client_order_id;
            let crosses = if order.side == side::BUY {
                s == side::SELL && order.px >= px
            } else {
                s == side::BUY && order.px <= px
            };
            if crosses && !same_order {
                self.violations
                    .push(format!("self-trade against {id} at {px}: {order:?}"));
            }
        }
    }

    fn report(&mut self, order: &OrderRequest, client_order_id: u64, exec: u8, leaves: i64) {
        self.reports.push_back(ExecutionReport {
            client_order_id,
            px: order.px,
            last_px: order.px,
            last_qty: if exec == exec_type::TRADE {
                order.qty
            } else {
                0
            },
            cum_qty: if exec == exec_type::TRADE {
                order.qty
            } else {
                0
            },
            leaves_qty: leaves,
            instrument_id: order.instrument_id,
            exec_type: exec,
            ord_status: if exec == exec_type::TRADE { b'2' } else { b'0' },
            side: order.side,
            ..ExecutionReport::default()
        });
    }
}

impl Venue for CheckingVenue {
    fn send(&mut self, order: &OrderRequest, _now_ns: u64) -> Result<Queued, VenueSendError> {
        self.take(order);
        self.seq += 1;
        Ok(Queued {
            msg_seq_num: self.seq,
            encoded_len: 0,
        })
    }

    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.reports.pop_front()
    }
}

impl CheckingVenue {
    fn take(&mut self, order: &OrderRequest) {
        if order.kind == order_kind::MASS_CANCEL {
            assert!(order.instrument_id == self.instrument_id || order.instrument_id == u32::MAX);
            for (id, (side, px, qty)) in std::mem::take(&mut self.resting) {
                self.mass_canceled += 1;
                let resting = OrderRequest {
                    side,
                    px,
                    qty,
                    ..*order
                };
                self.report(&resting, id, exec_type::CANCELED, 0);
            }
            return;
        }
        assert_eq!(order.instrument_id, self.instrument_id);
        match order.kind {
            order_kind::NEW | order_kind::REPLACE => {
                self.entries += 1;
                self.check(order);
                if order.kind == order_kind::REPLACE {
                    self.resting.remove(&order.orig_client_order_id);
                    self.report(order, order.client_order_id, exec_type::REPLACED, order.qty);
                } else {
                    self.report(order, order.client_order_id, exec_type::NEW, order.qty);
                }
                self.accepted += 1;
                if self.accepted.is_multiple_of(FILL_EVERY) {
                    self.report(order, order.client_order_id, exec_type::TRADE, 0);
                    self.position += if order.side == side::BUY {
                        order.qty
                    } else {
                        -order.qty
                    };
                } else {
                    self.resting
                        .insert(order.client_order_id, (order.side, order.px, order.qty));
                }
            }
            order_kind::CANCEL if self.resting.remove(&order.orig_client_order_id).is_some() => {
                self.report(order, order.orig_client_order_id, exec_type::CANCELED, 0);
            }
            _ => {}
        }
    }
}

/// One price unit times one quantity unit in 10^-18 quote units, by this test's own arithmetic:
/// price and quantity units are mantissa x 10^-exp of the quote and base assets.
fn multiplier(l: &levibot_engine::risk::InstrumentLimits) -> i128 {
    let exp = 18 - l.price_scale.exp as u32 - l.qty_scale.exp as u32;
    l.price_scale.mantissa as i128 * l.qty_scale.mantissa as i128 * 10i128.pow(exp)
}

/// The corpus, held back after `pause_at` messages until released.
struct Gate<S> {
    inner: S,
    issued: u64,
    pause_at: u64,
    released: bool,
}

impl<S: MessageSource> MessageSource for Gate<S> {
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.issued == self.pause_at && !self.released {
            return Polled::Idle;
        }
        let polled = self.inner.poll(now_tsc);
        if matches!(polled, Polled::Message { .. }) {
            self.issued += 1;
        }
        polled
    }
}

/// What happens at the middle of the corpus, while the replay waits.
enum Midway {
    /// New limits, effective from the next order.
    Limits(fn(&RiskLimits) -> RiskLimits),
    /// The kill switch: halt, and cancel every open order at the venue.
    Kill,
}

/// A finished run: the venue's view, the limits of each half, and the journal.
struct Run {
    venue: CheckingVenue,
    second_half: RiskLimits,
    /// Orders and replaces that reached the venue in the first half.
    entries_before: u64,
    /// Risk's refusals in the first half, by check.
    rejects_before: BTreeMap<&'static str, u64>,
    frames: Vec<Frame>,
    /// Frames journaled in the first half.
    journal_mark: usize,
    snapshot: levibot_engine::pipeline::OwnedSnapshot,
}

/// The maker over the corpus with its limits as `tune` sets them, `midway` applied halfway.
fn run_maker(tune: impl Fn(&mut RiskLimits, i64), midway: Midway) -> Run {
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, snapshot) = reference::recording_parts(&recording).unwrap();
    let mut spec = reference::maker_spec(instruments, &instrument, snapshot.clone()).unwrap();
    // The replay runs unpaced: thousands of fills a second would trip the repeated-execution
    // halt, which is not what this test is about.
    spec.risk_limits.fill_rate.count_max = 1_000;
    spec.risk_limits.fill_rate.window_ns = 1_000_000;
    tune(&mut spec.risk_limits, instrument.lot_units);
    spec.risk_limits.validate().unwrap();
    let limits = spec.risk_limits;
    let calibration = levibot_shm::TscCalibration::measure(&quanta::Clock::new());
    let replay = ReplaySource::new(&recording, PASSES, None, &calibration).unwrap();
    let total = replay.messages_per_pass() as u64 * PASSES;
    let source = Gate {
        inner: replay,
        issued: 0,
        pause_at: total / 2,
        released: false,
    };
    let venue = CheckingVenue {
        limits,
        instrument_id: instrument.id,
        resting: BTreeMap::new(),
        position: 0,
        accepted: 0,
        reports: Default::default(),
        violations: Vec::new(),
        entries: 0,
        notionals_checked: 0,
        notional_max_seen: 0,
        worst: BTreeMap::new(),
        mass_canceled: 0,
        seq: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&JournalConfig {
        dir: dir.path().to_owned(),
        segment_size: 64 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap();
    let counters = CountersWriter::create(dir.path().join("c.lvc"), 256, journal.epoch()).unwrap();
    let (mut pipeline, mut controls) = Pipeline::<_, Maker, CheckingVenue, Rtrb>::assemble(
        spec, source, venue, &journal, &counters, true,
    )
    .unwrap();

    while pipeline.run_rounds(1) > 0 {}
    let entries_before = pipeline.gateway.stage().venue().entries;
    let rejects_before: BTreeMap<&'static str, u64> = RiskCheck::ALL
        .iter()
        .map(|c| (c.name(), pipeline.risk.stage().engine().rejects_of(*c)))
        .filter(|(_, n)| *n > 0)
        .collect();
    eprintln!("first half: {entries_before} orders and replaces sent, refused: {rejects_before:?}");
    assert!(
        entries_before > 50,
        "the maker barely quoted: {entries_before}"
    );
    let second_half = match midway {
        Midway::Limits(change) => {
            let changed = change(&limits);
            assert!(controls.limits.send(changed));
            changed
        }
        Midway::Kill => {
            assert!(
                controls
                    .trading
                    .send(levibot_engine::pipeline::TradingCommand::HaltAndCancelAll)
            );
            limits
        }
    };
    let journal_mark = journal_position(dir.path());
    pipeline.feed.source_mut().released = true;
    pipeline.run_to_completion();
    let venue = pipeline.gateway.stage().venue();
    // Every order and replace that arrived had its price filter and notional checked here. The
    // arithmetic, checked by hand: the maker quotes 100 NKN near 0.35 USDT, about 35 USDT.
    assert_eq!(venue.notionals_checked, venue.entries);
    let usdt = 10i128.pow(18);
    assert!(
        (30 * usdt..40 * usdt).contains(&venue.notional_max_seen),
        "{}",
        venue.notional_max_seen
    );
    assert!(
        venue.violations.is_empty(),
        "{} violations, first: {:?}",
        venue.violations.len(),
        venue.violations.first()
    );
    let venue = venue.clone();
    drop(pipeline);
    drop(journal);
    let frames = read_all(dir.path());
    check_collar_exposure_rates_and_duplicates(&frames, &venue, &limits, &snapshot, &calibration);
    Run {
        venue,
        second_half,
        entries_before,
        rejects_before,
        frames,
        journal_mark,
        snapshot,
    }
}

#[test]
fn the_maker_over_the_corpus_obeys_every_limit_and_a_change_holds_from_the_next_order() {
    // Tight enough that position, open-order and self-trade checks bind.
    let run = run_maker(
        |limits, lot| {
            for each in limits.instruments_mut() {
                each.position_max_units = 3 * QUOTE_LOTS * lot;
                each.open_orders_max = 1;
            }
        },
        // Midway: orders may no longer be as large as the maker's quotes.
        Midway::Limits(|limits| {
            let mut smaller = *limits;
            for each in smaller.instruments_mut() {
                each.order_qty_max_units = each.lot_units * (QUOTE_LOTS - 1);
            }
            smaller
        }),
    );
    for binding in [RiskCheck::PositionMax, RiskCheck::InstrumentOpenOrders] {
        assert!(
            run.rejects_before.contains_key(binding.name()),
            "{} never bound: the test would prove nothing about it",
            binding.name()
        );
    }
    assert_eq!(
        run.venue.entries, run.entries_before,
        "after the change no new order or replace may pass"
    );
    // From the journal: the change's first order was refused by it.
    let after: Vec<&Frame> = run.frames.iter().skip(run.journal_mark).collect();
    let first_request = after
        .iter()
        .find_map(|f| match f {
            Frame::Request(r) if matches!(r.kind, order_kind::NEW | order_kind::REPLACE) => Some(r),
            _ => None,
        })
        .expect("the maker kept quoting after the change");
    let refusal = after
        .iter()
        .find_map(|f| match f {
            Frame::Reject(r) if r.request.client_order_id == first_request.client_order_id => {
                Some(r)
            }
            _ => None,
        })
        .expect("the first order after the change was refused");
    assert_eq!(refusal.check, RiskCheck::OrderQtyMax.code());
    let l = run.second_half.instruments[run.snapshot.instrument_id as usize].unwrap();
    assert_eq!(refusal.limit, l.order_qty_max_units);
    assert_eq!(refusal.limit, l.lot_units * (QUOTE_LOTS - 1));
    assert!(!after.iter().any(|f| matches!(
        f,
        Frame::Sent(s) if matches!(s.request.kind, order_kind::NEW | order_kind::REPLACE)
    )));
}

/// Gross exposure binds before the position limit does, and the venue's own arithmetic agrees
/// that no order took it over; then the kill switch leaves nothing at the venue and lets
/// nothing new reach it. (With one instrument, net exposure equals gross: both are checked,
/// only gross can bind first. `tests/risk_limits.rs` makes net bind with two instruments.)
#[test]
fn the_maker_over_the_corpus_obeys_gross_exposure_and_the_kill_leaves_nothing_at_the_venue() {
    let run = run_maker(
        |limits, lot| {
            let l = limits.instruments.iter().flatten().next().unwrap();
            // Two and a half quotes at 0.40 USDT (the corpus trades near 0.35): a third quote
            // of worst case is over it, while positions may reach twenty quotes.
            let px_040 =
                40 * 10i128.pow(l.price_scale.exp as u32) / 100 / l.price_scale.mantissa as i128;
            let gross = 5 * QUOTE_LOTS as i128 * lot as i128 / 2 * px_040 * multiplier(l);
            for each in limits.instruments_mut() {
                each.position_max_units = 20 * QUOTE_LOTS * lot;
                each.open_orders_max = 1;
            }
            limits.gross_exposure_max = gross;
            limits.net_exposure_max = gross;
        },
        Midway::Kill,
    );
    assert!(
        run.rejects_before
            .contains_key(RiskCheck::GrossExposure.name()),
        "gross exposure never bound: the test would prove nothing about it"
    );
    assert!(
        !run.rejects_before
            .contains_key(RiskCheck::PositionMax.name())
    );
    assert_eq!(
        run.venue.entries, run.entries_before,
        "after the kill no new order or replace may reach the venue"
    );
    assert_eq!(
        run.venue.mass_canceled, 1,
        "the kill's mass cancel took the one open order off the book"
    );
    assert!(
        run.venue.resting.is_empty(),
        "after the kill nothing of ours rests at the venue: {:?}",
        run.venue.resting
    );
}

enum Frame {
    Ticker(BookTicker),
    Depth(Box<DepthDiff>),
    Request(OrderRequest),
    Sent(SentOrder),
    Reject(RiskReject),
    Other,
}

fn read_all(dir: &std::path::Path) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    while tailer
        .poll(4096, |f| {
            frames.push(match f.record_type {
                record_type::BOOK_TICKER => {
                    Frame::Ticker(BookTicker::from_bytes(f.payload).unwrap())
                }
                record_type::DEPTH_DIFF => {
                    Frame::Depth(Box::new(DepthDiff::from_bytes(f.payload).unwrap()))
                }
                record_type::ORDER_REQUEST => {
                    Frame::Request(OrderRequest::from_bytes(f.payload).unwrap())
                }
                record_type::ORDER_SENT => Frame::Sent(SentOrder::from_bytes(f.payload).unwrap()),
                record_type::RISK_REJECT => {
                    Frame::Reject(RiskReject::from_bytes(f.payload).unwrap())
                }
                _ => Frame::Other,
            })
        })
        .unwrap()
        .frames
        > 0
    {}
    frames
}

fn journal_position(dir: &std::path::Path) -> usize {
    read_all(dir).len()
}

/// Rebuilds the reference price from the journaled market data (the fused pipeline journals in
/// program order) and checks every sent entry against the collar, and the worst case the venue
/// saw with it against gross and net exposure at that price; checks the order and message
/// rates over the sent orders' risk stamps, and that no two identical new orders went out
/// within the duplicate window.
fn check_collar_exposure_rates_and_duplicates(
    frames: &[Frame],
    venue: &CheckingVenue,
    limits: &RiskLimits,
    snapshot: &levibot_engine::pipeline::OwnedSnapshot,
    calibration: &levibot_shm::TscCalibration,
) {
    let l = limits.instruments[snapshot.instrument_id as usize].unwrap();
    let mut book = OrderBook::new(snapshot.instrument_id, BookLimits::DEFAULT).unwrap();
    let _ = book.apply_snapshot(&snapshot.view()).unwrap();
    // The top of book after each market record, by the receive stamp of its message: the
    // feed journals a message's records after the orders it caused, so an order's reference
    // is found by its `recv_tsc`, not by its place in the journal.
    let mut tops: Vec<(u64, i64, i64)> = Vec::new();
    let mut sent: Vec<&SentOrder> = Vec::new();
    for frame in frames {
        match frame {
            Frame::Ticker(t) if t.instrument_id == snapshot.instrument_id => {
                tops.push((t.recv_tsc, t.bid_px, t.ask_px));
            }
            Frame::Depth(d) if d.instrument_id == snapshot.instrument_id => {
                // A new pass starts again from the snapshot (the replay reloads it).
                let mut outcome = book.apply_diff_chunk(d);
                if !matches!(outcome, Ok(BookOutcome::Applied)) {
                    let _ = book.apply_snapshot(&snapshot.view()).unwrap();
                    outcome = book.apply_diff_chunk(d);
                }
                if matches!(outcome, Ok(BookOutcome::Applied))
                    && let (Some(b), Some(a)) = (book.best_bid(), book.best_ask())
                {
                    tops.push((d.recv_tsc, b.px, a.px));
                }
            }
            Frame::Sent(s) => sent.push(s),
            _ => {}
        }
    }
    assert!(
        tops.is_sorted_by_key(|t| t.0),
        "market data journaled in receive order"
    );
    let mut sent_ns: Vec<u64> = Vec::new();
    let mut entries_ns: Vec<u64> = Vec::new();
    let mut last_new: BTreeMap<(u8, i64, i64), u64> = BTreeMap::new();
    let mut collar_checked = 0;
    for s in sent {
        let ns = calibration.ticks_to_ns(s.request.risk_tsc) as u64;
        sent_ns.push(ns);
        let r = &s.request;
        if matches!(r.kind, order_kind::NEW | order_kind::REPLACE) {
            entries_ns.push(ns);
            let at = tops.partition_point(|t| t.0 <= s.recv_tsc);
            assert!(at > 0, "an order before any top of book: {r:?}");
            let (_, bid, ask) = tops[at - 1];
            let mid2 = (bid + ask) as i128; // twice the mid
            let dist = (2 * r.px as i128 - mid2).abs() * 10_000;
            assert!(
                dist <= l.collar_bps as i128 * mid2,
                "outside the collar: {r:?}, reference {bid}/{ask}"
            );
            collar_checked += 1;
            // Exposure at risk's reference price, the mid rounded down, in 10^-18 quote units.
            let ref_notional = ((bid as i128 + ask as i128) >> 1) * multiplier(&l);
            let (worst_long, worst_short) = venue.worst[&r.client_order_id];
            let gross = worst_long.max(-worst_short) as i128 * ref_notional;
            let net = (worst_long as i128 * ref_notional).max(-worst_short as i128 * ref_notional);
            assert!(
                gross <= limits.gross_exposure_max && net <= limits.net_exposure_max,
                "gross {gross} or net {net} exposure over the limit: {r:?}, reference {bid}/{ask}"
            );
        }
        if r.kind == order_kind::NEW {
            let key = (r.side, r.px, r.qty);
            if let Some(&prev) = last_new.get(&key) {
                assert!(
                    ns.saturating_sub(prev) >= limits.duplicate_window_ns,
                    "a duplicate within the window: {r:?}"
                );
            }
            last_new.insert(key, ns);
        }
    }
    assert!(collar_checked > 50);
    for (stamps, limit) in [
        (&sent_ns, limits.message_rate),
        (&entries_ns, limits.order_rate),
    ] {
        let n = limit.count_max as usize;
        for i in n..stamps.len() {
            assert!(
                stamps[i] - stamps[i - n] >= limit.window_ns,
                "more than {n} within {} ns",
                limit.window_ns
            );
        }
    }
}
