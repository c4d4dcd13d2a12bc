//! State rebuilt from the journal after a restart (cold path): positions, open orders, PnL,
//! the trading state, the client-order-id mark and the FIX sequence numbers, from every run
//! the journal holds.
//!
//! [`recover`] restores the journal's last complete checkpoint (see below), or a fresh
//! [`RiskEngine`] if there is none, and replays the frames after it, in journal order:
//!
//! | record | effect |
//! | --- | --- |
//! | `INSTRUMENT_DEF` | checked against the configuration: the same symbol and units at the same id, else [`RecoveryError::InstrumentMismatch`] |
//! | `ORDER_SENT` | [`RiskEngine::restore_order`]: open, replace pending or cancel pending, as risk recorded it (a mass status opens a status round); its MsgSeqNum counts for the FIX sequence numbers |
//! | `EXECUTION_REPORT` | [`RiskEngine::on_execution`], at the frame's time (the fill throttle counts as it did live) |
//! | `FIX_SEQ_NUMS` | the last one is where the FIX session resumes (and past every `ORDER_SENT`'s MsgSeqNum), as `pipeline::recover_seq_nums` says |
//! | `DAEMON_EVENT` `TRADING_STATE` | [`RiskEngine::set_trading_state`] (the kill switch and resume) |
//! | `DAEMON_EVENT` `MASS_STATUS` of -1 | [`RiskEngine::abandon_status_round`] (no answer in time) |
//! | `RISK_REJECT` of `max_loss` / `repeated_execution` | the engine had tripped: at least that state |
//! | `ORDER_REQUEST`, `RISK_REJECT` | their client order ids count as seen |
//! | `DAEMON_EVENT` `STOPPED` | the run stopped cleanly, if no other event and no order record follows it |
//! | `CHECKPOINT_*` | nothing (they describe what came before them) |
//!
//! **Why journal order is right.** The gateway journals a `SentOrder` before its bytes leave,
//! and the venue's reports as they arrive, so every report of an order comes after its
//! `SentOrder`; `SentOrder`s are in the order risk passed them. Risk may see a report later
//! than the journal has it (it was on its way from the gateway when risk checked an order):
//! replayed earlier, such a report can only have removed the target of a replace or cancel that
//! risk recorded just before (strategies have one unanswered request per order, so nothing else
//! can move an order's ids meanwhile). Live, that replace or cancel left with its order; here it
//! is not restored (counted in [`Recovered::targets_gone`]): the same state.
//!
//! **Orders sent but never answered** stay open: the bytes may or may not have left before the
//! crash (write-ahead). Reconciling with the venue settles them; that is not done here.
//!
//! **Not restored**: reference prices (a stale one would let orders pass the collar before the
//! book is back; the first top of book sets them again), so until then PnL marks positions at
//! their last fill; realised PnL is exact. Rate windows and recent orders start empty (the fill
//! throttle's window is refilled by the replayed fills). A loss past `loss_max` at those marks
//! trips the engine as it would live.
//!
//! # Checkpoints: recovery without the pruned segments
//!
//! Retention deletes the oldest segments (by age and total size), so the journal's first frame
//! is soon gone; a replay from it would fail for ever ([`RecoveryError::Pruned`]). A checkpoint
//! (`shm::records::CheckpointBegin` .. `CheckpointEnd`, written by
//! [`ShadowRecovery`](super::checkpoint::ShadowRecovery)) is the replayed state *as of a journal
//! position P*: exactly what this replay computes from every frame before P. Recovery takes
//! the last complete one and replays only the frames from P on:
//!
//! 1. a first pass reads the available segments for checkpoint records (nothing else is
//!    decoded) and keeps the last checkpoint whose end record came (same id, same writer, every
//!    record it announced): one cut off by a crash is ignored, so an older one, or the first
//!    frame, is used;
//! 2. a second pass opens the journal at P, which may lie in an earlier segment than the
//!    checkpoint's records (the shadow replay lags the journal a little), restores the state
//!    and replays from there.
//!
//! Only with no complete checkpoint and no segment 0 is the journal [`Pruned`](RecoveryError::Pruned)
//! (or when the last checkpoint's P was pruned too, which takes the journal outgrowing
//! retention between two checkpoints).
//!
//! **Why a shadow replay, not a dump of the live engine.** The live risk engine belongs to the
//! hot path (the risk agent's thread, or the fused one); reading it from the control loop
//! would race it, and asking the agent for it would put a copy on the hot path. It would also
//! not be what recovery computes: risk sees reports later than the journal has them (see
//! above), and recovery keeps no reference prices. The shadow instead runs *this* replay over
//! the journal on the cold side, tailing it, and checkpoints its own state, with P the first
//! frame it has not applied. So a checkpoint is exact by construction, in either thread layout,
//! and restoring it then replaying from P gives the state a full replay gives
//! (`tests/daemon_checkpoint.rs` checks that at random P). The state carried is everything the
//! replay accumulates: per instrument the ledger (position, realised PnL, cost basis, mark,
//! the worst-case bound restored or adopted orders raised), every open order as risk's table
//! holds it (working order, pending replaces and cancel, fills, ack, status-round flag), the
//! trading state, pending trip and open status round, every strategy's client-order-id mark,
//! the fill throttle's stamps, the client-order-id maximum, the last `FixSeqNums` and the
//! highest MsgSeqNum sent (their records may be pruned too), and the counts in [`Recovered`].
//! Not carried: [`Recovered::warnings`] (after a checkpoint it lists what the replay from P
//! skipped; `skipped` still counts all) and the engine's status-round totals
//! (`RiskEngine::status_rounds` ..), which count the rounds this engine replayed.
//!
//! **Cost.** The first pass reads every available frame's header, as the full replay did; the
//! second decodes only what follows P. A checkpoint is a few dozen records for a daemon with a
//! few strategies ([`CHECKPOINT_RECORDS_MAX`](super::checkpoint::CHECKPOINT_RECORDS_MAX) at
//! most).
//!
//! **Instruments.** A checkpoint carries every configured instrument's definition, checked
//! against the configuration as an `INSTRUMENT_DEF` is: the definitions of its run may be
//! pruned, and a daemon started with another instrument at an id must still be refused.
//!
//! **Limits.** The shadow replays with the limits its daemon started with; recovery replays
//! from P with the limits it is given. Where they differ (a reload, a new configuration) only
//! trips at other thresholds could differ (the journal records the trips that happened), and
//! the ledger's worst-case bound is carried as orders raised it, not as the limits set it.
//!
//! **Failures.** A missing or unreadable segment after P (or anywhere, with no checkpoint), or a
//! journal whose first segments were pruned with no checkpoint to stand for them, fails
//! recovery ([`RecoveryError::Journal`], [`RecoveryError::Pruned`]): the orders and fills in
//! them are unknown, so any state rebuilt without them would be wrong. A complete checkpoint
//! that does not restore (values no engine could hold) fails it too
//! ([`RecoveryError::Checkpoint`]); an older one would miss the frames since. A frame of a
//! known type with the wrong payload length is skipped, counted ([`Recovered::skipped`]) and
//! described in [`Recovered::warnings`]; so is an instrument definition with a corrupt symbol or
//! a trading-state event with an unknown value. Recovery never panics on journal contents.
//!
//! **When.** After `Journal::open` (which cuts what a crash left at the tail: a reader stops at
//! a frame claimed and never committed) and before the pipeline appends anything.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use levibot_engine::risk::{
    OpenOrderInfo, RATE_WINDOW_MAX, RISK_INSTRUMENTS_MAX, RestoreError, RestoreProblem, RiskCheck,
    RiskEngine, RiskLimits, RiskLimitsError, TradingState,
};
use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{
    CheckpointBegin, CheckpointEnd, CheckpointFills, CheckpointInstrument, CheckpointMarks,
    CheckpointOrder, DaemonEvent, ExecutionReport, FixSeqNums, InstrumentDef, OrderRequest, Record,
    RiskReject, SentOrder, daemon_event, record_type,
};
use levibot_shm::{Position, RecordType, ShmError, StartAt, Tailer, list_segments};

use super::checkpoint::{self, Checkpoint, CheckpointProblem};

/// Warnings kept in a [`Recovered`] (the rest are only counted in `skipped`).
pub const RECOVERY_WARNINGS_MAX: usize = 64;

/// Why recovery failed: the state would be wrong.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A segment is missing or unreadable (corrupt frame, bad header, I/O).
    #[error("journal {dir}: {source}; the state cannot be rebuilt without it")]
    Journal {
        dir: PathBuf,
        #[source]
        source: ShmError,
    },
    /// The journal's first segments were deleted (retention pruned them, or by hand), and no
    /// checkpoint stands for them.
    #[error(
        "journal {dir}: its oldest segment is {first}: segments 0..{first} were pruned, and {}; \
         the orders and fills in them cannot be recovered; after reconciling with the venue, \
         move the journal away to start afresh",
        pruned_why(*replay_from)
    )]
    Pruned {
        dir: PathBuf,
        first: u64,
        /// Where the last complete checkpoint replays from (pruned too), if there is one.
        replay_from: Option<Position>,
    },
    /// The reader stopped before the end of the journal: a frame claimed and never committed
    /// (a crash) hides what follows it until `Journal::open` repairs the journal.
    #[error(
        "journal {dir}: reading stopped at position {stopped_at}, before its end ({end}): open \
         the journal for writing (which repairs what a crash left) before recovering"
    )]
    StoppedEarly {
        dir: PathBuf,
        stopped_at: Position,
        end: Position,
    },
    /// An instrument id means another instrument in the journal than in the configuration.
    #[error(
        "instrument id {instrument_id} is {journal} in the journal but {config} in the \
         configuration: the journal's orders and fills would be taken for another instrument; \
         keep the instrument order of the configuration that wrote the journal"
    )]
    InstrumentMismatch {
        instrument_id: u32,
        /// Symbol and units, as the journal defines them.
        journal: String,
        /// Symbol and units, as the configuration has them (`nothing` if it has no such id).
        config: String,
    },
    /// An order the journal says was sent cannot be restored (an unknown instrument, or state
    /// that risk could never have been in).
    #[error("{path} at position {position}: {source}")]
    Restore {
        path: PathBuf,
        position: Position,
        /// Boxed: the request it hands back would make every `Result` of recovery large.
        #[source]
        source: Box<RestoreError>,
    },
    /// The last complete checkpoint cannot be restored: its values are not a state the replay
    /// could have been in (a corrupt journal, or a bug).
    #[error("journal {dir}: checkpoint {checkpoint_id} at position {position}: {problem}")]
    Checkpoint {
        dir: PathBuf,
        checkpoint_id: u64,
        /// The checkpoint's first record.
        position: Position,
        #[source]
        problem: CheckpointProblem,
    },
    /// The journal directory was replaced while a shadow replay followed it.
    #[error("journal {dir} was replaced by a new journal while it was being replayed")]
    Replaced { dir: PathBuf },
    #[error("risk limits: {0}")]
    Limits(#[from] RiskLimitsError),
}

// Small enough that a `Result` of it stays cheap to return (clippy's `result_large_err`).
const _: () = assert!(size_of::<RecoveryError>() <= 128);

fn pruned_why(replay_from: Option<Position>) -> String {
    match replay_from {
        None => "it holds no complete checkpoint".to_owned(),
        Some(p) => {
            format!("its last complete checkpoint replays from position {p}, which was pruned too")
        }
    }
}

/// A frame recovery skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryWarning {
    /// The segment file it is in.
    pub path: PathBuf,
    pub position: Position,
    pub record_type: RecordType,
    pub problem: WarningProblem,
}

/// What was wrong with a skipped frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningProblem {
    /// The payload is not the record's size.
    PayloadLen { len: usize, expected: usize },
    /// An instrument definition whose symbol is not what `InstrumentDef::new` writes.
    CorruptSymbol,
    /// A trading-state event with a value that is no state.
    UnknownTradingState(i64),
}

impl std::fmt::Display for RecoveryWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, position, record_type) =
            (self.path.display(), self.position, self.record_type.0);
        write!(
            f,
            "{path} at position {position}: record type {record_type:#x}: "
        )?;
        match self.problem {
            WarningProblem::PayloadLen { len, expected } => {
                write!(f, "payload of {len} bytes, expected {expected}; skipped")
            }
            WarningProblem::CorruptSymbol => write!(f, "corrupt symbol; skipped"),
            WarningProblem::UnknownTradingState(v) => {
                write!(f, "unknown trading state {v}; skipped")
            }
        }
    }
}

/// The checkpoint a recovery started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointUsed {
    pub checkpoint_id: u64,
    /// Its first record.
    pub position: Position,
    /// P: the frames from here on were replayed.
    pub replay_from: Position,
}

/// The state an earlier run left, rebuilt.
pub struct Recovered {
    /// Positions, open orders, realised PnL, the trading state and every strategy's
    /// client-order-id mark restored; limits from the configuration.
    pub engine: RiskEngine,
    /// The first client order id this run may use: above every id the journal holds (requests,
    /// sent orders, refusals, reports), at least 1.
    pub next_client_order_id: u64,
    /// Where the FIX session resumes (as `pipeline::recover_seq_nums` computes it); `None` if
    /// nothing was journaled.
    pub seq_nums: Option<SessionSeqNums>,
    pub trading_state: TradingState,
    /// Open orders, by client order id.
    pub open_orders: Vec<OpenOrderInfo>,
    /// Non-zero positions, by instrument id: (instrument id, quantity units).
    pub positions: Vec<(u32, i64)>,
    /// `SentOrder`s replayed (counting those a checkpoint stands for).
    pub orders_sent: u64,
    /// The last orders sent (at most [`RECENT_SENT_MAX`], since the checkpoint used), with
    /// their MsgSeqNum, oldest first: the restarted FIX session remembers them
    /// (`FixSession::remember_sent`), so one journaled but never sent is reported lost when
    /// the venue asks for its number again.
    pub recent_sent: Vec<(u64, OrderRequest)>,
    /// The client order ids of `recent_sent` the venue answered (the journal holds a report
    /// of them): the restarted session must not report those lost
    /// (`FixSession::remember_answered`).
    pub recent_answered: Vec<u64>,
    /// Execution reports replayed (counting those a checkpoint stands for).
    pub reports: u64,
    /// Replaces and cancels not restored because their target had already left (see the
    /// module doc).
    pub targets_gone: u64,
    /// Frames skipped (see [`warnings`](Self::warnings)).
    pub skipped: u64,
    /// The first [`RECOVERY_WARNINGS_MAX`] frames skipped by this replay (after a checkpoint:
    /// from its P on).
    pub warnings: Vec<RecoveryWarning>,
    /// The journal's last run ended with a `STOPPED` event (and nothing order-related after
    /// it): it was not a crash.
    pub was_clean_stop: bool,
    /// The journal held at least one frame (an empty directory, or only empty segments such as
    /// the one this run's `Journal::open` created, is no journal).
    pub found_journal: bool,
    /// Writer runs whose frames were read (counting those a checkpoint stands for).
    pub runs: u64,
    /// Frames read (counting those a checkpoint stands for).
    pub frames: u64,
    /// The position after the last frame replayed: where a reader goes on from.
    pub end: Position,
    /// The checkpoint recovery started from (`None`: it replayed from the first frame).
    pub checkpoint: Option<CheckpointUsed>,
    /// The replayed state as a checkpoint as of `end` carries it (id 0, no time).
    pub(super) state: Checkpoint,
    /// The highest checkpoint id the journal holds (0: none).
    pub(super) checkpoint_id_max: u64,
}

impl Recovered {
    /// The whole replayed state, as a checkpoint as of [`end`](Self::end) would carry it: two
    /// recoveries that agree on it agree on everything (what the tests compare).
    pub fn state(&self) -> &Checkpoint {
        &self.state
    }
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovered")
            .field("next_client_order_id", &self.next_client_order_id)
            .field("seq_nums", &self.seq_nums)
            .field("trading_state", &self.trading_state)
            .field("open_orders", &self.open_orders.len())
            .field("positions", &self.positions)
            .field("orders_sent", &self.orders_sent)
            .field("reports", &self.reports)
            .field("targets_gone", &self.targets_gone)
            .field("skipped", &self.skipped)
            .field("was_clean_stop", &self.was_clean_stop)
            .field("found_journal", &self.found_journal)
            .field("runs", &self.runs)
            .field("frames", &self.frames)
            .field("end", &self.end)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// Rebuilds the trading state from the journal in `dir` (see the module doc): from its last
/// complete checkpoint if it has one, else from its first frame. The engine gets `limits`;
/// `instruments` is the configuration's table, which the journal's instrument definitions
/// must agree with. A missing directory, or one without frames, gives a fresh engine and
/// `found_journal: false`.
pub fn recover(
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> Result<Recovered, RecoveryError> {
    recover_with(dir, limits, instruments, true)
}

/// [`recover`] ignoring checkpoints: the full replay from the journal's first frame (which
/// must still be there), what a checkpoint must agree with. For checks and diagnostics.
pub fn recover_from_start(
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> Result<Recovered, RecoveryError> {
    recover_with(dir, limits, instruments, false)
}

fn recover_with(
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
    use_checkpoints: bool,
) -> Result<Recovered, RecoveryError> {
    let engine = RiskEngine::new(limits)?;
    let journal_error = |source| journal_error(dir, source);
    let listing = match list_segments(dir) {
        Ok(listing) => listing,
        Err(ShmError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(journal_error(e)),
    };
    let Some(first) = listing.first() else {
        return Ok(Replay::new(engine, instruments).finish(Position(0), None, 0));
    };
    let scan = if use_checkpoints {
        checkpoint::scan(dir)?
    } else {
        checkpoint::Scan::default()
    };
    let (mut replay, mut tailer, used) = match &scan.last {
        Some(found) => {
            let replay_from = Position(found.checkpoint.begin.replay_from);
            let tailer = match Tailer::open(dir, StartAt::Position(replay_from)) {
                Ok(tailer) => tailer,
                Err(ShmError::SegmentMissing { index, .. }) if index < first.index => {
                    return Err(RecoveryError::Pruned {
                        dir: dir.to_owned(),
                        first: first.index,
                        replay_from: Some(replay_from),
                    });
                }
                Err(e) => return Err(journal_error(e)),
            };
            let replay = checkpoint::restore(engine, instruments, found, dir)?;
            let used = CheckpointUsed {
                checkpoint_id: found.checkpoint.begin.checkpoint_id,
                position: found.position,
                replay_from,
            };
            (replay, tailer, Some(used))
        }
        None if first.index != 0 => {
            return Err(RecoveryError::Pruned {
                dir: dir.to_owned(),
                first: first.index,
                replay_from: None,
            });
        }
        None => {
            let tailer = Tailer::open(dir, StartAt::Beginning).map_err(journal_error)?;
            (Replay::new(engine, instruments), tailer, None)
        }
    };
    replay.replay(&mut tailer, usize::MAX, dir)?;
    let end = Tailer::open(dir, StartAt::End)
        .map_err(journal_error)?
        .position();
    if end > tailer.position() {
        return Err(RecoveryError::StoppedEarly {
            dir: dir.to_owned(),
            stopped_at: tailer.position(),
            end,
        });
    }
    let id_max = scan.id_max.max(replay.checkpoint_id_max);
    Ok(replay.finish(tailer.position(), used, id_max))
}

pub(super) fn journal_error(dir: &Path, source: ShmError) -> RecoveryError {
    RecoveryError::Journal {
        dir: dir.to_owned(),
        source,
    }
}

/// A journal record recovery reads, decoded.
enum Item {
    Request(OrderRequest),
    Sent(SentOrder),
    Reject(RiskReject),
    Report(ExecutionReport),
    Def(InstrumentDef),
    Event(DaemonEvent),
    SeqNums(FixSeqNums),
    /// A checkpoint's first record: its id (the next checkpoint takes a higher one).
    CheckpointBegin(u64),
    /// A record of one of those types with the wrong payload length.
    BadLen {
        len: usize,
        expected: usize,
    },
    /// Anything else (market data, raw bytes, config text, the other checkpoint records).
    Other,
}

fn decode(frame: &levibot_shm::Frame<'_>) -> Item {
    fn read<R: Record>(payload: &[u8], wrap: fn(R) -> Item) -> Item {
        R::from_bytes(payload).map_or(
            Item::BadLen {
                len: payload.len(),
                expected: size_of::<R>(),
            },
            wrap,
        )
    }
    let payload = frame.payload;
    match frame.record_type {
        record_type::ORDER_REQUEST => read(payload, Item::Request),
        record_type::ORDER_SENT => read(payload, Item::Sent),
        record_type::RISK_REJECT => read(payload, Item::Reject),
        record_type::EXECUTION_REPORT => read(payload, Item::Report),
        record_type::INSTRUMENT_DEF => read(payload, Item::Def),
        record_type::DAEMON_EVENT => read(payload, Item::Event),
        record_type::FIX_SEQ_NUMS => read(payload, Item::SeqNums),
        record_type::CHECKPOINT_BEGIN => {
            read::<CheckpointBegin>(payload, |b| Item::CheckpointBegin(b.checkpoint_id))
        }
        // What the first pass reads; counted here if corrupt.
        record_type::CHECKPOINT_INSTRUMENT => {
            read::<CheckpointInstrument>(payload, |_| Item::Other)
        }
        record_type::CHECKPOINT_ORDER => read::<CheckpointOrder>(payload, |_| Item::Other),
        record_type::CHECKPOINT_MARKS => read::<CheckpointMarks>(payload, |_| Item::Other),
        record_type::CHECKPOINT_FILLS => read::<CheckpointFills>(payload, |_| Item::Other),
        record_type::CHECKPOINT_END => read::<CheckpointEnd>(payload, |_| Item::Other),
        _ => Item::Other,
    }
}

/// Where a frame is, and when it was claimed (ns since the Unix epoch).
struct At<'a> {
    path: &'a Path,
    position: Position,
    record_type: RecordType,
    now_ns: u64,
}

/// The replay's state: what recovery rebuilds and a checkpoint carries (see
/// `checkpoint::capture` and `checkpoint::restore`, which must name every field but
/// `warnings`, `checkpoint_id_max` and `recent_sent`).
pub(super) struct Replay {
    pub(super) engine: RiskEngine,
    pub(super) instruments: InstrumentTable,
    /// The highest client order id seen, if any.
    pub(super) id_max: Option<u64>,
    pub(super) orders_sent: u64,
    pub(super) reports: u64,
    pub(super) targets_gone: u64,
    pub(super) skipped: u64,
    pub(super) warnings: Vec<RecoveryWarning>,
    /// The last daemon event was STOPPED and nothing order-related came after it.
    pub(super) stopped: bool,
    pub(super) runs: u64,
    pub(super) frames: u64,
    /// The writer run of the last frame applied: a run counts once it has a frame.
    pub(super) epoch: Option<u64>,
    /// The last `FixSeqNums` journaled.
    pub(super) fix_seq_nums: Option<FixSeqNums>,
    /// The highest MsgSeqNum of a `SentOrder`.
    pub(super) sent_seq_max: Option<u64>,
    /// The fill throttle's stamps, oldest first: the last [`RATE_WINDOW_MAX`] fills it
    /// counted (all it ever looks at), which the engine does not hand out.
    pub(super) fill_stamps: VecDeque<u64>,
    /// Per instrument, the largest worst-case bound restored or adopted orders raised its
    /// ledger to (the limits' part of the bound comes from the limits in force).
    pub(super) worst_max: [i64; RISK_INSTRUMENTS_MAX],
    /// The highest checkpoint id seen (not carried: only ids must not repeat).
    pub(super) checkpoint_id_max: u64,
    /// The last [`RECENT_SENT_MAX`] orders sent, with their MsgSeqNum, oldest first (not
    /// carried: only the tail of a crashed run matters, and a checkpoint is written after a
    /// restart has dealt with it).
    pub(super) recent_sent: VecDeque<(u64, OrderRequest)>,
    /// Client order ids in `recent_sent`, and those of them a report answered.
    pub(super) recent_ids: HashSet<u64>,
    pub(super) recent_answered: HashSet<u64>,
}

/// Sent orders [`Recovered::recent_sent`] keeps: as many numbers as the FIX session remembers.
pub const RECENT_SENT_MAX: usize = levibot_gateway::fix::ORDER_SEQ_MAP_LEN;

impl Replay {
    pub(super) fn new(engine: RiskEngine, instruments: &InstrumentTable) -> Replay {
        Replay {
            engine,
            instruments: instruments.clone(),
            id_max: None,
            orders_sent: 0,
            reports: 0,
            targets_gone: 0,
            skipped: 0,
            warnings: Vec::new(),
            stopped: false,
            runs: 0,
            frames: 0,
            epoch: None,
            fix_seq_nums: None,
            sent_seq_max: None,
            fill_stamps: VecDeque::with_capacity(RATE_WINDOW_MAX),
            worst_max: [0; RISK_INSTRUMENTS_MAX],
            checkpoint_id_max: 0,
            recent_sent: VecDeque::new(),
            recent_ids: HashSet::new(),
            recent_answered: HashSet::new(),
        }
    }

    /// Applies up to `frames_max` frames from `tailer`, in journal order; returns how many.
    /// Stops early when the tailer has nothing more (it never waits).
    pub(super) fn replay(
        &mut self,
        tailer: &mut Tailer,
        frames_max: usize,
        dir: &Path,
    ) -> Result<usize, RecoveryError> {
        let mut applied = 0;
        while applied < frames_max {
            // One frame per poll: the frame's clock calibration is the segment's, which the
            // tailer gives only between polls (a poll may cross into the next segment).
            let mut item = None;
            let polled = tailer
                .poll(1, |frame| {
                    item = Some((frame.position, frame.record_type, frame.tsc, decode(frame)));
                })
                .map_err(|source| journal_error(dir, source))?;
            if polled.writer_restart.is_some_and(|r| r.new_journal) {
                // Frames of another journal would be applied on top of this one's state.
                return Err(RecoveryError::Replaced {
                    dir: dir.to_owned(),
                });
            }
            let Some((position, record_type, tsc, item)) = item else {
                break;
            };
            if self.epoch != Some(tailer.epoch()) {
                self.epoch = Some(tailer.epoch());
                self.runs += 1;
            }
            let at = At {
                path: tailer.segment_path(),
                position,
                record_type,
                now_ns: tailer.calibration().to_unix_ns(tsc),
            };
            self.apply(item, &at)?;
            applied += 1;
        }
        Ok(applied)
    }

    fn apply(&mut self, item: Item, at: &At<'_>) -> Result<(), RecoveryError> {
        self.frames += 1;
        match item {
            Item::Request(r) => self.see_request(&r),
            Item::Reject(r) => {
                self.see_request(&r.request);
                // The engine had tripped (the refusal of the first order after a trip says
                // why): it holds at least that state, unless an operator's later event says
                // otherwise. And that refusal reported the trip, so it is no longer pending
                // (as in the live engine; a replayed fill may have tripped it again here).
                let tripped = match RiskCheck::from_code(r.check) {
                    Some(RiskCheck::MaxLoss) => Some(self.engine.limits().loss_state),
                    Some(RiskCheck::RepeatedExecution) => Some(TradingState::Halted),
                    _ => None,
                };
                if let Some(state) = tripped {
                    let state = state.max(self.engine.trading_state());
                    self.engine.set_trading_state(state);
                }
            }
            Item::Sent(s) => {
                self.orders_sent += 1;
                if self.recent_sent.len() == RECENT_SENT_MAX
                    && let Some((_, oldest)) = self.recent_sent.pop_front()
                {
                    self.recent_ids.remove(&oldest.client_order_id);
                    self.recent_answered.remove(&oldest.client_order_id);
                }
                self.recent_sent.push_back((s.msg_seq_num, s.request));
                self.recent_ids.insert(s.request.client_order_id);
                self.sent_seq_max = Some(
                    self.sent_seq_max
                        .map_or(s.msg_seq_num, |m| m.max(s.msg_seq_num)),
                );
                self.see_request(&s.request);
                let id = s.request.instrument_id;
                let bound = self.engine.worst_case_bound(id);
                let restored = self.engine.restore_order(&s.request);
                self.note_bound(id, bound);
                match restored {
                    Ok(()) => {}
                    Err(RestoreError {
                        problem: RestoreProblem::TargetGone { .. },
                        ..
                    }) => self.targets_gone += 1,
                    Err(source) => {
                        return Err(RecoveryError::Restore {
                            path: at.path.to_owned(),
                            position: at.position,
                            source: Box::new(source),
                        });
                    }
                }
            }
            Item::Report(r) => {
                self.reports += 1;
                self.stopped = false;
                self.see_id(r.client_order_id);
                if self.recent_ids.contains(&r.client_order_id) {
                    self.recent_answered.insert(r.client_order_id);
                }
                let bound = self.engine.worst_case_bound(r.instrument_id);
                if self.engine.replay_execution(&r, at.now_ns) {
                    if self.fill_stamps.len() == RATE_WINDOW_MAX {
                        self.fill_stamps.pop_front();
                    }
                    self.fill_stamps.push_back(at.now_ns);
                }
                // An order status may have adopted an order.
                self.note_bound(r.instrument_id, bound);
            }
            Item::Def(def) => self.check_def(&def, at)?,
            Item::Event(e) => {
                self.stopped = e.kind == daemon_event::STOPPED;
                if e.kind == daemon_event::MASS_STATUS && e.value < 0 {
                    // The daemon gave up waiting for the venue's answer: risk abandoned the
                    // round, and answers after this were ignored.
                    self.engine.abandon_status_round();
                }
                if e.kind == daemon_event::TRADING_STATE {
                    let Some(state) = TradingState::from_code(e.value) else {
                        self.skip(at, WarningProblem::UnknownTradingState(e.value));
                        return Ok(());
                    };
                    self.engine.set_trading_state(state);
                }
            }
            Item::SeqNums(n) => self.fix_seq_nums = Some(n),
            Item::CheckpointBegin(id) => self.checkpoint_id_max = self.checkpoint_id_max.max(id),
            Item::BadLen { len, expected } => {
                self.skip(at, WarningProblem::PayloadLen { len, expected });
            }
            Item::Other => {}
        }
        Ok(())
    }

    /// The instrument's worst-case bound was `before`: if applying a frame raised it (a
    /// restored or adopted order built more than the limits allow), a checkpoint carries it.
    fn note_bound(&mut self, instrument_id: u32, before: i64) {
        let after = self.engine.worst_case_bound(instrument_id);
        if let Some(max) = self.worst_max.get_mut(instrument_id as usize)
            && after > before
        {
            *max = (*max).max(after);
        }
    }

    fn see_request(&mut self, r: &OrderRequest) {
        self.stopped = false;
        self.see_id(r.client_order_id);
        self.engine
            .restore_next_client_order_id(r.strategy_id, r.client_order_id.saturating_add(1));
    }

    fn see_id(&mut self, client_order_id: u64) {
        self.id_max = Some(
            self.id_max
                .map_or(client_order_id, |m| m.max(client_order_id)),
        );
    }

    fn check_def(&mut self, def: &InstrumentDef, at: &At<'_>) -> Result<(), RecoveryError> {
        match check_instrument(&self.instruments, def) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.skip(at, WarningProblem::CorruptSymbol);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn skip(&mut self, at: &At<'_>, problem: WarningProblem) {
        self.skipped += 1;
        let warning = RecoveryWarning {
            path: at.path.to_owned(),
            position: at.position,
            record_type: at.record_type,
            problem,
        };
        tracing::warn!("journal recovery: {warning}");
        if self.warnings.len() < RECOVERY_WARNINGS_MAX {
            self.warnings.push(warning);
        }
    }

    /// Where the FIX session resumes: the last sequence numbers journaled, the sender's past
    /// every MsgSeqNum sent (as `pipeline::recover_seq_nums`).
    fn seq_nums(&self) -> Option<SessionSeqNums> {
        if self.fix_seq_nums.is_none() && self.sent_seq_max.is_none() {
            return None;
        }
        let last = self.fix_seq_nums.unwrap_or(FixSeqNums {
            next_sender: 1,
            next_target: 1,
        });
        let past_sent = self.sent_seq_max.map_or(1, |s| s.saturating_add(1));
        Some(SessionSeqNums {
            next_sender: last.next_sender.max(past_sent),
            next_target: last.next_target,
        })
    }

    fn finish(
        self,
        end: Position,
        checkpoint: Option<CheckpointUsed>,
        checkpoint_id_max: u64,
    ) -> Recovered {
        let state = checkpoint::capture(&self, 0, end, 0);
        let seq_nums = self.seq_nums();
        let engine = self.engine;
        let mut open_orders: Vec<OpenOrderInfo> = engine
            .open_order_ids()
            .filter_map(|id| engine.open_order(id))
            .collect();
        open_orders.sort_by_key(|o| o.client_order_id);
        let positions = (0..RISK_INSTRUMENTS_MAX as u32)
            .map(|id| (id, engine.position(id)))
            .filter(|&(_, position)| position != 0)
            .collect();
        Recovered {
            next_client_order_id: self.id_max.map_or(1, |m| m.saturating_add(1)).max(1),
            seq_nums,
            trading_state: engine.trading_state(),
            open_orders,
            positions,
            orders_sent: self.orders_sent,
            recent_answered: self
                .recent_sent
                .iter()
                .map(|(_, o)| o.client_order_id)
                .filter(|id| self.recent_answered.contains(id))
                .collect(),
            recent_sent: self.recent_sent.into_iter().collect(),
            reports: self.reports,
            targets_gone: self.targets_gone,
            skipped: self.skipped,
            warnings: self.warnings,
            was_clean_stop: self.stopped,
            found_journal: self.frames > 0,
            runs: self.runs,
            frames: self.frames,
            end,
            checkpoint,
            state,
            checkpoint_id_max,
            engine,
        }
    }
}

/// The journal's id must name the configuration's instrument, in the same units: `Ok(true)`
/// if it does, `Ok(false)` for a corrupt symbol.
pub(super) fn check_instrument(
    instruments: &InstrumentTable,
    def: &InstrumentDef,
) -> Result<bool, RecoveryError> {
    let Some(symbol) = def.symbol() else {
        return Ok(false);
    };
    let journal = (
        symbol,
        (def.price_mantissa, def.price_exp),
        (def.qty_mantissa, def.qty_exp),
    );
    let config = instruments.get(def.instrument_id).map(|i| {
        (
            i.symbol.as_str(),
            (i.price_scale.mantissa, i.price_scale.exp),
            (i.qty_scale.mantissa, i.qty_scale.exp),
        )
    });
    let same = config.is_some_and(|c| {
        c.0.eq_ignore_ascii_case(journal.0) && (c.1, c.2) == (journal.1, journal.2)
    });
    if same {
        return Ok(true);
    }
    let describe = |(symbol, (pm, pe), (qm, qe)): (&str, (u64, u8), (u64, u8))| {
        format!("{symbol} (price unit {pm}e-{pe}, quantity unit {qm}e-{qe})")
    };
    Err(RecoveryError::InstrumentMismatch {
        instrument_id: def.instrument_id,
        journal: describe(journal),
        config: config.map_or_else(|| "nothing".to_owned(), describe),
    })
}

#[cfg(test)]
mod tests {
    use levibot_gateway::capture::Recording;
    use levibot_shm::records::{ord_type, order_kind, side, time_in_force};
    use levibot_shm::{Journal, JournalConfig, RetentionPolicy};

    use super::*;
    use crate::checkpoint::ShadowRecovery;
    use levibot_engine::pipeline::{recover_seq_nums, reference};
    use levibot_shm::codes::writer_id;

    /// Random `FixSeqNums` and `SentOrder`s (a corrupt one among them) over three runs, a
    /// checkpoint at a random point: recovery's sequence numbers are `recover_seq_nums`'s, from
    /// the first frame or from the checkpoint, with or without the frames before it.
    #[test]
    fn sequence_numbers_are_recover_seq_nums_with_or_without_a_checkpoint() {
        let seed = levibot_testkit::seed();
        let mut rng = fastrand::Rng::with_seed(seed);
        let recording = Recording::testdata().unwrap();
        let (instruments, instrument, _) = reference::recording_parts(&recording).unwrap();
        let limits = reference::risk_limits(&instrument).unwrap();
        for attempt in 0..8 {
            let ctx = format!("seed {seed}, attempt {attempt}");
            let dir = tempfile::tempdir().unwrap();
            let config = JournalConfig {
                dir: dir.path().to_owned(),
                segment_size: 1 << 20,
                prefault: false,
                retention: RetentionPolicy::keep_all(),
            };
            let checkpoint_run = rng.u32(0..3);
            let mut next_id = 1;
            for run in 0..3 {
                let journal = Journal::open(&config).unwrap();
                let mut shadow = (run == checkpoint_run).then(|| {
                    let rec = recover(dir.path(), limits, &instruments).unwrap();
                    ShadowRecovery::start(&journal, limits, &instruments, &rec).unwrap()
                });
                let mut appender = journal.appender(writer_id::DAEMON).unwrap();
                for _ in 0..rng.usize(0..6) {
                    if rng.bool() {
                        let seq = FixSeqNums {
                            next_sender: rng.u64(1..50),
                            next_target: rng.u64(1..50),
                        };
                        let bytes = seq.to_bytes();
                        // Now and then a corrupt one: skipped by both.
                        let len = if rng.u8(..8) == 0 { 15 } else { 16 };
                        appender
                            .append(FixSeqNums::RECORD_TYPE, &bytes[..len])
                            .unwrap();
                    } else {
                        let request = OrderRequest {
                            client_order_id: next_id,
                            instrument_id: instrument.id,
                            kind: order_kind::NEW,
                            side: side::BUY,
                            ord_type: ord_type::LIMIT,
                            time_in_force: time_in_force::GTC,
                            px: 3_000 * instrument.tick_units,
                            qty: instrument.lot_units,
                            ..OrderRequest::default()
                        };
                        next_id += 1;
                        let sent = SentOrder {
                            request,
                            msg_seq_num: rng.u64(1..60),
                            ..SentOrder::default()
                        };
                        appender
                            .append(SentOrder::RECORD_TYPE, sent.to_bytes())
                            .unwrap();
                    }
                    if let Some(shadow) = shadow.as_mut().filter(|_| rng.u8(..3) == 0) {
                        shadow.catch_up().unwrap();
                        shadow.write_checkpoint(&mut appender).unwrap();
                    }
                }
                if let Some(shadow) = shadow.as_mut() {
                    shadow.write_checkpoint(&mut appender).unwrap();
                }
            }
            let expected = recover_seq_nums(dir.path()).unwrap();
            let full = recover_from_start(dir.path(), limits, &instruments).unwrap();
            assert_eq!(full.seq_nums, expected, "{ctx}");
            let rec = recover(dir.path(), limits, &instruments).unwrap();
            assert!(rec.checkpoint.is_some(), "{ctx}");
            assert_eq!(rec.seq_nums, expected, "{ctx}: from a checkpoint");
            assert_eq!(rec.state(), full.state(), "{ctx}");
            // Without the runs before the checkpoint's.
            for index in 0..checkpoint_run as u64 {
                let path = dir
                    .path()
                    .join(levibot_shm::layout::segment_file_name(index));
                std::fs::remove_file(path).unwrap();
            }
            let rec = recover(dir.path(), limits, &instruments).unwrap();
            assert_eq!(rec.seq_nums, expected, "{ctx}: pruned");
            assert_eq!(rec.state(), full.state(), "{ctx}: pruned");
        }
    }

    #[test]
    fn pruned_says_whether_a_checkpoint_was_there() {
        let e = RecoveryError::Pruned {
            dir: "/j".into(),
            first: 3,
            replay_from: None,
        };
        assert!(e.to_string().contains("no complete checkpoint"), "{e}");
        let e = RecoveryError::Pruned {
            dir: "/j".into(),
            first: 3,
            replay_from: Some(Position(77)),
        };
        assert!(
            e.to_string().contains("position 77, which was pruned too"),
            "{e}"
        );
    }
}
