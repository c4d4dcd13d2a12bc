//! `levibot-bench tick-to-trade`: the whole hot path, venue bytes to order bytes, measured stage
//! by stage from the journal the pipeline writes.
//!
//! Each run assembles the reference pipeline (the maker on NKNUSDT, with its risk limits; see
//! `levibot_engine::pipeline::reference`), starts it in the chosen layout, feeds it, stops it,
//! then reads every `SentOrder` back from the journal: its stamps give decode, strategy, risk,
//! encode and tick-to-trade (bytes handed to the decoder -> order bytes ready). Sources are paced
//! at `--rate`; `tick_to_trade_from_due` measures from when each message was due, so a stall
//! cannot hide behind the messages it delays (coordinated-omission correction).
//!
//! Runs: the corpus recording (several passes, the books reloaded between passes) and the
//! synthetic stream (`--duration` seconds), each once with `rtrb` rings and once with
//! `std::sync::mpsc::sync_channel` (the baseline), then a ring-hop measurement of both between
//! two cores. The venue is in-process and acknowledges every order at once (no network).
//!
//! `--features-journal book` (or an interval such as `100ms`) adds a run of each source with
//! `rtrb` rings and the features journaled at that cadence (`rtrb+features`), beside the same
//! run without: what the feature journal costs the hot path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use levibot_engine::idle::IdleStrategy;
use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::{
    AckVenue, FeatureCadence, Layout, MessageSource, Pipeline, PipelineSpec, ReplaySource,
    SyntheticSource,
};
use levibot_engine::ring::{RingReceiver, RingSender, Rings, Rtrb, StdChannel};
use levibot_engine::runner::{RunnerConfig, RunnerError, available_cores};
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::capture::{FoundRecording, Recording, real_or_testdata};
use levibot_shm::codes::label;
use levibot_shm::counters::{CountersReader, CountersWriter};
use levibot_shm::records::{Record, SentOrder};
use levibot_shm::{
    Journal, JournalConfig, Position, RetentionPolicy, StartAt, Tailer, TscCalibration,
};
use quanta::Clock;
use serde_json::{Value, json};

use crate::report::{MachineInfo, latency_histogram, round3};
use crate::scratch::{ScratchDir, with_maintainer};

/// Orders at the start of a run left out of the figures (caches and branch predictors warm).
const WARMUP_FRACTION: f64 = 0.05;
/// Longest a run may take past its source's schedule before it is called stuck.
const RUN_GRACE: Duration = Duration::from_secs(60);
/// Journal segments: big enough that a default run rolls over a few times.
const SEGMENT_SIZE: usize = 256 << 20;
/// Rounds of the ring-hop measurement (see `run`).
const HOP_ROUNDS: u64 = 5;
/// Between two ring-hop messages: the consumer is idle-spinning when each arrives, as a
/// pipeline stage is between messages.
const HOP_INTERVAL_NS: u64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// decode -> strategy -> risk -> encode on one core.
    Fused,
    /// Each stage on its own core.
    Spread,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdleArg {
    BusySpin,
    Yield,
    Backoff,
}

impl From<IdleArg> for IdleStrategy {
    fn from(idle: IdleArg) -> IdleStrategy {
        match idle {
            IdleArg::BusySpin => IdleStrategy::BusySpin,
            IdleArg::Yield => IdleStrategy::Yield,
            IdleArg::Backoff => IdleStrategy::Backoff,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct TickToTradeArgs {
    /// Thread layout of the agents.
    #[arg(long, value_enum, default_value_t = LayoutArg::Fused)]
    pub(crate) layout: LayoutArg,
    /// How idle agents wait. busy_spin needs a core per agent: a spread layout (4 agents) on a
    /// machine with fewer cores is refused unless the agents yield or back off.
    #[arg(long, value_enum, default_value_t = IdleArg::BusySpin)]
    pub(crate) idle: IdleArg,
    /// Messages a second from the sources (paced; latency is measured from each message's due
    /// time too).
    #[arg(
        long,
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(1..=10_000_000)
    )]
    pub(crate) rate: u64,
    /// Seconds of synthetic stream.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// Passes over the corpus recording (265 messages each).
    #[arg(
        long,
        default_value_t = 200,
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    pub(crate) corpus_passes: u64,
    /// Messages of the ring-hop measurement (two threads spin on two cores meanwhile).
    #[arg(
        long,
        default_value_t = 200_000,
        value_parser = clap::value_parser!(u64).range(100..=100_000_000)
    )]
    pub(crate) hop_messages: u64,
    /// Seed of the synthetic stream.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Where to put the scratch journals (default /dev/shm).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also run each source with the features journaled at this cadence ("book", or an
    /// interval such as "100ms"), beside the run without.
    #[arg(long, default_value = "off", value_parser = FeatureCadence::parse)]
    pub(crate) features_journal: FeatureCadence,
}

/// The label of the runs with the features journaled.
const WITH_FEATURES: &str = "rtrb+features";

/// How one stage's latency, in ticks, is computed from a `SentOrder`'s stamps.
type StageTicks = fn(&SentOrder) -> u64;

/// The stages measured, in pipeline order: each stage's own work, what lies between them
/// (ring hops, queueing, the journal appends a stage makes after handing its output on), and
/// the whole.
pub(crate) const STAGES: [(&str, StageTicks); 7] = [
    ("decode", |o| o.decoded_tsc.saturating_sub(o.recv_tsc)),
    ("strategy", |o| {
        o.request.created_tsc.saturating_sub(o.strategy_start_tsc)
    }),
    ("risk", |o| {
        o.request.risk_tsc.saturating_sub(o.risk_start_tsc)
    }),
    ("encode", |o| {
        o.encoded_tsc.saturating_sub(o.encode_start_tsc)
    }),
    ("between_stages", |o| {
        o.strategy_start_tsc.saturating_sub(o.decoded_tsc)
            + o.risk_start_tsc.saturating_sub(o.request.created_tsc)
            + o.encode_start_tsc.saturating_sub(o.request.risk_tsc)
    }),
    ("tick_to_trade", |o| {
        o.encoded_tsc.saturating_sub(o.recv_tsc)
    }),
    ("tick_to_trade_from_due", |o| {
        o.encoded_tsc.saturating_sub(o.due_tsc)
    }),
];

/// One stamp of a `SentOrder`.
type Stamp = fn(&SentOrder) -> u64;

/// A `SentOrder`'s stamps in the order the pipeline takes them (a spread layout takes them on
/// several cores of one invariant TSC). Every one must be set and none may come before the one
/// above it; then the stages above add up to tick-to-trade exactly, in ticks.
const STAMP_ORDER: [(&str, Stamp); 9] = [
    ("due_tsc", |o| o.due_tsc),
    ("recv_tsc", |o| o.recv_tsc),
    ("decoded_tsc", |o| o.decoded_tsc),
    ("strategy_start_tsc", |o| o.strategy_start_tsc),
    ("request.created_tsc", |o| o.request.created_tsc),
    ("risk_start_tsc", |o| o.risk_start_tsc),
    ("request.risk_tsc", |o| o.request.risk_tsc),
    ("encode_start_tsc", |o| o.encode_start_tsc),
    ("encoded_tsc", |o| o.encoded_tsc),
];

/// Checks one measured record: every stamp set and in order ([`STAMP_ORDER`]), and decode,
/// strategy, risk, encode and between-stages adding up to tick-to-trade. A record that fails
/// would report a latency that never happened, so the run fails, naming the record: its index
/// among the run's `SentOrder`s and its position in the journal.
fn check_stamps(order: &SentOrder, index: usize, position: Position) -> Result<()> {
    let at = || format!("SentOrder #{index} (journal position {position})");
    for (name, stamp) in STAMP_ORDER {
        if stamp(order) == 0 {
            bail!("{}: {name} is missing (0)", at());
        }
    }
    for pair in STAMP_ORDER.windows(2) {
        let ((before, a), (after, b)) = (pair[0], pair[1]);
        if b(order) < a(order) {
            bail!(
                "{}: {after} ({}) is before {before} ({})",
                at(),
                b(order),
                a(order)
            );
        }
    }
    let parts: u64 = STAGES[..5].iter().map(|(_, stage)| stage(order)).sum();
    let whole = STAGES[5].1(order);
    if parts != whole {
        bail!(
            "{}: the stages add up to {parts} ticks, tick-to-trade is {whole}",
            at()
        );
    }
    Ok(())
}

/// Percentiles of one stage, ns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Percentiles {
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// Each percentile's median over `rounds` (odd, non-empty).
    fn median(rounds: &[Percentiles]) -> Percentiles {
        let of = |field: fn(&Percentiles) -> u64| {
            let mut values: Vec<u64> = rounds.iter().map(field).collect();
            values.sort_unstable();
            values[values.len() / 2]
        };
        Percentiles {
            p50: of(|p| p.p50),
            p90: of(|p| p.p90),
            p99: of(|p| p.p99),
            p999: of(|p| p.p999),
            max: of(|p| p.max),
        }
    }

    pub(crate) fn to_json(self) -> Value {
        json!({
            "p50_ns": self.p50, "p90_ns": self.p90, "p99_ns": self.p99,
            "p999_ns": self.p999, "max_ns": self.max,
        })
    }
}

/// What one pipeline run measured.
pub(crate) struct Run {
    pub(crate) messages: i64,
    pub(crate) orders_sent: u64,
    pub(crate) orders_measured: u64,
    pub(crate) risk_rejects: i64,
    pub(crate) decode_errors: i64,
    pub(crate) ring_full_events: i64,
    /// From the first message's due time to the last order's bytes.
    pub(crate) elapsed: Duration,
    pub(crate) stages: Vec<Percentiles>,
}

impl Run {
    fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    fn to_json(&self) -> Value {
        let stages: serde_json::Map<String, Value> = STAGES
            .iter()
            .zip(&self.stages)
            .map(|((name, _), p)| (name.to_string(), p.to_json()))
            .collect();
        json!({
            "messages": self.messages,
            "orders_sent": self.orders_sent,
            "orders_measured": self.orders_measured,
            "risk_rejects": self.risk_rejects,
            "decode_errors": self.decode_errors,
            "ring_full_events": self.ring_full_events,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "messages_per_sec": self.messages_per_sec().round(),
            "stages": stages,
        })
    }
}

/// Which source a run replays.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SourceKind {
    Corpus,
    Synthetic,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            SourceKind::Corpus => "corpus",
            SourceKind::Synthetic => "synthetic",
        }
    }
}

pub fn run(args: &TickToTradeArgs) -> Result<()> {
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        bail!("--duration must be in (0, 3600] seconds");
    }
    let layout = layout_for(args)?;
    let machine = MachineInfo::detect();
    let found = real_or_testdata().context("loading the recording")?;
    let recording = found.recording.clone();
    let scratch = ScratchDir::create(args.dir.as_deref())?;
    let mut runs: Vec<(SourceKind, &str, Run)> = Vec::new();
    let without_features = TickToTradeArgs {
        features_journal: FeatureCadence::Off,
        ..args.clone()
    };
    for kind in [SourceKind::Corpus, SourceKind::Synthetic] {
        for rings in [Rtrb::NAME, StdChannel::NAME] {
            progress(&format!("{} with {rings} rings", kind.name()));
            let pipeline = if rings == Rtrb::NAME {
                run_pipeline::<Rtrb>
            } else {
                run_pipeline::<StdChannel>
            };
            let run = scratch.with_dir(&format!("{}-{rings}", kind.name()), |dir| {
                pipeline(
                    &without_features,
                    &layout,
                    kind,
                    &recording,
                    dir,
                    &nothing_beside,
                )
            })?;
            runs.push((kind, rings, run));
        }
        if args.features_journal != FeatureCadence::Off {
            progress(&format!(
                "{} with rtrb rings, features journaled",
                kind.name()
            ));
            let run = scratch.with_dir(&format!("{}-features", kind.name()), |dir| {
                run_pipeline::<Rtrb>(args, &layout, kind, &recording, dir, &nothing_beside)
            })?;
            runs.push((kind, WITH_FEATURES, run));
        }
    }
    progress("ring hop between two cores");
    // Rounds alternate between the two kinds of ring, and each percentile is the median over
    // the rounds: a burst of the host's preemption spoils one round, not the comparison.
    let per_round = (args.hop_messages / HOP_ROUNDS).max(100);
    let mut rounds: [Vec<Percentiles>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..HOP_ROUNDS {
        rounds[1].push(ring_hop::<StdChannel>(per_round)?);
        rounds[0].push(ring_hop::<Rtrb>(per_round)?);
    }
    let hops = [
        (Rtrb::NAME, Percentiles::median(&rounds[0])),
        (StdChannel::NAME, Percentiles::median(&rounds[1])),
    ];
    scratch.remove()?;
    let figures = Figures {
        machine,
        data: found,
        layout,
        idle: args.idle,
        rate: args.rate,
        runs,
        hops,
        hop_messages: args.hop_messages,
    };
    print!("{}", figures.table());
    if args.json {
        println!("{}", figures.to_json());
    }
    Ok(())
}

pub(crate) fn progress(what: &str) {
    eprintln!("levibot-bench tick-to-trade: {what}...");
}

/// The layout the arguments ask for, placed on this machine's cores and checked: a spread layout
/// of busy-spinning agents needs a core each.
pub(crate) fn layout_for(args: &TickToTradeArgs) -> Result<Layout> {
    let cores = available_cores();
    let Some(&last) = cores.last() else {
        bail!("no CPU core is available to this process");
    };
    let idle = IdleStrategy::from(args.idle);
    let on = |i: usize| RunnerConfig {
        core_id: Some(cores[i % cores.len()]),
        idle,
    };
    let layout = match args.layout {
        LayoutArg::Fused => Layout::Fused {
            pipeline: RunnerConfig {
                core_id: Some(last),
                idle,
            },
        },
        LayoutArg::Spread => Layout::Spread {
            feed: on(0),
            strategy: on(1),
            risk: on(2),
            gateway: on(3),
        },
    };
    match layout.validate() {
        Ok(()) => Ok(layout),
        Err(RunnerError::TooManySpinners { spinning, cores }) => bail!(
            "the spread layout busy-spins {spinning} agents, one core each, but this machine has \
             {cores} cores: two spinners on one core stall each other. Run it on a machine with \
             {spinning} or more cores, or pass --idle yield (or backoff) to share cores"
        ),
        Err(e) => Err(e).context("checking the layout"),
    }
}

/// Something run beside a pipeline (a load whose effect is measured): started once the run's
/// journal exists, before the agents; stopped when the returned value is dropped, after them.
pub(crate) type Beside<'a> = &'a dyn Fn(&Path) -> Result<Option<Box<dyn std::any::Any>>>;

/// Nothing beside the pipeline.
fn nothing_beside(_: &Path) -> Result<Option<Box<dyn std::any::Any>>> {
    Ok(None)
}

/// One pipeline run over `kind`'s source with rings `R`; the figures come from the journal.
pub(crate) fn run_pipeline<R: Rings>(
    args: &TickToTradeArgs,
    layout: &Layout,
    kind: SourceKind,
    recording: &Recording,
    dir: &Path,
    beside: Beside<'_>,
) -> Result<Run> {
    let journal = Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: SEGMENT_SIZE,
        prefault: true,
        retention: RetentionPolicy::keep_all(),
    })
    .context("opening the run's journal")?;
    let calibration = journal.calibration();
    let (instruments, instrument, corpus_snapshot) = reference::recording_parts(recording)?;
    let rate = Some(args.rate);
    match kind {
        SourceKind::Corpus => {
            let source = ReplaySource::new(recording, args.corpus_passes, rate, &calibration)?;
            let messages = source.messages_per_pass() as f64 * args.corpus_passes as f64;
            let mut spec = reference::maker_spec(instruments, &instrument, corpus_snapshot)?;
            spec.feature_journal = args.features_journal;
            measure::<R, _>(args, layout, spec, source, messages, journal, dir, beside)
        }
        SourceKind::Synthetic => {
            let messages = (args.rate as f64 * args.duration) as u64;
            let source = SyntheticSource::new(
                &instrument,
                SYNTHETIC_MID_TICKS,
                messages,
                args.seed,
                rate,
                &calibration,
            )?;
            let mut spec = reference::maker_spec(instruments, &instrument, source.snapshot())?;
            spec.feature_journal = args.features_journal;
            measure::<R, _>(
                args,
                layout,
                spec,
                source,
                messages as f64,
                journal,
                dir,
                beside,
            )
        }
    }
}

/// Runs `spec` over `source` (about `planned` messages), then reads the figures back.
#[allow(clippy::too_many_arguments)]
fn measure<R: Rings, Src: MessageSource + 'static>(
    args: &TickToTradeArgs,
    layout: &Layout,
    spec: PipelineSpec<Maker>,
    source: Src,
    planned: f64,
    journal: Journal,
    dir: &Path,
    beside: Beside<'_>,
) -> Result<Run> {
    let calibration = journal.calibration();
    let counters_path = dir.join("counters.lvc");
    let counters = CountersWriter::create(&counters_path, 256, journal.epoch())
        .context("creating the run's counters")?;
    let venue = spec.ack_venue().context("the venue's FIX encoder")?;
    let (pipeline, controls) = Pipeline::<_, Maker, AckVenue, R>::assemble(
        spec,
        source,
        venue,
        &journal,
        &counters,
        layout.is_fused(),
    )?;
    let deadline = Duration::from_secs_f64(planned / args.rate as f64) + RUN_GRACE;
    let load = beside(dir)?;
    with_maintainer(&journal, || {
        let running = pipeline.start(layout, &counters)?;
        let started = Instant::now();
        while !controls.source_is_done() {
            if started.elapsed() > deadline {
                let _ = running.stop();
                bail!("the run did not finish within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The last messages finish within microseconds; the stop drains whatever is left.
        std::thread::sleep(Duration::from_millis(20));
        running.stop().context("stopping the pipeline")?;
        Ok(())
    })?;
    drop(load);
    drop(journal);
    let counts = CountersReader::open(&counters_path)?.counters();
    let count = |label: &str| {
        counts
            .iter()
            .filter(|c| {
                c.label == label
                    || (label.ends_with('*') && c.label.starts_with(&label[..label.len() - 1]))
            })
            .map(|c| c.value)
            .sum::<i64>()
    };
    let mut run = read_journal(dir, &calibration)?;
    run.messages = count(label::FEED_MESSAGES);
    run.risk_rejects = count(label::RISK_REJECTED);
    run.decode_errors = count(label::FEED_DECODE_ERRORS);
    run.ring_full_events = count("ring.*");
    Ok(run)
}

/// Every `SentOrder` of the journal in `dir`, as stage latencies (past the warm-up).
fn read_journal(dir: &Path, calibration: &TscCalibration) -> Result<Run> {
    let mut tailer = Tailer::open(dir, StartAt::Beginning).context("reading the run's journal")?;
    let mut sent: Vec<SentOrder> = Vec::new();
    let mut checked: Result<()> = Ok(());
    loop {
        let polled = tailer.poll(4096, |frame| {
            if frame.record_type == SentOrder::RECORD_TYPE
                && let Some(order) = SentOrder::from_bytes(frame.payload)
            {
                if checked.is_ok() {
                    checked = check_stamps(&order, sent.len(), frame.position);
                }
                sent.push(order);
            }
        })?;
        if polled.frames == 0 {
            break;
        }
    }
    checked.context("a record the benchmark cannot measure")?;
    if sent.is_empty() {
        bail!("the run sent no order: nothing to measure");
    }
    let skip = (sent.len() as f64 * WARMUP_FRACTION) as usize;
    let mut histograms = STAGES
        .iter()
        .map(|_| latency_histogram())
        .collect::<Result<Vec<_>>>()?;
    for order in &sent[skip..] {
        for ((_, stage), h) in STAGES.iter().zip(&mut histograms) {
            h.saturating_record((calibration.ticks_to_ns(stage(order)).round() as u64).max(1));
        }
    }
    let first = sent.iter().map(|o| o.due_tsc).min().unwrap_or(0);
    let last = sent.iter().map(|o| o.encoded_tsc).max().unwrap_or(0);
    Ok(Run {
        messages: 0,
        orders_sent: sent.len() as u64,
        orders_measured: (sent.len() - skip) as u64,
        risk_rejects: 0,
        decode_errors: 0,
        ring_full_events: 0,
        elapsed: Duration::from_nanos(calibration.ticks_to_ns(last.saturating_sub(first)) as u64),
        stages: histograms.iter().map(Percentiles::of).collect(),
    })
}

/// One-way latency of a ring between two threads on two cores: the producer stamps a message
/// every `HOP_INTERVAL_NS`, the consumer spins on the ring and records how long it took.
fn ring_hop<R: Rings>(messages: u64) -> Result<Percentiles> {
    let clock = Clock::new();
    let calibration = TscCalibration::measure(&clock);
    let interval_ticks = (HOP_INTERVAL_NS as f64 * calibration.ticks_per_ns) as u64;
    let (mut tx, mut rx) = R::link::<u64>(1024)?;
    // Both ends on threads of their own: this thread keeps the process's whole CPU set (the
    // core list is read from the calling thread's affinity).
    let cores = available_cores();
    let pin = |i: usize| {
        if cores.len() >= 2 {
            core_affinity::set_for_current(core_affinity::CoreId { id: cores[i] });
        }
    };
    let histogram = std::thread::scope(|s| -> Result<Histogram<u64>> {
        let consumer = s.spawn(|| -> Result<Histogram<u64>> {
            pin(1);
            let mut h = latency_histogram()?;
            let mut received = 0;
            // The first tenth warms the threads, caches and ring up; it is not recorded.
            let warmup = messages / 10;
            while received < messages {
                if let Some(stamp) = rx.try_pop() {
                    let ticks = clock.raw().saturating_sub(stamp);
                    if received >= warmup {
                        h.saturating_record((calibration.ticks_to_ns(ticks).round() as u64).max(1));
                    }
                    received += 1;
                }
            }
            Ok(h)
        });
        s.spawn(|| {
            pin(0);
            let mut next = clock.raw();
            for _ in 0..messages {
                while clock.raw() < next {
                    std::hint::spin_loop();
                }
                next += interval_ticks;
                let mut stamp = clock.raw();
                while let Err(back) = tx.try_push(stamp) {
                    stamp = back;
                    std::hint::spin_loop();
                }
            }
        });
        consumer
            .join()
            .map_err(|_| anyhow::anyhow!("ring-hop consumer panicked"))?
    })?;
    Ok(Percentiles::of(&histogram))
}

struct Figures<'a> {
    machine: MachineInfo,
    /// The recording the corpus runs replay: the real one, or the repository's synthetic one.
    data: FoundRecording,
    layout: Layout,
    idle: IdleArg,
    rate: u64,
    runs: Vec<(SourceKind, &'a str, Run)>,
    hops: [(&'static str, Percentiles); 2],
    hop_messages: u64,
}

impl Figures<'_> {
    fn layout_name(&self) -> &'static str {
        if self.layout.is_fused() {
            "fused"
        } else {
            "spread"
        }
    }

    /// p99 of `stage` with the baseline over p99 with rtrb, for `kind`.
    fn p99_ratio(&self, kind: &str, stage: usize) -> Option<f64> {
        let p99 = |rings: &str| {
            self.runs
                .iter()
                .find(|(k, r, _)| k.name() == kind && *r == rings)
                .map(|(_, _, run)| run.stages[stage].p99 as f64)
        };
        Some(p99(StdChannel::NAME)? / p99(Rtrb::NAME)?)
    }

    fn hop_p99_ratio(&self) -> f64 {
        self.hops[1].1.p99 as f64 / self.hops[0].1.p99.max(1) as f64
    }

    fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "levibot-bench tick-to-trade: layout {}, agents idle by {:?}, sources paced at {} msg/s",
            self.layout_name(),
            self.idle,
            self.rate
        ));
        line(m.summary_line());
        line(format!(
            "corpus runs replay: {}, {}",
            self.data.source(),
            self.data.dir.display()
        ));
        line("stage latencies in ns, from the journal's SentOrder stamps".to_owned());
        for (kind, rings, run) in &self.runs {
            line(String::new());
            line(format!(
                "{} / {rings}: {} messages ({:.0}/s), {} orders sent ({} measured), {} risk rejects, {} decode errors, {} full-ring events",
                kind.name(),
                run.messages,
                run.messages_per_sec(),
                run.orders_sent,
                run.orders_measured,
                run.risk_rejects,
                run.decode_errors,
                run.ring_full_events
            ));
            line(format!(
                "  {:<24} {:>8} {:>8} {:>8} {:>8} {:>10}",
                "stage", "p50", "p90", "p99", "p99.9", "max"
            ));
            for ((name, _), p) in STAGES.iter().zip(&run.stages) {
                line(format!(
                    "  {:<24} {:>8} {:>8} {:>8} {:>8} {:>10}",
                    name, p.p50, p.p90, p.p99, p.p999, p.max
                ));
            }
        }
        line(String::new());
        line(format!(
            "ring hop between two cores, one message every {HOP_INTERVAL_NS} ns ({} messages in {HOP_ROUNDS} alternating rounds; medians of the rounds' percentiles):",
            self.hop_messages
        ));
        for (rings, p) in &self.hops {
            line(format!(
                "  {:<24} p50 {:>6}  p90 {:>6}  p99 {:>6}  p99.9 {:>7}  max {:>9}",
                rings, p.p50, p.p90, p.p99, p.p999, p.max
            ));
        }
        let t2t = STAGES
            .iter()
            .position(|(n, _)| *n == "tick_to_trade")
            .unwrap_or(5);
        line(format!(
            "std_mpsc / rtrb at p99: ring hop {:.2}x; tick-to-trade corpus {:.2}x, synthetic {:.2}x",
            self.hop_p99_ratio(),
            self.p99_ratio("corpus", t2t).unwrap_or(f64::NAN),
            self.p99_ratio("synthetic", t2t).unwrap_or(f64::NAN),
        ));
        out
    }

    fn to_json(&self) -> Value {
        let mut runs = serde_json::Map::new();
        for (kind, rings, run) in &self.runs {
            runs.entry(kind.name())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|o| o.insert(rings.to_string(), run.to_json()));
        }
        let t2t = STAGES
            .iter()
            .position(|(n, _)| *n == "tick_to_trade")
            .unwrap_or(5);
        json!({
            "benchmark": "tick_to_trade",
            "layout": self.layout_name(),
            "idle": format!("{:?}", self.idle),
            "rate_per_sec": self.rate,
            "data": {
                "source": self.data.source(),
                "dir": self.data.dir.display().to_string(),
                "messages": self.data.recording.messages().count(),
            },
            "machine": self.machine.to_json(),
            "runs": runs,
            "ring_hop": {
                "messages": self.hop_messages,
                "rounds": HOP_ROUNDS,
                "rtrb": self.hops[0].1.to_json(),
                "std_mpsc": self.hops[1].1.to_json(),
            },
            "p99_baseline_over_rtrb": {
                "ring_hop": round3(self.hop_p99_ratio()),
                "tick_to_trade_corpus": self.p99_ratio("corpus", t2t).map(round3),
                "tick_to_trade_synthetic": self.p99_ratio("synthetic", t2t).map(round3),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levibot_shm::records::OrderRequest;

    /// A record stamped 100, 110, 120, ... in pipeline order.
    fn stamped() -> SentOrder {
        SentOrder {
            due_tsc: 100,
            recv_tsc: 110,
            decoded_tsc: 250,
            strategy_start_tsc: 300,
            risk_start_tsc: 480,
            encode_start_tsc: 700,
            encoded_tsc: 820,
            request: OrderRequest {
                created_tsc: 390,
                risk_tsc: 610,
                ..OrderRequest::default()
            },
            ..SentOrder::default()
        }
    }

    #[test]
    fn the_stages_add_up_to_tick_to_trade() {
        let o = stamped();
        check_stamps(&o, 0, Position(64)).unwrap();
        let ticks: Vec<u64> = STAGES.iter().map(|(_, stage)| stage(&o)).collect();
        // Worked by hand: decode 250-110, strategy 390-300, risk 610-480, encode 820-700,
        // between (300-250)+(480-390)+(700-610); tick-to-trade 820-110, from due 820-100.
        assert_eq!(ticks, [140, 90, 130, 120, 230, 710, 720]);
        assert_eq!(ticks[..5].iter().sum::<u64>(), ticks[5]);
    }

    #[test]
    fn a_missing_or_out_of_order_stamp_fails_naming_the_record() {
        let mut missing = stamped();
        missing.request.risk_tsc = 0;
        let err = check_stamps(&missing, 7, Position(4_160)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SentOrder #7 (journal position 4160): request.risk_tsc is missing (0)"
        );
        let mut early = stamped();
        early.encoded_tsc = 650;
        let err = check_stamps(&early, 3, Position(512)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SentOrder #3 (journal position 512): encoded_tsc (650) is before encode_start_tsc (700)"
        );
    }
}
