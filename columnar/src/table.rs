//! A table of named, typed columns in one Parquet file, written row by row: a backtest's
//! summary (one row), a sweep's table (one row per point).
//!
//! Columns are typed as an export's are ([`ColumnType`]: `U64` as `UInt64`, `F64` as `Float64`
//! with a value that is not finite as null, `Text` as `Utf8`, `UnixNs` as `Timestamp(ns,
//! "UTC")`, `Price`/`Qty` as `Decimal128(38, S)` at the table's [`Scales`] ...), every one
//! nullable. Names must be distinct. Rows go to the file in batches of [`BATCH_ROWS`], so a
//! long table holds one batch in memory; the file is one row group up to [`ROW_GROUP_ROWS`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use levibot_view::{ColumnType, Val};

use crate::columns::{ColumnBuilder, Scales, data_type};
use crate::file::{ParquetFile, RowGroups};
use crate::{ExportError, Producer};

/// Rows appended before they go to the Parquet writer as one batch.
pub const BATCH_ROWS: usize = 4_096;
/// Rows of one row group at most.
pub const ROW_GROUP_ROWS: usize = 1_048_576;

/// One column: its name and type.
pub type TableColumn = (String, ColumnType);

/// A table being written (see the module doc).
pub struct TableWriter {
    path: PathBuf,
    schema: SchemaRef,
    names: Vec<String>,
    builders: Vec<ColumnBuilder>,
    file: ParquetFile,
    /// Rows in the builders, and in the file before them.
    pending: usize,
    written: u64,
}

impl TableWriter {
    /// Creates `path` (which must not exist) for a table of `columns`; `metadata` is the file's
    /// key-value metadata, each key prefixed `levibot.`. Two columns of one name are refused.
    pub fn create(
        path: &Path,
        columns: &[TableColumn],
        scales: Scales,
        producer: Producer,
        metadata: &[(&str, String)],
    ) -> Result<TableWriter, ExportError> {
        let mut seen = BTreeSet::new();
        if let Some((twice, _)) = columns.iter().find(|(name, _)| !seen.insert(name)) {
            return Err(ExportError::Table {
                path: path.to_owned(),
                why: format!("two columns are named {twice:?}"),
            });
        }
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, ty)| Field::new(name.as_str(), data_type(*ty, scales), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let row_groups = RowGroups {
            rows_max: ROW_GROUP_ROWS,
            bytes_max: usize::MAX,
        };
        let file = ParquetFile::create(path, schema.clone(), producer, row_groups, metadata)?;
        Ok(TableWriter {
            path: path.to_owned(),
            schema,
            names: columns.iter().map(|c| c.0.clone()).collect(),
            builders: columns
                .iter()
                .map(|(_, ty)| ColumnBuilder::new(*ty, scales))
                .collect(),
            file,
            pending: 0,
            written: 0,
        })
    }

    /// Appends one row: a value per column, in the columns' order. A row of another length,
    /// or a value its column cannot hold, is an error naming them; the table is then left
    /// unfinished (drop it, and the file with it).
    pub fn append(&mut self, row: &[Val]) -> Result<(), ExportError> {
        let row_index = self.written + self.pending as u64;
        if row.len() != self.builders.len() {
            return Err(ExportError::Table {
                path: self.path.clone(),
                why: format!(
                    "row {row_index} has {} values for {} columns",
                    row.len(),
                    self.builders.len()
                ),
            });
        }
        for ((builder, value), name) in self.builders.iter_mut().zip(row).zip(&self.names) {
            if let Err(mismatch) = builder.append(value) {
                return Err(ExportError::Table {
                    path: self.path.clone(),
                    why: format!(
                        "row {row_index}, column {name}: {value:?} is {}",
                        mismatch.why()
                    ),
                });
            }
        }
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(ExportError::Arrow)?;
        self.file.write(&batch)?;
        self.written += self.pending as u64;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is left and the footer, and syncs the file; the rows written.
    pub fn finish(mut self) -> Result<u64, ExportError> {
        self.write_batch()?;
        let written = self.written;
        self.file.finish()?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use arrow_array::Array as _;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, TimestampNanosecondType, UInt64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    const PRODUCER: Producer = Producer {
        name: "levibot-parquet-test",
        version: "0",
        context: "test",
    };

    fn columns() -> Vec<TableColumn> {
        vec![
            ("count".into(), ColumnType::U64),
            ("ratio".into(), ColumnType::F64),
            ("name".into(), ColumnType::Text),
            ("start_t_ns".into(), ColumnType::UnixNs),
        ]
    }

    #[test]
    fn a_table_reads_back_typed_with_nulls_where_values_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut table = TableWriter::create(
            &path,
            &columns(),
            Scales::default(),
            PRODUCER,
            &[("kind", "test".into())],
        )
        .unwrap();
        let rows = BATCH_ROWS + 3;
        for i in 0..rows as u64 {
            let ratio = if i == 1 { Val::Null } else { Val::F64(0.5) };
            let row = [
                Val::U64(i),
                ratio,
                Val::Str(format!("p{i}")),
                Val::U64(1_700_000_000_123_456_789 + i),
            ];
            table.append(&row).unwrap();
        }
        assert_eq!(table.finish().unwrap(), rows as u64);

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let metadata = reader.metadata().file_metadata().clone();
        assert_eq!(metadata.created_by(), Some("levibot-parquet-test 0"));
        let kv = metadata.key_value_metadata().unwrap();
        assert_eq!(kv[0].key, "levibot.kind");
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(read, rows);
        let first = &batches[0];
        assert_eq!(
            first.schema().field(3).data_type().to_string(),
            "Timestamp(ns, \"UTC\")"
        );
        assert_eq!(first.column(0).as_primitive::<UInt64Type>().value(2), 2);
        let ratio = first.column(1).as_primitive::<Float64Type>();
        assert!(ratio.is_null(1) && ratio.value(0) == 0.5);
        assert_eq!(first.column(2).as_string::<i32>().value(5), "p5");
        let t = first.column(3).as_primitive::<TimestampNanosecondType>();
        assert_eq!(t.value(1), 1_700_000_000_123_456_790);
    }

    #[test]
    fn bad_tables_and_rows_are_refused_naming_what() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut twice = columns();
        twice.push(("ratio".into(), ColumnType::U64));
        let err = TableWriter::create(&path, &twice, Scales::default(), PRODUCER, &[])
            .err()
            .unwrap();
        assert!(err.to_string().contains("two columns are named \"ratio\""));
        let mut table =
            TableWriter::create(&path, &columns(), Scales::default(), PRODUCER, &[]).unwrap();
        let err = table.append(&[Val::U64(1)]).unwrap_err();
        assert!(err.to_string().contains("row 0 has 1 values for 4 columns"));
        let row = [Val::Str("x".into()), Val::Null, Val::Null, Val::Null];
        let err = table.append(&row).unwrap_err();
        assert!(
            err.to_string()
                .contains("row 0, column count: Str(\"x\") is not of the column's type"),
            "{err}"
        );
        // The file exists: a second writer does not overwrite it.
        assert!(TableWriter::create(&path, &columns(), Scales::default(), PRODUCER, &[]).is_err());
    }
}
