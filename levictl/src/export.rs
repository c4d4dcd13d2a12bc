//! `levictl export`: journal records to a file DuckDB (or pandas, or jq) reads.
//!
//! - `--format jsonl`: one JSON object per line, the objects `levictl tail --json` prints, every
//!   type mixed; `read_json_auto('FILE')` makes one table whose columns are the union of the
//!   types' fields (NULL where a type has no such field).
//! - `--format csv`: exactly one `--type`. Its columns are the common fields then that type's
//!   fields, in the order of the JSON objects (`journal_view::COMMON_COLUMNS` and
//!   `RecordKind::columns`), with a header line. One type per file because a CSV column has one
//!   meaning and one type: `read_csv_auto` then infers DECIMAL/DOUBLE for prices and BIGINT for
//!   ids, where a superset file of every type would be mostly empty cells whose meaning changes
//!   from row to row (`px` of an order, of a trade; a ticker's `bid_px`), which makes DuckDB
//!   fall back to VARCHAR. Records whose payload is invalid are skipped (and counted); empty
//!   cells are NULL. Depth levels are a JSON array in one cell.
//!
//! - `--format parquet`: `--out` is a directory of Parquet files, one table per record type
//!   with typed columns (exact decimals, UTC timestamps), Hive-partitioned by type, date and
//!   symbol; see [`parquet`].
//!
//! `--from` is inclusive and `--to` exclusive, each a journal position (the `pos` field) or a
//! time; the export covers what the journal holds when it starts. The file (or directory) is
//! written under `FILE.partial` and renamed when complete.

pub mod parquet;

pub(crate) use levibot_parquet::partial_path;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use levibot_shm::RecordType;

use crate::archive::{Input, fetch_range, range};
use crate::tail::journal_context;
use levibot_archiver::read::ArchiveArgs;
use levibot_view::{
    Bound, Cursor, FrameDecoder, RecordKind, Selection, TYPE_NAMES_HELP, View, csv_columns,
    open_cursor, parse_bound, parse_record_type,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (all types mixed).
    Jsonl,
    /// Comma-separated values with a header: one record type per file (--type).
    Csv,
    /// A directory of Parquet files: a table per record type, typed columns, partitioned by
    /// type, date and symbol.
    Parquet,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// jsonl: the objects of `tail --json`; csv: one --type, its fields as columns; parquet: a
    /// directory, a table per type.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The file to write (replaced when the export is complete); for parquet, the directory
    /// (absent, empty, or a previous parquet export, which is replaced), or s3://BUCKET/PREFIX:
    /// the files go to PREFIX/box=<box>/type=.../date=.../symbol=.../ (the box: --box, or
    /// this machine's host name), with --endpoint, --region, --credentials-file.
    #[arg(long, short = 'o', value_name = "FILE|DIR|s3://BUCKET/PREFIX")]
    pub out: PathBuf,
    /// First record: a journal position (the `pos` field) or a time (RFC 3339, or relative to
    /// now: 30s, 10m, 2h, 1d). Inclusive.
    #[arg(long, value_name = "POS|TIME", value_parser = parse_bound)]
    pub from: Option<Bound>,
    /// End: a position or a time, exclusive. With --archive, a time: segments created at or
    /// after it are not fetched (and --from's choose the first).
    #[arg(long, visible_alias = "until", value_name = "POS|TIME", value_parser = parse_bound)]
    pub to: Option<Bound>,
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_record_type,
          help = format!("Only records of this type (repeatable; exactly one for csv): \
                          {TYPE_NAMES_HELP}; or a record type number such as 0x201"))]
    pub types: Vec<RecordType>,
    /// Only records of this instrument (case-insensitive).
    #[arg(long)]
    pub symbol: Option<String>,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

pub fn run(args: &ExportArgs, input: Input<'_>) -> anyhow::Result<ExitCode> {
    let csv_kind = match (args.format, args.types.as_slice()) {
        (Format::Jsonl, _) => None,
        (Format::Parquet, types) => {
            if let Some(unknown) = types
                .iter()
                .find(|t| RecordKind::from_record_type(**t).is_none())
            {
                bail!(
                    "--format parquet exports the record types this levictl knows \
                     ({TYPE_NAMES_HELP}); export type {:#06x} as jsonl",
                    unknown.0
                );
            }
            None
        }
        (Format::Csv, [only]) => match RecordKind::from_record_type(*only) {
            Some(kind) => Some(kind),
            None => bail!(
                "--format csv needs a record type this levictl knows ({TYPE_NAMES_HELP}); \
                 export type {:#06x} as jsonl",
                only.0
            ),
        },
        (Format::Csv, _) => bail!(
            "--format csv needs exactly one --type (its columns are that type's fields); \
             for several types use --format jsonl"
        ),
    };
    let selection = Selection {
        types: args.types.clone(),
        symbol: args.symbol.clone(),
        from: args.from,
        to: args.to,
        ..Selection::default()
    };
    let s3_out = args.out.to_str().filter(|o| o.starts_with("s3://"));
    if s3_out.is_some() && args.format != Format::Parquet {
        bail!("--out s3://...: only --format parquet writes to a bucket");
    }
    let fetched = match input {
        Input::Journal(_) => None,
        Input::Archive(archive) => Some(fetch_range(archive, range(args.from, args.to)?)?),
    };
    let journals: Vec<PathBuf> = match (&fetched, input) {
        (Some(fetched), _) => fetched.journals.clone(),
        (None, Input::Journal(journal)) => vec![journal.to_owned()],
        (None, Input::Archive(_)) => unreachable!("fetched above"),
    };
    if args.format == Format::Parquet {
        let journal = match &fetched {
            Some(fetched) => fetched.single_journal().map_err(anyhow::Error::msg)?,
            None => journals[0].as_path(),
        };
        let summary = match s3_out {
            None => parquet::export(journal, &selection, &args.out, parquet::Limits::DEFAULT)?,
            Some(url) => {
                let box_name = match &fetched {
                    Some(fetched) => fetched.box_name.clone(),
                    None => parquet::host_box()?,
                };
                parquet::export_to_store(
                    journal,
                    &selection,
                    url,
                    &args.archive.s3,
                    &box_name,
                    parquet::Limits::DEFAULT,
                )?
            }
        };
        print!(
            "exported {} record{} in {} file{} to {}",
            summary.records,
            plural(summary.records),
            summary.files,
            plural(summary.files),
            args.out.display()
        );
        print_skipped(summary.invalid, summary.unknown);
        return Ok(ExitCode::SUCCESS);
    }
    let (written, invalid) = write_then_rename(&args.out, |partial| {
        write_records(&journals, &selection, csv_kind, partial)
    })?;
    print!(
        "exported {written} record{} to {}",
        plural(written),
        args.out.display()
    );
    print_skipped(invalid, 0);
    Ok(ExitCode::SUCCESS)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Ends the summary line with what was skipped.
fn print_skipped(invalid: u64, unknown: u64) {
    let mut skipped = Vec::new();
    if invalid > 0 {
        skipped.push(format!("{invalid} invalid record{}", plural(invalid)));
    }
    if unknown > 0 {
        skipped.push(format!(
            "{unknown} record{} of unknown types",
            plural(unknown)
        ));
    }
    if !skipped.is_empty() {
        print!(" (skipped {})", skipped.join(", "));
    }
    println!();
}

/// Writes the selected records of `journals`, one after the other, to `path`; returns
/// (written, invalid ones skipped).
fn write_records(
    journals: &[PathBuf],
    selection: &Selection,
    csv_kind: Option<RecordKind>,
    path: &Path,
) -> anyhow::Result<(u64, u64)> {
    let writing = || format!("writing {}", path.display());
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let columns = csv_kind.map(csv_columns);
    if let Some(columns) = &columns {
        writeln!(out, "{}", columns.join(",")).with_context(writing)?;
    }
    let (mut written, mut invalid) = (0u64, 0u64);
    let mut line = String::new();
    for journal in journals {
        // Each journal defines its own instruments.
        let mut decoder = FrameDecoder::new();
        let mut cursor = open_cursor(journal, selection.clone(), &mut decoder)
            .with_context(|| journal_context(journal))?;
        while let Some(view) = next_view(&mut cursor, &mut decoder, journal, true)? {
            line.clear();
            match &columns {
                Some(_) if view.is_invalid() => {
                    invalid += 1;
                    continue;
                }
                Some(columns) => view.csv_row(columns, &mut line),
                None => line.push_str(&view.to_json()),
            }
            line.push('\n');
            out.write_all(line.as_bytes()).with_context(writing)?;
            written += 1;
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(writing)?;
    file.sync_all().with_context(writing)?;
    Ok((written, invalid))
}

/// The next record the cursor selects, or `None` at the end of the export; a missing segment
/// (pruned while the export ran) is passed over, and reported if `report_missing`.
pub(crate) fn next_view(
    cursor: &mut Cursor,
    decoder: &mut FrameDecoder,
    journal: &Path,
    report_missing: bool,
) -> anyhow::Result<Option<Box<View>>> {
    cursor
        .next_view(decoder, |e| {
            if report_missing {
                eprintln!("levictl export: {e}");
            }
        })
        .with_context(|| journal_context(journal))
}

/// Writes a file through `write` under `OUT.partial`, then renames it to `out`: a reader never
/// sees half a file, and nothing half-written is left to be mistaken for one when `write`
/// fails.
pub(crate) fn write_then_rename<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let partial = partial_path(out);
    let written = write(&partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    Ok(written)
}
