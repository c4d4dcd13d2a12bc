//! The assembled hot path: the reference maker over the corpus and the synthetic stream, in the
//! fused and spread layouts on real threads, with rtrb rings and the std channel baseline. What
//! goes in comes out: every strategy order is either sent (journaled as a `SentOrder`, stamps in
//! stage order, sequence numbers without gaps) or refused by risk (journaled as a `RiskReject`),
//! and the stop drains every ring. No agent busy-spins (the test machine has 2 cores and other
//! tests running).

use std::path::Path;
use std::time::{Duration, Instant};

use levibot_engine::idle::IdleStrategy;
use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::{
    AckVenue, Layout, MessageSource, Pipeline, PipelineSpec, ReplaySource, SyntheticSource,
};
use levibot_engine::ring::{Rings, Rtrb, StdChannel};
use levibot_engine::runner::RunnerConfig;
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::Recording;
use levibot_gateway::fix::parse_message;
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::records::{
    ExecutionReport, OrderRequest, Record, RiskReject, SentOrder, record_type,
};
use levibot_shm::{Journal, JournalConfig, RetentionPolicy, StartAt, Tailer};

/// Generous: a run takes well under a second; a hang fails rather than blocks.
const DEADLINE: Duration = Duration::from_secs(120);
const CORPUS_PASSES: u64 = 20;
/// Messages a second of the threaded runs.
const PACED_RATE: u64 = 20_000;

fn journal(dir: &Path) -> Journal {
    Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: 64 << 20,
        prefault: false,
        retention: RetentionPolicy::keep_all(),
    })
    .unwrap()
}

/// What a run left in its journal and counters.
#[derive(Debug, Default)]
struct Outcome {
    requests: Vec<OrderRequest>,
    sent: Vec<SentOrder>,
    rejects: Vec<RiskReject>,
    reports: Vec<ExecutionReport>,
    raw_messages: u64,
    counters: Vec<(String, i64)>,
}

impl Outcome {
    fn counter(&self, label: &str) -> i64 {
        self.counters
            .iter()
            .find(|(l, _)| l == label)
            .map_or_else(|| panic!("no counter {label}"), |(_, v)| *v)
    }
}

fn read(dir: &Path, counters: &Path) -> Outcome {
    let mut out = Outcome::default();
    let mut tailer = Tailer::open(dir, StartAt::Beginning).unwrap();
    while tailer
        .poll(4096, |f| match f.record_type {
            record_type::ORDER_REQUEST => out
                .requests
                .push(OrderRequest::from_bytes(f.payload).unwrap()),
            record_type::ORDER_SENT => out.sent.push(SentOrder::from_bytes(f.payload).unwrap()),
            record_type::RISK_REJECT => {
                out.rejects.push(RiskReject::from_bytes(f.payload).unwrap())
            }
            record_type::EXECUTION_REPORT => out
                .reports
                .push(ExecutionReport::from_bytes(f.payload).unwrap()),
            record_type::RAW_MESSAGE => out.raw_messages += 1,
            _ => {}
        })
        .unwrap()
        .frames
        > 0
    {}
    out.counters = CountersReader::open(counters)
        .unwrap()
        .counters()
        .into_iter()
        .map(|c| (c.label, c.value))
        .collect();
    out
}

/// Runs `spec` over `source` on runner threads in `layout` until the source is done.
fn run_threads<R: Rings, Src: MessageSource + 'static>(
    spec: PipelineSpec<Maker>,
    source: Src,
    layout: &Layout,
    dir: &Path,
) -> Outcome {
    let journal = journal(dir);
    let counters_path = dir.join("counters.lvc");
    let counters = CountersWriter::create(&counters_path, 256, journal.epoch()).unwrap();
    let venue = spec.ack_venue().unwrap();
    let (pipeline, controls) = Pipeline::<_, Maker, AckVenue, R>::assemble(
        spec,
        source,
        venue,
        &journal,
        &counters,
        layout.is_fused(),
    )
    .unwrap();
    let running = pipeline.start(layout, &counters).unwrap();
    let start = Instant::now();
    while !controls.source_is_done() {
        assert!(start.elapsed() < DEADLINE, "the source never finished");
        std::thread::sleep(Duration::from_millis(2));
    }
    running.stop().unwrap();
    drop(journal);
    read(dir, &counters_path)
}

/// Every order the strategy made was sent or refused, exactly once; stamps are in stage order;
/// sequence numbers have no gap; every sent order was acknowledged.
fn check_accounting(out: &Outcome, messages: u64) {
    assert_eq!(out.counter("feed.messages") as u64, messages);
    assert_eq!(out.raw_messages, messages, "every message journaled raw");
    assert_eq!(out.counter("feed.decode_errors"), 0);
    assert!(!out.sent.is_empty(), "the maker sent nothing");
    assert_eq!(
        out.requests.len(),
        out.sent.len() + out.rejects.len(),
        "every request sent or refused"
    );
    assert_eq!(out.counter("risk.passed") as usize, out.sent.len());
    assert_eq!(out.counter("risk.rejected") as usize, out.rejects.len());
    assert_eq!(out.counter("gateway.orders_sent") as usize, out.sent.len());
    let mut ids: Vec<u64> = out
        .sent
        .iter()
        .map(|s| s.request.client_order_id)
        .chain(out.rejects.iter().map(|r| r.request.client_order_id))
        .collect();
    ids.sort_unstable();
    let requested: Vec<u64> = {
        let mut r: Vec<u64> = out.requests.iter().map(|r| r.client_order_id).collect();
        r.sort_unstable();
        r
    };
    assert_eq!(ids, requested, "the same orders, each once");
    for (i, s) in out.sent.iter().enumerate() {
        assert_eq!(
            s.msg_seq_num,
            i as u64 + 1,
            "sequence numbers in order, no gap"
        );
        let r = &s.request;
        let stamps = [
            s.recv_tsc,
            s.decoded_tsc,
            s.strategy_start_tsc,
            r.created_tsc,
            s.risk_start_tsc,
            r.risk_tsc,
            s.encode_start_tsc,
            s.encoded_tsc,
        ];
        assert!(
            s.due_tsc <= s.encoded_tsc && stamps.is_sorted() && s.recv_tsc > 0,
            "stamps out of stage order: {s:?}"
        );
        assert!(s.encoded_len > 0);
    }
    // The ack venue answers each order once; the gateway journals every report.
    assert_eq!(out.reports.len(), out.sent.len());
    assert_eq!(out.counter("gateway.reports") as usize, out.reports.len());
}

fn corpus_spec(recording: &Recording) -> PipelineSpec<Maker> {
    let (instruments, instrument, snapshot) = reference::recording_parts(recording).unwrap();
    reference::maker_spec(instruments, &instrument, snapshot).unwrap()
}

fn yielding(core: usize) -> RunnerConfig {
    let cores = levibot_engine::runner::available_cores();
    RunnerConfig {
        core_id: Some(cores[core % cores.len()]),
        idle: IdleStrategy::Yield,
    }
}

fn layouts() -> [(&'static str, Layout); 2] {
    [
        (
            "fused",
            Layout::Fused {
                pipeline: yielding(0),
            },
        ),
        (
            "spread",
            Layout::Spread {
                feed: yielding(0),
                strategy: yielding(1),
                risk: yielding(2),
                gateway: yielding(3),
            },
        ),
    ]
}

fn corpus_run<R: Rings>() {
    let recording = Recording::testdata().unwrap();
    for (name, layout) in layouts() {
        let dir = tempfile::tempdir().unwrap();
        let calibration = levibot_shm::TscCalibration::measure(&quanta::Clock::new());
        // Paced, so that acknowledgements come back between messages as they would live.
        let source =
            ReplaySource::new(&recording, CORPUS_PASSES, Some(PACED_RATE), &calibration).unwrap();
        let messages = source.messages_per_pass() as u64 * CORPUS_PASSES;
        let out = run_threads::<R, _>(corpus_spec(&recording), source, &layout, dir.path());
        let refused: Vec<&(String, i64)> = out
            .counters
            .iter()
            .filter(|(l, v)| l.starts_with("risk.reject.") && *v > 0)
            .collect();
        eprintln!(
            "{name}/{}: {} sent, {} refused: {refused:?}",
            R::NAME,
            out.sent.len(),
            out.rejects.len()
        );
        check_accounting(&out, messages);
        // Between passes the books reload their snapshots: no gap is ever seen.
        assert_eq!(out.counter("strategy.book_resyncs"), 0, "{name}");
    }
}

#[test]
fn corpus_through_fused_and_spread_with_rtrb() {
    corpus_run::<Rtrb>();
}

#[test]
fn corpus_through_fused_and_spread_with_std_channels() {
    corpus_run::<StdChannel>();
}

#[test]
fn synthetic_stream_keeps_the_book_synced_and_every_order_is_valid_fix() {
    let seed = levibot_testkit::seed();
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, _) = reference::recording_parts(&recording).unwrap();
    let calibration = levibot_shm::TscCalibration::measure(&quanta::Clock::new());
    const MESSAGES: u64 = 50_000;
    let source = SyntheticSource::new(
        &instrument,
        SYNTHETIC_MID_TICKS,
        MESSAGES,
        seed,
        None,
        &calibration,
    )
    .unwrap();
    let spec = reference::maker_spec(instruments, &instrument, source.snapshot()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = journal(dir.path());
    let counters_path = dir.path().join("counters.lvc");
    let counters = CountersWriter::create(&counters_path, 256, journal.epoch()).unwrap();
    let venue = spec.ack_venue().unwrap();
    let (mut pipeline, _controls) = Pipeline::<_, Maker, AckVenue, Rtrb>::assemble(
        spec, source, venue, &journal, &counters, true,
    )
    .unwrap();
    let mut last_seen = 0;
    let mut checked = 0;
    while pipeline.run_rounds(1) > 0 || !pipeline.feed.is_done() {
        let venue = pipeline.gateway.stage().venue();
        if venue.sent > last_seen {
            last_seen = venue.sent;
            let message = parse_message(venue.last_message())
                .unwrap_or_else(|e| panic!("seed {seed}: bad FIX message: {e}"));
            assert!(matches!(message.msg_type(), b"D" | b"F" | b"G"));
            checked += 1;
        }
    }
    let book = pipeline
        .strategy
        .stage()
        .book(instrument.id)
        .expect("the traded book");
    assert_eq!(
        book.state(),
        levibot_engine::book::BookState::Synced,
        "seed {seed}"
    );
    drop(pipeline);
    drop(journal);
    let out = read(dir.path(), &counters_path);
    check_accounting(&out, MESSAGES);
    assert_eq!(out.counter("strategy.book_resyncs"), 0, "seed {seed}");
    assert!(checked > 100, "seed {seed}: only {checked} orders");
}
