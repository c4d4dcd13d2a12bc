//! The Arrow side of the view's columns: each [`ColumnType`] as an Arrow type ([`data_type`]),
//! a kind's file schema ([`file_schema`]), and [`RowBuilder`], which appends views' fields to
//! Arrow builders and hands them over as a `RecordBatch`.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    StructBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use levibot_view::{COMMON_COLUMNS, Column, ColumnType, RecordKind, Val, View};
use rust_decimal::Decimal;

use crate::ExportError;

/// Digits of every decimal column: Decimal128's most, so that any scale up to the finest an
/// instrument def may have leaves room for the integer part.
pub const DECIMAL_PRECISION: u8 = 38;

/// The time zone of every timestamp column.
const UTC: &str = "UTC";

/// Columns of the JSON object that the partition path carries instead (`type=`, `symbol=`).
pub const PARTITION_COLUMNS: [&str; 2] = ["type", "symbol"];

/// The decimal scales of an export's price and quantity columns (one of each for every file,
/// see the module doc of [`mod@crate::export`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scales {
    pub price: u8,
    pub qty: u8,
}

/// How a column of this type is stored.
pub fn data_type(ty: ColumnType, scales: Scales) -> DataType {
    match ty {
        ColumnType::U16 => DataType::UInt16,
        ColumnType::U32 => DataType::UInt32,
        ColumnType::U64 => DataType::UInt64,
        ColumnType::I64 => DataType::Int64,
        ColumnType::F64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Text => DataType::Utf8,
        ColumnType::Price => decimal(scales.price),
        ColumnType::Qty => decimal(scales.qty),
        ColumnType::Time | ColumnType::UnixNs | ColumnType::UnixMs => {
            DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
        }
        ColumnType::Levels => DataType::List(Arc::new(level_item(scales))),
    }
}

fn decimal(scale: u8) -> DataType {
    // Scales come from instrument defs (at most 28, JournalInstrument checks), so `as` is exact.
    DataType::Decimal128(DECIMAL_PRECISION, scale as i8)
}

/// The fields of one depth level.
fn level_fields(scales: Scales) -> Fields {
    Fields::from(vec![
        Field::new("px", decimal(scales.price), true),
        Field::new("qty", decimal(scales.qty), true),
    ])
}

/// The list item of a levels column: a struct of (px, qty).
fn level_item(scales: Scales) -> Field {
    Field::new_list_field(DataType::Struct(level_fields(scales)), true)
}

/// The columns of a kind's files: the JSON object's, but for the partition columns.
pub fn file_columns(kind: RecordKind) -> Vec<Column> {
    COMMON_COLUMNS
        .iter()
        .chain(kind.columns())
        .filter(|(name, _)| !PARTITION_COLUMNS.contains(name))
        .copied()
        .collect()
}

/// The Arrow schema of a kind's files; every column may be null.
pub fn file_schema(kind: RecordKind, scales: Scales) -> SchemaRef {
    let fields: Vec<Field> = file_columns(kind)
        .into_iter()
        .map(|(name, ty)| Field::new(name, data_type(ty, scales), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// One column's builder.
pub(crate) enum ColumnBuilder {
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Decimal(Decimal128Builder, u8),
    /// Nanoseconds per unit of the view's integer (1 for ns, 1,000,000 for ms).
    Time(TimestampNanosecondBuilder, u64),
    Levels(ListBuilder<StructBuilder>, Scales),
}

impl ColumnBuilder {
    pub fn new(ty: ColumnType, scales: Scales) -> ColumnBuilder {
        let decimal_builder = |scale| Decimal128Builder::new().with_data_type(decimal(scale));
        let time = |ns_per_unit| {
            ColumnBuilder::Time(
                TimestampNanosecondBuilder::new().with_timezone(UTC),
                ns_per_unit,
            )
        };
        match ty {
            ColumnType::U16 => ColumnBuilder::U16(UInt16Builder::new()),
            ColumnType::U32 => ColumnBuilder::U32(UInt32Builder::new()),
            ColumnType::U64 => ColumnBuilder::U64(UInt64Builder::new()),
            ColumnType::I64 => ColumnBuilder::I64(Int64Builder::new()),
            ColumnType::F64 => ColumnBuilder::F64(Float64Builder::new()),
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            ColumnType::Text => ColumnBuilder::Text(StringBuilder::new()),
            ColumnType::Price => {
                ColumnBuilder::Decimal(decimal_builder(scales.price), scales.price)
            }
            ColumnType::Qty => ColumnBuilder::Decimal(decimal_builder(scales.qty), scales.qty),
            ColumnType::Time | ColumnType::UnixNs => time(1),
            ColumnType::UnixMs => time(1_000_000),
            ColumnType::Levels => {
                let level = StructBuilder::new(
                    level_fields(scales),
                    vec![
                        Box::new(decimal_builder(scales.price)),
                        Box::new(decimal_builder(scales.qty)),
                    ],
                );
                ColumnBuilder::Levels(
                    ListBuilder::new(level).with_field(Arc::new(level_item(scales))),
                    scales,
                )
            }
        }
    }

    /// Appends one value; what it adds to the batch's size, roughly, in bytes.
    pub fn append(&mut self, val: &Val) -> Result<usize, Mismatch> {
        const FIXED: usize = 16;
        match (self, val) {
            (ColumnBuilder::U16(b), Val::Null) => b.append_null(),
            (ColumnBuilder::U16(b), Val::U64(v)) => b.append_value(narrow(*v)?),
            (ColumnBuilder::U32(b), Val::Null) => b.append_null(),
            (ColumnBuilder::U32(b), Val::U64(v)) => b.append_value(narrow(*v)?),
            (ColumnBuilder::U64(b), v) => b.append_option(opt(v, |v| match v {
                Val::U64(v) => Some(*v),
                _ => None,
            })?),
            (ColumnBuilder::I64(b), v) => b.append_option(opt(v, |v| match v {
                Val::I64(v) => Some(*v),
                _ => None,
            })?),
            // Not finite (a feature that does not exist yet) is null, as in JSON.
            (ColumnBuilder::F64(b), v) => b.append_option(
                opt(v, |v| match v {
                    Val::F64(v) => Some(*v),
                    _ => None,
                })?
                .filter(|v| v.is_finite()),
            ),
            (ColumnBuilder::Bool(b), v) => b.append_option(opt(v, |v| match v {
                Val::Bool(v) => Some(*v),
                _ => None,
            })?),
            (ColumnBuilder::Text(b), Val::Null) => b.append_null(),
            (ColumnBuilder::Text(b), Val::Str(text)) => {
                b.append_value(text);
                return Ok(FIXED + text.len());
            }
            (ColumnBuilder::Decimal(b, scale), v) => {
                let scale = *scale;
                b.append_option(
                    opt(v, |v| match v {
                        Val::Decimal(d) => Some(d),
                        _ => None,
                    })?
                    .map(|d| scaled(*d, scale))
                    .transpose()?,
                );
            }
            (ColumnBuilder::Time(b, ns_per_unit), v) => {
                let ns_per_unit = *ns_per_unit;
                let units = opt(v, |v| match v {
                    Val::Time(ns) | Val::U64(ns) => Some(*ns),
                    _ => None,
                })?;
                // Past Timestamp's range (the year 2262) only in a corrupt record: null, as
                // a decimal beyond its range is in the view.
                b.append_option(
                    units
                        .and_then(|u| u.checked_mul(ns_per_unit))
                        .and_then(|ns| i64::try_from(ns).ok()),
                );
            }
            (ColumnBuilder::Levels(b, _), Val::Null) => b.append_null(),
            (ColumnBuilder::Levels(b, scales), Val::Levels(levels)) => {
                let scales = *scales;
                let values = b.values();
                for (px, qty) in levels {
                    let px = px.map(|d| scaled(d, scales.price)).transpose()?;
                    let qty = qty.map(|d| scaled(d, scales.qty)).transpose()?;
                    decimals(values, 0).append_option(px);
                    decimals(values, 1).append_option(qty);
                    values.append(true);
                }
                b.append(true);
                return Ok(FIXED + 34 * levels.len());
            }
            _ => return Err(Mismatch::Type),
        }
        Ok(FIXED)
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::U16(b) => Arc::new(b.finish()),
            ColumnBuilder::U32(b) => Arc::new(b.finish()),
            ColumnBuilder::U64(b) => Arc::new(b.finish()),
            ColumnBuilder::I64(b) => Arc::new(b.finish()),
            ColumnBuilder::F64(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Time(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Levels(b, _) => Arc::new(b.finish()),
        }
    }
}

/// A level's px (0) or qty (1) builder.
fn decimals(level: &mut StructBuilder, i: usize) -> &mut Decimal128Builder {
    level
        .field_builder::<Decimal128Builder>(i)
        .expect("a level is a struct of two decimals (ColumnBuilder::new)")
}

/// Why a value did not go into its column.
#[derive(Debug)]
pub(crate) enum Mismatch {
    /// Not of the column's type.
    Type,
    /// An integer wider than the column, or a decimal finer than its scale or beyond its
    /// precision.
    Range,
}

impl Mismatch {
    pub fn why(&self) -> &'static str {
        match self {
            Mismatch::Type => "not of the column's type",
            Mismatch::Range => "out of the column's range",
        }
    }
}

/// A value of a column that is `Val::Null` or what `get` takes out of it.
fn opt<'v, T>(val: &'v Val, get: impl Fn(&'v Val) -> Option<T>) -> Result<Option<T>, Mismatch> {
    match val {
        Val::Null => Ok(None),
        val => get(val).map(Some).ok_or(Mismatch::Type),
    }
}

fn narrow<T: TryFrom<u64>>(v: u64) -> Result<T, Mismatch> {
    T::try_from(v).map_err(|_| Mismatch::Range)
}

/// `d` as an integer of `10^-scale`, exactly: an error if `d` is finer than the scale or does not
/// fit the column's precision.
fn scaled(d: Decimal, scale: u8) -> Result<i128, Mismatch> {
    let finer_by = u32::from(scale)
        .checked_sub(d.scale())
        .ok_or(Mismatch::Range)?;
    let value = 10i128
        .checked_pow(finer_by)
        .and_then(|factor| d.mantissa().checked_mul(factor))
        .ok_or(Mismatch::Range)?;
    let limit = 10i128.pow(u32::from(DECIMAL_PRECISION));
    if value.abs() >= limit {
        return Err(Mismatch::Range);
    }
    Ok(value)
}

/// Views of one kind appended as rows, handed over as a batch.
pub struct RowBuilder {
    kind: RecordKind,
    schema: SchemaRef,
    /// The file's columns: their names and where each is in the view's fields.
    columns: Vec<(&'static str, usize)>,
    builders: Vec<ColumnBuilder>,
    rows: usize,
    bytes: usize,
}

impl RowBuilder {
    pub fn new(kind: RecordKind, scales: Scales) -> RowBuilder {
        let all: Vec<&str> = COMMON_COLUMNS
            .iter()
            .chain(kind.columns())
            .map(|c| c.0)
            .collect();
        let file = file_columns(kind);
        RowBuilder {
            kind,
            schema: file_schema(kind, scales),
            columns: file
                .iter()
                .map(|(name, _)| {
                    let at = all.iter().position(|n| n == name);
                    (*name, at.expect("a file column is a column of the kind"))
                })
                .collect(),
            builders: file
                .iter()
                .map(|(_, ty)| ColumnBuilder::new(*ty, scales))
                .collect(),
            rows: 0,
            bytes: 0,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows appended since the last batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Roughly the bytes the rows since the last batch hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a valid view of this builder's kind.
    pub fn append(&mut self, view: &View) -> Result<(), ExportError> {
        let fields = view.fields();
        debug_assert_eq!(view.kind, Some(self.kind));
        for ((name, at), builder) in self.columns.iter().zip(&mut self.builders) {
            let value = fields.get(*at).map_or(&Val::Null, |f| &f.1);
            match builder.append(value) {
                Ok(bytes) => self.bytes += bytes,
                Err(mismatch) => {
                    return Err(ExportError::Value {
                        kind: self.kind.name(),
                        column: name,
                        position: view.meta.position,
                        value: format!("{value:?}"),
                        why: mismatch.why(),
                    });
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as one batch; the builder starts again empty.
    pub fn batch(&mut self) -> Result<RecordBatch, ExportError> {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        (self.rows, self.bytes) = (0, 0);
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(ExportError::Arrow)
    }

    /// Whether a builder holds anything (none should, between batches).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        use arrow_array::builder::ArrayBuilder as _;
        self.builders.iter().all(|b| match b {
            ColumnBuilder::U16(b) => b.is_empty(),
            ColumnBuilder::U32(b) => b.is_empty(),
            ColumnBuilder::U64(b) => b.is_empty(),
            ColumnBuilder::I64(b) => b.is_empty(),
            ColumnBuilder::F64(b) => b.is_empty(),
            ColumnBuilder::Bool(b) => b.is_empty(),
            ColumnBuilder::Text(b) => b.is_empty(),
            ColumnBuilder::Decimal(b, _) => b.is_empty(),
            ColumnBuilder::Time(b, _) => b.is_empty(),
            ColumnBuilder::Levels(b, _) => b.is_empty(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_scaled_exactly_or_refused() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(scaled(d("0.03512"), 8).unwrap(), 3_512_000);
        assert_eq!(scaled(d("-91234.56"), 2).unwrap(), -9_123_456);
        assert_eq!(scaled(d("0"), 0).unwrap(), 0);
        assert!(matches!(scaled(d("0.001"), 2), Err(Mismatch::Range)));
        // 28 digits at scale 11 are 39: beyond DECIMAL(38).
        let widest = d("9999999999999999999999999999");
        assert_eq!(
            scaled(widest, 10).unwrap(),
            widest.mantissa() * 10i128.pow(10)
        );
        assert!(matches!(scaled(widest, 11), Err(Mismatch::Range)));
    }

    #[test]
    fn every_kind_has_a_schema_without_the_partition_columns() {
        let scales = Scales { price: 8, qty: 3 };
        for kind in RecordKind::ALL {
            let schema = file_schema(kind, scales);
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert!(
                !names.contains(&"type") && !names.contains(&"symbol"),
                "{kind:?}"
            );
            let symbol = usize::from(kind.columns().iter().any(|c| c.0 == "symbol"));
            assert_eq!(
                names.len() + 1 + symbol,
                COMMON_COLUMNS.len() + kind.columns().len()
            );
            let mut rows = RowBuilder::new(kind, scales);
            let batch = rows.batch().unwrap();
            assert_eq!(batch.schema(), schema);
            assert!(rows.is_empty());
        }
        let depth = file_schema(RecordKind::DepthDiff, scales);
        assert_eq!(
            depth
                .field_with_name("bids")
                .unwrap()
                .data_type()
                .to_string(),
            "List(Struct(\"px\": Decimal128(38, 8), \"qty\": Decimal128(38, 3)))"
        );
    }
}
