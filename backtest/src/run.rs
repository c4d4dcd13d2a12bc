//! The run loop: one thread, one virtual clock, four kinds of event in time order (five when a
//! strategy uses its timer).
//!
//! ```text
//!   venue side                                   engine side
//!   market message i at its venue time v_i  -->  the same bytes at their receive time r_i
//!   request arrives at sent + entry latency <--  the gateway sends (encoded by the live encoder)
//!   report made at the venue's time         -->  report arrives at + response latency
//! ```
//!
//! The clock moves to the earliest pending event; at one time the venue's events come first
//! (market, then requests), then the engine's (reports, then market data, then the strategies'
//! timer, when a strategy uses it). After each engine event the pipeline's agents run in turn
//! (`Pipeline::settle`) until none has work: the fused layout's duty cycle, with no time
//! passing (what they send may leave later: see `ComputeTime`). Venue time is the receive time
//! minus the feed latency (constant), so it never runs ahead of what the input has already
//! been read up to: the loop reads one message ahead.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::{Context, Result, bail};
use levibot_daemon::config::{DaemonConfig, StrategySettings};
use levibot_daemon::strategies::PerInstrument;
use levibot_engine::book::BookLimits;
use levibot_engine::pipeline::{
    MessageSource, OwnedSnapshot, Pipeline, PipelineControls, PipelineSpec, Polled, RingCapacities,
    TradedInstrument, TradingCommand,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::strategy::maker::Maker;
use levibot_engine::strategy::signal::Signal;
use levibot_engine::strategy::{Grid, Strategy};
use levibot_gateway::fix::OrderEncoder;
use levibot_shm::codes::{label, writer_id};
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::{Journal, JournalConfig};

use crate::clock::VirtualClock;
use crate::exchange::VenueMessage;
use crate::exchange::{Exchange, ExchangeConfig};
use crate::input::{InputKind, InputSource, TradingChange, decoded};
use crate::latency::{LatencyModel, RoundTrips};
use crate::results::ResultEvent;
use crate::venue::{BacktestVenue, ComputeTime, OrderLatency};
use crate::window::{TradeGate, Until, Window};

mod venue_order;
use venue_order::VenueOrder;

/// Counter slots of a backtest's counters file (the daemon's size).
pub const COUNTERS_CAPACITY: usize = 1024;
/// Longest a run goes on after its last market message: requests and reports in flight
/// arrive, the strategies answer them, then it stops.
pub const DRAIN_AFTER_INPUT_NS: u64 = 10_000_000_000;

/// Longest a recorded feed gap (receive time minus venue time) is taken to be by default; a
/// longer one is cut to it and counted (`RunStats::feed_gaps_cut`): a clock that was off, or
/// a recording whose venue times mean nothing.
pub const FEED_GAP_MAX_NS: u64 = 1_000_000_000;
/// Most messages read ahead of the engine (those within the feed gap of the next venue event).
pub const READ_AHEAD_MAX: usize = 1 << 20;

/// When the venue made a market message, from when it was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedLatency {
    /// As the data says: Tardis' `timestamp`, else the message's own event time (`E`, a
    /// trade's `T`; a book ticker, which has none, trails by its instrument's last gap). A gap
    /// over `gap_max_ns` is cut to it.
    Recorded { gap_max_ns: u64 },
    /// Every message was made this long before it was received, ns.
    Constant(u64),
}

impl FeedLatency {
    /// The most a message's venue time may trail its receive time.
    pub fn gap_max_ns(&self) -> u64 {
        match *self {
            FeedLatency::Recorded { gap_max_ns } => gap_max_ns,
            FeedLatency::Constant(ns) => ns,
        }
    }
}

impl std::fmt::Display for FeedLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedLatency::Recorded { gap_max_ns } => {
                write!(f, "recorded (gaps over {} µs cut)", gap_max_ns / 1000)
            }
            FeedLatency::Constant(ns) => write!(f, "{} µs", *ns as f64 / 1000.0),
        }
    }
}

/// How a run is simulated.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub exchange: ExchangeConfig,
    /// Constant order latency, and the fallback of a sampled one.
    pub order_latency: OrderLatency,
    /// Round trips to sample order latency from (`None`: `order_latency` always).
    pub order_round_trips: Option<std::sync::Arc<RoundTrips>>,
    /// With round trips: hand them out in the order the journal's requests were sent
    /// (`LatencyModel::Replayed`) rather than drawn.
    pub order_latency_in_order: bool,
    /// When the venue made each market message.
    pub feed_latency: FeedLatency,
    /// Names the run (the journal's epoch); the same input, config and seed give the same
    /// bytes.
    pub seed: u64,
    /// Bytes per journal segment (a power of two).
    pub segment_size: usize,
    /// What the engine's own work costs on the virtual clock.
    pub compute_time: ComputeTime,
    /// Whether the run's journal holds the market data (the feed's bytes and records), as a
    /// live journal does; without it, only what the engine did (orders, reports, risk).
    pub journal_market: bool,
    /// The part of the input that is evaluated (`--trade-from`, `--until`).
    pub window: Window,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            exchange: ExchangeConfig::default(),
            order_latency: OrderLatency {
                entry_ns: 100_000,
                response_ns: 100_000,
            },
            order_round_trips: None,
            order_latency_in_order: false,
            feed_latency: FeedLatency::Recorded {
                gap_max_ns: FEED_GAP_MAX_NS,
            },
            seed: 1,
            segment_size: 16 << 20,
            compute_time: ComputeTime::Off,
            journal_market: true,
            window: Window::default(),
        }
    }
}

/// What a run did, besides its journal and the events it handed to the results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub messages: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Our position per instrument at the end, as the venue sees it (quantity units).
    pub venue_positions: Vec<i64>,
    /// Orders still working at the venue at the end.
    pub working_orders: usize,
    /// Market messages whose recorded feed gap was longer than the most allowed, and cut.
    pub feed_gaps_cut: u64,
    /// Market messages whose venue time came before what the venue had already applied (a
    /// gap longer than any before it): applied at the venue's time then.
    pub feed_late: u64,
    /// Orders risk refused, by check (`risk.<check>`), from the run's counters.
    pub risk_rejects: Vec<(String, u64)>,
}

/// A market message read from the input, waiting for the venue and then the engine. Boxed
/// where it waits (the read-ahead queue, the spares, the engine's source), its boxes reused:
/// moved by value it was four copies of 230 bytes a message (callgrind).
struct Pending {
    venue_ns: u64,
    recv_ns: u64,
    kind: InputKind,
    instrument_id: Option<u32>,
    symbol: String,
    bytes: Vec<u8>,
    /// The message as the venue applies it, decoded once when read.
    venue: VenueMessage,
    at_venue: bool,
    /// Read order, which breaks ties of venue time.
    seq: u64,
}

/// The engine's feed source: the one message the loop hands it.
#[derive(Default)]
struct Handed {
    current: Option<Box<Pending>>,
    taken: bool,
}

impl MessageSource for Handed {
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.taken {
            return Polled::Idle;
        }
        let Some(p) = &self.current else {
            return Polled::Idle;
        };
        self.taken = true;
        match (p.kind, p.instrument_id) {
            (InputKind::Stream, _) => Polled::Message {
                bytes: &p.bytes,
                due_tsc: now_tsc,
            },
            (InputKind::Snapshot, Some(instrument_id)) => Polled::Snapshot {
                instrument_id,
                body: &p.bytes,
            },
            // Decoded records are handed on by the loop itself (`FeedAgent::hand_on_decoded`).
            (InputKind::Snapshot, None) | (InputKind::Trading, _) | (InputKind::Decoded(_), _) => {
                Polled::Idle
            }
        }
    }

    fn may_have_message(&self) -> bool {
        !self.taken && self.current.is_some()
    }
}

/// Runs the config's strategies over `input`, journaling into `journal_dir` (which must not
/// hold a journal), handing every result event to `results`.
pub fn run(
    config: &DaemonConfig,
    input: &mut dyn InputSource,
    journal_dir: &Path,
    run_config: &RunConfig,
    results: &mut dyn FnMut(&ResultEvent),
) -> Result<RunStats> {
    let input = &mut Until::new(input, run_config.window.until_ns);
    match &config.strategy {
        StrategySettings::Maker(params) => {
            let strategies = params
                .iter()
                .enumerate()
                .map(|(id, p)| Ok(PerInstrument::new(Maker::new(id as u32, *p)?, id as u32)))
                .collect::<Result<Vec<_>>>()?;
            run_with(config, strategies, input, journal_dir, run_config, results)
        }
        StrategySettings::Signal(params) => {
            let strategies = params
                .iter()
                .enumerate()
                .map(|(id, p)| Ok(PerInstrument::new(Signal::new(id as u32, *p)?, id as u32)))
                .collect::<Result<Vec<_>>>()?;
            run_with(config, strategies, input, journal_dir, run_config, results)
        }
    }
}

fn run_with<S: Strategy + 'static>(
    config: &DaemonConfig,
    strategies: Vec<S>,
    input: &mut dyn InputSource,
    journal_dir: &Path,
    run_config: &RunConfig,
    results: &mut dyn FnMut(&ResultEvent),
) -> Result<RunStats> {
    let instruments = &config.instruments;
    // The first message sets the clock's origin.
    let Some(first) = input.next_event()? else {
        bail!("the input has no market message");
    };
    let first_recv_ns = first.recv_ns;
    // Venue events may come up to the longest feed gap before the first receive time.
    let earliest = first_recv_ns.saturating_sub(run_config.feed_latency.gap_max_ns());
    let origin = earliest / 1_000_000_000 * 1_000_000_000;
    let clock = VirtualClock::starting_at(origin);
    let mut queue: VecDeque<Box<Pending>> = VecDeque::new();
    queue.push_back(pending(&first, instruments, None, 0));

    if levibot_shm::list_segments(journal_dir).is_ok_and(|s| !s.is_empty()) {
        bail!(
            "{} already holds a journal: give a new directory",
            journal_dir.display()
        );
    }
    let journal = Journal::open_with_clock(
        &JournalConfig {
            segment_size: run_config.segment_size,
            // Each segment's pages at once, not a fault per page written (measured: faults
            // were a tenth of a replay's time).
            prefault: true,
            ..JournalConfig::new(journal_dir)
        },
        clock.journal_clock(run_config.seed.max(1)),
    )
    .with_context(|| format!("opening the journal in {}", journal_dir.display()))?;
    let counters = CountersWriter::create(
        levibot_shm::paths::counters_path(journal_dir),
        COUNTERS_CAPACITY,
        journal.epoch(),
    )?;
    let mut events = journal.appender(writer_id::DAEMON)?;
    levibot_daemon::run::journal_instruments(&mut events, instruments)?;
    events.append(
        levibot_shm::records::record_type::CONFIG_TEXT,
        config.text.as_bytes(),
    )?;
    levibot_daemon::run::journal_models(&mut events, config, 0)?;

    let encoder = OrderEncoder::new(
        &config.order_entry.session.sender_comp_id,
        &config.order_entry.session.target_comp_id,
        instruments,
    )?;
    let exchange = Exchange::new(instruments, run_config.exchange)?;
    let latency = match &run_config.order_round_trips {
        None => LatencyModel::Constant(run_config.order_latency),
        Some(trips) if run_config.order_latency_in_order => LatencyModel::Replayed {
            trips: trips.clone(),
            fallback: run_config.order_latency,
            rng: fastrand::Rng::with_seed(run_config.seed),
            next: [0; 3],
        },
        Some(trips) => LatencyModel::Sampled {
            trips: trips.clone(),
            fallback: run_config.order_latency,
            rng: fastrand::Rng::with_seed(run_config.seed),
        },
    };
    let venue = BacktestVenue::new(encoder, exchange, clock.clone(), latency)
        .with_compute_time(run_config.compute_time);
    let traded = strategies
        .into_iter()
        .enumerate()
        .map(|(id, strategy)| {
            let i = instruments
                .get(id as u32)
                .context("a strategy without an instrument")?;
            Ok(TradedInstrument {
                grid: Grid {
                    tick_units: i.tick_units,
                    lot_units: i.lot_units,
                },
                snapshot: OwnedSnapshot::none(id as u32),
                strategy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let spec = PipelineSpec {
        instruments: instruments.clone(),
        traded,
        risk_limits: config.risk_limits,
        sender_comp_id: config.order_entry.session.sender_comp_id.clone(),
        target_comp_id: config.order_entry.session.target_comp_id.clone(),
        rings: RingCapacities::default(),
        book_limits: BookLimits::DEFAULT,
        feature_config: config.features.config,
        feature_journal: config.features.journal,
        strategy_id: config.strategy_id,
        first_client_order_id: 1,
        first_msg_seq_num: 1,
    };
    let (mut pipeline, mut controls) = Pipeline::<_, _, _, Rtrb>::assemble(
        spec,
        Handed::default(),
        venue,
        &journal,
        &counters,
        true,
    )?;

    pipeline
        .feed
        .stage_mut()
        .set_journal_market(run_config.journal_market);
    // A window's warm-up: the engine is held halted until the gate opens (`crate::window`).
    let mut gate = TradeGate::new(run_config.window.trade_from_ns);
    if let Some(command) = gate.hold() {
        send_trading(&mut controls, command, first_recv_ns)?;
        pipeline.settle();
    }
    let mut stats = RunStats {
        first_ns: first_recv_ns,
        ..RunStats::default()
    };
    let mut input_done = false;
    // Messages the engine is done with, their buffers reused.
    let mut spare: Vec<Box<Pending>> = Vec::new();
    let mut end_ns = u64::MAX;
    // Messages not yet at the venue, by venue time then read order; `queue[i]` has read
    // number `queue_base + i`.
    let mut at_venue_next = VenueOrder::default();
    let mut queue_base = 0u64;
    let mut next_seq = 1u64;
    let mut horizon = Horizon::default();
    let mut last_read_recv = first_recv_ns;
    {
        let venue = pipeline.gateway.stage_mut().venue_mut();
        let p = &mut queue[0];
        admit(
            p,
            run_config,
            &mut venue.exchange,
            &mut stats,
            &mut at_venue_next,
            &mut horizon,
        );
    }
    loop {
        // Read ahead while an unread message could still come first at the venue: any has a
        // venue time of at least its receive time minus the longest gap.
        while !input_done
            && at_venue_next
                .peek()
                .is_none_or(|(v, _)| v + horizon.gap_seen_ns >= last_read_recv)
        {
            if queue.len() >= READ_AHEAD_MAX {
                bail!(
                    "more than {READ_AHEAD_MAX} messages were received within the feed gap \
                     ({} ns) of one venue event: a shorter gap, or data in time order",
                    horizon.gap_seen_ns
                );
            }
            match input.next_event()? {
                Some(event) => {
                    let mut p = pending(&event, instruments, spare.pop(), next_seq);
                    next_seq += 1;
                    // Receive times never go back: a recording that does is taken in order.
                    p.recv_ns = p.recv_ns.max(last_read_recv);
                    last_read_recv = p.recv_ns;
                    let venue = pipeline.gateway.stage_mut().venue_mut();
                    admit(
                        &mut p,
                        run_config,
                        &mut venue.exchange,
                        &mut stats,
                        &mut at_venue_next,
                        &mut horizon,
                    );
                    queue.push_back(p);
                }
                None => {
                    input_done = true;
                    end_ns = last_read_recv.saturating_add(DRAIN_AFTER_INPUT_NS);
                }
            }
        }
        let next_market = at_venue_next.peek().map(|(v, _)| v);
        let next_delivery = queue.front().filter(|p| p.at_venue).map(|p| p.recv_ns);
        // The strategies' timer, if they use it: the clock stops there too.
        let next_timer = pipeline
            .strategy
            .next_timer_tsc()
            .map(|tick| clock.unix_ns_of(tick));
        let venue = pipeline.gateway.stage_mut().venue_mut();
        let times = [
            next_market,
            venue.next_arrival_ns(),
            venue.next_report_ns(),
            next_delivery,
            next_timer,
            gate.opens_at(),
        ];
        let Some(t) = times.iter().flatten().copied().min() else {
            break;
        };
        if t > end_ns {
            break;
        }
        clock.advance_to(t);
        let now = clock.now_ns();
        if next_market == Some(t) {
            let Some((_, seq)) = at_venue_next.pop() else {
                unreachable!("peeked above");
            };
            let p = &mut queue[(seq - queue_base) as usize];
            p.at_venue = true;
            horizon.venue_ns = t;
            venue.exchange.apply(&p.venue, now);
            venue.collect_answers();
        } else if venue.next_arrival_ns() == Some(t) {
            venue.deliver_requests(now);
        } else {
            // The window opens before the engine's first event at its time.
            if let Some(command) = gate.open_at(now) {
                send_trading(&mut controls, command, now)?;
                pipeline.gateway.stage_mut().venue_mut().begin_engine_work();
                pipeline.settle();
            }
            let venue = pipeline.gateway.stage_mut().venue_mut();
            if next_delivery == Some(t) && venue.next_report_ns() != Some(t) {
                let p = queue.pop_front().expect("found above");
                queue_base += 1;
                stats.messages +=
                    u64::from(matches!(p.kind, InputKind::Stream | InputKind::Decoded(_)));
                stats.last_ns = p.recv_ns;
                if p.kind == InputKind::Trading {
                    let change = p.bytes.first().copied().and_then(TradingChange::from_code);
                    if let Some(command) = change.and_then(|c| gate.change(c)) {
                        send_trading(&mut controls, command, p.recv_ns)?;
                    }
                    spare.push(p);
                } else if let InputKind::Decoded(record_type) = p.kind {
                    // The rounds before left the ring to the strategy empty.
                    if !pipeline
                        .feed
                        .hand_on_decoded(decoded::market_records(record_type, &p.bytes))
                    {
                        bail!("the feed's ring is full at {} ns", p.recv_ns);
                    }
                    spare.push(p);
                } else {
                    let source = pipeline.feed.source_mut();
                    if let Some(old) = source.current.replace(p) {
                        spare.push(old);
                    }
                    source.taken = false;
                }
            }
            pipeline.gateway.stage_mut().venue_mut().begin_engine_work();
            pipeline.settle();
        }
        let venue = pipeline.gateway.stage_mut().venue_mut();
        for event in venue.exchange.drain_results() {
            results(&event);
        }
        for event in venue.results.drain(..) {
            results(&event);
        }
    }
    pipeline.settle();
    let venue = pipeline.gateway.stage().venue();
    stats.venue_positions = (0..instruments.len() as u32)
        .map(|id| venue.exchange.position(id))
        .collect();
    stats.working_orders = venue.exchange.working_order_ids().len();
    let reader = CountersReader::open(levibot_shm::paths::counters_path(journal_dir))?;
    stats.risk_rejects = reader
        .counters()
        .into_iter()
        .filter_map(|c| {
            let check = c.label.strip_prefix(label::RISK_REJECT_PREFIX)?;
            (c.value > 0).then(|| (format!("risk.{check}"), c.value as u64))
        })
        .collect();
    Ok(stats)
}

/// Hands a trading command to the agents.
fn send_trading<P>(
    controls: &mut PipelineControls<P>,
    command: TradingCommand,
    at_ns: u64,
) -> Result<()> {
    // The agents take commands every duty cycle: the mailbox has room.
    if !controls.trading.send(command) {
        bail!("the trading mailbox is full at {at_ns} ns");
    }
    Ok(())
}

/// A message read from the input, its bytes copied into `reuse`'s buffers (a message the
/// engine is done with), if given.
fn pending(
    event: &crate::input::InputEvent<'_>,
    instruments: &levibot_gateway::instrument::InstrumentTable,
    reuse: Option<Box<Pending>>,
    seq: u64,
) -> Box<Pending> {
    let mut p = reuse.unwrap_or_else(|| {
        Box::new(Pending {
            venue_ns: 0,
            recv_ns: 0,
            kind: InputKind::Stream,
            instrument_id: None,
            symbol: String::new(),
            bytes: Vec::new(),
            venue: VenueMessage::default(),
            at_venue: false,
            seq: 0,
        })
    });
    // Only snapshots name their symbol apart from their bytes.
    p.symbol.clear();
    if let Some(symbol) = event.symbol {
        p.symbol.push_str(symbol);
        p.symbol.make_ascii_uppercase();
    }
    p.bytes.clear();
    p.bytes.extend_from_slice(event.bytes);
    // Set by `venue_time` once the venue can read the message.
    p.venue_ns = event.exchange_ns.unwrap_or(event.recv_ns);
    p.recv_ns = event.recv_ns;
    p.kind = event.kind;
    p.instrument_id = event
        .symbol
        .and_then(|_| instruments.find(p.symbol.as_bytes()))
        .map(|i| i.id);
    p.at_venue = false;
    p.seq = seq;
    p
}

/// Stamps a message read from the input with its venue time and puts it in line for the
/// venue; a trading change is the engine's alone, and waits for no venue.
fn admit(
    p: &mut Pending,
    run_config: &RunConfig,
    exchange: &mut Exchange,
    stats: &mut RunStats,
    at_venue_next: &mut VenueOrder,
    horizon: &mut Horizon,
) {
    if p.kind == InputKind::Trading {
        p.at_venue = true;
        return;
    }
    exchange.decode(p.kind, p.instrument_id, &p.bytes, &mut p.venue);
    p.venue_ns = venue_time(p, &run_config.feed_latency, exchange, stats);
    if p.venue_ns < horizon.venue_ns {
        stats.feed_late += 1;
        p.venue_ns = horizon.venue_ns;
    }
    horizon.gap_seen_ns = horizon.gap_seen_ns.max(p.recv_ns - p.venue_ns);
    at_venue_next.push(p.venue_ns, p.seq);
}

/// How far ahead of the engine the loop reads: as far as the longest feed gap seen so far
/// (an unread message may come at the venue that much before it was received), so that it
/// holds milliseconds of messages, not the most a gap may be. A message whose gap is longer
/// than any before it may then come after the venue applied later ones: it is applied at the
/// venue's time, counted (`feed_late`).
#[derive(Clone, Copy, Debug, Default)]
struct Horizon {
    gap_seen_ns: u64,
    /// The venue time of the last market message applied.
    venue_ns: u64,
}

/// When the venue made `p`: never after it was received, never more than the longest gap
/// before.
fn venue_time(
    p: &Pending,
    feed: &FeedLatency,
    exchange: &mut Exchange,
    stats: &mut RunStats,
) -> u64 {
    let said = match *feed {
        FeedLatency::Constant(ns) => return p.recv_ns.saturating_sub(ns),
        // Tardis says it apart from the bytes (kept in `venue_ns` by `pending`).
        FeedLatency::Recorded { .. } if p.venue_ns != p.recv_ns => p.venue_ns,
        FeedLatency::Recorded { .. } if p.venue.event.is_stream() => {
            exchange.venue_time_ns(&p.venue, p.recv_ns)
        }
        FeedLatency::Recorded { .. } => p.recv_ns,
    };
    let earliest = p.recv_ns.saturating_sub(feed.gap_max_ns());
    if said < earliest {
        stats.feed_gaps_cut += 1;
    }
    said.clamp(earliest, p.recv_ns)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use levibot_engine::pipeline::agents::STRATEGY_TIMER_INTERVAL_NS;
    use levibot_engine::strategy::{MarketView, OrderSink};
    use levibot_gateway::capture::testdata_dir;
    use levibot_shm::records::ExecutionReport;

    use super::*;
    use crate::input::synthetic::SyntheticInput;

    /// Writes down when its timer ran.
    struct Ticking {
        uses_timer: bool,
        ran_at: Arc<Mutex<Vec<u64>>>,
    }

    impl Strategy for Ticking {
        type Params = ();
        fn name(&self) -> &str {
            "ticking"
        }
        fn on_market(&mut self, _view: &MarketView<'_>, _out: &mut OrderSink) {}
        fn on_execution(&mut self, _report: &ExecutionReport, _out: &mut OrderSink) {}
        fn on_timer(&mut self, now_ns: u64, _out: &mut OrderSink) {
            self.ran_at.lock().unwrap().push(now_ns);
        }
        fn uses_timer(&self) -> bool {
            self.uses_timer
        }
        fn params(&self) {}
        fn set_params(&mut self, _params: ()) {}
    }

    fn maker_config() -> DaemonConfig {
        crate::session::read_config(&testdata_dir().join("../backtest/maker-nknusdt.toml")).unwrap()
    }

    /// When the timer of a `Ticking` strategy ran, over 5 messages 7 ms apart.
    fn timer_times(uses_timer: bool) -> Vec<u64> {
        let config = maker_config();
        let instrument = config.instruments.get(0).unwrap();
        let start = 1_700_000_000_000_000_000;
        let mut input = SyntheticInput::new(&[(instrument, 3500)], 5, 7, start, 7_000_000).unwrap();
        let ran_at = Arc::new(Mutex::new(Vec::new()));
        let strategy = Ticking {
            uses_timer,
            ran_at: ran_at.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        run_with(
            &config,
            vec![strategy],
            &mut input,
            &dir.path().join("journal"),
            &RunConfig::default(),
            &mut |_| {},
        )
        .unwrap();
        let times = ran_at.lock().unwrap().clone();
        times
            .into_iter()
            .filter(|t| (start..=start + 35_000_000).contains(t))
            .collect()
    }

    #[test]
    fn a_strategy_that_uses_its_timer_is_woken_every_interval_between_events() {
        let woken = timer_times(true);
        // 35 ms of market: a wake every 1 ms, none skipped for want of an event.
        assert!(woken.len() >= 34, "{woken:?}");
        for pair in woken.windows(2) {
            assert_eq!(pair[1] - pair[0], STRATEGY_TIMER_INTERVAL_NS, "{woken:?}");
        }
        // Without it, the clock stops only at events (5 messages, a snapshot, no more).
        let at_events = timer_times(false);
        assert!(at_events.len() <= 6, "{at_events:?}");
    }

    /// The maker's requests on 2,000 synthetic messages: when each left, when it was answered.
    fn requests_with(compute_time: ComputeTime) -> Vec<(u64, u64)> {
        let config = maker_config();
        let instrument = config.instruments.get(0).unwrap();
        let mut input = SyntheticInput::new(
            &[(instrument, 3500)],
            2000,
            11,
            1_700_000_000_000_000_000,
            100_000,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sent = Vec::new();
        let run_config = RunConfig {
            compute_time,
            ..RunConfig::default()
        };
        run(
            &config,
            &mut input,
            &dir.path().join("journal"),
            &run_config,
            &mut |e| {
                if let ResultEvent::Latency(l) = e {
                    sent.push((l.sent_ns, l.answered_ns));
                }
            },
        )
        .unwrap();
        sent
    }

    #[test]
    fn compute_time_delays_what_the_engine_sends_by_its_charge() {
        let free = requests_with(ComputeTime::Off);
        let charged = requests_with(ComputeTime::Constant(300_000));
        assert!(free.len() > 10, "{} requests", free.len());
        // The first decisions see the same market: each leaves 300 µs later, and is answered
        // after the same round trip (100 µs each way by default).
        let (free_sent, free_answered) = free[0];
        assert_eq!(charged[0], (free_sent + 300_000, free_answered + 300_000));
        assert_eq!(free_answered - free_sent, 200_000);
        // Measured: later than free, by what this machine took (generously bounded).
        let measured = requests_with(ComputeTime::Measured);
        assert!(
            measured[0].0 > free_sent,
            "{:?} vs {free_sent}",
            measured[0]
        );
        assert!(measured[0].0 < free_sent + 1_000_000_000);
        assert_eq!(measured[0].1 - measured[0].0, 200_000);
    }
}
