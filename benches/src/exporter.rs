//! `levibot-bench exporter`: does the metrics sidecar slow the hot path? The fused pipeline
//! runs the paced synthetic stream twice in one invocation: alone (the baseline), then with a
//! real `levibot-exporter` process following the same journal and counters while a client
//! scrapes `/metrics` `--scrape-rate` times a second. Tick-to-trade and every stage's
//! percentiles come from the journal, as in `tick-to-trade`.
//!
//! The exporter is the release binary beside this one (`cargo build --release --bin
//! levibot-exporter`), a separate process as in production: what it costs the daemon is what
//! it takes from the machine (a core, caches, memory bandwidth), not a lock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use levibot_engine::pipeline::FeatureCadence;
use levibot_engine::ring::Rtrb;
use levibot_gateway::capture::Recording;
use serde_json::json;

use crate::report::MachineInfo;
use crate::scratch::ScratchDir;
use crate::tick_to_trade::{
    self, IdleArg, LayoutArg, Run, STAGES, SourceKind, TickToTradeArgs, progress, run_pipeline,
};

#[derive(Args, Debug)]
pub struct ExporterArgs {
    /// Scrapes of /metrics a second while the exporter runs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    scrape_rate: u64,
    /// Messages a second of the paced synthetic stream.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: u64,
    /// Seconds of stream per run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seed of the synthetic stream.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The exporter binary (default: `levibot-exporter` beside this binary).
    #[arg(long)]
    exporter: Option<PathBuf>,
    /// Where to put the scratch journals (default /dev/shm).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also print every figure as one JSON object, on the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// A running exporter and its scraper; stopped when dropped.
struct Scraped {
    exporter: Child,
    stop: Arc<AtomicBool>,
    scraper: Option<JoinHandle<()>>,
}

impl Drop for Scraped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(scraper) = self.scraper.take() {
            let _ = scraper.join();
        }
        let _ = self.exporter.kill();
        let _ = self.exporter.wait();
    }
}

/// Scrapes done and failed, shared with the scraper thread.
#[derive(Default)]
struct ScrapeCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

fn scrape(addr: SocketAddr) -> Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::with_capacity(64 << 10);
    stream.read_to_end(&mut response)?;
    if !response.starts_with(b"HTTP/1.1 200") {
        bail!("not 200");
    }
    Ok(response.len())
}

/// Starts the exporter on `dir` and a client scraping it `rate` times a second.
fn start_scraped(
    exporter: &Path,
    dir: &Path,
    rate: u64,
    counts: &Arc<ScrapeCounts>,
) -> Result<Scraped> {
    let mut child = Command::new(exporter)
        .arg("--journal")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it: cargo build --release --bin levibot-exporter)",
                exporter.display()
            )
        })?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("the exporter's stdout")?).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .with_context(|| format!("the exporter said {line:?}"))?
        .parse()?;
    let stop = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let scraper = {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(counts));
        std::thread::Builder::new()
            .name("scraper".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    match scrape(addr) {
                        Ok(bytes) => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                            counts.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    next += interval;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })?
    };
    Ok(Scraped {
        exporter: child,
        stop,
        scraper: Some(scraper),
    })
}

pub fn run(args: &ExporterArgs) -> Result<()> {
    let exporter = match &args.exporter {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .join("levibot-exporter"),
    };
    if !exporter.exists() {
        bail!(
            "no exporter at {}: build it with `cargo build --release --bin levibot-exporter`, \
             or pass --exporter",
            exporter.display()
        );
    }
    let t2t = TickToTradeArgs {
        layout: LayoutArg::Fused,
        idle: IdleArg::BusySpin,
        rate: args.rate,
        duration: args.duration,
        corpus_passes: 1,
        hop_messages: 100,
        seed: args.seed,
        dir: args.dir.clone(),
        json: false,
        features_journal: FeatureCadence::Off,
    };
    let layout = tick_to_trade::layout_for(&t2t)?;
    let machine = MachineInfo::detect();
    let recording = Recording::testdata().context("loading the corpus recording")?;
    let scratch = ScratchDir::create(args.dir.as_deref())?;
    progress("synthetic stream, alone");
    let alone = scratch.with_dir("alone", |dir| {
        run_pipeline::<Rtrb>(
            &t2t,
            &layout,
            SourceKind::Synthetic,
            &recording,
            dir,
            &|_| Ok(None),
        )
    })?;
    progress(&format!(
        "synthetic stream, exporter scraped {} times a second",
        args.scrape_rate
    ));
    let counts = Arc::new(ScrapeCounts::default());
    let scraped = scratch.with_dir("scraped", |dir| {
        run_pipeline::<Rtrb>(
            &t2t,
            &layout,
            SourceKind::Synthetic,
            &recording,
            dir,
            &|dir: &Path| {
                let load = start_scraped(&exporter, dir, args.scrape_rate, &counts)?;
                Ok(Some(Box::new(load) as Box<dyn std::any::Any>))
            },
        )
    })?;
    scratch.remove()?;
    let (ok, failed) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    let page_bytes = counts.bytes.load(Ordering::Relaxed) / ok.max(1);
    print!(
        "{}",
        table(&machine, args, &alone, &scraped, ok, failed, page_bytes)
    );
    if args.json {
        let stages = |run: &Run| -> serde_json::Map<String, serde_json::Value> {
            STAGES
                .iter()
                .zip(&run.stages)
                .map(|((name, _), p)| (name.to_string(), p.to_json()))
                .collect()
        };
        let t2t_p99 = |run: &Run| run.stages[TICK_TO_TRADE].p99;
        println!(
            "{}",
            json!({
                "benchmark": "exporter",
                "machine": machine.to_json(),
                "rate_per_sec": args.rate,
                "scrape_rate_per_sec": args.scrape_rate,
                "scrapes_ok": ok,
                "scrapes_failed": failed,
                "metrics_page_bytes": page_bytes,
                "alone": { "orders_measured": alone.orders_measured, "stages": stages(&alone) },
                "scraped": { "orders_measured": scraped.orders_measured, "stages": stages(&scraped) },
                "p99_scraped_over_alone": t2t_p99(&scraped) as f64 / t2t_p99(&alone).max(1) as f64,
            })
        );
    }
    Ok(())
}

/// Index of tick-to-trade in `STAGES`.
const TICK_TO_TRADE: usize = 5;
const _: () = assert!(matches!(
    STAGES[TICK_TO_TRADE].0.as_bytes(),
    b"tick_to_trade"
));

fn table(
    machine: &MachineInfo,
    args: &ExporterArgs,
    alone: &Run,
    scraped: &Run,
    ok: u64,
    failed: u64,
    page_bytes: u64,
) -> String {
    let mut out = format!(
        "levibot-bench exporter: fused pipeline, synthetic {} msg/s for {} s, ns\n{}\n\n",
        args.rate,
        args.duration,
        machine.summary_line()
    );
    out.push_str(&format!(
        "{:<24} {:>22} {:>22}\n",
        "stage (p50 / p99)",
        "alone",
        format!("scraped {}/s", args.scrape_rate)
    ));
    for (i, (name, _)) in STAGES.iter().enumerate() {
        let cell = |run: &Run| format!("{} / {}", run.stages[i].p50, run.stages[i].p99);
        out.push_str(&format!(
            "{:<24} {:>22} {:>22}\n",
            name,
            cell(alone),
            cell(scraped)
        ));
    }
    out.push_str(&format!(
        "\nscrapes: {ok} answered, {failed} failed, {page_bytes} bytes each; orders measured: {} alone, {} scraped\n",
        alone.orders_measured, scraped.orders_measured
    ));
    out
}
