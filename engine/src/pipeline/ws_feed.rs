//! The live market-data source: Binance-format combined streams over WebSocket
//! ([`WsClient`]), with the books synced from REST depth snapshots, and reconnection.
//!
//! A cold-path thread (the *connector*) does everything that may wait: it connects (with
//! exponential backoff and jitter between attempts), subscribes (the stream path is the
//! subscription), then fetches a fresh depth snapshot of every symbol, and hands the connected
//! client and the snapshots to the feed. Snapshots are taken after the subscription, so the
//! stream covers everything after them (Binance's procedure: the book drops diffs with
//! `u <= lastUpdateId` and applies the rest). The feed agent never waits: it reads what has
//! arrived, and when the connection fails it marks every book stale ([`Polled::Stale`]) and
//! asks the connector for a new one.
//!
//! A symbol whose stream lost an update gets a new snapshot ([`MessageSource::resync`]). Those
//! requests are bounded ([`snapshot_limit`]): a symbol with a request pending is not asked for
//! again (a burst of gaps is one request), and the connector spends no more of the venue's
//! request weight than its limit allows in any window (Binance: 6000 a minute, a snapshot of
//! [`SNAPSHOT_LIMIT`] levels weighs 50), the connect's own snapshots included: a request past
//! the budget waits for the window, none is dropped. The feed and the connector share a fixed
//! table of one request state per symbol and two channels of fixed capacity (one connection,
//! one snapshot per symbol); asking is one compare-and-swap (the connector looks every 10 ms).
//!
//! **Make before break.** Binance ends every stream connection at 24 h. When a connection is
//! [`WsFeedConfig::reconnect_after`] old, the connector opens a second one (subscribed, no
//! snapshots) and offers it to the feed, which keeps reading the old one and reads the new one
//! beside it, merging the two ([`rollover`]: Binance's `U`/`u` rule between two connections;
//! duplicates dropped). A symbol moves to the new connection at the diff that exactly continues
//! what the old one delivered; when every symbol has moved, the feed switches and hands the old
//! connection back to the connector, which closes it with Close 1000. The books see one stream,
//! without a gap or a stale mark. If the new connection has not caught up within
//! [`ROLLOVER_CATCH_UP_MAX`], the feed switches anyway; so it does at once if the old connection
//! ends first. Both count in [`WsFeedStats::rollover_fallbacks`]: the symbols not matched yet
//! take the new connection's next diff, duplicates still dropped; one that does not continue the
//! stream is a gap the books see, and the normal resync (that symbol's snapshot) repairs it. A
//! new connection that fails is dropped, and tried again after a backoff delay. The hot thread
//! only polls one more socket and compares ids; it neither allocates nor waits.
//!
//! **Stop.** Dropping the feed closes its connections with Close 1000 (normal closure), waiting
//! at most [`CLOSE_WAIT_MAX`] for each server's answer.

pub mod rollover;
pub mod snapshot_limit;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use levibot_gateway::tls::TlsConfig;
pub use levibot_gateway::ws::client::CLOSE_WAIT_MAX;
use levibot_gateway::ws::{
    Backoff, ClientError, MessageKind, RestEndpoint, Stream, WsClient, WsConfig, close_code,
    fetch_depth_snapshot_over, stream_path,
};

use self::rollover::{Conn, Merge, Mode, Verdict};
use self::snapshot_limit::{
    Next, SnapshotRequests, SnapshotScheduler, WeightLimit, WeightWindow, depth_snapshot_weight,
};
use levibot_gateway::source::{MessageSource, Polled};

/// Depth levels asked of each REST snapshot.
pub const SNAPSHOT_LIMIT: u32 = 1000;
/// Longest a connect, a handshake or a snapshot fetch may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// [`WsFeedConfig::reconnect_after`] for Binance, which ends every stream connection at 24 h:
/// 23 h 30 min, room for a few attempts before the venue's cut.
pub const RECONNECT_AFTER_BINANCE: Duration = Duration::from_secs(23 * 3600 + 30 * 60);
/// How long a new connection has to catch up with the old one (every symbol's depth diffs
/// continuing exactly) before the feed switches anyway and resyncs the symbols it lags on.
pub const ROLLOVER_CATCH_UP_MAX: Duration = Duration::from_secs(5);
/// After a switch, how long the feed still drops the new connection's duplicates of what the
/// old one delivered (trades and tickers it was behind on).
pub const ROLLOVER_LINGER: Duration = Duration::from_secs(1);
/// Messages the feed reads and drops in one poll during a rollover before it returns
/// [`Polled::Idle`] (bounds a poll).
const ROLLOVER_READS_PER_POLL: usize = 64;

/// Where and what to subscribe.
#[derive(Clone, Debug)]
pub struct WsFeedConfig {
    /// The WebSocket streams' address and Host header.
    pub addr: SocketAddr,
    pub host: String,
    /// Where the REST depth snapshots come from (Binance: another host than the streams).
    pub rest: RestEndpoint,
    /// Symbols and their instrument ids.
    pub symbols: Vec<(String, u32)>,
    pub streams: Vec<Stream>,
    /// How often the feed pings the server (a keepalive that finds a dead peer).
    pub ping_interval: Duration,
    /// A ping unanswered this long means the connection is dead: reconnect.
    pub pong_timeout: Duration,
    /// `wss://`, trusting these roots (`None`: plain `ws://`).
    pub tls: Option<TlsConfig>,
    /// A connection this old is replaced, make before break (Binance ends them at 24 h:
    /// [`RECONNECT_AFTER_BINANCE`]). `Duration::MAX`: never.
    pub reconnect_after: Duration,
}

/// Polls between two looks at the clock for the keepalive (the clock is read rarely).
const KEEPALIVE_CHECK_POLLS: u32 = 1024;

/// How often the connector looks at the snapshot requests (and the stop flag) when idle: the
/// feed's hot thread asks without waking it (no syscall), so a request waits this long at most
/// before its fetch starts. A lost connection wakes it at once.
const CONNECTOR_PARK_MAX: Duration = Duration::from_millis(10);

/// A snapshot fetched for one symbol's resync.
struct Resnapshot {
    /// The symbol's index in the feed's symbol list.
    index: usize,
    instrument_id: u32,
    body: Vec<u8>,
}

/// What the connector hands the feed: a subscribed client and a snapshot per symbol.
struct Connected {
    client: WsClient,
    snapshots: Vec<(u32, Vec<u8>)>,
}

/// Where a rollover is: the values of the state the connector and the feed share.
mod roll {
    /// No new connection offered; the connector opens one when the current one is old enough.
    pub const IDLE: u8 = 0;
    /// The connector has offered a new connection.
    pub const OFFERED: u8 = 1;
    /// The feed switched to it (its age counts from when it was opened).
    pub const SWITCHED: u8 = 2;
    /// It failed before the switch: try again after a backoff delay.
    pub const FAILED: u8 = 3;
}

/// Counts of the feed's connection life.
#[derive(Debug, Default)]
pub struct WsFeedStats {
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub failed_attempts: AtomicU64,
    /// Connections given up because a keepalive ping went unanswered.
    pub pong_timeouts: AtomicU64,
    /// REST depth snapshots fetched (or tried): a connect's, and one per resync request.
    pub snapshots_fetched: AtomicU64,
    /// Times a snapshot waited for the venue's request weight window to have room.
    pub snapshot_weight_waits: AtomicU64,
    /// Switches to a new connection made before the old one ended (make before break); not
    /// counted in `connects` and `disconnects`, which count breaks.
    pub rollovers: AtomicU64,
    /// Rollovers that did not end with every symbol's stream continuing exactly: the new
    /// connection did not catch up in time, or the old one ended first. The symbols concerned
    /// resync from snapshots.
    pub rollover_fallbacks: AtomicU64,
}
/// The live feed, a [`MessageSource`].
pub struct WsFeed {
    client: Option<WsClient>,
    snapshots: VecDeque<(u32, Vec<u8>)>,
    /// The snapshot being handed out (its bytes must outlive the poll that returns them).
    current_snapshot: Option<Vec<u8>>,
    stale_due: bool,
    /// The last message read (capacity `MESSAGE_LEN_MAX`, never grown).
    message: Vec<u8>,
    /// Set (and the connector woken) when the connection is lost.
    connect_wanted: Arc<AtomicBool>,
    /// One request state per symbol (index in `symbols`), shared with the connector.
    requests: Arc<SnapshotRequests>,
    /// The connector thread, woken when there is something to do.
    connector_thread: Thread,
    /// Capacity 1: the connector hands over one connection at a time.
    connected: mpsc::Receiver<Connected>,
    /// Capacity one per symbol: at most one resync snapshot per symbol is pending.
    resnapshots: mpsc::Receiver<Resnapshot>,
    /// Symbol of each instrument id, for resync requests.
    symbols: Vec<(String, u32)>,
    ping_interval: Duration,
    pong_timeout: Duration,
    polls_until_check: u32,
    /// When the last ping went out, and the pong count then (the keepalive).
    last_ping: Option<(Instant, u64)>,
    /// Capacity 1: a new connection the connector offers for a rollover.
    offered: mpsc::Receiver<WsClient>,
    /// The rollover's new connection while the feed reads both.
    next: Option<WsClient>,
    /// Connections the feed is done with, for the connector to close (Close 1000).
    retire: mpsc::SyncSender<WsClient>,
    /// Shared with the connector (`roll::*`).
    rollover_state: Arc<AtomicU8>,
    /// The merge of the two connections; active while `merge_until` is set.
    merge: Merge,
    /// The end of the merge's present phase (catching up, then lingering).
    merge_until: Option<Instant>,
    /// A message of the new connection ahead of the old one, and its key
    /// (capacity `MESSAGE_LEN_MAX`, never grown).
    hold: Vec<u8>,
    held: Option<rollover::Key>,
    stop: Arc<AtomicBool>,
    connector: Option<JoinHandle<()>>,
    stats: Arc<WsFeedStats>,
    last_error: Option<ClientError>,
}

impl std::fmt::Debug for WsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsFeed")
            .field("connected", &self.client.is_some())
            .field("rolling_over", &self.next.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Why the feed could not start.
#[derive(Debug, thiserror::Error)]
pub enum WsFeedError {
    #[error("stream path: {0}")]
    Path(#[from] levibot_gateway::ws::PathError),
    #[error("cannot start the connector thread: {0}")]
    Spawn(std::io::Error),
    #[error("no randomness for the backoff jitter: {0}")]
    Random(String),
}

impl WsFeed {
    /// Starts the connector, which connects at once; snapshots within Binance spot's request
    /// weight limit ([`WeightLimit::BINANCE_SPOT`]).
    pub fn start(config: WsFeedConfig) -> Result<WsFeed, WsFeedError> {
        WsFeed::start_with_limit(config, WeightLimit::BINANCE_SPOT)
    }

    /// As [`start`](Self::start), with the venue's request weight limit given.
    // TODO: take the limit from exchangeInfo's `rateLimits` (REQUEST_WEIGHT) once the
    // instrument loader passes it on; Binance's documented default is used meanwhile.
    pub fn start_with_limit(
        config: WsFeedConfig,
        weight_limit: WeightLimit,
    ) -> Result<WsFeed, WsFeedError> {
        let symbols: Vec<&str> = config.symbols.iter().map(|(s, _)| s.as_str()).collect();
        let path = stream_path(&symbols, &config.streams)?;
        let depth = config
            .streams
            .iter()
            .any(|s| matches!(s, Stream::Depth100ms | Stream::Depth1000ms));
        let merge = Merge::new(&symbols, depth);
        let mut backoff = Backoff::from_os().map_err(|e| WsFeedError::Random(e.to_string()))?;
        let (connected_tx, connected) = mpsc::sync_channel::<Connected>(1);
        let (resnapshot_tx, resnapshots) =
            mpsc::sync_channel::<Resnapshot>(config.symbols.len().max(1));
        let (offer_tx, offered) = mpsc::sync_channel::<WsClient>(1);
        let (retire, retired) = mpsc::sync_channel::<WsClient>(2);
        let rollover_state = Arc::new(AtomicU8::new(roll::IDLE));
        let requests = Arc::new(SnapshotRequests::new(config.symbols.len()));
        // The connect at start.
        let connect_wanted = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WsFeedStats::default());
        let (thread_stop, thread_stats) = (Arc::clone(&stop), Arc::clone(&stats));
        let thread_connect = Arc::clone(&connect_wanted);
        let thread_rollover = Arc::clone(&rollover_state);
        let mut scheduler = SnapshotScheduler::new(
            Arc::clone(&requests),
            weight_limit,
            depth_snapshot_weight(SNAPSHOT_LIMIT),
        );
        let symbols = config.symbols.clone();
        let (ping_interval, pong_timeout) = (config.ping_interval, config.pong_timeout);
        let connector = std::thread::Builder::new()
            .name("ws-connector".into())
            .spawn(move || {
                let mut waiting = false;
                // When the connection in use is old enough to be replaced (`None`: never, or a
                // rollover under way), and when the rollover's new connection was opened.
                let mut rollover_due: Option<Instant> = None;
                let mut offered_opened = Instant::now();
                let due_after = |opened: Instant| opened.checked_add(config.reconnect_after);
                while !thread_stop.load(Ordering::Relaxed) {
                    // Connections the feed is done with: closed properly.
                    while let Ok(old) = retired.try_recv() {
                        let _ = old.close(close_code::NORMAL, "rollover", CLOSE_WAIT_MAX);
                    }
                    if thread_connect.swap(false, Ordering::AcqRel) {
                        while !thread_stop.load(Ordering::Relaxed) {
                            let opened = Instant::now();
                            match connect(
                                &config,
                                &path,
                                scheduler.window(),
                                &thread_stats,
                                &thread_stop,
                            ) {
                                Ok(c) => {
                                    thread_stats.connects.fetch_add(1, Ordering::Relaxed);
                                    backoff.reset();
                                    // Symbols asked for and not fetched yet are in this
                                    // connection's snapshots.
                                    scheduler.requests().answer_asked();
                                    // An offer not taken is drained by the feed with this.
                                    thread_rollover.store(roll::IDLE, Ordering::Release);
                                    rollover_due = due_after(opened);
                                    if connected_tx.send(c).is_err() {
                                        return;
                                    }
                                    break;
                                }
                                Err(_) => {
                                    thread_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                                    sleep_unless_stopped(backoff.next_delay(), &thread_stop);
                                }
                            }
                        }
                        continue;
                    }
                    match thread_rollover.load(Ordering::Acquire) {
                        roll::SWITCHED => {
                            thread_rollover.store(roll::IDLE, Ordering::Release);
                            rollover_due = due_after(offered_opened);
                        }
                        roll::FAILED => {
                            thread_rollover.store(roll::IDLE, Ordering::Release);
                            thread_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                            rollover_due = Some(Instant::now() + backoff.next_delay());
                        }
                        _ => {}
                    }
                    if thread_rollover.load(Ordering::Acquire) == roll::IDLE
                        && rollover_due.is_some_and(|due| Instant::now() >= due)
                    {
                        // Make before break: a new connection, subscribed, for the feed to
                        // switch to once it has caught up with the old one.
                        rollover_due = None;
                        let opened = Instant::now();
                        match open(&config, &path) {
                            Ok(client) => {
                                offered_opened = opened;
                                thread_rollover.store(roll::OFFERED, Ordering::Release);
                                match offer_tx.try_send(client) {
                                    Ok(()) => {}
                                    Err(TrySendError::Full(client)) => {
                                        // An old offer still waits (the feed has not polled):
                                        // later.
                                        let _ = client.close(
                                            close_code::NORMAL,
                                            "not needed",
                                            CLOSE_WAIT_MAX,
                                        );
                                        thread_rollover.store(roll::IDLE, Ordering::Release);
                                        rollover_due = Some(Instant::now() + backoff.next_delay());
                                    }
                                    Err(TrySendError::Disconnected(_)) => return,
                                }
                            }
                            Err(_) => {
                                thread_stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                                rollover_due = Some(Instant::now() + backoff.next_delay());
                            }
                        }
                        continue;
                    }
                    let now = Instant::now();
                    match scheduler.next(now) {
                        Next::Fetch(index) => {
                            waiting = false;
                            let (symbol, instrument_id) = &config.symbols[index];
                            thread_stats
                                .snapshots_fetched
                                .fetch_add(1, Ordering::Relaxed);
                            match fetch_depth_snapshot_over(
                                config.rest.addr,
                                &config.rest.host,
                                symbol,
                                SNAPSHOT_LIMIT,
                                CONNECT_TIMEOUT,
                                config.rest.tls.as_ref(),
                            ) {
                                Ok(body) => {
                                    backoff.reset();
                                    let snapshot = Resnapshot {
                                        index,
                                        instrument_id: *instrument_id,
                                        body,
                                    };
                                    // Never blocks: one place per symbol, and a symbol has
                                    // one snapshot pending at most.
                                    if resnapshot_tx.send(snapshot).is_err() {
                                        return;
                                    }
                                }
                                Err(_) => {
                                    // Asked again, and fetched after a pause (the connection is
                                    // likely down too: a reconnect, which ends the pause,
                                    // snapshots every symbol).
                                    scheduler.failed(index);
                                    let until = Instant::now() + backoff.next_delay();
                                    while Instant::now() < until
                                        && !thread_stop.load(Ordering::Relaxed)
                                        && !thread_connect.load(Ordering::Acquire)
                                    {
                                        std::thread::park_timeout(CONNECTOR_PARK_MAX);
                                    }
                                }
                            }
                        }
                        Next::WaitUntil(when) => {
                            if !waiting {
                                waiting = true;
                                thread_stats
                                    .snapshot_weight_waits
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                            std::thread::park_timeout(
                                when.saturating_duration_since(now).min(CONNECTOR_PARK_MAX),
                            );
                        }
                        Next::Nothing => std::thread::park_timeout(CONNECTOR_PARK_MAX),
                    }
                }
                // Stopping: what the feed gave back is closed properly too.
                while let Ok(old) = retired.try_recv() {
                    let _ = old.close(close_code::NORMAL, "shutdown", CLOSE_WAIT_MAX);
                }
            })
            .map_err(WsFeedError::Spawn)?;
        Ok(WsFeed {
            client: None,
            snapshots: VecDeque::new(),
            current_snapshot: None,
            stale_due: false,
            message: Vec::with_capacity(levibot_gateway::binance::MESSAGE_LEN_MAX),
            connect_wanted,
            requests,
            connector_thread: connector.thread().clone(),
            connected,
            resnapshots,
            symbols,
            ping_interval,
            pong_timeout,
            polls_until_check: KEEPALIVE_CHECK_POLLS,
            last_ping: None,
            offered,
            next: None,
            retire,
            rollover_state,
            merge,
            merge_until: None,
            hold: Vec::with_capacity(levibot_gateway::binance::MESSAGE_LEN_MAX),
            held: None,
            stop,
            connector: Some(connector),
            stats,
            last_error: None,
        })
    }

    pub fn stats(&self) -> Arc<WsFeedStats> {
        Arc::clone(&self.stats)
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Whether a rollover's new connection is being read beside the old one.
    pub fn is_rolling_over(&self) -> bool {
        self.next.is_some()
    }

    /// The error that ended the last connection (`None` after a pong timeout).
    pub fn last_error(&self) -> Option<&ClientError> {
        self.last_error.as_ref()
    }
}

/// Opens a connection subscribed to `path` (cold path).
fn open(config: &WsFeedConfig, path: &str) -> Result<WsClient, ClientError> {
    match &config.tls {
        None => WsClient::connect(
            config.addr,
            &config.host,
            path,
            WsConfig::default(),
            CONNECT_TIMEOUT,
            || 0,
        ),
        Some(tls) => WsClient::connect_tls(
            config.addr,
            &config.host,
            path,
            WsConfig::default(),
            tls,
            CONNECT_TIMEOUT,
            || 0,
        ),
    }
}

/// Connects, subscribes, then snapshots every symbol (cold path), each when the request weight
/// `window` has room for it.
fn connect(
    config: &WsFeedConfig,
    path: &str,
    window: &mut WeightWindow,
    stats: &WsFeedStats,
    stop: &AtomicBool,
) -> Result<Connected, String> {
    let client = open(config, path).map_err(|e| e.to_string())?;
    let mut snapshots = Vec::with_capacity(config.symbols.len());
    let weight = depth_snapshot_weight(SNAPSHOT_LIMIT);
    for (symbol, id) in &config.symbols {
        let mut waited = false;
        while let Err(when) = window.try_take(Instant::now(), weight) {
            if stop.load(Ordering::Relaxed) {
                return Err("stopped".into());
            }
            if !waited {
                waited = true;
                stats.snapshot_weight_waits.fetch_add(1, Ordering::Relaxed);
            }
            sleep_unless_stopped(
                when.saturating_duration_since(Instant::now())
                    .min(CONNECTOR_PARK_MAX),
                stop,
            );
        }
        stats.snapshots_fetched.fetch_add(1, Ordering::Relaxed);
        let body = fetch_depth_snapshot_over(
            config.rest.addr,
            &config.rest.host,
            symbol,
            SNAPSHOT_LIMIT,
            CONNECT_TIMEOUT,
            config.rest.tls.as_ref(),
        )
        .map_err(|e| e.to_string())?;
        snapshots.push((*id, body));
    }
    Ok(Connected { client, snapshots })
}

/// Sleeps `delay` in short steps, returning early when `stop` is set.
fn sleep_unless_stopped(delay: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(10);
    let mut left = delay;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
}

/// What one read of a connection gave, during a rollover.
enum Read {
    /// A message to hand on (copied into `message`).
    Deliver,
    /// A message dropped, or one held: read on.
    Again,
    /// Nothing has arrived.
    Nothing,
    Failed(ClientError),
}

impl WsFeed {
    /// The connection is gone: books stale, a new connection asked for. During a rollover the
    /// new connection takes over instead, without a stale mark.
    fn lost(&mut self, error: Option<ClientError>) -> Polled<'static> {
        self.last_error = error;
        self.last_ping = None;
        if self.next.is_some() {
            let old = self.client.take();
            self.promote(old, Instant::now(), true);
            return Polled::Idle;
        }
        self.client = None;
        self.end_merge();
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.connect_wanted.store(true, Ordering::Release);
        self.connector_thread.unpark();
        Polled::Stale
    }

    /// Hands a connection to the connector to close (Close 1000); dropped here only if the
    /// connector cannot take it.
    fn retire(&mut self, client: Option<WsClient>) {
        if let Some(client) = client
            && let Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) =
                self.retire.try_send(client)
        {
            drop(c);
        }
    }

    /// The rollover's new connection becomes the one in use; `old` (gone or not) is retired.
    /// `forced`: the old one ended, or the new one did not catch up in time: the symbols not
    /// matched yet take its next diff (a gap, if it does not continue, that the books resync).
    fn promote(&mut self, old: Option<WsClient>, now: Instant, forced: bool) {
        self.client = self.next.take();
        self.retire(old);
        self.last_ping = None;
        self.merge.old_gone();
        self.merge_until = Some(now + ROLLOVER_LINGER);
        self.stats.rollovers.fetch_add(1, Ordering::Relaxed);
        if forced && self.merge.any_on_old() {
            self.stats
                .rollover_fallbacks
                .fetch_add(1, Ordering::Relaxed);
        }
        self.rollover_state.store(roll::SWITCHED, Ordering::Release);
    }

    /// The rollover's new connection failed before the switch: the old one delivers everything
    /// again; the connector tries again later.
    fn next_failed(&mut self, now: Instant) {
        let next = self.next.take();
        self.retire(next);
        self.held = None;
        self.merge.new_gone();
        self.merge_until = Some(now + ROLLOVER_LINGER);
        if self.merge.all_on_old() {
            self.end_merge();
        }
        self.rollover_state.store(roll::FAILED, Ordering::Release);
    }

    fn end_merge(&mut self) {
        self.merge_until = None;
        self.held = None;
    }

    /// A rollover's new connection, offered by the connector: read beside the old one from now
    /// on. (Polled for with one atomic load per poll, so that it is taken at once.)
    fn take_offer(&mut self) {
        if let Ok(next) = self.offered.try_recv() {
            let now = Instant::now();
            self.next = Some(next);
            self.merge.reset();
            self.held = None;
            self.merge_until = Some(now + ROLLOVER_CATCH_UP_MAX);
            if self.merge.all_on_new() {
                // No depth stream: nothing to catch up with.
                let old = self.client.take();
                self.promote(old, now, false);
            }
        }
    }

    /// Every `KEEPALIVE_CHECK_POLLS` polls (the clock is read rarely): ends a rollover phase
    /// that ran out of time, and keeps the connection alive (pings every `ping_interval`; a ping
    /// unanswered for `pong_timeout` loses it).
    fn on_clock(&mut self) -> Option<Polled<'static>> {
        self.polls_until_check -= 1;
        if self.polls_until_check > 0 {
            return None;
        }
        self.polls_until_check = KEEPALIVE_CHECK_POLLS;
        let client = self.client.as_mut()?;
        let now = Instant::now();
        let mut ping_failed = false;
        match self.last_ping {
            Some((at, pongs)) if client.pongs_received() == pongs => {
                if now.duration_since(at) > self.pong_timeout {
                    self.stats.pong_timeouts.fetch_add(1, Ordering::Relaxed);
                    return Some(self.lost(None));
                }
            }
            Some((at, _)) if now.duration_since(at) < self.ping_interval => {}
            _ => {
                let pongs = client.pongs_received();
                ping_failed = client.send_ping(b"levibot").is_err();
                self.last_ping = Some((now, pongs));
            }
        }
        if ping_failed {
            self.stats.pong_timeouts.fetch_add(1, Ordering::Relaxed);
            return Some(self.lost(None));
        }
        if let Some(until) = self.merge_until
            && now >= until
        {
            if self.merge.mode() == Mode::Both && self.next.is_some() {
                // Not caught up in time: switch anyway, the lagging symbols resync.
                let old = self.client.take();
                self.promote(old, now, true);
            } else {
                self.end_merge();
            }
        }
        None
    }

    /// A poll during a rollover: the held message if it can go, then the connection in use,
    /// then the new one (unless a message of it is held), merged ([`rollover`]).
    fn poll_merged(&mut self, now_tsc: u64) -> Polled<'_> {
        for _ in 0..ROLLOVER_READS_PER_POLL {
            if let Some(key) = self.held {
                match self.merge.verdict(Conn::New, key) {
                    Verdict::Deliver => {
                        self.held = None;
                        if self.merge.mode() == Mode::Both && self.merge.all_on_new() {
                            let old = self.client.take();
                            self.promote(old, Instant::now(), false);
                        }
                        return Polled::Message {
                            bytes: &self.hold,
                            due_tsc: now_tsc,
                        };
                    }
                    Verdict::Drop => self.held = None,
                    Verdict::Hold => {}
                }
            }
            // The connection in use: the old one until the switch, then the new one.
            let current = match self.merge.mode() {
                Mode::Both | Mode::NewGone => Conn::Old,
                Mode::OldGone => Conn::New,
            };
            let Some(client) = self.client.as_mut() else {
                return Polled::Idle;
            };
            let read = read_merged(
                client,
                current,
                now_tsc,
                &mut self.merge,
                &mut self.message,
                &mut self.hold,
                &mut self.held,
            );
            match read {
                Read::Deliver => {
                    if self.merge.mode() == Mode::NewGone && self.merge.all_on_old() {
                        self.end_merge();
                    }
                    return Polled::Message {
                        bytes: &self.message,
                        due_tsc: now_tsc,
                    };
                }
                Read::Again => continue,
                Read::Nothing => {}
                Read::Failed(e) => return self.lost(Some(e)),
            }
            if self.held.is_some() {
                return Polled::Idle;
            }
            let Some(next) = self.next.as_mut() else {
                return Polled::Idle;
            };
            let read = read_merged(
                next,
                Conn::New,
                now_tsc,
                &mut self.merge,
                &mut self.message,
                &mut self.hold,
                &mut self.held,
            );
            match read {
                Read::Deliver => {
                    if self.merge.all_on_new() {
                        let old = self.client.take();
                        self.promote(old, Instant::now(), false);
                    }
                    return Polled::Message {
                        bytes: &self.message,
                        due_tsc: now_tsc,
                    };
                }
                Read::Again => {}
                Read::Nothing => return Polled::Idle,
                Read::Failed(_) => {
                    self.next_failed(Instant::now());
                    return Polled::Idle;
                }
            }
        }
        Polled::Idle
    }
}

/// Reads one message of `client` (connection `conn`) and merges it: a message delivered is
/// copied into `message`, one held into `hold` (with its key in `held`).
fn read_merged(
    client: &mut WsClient,
    conn: Conn,
    now_tsc: u64,
    merge: &mut Merge,
    message: &mut Vec<u8>,
    hold: &mut Vec<u8>,
    held: &mut Option<rollover::Key>,
) -> Read {
    match client.read_message(Some(Duration::ZERO), || now_tsc) {
        Ok(Some(m)) if m.kind == MessageKind::Text => {
            let key = merge.classify(m.payload);
            match merge.verdict(conn, key) {
                Verdict::Deliver => {
                    message.clear();
                    message.extend_from_slice(m.payload);
                    Read::Deliver
                }
                Verdict::Drop => Read::Again,
                Verdict::Hold => {
                    hold.clear();
                    hold.extend_from_slice(m.payload);
                    *held = Some(key);
                    Read::Again
                }
            }
        }
        Ok(Some(_)) => Read::Again,
        Ok(None) => Read::Nothing,
        Err(e) => Read::Failed(e),
    }
}

impl MessageSource for WsFeed {
    /// Asks for a snapshot of the instrument, unless one is pending already (hot path: one
    /// compare-and-swap; no allocation, lock or syscall; the connector finds the request within
    /// `CONNECTOR_PARK_MAX`).
    fn resync(&mut self, instrument_id: u32) {
        if let Some(index) = self.symbols.iter().position(|(_, id)| *id == instrument_id) {
            self.requests.ask(index);
        }
    }

    #[inline]
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        if self.stale_due {
            self.stale_due = false;
            return Polled::Stale;
        }
        if self.client.is_none() {
            // Cold: a new connection (and its snapshots) may have arrived.
            match self.connected.try_recv() {
                Ok(c) => {
                    self.client = Some(c.client);
                    self.snapshots.extend(c.snapshots);
                    // A rollover's offer made before the connection was lost is no use now.
                    if let Ok(stale) = self.offered.try_recv() {
                        self.retire(Some(stale));
                    }
                }
                Err(_) => return Polled::Idle,
            }
        }
        if self.requests.outstanding() > 0
            && let Ok(snapshot) = self.resnapshots.try_recv()
        {
            // From now on a new gap asks for a new snapshot.
            self.requests.settle(snapshot.index);
            self.snapshots
                .push_back((snapshot.instrument_id, snapshot.body));
        }
        if let Some((instrument_id, body)) = self.snapshots.pop_front() {
            let body = self.current_snapshot.insert(body);
            return Polled::Snapshot {
                instrument_id,
                body,
            };
        }
        if let Some(lost) = self.on_clock() {
            // A keepalive that went unanswered.
            return lost;
        }
        if self.rollover_state.load(Ordering::Relaxed) == roll::OFFERED
            && (self.merge_until.is_none()
                || (self.next.is_none() && self.merge.mode() == Mode::OldGone))
        {
            // (A new offer ends the linger after a switch.)
            self.take_offer();
        }
        if self.merge_until.is_some() {
            return self.poll_merged(now_tsc);
        }
        let Some(client) = self.client.as_mut() else {
            return Polled::Idle;
        };
        // Hot: whatever has arrived, never waiting. The message is copied into the feed's own
        // buffer (a few hundred bytes): returning the client's borrow from one arm while the
        // error arm replaces the client is what the borrow checker cannot yet accept.
        let received = match client.read_message(Some(Duration::ZERO), || now_tsc) {
            Ok(Some(message)) if message.kind == MessageKind::Text => {
                self.message.clear();
                self.message.extend_from_slice(message.payload);
                true
            }
            Ok(_) => false,
            Err(e) => return self.lost(Some(e)),
        };
        if !received {
            return Polled::Idle;
        }
        Polled::Message {
            bytes: &self.message,
            due_tsc: now_tsc,
        }
    }
}

impl Drop for WsFeed {
    /// Closes the connections with Close 1000 (normal closure), waiting at most
    /// [`CLOSE_WAIT_MAX`] for each server's answer, and stops the connector.
    fn drop(&mut self) {
        for client in [self.client.take(), self.next.take()].into_iter().flatten() {
            let _ = client.close(close_code::NORMAL, "shutdown", CLOSE_WAIT_MAX);
        }
        self.stop.store(true, Ordering::Relaxed);
        // The connector sees the flag within `CONNECTOR_PARK_MAX` (at once when parked); its
        // hand-overs never block (one connection at a time, one snapshot per symbol).
        self.connector_thread.unpark();
        if let Some(t) = self.connector.take() {
            let _ = t.join();
        }
        // Connections handed over but never taken.
        for connected in self.connected.try_iter() {
            let _ = connected
                .client
                .close(close_code::NORMAL, "shutdown", CLOSE_WAIT_MAX);
        }
        for client in self.offered.try_iter() {
            let _ = client.close(close_code::NORMAL, "shutdown", CLOSE_WAIT_MAX);
        }
    }
}
