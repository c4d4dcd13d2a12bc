//! The exporter's Prometheus registry: every metric family of the contract in docs/metrics.md,
//! encoded by `prometheus-client` (OpenMetrics text, which Prometheus and promtool read).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use levibot_shm::codes::halt_reason;

/// A metric's labels.
pub type Labels = Vec<(&'static str, String)>;
/// A gauge of a decimal value (positions, PnL, seconds).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Buckets of the per-stage histograms (seconds): the DESIGN.md budgets (decode 80/250 ns,
/// strategy 100 ns, risk 50 ns, encode 150 ns) and multiples.
pub const STAGE_BUCKETS_S: [f64; 9] = [
    25e-9, 50e-9, 80e-9, 100e-9, 150e-9, 250e-9, 500e-9, 1e-6, 5e-6,
];
/// Buckets of tick-to-trade (seconds): p50 <= 1 us, p99 <= 5 us fused.
pub const TICK_TO_TRADE_BUCKETS_S: [f64; 8] =
    [0.5e-6, 1e-6, 2e-6, 5e-6, 10e-6, 50e-6, 100e-6, 1e-3];
/// The venue ack round trip (seconds): 10 us to 1 s, 1-2-5 steps (exact bounds, so the
/// dashboard and alert rules can name them).
pub const VENUE_ACK_BUCKETS_S: [f64; 16] = [
    10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1, 0.2,
    0.5, 1.0,
];

/// The stream label values of the feed metrics.
pub const STREAMS: [&str; 5] = ["depth", "book_ticker", "trade", "agg_trade", "other"];
/// The session label values of the venue metrics.
pub const SESSIONS: [&str; 2] = ["market_data", "order_entry"];
/// The reason label values of `levibot_daemon_halt_reason`: every named halt reason but `none`
/// (no series is 1 when the daemon did not halt by itself).
pub fn halt_reasons() -> impl Iterator<Item = &'static str> {
    halt_reason::ALL
        .iter()
        .filter(|(code, _)| *code != halt_reason::NONE)
        .map(|(_, name)| *name)
}

pub fn labels(key: &'static str, value: impl Into<String>) -> Labels {
    vec![(key, value.into())]
}

/// Sets a counter to an absolute value read elsewhere (the daemon's counters file). A smaller
/// value than before is a reset (a daemon restart), which Prometheus handles.
pub fn set_counter(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

pub struct Metrics {
    pub registry: Registry,
    pub build_info: Family<Labels, Gauge>,
    pub daemon_up: Gauge,
    pub daemon_ready: Gauge,
    pub heartbeat_age: FloatGauge,
    pub trading_state: Gauge,
    pub kill_switch: Gauge,
    /// 1 for the reason of the daemon's own halt in force, 0 for the others
    /// ([`halt_reasons`]; a code this build does not name appears as `code_<n>`).
    pub daemon_halt_reason: Family<Labels, Gauge>,
    pub daemon_self_halts: Counter,
    pub daemon_checkpoints: Counter,
    pub daemon_checkpoint_failures: Counter,
    pub daemon_last_checkpoint: Gauge,
    pub venue_connected: Family<Labels, Gauge>,
    pub venue_reconnects: Family<Labels, Counter>,
    pub feed_messages: Family<Labels, Counter>,
    pub feed_bytes: Family<Labels, Counter>,
    pub feed_decode_errors: Counter,
    pub feed_sequence_gaps: Counter,
    pub book_resyncs: Counter,
    /// Market-data connections rolled over before the venue's cut (make before break), and
    /// those that fell back to a snapshot resync.
    pub feed_rollovers: Counter,
    pub feed_rollover_fallbacks: Counter,
    pub orders_sent: Counter,
    pub orders_acked: Counter,
    pub orders_filled: Counter,
    pub orders_cancelled: Counter,
    pub orders_rejected: Family<Labels, Counter>,
    pub risk_rejects: Family<Labels, Counter>,
    pub position: Family<Labels, FloatGauge>,
    pub pnl: Family<Labels, FloatGauge>,
    pub realised_pnl: Family<Labels, FloatGauge>,
    pub open_orders: Family<Labels, Gauge>,
    /// 1 for the model each instrument's strategy votes with (`{symbol, model_id}`).
    pub model_info: Family<Labels, Gauge>,
    pub exposure: Family<Labels, FloatGauge>,
    pub agent_duty_cycles: Family<Labels, Counter>,
    pub agent_cycle_max: Family<Labels, FloatGauge>,
    pub decode: Histogram,
    pub strategy: Histogram,
    pub risk: Histogram,
    pub encode: Histogram,
    pub tick_to_trade: Histogram,
    pub venue_ack: Histogram,
    pub journal_bytes: Gauge,
    pub journal_limit_bytes: Gauge,
    /// The filesystem the journal is on (`/dev/shm`): what is left, and its size.
    pub journal_fs_avail_bytes: Gauge,
    pub journal_fs_size_bytes: Gauge,
    pub journal_retention_floor_held: Counter,
    /// Retention that waits for the archive (the daemon's counters).
    pub journal_retention_archive_held: Gauge,
    pub journal_retention_archive_held_bytes: Gauge,
    pub journal_retention_unarchived_pruned: Counter,
    pub journal_retention_watermark_unreadable: Counter,
    /// The archiver's counters (`archiver.lvc`), by target.
    pub archive_segments: Family<Labels, Counter>,
    pub archive_bytes: Family<Labels, Counter>,
    pub archive_failures: Family<Labels, Counter>,
    pub archive_pending: Family<Labels, Gauge>,
    pub archive_lag: Family<Labels, Gauge>,
    pub order_entry_reports_dropped: Counter,
    pub order_entry_gaps_unfilled: Counter,
    pub journal_lag: FloatGauge,
    /// Journal read errors (a corrupt frame, a segment that cannot be opened) the follower
    /// resumed after.
    pub journal_read_errors: Counter,
}

/// What `levibot_build_info` carries.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub rustc: &'static str,
}

impl BuildInfo {
    /// This binary's, from exporter/build.rs (`unknown` where git or rustc could not say).
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("LEVIBOT_GIT_REVISION").unwrap_or("unknown"),
            rustc: option_env!("LEVIBOT_RUSTC_VERSION").unwrap_or("unknown"),
        }
    }
}

impl Metrics {
    pub fn new(build: &BuildInfo, journal_limit_bytes: u64) -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            build_info: Family::default(),
            daemon_up: Gauge::default(),
            daemon_ready: Gauge::default(),
            heartbeat_age: FloatGauge::default(),
            trading_state: Gauge::default(),
            kill_switch: Gauge::default(),
            daemon_halt_reason: Family::default(),
            daemon_self_halts: Counter::default(),
            daemon_checkpoints: Counter::default(),
            daemon_checkpoint_failures: Counter::default(),
            daemon_last_checkpoint: Gauge::default(),
            venue_connected: Family::default(),
            venue_reconnects: Family::default(),
            feed_messages: Family::default(),
            feed_bytes: Family::default(),
            feed_decode_errors: Counter::default(),
            feed_sequence_gaps: Counter::default(),
            book_resyncs: Counter::default(),
            feed_rollovers: Counter::default(),
            feed_rollover_fallbacks: Counter::default(),
            orders_sent: Counter::default(),
            orders_acked: Counter::default(),
            orders_filled: Counter::default(),
            orders_cancelled: Counter::default(),
            orders_rejected: Family::default(),
            risk_rejects: Family::default(),
            position: Family::default(),
            pnl: Family::default(),
            realised_pnl: Family::default(),
            open_orders: Family::default(),
            model_info: Family::default(),
            exposure: Family::default(),
            agent_duty_cycles: Family::default(),
            agent_cycle_max: Family::default(),
            decode: Histogram::new(STAGE_BUCKETS_S),
            strategy: Histogram::new(STAGE_BUCKETS_S),
            risk: Histogram::new(STAGE_BUCKETS_S),
            encode: Histogram::new(STAGE_BUCKETS_S),
            tick_to_trade: Histogram::new(TICK_TO_TRADE_BUCKETS_S),
            venue_ack: Histogram::new(VENUE_ACK_BUCKETS_S),
            journal_bytes: Gauge::default(),
            journal_limit_bytes: Gauge::default(),
            journal_fs_avail_bytes: Gauge::default(),
            journal_fs_size_bytes: Gauge::default(),
            journal_retention_floor_held: Counter::default(),
            journal_retention_archive_held: Gauge::default(),
            journal_retention_archive_held_bytes: Gauge::default(),
            journal_retention_unarchived_pruned: Counter::default(),
            journal_retention_watermark_unreadable: Counter::default(),
            archive_segments: Family::default(),
            archive_bytes: Family::default(),
            archive_failures: Family::default(),
            archive_pending: Family::default(),
            archive_lag: Family::default(),
            order_entry_reports_dropped: Counter::default(),
            order_entry_gaps_unfilled: Counter::default(),
            journal_lag: FloatGauge::default(),
            journal_read_errors: Counter::default(),
        };
        m.build_info
            .get_or_create(&vec![
                ("version", build.version.to_owned()),
                ("revision", build.revision.to_owned()),
                ("rustc", build.rustc.to_owned()),
            ])
            .set(1);
        m.journal_limit_bytes
            .set(i64::try_from(journal_limit_bytes).unwrap_or(i64::MAX));
        // Label values known in advance are present from the start (at 0), so that rules and
        // dashboards see a series before the first event.
        for stream in STREAMS {
            let _ = m.feed_messages.get_or_create(&labels("stream", stream));
            let _ = m.feed_bytes.get_or_create(&labels("stream", stream));
        }
        for session in SESSIONS {
            let _ = m.venue_connected.get_or_create(&labels("session", session));
            let _ = m
                .venue_reconnects
                .get_or_create(&labels("session", session));
        }
        for kind in ["gross", "net"] {
            let _ = m.exposure.get_or_create(&labels("kind", kind));
        }
        for reason in halt_reasons() {
            let _ = m
                .daemon_halt_reason
                .get_or_create(&labels("reason", reason));
        }
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        // Counters are registered without `_total`: the encoder appends it.
        r.register(
            "levibot_build_info",
            "Build of the exporter (value 1)",
            self.build_info.clone(),
        );
        r.register(
            "levibot_daemon_up",
            "1 while the daemon's journal heartbeat is fresh (< 5 s)",
            self.daemon_up.clone(),
        );
        r.register(
            "levibot_daemon_ready",
            "1 when the daemon is running, its heartbeat fresh, both venue sessions up and \
             every agent fresh",
            self.daemon_ready.clone(),
        );
        r.register(
            "levibot_daemon_heartbeat_age_seconds",
            "Age of the daemon's journal heartbeat",
            self.heartbeat_age.clone(),
        );
        r.register(
            "levibot_trading_state",
            "Trading state: 0 active, 1 reduce-only, 2 halted",
            self.trading_state.clone(),
        );
        r.register(
            "levibot_kill_switch_engaged",
            "1 when trading is halted",
            self.kill_switch.clone(),
        );
        r.register(
            "levibot_daemon_halt_reason",
            "1 for the reason the daemon halted trading by itself (until an operator resumes), \
             0 for the others",
            self.daemon_halt_reason.clone(),
        );
        r.register(
            "levibot_daemon_self_halts",
            "Times the daemon halted trading by itself",
            self.daemon_self_halts.clone(),
        );
        r.register(
            "levibot_daemon_checkpoints",
            "Checkpoints the daemon wrote into the journal",
            self.daemon_checkpoints.clone(),
        );
        r.register(
            "levibot_daemon_checkpoint_failures",
            "Checkpoint writes that failed",
            self.daemon_checkpoint_failures.clone(),
        );
        r.register(
            "levibot_daemon_last_checkpoint_timestamp_seconds",
            "Unix time of the last checkpoint written (0: none yet in this run)",
            self.daemon_last_checkpoint.clone(),
        );
        r.register(
            "levibot_venue_connected",
            "1 while the venue session is connected",
            self.venue_connected.clone(),
        );
        r.register(
            "levibot_venue_reconnects",
            "Reconnections of the venue session",
            self.venue_reconnects.clone(),
        );
        r.register(
            "levibot_feed_messages",
            "Market-data messages received, by stream",
            self.feed_messages.clone(),
        );
        r.register(
            "levibot_feed_bytes",
            "Market-data bytes received, by stream",
            self.feed_bytes.clone(),
        );
        r.register(
            "levibot_feed_decode_errors",
            "Market-data messages that did not decode",
            self.feed_decode_errors.clone(),
        );
        r.register(
            "levibot_feed_sequence_gaps",
            "Depth stream sequence gaps",
            self.feed_sequence_gaps.clone(),
        );
        r.register(
            "levibot_book_resyncs",
            "Order book resynchronisations",
            self.book_resyncs.clone(),
        );
        r.register(
            "levibot_feed_rollovers",
            "Market-data connections replaced before the venue's cut without a gap",
            self.feed_rollovers.clone(),
        );
        r.register(
            "levibot_feed_rollover_fallbacks",
            "Rollovers where the new connection did not catch up and books resynced",
            self.feed_rollover_fallbacks.clone(),
        );
        r.register(
            "levibot_orders_sent",
            "Orders sent to the venue",
            self.orders_sent.clone(),
        );
        r.register(
            "levibot_orders_acked",
            "Orders the venue acknowledged (execution reports of type New)",
            self.orders_acked.clone(),
        );
        r.register(
            "levibot_orders_filled",
            "Fills (execution reports of type Trade, partial fills included)",
            self.orders_filled.clone(),
        );
        r.register(
            "levibot_orders_cancelled",
            "Orders cancelled or expired (execution reports)",
            self.orders_cancelled.clone(),
        );
        r.register(
            "levibot_orders_rejected",
            "Orders rejected by the venue or the gateway, by reason code",
            self.orders_rejected.clone(),
        );
        r.register(
            "levibot_risk_rejects",
            "Order requests refused by pre-trade risk, by check",
            self.risk_rejects.clone(),
        );
        r.register(
            "levibot_position",
            "Position in base asset units",
            self.position.clone(),
        );
        r.register(
            "levibot_pnl",
            "PnL in quote asset units, realised + marked",
            self.pnl.clone(),
        );
        r.register(
            "levibot_realised_pnl",
            "Realised PnL in quote asset units",
            self.realised_pnl.clone(),
        );
        r.register(
            "levibot_open_orders",
            "Open orders",
            self.open_orders.clone(),
        );
        r.register(
            "levibot_model_info",
            "1 for the model each instrument's strategy votes with (model_id: the first 16 hex \
             digits of the model file's sha256sum; none: no model, the weights or a strategy \
             without one)",
            self.model_info.clone(),
        );
        r.register(
            "levibot_exposure",
            "Exposure in quote asset units (positions x book mid)",
            self.exposure.clone(),
        );
        r.register(
            "levibot_agent_duty_cycles",
            "Duty cycles of the agent",
            self.agent_duty_cycles.clone(),
        );
        r.register(
            "levibot_agent_cycle_max_seconds",
            "Longest duty cycle of the agent",
            self.agent_cycle_max.clone(),
        );
        r.register(
            "levibot_decode_seconds",
            "Decode time of the message that caused each sent order",
            self.decode.clone(),
        );
        r.register(
            "levibot_strategy_seconds",
            "Strategy time of each sent order",
            self.strategy.clone(),
        );
        r.register(
            "levibot_risk_seconds",
            "Risk check time of each sent order",
            self.risk.clone(),
        );
        r.register(
            "levibot_encode_seconds",
            "Encode time of each sent order",
            self.encode.clone(),
        );
        r.register(
            "levibot_tick_to_trade_seconds",
            "Bytes handed to the decoder to order bytes ready",
            self.tick_to_trade.clone(),
        );
        r.register(
            "levibot_venue_ack_seconds",
            "Order bytes ready to the venue's first execution report",
            self.venue_ack.clone(),
        );
        r.register(
            "levibot_journal_bytes",
            "Bytes of the segment files in the journal directory",
            self.journal_bytes.clone(),
        );
        r.register(
            "levibot_journal_limit_bytes",
            "The journal's size limit (--journal-limit-bytes)",
            self.journal_limit_bytes.clone(),
        );
        r.register(
            "levibot_journal_filesystem_avail_bytes",
            "Bytes free for the daemon on the journal's filesystem",
            self.journal_fs_avail_bytes.clone(),
        );
        r.register(
            "levibot_journal_filesystem_size_bytes",
            "Size of the journal's filesystem",
            self.journal_fs_size_bytes.clone(),
        );
        r.register(
            "levibot_journal_retention_floor_held",
            "Times retention kept segments past its size limit because recovery needs them",
            self.journal_retention_floor_held.clone(),
        );
        r.register(
            "levibot_journal_retention_archive_held_segments",
            "Segments retention keeps past its age or size limit because the archive does not \
             have them yet",
            self.journal_retention_archive_held.clone(),
        );
        r.register(
            "levibot_journal_retention_archive_held_bytes",
            "Bytes of the segments retention keeps for the archive",
            self.journal_retention_archive_held_bytes.clone(),
        );
        r.register(
            "levibot_journal_retention_unarchived_pruned",
            "Segments retention pruned before the archive had them (the hard limit forced it)",
            self.journal_retention_unarchived_pruned.clone(),
        );
        r.register(
            "levibot_journal_retention_watermark_unreadable",
            "Times the archiver's watermark became unreadable (retention then takes nothing as \
             archived)",
            self.journal_retention_watermark_unreadable.clone(),
        );
        r.register(
            "levibot_archive_segments",
            "Segments the archiver copied and verified since it started, by target",
            self.archive_segments.clone(),
        );
        r.register(
            "levibot_archive_bytes",
            "Bytes of the segments the archiver copied and verified since it started, by target",
            self.archive_bytes.clone(),
        );
        r.register(
            "levibot_archive_failures",
            "Failed archive attempts (upload, read-back, checksum, manifest), by target",
            self.archive_failures.clone(),
        );
        r.register(
            "levibot_archive_pending_segments",
            "Sealed segments the target does not have yet",
            self.archive_pending.clone(),
        );
        r.register(
            "levibot_archive_lag_seconds",
            "Age of the oldest sealed segment the target does not have yet (0: none waits)",
            self.archive_lag.clone(),
        );
        r.register(
            "levibot_order_entry_reports_dropped",
            "Execution reports that could not be queued for risk (a fill may be missing)",
            self.order_entry_reports_dropped.clone(),
        );
        r.register(
            "levibot_order_entry_gaps_unfilled",
            "Inbound FIX sequence gaps the venue did not fill (a fill may be missing)",
            self.order_entry_gaps_unfilled.clone(),
        );
        r.register(
            "levibot_exporter_journal_lag_seconds",
            "Now minus the time of the last journal frame the exporter read",
            self.journal_lag.clone(),
        );
        r.register(
            "levibot_exporter_journal_read_errors",
            "Journal read errors the exporter resumed after (where it stopped, or past a corrupt \
             frame at the next segment); nothing is counted twice",
            self.journal_read_errors.clone(),
        );
        self
    }

    /// The OpenMetrics text exposition (what Prometheus asks for).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition that `prometheus-client`
/// wrote, for clients that do not ask for OpenMetrics (`promtool check metrics`, curl). The
/// two differ, for what we export, only in the metadata lines: a counter's `# HELP`/`# TYPE`
/// name carries `_total` (its samples already do), and there is no `# UNIT` or `# EOF`. Sample
/// lines, values and escaping are the crate's, unchanged.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
