//! `levibot-bench instructions`: instructions per message of the hot path, counted by
//! `valgrind --tool=callgrind`, beside a decode-only baseline over the same messages.
//!
//! Times on a shared 2-vCPU VM move by tens of percent from run to run; instruction counts do
//! not. This counts, for one deterministic workload (the synthetic stream of the tick-to-trade
//! bench, unpaced, `--messages` messages, seed 1):
//!
//! - `decode`: the feed's decoder alone over the stream's messages (the baseline: what any
//!   engine must spend to read the venue's bytes);
//! - `pipeline_rtrb`: the fused pipeline (decode, book, features, the maker, risk, the FIX
//!   encoder, the journal appends) run on one thread to completion, rtrb rings between stages;
//!   the messages are made beforehand (generating one costs more than the engine's work on it);
//! - `pipeline_std_mpsc`: the same with `std::sync::mpsc` channels (the ring baseline).
//!
//! Each workload runs in a child process of this binary under callgrind, which counts only
//! inside one never-inlined function per workload (`--toggle-collect`), so that setup (the
//! journal's creation, the messages' generation) is not counted. `pipeline - decode` is what
//! the engine spends past reading the bytes, the figure issue 19's stages add up to.
//! Needs `valgrind` (Debian's package).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use levibot_engine::pipeline::Pipeline;
use levibot_engine::pipeline::reference::{self, SYNTHETIC_MID_TICKS};
use levibot_engine::pipeline::venue::AckVenue;
use levibot_engine::ring::{Rings, Rtrb, StdChannel};
use levibot_engine::strategy::maker::Maker;
use levibot_gateway::binance::Decoder;
use levibot_gateway::capture::real_or_testdata;
use levibot_gateway::source::{MessageSource, OwnedSnapshot, Polled, SyntheticSource};
use levibot_shm::counters::CountersWriter;
use levibot_shm::{Journal, JournalConfig, RetentionPolicy};

use crate::scratch::ScratchDir;

/// Large enough that a run of up to `MESSAGES_MAX` messages never rolls over (no maintenance
/// thread runs under callgrind).
const SEGMENT_SIZE: usize = 1 << 30;
const MESSAGES_MAX: u64 = 1_000_000;

#[derive(Args, Debug, Clone)]
pub struct InstructionsArgs {
    /// Messages of the synthetic stream (one depthUpdate and one bookTicker a step, an
    /// aggTrade every fourth).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Where the runs' journals go (default: a fresh directory under /dev/shm or the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Internal: run one workload (under callgrind, started by this command).
    #[arg(long, hide = true)]
    child: Option<Workload>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    #[value(name = "decode")]
    Decode,
    #[value(name = "pipeline_rtrb")]
    PipelineRtrb,
    #[value(name = "pipeline_std_mpsc")]
    PipelineStdMpsc,
}

impl Workload {
    const ALL: [Workload; 3] = [
        Workload::Decode,
        Workload::PipelineRtrb,
        Workload::PipelineStdMpsc,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Decode => "decode",
            Workload::PipelineRtrb => "pipeline_rtrb",
            Workload::PipelineStdMpsc => "pipeline_std_mpsc",
        }
    }

    /// The function callgrind counts inside.
    fn counted(self) -> &'static str {
        match self {
            Workload::Decode => "levibot_bench::instructions::counted_decode",
            Workload::PipelineRtrb | Workload::PipelineStdMpsc => {
                "levibot_bench::instructions::counted_pipeline*"
            }
        }
    }
}

pub fn run(args: &InstructionsArgs) -> Result<()> {
    if !(1..=MESSAGES_MAX).contains(&args.messages) {
        bail!("--messages must be in 1..={MESSAGES_MAX}");
    }
    if let Some(workload) = args.child {
        let dir = args.dir.as_deref().context("--child needs --dir")?;
        return run_child(workload, args.messages, dir);
    }
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|o| o.status.success()) {
        bail!("valgrind is not installed (Debian: apt-get install valgrind)");
    }
    let exe = std::env::current_exe().context("this binary's path")?;
    let scratch = ScratchDir::create(args.dir.as_deref())?;
    let mut counted = Vec::new();
    for workload in Workload::ALL {
        eprintln!(
            "levibot-bench instructions: {} under callgrind...",
            workload.name()
        );
        let instructions = scratch.with_dir(workload.name(), |dir| {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let out = dir.join("callgrind.out");
            let run = Command::new("valgrind")
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(format!("--toggle-collect={}", workload.counted()))
                .arg(&exe)
                .args(["instructions", "--child", workload.name(), "--messages"])
                .arg(args.messages.to_string())
                .arg("--dir")
                .arg(dir)
                .output()
                .context("running valgrind")?;
            if !run.status.success() {
                bail!(
                    "{} under callgrind failed: {}",
                    workload.name(),
                    String::from_utf8_lossy(&run.stderr)
                );
            }
            let text = std::fs::read_to_string(&out)
                .with_context(|| format!("reading {}", out.display()))?;
            callgrind_total(&text).with_context(|| format!("{}: no totals", out.display()))
        })?;
        counted.push((workload, instructions));
    }
    scratch.remove()?;
    let per_message = |w: Workload| {
        counted
            .iter()
            .find(|(k, _)| *k == w)
            .map_or(0.0, |(_, n)| *n as f64 / args.messages as f64)
    };
    let decode = per_message(Workload::Decode);
    println!(
        "instructions a message, {} synthetic messages (callgrind):",
        args.messages
    );
    for (workload, total) in &counted {
        println!(
            "  {:<20} {:>14} instructions  {:>8.0} a message",
            workload.name(),
            total,
            per_message(*workload)
        );
    }
    let engine = per_message(Workload::PipelineRtrb) - decode;
    println!("  past decoding (pipeline_rtrb - decode): {engine:.0} a message");
    if args.json {
        let mut workloads = serde_json::Map::new();
        for (workload, total) in &counted {
            workloads.insert(
                workload.name().to_owned(),
                json!({"instructions": total, "per_message": per_message(*workload).round()}),
            );
        }
        println!(
            "{}",
            json!({
                "bench": "instructions",
                "messages": args.messages,
                "workloads": workloads,
                "pipeline_rtrb_past_decode_per_message": engine.round(),
            })
        );
    }
    Ok(())
}

/// The total a callgrind output file gives (`summary:` or `totals:` line, first event).
fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// One workload, in this process (the child under callgrind).
fn run_child(workload: Workload, messages: u64, dir: &Path) -> Result<()> {
    let found = real_or_testdata().context("loading the recording")?;
    let (instruments, instrument, _) = reference::recording_parts(&found.recording)?;
    let journal = Journal::open(&JournalConfig {
        dir: dir.to_owned(),
        segment_size: SEGMENT_SIZE,
        prefault: true,
        retention: RetentionPolicy::keep_all(),
    })
    .context("opening the run's journal")?;
    let calibration = journal.calibration();
    let source = SyntheticSource::new(
        &instrument,
        SYNTHETIC_MID_TICKS,
        messages,
        1,
        None,
        &calibration,
    )?;
    // Made now, not counted: generating a message (formatting its decimals) costs more than
    // the engine's whole work on it.
    let snapshot = source.snapshot();
    let mut source = source;
    let mut made = Vec::with_capacity(messages as usize);
    while let Polled::Message { bytes, .. } = source.poll(0) {
        made.push(bytes.to_vec());
    }
    let prepared = Prepared {
        messages: made,
        next: 0,
    };
    match workload {
        Workload::Decode => {
            let mut decoder = Decoder::new(instruments);
            let decoded = counted_decode(&mut decoder, &prepared.messages);
            std::hint::black_box(decoded);
        }
        Workload::PipelineRtrb => {
            pipeline::<Rtrb>(instruments, &instrument, snapshot, prepared, &journal, dir)?
        }
        Workload::PipelineStdMpsc => {
            pipeline::<StdChannel>(instruments, &instrument, snapshot, prepared, &journal, dir)?
        }
    }
    Ok(())
}

/// The stream's messages, made beforehand, handed out one a poll.
struct Prepared {
    messages: Vec<Vec<u8>>,
    next: usize,
}

impl MessageSource for Prepared {
    fn poll(&mut self, now_tsc: u64) -> Polled<'_> {
        match self.messages.get(self.next) {
            Some(bytes) => {
                self.next += 1;
                Polled::Message {
                    bytes,
                    due_tsc: now_tsc,
                }
            }
            None => Polled::Done,
        }
    }
}

fn pipeline<R: Rings>(
    instruments: levibot_gateway::instrument::InstrumentTable,
    instrument: &levibot_gateway::instrument::Instrument,
    snapshot: OwnedSnapshot,
    source: Prepared,
    journal: &Journal,
    dir: &Path,
) -> Result<()> {
    let spec = reference::maker_spec(instruments, instrument, snapshot)?;
    let counters = CountersWriter::create(dir.join("counters.lvc"), 256, journal.epoch())
        .context("creating the run's counters")?;
    let venue = spec.ack_venue().context("the venue's FIX encoder")?;
    let (mut pipeline, _controls) =
        Pipeline::<_, Maker, AckVenue, R>::assemble(spec, source, venue, journal, &counters, true)?;
    counted_pipeline(&mut pipeline);
    Ok(())
}

/// What callgrind counts for `decode`: every message decoded once.
#[inline(never)]
pub fn counted_decode(decoder: &mut Decoder, messages: &[Vec<u8>]) -> usize {
    messages
        .iter()
        .filter(|m| decoder.decode(m, 0).is_ok())
        .count()
}

/// What callgrind counts for the pipelines: the fused duty cycle until the source is done.
#[inline(never)]
pub fn counted_pipeline<Src: MessageSource + 'static, R: Rings>(
    pipeline: &mut Pipeline<Src, Maker, AckVenue, R>,
) {
    pipeline.run_to_completion();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_a_callgrind_file() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=main\n5 10\n\
                    summary: 736206018\ntotals: 736206018\n";
        assert_eq!(callgrind_total(text), Some(736_206_018));
        assert_eq!(callgrind_total("totals: 12 3\n"), Some(12));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }
}
