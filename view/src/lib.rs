//! Journal records as people and DuckDB read them, shared by `levictl tail`, `stat` and
//! `export`.
//!
//! - [`FrameDecoder`] turns one frame (record type, payload and frame metadata) into a [`View`]: the
//!   record decoded, its instrument resolved from the `INSTRUMENT_DEF`s seen so far, its time from
//!   the frame's TSC stamp and the segment's calibration. A short or corrupt payload becomes an
//!   `invalid` view and an unknown record type a generic one: decoding never fails or panics.
//! - A view renders as one human line ([`View::human`], like journalctl) or as a flat JSON
//!   object ([`View::fields`], [`View::to_json`]) whose field names are stable: the
//!   [`COMMON_COLUMNS`] of every record, then those of its type ([`RecordKind::columns`]).
//!   Prices and quantities are exact decimal strings (`units x mantissa x 10^-exp`). Each
//!   column has a [`ColumnType`], and each value ([`Val`]) keeps its type (exact decimals,
//!   times, depth levels), so that a typed format (`levictl export --format parquet`) stores
//!   what JSON renders as text.
//! - [`FrameReader`] and [`Cursor`] read frames one at a time (so each frame is paired with the
//!   calibration and epoch of its own segment), and [`open_cursor`] seeks to a position or a
//!   time without reading the whole journal: it probes segment headers instead.
//!
//! Positions are printed as the journal's [`Position`]: one integer (`segment_index x
//! segment_size + offset`), growing across segments and runs; `--since`/`--from` take it back.
//!
//! The crate's modules, each with one job:
//!
//! - `kind`: the record types this crate decodes, their `--type` names and their columns with
//!   their types.
//! - `time`: RFC 3339 times and durations, and the `--since`/`--from`/`--to` bounds.
//! - `instrument`: instruments as the journal's `INSTRUMENT_DEF`s give them, and exact decimals.
//! - `view`: the decoding context ([`FrameDecoder`]) and the decoded record ([`View`]), rendered as
//!   a human line, JSON fields or a CSV row by its child modules.
//! - `reader`, `cursor` and `segments`: reading frames, selecting records, and seeking by
//!   segment headers.
//!
//! [`Position`]: levibot_shm::Position

mod cursor;
mod instrument;
mod kind;
mod reader;
mod segments;
mod time;
mod view;

pub use cursor::{Cursor, Selection, Step, TO_TIME_SLACK_NS, open_cursor};
pub use instrument::{JournalInstrument, Unit};
pub use kind::{
    COMMON_COLUMNS, Column, ColumnType, RecordKind, TYPE_NAMES_HELP, parse_record_type, writer_name,
};
pub use reader::{Event, FrameReader};
pub use segments::{PRELOAD_FRAMES_MAX, Segments};
pub use time::{Bound, format_duration_ns, format_unix_ns, parse_bound, parse_rfc3339};
pub use view::{
    Fields, FrameDecoder, FrameMeta, HUMAN_TEXT_CHARS_MAX, INSTRUMENTS_MAX, LevelVal, Ordered, Val,
    View, csv_columns, trading_state_name,
};
