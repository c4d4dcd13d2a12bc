//! venue-sim's market-data server against our own client, on 127.0.0.1: the gateway's
//! `WsClient`, `fetch_depth_snapshot` and `Decoder`, the engine's `OrderBook`.
//!
//! A client that follows Binance's procedure (subscribe, fetch the snapshot, apply the diffs
//! from `lastUpdateId` on) ends with the venue's book while synthetic traders move it; the fault
//! switches do what they say (a skipped depth message is a gap, dropped connections are an error
//! then a resync, garbage is a decode error on a connection that stays up, a broken frame ends
//! it); the server's side of the protocol holds against a raw client (pings, pong timeouts,
//! unmasked frames, Close echo); and the `venue-sim` binary replays the corpus to a client.
//!
//! Servers, feeds and child processes are stopped when dropped, so also when a test fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use levibot_book::{BookLimits, BookOutcome, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::{Recording, testdata_dir};
use levibot_gateway::instrument::InstrumentTable;
use levibot_gateway::ws::frame::{Opcode, parse_header, write_masked_frame};
use levibot_gateway::ws::handshake::Handshake;
use levibot_gateway::ws::{
    ClientError, Stream, WsClient, WsConfig, fetch_depth_snapshot, stream_path,
};
use levibot_sim::matching::LevelTotal;
use levibot_sim::md_server::{
    FeedConfig, FeedThread, GARBAGE_TEXT, Hub, MdConfig, MdServer, SnapshotSource, VenueCore,
};

/// Generous: a loaded 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(30);
/// One read's wait in the loops that look at a deadline.
const READ_SLICE: Duration = Duration::from_millis(200);
const SNAPSHOT_LIMIT: u32 = 1000;
/// NKNUSDT's fair price in ticks (0.35).
const FAIR_TICKS: i64 = 3_500;

struct Venue {
    // Field order is drop order: the feed stops before the server.
    feed: Option<FeedThread>,
    server: MdServer,
    core: Arc<VenueCore>,
    table: InstrumentTable,
}

impl Venue {
    fn start(rate: u32, config: MdConfig) -> Venue {
        let all = Recording::testdata().unwrap().instruments().unwrap();
        let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
        let hub = Arc::new(Hub::new(config.client_queue_len));
        let seed = levibot_testkit::seed();
        let core = Arc::new(
            VenueCore::new(table.clone(), vec![FAIR_TICKS], seed, Arc::clone(&hub)).unwrap(),
        );
        let server = MdServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            hub,
            Arc::clone(&core) as Arc<dyn SnapshotSource>,
            config,
        )
        .unwrap();
        // Warm the book up before anyone connects.
        core.run_flow(500);
        core.flush_depth();
        let feed = FeedThread::spawn(
            Arc::clone(&core),
            FeedConfig {
                rate,
                depth_interval: Duration::from_millis(20),
            },
        )
        .unwrap();
        Venue {
            feed: Some(feed),
            server,
            core,
            table,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

fn test_config() -> MdConfig {
    MdConfig {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_secs(10),
        ..MdConfig::default()
    }
}

/// What one message did to the client.
#[derive(Debug)]
enum Step {
    Depth(BookOutcome),
    Other,
    DecodeError(String),
}

/// Our client: WebSocket, decoder, book.
struct Client {
    ws: WsClient,
    decoder: Decoder,
    book: OrderBook,
    addr: SocketAddr,
}

impl Client {
    fn connect(addr: SocketAddr, table: &InstrumentTable) -> Client {
        let path = stream_path(
            &["NKNUSDT"],
            &[Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade],
        )
        .unwrap();
        let ws = WsClient::connect(
            addr,
            &addr.to_string(),
            &path,
            WsConfig::default(),
            TIMEOUT,
            || 0,
        )
        .unwrap();
        let mut client = Client {
            ws,
            decoder: Decoder::new(table.clone()),
            book: OrderBook::new(0, BookLimits::DEFAULT).unwrap(),
            addr,
        };
        client.resync();
        client
    }

    /// Binance's procedure: the stream is subscribed; fetch the snapshot, then the diffs
    /// continue from it (the stale ones are dropped as they come).
    fn resync(&mut self) {
        let body = fetch_depth_snapshot(
            self.addr,
            &self.addr.to_string(),
            "NKNUSDT",
            SNAPSHOT_LIMIT,
            TIMEOUT,
        )
        .unwrap();
        let snapshot = self.decoder.decode_snapshot(&body, 0).unwrap();
        assert_eq!(
            self.book.apply_snapshot(&snapshot).unwrap(),
            BookOutcome::Applied
        );
        assert_eq!(self.book.state(), BookState::Synced);
    }

    /// The next message, `Ok(None)` if none came within [`READ_SLICE`].
    fn step(&mut self) -> Result<Option<Step>, ClientError> {
        let Some(message) = self.ws.read_message(Some(READ_SLICE), || 0)? else {
            return Ok(None);
        };
        Ok(Some(match self.decoder.decode(message.payload, 0) {
            Ok(MarketEvent::Depth(d)) => Step::Depth(self.book.apply_update(&d)),
            Ok(_) => Step::Other,
            Err(e) => Step::DecodeError(e.to_string()),
        }))
    }

    /// Reads until `until` says so; panics on a timeout or an error.
    fn read_until(&mut self, what: &str, mut until: impl FnMut(&Step, &OrderBook) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match self.step() {
                Ok(Some(step)) => {
                    if until(&step, &self.book) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => panic!("{what}: {e}"),
            }
        }
        panic!("{what}: not within {TIMEOUT:?}");
    }

    /// Reads `n` depth messages, each applied in sequence.
    fn apply_depth_messages(&mut self, n: usize) {
        let mut seen = 0;
        self.read_until("depth messages in sequence", |step, _| match step {
            Step::Depth(BookOutcome::Applied | BookOutcome::Stale) => {
                seen += 1;
                seen >= n
            }
            Step::Depth(other) => panic!("a depth message: {other:?}"),
            Step::DecodeError(e) => panic!("a decode error: {e}"),
            Step::Other => false,
        });
    }

    fn levels(&self) -> (Vec<LevelTotal>, Vec<LevelTotal>) {
        (
            self.book.bids().map(|l| (l.px, l.qty)).collect(),
            self.book.asks().map(|l| (l.px, l.qty)).collect(),
        )
    }
}

#[test]
fn a_client_following_binances_procedure_holds_the_venues_book() {
    let mut venue = Venue::start(2_000, test_config());
    let mut client = Client::connect(venue.addr(), &venue.table);
    // A while of live flow (also through several of the server's pings).
    client.apply_depth_messages(40);
    // Stop the flow, flush, and read the venue's book as of the last depth message.
    venue.feed.take().unwrap().stop();
    let (update_id, bids, asks) = venue.core.flush_depth_and(|engine| {
        let (bids, asks) = engine.depth(0, usize::MAX).unwrap();
        (engine.update_id(0).unwrap(), bids, asks)
    });
    client.read_until("the venue's last update id", |step, book| {
        if let Step::Depth(outcome) = step {
            assert!(
                matches!(outcome, BookOutcome::Applied | BookOutcome::Stale),
                "{outcome:?}"
            );
        }
        book.last_update_id() == Some(update_id)
    });
    let (got_bids, got_asks) = client.levels();
    assert!(!bids.is_empty() && !asks.is_empty());
    assert_eq!(got_bids, bids, "bids at update id {update_id}");
    assert_eq!(got_asks, asks, "asks at update id {update_id}");
    let stats = venue.server.stats();
    assert_eq!(
        (stats.websocket_clients, stats.snapshots_served),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.pong_timeouts, 0,
        "our client answers the server's pings"
    );
}

#[test]
fn a_skipped_depth_message_is_a_gap_for_the_client() {
    let venue = Venue::start(2_000, test_config());
    let mut client = Client::connect(venue.addr(), &venue.table);
    client.apply_depth_messages(5);
    venue.server.faults().skip_depth_messages(1);
    client.read_until("a gap", |step, _| {
        matches!(step, Step::Depth(BookOutcome::Gap { .. }))
    });
    assert_eq!(client.book.state(), BookState::NeedsResync);
    assert_eq!(venue.server.hub().stats().skipped, 1);
    // A new snapshot, and the stream goes on from it.
    client.resync();
    client.apply_depth_messages(5);
}

#[test]
fn dropped_connections_are_an_error_then_the_client_reconnects_and_resyncs() {
    let venue = Venue::start(2_000, test_config());
    let mut client = Client::connect(venue.addr(), &venue.table);
    client.apply_depth_messages(3);
    venue.server.faults().drop_all_connections();
    let deadline = Instant::now() + TIMEOUT;
    let error = loop {
        assert!(Instant::now() < deadline, "no error after the drop");
        match client.step() {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(
        matches!(error, ClientError::Eof { .. } | ClientError::Io { .. }),
        "{error}"
    );
    client.book.mark_needs_resync();
    let mut client = Client::connect(venue.addr(), &venue.table);
    client.apply_depth_messages(5);
    assert_eq!(venue.server.stats().websocket_clients, 2);
}

#[test]
fn garbage_is_a_decode_error_on_a_connection_that_stays_up_and_a_broken_frame_ends_it() {
    let venue = Venue::start(500, test_config());
    let mut client = Client::connect(venue.addr(), &venue.table);
    client.apply_depth_messages(2);
    venue.server.faults().send_garbage_text();
    client.read_until("the garbage", |step, _| {
        matches!(step, Step::DecodeError(_))
    });
    // The same connection goes on.
    client.apply_depth_messages(3);

    venue.server.faults().send_broken_frame();
    let deadline = Instant::now() + TIMEOUT;
    let error = loop {
        assert!(Instant::now() < deadline, "the broken frame was taken");
        if let Err(e) = client.step() {
            break e;
        }
    };
    assert!(matches!(error, ClientError::Frame { .. }), "{error}");
    assert!(!GARBAGE_TEXT.is_empty());
}

/// A hand-driven WebSocket client: handshake, masked frames of our choosing, raw frames in.
struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Answer the server's pings while reading (as any client should).
    answer_pings: bool,
}

impl RawClient {
    fn connect(addr: SocketAddr, path: &str) -> RawClient {
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(READ_SLICE)).unwrap();
        let handshake = Handshake::new(&addr.to_string(), path, [7; 16]);
        stream.write_all(handshake.request()).unwrap();
        let mut client = RawClient {
            stream,
            buf: Vec::new(),
            answer_pings: true,
        };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no handshake response");
            if let Some(n) = handshake.parse_response(&client.buf).unwrap() {
                client.buf.drain(..n);
                return client;
            }
            client.fill();
        }
    }

    /// Reads what is there (up to [`READ_SLICE`]); `false` at the end of the stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    fn send(&mut self, opcode: Opcode, payload: &[u8]) {
        let mut out = [0u8; 256];
        let n = write_masked_frame(&mut out, opcode, payload, [1, 2, 3, 4]).unwrap();
        self.stream.write_all(&out[..n]).unwrap();
    }

    /// The next frame (opcode bits, payload); `None` at the end of the stream.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no frame");
            if let Some(h) = parse_header(&self.buf).unwrap() {
                assert!(h.mask.is_none(), "a server frame is never masked");
                let total = h.header_len + h.payload_len as usize;
                if self.buf.len() >= total {
                    let payload = self.buf[h.header_len..total].to_vec();
                    self.buf.drain(..total);
                    if self.answer_pings && h.opcode_bits == Opcode::Ping as u8 {
                        // Best effort: the server may have closed already.
                        let mut out = [0u8; 256];
                        let n =
                            write_masked_frame(&mut out, Opcode::Pong, &payload, [5; 4]).unwrap();
                        let _ = self.stream.write_all(&out[..n]);
                    }
                    return Some((h.opcode_bits, payload));
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Frames until one with `opcode`; returns its payload.
    fn frame_of(&mut self, opcode: Opcode) -> Option<Vec<u8>> {
        while let Some((bits, payload)) = self.frame() {
            if bits == opcode as u8 {
                return Some(payload);
            }
        }
        None
    }
}

const DEPTH_PATH: &str = "/ws/nknusdt@depth@100ms";

#[test]
fn the_server_side_of_the_protocol() {
    let config = MdConfig {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_secs(1),
        ..MdConfig::default()
    };
    let venue = Venue::start(500, config);
    let addr = venue.addr();

    // /ws/<stream>: bare events; our ping is answered with its payload.
    let mut raw = RawClient::connect(addr, DEPTH_PATH);
    let text = raw.frame_of(Opcode::Text).unwrap();
    assert!(text.starts_with(br#"{"e":"depthUpdate""#), "{text:?}");
    raw.send(Opcode::Ping, b"hello");
    assert_eq!(raw.frame_of(Opcode::Pong).unwrap(), b"hello");
    // A Close is echoed with its code.
    raw.send(Opcode::Close, &1000u16.to_be_bytes());
    let close = raw.frame_of(Opcode::Close).unwrap();
    assert_eq!(&close[..2], &1000u16.to_be_bytes());

    // An unmasked frame from a client: Close 1002.
    let mut raw = RawClient::connect(addr, DEPTH_PATH);
    raw.stream.write_all(&[0x81, 0x01, b'x']).unwrap();
    let close = raw.frame_of(Opcode::Close).unwrap();
    assert_eq!(&close[..2], &1002u16.to_be_bytes());

    // The server stops answering pings: nothing else changes, messages keep coming.
    venue.server.faults().set_ignore_pings(true);
    let mut raw = RawClient::connect(addr, DEPTH_PATH);
    raw.send(Opcode::Ping, b"anyone?");
    let mut texts = 0;
    while texts < 5 {
        let (bits, _) = raw.frame().unwrap();
        assert_ne!(bits, Opcode::Pong as u8, "a pong while pings are ignored");
        texts += usize::from(bits == Opcode::Text as u8);
    }
    venue.server.faults().set_ignore_pings(false);
    raw.send(Opcode::Ping, b"again");
    assert_eq!(raw.frame_of(Opcode::Pong).unwrap(), b"again");
    drop(raw);

    // A client that never answers the server's pings is dropped with Close 1011.
    let mut silent = RawClient::connect(addr, DEPTH_PATH);
    silent.answer_pings = false;
    let close = silent.frame_of(Opcode::Close).unwrap();
    assert_eq!(&close[..2], &1011u16.to_be_bytes());
    assert!(venue.server.stats().pong_timeouts >= 1);

    // Plain HTTP on a stream path, unknown paths and symbols: refused with a status.
    let status = |path: &str| {
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap()
    };
    assert_eq!(status(DEPTH_PATH), 426);
    assert_eq!(status("/nowhere"), 404);
    assert_eq!(status("/api/v3/depth?symbol=NOPE&limit=5"), 400);
    assert_eq!(status("/api/v3/depth?symbol=NKNUSDT&limit=5"), 200);
    // After all that, the server serves a new client as usual.
    let mut fresh = RawClient::connect(addr, DEPTH_PATH);
    fresh.send(Opcode::Ping, b"still there");
    assert_eq!(fresh.frame_of(Opcode::Pong).unwrap(), b"still there");
    assert!(fresh.frame_of(Opcode::Text).is_some());
}

#[test]
fn a_client_that_falls_behind_is_disconnected() {
    let config = MdConfig {
        client_queue_len: 1,
        ..test_config()
    };
    let venue = Venue::start(0, config);
    let hub = venue.server.hub();
    let mut raw = RawClient::connect(venue.addr(), DEPTH_PATH);
    let deadline = Instant::now() + TIMEOUT;
    while hub.subscriber_count() == 0 {
        assert!(Instant::now() < deadline, "never subscribed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Far faster than the connection drains its queue of one.
    for i in 0..1_000 {
        hub.publish(format!(
            r#"{{"stream":"nknusdt@depth@100ms","data":{{"e":"depthUpdate","n":{i}}}}}"#
        ));
    }
    let close = raw.frame_of(Opcode::Close).unwrap();
    assert_eq!(&close[..2], &1008u16.to_be_bytes());
    assert_eq!(hub.stats().too_slow, 1);
    assert_eq!(hub.subscriber_count(), 0);
}

/// The `venue-sim` binary; killed when dropped.
struct Sim {
    child: Child,
    /// Its stdout, kept open while it runs.
    _stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts the binary with `args` and `--md-addr` on a free port; waits for its `listening`
/// line.
fn start_sim(args: &[&std::ffi::OsStr]) -> (Sim, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut sim = Sim {
        child: Command::new(env!("CARGO_BIN_EXE_venue-sim"))
            .args(args)
            .args(["--md-addr", &addr.to_string(), "--duration", "120"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
        _stdout: None,
    };
    let mut stdout = BufReader::new(sim.child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains(&format!("listening on {addr}")), "{line:?}");
    sim._stdout = Some(stdout);
    (sim, addr)
}

#[test]
fn the_binary_runs_a_venue_a_client_syncs_with() {
    the_binary_runs_a_venue_a_client_syncs_with_exchange_info(None);
}

/// `--exchange-info` takes bare JSON (what `GET /api/v3/exchangeInfo` answers) as the daemon does,
/// and a capture line (the recordings' `BINANCE.0`).
#[test]
fn the_binary_takes_exchange_info_as_bare_json_or_a_capture_line() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("exchangeInfo.json");
    let recording = Recording::testdata().unwrap();
    std::fs::write(
        &bare,
        levibot_gateway::instrument::exchange_info_json(&recording.instruments().unwrap()),
    )
    .unwrap();
    the_binary_runs_a_venue_a_client_syncs_with_exchange_info(Some(&bare));
    the_binary_runs_a_venue_a_client_syncs_with_exchange_info(Some(&recording.exchange_info_path));
}

fn the_binary_runs_a_venue_a_client_syncs_with_exchange_info(exchange_info: Option<&Path>) {
    let args = ["run", "--symbols", "NKNUSDT,BLZETH", "--rate", "1000"];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let mut all = args.clone();
    if let Some(path) = exchange_info {
        all.extend(["--exchange-info".as_ref(), path.as_os_str()]);
    }
    all.extend(["--depth-interval-ms", "20"].map(std::ffi::OsStr::new));
    let (_sim, addr) = start_sim(&all);
    let instruments = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&instruments, &["NKNUSDT"]).unwrap();
    let mut client = Client::connect(addr, &table);
    client.apply_depth_messages(10);
    assert!(client.book.best_bid().is_some() && client.book.best_ask().is_some());
}

#[test]
fn the_binary_replays_the_corpus_to_a_client() {
    let dir = testdata_dir();
    let recording = Recording::testdata().unwrap();
    let recorded: Vec<String> = recording
        .messages()
        .map(|m| String::from_utf8(m.unwrap().body.to_vec()).unwrap())
        .collect();
    assert_eq!(recorded.len(), levibot_sim::synth::TESTDATA_MESSAGES);
    // Every stream of the capture, in the order first seen.
    let mut streams: Vec<String> = Vec::new();
    for m in &recorded {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        let s = v["stream"].as_str().unwrap().to_owned();
        if !streams.contains(&s) {
            streams.push(s);
        }
    }
    let capture = dir.join("BINANCE.ws.1.0");
    let snapshots = dir.join("BINANCE.http.0.0");
    let (_sim, addr) = start_sim(&[
        "replay".as_ref(),
        "--capture".as_ref(),
        capture.as_os_str(),
        "--snapshots".as_ref(),
        snapshots.as_os_str(),
        "--speed".as_ref(),
        "0".as_ref(),
    ]);
    let path = format!("/stream?streams={}", streams.join("/"));
    let mut client = WsClient::connect(
        addr,
        &addr.to_string(),
        &path,
        WsConfig::default(),
        TIMEOUT,
        || 0,
    )
    .unwrap();
    let mut got: Vec<String> = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while got.len() < recorded.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} messages",
            got.len(),
            recorded.len()
        );
        if let Some(m) = client.read_message(Some(READ_SLICE), || 0).unwrap() {
            got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
    }
    assert_eq!(got, recorded, "the messages, in order and byte for byte");
    let body = fetch_depth_snapshot(addr, &addr.to_string(), "NKNUSDT", 1000, TIMEOUT).unwrap();
    assert!(body.starts_with(br#"{"lastUpdateId":"#));
    client.close(1000, "done", Duration::from_secs(5)).unwrap();
}
