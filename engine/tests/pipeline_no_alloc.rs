//! Zero heap allocations in steady state through the whole hot path (decode, books and
//! features, the strategy, risk, FIX encoding, the venue seam and every stage's journal
//! appends), over 1M synthetic messages and over the corpus replayed (books reloaded between
//! passes), with the operator's commands arriving on the way (kill switch with cancel-all, mass
//! status, resume). The pipeline runs fused on this thread, so the counting allocator sees
//! every call;
//! the journal's maintenance runs on another thread (its allocations are its own), as in the
//! daemon.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::{
    AckVenue, FeatureCadence, MessageSource, Pipeline, PipelineSpec, ReplaySource, SyntheticSource,
    TradingCommand,
};
use levibot_engine::ring::Rtrb;
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::Recording;
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::{Journal, JournalConfig, RetentionPolicy};
use levibot_testkit::allocations;

const SYNTHETIC_MESSAGES: u64 = 1_000_000;
const CORPUS_PASSES: u64 = 400;
/// Fused duty cycles before counting: every buffer, ring and table touched once.
const WARMUP_ROUNDS: usize = 20_000;
/// Fused duty cycles between two of the operator's commands.
const ROUNDS_PER_COMMAND: usize = 20_000;
/// The commands, in turn: trading is on half the time.
const COMMANDS: [TradingCommand; 4] = [
    TradingCommand::HaltAndCancelAll,
    TradingCommand::Resume,
    TradingCommand::HaltAndMassStatus,
    TradingCommand::Resume,
];

/// Runs `spec` over `source` on this thread, with a maintenance thread beside it; returns the
/// allocations made after the warm-up, and the counters.
fn steady_state_allocations<Src: MessageSource + 'static>(
    spec: PipelineSpec<Maker>,
    source: Src,
    dir: &Path,
) -> (u64, Vec<(String, i64)>) {
    let journal = Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: 64 << 20,
        prefault: true,
        // Sealed segments are removed as they fill: memory stays bounded over 1M messages.
        retention: RetentionPolicy {
            compress: false,
            raw_segments_kept: 0,
            max_age: None,
            max_total_bytes: Some(4 << 26),
            archive: None,
        },
    })
    .unwrap();
    journal.maintain().unwrap();
    let counters_path = dir.join("counters.lvc");
    let counters = CountersWriter::create(&counters_path, 256, journal.epoch()).unwrap();
    let venue = spec.ack_venue().unwrap();
    let (mut pipeline, mut controls) = Pipeline::<_, Maker, AckVenue, Rtrb>::assemble(
        spec, source, venue, &journal, &counters, true,
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let counted = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                journal.maintain().unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        pipeline.run_rounds(WARMUP_ROUNDS);
        let before = allocations();
        for command in COMMANDS.iter().cycle() {
            pipeline.run_rounds(ROUNDS_PER_COMMAND);
            if pipeline.feed.is_done() {
                break;
            }
            assert!(controls.trading.send(*command));
        }
        controls.trading.send(TradingCommand::Resume);
        pipeline.run_to_completion();
        let counted = allocations() - before;
        stop.store(true, Ordering::Relaxed);
        counted
    });
    drop(pipeline);
    let values = CountersReader::open(&counters_path)
        .unwrap()
        .counters()
        .into_iter()
        .map(|c| (c.label, c.value))
        .collect();
    (counted, values)
}

fn counter(values: &[(String, i64)], label: &str) -> i64 {
    values
        .iter()
        .find(|(l, _)| l == label)
        .map_or_else(|| panic!("no counter {label}"), |(_, v)| *v)
}

#[test]
fn a_million_synthetic_messages_allocate_nothing() {
    let seed = levibot_testkit::seed();
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, _) = reference::recording_parts(&recording).unwrap();
    let calibration = levibot_shm::TscCalibration::measure(&quanta::Clock::new());
    let source = SyntheticSource::new(
        &instrument,
        SYNTHETIC_MID_TICKS,
        SYNTHETIC_MESSAGES,
        seed,
        None,
        &calibration,
    )
    .unwrap();
    let spec = reference::maker_spec(instruments, &instrument, source.snapshot()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (allocated, values) = steady_state_allocations(spec, source, dir.path());
    assert_eq!(
        counter(&values, "feed.messages") as u64,
        SYNTHETIC_MESSAGES,
        "seed {seed}"
    );
    let sent = counter(&values, "gateway.orders_sent");
    let rejected = counter(&values, "risk.rejected");
    eprintln!("seed {seed}: {sent} orders sent, {rejected} refused by risk");
    assert!(
        sent > 10_000,
        "seed {seed}: the maker barely traded ({sent})"
    );
    assert_eq!(allocated, 0, "seed {seed}: allocations in steady state");
}

#[test]
fn the_corpus_replayed_allocates_nothing() {
    let recording = Recording::testdata().unwrap();
    let (instruments, instrument, snapshot) = reference::recording_parts(&recording).unwrap();
    let calibration = levibot_shm::TscCalibration::measure(&quanta::Clock::new());
    let source = ReplaySource::new(&recording, CORPUS_PASSES, None, &calibration).unwrap();
    let messages = source.messages_per_pass() as u64 * CORPUS_PASSES;
    let mut spec = reference::maker_spec(instruments, &instrument, snapshot).unwrap();
    // The features journaled at every book change: the most the feature journal does.
    spec.feature_journal = FeatureCadence::BookChange;
    let dir = tempfile::tempdir().unwrap();
    let (allocated, values) = steady_state_allocations(spec, source, dir.path());
    assert_eq!(counter(&values, "feed.messages") as u64, messages);
    assert!(counter(&values, "gateway.orders_sent") > 1_000);
    assert!(counter(&values, "strategy.feature_snapshots") as u64 > messages / 4);
    assert_eq!(allocated, 0, "allocations in steady state");
}
