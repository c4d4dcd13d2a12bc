//! What the control loop publishes while the daemon runs: the phase (`daemon.phase`), the
//! daemon's own gauges (the market-data session, whose stats live on the feed's connector
//! thread; checkpoints; the retention floor), and whether every agent still turns (systemd's
//! watchdog is fed only while they all do).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use levibot_shm::Journal;
use levibot_shm::codes::{Phase, counter_type, label};
use levibot_shm::counters::{Counter, CountersWriter};

use super::{DaemonError, start_error};
use crate::faults::ArchiveWait;
use crate::state::{CounterIndex, DaemonState};

/// The phase, shared; the control loop, its only writer, publishes it as `daemon.phase`.
pub(crate) struct PhaseCell {
    value: AtomicU8,
}

impl PhaseCell {
    pub(crate) fn new() -> Self {
        PhaseCell {
            value: AtomicU8::new(Phase::Starting as u8),
        }
    }

    pub(crate) fn set(&self, phase: Phase) {
        self.value.store(phase as u8, Ordering::Release);
    }

    pub(crate) fn get(&self) -> Phase {
        Phase::from_code(i64::from(self.value.load(Ordering::Acquire))).unwrap_or(Phase::Starting)
    }
}

/// Gauges the control loop refreshes: the market-data session (its stats live on the feed's
/// connector thread) and whether every agent's heartbeat is fresh.
pub(super) struct DaemonGauges {
    pub(super) market_data_up: Counter,
    pub(super) market_data_connects: Counter,
    pub(super) market_data_disconnects: Counter,
    pub(super) market_data_failed_attempts: Counter,
    pub(super) market_data_pong_timeouts: Counter,
    pub(super) market_data_rollovers: Counter,
    pub(super) market_data_rollover_fallbacks: Counter,
    pub(super) agents_fresh: Counter,
    pub(super) uptime_s: Counter,
    pub(super) phase: Counter,
    pub(super) checkpoints: Counter,
    pub(super) checkpoint_failures: Counter,
    pub(super) last_checkpoint_unix_s: Counter,
    pub(super) retention_floor_held: Counter,
    retention_archive_held: Counter,
    retention_archive_held_bytes: Counter,
    retention_unarchived_pruned: Counter,
    retention_watermark_unreadable: Counter,
}

impl DaemonGauges {
    pub(super) fn allocate(counters: &CountersWriter) -> Result<Self, DaemonError> {
        let fail = |e: levibot_shm::ShmError| start_error("counters")(e);
        let events = |label: &str| counters.allocate(label, counter_type::EVENTS).map_err(fail);
        let allocate = |label: &str, kind| counters.allocate(label, kind).map_err(fail);
        Ok(DaemonGauges {
            market_data_up: allocate(label::MARKET_DATA_UP, counter_type::STATE)?,
            market_data_connects: events(label::MARKET_DATA_CONNECTS)?,
            market_data_disconnects: events(label::MARKET_DATA_DISCONNECTS)?,
            market_data_failed_attempts: events(label::MARKET_DATA_FAILED_ATTEMPTS)?,
            market_data_pong_timeouts: events(label::MARKET_DATA_PONG_TIMEOUTS)?,
            market_data_rollovers: events(label::MARKET_DATA_ROLLOVERS)?,
            market_data_rollover_fallbacks: events(label::MARKET_DATA_ROLLOVER_FALLBACKS)?,
            agents_fresh: allocate(label::DAEMON_AGENTS_FRESH, counter_type::STATE)?,
            uptime_s: allocate(label::DAEMON_UPTIME_S, counter_type::GAUGE)?,
            phase: allocate(label::DAEMON_PHASE, counter_type::STATE)?,
            checkpoints: allocate(label::DAEMON_CHECKPOINTS, counter_type::EVENTS)?,
            checkpoint_failures: allocate(label::DAEMON_CHECKPOINT_FAILURES, counter_type::EVENTS)?,
            last_checkpoint_unix_s: allocate(
                label::DAEMON_LAST_CHECKPOINT_UNIX_S,
                counter_type::GAUGE,
            )?,
            retention_floor_held: allocate(
                label::JOURNAL_RETENTION_FLOOR_HELD,
                counter_type::EVENTS,
            )?,
            retention_archive_held: allocate(
                label::JOURNAL_RETENTION_ARCHIVE_HELD,
                counter_type::GAUGE,
            )?,
            retention_archive_held_bytes: allocate(
                label::JOURNAL_RETENTION_ARCHIVE_HELD_BYTES,
                counter_type::GAUGE,
            )?,
            retention_unarchived_pruned: events(label::JOURNAL_RETENTION_UNARCHIVED_PRUNED)?,
            retention_watermark_unreadable: events(label::JOURNAL_RETENTION_WATERMARK_UNREADABLE)?,
        })
    }

    /// What retention keeps for the archive, and what it could not (the maintenance thread's
    /// figures, published by the control loop, the counters' one writer).
    pub(super) fn publish_archive_wait(&self, wait: &ArchiveWait) {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Acquire) as i64;
        self.retention_archive_held.set(get(&wait.held));
        self.retention_archive_held_bytes.set(get(&wait.held_bytes));
        self.retention_unarchived_pruned
            .set(get(&wait.unarchived_pruned));
        self.retention_watermark_unreadable
            .set(get(&wait.watermark_unreadable));
    }

    pub(super) fn refresh(&self, shared: &DaemonState, journal: &Journal) {
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
        self.market_data_rollovers
            .set(s.rollovers.load(Ordering::Relaxed) as i64);
        self.market_data_rollover_fallbacks
            .set(s.rollover_fallbacks.load(Ordering::Relaxed) as i64);
        self.uptime_s.set(shared.started.elapsed().as_secs() as i64);
        self.phase.set(shared.phase.get() as i64);
        journal.heartbeat();
    }
}

/// Whether every agent still turns: its duty-cycle counter moved within the heartbeat
/// timeout. systemd's watchdog is fed only while they all do.
pub(super) struct Watchdog {
    timeout: Duration,
    interval: Option<Duration>,
    last_notify: Instant,
    seen: HashMap<usize, (i64, Instant)>,
    /// `.duty_cycles`: how every agent's duty-cycle counter label ends (`label::agent`).
    duty_cycles_suffix: String,
}

impl Watchdog {
    pub(super) fn new(timeout: Duration) -> Self {
        Watchdog {
            timeout,
            interval: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_notify: Instant::now(),
            seen: HashMap::new(),
            duty_cycles_suffix: format!(".{}", label::AGENT_DUTY_CYCLES),
        }
    }

    fn all_fresh(&mut self, counters: &CounterIndex) -> bool {
        let now = Instant::now();
        let mut fresh = true;
        for (id, label) in counters.ids_with_suffix(&self.duty_cycles_suffix) {
            debug_assert!(label.starts_with(label::AGENT_PREFIX));
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
    pub(super) fn feed_if_fresh(&mut self, counters: &CounterIndex, gauges: &DaemonGauges) {
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
