//! Checkpoints of the recovered state (cold path): what lets [`recover`](super::recovery::recover)
//! start from a journal position instead of the first frame, so retention may prune the
//! segments before it. Why they are made this way is in [`recovery`](super::recovery)'s
//! module doc; the records are drawn in `levibot_shm::records` (`CheckpointBegin` ..
//! `CheckpointEnd`).
//!
//! - [`ShadowRecovery`]: the daemon's control loop owns one. It is recovery's replay, seeded
//!   with the state recovery returned at start-up, following the journal with a `Tailer`
//!   ([`catch_up`](ShadowRecovery::catch_up)) and journaling its state as a checkpoint
//!   ([`write_checkpoint`](ShadowRecovery::write_checkpoint)).
//! - [`Checkpoint`]: one checkpoint's records, in memory: taken from a replay (`capture`),
//!   found in the journal (`scan`: the last complete one) and restored into a replay
//!   (`restore`), with every value checked.
//!
//! ```text
//!  control loop                           journal
//!   every 100 ms: shadow.catch_up()  <---- Tailer: frames up to the head (<= 64 Ki per call)
//!   every 60 s:   shadow.write_checkpoint(&mut appender)
//!                   ----> BEGIN(id, P) INSTRUMENT* ORDER* MARKS* FILLS* END(id, records)
//!                         (P = the first frame the shadow has not applied; P <= BEGIN)
//! ```

use std::path::{Path, PathBuf};

use levibot_engine::risk::{
    EngineState, LedgerState, OPEN_ORDERS_MAX, OrderState, RATE_WINDOW_MAX, REPLACES_PENDING_MAX,
    RISK_INSTRUMENTS_MAX, RISK_STRATEGIES_MAX, ReplaceState, RiskCheck, RiskEngine, RiskLimits,
    StateProblem, TradingState, TripState,
};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::layout::HEADER_LEN;
use levibot_shm::records::{
    CHECKPOINT_FILLS_PER_RECORD, CHECKPOINT_MARKS_PER_RECORD, CheckpointBegin, CheckpointEnd,
    CheckpointFills, CheckpointInstrument, CheckpointMarks, CheckpointOrder, CheckpointReplace,
    FixSeqNums, InstrumentDef, Record, StrategyMark, checkpoint_flag, checkpoint_instrument_flag,
    checkpoint_order_flag, i128_from_words, i128_to_words, record_type,
};
use levibot_shm::{Appender, Frame, Journal, Position, RecordType, ShmError, StartAt, Tailer};

use super::recovery::{Recovered, RecoveryError, Replay, check_instrument, journal_error};

/// Frames one [`ShadowRecovery::catch_up`] applies at most (a few ms of work): the control
/// loop's other duties wait no longer than that.
pub const CATCH_UP_FRAMES_MAX: usize = 64 * 1024;
/// Frames the first pass of recovery reads per poll.
const SCAN_FRAMES_PER_POLL: usize = 4096;

const _: () = assert!(REPLACES_PENDING_MAX <= levibot_shm::records::CHECKPOINT_REPLACES_MAX);
/// Records one checkpoint holds at most (its begin and end aside): every instrument, every
/// open order, every strategy's mark, every fill stamp: about 5,200 records, 1.5 MB with their
/// frame headers. A daemon with a few strategies writes 2 + instruments + open orders + 1 +
/// fills / 64.
pub const CHECKPOINT_RECORDS_MAX: usize = RISK_INSTRUMENTS_MAX
    + OPEN_ORDERS_MAX
    + RISK_STRATEGIES_MAX.div_ceil(CHECKPOINT_MARKS_PER_RECORD)
    + RATE_WINDOW_MAX.div_ceil(CHECKPOINT_FILLS_PER_RECORD);

/// One checkpoint's records (see `levibot_shm::records::CheckpointBegin`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub begin: CheckpointBegin,
    /// By instrument id.
    pub instruments: Vec<CheckpointInstrument>,
    /// By client order id.
    pub orders: Vec<CheckpointOrder>,
    /// By strategy id.
    pub marks: Vec<CheckpointMarks>,
    /// Oldest first.
    pub fills: Vec<CheckpointFills>,
}

impl Checkpoint {
    /// Records between the begin and the end.
    pub fn body_records(&self) -> u64 {
        (self.instruments.len() + self.orders.len() + self.marks.len() + self.fills.len()) as u64
    }

    /// Gives every record the id `checkpoint_id`.
    pub fn set_id(&mut self, checkpoint_id: u64) {
        self.begin.checkpoint_id = checkpoint_id;
        self.instruments
            .iter_mut()
            .for_each(|r| r.checkpoint_id = checkpoint_id);
        self.orders
            .iter_mut()
            .for_each(|r| r.checkpoint_id = checkpoint_id);
        self.marks
            .iter_mut()
            .for_each(|r| r.checkpoint_id = checkpoint_id);
        self.fills
            .iter_mut()
            .for_each(|r| r.checkpoint_id = checkpoint_id);
    }

    /// The end record that completes it.
    pub fn end(&self) -> CheckpointEnd {
        CheckpointEnd {
            checkpoint_id: self.begin.checkpoint_id,
            records: self.body_records(),
            replay_from: self.begin.replay_from,
        }
    }

    /// Hands every record to `write`, in journal order, the end last; stops at the first
    /// error.
    pub fn for_each_record<E>(
        &self,
        mut write: impl FnMut(RecordType, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        write(CheckpointBegin::RECORD_TYPE, self.begin.to_bytes())?;
        for r in &self.instruments {
            write(CheckpointInstrument::RECORD_TYPE, r.to_bytes())?;
        }
        for r in &self.orders {
            write(CheckpointOrder::RECORD_TYPE, r.to_bytes())?;
        }
        for r in &self.marks {
            write(CheckpointMarks::RECORD_TYPE, r.to_bytes())?;
        }
        for r in &self.fills {
            write(CheckpointFills::RECORD_TYPE, r.to_bytes())?;
        }
        write(CheckpointEnd::RECORD_TYPE, self.end().to_bytes())
    }
}

/// What is wrong with a complete checkpoint that does not restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointProblem {
    #[error("it replays from position {replay_from}, after its own first record")]
    ReplayFromAfterBegin { replay_from: u64 },
    #[error("trading state {0} is no state")]
    TradingState(u8),
    #[error("its pending trip has check code {0}, which is no check")]
    TripCheck(u16),
    #[error("instrument {0} is out of range or appears twice")]
    InstrumentId(u32),
    #[error("instrument {0}: corrupt symbol")]
    CorruptSymbol(u32),
    #[error("instrument {0}: its open orders do not add up to its open quantities")]
    OpenQty(u32),
    #[error("open order {client_order_id}: its instrument {instrument_id} has no ledger in it")]
    NoLedger {
        client_order_id: u64,
        instrument_id: u32,
    },
    #[error("{0}")]
    State(#[from] StateProblem),
}

/// A complete checkpoint found in the journal.
pub(super) struct Found {
    pub(super) checkpoint: Checkpoint,
    /// Its first record.
    pub(super) position: Position,
}

/// What recovery's first pass found.
#[derive(Default)]
pub(super) struct Scan {
    /// The last complete checkpoint.
    pub(super) last: Option<Found>,
    /// The highest checkpoint id seen, complete or not (0: none).
    pub(super) id_max: u64,
}

/// A checkpoint being read: its begin seen, not its end.
struct Pending {
    checkpoint: Checkpoint,
    writer_id: u16,
    position: Position,
    marks: usize,
    fills: usize,
    /// More records than it announced, of some kind: it can never be complete.
    broken: bool,
}

impl Pending {
    /// `None` if it announces more than any checkpoint holds (garbage).
    fn new(begin: CheckpointBegin, writer_id: u16, position: Position) -> Option<Pending> {
        let fits = begin.instruments as usize <= RISK_INSTRUMENTS_MAX
            && begin.orders as usize <= OPEN_ORDERS_MAX
            && begin.marks as usize <= RISK_STRATEGIES_MAX
            && begin.fills as usize <= RATE_WINDOW_MAX;
        fits.then(|| Pending {
            checkpoint: Checkpoint {
                begin,
                ..Checkpoint::default()
            },
            writer_id,
            position,
            marks: 0,
            fills: 0,
            broken: false,
        })
    }

    /// Takes one body record if it is this checkpoint's (its id, its writer).
    fn take(&mut self, frame: &Frame<'_>) {
        fn ours<R: Record>(frame: &Frame<'_>, id: u64, id_of: fn(&R) -> u64) -> Option<R> {
            R::from_bytes(frame.payload).filter(|r| id_of(r) == id)
        }
        if self.broken || frame.writer_id != self.writer_id {
            return;
        }
        let begin = self.checkpoint.begin;
        let id = begin.checkpoint_id;
        let c = &mut self.checkpoint;
        let fits = match frame.record_type {
            record_type::CHECKPOINT_INSTRUMENT => {
                let Some(r) = ours(frame, id, |r: &CheckpointInstrument| r.checkpoint_id) else {
                    return;
                };
                c.instruments.push(r);
                c.instruments.len() <= begin.instruments as usize
            }
            record_type::CHECKPOINT_ORDER => {
                let Some(r) = ours(frame, id, |r: &CheckpointOrder| r.checkpoint_id) else {
                    return;
                };
                c.orders.push(r);
                c.orders.len() <= begin.orders as usize
            }
            record_type::CHECKPOINT_MARKS => {
                let Some(r) = ours(frame, id, |r: &CheckpointMarks| r.checkpoint_id) else {
                    return;
                };
                self.marks += r.used().len();
                c.marks.push(r);
                self.marks <= begin.marks as usize
            }
            record_type::CHECKPOINT_FILLS => {
                let Some(r) = ours(frame, id, |r: &CheckpointFills| r.checkpoint_id) else {
                    return;
                };
                self.fills += r.used().len();
                c.fills.push(r);
                self.fills <= begin.fills as usize
            }
            _ => return,
        };
        if !fits {
            // More than it announced: never complete. Drop all it holds, its begin too (garbage
            // must not grow it; nothing reads a broken one again) and ignore the rest.
            self.broken = true;
            *c = Checkpoint::default();
        }
    }

    /// Whether `end` completes it: every record it announced came, and nothing more.
    fn completed_by(&self, end: &CheckpointEnd, writer_id: u16) -> bool {
        let c = &self.checkpoint;
        let b = &c.begin;
        !self.broken
            && writer_id == self.writer_id
            && end.checkpoint_id == b.checkpoint_id
            && end.replay_from == b.replay_from
            && end.records == c.body_records()
            && c.instruments.len() == b.instruments as usize
            && c.orders.len() == b.orders as usize
            && self.marks == b.marks as usize
            && self.fills == b.fills as usize
            && c.marks.len() == self.marks.div_ceil(CHECKPOINT_MARKS_PER_RECORD)
            && c.fills.len() == self.fills.div_ceil(CHECKPOINT_FILLS_PER_RECORD)
    }
}

/// Recovery's first pass: reads every available segment for checkpoint records and keeps the
/// last complete checkpoint. A missing segment ends the checkpoint being read (its records
/// may be in it) and the pass goes on: it matters only if it lies after the checkpoint used,
/// where the second pass meets it.
pub(super) fn scan(dir: &Path) -> Result<Scan, RecoveryError> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).map_err(|e| journal_error(dir, e))?;
    let mut scan = Scan::default();
    let mut pending: Option<Pending> = None;
    loop {
        let polled = tailer.poll(SCAN_FRAMES_PER_POLL, |frame| {
            scan_frame(frame, &mut pending, &mut scan);
        });
        match polled {
            Ok(polled) if polled.frames == 0 => return Ok(scan),
            Ok(_) => {}
            Err(ShmError::SegmentMissing { .. }) => pending = None,
            Err(e) => return Err(journal_error(dir, e)),
        }
    }
}

fn scan_frame(frame: &Frame<'_>, pending: &mut Option<Pending>, scan: &mut Scan) {
    match frame.record_type {
        record_type::CHECKPOINT_BEGIN => {
            // A new checkpoint: one still being read was cut off (a crash, a failed append).
            *pending = CheckpointBegin::from_bytes(frame.payload).and_then(|begin| {
                scan.id_max = scan.id_max.max(begin.checkpoint_id);
                Pending::new(begin, frame.writer_id, frame.position)
            });
        }
        record_type::CHECKPOINT_END => {
            let Some(end) = CheckpointEnd::from_bytes(frame.payload) else {
                return;
            };
            if pending
                .as_ref()
                .is_some_and(|p| p.completed_by(&end, frame.writer_id))
            {
                let p = pending.take().expect("checked");
                scan.last = Some(Found {
                    checkpoint: p.checkpoint,
                    position: p.position,
                });
            }
        }
        _ => {
            if let Some(p) = pending.as_mut() {
                p.take(frame);
            }
        }
    }
}

/// The replay's state as a checkpoint as of `replay_from` carries it.
pub(super) fn capture(
    replay: &Replay,
    checkpoint_id: u64,
    replay_from: Position,
    unix_ns: u64,
) -> Checkpoint {
    let engine = &replay.engine;
    let mut instruments = Vec::new();
    for id in 0..RISK_INSTRUMENTS_MAX as u32 {
        let def = replay.instruments.get(id).and_then(|i| {
            InstrumentDef::new(
                id,
                i.symbol.as_str(),
                (i.price_scale.mantissa, i.price_scale.exp),
                (i.qty_scale.mantissa, i.qty_scale.exp),
            )
        });
        let ledger = engine.ledger_state(id);
        if def.is_none() && ledger.is_none() {
            continue;
        }
        let mut flags = 0;
        if def.is_some() {
            flags |= checkpoint_instrument_flag::DEFINED;
        }
        if ledger.is_some() {
            flags |= checkpoint_instrument_flag::RISK;
        }
        let ledger = ledger.unwrap_or_default();
        instruments.push(CheckpointInstrument {
            checkpoint_id,
            def: def.unwrap_or(InstrumentDef {
                instrument_id: id,
                ..InstrumentDef::default()
            }),
            position: ledger.position,
            open_buy_qty: ledger.open_buy_qty,
            open_sell_qty: ledger.open_sell_qty,
            mark_px: ledger.mark_px,
            worst_max: replay.worst_max[id as usize],
            realised: i128_to_words(ledger.realised),
            open_cost: i128_to_words(ledger.open_cost),
            pnl: i128_to_words(ledger.pnl),
            flags,
            reserved: 0,
        });
    }
    let mut orders: Vec<CheckpointOrder> = engine
        .order_states()
        .map(|o| order_record(checkpoint_id, &o))
        .collect();
    // The table's own order depends on how it was filled; a checkpoint's does not.
    orders.sort_by_key(|o| o.client_order_id);
    let mut marks = Vec::new();
    let mut mark_count = 0;
    for (strategy_id, next) in engine.client_order_id_marks() {
        if mark_count % CHECKPOINT_MARKS_PER_RECORD == 0 {
            marks.push(CheckpointMarks {
                checkpoint_id,
                ..CheckpointMarks::default()
            });
        }
        let record = marks.last_mut().expect("pushed above");
        record.marks[record.count as usize] = StrategyMark {
            next_client_order_id: next,
            strategy_id,
            ..StrategyMark::default()
        };
        record.count += 1;
        mark_count += 1;
    }
    let fills: Vec<CheckpointFills> = replay
        .fill_stamps
        .iter()
        .copied()
        .collect::<Vec<u64>>()
        .chunks(CHECKPOINT_FILLS_PER_RECORD)
        .map(|stamps| {
            let mut record = CheckpointFills {
                checkpoint_id,
                count: stamps.len() as u32,
                ..CheckpointFills::default()
            };
            record.stamps_ns[..stamps.len()].copy_from_slice(stamps);
            record
        })
        .collect();
    let state = engine.engine_state();
    let mut flags = 0;
    let mut set = |flag, on: bool| {
        if on {
            flags |= flag;
        }
    };
    set(checkpoint_flag::CLEAN_STOP, replay.stopped);
    set(
        checkpoint_flag::CLIENT_ORDER_ID_MAX,
        replay.id_max.is_some(),
    );
    set(checkpoint_flag::FIX_SEQ_NUMS, replay.fix_seq_nums.is_some());
    set(
        checkpoint_flag::SENT_MSG_SEQ_NUM_MAX,
        replay.sent_seq_max.is_some(),
    );
    set(checkpoint_flag::TRIP, state.trip.is_some());
    set(checkpoint_flag::STATUS_ROUND_OPEN, state.status_round_open);
    let fix = replay.fix_seq_nums.unwrap_or_default();
    let trip = state.trip;
    Checkpoint {
        begin: CheckpointBegin {
            checkpoint_id,
            replay_from: replay_from.0,
            unix_ns,
            frames: replay.frames,
            runs: replay.runs,
            epoch: replay.epoch.unwrap_or(0),
            orders_sent: replay.orders_sent,
            reports: replay.reports,
            targets_gone: replay.targets_gone,
            skipped: replay.skipped,
            client_order_id_max: replay.id_max.unwrap_or(0),
            fix_next_sender: fix.next_sender,
            fix_next_target: fix.next_target,
            sent_msg_seq_num_max: replay.sent_seq_max.unwrap_or(0),
            ignored_reports: state.ignored_reports,
            trip_limit: trip.map_or(0, |t| t.limit),
            trip_value: trip.map_or(0, |t| t.value),
            pnl_total: i128_to_words(state.pnl_total),
            instruments: instruments.len() as u32,
            orders: orders.len() as u32,
            marks: mark_count as u32,
            fills: replay.fill_stamps.len() as u32,
            flags,
            trip_check: trip.map_or(0, |t| t.check.code()),
            trading_state: state.trading_state as u8,
            reserved: [0; 3],
        },
        instruments,
        orders,
        marks,
        fills,
    }
}

fn order_record(checkpoint_id: u64, o: &OrderState) -> CheckpointOrder {
    let mut pending = [CheckpointReplace::default(); levibot_shm::records::CHECKPOINT_REPLACES_MAX];
    for (to, from) in pending.iter_mut().zip(&o.pending) {
        *to = CheckpointReplace {
            client_order_id: from.client_order_id,
            px: from.px,
            qty: from.qty,
        };
    }
    let mut flags = 0;
    if o.acked {
        flags |= checkpoint_order_flag::ACKED;
    }
    if o.cancel_client_order_id.is_some() {
        flags |= checkpoint_order_flag::CANCEL_PENDING;
    }
    if o.awaiting_status {
        flags |= checkpoint_order_flag::AWAITING_STATUS;
    }
    CheckpointOrder {
        checkpoint_id,
        client_order_id: o.client_order_id,
        cancel_client_order_id: o.cancel_client_order_id.unwrap_or(0),
        px: o.px,
        leaves_qty: o.leaves_qty,
        cum_qty: o.cum_qty,
        counted_qty: o.counted_qty,
        pending,
        instrument_id: o.instrument_id,
        side: o.side,
        ord_type: o.ord_type,
        pending_len: o.pending_len,
        flags,
    }
}

fn order_state(r: &CheckpointOrder) -> OrderState {
    let mut pending = [ReplaceState::default(); REPLACES_PENDING_MAX];
    for (to, from) in pending.iter_mut().zip(&r.pending) {
        *to = ReplaceState {
            client_order_id: from.client_order_id,
            px: from.px,
            qty: from.qty,
        };
    }
    OrderState {
        client_order_id: r.client_order_id,
        instrument_id: r.instrument_id,
        side: r.side,
        ord_type: r.ord_type,
        px: r.px,
        leaves_qty: r.leaves_qty,
        cum_qty: r.cum_qty,
        counted_qty: r.counted_qty,
        pending,
        // More than the engine holds is refused by `restore_open_order`.
        pending_len: r.pending_len,
        cancel_client_order_id: (r.flags & checkpoint_order_flag::CANCEL_PENDING != 0)
            .then_some(r.cancel_client_order_id),
        acked: r.flags & checkpoint_order_flag::ACKED != 0,
        awaiting_status: r.flags & checkpoint_order_flag::AWAITING_STATUS != 0,
    }
}

/// A replay in the state `found` carries, into `engine` (fresh, with the limits in force);
/// every value checked, every instrument definition against `instruments`.
pub(super) fn restore(
    mut engine: RiskEngine,
    instruments: &InstrumentTable,
    found: &Found,
    dir: &Path,
) -> Result<Replay, RecoveryError> {
    let c = &found.checkpoint;
    let b = &c.begin;
    let problem = |problem: CheckpointProblem| RecoveryError::Checkpoint {
        dir: dir.to_owned(),
        checkpoint_id: b.checkpoint_id,
        position: found.position,
        problem,
    };
    if b.replay_from > found.position.0 {
        return Err(problem(CheckpointProblem::ReplayFromAfterBegin {
            replay_from: b.replay_from,
        }));
    }
    let state = TradingState::from_code(i64::from(b.trading_state))
        .ok_or_else(|| problem(CheckpointProblem::TradingState(b.trading_state)))?;
    let flag = |f: u16| b.flags & f != 0;
    let trip = if flag(checkpoint_flag::TRIP) {
        let check = RiskCheck::from_code(b.trip_check)
            .ok_or_else(|| problem(CheckpointProblem::TripCheck(b.trip_check)))?;
        Some(TripState {
            check,
            limit: b.trip_limit,
            value: b.trip_value,
        })
    } else {
        None
    };
    let mut seen = [false; RISK_INSTRUMENTS_MAX];
    let mut ledgers = [false; RISK_INSTRUMENTS_MAX];
    let mut worst_max = [0; RISK_INSTRUMENTS_MAX];
    for r in &c.instruments {
        let id = r.def.instrument_id;
        if seen.get(id as usize).is_none_or(|&s| s) {
            return Err(problem(CheckpointProblem::InstrumentId(id)));
        }
        seen[id as usize] = true;
        if r.flags & checkpoint_instrument_flag::DEFINED != 0
            && !check_instrument(instruments, &r.def)?
        {
            return Err(problem(CheckpointProblem::CorruptSymbol(id)));
        }
        let ledger = ledger_state(r);
        let restored = if r.flags & checkpoint_instrument_flag::RISK != 0 {
            ledgers[id as usize] = true;
            engine.restore_ledger(id, &ledger, r.worst_max)
        } else if ledger == LedgerState::default() && r.worst_max == 0 {
            // Without limits then, it held nothing.
            Ok(())
        } else {
            Err(StateProblem::Ledger {
                instrument_id: id,
                field: "ledger (no risk limits)",
            })
        };
        restored.map_err(|e| problem(e.into()))?;
        worst_max[id as usize] = r.worst_max;
    }
    for r in &c.orders {
        if !ledgers.get(r.instrument_id as usize).is_some_and(|&l| l) {
            return Err(problem(CheckpointProblem::NoLedger {
                client_order_id: r.client_order_id,
                instrument_id: r.instrument_id,
            }));
        }
        engine
            .restore_open_order(&order_state(r))
            .map_err(|e| problem(e.into()))?;
    }
    engine.finish_state_restore();
    for r in &c.instruments {
        let id = r.def.instrument_id;
        if ledgers[id as usize] && engine.open_qty(id) != (r.open_buy_qty, r.open_sell_qty) {
            return Err(problem(CheckpointProblem::OpenQty(id)));
        }
    }
    for m in c.marks.iter().flat_map(|r| r.used()) {
        engine.restore_next_client_order_id(m.strategy_id, m.next_client_order_id);
    }
    let stamps: Vec<u64> = c.fills.iter().flat_map(|r| r.used()).copied().collect();
    engine.restore_fill_stamps(&stamps);
    engine.restore_engine_state(&EngineState {
        trading_state: state,
        trip,
        pnl_total: i128_from_words(b.pnl_total),
        ignored_reports: b.ignored_reports,
        status_round_open: flag(checkpoint_flag::STATUS_ROUND_OPEN),
    });
    let mut replay = Replay::new(engine, instruments);
    replay.id_max = flag(checkpoint_flag::CLIENT_ORDER_ID_MAX).then_some(b.client_order_id_max);
    replay.orders_sent = b.orders_sent;
    replay.reports = b.reports;
    replay.targets_gone = b.targets_gone;
    replay.skipped = b.skipped;
    replay.stopped = flag(checkpoint_flag::CLEAN_STOP);
    replay.runs = b.runs;
    replay.frames = b.frames;
    replay.epoch = (b.epoch != 0).then_some(b.epoch);
    replay.fix_seq_nums = flag(checkpoint_flag::FIX_SEQ_NUMS).then_some(FixSeqNums {
        next_sender: b.fix_next_sender,
        next_target: b.fix_next_target,
    });
    replay.sent_seq_max =
        flag(checkpoint_flag::SENT_MSG_SEQ_NUM_MAX).then_some(b.sent_msg_seq_num_max);
    replay.fill_stamps.extend(stamps);
    replay.worst_max = worst_max;
    replay.checkpoint_id_max = b.checkpoint_id;
    Ok(replay)
}

fn ledger_state(r: &CheckpointInstrument) -> LedgerState {
    LedgerState {
        position: r.position,
        open_buy_qty: r.open_buy_qty,
        open_sell_qty: r.open_sell_qty,
        realised: i128_from_words(r.realised),
        open_cost: i128_from_words(r.open_cost),
        mark_px: r.mark_px,
        pnl: i128_from_words(r.pnl),
    }
}

/// Why no checkpoint was written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An earlier [`catch_up`](ShadowRecovery::catch_up) failed: the shadow's state no longer
    /// follows the journal. The next start recovers from the last checkpoint written (and
    /// meets the same failure if it was in the journal's frames).
    #[error("the shadow replay stopped ({0}): no checkpoint is written until the daemon restarts")]
    ShadowFailed(String),
    /// An append failed; the checkpoint is incomplete, and recovery ignores it.
    #[error("journal: checkpoint {checkpoint_id} left incomplete (recovery ignores it): {source}")]
    Append {
        checkpoint_id: u64,
        #[source]
        source: ShmError,
    },
}

/// A checkpoint written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointWritten {
    pub checkpoint_id: u64,
    /// P: recovery replays from here.
    pub replay_from: Position,
    /// Its first record.
    pub begin: Position,
    /// Records appended, begin and end included.
    pub records: u64,
}

/// Recovery's replay, kept going on the daemon's cold side: it follows the journal and
/// journals its state as checkpoints (see the module doc and `recovery`'s).
pub struct ShadowRecovery {
    dir: PathBuf,
    segment_size: usize,
    replay: Replay,
    tailer: Tailer,
    next_checkpoint_id: u64,
    /// Why a catch-up failed, once one has.
    failed: Option<String>,
}

impl std::fmt::Debug for ShadowRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowRecovery")
            .field("dir", &self.dir)
            .field("position", &self.tailer.position())
            .field("frames", &self.replay.frames)
            .field("next_checkpoint_id", &self.next_checkpoint_id)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ShadowRecovery {
    /// Starts where start-up recovery ended, in the state it returned (restored from
    /// `recovered`'s own checkpoint of it, so exactly that state), with the same `limits` and
    /// `instruments`. Call before the pipeline moves `recovered.engine` away; nothing is read
    /// yet.
    pub fn start(
        journal: &Journal,
        limits: RiskLimits,
        instruments: &InstrumentTable,
        recovered: &Recovered,
    ) -> Result<ShadowRecovery, RecoveryError> {
        let dir = journal.dir();
        let segment_size = journal.segment_size();
        let at = frame_position(recovered.end, segment_size);
        let mut state = recovered.state.clone();
        state.begin.replay_from = at.0;
        let found = Found {
            checkpoint: state,
            position: at,
        };
        let replay = restore(RiskEngine::new(limits)?, instruments, &found, dir)?;
        let tailer = Tailer::open(dir, StartAt::Position(at)).map_err(|e| journal_error(dir, e))?;
        Ok(ShadowRecovery {
            dir: dir.to_owned(),
            segment_size,
            replay,
            tailer,
            next_checkpoint_id: recovered.checkpoint_id_max.saturating_add(1),
            failed: None,
        })
    }

    /// Applies the frames journaled since the last call, at most [`CATCH_UP_FRAMES_MAX`];
    /// returns how many (call again soon if that many: the journal is ahead). Never waits.
    /// After a failure (returned once) the shadow stops: every later call returns `Ok(0)` and
    /// [`write_checkpoint`](Self::write_checkpoint) refuses.
    pub fn catch_up(&mut self) -> Result<usize, RecoveryError> {
        self.catch_up_frames(CATCH_UP_FRAMES_MAX)
    }

    /// [`catch_up`](Self::catch_up) with another bound.
    pub fn catch_up_frames(&mut self, frames_max: usize) -> Result<usize, RecoveryError> {
        if self.failed.is_some() {
            return Ok(0);
        }
        self.replay
            .replay(&mut self.tailer, frames_max, &self.dir)
            .inspect_err(|e| self.failed = Some(e.to_string()))
    }

    /// Journals the state as a checkpoint through `appender` (the daemon's own writer), with
    /// P = the first frame not applied yet. About 2 + instruments + open orders + strategies /
    /// 16 + fills / 64 records. If an append fails, the checkpoint stays incomplete (recovery
    /// ignores it) and the next one takes a new id.
    pub fn write_checkpoint(
        &mut self,
        appender: &mut Appender,
    ) -> Result<CheckpointWritten, CheckpointError> {
        if let Some(cause) = &self.failed {
            return Err(CheckpointError::ShadowFailed(cause.clone()));
        }
        let checkpoint_id = self.next_checkpoint_id;
        self.next_checkpoint_id += 1;
        let replay_from = self.position();
        let checkpoint = capture(&self.replay, checkpoint_id, replay_from, unix_now_ns());
        let mut begin = None;
        checkpoint
            .for_each_record(|record_type, bytes| {
                let at = appender.append(record_type, bytes)?;
                begin.get_or_insert(at);
                Ok(())
            })
            .map_err(|source| CheckpointError::Append {
                checkpoint_id,
                source,
            })?;
        Ok(CheckpointWritten {
            checkpoint_id,
            replay_from,
            begin: begin.expect("a checkpoint has records"),
            records: checkpoint.body_records() + 2,
        })
    }

    /// The first frame not applied yet (the P of the next checkpoint).
    pub fn position(&self) -> Position {
        frame_position(self.tailer.position(), self.segment_size)
    }

    /// Why the shadow stopped, if it has.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

/// A tailer's position as a frame's: the end of a segment is the next segment's first frame
/// (`Tailer::open` at a position takes only frame positions).
fn frame_position(position: Position, segment_size: usize) -> Position {
    if position.0.is_multiple_of(segment_size as u64) {
        Position(position.0 + HEADER_LEN as u64)
    } else {
        position
    }
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_end_is_the_next_segments_first_frame() {
        let size = 1 << 16;
        assert_eq!(
            frame_position(Position(3 * size as u64), size),
            Position(3 * size as u64 + HEADER_LEN as u64)
        );
        let inside = Position(3 * size as u64 + HEADER_LEN as u64 + 64);
        assert_eq!(frame_position(inside, size), inside);
    }

    #[test]
    fn a_begin_announcing_more_than_any_checkpoint_holds_is_no_checkpoint() {
        let begin = CheckpointBegin {
            instruments: RISK_INSTRUMENTS_MAX as u32,
            orders: OPEN_ORDERS_MAX as u32,
            marks: RISK_STRATEGIES_MAX as u32,
            fills: RATE_WINDOW_MAX as u32,
            ..CheckpointBegin::default()
        };
        assert!(Pending::new(begin, 6, Position(4096)).is_some());
        for garbage in [
            CheckpointBegin {
                orders: OPEN_ORDERS_MAX as u32 + 1,
                ..begin
            },
            CheckpointBegin {
                fills: u32::MAX,
                ..begin
            },
            CheckpointBegin {
                instruments: RISK_INSTRUMENTS_MAX as u32 + 1,
                ..begin
            },
        ] {
            assert!(Pending::new(garbage, 6, Position(4096)).is_none());
        }
        // The bound the docs give, by hand: 64 instruments, 1,024 open orders, 65,536 strategy
        // marks at 16 a record, 1,024 fill stamps at 64 a record.
        assert_eq!(CHECKPOINT_RECORDS_MAX, 64 + 1_024 + 4_096 + 16);
    }
}
