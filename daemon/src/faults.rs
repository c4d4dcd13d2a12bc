//! What the running daemon watches for by itself, and what it does about it (cold path).
//!
//! ```text
//!  journal can take no more records ──> halt, cancel-all (confirmed or deadline), JOURNAL_FAILED
//!   (the next segment cannot be made,      -> stop the agents -> exit JOURNAL_EXIT_STATUS (75),
//!    or an order/report/event append       which the unit does not restart
//!    failed)
//!  a report could not be queued, or  ──> halt (SELF_HALT), ask the venue for a mass status;
//!   an inbound FIX gap went unfilled       trading resumes only on `levictl resume`, which
//!                                          asks again if the round went unanswered
//! ```
//!
//! Journal housekeeping ([`Maintenance`]) runs on its own thread: gzip of a finished segment
//! can take seconds, and the control loop must keep feeding the watchdog and hearing SIGTERM.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use levibot_shm::codes::{halt_reason, label};
use levibot_shm::layout::segment_file_name;
use levibot_shm::records::{daemon_event, event_source};
use levibot_shm::{Journal, RetentionReport};

use super::state::{CounterIndex, DaemonState, lock};

/// How long the maintenance thread sleeps between passes.
const MAINTAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the maintenance thread looks at its stop flag while it sleeps.
const MAINTAIN_STOP_POLL: Duration = Duration::from_millis(20);

/// Journal housekeeping: pre-creating the next segment and retention (prune, then gzip).
pub(super) struct Maintenance {
    stop: AtomicBool,
    /// Why the journal cannot grow (its filesystem is full), once seen.
    no_space: Mutex<Option<String>>,
    /// Passes in which retention had to keep segments recovery needs beyond its size limit.
    floor_held: AtomicU64,
    /// What waits for the archive: segments retention holds (and their bytes) as of the last
    /// pass, segments it had to prune unarchived (the hard limit), and the times the
    /// archiver's watermark became unreadable.
    archive: ArchiveWait,
    /// No thread could be started for it: the control loop calls [`once`](Self::once).
    from_control_loop: AtomicBool,
}

impl Maintenance {
    pub(super) fn new() -> Self {
        Maintenance {
            stop: AtomicBool::new(false),
            no_space: Mutex::new(None),
            floor_held: AtomicU64::new(0),
            archive: ArchiveWait::default(),
            from_control_loop: AtomicBool::new(false),
        }
    }

    pub(super) fn run_from_control_loop(&self) {
        self.from_control_loop.store(true, Ordering::Release);
    }

    pub(super) fn is_on_control_loop(&self) -> bool {
        self.from_control_loop.load(Ordering::Acquire)
    }

    /// Maintains every [`MAINTAIN_INTERVAL`] until [`stop`](Self::stop).
    pub(super) fn run(&self, journal: &Journal, shared: &DaemonState) {
        while !self.stop.load(Ordering::Acquire) {
            self.once(journal, shared);
            let mut slept = Duration::ZERO;
            while slept < MAINTAIN_INTERVAL && !self.stop.load(Ordering::Acquire) {
                std::thread::sleep(MAINTAIN_STOP_POLL);
                slept += MAINTAIN_STOP_POLL;
            }
        }
    }

    /// One pass. A full filesystem is remembered for the control loop; other failures are
    /// logged and the next pass tries again.
    pub(super) fn once(&self, journal: &Journal, shared: &DaemonState) {
        let (report, error) = journal.maintain_reporting();
        // Segments pruned unarchived are counted and journaled even if the pass failed after.
        self.archive.note(&report, error.is_none(), journal, shared);
        match error.map_or(Ok(report), Err) {
            Ok(report) => {
                if !report.kept_for_floor.is_empty() {
                    self.floor_held.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        segments = ?report.kept_for_floor,
                        "journal retention: kept segments that recovery needs past the size limit"
                    );
                }
                for failed in &report.compress_failed {
                    tracing::error!(
                        "journal retention: segment {} not compressed: {}",
                        failed.index,
                        failed.error
                    );
                }
            }
            Err(e) if e.is_no_space() => {
                tracing::error!("journal maintenance: {e}");
                lock(&self.no_space).get_or_insert_with(|| e.to_string());
            }
            Err(e) => tracing::error!("journal maintenance: {e}"),
        }
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub(super) fn no_space(&self) -> Option<String> {
        lock(&self.no_space).clone()
    }

    pub(super) fn floor_held(&self) -> u64 {
        self.floor_held.load(Ordering::Acquire)
    }

    pub(super) fn archive(&self) -> &ArchiveWait {
        &self.archive
    }
}

/// Retention that waits for the archive, as the maintenance passes saw it; the control loop
/// publishes it in the counters (`journal.retention_archive_*`, `_unarchived_pruned`,
/// `_watermark_unreadable`).
#[derive(Default)]
pub(super) struct ArchiveWait {
    pub(super) held: AtomicU64,
    pub(super) held_bytes: AtomicU64,
    pub(super) unarchived_pruned: AtomicU64,
    pub(super) watermark_unreadable: AtomicU64,
    /// The watermark was unreadable at the last pass (said once, until it is readable again).
    unreadable_now: AtomicBool,
}

impl ArchiveWait {
    /// What a pass reported; `complete`: it ran to the end (else only its unarchived prunes
    /// are taken: what it holds and whether it read the watermark may not be known).
    fn note(
        &self,
        report: &RetentionReport,
        complete: bool,
        journal: &Journal,
        shared: &DaemonState,
    ) {
        for pruned in &report.pruned_unarchived {
            self.unarchived_pruned.fetch_add(1, Ordering::AcqRel);
            shared.event(
                daemon_event::UNARCHIVED_PRUNED,
                event_source::DAEMON,
                0,
                pruned.index as i64,
            );
            tracing::error!(
                "journal retention: pruned {} (writer run {}, {} bytes) before the archive had \
                 it: the journal is over journal.retention.hard_max_total_mib; is \
                 levibot-archiver running and its store reachable?",
                journal
                    .dir()
                    .join(segment_file_name(pruned.index))
                    .display(),
                pruned.epoch,
                pruned.bytes
            );
        }
        if !complete {
            return;
        }
        self.held
            .store(report.held_for_archive.len() as u64, Ordering::Release);
        self.held_bytes
            .store(report.held_for_archive_bytes, Ordering::Release);
        let unreadable = report.archive_watermark_error.is_some();
        if unreadable != self.unreadable_now.swap(unreadable, Ordering::AcqRel) {
            match &report.archive_watermark_error {
                Some(e) => {
                    self.watermark_unreadable.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        "journal retention: the archive watermark cannot be read ({e}): taking \
                         nothing as archived, so nothing is pruned before the hard limit"
                    );
                }
                None => tracing::info!("journal retention: the archive watermark is readable"),
            }
        }
        if !report.held_for_archive.is_empty() {
            tracing::debug!(
                segments = ?report.held_for_archive,
                "journal retention: kept for the archive"
            );
        }
    }
}

/// Counters whose growth means the daemon can no longer vouch for its state.
pub(super) struct FaultWatch {
    journal_errors: i64,
    reports_dropped: i64,
    gaps_unfilled: i64,
}

/// The stages whose journal appends are fixed-size records (orders, reports, rejects): any
/// failure there is the journal's, not the record's. The feed's raw messages are left out: one
/// too long for a frame fails alone, and is counted as that.
const JOURNAL_ERROR_COUNTERS: [&str; 3] = [
    label::STRATEGY_JOURNAL_ERRORS,
    label::RISK_JOURNAL_ERRORS,
    label::GATEWAY_JOURNAL_ERRORS,
];

fn journal_errors(counters: &CounterIndex) -> i64 {
    JOURNAL_ERROR_COUNTERS
        .iter()
        .map(|label| counters.get(label))
        .sum()
}

impl FaultWatch {
    /// Watches from zero: the counters are this run's, so whatever happened during start-up
    /// (before the running loop looks) counts too.
    pub(super) fn new() -> Self {
        FaultWatch {
            journal_errors: 0,
            reports_dropped: 0,
            gaps_unfilled: 0,
        }
    }

    /// Why the journal can no longer be trusted to take records, if it cannot.
    pub(super) fn journal_failure(
        &mut self,
        shared: &DaemonState,
        maintenance: &Maintenance,
    ) -> Option<String> {
        if let Some(detail) = maintenance.no_space() {
            return Some(detail);
        }
        if shared.events_failed.load(Ordering::Acquire) {
            return Some("the daemon's own records could not be appended".to_owned());
        }
        let errors = journal_errors(&shared.counters);
        if errors > self.journal_errors {
            return Some(format!(
                "{} order, report or reject records could not be appended",
                errors - self.journal_errors
            ));
        }
        None
    }

    /// A report that could not be queued, or an inbound gap the venue did not fill, may hide
    /// a fill: halt, and ask the venue for the truth (on a thread of its own: the round waits
    /// up to the cancel deadline, and the control loop must not).
    pub(super) fn check_reports(&mut self, shared: &Arc<DaemonState>) {
        let c = &shared.counters;
        let dropped = c.get(label::ORDER_ENTRY_REPORTS_DROPPED);
        let gaps = c.get(label::ORDER_ENTRY_GAPS_UNFILLED);
        let fault = if dropped > self.reports_dropped {
            Some((
                halt_reason::REPORT_OVERFLOW,
                format!(
                    "{} execution reports could not be queued for risk; a fill may be missing",
                    dropped - self.reports_dropped
                ),
            ))
        } else if gaps > self.gaps_unfilled {
            Some((
                halt_reason::GAP_UNFILLED,
                format!(
                    "{} inbound FIX gaps the venue did not fill; a fill may be missing",
                    gaps - self.gaps_unfilled
                ),
            ))
        } else {
            None
        };
        self.reports_dropped = dropped;
        self.gaps_unfilled = gaps;
        let Some((reason, detail)) = fault else {
            return;
        };
        shared.owe_mass_status();
        shared.self_halt(
            reason,
            format!("{detail}; asking the venue for a mass status"),
        );
        let shared = Arc::clone(shared);
        let deadline = shared.config().daemon.cancel_deadline;
        let spawned = std::thread::Builder::new()
            .name("mass-status".into())
            .spawn(move || shared.mass_status(deadline));
        if let Err(e) = spawned {
            tracing::error!("mass status thread: {e}; levictl resume asks for it");
        }
    }
}

/// The journal can take no more records: halt, cancel everything the venue has of ours (cancels
/// leave even when their write-ahead record cannot be journaled), record what can be recorded,
/// and stop. Returns the error that makes `levibotd` exit with
/// [`halt_reason::JOURNAL_EXIT_STATUS`].
pub(super) fn stop_on_journal_failure(
    shared: &DaemonState,
    journal: &Journal,
    detail: String,
) -> super::run::DaemonError {
    shared.self_halt(halt_reason::JOURNAL_FULL, detail.clone());
    let deadline = shared.config().daemon.cancel_deadline;
    let (before, left) = shared.cancel_all(event_source::DAEMON, 0, deadline);
    shared.event(daemon_event::JOURNAL_FAILED, event_source::DAEMON, 0, left);
    tracing::error!(
        before,
        left,
        "journal failed ({detail}): halted, cancelled, stopping"
    );
    super::run::DaemonError::JournalFailed {
        dir: journal.dir().to_owned(),
        detail,
        open_orders_left: left,
    }
}
