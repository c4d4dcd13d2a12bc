//! The crash harness of `tests/daemon_recovery.rs` and `tests/daemon_checkpoint.rs`: the real
//! pipeline (the reference maker over a seeded synthetic stream) against a venue that
//! acknowledges, fills part or all of some orders, refuses some and answers late, journaling
//! into a directory; a run stopped at a random point; what the journal says, read independently
//! of recovery; and the assertions that compare a recovery with the live engine and with the
//! venue's own view.
//!
//! Stopping: the source is held back at a random message and the venue stops answering (what
//! it was sent stays unanswered, as if the process died after the write-ahead `SentOrder`);
//! then the pipeline runs until idle, so that every report journaled has reached risk too.
//! The process "crashes" there: nothing more is written, no `STOPPED` event.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use levibot_daemon::recovery::Recovered;
use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::{
    MessageSource, Pipeline, PipelineControls, Polled, Queued, SyntheticSource, Venue,
    VenueSendError,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::risk::{OpenOrderInfo, RiskEngine, RiskLimits};
use levibot_engine::strategy::maker::{Maker, MakerParams};
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::instrument::{Instrument, InstrumentTable};
use levibot_shm::codes::writer_id;
use levibot_shm::counters::CountersWriter;
use levibot_shm::records::{
    DaemonEvent, ExecutionReport, InstrumentDef, OrderRequest, Record, RiskReject, SentOrder,
    daemon_event, exec_type, ord_type, order_kind, record_type, side, time_in_force,
};
use levibot_shm::{Appender, Journal, JournalConfig, RetentionPolicy, StartAt, Tailer};

/// Messages of a run's synthetic stream (it is held back before the end).
pub const MESSAGES: u64 = 20_000;
/// Duty cycles a drain may take before the test calls it a hang.
pub const DRAIN_ROUNDS_MAX: usize = 1_000_000;
/// In percent: new orders the venue refuses; queued orders it answers at each flush; flushes
/// that fill (part of) a resting order.
pub const VENUE_REJECT_PCT: u8 = 3;
pub const VENUE_ANSWER_PCT: u8 = 70;
pub const VENUE_FILL_PCT: u8 = 15;

pub fn journal_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        segment_size: 16 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    }
}

pub fn journal(dir: &Path) -> Journal {
    Journal::open(&journal_config(dir)).unwrap()
}

pub fn corpus_instrument() -> (InstrumentTable, Instrument) {
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, _) = reference::recording_parts(&recording).unwrap();
    (instruments, instrument)
}

/// The reference limits, with a fill throttle the unpaced run never trips (not what this is
/// about: a trip's timing differs by nanoseconds between the live engine and a replay).
pub fn limits(instrument: &Instrument) -> RiskLimits {
    let mut limits = reference::risk_limits(instrument).unwrap();
    limits.fill_rate.count_max = 1_000;
    limits.fill_rate.window_ns = 1_000;
    limits.validate().unwrap();
    limits
}

/// What the daemon journals first: every instrument of the configuration.
pub fn write_defs(appender: &mut Appender, instruments: &InstrumentTable) {
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

pub fn event(kind: u16, value: i64) -> DaemonEvent {
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
pub struct Resting {
    pub order: OrderRequest,
    /// Total quantity (FIX OrderQty) and filled so far.
    pub qty: i64,
    pub cum: i64,
}

/// The venue's book of our orders; shared, so that a second run finds what the first left.
pub struct VenueState {
    pub rng: fastrand::Rng,
    pub lot_units: i64,
    /// Stops answering: what it is sent waits.
    pub frozen: bool,
    pub next_msg_seq_num: u64,
    /// Sent to it and not answered yet, in order.
    pub queued: VecDeque<OrderRequest>,
    pub resting: BTreeMap<u64, Resting>,
    pub reports: VecDeque<ExecutionReport>,
    pub fills: u64,
    /// What its fills of our orders add up to: bought minus sold.
    pub position: i64,
}

impl VenueState {
    pub fn new(seed: u64, lot_units: i64) -> Arc<Mutex<VenueState>> {
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

    pub fn report(&mut self, order: &OrderRequest, client_order_id: u64, exec: u8, r: Resting) {
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
    pub fn answer(&mut self, o: OrderRequest) {
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
    pub fn fill_one(&mut self) {
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
pub struct FillingVenue(pub Arc<Mutex<VenueState>>);

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
pub struct Gate {
    pub inner: SyntheticSource,
    pub issued: u64,
    pub pause_at: u64,
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

pub type TestPipeline = Pipeline<Gate, Maker, FillingVenue, Rtrb>;

/// One daemon run: the journal open, the instrument definitions written first, the pipeline.
pub struct Run {
    pub journal: Journal,
    pub daemon: Appender,
    pub pipeline: TestPipeline,
    pub controls: PipelineControls<MakerParams>,
    pub _counters: CountersWriter,
}

/// Opens the journal in `dir` and assembles the pipeline: the maker from `first_id`, and the
/// risk engine `restored` (a fresh one if `None`).
#[allow(clippy::too_many_arguments)]
pub fn start_run(
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
pub fn start_run_in(
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
    pub fn run_to_gate(&mut self, seed: u64) {
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
    pub fn run_until_unanswered(&mut self, venue: &Arc<Mutex<VenueState>>, seed: u64) {
        self.run_to_gate(seed);
        while venue.lock().unwrap().queued.is_empty() && !self.pipeline.feed.is_done() {
            self.pipeline.feed.source_mut().pause_at += 1;
            self.run_to_gate(seed);
        }
    }

    /// The venue stops answering; the pipeline runs until idle.
    pub fn freeze_and_drain(&mut self, venue: &Arc<Mutex<VenueState>>, seed: u64) {
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

    pub fn live(&self) -> &RiskEngine {
        self.pipeline.risk.stage().engine()
    }
}

// ------------------------------------------------------------------------------------------------
// What the journal says, read independently of recovery.

#[derive(Debug, Default)]
pub struct Journaled {
    pub sent: u64,
    pub reports: u64,
    /// The highest client order id of any request, refusal, sent order or report.
    pub id_max: u64,
    /// The highest MsgSeqNum of a sent order.
    pub seq_max: u64,
    pub ids: Vec<u64>,
}

pub fn read_journal(dir: &Path) -> Journaled {
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

pub fn open_orders(engine: &RiskEngine) -> Vec<OpenOrderInfo> {
    let mut orders: Vec<OpenOrderInfo> = engine
        .open_order_ids()
        .filter_map(|id| engine.open_order(id))
        .collect();
    orders.sort_by_key(|o| o.client_order_id);
    orders
}

/// The recovered state is the live engine's; the ids and sequence numbers are past the
/// journal's.
pub fn assert_recovered(
    live: &RiskEngine,
    rec: &Recovered,
    dir: &Path,
    instrument_id: u32,
    ctx: &str,
) {
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
pub fn assert_matches_venue(rec: &Recovered, venue: &VenueState, instrument_id: u32, ctx: &str) {
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

pub fn describe(rec: &Recovered) -> String {
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

// ------------------------------------------------------------------------------------------------
// Hand-written journals.

/// A journal of one run in `dir` with the configuration's instrument definitions, and an
/// appender to write more.
pub fn hand_journal(dir: &Path, instruments: &InstrumentTable) -> (Journal, Appender) {
    let journal = journal(dir);
    let mut appender = journal.appender(writer_id::DAEMON).unwrap();
    write_defs(&mut appender, instruments);
    (journal, appender)
}

pub fn new_order(client_order_id: u64, px: i64, qty: i64) -> OrderRequest {
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

/// The venue's acknowledgement (NEW) of a buy of one lot of `instrument` at `px`.
pub fn ack(client_order_id: u64, instrument: &Instrument, px: i64) -> ExecutionReport {
    ExecutionReport {
        client_order_id,
        instrument_id: instrument.id,
        exec_type: exec_type::NEW,
        ord_status: exec_type::NEW,
        side: side::BUY,
        px,
        leaves_qty: instrument.lot_units,
        ..ExecutionReport::default()
    }
}

pub fn sent(request: OrderRequest, msg_seq_num: u64) -> SentOrder {
    SentOrder {
        request,
        msg_seq_num,
        ..SentOrder::default()
    }
}

/// Three runs, each with one order, in segments 0, 1 and 2.
pub fn three_runs(dir: &Path, instruments: &InstrumentTable, instrument: &Instrument) {
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
