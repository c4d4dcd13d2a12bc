//! The strategy stage: the books, features and strategy of each traded instrument, the orders
//! the strategies emit, the operator's pause, and the books' gauges. Its own file because it is
//! the one stage generic over the strategy, and the largest.

use levibot_gateway::binance::{DepthSnapshot, LEVELS_PER_MESSAGE_MAX};
use levibot_gateway::source::OwnedSnapshot;
use levibot_shm::codes::{counter_type, label};
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{
    ExecutionReport, Level, OrderRequest, Record, TRADE_FLAG_BUYER_IS_MAKER, feature_flag,
};
use levibot_shm::{Appender, ShmError};

use super::feature_journal::{FeatureCadence, FeatureJournal};
use super::{StageClock, counter, gauge};
use crate::book::{BookLimits, BookOutcome, BookState, OrderBook};
use crate::features::{FeatureConfig, Features};
use crate::pipeline::{Decoded, MarketRecord, StagedOrder, StrategyCommand, ToRisk};
use crate::strategy::{Grid, MarketView, OrderSink, ParamsReceiver, Strategy};

/// One instrument a strategy stage trades: its order grid, the snapshot its book starts from
/// (and reloads on a replay's resync; `last_update_id` 0 for none: a live feed brings it), and
/// its strategy.
pub struct TradedInstrument<S> {
    pub grid: Grid,
    pub snapshot: OwnedSnapshot,
    pub strategy: S,
}

/// The stamps of an order caused at `tsc` by something other than market data (an execution
/// report, a timer).
fn caused_at(tsc: u64) -> StagedOrder {
    StagedOrder {
        due_tsc: tsc,
        recv_tsc: tsc,
        decoded_tsc: tsc,
        strategy_start_tsc: tsc,
        ..StagedOrder::default()
    }
}

/// Why a stage could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("instrument {instrument_id}: {reason}")]
    Instrument { instrument_id: u32, reason: String },
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error(transparent)]
    Book(#[from] crate::book::BookError),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureConfigError),
}

/// Order requests a strategy stage holds for journaling before it journals them anyway.
pub const REQUESTS_PENDING_MAX: usize = 256;

/// No slot: the instrument is not traded here.
const NO_SLOT: u16 = u16::MAX;

/// Keeps the books and features of the traded instruments and runs their strategies.
pub struct StrategyStage<S: Strategy> {
    /// Slot of each instrument id (`NO_SLOT` if not traded), so routing is one load.
    slot_of: Vec<u16>,
    books: Vec<OrderBook>,
    features: Vec<Features>,
    grids: Vec<Grid>,
    strategies: Vec<S>,
    snapshots: Vec<OwnedSnapshot>,
    sink: OrderSink,
    params: Option<ParamsReceiver<S::Params>>,
    appender: Appender,
    /// A live snapshot's levels while its chunks arrive (capacity `LEVELS_PER_MESSAGE_MAX`
    /// each, never grown: the decoder takes no larger message).
    snapshot_bids: Vec<Level>,
    snapshot_asks: Vec<Level>,
    /// Requests sent on but not journaled yet (deferred work; capacity
    /// `REQUESTS_PENDING_MAX`, never grown).
    pending_requests: Vec<OrderRequest>,
    clock: StageClock,
    events: Counter,
    orders: Counter,
    book_resyncs: Counter,
    sink_overflows: Counter,
    params_updates: Counter,
    journal_errors: Counter,
    feature_snapshots: Counter,
    /// The operator's commands (kill switch, resume), taken every duty cycle.
    commands: Option<rtrb::Consumer<StrategyCommand>>,
    /// Paused by the operator: books, features and marks keep up, strategies decide nothing
    /// (their reports still reach them).
    paused: bool,
    book_gauges: Vec<InstrumentGauges>,
    /// Feature snapshots due and held for journaling (off unless set).
    feature_journal: FeatureJournal,
}

impl<S: Strategy> StrategyStage<S> {
    /// `instruments_len` is the size of the instrument table (ids are below it). Each book
    /// loads its snapshot now.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        instruments_len: usize,
        traded: Vec<TradedInstrument<S>>,
        book_limits: BookLimits,
        feature_config: FeatureConfig,
        sink: OrderSink,
        params: Option<ParamsReceiver<S::Params>>,
        appender: Appender,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<StrategyStage<S>, StageError> {
        let mut slot_of = vec![NO_SLOT; instruments_len];
        let mut stage = StrategyStage {
            slot_of: Vec::new(),
            books: Vec::with_capacity(traded.len()),
            features: Vec::with_capacity(traded.len()),
            grids: Vec::with_capacity(traded.len()),
            strategies: Vec::with_capacity(traded.len()),
            snapshots: Vec::with_capacity(traded.len()),
            sink,
            params,
            appender,
            snapshot_bids: Vec::with_capacity(LEVELS_PER_MESSAGE_MAX),
            snapshot_asks: Vec::with_capacity(LEVELS_PER_MESSAGE_MAX),
            pending_requests: Vec::with_capacity(REQUESTS_PENDING_MAX),
            clock,
            events: counter(counters, label::STRATEGY_EVENTS)?,
            orders: counter(counters, label::STRATEGY_ORDERS)?,
            book_resyncs: counter(counters, label::STRATEGY_BOOK_RESYNCS)?,
            sink_overflows: counter(counters, label::STRATEGY_SINK_OVERFLOWS)?,
            params_updates: counter(counters, label::STRATEGY_PARAMS_UPDATES)?,
            journal_errors: counter(counters, label::STRATEGY_JOURNAL_ERRORS)?,
            feature_snapshots: counter(counters, label::STRATEGY_FEATURE_SNAPSHOTS)?,
            commands: None,
            paused: false,
            book_gauges: Vec::new(),
            feature_journal: FeatureJournal::new(FeatureCadence::Off, 0, 0),
        };
        for (slot, t) in traded.into_iter().enumerate() {
            let id = t.snapshot.instrument_id;
            let err = |reason: &str| StageError::Instrument {
                instrument_id: id,
                reason: reason.to_owned(),
            };
            let entry = slot_of
                .get_mut(id as usize)
                .ok_or_else(|| err("not in the instrument table"))?;
            if *entry != NO_SLOT {
                return Err(err("traded twice"));
            }
            if slot >= NO_SLOT as usize {
                return Err(err("too many traded instruments"));
            }
            *entry = slot as u16;
            stage.books.push(OrderBook::new(id, book_limits)?);
            stage.features.push(Features::new(feature_config)?);
            stage.grids.push(t.grid);
            stage.strategies.push(t.strategy);
            stage.snapshots.push(t.snapshot);
        }
        stage.slot_of = slot_of;
        stage.reload_snapshots();
        Ok(stage)
    }

    /// Publishes each traded book's state and top as counters (`book.<SYMBOL>.synced`,
    /// `.bid_px`, `.ask_px`), and the model its strategy votes with
    /// (`strategy.model_id.<SYMBOL>`); `symbol_of` names an instrument id. Cold path.
    pub fn publish_books(
        &mut self,
        counters: &CountersWriter,
        symbol_of: impl Fn(u32) -> String,
    ) -> Result<(), ShmError> {
        let mut gauges = Vec::with_capacity(self.books.len());
        for book in &self.books {
            let symbol = symbol_of(book.instrument_id());
            gauges.push(InstrumentGauges {
                synced: counters.allocate(
                    &label::book(symbol.as_str(), label::BOOK_SYNCED),
                    counter_type::STATE,
                )?,
                bid_px: gauge(counters, &label::book(symbol.as_str(), label::BOOK_BID_PX))?,
                ask_px: gauge(counters, &label::book(symbol.as_str(), label::BOOK_ASK_PX))?,
                model_id: counters.allocate(
                    &label::strategy_model_id(symbol.as_str()),
                    counter_type::STATE,
                )?,
            });
        }
        self.book_gauges = gauges;
        self.publish_models();
        Ok(())
    }

    /// `strategy.model_id.<SYMBOL>`: each strategy's model, as its bits (cold path: at start
    /// and when parameters change).
    fn publish_models(&mut self) {
        for (gauges, strategy) in self.book_gauges.iter_mut().zip(&self.strategies) {
            gauges.model_id.set(strategy.model_id() as i64);
        }
    }

    /// Journals each traded instrument's features at `cadence`, stamped with `strategy_id`.
    /// Cold path (before the pipeline starts).
    pub fn set_feature_journal(&mut self, cadence: FeatureCadence, strategy_id: u16) {
        self.feature_journal = FeatureJournal::new(cadence, strategy_id, self.books.len());
    }

    /// Takes the operator's commands from `commands` from now on.
    pub fn set_commands(&mut self, commands: rtrb::Consumer<StrategyCommand>) {
        self.commands = Some(commands);
    }

    /// Whether the operator paused the strategies.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether an operator's command waits to be taken.
    pub fn has_commands_waiting(&self) -> bool {
        self.commands.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// Applies the operator's pending commands; a cancel-all hands one mass cancel (every
    /// instrument) to `emit`. Returns how many were taken.
    #[inline]
    pub fn take_commands(&mut self, mut emit: impl FnMut(ToRisk)) -> usize {
        let mut taken = 0;
        while let Some(command) = self.commands.as_mut().and_then(|c| c.pop().ok()) {
            taken += 1;
            match command {
                StrategyCommand::Pause => self.paused = true,
                StrategyCommand::Resume => self.paused = false,
                StrategyCommand::PauseAndCancelAll | StrategyCommand::PauseAndMassStatus => {
                    self.paused = true;
                    let now = self.clock.now_tsc();
                    self.sink.begin(now);
                    if command == StrategyCommand::PauseAndCancelAll {
                        self.sink.mass_cancel(u32::MAX);
                    } else {
                        self.sink.mass_status(u32::MAX);
                    }
                    self.emit_orders(caused_at(now), &mut emit);
                }
            }
        }
        taken
    }

    /// The book of a traded instrument.
    pub fn book(&self, instrument_id: u32) -> Option<&OrderBook> {
        self.slot(instrument_id).map(|s| &self.books[s])
    }

    /// The strategy of a traded instrument.
    pub fn strategy(&self, instrument_id: u32) -> Option<&S> {
        self.slot(instrument_id).map(|s| &self.strategies[s])
    }

    #[inline]
    fn slot(&self, instrument_id: u32) -> Option<usize> {
        match self.slot_of.get(instrument_id as usize) {
            Some(&slot) if slot != NO_SLOT => Some(slot as usize),
            _ => None,
        }
    }

    /// Reloads every book from its snapshot (start-up, and a replay's next pass). Cold path.
    pub fn reload_snapshots(&mut self) {
        for (book, snapshot) in self.books.iter_mut().zip(&self.snapshots) {
            if snapshot.last_update_id == 0 {
                continue; // none: the live feed brings the book's snapshot
            }
            if !matches!(
                book.apply_snapshot(&snapshot.view()),
                Ok(BookOutcome::Applied)
            ) {
                self.book_resyncs.increment();
            }
        }
    }

    /// Takes new parameters, if any are waiting, for every strategy (between two events).
    #[inline]
    fn take_params(&mut self) {
        if let Some(params) = self.params.as_mut().and_then(|p| p.latest()) {
            for s in &mut self.strategies {
                s.set_params(params);
            }
            self.params_updates.increment();
            self.publish_models();
        }
    }

    /// Hands the orders in the sink to `emit`, stamped and journaled. `cause` carries the
    /// stamps of what made the strategy send them.
    #[inline]
    fn emit_orders(&mut self, cause: StagedOrder, emit: &mut impl FnMut(ToRisk)) {
        if self.sink.orders().is_empty() {
            return;
        }
        let created_tsc = self.clock.now_tsc();
        for i in 0..self.sink.orders().len() {
            let order = self.sink.orders()[i];
            // The lineage: which model the order's strategy voted with (0: none, or an order
            // of every instrument).
            let model_tag = self
                .slot(order.instrument_id)
                .map_or(0, |s| (self.strategies[s].model_id() >> 32) as u32);
            let order = OrderRequest {
                created_tsc,
                model_tag,
                ..order
            };
            emit(ToRisk::Order(StagedOrder { order, ..cause }));
            self.orders.increment();
            if self.pending_requests.len() == REQUESTS_PENDING_MAX {
                self.journal_pending();
            }
            self.pending_requests.push(order);
        }
    }

    /// Journals the requests sent on since the last call; returns how many.
    #[inline]
    pub fn journal_pending(&mut self) -> usize {
        let mut failed = false;
        for order in &self.pending_requests {
            failed |= self
                .appender
                .append(OrderRequest::RECORD_TYPE, order.to_bytes())
                .is_err();
        }
        let (snapshots, snapshots_failed) = self.feature_journal.journal(&mut self.appender);
        if failed || snapshots_failed {
            self.journal_errors.increment();
        }
        if snapshots > 0 {
            self.feature_snapshots.add(snapshots as i64);
        }
        let appended = self.pending_requests.len() + snapshots;
        self.pending_requests.clear();
        appended
    }

    /// Holds a snapshot of the instrument's features and its strategy's output for the journal.
    #[inline]
    fn snapshot_features(&mut self, slot: usize, instrument_id: u32, ts_ns: u64, recv_tsc: u64) {
        if self.feature_journal.is_full() {
            self.journal_pending();
        }
        let mut flags = 0;
        if self.books[slot].state() == BookState::Synced {
            flags |= feature_flag::BOOK_SYNCED;
        }
        if self.paused {
            flags |= feature_flag::PAUSED;
        }
        let strategy = &self.strategies[slot];
        self.feature_journal.push(
            instrument_id,
            &self.features[slot],
            strategy.output(),
            strategy.model_id(),
            ts_ns,
            recv_tsc,
            flags,
        );
    }

    /// One decoded market record: update the book and features, tell risk the new top of book,
    /// run the strategy, and hand its orders on.
    #[inline]
    pub fn on_market(&mut self, decoded: &Decoded, mut emit: impl FnMut(ToRisk)) {
        let strategy_start_tsc = self.clock.now_tsc();
        self.take_params();
        let instrument_id = match &decoded.record {
            MarketRecord::BookTicker(t) => t.instrument_id,
            MarketRecord::Depth(d) => d.instrument_id,
            MarketRecord::Trade(t) => t.instrument_id,
            MarketRecord::AggTrade(t) => t.instrument_id,
            MarketRecord::Snapshot(d) => d.instrument_id,
            MarketRecord::Resync => {
                self.reload_snapshots();
                return;
            }
            MarketRecord::Stale => {
                for book in &mut self.books {
                    book.mark_needs_resync();
                }
                return;
            }
        };
        let Some(slot) = self.slot(instrument_id) else {
            return; // not traded here
        };
        self.events.increment();
        let ts_ns = self.clock.unix_ns(decoded.recv_tsc);
        let features = &mut self.features[slot];
        let top = match &decoded.record {
            MarketRecord::BookTicker(t) => {
                let bid = Level {
                    px: t.bid_px,
                    qty: t.bid_qty,
                };
                let ask = Level {
                    px: t.ask_px,
                    qty: t.ask_qty,
                };
                features.on_book_top(bid, ask, ts_ns);
                Some((bid.px, ask.px))
            }
            MarketRecord::Depth(chunk) => {
                let book = &mut self.books[slot];
                match book.apply_diff_chunk(chunk) {
                    Ok(BookOutcome::Applied) => {}
                    Ok(BookOutcome::Partial | BookOutcome::Buffered | BookOutcome::Stale) => {
                        return;
                    }
                    Ok(_) | Err(_) => {
                        // A gap or a crossed book: the book asks for a new snapshot (issue 5's
                        // feed fetches one); the strategy below sees it unsynced and pulls quotes.
                        self.book_resyncs.increment();
                    }
                }
                synced_top(book, features, ts_ns)
            }
            MarketRecord::Snapshot(chunk) => {
                if chunk.chunk == 0 {
                    self.snapshot_bids.clear();
                    self.snapshot_asks.clear();
                }
                self.snapshot_bids.extend_from_slice(chunk.bids());
                self.snapshot_asks.extend_from_slice(chunk.asks());
                if chunk.chunk + 1 < chunk.chunk_count {
                    return;
                }
                let book = &mut self.books[slot];
                let snapshot = DepthSnapshot {
                    instrument_id,
                    last_update_id: chunk.final_update_id,
                    bids: &self.snapshot_bids,
                    asks: &self.snapshot_asks,
                };
                if !matches!(book.apply_snapshot(&snapshot), Ok(BookOutcome::Applied)) {
                    self.book_resyncs.increment();
                }
                synced_top(book, features, ts_ns)
            }
            MarketRecord::Trade(t) => {
                features.on_trade_record(t, ts_ns);
                None
            }
            MarketRecord::AggTrade(t) => {
                let seller_aggressed = t.flags & TRADE_FLAG_BUYER_IS_MAKER != 0;
                features.on_trade(t.px, t.qty, seller_aggressed, ts_ns);
                None
            }
            MarketRecord::Resync | MarketRecord::Stale => None,
        };
        if let Some(gauges) = self.book_gauges.get(slot) {
            let synced = self.books[slot].state() == BookState::Synced;
            gauges.synced.set(i64::from(synced));
            if let Some((bid_px, ask_px)) = top {
                gauges.bid_px.set(bid_px);
                gauges.ask_px.set(ask_px);
            }
        }
        if let Some((bid_px, ask_px)) = top {
            emit(ToRisk::Mark {
                instrument_id,
                bid_px,
                ask_px,
            });
        }
        let snapshot_due = self.feature_journal.due(slot, ts_ns, top.is_some());
        if self.paused {
            if snapshot_due {
                self.snapshot_features(slot, instrument_id, ts_ns, decoded.recv_tsc);
            }
            return;
        }
        self.sink.begin(decoded.decoded_tsc);
        let view = MarketView {
            instrument_id,
            grid: self.grids[slot],
            book: &self.books[slot],
            features: &self.features[slot],
            ts_ns,
            recv_tsc: decoded.recv_tsc,
            output_wanted: snapshot_due,
        };
        self.strategies[slot].on_market(&view, &mut self.sink);
        self.count_overflows();
        let cause = StagedOrder {
            due_tsc: decoded.due_tsc,
            recv_tsc: decoded.recv_tsc,
            decoded_tsc: decoded.decoded_tsc,
            strategy_start_tsc,
            ..StagedOrder::default()
        };
        self.emit_orders(cause, &mut emit);
        if snapshot_due {
            self.snapshot_features(slot, instrument_id, ts_ns, decoded.recv_tsc);
        }
    }

    /// An execution report (from the venue, or risk's refusal): to the instrument's strategy.
    #[inline]
    pub fn on_report(&mut self, report: &ExecutionReport, mut emit: impl FnMut(ToRisk)) {
        self.take_params();
        let Some(slot) = self.slot(report.instrument_id) else {
            return;
        };
        let now = self.clock.now_tsc();
        self.sink.begin(now);
        self.strategies[slot].on_execution(report, &mut self.sink);
        self.count_overflows();
        self.emit_orders(caused_at(now), &mut emit);
    }

    /// Stamp ticks per nanosecond.
    pub fn ticks_per_ns(&self) -> f64 {
        self.clock.calibration.ticks_per_ns
    }

    /// How many instruments are traded here (timer slots `0..traded()`).
    pub fn traded(&self) -> usize {
        self.strategies.len()
    }

    /// Whether any strategy's timer does anything ([`Strategy::uses_timer`]).
    pub fn uses_timer(&self) -> bool {
        self.strategies.iter().any(Strategy::uses_timer)
    }

    /// The timer of the strategy in `slot`.
    pub fn on_timer(&mut self, slot: usize, mut emit: impl FnMut(ToRisk)) {
        if self.paused {
            return;
        }
        let now = self.clock.now_tsc();
        let now_ns = self.clock.unix_ns(now);
        self.sink.begin(now);
        self.strategies[slot].on_timer(now_ns, &mut self.sink);
        self.count_overflows();
        self.emit_orders(caused_at(now), &mut emit);
    }

    /// A stamp of the stage's clock.
    #[inline]
    pub fn now_tsc(&self) -> u64 {
        self.clock.now_tsc()
    }

    #[inline]
    fn count_overflows(&mut self) {
        if self.sink.overflowed > 0 {
            self.sink_overflows.add(self.sink.overflowed as i64);
            self.sink.overflowed = 0;
        }
    }
}

/// The top of a synced book, also handed to its features; `None` while the book is not the
/// venue's.
#[inline]
fn synced_top(book: &OrderBook, features: &mut Features, ts_ns: u64) -> Option<(i64, i64)> {
    match (book.best_bid(), book.best_ask()) {
        (Some(bid), Some(ask)) if book.state() == BookState::Synced => {
            features.on_book_top(bid, ask, ts_ns);
            Some((bid.px, ask.px))
        }
        _ => None,
    }
}

/// Per traded instrument: whether its book is the venue's, and its best bid and ask in price
/// units (`book.<SYMBOL>.synced|bid_px|ask_px`); its strategy's model
/// (`strategy.model_id.<SYMBOL>`).
struct InstrumentGauges {
    synced: Counter,
    bid_px: Counter,
    ask_px: Counter,
    model_id: Counter,
}
