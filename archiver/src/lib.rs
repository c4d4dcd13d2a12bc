//! `levibot-archiver`: copies the journal's sealed segments to durable disk and to
//! S3-compatible object storage (issue 18), so that the record of every order outlives
//! `/dev/shm`.
//!
//! # Why a sidecar of its own, not a mode of the exporter
//!
//! The exporter is small, read-only and has no network egress but its loopback listener: its
//! unit allows `localhost` only. The archiver needs credentials for a bucket and egress to the
//! object store, a writable state dir, and a much larger dependency tree (an HTTP client, TLS,
//! the S3 signer). Folding it into the exporter would give the process that every SRE scrapes
//! all of that; a process of its own keeps each unit's sandbox as narrow as its job, lets the
//! archiver fall behind, retry or be restarted without a gap in the metrics, and lets an
//! operator run it or not (a box without an archive runs no archiver).
//!
//! Like the exporter, it never writes to the journal directory and never links the code that
//! writes the journal (`testkit/tests/house_rules.rs`): it links `levibot-shm` for the segment
//! names, headers and the counters file only. It runs as its own process at idle priority, so
//! it never blocks or slows the daemon.
//!
//! Modules: [`config`] (the TOML file), [`store`] (the directory and S3 targets), [`state`]
//! (the state file and the manifests), [`archive`] (the pass), [`watermark`] (the watermark
//! the daemon's retention reads, and who may read it and the counters), [`verify`] (a day
//! checked against its manifest); for the tools that read the archive back, [`read`] (a time
//! range of a box's journal, fetched and verified into local journal directories) and
//! [`publish`] (Parquet exports written to a bucket).

pub mod archive;
pub mod config;
pub mod publish;
pub mod read;
pub mod state;
pub mod store;
pub mod verify;
pub mod watermark;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::archive::Archiver;
use crate::config::Config;
use crate::store::Store;

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/levibot/archiver.toml";

/// levibot-archiver: copies the journal's sealed segments to a directory and to S3-compatible
/// storage, verified by SHA-256, with a manifest per day.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// The configuration file (documented in /usr/share/doc/levibot/levibot-archiver.toml).
    #[arg(long, global = true, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// One pass over every target, then exit: 0 when every sealed segment is archived, 1 after
    /// a failure (for tests and cron).
    #[arg(long)]
    pub once: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reads back every object of a day and checks it against the day's manifest; exits 1
    /// naming each object that is missing, corrupt or not listed.
    Verify {
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        day: String,
        /// Only this target (a `name` of the configuration); all of them by default.
        #[arg(long)]
        target: Option<String>,
        /// Another box's day (the configuration's `box` by default).
        #[arg(long = "box")]
        box_name: Option<String>,
    },
}

/// Runs the command line.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    // TLS to the object store with ring, as the rest of LeviBot (object_store's own provider,
    // aws-lc-rs, is left out). Installing fails only if one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match &args.command {
        Some(Command::Verify {
            day,
            target,
            box_name,
        }) => runtime.block_on(verify(&config, day, target.as_deref(), box_name.as_deref())),
        None if args.once => runtime.block_on(once(config)),
        None => runtime.block_on(follow(config)),
    }
}

async fn once(config: Config) -> anyhow::Result<()> {
    let mut archiver = Archiver::new(config)?;
    let report = archiver.pass(true).await?;
    println!(
        "archived {} segments; {} failures; {} pending",
        report.archived, report.failures, report.pending
    );
    if report.failures > 0 {
        bail!("{} targets failed (see the log)", report.failures);
    }
    Ok(())
}

async fn follow(config: Config) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let poll = config.poll_interval;
    let mut archiver = Archiver::new(config)?;
    tracing::info!("following the journal; a pass every {poll:?}");
    while !stop.load(Ordering::Relaxed) {
        match archiver.pass(false).await {
            Ok(report) if report.archived > 0 || report.failures > 0 => tracing::info!(
                "pass: {} archived, {} failures, {} pending",
                report.archived,
                report.failures,
                report.pending
            ),
            Ok(_) => {}
            // The journal unreadable (not there yet), or the state dir: try again next time.
            Err(e) => tracing::warn!("pass failed: {e}"),
        }
        let until = Instant::now() + poll;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tracing::info!("stopping");
    Ok(())
}

async fn verify(
    config: &Config,
    day: &str,
    target: Option<&str>,
    box_name: Option<&str>,
) -> anyhow::Result<()> {
    if !state::is_day(day) {
        bail!("--day {day:?}: not a day (YYYY-MM-DD)");
    }
    let box_name = box_name.unwrap_or(&config.box_name);
    let targets: Vec<_> = config
        .targets
        .iter()
        .filter(|t| target.is_none_or(|name| t.name == name))
        .collect();
    if targets.is_empty() {
        bail!(
            "--target {}: no such target in {}",
            target.unwrap_or(""),
            "the configuration"
        );
    }
    let mut problems = 0;
    for target in targets {
        let store = Store::new(&target.kind, config.request_timeout)?;
        let check = verify::verify_day(&store, box_name, day)
            .await
            .with_context(|| format!("target {}", target.name))?;
        for problem in &check.problems {
            println!("target {}: {problem}", target.name);
        }
        println!(
            "target {}: {box_name} {day}: {} objects verified, {} problems",
            target.name,
            check.verified,
            check.problems.len()
        );
        problems += check.problems.len();
    }
    if problems > 0 {
        bail!("{problems} problems found");
    }
    Ok(())
}
