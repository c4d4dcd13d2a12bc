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
//!        replay ; every 60 s: checkpoint ; retention's `maintain` every 1 s on its own
//!        thread, "journal-maintain" (the control loop runs it only if that thread fails)
//!   -> SIGTERM/SIGINT: halt, cancel-all, wait (cancel_deadline) -> stop agents (drained)
//!   -> STOPPED record -> close the journal -> exit 0
//! ```
//!
//! Everything here is cold path: the agents run on their own threads; this thread and the
//! control socket's talk to them only through mailboxes (limits, parameters, the kill switch)
//! and read them only through the counters.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use levibot_control::{AccessPolicy, ControlHandler, ControlServer};
use levibot_engine::book::BookLimits;
use levibot_engine::pipeline::ws_feed::snapshot_limit::WeightLimit;
use levibot_engine::pipeline::{
    FixVenue, OwnedSnapshot, Pipeline, PipelineSpec, RingCapacities, TradedInstrument,
    TradingCommand, WsFeed, WsFeedConfig,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::risk::TradingState;
use levibot_engine::strategy::maker::Maker;
use levibot_engine::strategy::signal::Signal;
use levibot_engine::strategy::{Grid, Strategy};
use levibot_gateway::fix::{FixSession, SessionSeqNums};
use levibot_gateway::instrument::InstrumentTable;
use levibot_shm::codes::{Phase, halt_reason, label, writer_id};
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::records::{
    DaemonEvent, InstrumentDef, ModelInForce, Record, daemon_event, event_source, record_type,
};
use levibot_shm::{Appender, Journal};

use super::checkpoint::ShadowRecovery;
use super::config::EmptyJournal;
use super::config::{DaemonConfig, Reconcile, StrategySettings};
use super::faults::{FaultWatch, Maintenance, stop_on_journal_failure};
use super::recovery::{self, Recovered};
use super::state::{CounterIndex, DaemonState, HaltState, ParamsMailbox, lock};
use super::strategies::PerInstrument;

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

mod gauges;

pub(crate) use gauges::PhaseCell;
use gauges::{DaemonGauges, Watchdog};

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
    /// A step of the start failed; `source` is its error, whole (its own chain included).
    #[error("{what}: {source}")]
    Start {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("start-up timed out after {waited:?} waiting for {what} (daemon.start_timeout_ms)")]
    StartTimeout { what: String, waited: Duration },
    #[error("control socket: {0}")]
    Control(#[from] levibot_control::ControlError),
    #[error("stopping the agents: {0}")]
    Stop(#[source] levibot_engine::runner::RunnerError),
    #[error(
        "journal {dir}: it can no longer take records ({detail}); trading was halted and \
         every open order cancelled ({open_orders_left} left unconfirmed); free room in the \
         journal's filesystem (or lower journal.retention.max_total_mib), then start again"
    )]
    JournalFailed {
        dir: PathBuf,
        detail: String,
        open_orders_left: i64,
    },
}

impl DaemonError {
    /// The process exit status for this error: [`halt_reason::JOURNAL_EXIT_STATUS`] when the
    /// journal's filesystem is full (the unit does not restart it: it would only loop), else 1.
    pub fn exit_status(&self) -> i32 {
        match self {
            DaemonError::JournalFailed { .. } => halt_reason::JOURNAL_EXIT_STATUS,
            DaemonError::Journal { source, .. } if source.is_no_space() => {
                halt_reason::JOURNAL_EXIT_STATUS
            }
            _ => 1,
        }
    }
}

/// `DaemonError::Start` for step `what`, keeping the step's error as its source (a `String`
/// for the few that have only a message).
fn start_error<E>(what: &'static str) -> impl FnOnce(E) -> DaemonError
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    move |source| DaemonError::Start {
        what,
        source: source.into(),
    }
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
    new: impl Fn(u32, P) -> Result<S, levibot_engine::strategy::maker::StrategyParamsError>,
) -> Result<Vec<PerInstrument<S>>, DaemonError> {
    let mut strategies = Vec::with_capacity(params.len());
    for (id, p) in params.iter().enumerate() {
        let id = id as u32;
        if instruments.get(id).is_none() {
            return Err(start_error("strategy")(format!(
                "no instrument with id {id}"
            )));
        }
        let strategy = new(id, *p).map_err(start_error("strategy"))?;
        strategies.push(PerInstrument::new(strategy, id));
    }
    Ok(strategies)
}

/// The strategy parameters of `config`, as the pipeline's mailbox takes them.
pub(super) trait StrategyParamsOf: Copy + Send + std::fmt::Debug + 'static {
    fn of(config: &DaemonConfig) -> Option<Vec<Self>>;
}

impl StrategyParamsOf for levibot_engine::strategy::maker::MakerParams {
    fn of(config: &DaemonConfig) -> Option<Vec<Self>> {
        match &config.strategy {
            StrategySettings::Maker(p) => Some(p.clone()),
            StrategySettings::Signal(_) => None,
        }
    }
}

impl StrategyParamsOf for levibot_engine::strategy::signal::SignalParams {
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
        .map_err(|source| DaemonError::Journal {
            dir: journal_dir.clone(),
            source,
        })?;
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
    let appender = |id: u16, what: &'static str| journal.appender(id).map_err(start_error(what));
    let mut events = appender(writer_id::DAEMON, "journal appender")?;
    journal_start(&mut events, &config, &recovered)?;
    // Before the first `maintain`: from here on, recovery needs nothing older.
    let first = shadow
        .write_checkpoint(&mut events)
        .map_err(start_error("checkpoint"))?;
    journal.set_retention_floor(first.replay_from);
    gauges.checkpoints.increment();
    gauges
        .last_checkpoint_unix_s
        .set((unix_now_ns() / 1_000_000_000) as i64);

    // The pipeline: the live feed, the strategies, risk (restored), the FIX session. Its
    // snapshot requests keep to the venue's request weight (the exchangeInfo's, else Binance's).
    let weight_limit = config
        .request_weight
        .map_or(WeightLimit::BINANCE_SPOT, |w| WeightLimit {
            limit: w.limit,
            window: w.window,
        });
    let feed = WsFeed::start_with_limit(
        WsFeedConfig {
            addr: config.market_data.addr,
            host: config.market_data.host.clone(),
            rest: config.market_data.rest.clone(),
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
            reconnect_after: config.market_data.reconnect_after,
        },
        weight_limit,
    )
    .map_err(start_error("market data feed"))?;
    let feed_stats = feed.stats();
    let seq_nums = recovered.seq_nums.unwrap_or_else(SessionSeqNums::default);
    let mut session = FixSession::new(
        config.order_entry.session.clone(),
        config.instruments.clone(),
        seq_nums,
    )
    .map_err(start_error("FIX session"))?;
    // No sequence numbers in the journal (none at all, after a reboot): ask the venue to
    // start both sequences afresh rather than be refused as "MsgSeqNum too low".
    if recovered.seq_nums.is_none() {
        session.reset_sequence_on_next_logon();
    }
    // An order journaled but never sent (a crash between the two) is then reported lost
    // when the venue asks for its number again, and risk lets it go.
    for (msg_seq_num, order) in &recovered.recent_sent {
        session.remember_sent(order, *msg_seq_num);
    }
    // Those the venue answered are not: it may ask for their numbers again (a resend after its
    // own restart), and reporting an acknowledged or filled order lost would lose it in risk.
    for &client_order_id in &recovered.recent_answered {
        session.remember_answered(client_order_id);
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
    .map_err(start_error("counters"))?;

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
        feature_config: config.features.config,
        feature_journal: config.features.journal,
        strategy_id: config.strategy_id,
        // Above every id in the journal, and above every id an earlier run can have used even
        // when the journal vanished (a reboot): see `client_order_id_floor`.
        first_client_order_id: recovered
            .next_client_order_id
            .max(client_order_id_floor(unix_now_ns())),
        first_msg_seq_num: seq_nums.next_sender,
    };
    let recovered_summary = RecoveredSummary {
        open_orders: recovered.open_orders.len(),
        trading_state: recovered.trading_state,
        found_journal: recovered.found_journal,
    };
    let (mut pipeline, controls) = Pipeline::<_, _, _, Rtrb>::assemble(
        spec,
        feed,
        venue,
        &journal,
        &counters,
        config.layout.is_fused(),
    )
    .map_err(start_error("pipeline"))?;
    pipeline.risk.stage_mut().restore(recovered.engine);

    // Nothing trades until reconciled: risk halted, strategies paused.
    let mut trading = controls.trading;
    trading.send(TradingCommand::Halt);
    let running = pipeline
        .start(&config.layout, &counters)
        .map_err(start_error("agents"))?;

    let reader = CountersReader::open(&counters_path).map_err(start_error("counters file"))?;
    let halt = HaltState::allocate(&counters).map_err(start_error("counters"))?;
    let shared = Arc::new(DaemonState {
        config: Mutex::new(config),
        trading: Mutex::new(trading),
        limits: Mutex::new(controls.limits),
        params: Mutex::new(Box::new(ParamsMailbox::<P> {
            sender: controls.params,
        })),
        events: Mutex::new(events),
        events_failed: AtomicBool::new(false),
        counters: CounterIndex::new(reader),
        phase: Arc::clone(&phase),
        started,
        reloads: AtomicU64::new(0),
        feed_stats,
        kill: Mutex::new(()),
        halt: Mutex::new(halt),
    });
    let control = {
        let config = shared.config();
        ControlServer::bind(
            &config.daemon.control_socket,
            config.daemon.control_socket_mode,
            // Readers (the daemon's group) may ask for status; trading commands need the
            // operators' group.
            AccessPolicy::daemon_default_with_ops(config.daemon.control_ops_gid),
            Arc::clone(&shared) as Arc<dyn ControlHandler>,
        )?
    };

    // Housekeeping (the next segment, retention's gzip and pruning) runs on a thread of its
    // own, so that the control loop's watchdog pings and signals never wait on a gzip.
    let maintenance = Maintenance::new();
    let result = std::thread::scope(|scope| {
        let maintainer = std::thread::Builder::new()
            .name("journal-maintain".into())
            .spawn_scoped(scope, || maintenance.run(&journal, &shared));
        if let Err(e) = &maintainer {
            tracing::error!("journal maintenance thread: {e}; maintaining from the control loop");
            maintenance.run_from_control_loop();
        }
        let result = drive(
            &shared,
            &journal,
            &gauges,
            &signals,
            &mut shadow,
            recovered_summary,
            &maintenance,
        );
        maintenance.stop();
        result
    });
    // Whatever happened, the agents are stopped and drained before the journal closes.
    control.shutdown();
    let stopped = running.stop().map_err(DaemonError::Stop);
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
    shared: &Arc<DaemonState>,
    journal: &Journal,
    gauges: &DaemonGauges,
    signals: &Signals,
    shadow: &mut ShadowRecovery,
    recovered: RecoveredSummary,
    maintenance: &Maintenance,
) -> Result<i64, DaemonError> {
    let recovered_open_orders = recovered.open_orders;
    let (start_timeout, cancel_deadline) = {
        let c = shared.config();
        (c.daemon.start_timeout, c.daemon.cancel_deadline)
    };
    let mut watchdog = Watchdog::new(shared.config().daemon.heartbeat_timeout);
    let stop_requested = || {
        signals.stop.load(Ordering::Acquire)
            || signals.stop_requested_by_caller.load(Ordering::Acquire)
    };

    // Sessions up and books synced.
    let deadline = Instant::now() + start_timeout;
    loop {
        let missing = shared.not_ready();
        if missing.is_empty() {
            break;
        }
        if stop_requested() {
            return Ok(shared.counters.get(label::RISK_OPEN_ORDERS));
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
    // Trading resumes only on what the venue confirmed, and only on a journal that vouches
    // for the state (or an operator who does).
    let empty_journal = shared.config().daemon.empty_journal;
    if status_changed < 0 && reconcile == Reconcile::MassStatus || left > 0 {
        shared.self_halt(
            halt_reason::RECONCILE_UNCONFIRMED,
            if left > 0 {
                format!("{left} orders still unconfirmed after the reconciliation's cancel-all")
            } else {
                "the venue did not answer the reconciliation's order mass status".to_owned()
            },
        );
    } else if !recovered.found_journal && empty_journal == EmptyJournal::Halt {
        shared.self_halt(
            halt_reason::EMPTY_JOURNAL,
            "no journal at start (after a reboot?): positions, PnL and the kill switch were \
             not recovered; check the venue's view, then levictl resume \
             (daemon.empty_journal = \"halt\")"
                .to_owned(),
        );
    } else if recovered.trading_state == TradingState::Halted {
        shared.self_halt(
            halt_reason::JOURNAL_SAYS_HALTED,
            "the journal says trading was halted when the daemon stopped (a kill switch \
             engaged before the restart stays engaged)"
                .to_owned(),
        );
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
    let mut watch = FaultWatch::new();
    let mut floor_held_seen = maintenance.floor_held();
    let journal_failure = loop {
        if stop_requested() {
            break None;
        }
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
            gauges
                .retention_floor_held
                .set(maintenance.floor_held() as i64);
            gauges.publish_archive_wait(maintenance.archive());
            if let Some(failure) = watch.journal_failure(shared, maintenance) {
                break Some(failure);
            }
            watch.check_reports(shared);
        }
        // Retention had to keep what the last checkpoint's replay needs past its size limit:
        // a checkpoint now moves that floor up, rather than letting the filesystem fill.
        let floor_held = maintenance.floor_held();
        let floor_in_the_way = floor_held > floor_held_seen;
        floor_held_seen = floor_held;
        if now >= next_checkpoint || floor_in_the_way {
            next_checkpoint = now + CHECKPOINT_INTERVAL;
            write_checkpoint(shadow, shared, journal, gauges);
        }
        if maintenance.is_on_control_loop() && now >= next_maintain {
            next_maintain = now + MAINTAIN_INTERVAL;
            maintenance.once(journal, shared);
        }
        std::thread::sleep(TICK);
    };

    if let Some(detail) = journal_failure {
        shared.phase.set(Phase::Stopping);
        gauges.phase.set(Phase::Stopping as i64);
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        return Err(stop_on_journal_failure(shared, journal, detail));
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
    /// False: the journal was empty (a first start, or a reboot emptied /dev/shm).
    found_journal: bool,
}

/// The lowest client order id a run starting at `unix_ns` may use, so that ids never repeat
/// across runs even when the journal vanished (every reboot empties /dev/shm) and the venue
/// still knows the last run's ids:
///
/// ```text
///   bit 63      62 ........................... 20   19 ............ 0
///   0           milliseconds since the Unix epoch    order count within the run
/// ```
///
/// A run starting at millisecond `t` begins at `t << 20`; an earlier run (at `t' < t`) would
/// have to send more than 2^20 orders per millisecond it ran to reach it. The millisecond count
/// fits in 43 bits until the year 2248. A wall clock set back between two runs could repeat
/// ids: the journal's own mark (`next_client_order_id`) is kept when it is higher, so that
/// only a vanished journal *and* a clock set back can do it.
pub fn client_order_id_floor(unix_ns: u64) -> u64 {
    (unix_ns / 1_000_000) << 20
}

/// Writes a checkpoint, counts it, and tells retention to keep everything its replay needs.
fn write_checkpoint(
    shadow: &mut ShadowRecovery,
    shared: &DaemonState,
    journal: &Journal,
    gauges: &DaemonGauges,
) {
    match shadow.write_checkpoint(&mut lock(&shared.events)) {
        Ok(written) => {
            journal.set_retention_floor(written.replay_from);
            gauges.checkpoints.increment();
            gauges
                .last_checkpoint_unix_s
                .set((unix_now_ns() / 1_000_000_000) as i64);
        }
        Err(e) => {
            gauges.checkpoint_failures.increment();
            tracing::error!("checkpoint: {e}");
        }
    }
}

/// Replays what the journal gained into the shadow (bounded per call; the next tick goes on).
fn catch_up(shadow: &mut ShadowRecovery) {
    if let Err(e) = shadow.catch_up() {
        tracing::error!("checkpoint shadow replay stopped: {e}");
    }
}

/// Writes the run's first records: the instruments, the config text, STARTED and (after a
/// crash) RECOVERED.
/// Journals an `InstrumentDef` for every instrument of `instruments`, so that readers name
/// symbols and show exact decimals (the daemon at its start, a backtest at its).
pub fn journal_instruments(
    events: &mut Appender,
    instruments: &InstrumentTable,
) -> Result<(), DaemonError> {
    for id in 0..instruments.len() as u32 {
        let Some(i) = instruments.get(id) else {
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
            .map_err(start_error("journal"))?;
    }
    Ok(())
}

/// A [`ModelInForce`] for each instrument whose strategy votes with a model or weights (the
/// lineage's anchor: its full SHA-256 and path), after the config text that named it; `reload`
/// is 0 at start, else the reload's number.
pub fn journal_models(
    events: &mut Appender,
    config: &DaemonConfig,
    reload: u32,
) -> Result<(), levibot_shm::ShmError> {
    let unix_ns = unix_now_ns();
    for (instrument_id, model) in config.strategy.models().into_iter().enumerate() {
        let record = ModelInForce {
            unix_ns,
            model_id: model.map_or(0, |m| m.id),
            sha256: model.map_or([0; 32], |m| m.sha256),
            instrument_id: instrument_id as u32,
            reload,
        };
        let path = model.map_or(String::new(), |m| m.path.display().to_string());
        events.append(ModelInForce::RECORD_TYPE, &record.payload(&path))?;
    }
    Ok(())
}

fn journal_start(
    events: &mut Appender,
    config: &DaemonConfig,
    recovered: &Recovered,
) -> Result<(), DaemonError> {
    let fail = |e: levibot_shm::ShmError| start_error("journal")(e);
    journal_instruments(events, &config.instruments)?;
    events
        .append(record_type::CONFIG_TEXT, config.text.as_bytes())
        .map_err(fail)?;
    journal_models(events, config, 0).map_err(fail)?;
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

pub(super) fn unix_now_ns() -> u64 {
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

/// The signals the daemon acts on, as flags the control loop polls, and the embedding
/// program's stop flag (`RunOptions::stop`: the demo's duration).
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    stop_requested_by_caller: Arc<AtomicBool>,
}

impl Signals {
    fn install(options: &RunOptions) -> Result<Signals, DaemonError> {
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            stop_requested_by_caller: Arc::clone(&options.stop),
        };
        if options.handle_signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let fail = |e: std::io::Error| start_error("signal handlers")(e);
            signal_hook::flag::register(SIGTERM, Arc::clone(&signals.stop)).map_err(fail)?;
            signal_hook::flag::register(SIGINT, Arc::clone(&signals.stop)).map_err(fail)?;
            signal_hook::flag::register(SIGHUP, Arc::clone(&signals.reload)).map_err(fail)?;
        }
        Ok(signals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_error_keeps_its_source_whole() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "port 9464 taken");
        let e = start_error("exporter")(io);
        assert_eq!(e.to_string(), "exporter: port 9464 taken");
        let source = std::error::Error::source(&e).expect("the step's error is the source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is the io::Error itself, not its text");
        assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
        // A step with only a message still reads the same.
        let e = start_error("strategy")(String::from("no parameters for BTCUSDT"));
        assert_eq!(e.to_string(), "strategy: no parameters for BTCUSDT");
    }
}
