//! The daemon's life: start, recover, reconcile, trade, reload, kill, stop.
//!
//! ```text
//!  open journal -> recover state (from the last checkpoint) -> counters, journal start
//!   records, a checkpoint -> assemble pipeline
//!   (risk restored, halted; strategies paused) -> start agents -> control socket
//!   -> wait: order entry logged on, market data connected, every book synced   (start_timeout)
//!   -> reconcile: [mass status: risk takes the venue's view] then cancel-all at the venue,
//!      wait for the confirmations                                              (cancel_deadline)
//!   -> resume (unless the journal says halted) -> READY=1 -> running:
//!        every 10 ms: stop? SIGHUP? ; every 100 ms: gauges, heartbeat, watchdog, shadow
//!        replay ; every 1 s: maintain (retention) ; every 60 s: checkpoint
//!   -> SIGTERM/SIGINT: halt, cancel-all, wait (cancel_deadline) -> stop agents (drained)
//!   -> STOPPED record -> close the journal -> exit 0
//! ```
//!
//! Everything here is cold path: the agents run on their own threads; this thread and the
//! control socket's talk to them only through mailboxes (limits, parameters, the kill switch)
//! and read them only through the counters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use levibot_gateway::fix::{FixSession, SessionSeqNums};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::counters::{Counter, CountersReader, CountersWriter};
use levibot_shm::records::{
    DaemonEvent, InstrumentDef, Record, daemon_event, event_source, record_type,
};
use levibot_shm::{Appender, Journal};

use super::checkpoint::ShadowRecovery;
use super::config::{DaemonConfig, Reconcile, StrategySettings};
use super::control::{
    AccessPolicy, ControlHandler, ControlServer, InstrumentStatus, Peer, SessionStatus,
    StatusReport,
};
use super::recovery::{self, Recovered};
use super::strategies::{ParamsByInstrument, PerInstrument};
use crate::book::BookLimits;
use crate::features::FeatureConfig;
use crate::pipeline::stages::{counter_type, microquote_text};
use crate::pipeline::{
    FixVenue, OwnedSnapshot, Pipeline, PipelineSpec, RingCapacities, TradedInstrument,
    TradingCommand, TradingControl, WsFeed, WsFeedConfig, WsFeedStats, writer_id,
};
use crate::ring::Rtrb;
use crate::risk::{RiskLimits, TradingState};
use crate::strategy::maker::Maker;
use crate::strategy::signal::Signal;
use crate::strategy::{Grid, ParamsSender, Strategy};

/// Counters the daemon's counters file holds at most.
pub const COUNTERS_CAPACITY: usize = 1024;
/// How often the control loop wakes up.
const TICK: Duration = Duration::from_millis(10);
/// How often gauges, the journal heartbeat and the watchdog are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_millis(100);
/// How often the journal's housekeeping runs (pre-creating the next segment, retention).
const MAINTAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the state is checkpointed into the journal, so that recovery never needs a
/// segment retention has pruned (see `checkpoint.rs`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// Where the daemon is in its life (`daemon.phase`; also in `levictl status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Recovering = 1,
    Reconciling = 2,
    Running = 3,
    Stopping = 4,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Recovering => "recovering",
            Phase::Reconciling => "reconciling",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }

    /// The phase a `daemon.phase` counter value means (`None`: not one of them).
    pub fn from_code(value: i64) -> Option<Phase> {
        [
            Phase::Starting,
            Phase::Recovering,
            Phase::Reconciling,
            Phase::Running,
            Phase::Stopping,
        ]
        .into_iter()
        .find(|p| *p as i64 == value)
    }
}

/// Why the daemon could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("journal {dir}: {source}")]
    Journal {
        dir: PathBuf,
        source: levibot_shm::ShmError,
    },
    #[error("recovery from the journal: {0}")]
    Recovery(#[from] recovery::RecoveryError),
    #[error("{what}: {reason}")]
    Start { what: &'static str, reason: String },
    #[error("start-up timed out after {waited:?} waiting for {what} (daemon.start_timeout_ms)")]
    StartTimeout { what: String, waited: Duration },
    #[error("control socket: {0}")]
    Control(#[from] super::control::ControlError),
    #[error("stopping the agents: {0}")]
    Stop(String),
}

fn start_error(what: &'static str) -> impl FnOnce(String) -> DaemonError {
    move |reason| DaemonError::Start { what, reason }
}

/// How the daemon is run besides its config.
#[derive(Default)]
pub struct RunOptions {
    /// Set (by anyone) to stop the daemon as SIGTERM does.
    pub stop: Arc<AtomicBool>,
    /// Stop on SIGTERM and SIGINT, reload on SIGHUP (`levibotd run` and the demo).
    pub handle_signals: bool,
}

/// How the run ended.
#[derive(Clone, Debug, Default)]
pub struct StopReport {
    /// Open orders left when the cancel deadline passed (0: every cancel was confirmed).
    pub open_orders_left: i64,
    pub journal_dir: PathBuf,
}

/// Runs the daemon until it is stopped (signal or `options.stop`). Blocks.
pub fn run(config: DaemonConfig, options: RunOptions) -> Result<StopReport, DaemonError> {
    match config.strategy.clone() {
        StrategySettings::Maker(params) => {
            let strategies = make_strategies(&config.instruments, &params, Maker::new)?;
            run_with(config, options, strategies, params)
        }
        StrategySettings::Signal(params) => {
            let strategies = make_strategies(&config.instruments, &params, Signal::new)?;
            run_with(config, options, strategies, params)
        }
    }
}

fn make_strategies<S: Strategy, P: Copy>(
    instruments: &InstrumentTable,
    params: &[P],
    new: impl Fn(u32, P) -> Result<S, crate::strategy::maker::StrategyParamsError>,
) -> Result<Vec<PerInstrument<S>>, DaemonError> {
    let mut strategies = Vec::with_capacity(params.len());
    for (id, p) in params.iter().enumerate() {
        let id = id as u32;
        if instruments.get(id).is_none() {
            return Err(start_error("strategy")(format!(
                "no instrument with id {id}"
            )));
        }
        let strategy = new(id, *p).map_err(|e| start_error("strategy")(e.to_string()))?;
        strategies.push(PerInstrument::new(strategy, id));
    }
    Ok(strategies)
}

/// The strategy parameters of `config`, as the pipeline's mailbox takes them.
trait StrategyParamsOf: Copy + Send + std::fmt::Debug + 'static {
    fn of(config: &DaemonConfig) -> Option<Vec<Self>>;
}

impl StrategyParamsOf for crate::strategy::maker::MakerParams {
    fn of(config: &DaemonConfig) -> Option<Vec<Self>> {
        match &config.strategy {
            StrategySettings::Maker(p) => Some(p.clone()),
            StrategySettings::Signal(_) => None,
        }
    }
}

impl StrategyParamsOf for crate::strategy::signal::SignalParams {
    fn of(config: &DaemonConfig) -> Option<Vec<Self>> {
        match &config.strategy {
            StrategySettings::Signal(p) => Some(p.clone()),
            StrategySettings::Maker(_) => None,
        }
    }
}

fn run_with<S, P>(
    config: DaemonConfig,
    options: RunOptions,
    strategies: Vec<PerInstrument<S>>,
    _params: Vec<P>,
) -> Result<StopReport, DaemonError>
where
    S: Strategy<Params = P> + 'static,
    P: StrategyParamsOf,
{
    let started = Instant::now();
    let signals = Signals::install(&options)?;
    lock_memory(config.daemon.lock_memory);

    // The journal first: opening it repairs what a crash left at its tail, so that recovery
    // reads only committed frames.
    let journal_dir = config.journal.dir.clone();
    let journal = Journal::open(&config.journal).map_err(|source| DaemonError::Journal {
        dir: journal_dir.clone(),
        source,
    })?;
    let counters_path = levibot_shm::paths::counters_path(&journal_dir);
    let counters = CountersWriter::create(&counters_path, COUNTERS_CAPACITY, journal.epoch())
        .map_err(|e| start_error("counters file")(e.to_string()))?;
    let gauges = DaemonGauges::allocate(&counters)?;
    let phase = Arc::new(PhaseCell::new());
    phase.set(Phase::Recovering);
    gauges.phase.set(Phase::Recovering as i64);

    let recovered = recovery::recover(&journal_dir, config.risk_limits, &config.instruments)?;
    tracing::info!(
        found_journal = recovered.found_journal,
        open_orders = recovered.open_orders.len(),
        next_client_order_id = recovered.next_client_order_id,
        trading_state = ?recovered.trading_state,
        clean_stop = recovered.was_clean_stop,
        skipped = recovered.skipped,
        "state recovered from the journal"
    );

    // The shadow replays the journal as it grows (cold side), so that checkpoints are what a
    // recovery from scratch would compute.
    let mut shadow = ShadowRecovery::start(
        &journal,
        config.risk_limits,
        &config.instruments,
        &recovered,
    )?;
    let appender = |id: u16, what: &'static str| {
        journal
            .appender(id)
            .map_err(|e| start_error(what)(e.to_string()))
    };
    let mut events = appender(writer_id::DAEMON, "journal appender")?;
    journal_start(&mut events, &config, &recovered)?;
    // Before the first `maintain`: from here on, recovery needs nothing older.
    shadow
        .write_checkpoint(&mut events)
        .map_err(|e| start_error("checkpoint")(e.to_string()))?;

    // The pipeline: the live feed, the strategies, risk (restored), the FIX session.
    let feed = WsFeed::start(WsFeedConfig {
        addr: config.market_data.addr,
        host: config.market_data.host.clone(),
        symbols: (0..config.instruments.len() as u32)
            .filter_map(|id| {
                let i = config.instruments.get(id)?;
                Some((i.symbol.to_string(), id))
            })
            .collect(),
        streams: config.market_data.streams.clone(),
        ping_interval: config.market_data.ping_interval,
        pong_timeout: config.market_data.pong_timeout,
        tls: config.market_data.tls.clone(),
    })
    .map_err(|e| start_error("market data feed")(e.to_string()))?;
    let feed_stats = feed.stats();
    let seq_nums = recovered.seq_nums.unwrap_or_else(SessionSeqNums::default);
    let mut session = FixSession::new(
        config.order_entry.session.clone(),
        config.instruments.clone(),
        seq_nums,
    )
    .map_err(|e| start_error("FIX session")(e.to_string()))?;
    // An order journaled but never sent (a crash between the two) is then reported lost
    // when the venue asks for its number again, and risk lets it go.
    for (msg_seq_num, order) in &recovered.recent_sent {
        session.remember_sent(order, *msg_seq_num);
    }
    let venue = match &config.order_entry.tls {
        None => FixVenue::connect(config.order_entry.addr, session),
        Some(tls) => FixVenue::connect_tls(
            config.order_entry.addr,
            levibot_gateway::tls::server_name_of_host(&config.order_entry.host),
            tls,
            session,
        ),
    }
    .map_err(|e| start_error("order entry")(format!("{}: {e}", config.order_entry.url)))?
    .with_journal(appender(writer_id::VENUE_SESSION, "journal appender")?)
    .with_counters(&counters)
    .map_err(|e| start_error("counters")(e.to_string()))?;

    let traded = strategies
        .into_iter()
        .enumerate()
        .map(|(id, mut strategy)| {
            // What the journal says we hold: a restarted strategy sizes and skews from it.
            strategy.start_from_position(recovered.engine.position(id as u32));
            let i = config
                .instruments
                .get(id as u32)
                .expect("checked by make_strategies");
            TradedInstrument {
                grid: Grid {
                    tick_units: i.tick_units,
                    lot_units: i.lot_units,
                },
                snapshot: OwnedSnapshot::none(id as u32),
                strategy,
            }
        })
        .collect();
    let spec = PipelineSpec {
        instruments: config.instruments.clone(),
        traded,
        risk_limits: config.risk_limits,
        sender_comp_id: config.order_entry.session.sender_comp_id.clone(),
        target_comp_id: config.order_entry.session.target_comp_id.clone(),
        rings: RingCapacities::default(),
        book_limits: BookLimits::DEFAULT,
        feature_config: FeatureConfig::DEFAULT,
        strategy_id: config.strategy_id,
        first_client_order_id: recovered.next_client_order_id,
        first_msg_seq_num: seq_nums.next_sender,
    };
    let recovered_summary = RecoveredSummary {
        open_orders: recovered.open_orders.len(),
        trading_state: recovered.trading_state,
    };
    let (mut pipeline, controls) = Pipeline::<_, _, _, Rtrb>::assemble(
        spec,
        feed,
        venue,
        &journal,
        &counters,
        config.layout.is_fused(),
    )
    .map_err(|e| start_error("pipeline")(e.to_string()))?;
    pipeline.risk.stage_mut().restore(recovered.engine);

    // Nothing trades until reconciled: risk halted, strategies paused.
    let mut trading = controls.trading;
    trading.send(TradingCommand::Halt);
    let running = pipeline
        .start(&config.layout, &counters)
        .map_err(|e| start_error("agents")(e.to_string()))?;

    let reader = CountersReader::open(&counters_path)
        .map_err(|e| start_error("counters file")(e.to_string()))?;
    let shared = Arc::new(Shared {
        config: Mutex::new(config),
        trading: Mutex::new(trading),
        limits: Mutex::new(controls.limits),
        params: Mutex::new(Box::new(ParamsMailbox::<P> {
            sender: controls.params,
        })),
        events: Mutex::new(events),
        counters: CounterIndex::new(reader),
        phase: Arc::clone(&phase),
        started,
        reloads: AtomicU64::new(0),
        feed_stats,
        kill: Mutex::new(()),
    });
    let control = {
        let config = shared.config();
        ControlServer::bind(
            &config.daemon.control_socket,
            config.daemon.control_socket_mode,
            AccessPolicy::default(),
            Arc::clone(&shared) as Arc<dyn ControlHandler>,
        )?
    };

    let result = drive(
        &shared,
        &journal,
        &gauges,
        &signals,
        &options,
        &mut shadow,
        recovered_summary,
    );
    // Whatever happened, the agents are stopped and drained before the journal closes.
    control.shutdown();
    let stopped = running.stop().map_err(|e| DaemonError::Stop(e.to_string()));
    let open_orders_left = result?;
    stopped?;
    shared.event(
        daemon_event::STOPPED,
        event_source::DAEMON,
        0,
        open_orders_left,
    );
    tracing::info!(open_orders_left, "stopped");
    let report = StopReport {
        open_orders_left,
        journal_dir: journal.dir().to_owned(),
    };
    drop(shared);
    drop(journal);
    Ok(report)
}

/// Start-up after the agents run, the running loop, and the stop's cancels. Returns the open
/// orders left at the end.
fn drive(
    shared: &Arc<Shared>,
    journal: &Journal,
    gauges: &DaemonGauges,
    signals: &Signals,
    options: &RunOptions,
    shadow: &mut ShadowRecovery,
    recovered: RecoveredSummary,
) -> Result<i64, DaemonError> {
    let recovered_open_orders = recovered.open_orders;
    let (start_timeout, cancel_deadline) = {
        let c = shared.config();
        (c.daemon.start_timeout, c.daemon.cancel_deadline)
    };
    let mut watchdog = Watchdog::new(shared.config().daemon.heartbeat_timeout);
    let stop_requested =
        || signals.stop.load(Ordering::Acquire) || options.stop.load(Ordering::Acquire);

    // Sessions up and books synced.
    let deadline = Instant::now() + start_timeout;
    loop {
        let missing = shared.not_ready();
        if missing.is_empty() {
            break;
        }
        if stop_requested() {
            return Ok(shared.counters.get("risk.open_orders"));
        }
        if Instant::now() >= deadline {
            return Err(DaemonError::StartTimeout {
                what: missing.join(", "),
                waited: start_timeout,
            });
        }
        gauges.refresh(shared, journal);
        watchdog.feed_if_fresh(&shared.counters, gauges);
        catch_up(shadow);
        std::thread::sleep(TICK);
    }

    // Reconcile with the venue: what we may still have working there is cancelled.
    shared.phase.set(Phase::Reconciling);
    let reconcile = shared.config().daemon.reconcile;
    // Mass status first (risk's view becomes the venue's), then the cancel-all either way:
    // strategies cannot adopt orders they did not place.
    let status_changed = match reconcile {
        Reconcile::CancelAll => 0,
        Reconcile::MassStatus => shared.mass_status(cancel_deadline).max(0),
    };
    let (before, left) = shared.cancel_all(event_source::DAEMON, 0, cancel_deadline);
    if left > 0 {
        tracing::warn!(
            left,
            "reconciliation: open orders still unconfirmed after the cancel deadline"
        );
    }
    let changed = status_changed + before - left;
    shared.event(daemon_event::RECONCILED, event_source::DAEMON, 0, changed);
    tracing::info!(
        recovered_open_orders,
        cancelled = changed,
        "reconciled with the venue"
    );
    if recovered.trading_state == TradingState::Halted {
        tracing::warn!("the journal says trading was halted: staying halted (levictl resume)");
    } else {
        shared.set_trading(TradingCommand::Resume, event_source::DAEMON, 0);
    }
    shared.phase.set(Phase::Running);
    shared.event(daemon_event::READY, event_source::DAEMON, 0, 0);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!("ready");

    // Running.
    let mut next_gauges = Instant::now();
    let mut next_maintain = Instant::now();
    let mut next_checkpoint = Instant::now() + CHECKPOINT_INTERVAL;
    while !stop_requested() {
        if signals.reload.swap(false, Ordering::AcqRel) {
            match shared.reload(event_source::SIGNAL, 0) {
                Ok(message) => tracing::info!("SIGHUP: {message}"),
                Err(reason) => tracing::error!("SIGHUP: reload refused: {reason}"),
            }
        }
        let now = Instant::now();
        if now >= next_gauges {
            next_gauges = now + GAUGE_INTERVAL;
            gauges.refresh(shared, journal);
            watchdog.feed_if_fresh(&shared.counters, gauges);
            catch_up(shadow);
        }
        if now >= next_checkpoint {
            next_checkpoint = now + CHECKPOINT_INTERVAL;
            if let Err(e) = shadow.write_checkpoint(&mut lock(&shared.events)) {
                tracing::error!("checkpoint: {e}");
            }
        }
        if now >= next_maintain {
            next_maintain = now + MAINTAIN_INTERVAL;
            if let Err(e) = journal.maintain() {
                tracing::error!("journal maintenance: {e}");
            }
        }
        std::thread::sleep(TICK);
    }

    // Stop: no new orders, cancel everything, wait for the venue.
    shared.phase.set(Phase::Stopping);
    gauges.phase.set(Phase::Stopping as i64);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // A signal, or the embedding program (the demo's duration).
    let source = if signals.stop.load(Ordering::Acquire) {
        event_source::SIGNAL
    } else {
        event_source::DAEMON
    };
    shared.event(daemon_event::STOPPING, source, 0, 0);
    tracing::info!("stopping: halting and cancelling every open order");
    let (_, left) = shared.cancel_all(source, 0, cancel_deadline);
    if left > 0 {
        tracing::warn!(left, "cancel deadline passed with open orders unconfirmed");
    }
    Ok(left)
}

/// What start-up needs of the recovered state once the engine has gone to the pipeline.
#[derive(Clone, Copy, Debug)]
struct RecoveredSummary {
    open_orders: usize,
    trading_state: TradingState,
}

/// Replays what the journal gained into the shadow (bounded per call; the next tick goes on).
fn catch_up(shadow: &mut ShadowRecovery) {
    if let Err(e) = shadow.catch_up() {
        tracing::error!("checkpoint shadow replay stopped: {e}");
    }
}

/// Writes the run's first records: the instruments, the config text, STARTED and (after a
/// crash) RECOVERED.
fn journal_start(
    events: &mut Appender,
    config: &DaemonConfig,
    recovered: &Recovered,
) -> Result<(), DaemonError> {
    let fail = |e: levibot_shm::ShmError| start_error("journal")(e.to_string());
    for id in 0..config.instruments.len() as u32 {
        let Some(i) = config.instruments.get(id) else {
            continue;
        };
        let symbol = i.symbol.to_string();
        let def = InstrumentDef::new(
            id,
            &symbol,
            (i.price_scale.mantissa, i.price_scale.exp),
            (i.qty_scale.mantissa, i.qty_scale.exp),
        )
        .ok_or_else(|| start_error("instrument")(format!("symbol {symbol} is too long")))?;
        events
            .append(InstrumentDef::RECORD_TYPE, def.to_bytes())
            .map_err(fail)?;
    }
    events
        .append(record_type::CONFIG_TEXT, config.text.as_bytes())
        .map_err(fail)?;
    let event = |kind, value| DaemonEvent {
        unix_ns: unix_now_ns(),
        value,
        kind,
        source: event_source::DAEMON,
        peer_uid: 0,
    };
    events
        .append(
            DaemonEvent::RECORD_TYPE,
            event(daemon_event::STARTED, i64::from(recovered.found_journal)).to_bytes(),
        )
        .map_err(fail)?;
    if recovered.found_journal {
        events
            .append(
                DaemonEvent::RECORD_TYPE,
                event(daemon_event::RECOVERED, recovered.open_orders.len() as i64).to_bytes(),
            )
            .map_err(fail)?;
    }
    Ok(())
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// mlockall: the hot path must never wait for a page fault. A refusal (RLIMIT_MEMLOCK, no
/// capability) is logged, not fatal: the unit sets `LimitMEMLOCK=infinity`.
fn lock_memory(wanted: bool) {
    if !wanted {
        return;
    }
    use rustix::mm::{MlockAllFlags, mlockall};
    match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE) {
        Ok(()) => tracing::info!("memory locked (mlockall)"),
        Err(e) => tracing::warn!(
            "mlockall refused ({e}): pages may be swapped or faulted on the hot path; \
             raise LimitMEMLOCK (the systemd unit sets infinity) or set daemon.lock_memory = false"
        ),
    }
}

/// The signals the daemon acts on, as flags the control loop polls.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn install(options: &RunOptions) -> Result<Signals, DaemonError> {
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        };
        if options.handle_signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let fail = |e: std::io::Error| start_error("signal handlers")(e.to_string());
            signal_hook::flag::register(SIGTERM, Arc::clone(&signals.stop)).map_err(fail)?;
            signal_hook::flag::register(SIGINT, Arc::clone(&signals.stop)).map_err(fail)?;
            signal_hook::flag::register(SIGHUP, Arc::clone(&signals.reload)).map_err(fail)?;
        }
        Ok(signals)
    }
}

/// The phase, shared; the control loop, its only writer, publishes it as `daemon.phase`.
struct PhaseCell {
    value: AtomicU8,
}

impl PhaseCell {
    fn new() -> Self {
        PhaseCell {
            value: AtomicU8::new(Phase::Starting as u8),
        }
    }

    fn set(&self, phase: Phase) {
        self.value.store(phase as u8, Ordering::Release);
    }

    fn get(&self) -> Phase {
        Phase::from_code(i64::from(self.value.load(Ordering::Acquire))).unwrap_or(Phase::Starting)
    }
}

/// Gauges the control loop refreshes: the market-data session (its stats live on the feed's
/// connector thread) and whether every agent's heartbeat is fresh.
struct DaemonGauges {
    market_data_up: Counter,
    market_data_connects: Counter,
    market_data_disconnects: Counter,
    market_data_failed_attempts: Counter,
    market_data_pong_timeouts: Counter,
    agents_fresh: Counter,
    uptime_s: Counter,
    phase: Counter,
}

impl DaemonGauges {
    fn allocate(counters: &CountersWriter) -> Result<Self, DaemonError> {
        let fail = |e: levibot_shm::ShmError| start_error("counters")(e.to_string());
        let events = |name: &str| {
            counters
                .allocate(&format!("venue.market_data.{name}"), counter_type::EVENTS)
                .map_err(fail)
        };
        Ok(DaemonGauges {
            market_data_up: counters
                .allocate("venue.market_data.up", counter_type::STATE)
                .map_err(fail)?,
            market_data_connects: events("connects")?,
            market_data_disconnects: events("disconnects")?,
            market_data_failed_attempts: events("failed_attempts")?,
            market_data_pong_timeouts: events("pong_timeouts")?,
            agents_fresh: counters
                .allocate("daemon.agents_fresh", counter_type::STATE)
                .map_err(fail)?,
            uptime_s: counters
                .allocate("daemon.uptime_s", counter_type::GAUGE)
                .map_err(fail)?,
            phase: counters
                .allocate("daemon.phase", counter_type::STATE)
                .map_err(fail)?,
        })
    }

    fn refresh(&self, shared: &Shared, journal: &Journal) {
        let s = &shared.feed_stats;
        let connects = s.connects.load(Ordering::Relaxed);
        let disconnects = s.disconnects.load(Ordering::Relaxed);
        self.market_data_up.set(i64::from(connects > disconnects));
        self.market_data_connects.set(connects as i64);
        self.market_data_disconnects.set(disconnects as i64);
        self.market_data_failed_attempts
            .set(s.failed_attempts.load(Ordering::Relaxed) as i64);
        self.market_data_pong_timeouts
            .set(s.pong_timeouts.load(Ordering::Relaxed) as i64);
        self.uptime_s.set(shared.started.elapsed().as_secs() as i64);
        self.phase.set(shared.phase.get() as i64);
        journal.heartbeat();
    }
}

/// Whether every agent still turns: its duty-cycle counter moved within the heartbeat
/// timeout. systemd's watchdog is fed only while they all do.
struct Watchdog {
    timeout: Duration,
    interval: Option<Duration>,
    last_notify: Instant,
    seen: HashMap<usize, (i64, Instant)>,
}

impl Watchdog {
    fn new(timeout: Duration) -> Self {
        Watchdog {
            timeout,
            interval: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_notify: Instant::now(),
            seen: HashMap::new(),
        }
    }

    fn all_fresh(&mut self, counters: &CounterIndex) -> bool {
        let now = Instant::now();
        let mut fresh = true;
        for (id, label) in counters.ids_with_suffix(".duty_cycles") {
            debug_assert!(label.starts_with("agent."));
            let value = counters.value(id);
            let entry = self.seen.entry(id).or_insert((value, now));
            if entry.0 != value {
                *entry = (value, now);
            } else if now.duration_since(entry.1) > self.timeout {
                fresh = false;
            }
        }
        fresh
    }

    /// Publishes whether the agents are fresh and, if they are and it is time, tells systemd.
    fn feed_if_fresh(&mut self, counters: &CounterIndex, gauges: &DaemonGauges) {
        let fresh = self.all_fresh(counters);
        gauges.agents_fresh.set(i64::from(fresh));
        if fresh && self.due() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }

    fn due(&mut self) -> bool {
        match self.interval {
            Some(interval) if self.last_notify.elapsed() >= interval => {
                self.last_notify = Instant::now();
                true
            }
            _ => false,
        }
    }
}

/// The counters file read back by label (the daemon's own view, as levictl's).
struct CounterIndex {
    reader: CountersReader,
    by_label: Mutex<HashMap<String, usize>>,
}

impl CounterIndex {
    fn new(reader: CountersReader) -> Self {
        CounterIndex {
            reader,
            by_label: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, label: &str) -> Option<usize> {
        let mut map = lock(&self.by_label);
        if let Some(&id) = map.get(label) {
            return Some(id);
        }
        for c in self.reader.counters() {
            map.insert(c.label, c.id);
        }
        map.get(label).copied()
    }

    /// The counter's value, 0 if there is none.
    fn get(&self, label: &str) -> i64 {
        self.id(label).map_or(0, |id| self.value(id))
    }

    fn value(&self, id: usize) -> i64 {
        self.reader.value(id).unwrap_or(0)
    }

    fn ids_with_suffix(&self, suffix: &str) -> Vec<(usize, String)> {
        self.reader
            .counters()
            .into_iter()
            .filter(|c| c.label.ends_with(suffix))
            .map(|c| (c.id, c.label))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends the strategy parameters of a config (type-erased: the daemon runs one strategy kind).
trait ParamsSink: Send {
    /// Whether `send` would take `config`'s parameters now.
    fn ready_for(&self, config: &DaemonConfig) -> Result<(), String>;
    /// Sends them; after `ready_for` said yes, it cannot fail.
    fn send(&mut self, config: &DaemonConfig) -> Result<(), String>;
}

struct ParamsMailbox<P: Copy> {
    sender: ParamsSender<ParamsByInstrument<P>>,
}

impl<P: StrategyParamsOf> ParamsMailbox<P> {
    fn params_of(config: &DaemonConfig) -> Result<ParamsByInstrument<P>, String> {
        let params = P::of(config).ok_or("the strategy kind cannot change without a restart")?;
        Ok(ParamsByInstrument::from_slice(&params).ok_or("too many instruments")?)
    }
}

impl<P: StrategyParamsOf> ParamsSink for ParamsMailbox<P> {
    fn ready_for(&self, config: &DaemonConfig) -> Result<(), String> {
        Self::params_of(config)?;
        if self.sender.has_room() {
            Ok(())
        } else {
            Err("earlier updates are still waiting for the strategy agent; try again".into())
        }
    }

    fn send(&mut self, config: &DaemonConfig) -> Result<(), String> {
        let all = Self::params_of(config)?;
        if self.sender.send(all) {
            Ok(())
        } else {
            Err("earlier updates are still waiting for the strategy agent; try again".into())
        }
    }
}

/// What the control loop and the control socket share.
struct Shared {
    /// The config in force (after reloads and `set`s).
    config: Mutex<DaemonConfig>,
    trading: Mutex<TradingControl>,
    limits: Mutex<ParamsSender<RiskLimits>>,
    params: Mutex<Box<dyn ParamsSink>>,
    /// The daemon's own journal writer: events and config texts.
    events: Mutex<Appender>,
    counters: CounterIndex,
    phase: Arc<PhaseCell>,
    started: Instant,
    reloads: AtomicU64,
    feed_stats: Arc<WsFeedStats>,
    /// One kill, cancel-all or reload at a time.
    kill: Mutex<()>,
}

impl Shared {
    fn config(&self) -> MutexGuard<'_, DaemonConfig> {
        lock(&self.config)
    }

    fn event(&self, kind: u16, source: u16, peer_uid: u32, value: i64) {
        let event = DaemonEvent {
            unix_ns: unix_now_ns(),
            value,
            kind,
            source,
            peer_uid,
        };
        if let Err(e) = lock(&self.events).append(DaemonEvent::RECORD_TYPE, event.to_bytes()) {
            tracing::error!("journal: daemon event {kind}: {e}");
        }
    }

    /// What start-up still waits for (empty: ready to reconcile).
    fn not_ready(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.counters.get("venue.order_entry.up") != 1 {
            missing.push("the FIX session to log on".to_owned());
        }
        let config = self.config();
        for id in 0..config.instruments.len() as u32 {
            if let Some(i) = config.instruments.get(id)
                && self.counters.get(&format!("book.{}.synced", i.symbol)) != 1
            {
                missing.push(format!("the {} book to sync", i.symbol));
            }
        }
        missing
    }

    fn set_trading(&self, command: TradingCommand, source: u16, peer_uid: u32) -> bool {
        let sent = lock(&self.trading).send(command);
        let state = match command {
            TradingCommand::Resume => Some(0),
            TradingCommand::Halt
            | TradingCommand::HaltAndCancelAll
            | TradingCommand::HaltAndMassStatus => Some(2),
            TradingCommand::AbandonMassStatus => None,
        };
        if sent && let Some(state) = state {
            self.event(daemon_event::TRADING_STATE, source, peer_uid, state);
        }
        sent
    }

    /// Halts and asks the venue for the status of every order of ours; waits until risk has
    /// taken the whole answer or the deadline passes (then the round is given up). Returns
    /// what the round changed in risk (missed fills + dropped + adopted), -1 without an answer.
    fn mass_status(&self, deadline: Duration) -> i64 {
        let _one_at_a_time = lock(&self.kill);
        let c = &self.counters;
        let changes = || {
            c.get("risk.status_fills_applied")
                + c.get("risk.status_dropped")
                + c.get("risk.status_adopted")
        };
        let (rounds, changes_before) = (c.get("risk.status_rounds"), changes());
        let until = Instant::now() + deadline;
        while !self.set_trading(TradingCommand::HaltAndMassStatus, event_source::DAEMON, 0) {
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        while c.get("risk.status_rounds") == rounds && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let changed = if c.get("risk.status_rounds") > rounds {
            let changed = changes() - changes_before;
            tracing::info!(
                fills_applied = c.get("risk.status_fills_applied"),
                dropped = c.get("risk.status_dropped"),
                adopted = c.get("risk.status_adopted"),
                unaccounted = c.get("risk.status_unaccounted"),
                "order mass status: risk's view is the venue's"
            );
            changed
        } else {
            tracing::warn!(
                "order mass status: no complete answer within {deadline:?}; given up \
                 (the cancel-all still runs)"
            );
            lock(&self.trading).send(TradingCommand::AbandonMassStatus);
            -1
        };
        self.event(daemon_event::MASS_STATUS, event_source::DAEMON, 0, changed);
        changed
    }

    /// Halts, cancels every open order at the venue and waits until risk has none open or the
    /// deadline passes. Returns (open orders before, open orders left).
    fn cancel_all(&self, source: u16, peer_uid: u32, deadline: Duration) -> (i64, i64) {
        let _one_at_a_time = lock(&self.kill);
        let before = self.counters.get("risk.open_orders");
        self.event(daemon_event::CANCEL_ALL, source, peer_uid, before);
        let until = Instant::now() + deadline;
        while !self.set_trading(TradingCommand::HaltAndCancelAll, source, peer_uid) {
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // The halt holds from risk's next duty cycle; the venue's confirmations take a round
        // trip. Give the agents a moment before the first look, so a count read before the
        // mass cancel left cannot end the wait early.
        std::thread::sleep(Duration::from_millis(20).min(deadline));
        let mut left = self.counters.get("risk.open_orders");
        while left > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            left = self.counters.get("risk.open_orders");
        }
        self.event(daemon_event::CANCEL_ALL_DONE, source, peer_uid, left);
        (before, left)
    }

    /// Applies a new config's limits and parameters (all or nothing) and journals it.
    fn apply(
        &self,
        new: DaemonConfig,
        kind: u16,
        source: u16,
        peer_uid: u32,
    ) -> Result<(), String> {
        let mut limits = lock(&self.limits);
        let mut params = lock(&self.params);
        // All or nothing: both mailboxes must take the update before either is sent (each
        // has one sender, held here, so room seen now is room when sending).
        if !limits.has_room() {
            return Err(
                "earlier limits are still waiting for the risk agent; try again".to_owned(),
            );
        }
        params.ready_for(&new)?;
        if !limits.send(new.risk_limits) {
            return Err("the risk agent's mailbox filled up; try again".to_owned());
        }
        params.send(&new)?;
        let n = self.reloads.fetch_add(1, Ordering::AcqRel) + 1;
        if let Err(e) = lock(&self.events).append(record_type::CONFIG_TEXT, new.text.as_bytes()) {
            tracing::error!("journal: config text: {e}");
        }
        self.event(kind, source, peer_uid, n as i64);
        *self.config() = new;
        Ok(())
    }

    fn reload(&self, source: u16, peer_uid: u32) -> Result<String, String> {
        let _one_at_a_time = lock(&self.kill);
        let path = self.config().path.clone();
        let refused = |problems: String, count: usize| {
            self.event(daemon_event::RELOAD_REFUSED, source, peer_uid, count as i64);
            Err(problems)
        };
        let new = match super::config::load(&path) {
            Ok(new) => new,
            Err(e) => return refused(e.to_string(), e.problems.len()),
        };
        if let Err(e) = self.config().reloadable_change(&new) {
            return refused(e.to_string(), e.problems.len());
        }
        self.apply(new, daemon_event::RELOADED, source, peer_uid)?;
        Ok(format!(
            "reloaded {}: risk limits and strategy parameters apply from the next order",
            path.display()
        ))
    }
}

impl ControlHandler for Shared {
    fn status(&self) -> StatusReport {
        let c = &self.counters;
        let config = self.config();
        let mut instruments = Vec::new();
        for id in 0..config.instruments.len() as u32 {
            let Some(i) = config.instruments.get(id) else {
                continue;
            };
            let symbol = i.symbol.to_string();
            let units = |v: i64, scale: levibot_gateway::decimal::Scale| {
                scale.to_decimal(v).normalize().to_string()
            };
            let px = |label: &str| {
                let v = c.get(&format!("book.{symbol}.{label}"));
                (v > 0).then(|| units(v, i.price_scale))
            };
            instruments.push(InstrumentStatus {
                position: units(c.get(&format!("risk.position_units.{symbol}")), i.qty_scale),
                open_orders: c.get(&format!("risk.open_orders.{symbol}")).max(0) as u32,
                realised_pnl: microquote_text(
                    c.get(&format!("risk.realised_pnl_microquote.{symbol}")),
                ),
                pnl: microquote_text(c.get(&format!("risk.pnl_microquote.{symbol}"))),
                bid: px("bid_px"),
                ask: px("ask_px"),
                symbol,
            });
        }
        let trading_state = match c.get("risk.trading_state") {
            0 => "active",
            1 => "reduce_only",
            _ => "halted",
        };
        let md_connects = c.get("venue.market_data.connects") as u64;
        StatusReport {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            phase: self.phase.get().name().to_owned(),
            trading_state: trading_state.to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            journal_dir: config.journal.dir.display().to_string(),
            config_path: config.path.display().to_string(),
            market_data: SessionStatus {
                connected: c.get("venue.market_data.up") == 1,
                connects: md_connects,
                disconnects: c.get("venue.market_data.disconnects") as u64,
            },
            order_entry: SessionStatus {
                connected: c.get("venue.order_entry.up") == 1,
                connects: c.get("venue.order_entry.logons") as u64,
                disconnects: c.get("venue.order_entry.disconnects") as u64,
            },
            instruments,
            open_orders: c.get("risk.open_orders").max(0) as u32,
            orders_sent: c.get("gateway.orders_sent") as u64,
            fills: c.get("venue.order_entry.fills") as u64,
            rejects: c.get("risk.rejected") as u64,
            reloads: self.reloads.load(Ordering::Acquire),
        }
    }

    fn kill(&self, peer: &Peer) -> Result<String, String> {
        let deadline = self.config().daemon.cancel_deadline;
        let started = Instant::now();
        let (before, left) = self.cancel_all(event_source::CONTROL_SOCKET, peer.uid, deadline);
        tracing::warn!(
            uid = peer.uid,
            pid = peer.pid,
            before,
            left,
            "kill switch engaged"
        );
        if left == 0 {
            Ok(format!(
                "halted; {before} open orders cancelled, confirmed by the venue in {} ms",
                started.elapsed().as_millis()
            ))
        } else {
            Err(format!(
                "halted; the cancel deadline ({} ms) passed with {left} of {before} open orders \
                 unconfirmed",
                deadline.as_millis()
            ))
        }
    }

    fn resume(&self, peer: &Peer) -> Result<String, String> {
        if self.phase.get() != Phase::Running {
            return Err(format!(
                "the daemon is {}; trading resumes only while running",
                self.phase.get().name()
            ));
        }
        let _one_at_a_time = lock(&self.kill);
        if self.set_trading(
            TradingCommand::Resume,
            event_source::CONTROL_SOCKET,
            peer.uid,
        ) {
            tracing::warn!(uid = peer.uid, "trading resumed");
            Ok("trading resumed".to_owned())
        } else {
            Err("the agents have not taken earlier commands yet; try again".to_owned())
        }
    }

    fn reload(&self, peer: &Peer) -> Result<String, String> {
        Shared::reload(self, event_source::CONTROL_SOCKET, peer.uid)
    }

    fn set(&self, peer: &Peer, key: &str, value: &str) -> Result<String, String> {
        let _one_at_a_time = lock(&self.kill);
        let new = self
            .config()
            .with_limit_set(key, value)
            .map_err(|e| e.to_string())?;
        self.apply(
            new,
            daemon_event::LIMIT_SET,
            event_source::CONTROL_SOCKET,
            peer.uid,
        )?;
        tracing::warn!(uid = peer.uid, key, value, "risk limit set");
        Ok(format!("{key} = {value}: applies from the next order"))
    }
}
