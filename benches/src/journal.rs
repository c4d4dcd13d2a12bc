//! `levibot-bench journal`: append latency and tailer throughput of the shared-memory journal,
//! each measured beside a standard-library baseline in the same run.
//!
//! Every frame is 64 bytes as it lies in the journal: the 32-byte frame header plus a 32-byte
//! payload. Baselines move a `[u8; 64]`, the same number of bytes.
//!
//! No run ever has more threads spinning than a 2-core machine has cores: at most two hot
//! threads (writers, or a writer and a tailer, or a producer and a blocking consumer), plus the
//! journal's maintenance thread, which sleeps between passes.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread::{self, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Args;
use hdrhistogram::Histogram;
use levibot_shm::layout::{SEGMENT_SIZE_MAX, SEGMENT_SIZE_MIN, align_frame};
use levibot_shm::{
    FRAME_HEADER_LEN, Journal, JournalConfig, Position, RecordType, RetentionPolicy, StartAt,
    Tailer,
};
use quanta::Clock;
use serde_json::json;

use crate::report::{
    LatencySummary, MachineInfo, Throughput, cache_line_round_trip_ns, clock_resolution_ns,
    latency_histogram,
};
use crate::scratch::{MaintainStats, ScratchDir, with_maintainer};

/// Bytes of one frame in the journal: the 32-byte frame header plus a 32-byte payload.
const FRAME_BYTES: usize = 64;
const PAYLOAD_BYTES: usize = FRAME_BYTES - FRAME_HEADER_LEN;
const _: () = assert!(align_frame(FRAME_HEADER_LEN + PAYLOAD_BYTES) == FRAME_BYTES);

const RECORD: RecordType = RecordType(RecordType::FIRST_USER);

/// Frames handed out per `Tailer::poll`, like a real consumer's batch.
const POLL_FRAMES_MAX: usize = 1024;
/// Bound of the `sync_channel` baseline: deep enough that the producer rarely waits for the
/// consumer, so its figure is mostly the cost of a send (and of waking the consumer).
const SYNC_CHANNEL_CAPACITY: usize = 4096;
/// Capacity of the `Mutex<Vec>` baseline in full runs: 64 MiB, bigger than the caches, so that
/// it writes to memory as the journal does (and cleared when full, so memory stays bounded).
const VEC_FRAMES_MAX: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// Frames per run: timed appends per writer thread, frames pre-filled for the tailer and
    /// messages per baseline. A warm-up of a tenth more (at least 1000) comes before each
    /// latency run.
    #[arg(
        long,
        default_value_t = 5_000_000,
        value_parser = clap::value_parser!(u64).range(1000..=100_000_000)
    )]
    frames: u64,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
    /// Where to put the scratch journals: a fresh subdirectory is created there and removed at
    /// the end. Default: /dev/shm, or the temp dir where there is none.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Sizes shared by every run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    frames: usize,
    warmup_frames: usize,
    segment_size: usize,
}

impl Plan {
    fn new(frames: u64) -> Result<Plan> {
        let frames = usize::try_from(frames).context("--frames does not fit in memory")?;
        let warmup_frames = (frames / 10).max(1000);
        Ok(Plan {
            frames,
            warmup_frames,
            // Room for everything two writers append, up to the largest segment. Flat out (GB/s),
            // writers would fill segments faster than the maintenance thread can create and
            // prefault them on a 2-core machine, where it has no core of its own; a daemon
            // writes far less. Longer runs roll over (and then measure that too). Quick runs
            // get small segments, so that they stay quick.
            segment_size: (2 * (frames + warmup_frames) * FRAME_BYTES)
                .next_power_of_two()
                .clamp(SEGMENT_SIZE_MIN, SEGMENT_SIZE_MAX),
        })
    }

    fn journal_config(&self, dir: &Path, retention: RetentionPolicy) -> JournalConfig {
        let mut config = JournalConfig::new(dir);
        config.segment_size = self.segment_size;
        config.prefault = true;
        config.retention = retention;
        config
    }

    /// For latency runs, which may write gigabytes: prune down to a few segments, and never
    /// gzip (on a 2-core machine that would take a core from the writers).
    fn pruning_retention(&self) -> RetentionPolicy {
        RetentionPolicy {
            compress: false,
            raw_segments_kept: 0,
            max_age: None,
            // The current segment, the spare, and two sealed ones.
            max_total_bytes: Some(4 * self.segment_size as u64),
            archive: None,
        }
    }

    /// Indexes of the warm-up operations, then of the timed ones.
    fn op_indexes(&self) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
        let warmup = self.warmup_frames as u64;
        (0..warmup, warmup..warmup + self.frames as u64)
    }
}

/// Every figure of one `journal` run.
struct Figures {
    machine: MachineInfo,
    plan: Plan,
    clock_resolution_ns: u64,
    /// Measured just before the 2-writer run, whose contention it explains.
    cache_line_round_trip_ns: f64,
    timer_overhead: LatencySummary,
    journal_1_writer: JournalAppend,
    journal_2_writers: JournalAppend,
    mutex_vec_1_thread: LatencySummary,
    mutex_vec_2_threads: LatencySummary,
    mpsc_send_1_producer: LatencySummary,
    tailer_prefilled: Throughput,
    tailer_live: LiveTail,
    mpsc_recv_prefilled: Throughput,
}

/// Appends timed on one journal.
#[derive(Clone, Copy, Debug)]
struct JournalAppend {
    latency: LatencySummary,
    /// Segments the writers rolled over to (warm-up included).
    rollovers: u64,
    maintain: MaintainStats,
}

/// A tailer following one writer, each timed from its own first frame to the last.
#[derive(Clone, Copy, Debug)]
struct LiveTail {
    writer: Throughput,
    tailer: Throughput,
    maintain: MaintainStats,
}

pub fn run(args: &JournalArgs) -> Result<()> {
    let plan = Plan::new(args.frames)?;
    let machine = MachineInfo::detect();
    let scratch = ScratchDir::create(args.dir.as_deref())?;
    let clock = Clock::new();

    progress("timer overhead");
    let clock_resolution_ns = clock_resolution_ns(&clock);
    let timer_overhead = timer_overhead(&clock, &plan)?;
    progress("journal append, 1 writer");
    let journal_1_writer = scratch.with_dir("append-1-writer", |dir| {
        journal_append_latency(dir, &clock, &plan, 1)
    })?;
    progress("Mutex<Vec> push, 1 thread");
    let mutex_vec_1_thread = mutex_vec_latency(&clock, &plan, 1)?;
    progress("cache line round trip between two threads");
    let cache_line_round_trip_ns = cache_line_round_trip_ns(plan.frames.min(100_000) as u64 / 10);
    progress("journal append, 2 writers");
    let journal_2_writers = scratch.with_dir("append-2-writers", |dir| {
        journal_append_latency(dir, &clock, &plan, 2)
    })?;
    progress("Mutex<Vec> push, 2 threads");
    let mutex_vec_2_threads = mutex_vec_latency(&clock, &plan, 2)?;
    progress("mpsc sync_channel send, 1 producer");
    let mpsc_send_1_producer = mpsc_send_latency(&clock, &plan)?;
    progress("journal tailer, pre-filled");
    let tailer_prefilled = scratch.with_dir("tail-prefilled", |dir| tail_prefilled(dir, &plan))?;
    progress("journal tailer, live");
    let tailer_live = scratch.with_dir("tail-live", |dir| tail_live(dir, &plan))?;
    progress("mpsc recv, pre-filled");
    let mpsc_recv_prefilled = mpsc_recv_throughput(&plan)?;
    scratch.remove()?;

    let figures = Figures {
        machine,
        plan,
        clock_resolution_ns,
        cache_line_round_trip_ns,
        timer_overhead,
        journal_1_writer,
        journal_2_writers,
        mutex_vec_1_thread,
        mutex_vec_2_threads,
        mpsc_send_1_producer,
        tailer_prefilled,
        tailer_live,
        mpsc_recv_prefilled,
    };
    print!("{}", figures.table());
    if args.json {
        println!("{}", figures.to_json());
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("levibot-bench journal: {what} ...");
}

/// Times each call of `op` on its own (`op` gets the operation's index): a warm-up whose
/// figures are discarded, then a wait on `start_line` so that concurrent threads measure
/// together, then the timed run.
fn time_each(
    clock: &Clock,
    histogram: &mut Histogram<u64>,
    plan: &Plan,
    start_line: &Barrier,
    mut op: impl FnMut(u64) -> Result<()>,
) -> Result<Span> {
    let mut timed = |i: u64, histogram: &mut Histogram<u64>| -> Result<()> {
        let start = clock.raw();
        op(i)?;
        let end = clock.raw();
        histogram.saturating_record(clock.delta_as_nanos(start, end));
        Ok(())
    };
    let (warmup, measured) = plan.op_indexes();
    let warmed_up = warmup.into_iter().try_for_each(|i| timed(i, histogram));
    // Every thread reaches the barrier, even one that failed, so that the others never hang.
    start_line.wait();
    warmed_up?;
    // Zeroing writes every count, so the timed run never page-faults on a fresh bucket.
    histogram.reset();
    let started = Instant::now();
    measured.into_iter().try_for_each(|i| timed(i, histogram))?;
    Ok(Span {
        started,
        ended: Instant::now(),
    })
}

/// When a thread's timed run started and ended.
#[derive(Clone, Copy, Debug)]
struct Span {
    started: Instant,
    ended: Instant,
}

/// The floor under every latency figure: two clock reads with nothing between them.
fn timer_overhead(clock: &Clock, plan: &Plan) -> Result<LatencySummary> {
    let mut histogram = latency_histogram()?;
    let span = time_each(clock, &mut histogram, plan, &Barrier::new(1), |i| {
        black_box(i);
        Ok(())
    })?;
    merged(vec![Timed { histogram, span }])
}

/// Append latency of `writers` threads, each with its own appender on one journal.
fn journal_append_latency(
    dir: &Path,
    clock: &Clock,
    plan: &Plan,
    writers: u16,
) -> Result<JournalAppend> {
    let journal = Journal::open(&plan.journal_config(dir, plan.pruning_retention()))
        .with_context(|| format!("opening a journal in {}", dir.display()))?;
    // Set up outside the threads, so that nothing can fail before the start line.
    let mut setups = Vec::new();
    for writer_id in 0..writers {
        setups.push((journal.appender(writer_id)?, latency_histogram()?));
    }
    let start_line = Barrier::new(setups.len());
    let (threads, maintain) = with_maintainer(&journal, || {
        thread::scope(|s| {
            let threads: Vec<_> = setups
                .into_iter()
                .map(|(mut appender, mut histogram)| {
                    let (clock, start_line) = (clock.clone(), &start_line);
                    s.spawn(move || {
                        let mut payload = [0u8; PAYLOAD_BYTES];
                        let mut last = Position(0);
                        let span = time_each(&clock, &mut histogram, plan, start_line, |i| {
                            payload[..8].copy_from_slice(&i.to_le_bytes());
                            last = appender.append(RECORD, &payload)?;
                            Ok(())
                        })?;
                        Ok((Timed { histogram, span }, last))
                    })
                })
                .collect();
            join_all(threads)
        })
    })?;
    let last_segment = threads
        .iter()
        .map(|(_, last)| last.split(plan.segment_size).0)
        .max()
        .unwrap_or_default();
    Ok(JournalAppend {
        latency: merged(threads.into_iter().map(|(timed, _)| timed).collect())?,
        rollovers: last_segment - journal.recovery().first_segment,
        maintain,
    })
}

/// Baseline: the obvious shared log, a pre-reserved `Vec` behind a `Mutex`.
fn mutex_vec_latency(clock: &Clock, plan: &Plan, threads: usize) -> Result<LatencySummary> {
    let capacity = plan.frames.min(VEC_FRAMES_MAX);
    let mut log = Vec::<[u8; FRAME_BYTES]>::with_capacity(capacity);
    // Touch every page once, as the journal prefaults its segments.
    log.resize(capacity, [0; FRAME_BYTES]);
    log.clear();
    let log = Mutex::new(log);
    let start_line = Barrier::new(threads);
    let mut histograms = Vec::new();
    for _ in 0..threads {
        histograms.push(latency_histogram()?);
    }
    let histograms = thread::scope(|s| {
        let handles: Vec<_> = histograms
            .into_iter()
            .map(|mut histogram| {
                let (clock, log, start_line) = (clock.clone(), &log, &start_line);
                s.spawn(move || {
                    let span = time_each(&clock, &mut histogram, plan, start_line, |i| {
                        let mut frame = [0u8; FRAME_BYTES];
                        frame[..8].copy_from_slice(&i.to_le_bytes());
                        let mut log = log.lock().map_err(|_| anyhow!("log mutex poisoned"))?;
                        if log.len() == log.capacity() {
                            log.clear();
                        }
                        log.push(frame);
                        Ok(())
                    })?;
                    Ok(Timed { histogram, span })
                })
            })
            .collect();
        join_all(handles)
    })?;
    merged(histograms)
}

/// Baseline: a bounded std channel, one producer timed per send, one consumer blocking in recv.
fn mpsc_send_latency(clock: &Clock, plan: &Plan) -> Result<LatencySummary> {
    let (sender, receiver) = mpsc::sync_channel::<[u8; FRAME_BYTES]>(SYNC_CHANNEL_CAPACITY);
    let mut histogram = latency_histogram()?;
    let (received, span) = thread::scope(|s| {
        let consumer = s.spawn(move || {
            let mut received = 0;
            for frame in receiver {
                black_box(frame);
                received += 1;
            }
            received
        });
        // The sender drops at the end of this block, even on an error, so the consumer ends.
        let timed = {
            let sender = sender;
            time_each(clock, &mut histogram, plan, &Barrier::new(1), |i| {
                let mut frame = [0u8; FRAME_BYTES];
                frame[..8].copy_from_slice(&i.to_le_bytes());
                sender
                    .send(frame)
                    .map_err(|_| anyhow!("the consumer hung up"))
            })
        };
        let received = consumer
            .join()
            .map_err(|_| anyhow!("consumer thread panicked"))?;
        timed.map(|span| (received, span))
    })?;
    ensure!(
        received == plan.warmup_frames + plan.frames,
        "the consumer received {received} messages"
    );
    merged(vec![Timed { histogram, span }])
}

/// Reads `frames` frames written by `append_frames` (beside it, or beforehand), checks that each
/// came once, and returns the time from just before the poll that found the first frame to the
/// last one. Once `writer_done` is set, an empty poll means frames are missing.
fn tail_frames(tailer: &mut Tailer, frames: usize, writer_done: &AtomicBool) -> Result<Duration> {
    let mut read = 0;
    let mut sum = 0u64;
    let mut first_found: Option<Instant> = None;
    while read < frames {
        let done_before_poll = writer_done.load(Ordering::Acquire);
        let before_poll = Instant::now();
        let polled = tailer.poll(POLL_FRAMES_MAX, |frame| {
            let index = frame
                .payload
                .first_chunk::<8>()
                .copied()
                .unwrap_or_default();
            sum = sum.wrapping_add(u64::from_le_bytes(index));
        })?;
        read += polled.frames;
        if polled.frames > 0 {
            first_found.get_or_insert(before_poll);
        } else if done_before_poll {
            bail!("the tailer found {read} of {frames} frames");
        } else {
            std::hint::spin_loop();
        }
    }
    let elapsed = first_found.map_or(Duration::ZERO, |t| t.elapsed());
    ensure!(
        read == frames && sum == index_sum(frames),
        "the tailer read {read} frames, not each of {frames} once"
    );
    Ok(elapsed)
}

fn append_frames(journal: &Journal, frames: usize) -> Result<()> {
    let mut appender = journal.appender(0)?;
    let mut payload = [0u8; PAYLOAD_BYTES];
    for i in 0..frames as u64 {
        payload[..8].copy_from_slice(&i.to_le_bytes());
        appender.append(RECORD, &payload)?;
    }
    Ok(())
}

/// 0 + 1 + ... + (frames - 1), wrapping like the tailer's sum.
fn index_sum(frames: usize) -> u64 {
    (0..frames as u64).fold(0u64, |sum, i| sum.wrapping_add(i))
}

/// A tailer reading a journal written beforehand, from the beginning.
fn tail_prefilled(dir: &Path, plan: &Plan) -> Result<Throughput> {
    // Keep every segment: the tailer must find every frame.
    let journal = Journal::open(&plan.journal_config(dir, RetentionPolicy::keep_all()))?;
    append_frames(&journal, plan.frames)?;
    drop(journal);
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let elapsed = tail_frames(&mut tailer, plan.frames, &AtomicBool::new(true))?;
    Ok(journal_throughput(plan.frames, elapsed))
}

/// A tailer following one writer thread that appends as fast as it can.
fn tail_live(dir: &Path, plan: &Plan) -> Result<LiveTail> {
    // Keep every segment: a tailer that fell behind must still find every frame.
    let journal = Journal::open(&plan.journal_config(dir, RetentionPolicy::keep_all()))?;
    let mut tailer = Tailer::open(dir, StartAt::Beginning)?;
    let start_line = Barrier::new(2);
    let writer_done = AtomicBool::new(false);
    let ((writer_elapsed, tailer_elapsed), maintain) = with_maintainer(&journal, || {
        thread::scope(|s| {
            let writer = s.spawn(|| {
                start_line.wait();
                let started = Instant::now();
                let appended = append_frames(&journal, plan.frames);
                writer_done.store(true, Ordering::Release);
                appended.map(|()| started.elapsed())
            });
            start_line.wait();
            let tailed = tail_frames(&mut tailer, plan.frames, &writer_done);
            let writer_elapsed = writer
                .join()
                .map_err(|_| anyhow!("writer thread panicked"))??;
            tailed.map(|tailer_elapsed| (writer_elapsed, tailer_elapsed))
        })
    })?;
    Ok(LiveTail {
        writer: journal_throughput(plan.frames, writer_elapsed),
        tailer: journal_throughput(plan.frames, tailer_elapsed),
        maintain,
    })
}

fn journal_throughput(frames: usize, elapsed: Duration) -> Throughput {
    Throughput {
        frames: frames as u64,
        frame_bytes: FRAME_BYTES as u64,
        payload_bytes: PAYLOAD_BYTES as u64,
        elapsed,
    }
}

/// Baseline: one thread draining a pre-filled unbounded std channel of `[u8; 64]`.
fn mpsc_recv_throughput(plan: &Plan) -> Result<Throughput> {
    let (sender, receiver) = mpsc::channel::<[u8; FRAME_BYTES]>();
    for i in 0..plan.frames as u64 {
        let mut frame = [0u8; FRAME_BYTES];
        frame[..8].copy_from_slice(&i.to_le_bytes());
        sender.send(frame)?;
    }
    drop(sender);
    let started = Instant::now();
    let sum = receiver.iter().fold(0u64, |sum, frame| {
        let index = frame.first_chunk::<8>().copied().unwrap_or_default();
        sum.wrapping_add(u64::from_le_bytes(index))
    });
    let elapsed = started.elapsed();
    ensure!(
        sum == index_sum(plan.frames),
        "the channel lost or repeated messages"
    );
    Ok(Throughput {
        frames: plan.frames as u64,
        frame_bytes: FRAME_BYTES as u64,
        // A channel message has no header: all 64 bytes are the caller's.
        payload_bytes: FRAME_BYTES as u64,
        elapsed,
    })
}

fn join_all<T>(threads: Vec<ScopedJoinHandle<'_, Result<T>>>) -> Result<Vec<T>> {
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow!("benchmark thread panicked"))?)
        .collect()
}

/// One thread's timed operations.
struct Timed {
    histogram: Histogram<u64>,
    span: Span,
}

/// The percentiles of all threads' operations together, and their rate from the first thread's
/// start to the last one's end.
fn merged(threads: Vec<Timed>) -> Result<LatencySummary> {
    let mut threads = threads.into_iter();
    let first = threads.next().context("no timed thread")?;
    let (mut total, mut span) = (first.histogram, first.span);
    for thread in threads {
        total.add(&thread.histogram).context("merging histograms")?;
        span.started = span.started.min(thread.span.started);
        span.ended = span.ended.max(thread.span.ended);
    }
    Ok(LatencySummary::of(&total, span.ended - span.started))
}

impl Figures {
    fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "levibot-bench journal: {} timed frames per run (+{} warm-up), segment {} MiB",
            self.plan.frames,
            self.plan.warmup_frames,
            self.plan.segment_size >> 20
        ));
        line(format!(
            "frame = {FRAME_BYTES} B in the journal: {FRAME_HEADER_LEN} B frame header + {PAYLOAD_BYTES} B payload; baselines move a [u8; {FRAME_BYTES}]"
        ));
        line(m.summary_line());
        line(format!(
            "clock: ticks every {} ns; two reads with nothing between (in every latency below): p50 {} ns, p99 {} ns",
            self.clock_resolution_ns,
            self.timer_overhead.latency_ns_p50,
            self.timer_overhead.latency_ns_p99
        ));
        line(format!(
            "cache line round trip between two threads (before the 2-thread runs): {:.0} ns",
            self.cache_line_round_trip_ns
        ));
        line(String::new());
        line(format!(
            "{:<46} {:>6} {:>6} {:>6} {:>10} {:>7} {:>8}",
            "append latency (ns per op)", "p50", "p99", "p99.9", "max", "mean", "Mops/s"
        ));
        let latency_rows = [
            (
                "1 thread   journal append (ours)",
                &self.journal_1_writer.latency,
            ),
            (
                "           Mutex<Vec> push (baseline)",
                &self.mutex_vec_1_thread,
            ),
            (
                "           mpsc sync_channel send (baseline)",
                &self.mpsc_send_1_producer,
            ),
            (
                "2 threads  journal append (ours)",
                &self.journal_2_writers.latency,
            ),
            (
                "           Mutex<Vec> push (baseline)",
                &self.mutex_vec_2_threads,
            ),
        ];
        for (name, l) in latency_rows {
            line(format!(
                "{name:<46} {:>6} {:>6} {:>6} {:>10} {:>7.1} {:>8.1}",
                l.latency_ns_p50,
                l.latency_ns_p99,
                l.latency_ns_p999,
                l.latency_ns_max,
                l.latency_ns_mean,
                l.ops_per_sec / 1e6
            ));
        }
        for (name, run) in [
            ("1 writer", &self.journal_1_writer),
            ("2 writers", &self.journal_2_writers),
        ] {
            line(format!(
                "journal, {name}: {} rollover(s); maintenance thread {} passes, longest {:.1} ms",
                run.rollovers,
                run.maintain.passes,
                run.maintain.longest.as_secs_f64() * 1e3
            ));
        }
        line(String::new());
        line(format!(
            "{:<46} {:>12} {:>8} {:>14}",
            "read throughput (GB = 10^9 B)", "frames/s", "GB/s", "payload GB/s"
        ));
        let live = &self.tailer_live;
        let throughput_rows = [
            ("journal tailer, pre-filled (ours)", &self.tailer_prefilled),
            ("journal tailer, live (ours)", &live.tailer),
            ("  its writer, while tailed", &live.writer),
            (
                "mpsc recv, pre-filled (baseline)",
                &self.mpsc_recv_prefilled,
            ),
        ];
        for (name, t) in throughput_rows {
            line(format!(
                "{name:<46} {:>12.0} {:>8.3} {:>14.3}",
                t.frames_per_sec(),
                t.gb_per_sec(),
                t.payload_gb_per_sec()
            ));
        }
        out
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "benchmark": "journal",
            "frames": self.plan.frames,
            "warmup_frames": self.plan.warmup_frames,
            "segment_size_bytes": self.plan.segment_size,
            "frame_bytes": FRAME_BYTES,
            "frame_header_bytes": FRAME_HEADER_LEN,
            "payload_bytes": PAYLOAD_BYTES,
            "machine": self.machine.to_json(),
            "clock_resolution_ns": self.clock_resolution_ns,
            "cache_line_round_trip_ns": (self.cache_line_round_trip_ns * 10.0).round() / 10.0,
            "timer_overhead": self.timer_overhead.to_json(),
            "append": {
                "journal_1_writer": self.journal_1_writer.latency.to_json(),
                "journal_2_writers": self.journal_2_writers.latency.to_json(),
                "mutex_vec_1_thread": self.mutex_vec_1_thread.to_json(),
                "mutex_vec_2_threads": self.mutex_vec_2_threads.to_json(),
                "mpsc_sync_channel_send_1_producer": self.mpsc_send_1_producer.to_json(),
            },
            "tail": {
                "journal_prefilled": self.tailer_prefilled.to_json(),
                "journal_live": self.tailer_live.tailer.to_json(),
                "journal_live_writer": self.tailer_live.writer.to_json(),
                "mpsc_recv_prefilled": self.mpsc_recv_prefilled.to_json(),
            },
            "rollovers": {
                "append_1_writer": self.journal_1_writer.rollovers,
                "append_2_writers": self.journal_2_writers.rollovers,
            },
            "maintenance": {
                "append_1_writer": self.journal_1_writer.maintain.to_json(),
                "append_2_writers": self.journal_2_writers.maintain.to_json(),
                "tail_live": self.tailer_live.maintain.to_json(),
            },
        })
    }
}
