//! One Parquet file being written: created new (never over another), snappy-compressed, named
//! by its producer, with `levibot.<key>` metadata; finished with its footer and synced.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{ExportError, Producer};

/// How large a file's row groups grow before they are written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowGroups {
    pub rows_max: usize,
    pub bytes_max: usize,
}

pub(crate) struct ParquetFile {
    path: PathBuf,
    writer: ArrowWriter<File>,
}

impl ParquetFile {
    /// Creates `path` (which must not exist) for batches of `schema`; `metadata` is the
    /// file's key-value metadata, each key prefixed `levibot.`.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        producer: Producer,
        row_groups: RowGroups,
        metadata: &[(&str, String)],
    ) -> Result<ParquetFile, ExportError> {
        let file = File::create_new(path).map_err(|source| ExportError::Io {
            path: path.to_owned(),
            op: "creating",
            source,
        })?;
        let metadata = metadata
            .iter()
            .map(|(k, v)| KeyValue::new(format!("levibot.{k}"), v.clone()))
            .collect();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_groups.rows_max))
            .set_max_row_group_bytes(Some(row_groups.bytes_max))
            .set_created_by(format!("{} {}", producer.name, producer.version))
            .set_key_value_metadata(Some(metadata))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(|source| {
            ExportError::Parquet {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(ParquetFile {
            path: path.to_owned(),
            writer,
        })
    }

    fn parquet_error(&self) -> impl FnOnce(ParquetError) -> ExportError {
        let path = self.path.clone();
        move |source| ExportError::Parquet { path, source }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        self.writer.write(batch).map_err(self.parquet_error())
    }

    /// The encoded bytes of the row group in progress.
    pub fn memory_size(&self) -> usize {
        self.writer.memory_size()
    }

    /// Writes the row group in progress out.
    pub fn flush(&mut self) -> Result<(), ExportError> {
        self.writer.flush().map_err(self.parquet_error())
    }

    /// Writes the footer and syncs the file.
    pub fn finish(mut self) -> Result<(), ExportError> {
        self.writer.finish().map_err(self.parquet_error())?;
        self.writer
            .inner()
            .sync_all()
            .map_err(|source| ExportError::Io {
                path: self.path,
                op: "syncing",
                source,
            })
    }
}
