//! The whole pipeline against venue-sim over loopback: market data over WebSocket with REST
//! snapshots (`WsFeed`), orders over a FIX 4.4 session (`FixVenue`), the maker on NKNUSDT with
//! its risk limits, fused on this thread. The books sync, the maker trades, every order that
//! reaches the venue passed risk, the venue's fills move risk's position exactly as the journaled
//! reports say, and the journal holds all of it. Then the venue drops every market-data
//! connection: the feed reconnects, resyncs from fresh snapshots, and the book is never crossed;
//! a lost depth message is a gap the feed repairs with a fresh snapshot of its symbol; a server
//! that stops answering pings is given up and reconnected; garbage on either wire is counted
//! and both connections stay up; a dropped
//! FIX connection is reconnected with the same sequence numbers, and the orders that worked
//! meanwhile are reconciled (every fill reaches risk and the journal); an order lost on the wire
//! is gap-filled after the reconnect and reported REJECTED, and at the end risk's open orders
//! and position are exactly the venue's own view of ours (`working_order_ids_of`,
//! `position_of`): the oracle is the venue, not the reports risk consumed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use levibot_engine::book::BookState;
use levibot_engine::pipeline::reference::{SYNTHETIC_MID_TICKS, maker_spec};
use levibot_engine::pipeline::{
    FixVenue, OwnedSnapshot, Pipeline, WsFeed, WsFeedConfig, recover_seq_nums,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::{FixSession, SessionConfig, SessionSeqNums};
use levibot_gateway::instrument::InstrumentTable;
use levibot_gateway::ws::{RestEndpoint, Stream};
use levibot_shm::codes::writer_id;
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::records::{ExecutionReport, Record, SentOrder, exec_type, record_type, side};
use levibot_shm::{Journal, JournalConfig, RetentionPolicy, StartAt, Tailer};
use levibot_sim::fix_acceptor::FixFaults;
use levibot_sim::fix_server::{FIRST_OWNER, FixServer};
use levibot_sim::flow::SYNTHETIC_OWNER;
use levibot_sim::md_server::{
    FeedConfig, FeedThread, Hub, MdConfig, MdServer, SnapshotSource, VenueCore,
};

/// The pipeline of this test: the live feed, the maker, a FIX venue, rtrb rings.
type Live = Pipeline<WsFeed, Maker, FixVenue, Rtrb>;

/// Generous: a loaded 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Fills wanted before the test moves on.
const FILLS_WANTED: usize = 3;

fn counters(path: &Path) -> Vec<(String, i64)> {
    CountersReader::open(path)
        .unwrap()
        .counters()
        .into_iter()
        .map(|c| (c.label, c.value))
        .collect()
}

fn counter(values: &[(String, i64)], label: &str) -> i64 {
    values
        .iter()
        .find(|(l, _)| l == label)
        .map_or_else(|| panic!("no counter {label}"), |(_, v)| *v)
}

#[test]
fn the_pipeline_trades_on_venue_sim_over_loopback() {
    let seed = levibot_testkit::seed();
    let all = Recording::testdata().unwrap().instruments().unwrap();
    let table = InstrumentTable::select(&all, &["NKNUSDT"]).unwrap();
    let nkn = table.get(0).unwrap().clone();

    // The venue: books moved by synthetic traders, market data and FIX order entry.
    let md_config = MdConfig::default();
    let hub = Arc::new(Hub::new(md_config.client_queue_len));
    let core = Arc::new(
        VenueCore::new(
            table.clone(),
            vec![SYNTHETIC_MID_TICKS],
            seed,
            Arc::clone(&hub),
        )
        .unwrap(),
    );
    core.run_flow(1_000);
    core.flush_depth();
    let md = MdServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        hub,
        Arc::clone(&core) as Arc<dyn SnapshotSource>,
        md_config,
    )
    .unwrap();
    let fix = FixServer::bind("127.0.0.1:0".parse().unwrap(), Arc::clone(&core), "VENUE").unwrap();
    let flow = FeedThread::spawn(
        Arc::clone(&core),
        FeedConfig {
            rate: 2_000,
            depth_interval: Duration::from_millis(20),
        },
    )
    .unwrap();

    // Our side.
    let md_addr = md.local_addr();
    let feed = WsFeed::start(WsFeedConfig {
        addr: md_addr,
        host: md_addr.to_string(),
        rest: RestEndpoint {
            addr: md_addr,
            host: md_addr.to_string(),
            tls: None,
        },
        symbols: vec![("NKNUSDT".into(), nkn.id)],
        streams: vec![Stream::Depth100ms, Stream::BookTicker, Stream::AggTrade],
        ping_interval: Duration::from_millis(20),
        pong_timeout: Duration::from_millis(300),
        tls: None,
        reconnect_after: levibot_engine::pipeline::ws_feed::RECONNECT_AFTER_BINANCE,
    })
    .unwrap();
    let feed_stats = feed.stats();
    let session = FixSession::new(
        SessionConfig {
            sender_comp_id: "LEVIBOT".into(),
            target_comp_id: "VENUE".into(),
            heart_bt_int_s: 30,
            reset_seq_num: false,
            binance_logon: None,
        },
        table.clone(),
        SessionSeqNums::default(),
    )
    .unwrap();
    let spec = maker_spec(table.clone(), &nkn, OwnedSnapshot::none(nkn.id)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&JournalConfig {
        dir: dir.path().to_owned(),
        segment_size: 64 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap();
    let venue = FixVenue::connect(fix.local_addr(), session)
        .unwrap()
        .with_journal(journal.appender(writer_id::VENUE_SESSION).unwrap());
    let counters_path = dir.path().join("counters.lvc");
    let counters_file = CountersWriter::create(&counters_path, 256, journal.epoch()).unwrap();
    let (mut pipeline, _controls) = Pipeline::<_, Maker, FixVenue, Rtrb>::assemble(
        spec,
        feed,
        venue,
        &journal,
        &counters_file,
        true,
    )
    .unwrap();

    let run_until = |pipeline: &mut Live, what: &str, done: &dyn Fn(&Live) -> bool| {
        let deadline = Instant::now() + TIMEOUT;
        while !done(pipeline) {
            assert!(
                Instant::now() < deadline,
                "seed {seed}: {what}: timed out; book {:?}, counters {:?}",
                pipeline
                    .strategy
                    .stage()
                    .book(0)
                    .map(|b| (b.state(), b.last_update_id())),
                counters(&counters_path)
                    .into_iter()
                    .filter(|(l, _)| l.starts_with("feed") || l.starts_with("strategy"))
                    .collect::<Vec<_>>()
            );
            if pipeline.run_rounds(64) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            if let Some(book) = pipeline.strategy.stage().book(0)
                && let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask())
            {
                assert!(bid.px < ask.px, "seed {seed}: {what}: crossed book");
            }
        }
    };
    let fills = |p: &Live| p.gateway.stage().venue().stats().fills;
    run_until(&mut pipeline, "logon, sync and trade", &|p| {
        p.gateway.stage().venue().is_up()
            && p.strategy
                .stage()
                .book(0)
                .is_some_and(|b| b.state() == BookState::Synced)
            && p.risk.stage().engine().position(0) != 0
            && fills(p) >= FILLS_WANTED as u64
    });
    let sent_before = pipeline
        .gateway
        .stage()
        .venue()
        .session()
        .seq_nums()
        .next_sender;
    assert!(sent_before > 5, "seed {seed}: the maker barely traded");

    // The venue drops every market-data connection: reconnect, fresh snapshots, synced again.
    let connects = feed_stats.connects.load(Ordering::Relaxed);
    md.faults().drop_all_connections();
    run_until(&mut pipeline, "reconnect and resync", &|p| {
        p.feed.source().is_connected()
            && feed_stats.connects.load(Ordering::Relaxed) > connects
            && p.strategy
                .stage()
                .book(0)
                .is_some_and(|b| b.state() == BookState::Synced)
    });
    assert!(feed_stats.disconnects.load(Ordering::Relaxed) >= 1);
    // A depth message lost on the way: the feed sees U != u + 1, fetches a fresh snapshot of
    // that symbol (no reconnect), and the book is synced again.
    let gaps = counter(&counters(&counters_path), "feed.stream_gaps");
    md.faults().skip_depth_messages(1);
    run_until(&mut pipeline, "a gap, then a fresh snapshot", &|p| {
        counter(&counters(&counters_path), "feed.stream_gaps") > gaps
            && p.strategy
                .stage()
                .book(0)
                .is_some_and(|b| b.state() == BookState::Synced)
    });
    // The FIX connection drops with orders working: the venue reconnects, logs on with the same
    // sequence numbers, and hears of what happened to its orders meanwhile (the final check
    // below: risk's position equals every journaled fill).
    let logons = pipeline.gateway.stage().venue().stats().logons;
    let sent_before_drop = pipeline
        .gateway
        .stage()
        .venue()
        .session()
        .seq_nums()
        .next_sender;
    fix.drop_all_connections();
    run_until(&mut pipeline, "FIX reconnect and logon", &|p| {
        let venue = p.gateway.stage().venue();
        venue.stats().logons > logons && venue.is_up()
    });
    assert!(pipeline.gateway.stage().venue().stats().reconnects >= 1);
    assert!(
        pipeline
            .gateway
            .stage()
            .venue()
            .session()
            .seq_nums()
            .next_sender
            >= sent_before_drop,
        "sequence numbers carry on"
    );
    // The server stops answering our pings: the feed gives the connection up and reconnects.
    let timeouts = feed_stats.pong_timeouts.load(Ordering::Relaxed);
    md.faults().set_ignore_pings(true);
    run_until(&mut pipeline, "a missed pong", &|_| {
        feed_stats.pong_timeouts.load(Ordering::Relaxed) > timeouts
    });
    md.faults().set_ignore_pings(false);
    let connects = feed_stats.connects.load(Ordering::Relaxed);
    run_until(&mut pipeline, "reconnect after the missed pong", &|p| {
        feed_stats.connects.load(Ordering::Relaxed) > connects
            && p.strategy
                .stage()
                .book(0)
                .is_some_and(|b| b.state() == BookState::Synced)
    });
    // An order lost on the wire, and the connection with it: after the reconnect the venue asks
    // for the missing numbers, the session gap-fills them (orders are never re-sent) and
    // reports the lost order REJECTED, so that risk and the strategy let it go.
    let lost = pipeline.gateway.stage().venue().stats().lost_in_flight;
    let logons = pipeline.gateway.stage().venue().stats().logons;
    fix.set_faults(FixFaults {
        lose_next_order: true,
        ..FixFaults::default()
    });
    run_until(&mut pipeline, "an order lost in flight, reported", &|p| {
        let venue = p.gateway.stage().venue();
        venue.stats().lost_in_flight > lost && venue.stats().logons > logons && venue.is_up()
    });
    // Garbage on both wires: a counted decode error on a market-data connection that stays
    // up, and skipped bytes on a FIX session that stays logged on.
    let garbled = pipeline.gateway.stage().venue().session().garbled_count();
    md.faults().send_garbage_text();
    fix.set_faults(FixFaults {
        garbage: true,
        ..FixFaults::default()
    });
    run_until(&mut pipeline, "garbage counted, connections up", &|p| {
        counter(&counters(&counters_path), "feed.decode_errors") >= 1
            && p.gateway.stage().venue().session().garbled_count() > garbled
    });
    assert!(pipeline.feed.source().is_connected());
    assert!(pipeline.gateway.stage().venue().is_up());
    // And trading goes on.
    let fills_before = fills(&pipeline);
    run_until(&mut pipeline, "trade after the resync", &|p| {
        fills(p) >= fills_before + FILLS_WANTED as u64
    });

    // Quiet the venue, then let every report reach the journal, risk and the strategy.
    drop(flow);
    // Quiet: nothing to do for half a second (the venue's threads answer within milliseconds,
    // more on a loaded machine).
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + TIMEOUT;
    while quiet_since.elapsed() < Duration::from_millis(500) {
        assert!(Instant::now() < deadline, "seed {seed}: never quiet");
        if pipeline.run_rounds(1) > 0 {
            quiet_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let position = pipeline.risk.stage().engine().position(0);
    let fills_seen = fills(&pipeline);
    // Reconciled: risk's open orders are exactly ours working at the venue.
    let ours_at_venue =
        core.with_engine(|e| e.working_orders() - e.working_orders_of(SYNTHETIC_OWNER));
    let risk = pipeline.risk.stage().engine();
    let open: Vec<_> = risk
        .open_order_ids()
        .filter_map(|id| risk.open_order(id))
        .collect();
    assert_eq!(
        risk.open_orders(),
        ours_at_venue,
        "seed {seed}: risk's open orders vs the venue's: {open:?}"
    );
    // The oracle is the venue's own book of our orders and our fills, not the reports risk
    // consumed: the same ids working, the same position.
    let mut risk_ids: Vec<u64> = risk.open_order_ids().collect();
    risk_ids.sort_unstable();
    let venue_ids = core.with_engine(|e| e.working_order_ids_of(FIRST_OWNER));
    assert_eq!(
        risk_ids, venue_ids,
        "seed {seed}: risk's open order ids vs the venue's"
    );
    assert_eq!(
        position,
        core.with_engine(|e| e.position_of(FIRST_OWNER, 0)),
        "seed {seed}: risk's position vs the venue's"
    );
    let seq_nums = pipeline.gateway.stage().venue().session().seq_nums();
    drop(pipeline);
    drop(fix);
    drop(md);
    drop(journal);

    // The journal holds all of it.
    let mut raw = 0;
    let mut requests = 0;
    let mut sent: Vec<SentOrder> = Vec::new();
    let mut reports: Vec<ExecutionReport> = Vec::new();
    let mut tailer = Tailer::open(dir.path(), StartAt::Beginning).unwrap();
    while tailer
        .poll(4096, |f| match f.record_type {
            record_type::RAW_MESSAGE => raw += 1,
            record_type::ORDER_REQUEST => requests += 1,
            record_type::ORDER_SENT => sent.push(SentOrder::from_bytes(f.payload).unwrap()),
            record_type::EXECUTION_REPORT => {
                reports.push(ExecutionReport::from_bytes(f.payload).unwrap())
            }
            _ => {}
        })
        .unwrap()
        .frames
        > 0
    {}
    let values = counters(&counters_path);
    assert!(raw > 10, "seed {seed}: {raw} raw messages");
    assert_eq!(
        raw as i64,
        counter(&values, "feed.messages") + 4,
        "every message and the four snapshots journaled raw"
    );
    assert!(!sent.is_empty());
    // Every order that reached the venue passed risk; the others were refused, by risk or
    // because the session was not up yet.
    assert_eq!(
        sent.len() as i64,
        counter(&values, "risk.passed") - counter(&values, "gateway.encode_errors")
    );
    assert_eq!(
        requests,
        counter(&values, "risk.passed") + counter(&values, "risk.rejected")
    );
    // Fills move the position exactly as the journaled reports say.
    let filled: i64 = reports
        .iter()
        .filter(|r| r.exec_type == exec_type::TRADE)
        .map(|r| {
            if r.side == side::BUY {
                r.last_qty
            } else {
                -r.last_qty
            }
        })
        .sum();
    let journaled_fills = reports
        .iter()
        .filter(|r| r.exec_type == exec_type::TRADE)
        .count();
    assert_eq!(
        journaled_fills as u64, fills_seen,
        "seed {seed}: every fill journaled"
    );
    assert!(journaled_fills >= 2 * FILLS_WANTED);
    assert_eq!(
        position, filled,
        "seed {seed}: risk's position vs the journaled fills"
    );
    // A restart would log on where the session stopped.
    assert_eq!(recover_seq_nums(dir.path()).unwrap(), Some(seq_nums));
    assert_eq!(
        counter(&values, "feed.decode_errors"),
        1,
        "the garbage, and nothing else"
    );
}
