//! The cold side: follows the journal and the counters file read-only, updates the metrics and
//! publishes a [`Snapshot`] that scrapes read.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use levibot_shm::clock::unix_now_ns;
use levibot_shm::codes::{
    Phase, RiskCheck, halt_reason, label, label::MICROQUOTE_PER_QUOTE, reject_reason,
};
use levibot_shm::counters::CountersReader;
use levibot_shm::layout::HEADER_LEN;
use levibot_shm::paths::counters_path;
use levibot_shm::records::{
    AggTrade, BookTicker, DepthDiff, ExecutionReport, Record, RiskReject, SentOrder, Trade,
    exec_type, model_id_hex, record_type,
};
use levibot_shm::{Position, ShmError, StartAt, Tailer, TscCalibration, list_segments};

use super::archive::ArchiveCounters;
use super::metrics::{FloatGauge, Metrics, labels, set_counter};
use levibot_view::{Event, FrameDecoder, FrameMeta, FrameReader, JournalInstrument, Segments};

/// A heartbeat older than this: the daemon is not up.
pub const HEARTBEAT_FRESH_NS: u64 = 5_000_000_000;
/// How often the follower refreshes the snapshot when the journal is idle.
pub const REFRESH_PERIOD: Duration = Duration::from_millis(100);
/// Frames read between two snapshots while catching up.
const FRAMES_PER_ROUND_MAX: usize = 100_000;
/// Sent orders waiting for their first execution report (for the ack round trip); the oldest is
/// forgotten past this.
const ACK_PENDING_MAX: usize = 65_536;
/// Raw messages waiting for the decoded record that says their stream; the oldest counts as
/// `other` past this.
const RAW_PENDING_MAX: usize = 4_096;
/// Distinct reject reasons and checks kept as label values (a corrupt journal cannot grow the
/// label set without bound).
const LABEL_VALUES_MAX: usize = 256;

/// What a scrape reads.
#[derive(Debug)]
pub struct Snapshot {
    /// The OpenMetrics text exposition.
    pub openmetrics: String,
    /// The same in the Prometheus text format (0.0.4).
    pub prometheus_text: String,
    /// `Ok` when ready (for /readyz); else why not.
    pub ready: Result<(), String>,
    /// Why trading is halted, when it is (for /readyz, ready or not): the daemon's own halt
    /// reason, or the kill switch.
    pub halted: Option<String>,
}

pub type SharedSnapshot = Arc<Mutex<Arc<Snapshot>>>;

pub fn initial_snapshot(metrics: &Metrics) -> SharedSnapshot {
    let openmetrics = metrics.encode();
    Arc::new(Mutex::new(Arc::new(Snapshot {
        prometheus_text: super::metrics::to_prometheus_text(&openmetrics),
        openmetrics,
        ready: Err("the exporter has not read the journal yet".into()),
        halted: None,
    })))
}

/// A raw message whose decoded record has not been seen yet.
struct PendingRaw {
    recv_tsc: u64,
    bytes: u64,
    /// Rounds it has waited (a message no record follows counts as `other` after two).
    rounds: u8,
}

/// Where the follower opens the journal when it has no reader (at start, or after an error).
/// Only the first open is from the beginning: after a read error the follower goes on from
/// where it stopped, so no frame is ever counted twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// The oldest segment on disk: nothing read yet, or a journal started afresh.
    Beginning,
    /// The position of the next frame not read yet.
    At(u64),
    /// The start of the first segment after the one holding this position: what is left of
    /// that segment cannot be read (a corrupt frame has no trustworthy length to step over,
    /// and frames carry no marker to find the next one by).
    SegmentAfter(u64),
}

pub struct Follower {
    dir: PathBuf,
    resume: Resume,
    /// Writer run of the last frame read.
    epoch: Option<u64>,
    metrics: Metrics,
    shared: SharedSnapshot,
    reader: Option<FrameReader>,
    /// The newest segment, for the heartbeat (the reader may be behind).
    head: Option<Tailer>,
    counters: Option<CountersReader>,
    /// The archiver's counters file, if there is one.
    archive: ArchiveCounters,
    decoder: FrameDecoder,
    /// Symbol -> instrument, from the journal's `InstrumentDef`s.
    by_symbol: HashMap<String, JournalInstrument>,
    /// The model id of each symbol's `levibot_model_info` series (0: `none`).
    model_by_symbol: HashMap<String, u64>,
    /// client_order_id -> encoded_tsc of sent orders not yet reported on (FIFO for eviction).
    ack_pending: HashMap<u64, u64>,
    ack_order: VecDeque<u64>,
    raw_pending: VecDeque<PendingRaw>,
    last_frame_unix_ns: Option<u64>,
    journal_error: Option<String>,
    /// Label values created in `risk_rejects` and `orders_rejected` (bounded).
    risk_checks_created: usize,
    reject_reasons_created: usize,
    /// From the counters file: `daemon.halt_reason` (0 when absent) and `risk.trading_state`.
    halt_code: i64,
    trading_state: Option<i64>,
    /// A halt reason code this build does not name, published as `reason="code_<n>"`.
    halt_unknown: Option<i64>,
}

impl Follower {
    pub fn new(
        dir: &Path,
        archiver_counters: &Path,
        metrics: Metrics,
        shared: SharedSnapshot,
    ) -> Follower {
        Follower {
            dir: dir.to_owned(),
            resume: Resume::Beginning,
            epoch: None,
            metrics,
            shared,
            reader: None,
            head: None,
            counters: None,
            archive: ArchiveCounters::new(archiver_counters),
            decoder: FrameDecoder::new(),
            by_symbol: HashMap::new(),
            model_by_symbol: HashMap::new(),
            ack_pending: HashMap::new(),
            ack_order: VecDeque::new(),
            raw_pending: VecDeque::new(),
            last_frame_unix_ns: None,
            journal_error: None,
            risk_checks_created: 0,
            reject_reasons_created: 0,
            halt_code: halt_reason::NONE,
            trading_state: None,
            halt_unknown: None,
        }
    }

    /// Opens the journal once, for the start-up check: an error that retrying cannot cure (a
    /// layout this build does not read, a corrupt header) is returned; a journal that does not
    /// exist yet is not an error (the daemon may start later).
    pub fn check_journal(dir: &Path) -> Result<(), ShmError> {
        match Tailer::open(dir, StartAt::Beginning) {
            Ok(_) => Ok(()),
            Err(ShmError::NoJournal { .. }) => Ok(()),
            Err(ShmError::Io { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let frames = self.round();
            if frames < FRAMES_PER_ROUND_MAX {
                std::thread::sleep(REFRESH_PERIOD);
            }
        }
    }

    /// One round: read what the journal has (up to a limit), refresh the counters and the
    /// gauges, publish. Returns the frames read.
    pub fn round(&mut self) -> usize {
        let frames = self.read_journal();
        self.age_raw_pending();
        let now = unix_now_ns();
        let heartbeat = self.heartbeat_unix_ns();
        self.read_counters();
        self.archive.read(&self.metrics);
        let ready = self.readiness(now, heartbeat);
        let m = &self.metrics;
        m.journal_bytes
            .set(i64::try_from(journal_bytes(&self.dir)).unwrap_or(i64::MAX));
        // A full filesystem, not the retention limit, is what stops the journal's appends.
        if let Ok(fs) = rustix::fs::statvfs(&self.dir) {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(fs.f_frsize)).unwrap_or(i64::MAX);
            m.journal_fs_avail_bytes.set(bytes(fs.f_bavail));
            m.journal_fs_size_bytes.set(bytes(fs.f_blocks));
        }
        if let Some(last) = self.last_frame_unix_ns {
            m.journal_lag.set(ns_to_s(now.saturating_sub(last) as f64));
        }
        let openmetrics = m.encode();
        let snapshot = Snapshot {
            prometheus_text: super::metrics::to_prometheus_text(&openmetrics),
            openmetrics,
            ready,
            halted: self.halt_text(),
        };
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        frames
    }

    fn read_journal(&mut self) -> usize {
        if self.reader.is_none() {
            match self.open_reader() {
                Ok(Some(reader)) => {
                    tracing::info!(
                        dir = %self.dir.display(),
                        from = ?self.resume,
                        "following the journal"
                    );
                    self.reader = Some(reader);
                    self.journal_error = None;
                }
                // The segment to go on with does not exist yet.
                Ok(None) => return 0,
                Err(e) => {
                    if let (true, Resume::At(at)) = (unreadable(&e), self.resume) {
                        // The segment to go on in cannot be opened (it vanished, or is
                        // corrupt): go on with the next one.
                        self.metrics.journal_read_errors.inc();
                        self.resume = Resume::SegmentAfter(at);
                    }
                    self.note_journal_error(&e);
                    return 0;
                }
            }
        }
        let mut frames = 0;
        while frames < FRAMES_PER_ROUND_MAX {
            let reader = self.reader.as_mut().expect("opened above");
            match reader.next_event() {
                Ok(Event::Frame(meta, cal)) => {
                    frames += 1;
                    self.resume = Resume::At(reader.tailer().position().0);
                    let payload = reader.payload().to_vec();
                    if self.epoch.is_some_and(|epoch| epoch != meta.epoch) {
                        // A new writer run reached by reopening (no restart event then).
                        self.forget_pending();
                    }
                    self.epoch = Some(meta.epoch);
                    self.on_frame(meta, cal, &payload);
                }
                Ok(Event::Restart(restart)) => {
                    tracing::info!(
                        old_epoch = restart.old_epoch,
                        new_epoch = restart.new_epoch,
                        new_journal = restart.new_journal,
                        "the daemon restarted: following its new run"
                    );
                    self.forget_pending();
                }
                Ok(Event::Missing(e)) => {
                    self.resume = Resume::At(reader.tailer().position().0);
                    tracing::warn!(error = %e, "a journal segment is missing: skipped");
                }
                Ok(Event::Idle) => {
                    self.resume = Resume::At(reader.tailer().position().0);
                    break;
                }
                Err(e) => {
                    // The tailer stopped at what it could not read: go on from there (a
                    // transient error), or from the next segment (a corrupt frame), never
                    // from the beginning, which would count everything again.
                    let at = reader.tailer().position().0;
                    self.resume = if unreadable(&e) {
                        Resume::SegmentAfter(at)
                    } else {
                        Resume::At(at)
                    };
                    self.metrics.journal_read_errors.inc();
                    self.note_journal_error(&e);
                    self.reader = None;
                    break;
                }
            }
        }
        frames
    }

    /// TSC stamps of another run do not compare.
    fn forget_pending(&mut self) {
        self.ack_pending.clear();
        self.ack_order.clear();
        self.raw_pending.clear();
    }

    /// Opens a reader at [`Resume`]. `Ok(None)`: wait (the segment to go on with is not there
    /// yet). A journal whose segments are all compressed (no writer) gives no segment size to
    /// seek with: the follower then waits for a raw segment (a daemon start).
    fn open_reader(&mut self) -> Result<Option<FrameReader>, ShmError> {
        let at = match self.resume {
            Resume::Beginning => return FrameReader::open(&self.dir, StartAt::Beginning).map(Some),
            Resume::At(at) | Resume::SegmentAfter(at) => at,
        };
        let Some(segments) = Segments::scan(&self.dir)? else {
            return Ok(None);
        };
        let size = segments.segment_size;
        let index = at / size;
        let here = match self.resume {
            Resume::At(_) if segments.indexes.contains(&index) => {
                Some(if at % size < HEADER_LEN as u64 {
                    // The end of the segment before: the start of this one.
                    segments.start_of(index).0
                } else {
                    at
                })
            }
            _ => segments
                .indexes
                .iter()
                .find(|&&i| i > index)
                .map(|&i| segments.start_of(i).0),
        };
        let Some(position) = here else {
            if segments
                .indexes
                .last()
                .is_some_and(|&newest| newest < index)
            {
                // Every segment is older than where we were: the journal was started again.
                return self.open_new_journal().map(Some);
            }
            return Ok(None);
        };
        if self.resume != Resume::At(position) {
            tracing::warn!(
                from = position,
                stopped_at = at,
                "the rest of a journal segment cannot be read: going on with the next one"
            );
        }
        self.resume = Resume::At(position);
        let reader = FrameReader::open(&self.dir, StartAt::Position(Position(position)))?;
        if position % size > HEADER_LEN as u64
            && self
                .epoch
                .is_some_and(|epoch| epoch != reader.tailer().epoch())
        {
            // Mid-segment, yet another writer run: the file was replaced by a new journal.
            return self.open_new_journal().map(Some);
        }
        Ok(Some(reader))
    }

    /// The journal was started again while the follower had no reader: it follows the new one
    /// from its beginning, as the tailer does when it sees a journal replaced.
    fn open_new_journal(&mut self) -> Result<FrameReader, ShmError> {
        tracing::info!(
            dir = %self.dir.display(),
            "a new journal: following it from its beginning"
        );
        self.resume = Resume::Beginning;
        self.epoch = None;
        self.forget_pending();
        FrameReader::open(&self.dir, StartAt::Beginning)
    }

    fn note_journal_error(&mut self, e: &ShmError) {
        let text = e.to_string();
        if self.journal_error.as_deref() != Some(text.as_str()) {
            match e {
                ShmError::NoJournal { .. } => tracing::info!(error = %text, "no journal yet"),
                _ => tracing::error!(error = %text, "cannot read the journal"),
            }
        }
        self.journal_error = Some(text);
    }

    fn on_frame(&mut self, meta: FrameMeta, cal: TscCalibration, payload: &[u8]) {
        self.last_frame_unix_ns = Some(meta.unix_ns);
        let rt = meta.record_type;
        if rt == record_type::INSTRUMENT_DEF {
            self.decoder.learn(rt, payload);
            if let Some(def) = levibot_shm::records::InstrumentDef::from_payload(payload)
                && let Some(instrument) = self.decoder.instrument(def.instrument_id)
                && (self.by_symbol.len() < LABEL_VALUES_MAX
                    || self.by_symbol.contains_key(&*instrument.symbol))
            {
                self.by_symbol
                    .insert(instrument.symbol.to_string(), instrument.clone());
            }
        } else if rt == record_type::RAW_MESSAGE {
            let header_len = 16;
            if payload.len() >= header_len {
                let recv_tsc = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                if self.raw_pending.len() == RAW_PENDING_MAX
                    && let Some(old) = self.raw_pending.pop_front()
                {
                    self.count_stream("other", old.bytes);
                }
                self.raw_pending.push_back(PendingRaw {
                    recv_tsc,
                    bytes: (payload.len() - header_len) as u64,
                    rounds: 0,
                });
            }
        } else if rt == record_type::BOOK_TICKER {
            if let Some(r) = BookTicker::from_payload(payload) {
                self.classify(r.recv_tsc, "book_ticker");
            }
        } else if rt == record_type::DEPTH_DIFF {
            if let Some(r) = DepthDiff::from_payload(payload)
                && r.chunk == 0
            {
                self.classify(r.recv_tsc, "depth");
            }
        } else if rt == record_type::TRADE {
            if let Some(r) = Trade::from_payload(payload) {
                self.classify(r.recv_tsc, "trade");
            }
        } else if rt == record_type::AGG_TRADE {
            if let Some(r) = AggTrade::from_payload(payload) {
                self.classify(r.recv_tsc, "agg_trade");
            }
        } else if rt == record_type::ORDER_SENT {
            if let Some(sent) = SentOrder::from_payload(payload) {
                self.on_sent(&sent, cal);
            }
        } else if rt == record_type::EXECUTION_REPORT {
            if let Some(report) = ExecutionReport::from_payload(payload) {
                self.on_report(&report, cal);
            }
        } else if rt == record_type::RISK_REJECT {
            // Counted from the counters file (`risk.reject.<check>`); only a check the
            // counters do not name is counted here.
            if let Some(reject) = RiskReject::from_payload(payload)
                && RiskCheck::from_code(reject.check).is_none()
            {
                let check = format!("check_{}", reject.check);
                if let Some(c) = bounded_get(
                    &self.metrics.risk_rejects,
                    &mut self.risk_checks_created,
                    "check",
                    check,
                ) {
                    c.inc();
                }
            }
        }
    }

    /// The raw message with this receive stamp is of `stream`.
    fn classify(&mut self, recv_tsc: u64, stream: &'static str) {
        if let Some(at) = self.raw_pending.iter().position(|r| r.recv_tsc == recv_tsc) {
            // Those before it had no decoded record: skipped streams, or undecodable.
            for old in self.raw_pending.drain(..at).collect::<Vec<_>>() {
                self.count_stream("other", old.bytes);
            }
            let raw = self.raw_pending.pop_front().expect("found above");
            self.count_stream(stream, raw.bytes);
        }
    }

    fn age_raw_pending(&mut self) {
        while let Some(front) = self.raw_pending.front_mut() {
            if front.rounds < 2 {
                break;
            }
            let bytes = front.bytes;
            self.raw_pending.pop_front();
            self.count_stream("other", bytes);
        }
        for raw in &mut self.raw_pending {
            raw.rounds = raw.rounds.saturating_add(1);
        }
    }

    fn count_stream(&self, stream: &'static str, bytes: u64) {
        let key = labels("stream", stream);
        self.metrics.feed_messages.get_or_create(&key).inc();
        self.metrics.feed_bytes.get_or_create(&key).inc_by(bytes);
    }

    fn on_sent(&mut self, sent: &SentOrder, cal: TscCalibration) {
        let m = &self.metrics;
        let span = |from: u64, to: u64| ns_to_s(cal.ticks_to_ns(to.saturating_sub(from)));
        m.decode.observe(span(sent.recv_tsc, sent.decoded_tsc));
        m.strategy
            .observe(span(sent.strategy_start_tsc, sent.request.created_tsc));
        m.risk
            .observe(span(sent.risk_start_tsc, sent.request.risk_tsc));
        m.encode
            .observe(span(sent.encode_start_tsc, sent.encoded_tsc));
        m.tick_to_trade
            .observe(span(sent.recv_tsc, sent.encoded_tsc));
        let id = sent.request.client_order_id;
        if self.ack_pending.len() >= ACK_PENDING_MAX
            && let Some(oldest) = self.ack_order.pop_front()
        {
            self.ack_pending.remove(&oldest);
        }
        if self.ack_pending.insert(id, sent.encoded_tsc).is_none() {
            self.ack_order.push_back(id);
        }
    }

    fn on_report(&mut self, report: &ExecutionReport, cal: TscCalibration) {
        let m = &self.metrics;
        match report.exec_type {
            // The venue took the request: a new order, or a replace of one.
            exec_type::NEW | exec_type::REPLACED => {
                m.orders_acked.inc();
            }
            exec_type::TRADE => {
                m.orders_filled.inc();
            }
            exec_type::CANCELED | exec_type::EXPIRED => {
                m.orders_cancelled.inc();
            }
            exec_type::REJECTED => {
                if let Some(c) = bounded_get(
                    &m.orders_rejected,
                    &mut self.reject_reasons_created,
                    "reason",
                    reject_reason::name(report.reject_reason),
                ) {
                    c.inc();
                }
            }
            _ => {}
        }
        if let Some(encoded_tsc) = self.ack_pending.remove(&report.client_order_id) {
            // The id stays in `ack_order` until it comes up for eviction (removing from the
            // middle of a queue is O(n)); evicting an id no longer pending is harmless.
            m.venue_ack.observe(ns_to_s(
                cal.ticks_to_ns(report.recv_tsc.saturating_sub(encoded_tsc)),
            ));
        }
    }

    /// The daemon's heartbeat from the newest segment.
    fn heartbeat_unix_ns(&mut self) -> Option<u64> {
        if let Some(head) = &mut self.head {
            match head.poll(FRAMES_PER_ROUND_MAX, |_| {}) {
                Ok(polled) if polled.frames < FRAMES_PER_ROUND_MAX => {}
                _ => self.head = None,
            }
        }
        if self.head.is_none() {
            self.head = Tailer::open(&self.dir, StartAt::End).ok();
        }
        let beat = self.head.as_ref()?.writer_heartbeat_unix_ns();
        (beat != 0).then_some(beat)
    }

    fn read_counters(&mut self) {
        let path = counters_path(&self.dir);
        if self
            .counters
            .as_ref()
            .is_some_and(CountersReader::is_replaced)
        {
            tracing::info!(path = %path.display(), "the counters file was replaced (daemon restart): reopening");
            self.counters = None;
            // Series of the old run that the new one may not have.
            for family in [
                &self.metrics.position,
                &self.metrics.pnl,
                &self.metrics.realised_pnl,
            ] {
                family.clear();
            }
            self.metrics.open_orders.clear();
            self.metrics.model_info.clear();
            self.model_by_symbol.clear();
            self.metrics.agent_duty_cycles.clear();
            self.metrics.agent_cycle_max.clear();
        }
        if self.counters.is_none() {
            self.counters = CountersReader::open(&path).ok();
        }
        let Some(counters) = &self.counters else {
            return;
        };
        let m = &self.metrics;
        let mut mids: HashMap<String, (Option<i64>, Option<i64>)> = HashMap::new();
        // A daemon that does not publish it has not halted by itself.
        let mut halt_code = halt_reason::NONE;
        let mut trading_state = None;
        let mut positions: Vec<(String, i64)> = Vec::new();
        let mut models: Vec<(String, u64)> = Vec::new();
        for c in counters.counters() {
            let v = c.value;
            let count = u64::try_from(v).unwrap_or(0);
            let label = c.label.as_str();
            match label {
                label::GATEWAY_ORDERS_SENT => set_counter(&m.orders_sent, count),
                label::FEED_DECODE_ERRORS => set_counter(&m.feed_decode_errors, count),
                label::FEED_STREAM_GAPS => set_counter(&m.feed_sequence_gaps, count),
                label::STRATEGY_BOOK_RESYNCS => set_counter(&m.book_resyncs, count),
                label::MARKET_DATA_ROLLOVERS => set_counter(&m.feed_rollovers, count),
                label::MARKET_DATA_ROLLOVER_FALLBACKS => {
                    set_counter(&m.feed_rollover_fallbacks, count);
                }
                label::RISK_TRADING_STATE => {
                    m.trading_state.set(v);
                    m.kill_switch.set(i64::from(v == 2));
                    trading_state = Some(v);
                }
                label::DAEMON_HALT_REASON => halt_code = v,
                label::DAEMON_SELF_HALTS => set_counter(&m.daemon_self_halts, count),
                label::DAEMON_CHECKPOINTS => set_counter(&m.daemon_checkpoints, count),
                label::DAEMON_CHECKPOINT_FAILURES => {
                    set_counter(&m.daemon_checkpoint_failures, count)
                }
                label::DAEMON_LAST_CHECKPOINT_UNIX_S => {
                    m.daemon_last_checkpoint.set(v);
                }
                label::JOURNAL_RETENTION_FLOOR_HELD => {
                    set_counter(&m.journal_retention_floor_held, count);
                }
                label::JOURNAL_RETENTION_ARCHIVE_HELD => {
                    m.journal_retention_archive_held.set(v);
                }
                label::JOURNAL_RETENTION_ARCHIVE_HELD_BYTES => {
                    m.journal_retention_archive_held_bytes.set(v);
                }
                label::JOURNAL_RETENTION_UNARCHIVED_PRUNED => {
                    set_counter(&m.journal_retention_unarchived_pruned, count);
                }
                label::JOURNAL_RETENTION_WATERMARK_UNREADABLE => {
                    set_counter(&m.journal_retention_watermark_unreadable, count);
                }
                label::ORDER_ENTRY_REPORTS_DROPPED => {
                    set_counter(&m.order_entry_reports_dropped, count);
                }
                label::ORDER_ENTRY_GAPS_UNFILLED => {
                    set_counter(&m.order_entry_gaps_unfilled, count);
                }
                label::MARKET_DATA_UP => {
                    m.venue_connected
                        .get_or_create(&labels("session", "market_data"))
                        .set(v);
                }
                label::ORDER_ENTRY_UP => {
                    m.venue_connected
                        .get_or_create(&labels("session", "order_entry"))
                        .set(v);
                }
                // The market-data session counts connections; all but the first are
                // reconnections.
                label::MARKET_DATA_CONNECTS => set_counter(
                    &m.venue_reconnects
                        .get_or_create(&labels("session", "market_data")),
                    count.saturating_sub(1),
                ),
                label::ORDER_ENTRY_RECONNECTS => set_counter(
                    &m.venue_reconnects
                        .get_or_create(&labels("session", "order_entry")),
                    count,
                ),
                _ => {}
            }
            if let Some(check) = label.strip_prefix(label::RISK_REJECT_PREFIX) {
                if let Some(c) = bounded_get(
                    &m.risk_rejects,
                    &mut self.risk_checks_created,
                    "check",
                    check.to_owned(),
                ) {
                    set_counter(&c, count);
                }
            } else if let Some(sym) = label.strip_prefix(label::RISK_POSITION_UNITS_PREFIX) {
                positions.push((sym.to_owned(), v));
                if let Some(i) = self.by_symbol.get(sym)
                    && let Some(d) = i.qty.decimal(v)
                {
                    set_float(&m.position.get_or_create(&labels("symbol", sym)), d);
                }
            } else if let Some(sym) = label.strip_prefix(label::RISK_PNL_MICROQUOTE_PREFIX) {
                m.pnl
                    .get_or_create(&labels("symbol", sym))
                    .set(v as f64 / MICROQUOTE_PER_QUOTE as f64);
            } else if let Some(sym) = label.strip_prefix(label::RISK_REALISED_PNL_MICROQUOTE_PREFIX)
            {
                m.realised_pnl
                    .get_or_create(&labels("symbol", sym))
                    .set(v as f64 / MICROQUOTE_PER_QUOTE as f64);
            } else if let Some(sym) = label.strip_prefix(label::RISK_OPEN_ORDERS_PREFIX) {
                m.open_orders.get_or_create(&labels("symbol", sym)).set(v);
            } else if let Some(sym) = label.strip_prefix(label::STRATEGY_MODEL_ID_PREFIX) {
                models.push((sym.to_owned(), v as u64));
            } else if let Some(rest) = label.strip_prefix(label::BOOK_PREFIX) {
                if let Some(sym) = rest.strip_suffix(".bid_px") {
                    mids.entry(sym.to_owned()).or_default().0 = Some(v);
                } else if let Some(sym) = rest.strip_suffix(".ask_px") {
                    mids.entry(sym.to_owned()).or_default().1 = Some(v);
                }
            } else if let Some(rest) = label.strip_prefix(label::AGENT_PREFIX) {
                if let Some(agent) = rest.strip_suffix(".duty_cycles") {
                    set_counter(
                        &m.agent_duty_cycles.get_or_create(&labels("agent", agent)),
                        count,
                    );
                } else if let Some(agent) = rest.strip_suffix(".cycle_ns_max") {
                    m.agent_cycle_max
                        .get_or_create(&labels("agent", agent))
                        .set(v as f64 / 1e9);
                }
            }
        }
        // Exposure: positions x mid (the daemon publishes no exposure counter).
        let (mut gross, mut net) = (0.0, 0.0);
        for (sym, units) in positions {
            let Some(instrument) = self.by_symbol.get(&sym) else {
                continue;
            };
            let Some((Some(bid), Some(ask))) = mids.get(&sym).copied() else {
                continue;
            };
            if bid <= 0 || ask <= 0 {
                continue;
            }
            let (Some(qty), Some(bid), Some(ask)) = (
                instrument.qty.decimal(units),
                instrument.price.decimal(bid),
                instrument.price.decimal(ask),
            ) else {
                continue;
            };
            let value = to_f64(qty) * (to_f64(bid) + to_f64(ask)) / 2.0;
            gross += value.abs();
            net += value;
        }
        m.exposure
            .get_or_create(&labels("kind", "gross"))
            .set(gross);
        m.exposure.get_or_create(&labels("kind", "net")).set(net);
        self.trading_state = trading_state;
        self.set_halt_reason(halt_code);
        self.set_models(models);
    }

    /// `levibot_model_info{symbol, model_id}`: one series per symbol, the old one removed
    /// when its model changes (a reload).
    fn set_models(&mut self, models: Vec<(String, u64)>) {
        let family = &self.metrics.model_info;
        // Labels are made only when a symbol's model changes, not every round.
        let series = |symbol: &str, id: u64| {
            let model_id = if id == 0 {
                "none".to_owned()
            } else {
                model_id_hex(id)
            };
            vec![("symbol", symbol.to_owned()), ("model_id", model_id)]
        };
        for (symbol, id) in models {
            let was = self.model_by_symbol.get(&symbol).copied();
            if was == Some(id) || (was.is_none() && self.model_by_symbol.len() >= LABEL_VALUES_MAX)
            {
                continue;
            }
            if let Some(old) = was {
                family.remove(&series(&symbol, old));
            }
            family.get_or_create(&series(&symbol, id)).set(1);
            self.model_by_symbol.insert(symbol, id);
        }
    }

    /// `levibot_daemon_halt_reason`: 1 for `code`'s reason, 0 for every other. A code this
    /// build does not name (a newer daemon's) is `reason="code_<n>"` while it is in force.
    fn set_halt_reason(&mut self, code: i64) {
        self.halt_code = code;
        let family = &self.metrics.daemon_halt_reason;
        let name = halt_reason::name(code);
        for reason in super::metrics::halt_reasons() {
            family
                .get_or_create(&labels("reason", reason))
                .set(i64::from(name == Some(reason)));
        }
        let unknown = (code != halt_reason::NONE && name.is_none()).then_some(code);
        if unknown != self.halt_unknown {
            if let Some(old) = self.halt_unknown {
                family.remove(&labels("reason", format!("code_{old}")));
            }
            if let Some(new) = unknown {
                family
                    .get_or_create(&labels("reason", format!("code_{new}")))
                    .set(1);
            }
            self.halt_unknown = unknown;
        }
    }

    /// Why trading is halted, for /readyz: the daemon's own reason, or the kill switch.
    fn halt_text(&self) -> Option<String> {
        if self.halt_code != halt_reason::NONE {
            let reason = halt_reason::name(self.halt_code)
                .map_or_else(|| format!("code_{}", self.halt_code), str::to_owned);
            Some(format!(
                "trading halted by the daemon itself: {reason} (`levictl status` says more; \
                 `levictl resume` lifts it)"
            ))
        } else if self.trading_state == Some(2) {
            Some("trading halted (kill switch engaged)".to_owned())
        } else {
            None
        }
    }

    /// Sets the up/ready gauges; `Err(reasons)` when not ready (for /readyz).
    fn readiness(&self, now: u64, heartbeat: Option<u64>) -> Result<(), String> {
        let m = &self.metrics;
        let mut reasons: Vec<String> = Vec::new();
        let fresh = match heartbeat {
            Some(beat) => {
                let age = now.saturating_sub(beat);
                m.heartbeat_age.set(ns_to_s(age as f64));
                if age < HEARTBEAT_FRESH_NS {
                    true
                } else {
                    reasons.push(format!(
                        "daemon heartbeat is {:.1} s old",
                        ns_to_s(age as f64)
                    ));
                    false
                }
            }
            None => {
                reasons.push(match &self.journal_error {
                    Some(e) => format!("no journal heartbeat: {e}"),
                    None => "no journal heartbeat".to_owned(),
                });
                false
            }
        };
        m.daemon_up.set(i64::from(fresh));
        let mut agents_fresh = false;
        match &self.counters {
            None => reasons.push(format!(
                "no counters file at {}",
                counters_path(&self.dir).display()
            )),
            Some(counters) => {
                let mut phase = None;
                let mut up = [None, None];
                for c in counters.counters() {
                    match c.label.as_str() {
                        label::DAEMON_PHASE => phase = Some(c.value),
                        label::DAEMON_AGENTS_FRESH => agents_fresh = c.value == 1,
                        label::MARKET_DATA_UP => up[0] = Some(c.value),
                        label::ORDER_ENTRY_UP => up[1] = Some(c.value),
                        _ => {}
                    }
                }
                if phase != Some(Phase::Running as i64) {
                    reasons.push(format!("daemon phase is {}", phase_name(phase)));
                }
                for (session, value) in ["market_data", "order_entry"].iter().zip(up) {
                    if value != Some(1) {
                        reasons.push(format!("venue session {session} is down"));
                    }
                }
            }
        }
        let ready = reasons.is_empty();
        m.daemon_ready.set(i64::from(ready && agents_fresh));
        if ready {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

/// An error that reading again at the same place cannot cure: the segment is corrupt, or gone.
fn unreadable(e: &ShmError) -> bool {
    matches!(
        e,
        ShmError::BadMagic { .. }
            | ShmError::UnsupportedVersion { .. }
            | ShmError::Truncated { .. }
            | ShmError::CorruptHeader { .. }
            | ShmError::CorruptFrame { .. }
            | ShmError::InvalidPosition { .. }
            | ShmError::SegmentMissing { .. }
    )
}

fn ns_to_s(ns: f64) -> f64 {
    ns / 1e9
}

fn to_f64(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

fn set_float(gauge: &FloatGauge, d: rust_decimal::Decimal) {
    gauge.set(to_f64(d));
}

fn phase_name(phase: Option<i64>) -> String {
    match phase {
        None => "unknown (no daemon.phase counter)".to_owned(),
        Some(v) => {
            Phase::from_code(v).map_or_else(|| format!("unknown ({v})"), |p| p.name().to_owned())
        }
    }
}

/// A family member, unless the family already holds `LABEL_VALUES_MAX` others.
fn bounded_get<M: Clone + Default>(
    family: &prometheus_client::metrics::family::Family<super::metrics::Labels, M>,
    created: &mut usize,
    key: &'static str,
    value: String,
) -> Option<M> {
    let set = labels(key, value);
    if let Some(metric) = family.get(&set) {
        return Some(metric.clone());
    }
    if *created >= LABEL_VALUES_MAX {
        return None;
    }
    *created += 1;
    Some(family.get_or_create_owned(&set))
}

/// Bytes of the segment files (raw and compressed) in the journal directory.
fn journal_bytes(dir: &Path) -> u64 {
    list_segments(dir).map_or(0, |segments| {
        segments
            .iter()
            .filter_map(|s| std::fs::metadata(&s.path).ok())
            .map(|m| m.len())
            .sum()
    })
}
