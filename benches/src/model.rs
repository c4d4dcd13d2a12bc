//! `levibot-bench model`: the cost per event of a gradient-boosted tree model
//! (`levibot_model::TreeModel::predict`), beside the `signal` strategy's vote today, a dot
//! product of four weights and four features, in the same run.
//!
//! The model is generated (`levibot_model::synthetic`: by default 100 full trees of depth 6 on
//! the six features, `--trees` and `--depth` for others; binary:logistic, a fixed seed) unless
//! `--model` names a file of XGBoost's JSON on the same six features. The events are rows of the six features drawn from a fixed seed,
//! one value in twelve missing; each implementation is timed on every event of every pass
//! ([`crate::per_call`]). One hot thread.
//!
//! After the timing, each implementation also runs one untimed pass over the events in a
//! function of its own that is never inlined ([`instructions_tree_model`],
//! [`instructions_linear_vote`]), so that `valgrind --tool=callgrind --toggle-collect=...`
//! can count its instructions per event (docs/benchmarks.md); the VM here has no hardware
//! counters for `perf`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use levibot_model::synthetic::{
    FEATURES, MISSING_ONE_IN, SyntheticModel, feature_rows, model_json,
};
use levibot_model::{Objective, TreeModel};
use quanta::Clock;
use serde_json::{Value, json};

use crate::per_call::{Measured, Passes, Timer, timer_overhead};
use crate::report::{LatencySummary, MachineInfo, clock_resolution_ns, round3};

/// The generated model's seed.
const MODEL_SEED: u64 = 17;
const EVENTS_SEED: u64 = 29;
/// The linear vote's weights (any finite values do; `black_box`ed so none is folded away).
const WEIGHTS: [f64; 4] = [0.8, 0.5, -0.3, 0.4];

#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Timed passes over the events (every event is timed once per pass, by each
    /// implementation). Each round of passes comes after an untimed warm-up of a fifth as many.
    #[arg(
        long,
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(10..=10_000_000)
    )]
    iterations: u64,
    /// Events: rows of the six features, drawn from a fixed seed.
    #[arg(
        long,
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    events: u64,
    /// Trees of the generated model.
    #[arg(
        long,
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=levibot_model::TREES_MAX as u64)
    )]
    trees: u64,
    /// Depth of every tree of the generated model (full trees).
    #[arg(
        long,
        default_value_t = 6,
        value_parser = clap::value_parser!(u64).range(1..=12)
    )]
    depth: u64,
    /// A model saved by XGBoost (`Booster.save_model("model.json")`) whose features are
    /// microprice_premium, top_imbalance, ewma_mid_gap, atr, trade_flow_imbalance, momentum,
    /// instead of the generated one.
    #[arg(long, conflicts_with_all = ["trees", "depth"])]
    model: Option<PathBuf>,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Implementation {
    TreeModel,
    LinearVote,
}

impl Implementation {
    const ALL: [Implementation; 2] = [Implementation::TreeModel, Implementation::LinearVote];

    fn json_key(self) -> &'static str {
        match self {
            Implementation::TreeModel => "tree_model",
            Implementation::LinearVote => "linear_vote",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Implementation::TreeModel => "tree model: TreeModel::predict",
            Implementation::LinearVote => "linear vote: 4 weights (baseline)",
        }
    }
}

/// `signal`'s vote today: the weighted sum of four features.
#[inline]
fn linear_vote(weights: &[f64; 4], event: &[f64; 6]) -> f64 {
    event[..4].iter().zip(weights).map(|(x, w)| x * w).sum()
}

/// One untimed pass of the model over `events`, never inlined: what callgrind counts.
#[inline(never)]
pub fn instructions_tree_model(model: &TreeModel, events: &[[f64; 6]]) -> f64 {
    events.iter().map(|e| model.predict(black_box(e))).sum()
}

/// One untimed pass of the linear vote over `events`, never inlined: what callgrind counts.
#[inline(never)]
pub fn instructions_linear_vote(weights: &[f64; 4], events: &[[f64; 6]]) -> f64 {
    events
        .iter()
        .map(|e| linear_vote(weights, black_box(e)))
        .sum()
}

/// Where the model came from, and what it is.
struct ModelInfo {
    source: String,
    bytes: usize,
    load_ms: f64,
    trees: usize,
    nodes: usize,
    depth_max: usize,
    node_visits_max: usize,
    objective: Objective,
}

fn load_model(args: &ModelArgs) -> Result<(TreeModel, ModelInfo)> {
    let (text, source) = match &args.model {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            model_json(&SyntheticModel {
                features: &FEATURES,
                trees: args.trees as usize,
                depth: args.depth as usize,
                objective: Objective::BinaryLogistic,
                base_score: 0.5,
                seed: MODEL_SEED,
            })
            .into_bytes(),
            "generated".to_owned(),
        ),
    };
    let started = Instant::now();
    let model = TreeModel::from_json(&text, &FEATURES).with_context(|| source.clone())?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let info = ModelInfo {
        source,
        bytes: text.len(),
        load_ms,
        trees: model.trees(),
        nodes: model.nodes(),
        depth_max: model.depth_max(),
        node_visits_max: model.node_visits_max(),
        objective: model.objective(),
    };
    Ok((model, info))
}

struct Figures {
    machine: MachineInfo,
    model: ModelInfo,
    events: usize,
    events_missing: usize,
    iterations: u64,
    clock_resolution_ns: u64,
    timer_overhead: LatencySummary,
    measured: Vec<(Implementation, LatencySummary, f64)>,
}

pub fn run(args: &ModelArgs) -> Result<()> {
    let machine = MachineInfo::detect();
    let clock = Clock::new();
    progress("loading the model");
    let (model, model_info) = load_model(args)?;
    let events = feature_rows::<6>(EVENTS_SEED, args.events as usize);
    let weights = black_box(WEIGHTS);
    for event in &events {
        let p = model.predict(event);
        ensure!(p.is_finite(), "the model predicts {p} for {event:?}");
    }

    progress("timer overhead");
    let clock_resolution_ns = clock_resolution_ns(&clock);
    let passes = Passes::new(args.iterations);
    let timer_overhead = timer_overhead(&clock, passes, &events)?;

    progress(&format!(
        "{} events, {} passes, {} and {}",
        events.len(),
        passes.timed,
        Implementation::TreeModel.label(),
        Implementation::LinearVote.label()
    ));
    let mut measured = Implementation::ALL
        .iter()
        .map(|_| Measured::new())
        .collect::<Result<Vec<_>>>()?;
    for round in 0..passes.rounds {
        for (&implementation, measured) in Implementation::ALL.iter().zip(&mut measured) {
            let mut timer = Timer {
                clock: &clock,
                passes,
                round,
                measured,
            };
            // Each arm its own monomorphised loop: no dynamic call inside the timed region.
            match implementation {
                Implementation::TreeModel => timer.round(&events, |e| {
                    black_box(model.predict(e));
                    Ok(())
                })?,
                Implementation::LinearVote => timer.round(&events, |e| {
                    black_box(linear_vote(&weights, e));
                    Ok(())
                })?,
            }
        }
    }
    black_box(instructions_tree_model(&model, &events));
    black_box(instructions_linear_vote(&weights, &events));

    let figures = Figures {
        machine,
        model: model_info,
        events_missing: events.iter().flatten().filter(|x| x.is_nan()).count(),
        events: events.len(),
        iterations: args.iterations,
        clock_resolution_ns,
        timer_overhead,
        measured: Implementation::ALL
            .iter()
            .zip(&measured)
            .map(|(&i, m)| (i, m.latency(), m.batch_ns_per_call()))
            .collect(),
    };
    print!("{}", figures.table());
    if args.json {
        println!("{}", figures.to_json());
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("levibot-bench model: {what} ...");
}

impl Figures {
    fn get(&self, implementation: Implementation) -> (LatencySummary, f64) {
        self.measured
            .iter()
            .find_map(|&(i, l, b)| (i == implementation).then_some((l, b)))
            .expect("every implementation is measured")
    }

    /// The tree model's p50 over the linear vote's, and the same for the batch means.
    fn ratios(&self) -> (f64, f64) {
        let (tree, tree_batch) = self.get(Implementation::TreeModel);
        let (linear, linear_batch) = self.get(Implementation::LinearVote);
        (
            tree.latency_ns_p50 as f64 / linear.latency_ns_p50.max(1) as f64,
            tree_batch / linear_batch.max(f64::MIN_POSITIVE),
        )
    }

    fn model_line(&self) -> String {
        let m = &self.model;
        format!(
            "model: {} ({} bytes, loaded in {:.1} ms): {} trees, {} nodes, depth {}, at most {} splits a prediction, {}",
            m.source,
            m.bytes,
            m.load_ms,
            m.trees,
            m.nodes,
            m.depth_max,
            m.node_visits_max,
            m.objective.name()
        )
    }

    fn table(&self) -> String {
        let passes = Passes::new(self.iterations);
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "levibot-bench model: each event timed on its own, {} passes over {} events in {} rounds (+{} warm-up passes)",
            self.iterations,
            self.events,
            passes.rounds,
            passes.warmup_total()
        ));
        line(self.model_line());
        line(format!(
            "events: the six features drawn from seed {EVENTS_SEED}, {} of {} values missing (one in {MISSING_ONE_IN})",
            self.events_missing,
            self.events * FEATURES.len()
        ));
        line(self.machine.summary_line());
        line(format!(
            "clock: ticks every {} ns; two reads with nothing between (in every latency below): p50 {} ns, p99 {} ns",
            self.clock_resolution_ns,
            self.timer_overhead.latency_ns_p50,
            self.timer_overhead.latency_ns_p99
        ));
        line("batch: whole passes timed as one, ns per event (no clock reads inside); x linear: p50 over the linear vote's p50 (batch over batch)".to_owned());
        line(String::new());
        line(format!(
            "{:<40} {:>7} {:>7} {:>9} {:>9} {:>9} {:>15}",
            "ns per event", "p50", "p99", "p99.9", "mean", "batch", "x linear"
        ));
        let (p50_ratio, batch_ratio) = self.ratios();
        for &(implementation, l, batch) in &self.measured {
            let ratio = match implementation {
                Implementation::TreeModel => format!("{p50_ratio:.1} ({batch_ratio:.1})"),
                Implementation::LinearVote => "1.0".to_owned(),
            };
            line(format!(
                "  {:<38} {:>7} {:>7} {:>9} {:>9.1} {:>9.1} {:>15}",
                implementation.label(),
                l.latency_ns_p50,
                l.latency_ns_p99,
                l.latency_ns_p999,
                l.latency_ns_mean,
                batch,
                ratio
            ));
        }
        out
    }

    fn to_json(&self) -> Value {
        let m = &self.model;
        let (p50_ratio, batch_ratio) = self.ratios();
        let mut value = json!({
            "benchmark": "model",
            "iterations": self.iterations,
            "rounds": Passes::new(self.iterations).rounds,
            "events": self.events,
            "events_missing_values": self.events_missing,
            "model": {
                "source": m.source,
                "bytes": m.bytes,
                "load_ms": round3(m.load_ms),
                "trees": m.trees,
                "nodes": m.nodes,
                "depth_max": m.depth_max,
                "node_visits_max": m.node_visits_max,
                "objective": m.objective.name(),
            },
            "machine": self.machine.to_json(),
            "clock_resolution_ns": self.clock_resolution_ns,
            "timer_overhead": self.timer_overhead.to_json(),
            "tree_model_p50_over_linear": round3(p50_ratio),
            "tree_model_batch_over_linear": round3(batch_ratio),
        });
        for &(implementation, latency, batch) in &self.measured {
            let mut figures = latency.to_json();
            figures["batch_ns_per_event"] = json!(round3(batch));
            value[implementation.json_key()] = figures;
        }
        value
    }
}
