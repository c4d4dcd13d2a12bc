//! `levictl export --format parquet --out DIR`: journal records as typed columns, one table per
//! record type, in Hive partitions (type, UTC date, symbol), for DuckDB and pyarrow. The writer
//! is `levibot-parquet`'s (its `export` module's doc has the layout, the columns, the memory
//! bounds and what DIR may be), which `levibot-backtest run --parquet` shares.

use std::path::Path;

use anyhow::Context as _;
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
