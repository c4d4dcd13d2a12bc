//! venue-sim's market-data server: Binance Spot's WebSocket streams and REST depth snapshot on
//! one port, over std's blocking sockets and a thread per connection (a test tool, not the
//! daemon: the thread count is bounded by [`MdConfig::connections_max`], and every thread
//! blocks or sleeps, none spins).
//!
//! - `GET /stream?streams=a/b/c` and `GET /ws/<stream>[/<stream>...]` with a WebSocket upgrade
//!   (RFC 6455, server side): the client then receives the messages of its streams, in the
//!   combined-stream wrapper on `/stream`, bare on `/ws/`. Frames go out unmasked; the client's
//!   frames must be masked (else Close 1002). Pings are answered, Close is echoed, the server
//!   pings every [`MdConfig::ping_interval`] and drops a client that has not ponged within
//!   [`MdConfig::pong_timeout`]. A client whose queue fills up is disconnected (Close 1008).
//! - `GET /api/v3/exchangeInfo[?symbols=[..]]`: the venue's instruments and filters.
//! - `GET /api/v3/depth?symbol=X&limit=N`: the REST snapshot from a [`SnapshotSource`] (the
//!   venue's engine, or a recording), consistent with the stream: its `lastUpdateId` is the
//!   update id of the book it was taken from.
//! - [`Faults`]: switches for tests, set at run time: drop every connection, stop answering
//!   pings, skip depth messages (a `U`/`u` gap), send garbage.
//! - [`MdConfig::connection_lifetime`]: the server closes a WebSocket connection at that age
//!   (Close 1001), as Binance does at 24 h; [`MdStats`] counts those, and the clients' own Close
//!   frames (`client_closes`, `client_closes_normal` for code 1000).
//!
//! What is published comes through a [`Hub`] from a [`VenueCore`] (the matching engine, its
//! feed and synthetic flow behind one mutex, shared with the FIX side) driven by a
//! [`FeedThread`], or from a [`ReplayThread`] playing a capture.
//!
//! Submodules: [`wire`] (HTTP and frames, sans IO), [`hub`] (fan-out), [`venue_core`] (the venue
//! core and its feed thread), [`replay`] (a recording served).

pub mod hub;
pub mod replay;
pub mod venue_core;
pub mod wire;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use levibot_gateway::ws::frame::Opcode;
use levibot_gateway::ws::{CONTROL_PAYLOAD_LEN_MAX, close_code};

pub use self::hub::{CLIENT_QUEUE_LEN_DEFAULT, Hub, HubStats, Outgoing};
pub use self::replay::{ReplayConfig, ReplayError, ReplaySnapshots, ReplayThread, load_capture};
pub use self::venue_core::{FeedConfig, FeedThread, VenueCore, VenueError};
use self::wire::{
    CLOSE_INTERNAL_ERROR, CLOSE_POLICY_VIOLATION, ClientFrame, FrameReader, Refusal, Route,
};

/// How often the acceptor looks for a new connection or a stop.
pub const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long a WebSocket connection's thread waits for client bytes before it looks at its
/// queue again (the most a message waits in the queue).
pub const CLIENT_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long a connection waits for more of a request head before it looks for a stop.
pub const REQUEST_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Read size of a connection.
const READ_CHUNK_LEN: usize = 4096;
/// The garbage text frame's payload (not JSON).
pub const GARBAGE_TEXT: &str = "}{ venue-sim garbage: this is not JSON";

/// Settings of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdConfig {
    /// The server pings each WebSocket client this often (Binance: 20 s).
    pub ping_interval: Duration,
    /// A client that has not answered a ping within this is dropped (Binance: 1 min).
    pub pong_timeout: Duration,
    /// Messages queued for one client before it is disconnected as too slow.
    pub client_queue_len: usize,
    /// Connections served at once (one thread each); more are refused with 503.
    pub connections_max: usize,
    /// A request head must arrive within this.
    pub request_timeout: Duration,
    /// A write that blocks longer than this ends the connection.
    pub write_timeout: Duration,
    /// What this listener answers: both (as venue-sim does by default), or one of the two when
    /// the REST API has a port of its own (as Binance has a host of its own for it).
    pub serves: Serves,
    /// A WebSocket connection older than this is closed by the server (Close 1001), as Binance
    /// closes every stream connection at 24 h; `None`: never.
    pub connection_lifetime: Option<Duration>,
}

/// What a market-data listener answers; the other kind of request gets a 404 that says where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    StreamsAndRest,
    StreamsOnly,
    RestOnly,
}

impl Default for MdConfig {
    fn default() -> Self {
        MdConfig {
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(60),
            client_queue_len: CLIENT_QUEUE_LEN_DEFAULT,
            connections_max: 64,
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            serves: Serves::StreamsAndRest,
            connection_lifetime: None,
        }
    }
}

/// Why a REST snapshot could not be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    #[error("this venue serves no exchangeInfo")]
    NoExchangeInfo,
}

/// Where REST depth snapshots (and the exchangeInfo) come from.
pub trait SnapshotSource: Send + Sync {
    /// The `/api/v3/depth` body of `symbol` (upper case), at most `limit` levels a side.
    fn depth_snapshot(&self, symbol: &str, limit: usize) -> Result<String, SnapshotError>;

    /// The `/api/v3/exchangeInfo` body of `symbols` (upper case; empty: all).
    fn exchange_info(&self, _symbols: &[String]) -> Result<String, SnapshotError> {
        Err(SnapshotError::NoExchangeInfo)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum MdError {
    #[error("market-data server: bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("market-data server on {addr}: {op}: {source}")]
    Io {
        addr: SocketAddr,
        op: &'static str,
        source: std::io::Error,
    },
}

/// Counts kept by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdStats {
    pub connections: u64,
    pub websocket_clients: u64,
    pub snapshots_served: u64,
    /// Requests answered with an HTTP error.
    pub refused: u64,
    /// Clients dropped for not answering a ping in time.
    pub pong_timeouts: u64,
    /// Client frames that broke the protocol.
    pub protocol_errors: u64,
    /// Close frames received from clients (each echoed), and those with status code 1000
    /// (normal closure).
    pub client_closes: u64,
    pub client_closes_normal: u64,
    /// WebSocket connections the server closed at [`MdConfig::connection_lifetime`].
    pub lifetime_closes: u64,
    /// Connections open now.
    pub open: usize,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Bumped by "drop all connections": a connection opened under an older value ends.
    drop_generation: AtomicU64,
    ignore_pings: AtomicBool,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    websocket_clients: AtomicU64,
    snapshots_served: AtomicU64,
    refused: AtomicU64,
    pong_timeouts: AtomicU64,
    protocol_errors: AtomicU64,
    client_closes: AtomicU64,
    client_closes_normal: AtomicU64,
    lifetime_closes: AtomicU64,
}

/// What the market-data server's threads share: its config, the hub of client queues, the
/// fault switches and the counters.
struct MdServerState {
    addr: SocketAddr,
    hub: Arc<Hub>,
    snapshots: Arc<dyn SnapshotSource>,
    config: MdConfig,
    stop: AtomicBool,
    faults: FaultState,
    open: AtomicUsize,
    counters: Counters,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The fault switches of a running server (cheap to clone, usable from any thread).
#[derive(Clone)]
pub struct Faults {
    shared: Arc<MdServerState>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl Faults {
    /// Ends every connection open now, abruptly (no Close frame): clients see the TCP stream
    /// end. New connections are served as usual.
    pub fn drop_all_connections(&self) {
        self.shared
            .faults
            .drop_generation
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Stops (`true`) or resumes answering the clients' pings.
    pub fn set_ignore_pings(&self, ignore: bool) {
        self.shared
            .faults
            .ignore_pings
            .store(ignore, Ordering::Release);
    }

    /// Drops the next `n` depth messages for every client: each sees a `U`/`u` gap.
    pub fn skip_depth_messages(&self, n: u32) {
        self.shared.hub.skip_depth_messages(n);
    }

    /// Sends every client a text frame that is not JSON ([`GARBAGE_TEXT`]); the connection
    /// stays up.
    pub fn send_garbage_text(&self) {
        self.shared.hub.send_to_all(Outgoing::GarbageText);
    }

    /// Sends every client a frame with a reserved opcode: a client must fail the connection.
    pub fn send_broken_frame(&self) {
        self.shared.hub.send_to_all(Outgoing::BrokenFrame);
    }
}

/// A running market-data server; stopped by [`shutdown`](MdServer::shutdown) or when dropped.
pub struct MdServer {
    shared: Arc<MdServerState>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdServer")
            .field("addr", &self.shared.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MdServer {
    /// Listens on `addr` (port 0: any free port; see [`local_addr`](Self::local_addr)) and
    /// serves `hub`'s messages and `snapshots`' REST answers.
    pub fn bind(
        addr: SocketAddr,
        hub: Arc<Hub>,
        snapshots: Arc<dyn SnapshotSource>,
        config: MdConfig,
    ) -> Result<MdServer, MdError> {
        let listener = TcpListener::bind(addr).map_err(|source| MdError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| MdError::Io {
            addr,
            op: "local_addr",
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| MdError::Io {
                addr,
                op: "set_nonblocking",
                source,
            })?;
        let shared = Arc::new(MdServerState {
            addr,
            hub,
            snapshots,
            config,
            stop: AtomicBool::new(false),
            faults: FaultState::default(),
            open: AtomicUsize::new(0),
            counters: Counters::default(),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("md-accept".into())
                .spawn(move || accept_loop(&shared, &listener))
                .map_err(|source| MdError::Io {
                    addr,
                    op: "spawn the acceptor",
                    source,
                })?
        };
        Ok(MdServer {
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address served (with the port chosen if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    pub fn stats(&self) -> MdStats {
        let c = &self.shared.counters;
        MdStats {
            connections: c.connections.load(Ordering::Relaxed),
            websocket_clients: c.websocket_clients.load(Ordering::Relaxed),
            snapshots_served: c.snapshots_served.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            pong_timeouts: c.pong_timeouts.load(Ordering::Relaxed),
            protocol_errors: c.protocol_errors.load(Ordering::Relaxed),
            client_closes: c.client_closes.load(Ordering::Relaxed),
            client_closes_normal: c.client_closes_normal.load(Ordering::Relaxed),
            lifetime_closes: c.lifetime_closes.load(Ordering::Relaxed),
            open: self.shared.open.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, sends each WebSocket client a Close 1001 and waits for every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for MdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &Arc<MdServerState>, listener: &TcpListener) {
    while !shared.stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                let mut threads = shared
                    .threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                threads.retain(|t| !t.is_finished());
                if shared.open.load(Ordering::Acquire) >= shared.config.connections_max {
                    drop(threads);
                    refuse(
                        shared,
                        stream,
                        &Refusal {
                            status: 503,
                            message: format!(
                                "{} connections already open",
                                shared.config.connections_max
                            ),
                        },
                    );
                    continue;
                }
                shared.open.fetch_add(1, Ordering::AcqRel);
                let conn_shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("md-conn".into())
                    .spawn(move || {
                        serve_connection(&conn_shared, stream);
                        conn_shared.open.fetch_sub(1, Ordering::AcqRel);
                    });
                match spawned {
                    Ok(handle) => threads.push(handle),
                    // The stream went with the closure: the client sees it close.
                    Err(_) => {
                        shared.open.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Per-connection failures (ECONNABORTED, EMFILE): wait and go on.
            Err(_) => std::thread::sleep(ACCEPT_POLL_INTERVAL),
        }
    }
}

/// Answers `refusal` and closes.
fn refuse(shared: &MdServerState, mut stream: TcpStream, refusal: &Refusal) {
    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
    let _ = stream.write_all(&wire::refusal_response(refusal));
    let _ = stream.shutdown(Shutdown::Write);
}

/// A REST answer: the JSON body, or a 400 that says why (counted as refused); then the end.
fn answer_rest(
    shared: &MdServerState,
    mut stream: TcpStream,
    answer: Result<String, SnapshotError>,
) {
    let response = match answer {
        Ok(body) => wire::http_response(200, "application/json", &body),
        Err(e) => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            wire::refusal_response(&Refusal {
                status: 400,
                message: e.to_string(),
            })
        }
    };
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads the request head, then serves a snapshot or a WebSocket client.
fn serve_connection(shared: &MdServerState, mut stream: TcpStream) {
    let generation = shared.faults.drop_generation.load(Ordering::Acquire);
    let config = &shared.config;
    if stream.set_nonblocking(false).is_err()
        || stream.set_nodelay(true).is_err()
        || stream
            .set_write_timeout(Some(config.write_timeout))
            .is_err()
    {
        return;
    }
    let deadline = Instant::now() + config.request_timeout;
    let mut buf = Vec::with_capacity(READ_CHUNK_LEN);
    let mut chunk = [0u8; READ_CHUNK_LEN];
    let (head_len, route) = loop {
        match wire::parse_request(&buf) {
            Ok(Some(found)) => break found,
            Ok(None) => {}
            Err(refusal) => return refuse(shared, stream, &refusal),
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        let wait = left.clamp(Duration::from_millis(1), REQUEST_POLL_INTERVAL);
        if stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    };
    let misdirected = match (&route, config.serves) {
        (Route::Depth { .. } | Route::ExchangeInfo { .. }, Serves::StreamsOnly) => {
            Some("this port serves the streams only: the REST API is on its own port")
        }
        (Route::Stream { .. }, Serves::RestOnly) => {
            Some("this port serves the REST API only: the streams are on their own port")
        }
        _ => None,
    };
    if let Some(message) = misdirected {
        let refusal = Refusal {
            status: 404,
            message: message.into(),
        };
        return refuse(shared, stream, &refusal);
    }
    match route {
        Route::Depth { symbol, limit } => {
            let answer = shared.snapshots.depth_snapshot(&symbol, limit);
            if answer.is_ok() {
                shared
                    .counters
                    .snapshots_served
                    .fetch_add(1, Ordering::Relaxed);
            }
            answer_rest(shared, stream, answer);
        }
        Route::ExchangeInfo { symbols } => {
            answer_rest(shared, stream, shared.snapshots.exchange_info(&symbols));
        }
        Route::Stream {
            streams,
            combined,
            key,
        } => {
            // Subscribed before the 101 goes out: once the client sees the upgrade, every
            // message published after it (and so after any snapshot it fetches next) is queued
            // for it, and the snapshot's sequence continues without a hole.
            let subscription = shared.hub.subscribe(&streams);
            if stream.write_all(&wire::upgrade_response(&key)).is_ok() {
                shared
                    .counters
                    .websocket_clients
                    .fetch_add(1, Ordering::Relaxed);
                let mut client = WsConnection {
                    shared,
                    stream,
                    generation,
                    combined,
                    reader: FrameReader::default(),
                    out: Vec::new(),
                };
                client.reader.feed(&buf[head_len..]);
                client.run(&subscription);
            }
            shared.hub.unsubscribe(subscription.id);
        }
    }
}

/// Why a WebSocket connection ends.
enum End {
    /// Close with this code and reason, then shut the socket.
    Close(u16, &'static str),
    /// The client's Close was echoed (or the peer is gone): just shut the socket.
    Quiet,
    /// The drop-all fault: shut the socket, no Close.
    Abrupt,
}

struct WsConnection<'a> {
    shared: &'a MdServerState,
    stream: TcpStream,
    generation: u64,
    combined: bool,
    reader: FrameReader,
    out: Vec<u8>,
}

impl WsConnection<'_> {
    fn run(&mut self, subscription: &hub::Subscription) {
        let end = self.serve(subscription);
        match end {
            End::Close(code, reason) => {
                self.out.clear();
                wire::write_close(&mut self.out, code, reason);
                let _ = self.stream.write_all(&self.out);
                let _ = self.stream.shutdown(Shutdown::Write);
                // Give the client a moment to read the Close before the socket goes.
                let _ = self.stream.set_read_timeout(Some(CLIENT_POLL_INTERVAL));
                let mut sink = [0u8; 256];
                let _ = self.stream.read(&mut sink);
            }
            End::Quiet => {
                let _ = self.stream.shutdown(Shutdown::Write);
            }
            End::Abrupt => {
                let _ = self.stream.shutdown(Shutdown::Both);
            }
        }
    }

    fn serve(&mut self, subscription: &hub::Subscription) -> End {
        let shared = self.shared;
        let config = &shared.config;
        if self
            .stream
            .set_read_timeout(Some(CLIENT_POLL_INTERVAL))
            .is_err()
        {
            return End::Abrupt;
        }
        let mut chunk = [0u8; READ_CHUNK_LEN];
        let end_of_life = config.connection_lifetime.map(|l| Instant::now() + l);
        let mut last_ping = Instant::now();
        let mut awaiting_pong: Option<Instant> = None;
        let mut ping_count: u64 = 0;
        loop {
            if shared.stop.load(Ordering::Acquire) {
                return End::Close(close_code::GOING_AWAY, "venue-sim is shutting down");
            }
            if shared.faults.drop_generation.load(Ordering::Acquire) != self.generation {
                return End::Abrupt;
            }
            if end_of_life.is_some_and(|end| Instant::now() >= end) {
                shared
                    .counters
                    .lifetime_closes
                    .fetch_add(1, Ordering::Relaxed);
                return End::Close(close_code::GOING_AWAY, "connection lifetime reached");
            }
            // Client bytes (this read is also the loop's wait).
            match self.stream.read(&mut chunk) {
                Ok(0) => return End::Quiet,
                Ok(n) => self.reader.feed(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return End::Abrupt,
            }
            loop {
                match self.reader.next_frame() {
                    Ok(None) => break,
                    Ok(Some(ClientFrame::Ping(payload))) => {
                        if !shared.faults.ignore_pings.load(Ordering::Acquire) {
                            wire::write_frame(&mut self.out, Opcode::Pong, &payload);
                        }
                    }
                    Ok(Some(ClientFrame::Pong(_))) => awaiting_pong = None,
                    Ok(Some(ClientFrame::Close(code))) => {
                        let counters = &shared.counters;
                        counters.client_closes.fetch_add(1, Ordering::Relaxed);
                        if code == Some(close_code::NORMAL) {
                            counters
                                .client_closes_normal
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        // Echo the client's code (RFC 6455 5.5.1), after what is pending.
                        let code = code.unwrap_or(close_code::NORMAL);
                        wire::write_close(&mut self.out, code, "");
                        let _ = self.stream.write_all(&self.out);
                        return End::Quiet;
                    }
                    Ok(Some(ClientFrame::Data)) => {}
                    Err(e) => {
                        shared
                            .counters
                            .protocol_errors
                            .fetch_add(1, Ordering::Relaxed);
                        return End::Close(e.code, e.why);
                    }
                }
            }
            // Queued messages.
            loop {
                match subscription.rx.try_recv() {
                    Ok(item) => self.encode(&item),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        if subscription.too_slow.load(Ordering::Acquire) {
                            return End::Close(CLOSE_POLICY_VIOLATION, "too slow: queue full");
                        }
                        return End::Close(close_code::GOING_AWAY, "unsubscribed");
                    }
                }
            }
            // Keepalive.
            let now = Instant::now();
            if let Some(sent) = awaiting_pong {
                if now.duration_since(sent) > config.pong_timeout {
                    shared
                        .counters
                        .pong_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    return End::Close(CLOSE_INTERNAL_ERROR, "no pong in time");
                }
            } else if now.duration_since(last_ping) >= config.ping_interval {
                ping_count += 1;
                let payload = ping_count.to_string();
                debug_assert!(payload.len() <= CONTROL_PAYLOAD_LEN_MAX);
                wire::write_frame(&mut self.out, Opcode::Ping, payload.as_bytes());
                last_ping = now;
                awaiting_pong = Some(now);
            }
            if !self.out.is_empty() {
                if self.stream.write_all(&self.out).is_err() {
                    return End::Abrupt;
                }
                self.out.clear();
            }
        }
    }

    fn encode(&mut self, item: &Outgoing) {
        match item {
            Outgoing::Message(m) => {
                let text = if self.combined { &m.text[..] } else { m.data() };
                wire::write_frame(&mut self.out, Opcode::Text, text.as_bytes());
            }
            Outgoing::GarbageText => {
                wire::write_frame(&mut self.out, Opcode::Text, GARBAGE_TEXT.as_bytes());
            }
            Outgoing::BrokenFrame => {
                // FIN and the reserved opcode 0x3.
                wire::write_raw_frame(&mut self.out, 0x83, b"broken");
            }
        }
    }
}
