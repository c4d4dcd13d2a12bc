//! The four stages as plain single-threaded values: each takes one input and hands its outputs
//! to a closure. The agents (`agents.rs`) join them with rings; tests and replays may call them
//! directly. Every stage journals what it produces, stamped with the TSC at its edge, and
//! counts into shm counters. Hot path: no allocation, no lock, no syscall, no formatting.

use levibot_gateway::binance::{
    Decoder, DepthSnapshot, DepthUpdate, LEVELS_PER_MESSAGE_MAX, MESSAGE_LEN_MAX, MarketEvent,
};
use levibot_shm::codes::counter_type;
use levibot_shm::codes::label;
use levibot_shm::codes::label::MICROQUOTE_PER_QUOTE;
use levibot_shm::codes::reject_reason;
use levibot_shm::counters::{Counter, CountersWriter};
use levibot_shm::records::{
    DEPTH_LEVELS_PER_RECORD, ExecutionReport, Level, OrderRequest, Record, RiskReject, SentOrder,
    TRADE_FLAG_BUYER_IS_MAKER, exec_type, order_kind,
};
use levibot_shm::{Appender, ShmError, TscCalibration};

use super::venue::Venue;
use super::{Decoded, MarketRecord, RiskCommand, StagedOrder, StrategyCommand, ToRisk};
use crate::book::{BookLimits, BookOutcome, BookState, OrderBook};
use crate::features::{FeatureConfig, Features};
use crate::recorder::{MarketDataRecorder, depth_chunks};
use crate::risk::{RiskCheck, RiskEngine, RiskLimits, TradingState};
use crate::strategy::{Grid, MarketView, OrderSink, ParamsReceiver, Strategy};
use levibot_gateway::source::OwnedSnapshot;

fn gauge(counters: &CountersWriter, label: &str) -> Result<Counter, ShmError> {
    counters.allocate(label, counter_type::GAUGE)
}

/// Per traded instrument: whether its book is the venue's, and its best bid and ask in price
/// units (`book.<SYMBOL>.synced|bid_px|ask_px`).
struct BookGauges {
    synced: Counter,
    bid_px: Counter,
    ask_px: Counter,
}

fn counter(counters: &CountersWriter, label: &str) -> Result<Counter, ShmError> {
    counters.allocate(label, counter_type::EVENTS)
}

/// The clock every stage stamps with, and what turns its stamps into time.
#[derive(Clone, Debug)]
pub struct StageClock {
    pub clock: quanta::Clock,
    pub calibration: TscCalibration,
}

impl StageClock {
    /// The raw stamp (TSC where the machine has an invariant one).
    #[inline]
    pub fn now_tsc(&self) -> u64 {
        self.clock.raw()
    }

    /// Wall-clock ns of a stamp: monotonic within a run (one calibration).
    #[inline]
    pub fn unix_ns(&self, tsc: u64) -> u64 {
        self.calibration.to_unix_ns(tsc)
    }
}

// ------------------------------------------------------------------------------------------------
// Feed: venue bytes -> decoded records.

/// Decodes venue messages and journals both the exact bytes and the decoded events.
///
/// Journaling is deferred work: the message's bytes and records wait in fixed buffers until
/// [`journal_pending`](Self::journal_pending) (the agent's deferred work, after the rest of a
/// fused pipeline has handled the message), or until the next message arrives.
pub struct FeedStage {
    decoder: Decoder,
    recorder: MarketDataRecorder,
    clock: StageClock,
    messages: Counter,
    decode_errors: Counter,
    journal_errors: Counter,
    /// The last message's bytes (capacity `MESSAGE_LEN_MAX`, never grown) and receive stamp.
    pending_raw: Vec<u8>,
    pending_recv_tsc: Option<u64>,
    /// The last message's records (capacity `RECORDS_PER_MESSAGE_MAX`, never grown).
    pending_records: Vec<MarketRecord>,
    /// The last depth update's `u` of each instrument id (0: none yet), or its snapshot's
    /// `lastUpdateId` while `after_snapshot`: a stream whose next `U` is not `u + 1` (or, after
    /// a snapshot, does not straddle it) has lost an update.
    last_final_update_id: Vec<u64>,
    after_snapshot: Vec<bool>,
    stream_gaps: Counter,
}

impl FeedStage {
    /// `appender` journals the raw bytes (source `source_id`) and the decoded events.
    pub fn new(
        decoder: Decoder,
        appender: Appender,
        source_id: u32,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<FeedStage, ShmError> {
        let instruments_len = decoder.instruments().len();
        Ok(FeedStage {
            decoder,
            recorder: MarketDataRecorder::new(appender, source_id),
            clock,
            messages: counter(counters, label::FEED_MESSAGES)?,
            decode_errors: counter(counters, label::FEED_DECODE_ERRORS)?,
            journal_errors: counter(counters, label::FEED_JOURNAL_ERRORS)?,
            pending_raw: Vec::with_capacity(MESSAGE_LEN_MAX),
            pending_recv_tsc: None,
            pending_records: Vec::with_capacity(Self::RECORDS_PER_MESSAGE_MAX),
            last_final_update_id: vec![0; instruments_len],
            after_snapshot: vec![false; instruments_len],
            stream_gaps: counter(counters, label::FEED_STREAM_GAPS)?,
        })
    }

    /// A REST depth snapshot of `instrument_id` (a live feed's resync), journaled raw and handed
    /// on as [`MarketRecord::Snapshot`] chunks. A body that does not decode is counted. Cold
    /// path (a connect or a gap), but allocation-free all the same.
    pub fn on_snapshot(&mut self, instrument_id: u32, body: &[u8], mut emit: impl FnMut(Decoded)) {
        self.journal_pending();
        let recv_tsc = self.clock.now_tsc();
        if self.recorder.record_raw(recv_tsc, body).is_err() {
            self.journal_errors.increment();
        }
        let snapshot = match self.decoder.decode_snapshot(body, instrument_id) {
            Ok(snapshot) => snapshot,
            Err(_) => {
                self.decode_errors.increment();
                return;
            }
        };
        let decoded_tsc = self.clock.now_tsc();
        if let Some(last) = self.last_final_update_id.get_mut(instrument_id as usize) {
            // The stream's continuity is checked against the snapshot from here.
            *last = snapshot.last_update_id;
            self.after_snapshot[instrument_id as usize] = true;
        }
        let as_update = DepthUpdate {
            instrument_id,
            recv_tsc,
            event_time_ms: 0,
            first_update_id: snapshot.last_update_id,
            final_update_id: snapshot.last_update_id,
            bids: snapshot.bids,
            asks: snapshot.asks,
        };
        for chunk in depth_chunks(&as_update) {
            emit(Decoded {
                record: MarketRecord::Snapshot(chunk),
                due_tsc: recv_tsc,
                recv_tsc,
                decoded_tsc,
            });
        }
    }

    /// Whether the last message was a depth update that did not continue its stream (`U` not
    /// the previous `u + 1`): its instrument, for the source to fetch a new snapshot.
    #[inline]
    fn check_continuity(&mut self, instrument_id: u32, first: u64, last: u64) -> Option<u32> {
        let i = instrument_id as usize;
        let slot = self.last_final_update_id.get_mut(i)?;
        let after_snapshot = &mut self.after_snapshot[i];
        let gap = if *after_snapshot {
            // Binance's rule after a snapshot at `L`: updates with `u <= L` are old news; the
            // first one after must straddle `L + 1`.
            if last <= *slot {
                return None;
            }
            *after_snapshot = false;
            first > *slot + 1
        } else {
            *slot != 0 && first != *slot + 1
        };
        *slot = last;
        if gap {
            self.stream_gaps.increment();
            return Some(instrument_id);
        }
        None
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// A stamp of the stage's clock.
    #[inline]
    pub fn now_tsc(&self) -> u64 {
        self.clock.now_tsc()
    }

    /// Most records one message can become (a depth update's chunks): what an outbox must have
    /// room for before the next message.
    pub const RECORDS_PER_MESSAGE_MAX: usize =
        LEVELS_PER_MESSAGE_MAX.div_ceil(DEPTH_LEVELS_PER_RECORD);

    /// Decodes one message and hands its records to `emit`; its bytes and records are
    /// journaled by the next [`journal_pending`](Self::journal_pending) (the previous message's
    /// are, first, if still pending). A message that does not decode is journaled and counted,
    /// never lost.
    ///
    /// Returns the instrument whose depth stream has just lost an update, if any (the source
    /// then fetches a new snapshot; the book has already noticed and waits for it).
    #[inline]
    pub fn on_message(
        &mut self,
        bytes: &[u8],
        due_tsc: u64,
        mut emit: impl FnMut(Decoded),
    ) -> Option<u32> {
        self.journal_pending();
        let recv_tsc = self.clock.now_tsc();
        self.messages.increment();
        let event = self.decoder.decode(bytes, recv_tsc);
        let decoded_tsc = self.clock.now_tsc();
        let pending = &mut self.pending_records;
        let mut hand_on = |record| {
            emit(Decoded {
                record,
                due_tsc,
                recv_tsc,
                decoded_tsc,
            });
            pending.push(record);
        };
        match &event {
            Ok(MarketEvent::BookTicker(t)) => hand_on(MarketRecord::BookTicker(*t)),
            Ok(MarketEvent::Trade(t)) => hand_on(MarketRecord::Trade(*t)),
            Ok(MarketEvent::AggTrade(t)) => hand_on(MarketRecord::AggTrade(*t)),
            Ok(MarketEvent::Depth(d)) => {
                for chunk in depth_chunks(d) {
                    hand_on(MarketRecord::Depth(chunk));
                }
            }
            Ok(MarketEvent::Skipped(_)) => {}
            Err(_) => self.decode_errors.increment(),
        }
        let gap = match &event {
            Ok(MarketEvent::Depth(d)) => {
                Some((d.instrument_id, d.first_update_id, d.final_update_id))
            }
            _ => None,
        };
        if bytes.len() <= self.pending_raw.capacity() {
            self.pending_raw.extend_from_slice(bytes);
            self.pending_recv_tsc = Some(recv_tsc);
        } else if self.recorder.record_raw(recv_tsc, bytes).is_err() {
            // Longer than any message the decoder takes: journaled now rather than copied.
            self.journal_errors.increment();
        }
        gap.and_then(|(id, first, last)| self.check_continuity(id, first, last))
    }

    /// Journals the last message's bytes and records, if still pending; returns how many
    /// frames it appended.
    #[inline]
    pub fn journal_pending(&mut self) -> usize {
        let mut appended = 0;
        let mut failed = false;
        if let Some(recv_tsc) = self.pending_recv_tsc.take() {
            failed |= self
                .recorder
                .record_raw(recv_tsc, &self.pending_raw)
                .is_err();
            self.pending_raw.clear();
            appended += 1;
        }
        for record in &self.pending_records {
            failed |= match record {
                MarketRecord::BookTicker(t) => self.recorder.append(t),
                MarketRecord::Depth(d) => self.recorder.append(d),
                MarketRecord::Trade(t) => self.recorder.append(t),
                MarketRecord::AggTrade(t) => self.recorder.append(t),
                // A snapshot's raw body is journaled as it arrives (FeedStage::on_snapshot).
                MarketRecord::Snapshot(_) | MarketRecord::Resync | MarketRecord::Stale => Ok(()),
            }
            .is_err();
            appended += 1;
        }
        self.pending_records.clear();
        if failed {
            self.journal_errors.increment();
        }
        appended
    }
}

// ------------------------------------------------------------------------------------------------
// Strategy: books, features and the strategy of each traded instrument.

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
    /// The operator's commands (kill switch, resume), taken every duty cycle.
    commands: Option<rtrb::Consumer<StrategyCommand>>,
    /// Paused by the operator: books, features and marks keep up, strategies decide nothing
    /// (their reports still reach them).
    paused: bool,
    book_gauges: Vec<BookGauges>,
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
            commands: None,
            paused: false,
            book_gauges: Vec::new(),
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
    /// `.bid_px`, `.ask_px`; `symbol_of` names an instrument id). Cold path.
    pub fn publish_books(
        &mut self,
        counters: &CountersWriter,
        symbol_of: impl Fn(u32) -> String,
    ) -> Result<(), ShmError> {
        let mut gauges = Vec::with_capacity(self.books.len());
        for book in &self.books {
            let symbol = symbol_of(book.instrument_id());
            gauges.push(BookGauges {
                synced: counters.allocate(
                    &label::book(symbol.as_str(), label::BOOK_SYNCED),
                    counter_type::STATE,
                )?,
                bid_px: gauge(counters, &label::book(symbol.as_str(), label::BOOK_BID_PX))?,
                ask_px: gauge(counters, &label::book(symbol.as_str(), label::BOOK_ASK_PX))?,
            });
        }
        self.book_gauges = gauges;
        Ok(())
    }

    /// Takes the operator's commands from `commands` from now on.
    pub fn set_commands(&mut self, commands: rtrb::Consumer<StrategyCommand>) {
        self.commands = Some(commands);
    }

    /// Whether the operator paused the strategies.
    pub fn is_paused(&self) -> bool {
        self.paused
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
            let order = OrderRequest {
                created_tsc,
                ..self.sink.orders()[i]
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
        if failed {
            self.journal_errors.increment();
        }
        let appended = self.pending_requests.len();
        self.pending_requests.clear();
        appended
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
        if self.paused {
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

// ------------------------------------------------------------------------------------------------
// Risk: every order through every check.

/// Runs the pre-trade checks, journals every refusal, and counts them by check.
pub struct RiskStage {
    engine: RiskEngine,
    limits: Option<ParamsReceiver<RiskLimits>>,
    appender: Appender,
    clock: StageClock,
    passed: Counter,
    rejected: Counter,
    rejected_by_check: Vec<Counter>,
    trading_state: Counter,
    limits_updates: Counter,
    limits_update_errors: Counter,
    journal_errors: Counter,
    /// The operator's commands (kill switch, resume, a mass status given up), in order; taken
    /// before every order and every duty cycle.
    commands: Option<rtrb::Consumer<RiskCommand>>,
    /// `risk.status_rounds|status_fills_applied|status_dropped|status_adopted|
    /// status_unaccounted`: order mass status rounds and what they changed.
    status: [Counter; 5],
    open_orders: Counter,
    /// Per instrument with limits: position and PnL gauges.
    ledgers: Vec<LedgerGauges>,
    pnl_total: Counter,
    /// Marks until PnL is published again (a 128-bit division: not on every mark).
    marks_until_pnl: u32,
}

/// An instrument's position (`risk.position_units.<SYMBOL>`, quantity units), open orders
/// (`risk.open_orders.<SYMBOL>`) and PnL (`risk.pnl_microquote.<SYMBOL>`, realised + marked,
/// and `risk.realised_pnl_microquote.<SYMBOL>`, in 10^-6 of the quote asset).
struct LedgerGauges {
    instrument_id: u32,
    position_units: Counter,
    open_orders: Counter,
    pnl_microquote: Counter,
    realised_pnl_microquote: Counter,
}

/// Marks between two PnL publications.
const MARKS_PER_PNL_PUBLISH: u32 = 64;
/// Notional units per micro-unit of the quote asset.
const NOTIONAL_PER_MICROQUOTE: i128 =
    crate::risk::limits::NOTIONAL_ONE / MICROQUOTE_PER_QUOTE as i128;
impl RiskStage {
    /// `limits`, if given, is where new limits arrive from the cold side (SIGHUP, `levictl
    /// reload`); they are taken between two orders, whole or not at all.
    pub fn new(
        engine: RiskEngine,
        limits: Option<ParamsReceiver<RiskLimits>>,
        appender: Appender,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<RiskStage, ShmError> {
        let mut rejected_by_check = Vec::with_capacity(RiskCheck::COUNT);
        for check in RiskCheck::ALL {
            rejected_by_check.push(counter(counters, &label::risk_reject(check))?);
        }
        let mut ledgers = Vec::new();
        for (id, limits) in engine.limits().instruments.iter().enumerate() {
            if let Some(limits) = limits {
                let symbol = limits.symbol;
                ledgers.push(LedgerGauges {
                    instrument_id: id as u32,
                    position_units: gauge(counters, &label::risk_position_units(symbol.as_str()))?,
                    open_orders: gauge(counters, &label::risk_open_orders(symbol.as_str()))?,
                    pnl_microquote: gauge(counters, &label::risk_pnl_microquote(symbol.as_str()))?,
                    realised_pnl_microquote: gauge(
                        counters,
                        &label::risk_realised_pnl_microquote(symbol.as_str()),
                    )?,
                });
            }
        }
        let stage = RiskStage {
            commands: None,
            status: [
                counter(counters, label::RISK_STATUS_ROUNDS)?,
                counter(counters, label::RISK_STATUS_FILLS_APPLIED)?,
                counter(counters, label::RISK_STATUS_DROPPED)?,
                counter(counters, label::RISK_STATUS_ADOPTED)?,
                counter(counters, label::RISK_STATUS_UNACCOUNTED)?,
            ],
            open_orders: gauge(counters, label::RISK_OPEN_ORDERS)?,
            ledgers,
            pnl_total: gauge(counters, label::RISK_PNL_MICROQUOTE)?,
            marks_until_pnl: 0,
            engine,
            limits,
            appender,
            clock,
            passed: counter(counters, label::RISK_PASSED)?,
            rejected: counter(counters, label::RISK_REJECTED)?,
            rejected_by_check,
            trading_state: counters.allocate(label::RISK_TRADING_STATE, counter_type::STATE)?,
            limits_updates: counter(counters, label::RISK_LIMITS_UPDATES)?,
            limits_update_errors: counter(counters, label::RISK_LIMITS_UPDATE_ERRORS)?,
            journal_errors: counter(counters, label::RISK_JOURNAL_ERRORS)?,
        };
        stage.publish_state();
        stage.publish_ledgers();
        Ok(stage)
    }

    /// Replaces the engine with one restored from the journal (a restart; before the pipeline
    /// starts). The limits in force are `engine`'s.
    pub fn restore(&mut self, engine: RiskEngine) {
        self.engine = engine;
        self.publish_state();
        self.publish_ledgers();
    }

    /// Takes the operator's commands from `commands` from now on.
    pub fn set_commands(&mut self, commands: rtrb::Consumer<RiskCommand>) {
        self.commands = Some(commands);
    }

    /// Applies the operator's pending commands, in order.
    #[inline]
    pub fn take_commands(&mut self) {
        while let Some(command) = self.commands.as_mut().and_then(|c| c.pop().ok()) {
            match command {
                RiskCommand::SetState(state) => self.set_trading_state(state),
                RiskCommand::AbandonStatusRound => self.engine.abandon_status_round(),
            }
        }
    }

    /// Publishes the mass status rounds' counts (after an order status report).
    #[cold]
    fn publish_status(&self) {
        let e = &self.engine;
        let values = [
            e.status_rounds(),
            e.status_fills_applied(),
            e.status_dropped(),
            e.status_adopted(),
            e.status_unaccounted(),
        ];
        for (counter, value) in self.status.iter().zip(values) {
            counter.set(value as i64);
        }
    }

    /// Publishes open orders, positions and PnL.
    fn publish_ledgers(&self) {
        self.open_orders.set(self.engine.open_orders() as i64);
        for l in &self.ledgers {
            self.publish_ledger(l);
        }
        self.publish_pnl();
    }

    /// An instrument's position and open orders (O(1)).
    #[inline]
    fn publish_ledger(&self, l: &LedgerGauges) {
        l.position_units.set(self.engine.position(l.instrument_id));
        l.open_orders
            .set(i64::from(self.engine.open_orders_of(l.instrument_id)));
    }

    fn publish_pnl(&self) {
        let micro = |notional: i128| {
            (notional / NOTIONAL_PER_MICROQUOTE).clamp(i64::MIN as i128, i64::MAX as i128) as i64
        };
        for l in &self.ledgers {
            l.pnl_microquote
                .set(micro(self.engine.instrument_pnl(l.instrument_id)));
            l.realised_pnl_microquote
                .set(micro(self.engine.realised_pnl(l.instrument_id)));
        }
        self.pnl_total.set(micro(self.engine.pnl()));
    }

    pub fn engine(&self) -> &RiskEngine {
        &self.engine
    }

    /// The kill switch and its release (cold side; through the control path in issue 6).
    pub fn set_trading_state(&mut self, state: TradingState) {
        self.engine.set_trading_state(state);
        self.publish_state();
    }

    fn publish_state(&self) {
        self.trading_state.set(self.engine.trading_state().code());
    }

    #[inline]
    fn take_limits(&mut self) {
        let Some(mailbox) = self.limits.as_mut() else {
            return;
        };
        match self.engine.apply_pending_limits(mailbox) {
            None => {}
            Some(Ok(())) => self.limits_updates.increment(),
            // The cold side validated them before sending; a refusal here leaves the limits in
            // force unchanged.
            Some(Err(_)) => self.limits_update_errors.increment(),
        }
    }

    /// Checks one order. Passed: the order, stamped `risk_tsc`. Refused: the journaled
    /// `RiskReject` has been counted, and the returned report (exec type REJECTED, reason = the
    /// check's code) tells the strategy.
    #[inline]
    pub fn on_order(&mut self, staged: &StagedOrder) -> Result<StagedOrder, ExecutionReport> {
        let risk_start_tsc = self.clock.now_tsc();
        self.take_limits();
        self.take_commands();
        let result = self
            .engine
            .check(&staged.order, self.clock.unix_ns(risk_start_tsc));
        let risk_tsc = self.clock.now_tsc();
        self.publish_state();
        match result {
            Ok(()) => {
                self.open_orders.set(self.engine.open_orders() as i64);
                if let Some(l) = self
                    .ledgers
                    .iter()
                    .find(|l| l.instrument_id == staged.order.instrument_id)
                {
                    l.open_orders.set(i64::from(
                        self.engine.open_orders_of(staged.order.instrument_id),
                    ));
                }
                self.passed.increment();
                let mut passed = *staged;
                passed.order.risk_tsc = risk_tsc;
                passed.risk_start_tsc = risk_start_tsc;
                Ok(passed)
            }
            Err(mut reject) => {
                reject.request.risk_tsc = risk_tsc;
                self.rejected.increment();
                if let Some(check) = RiskCheck::from_code(reject.check) {
                    self.rejected_by_check[check.index()].increment();
                }
                if self
                    .appender
                    .append(RiskReject::RECORD_TYPE, reject.to_bytes())
                    .is_err()
                {
                    self.journal_errors.increment();
                }
                Err(rejected_report(
                    &staged.order,
                    u32::from(reject.check),
                    risk_tsc,
                ))
            }
        }
    }

    /// The top of an instrument's book moved: the reference and mark price.
    #[inline]
    pub fn on_mark(&mut self, instrument_id: u32, bid_px: i64, ask_px: i64) {
        self.engine.on_market(instrument_id, bid_px, ask_px);
        if self.marks_until_pnl == 0 {
            self.marks_until_pnl = MARKS_PER_PNL_PUBLISH;
            self.publish_pnl();
        }
        self.marks_until_pnl -= 1;
    }

    /// An execution report: positions, open orders, PnL.
    #[inline]
    pub fn on_report(&mut self, report: &ExecutionReport) {
        let now = self.clock.now_tsc();
        self.engine.on_execution(report, self.clock.unix_ns(now));
        self.publish_state();
        // O(1) per report: open orders and the report's position; PnL (a 128-bit division
        // per instrument) waits for the next mark, which a fill makes due at once.
        self.open_orders.set(self.engine.open_orders() as i64);
        if let Some(l) = self
            .ledgers
            .iter()
            .find(|l| l.instrument_id == report.instrument_id)
        {
            self.publish_ledger(l);
        }
        if report.exec_type == exec_type::TRADE {
            self.marks_until_pnl = 0;
        }
        if report.exec_type == exec_type::ORDER_STATUS {
            self.publish_status();
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

/// The report that tells a strategy its order did not go out (`reject_reason`: why).
fn rejected_report(order: &OrderRequest, reject_reason: u32, recv_tsc: u64) -> ExecutionReport {
    ExecutionReport {
        recv_tsc,
        client_order_id: order.client_order_id,
        px: order.px,
        instrument_id: order.instrument_id,
        exec_type: exec_type::REJECTED,
        ord_status: b'8',
        side: order.side,
        reject_reason,
        ..ExecutionReport::default()
    }
}

// ------------------------------------------------------------------------------------------------
// Gateway: encode, journal, send; and the venue's reports back.

/// Hands orders to the venue (which encodes them), journals each one before its bytes leave,
/// then lets them leave; takes the venue's execution reports.
pub struct GatewayStage<V: Venue> {
    venue: V,
    appender: Appender,
    clock: StageClock,
    sent: Counter,
    encode_errors: Counter,
    reports: Counter,
    journal_errors: Counter,
}

impl<V: Venue> GatewayStage<V> {
    pub fn new(
        venue: V,
        appender: Appender,
        clock: StageClock,
        counters: &CountersWriter,
    ) -> Result<GatewayStage<V>, ShmError> {
        Ok(GatewayStage {
            venue,
            appender,
            clock,
            sent: counter(counters, label::GATEWAY_ORDERS_SENT)?,
            encode_errors: counter(counters, label::GATEWAY_ENCODE_ERRORS)?,
            reports: counter(counters, label::GATEWAY_REPORTS)?,
            journal_errors: counter(counters, label::GATEWAY_JOURNAL_ERRORS)?,
        })
    }

    pub fn venue(&self) -> &V {
        &self.venue
    }

    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }

    /// Encodes (through the venue), journals and sends one order. An order the venue cannot
    /// take comes back as a REJECTED report (for risk and the strategy), counted.
    #[inline]
    pub fn on_order(&mut self, staged: &StagedOrder) -> Result<SentOrder, ExecutionReport> {
        let start = self.clock.now_tsc();
        let queued = match self.venue.send(&staged.order, self.clock.unix_ns(start)) {
            Ok(queued) => queued,
            Err(_) => {
                self.encode_errors.increment();
                return Err(rejected_report(
                    &staged.order,
                    reject_reason::ENCODE,
                    self.clock.now_tsc(),
                ));
            }
        };
        let encoded_tsc = self.clock.now_tsc();
        let sent = SentOrder {
            request: staged.order,
            due_tsc: staged.due_tsc,
            recv_tsc: staged.recv_tsc,
            decoded_tsc: staged.decoded_tsc,
            strategy_start_tsc: staged.strategy_start_tsc,
            risk_start_tsc: staged.risk_start_tsc,
            encode_start_tsc: start,
            encoded_tsc,
            msg_seq_num: queued.msg_seq_num,
            encoded_len: queued.encoded_len,
            reserved: 0,
        };
        // Write-ahead: journaled before the bytes leave, so a crash never forgets a sent order.
        // If the journal cannot take it, the order is taken back and refused; only a venue
        // that cannot take it back lets it leave (counted either way). Cancels and status
        // requests leave anyway: on a full journal the daemon halts and cancels everything,
        // and an order left working that nobody watches is worse than a cancel recovery does
        // not know of (reconciliation cancels again, harmlessly).
        if self
            .appender
            .append(SentOrder::RECORD_TYPE, sent.to_bytes())
            .is_err()
        {
            self.journal_errors.increment();
            let reduces_risk = matches!(
                staged.order.kind,
                order_kind::CANCEL | order_kind::MASS_CANCEL | order_kind::MASS_STATUS
            );
            if !reduces_risk && self.venue.retract(&queued) {
                return Err(rejected_report(
                    &staged.order,
                    reject_reason::JOURNAL,
                    self.clock.now_tsc(),
                ));
            }
        }
        self.venue.flush(self.clock.unix_ns(encoded_tsc));
        self.sent.increment();
        Ok(sent)
    }

    /// Lets the venue do its I/O (send what is queued, read what arrived, timers): every duty
    /// cycle, orders or not.
    #[inline]
    pub fn poll_venue(&mut self) {
        let now = self.clock.now_tsc();
        self.venue.flush(self.clock.unix_ns(now));
    }

    /// The venue's next execution report, stamped and journaled.
    #[inline]
    pub fn poll_report(&mut self) -> Option<ExecutionReport> {
        let mut report = self.venue.poll_report()?;
        if report.recv_tsc == 0 {
            report.recv_tsc = self.clock.now_tsc();
        }
        self.reports.increment();
        if self
            .appender
            .append(ExecutionReport::RECORD_TYPE, report.to_bytes())
            .is_err()
        {
            self.journal_errors.increment();
        }
        Some(report)
    }
}
