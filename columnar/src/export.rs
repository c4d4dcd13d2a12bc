//! A journal's records as typed columns, one table per record type, for DuckDB and pyarrow:
//! what `levictl export --format parquet --out DIR` writes ([`export`]), and what
//! `levibot-backtest run --parquet DIR` writes of its run's journal ([`write_export`]).
//!
//! # Layout
//!
//! Hive-style partitions, by record type, UTC date of the record's time (`ts`, the frame's) and
//! symbol:
//!
//! ```text
//! DIR/_levictl_export.json                        what was exported (marks DIR as an export)
//! DIR/type=<name>/date=<YYYY-MM-DD>/symbol=<SYMBOL>/part-00000.parquet
//! ```
//!
//! `<name>` is the `--type` name (`trade`, `depth_diff`). Records without a symbol go under
//! `symbol=_`: those of types that name no instrument (`daemon_event`, `raw_message`,
//! `config_text`, `fix_seq_nums`) and those of an instrument whose def the journal does not
//! hold (their `instrument_id` still says which). A symbol is a path segment as it is (venues'
//! are letters and digits); other characters are percent-encoded as Hive does. A partition
//! holds `part-00001` and on when its writer was closed to make room for others (see Memory)
//! and its records came again. DuckDB reads one type with
//! `read_parquet('DIR/type=trade/**/*.parquet', hive_partitioning = true)`, and every type at
//! once with `union_by_name = true` too (their columns differ); the partition columns `type`,
//! `date` (a DATE) and `symbol` come from the path, so the files do not repeat them.
//!
//! # Columns
//!
//! Those of the JSON object of `levictl export --format jsonl`, in its order, but for `type` and
//! `symbol` (in the path), each typed as `levibot_view::RecordKind::columns` says; a record kind
//! added there gets its schema here without another edit (`columns.rs`). Every column may be
//! null where JSON has null.
//!
//! - Prices and quantities (`px`, `bid_qty`, the depth levels', an instrument def's units):
//!   `Decimal128(38, S)`, exact. `S` is the finest scale among the instruments of the records
//!   exported, for prices and for quantities apart: an export of one symbol has its
//!   instrument's own scales; an export of several has one scale per column in every file,
//!   at which each instrument's values are exact. One scale for every file because a reader
//!   that globs files casts each to the first file's type: DuckDB 1.5 reading a
//!   `DECIMAL(38,8)` file after a `DECIMAL(38,2)` one rounds the second file's prices to 2
//!   places, silently. Scaled integers would avoid that but leave every reader to divide by a
//!   scale kept aside; decimals keep `px * qty` exact in SQL. Finding `S` costs a first pass
//!   over the selected records (decoding, no writing) before the one that writes.
//! - Times: `Timestamp(ns, "UTC")`: `ts` (the frame's time, as in JSON), the venue's
//!   `event_time_ms` and `trade_time_ms` (ms converted; the names stay those of JSON), a daemon
//!   event's `event_unix_ns`. DuckDB reads them as TIMESTAMP WITH TIME ZONE, whose precision is
//!   the microsecond; `ts_unix_ns` keeps the frame's time to the ns. Stage stamps (`tsc`,
//!   `recv_tsc`) are TSC ticks, integers as in JSON.
//! - Depth levels (`bids`, `asks`): a list of structs `(px, qty)`.
//! - Ids, counts and latencies: unsigned integers of the record field's width; signed where
//!   JSON's are (`limit`, `value`). Codes' names (`side`, `kind`, `exec_type`, `writer`) are
//!   the strings JSON has, dictionary-encoded by Parquet.
//!
//! Snappy compression; rows in journal order. Invalid records (a corrupt payload) and records
//! of types this build does not know are skipped and counted, as for CSV (levictl refuses to
//! be asked for such a type with `--type 0x...`).
//!
//! # Memory
//!
//! Nothing holds the journal: each open file has an Arrow batch of at most
//! [`Limits::batch_rows_max`] rows or about [`Limits::batch_bytes_max`] bytes before it goes
//! to the Parquet writer, which writes a row group out at [`Limits::row_group_rows_max`] rows or
//! [`Limits::row_group_bytes_max`] encoded bytes, and when all open files' row groups together
//! pass [`Limits::buffered_bytes_max`] the largest is written out early. At most
//! [`Limits::open_writers_max`] files are open; the one least recently written is finished
//! first to open another.
//!
//! # DIR
//!
//! [`export`] writes under `DIR.partial` (beside DIR) and renames it to DIR when complete, so
//! that a reader never sees a partial export ([`Staging`] with
//! [`EXPORT_RULES`]). DIR must be absent, an empty directory, or a
//! previous parquet export of levictl, which it replaces as a whole (the two are exchanged
//! atomically with `renameat2(RENAME_EXCHANGE)`, then the old one is removed). A previous
//! export is a directory holding `_levictl_export.json` and `type=...` directories only; any
//! other non-empty DIR is refused, as is a `DIR.partial` that is not an unfinished export.
//! One export into a DIR at a time. [`write_export`] writes the same files and manifest into
//! a directory its caller stages (the backtest's, which holds more).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use levibot_view::{FrameDecoder, Selection, View, open_cursor};

use crate::columns::{RowBuilder, Scales};
use crate::file::{ParquetFile, RowGroups};
pub use crate::out_dir::MANIFEST;
use crate::out_dir::{EXPORT_RULES, Partition, Staging, write_manifest};
use crate::{ExportError, Producer};

/// How much an export holds in memory and how many files it keeps open (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub open_writers_max: usize,
    pub batch_rows_max: usize,
    pub batch_bytes_max: usize,
    pub row_group_rows_max: usize,
    pub row_group_bytes_max: usize,
    pub buffered_bytes_max: usize,
}

impl Limits {
    /// About 64 MiB of batches at most (128 files of 512 KiB) and 128 MiB of row groups.
    pub const DEFAULT: Limits = Limits {
        open_writers_max: 128,
        batch_rows_max: 8_192,
        batch_bytes_max: 512 * 1024,
        row_group_rows_max: 1_048_576,
        row_group_bytes_max: 64 * 1024 * 1024,
        buffered_bytes_max: 128 * 1024 * 1024,
    };
}

/// What one record type's part of an export holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TypeSummary {
    pub records: u64,
    pub files: u64,
}

/// What an export wrote and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub records: u64,
    pub files: u64,
    /// Records skipped: their payload is invalid.
    pub invalid: u64,
    /// Records skipped: of record types this build does not know.
    pub unknown: u64,
    pub scales: Scales,
    pub types: BTreeMap<&'static str, TypeSummary>,
}

/// Exports the selected records of the journal in `journal` to `out` (see the module doc).
pub fn export(
    journal: &Path,
    selection: &Selection,
    out: &Path,
    limits: Limits,
    producer: Producer,
) -> Result<Summary, ExportError> {
    EXPORT_RULES.check(out)?;
    let (scales, end) = scan_scales(journal, selection)?;
    let staging = Staging::begin(out, EXPORT_RULES, producer)?;
    let summary = write_partitions(
        journal,
        selection,
        end,
        scales,
        staging.path(),
        limits,
        producer,
    )?;
    staging.finish(&manifest_fields(journal, &summary, producer))?;
    Ok(summary)
}

/// Writes the export of the selected records of the journal in `journal`, and its manifest,
/// into `root`, an empty directory the caller stages and publishes (see the module doc).
pub fn write_export(
    journal: &Path,
    selection: &Selection,
    root: &Path,
    limits: Limits,
    producer: Producer,
) -> Result<Summary, ExportError> {
    let (scales, end) = scan_scales(journal, selection)?;
    let summary = write_partitions(journal, selection, end, scales, root, limits, producer)?;
    let mut fields = manifest_fields(journal, &summary, producer);
    if let Some(fields) = fields.as_object_mut() {
        fields.insert("complete".into(), true.into());
    }
    write_manifest(root, &EXPORT_RULES, &fields)?;
    Ok(summary)
}

/// What the manifest of a complete export says besides its format.
fn manifest_fields(journal: &Path, summary: &Summary, producer: Producer) -> serde_json::Value {
    let mut fields = serde_json::json!({
        "journal": journal,
        "summary": summary,
    });
    if let Some(fields) = fields.as_object_mut() {
        fields.insert(producer.name.into(), producer.version.into());
    }
    fields
}

/// A cursor over the selected records, and the error of a journal that cannot be read.
fn open(
    journal: &Path,
    selection: &Selection,
    decoder: &mut FrameDecoder,
) -> Result<levibot_view::Cursor, ExportError> {
    open_cursor(journal, selection.clone(), decoder).map_err(journal_error(journal))
}

fn journal_error(journal: &Path) -> impl FnOnce(levibot_shm::ShmError) -> ExportError {
    let path = journal.to_owned();
    move |source| ExportError::Journal { path, source }
}

/// The first pass: the decimal scales of the records selected, and the end of the journal both
/// passes read to.
fn scan_scales(journal: &Path, selection: &Selection) -> Result<(Scales, u64), ExportError> {
    let mut decoder = FrameDecoder::new();
    let mut cursor = open(journal, selection, &mut decoder)?;
    let mut scales = Scales::default();
    // A missing segment is reported by the second pass.
    while let Some(view) = cursor
        .next_view(&mut decoder, |_| {})
        .map_err(journal_error(journal))?
    {
        if let Some(instrument) = view.instrument() {
            scales.price = scales.price.max(instrument.price.exp);
            scales.qty = scales.qty.max(instrument.qty.exp);
        }
    }
    let end = cursor
        .selection
        .end
        .unwrap_or_else(|| cursor.reader.tailer().position().0);
    Ok((scales, end))
}

/// The second pass: every selected record into its partition's file under `root`.
fn write_partitions(
    journal: &Path,
    selection: &Selection,
    end: u64,
    scales: Scales,
    root: &Path,
    limits: Limits,
    producer: Producer,
) -> Result<Summary, ExportError> {
    let mut decoder = FrameDecoder::new();
    let mut cursor = open(journal, selection, &mut decoder)?;
    cursor.selection.end = Some(end);
    let mut writers = Writers::new(root, scales, limits, producer);
    let mut summary = Summary {
        scales,
        ..Summary::default()
    };
    let report_missing = |e: &levibot_shm::ShmError| eprintln!("{}: {e}", producer.context);
    while let Some(view) = cursor
        .next_view(&mut decoder, report_missing)
        .map_err(journal_error(journal))?
    {
        let Some(kind) = view.kind else {
            summary.unknown += 1;
            continue;
        };
        if view.is_invalid() {
            summary.invalid += 1;
            continue;
        }
        let partition = Partition {
            kind,
            day: Partition::day_of(view.meta.unix_ns),
            symbol: view.instrument().map(|i| i.symbol.clone()),
        };
        writers.append(partition, &view)?;
        summary.records += 1;
        summary.types.entry(kind.name()).or_default().records += 1;
    }
    writers.close_all()?;
    for (kind, files) in writers.files {
        summary.types.entry(kind).or_default().files = files;
        summary.files += files;
    }
    Ok(summary)
}

/// One open file.
struct PartWriter {
    rows: RowBuilder,
    file: ParquetFile,
    last_used: u64,
}

impl PartWriter {
    /// Hands the rows appended so far to the Parquet writer.
    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.rows.rows() == 0 {
            return Ok(());
        }
        let batch = self.rows.batch()?;
        self.file.write(&batch)
    }

    /// Writes what is left and the footer, and syncs the file.
    fn finish(mut self) -> Result<(), ExportError> {
        self.write_batch()?;
        self.file.finish()
    }
}

/// The open files, at most [`Limits::open_writers_max`].
struct Writers {
    root: PathBuf,
    scales: Scales,
    limits: Limits,
    producer: Producer,
    open: HashMap<Partition, PartWriter>,
    /// The next part number of every partition opened so far.
    next_part: HashMap<Partition, u32>,
    /// Files written, by kind name.
    files: BTreeMap<&'static str, u64>,
    /// Counts appends, to find the least recently used file.
    clock: u64,
}

impl Writers {
    fn new(root: &Path, scales: Scales, limits: Limits, producer: Producer) -> Writers {
        Writers {
            root: root.to_owned(),
            scales,
            limits,
            producer,
            open: HashMap::new(),
            next_part: HashMap::new(),
            files: BTreeMap::new(),
            clock: 0,
        }
    }

    fn append(&mut self, partition: Partition, view: &View) -> Result<(), ExportError> {
        self.clock += 1;
        if !self.open.contains_key(&partition) {
            if self.open.len() >= self.limits.open_writers_max {
                self.close_least_recent()?;
            }
            let writer = self.open_writer(&partition)?;
            self.open.insert(partition.clone(), writer);
        }
        let limits = self.limits;
        let writer = self
            .open
            .get_mut(&partition)
            .expect("the partition's writer was just opened");
        writer.last_used = self.clock;
        writer.rows.append(view)?;
        if writer.rows.rows() >= limits.batch_rows_max
            || writer.rows.bytes() >= limits.batch_bytes_max
        {
            writer.write_batch()?;
            self.bound_buffered()?;
        }
        Ok(())
    }

    fn open_writer(&mut self, partition: &Partition) -> Result<PartWriter, ExportError> {
        let part = self.next_part.entry(partition.clone()).or_insert(0);
        let path = partition.file(&self.root, *part);
        *part += 1;
        let dir = partition.dir(&self.root);
        fs::create_dir_all(&dir).map_err(|source| ExportError::Io {
            path: dir,
            op: "creating",
            source,
        })?;
        let rows = RowBuilder::new(partition.kind, self.scales);
        let row_groups = RowGroups {
            rows_max: self.limits.row_group_rows_max,
            bytes_max: self.limits.row_group_bytes_max,
        };
        // The partition values, for a file read on its own.
        let metadata = [
            ("type", partition.kind.name().to_owned()),
            ("date", partition.date()),
            ("symbol", partition.symbol_value()),
        ];
        let file = ParquetFile::create(
            &path,
            rows.schema().clone(),
            self.producer,
            row_groups,
            &metadata,
        )?;
        *self.files.entry(partition.kind.name()).or_default() += 1;
        Ok(PartWriter {
            rows,
            file,
            last_used: self.clock,
        })
    }

    fn close_least_recent(&mut self) -> Result<(), ExportError> {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(p, _)| p.clone());
        match oldest.and_then(|p| self.open.remove(&p)) {
            Some(writer) => writer.finish(),
            None => Ok(()),
        }
    }

    /// Writes out the largest row groups in progress while all of them together hold more
    /// than [`Limits::buffered_bytes_max`].
    fn bound_buffered(&mut self) -> Result<(), ExportError> {
        loop {
            let total: usize = self.open.values().map(|w| w.file.memory_size()).sum();
            if total <= self.limits.buffered_bytes_max {
                return Ok(());
            }
            let Some(largest) = self.open.values_mut().max_by_key(|w| w.file.memory_size()) else {
                return Ok(());
            };
            if largest.file.memory_size() == 0 {
                return Ok(());
            }
            largest.file.flush()?;
        }
    }

    fn close_all(&mut self) -> Result<(), ExportError> {
        for (_, writer) in self.open.drain() {
            writer.finish()?;
        }
        Ok(())
    }
}
