//! `levictl research dataset`: the journal's feature snapshots, each with its instrument's
//! forward mid returns at the stated horizons ([`super::forward`]), as one Parquet file a
//! training script reads (`scripts/research/train.py`).
//!
//! Columns, in order: `symbol` (text), `instrument_id` (uint32), `event_time` (timestamp ns,
//! UTC: the event the snapshot was taken at), the features of [`FEATURE_NAMES`] (float64, in
//! the asset's price where they are prices, as `levictl export` gives them), `output` (the
//! strategy's vote or prediction), `model_id` (text, 16 hex digits), `book_synced`, `paused`
//! (bool), then `ret_<h>` per horizon (float64: `mid(t + h) / mid(t) - 1`). A value that does
//! not exist is null. Rows of one instrument are in time order.
//!
//! The file's key-value metadata `levibot.features` lists the model's features, in the order
//! the strategy gives them, as a JSON array. The file is written as `FILE.partial` and renamed
//! when complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use levibot_shm::records::{FEATURE_NAMES, record_type};
use levibot_view::{Bound, FrameDecoder, Selection, Val, View, open_cursor, parse_bound};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::forward::{ForwardJoin, Horizons};
use crate::export::{next_view, write_then_rename};
use crate::tail::journal_context;

/// The file's key-value metadata that lists the model features (a JSON array of names).
pub const FEATURES_KEY: &str = "levibot.features";

/// Rows a batch holds before it is written.
const BATCH_ROWS: usize = 8_192;
/// Rows of one row group at most.
const ROW_GROUP_ROWS: usize = 1_000_000;

#[derive(clap::Args, Debug)]
pub struct DatasetArgs {
    /// The Parquet file to write (replaced when the dataset is complete).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// A horizon of the forward returns (repeatable): 100ms, 1s, 10s, 5m, 1h.
    #[arg(long = "horizon", value_name = "DURATION", default_values_t = ["100ms".to_owned(), "1s".to_owned(), "10s".to_owned()])]
    pub horizons: Vec<String>,
    /// Only this instrument's snapshots (case-insensitive).
    #[arg(long)]
    pub symbol: Option<String>,
    /// First snapshot: a journal position or a time (as `levictl export --from`), inclusive. A
    /// time is compared with each snapshot's event time.
    #[arg(long, value_name = "POS|TIME", value_parser = parse_bound)]
    pub from: Option<Bound>,
    /// End: a position or a time (a snapshot's event time), exclusive. Forward returns past it
    /// are not known (null): a dataset that ends here learns nothing from after it.
    #[arg(long, value_name = "POS|TIME", value_parser = parse_bound)]
    pub to: Option<Bound>,
}

/// One snapshot as a dataset row, before its returns.
#[derive(Debug)]
struct Row {
    symbol: Option<String>,
    instrument_id: u32,
    t_ns: u64,
    features: [f64; FEATURE_NAMES.len()],
    output: f64,
    model_id: Option<String>,
    book_synced: bool,
    paused: bool,
}

impl Row {
    fn of(view: &View) -> Row {
        let fields = view.fields();
        let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|f| &f.1);
        let float = |name: &str| match get(name) {
            Some(Val::F64(x)) => *x,
            _ => f64::NAN,
        };
        let int = |name: &str| match get(name) {
            Some(Val::U64(x)) => *x,
            _ => 0,
        };
        let flag = |name: &str| matches!(get(name), Some(Val::Bool(true)));
        Row {
            symbol: view.symbol().map(str::to_owned),
            instrument_id: int("instrument_id") as u32,
            t_ns: int("event_unix_ns"),
            features: FEATURE_NAMES.map(float),
            output: float("output"),
            model_id: match get("model_id") {
                Some(Val::Str(id)) => Some(id.clone()),
                _ => None,
            },
            book_synced: flag("book_synced"),
            paused: flag("paused"),
        }
    }
}

/// The dataset's rows, batched into a Parquet file.
struct DatasetWriter {
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    symbol: StringBuilder,
    instrument_id: UInt32Builder,
    event_time: TimestampNanosecondBuilder,
    /// The features, `output`, then the returns.
    floats: Vec<Float64Builder>,
    model_id: StringBuilder,
    book_synced: BooleanBuilder,
    paused: BooleanBuilder,
    rows: usize,
    written: u64,
}

impl DatasetWriter {
    fn create(path: &Path, horizons: &Horizons) -> anyhow::Result<DatasetWriter> {
        let time = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let float_names: Vec<String> = FEATURE_NAMES
            .iter()
            .map(|n| n.to_string())
            .chain(["output".to_owned()])
            .chain(horizons.column_names())
            .collect();
        let mut fields = vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("instrument_id", DataType::UInt32, false),
            Field::new("event_time", time.clone(), false),
        ];
        fields.extend(
            float_names[..FEATURE_NAMES.len() + 1]
                .iter()
                .map(|n| Field::new(n, DataType::Float64, true)),
        );
        fields.extend([
            Field::new("model_id", DataType::Utf8, true),
            Field::new("book_synced", DataType::Boolean, false),
            Field::new("paused", DataType::Boolean, false),
        ]);
        fields.extend(
            float_names[FEATURE_NAMES.len() + 1..]
                .iter()
                .map(|n| Field::new(n, DataType::Float64, true)),
        );
        let schema = Arc::new(Schema::new(fields));
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        // The features a model of this dataset takes, in the order the strategy gives them:
        // training scripts read them from here (scripts/research/train.py).
        let features = serde_json::to_string(&FEATURE_NAMES)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("levictl {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new(FEATURES_KEY.to_owned(), features)]))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(DatasetWriter {
            schema,
            writer,
            symbol: StringBuilder::new(),
            instrument_id: UInt32Builder::new(),
            event_time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            floats: (0..float_names.len())
                .map(|_| Float64Builder::new())
                .collect(),
            model_id: StringBuilder::new(),
            book_synced: BooleanBuilder::new(),
            paused: BooleanBuilder::new(),
            rows: 0,
            written: 0,
        })
    }

    fn append(&mut self, row: Row, returns: &[Option<f64>]) -> anyhow::Result<()> {
        let finite = |x: f64| x.is_finite().then_some(x);
        self.symbol.append_option(row.symbol);
        self.instrument_id.append_value(row.instrument_id);
        // Event times are Unix ns of this century: within i64.
        self.event_time
            .append_value(i64::try_from(row.t_ns).unwrap_or(i64::MAX));
        let floats = row
            .features
            .into_iter()
            .chain([row.output])
            .map(finite)
            .chain(returns.iter().copied());
        for (builder, value) in self.floats.iter_mut().zip(floats) {
            builder.append_option(value);
        }
        self.model_id.append_option(row.model_id);
        self.book_synced.append_value(row.book_synced);
        self.paused.append_value(row.paused);
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let features = FEATURE_NAMES.len() + 1;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.symbol.finish()),
            Arc::new(self.instrument_id.finish()),
            Arc::new(self.event_time.finish()),
        ];
        let mut floats = self
            .floats
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef);
        arrays.extend(floats.by_ref().take(features));
        arrays.extend([
            Arc::new(self.model_id.finish()) as ArrayRef,
            Arc::new(self.book_synced.finish()),
            Arc::new(self.paused.finish()),
        ]);
        arrays.extend(floats);
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.written += self.rows as u64;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.written)
    }
}

/// `levictl research dataset`.
pub fn run(args: &DatasetArgs, journal: &Path) -> anyhow::Result<()> {
    let horizons = Horizons::parse(&args.horizons).map_err(anyhow::Error::msg)?;
    let names = horizons.column_names();
    let (rows, instruments) = write_then_rename(&args.out, |partial| {
        write(args, journal, &horizons, partial)
    })?;
    println!(
        "dataset: {rows} feature snapshots of {instruments} instrument{} with {} to {}",
        if instruments == 1 { "" } else { "s" },
        names.join(", "),
        args.out.display()
    );
    Ok(())
}

/// Whether an event time is within `--from` and `--to` where they are times.
fn within_times(args: &DatasetArgs, t_ns: u64) -> bool {
    let after_from = !matches!(args.from, Some(Bound::Time(from)) if t_ns < from);
    let before_to = !matches!(args.to, Some(Bound::Time(to)) if t_ns >= to);
    after_from && before_to
}

/// Writes the dataset to `path`; returns (rows, instruments).
fn write(
    args: &DatasetArgs,
    journal: &Path,
    horizons: &Horizons,
    path: &Path,
) -> anyhow::Result<(u64, usize)> {
    let selection = Selection {
        types: vec![record_type::FEATURE_SNAPSHOT],
        symbol: args.symbol.clone(),
        from: args.from,
        to: args.to,
        ..Selection::default()
    };
    let mut decoder = FrameDecoder::new();
    let mut cursor =
        open_cursor(journal, selection, &mut decoder).with_context(|| journal_context(journal))?;
    let mut writer = DatasetWriter::create(path, horizons)?;
    let mut join = ForwardJoin::new(horizons.clone());
    let mut failed = None;
    let mut instruments = std::collections::BTreeSet::new();
    while let Some(view) = next_view(&mut cursor, &mut decoder, journal, true)? {
        if view.is_invalid() {
            continue;
        }
        let row = Row::of(&view);
        // The cursor selects by the frame's stamp, taken as the snapshot was journaled (after
        // the event's orders): a time bound is the event's.
        if !within_times(args, row.t_ns) {
            continue;
        }
        instruments.insert(row.instrument_id);
        let (instrument, t, mid) = (row.instrument_id, row.t_ns, row.features[0]);
        join.push(instrument, t, mid, row, |row, returns| {
            if failed.is_none() {
                failed = writer.append(row, returns).err();
            }
        })?;
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    join.finish(|row, returns| {
        if failed.is_none() {
            failed = writer.append(row, returns).err();
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let rows = writer.finish()?;
    if rows == 0 {
        bail!(
            "{}: no feature snapshot{} to make a dataset of; the daemon journals them with \
             [features] journal = \"book\" or an interval (docs/research.md)",
            journal.display(),
            args.symbol
                .as_deref()
                .map_or_else(String::new, |s| format!(" of {s}"))
        );
    }
    Ok((rows, instruments.len()))
}
