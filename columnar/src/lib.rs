//! `levibot-parquet`: LeviBot's Parquet writer, one place for what `levictl export --format
//! parquet` and `levibot-backtest run --parquet` write.
//!
//! - [`mod@export`]: a journal's records as typed columns, one table per record type in Hive
//!   partitions (type, UTC date, symbol); its layout, columns and memory bounds are in that
//!   module's doc.
//! - [`mod@table`]: a small table of named, typed columns in one file (a backtest's summary, a
//!   sweep's table).
//! - [`Staging`]: an output directory written under `DIR.partial` and renamed to `DIR` when
//!   complete, so that a reader never sees half of one, with the rules of what `DIR` may be
//!   ([`OutRules`]).
//!
//! It reads the journal with `levibot-view` (the one table of record kinds and column types
//! that JSON, CSV and Parquet follow) and links nothing that writes a journal. The column
//! types and values are the view's ([`ColumnType`], [`Val`]), and so is the choice of records
//! ([`Selection`]), re-exported here.

pub mod export;
pub mod table;

mod columns;
mod file;
mod out_dir;

use std::io;
use std::path::PathBuf;

use arrow_schema::ArrowError;
use levibot_shm::ShmError;
use parquet::errors::ParquetError;

pub use columns::{DECIMAL_PRECISION, Scales};
pub use export::{Limits, MANIFEST, Summary, TypeSummary, export, write_export};
pub use levibot_view::{ColumnType, Selection, Val};
pub use out_dir::{EXPORT_RULES, OutRules, Staging, partial_path};

/// Who writes the files: named in each file's `created_by`, in the export's manifest, and in
/// the messages printed to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer {
    /// `levictl`, `levibot-backtest`.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// What prefixes its messages on stderr (`levictl export`).
    pub context: &'static str,
}

/// Why writing Parquet failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the journal in {path}")]
    Journal {
        path: PathBuf,
        #[source]
        source: ShmError,
    },
    #[error("{flag} {path}: {why}")]
    OutDir {
        /// The command's flag that named the directory (`--out`).
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{op} {path}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("writing {path}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    #[error("{kind} record at {position}: column {column}: {value} is {why}")]
    Value {
        kind: &'static str,
        column: &'static str,
        position: u64,
        value: String,
        why: &'static str,
    },
    #[error("{path}: {why}")]
    Table { path: PathBuf, why: String },
    #[error("making an Arrow batch")]
    Arrow(#[source] ArrowError),
}
