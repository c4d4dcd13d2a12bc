//! `levictl export --format parquet --out DIR`: journal records as typed columns, one table per
//! record type, in Hive partitions (type, UTC date, symbol), for DuckDB and pyarrow. The writer
//! is `levibot-parquet`'s (its `export` module's doc has the layout, the columns, the memory
//! bounds and what DIR may be), which `levibot-backtest run --parquet` shares.
//!
//! `--out s3://bucket/prefix` writes the same files to a bucket, under a partition of the box
//! (`prefix/box=<box>/type=<name>/date=<day>/symbol=<SYMBOL>/part-00000.parquet`), so that
//! many boxes' exports are one Hive-partitioned dataset that DuckDB (httpfs), Spark, Trino or
//! pyarrow query in place: they are written locally first (a temporary directory), then each
//! file is uploaded (multipart when large) and read back for its SHA-256
//! (`levibot_archiver::publish`). The manifest (`_levictl_export.json`) is not uploaded: the
//! partitions of many exports share the prefix, and the objects say what they hold.

use std::path::Path;

use anyhow::{Context as _, bail};
use levibot_archiver::config::{host_name, is_box_name};
use levibot_archiver::publish::publish_dir;
use levibot_archiver::read::{S3Args, block_on};
use levibot_parquet::{ExportError, Producer};
use levibot_view::Selection;

pub use levibot_parquet::{Limits, MANIFEST, Scales, Summary, TypeSummary};

use crate::tail::journal_context;

/// levictl, as the files and the manifest name it.
pub const PRODUCER: Producer = Producer {
    name: "levictl",
    version: env!("CARGO_PKG_VERSION"),
    context: "levictl export",
};

/// Exports the selected records of the journal in `journal` to `out`.
pub fn export(
    journal: &Path,
    selection: &Selection,
    out: &Path,
    limits: Limits,
) -> anyhow::Result<Summary> {
    levibot_parquet::export(journal, selection, out, limits, PRODUCER).or_else(|e| match e {
        ExportError::Journal { source, .. } => {
            Err(source).with_context(|| journal_context(journal))
        }
        e => Err(e.into()),
    })
}

/// The box an export to a bucket names when the journal is this machine's: its host name, as
/// levibot-archiver's default `box`.
pub fn host_box() -> anyhow::Result<String> {
    let name = host_name().context("this machine's host name is unknown: read with --archive")?;
    if !is_box_name(&name) {
        bail!("the host name {name:?} is not a box name (letters, digits, '.', '_', '-')");
    }
    Ok(name)
}

/// [`export`] to `s3://bucket/prefix` (`url`): written in a temporary directory, then each
/// file published under `prefix/box=<box_name>/`, verified.
pub fn export_to_store(
    journal: &Path,
    selection: &Selection,
    url: &str,
    s3: &S3Args,
    box_name: &str,
    limits: Limits,
) -> anyhow::Result<Summary> {
    let store = s3.store(url).with_context(|| format!("--out {url}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("levictl-export-")
        .tempdir()
        .context("creating a temporary directory for the export")?;
    let local = scratch.path().join("export");
    let summary = export(journal, selection, &local, limits)?;
    block_on(publish_dir(
        &store,
        &local,
        ".parquet",
        &format!("box={box_name}"),
    ))
    .with_context(|| format!("writing the export to {url}"))?;
    Ok(summary)
}
