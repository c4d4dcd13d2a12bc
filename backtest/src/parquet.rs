//! `run --parquet DIR`: a run's fills, orders and everything else it journaled, and its
//! summary, as Parquet for DuckDB, pyarrow and polars, written with `levibot-parquet`, the
//! writer of `levictl export --format parquet`.
//!
//! ```text
//! DIR/_levibot_backtest.json       what DIR holds (format levibot-backtest-parquet; a run or a sweep)
//! DIR/_levictl_export.json         the run's journal exported, exactly as
//! DIR/type=<type>/date=<YYYY-MM-DD>/symbol=<SYMBOL>/part-00000.parquet
//!                                  `levictl export --format parquet` exports it
//! DIR/summary.parquet              the --json summary as one row ([`summary`])
//! ```
//!
//! The export is the whole journal: `type=execution_report` holds the venue's reports (the
//! fills are those with `exec_type = 'trade'`), `type=order_sent` the orders as they left,
//! `type=risk_reject` what risk refused, `type=feature_snapshot` the features the strategy saw
//! (with `[features] journal`), and the market data unless `--no-market-journal`.
//!
//! A sweep (`--set`) writes `DIR/sweep.parquet`, one row per point run: `index`, one text
//! column per swept key (named as given to `--set`, the value as given), `status` (`ok` or
//! `failed`), `error`, then the summary's columns for the union of every point's symbols,
//! horizons and reject reasons (null for a point that failed), and each point's own output
//! (its export and `summary.parquet`) in `DIR/points/<index>/`. `sweep.parquet` is written when
//! the last point is done (the points' figures are held until then, a few KB each).
//!
//! `DIR` must be absent or empty, and neither `--out` nor holding it: it is checked before
//! the run, written under `DIR.partial` and renamed to `DIR` when complete; an error on the
//! way leaves no `DIR.partial` behind, and one left by a killed run is removed by the next.

pub mod summary;

use std::path::Path;

use levibot_parquet::table::TableWriter;
use levibot_parquet::{
    ExportError, Limits, OutRules, Producer, Scales, Selection, Staging, Summary as ExportSummary,
    write_export,
};

use crate::results::Summary;
use crate::run::RunStats;
use summary::{Figures, Row, Shape, summary_columns};

/// levibot-backtest, as the files and the manifests name it.
pub const PRODUCER: Producer = Producer {
    name: "levibot-backtest",
    version: env!("CARGO_PKG_VERSION"),
    context: "levibot-backtest --parquet",
};

/// The manifest at the top of DIR.
pub const MANIFEST: &str = "_levibot_backtest.json";
/// The summary of a run (a sweep's point's, in its directory).
pub const SUMMARY_FILE: &str = "summary.parquet";
/// A sweep's table.
pub const SWEEP_FILE: &str = "sweep.parquet";
/// The directory of a sweep's points (`points/<index>/`).
pub const POINTS_DIR: &str = "points";

/// What `--parquet DIR` may be: absent or empty (a backtest replaces nothing).
pub const RULES: OutRules = OutRules {
    flag: "--parquet",
    manifest: MANIFEST,
    format: "levibot-backtest-parquet",
    what: "levibot-backtest parquet output",
    replace_previous: false,
    entries: &[
        levibot_parquet::MANIFEST,
        SUMMARY_FILE,
        SWEEP_FILE,
        POINTS_DIR,
    ],
};

/// Checks `--parquet DIR` before anything runs: it may be written (and `DIR.partial` is free
/// or ours), and it is not `out` (where the journals go) nor holds it.
pub fn check_dir(parquet: &Path, out: &Path) -> Result<(), ExportError> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    if absolute(out).starts_with(absolute(parquet)) {
        return Err(ExportError::OutDir {
            flag: RULES.flag,
            path: parquet.to_owned(),
            why: format!(
                "holds --out {} (the run's journal): give a directory of its own",
                out.display()
            ),
        });
    }
    RULES.check_staging(parquet, PRODUCER)
}

/// `--parquet DIR` of a plain run: [`write_run`] under `DIR.partial`, published as `DIR`.
pub fn publish_run(dir: &Path, journal: &Path, f: &Figures) -> Result<ExportSummary, ExportError> {
    let staging = Staging::begin(dir, RULES, PRODUCER)?;
    let export = write_run(staging.path(), journal, f)?;
    staging.finish(&serde_json::json!({
        "kind": "run",
        PRODUCER.name: PRODUCER.version,
        "journal": journal,
        "records": export.records,
        "files": export.files,
    }))?;
    Ok(export)
}

/// A sweep's point's figures, kept for `sweep.parquet`.
#[derive(Clone, Debug)]
pub struct PointFigures {
    pub summary: Summary,
    pub stats: RunStats,
}

/// Writes one run into `dir` (made if absent, and empty): the journal in `journal` exported,
/// and `summary.parquet`. What the export wrote.
pub fn write_run(dir: &Path, journal: &Path, f: &Figures) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        op: "creating",
        source,
    })?;
    let export = write_export(
        journal,
        &Selection::default(),
        dir,
        Limits::DEFAULT,
        PRODUCER,
    )?;
    let mut row = Row::default();
    summary_columns(&mut row, &Shape::of(f), Some(f));
    let path = dir.join(SUMMARY_FILE);
    let mut table = TableWriter::create(
        &path,
        &row.columns,
        Scales::default(),
        PRODUCER,
        &[("table", "summary".into())],
    )?;
    table.append(&row.values)?;
    table.finish()?;
    Ok(export)
}

/// One row of a sweep's table.
pub struct SweepRow<'a> {
    pub index: usize,
    /// The point's values, one per key.
    pub values: Vec<&'a str>,
    /// Why it failed; `None`: it ran, and `figures` are its.
    pub error: Option<String>,
    pub figures: Option<Figures<'a>>,
}

/// The columns of a sweep's row, with its values.
fn sweep_row(keys: &[String], shape: &Shape, r: Option<&SweepRow>) -> Row {
    let mut row = Row::default();
    row.u64("index", r.map(|r| r.index as u64));
    for (at, key) in keys.iter().enumerate() {
        row.text(key.clone(), r.and_then(|r| r.values.get(at).copied()));
    }
    let status = r.map(|r| if r.error.is_some() { "failed" } else { "ok" });
    row.text("status", status);
    row.text("error", r.and_then(|r| r.error.as_deref()));
    summary_columns(&mut row, shape, r.and_then(|r| r.figures.as_ref()));
    row
}

/// Writes `sweep.parquet` at `path`: `rows` in their order, under the columns of `keys` and
/// `shape` (see the module doc). The rows written.
pub fn write_sweep(
    path: &Path,
    keys: &[String],
    shape: &Shape,
    rows: &[SweepRow],
) -> Result<u64, ExportError> {
    let header = sweep_row(keys, shape, None).columns;
    let mut table = TableWriter::create(
        path,
        &header,
        Scales::default(),
        PRODUCER,
        &[("table", "sweep".into())],
    )?;
    for r in rows {
        let row = sweep_row(keys, shape, Some(r));
        debug_assert_eq!(row.columns, header);
        table.append(&row.values)?;
    }
    table.finish()
}
