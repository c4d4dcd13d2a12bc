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

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use levibot_gateway::tls::TlsConfig;
use levibot_gateway::ws::{
    Backoff, ClientError, MessageKind, Stream, WsClient, WsConfig, fetch_depth_snapshot_over,
    stream_path,
};

use super::source::{MessageSource, Polled};

/// Depth levels asked of each REST snapshot.
pub const SNAPSHOT_LIMIT: u32 = 1000;
/// Longest a connect, a handshake or a snapshot fetch may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and what to subscribe.
#[derive(Clone, Debug)]
pub struct WsFeedConfig {
    pub addr: SocketAddr,
    /// The Host header (and the REST host).
    pub host: String,
    /// Symbols and their instrument ids.
    pub symbols: Vec<(String, u32)>,
    pub streams: Vec<Stream>,
    /// How often the feed pings the server (a keepalive that finds a dead peer).
    pub ping_interval: Duration,
    /// A ping unanswered this long means the connection is dead: reconnect.
    pub pong_timeout: Duration,
    /// `wss://` and HTTPS snapshots, trusting these roots (`None`: plain `ws://` and HTTP).
    pub tls: Option<TlsConfig>,
}

/// Polls between two looks at the clock for the keepalive (the clock is read rarely).
const KEEPALIVE_CHECK_POLLS: u32 = 1024;

/// What the feed asks of the connector.
enum Request {
    /// A new connection (and a snapshot of every symbol).
    Connect,
    /// A new snapshot of one symbol (its stream lost an update).
    Snapshot { symbol: String, instrument_id: u32 },
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
    requests: mpsc::Sender<Request>,
    connected: mpsc::Receiver<Connected>,
    resnapshots: mpsc::Receiver<(u32, Vec<u8>)>,
    /// Snapshots asked for and not arrived yet (the channel is only looked at while > 0).
    resnapshots_pending: usize,
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
    /// Starts the connector, which connects at once.
    pub fn start(config: WsFeedConfig) -> Result<WsFeed, WsFeedError> {
        let symbols: Vec<&str> = config.symbols.iter().map(|(s, _)| s.as_str()).collect();
        let path = stream_path(&symbols, &config.streams)?;
        let mut backoff = Backoff::from_os().map_err(|e| WsFeedError::Random(e.to_string()))?;
        let (requests, requested) = mpsc::channel::<Request>();
        let (connected_tx, connected) = mpsc::channel::<Connected>();
        let (resnapshot_tx, resnapshots) = mpsc::channel::<(u32, Vec<u8>)>();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WsFeedStats::default());
        let (thread_stop, thread_stats) = (Arc::clone(&stop), Arc::clone(&stats));
        let symbols = config.symbols.clone();
        let (ping_interval, pong_timeout) = (config.ping_interval, config.pong_timeout);
        let connector = std::thread::Builder::new()
            .name("ws-connector".into())
            .spawn(move || {
                while let Ok(request) = requested.recv() {
                    match request {
                        Request::Connect => {
                            while !thread_stop.load(Ordering::Relaxed) {
                                match connect(&config, &path) {
                                    Ok(c) => {
                                        thread_stats.connects.fetch_add(1, Ordering::Relaxed);
                                        backoff.reset();
                                        if connected_tx.send(c).is_err() {
                                            return;
                                        }
                                        break;
                                    }
                                    Err(_) => {
                                        thread_stats
                                            .failed_attempts
                                            .fetch_add(1, Ordering::Relaxed);
                                        sleep_unless_stopped(backoff.next_delay(), &thread_stop);
                                    }
                                }
                            }
                        }
                        Request::Snapshot {
                            symbol,
                            instrument_id,
                        } => {
                            // One try: if it fails, the connection is likely down too, and the
                            // reconnect snapshots every symbol anyway.
                            if let Ok(body) = fetch_depth_snapshot_over(
                                config.addr,
                                &config.host,
                                &symbol,
                                SNAPSHOT_LIMIT,
                                CONNECT_TIMEOUT,
                                config.tls.as_ref(),
                            ) && resnapshot_tx.send((instrument_id, body)).is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            })
            .map_err(WsFeedError::Spawn)?;
        let _ = requests.send(Request::Connect);
        Ok(WsFeed {
            client: None,
            snapshots: VecDeque::new(),
            current_snapshot: None,
            stale_due: false,
            message: Vec::with_capacity(levibot_gateway::binance::MESSAGE_LEN_MAX),
            requests,
            connected,
            resnapshots,
            resnapshots_pending: 0,
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

/// Connects, subscribes, then snapshots every symbol (cold path).
fn connect(config: &WsFeedConfig, path: &str) -> Result<Connected, String> {
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
    for (symbol, id) in &config.symbols {
        let body = fetch_depth_snapshot_over(
            config.addr,
            &config.host,
            symbol,
            SNAPSHOT_LIMIT,
            CONNECT_TIMEOUT,
            config.tls.as_ref(),
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
        let _ = self.requests.send(Request::Connect);
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
    fn resync(&mut self, instrument_id: u32) {
        if let Some((symbol, _)) = self.symbols.iter().find(|(_, id)| *id == instrument_id) {
            let request = Request::Snapshot {
                symbol: symbol.clone(),
                instrument_id,
            };
            if self.requests.send(request).is_ok() {
                self.resnapshots_pending += 1;
            }
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
        if self.resnapshots_pending > 0
            && let Ok(snapshot) = self.resnapshots.try_recv()
        {
            self.resnapshots_pending -= 1;
            self.snapshots.push_back(snapshot);
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
        // Closing the request channel ends the connector's loop.
        let (closed, _) = mpsc::channel();
        self.requests = closed;
        if let Some(t) = self.connector.take() {
            let _ = t.join();
        }
    }
}
