//! State rebuilt from the journal after a restart (cold path): positions, open orders, PnL,
//! the trading state, the client-order-id mark and the FIX sequence numbers, from every run
//! the journal holds.
//!
//! [`recover`] reads the journal from its first frame, in journal order, and replays into a
//! fresh [`RiskEngine`]:
//!
//! | record | effect |
//! | --- | --- |
//! | `INSTRUMENT_DEF` | checked against the configuration: the same symbol and units at the same id, else [`RecoveryError::InstrumentMismatch`] |
//! | `ORDER_SENT` | [`RiskEngine::restore_order`]: open, replace pending or cancel pending, as risk recorded it |
//! | `EXECUTION_REPORT` | [`RiskEngine::on_execution`], at the frame's time (the fill throttle counts as it did live) |
//! | `DAEMON_EVENT` `TRADING_STATE` | [`RiskEngine::set_trading_state`] (the kill switch and resume) |
//! | `RISK_REJECT` of `max_loss` / `repeated_execution` | the engine had tripped: at least that state |
//! | `ORDER_REQUEST`, `RISK_REJECT` | their client order ids count as seen |
//! | `DAEMON_EVENT` `STOPPED` | the run stopped cleanly, if no other event and no order record follows it |
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
//! **Failures.** A missing or unreadable segment, or a journal whose first segments were
//! pruned, fails recovery ([`RecoveryError::Journal`], [`RecoveryError::Pruned`]): the orders
//! and fills in them are unknown, so any state rebuilt without them would be wrong. A frame of a
//! known type with the wrong payload length is skipped, counted ([`Recovered::skipped`]) and
//! described in [`Recovered::warnings`]; so is an instrument definition with a corrupt symbol or
//! a trading-state event with an unknown value. Recovery never panics on journal contents.
//!
//! **When.** After `Journal::open` (which cuts what a crash left at the tail: a reader stops at
//! a frame claimed and never committed) and before the pipeline appends anything.

use std::path::{Path, PathBuf};

use levibot_gateway::fix::SessionSeqNums;
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::records::{
    DaemonEvent, ExecutionReport, FixSeqNums, InstrumentDef, OrderRequest, Record, RiskReject,
    SentOrder, daemon_event, record_type,
};
use levibot_shm::{Position, RecordType, ShmError, StartAt, Tailer, list_segments};

use crate::pipeline::recover_seq_nums;
use crate::risk::{
    OpenOrderInfo, RISK_INSTRUMENTS_MAX, RestoreError, RestoreProblem, RiskCheck, RiskEngine,
    RiskLimits, RiskLimitsError, TradingState,
};

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
    /// The journal's first segments were deleted (retention pruned them, or by hand).
    #[error(
        "journal {dir}: its oldest segment is {first}: segments 0..{first} were pruned, and the \
         orders and fills in them cannot be recovered; after reconciling with the venue, move \
         the journal away to start afresh"
    )]
    Pruned { dir: PathBuf, first: u64 },
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
    #[error("risk limits: {0}")]
    Limits(#[from] RiskLimitsError),
}

// Small enough that a `Result` of it stays cheap to return (clippy's `result_large_err`).
const _: () = assert!(size_of::<RecoveryError>() <= 128);

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

/// The state an earlier run left, rebuilt.
pub struct Recovered {
    /// Positions, open orders, realised PnL, the trading state and every strategy's
    /// client-order-id mark restored; limits from the configuration.
    pub engine: RiskEngine,
    /// The first client order id this run may use: above every id the journal holds (requests,
    /// sent orders, refusals, reports), at least 1.
    pub next_client_order_id: u64,
    /// Where the FIX session resumes ([`recover_seq_nums`]); `None` if nothing was journaled.
    pub seq_nums: Option<SessionSeqNums>,
    pub trading_state: TradingState,
    /// Open orders, by client order id.
    pub open_orders: Vec<OpenOrderInfo>,
    /// Non-zero positions, by instrument id: (instrument id, quantity units).
    pub positions: Vec<(u32, i64)>,
    /// `SentOrder`s replayed.
    pub orders_sent: u64,
    /// Execution reports replayed.
    pub reports: u64,
    /// Replaces and cancels not restored because their target had already left (see the
    /// module doc).
    pub targets_gone: u64,
    /// Frames skipped (see [`warnings`](Self::warnings)).
    pub skipped: u64,
    /// The first [`RECOVERY_WARNINGS_MAX`] skipped frames.
    pub warnings: Vec<RecoveryWarning>,
    /// The journal's last run ended with a `STOPPED` event (and nothing order-related after
    /// it): it was not a crash.
    pub was_clean_stop: bool,
    /// The journal held at least one frame (an empty directory, or only empty segments such as
    /// the one this run's `Journal::open` created, is no journal).
    pub found_journal: bool,
    /// Writer runs whose frames were read.
    pub runs: u64,
    /// Frames read.
    pub frames: u64,
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
            .finish_non_exhaustive()
    }
}

/// Rebuilds the trading state from the journal in `dir` (see the module doc), into an engine
/// with `limits`; `instruments` is the configuration's table, which the journal's instrument
/// definitions must agree with. A missing directory, or one without frames, gives a fresh
/// engine and `found_journal: false`.
pub fn recover(
    dir: &Path,
    limits: RiskLimits,
    instruments: &InstrumentTable,
) -> Result<Recovered, RecoveryError> {
    let engine = RiskEngine::new(limits)?;
    let journal_error = |source| RecoveryError::Journal {
        dir: dir.to_owned(),
        source,
    };
    let listing = match list_segments(dir) {
        Ok(listing) => listing,
        Err(ShmError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(journal_error(e)),
    };
    let mut replay = Replay::new(engine, instruments);
    let Some(first) = listing.first() else {
        return Ok(replay.finish(None));
    };
    if first.index != 0 {
        return Err(RecoveryError::Pruned {
            dir: dir.to_owned(),
            first: first.index,
        });
    }
    let mut tailer = Tailer::open(dir, StartAt::Beginning).map_err(journal_error)?;
    // The writer run of the last frame read: a run counts once it has a frame.
    let mut epoch = None;
    loop {
        // One frame per poll: the frame's clock calibration is the segment's, which the tailer
        // gives only between polls (a poll may cross into the next segment).
        let mut item = None;
        tailer
            .poll(1, |frame| {
                item = Some((frame.position, frame.record_type, frame.tsc, decode(frame)));
            })
            .map_err(journal_error)?;
        let Some((position, record_type, tsc, item)) = item else {
            break;
        };
        if epoch != Some(tailer.epoch()) {
            epoch = Some(tailer.epoch());
            replay.runs += 1;
        }
        let at = At {
            path: tailer.segment_path(),
            position,
            record_type,
            now_ns: tailer.calibration().to_unix_ns(tsc),
        };
        replay.apply(item, &at)?;
    }
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
    let seq_nums = if replay.frames > 0 {
        recover_seq_nums(dir).map_err(journal_error)?
    } else {
        None
    };
    Ok(replay.finish(seq_nums))
}

/// A journal record recovery reads, decoded.
enum Item {
    Request(OrderRequest),
    Sent(SentOrder),
    Reject(RiskReject),
    Report(ExecutionReport),
    Def(InstrumentDef),
    Event(DaemonEvent),
    /// A record of one of those types with the wrong payload length.
    BadLen {
        len: usize,
        expected: usize,
    },
    /// Anything else (market data, raw bytes, sequence numbers, config text).
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
        // Read by `recover_seq_nums`; counted here if corrupt.
        record_type::FIX_SEQ_NUMS => read::<FixSeqNums>(payload, |_| Item::Other),
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

/// The replay's state.
struct Replay<'a> {
    engine: RiskEngine,
    instruments: &'a InstrumentTable,
    /// The highest client order id seen, if any.
    id_max: Option<u64>,
    orders_sent: u64,
    reports: u64,
    targets_gone: u64,
    skipped: u64,
    warnings: Vec<RecoveryWarning>,
    /// The last daemon event was STOPPED and nothing order-related came after it.
    stopped: bool,
    runs: u64,
    frames: u64,
}

impl<'a> Replay<'a> {
    fn new(engine: RiskEngine, instruments: &'a InstrumentTable) -> Replay<'a> {
        Replay {
            engine,
            instruments,
            id_max: None,
            orders_sent: 0,
            reports: 0,
            targets_gone: 0,
            skipped: 0,
            warnings: Vec::new(),
            stopped: false,
            runs: 0,
            frames: 0,
        }
    }

    fn apply(&mut self, item: Item, at: &At<'_>) -> Result<(), RecoveryError> {
        self.frames += 1;
        match item {
            Item::Request(r) => self.see_request(&r),
            Item::Reject(r) => {
                self.see_request(&r.request);
                // The engine had tripped (the refusal of the first order after a trip says
                // why): it holds at least that state, unless an operator's later event says
                // otherwise.
                let tripped = match RiskCheck::from_code(r.check) {
                    Some(RiskCheck::MaxLoss) => Some(self.engine.limits().loss_state),
                    Some(RiskCheck::RepeatedExecution) => Some(TradingState::Halted),
                    _ => None,
                };
                if let Some(state) = tripped.filter(|&s| s > self.engine.trading_state()) {
                    self.engine.set_trading_state(state);
                }
            }
            Item::Sent(s) => {
                self.orders_sent += 1;
                self.see_request(&s.request);
                match self.engine.restore_order(&s.request) {
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
                self.engine.on_execution(&r, at.now_ns);
            }
            Item::Def(def) => self.check_instrument(&def, at)?,
            Item::Event(e) => {
                self.stopped = e.kind == daemon_event::STOPPED;
                if e.kind == daemon_event::TRADING_STATE {
                    let state = match e.value {
                        0 => TradingState::Active,
                        1 => TradingState::ReduceOnly,
                        2 => TradingState::Halted,
                        v => {
                            self.skip(at, WarningProblem::UnknownTradingState(v));
                            return Ok(());
                        }
                    };
                    self.engine.set_trading_state(state);
                }
            }
            Item::BadLen { len, expected } => {
                self.skip(at, WarningProblem::PayloadLen { len, expected });
            }
            Item::Other => {}
        }
        Ok(())
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

    /// The journal's id must name the configuration's instrument, in the same units.
    fn check_instrument(&mut self, def: &InstrumentDef, at: &At<'_>) -> Result<(), RecoveryError> {
        let Some(symbol) = def.symbol() else {
            self.skip(at, WarningProblem::CorruptSymbol);
            return Ok(());
        };
        let journal = (
            symbol,
            (def.price_mantissa, def.price_exp),
            (def.qty_mantissa, def.qty_exp),
        );
        let config = self.instruments.get(def.instrument_id).map(|i| {
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
            return Ok(());
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

    fn finish(self, seq_nums: Option<SessionSeqNums>) -> Recovered {
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
            reports: self.reports,
            targets_gone: self.targets_gone,
            skipped: self.skipped,
            warnings: self.warnings,
            was_clean_stop: self.stopped,
            found_journal: self.frames > 0,
            runs: self.runs,
            frames: self.frames,
            engine,
        }
    }
}
