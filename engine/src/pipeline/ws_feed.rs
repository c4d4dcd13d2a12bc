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

pub mod snapshot_limit;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::{
    Backoff, ClientError, MessageKind, RestEndpoint, Stream, WsClient, WsConfig,
    fetch_depth_snapshot_over, stream_path,
};

use self::snapshot_limit::{
    Next, SnapshotRequests, SnapshotScheduler, WeightLimit, WeightWindow, depth_snapshot_weight,
};
use super::source::{MessageSource, Polled};

/// Depth levels asked of each REST snapshot.
pub const SNAPSHOT_LIMIT: u32 = 1000;
/// Longest a connect, a handshake or a snapshot fetch may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    stop: Arc<AtomicBool>,
    connector: Option<JoinHandle<()>>,
    stats: Arc<WsFeedStats>,
    last_error: Option<ClientError>,
}

impl std::fmt::Debug for WsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsFeed")
            .field("connected", &self.client.is_some())
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
        let mut backoff = Backoff::from_os().map_err(|e| WsFeedError::Random(e.to_string()))?;
        let (connected_tx, connected) = mpsc::sync_channel::<Connected>(1);
        let (resnapshot_tx, resnapshots) =
            mpsc::sync_channel::<Resnapshot>(config.symbols.len().max(1));
        let requests = Arc::new(SnapshotRequests::new(config.symbols.len()));
        // The connect at start.
        let connect_wanted = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WsFeedStats::default());
        let (thread_stop, thread_stats) = (Arc::clone(&stop), Arc::clone(&stats));
        let thread_connect = Arc::clone(&connect_wanted);
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
                while !thread_stop.load(Ordering::Relaxed) {
                    if thread_connect.swap(false, Ordering::AcqRel) {
                        while !thread_stop.load(Ordering::Relaxed) {
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

    /// The error that ended the last connection (`None` after a pong timeout).
    pub fn last_error(&self) -> Option<&ClientError> {
        self.last_error.as_ref()
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
    let client = match &config.tls {
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
    .map_err(|e| e.to_string())?;
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

impl WsFeed {
    /// The connection is gone: books stale, a new connection asked for.
    fn lost(&mut self, error: Option<ClientError>) -> Polled<'_> {
        self.last_error = error;
        self.client = None;
        self.last_ping = None;
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.connect_wanted.store(true, Ordering::Release);
        self.connector_thread.unpark();
        Polled::Stale
    }

    /// Pings every `ping_interval`; `true` when a ping has gone unanswered for `pong_timeout`.
    /// The clock is read once every `KEEPALIVE_CHECK_POLLS` polls.
    fn keepalive_failed(&mut self) -> bool {
        self.polls_until_check -= 1;
        if self.polls_until_check > 0 {
            return false;
        }
        self.polls_until_check = KEEPALIVE_CHECK_POLLS;
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let now = Instant::now();
        match self.last_ping {
            Some((at, pongs)) if client.pongs_received() == pongs => {
                now.duration_since(at) > self.pong_timeout
            }
            Some((at, _)) if now.duration_since(at) < self.ping_interval => false,
            _ => {
                let pongs = client.pongs_received();
                if client.send_ping(b"levibot").is_err() {
                    return true;
                }
                self.last_ping = Some((now, pongs));
                false
            }
        }
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
        if self.keepalive_failed() {
            self.stats.pong_timeouts.fetch_add(1, Ordering::Relaxed);
            return self.lost(None);
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
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The connector sees the flag within `CONNECTOR_PARK_MAX` (at once when parked); its
        // hand-overs never block (one connection at a time, one snapshot per symbol).
        self.connector_thread.unpark();
        if let Some(t) = self.connector.take() {
            let _ = t.join();
        }
    }
}
