//! `levibot-exporter`: the metrics sidecar (issue 7). It maps the daemon's journal and counters
//! file read-only and serves Prometheus metrics over HTTP on tokio-uring.
//!
//! ```text
//!   journal (shm) --FrameReader--> [follower thread] --counters file-->  Metrics (registry)
//!                                        | every 100 ms: encode, readiness
//!                                        v
//!                              Arc<Snapshot> (text + ready) <-- [io_uring HTTP thread] <-- scrapes
//! ```
//!
//! - [`follow`]: the cold thread. It reads the journal from its oldest segment on (histograms
//!   from `SentOrder` stamps, venue ack round trips, execution report outcomes, per-stream
//!   message and byte counts), follows rollovers and daemon restarts, logs and skips missing
//!   segments, reopens a replaced counters file, and publishes a [`follow::Snapshot`].
//! - [`http`]: `GET /metrics`, `/healthz`, `/readyz`; a scrape only clones the last snapshot,
//!   so scrapes never touch the journal or the registry.
//! - [`archive`]: the archiver's counters file (`archiver.lvc`), when there is one.
//! - [`metrics`]: the registry; the contract is docs/metrics.md.

pub mod archive;
pub mod follow;
pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

/// Default listen address (9464: the port OpenTelemetry's Prometheus exporters use).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Default journal size limit reported as `levibot_journal_limit_bytes` (4 GiB).
pub const DEFAULT_JOURNAL_LIMIT_BYTES: u64 = 4 << 30;

#[derive(clap::Parser, Debug)]
#[command(
    name = "levibot-exporter",
    version,
    about = "LeviBot's Prometheus exporter: reads the daemon's journal and counters read-only"
)]
pub struct Args {
    /// The daemon's journal directory (also holds its counters file).
    #[arg(long, env = levibot_shm::paths::DIR_ENV,
          default_value = levibot_shm::paths::DEFAULT_DIR)]
    pub journal: PathBuf,
    /// Address to serve /metrics, /healthz and /readyz on (port 0: any free port, printed).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The journal's retention limit, exported as levibot_journal_limit_bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_JOURNAL_LIMIT_BYTES)]
    pub journal_limit_bytes: u64,
    /// The archiver's counters file (its state dir's archiver.lvc), exported as the
    /// levibot_archive_* series; absent: no archive series.
    #[arg(long, value_name = "PATH", default_value = archive::DEFAULT_ARCHIVER_COUNTERS)]
    pub archiver_counters: PathBuf,
}

/// Runs the exporter until the process is killed; prints the address it listens on.
pub fn run(args: &Args) -> anyhow::Result<()> {
    run_with(args, |addr| {
        // Tests and scripts read the bound address from here (port 0 picks one).
        println!("listening on http://{addr}");
    })
}

/// [`run`], telling `on_bound` the address it bound (port 0: the one it picked).
pub fn run_with(args: &Args, on_bound: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    // A journal in a layout this build cannot read is refused now, with the file and the
    // versions, rather than reported as "not ready" forever.
    follow::Follower::check_journal(&args.journal).with_context(|| {
        format!(
            "refusing to export the journal in {}",
            args.journal.display()
        )
    })?;
    let metrics = metrics::Metrics::new(&metrics::BuildInfo::current(), args.journal_limit_bytes);
    let shared = follow::initial_snapshot(&metrics);
    let follower = follow::Follower::new(
        &args.journal,
        &args.archiver_counters,
        metrics,
        Arc::clone(&shared),
    );
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    std::thread::Builder::new()
        .name("exporter-follow".into())
        .spawn(move || follower.run(stop))
        .context("starting the journal follower thread")?;
    let journal = args.journal.clone();
    http::serve(args.listen, shared, move |addr| {
        tracing::info!(%addr, journal = %journal.display(), "serving /metrics, /healthz, /readyz");
        on_bound(addr);
    })
    .with_context(|| format!("serving on {}", args.listen))
}
