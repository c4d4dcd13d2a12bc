//! `levibotd`'s configuration: one TOML file, validated all at once at start-up. Every problem is
//! reported together, each under its key's path and with the reason (an unknown key, a wrong
//! type, a value out of range, a core not on this machine, a missing credentials file, a symbol
//! not in exchangeInfo, ...), so that an operator fixes the file in one go. `systemd/levibot.toml`
//! is the commented example.
//!
//! ```toml
//! [daemon]                           # every key optional
//! control_socket = "/dev/shm/levibot/control.sock"  # default <journal.dir>/control.sock
//! control_socket_mode = 0o660        # who may connect: owner and group only (o-rwx)
//! control_ops_group = "levibot-ops"  # may trade on the socket (kill, resume, reload, set); the
//!                                    # rest only status. Set: must be in /etc/group. Absent:
//!                                    # "levibot-ops" if /etc/group has it, else none (only
//!                                    # root and the daemon's user may trade)
//! log_level = "info"                 # tracing filter directives; RUST_LOG wins
//! log_format = "text"                # "text" | "json"
//! lock_memory = true                 # mlockall at start-up
//! cancel_deadline_ms = 5000          # 1..=20000: how long SIGTERM / kill waits for cancels
//! start_timeout_ms = 30000           # 1..=110000 - 2 x cancel_deadline_ms (100000 with the
//!                                    # default): sessions up and books synced within this
//! heartbeat_timeout_ms = 1000        # 10..=60000: a runner whose duty cycles stall is stale
//! reconcile = "cancel_all"           # after a restart: "cancel_all" | "mass_status"
//! empty_journal = "halt"             # no journal at start (a reboot): "halt" | "trade"
//!
//! [journal]                          # every key optional
//! dir = "/dev/shm/levibot"           # levibot_shm::paths::DEFAULT_DIR
//! segment_size_mib = 64              # a power of two in 1..=1024; 3 fit journal.dir's fs
//! prefault = true
//! [journal.retention]
//! compress = true
//! raw_segments_kept = 2              # 0..=1024
//! max_age_hours = 168                # 1..=87600; absent: no age limit
//! max_total_mib = 4096               # >= 2 segments, + 1 segment + counters fit journal.dir's
//!                                    # filesystem; absent: 4096, or half that filesystem if
//!                                    # less (never below 2 segments)
//!
//! [venue]
//! exchange_info = "/etc/levibot/exchangeInfo.json"  # bare JSON or a capture line
//! credentials = "/etc/levibot/credentials.toml"     # required when binance_logon = true
//! [venue.market_data]
//! url = "ws://127.0.0.1:9443"        # ws:// or wss://host[:port], no path
//! rest_url = "http://127.0.0.1:9443" # http:// or https://host[:port], no path; absent: url's
//!                                    # host and port (Binance: another host, see the example)
//! streams = ["depth@100ms", "bookTicker", "aggTrade"]  # Stream::suffix names; one depth stream
//! ping_interval_ms = 20000           # 100..=600000
//! pong_timeout_ms = 10000            # 100..=600000
//! reconnect_after_s = 84600          # 1..=86400: a connection this old is replaced, make
//!                                    # before break (Binance ends them at 24 h)
//! ca_file = "/etc/levibot/ca.pem"    # wss/https only: trust only these CAs (default: web roots)
//! [venue.order_entry]
//! url = "tcp://127.0.0.1:9878"       # tcp:// or tls://host:port (FIX 4.4)
//! sender_comp_id = "LEVIBOT"         # printable ASCII without '=', 1..=32 bytes
//! target_comp_id = "VENUE"
//! heart_bt_int_s = 30                # 1..=3600
//! binance_logon = false              # Ed25519-signed Logon (and ResetSeqNumFlag = Y)
//! ca_file = "/etc/levibot/ca.pem"    # tls only
//!
//! [strategy]
//! kind = "maker"                     # "maker" | "signal" (required)
//! id = 1                             # 0..=65535, stamped on orders
//!
//! [risk]                             # every key required; amounts in the quote asset
//! open_orders_max = 64               # 1..=1024
//! gross_exposure_max = "100000"      # decimal strings (or integers; never floats)
//! net_exposure_max = "100000"
//! loss_max = "1000"
//! loss_state = "reduce_only"         # "reduce_only" | "halted"
//! order_rate = { count_max = 1000, window_ms = 10 }    # count 1..=1024, window 1..=3600000
//! message_rate = { count_max = 1000, window_ms = 10 }
//! fill_rate = { count_max = 100, window_ms = 1000 }
//! duplicate_window_us = 50           # 1..=60000000
//!
//! [[instruments]]                    # 1..=64; instrument ids 0..n in this order
//! symbol = "NKNUSDT"                 # in exchangeInfo
//! collar_bps = 500                   # 1..=10000 (required, as the four below)
//! order_qty_max = "1000"             # base asset
//! order_notional_max = "10000"       # quote asset
//! position_max = "2000"              # base asset
//! open_orders_max = 16               # <= risk.open_orders_max
//! [instruments.maker]                # kind = "maker"; absent keys: the reference values shown
//! half_spread_ticks = 2
//! quote_lots = 100
//! skew_ticks_per_quote = 1.0         # fair price moves this many ticks per quote_lots held
//! requote_threshold_ticks = 0
//! inventory_max_lots = 1000          # >= quote_lots
//! # [instruments.signal]             # kind = "signal"; every key required but the weights
//! # weights = { top_imbalance = 1.0, trade_flow_imbalance = 0.0, microprice_premium = 0.0,
//! #             mid_momentum = 0.0 } # absent weights are 0; not all 0
//! # entry_threshold = 0.5
//! # risk_budget = "5"                # quote asset risked per trade: size = budget / (k x ATR)
//! # atr_multiple = 2.0               # k
//! # take_profit_atr = 2.0
//! # stop_loss_atr = 1.0
//! # qty_max_lots = 100
//!
//! [features]                         # optional; absent keys: the engine's defaults
//! journal = "off"                    # "off", "book" (every book change) or "100ms"
//! mid_half_life_ms = 1000            # EWMA of the mid
//! trade_flow_half_life_ms = 5000
//! atr_bar_ms = 60000
//! atr_bars = 14
//! atr_source = "mid"                 # or "trade"
//!
//! [layout]                           # exactly pipeline::Layout's serde form
//! kind = "fused"
//! pipeline = { core = 1, idle = "busy_spin" }
//! ```
//!
//! Relative paths are relative to the directory of the file that names them.
//!
//! Checks against the machine and the service unit:
//!
//! - The timeouts cannot fight `systemd/levibot.service`. A stop waits up to
//!   `cancel_deadline_ms` for the venue's cancels, then stops the agents and flushes the journal,
//!   within `TimeoutStopSec=` ([`UNIT_TIMEOUT_STOP_S`]); a start waits up to `start_timeout_ms`
//!   for the sessions and books, then reconciles (a mass status and a cancel-all, each up to
//!   `cancel_deadline_ms`) before READY=1, within `TimeoutStartSec=` ([`UNIT_TIMEOUT_START_S`]).
//!   Each keeps [`UNIT_TIMEOUT_MARGIN_S`] to spare: `cancel_deadline_ms <= 20000` and
//!   `start_timeout_ms + 2 x cancel_deadline_ms <= 110000`.
//! - `daemon.control_ops_group` is looked up in `/etc/group` (its gid is `control_ops_gid`).
//! - The journal's filesystem (`statvfs` of `journal.dir`, or of its nearest existing ancestor
//!   before the daemon creates it) must hold three segments (the one being written, the next one
//!   created ahead, the oldest until retention deletes it) and the counters file, and
//!   `max_total_mib` plus one segment and the counters file: retention deletes old segments only
//!   once they take more than `max_total_mib`, after the next segment was created, so a larger
//!   value lets the filesystem fill first. The default is 4096 MiB, or half the filesystem when
//!   that is less (never below two segments): a small `/dev/shm` (a development machine) gets a
//!   smaller journal, not a refusal; a value written in the file is never changed, only checked.
//!
//! The credentials file (TOML, not readable by other users, nor is the key file):
//!
//! ```toml
//! api_key = "..."                    # the API key registered with the Ed25519 public key
//! private_key_file = "ed25519.pem"   # PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes
//! # private_key = """-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----"""  (or inline)
//! message_handling = "sequential"    # optional: "sequential" | "unordered" (tag 25035)
//! ```
//!
//! Validation reads the files the config names, resolves host names, and checks the layout
//! against the CPU set of the calling thread (`runner::available_cores`): call [`load`] from a
//! thread that is not pinned. [`parse_with`] and [`ParseOptions`] can leave host names
//! unresolved (no DNS lookup) and keep every file access inside one directory (the fuzzer does
//! both). Reloads ([`DaemonConfig::reloadable_change`]) may change only risk
//! limits and strategy parameters; [`DaemonConfig::with_limit_set`] edits one risk limit in the
//! text, keeping its comments.
mod daemon;
mod edit;
mod features;
mod host;
mod journal;
mod layout;
mod reader;
mod reload;
mod trading;
mod venue;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use levibot_gateway::fix::{OrderEncoder, SessionConfig};
use levibot_gateway::instrument::{InstrumentTable, RequestWeightLimit};
use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::{RestEndpoint, Stream};
use levibot_shm::JournalConfig;

use levibot_engine::pipeline::Layout;
use levibot_engine::risk::RiskLimits;
use levibot_engine::strategy::maker::MakerParams;
use levibot_engine::strategy::model::SignalModel;
use levibot_engine::strategy::signal::SignalParams;
use reader::{Base, Problems, Section};

pub use daemon::{
    CANCEL_DEADLINE_MS_MAX, CONTROL_OPS_GROUP_DEFAULT, CONTROL_SOCKET_PATH_LEN_MAX,
    LOG_LEVEL_LEN_MAX, START_BUDGET_MS, UNIT_TIMEOUT_MARGIN_S, UNIT_TIMEOUT_START_S,
    UNIT_TIMEOUT_STOP_S,
};
pub use edit::set_key;
pub use features::FeatureSettings;
pub use journal::RETENTION_TOTAL_MIB_DEFAULT;
pub use trading::{DUPLICATE_WINDOW_US_MAX, RATE_WINDOW_MS_MAX};
pub use venue::{
    CA_FILE_LEN_MAX, CREDENTIALS_LEN_MAX, EXCHANGE_INFO_LEN_MAX, STREAMS_DEFAULT, URL_LEN_MAX,
};

/// Largest config file read.
pub const CONFIG_LEN_MAX: u64 = 1 << 20;

/// The whole configuration, validated.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// The file it came from (or a label).
    pub path: PathBuf,
    /// The file's text (journaled at start and on reload).
    pub text: String,
    pub daemon: DaemonSettings,
    pub journal: JournalConfig,
    /// `venue.exchange_info`, resolved.
    pub exchange_info: PathBuf,
    /// The venue's `REQUEST_WEIGHT` limit, from the exchangeInfo's `rateLimits` (`None`: it
    /// lists none, and the feed assumes Binance Spot's 6000 a minute). The feed's snapshot
    /// requests stay within it.
    pub request_weight: Option<RequestWeightLimit>,
    pub market_data: MarketDataSettings,
    pub order_entry: OrderEntrySettings,
    /// The configured symbols only, ids `0..n` in config order.
    pub instruments: InstrumentTable,
    pub strategy_id: u16,
    /// One parameter set per instrument, in id order, in the instrument's units.
    pub strategy: StrategySettings,
    /// Validated (`RiskLimits::validate`).
    pub risk_limits: RiskLimits,
    /// `[features]`: the features' parameters and when they are journaled.
    pub features: FeatureSettings,
    /// Validated against this machine.
    pub layout: Layout,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Resolved: `<journal.dir>/control.sock` unless set.
    pub control_socket: PathBuf,
    pub control_socket_mode: u32,
    /// `control_ops_group`: members may kill, resume, reload and set; other peers the socket
    /// admits may only ask for status.
    pub control_ops_group: String,
    /// Its gid in `/etc/group`; `None` when it was left out and the default group does not exist
    /// (then only root and the daemon's user may trade).
    pub control_ops_gid: Option<u32>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub lock_memory: bool,
    pub cancel_deadline: Duration,
    pub start_timeout: Duration,
    pub heartbeat_timeout: Duration,
    pub reconcile: Reconcile,
    pub empty_journal: EmptyJournal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the daemon does about orders a previous run left at the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconcile {
    /// Cancel them all (one mass cancel) before trading.
    CancelAll,
    /// Ask the venue for their status and adopt them.
    MassStatus,
}

/// What the daemon does when it finds no journal at start (every reboot empties `/dev/shm`):
/// it reconciles with the venue either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyJournal {
    /// Stay halted until an operator resumes (`levictl resume`): the default.
    Halt,
    /// Resume trading once reconciled (the demo).
    Trade,
}

/// `[venue.market_data]`.
#[derive(Clone, Debug)]
pub struct MarketDataSettings {
    pub url: String,
    /// Resolved from the URL's host and port.
    pub addr: SocketAddr,
    /// `host:port` for the Host header.
    pub host: String,
    /// `Some` for `wss://`.
    pub tls: Option<TlsConfig>,
    /// `rest_url` as written (`None`: derived from `url`).
    pub rest_url: Option<String>,
    /// Where the REST depth snapshots come from: `rest_url`, else `url`'s host and port over
    /// HTTP(S).
    pub rest: RestEndpoint,
    /// The CA file `tls` trusts (`None`: the web roots).
    pub ca_file: Option<PathBuf>,
    pub streams: Vec<Stream>,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// `reconnect_after_s`: the feed replaces a connection this old (make before break).
    pub reconnect_after: Duration,
}

/// `[venue.order_entry]`.
#[derive(Clone, Debug)]
pub struct OrderEntrySettings {
    pub url: String,
    pub addr: SocketAddr,
    /// The host name (the TLS server name).
    pub host: String,
    /// `Some` for `tls://`.
    pub tls: Option<TlsConfig>,
    pub ca_file: Option<PathBuf>,
    /// `venue.credentials`, resolved.
    pub credentials: Option<PathBuf>,
    /// `reset_seq_num` is set only with `binance_logon` (Binance requires it).
    pub session: SessionConfig,
}

/// The strategy and its parameters, one per instrument in id order.
#[derive(Clone, Debug, PartialEq)]
pub enum StrategySettings {
    Maker(Vec<MakerParams>),
    Signal(Vec<SignalParams>),
}

impl StrategySettings {
    /// `strategy.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            StrategySettings::Maker(_) => "maker",
            StrategySettings::Signal(_) => "signal",
        }
    }

    /// The model each instrument's strategy votes with, by instrument id: `Some(None)` for a
    /// `signal` strategy voting with its weights; empty for strategies that have no model.
    pub fn models(&self) -> Vec<Option<&'static SignalModel>> {
        match self {
            StrategySettings::Maker(_) => Vec::new(),
            StrategySettings::Signal(params) => params.iter().map(|p| p.model).collect(),
        }
    }
}

/// One problem: the key's path (`instruments[NKNUSDT].collar_bps`, `layout.pipeline.core`;
/// `""` for the file as a whole) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub problem: String,
}

/// Every problem of a config file. Displayed one per line: `<file>: <key>: <problem>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, p) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: ", self.path.display())?;
            if !p.key.is_empty() {
                write!(f, "{}: ", p.key)?;
            }
            f.write_str(&p.problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(path: &Path, key: &str, problem: impl Into<String>) -> ConfigErrors {
        ConfigErrors {
            path: path.to_owned(),
            problems: vec![ConfigProblem {
                key: key.to_owned(),
                problem: problem.into(),
            }],
        }
    }
}

/// What validation may reach outside the text. The default, which [`load`] and [`parse`] use,
/// resolves host names and opens any file the config names.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// Resolve the host names of `venue.market_data.url` and `venue.order_entry.url` (a DNS
    /// lookup). When off, nothing is looked up: an IP literal is taken as it is, and a host name
    /// is only checked to be one (letters, digits, '-' and '.'); its `addr` is then the
    /// unspecified address (`0.0.0.0`) with the URL's port. For checking a config offline and
    /// for the fuzzer: such a config is not for connecting.
    pub resolve_hosts: bool,
    /// `Some(dir)`: every file or directory validation opens or inspects (`venue.exchange_info`,
    /// `venue.credentials` and its `private_key_file`, the `ca_file`s, `journal.dir`, its default
    /// included) must lie inside `dir`, lexically (no `..`); any other is a problem under its
    /// key and is not touched. (`/etc/group`, for `daemon.control_ops_group`, is still read; the
    /// filesystem of a `journal.dir` that does not exist yet is that of its nearest ancestor.)
    pub files_under: Option<PathBuf>,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            resolve_hosts: true,
            files_under: None,
        }
    }
}

impl ParseOptions {
    /// `Err` (why, in a sentence) when `path` is outside [`files_under`](Self::files_under).
    fn confined(&self, path: &Path) -> Result<(), String> {
        let Some(root) = &self.files_under else {
            return Ok(());
        };
        let up = path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        if path.starts_with(root) && !up {
            Ok(())
        } else {
            Err(format!(
                "{} is outside {}, the only directory this check may open (not touched)",
                path.display(),
                root.display()
            ))
        }
    }
}

/// Reads and validates the config file `path`.
pub fn load(path: &Path) -> Result<DaemonConfig, ConfigErrors> {
    let bytes = venue::read_limited(path, CONFIG_LEN_MAX)
        .map_err(|problem| ConfigErrors::one(path, "", problem))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| ConfigErrors::one(path, "", format!("not UTF-8: {e}")))?;
    parse(&text, path)
}

/// Validates `text`, the config file `path` (relative paths are resolved against its directory).
pub fn parse(text: &str, path: &Path) -> Result<DaemonConfig, ConfigErrors> {
    parse_with(text, path, &ParseOptions::default())
}

/// [`parse`], reaching outside the text only as `options` allow.
pub fn parse_with(
    text: &str,
    path: &Path,
    options: &ParseOptions,
) -> Result<DaemonConfig, ConfigErrors> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigErrors::one(path, "", syntax_problem(text, &e)))?;
    let base = Base {
        dir: match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        },
        options,
    };
    let mut p = Problems::default();
    let mut root = Section::new("", Some(&table));

    let (journal_dir, journal) = match root.table(&mut p, "journal") {
        Some(s) => journal::journal(&mut p, s, base),
        None => (None, None),
    };
    let daemon = root
        .table(&mut p, "daemon")
        .and_then(|s| daemon::daemon(&mut p, s, base, journal_dir.as_deref()));

    let mut exchange_info = None;
    let mut all_instruments = None;
    let mut request_weight = None;
    let mut market_data = None;
    let mut order_entry = None;
    if let Some(mut s) = root.required_table(&mut p, "venue") {
        exchange_info = s.required(&mut p, "exchange_info", reader::file(base));
        if let Some(file) = &exchange_info {
            match venue::exchange_info(file) {
                Ok((instruments, weight)) => {
                    all_instruments = Some(instruments);
                    request_weight = weight;
                }
                Err(e) => p.push("venue.exchange_info", e),
            }
        }
        let credentials_path = s.optional(&mut p, "credentials", reader::file(base));
        let credentials = match &credentials_path {
            Some(Some(file)) => Some(venue::credentials(
                &mut p,
                "venue.credentials",
                file,
                options,
            )),
            Some(None) => None,
            None => Some(Err(())), // reported
        };
        market_data = s
            .required_table(&mut p, "market_data")
            .and_then(|md| venue::market_data(&mut p, md, base));
        if let Some(oe) = s.required_table(&mut p, "order_entry") {
            order_entry = venue::order_entry(
                &mut p,
                oe,
                base,
                credentials.as_ref(),
                credentials_path.flatten().as_deref(),
            );
        }
        s.finish(&mut p);
    }

    let (kind, strategy_id) = match root.required_table(&mut p, "strategy") {
        Some(s) => trading::strategy(&mut p, s),
        None => (None, None),
    };
    let exchange_info_label = exchange_info
        .as_deref()
        .map_or_else(String::new, |f| f.display().to_string());
    let trading = trading::trading(
        &mut p,
        &mut root,
        all_instruments.as_deref(),
        &exchange_info_label,
        kind,
        base,
    );
    let features = features::features(&mut p, &mut root);
    let layout = layout::layout(&mut p, &mut root);
    root.finish(&mut p);

    if let (Some(md), Some(t)) = (&market_data, &trading) {
        venue::check_stream_count(&mut p, md.streams.len(), t.instruments.len());
    }
    if let (Some(oe), Some(t)) = (&order_entry, &trading)
        && let Err(e) = OrderEncoder::new(
            &oe.session.sender_comp_id,
            &oe.session.target_comp_id,
            &t.instruments,
        )
    {
        p.push("instruments", format!("FIX order entry: {e}"));
    }

    match (
        daemon,
        journal,
        exchange_info,
        market_data,
        order_entry,
        strategy_id,
        trading,
        features,
        layout,
    ) {
        (
            Some(daemon),
            Some(journal),
            Some(exchange_info),
            Some(market_data),
            Some(order_entry),
            Some(strategy_id),
            Some(trading),
            Some(features),
            Some(layout),
        ) if p.is_empty() => Ok(DaemonConfig {
            path: path.to_owned(),
            text: text.to_owned(),
            daemon,
            journal,
            exchange_info,
            request_weight,
            market_data,
            order_entry,
            instruments: trading.instruments,
            strategy_id,
            strategy: trading.strategy,
            risk_limits: trading.risk_limits,
            features,
            layout,
        }),
        _ => {
            // Every part that is missing reported why.
            debug_assert!(!p.is_empty());
            if p.is_empty() {
                p.push("", "refused without a reason (a bug: please report it)");
            }
            edit::add_lines(text, &mut p.0);
            Err(ConfigErrors {
                path: path.to_owned(),
                problems: p.0,
            })
        }
    }
}

/// A TOML syntax error as one line, with its line and column (1-based).
fn syntax_problem(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    }
}

#[cfg(test)]
mod tests;
