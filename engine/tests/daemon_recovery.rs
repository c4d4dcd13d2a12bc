//! Recovery after a crash: the real pipeline (the reference maker over a seeded synthetic
//! stream, against a venue that acknowledges, fills part or all of some orders, refuses some
//! and answers late) journals into a directory and is stopped at a random point; the state
//! `daemon::recovery::recover` rebuilds from the journal alone equals the live risk engine's:
//! positions, open orders (ids, sides, prices, leaves), realised PnL, the trading state and the
//! client-order-id mark, which is above every id in the journal. And it equals the venue's own
//! view, which shares no code with recovery (the live engine shares `on_execution`): the
//! position the venue filled, and every order resting there open with its price, fills and
//! leaves. A second run continues from
//! the recovered state and ids and recovers again. And the edges: a halted journal, instrument
//! definitions that disagree with the configuration, corrupt payloads, an empty or missing
//! directory, missing or pruned segments, a clean stop, a trip that a refusal journaled.
//!
//! Stopping: the source is held back at a random message and the venue stops answering (what
//! it was sent stays unanswered, as if the process died after the write-ahead `SentOrder`);
//! then the pipeline runs until idle, so that every report journaled has reached risk too.
//! The process "crashes" there: nothing more is written, no `STOPPED` event.
//!
//! Checkpoints (`daemon::checkpoint`): a `ShadowRecovery` runs beside the pipeline as the
//! daemon runs it (started from start-up recovery, checkpointing at once, catching up and
//! checkpointing at random moments, caught up or lagging by a random number of frames), and
//! recovery from each checkpoint equals the full replay (`recover_from_start`) in everything
//! (`Recovered::state`, the whole replayed state); with tiny segments compressed and pruned by
//! the journal's own maintenance, recovery from the last checkpoint (whose P lies in an earlier,
//! compressed segment) equals the full replay of the whole journal, kept aside by hard links,
//! and the live engine; a checkpoint without its end, with a wrong count or with a stray
//! writer's record is ignored; a checkpoint's P pruned, or no checkpoint and no segment 0, is
//! `Pruned`; a checkpoint carries its instruments' definitions; a shadow that lost frames stops.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use levibot_engine::daemon::checkpoint::{
    CATCH_UP_FRAMES_MAX, Checkpoint, CheckpointError, CheckpointWritten, ShadowRecovery,
};
use levibot_engine::daemon::recovery::{
    Recovered, RecoveryError, WarningProblem, recover, recover_from_start,
};
use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::{
    MessageSource, Pipeline, PipelineControls, Polled, Queued, SyntheticSource, TradingCommand,
    Venue, VenueSendError, writer_id,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::risk::{OpenOrderInfo, RiskCheck, RiskEngine, RiskLimits, TradingState};
use levibot_engine::strategy::maker::{Maker, MakerParams};
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::counters::CountersWriter;
use levibot_shm::layout::{SEGMENT_SIZE_MIN, segment_file_name};
use levibot_shm::records::{
    CheckpointEnd, DaemonEvent, ExecutionReport, InstrumentDef, OrderRequest, Record, RiskReject,
    SentOrder, daemon_event, exec_type, ord_type, order_kind, record_type, side, time_in_force,
};
use levibot_shm::{
    Appender, Journal, JournalConfig, Position, RecordType, RetentionPolicy, StartAt, Tailer,
    list_segments,
};

/// Messages of a run's synthetic stream (it is held back before the end).
const MESSAGES: u64 = 20_000;
/// Duty cycles a drain may take before the test calls it a hang.
const DRAIN_ROUNDS_MAX: usize = 1_000_000;
/// In percent: new orders the venue refuses; queued orders it answers at each flush; flushes
/// that fill (part of) a resting order.
const VENUE_REJECT_PCT: u8 = 3;
const VENUE_ANSWER_PCT: u8 = 70;
const VENUE_FILL_PCT: u8 = 15;

fn journal_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        segment_size: 16 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    }
}

fn journal(dir: &Path) -> Journal {
    Journal::open(&journal_config(dir)).unwrap()
}

fn corpus_instrument() -> (InstrumentTable, Instrument) {
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, _) = reference::recording_parts(&recording).unwrap();
    (instruments, instrument)
}

/// The reference limits, with a fill throttle the unpaced run never trips (not what this is
/// about: a trip's timing differs by nanoseconds between the live engine and a replay).
fn limits(instrument: &Instrument) -> RiskLimits {
    let mut limits = reference::risk_limits(instrument).unwrap();
    limits.fill_rate.count_max = 1_000;
    limits.fill_rate.window_ns = 1_000;
    limits.validate().unwrap();
    limits
}

/// What the daemon journals first: every instrument of the configuration.
fn write_defs(appender: &mut Appender, instruments: &InstrumentTable) {
    for i in instruments.iter() {
        let def = InstrumentDef::new(
            i.id,
            i.symbol.as_str(),
            (i.price_scale.mantissa, i.price_scale.exp),
            (i.qty_scale.mantissa, i.qty_scale.exp),
        )
        .unwrap();
        appender
            .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
            .unwrap();
    }
}

fn event(kind: u16, value: i64) -> DaemonEvent {
    DaemonEvent {
        unix_ns: 1,
        value,
        kind,
        ..DaemonEvent::default()
    }
}

// ------------------------------------------------------------------------------------------------
// The venue.

/// An order resting at the venue.
#[derive(Clone, Copy, Debug)]
struct Resting {
    order: OrderRequest,
    /// Total quantity (FIX OrderQty) and filled so far.
    qty: i64,
    cum: i64,
}

/// The venue's book of our orders; shared, so that a second run finds what the first left.
struct VenueState {
    rng: fastrand::Rng,
    lot_units: i64,
    /// Stops answering: what it is sent waits.
    frozen: bool,
    next_msg_seq_num: u64,
    /// Sent to it and not answered yet, in order.
    queued: VecDeque<OrderRequest>,
    resting: BTreeMap<u64, Resting>,
    reports: VecDeque<ExecutionReport>,
    fills: u64,
    /// What its fills of our orders add up to: bought minus sold.
    position: i64,
}

impl VenueState {
    fn new(seed: u64, lot_units: i64) -> Arc<Mutex<VenueState>> {
        Arc::new(Mutex::new(VenueState {
            rng: fastrand::Rng::with_seed(seed),
            lot_units,
            frozen: false,
            next_msg_seq_num: 1,
            queued: VecDeque::new(),
            resting: BTreeMap::new(),
            reports: VecDeque::new(),
            fills: 0,
            position: 0,
        }))
    }

    fn report(&mut self, order: &OrderRequest, client_order_id: u64, exec: u8, r: Resting) {
        self.reports.push_back(ExecutionReport {
            client_order_id,
            px: order.px,
            cum_qty: r.cum,
            leaves_qty: if matches!(exec, exec_type::NEW | exec_type::REPLACED) {
                r.qty - r.cum
            } else {
                0
            },
            instrument_id: order.instrument_id,
            exec_type: exec,
            ord_status: exec,
            side: order.side,
            ..ExecutionReport::default()
        });
    }

    /// The venue's answer to one order.
    fn answer(&mut self, o: OrderRequest) {
        let none = Resting {
            order: o,
            qty: 0,
            cum: 0,
        };
        match o.kind {
            order_kind::NEW if self.rng.u8(..100) < VENUE_REJECT_PCT => {
                self.report(&o, o.client_order_id, exec_type::REJECTED, none);
            }
            order_kind::NEW => {
                let r = Resting {
                    order: o,
                    qty: o.qty,
                    cum: 0,
                };
                self.resting.insert(o.client_order_id, r);
                self.report(&o, o.client_order_id, exec_type::NEW, r);
            }
            order_kind::REPLACE => match self.resting.get(&o.orig_client_order_id).copied() {
                Some(r) if o.qty > r.cum => {
                    self.resting.remove(&o.orig_client_order_id);
                    let r = Resting {
                        order: o,
                        qty: o.qty,
                        cum: r.cum,
                    };
                    self.resting.insert(o.client_order_id, r);
                    self.report(&o, o.client_order_id, exec_type::REPLACED, r);
                }
                // Gone, or filled beyond the new quantity: OrderCancelReject.
                _ => self.report(&o, o.client_order_id, exec_type::REJECTED, none),
            },
            order_kind::CANCEL => match self.resting.remove(&o.orig_client_order_id) {
                Some(r) => self.report(&r.order, o.orig_client_order_id, exec_type::CANCELED, r),
                None => self.report(&o, o.client_order_id, exec_type::REJECTED, none),
            },
            _ => {
                for (id, r) in std::mem::take(&mut self.resting) {
                    self.report(&r.order, id, exec_type::CANCELED, r);
                }
            }
        }
    }

    /// Somebody trades against one of our resting orders: part or all of it.
    fn fill_one(&mut self) {
        if self.resting.is_empty() {
            return;
        }
        let k = self.rng.usize(..self.resting.len());
        let (&id, &r) = self.resting.iter().nth(k).unwrap();
        let leaves = r.qty - r.cum;
        let lots = leaves / self.lot_units;
        let qty = if lots <= 1 || self.rng.bool() {
            leaves
        } else {
            self.rng.i64(1..lots) * self.lot_units
        };
        let r = Resting {
            cum: r.cum + qty,
            ..r
        };
        self.reports.push_back(ExecutionReport {
            client_order_id: id,
            px: r.order.px,
            last_px: r.order.px,
            last_qty: qty,
            cum_qty: r.cum,
            leaves_qty: r.qty - r.cum,
            instrument_id: r.order.instrument_id,
            exec_type: exec_type::TRADE,
            ord_status: if r.qty == r.cum { b'2' } else { b'1' },
            side: r.order.side,
            ..ExecutionReport::default()
        });
        self.fills += 1;
        self.position += if r.order.side == side::BUY { qty } else { -qty };
        if r.qty == r.cum {
            self.resting.remove(&id);
        } else {
            self.resting.insert(id, r);
        }
    }
}

/// The pipeline's venue: answers in order, some answers late (left for a later flush).
struct FillingVenue(Arc<Mutex<VenueState>>);

impl Venue for FillingVenue {
    fn send(&mut self, order: &OrderRequest, _now_ns: u64) -> Result<Queued, VenueSendError> {
        let mut v = self.0.lock().unwrap();
        let msg_seq_num = v.next_msg_seq_num;
        v.next_msg_seq_num += 1;
        v.queued.push_back(*order);
        Ok(Queued {
            msg_seq_num,
            encoded_len: 100,
        })
    }

    fn flush(&mut self, _now_ns: u64) {
        let mut v = self.0.lock().unwrap();
        if v.frozen {
            return;
        }
        while !v.queued.is_empty() && v.rng.u8(..100) < VENUE_ANSWER_PCT {
            let o = v.queued.pop_front().unwrap();
            v.answer(o);
        }
        if v.rng.u8(..100) < VENUE_FILL_PCT {
            v.fill_one();
        }
    }

    fn poll_report(&mut self) -> Option<ExecutionReport> {
        self.0.lock().unwrap().reports.pop_front()
    }
}

// ------------------------------------------------------------------------------------------------
// Runs.

/// The synthetic stream, held back after `pause_at` messages.
struct Gate {
    inner: SyntheticSource,
    issued: u64,
    pause_at: u64,
}

impl MessageSource for Gate {
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.issued >= self.pause_at {
            return Polled::Idle;
        }
        let polled = self.inner.poll(now_tsc);
        if matches!(polled, Polled::Message { .. }) {
            self.issued += 1;
        }
        polled
    }
}

type TestPipeline = Pipeline<Gate, Maker, FillingVenue, Rtrb>;

/// One daemon run: the journal open, the instrument definitions written first, the pipeline.
struct Run {
    journal: Journal,
    daemon: Appender,
    pipeline: TestPipeline,
    controls: PipelineControls<MakerParams>,
    _counters: CountersWriter,
}

/// Opens the journal in `dir` and assembles the pipeline: the maker from `first_id`, and the
/// risk engine `restored` (a fresh one if `None`).
#[allow(clippy::too_many_arguments)]
fn start_run(
    dir: &Path,
    counters_dir: &Path,
    run: u32,
    seed: u64,
    pause_at: u64,
    venue: &Arc<Mutex<VenueState>>,
    first_id: u64,
    restored: Option<RiskEngine>,
) -> Run {
    let config = journal_config(dir);
    start_run_in(
        &config,
        counters_dir,
        run,
        seed,
        pause_at,
        venue,
        first_id,
        restored,
    )
}

/// [`start_run`] with a journal of another configuration.
#[allow(clippy::too_many_arguments)]
fn start_run_in(
    config: &JournalConfig,
    counters_dir: &Path,
    run: u32,
    seed: u64,
    pause_at: u64,
    venue: &Arc<Mutex<VenueState>>,
    first_id: u64,
    restored: Option<RiskEngine>,
) -> Run {
    let (instruments, instrument) = corpus_instrument();
    let journal = Journal::open(config).unwrap();
    let mut daemon = journal.appender(writer_id::DAEMON).unwrap();
    write_defs(&mut daemon, &instruments);
    daemon
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::STARTED, i64::from(restored.is_some())).to_bytes(),
        )
        .unwrap();
    let calibration = journal.calibration();
    let source = SyntheticSource::new(
        &instrument,
        SYNTHETIC_MID_TICKS,
        MESSAGES,
        seed,
        None,
        &calibration,
    )
    .unwrap();
    let mut spec = reference::maker_spec(instruments, &instrument, source.snapshot()).unwrap();
    spec.risk_limits = limits(&instrument);
    spec.first_client_order_id = first_id;
    let counters = CountersWriter::create(
        counters_dir.join(format!("counters-{run}.lvc")),
        512,
        journal.epoch(),
    )
    .unwrap();
    let gate = Gate {
        inner: source,
        issued: 0,
        pause_at,
    };
    let (mut pipeline, controls) = TestPipeline::assemble(
        spec,
        gate,
        FillingVenue(venue.clone()),
        &journal,
        &counters,
        true,
    )
    .unwrap();
    if let Some(engine) = restored {
        pipeline.risk.stage_mut().restore(engine);
    }
    Run {
        journal,
        daemon,
        pipeline,
        controls,
        _counters: counters,
    }
}

impl Run {
    /// Runs until the source reaches its gate.
    fn run_to_gate(&mut self, seed: u64) {
        let mut rounds = 0;
        let source = |p: &TestPipeline| (p.feed.source().issued, p.feed.source().pause_at);
        while source(&self.pipeline).0 < source(&self.pipeline).1 && !self.pipeline.feed.is_done() {
            self.pipeline.run_rounds(1);
            rounds += 1;
            assert!(
                rounds < 50 * MESSAGES as usize,
                "seed {seed}: the feed stalled"
            );
        }
    }

    /// Runs on past the gate, one message at a time, until the venue holds an order it has not
    /// answered yet (the feed allowing): what a crash right after the write-ahead leaves.
    fn run_until_unanswered(&mut self, venue: &Arc<Mutex<VenueState>>, seed: u64) {
        self.run_to_gate(seed);
        while venue.lock().unwrap().queued.is_empty() && !self.pipeline.feed.is_done() {
            self.pipeline.feed.source_mut().pause_at += 1;
            self.run_to_gate(seed);
        }
    }

    /// The venue stops answering; the pipeline runs until idle.
    fn freeze_and_drain(&mut self, venue: &Arc<Mutex<VenueState>>, seed: u64) {
        venue.lock().unwrap().frozen = true;
        let mut rounds = 0;
        while self.pipeline.run_rounds(1) > 0 {
            rounds += 1;
            assert!(
                rounds < DRAIN_ROUNDS_MAX,
                "seed {seed}: the drain never ended"
            );
        }
    }

    fn live(&self) -> &RiskEngine {
        self.pipeline.risk.stage().engine()
    }
}

// ------------------------------------------------------------------------------------------------
// What the journal says, read independently of recovery.

#[derive(Debug, Default)]
struct Journaled {
    sent: u64,
    reports: u64,
    /// The highest client order id of any request, refusal, sent order or report.
    id_max: u64,
    /// The highest MsgSeqNum of a sent order.
    seq_max: u64,
    ids: Vec<u64>,
}

fn read_journal(dir: &Path) -> Journaled {
    let mut j = Journaled::default();
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    while tailer
        .poll(4096, |f| {
            let id = match f.record_type {
                record_type::ORDER_REQUEST => {
                    OrderRequest::from_bytes(f.payload).unwrap().client_order_id
                }
                record_type::RISK_REJECT => {
                    RiskReject::from_bytes(f.payload)
                        .unwrap()
                        .request
                        .client_order_id
                }
                record_type::ORDER_SENT => {
                    let s = SentOrder::from_bytes(f.payload).unwrap();
                    j.sent += 1;
                    j.seq_max = j.seq_max.max(s.msg_seq_num);
                    s.request.client_order_id
                }
                record_type::EXECUTION_REPORT => {
                    j.reports += 1;
                    ExecutionReport::from_bytes(f.payload)
                        .unwrap()
                        .client_order_id
                }
                _ => return,
            };
            j.id_max = j.id_max.max(id);
            j.ids.push(id);
        })
        .unwrap()
        .frames
        > 0
    {}
    j
}

fn open_orders(engine: &RiskEngine) -> Vec<OpenOrderInfo> {
    let mut orders: Vec<OpenOrderInfo> = engine
        .open_order_ids()
        .filter_map(|id| engine.open_order(id))
        .collect();
    orders.sort_by_key(|o| o.client_order_id);
    orders
}

/// The recovered state is the live engine's; the ids and sequence numbers are past the
/// journal's.
fn assert_recovered(live: &RiskEngine, rec: &Recovered, dir: &Path, instrument_id: u32, ctx: &str) {
    let journaled = read_journal(dir);
    assert!(rec.found_journal, "{ctx}");
    assert_eq!(rec.skipped, 0, "{ctx}: {:?}", rec.warnings);
    assert_eq!(rec.open_orders, open_orders(live), "{ctx}: open orders");
    assert_eq!(open_orders(&rec.engine), rec.open_orders, "{ctx}");
    assert_eq!(rec.engine.open_orders(), live.open_orders(), "{ctx}");
    assert_eq!(
        rec.engine.open_qty(instrument_id),
        live.open_qty(instrument_id),
        "{ctx}: open quantities"
    );
    let position = live.position(instrument_id);
    assert_eq!(rec.engine.position(instrument_id), position, "{ctx}");
    let expected: Vec<(u32, i64)> = if position == 0 {
        vec![]
    } else {
        vec![(instrument_id, position)]
    };
    assert_eq!(rec.positions, expected, "{ctx}: positions");
    assert_eq!(
        rec.engine.realised_pnl(instrument_id),
        live.realised_pnl(instrument_id),
        "{ctx}: realised PnL"
    );
    assert_eq!(rec.trading_state, live.trading_state(), "{ctx}");
    assert_eq!(rec.engine.trading_state(), live.trading_state(), "{ctx}");
    // The maker's (strategy 1's) mark, and the first id of the next run: above every id.
    assert!(
        rec.engine.next_client_order_id(1) >= live.next_client_order_id(1),
        "{ctx}: the mark went down"
    );
    assert_eq!(rec.next_client_order_id, journaled.id_max + 1, "{ctx}");
    assert!(
        journaled
            .ids
            .iter()
            .all(|&id| id < rec.next_client_order_id)
    );
    assert!(
        rec.next_client_order_id >= live.next_client_order_id(1),
        "{ctx}"
    );
    assert_eq!(rec.orders_sent, journaled.sent, "{ctx}");
    assert_eq!(rec.reports, journaled.reports, "{ctx}");
    assert_eq!(
        rec.seq_nums,
        Some(SessionSeqNums {
            next_sender: journaled.seq_max + 1,
            next_target: 1,
        }),
        "{ctx}: sequence numbers"
    );
    assert!(!rec.was_clean_stop, "{ctx}: a crash");
}

/// Recovery against the venue's own book of our orders and its fills, not against the live
/// engine (which shares `on_execution` with recovery): the position is what the venue filled;
/// every order resting at the venue is open, with its side, price, fills and leaves; every
/// other open order is a new one the venue was sent and has not answered.
fn assert_matches_venue(rec: &Recovered, venue: &VenueState, instrument_id: u32, ctx: &str) {
    let position = rec
        .positions
        .iter()
        .find(|(id, _)| *id == instrument_id)
        .map_or(0, |(_, qty)| *qty);
    assert_eq!(position, venue.position, "{ctx}: the venue's position");
    for (&id, r) in &venue.resting {
        let open = rec
            .open_orders
            .iter()
            .find(|o| o.client_order_id == id)
            .unwrap_or_else(|| panic!("{ctx}: order {id} rests at the venue but is not open"));
        assert_eq!(
            (open.side, open.px, open.cum_qty, open.leaves_qty),
            (r.order.side, r.order.px, r.cum, r.qty - r.cum),
            "{ctx}: order {id}: side, price, filled and leaves as the venue has them"
        );
    }
    for open in &rec.open_orders {
        let unanswered = venue
            .queued
            .iter()
            .any(|q| q.kind == order_kind::NEW && q.client_order_id == open.client_order_id);
        assert!(
            venue.resting.contains_key(&open.client_order_id) || unanswered && !open.acked,
            "{ctx}: open after recovery, but neither resting at the venue nor awaiting its \
             answer: {open:?}"
        );
    }
}

fn describe(rec: &Recovered) -> String {
    let unacked = rec.open_orders.iter().filter(|o| !o.acked).count();
    let partly_filled = rec.open_orders.iter().filter(|o| o.cum_qty > 0).count();
    let replacing = rec
        .open_orders
        .iter()
        .filter(|o| o.replaces_pending > 0)
        .count();
    let canceling = rec.open_orders.iter().filter(|o| o.cancel_pending).count();
    format!(
        "{} sent, {} reports, {} open ({unacked} unanswered, {partly_filled} partly filled, \
         {replacing} replacing, {canceling} cancelling), positions {:?}, next id {}, {} targets \
         gone",
        rec.orders_sent,
        rec.reports,
        rec.open_orders.len(),
        rec.positions,
        rec.next_client_order_id,
        rec.targets_gone
    )
}

#[test]
fn a_crash_at_a_random_point_recovers_the_live_risk_state() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let mut any_position = false;
    let mut any_open = false;
    for attempt in 0..3 {
        let pause_at = rng.u64(500..MESSAGES);
        let ctx = format!("seed {seed}, attempt {attempt}, stopped after {pause_at} messages");
        let dir = tempfile::tempdir().unwrap();
        let venue = VenueState::new(rng.u64(..), instrument.lot_units);
        let mut run = start_run(
            dir.path(),
            dir.path(),
            0,
            rng.u64(..),
            pause_at,
            &venue,
            1,
            None,
        );
        run.run_until_unanswered(&venue, seed);
        run.freeze_and_drain(&venue, seed);
        let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
        eprintln!("{ctx}: {}", describe(&rec));
        assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
        assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
        assert_eq!(
            rec.engine.next_client_order_id(1),
            run.live().next_client_order_id(1),
            "{ctx}: no mass cancel: the same mark"
        );
        assert_eq!(rec.runs, 1, "{ctx}");
        assert!(rec.orders_sent > 0, "{ctx}: the maker sent nothing");
        any_position |= !rec.positions.is_empty();
        any_open |= !rec.open_orders.is_empty();
    }
    assert!(
        any_position && any_open,
        "seed {seed}: no position or no open order in any attempt: the test proved little"
    );
}

#[test]
fn a_second_run_continues_from_the_recovered_state_and_recovers_again() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let counters_dir = tempfile::tempdir().unwrap();
    // The venue outlives the runs: what the first sent and it never answered, it answers to the
    // second (as a FIX venue resends the reports a client missed).
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);

    let pause_at = rng.u64(2_000..MESSAGES);
    let mut first = start_run(
        dir.path(),
        counters_dir.path(),
        1,
        rng.u64(..),
        pause_at,
        &venue,
        1,
        None,
    );
    first.run_until_unanswered(&venue, seed);
    first.freeze_and_drain(&venue, seed);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, first run");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(first.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
    let first_ids_max = read_journal(dir.path()).id_max;
    drop(first);

    // The second run: the recovered engine, ids and sequence numbers.
    {
        let mut v = venue.lock().unwrap();
        v.frozen = false;
        assert_eq!(
            Some(v.next_msg_seq_num),
            rec.seq_nums.map(|s| s.next_sender),
            "seed {seed}: the venue's next sequence number is the recovered one"
        );
    }
    let pause_at = rng.u64(2_000..MESSAGES);
    let next_id = rec.next_client_order_id;
    let mut second = start_run(
        dir.path(),
        counters_dir.path(),
        2,
        rng.u64(..),
        pause_at,
        &venue,
        next_id,
        Some(rec.engine),
    );
    second.run_until_unanswered(&venue, seed);
    second.freeze_and_drain(&venue, seed);
    assert_eq!(
        second.live().rejects_of(RiskCheck::DuplicateClientOrderId),
        0,
        "seed {seed}: the second run reused no id"
    );
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, second run");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(second.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_matches_venue(&rec, &venue.lock().unwrap(), instrument.id, &ctx);
    assert_eq!(rec.runs, 2, "{ctx}");
    assert!(
        rec.next_client_order_id > first_ids_max + 1,
        "{ctx}: the second run sent nothing"
    );
}

#[test]
fn a_halted_journal_recovers_halted() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let pause_at = rng.u64(1_000..MESSAGES / 2);
    let mut run = start_run(
        dir.path(),
        dir.path(),
        0,
        rng.u64(..),
        pause_at,
        &venue,
        1,
        None,
    );
    run.run_to_gate(seed);
    // The kill switch, as the daemon does it: the command, and the event in the journal.
    assert!(run.controls.trading.send(TradingCommand::HaltAndCancelAll));
    run.daemon
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 2).to_bytes(),
        )
        .unwrap();
    run.pipeline.feed.source_mut().pause_at = pause_at + 1_000;
    run.run_to_gate(seed);
    run.freeze_and_drain(&venue, seed);
    assert_eq!(run.live().trading_state(), TradingState::Halted);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let ctx = format!("seed {seed}, halted after {pause_at} messages");
    eprintln!("{ctx}: {}", describe(&rec));
    assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
    assert_eq!(rec.trading_state, TradingState::Halted);

    // Resumed later: active again.
    run.daemon
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 0).to_bytes(),
        )
        .unwrap();
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!(rec.trading_state, TradingState::Active, "{ctx}");
}

// ------------------------------------------------------------------------------------------------
// Hand-written journals.

/// A journal of one run in `dir` with the configuration's instrument definitions, and an
/// appender to write more.
fn hand_journal(dir: &Path, instruments: &InstrumentTable) -> (Journal, Appender) {
    let journal = journal(dir);
    let mut appender = journal.appender(writer_id::DAEMON).unwrap();
    write_defs(&mut appender, instruments);
    (journal, appender)
}

fn new_order(client_order_id: u64, px: i64, qty: i64) -> OrderRequest {
    OrderRequest {
        client_order_id,
        strategy_id: 1,
        kind: order_kind::NEW,
        side: side::BUY,
        ord_type: ord_type::LIMIT,
        time_in_force: time_in_force::GTC,
        px,
        qty,
        ..OrderRequest::default()
    }
}

fn sent(request: OrderRequest, msg_seq_num: u64) -> SentOrder {
    SentOrder {
        request,
        msg_seq_num,
        ..SentOrder::default()
    }
}

#[test]
fn instrument_definitions_that_disagree_with_the_config_are_refused_naming_the_id() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let other = instruments
        .iter()
        .find(|i| i.id != instrument.id)
        .expect("the corpus has two instruments")
        .clone();
    let refusal = |def: InstrumentDef| {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(dir.path());
        let mut appender = journal.appender(writer_id::DAEMON).unwrap();
        appender
            .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
            .unwrap();
        match recover(dir.path(), limits, &instruments) {
            Err(e @ RecoveryError::InstrumentMismatch { .. }) => e,
            other => panic!("not refused: {other:?}"),
        }
    };
    let scales = |i: &Instrument| {
        (
            (i.price_scale.mantissa, i.price_scale.exp),
            (i.qty_scale.mantissa, i.qty_scale.exp),
        )
    };
    // Another symbol at the traded instrument's id.
    let (price, qty) = scales(&other);
    let e = refusal(InstrumentDef::new(instrument.id, other.symbol.as_str(), price, qty).unwrap());
    let text = e.to_string();
    assert!(
        matches!(e, RecoveryError::InstrumentMismatch { instrument_id, .. } if instrument_id == instrument.id)
    );
    assert!(
        text.contains(&format!("instrument id {}", instrument.id))
            && text.contains(other.symbol.as_str())
            && text.contains(instrument.symbol.as_str()),
        "{text}"
    );
    // The same symbol in other units.
    let (_, qty) = scales(&instrument);
    let e = refusal(
        InstrumentDef::new(instrument.id, instrument.symbol.as_str(), (1, 2), qty).unwrap(),
    );
    assert!(e.to_string().contains("1e-2"), "{e}");
    // An id the configuration does not have.
    let missing = instruments.len() as u32;
    let e = refusal(InstrumentDef::new(missing, "XYZUSDT", (1, 8), (1, 8)).unwrap());
    let text = e.to_string();
    assert!(text.contains(&format!("instrument id {missing}")) && text.contains("XYZUSDT"));
    assert!(text.contains("nothing"), "{text}");
    // The configuration's own definitions pass, in any case.
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let (price, qty) = scales(&instrument);
    let lower = instrument.symbol.as_str().to_ascii_lowercase();
    let def = InstrumentDef::new(instrument.id, &lower, price, qty).unwrap();
    appender
        .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
        .unwrap();
    assert!(recover(dir.path(), limits, &instruments).is_ok());
}

#[test]
fn corrupt_payloads_are_counted_and_skipped() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut appender) = hand_journal(dir.path(), &instruments);
    let id = instrument.id;
    let order = OrderRequest {
        instrument_id: id,
        ..new_order(5, 3_000 * instrument.tick_units, 100 * instrument.lot_units)
    };
    appender
        .append(SentOrder::RECORD_TYPE, sent(order, 1).to_bytes())
        .unwrap();
    // A fill of it, cut one byte short; a sent order one byte short; a nonsense state.
    let fill = ExecutionReport {
        client_order_id: 5,
        instrument_id: id,
        exec_type: exec_type::TRADE,
        last_px: order.px,
        last_qty: order.qty,
        side: side::BUY,
        ..ExecutionReport::default()
    };
    let cut = &fill.to_bytes()[..size_of::<ExecutionReport>() - 1];
    let first_bad = appender.append(ExecutionReport::RECORD_TYPE, cut).unwrap();
    let second = sent(
        OrderRequest {
            instrument_id: id,
            ..new_order(6, order.px, order.qty)
        },
        2,
    );
    appender
        .append(SentOrder::RECORD_TYPE, &second.to_bytes()[..100])
        .unwrap();
    appender
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 7).to_bytes(),
        )
        .unwrap();
    let mut bad_def = InstrumentDef::new(id, instrument.symbol.as_str(), (1, 8), (1, 8)).unwrap();
    bad_def.symbol_len = 200;
    appender
        .append(InstrumentDef::RECORD_TYPE, bad_def.to_bytes())
        .unwrap();
    drop(appender);
    drop(journal);

    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!(rec.skipped, 4);
    let problems: Vec<WarningProblem> = rec.warnings.iter().map(|w| w.problem).collect();
    assert_eq!(
        problems,
        [
            WarningProblem::PayloadLen {
                len: size_of::<ExecutionReport>() - 1,
                expected: size_of::<ExecutionReport>()
            },
            WarningProblem::PayloadLen {
                len: 100,
                expected: size_of::<SentOrder>()
            },
            WarningProblem::UnknownTradingState(7),
            WarningProblem::CorruptSymbol,
        ]
    );
    assert_eq!(rec.warnings[0].position, first_bad);
    let text = rec.warnings[0].to_string();
    assert!(
        text.contains("journal-") && text.contains("79 bytes"),
        "{text}"
    );
    // What was whole is there: order 5 open and unfilled; order 6's id unseen.
    assert_eq!(rec.open_orders.len(), 1);
    assert_eq!(
        (
            rec.open_orders[0].client_order_id,
            rec.open_orders[0].leaves_qty
        ),
        (5, order.qty)
    );
    assert!(rec.positions.is_empty());
    assert_eq!((rec.orders_sent, rec.reports), (1, 0));
    assert_eq!(rec.next_client_order_id, 6);
    assert_eq!(rec.trading_state, TradingState::Active);
}

#[test]
fn an_empty_or_missing_directory_is_no_journal_and_a_fresh_engine() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let fresh = |rec: &Recovered| {
        assert!(!rec.found_journal);
        assert_eq!(rec.next_client_order_id, 1);
        assert_eq!(rec.seq_nums, None);
        assert_eq!(rec.trading_state, TradingState::Active);
        assert!(rec.open_orders.is_empty() && rec.positions.is_empty());
        assert_eq!(
            (rec.orders_sent, rec.reports, rec.runs, rec.frames),
            (0, 0, 0, 0)
        );
        assert_eq!(rec.engine.open_orders(), 0);
        assert!(!rec.was_clean_stop);
    };
    fresh(&recover(dir.path(), limits(&instrument), &instruments).unwrap());
    fresh(
        &recover(
            &dir.path().join("nothing"),
            limits(&instrument),
            &instruments,
        )
        .unwrap(),
    );
    // Only the empty segment a new run's `Journal::open` makes.
    let journal = journal(dir.path());
    fresh(&recover(dir.path(), limits(&instrument), &instruments).unwrap());
    drop(journal);
}

/// Three runs, each with one order, in segments 0, 1 and 2.
fn three_runs(dir: &Path, instruments: &InstrumentTable, instrument: &Instrument) {
    for run in 0..3u64 {
        let (_journal, mut appender) = hand_journal(dir, instruments);
        let order = OrderRequest {
            instrument_id: instrument.id,
            ..new_order(
                run + 1,
                (3_000 - run as i64) * instrument.tick_units,
                instrument.lot_units,
            )
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent(order, run + 1).to_bytes())
            .unwrap();
    }
}

#[test]
fn a_missing_or_pruned_segment_fails_recovery() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    three_runs(dir.path(), &instruments, &instrument);
    let rec = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    assert_eq!((rec.runs, rec.open_orders.len()), (3, 3));
    assert_eq!(rec.next_client_order_id, 4);
    assert_eq!(rec.seq_nums.map(|s| s.next_sender), Some(4));

    let segment = |i: u64| dir.path().join(format!("journal-{i:010}.lvj"));
    std::fs::remove_file(segment(1)).unwrap();
    let e = recover(dir.path(), limits(&instrument), &instruments).unwrap_err();
    assert!(matches!(e, RecoveryError::Journal { .. }), "{e:?}");
    assert!(e.to_string().contains("segment 1 is missing"), "{e}");

    std::fs::remove_file(segment(0)).unwrap();
    let e = recover(dir.path(), limits(&instrument), &instruments).unwrap_err();
    assert!(
        matches!(
            e,
            RecoveryError::Pruned {
                first: 2,
                replay_from: None,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("segments 0..2 were pruned") && text.contains("no complete checkpoint"),
        "{text}"
    );
}

#[test]
fn recent_orders_the_venue_answered_are_told_from_unanswered_ones() {
    // A restarted FIX session reports lost only orders the venue never answered; recovery
    // says which of the recent ones it did (a report naming them is in the journal).
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        let px = 3_000 * instrument.tick_units;
        for (id, seq) in [(11, 5), (12, 6), (13, 7)] {
            let order = OrderRequest {
                instrument_id: instrument.id,
                ..new_order(id, px, instrument.lot_units)
            };
            appender
                .append(SentOrder::RECORD_TYPE, sent(order, seq).to_bytes())
                .unwrap();
        }
        // The venue acknowledged 11 and 13; 12 was journaled and never answered.
        for id in [11, 13] {
            let ack = ExecutionReport {
                client_order_id: id,
                instrument_id: instrument.id,
                exec_type: exec_type::NEW,
                ord_status: exec_type::NEW,
                side: side::BUY,
                px,
                leaves_qty: instrument.lot_units,
                ..ExecutionReport::default()
            };
            appender
                .append(ExecutionReport::RECORD_TYPE, ack.to_bytes())
                .unwrap();
        }
    }
    let recovered = recover(dir.path(), limits(&instrument), &instruments).unwrap();
    let sent_ids: Vec<u64> = recovered
        .recent_sent
        .iter()
        .map(|(_, o)| o.client_order_id)
        .collect();
    assert_eq!(sent_ids, [11, 12, 13]);
    assert_eq!(recovered.recent_answered, [11, 13]);
}

#[test]
fn a_clean_stop_is_told_from_a_crash() {
    let (instruments, instrument) = corpus_instrument();
    let dir = tempfile::tempdir().unwrap();
    let stopped = |dir: &Path| {
        recover(dir, limits(&instrument), &instruments)
            .unwrap()
            .was_clean_stop
    };
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        for kind in [
            daemon_event::STARTED,
            daemon_event::STOPPING,
            daemon_event::STOPPED,
        ] {
            appender
                .append(DaemonEvent::RECORD_TYPE, event(kind, 0).to_bytes())
                .unwrap();
        }
    }
    assert!(stopped(dir.path()));
    // The next run started and died.
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        appender
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::STARTED, 1).to_bytes(),
            )
            .unwrap();
    }
    assert!(!stopped(dir.path()));
    // Orders after a STOPPED: not the end of a run.
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        appender
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::STOPPED, 0).to_bytes(),
            )
            .unwrap();
        let order = OrderRequest {
            instrument_id: instrument.id,
            ..new_order(9, 3_000 * instrument.tick_units, instrument.lot_units)
        };
        appender
            .append(OrderRequest::RECORD_TYPE, order.to_bytes())
            .unwrap();
    }
    assert!(!stopped(dir.path()));
}

#[test]
fn a_trip_journaled_by_a_refusal_holds_until_resumed() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let state = |dir: &Path| recover(dir, limits, &instruments).unwrap().trading_state;
    // The first order refused after the engine tripped on its loss limit says so.
    let refusal = RiskReject {
        request: OrderRequest {
            instrument_id: instrument.id,
            ..new_order(3, 3_000 * instrument.tick_units, instrument.lot_units)
        },
        check: RiskCheck::MaxLoss.code(),
        ..RiskReject::default()
    };
    appender
        .append(RiskReject::RECORD_TYPE, refusal.to_bytes())
        .unwrap();
    assert_eq!(state(dir.path()), limits.loss_state);
    let repeated = RiskReject {
        check: RiskCheck::RepeatedExecution.code(),
        ..refusal
    };
    appender
        .append(RiskReject::RECORD_TYPE, repeated.to_bytes())
        .unwrap();
    assert_eq!(state(dir.path()), TradingState::Halted);
    // The operator resumed.
    appender
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::TRADING_STATE, 0).to_bytes(),
        )
        .unwrap();
    assert_eq!(state(dir.path()), TradingState::Active);
    assert_eq!(
        recover(dir.path(), limits, &instruments)
            .unwrap()
            .next_client_order_id,
        4
    );
}

// ------------------------------------------------------------------------------------------------
// Checkpoints.

/// Two recoveries of the same journal agree on everything: the whole replayed state (as a
/// checkpoint carries it) and what `Recovered` and its engine say.
fn assert_same_recovery(a: &Recovered, b: &Recovered, instrument_id: u32, ctx: &str) {
    let (sa, sb) = (a.state(), b.state());
    assert_eq!(
        sa.begin, sb.begin,
        "{ctx}: counts, ids, sequence numbers, trip"
    );
    assert_eq!(sa.instruments, sb.instruments, "{ctx}: ledgers");
    assert_eq!(sa.orders, sb.orders, "{ctx}: open orders");
    assert_eq!(sa.marks, sb.marks, "{ctx}: client-order-id marks");
    assert_eq!(sa.fills, sb.fills, "{ctx}: fill stamps");
    assert_eq!(a.open_orders, b.open_orders, "{ctx}");
    assert_eq!(a.positions, b.positions, "{ctx}");
    assert_eq!(a.next_client_order_id, b.next_client_order_id, "{ctx}");
    assert_eq!(a.seq_nums, b.seq_nums, "{ctx}");
    assert_eq!(a.trading_state, b.trading_state, "{ctx}");
    let counts = |r: &Recovered| {
        (
            r.orders_sent,
            r.reports,
            r.targets_gone,
            r.skipped,
            r.was_clean_stop,
            r.found_journal,
            r.runs,
            r.frames,
            r.end,
        )
    };
    assert_eq!(counts(a), counts(b), "{ctx}");
    let (ea, eb) = (&a.engine, &b.engine);
    assert_eq!(ea.engine_state(), eb.engine_state(), "{ctx}");
    assert_eq!(
        ea.ledger_state(instrument_id),
        eb.ledger_state(instrument_id),
        "{ctx}"
    );
    assert_eq!(
        ea.realised_pnl(instrument_id),
        eb.realised_pnl(instrument_id),
        "{ctx}"
    );
    assert_eq!(ea.pnl(), eb.pnl(), "{ctx}");
    assert_eq!(ea.exposure(), eb.exposure(), "{ctx}");
    assert_eq!(ea.pending_trip(), eb.pending_trip(), "{ctx}");
    assert_eq!(
        ea.next_client_order_id(1),
        eb.next_client_order_id(1),
        "{ctx}"
    );
}

/// Recovery from the journal's last checkpoint, which must be `written`, and the full replay
/// agree.
fn assert_checkpoint_recovers(
    dir: &Path,
    written: &CheckpointWritten,
    limits: RiskLimits,
    instruments: &InstrumentTable,
    instrument_id: u32,
    ctx: &str,
) -> Recovered {
    let with = recover(dir, limits, instruments).unwrap();
    let used = with
        .checkpoint
        .unwrap_or_else(|| panic!("{ctx}: no checkpoint used"));
    assert_eq!(
        (used.checkpoint_id, used.position, used.replay_from),
        (written.checkpoint_id, written.begin, written.replay_from),
        "{ctx}"
    );
    let full = recover_from_start(dir, limits, instruments).unwrap();
    assert_eq!(full.checkpoint, None, "{ctx}");
    assert_same_recovery(&with, &full, instrument_id, ctx);
    with
}

/// Frames from `position` to the journal's end.
fn frames_from(dir: &Path, position: Position) -> usize {
    let mut tailer = Tailer::open(dir, StartAt::Position(position)).unwrap();
    let mut frames = 0;
    loop {
        match tailer.poll(4096, |_| {}).unwrap().frames {
            0 => return frames,
            n => frames += n,
        }
    }
}

/// The position after the journal's last frame.
fn journal_end(dir: &Path) -> Position {
    Tailer::open(dir, StartAt::End).unwrap().position()
}

/// The daemon's start: recover, start the shadow, checkpoint at once.
fn start_shadow(
    run: &mut Run,
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> (ShadowRecovery, CheckpointWritten) {
    let rec = recover(dir, limits, instruments).unwrap();
    let mut shadow = ShadowRecovery::start(&run.journal, limits, instruments, &rec).unwrap();
    let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
    assert_eq!(written.replay_from, rec.end);
    (shadow, written)
}

/// Checkpoints written while the pipeline trades, with the shadow caught up or lagging by a
/// random number of frames (so P falls anywhere: between an order and its reports, in the
/// middle of a replace): recovery from each, at once, gives what the full replay gives; and
/// after the crash, the live engine's state.
#[test]
fn checkpoints_at_random_moments_recover_what_a_full_replay_recovers() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let (mut lagging, mut with_orders) = (0, 0);
    for attempt in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let venue = VenueState::new(rng.u64(..), instrument.lot_units);
        let mut run = start_run(dir.path(), dir.path(), 0, rng.u64(..), 0, &venue, 1, None);
        let (mut shadow, written) = start_shadow(&mut run, dir.path(), limits, &instruments);
        let ctx = format!("seed {seed}, attempt {attempt}, at start-up");
        assert_checkpoint_recovers(
            dir.path(),
            &written,
            limits,
            &instruments,
            instrument.id,
            &ctx,
        );
        let mut pause_at = 0;
        for moment in 0..6 {
            pause_at += rng.u64(500..MESSAGES / 6);
            run.pipeline.feed.source_mut().pause_at = pause_at;
            run.run_to_gate(seed);
            let behind = frames_from(dir.path(), shadow.position());
            if rng.bool() {
                let applied = shadow.catch_up_frames(rng.usize(..behind.max(1))).unwrap();
                assert!(applied < behind, "seed {seed}");
            } else {
                while shadow.catch_up().unwrap() == CATCH_UP_FRAMES_MAX {}
            }
            let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
            lagging += usize::from(written.replay_from < written.begin);
            let ctx = format!(
                "seed {seed}, attempt {attempt}, moment {moment} (after {pause_at} messages), \
                 checkpoint {} replaying from {}",
                written.checkpoint_id, written.replay_from
            );
            let rec = assert_checkpoint_recovers(
                dir.path(),
                &written,
                limits,
                &instruments,
                instrument.id,
                &ctx,
            );
            with_orders += usize::from(!rec.state().orders.is_empty());
        }
        // The crash: recovery from the last checkpoint is the live state.
        run.run_until_unanswered(&venue, seed);
        run.freeze_and_drain(&venue, seed);
        let behind = frames_from(dir.path(), shadow.position());
        shadow.catch_up_frames(rng.usize(..behind.max(1))).unwrap();
        let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
        let ctx = format!("seed {seed}, attempt {attempt}, after the crash");
        let rec = assert_checkpoint_recovers(
            dir.path(),
            &written,
            limits,
            &instruments,
            instrument.id,
            &ctx,
        );
        eprintln!("{ctx}: {}", describe(&rec));
        assert_recovered(run.live(), &rec, dir.path(), instrument.id, &ctx);
    }
    assert!(
        lagging > 0 && with_orders > 0,
        "seed {seed}: {lagging} checkpoints lagged the journal, {with_orders} held open \
         orders: the test proved little"
    );
}

/// Hard-links every raw segment of `dir` into `backup` (once): a copy of the whole journal
/// that pruning and compression in `dir` do not touch.
fn keep_segments(dir: &Path, backup: &Path) {
    for s in list_segments(dir).unwrap() {
        let to = backup.join(segment_file_name(s.index));
        if !s.compressed && !to.exists() {
            std::fs::hard_link(&s.path, &to).unwrap();
        }
    }
}

/// Tiny segments, compressed and pruned by the journal's own maintenance while the pipeline
/// trades and the shadow checkpoints: segment 0 and many after it are gone, the last
/// checkpoint's P lies in an earlier segment than its records (and is compressed by then),
/// and recovery gives exactly what a full replay of the whole journal (kept aside) gives, and
/// the live engine's state.
#[test]
fn segments_pruned_before_the_checkpoint_recover_the_exact_state() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let counters = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        dir: dir.path().to_owned(),
        segment_size: SEGMENT_SIZE_MIN,
        prefault: false,
        retention: RetentionPolicy {
            compress: true,
            raw_segments_kept: 1,
            max_age: None,
            max_total_bytes: Some(12 * SEGMENT_SIZE_MIN as u64),
        },
    };
    let segment_of = |p: Position| p.split(SEGMENT_SIZE_MIN).0;
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let mut run = start_run_in(&config, counters.path(), 0, rng.u64(..), 0, &venue, 1, None);
    let (mut shadow, _) = start_shadow(&mut run, dir.path(), limits, &instruments);
    let mut pruned = 0;
    let mut pause_at = 0;
    while pause_at < MESSAGES - 4_000 {
        pause_at += rng.u64(200..2_000);
        run.pipeline.feed.source_mut().pause_at = pause_at;
        run.run_to_gate(seed);
        while shadow.catch_up().unwrap() == CATCH_UP_FRAMES_MAX {}
        if rng.u8(..3) == 0 {
            shadow.write_checkpoint(&mut run.daemon).unwrap();
        }
        keep_segments(dir.path(), backup.path());
        pruned += run.journal.maintain().unwrap().pruned.len();
    }
    // The last stretch without catching up; then the shadow goes on to two segments before
    // the end only.
    run.pipeline.feed.source_mut().pause_at = pause_at + 2_000;
    run.run_until_unanswered(&venue, seed);
    run.freeze_and_drain(&venue, seed);
    let end = segment_of(journal_end(dir.path()));
    while segment_of(shadow.position()) + 2 < end {
        assert!(shadow.catch_up_frames(16).unwrap() > 0, "seed {seed}");
    }
    let written = shadow.write_checkpoint(&mut run.daemon).unwrap();
    assert!(
        segment_of(written.replay_from) < segment_of(written.begin),
        "seed {seed}: {written:?}"
    );
    keep_segments(dir.path(), backup.path());
    pruned += run.journal.maintain().unwrap().pruned.len();
    let listing = list_segments(dir.path()).unwrap();
    let ctx = format!(
        "seed {seed}: {pruned} segments pruned, {} left, checkpoint {} replaying from {} \
         (segment {}), written in segment {}",
        listing.len(),
        written.checkpoint_id,
        written.replay_from,
        segment_of(written.replay_from),
        segment_of(written.begin)
    );
    assert!(pruned > 0 && listing[0].index > 0, "{ctx}");
    assert!(
        listing
            .iter()
            .any(|s| s.index == segment_of(written.replay_from) && s.compressed),
        "{ctx}: P's segment is compressed"
    );

    let full = recover_from_start(backup.path(), limits, &instruments).unwrap();
    assert_recovered(run.live(), &full, backup.path(), instrument.id, &ctx);
    let rec = recover(dir.path(), limits, &instruments).unwrap();
    eprintln!("{ctx}: {}", describe(&rec));
    assert_eq!(
        rec.checkpoint.map(|c| (c.checkpoint_id, c.replay_from)),
        Some((written.checkpoint_id, written.replay_from)),
        "{ctx}"
    );
    assert_same_recovery(&rec, &full, instrument.id, &ctx);
    let e = recover_from_start(dir.path(), limits, &instruments).unwrap_err();
    assert!(matches!(e, RecoveryError::Pruned { .. }), "{ctx}: {e}");
}

/// Appends `checkpoint`'s records; `edit` may change one (`Some(bytes)`), drop it (`Some` of
/// nothing) or keep it (`None`); `writer` takes the record's index and says which appender.
fn append_checkpoint(
    appenders: &mut [&mut Appender],
    checkpoint: &Checkpoint,
    mut choose: impl FnMut(usize, RecordType) -> Option<usize>,
    mut edit: impl FnMut(RecordType, &[u8]) -> Option<Vec<u8>>,
) {
    let mut k = 0;
    checkpoint
        .for_each_record(|record_type, bytes| {
            let writer = choose(k, record_type);
            k += 1;
            let Some(writer) = writer else {
                return Ok::<(), ()>(());
            };
            let bytes = edit(record_type, bytes).unwrap_or_else(|| bytes.to_vec());
            appenders[writer].append(record_type, &bytes).unwrap();
            Ok(())
        })
        .unwrap();
}

/// A checkpoint whose end never came (a crash while writing it), whose end counts other
/// records than came, or some of whose records another writer wrote, is ignored: recovery
/// takes the complete one before it, or replays from the start if there is none; a complete
/// one after them is taken.
#[test]
fn a_checkpoint_cut_off_before_its_end_is_ignored() {
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let venue = VenueState::new(rng.u64(..), instrument.lot_units);
    let mut run = start_run(dir.path(), dir.path(), 0, rng.u64(..), 0, &venue, 1, None);
    let mut other = run.journal.appender(7).unwrap();
    let used = |dir: &Path| {
        let rec = recover(dir, limits, &instruments).unwrap();
        let full = recover_from_start(dir, limits, &instruments).unwrap();
        assert_same_recovery(&rec, &full, instrument.id, &format!("seed {seed}"));
        rec.checkpoint.map(|c| c.checkpoint_id)
    };
    let mut pause_at = rng.u64(1_000..4_000);
    let mut trade = |run: &mut Run, rng: &mut fastrand::Rng| {
        pause_at += rng.u64(1_000..4_000);
        run.pipeline.feed.source_mut().pause_at = pause_at;
        run.run_to_gate(seed);
    };
    // A real state as of now, as a checkpoint with id `id` would carry it.
    let forged = |id: u64| {
        let now = recover_from_start(dir.path(), limits, &instruments).unwrap();
        let mut checkpoint = now.state().clone();
        checkpoint.set_id(id);
        checkpoint
    };
    let all = |_: usize, _: RecordType| Some(0);
    let keep = |_: RecordType, _: &[u8]| None;

    // Only a cut-off one: the full replay.
    trade(&mut run, &mut rng);
    let cut = forged(50);
    let body = cut.body_records() as usize;
    let half = |k: usize, _: RecordType| (k <= body / 2).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, half, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), None, "seed {seed}");

    // A complete one.
    trade(&mut run, &mut rng);
    append_checkpoint(&mut [&mut run.daemon], &forged(60), all, keep);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}");

    // Cut off before its end, after all its records.
    trade(&mut run, &mut rng);
    let cut = forged(61);
    let body = cut.body_records() as usize;
    assert!(body > 2, "seed {seed}: a checkpoint of {body} records");
    // Record 0 is the begin, `body + 1` the end.
    let no_end = |k: usize, _: RecordType| (k <= body).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, no_end, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: no end");

    // An end that counts one record more than came.
    let wrong_end = |t: RecordType, bytes: &[u8]| {
        (t == record_type::CHECKPOINT_END).then(|| {
            let mut end = CheckpointEnd::from_bytes(bytes).unwrap();
            end.records += 1;
            end.to_bytes().to_vec()
        })
    };
    append_checkpoint(&mut [&mut run.daemon], &forged(62), all, wrong_end);
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: wrong count");

    // One record from another writer.
    trade(&mut run, &mut rng);
    let strays = |k: usize, _: RecordType| Some(usize::from(k == 1));
    append_checkpoint(
        &mut [&mut run.daemon, &mut other],
        &forged(63),
        strays,
        keep,
    );
    assert_eq!(used(dir.path()), Some(60), "seed {seed}: a stray record");

    // A begin, then a complete one: the complete one is taken; then a cut one after it.
    trade(&mut run, &mut rng);
    let begin_only = |k: usize, _: RecordType| (k == 0).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &forged(64), begin_only, keep);
    append_checkpoint(&mut [&mut run.daemon], &forged(65), all, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(65), "seed {seed}");
    let cut = forged(66);
    let body = cut.body_records() as usize;
    let half = |k: usize, _: RecordType| (k <= body / 2).then_some(0);
    append_checkpoint(&mut [&mut run.daemon], &cut, half, keep);
    trade(&mut run, &mut rng);
    assert_eq!(used(dir.path()), Some(65), "seed {seed}");
}

/// Hand-written runs in segments 0, 1 and 2; the shadow starts in run 1 and writes its
/// checkpoint in run 2, so P lies in segment 1 and the checkpoint in segment 2. Without
/// segment 0 recovery is exact; without segment 1 too, P is gone: `Pruned`, saying so.
#[test]
fn a_checkpoint_stands_for_pruned_segments_until_its_own_position_is_pruned() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let send = |appender: &mut Appender, id: u64| {
        let order = OrderRequest {
            instrument_id: instrument.id,
            ..new_order(
                id,
                (3_000 - id as i64) * instrument.tick_units,
                instrument.lot_units,
            )
        };
        appender
            .append(SentOrder::RECORD_TYPE, sent(order, id).to_bytes())
            .unwrap();
    };
    {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 1);
    }
    let mut shadow = {
        let (journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 2);
        let rec = recover(dir.path(), limits, &instruments).unwrap();
        let shadow = ShadowRecovery::start(&journal, limits, &instruments, &rec).unwrap();
        send(&mut appender, 3);
        shadow
    };
    let written = {
        let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
        send(&mut appender, 4);
        shadow.write_checkpoint(&mut appender).unwrap()
    };
    let segment_of = |p: Position| p.split(16 << 20).0;
    assert_eq!(
        (segment_of(written.replay_from), segment_of(written.begin)),
        (1, 2)
    );
    let full = recover_from_start(dir.path(), limits, &instruments).unwrap();
    assert_eq!(full.open_orders.len(), 4);

    let segment = |i: u64| dir.path().join(segment_file_name(i));
    std::fs::remove_file(segment(0)).unwrap();
    let rec = recover(dir.path(), limits, &instruments).unwrap();
    assert_eq!(
        rec.checkpoint.map(|c| c.replay_from),
        Some(written.replay_from)
    );
    assert_same_recovery(&rec, &full, instrument.id, "segment 0 pruned");
    assert_eq!((rec.runs, rec.next_client_order_id), (3, 5));
    assert_eq!(rec.seq_nums.map(|s| s.next_sender), Some(5));

    std::fs::remove_file(segment(1)).unwrap();
    let e = recover(dir.path(), limits, &instruments).unwrap_err();
    assert!(
        matches!(e, RecoveryError::Pruned { first: 2, replay_from: Some(p), .. } if p == written.replay_from),
        "{e:?}"
    );
    assert!(e.to_string().contains("which was pruned too"), "{e}");
}

/// A checkpoint carries its instruments' definitions: with every definition of its run pruned,
/// a configuration with another instrument at an id is still refused.
#[test]
fn a_checkpoint_is_refused_by_a_configuration_with_other_instruments() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    {
        let mut shadow = {
            let (first, _appender) = hand_journal(dir.path(), &instruments);
            let rec = recover(dir.path(), limits, &instruments).unwrap();
            ShadowRecovery::start(&first, limits, &instruments, &rec).unwrap()
        };
        // The next run's segment holds the checkpoint and no definitions.
        let second = journal(dir.path());
        let mut appender = second.appender(writer_id::DAEMON).unwrap();
        shadow.catch_up().unwrap();
        shadow.write_checkpoint(&mut appender).unwrap();
    }
    std::fs::remove_file(dir.path().join(segment_file_name(0))).unwrap();
    assert!(recover(dir.path(), limits, &instruments).is_ok());
    // The traded instrument's id now names the other one.
    let mut all: Vec<Instrument> = instruments.iter().cloned().collect();
    all.reverse();
    let swapped = InstrumentTable::new(all).unwrap();
    let e = recover(dir.path(), limits, &swapped).unwrap_err();
    assert!(
        matches!(e, RecoveryError::InstrumentMismatch { .. }),
        "{e:?}"
    );
}

/// A shadow that loses frames (a segment pruned before it read it) says so once, stops, and
/// writes no checkpoint any more.
#[test]
fn a_shadow_that_lost_frames_stops_checkpointing() {
    let (instruments, instrument) = corpus_instrument();
    let limits = limits(&instrument);
    let dir = tempfile::tempdir().unwrap();
    let mut shadow = {
        let (journal, _appender) = hand_journal(dir.path(), &instruments);
        let rec = recover(dir.path(), limits, &instruments).unwrap();
        ShadowRecovery::start(&journal, limits, &instruments, &rec).unwrap()
    };
    three_runs(dir.path(), &instruments, &instrument);
    std::fs::remove_file(dir.path().join(segment_file_name(2))).unwrap();
    let e = shadow.catch_up().unwrap_err();
    assert!(e.to_string().contains("segment 2 is missing"), "{e}");
    assert_eq!(shadow.catch_up().unwrap(), 0);
    let (_journal, mut appender) = hand_journal(dir.path(), &instruments);
    let e = shadow.write_checkpoint(&mut appender).unwrap_err();
    assert!(matches!(e, CheckpointError::ShadowFailed(_)), "{e:?}");
    assert!(shadow.failed().is_some());
}
