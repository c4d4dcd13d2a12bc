//! `levibot-bench decode`: per-message latency of the Binance market-data decoder on the corpus
//! recordings, by message type, beside `serde_json` and `sonic-rs` baselines that produce the
//! same records (see [`baseline`]).
//!
//! Implementations, each timed on every corpus message of a type:
//!
//! - ours: `Decoder::decode` (the byte scanner, with the simd-json path as fallback; every corpus
//!   message takes the scanner, which is checked), and `Decoder::decode_snapshot` for the REST
//!   depth snapshots;
//! - ours, general path only: `Decoder::decode_general` (simd-json with reused buffers; there is
//!   no public general-only snapshot call, so snapshots have no such row);
//! - `serde_json::from_slice` into serde-derived structs, then the same conversion;
//! - `sonic_rs::from_slice` into the same structs, then the same conversion.
//!
//! Before any timing, every implementation decodes every message and must produce the same
//! records as ours. Single-threaded: one hot thread.

mod baseline;

use std::hint::black_box;
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use levibot_gateway::binance::{Decoder, MarketEvent};
use levibot_gateway::capture::real_or_testdata;
use levibot_gateway::instrument::InstrumentTable;
use quanta::Clock;
use serde_json::{Value, json};

use crate::per_call::{Measured, Passes, Timer, timer_overhead};
use crate::report::{LatencySummary, MachineInfo, clock_resolution_ns, round3};
use baseline::{Baseline, SerdeJson, SonicRs};

/// The receive stamp every decoder is given: any value does, as long as all get the same.
const RECV_TSC: u64 = 7;
/// Snapshots are 100-300 times bigger than stream messages: this many times fewer passes.
const SNAPSHOT_PASS_DIVISOR: u64 = 20;

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Timed passes over the corpus messages of each type (every message is timed once per pass;
    /// REST snapshots get a twentieth as many passes, at least 10). Each round of passes comes
    /// after an untimed warm-up of a fifth as many.
    #[arg(
        long,
        default_value_t = 20_000,
        value_parser = clap::value_parser!(u64).range(10..=10_000_000)
    )]
    iterations: u64,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// The message types timed, each a group of corpus messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BookTicker,
    DepthUpdate,
    AggTrade,
    Snapshot,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::BookTicker,
        Kind::DepthUpdate,
        Kind::AggTrade,
        Kind::Snapshot,
    ];

    fn json_key(self) -> &'static str {
        match self {
            Kind::BookTicker => "book_ticker",
            Kind::DepthUpdate => "depth_update",
            Kind::AggTrade => "agg_trade",
            Kind::Snapshot => "depth_snapshot",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::BookTicker => "bookTicker",
            Kind::DepthUpdate => "depthUpdate",
            Kind::AggTrade => "aggTrade",
            Kind::Snapshot => "REST depth snapshot",
        }
    }

    fn implementations(self) -> &'static [Implementation] {
        match self {
            Kind::Snapshot => &[
                Implementation::Ours,
                Implementation::SerdeJson,
                Implementation::SonicRs,
            ],
            _ => &Implementation::ALL,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Implementation {
    Ours,
    OursGeneral,
    SerdeJson,
    SonicRs,
}

impl Implementation {
    const ALL: [Implementation; 4] = [
        Implementation::Ours,
        Implementation::OursGeneral,
        Implementation::SerdeJson,
        Implementation::SonicRs,
    ];

    fn json_key(self) -> &'static str {
        match self {
            Implementation::Ours => "ours",
            Implementation::OursGeneral => "ours_general",
            Implementation::SerdeJson => "serde_json",
            Implementation::SonicRs => "sonic_rs",
        }
    }

    fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Implementation::Ours, Kind::Snapshot) => "ours: Decoder::decode_snapshot",
            (Implementation::Ours, _) => "ours: Decoder::decode (scanner)",
            (Implementation::OursGeneral, _) => "ours: Decoder::decode_general (simd-json)",
            (Implementation::SerdeJson, _) => "serde_json::from_slice + parse_units",
            (Implementation::SonicRs, _) => "sonic_rs::from_slice + parse_units",
        }
    }
}

/// One corpus message.
struct Message {
    body: Vec<u8>,
    /// The instrument of a REST snapshot (its URL names it); unused for stream messages.
    instrument_id: u32,
}

struct Group {
    kind: Kind,
    messages: Vec<Message>,
}

impl Group {
    fn mean_bytes(&self) -> f64 {
        let total: usize = self.messages.iter().map(|m| m.body.len()).sum();
        total as f64 / self.messages.len() as f64
    }
}

struct Corpus {
    dir: PathBuf,
    /// Which recording: the real one, or the repository's synthetic one.
    source: &'static str,
    instruments: InstrumentTable,
    /// One per [`Kind`], in the order of `Kind::ALL`: `groups[kind as usize]`.
    groups: Vec<Group>,
    /// Stream messages of other streams (the corpus has klines, which ours skips): not timed.
    untimed: usize,
}

impl Corpus {
    fn load() -> Result<Corpus> {
        let found = real_or_testdata().context("reading the recording")?;
        let (dir, source, corpus) = (found.dir.clone(), found.source(), found.recording);
        let instruments = corpus.snapshot_instruments()?;

        let mut groups: Vec<Group> = Kind::ALL
            .iter()
            .map(|&kind| Group {
                kind,
                messages: Vec::new(),
            })
            .collect();
        let mut untimed = 0;
        // Sorted by our decoder, which the agreement check then holds every baseline to.
        let mut decoder = Decoder::new(instruments.clone());
        for line in corpus.messages() {
            let line = line?;
            let kind = match decoder
                .decode(line.body, RECV_TSC)
                .with_context(|| format!("BINANCE.ws.1.0 line {}", line.line))?
            {
                MarketEvent::BookTicker(_) => Kind::BookTicker,
                MarketEvent::Depth(_) => Kind::DepthUpdate,
                MarketEvent::AggTrade(_) => Kind::AggTrade,
                MarketEvent::Trade(_) | MarketEvent::Skipped(_) => {
                    untimed += 1;
                    continue;
                }
            };
            groups[kind as usize].messages.push(Message {
                body: line.body.to_vec(),
                instrument_id: 0,
            });
        }
        for snapshot in corpus.snapshot_lines()? {
            let instrument = instruments
                .find(snapshot.symbol.as_bytes())
                .with_context(|| format!("snapshot of unknown symbol {}", snapshot.symbol))?;
            groups[Kind::Snapshot as usize].messages.push(Message {
                body: snapshot.line.body.to_vec(),
                instrument_id: instrument.id,
            });
        }
        for group in &groups {
            ensure!(
                !group.messages.is_empty(),
                "no {} message in the corpus at {}",
                group.kind.label(),
                dir.display()
            );
        }
        Ok(Corpus {
            dir,
            source,
            instruments,
            groups,
            untimed,
        })
    }
}

/// Every decoder under test, each with its own buffers.
struct Decoders {
    ours: Decoder,
    general: Decoder,
    serde_json: Baseline<SerdeJson>,
    sonic_rs: Baseline<SonicRs>,
}

impl Decoders {
    fn new(instruments: &InstrumentTable) -> Decoders {
        Decoders {
            ours: Decoder::new(instruments.clone()),
            general: Decoder::new(instruments.clone()),
            serde_json: Baseline::new(instruments.clone()),
            sonic_rs: Baseline::new(instruments.clone()),
        }
    }

    /// The correctness guard: every implementation decodes every message of every group to the
    /// same records as ours, and ours takes the scanner for every stream message.
    fn check_agreement(&mut self, groups: &[Group]) -> Result<()> {
        let stats_before = self.ours.stats();
        let mut stream_messages = 0;
        for group in groups {
            for (index, m) in group.messages.iter().enumerate() {
                let context = || format!("{} message {index}", group.kind.label());
                if group.kind == Kind::Snapshot {
                    let ours = self
                        .ours
                        .decode_snapshot(&m.body, m.instrument_id)
                        .with_context(context)?;
                    let serde_json = self
                        .serde_json
                        .snapshot(&m.body, m.instrument_id)
                        .with_context(context)?;
                    let sonic_rs = self
                        .sonic_rs
                        .snapshot(&m.body, m.instrument_id)
                        .with_context(context)?;
                    ensure!(
                        ours == serde_json && ours == sonic_rs,
                        "{}: the baselines disagree with ours",
                        context()
                    );
                    continue;
                }
                stream_messages += 1;
                let ours = self.ours.decode(&m.body, RECV_TSC).with_context(context)?;
                let general = self
                    .general
                    .decode_general(&m.body, RECV_TSC)
                    .with_context(context)?;
                let serde_json = baseline_event(&mut self.serde_json, group.kind, &m.body)
                    .with_context(context)?;
                let sonic_rs = baseline_event(&mut self.sonic_rs, group.kind, &m.body)
                    .with_context(context)?;
                ensure!(
                    general == ours && serde_json == ours && sonic_rs == ours,
                    "{}: not every implementation decodes it as ours does:\nours {ours:?}\ngeneral {general:?}\nserde_json {serde_json:?}\nsonic-rs {sonic_rs:?}",
                    context()
                );
            }
        }
        let fast = self.ours.stats().fast_path - stats_before.fast_path;
        ensure!(
            fast == stream_messages,
            "the scanner took {fast} of {stream_messages} stream messages"
        );
        Ok(())
    }

    /// One round of `implementation` on the messages of `group`. Each arm is its own
    /// monomorphised loop: no dynamic call inside the timed region.
    fn round(
        &mut self,
        implementation: Implementation,
        group: &Group,
        timer: &mut Timer<'_>,
    ) -> Result<()> {
        use Implementation as I;
        let messages = &group.messages;
        match (implementation, group.kind) {
            (I::Ours, Kind::Snapshot) => timer.round(messages, |m| {
                let snapshot = self.ours.decode_snapshot(&m.body, m.instrument_id);
                black_box(snapshot).map(drop).map_err(Into::into)
            }),
            (I::Ours, _) => timer.round(messages, |m| {
                let event = self.ours.decode(&m.body, RECV_TSC);
                black_box(event).map(drop).map_err(Into::into)
            }),
            (I::OursGeneral, Kind::Snapshot) => bail!("no general-only snapshot decoder"),
            (I::OursGeneral, _) => timer.round(messages, |m| {
                let event = self.general.decode_general(&m.body, RECV_TSC);
                black_box(event).map(drop).map_err(Into::into)
            }),
            (I::SerdeJson, kind) => baseline_round(&mut self.serde_json, kind, messages, timer),
            (I::SonicRs, kind) => baseline_round(&mut self.sonic_rs, kind, messages, timer),
        }
    }
}

/// A baseline's records for one stream message, as our decoder returns them.
fn baseline_event<'b, P: baseline::JsonParser>(
    baseline: &'b mut Baseline<P>,
    kind: Kind,
    body: &[u8],
) -> Result<MarketEvent<'b>> {
    Ok(match kind {
        Kind::BookTicker => MarketEvent::BookTicker(baseline.book_ticker(body, RECV_TSC)?),
        Kind::DepthUpdate => MarketEvent::Depth(baseline.depth_update(body, RECV_TSC)?),
        Kind::AggTrade => MarketEvent::AggTrade(baseline.agg_trade(body, RECV_TSC)?),
        Kind::Snapshot => bail!("a snapshot is not a stream message"),
    })
}

fn baseline_round<P: baseline::JsonParser>(
    baseline: &mut Baseline<P>,
    kind: Kind,
    messages: &[Message],
    timer: &mut Timer<'_>,
) -> Result<()> {
    match kind {
        Kind::BookTicker => timer.round(messages, |m| {
            black_box(baseline.book_ticker(&m.body, RECV_TSC)).map(drop)
        }),
        Kind::DepthUpdate => timer.round(messages, |m| {
            black_box(baseline.depth_update(&m.body, RECV_TSC)).map(drop)
        }),
        Kind::AggTrade => timer.round(messages, |m| {
            black_box(baseline.agg_trade(&m.body, RECV_TSC)).map(drop)
        }),
        Kind::Snapshot => timer.round(messages, |m| {
            black_box(baseline.snapshot(&m.body, m.instrument_id)).map(drop)
        }),
    }
}

/// One implementation's figures on one message type.
#[derive(Clone, Copy, Debug)]
struct ImplementationFigures {
    latency: LatencySummary,
    batch_ns_per_message: f64,
}

impl ImplementationFigures {
    fn of(measured: &Measured) -> ImplementationFigures {
        ImplementationFigures {
            latency: measured.latency(),
            batch_ns_per_message: measured.batch_ns_per_call(),
        }
    }

    fn to_json(self) -> Value {
        let mut value = self.latency.to_json();
        value["batch_ns_per_message"] = json!(round3(self.batch_ns_per_message));
        value
    }
}

/// Every implementation's figures on one message type.
struct GroupFigures {
    kind: Kind,
    messages: usize,
    mean_message_bytes: f64,
    passes: Passes,
    implementations: Vec<(Implementation, ImplementationFigures)>,
}

impl GroupFigures {
    fn get(&self, implementation: Implementation) -> Option<&ImplementationFigures> {
        self.implementations
            .iter()
            .find_map(|(i, f)| (*i == implementation).then_some(f))
    }

    /// `implementation`'s p50 over ours, and the same for the batch means.
    fn ratios(&self, implementation: Implementation) -> Option<(f64, f64)> {
        let ours = self.get(Implementation::Ours)?;
        let other = self.get(implementation)?;
        Some((
            other.latency.latency_ns_p50 as f64 / ours.latency.latency_ns_p50.max(1) as f64,
            other.batch_ns_per_message / ours.batch_ns_per_message.max(f64::MIN_POSITIVE),
        ))
    }
}

struct Figures {
    machine: MachineInfo,
    corpus_dir: PathBuf,
    data_source: &'static str,
    untimed_messages: usize,
    iterations: u64,
    clock_resolution_ns: u64,
    timer_overhead: LatencySummary,
    groups: Vec<GroupFigures>,
}

pub fn run(args: &DecodeArgs) -> Result<()> {
    let machine = MachineInfo::detect();
    let clock = Clock::new();
    progress("loading the corpus");
    let corpus = Corpus::load()?;
    let mut decoders = Decoders::new(&corpus.instruments);
    progress("checking that every implementation decodes the corpus to the same records");
    decoders.check_agreement(&corpus.groups)?;

    progress("timer overhead");
    let clock_resolution_ns = clock_resolution_ns(&clock);
    let book_tickers = &corpus.groups[Kind::BookTicker as usize];
    let stream_passes = Passes::new(args.iterations);
    let timer_overhead = timer_overhead(&clock, stream_passes, &book_tickers.messages)?;

    let mut groups = Vec::new();
    for group in &corpus.groups {
        let passes = match group.kind {
            Kind::Snapshot => Passes::new((args.iterations / SNAPSHOT_PASS_DIVISOR).max(10)),
            _ => stream_passes,
        };
        progress(&format!(
            "{} ({} messages, {} passes)",
            group.kind.label(),
            group.messages.len(),
            passes.timed
        ));
        let implementations = group.kind.implementations();
        let mut measured = implementations
            .iter()
            .map(|_| Measured::new())
            .collect::<Result<Vec<_>>>()?;
        for round in 0..passes.rounds {
            for (&implementation, measured) in implementations.iter().zip(&mut measured) {
                let mut timer = Timer {
                    clock: &clock,
                    passes,
                    round,
                    measured,
                };
                decoders
                    .round(implementation, group, &mut timer)
                    .with_context(|| format!("{implementation:?} on {}", group.kind.label()))?;
            }
        }
        groups.push(GroupFigures {
            kind: group.kind,
            messages: group.messages.len(),
            mean_message_bytes: group.mean_bytes(),
            passes,
            implementations: implementations
                .iter()
                .zip(&measured)
                .map(|(&i, m)| (i, ImplementationFigures::of(m)))
                .collect(),
        });
    }

    let figures = Figures {
        machine,
        corpus_dir: corpus.dir,
        data_source: corpus.source,
        untimed_messages: corpus.untimed,
        iterations: args.iterations,
        clock_resolution_ns,
        timer_overhead,
        groups,
    };
    print!("{}", figures.table());
    if args.json {
        println!("{}", figures.to_json());
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("levibot-bench decode: {what} ...");
}

impl Figures {
    fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let stream = Passes::new(self.iterations);
        line(format!(
            "levibot-bench decode: each message timed on its own, {} passes over each type's messages in {} rounds (+{} warm-up passes); snapshots {} passes",
            self.iterations,
            stream.rounds,
            stream.warmup_total(),
            self.groups
                .iter()
                .find(|g| g.kind == Kind::Snapshot)
                .map_or(0, |g| g.passes.timed)
        ));
        line(format!(
            "data: {}, {} ({} messages of other streams not timed); every implementation decoded every message to the same records as ours",
            self.data_source,
            self.corpus_dir.display(),
            self.untimed_messages
        ));
        line(m.summary_line());
        line(format!(
            "clock: ticks every {} ns; two reads with nothing between (in every latency below): p50 {} ns, p99 {} ns",
            self.clock_resolution_ns,
            self.timer_overhead.latency_ns_p50,
            self.timer_overhead.latency_ns_p99
        ));
        line("batch: whole passes timed as one, ns per message (no clock reads inside); x ours: p50 over ours' p50 (batch over batch)".to_owned());
        for group in &self.groups {
            line(String::new());
            let title = format!(
                "{} ({} messages, mean {:.0} B)",
                group.kind.label(),
                group.messages,
                group.mean_message_bytes
            );
            line(format!(
                "{title:<46} {:>7} {:>7} {:>9} {:>9} {:>9} {:>15}",
                "p50", "p99", "p99.9", "mean", "batch", "x ours"
            ));
            for (implementation, f) in &group.implementations {
                let l = &f.latency;
                let ratio = group
                    .ratios(*implementation)
                    .map(|(p50, batch)| format!("{p50:.2} ({batch:.2})"))
                    .unwrap_or_default();
                line(format!(
                    "  {:<44} {:>7} {:>7} {:>9} {:>9.1} {:>9.1} {:>15}",
                    implementation.label(group.kind),
                    l.latency_ns_p50,
                    l.latency_ns_p99,
                    l.latency_ns_p999,
                    l.latency_ns_mean,
                    f.batch_ns_per_message,
                    ratio
                ));
            }
        }
        out
    }

    fn to_json(&self) -> Value {
        let types: serde_json::Map<String, Value> = self
            .groups
            .iter()
            .map(|g| {
                let mut value = json!({
                    "messages": g.messages,
                    "mean_message_bytes": round3(g.mean_message_bytes),
                    "passes": g.passes.timed,
                    "warmup_passes": g.passes.warmup_total(),
                });
                for (implementation, figures) in &g.implementations {
                    value[implementation.json_key()] = figures.to_json();
                }
                for other in [Implementation::SerdeJson, Implementation::SonicRs] {
                    if let Some((p50, batch)) = g.ratios(other) {
                        value[format!("{}_p50_over_ours", other.json_key())] = json!(round3(p50));
                        value[format!("{}_batch_over_ours", other.json_key())] =
                            json!(round3(batch));
                    }
                }
                (g.kind.json_key().to_owned(), value)
            })
            .collect();
        json!({
            "benchmark": "decode",
            "iterations": self.iterations,
            "rounds": Passes::new(self.iterations).rounds,
            "corpus_dir": self.corpus_dir.display().to_string(),
            "data": { "source": self.data_source, "dir": self.corpus_dir.display().to_string() },
            "untimed_messages": self.untimed_messages,
            "machine": self.machine.to_json(),
            "clock_resolution_ns": self.clock_resolution_ns,
            "timer_overhead": self.timer_overhead.to_json(),
            "types": types,
        })
    }
}
