//! What the control loop and the control socket share ([`DaemonState`]): the mailboxes to the
//! agents (the kill switch, limits, parameters), the daemon's journal writer, the counters read
//! back by label, and the [`ControlHandler`] the control socket calls. Also the daemon's own
//! halts: why trading is halted, and whether what the venue confirmed lets it resume.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use levibot_control::{
    ControlHandler, InstrumentStatus, KillReport, ModelStatus, Peer, SessionStatus, StatusReport,
};
use levibot_engine::pipeline::{TradingCommand, TradingControl, WsFeedStats};
use levibot_engine::risk::{RiskLimits, TradingState};
use levibot_engine::strategy::ParamsSender;
use levibot_shm::codes::{Phase, counter_type, halt_reason, label, label::microquote_text};
use levibot_shm::counters::{Counter, CountersReader, CountersWriter};
use levibot_shm::records::{DaemonEvent, Record, daemon_event, event_source, record_type};
use levibot_shm::{Appender, ShmError};

use super::config::DaemonConfig;
use super::run::{PhaseCell, StrategyParamsOf, unix_now_ns};
use super::strategies::ParamsByInstrument;

/// The counters file read back by label (the daemon's own view, as levictl's).
pub(super) struct CounterIndex {
    reader: CountersReader,
    by_label: Mutex<HashMap<String, usize>>,
}

impl CounterIndex {
    pub(super) fn new(reader: CountersReader) -> Self {
        CounterIndex {
            reader,
            by_label: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn id(&self, label: &str) -> Option<usize> {
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
    pub(super) fn get(&self, label: &str) -> i64 {
        self.id(label).map_or(0, |id| self.value(id))
    }

    pub(super) fn value(&self, id: usize) -> i64 {
        self.reader.value(id).unwrap_or(0)
    }

    pub(super) fn ids_with_suffix(&self, suffix: &str) -> Vec<(usize, String)> {
        self.reader
            .counters()
            .into_iter()
            .filter(|c| c.label.ends_with(suffix))
            .map(|c| (c.id, c.label))
            .collect()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends the strategy parameters of a config (type-erased: the daemon runs one strategy kind).
pub(super) trait ParamsSink: Send {
    /// Whether `send` would take `config`'s parameters now.
    fn ready_for(&self, config: &DaemonConfig) -> Result<(), String>;
    /// Sends them; after `ready_for` said yes, it cannot fail.
    fn send(&mut self, config: &DaemonConfig) -> Result<(), String>;
}

pub(super) struct ParamsMailbox<P: Copy> {
    pub(super) sender: ParamsSender<ParamsByInstrument<P>>,
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

/// The daemon's own halt in force, and what the venue has yet to confirm before trading may
/// resume. One writer at a time (the mutex): the counters are single-writer slots.
pub(super) struct HaltState {
    detail: String,
    /// A cancel-all ended with orders the venue did not confirm: nobody vouches for them.
    cancels_unconfirmed: bool,
    /// A mass status is owed: one went unanswered, or a report or a gap may hide a fill.
    status_owed: bool,
    /// `daemon.halt_reason`: the `halt_reason` code of the daemon's own halt in force (`NONE`:
    /// none); its only writer is this state, under its mutex.
    reason_gauge: Counter,
    self_halts: Counter,
}

impl HaltState {
    pub(super) fn allocate(counters: &CountersWriter) -> Result<HaltState, ShmError> {
        Ok(HaltState {
            detail: String::new(),
            cancels_unconfirmed: false,
            status_owed: false,
            reason_gauge: counters.allocate(label::DAEMON_HALT_REASON, counter_type::STATE)?,
            self_halts: counters.allocate(label::DAEMON_SELF_HALTS, counter_type::EVENTS)?,
        })
    }
}

/// The daemon's state that the control loop and the control socket's handler share.
pub(super) struct DaemonState {
    /// The config in force (after reloads and `set`s).
    pub(super) config: Mutex<DaemonConfig>,
    pub(super) trading: Mutex<TradingControl>,
    pub(super) limits: Mutex<ParamsSender<RiskLimits>>,
    pub(super) params: Mutex<Box<dyn ParamsSink>>,
    /// The daemon's own journal writer: events and config texts.
    pub(super) events: Mutex<Appender>,
    /// Set when an append of the daemon's own records failed (the journal is full).
    pub(super) events_failed: AtomicBool,
    pub(super) counters: CounterIndex,
    pub(super) phase: Arc<PhaseCell>,
    pub(super) started: Instant,
    pub(super) reloads: AtomicU64,
    pub(super) feed_stats: Arc<WsFeedStats>,
    /// One kill, cancel-all, mass status, resume or reload at a time.
    pub(super) kill: Mutex<()>,
    pub(super) halt: Mutex<HaltState>,
}

impl DaemonState {
    pub(super) fn config(&self) -> MutexGuard<'_, DaemonConfig> {
        lock(&self.config)
    }

    pub(super) fn event(&self, kind: u16, source: u16, peer_uid: u32, value: i64) {
        let event = DaemonEvent {
            unix_ns: unix_now_ns(),
            value,
            kind,
            source,
            peer_uid,
        };
        if let Err(e) = lock(&self.events).append(DaemonEvent::RECORD_TYPE, event.to_bytes()) {
            self.events_failed.store(true, Ordering::Release);
            tracing::error!("journal: daemon event {kind}: {e}");
        }
    }

    /// What start-up still waits for (empty: ready to reconcile).
    pub(super) fn not_ready(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.counters.get(label::ORDER_ENTRY_UP) != 1 {
            missing.push("the FIX session to log on".to_owned());
        }
        let config = self.config();
        for id in 0..config.instruments.len() as u32 {
            if let Some(i) = config.instruments.get(id)
                && self
                    .counters
                    .get(&label::book(i.symbol.as_str(), label::BOOK_SYNCED))
                    != 1
            {
                missing.push(format!("the {} book to sync", i.symbol));
            }
        }
        missing
    }

    pub(super) fn set_trading(&self, command: TradingCommand, source: u16, peer_uid: u32) -> bool {
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

    /// Sends `command` until the agents' mailbox takes it or `until` passes.
    fn send_trading_until(
        &self,
        command: TradingCommand,
        source: u16,
        peer_uid: u32,
        until: Instant,
    ) -> bool {
        loop {
            if self.set_trading(command, source, peer_uid) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The daemon halts trading by itself: risk takes the halt (nothing new passes it), and
    /// the reason is journaled (`SELF_HALT`), counted and published (`daemon.halt_reason`)
    /// for `levictl status`, the exporter and its alert. Only an operator's `levictl resume`
    /// lifts it. A later reason replaces an earlier one in the gauge; each is journaled.
    pub(super) fn self_halt(&self, reason: i64, detail: String) {
        let until = Instant::now() + Duration::from_secs(1);
        if !self.send_trading_until(TradingCommand::Halt, event_source::DAEMON, 0, until) {
            tracing::error!("self-halt: the agents did not take the halt within 1 s");
        }
        {
            let mut halt = lock(&self.halt);
            halt.detail.clone_from(&detail);
            halt.reason_gauge.set(reason);
            halt.self_halts.increment();
        }
        self.event(daemon_event::SELF_HALT, event_source::DAEMON, 0, reason);
        tracing::error!(
            reason = halt_reason::name(reason).unwrap_or("unknown"),
            "trading halted by the daemon: {detail}; levictl resume lifts it"
        );
    }

    /// A fill may be missing: trading does not resume before the venue answered a mass status.
    pub(super) fn owe_mass_status(&self) {
        lock(&self.halt).status_owed = true;
    }

    /// The daemon's own halt in force: its reason's name and the sentence for people.
    pub(super) fn halt_reason(&self) -> (i64, String) {
        let halt = lock(&self.halt);
        (halt.reason_gauge.get(), halt.detail.clone())
    }

    /// Halts and asks the venue for the status of every order of ours; waits until risk has
    /// taken the whole answer or the deadline passes (then the round is given up). Returns
    /// what the round changed in risk (missed fills + dropped + adopted), -1 without an answer.
    /// An unanswered round leaves a mass status owed: trading does not resume without one.
    pub(super) fn mass_status(&self, deadline: Duration) -> i64 {
        let _one_at_a_time = lock(&self.kill);
        self.mass_status_locked(deadline)
    }

    fn mass_status_locked(&self, deadline: Duration) -> i64 {
        let c = &self.counters;
        let changes = || {
            c.get(label::RISK_STATUS_FILLS_APPLIED)
                + c.get(label::RISK_STATUS_DROPPED)
                + c.get(label::RISK_STATUS_ADOPTED)
        };
        let (rounds, changes_before) = (c.get(label::RISK_STATUS_ROUNDS), changes());
        let until = Instant::now() + deadline;
        let sent = self.send_trading_until(
            TradingCommand::HaltAndMassStatus,
            event_source::DAEMON,
            0,
            until,
        );
        while sent && c.get(label::RISK_STATUS_ROUNDS) == rounds && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let changed = if c.get(label::RISK_STATUS_ROUNDS) > rounds {
            let changed = changes() - changes_before;
            tracing::info!(
                fills_applied = c.get(label::RISK_STATUS_FILLS_APPLIED),
                dropped = c.get(label::RISK_STATUS_DROPPED),
                adopted = c.get(label::RISK_STATUS_ADOPTED),
                unaccounted = c.get(label::RISK_STATUS_UNACCOUNTED),
                "order mass status: risk's view is the venue's"
            );
            changed
        } else {
            tracing::warn!(
                "order mass status: no complete answer within {deadline:?}; given up \
                 (trading stays halted until one is answered)"
            );
            lock(&self.trading).send(TradingCommand::AbandonMassStatus);
            -1
        };
        lock(&self.halt).status_owed = changed < 0;
        self.event(daemon_event::MASS_STATUS, event_source::DAEMON, 0, changed);
        changed
    }

    /// Halts, cancels every open order at the venue and waits until risk has none open or the
    /// deadline passes. Returns (open orders before, open orders left). Orders left are
    /// unconfirmed: trading does not resume while they are.
    pub(super) fn cancel_all(&self, source: u16, peer_uid: u32, deadline: Duration) -> (i64, i64) {
        let _one_at_a_time = lock(&self.kill);
        self.cancel_all_locked(source, peer_uid, deadline)
    }

    fn cancel_all_locked(&self, source: u16, peer_uid: u32, deadline: Duration) -> (i64, i64) {
        let before = self.counters.get(label::RISK_OPEN_ORDERS);
        self.event(daemon_event::CANCEL_ALL, source, peer_uid, before);
        let until = Instant::now() + deadline;
        self.send_trading_until(TradingCommand::HaltAndCancelAll, source, peer_uid, until);
        // The halt holds from risk's next duty cycle; the venue's confirmations take a round
        // trip. Give the agents a moment before the first look, so a count read before the
        // mass cancel left cannot end the wait early.
        std::thread::sleep(Duration::from_millis(20).min(deadline));
        let mut left = self.counters.get(label::RISK_OPEN_ORDERS);
        while left > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            left = self.counters.get(label::RISK_OPEN_ORDERS);
        }
        lock(&self.halt).cancels_unconfirmed = left > 0;
        self.event(daemon_event::CANCEL_ALL_DONE, source, peer_uid, left);
        (before, left)
    }

    /// Resumes trading, but only on a state the venue confirmed: a mass status owed is asked
    /// for again, and cancels left unconfirmed are sent again; if either is still not
    /// confirmed, trading stays halted and the reason says what is missing.
    pub(super) fn resume_confirmed(&self, source: u16, peer_uid: u32) -> Result<String, String> {
        let _one_at_a_time = lock(&self.kill);
        let deadline = self.config().daemon.cancel_deadline;
        let (status_owed, cancels_unconfirmed) = {
            let halt = lock(&self.halt);
            (halt.status_owed, halt.cancels_unconfirmed)
        };
        let mut redone = Vec::new();
        if status_owed {
            if self.mass_status_locked(deadline) < 0 {
                return Err(format!(
                    "still halted: the venue did not answer the order mass status within {} ms; \
                     nothing vouches for the orders and fills since (try again, or check the \
                     order-entry session)",
                    deadline.as_millis()
                ));
            }
            redone.push("the venue answered the order mass status");
        }
        if cancels_unconfirmed {
            let (before, left) = self.cancel_all_locked(source, peer_uid, deadline);
            if left > 0 {
                return Err(format!(
                    "still halted: {left} of {before} orders the daemon cancelled are still \
                     unconfirmed by the venue after {} ms",
                    deadline.as_millis()
                ));
            }
            redone.push("the venue confirmed every cancel");
        }
        if !self.set_trading(TradingCommand::Resume, source, peer_uid) {
            return Err("the agents have not taken earlier commands yet; try again".to_owned());
        }
        {
            let mut halt = lock(&self.halt);
            halt.detail.clear();
            halt.reason_gauge.set(halt_reason::NONE);
        }
        Ok(if redone.is_empty() {
            "trading resumed".to_owned()
        } else {
            format!("trading resumed ({})", redone.join("; "))
        })
    }

    /// Applies a new config's limits and parameters (all or nothing) and journals it.
    pub(super) fn apply(
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
        // Journaled before either agent can take it (neither send can fail now: room was
        // checked under these locks), so that every order or snapshot made under the new
        // limits or model comes after the config and models in force in the journal.
        let n = self.reloads.fetch_add(1, Ordering::AcqRel) + 1;
        let sha256s = |c: &DaemonConfig| -> Vec<Option<[u8; 32]>> {
            c.strategy
                .models()
                .iter()
                .map(|m| m.map(|m| m.sha256))
                .collect()
        };
        let models_changed = sha256s(&self.config()) != sha256s(&new);
        {
            let mut events = lock(&self.events);
            if let Err(e) = events.append(record_type::CONFIG_TEXT, new.text.as_bytes()) {
                tracing::error!("journal: config text: {e}");
            }
            if models_changed
                && let Err(e) = super::run::journal_models(&mut events, &new, n as u32)
            {
                tracing::error!("journal: models in force: {e}");
            }
        }
        if !limits.send(new.risk_limits) {
            return Err("the risk agent's mailbox filled up; try again".to_owned());
        }
        params.send(&new)?;
        self.event(kind, source, peer_uid, n as i64);
        *self.config() = new;
        Ok(())
    }

    pub(super) fn reload(&self, source: u16, peer_uid: u32) -> Result<String, String> {
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

impl ControlHandler for DaemonState {
    fn status(&self) -> StatusReport {
        let c = &self.counters;
        let config = self.config();
        let mut instruments = Vec::new();
        let models = config.strategy.models();
        for id in 0..config.instruments.len() as u32 {
            let Some(i) = config.instruments.get(id) else {
                continue;
            };
            let symbol = i.symbol.to_string();
            let units = |v: i64, scale: levibot_gateway::decimal::Scale| {
                scale.to_decimal(v).normalize().to_string()
            };
            let px = |field: &str| {
                let v = c.get(&label::book(symbol.as_str(), field));
                (v > 0).then(|| units(v, i.price_scale))
            };
            instruments.push(InstrumentStatus {
                position: units(
                    c.get(&label::risk_position_units(symbol.as_str())),
                    i.qty_scale,
                ),
                open_orders: c.get(&label::risk_open_orders(symbol.as_str())).max(0) as u32,
                realised_pnl: microquote_text(
                    c.get(&label::risk_realised_pnl_microquote(symbol.as_str())),
                ),
                pnl: microquote_text(c.get(&label::risk_pnl_microquote(symbol.as_str()))),
                bid: px(label::BOOK_BID_PX),
                ask: px(label::BOOK_ASK_PX),
                model: models.get(id as usize).map(|model| {
                    let in_use = c.get(&label::strategy_model_id(symbol.as_str())) as u64;
                    ModelStatus {
                        sha256: model.map_or_else(String::new, |m| m.sha256_hex()),
                        path: model.map_or_else(String::new, |m| m.path.display().to_string()),
                        in_use: in_use == model.map_or(0, |m| m.id),
                    }
                }),
                symbol,
            });
        }
        let (halt_code, halt_detail) = self.halt_reason();
        // Anything but a known state reads as halted: never report "active" on a value we
        // cannot vouch for.
        let trading_state = TradingState::from_code(c.get(label::RISK_TRADING_STATE))
            .unwrap_or(TradingState::Halted)
            .name();
        let md_connects = c.get(label::MARKET_DATA_CONNECTS) as u64;
        StatusReport {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            phase: self.phase.get().name().to_owned(),
            trading_state: trading_state.to_owned(),
            halt_reason: halt_reason::name(halt_code).unwrap_or("unknown").to_owned(),
            halt_detail,
            uptime_s: self.started.elapsed().as_secs(),
            journal_dir: config.journal.dir.display().to_string(),
            config_path: config.path.display().to_string(),
            market_data: SessionStatus {
                connected: c.get(label::MARKET_DATA_UP) == 1,
                connects: md_connects,
                disconnects: c.get(label::MARKET_DATA_DISCONNECTS) as u64,
            },
            order_entry: SessionStatus {
                connected: c.get(label::ORDER_ENTRY_UP) == 1,
                connects: c.get(label::ORDER_ENTRY_LOGONS) as u64,
                disconnects: c.get(label::ORDER_ENTRY_DISCONNECTS) as u64,
            },
            instruments,
            open_orders: c.get(label::RISK_OPEN_ORDERS).max(0) as u32,
            orders_sent: c.get(label::GATEWAY_ORDERS_SENT) as u64,
            fills: c.get(label::ORDER_ENTRY_FILLS) as u64,
            rejects: c.get(label::RISK_REJECTED) as u64,
            reloads: self.reloads.load(Ordering::Acquire),
        }
    }

    fn kill(&self, peer: &Peer) -> KillReport {
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
        KillReport {
            halted: self.counters.get(label::RISK_TRADING_STATE) == 2,
            open_before: before.max(0) as u32,
            cancelled_confirmed: (before - left).max(0) as u32,
            unconfirmed: left.max(0) as u32,
            elapsed_ms: started.elapsed().as_millis() as u64,
            deadline_ms: deadline.as_millis() as u64,
        }
    }

    fn resume(&self, peer: &Peer) -> Result<String, String> {
        if self.phase.get() != Phase::Running {
            return Err(format!(
                "the daemon is {}; trading resumes only while running",
                self.phase.get().name()
            ));
        }
        let outcome = self.resume_confirmed(event_source::CONTROL_SOCKET, peer.uid);
        match &outcome {
            Ok(message) => tracing::warn!(uid = peer.uid, "{message}"),
            Err(reason) => tracing::warn!(uid = peer.uid, "resume refused: {reason}"),
        }
        outcome
    }

    fn reload(&self, peer: &Peer) -> Result<String, String> {
        DaemonState::reload(self, event_source::CONTROL_SOCKET, peer.uid)
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
