//! Stopping the live feed ends its WebSocket connection with the close handshake (RFC 6455
//! 7.1.2): venue-sim's market-data server receives a Close with status code 1000 (normal
//! closure) and echoes it, rather than seeing the TCP connection drop.

use std::time::{Duration, Instant};

use levibot_engine::pipeline::ws_feed::{CLOSE_WAIT_MAX, RECONNECT_AFTER_BINANCE};
use levibot_engine::pipeline::{MessageSource, Polled, WsFeed, WsFeedConfig};
use levibot_gateway::capture::Recording;
use levibot_gateway::instrument::InstrumentTable;
use levibot_gateway::ws::{RestEndpoint, Stream};
use levibot_sim::md_server::{FeedConfig, MdConfig};
use levibot_sim::sim::SimVenueConfig;
use levibot_sim::synth;

/// Generous: a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn stopping_the_feed_sends_close_1000() {
    let seed = levibot_testkit::seed();
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
    let venue = levibot_sim::demo::start_venue(SimVenueConfig {
        instruments: table,
        fair_ticks: vec![synth::mid_ticks("NKNUSDT").unwrap()],
        seed,
        md_addr: "127.0.0.1:0".parse().unwrap(),
        rest_addr: None,
        md: MdConfig::default(),
        fix_addr: None,
        fix_comp_id: "VENUE".into(),
        feed: FeedConfig {
            rate: 200,
            depth_interval: Duration::from_millis(20),
        },
    })
    .unwrap();
    let md = &venue.md;
    let addr = md.local_addr();
    let mut feed = WsFeed::start(WsFeedConfig {
        addr,
        host: addr.to_string(),
        rest: RestEndpoint {
            addr,
            host: addr.to_string(),
            tls: None,
        },
        symbols: vec![("NKNUSDT".into(), 0)],
        streams: vec![Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade],
        ping_interval: Duration::from_secs(1),
        pong_timeout: Duration::from_secs(30),
        tls: None,
        reconnect_after: RECONNECT_AFTER_BINANCE,
    })
    .unwrap();

    // Connected, synced, and the stream flowing.
    let deadline = Instant::now() + TIMEOUT;
    let (mut snapshots, mut messages) = (0, 0);
    while snapshots == 0 || messages < 20 {
        assert!(Instant::now() < deadline, "seed {seed}: no stream");
        match feed.poll(0) {
            Polled::Snapshot { .. } => snapshots += 1,
            Polled::Message { .. } => messages += 1,
            Polled::Idle => std::thread::sleep(Duration::from_millis(1)),
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert_eq!(md.stats().client_closes, 0, "seed {seed}");

    let stopping = Instant::now();
    drop(feed);
    eprintln!(
        "seed {seed}: stopped in {:?} (the feed waits at most {CLOSE_WAIT_MAX:?} for the echo)",
        stopping.elapsed()
    );
    let deadline = Instant::now() + TIMEOUT;
    let stats = loop {
        let stats = md.stats();
        if stats.client_closes >= 1 && stats.open == 0 {
            break stats;
        }
        assert!(Instant::now() < deadline, "seed {seed}: {stats:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        (stats.client_closes, stats.client_closes_normal),
        (1, 1),
        "seed {seed}: one Close, with code 1000: {stats:?}"
    );
}
