//! The venue sees market data at the venue's time, the engine at the receive time: with
//! `FeedLatency::Recorded`, a message's own event time decides when the simulated venue
//! applies it, whatever order the messages were received in, and a gap longer than the most
//! believed is cut to it and counted.

use levibot_backtest::input::capture::CaptureSource;
use levibot_backtest::results::ResultEvent;
use levibot_backtest::run::{FeedLatency, RunConfig, run};
use levibot_backtest::session::read_config;
use levibot_gateway::capture::testdata_dir;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn agg_trade(id: u64, event_ms: u64) -> String {
    format!(
        r#"{{"stream":"nknusdt@aggTrade","data":{{"e":"aggTrade","E":{event_ms},"s":"NKNUSDT","a":{id},"p":"0.35000000","q":"10.00000000","f":{id},"l":{id},"T":{event_ms},"m":true,"M":true}}}}"#
    )
}

#[test]
fn the_venue_applies_messages_in_the_order_they_were_made() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    // Received in this order; made in another (ms since the epoch, 1,700,000,000 s + ...):
    // the second was made first; the fourth 5 s before it was received (cut to 1 s).
    let base_ms = 1_700_000_000_000u64;
    let lines = [
        (base_ms + 1_500, agg_trade(1, base_ms + 1_000)),
        (base_ms + 1_600, agg_trade(2, base_ms + 900)),
        (base_ms + 1_700, agg_trade(3, base_ms + 1_690)),
        (base_ms + 9_000, agg_trade(4, base_ms + 4_000)),
    ];
    let mut text = String::from("wss://x/stream?streams=nknusdt@aggTrade <-> 1700000000.000\n");
    for (recv_ms, message) in &lines {
        text.push_str(&format!(
            "{}.{:03}: {message}\n",
            recv_ms / 1000,
            recv_ms % 1000
        ));
    }
    std::fs::write(capture.join("BINANCE.ws.1.0"), text).unwrap();

    let config = read_config(&testdata_dir().join("../backtest/maker-nknusdt.toml")).unwrap();
    let run_config = RunConfig {
        feed_latency: FeedLatency::Recorded { gap_max_ns: S },
        ..RunConfig::default()
    };
    let mut venue_times = Vec::new();
    let mut input = CaptureSource::open(&capture).unwrap();
    let stats = run(
        &config,
        &mut input,
        &dir.path().join("out"),
        &run_config,
        &mut |e| {
            if let ResultEvent::Message { t_ns } = e {
                venue_times.push(*t_ns);
            }
        },
    )
    .unwrap();
    let at = |ms: u64| (base_ms + ms) * MS;
    assert_eq!(
        venue_times,
        vec![at(900), at(1_000), at(1_690), at(9_000) - S]
    );
    assert_eq!(stats.feed_gaps_cut, 1);
    assert_eq!(stats.messages, 4);

    // A constant feed latency ignores the messages' own times.
    let run_config = RunConfig {
        feed_latency: FeedLatency::Constant(2 * MS),
        ..RunConfig::default()
    };
    let mut venue_times = Vec::new();
    let mut input = CaptureSource::open(&capture).unwrap();
    run(
        &config,
        &mut input,
        &dir.path().join("out2"),
        &run_config,
        &mut |e| {
            if let ResultEvent::Message { t_ns } = e {
                venue_times.push(*t_ns);
            }
        },
    )
    .unwrap();
    let received: Vec<u64> = lines.iter().map(|(r, _)| r * MS - 2 * MS).collect();
    assert_eq!(venue_times, received);
}
