//! The hot path in one process: venue bytes -> decode -> book, features, strategy -> risk ->
//! encode -> venue, and execution reports back.
//!
//! ```text
//!   source --bytes--> [feed] --Decoded--> [strategy] --ToRisk--> [risk] --StagedOrder--> [gateway] --> venue
//!                                            ^   ^                 |  ^                      |
//!                                            |   +-- rejects ------+  +------ reports -------+
//!                                            +------------------------------ reports --------+
//! ```
//!
//! Each box is a stage (`stages.rs`: plain values, callable directly) wrapped in an agent
//! (`agents.rs`) that reads and writes rings. Two layouts:
//! - **spread**: each agent on its own runner thread and core; a ring hop is a cache-line
//!   transfer between cores.
//! - **fused**: the four agents as one composite on one thread: the feed takes one message per
//!   duty cycle and the others drain their rings after it, so each message goes all the way
//!   through before the next is read.
//!
//! The rings are generic ([`Rings`]): `rtrb` in production, `std::sync::mpsc` as the
//! benchmark's baseline. Every stage journals its output stamped at its edge; the gateway's
//! [`SentOrder`](levibot_shm::records::SentOrder) carries all the stamps of an order, so
//! per-stage latency is computed from the journal alone.

pub mod agents;
pub mod fix_venue;
pub mod reference;
pub mod stages;
pub mod venue;
pub mod ws_feed;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use levibot_gateway::binance::Decoder;
use levibot_gateway::fix::{FixConfigError, OrderEncoder};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::Journal;
use levibot_shm::codes::{counter_type, label, writer_id};
use levibot_shm::counters::CountersWriter;
use levibot_shm::records::{AggTrade, BookTicker, DepthChunk, OrderRequest, Trade};

pub use agents::{FeedAgent, GatewayAgent, RiskAgent, StrategyAgent};
pub use fix_venue::{FixVenue, FixVenueStats, recover_seq_nums};
pub use levibot_gateway::source::{
    MessageSource, OwnedSnapshot, Pacer, Polled, ReplaySource, SyntheticSource,
};
pub use stages::{
    FEATURE_INTERVAL_NS_MAX, FEATURE_INTERVAL_NS_MIN, FEATURES_PENDING_MAX, FeatureCadence,
    FeedStage, GatewayStage, RiskStage, StageClock, StageError, StrategyStage, TradedInstrument,
};
pub use venue::{AckVenue, EncodedQueue, Queued, Venue, VenueSendError};
pub use ws_feed::{WsFeed, WsFeedConfig, WsFeedError, WsFeedStats};

use crate::agent::Agent;
use crate::book::BookLimits;
use crate::composite;
use crate::features::FeatureConfig;
use crate::ring::{Outbox, RingCapacityError, Rings};
use crate::risk::{RiskEngine, RiskLimits, RiskLimitsError, TradingState};
use crate::runner::{RunnerConfig, RunnerCounters, RunnerError, RunnerHandle, spawn};
use crate::strategy::{OrderSink, ParamsSender, Strategy, params_mailbox};

/// A decoded market record on its way to the strategy.
// The ring slots are fixed-size: boxing the depth chunk would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum MarketRecord {
    BookTicker(BookTicker),
    Depth(DepthChunk),
    Trade(Trade),
    AggTrade(AggTrade),
    /// The books must reload their snapshots (a replay's next pass).
    Resync,
    /// One chunk of a fresh REST snapshot (live resync): levels as in a depth chunk,
    /// `first_update_id` = `final_update_id` = the snapshot's `lastUpdateId`; a book loads it
    /// when its last chunk arrives.
    Snapshot(DepthChunk),
    /// The live feed lost its connection: every book must resync.
    Stale,
}

/// A market record with the feed's stamps.
#[derive(Clone, Copy, Debug)]
pub struct Decoded {
    pub record: MarketRecord,
    /// When the message was due (paced sources; `recv_tsc` for a live feed).
    pub due_tsc: u64,
    /// When its bytes were handed to the decoder.
    pub recv_tsc: u64,
    /// When the decoder was done with them.
    pub decoded_tsc: u64,
}

/// An order with the stamps of the market event that caused it and of the stages it passed
/// (see [`SentOrder`](levibot_shm::records::SentOrder) for what each means).
#[derive(Clone, Copy, Debug, Default)]
pub struct StagedOrder {
    pub order: OrderRequest,
    pub due_tsc: u64,
    pub recv_tsc: u64,
    pub decoded_tsc: u64,
    pub strategy_start_tsc: u64,
    pub risk_start_tsc: u64,
}

/// What the strategy stage sends risk: orders, and the top of book (risk's reference and mark).
#[derive(Clone, Copy, Debug)]
pub enum ToRisk {
    Order(StagedOrder),
    Mark {
        instrument_id: u32,
        bid_px: i64,
        ask_px: i64,
    },
}

/// What the operator tells a running pipeline: the kill switch, and its release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradingCommand {
    /// No new orders: risk halts (from its next duty cycle) and the strategies stop deciding;
    /// books, features and reports keep up.
    Halt,
    /// [`Halt`](Self::Halt), then cancel every open order at the venue (one mass cancel).
    HaltAndCancelAll,
    /// [`Halt`](Self::Halt), then ask the venue for the status of every order of ours (FIX
    /// OrderMassStatusRequest); risk makes its view the venue's from the answers.
    HaltAndMassStatus,
    /// Give up a mass status round whose answer did not come (risk closes it).
    AbandonMassStatus,
    /// Trading resumes: risk active, the strategies decide again.
    Resume,
}

/// The strategy agent's part of a [`TradingCommand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyCommand {
    Pause,
    PauseAndCancelAll,
    PauseAndMassStatus,
    Resume,
}

/// The risk agent's part of a [`TradingCommand`], taken in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskCommand {
    SetState(TradingState),
    AbandonStatusRound,
}

/// Commands that may wait for the strategy or risk agent (they take them every duty cycle).
pub const COMMANDS_PENDING_MAX: usize = 16;

/// The cold side's kill switch on a pipeline.
pub struct TradingControl {
    risk: rtrb::Producer<RiskCommand>,
    strategy: rtrb::Producer<StrategyCommand>,
}

impl TradingControl {
    /// Sends `command`: risk's new state first, so that nothing the strategies send after
    /// taking theirs can pass risk before it holds. `false` if the mailboxes are full (send
    /// again once the agents have taken what waits).
    pub fn send(&mut self, command: TradingCommand) -> bool {
        let halted = RiskCommand::SetState(TradingState::Halted);
        let (risk, strategy) = match command {
            TradingCommand::Halt => (halted, Some(StrategyCommand::Pause)),
            TradingCommand::HaltAndCancelAll => (halted, Some(StrategyCommand::PauseAndCancelAll)),
            TradingCommand::HaltAndMassStatus => {
                (halted, Some(StrategyCommand::PauseAndMassStatus))
            }
            TradingCommand::AbandonMassStatus => (RiskCommand::AbandonStatusRound, None),
            TradingCommand::Resume => (
                RiskCommand::SetState(TradingState::Active),
                Some(StrategyCommand::Resume),
            ),
        };
        if self.strategy.slots() == 0 || self.risk.slots() == 0 {
            return false;
        }
        // Room was checked for both: neither push fails.
        let _ = self.risk.push(risk);
        if let Some(strategy) = strategy {
            let _ = self.strategy.push(strategy);
        }
        true
    }
}

/// Capacities of the pipeline's rings, records (powers of two, fixed at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingCapacities {
    /// feed -> strategy.
    pub market: usize,
    /// strategy -> risk and risk -> gateway.
    pub orders: usize,
    /// gateway -> strategy, gateway -> risk, risk -> strategy.
    pub reports: usize,
}

impl Default for RingCapacities {
    fn default() -> Self {
        RingCapacities {
            market: 1024,
            orders: 1024,
            reports: 1024,
        }
    }
}

/// Where the agents run. In config (TOML), each agent with its own core and idle strategy:
///
/// ```toml
/// [layout]
/// kind = "spread"                                   # or "fused"
/// feed = { core = 0, idle = "busy_spin" }           # fused: pipeline = { core = 1, ... }
/// strategy = { core = 1, idle = "busy_spin" }
/// risk = { core = 2, idle = "busy_spin" }
/// gateway = { core = 3, idle = "backoff" }
/// ```
///
/// Deserializing checks the shape (unknown keys are errors); [`validate`](Self::validate)
/// checks it against the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layout {
    /// decode -> strategy -> risk -> encode on one thread.
    Fused { pipeline: RunnerConfig },
    /// One thread per stage.
    Spread {
        feed: RunnerConfig,
        strategy: RunnerConfig,
        risk: RunnerConfig,
        gateway: RunnerConfig,
    },
}

impl Layout {
    /// The runners this layout starts, by role.
    pub fn runners(&self) -> Vec<(&'static str, RunnerConfig)> {
        match *self {
            Layout::Fused { pipeline } => vec![("pipeline", pipeline)],
            Layout::Spread {
                feed,
                strategy,
                risk,
                gateway,
            } => vec![
                ("feed", feed),
                ("strategy", strategy),
                ("risk", risk),
                ("gateway", gateway),
            ],
        }
    }

    /// Checks the layout against this machine (cores exist, busy-spinners fit) before anything
    /// starts.
    pub fn validate(&self) -> Result<(), RunnerError> {
        crate::runner::validate_layout(&self.runners())
    }

    pub fn is_fused(&self) -> bool {
        matches!(self, Layout::Fused { .. })
    }
}

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("ring: {0}")]
    Ring(#[from] RingCapacityError),
    #[error(transparent)]
    Shm(#[from] levibot_shm::ShmError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("risk limits: {0}")]
    Risk(#[from] RiskLimitsError),
    #[error("FIX session: {0}")]
    Fix(#[from] FixConfigError),
}

/// Everything a pipeline is made of besides its source, venue, journal and counters.
pub struct PipelineSpec<S: Strategy> {
    /// The instruments the feed decodes and the gateway encodes (ids `0..n`).
    pub instruments: InstrumentTable,
    /// The instruments traded, each with its snapshot and strategy.
    pub traded: Vec<TradedInstrument<S>>,
    pub risk_limits: RiskLimits,
    pub sender_comp_id: String,
    pub target_comp_id: String,
    pub rings: RingCapacities,
    pub book_limits: BookLimits,
    pub feature_config: FeatureConfig,
    /// When the strategy stage journals each instrument's features (`[features] journal`).
    pub feature_journal: FeatureCadence,
    /// Strategy id stamped on the orders.
    pub strategy_id: u16,
    /// The first client order id (recovered from the journal after a restart).
    pub first_client_order_id: u64,
    /// The venue session's next outgoing sequence number (for an [`AckVenue`] made by
    /// [`ack_venue`](Self::ack_venue); a FIX session keeps its own).
    pub first_msg_seq_num: u64,
}

impl<S: Strategy> PipelineSpec<S> {
    /// An [`AckVenue`] encoding for this spec's instruments and CompIDs.
    pub fn ack_venue(&self) -> Result<AckVenue, FixConfigError> {
        let encoder = OrderEncoder::new(
            &self.sender_comp_id,
            &self.target_comp_id,
            &self.instruments,
        )?;
        Ok(AckVenue::new(encoder, self.first_msg_seq_num))
    }
}

/// The cold side's handles on a pipeline: new strategy parameters and risk limits (taken
/// between two events, whole), and whether the source is done.
pub struct PipelineControls<P> {
    pub params: ParamsSender<P>,
    pub limits: ParamsSender<RiskLimits>,
    pub trading: TradingControl,
    pub source_done: Arc<AtomicBool>,
}

impl<P> PipelineControls<P> {
    /// Whether the source has nothing more.
    pub fn source_is_done(&self) -> bool {
        self.source_done.load(Ordering::Acquire)
    }
}

/// The four agents, joined by rings, ready to start.
pub struct Pipeline<Src: MessageSource, S: Strategy, V: Venue, R: Rings> {
    pub feed: FeedAgent<Src, R>,
    pub strategy: StrategyAgent<S, R>,
    pub risk: RiskAgent<R>,
    pub gateway: GatewayAgent<V, R>,
}

impl<Src, S, V, R> Pipeline<Src, S, V, R>
where
    Src: MessageSource + 'static,
    S: Strategy + 'static,
    V: Venue + 'static,
    R: Rings,
{
    /// Joins the stages with rings of `R`. `fused`: the feed takes one message per duty cycle
    /// (see the module doc). Full-ring events are counted as `ring.<name>.full`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Src,
        feed: FeedStage,
        strategy: StrategyStage<S>,
        risk: RiskStage,
        gateway: GatewayStage<V>,
        rings: RingCapacities,
        fused: bool,
        counters: &CountersWriter,
    ) -> Result<Self, PipelineError> {
        let full = |name: &str| counters.allocate(&label::ring_full(name), counter_type::RING_FULL);
        let (market_tx, market_rx) = R::link(rings.market)?;
        let (to_risk_tx, to_risk_rx) = R::link(rings.orders)?;
        let (to_gateway_tx, to_gateway_rx) = R::link(rings.orders)?;
        let (rejects_tx, rejects_rx) = R::link(rings.reports)?;
        let (reports_strategy_tx, reports_strategy_rx) = R::link(rings.reports)?;
        let (reports_risk_tx, reports_risk_rx) = R::link(rings.reports)?;
        let timer_interval_ticks =
            (agents::STRATEGY_TIMER_INTERVAL_NS as f64 * strategy.ticks_per_ns()) as u64;
        Ok(Pipeline {
            feed: FeedAgent {
                source,
                stage: feed,
                out: Outbox::with_spill(
                    market_tx,
                    FeedStage::RECORDS_PER_MESSAGE_MAX,
                    Some(full("market")?),
                ),
                messages_per_cycle: if fused {
                    1
                } else {
                    agents::INPUTS_PER_CYCLE_MAX
                },
                done: false,
                done_flag: Arc::new(AtomicBool::new(false)),
            },
            strategy: StrategyAgent {
                stage: strategy,
                market: market_rx,
                reports: reports_strategy_rx,
                rejects: rejects_rx,
                out: Outbox::with_spill(
                    to_risk_tx,
                    agents::STRATEGY_SPILL_MAX,
                    Some(full("to_risk")?),
                ),
                next_timer_tsc: 0,
                timer_interval_ticks,
            },
            risk: RiskAgent {
                stage: risk,
                input: to_risk_rx,
                reports: reports_risk_rx,
                out: Outbox::new(to_gateway_tx, Some(full("to_gateway")?)),
                rejects: Outbox::new(rejects_tx, Some(full("rejects")?)),
            },
            gateway: GatewayAgent {
                stage: gateway,
                input: to_gateway_rx,
                to_strategy: Outbox::with_spill(
                    reports_strategy_tx,
                    agents::REPORTS_PER_CYCLE_MAX,
                    Some(full("reports_to_strategy")?),
                ),
                to_risk: Outbox::with_spill(
                    reports_risk_tx,
                    agents::REPORTS_PER_CYCLE_MAX,
                    Some(full("reports_to_risk")?),
                ),
                venue_poll_in: 0,
            },
        })
    }

    /// Builds every stage of `spec` and joins them: the stages journal into `journal` (one
    /// writer id each, [`writer_id`]) and count into `counters`. `fused` as in
    /// [`new`](Self::new). Cold path.
    pub fn assemble(
        spec: PipelineSpec<S>,
        source: Src,
        venue: V,
        journal: &Journal,
        counters: &CountersWriter,
        fused: bool,
    ) -> Result<(Self, PipelineControls<S::Params>), PipelineError> {
        // The journal's clock: the machine's, or a backtest's virtual one. Nothing in the
        // stages reads another.
        let clock = StageClock {
            clock: journal.clock(),
            calibration: journal.calibration(),
        };
        let instruments_len = spec.instruments.len();
        let symbols: Vec<String> = (0..instruments_len as u32)
            .map(|id| {
                spec.instruments
                    .get(id)
                    .map_or_else(|| id.to_string(), |i| i.symbol.to_string())
            })
            .collect();
        let feed = FeedStage::new(
            Decoder::new(spec.instruments),
            journal.appender(writer_id::FEED)?,
            0,
            clock.clone(),
            counters,
        )?;
        let (params_tx, params_rx) = params_mailbox();
        let strategy = StrategyStage::new(
            instruments_len,
            spec.traded,
            spec.book_limits,
            spec.feature_config,
            OrderSink::new(spec.strategy_id, spec.first_client_order_id),
            Some(params_rx),
            journal.appender(writer_id::STRATEGY)?,
            clock.clone(),
            counters,
        )?;
        let mut strategy = strategy;
        strategy.publish_books(counters, |id| symbols[id as usize].clone())?;
        strategy.set_feature_journal(spec.feature_journal, spec.strategy_id);
        let (strategy_commands_tx, strategy_commands_rx) =
            rtrb::RingBuffer::new(COMMANDS_PENDING_MAX);
        strategy.set_commands(strategy_commands_rx);
        let (trading_tx, trading_rx) = rtrb::RingBuffer::new(COMMANDS_PENDING_MAX);
        let (limits_tx, limits_rx) = params_mailbox();
        let mut risk = RiskStage::new(
            RiskEngine::new(spec.risk_limits)?,
            Some(limits_rx),
            journal.appender(writer_id::RISK)?,
            clock.clone(),
            counters,
        )?;
        risk.set_commands(trading_rx);
        let gateway = GatewayStage::new(
            venue,
            journal.appender(writer_id::GATEWAY)?,
            clock,
            counters,
        )?;
        let pipeline = Pipeline::new(
            source, feed, strategy, risk, gateway, spec.rings, fused, counters,
        )?;
        let controls = PipelineControls {
            params: params_tx,
            limits: limits_tx,
            trading: TradingControl {
                risk: trading_tx,
                strategy: strategy_commands_tx,
            },
            source_done: pipeline.feed.done_flag.clone(),
        };
        Ok((pipeline, controls))
    }

    /// Runs every agent in turn on this thread until the source is done and a whole round
    /// does no work: deterministic, for tests and replays.
    pub fn run_to_completion(&mut self) {
        while self.run_rounds(1) > 0 || !self.feed.is_done() {}
    }

    /// Runs every agent in turn on this thread, `rounds` times (a fused duty cycle each);
    /// returns the work done.
    pub fn run_rounds(&mut self, rounds: usize) -> usize {
        let mut work = 0;
        for _ in 0..rounds {
            work += self.feed.do_work()
                + self.strategy.do_work()
                + self.risk.do_work()
                + self.gateway.do_work();
            work += self.feed.do_deferred_work() + self.strategy.do_deferred_work();
        }
        work
    }

    /// Runs duty cycles, as the fused layout does, until none has work: what
    /// `while run_rounds(1) > 0 {}` does, but without that loop's last round when every agent
    /// says a cycle would do nothing (`is_settled`: links empty, outboxes holding nothing, no
    /// command waiting, no timer due, no report or message ready). Such a round changes
    /// nothing, and cost a backtest about 400 instructions an event (callgrind). With links,
    /// venues or sources that cannot tell, it runs that round as the loop does.
    pub fn settle(&mut self) {
        while self.run_rounds(1) > 0 {
            if self.is_settled() {
                // Checked in every test build: the round skipped finds nothing.
                debug_assert_eq!(self.run_rounds(1), 0, "settled, yet a duty cycle had work");
                return;
            }
        }
    }

    /// Whether a duty cycle of every agent would do nothing now (see [`settle`](Self::settle)).
    pub fn is_settled(&self) -> bool {
        self.feed.is_settled()
            && self.strategy.is_settled()
            && self.risk.is_settled()
            && self.gateway.is_settled()
    }

    /// Starts the runners of `layout` (validated first). `counters` gets each runner's duty
    /// cycles and longest cycle.
    pub fn start(
        self,
        layout: &Layout,
        counters: &CountersWriter,
    ) -> Result<RunningPipeline, PipelineError> {
        layout.validate()?;
        let runner_counters = |role: &str| RunnerCounters::allocate(counters, role);
        let handles = match *layout {
            Layout::Fused { pipeline } => {
                let fused = composite!(self.feed, self.strategy, self.risk, self.gateway);
                vec![spawn(fused, pipeline, Some(runner_counters("pipeline")?))?]
            }
            Layout::Spread {
                feed,
                strategy,
                risk,
                gateway,
            } => {
                let counters = [
                    runner_counters("gateway")?,
                    runner_counters("risk")?,
                    runner_counters("strategy")?,
                    runner_counters("feed")?,
                ];
                let [c_gateway, c_risk, c_strategy, c_feed] = counters;
                // Downstream first, so each agent's consumer is running when it starts; if one
                // cannot start, those already running are stopped.
                let mut started = Vec::with_capacity(4);
                let mut start = |spawned: Result<RunnerHandle, RunnerError>| match spawned {
                    Ok(handle) => {
                        started.push(handle);
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                let result = start(spawn(self.gateway, gateway, Some(c_gateway)))
                    .and_then(|()| start(spawn(self.risk, risk, Some(c_risk))))
                    .and_then(|()| start(spawn(self.strategy, strategy, Some(c_strategy))))
                    .and_then(|()| start(spawn(self.feed, feed, Some(c_feed))));
                // Stopped upstream first: each drains into a consumer still running.
                started.reverse();
                if let Err(e) = result {
                    let _ = crate::runner::stop_in_order(started);
                    return Err(e.into());
                }
                started
            }
        };
        Ok(RunningPipeline { handles })
    }
}

/// A started pipeline.
pub struct RunningPipeline {
    handles: Vec<RunnerHandle>,
}

impl RunningPipeline {
    /// Stops the agents upstream first, each drained before the next, and waits for them.
    pub fn stop(self) -> Result<(), RunnerError> {
        crate::runner::stop_in_order(self.handles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idle::IdleStrategy;

    #[derive(Debug, serde::Deserialize)]
    struct Config {
        layout: Layout,
    }

    fn parse(text: &str) -> Result<Layout, String> {
        toml::from_str::<Config>(text)
            .map(|c| c.layout)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn layouts_come_from_config_with_a_core_and_idle_strategy_per_agent() {
        let spread = parse(
            r#"
            [layout]
            kind = "spread"
            feed = { core = 0, idle = "busy_spin" }
            strategy = { core = 1, idle = "yield" }
            risk = { idle = "backoff" }
            gateway = { core = 3 }
            "#,
        )
        .unwrap();
        let Layout::Spread {
            feed,
            strategy,
            risk,
            gateway,
        } = spread
        else {
            panic!("{spread:?}");
        };
        assert_eq!((feed.core_id, feed.idle), (Some(0), IdleStrategy::BusySpin));
        assert_eq!(strategy.idle, IdleStrategy::Yield);
        assert_eq!((risk.core_id, risk.idle), (None, IdleStrategy::Backoff));
        assert_eq!(
            (gateway.core_id, gateway.idle),
            (Some(3), IdleStrategy::Backoff)
        );
        let fused =
            parse("[layout]\nkind = \"fused\"\npipeline = { core = 1, idle = \"busy_spin\" }")
                .unwrap();
        assert!(fused.is_fused());
        assert_eq!(fused.runners()[0].1.core_id, Some(1));
    }

    #[test]
    fn bad_layouts_are_errors_that_name_the_key() {
        for (text, expected) in [
            ("[layout]\nkind = \"diagonal\"", "diagonal"),
            (
                "[layout]\nkind = \"fused\"\npipeline = { core = 1, idle = \"nap\" }",
                "nap",
            ),
            (
                "[layout]\nkind = \"fused\"\npipeline = { cores = 1 }",
                "cores",
            ),
            (
                "[layout]\nkind = \"fused\"\npipeline = {}\nfeed = {}",
                "feed",
            ),
            ("[layout]\nkind = \"spread\"\nfeed = {}", "strategy"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        // Well formed, but not for this machine: the error names the agent and the core.
        let far = parse("[layout]\nkind = \"fused\"\npipeline = { core = 100000 }").unwrap();
        let err = far.validate().unwrap_err().to_string();
        assert!(err.contains("pipeline") && err.contains("100000"), "{err}");
    }
}
