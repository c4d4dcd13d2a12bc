//! The live feed's REST snapshot requests are bounded: a symbol with a request pending is not
//! asked for again, and the venue's request weight limit holds (requests past it wait for the
//! window; none is dropped). First on the request table and the scheduler with a fake clock,
//! then `WsFeed` itself against a local venue that counts the snapshots it serves.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use levibot_engine::pipeline::ws_feed::snapshot_limit::{
    BINANCE_REQUEST_WEIGHT_LIMIT, BINANCE_REQUEST_WEIGHT_WINDOW, Next, SnapshotRequests,
    SnapshotScheduler, WeightLimit, WeightWindow, depth_snapshot_weight,
};
use levibot_engine::pipeline::{WsFeed, WsFeedConfig};
use levibot_gateway::source::{MessageSource, Polled};
use levibot_gateway::ws::{RestEndpoint, Stream, accept_key};

#[test]
fn binance_weights_and_limit() {
    assert_eq!(depth_snapshot_weight(5), 5);
    assert_eq!(depth_snapshot_weight(100), 5);
    assert_eq!(depth_snapshot_weight(101), 25);
    assert_eq!(depth_snapshot_weight(500), 25);
    assert_eq!(depth_snapshot_weight(1000), 50);
    assert_eq!(depth_snapshot_weight(5000), 250);
    assert_eq!(BINANCE_REQUEST_WEIGHT_LIMIT, 6000);
    assert_eq!(BINANCE_REQUEST_WEIGHT_WINDOW, Duration::from_secs(60));
    assert_eq!(
        depth_snapshot_weight(levibot_engine::pipeline::ws_feed::SNAPSHOT_LIMIT),
        50
    );
}

#[test]
fn a_burst_of_gaps_on_one_symbol_is_one_request() {
    let requests = Arc::new(SnapshotRequests::new(4));
    let mut scheduler =
        SnapshotScheduler::new(Arc::clone(&requests), WeightLimit::BINANCE_SPOT, 50);
    let t0 = Instant::now();
    assert!(requests.ask(2), "the first gap asks");
    for _ in 0..1000 {
        assert!(
            !requests.ask(2),
            "a gap while a request is pending asks nothing"
        );
    }
    assert_eq!(requests.outstanding(), 1);
    assert_eq!(scheduler.next(t0), Next::Fetch(2));
    assert_eq!(scheduler.next(t0), Next::Nothing, "one fetch for the burst");
    // Gaps while it is fetched, or fetched and not yet handed to the feed: still nothing.
    for _ in 0..1000 {
        assert!(!requests.ask(2));
    }
    assert_eq!(scheduler.next(t0), Next::Nothing);
    // The feed took the snapshot: the next gap is a new request.
    requests.settle(2);
    assert_eq!(requests.outstanding(), 0);
    assert!(!requests.is_pending(2));
    assert!(requests.ask(2));
    assert_eq!(scheduler.next(t0), Next::Fetch(2));
    // A failed fetch is asked again, not dropped.
    scheduler.failed(2);
    assert!(requests.is_pending(2));
    assert_eq!(scheduler.next(t0), Next::Fetch(2));
    requests.settle(2);
    // Unknown symbols ask nothing.
    assert!(!requests.ask(4));
    assert_eq!(requests.outstanding(), 0);
}

#[test]
fn a_new_connection_answers_the_requests_not_yet_fetched() {
    let requests = Arc::new(SnapshotRequests::new(3));
    let mut scheduler =
        SnapshotScheduler::new(Arc::clone(&requests), WeightLimit::BINANCE_SPOT, 50);
    assert!(requests.ask(0));
    assert!(requests.ask(1));
    assert_eq!(scheduler.next(Instant::now()), Next::Fetch(0));
    // The connection is lost and made again: its snapshots cover symbol 1; symbol 0's fetch
    // is still on its way.
    requests.answer_asked();
    assert!(!requests.is_pending(1));
    assert!(requests.is_pending(0));
    assert_eq!(requests.outstanding(), 1);
    assert_eq!(scheduler.next(Instant::now()), Next::Nothing);
    requests.settle(0);
    assert_eq!(requests.outstanding(), 0);
}

/// Gaps on more symbols than the weight budget allows in a window: the first fill the window,
/// the rest wait for it to pass; every symbol is fetched exactly once, none dropped, and no
/// window (at any alignment) holds more than the limit.
#[test]
fn requests_past_the_weight_budget_wait_for_the_window_and_all_are_served() {
    let symbols = 300;
    let limit = WeightLimit::BINANCE_SPOT;
    let weight = depth_snapshot_weight(1000);
    let per_window = (limit.limit / weight) as usize; // 120
    let requests = Arc::new(SnapshotRequests::new(symbols));
    let mut scheduler = SnapshotScheduler::new(Arc::clone(&requests), limit, weight);
    let t0 = Instant::now();
    for i in 0..symbols {
        assert!(requests.ask(i));
        assert!(!requests.ask(i));
    }
    // A fake clock: the connector's loop, one fetch taking 10 ms.
    let mut now = t0;
    let mut fetched: Vec<(usize, Instant)> = Vec::new();
    let mut waits = 0;
    while fetched.len() < symbols {
        match scheduler.next(now) {
            Next::Fetch(i) => {
                fetched.push((i, now));
                now += Duration::from_millis(10);
                requests.settle(i);
            }
            Next::WaitUntil(when) => {
                assert!(when > now, "a wait is for later");
                waits += 1;
                now = when;
            }
            Next::Nothing => panic!("{} of {symbols} fetched, nothing more asked", fetched.len()),
        }
        assert!(now < t0 + 10 * limit.window, "not served in time");
    }
    assert_eq!(scheduler.next(now), Next::Nothing);
    let mut seen = vec![0; symbols];
    for (i, _) in &fetched {
        seen[*i] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1), "each symbol exactly once");
    // The first window's worth at once, the rest delayed by a window each.
    assert!(waits >= 2, "{waits} waits");
    assert!(fetched[per_window - 1].1 < t0 + Duration::from_secs(2));
    assert!(fetched[per_window].1 >= t0 + limit.window);
    assert!(fetched[2 * per_window].1 >= t0 + 2 * limit.window);
    // Sliding: any `per_window + 1` consecutive fetches span at least a window.
    for pair in fetched.windows(per_window + 1) {
        let span = pair[per_window].1 - pair[0].1;
        assert!(
            span >= limit.window,
            "{} fetches in {span:?}",
            per_window + 1
        );
    }
}

#[test]
fn the_weight_window_slides_and_never_holds_more_than_the_limit() {
    let limit = WeightLimit {
        limit: 100,
        window: Duration::from_secs(10),
    };
    let mut window = WeightWindow::new(limit, 5);
    let t0 = Instant::now();
    let s = Duration::from_secs;
    assert_eq!(window.try_take(t0, 50), Ok(()));
    assert_eq!(window.try_take(t0 + s(4), 25), Ok(()));
    assert_eq!(window.try_take(t0 + s(5), 25), Ok(()));
    assert_eq!(window.used(t0 + s(5)), 100);
    // Full: room for 50 when the first request leaves the window.
    assert_eq!(window.try_take(t0 + s(6), 50), Err(t0 + s(10)));
    // Room for 60 only when the second leaves too.
    assert_eq!(window.try_take(t0 + s(6), 60), Err(t0 + s(14)));
    assert_eq!(window.try_take(t0 + s(10), 50), Ok(()));
    assert_eq!(window.used(t0 + s(10)), 100);
    assert_eq!(window.used(t0 + s(15)), 50);
    // A request heavier than the limit goes alone.
    let mut window = WeightWindow::new(limit, 5);
    assert_eq!(window.try_take(t0, 250), Ok(()));
    assert_eq!(window.try_take(t0, 5), Err(t0 + s(10)));
    assert_eq!(window.try_take(t0 + s(10), 250), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// WsFeed against a local venue
// ---------------------------------------------------------------------------------------------

/// A venue on loopback: answers the WebSocket upgrade (then sends nothing) and REST depth
/// snapshots, recording when each symbol's snapshot was asked for.
struct Venue {
    addr: SocketAddr,
    snapshots: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: Arc<AtomicBool>,
}

impl Venue {
    fn start() -> Venue {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let snapshots = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&snapshots), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (seen, stopped) = (Arc::clone(&seen), Arc::clone(&stopped));
                std::thread::spawn(move || serve(stream, &seen, &stopped));
            }
        });
        Venue {
            addr,
            snapshots,
            stop,
        }
    }

    fn count(&self, symbol: &str) -> usize {
        let seen = self.snapshots.lock().unwrap();
        seen.iter().filter(|(s, _)| s == symbol).count()
    }

    fn times(&self) -> Vec<Instant> {
        let seen = self.snapshots.lock().unwrap();
        seen.iter().map(|(_, t)| *t).collect()
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut stream: TcpStream, seen: &Mutex<Vec<(String, Instant)>>, stop: &AtomicBool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) if !stop.load(Ordering::Relaxed) => {}
            Err(_) => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    });
    if let Some(key) = key {
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&key)
        );
        stream.write_all(answer.as_bytes()).unwrap();
        // Hold the connection, silent, until the test ends.
        while !stop.load(Ordering::Relaxed) {
            if let Ok(0) = stream.read(&mut buf) {
                return;
            }
        }
        return;
    }
    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let symbol = path
        .split_once("symbol=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    seen.lock().unwrap().push((symbol, Instant::now()));
    let body = concat!(
        r#"{"lastUpdateId":100,"bids":[["0.03510000","1000.00000000"]],"#,
        r#""asks":[["0.03512000","250.00000000"]]}"#
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn config(venue: &Venue, symbols: usize) -> WsFeedConfig {
    WsFeedConfig {
        addr: venue.addr,
        host: "localhost".into(),
        rest: RestEndpoint {
            addr: venue.addr,
            host: "localhost".into(),
            tls: None,
        },
        symbols: (0..symbols)
            .map(|i| (format!("SYM{i}USDT"), 100 + i as u32))
            .collect(),
        streams: vec![Stream::Depth100ms],
        ping_interval: Duration::from_secs(600),
        pong_timeout: Duration::from_secs(600),
        tls: None,
        reconnect_after: levibot_engine::pipeline::ws_feed::RECONNECT_AFTER_BINANCE,
    }
}

/// Polls `feed` until `want` snapshots were handed out (or panics after a generous time);
/// returns their instrument ids.
fn snapshots(feed: &mut WsFeed, want: usize, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    let mut ids = Vec::new();
    while ids.len() < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} snapshots after {within:?}: {ids:?}",
            ids.len()
        );
        match feed.poll(0) {
            Polled::Snapshot { instrument_id, .. } => ids.push(instrument_id),
            Polled::Stale => panic!("the connection was lost: {:?}", feed.last_error()),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    ids
}

/// A gap reported again and again (every depth message of a symbol out of sync) is one REST
/// request, not one per gap; once its snapshot is in, the next gap asks again.
#[test]
fn the_feed_fetches_one_snapshot_for_a_burst_of_gaps() {
    let venue = Venue::start();
    let mut feed = WsFeed::start(config(&venue, 3)).unwrap();
    snapshots(&mut feed, 3, Duration::from_secs(30));
    assert_eq!(venue.count("SYM1USDT"), 1, "the connect's snapshot");
    for _ in 0..1000 {
        feed.resync(101);
        let _ = feed.poll(0);
    }
    assert_eq!(snapshots(&mut feed, 1, Duration::from_secs(30)), [101]);
    // Gaps reported after the snapshot was handed out ask again.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(venue.count("SYM1USDT"), 2, "one fetch for 1000 gaps");
    for _ in 0..1000 {
        feed.resync(101);
    }
    assert_eq!(snapshots(&mut feed, 1, Duration::from_secs(30)), [101]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(venue.count("SYM1USDT"), 3);
    assert_eq!(venue.count("SYM0USDT"), 1);
    assert_eq!(venue.count("SYM2USDT"), 1);
    let stats = feed.stats();
    assert_eq!(stats.snapshots_fetched.load(Ordering::Relaxed), 5);
    assert_eq!(stats.connects.load(Ordering::Relaxed), 1);
}

/// A small weight limit (two snapshots a second): the connect's six snapshots and then a gap
/// on every symbol are all served, late but none dropped, and no second holds more than two.
#[test]
fn the_feed_waits_for_the_weight_window_and_serves_every_symbol() {
    let venue = Venue::start();
    let weight = depth_snapshot_weight(levibot_engine::pipeline::ws_feed::SNAPSHOT_LIMIT);
    let window = Duration::from_secs(1);
    let limit = WeightLimit {
        limit: 2 * weight,
        window,
    };
    let symbols = 6;
    let started = Instant::now();
    let mut feed = WsFeed::start_with_limit(config(&venue, symbols), limit).unwrap();
    let mut ids = snapshots(&mut feed, symbols, Duration::from_secs(60));
    ids.sort_unstable();
    assert_eq!(ids, (100..106).collect::<Vec<u32>>());
    // Six snapshots at two a window: the last two no sooner than two windows in.
    assert!(started.elapsed() >= 2 * window, "{:?}", started.elapsed());
    for id in 100..106 {
        for _ in 0..10 {
            feed.resync(id);
        }
    }
    let mut ids = snapshots(&mut feed, symbols, Duration::from_secs(60));
    ids.sort_unstable();
    assert_eq!(ids, (100..106).collect::<Vec<u32>>(), "every symbol once");
    std::thread::sleep(Duration::from_millis(200));
    let mut per_symbol: HashMap<String, usize> = HashMap::new();
    for (symbol, _) in venue.snapshots.lock().unwrap().iter() {
        *per_symbol.entry(symbol.clone()).or_default() += 1;
    }
    assert_eq!(per_symbol.len(), symbols);
    assert!(per_symbol.values().all(|&n| n == 2), "{per_symbol:?}");
    // Any three consecutive requests span about a window (the venue sees them a little after
    // the connector spent their weight, and a loaded machine delays some more: half a window
    // is allowed for that; unlimited, three would come within milliseconds).
    let times = venue.times();
    for three in times.windows(3) {
        let span = three[2] - three[0];
        assert!(span >= window / 2, "three snapshots within {span:?}");
    }
    assert!(feed.stats().snapshot_weight_waits.load(Ordering::Relaxed) >= 2);
}
