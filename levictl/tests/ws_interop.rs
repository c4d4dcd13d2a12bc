//! Interop: our WebSocket client and REST fetch against Python's `websockets` (a different,
//! widely used implementation), replaying the corpus on 127.0.0.1.
//!
//! The server (`support/ws_replay_server.py`) sends the 265 recorded combined-stream messages
//! as text frames (some fragmented), pings us and waits for each pong, serves the recorded REST
//! depth snapshots, and closes. We fetch each snapshot at the point of the stream where it was
//! received (as `capture_check::replay` applies it), decode everything and build the books with
//! the engine's `OrderBook`: at the end every book equals the replay's.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use levibot_book::{BookLimits, BookState, OrderBook};
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::{Recording, testdata_dir};
use levibot_gateway::ws::{
    ClientError, MessageKind, Stream, WsClient, WsConfig, fetch_depth_snapshot, stream_path,
};
use levibot_shm::records::Level;

/// Generous: a loaded 2-core CI machine runs the Python server too.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Must match the server's `PING_EVERY`.
const SERVER_PING_EVERY: usize = 40;
/// The depth the recorded snapshots were asked for.
const SNAPSHOT_LIMIT: u32 = 1000;

/// The Python server; killed when dropped, so also when the test fails.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_server(stream: &Path, snapshots: &Path) -> (Server, SocketAddr) {
    let have_websockets = Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_websockets,
        "python3 with the websockets package is needed: run scripts/install-test-deps"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ws_replay_server.py");
    let port = free_port();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(stream)
        .arg(snapshots)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let server = Server { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(TIMEOUT)
        .expect("the Python server did not say it was ready");
    assert_eq!(
        line.trim(),
        format!("ready {port}"),
        "the server's first line"
    );
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn corpus_over_python_websockets_builds_the_replay_books() {
    let dir = testdata_dir();
    let (stream_file, snapshot_file) = (dir.join("BINANCE.ws.1.0"), dir.join("BINANCE.http.0.0"));
    let recording = Recording::testdata().unwrap();
    let expected: Vec<&[u8]> = recording.messages().map(|l| l.unwrap().body).collect();
    assert_eq!(expected.len(), levibot_sim::synth::TESTDATA_MESSAGES);
    let epochs: Vec<f64> = recording
        .messages()
        .map(|l| l.unwrap().epoch_seconds)
        .collect();
    let mut decoder = Decoder::new(recording.snapshot_instruments().unwrap());
    let mut books: Vec<OrderBook> = decoder
        .instruments()
        .iter()
        .map(|i| OrderBook::new(i.id, BookLimits::DEFAULT).unwrap())
        .collect();

    // Each snapshot is fetched before the first message received at or after it, as replay
    // applies it: (message index, symbol, instrument id), in order.
    let mut schedule: Vec<(usize, f64, usize, String, u32)> = recording
        .snapshot_lines()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let epoch = s.line.epoch_seconds;
            let before = epochs
                .iter()
                .position(|&e| e >= epoch)
                .unwrap_or(epochs.len());
            let id = decoder.instruments().find(s.symbol.as_bytes()).unwrap().id;
            (before, epoch, n, s.symbol.to_owned(), id)
        })
        .collect();
    schedule.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)));
    let mut schedule = schedule.into_iter().peekable();

    let (_server, addr) = start_server(&stream_file, &snapshot_file);
    let host = addr.to_string();
    let symbols: Vec<&str> = decoder
        .instruments()
        .iter()
        .map(|i| i.symbol.as_str())
        .collect();
    // The streams the recording subscribed to (its header line names them); the server
    // refuses any other set.
    let header = String::from_utf8_lossy(&recording.stream);
    let header = header.lines().next().unwrap_or_default();
    let recorded_streams: Vec<Stream> = [
        Stream::Depth100ms,
        Stream::BookTicker,
        Stream::Kline1m,
        Stream::AggTrade,
    ]
    .into_iter()
    .filter(|s| {
        header.contains(&format!("@{}/", s.suffix()))
            || header.contains(&format!("@{} ", s.suffix()))
    })
    .collect();
    let path = stream_path(&symbols, &recorded_streams).unwrap();
    let mut tsc = 0u64;
    let mut stamp = || {
        tsc += 1;
        tsc
    };
    let mut client =
        WsClient::connect(addr, &host, &path, WsConfig::default(), TIMEOUT, &mut stamp).unwrap();

    let mut fetch_snapshots = |decoder: &mut Decoder, books: &mut [OrderBook], upto: usize| {
        while let Some((_, _, _, symbol, id)) = schedule.next_if(|s| s.0 <= upto) {
            let body = fetch_depth_snapshot(addr, &host, &symbol, SNAPSHOT_LIMIT, TIMEOUT).unwrap();
            let snapshot = decoder.decode_snapshot(&body, id).unwrap();
            let _outcome = books[id as usize].apply_snapshot(&snapshot).unwrap();
        }
    };

    let mut received = 0;
    let mut last_tsc = 0;
    let close_reason = loop {
        fetch_snapshots(&mut decoder, &mut books, received);
        match client.read_message(Some(TIMEOUT), &mut stamp) {
            Ok(Some(message)) => {
                assert!(received < expected.len(), "more messages than recorded");
                assert_eq!(message.kind, MessageKind::Text);
                assert_eq!(
                    message.payload, expected[received],
                    "message {received} differs from the recording"
                );
                assert!(message.recv_tsc >= last_tsc && message.recv_tsc > 0);
                last_tsc = message.recv_tsc;
                match decoder.decode(message.payload, message.recv_tsc) {
                    Ok(MarketEvent::Depth(update)) => {
                        let _outcome = books[update.instrument_id as usize].apply_update(&update);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("message {received}: {e}"),
                }
                received += 1;
            }
            Ok(None) => panic!("no message within {TIMEOUT:?} after {received}"),
            Err(ClientError::Closed { code, reason, .. }) => {
                assert_eq!(code, Some(1000), "{reason}");
                break reason;
            }
            Err(e) => panic!("after {received} messages: {e}"),
        }
    };
    fetch_snapshots(&mut decoder, &mut books, usize::MAX);
    assert_eq!(received, expected.len());
    assert_eq!(
        close_reason,
        format!(
            "end of corpus; pongs {}",
            expected.len() / SERVER_PING_EVERY
        ),
        "every ping answered"
    );
    let stats = client.stats();
    assert_eq!(stats.pings_in as usize, expected.len() / SERVER_PING_EVERY);
    assert!(stats.fragmented_messages_in > 30, "{stats:?}");

    let replay =
        levictl::capture_check::replay(&stream_file, &snapshot_file, &dir.join("BINANCE.0"))
            .unwrap();
    assert_eq!(replay.instruments.len(), books.len());
    for instrument in replay.instruments.iter() {
        let theirs = &replay.books[instrument.id as usize];
        let ours = &books[decoder
            .instruments()
            .find(instrument.symbol.as_str().as_bytes())
            .unwrap()
            .id as usize];
        let symbol = instrument.symbol.as_str();
        assert_eq!(ours.state(), BookState::Synced, "{symbol}");
        assert_eq!(ours.state(), theirs.state(), "{symbol}");
        assert_eq!(ours.last_update_id(), theirs.last_update_id(), "{symbol}");
        let bids: Vec<Level> = ours.bids().collect();
        let asks: Vec<Level> = ours.asks().collect();
        // The synthetic books hold 20 levels a side.
        assert!(
            bids.len() >= 20 && asks.len() >= 20,
            "{symbol}: a full book"
        );
        assert_eq!(bids, theirs.bids().collect::<Vec<Level>>(), "{symbol} bids");
        assert_eq!(asks, theirs.asks().collect::<Vec<Level>>(), "{symbol} asks");
        let (stats, replay_stats) = (ours.stats(), theirs.stats());
        assert_eq!(
            (stats.updates_applied, stats.gaps, stats.resyncs),
            (replay_stats.updates_applied, 0, 0),
            "{symbol}"
        );
    }
}
