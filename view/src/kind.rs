//! The journal's record types this crate decodes ([`RecordKind`]): their `--type` names, their
//! record type numbers, and the columns of their JSON objects, CSV rows and Parquet files, each
//! with its [`ColumnType`].

use levibot_shm::RecordType;
use levibot_shm::codes::writer_id;
use levibot_shm::records::{FEATURE_NAMES, record_type};

/// The journal's record types that this tool decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    BookTicker,
    DepthDiff,
    Trade,
    AggTrade,
    RawMessage,
    InstrumentDef,
    OrderRequest,
    OrderSent,
    RiskReject,
    ExecutionReport,
    FixSeqNums,
    DaemonEvent,
    ConfigText,
    FeatureSnapshot,
    ModelInForce,
}

/// Every kind, with its record type and its `--type` name.
const KINDS: [(RecordKind, RecordType, &str); 15] = [
    (
        RecordKind::BookTicker,
        record_type::BOOK_TICKER,
        "book_ticker",
    ),
    (RecordKind::DepthDiff, record_type::DEPTH_DIFF, "depth_diff"),
    (RecordKind::Trade, record_type::TRADE, "trade"),
    (RecordKind::AggTrade, record_type::AGG_TRADE, "agg_trade"),
    (
        RecordKind::RawMessage,
        record_type::RAW_MESSAGE,
        "raw_message",
    ),
    (
        RecordKind::InstrumentDef,
        record_type::INSTRUMENT_DEF,
        "instrument_def",
    ),
    (
        RecordKind::OrderRequest,
        record_type::ORDER_REQUEST,
        "order_request",
    ),
    (RecordKind::OrderSent, record_type::ORDER_SENT, "order_sent"),
    (
        RecordKind::RiskReject,
        record_type::RISK_REJECT,
        "risk_reject",
    ),
    (
        RecordKind::ExecutionReport,
        record_type::EXECUTION_REPORT,
        "execution_report",
    ),
    (
        RecordKind::FixSeqNums,
        record_type::FIX_SEQ_NUMS,
        "fix_seq_nums",
    ),
    (
        RecordKind::DaemonEvent,
        record_type::DAEMON_EVENT,
        "daemon_event",
    ),
    (
        RecordKind::ConfigText,
        record_type::CONFIG_TEXT,
        "config_text",
    ),
    (
        RecordKind::FeatureSnapshot,
        record_type::FEATURE_SNAPSHOT,
        "feature_snapshot",
    ),
    (
        RecordKind::ModelInForce,
        record_type::MODEL_IN_FORCE,
        "model_in_force",
    ),
];

/// The `--type` names, for `--help` (a unit test keeps it equal to the table).
pub const TYPE_NAMES_HELP: &str = "book_ticker, depth_diff, trade, agg_trade, raw_message, \
     instrument_def, order_request, order_sent, risk_reject, execution_report, fix_seq_nums, \
     daemon_event, config_text, feature_snapshot, model_in_force";

/// What a column holds: how the JSON object and the CSV row render it (the [`Val`] that
/// [`View::fields`] gives it), and how a typed format (`levictl export --format parquet`) stores
/// it. A column of any type may be null.
///
/// [`Val`]: crate::Val
/// [`View::fields`]: crate::View::fields
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Unsigned integers of the record's field width (`Val::U64`).
    U16,
    U32,
    U64,
    /// A signed integer (`Val::I64`).
    I64,
    /// A measured value, such as a feature (`Val::F64`; not finite is null).
    F64,
    Bool,
    /// A code's name (`buy`, `gateway`) or free text (`Val::Str`).
    Text,
    /// An exact decimal in the record's instrument's price unit (`Val::Decimal`; null without
    /// the instrument's def).
    Price,
    /// An exact decimal in the record's instrument's quantity unit (`Val::Decimal`).
    Qty,
    /// A wall-clock time, ns since the Unix epoch (`Val::Time`, RFC 3339 in JSON).
    Time,
    /// A wall-clock time as an integer of ns since the Unix epoch (`Val::U64`).
    UnixNs,
    /// A wall-clock time as an integer of ms since the Unix epoch (`Val::U64`): the venue's
    /// event times.
    UnixMs,
    /// Depth levels: (price, quantity) pairs (`Val::Levels`).
    Levels,
}

/// A column: its name (the JSON field and the CSV header) and what it holds.
pub type Column = (&'static str, ColumnType);

use ColumnType::{Bool, F64, I64, Levels, Price, Qty, Text, Time, U16, U32, U64, UnixMs, UnixNs};

/// Fields every JSON object and CSV row starts with.
pub const COMMON_COLUMNS: [Column; 9] = [
    ("pos", U64),
    ("ts", Time),
    ("ts_unix_ns", U64),
    ("type", Text),
    ("epoch", U64),
    ("writer", Text),
    ("writer_id", U16),
    ("seq", U64),
    ("tsc", U64),
];

const ORDER_COLUMNS: [Column; 13] = [
    ("instrument_id", U32),
    ("symbol", Text),
    ("kind", Text),
    ("side", Text),
    ("ord_type", Text),
    ("time_in_force", Text),
    ("post_only", Bool),
    ("px", Price),
    ("qty", Qty),
    ("client_order_id", U64),
    ("orig_client_order_id", U64),
    ("strategy_id", U16),
    ("model_tag", Text),
];

const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [Column; A],
    b: [Column; B],
) -> [Column; N] {
    assert!(A + B == N);
    let mut out = [("", U64); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// A trade's and an aggregated trade's columns after their ids.
const TRADE_TAIL_COLUMNS: [Column; 7] = [
    ("px", Price),
    ("qty", Qty),
    ("aggressor", Text),
    ("buyer_is_maker", Bool),
    ("event_time_ms", UnixMs),
    ("trade_time_ms", UnixMs),
    ("recv_tsc", U64),
];

const TRADE_COLUMNS: [Column; 10] = concat(
    [("instrument_id", U32), ("symbol", Text), ("trade_id", U64)],
    TRADE_TAIL_COLUMNS,
);

const AGG_TRADE_COLUMNS: [Column; 12] = concat(
    [
        ("instrument_id", U32),
        ("symbol", Text),
        ("agg_id", U64),
        ("first_trade_id", U64),
        ("last_trade_id", U64),
    ],
    TRADE_TAIL_COLUMNS,
);

const ORDER_SENT_COLUMNS: [Column; 22] = concat(
    ORDER_COLUMNS,
    [
        ("msg_seq_num", U64),
        ("encoded_len", U32),
        ("decode_ns", U64),
        ("strategy_ns", U64),
        ("risk_ns", U64),
        ("encode_ns", U64),
        ("between_stages_ns", U64),
        ("tick_to_trade_ns", U64),
        ("due_to_trade_ns", U64),
    ],
);

const RISK_REJECT_COLUMNS: [Column; 17] = concat(
    ORDER_COLUMNS,
    [
        ("check", Text),
        ("check_code", U16),
        ("limit", I64),
        ("value", I64),
    ],
);

/// A feature snapshot's features: measured values (prices in the asset's price).
const FEATURE_COLUMNS: [Column; FEATURE_NAMES.len()] = {
    let mut columns = [("", F64); FEATURE_NAMES.len()];
    let mut i = 0;
    while i < columns.len() {
        columns[i].0 = FEATURE_NAMES[i];
        i += 1;
    }
    columns
};

const FEATURE_SNAPSHOT_COLUMNS: [Column; 16] = concat(
    concat::<4, 7, 11>(
        [
            ("instrument_id", U32),
            ("symbol", Text),
            ("strategy_id", U16),
            ("event_unix_ns", UnixNs),
        ],
        FEATURE_COLUMNS,
    ),
    [
        ("output", F64),
        ("model_id", Text),
        ("book_synced", Bool),
        ("paused", Bool),
        ("recv_tsc", U64),
    ],
);

impl RecordKind {
    pub const ALL: [RecordKind; KINDS.len()] = {
        let mut all = [RecordKind::BookTicker; KINDS.len()];
        let mut i = 0;
        while i < KINDS.len() {
            all[i] = KINDS[i].0;
            i += 1;
        }
        all
    };

    fn entry(self) -> &'static (RecordKind, RecordType, &'static str) {
        KINDS
            .iter()
            .find(|k| k.0 == self)
            .expect("every kind is in KINDS")
    }

    pub fn record_type(self) -> RecordType {
        self.entry().1
    }

    /// The snake_case name: `--type` and the JSON `type` field.
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    pub fn from_record_type(rt: RecordType) -> Option<RecordKind> {
        KINDS.iter().find(|k| k.1 == rt).map(|k| k.0)
    }

    /// By name, case-insensitively, `-` or `_` between words.
    pub fn from_name(name: &str) -> Option<RecordKind> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        KINDS.iter().find(|k| k.2 == name).map(|k| k.0)
    }

    /// Whether records of this kind name an instrument (so `--symbol` can select them).
    pub fn has_instrument(self) -> bool {
        !matches!(
            self,
            RecordKind::RawMessage
                | RecordKind::FixSeqNums
                | RecordKind::DaemonEvent
                | RecordKind::ConfigText
        )
    }

    /// The fields of this kind after [`COMMON_COLUMNS`], in order, with their types: the CSV
    /// columns of an export of this type, the JSON fields of a valid record, and the Parquet
    /// columns of `levictl export --format parquet`. A new kind's one entry.
    pub fn columns(self) -> &'static [Column] {
        match self {
            RecordKind::BookTicker => &[
                ("instrument_id", U32),
                ("symbol", Text),
                ("update_id", U64),
                ("bid_px", Price),
                ("bid_qty", Qty),
                ("ask_px", Price),
                ("ask_qty", Qty),
                ("recv_tsc", U64),
            ],
            RecordKind::DepthDiff => &[
                ("instrument_id", U32),
                ("symbol", Text),
                ("first_update_id", U64),
                ("final_update_id", U64),
                ("event_time_ms", UnixMs),
                ("chunk", U16),
                ("chunk_count", U16),
                ("bid_count", U16),
                ("ask_count", U16),
                ("bids", Levels),
                ("asks", Levels),
                ("recv_tsc", U64),
            ],
            RecordKind::Trade => &TRADE_COLUMNS,
            RecordKind::AggTrade => &AGG_TRADE_COLUMNS,
            RecordKind::RawMessage => &[
                ("source_id", U32),
                ("len", U64),
                ("text", Text),
                ("recv_tsc", U64),
            ],
            RecordKind::InstrumentDef => &[
                ("instrument_id", U32),
                ("symbol", Text),
                ("price_unit", Price),
                ("qty_unit", Qty),
            ],
            RecordKind::OrderRequest => &ORDER_COLUMNS,
            RecordKind::OrderSent => &ORDER_SENT_COLUMNS,
            RecordKind::RiskReject => &RISK_REJECT_COLUMNS,
            RecordKind::ExecutionReport => &[
                ("instrument_id", U32),
                ("symbol", Text),
                ("client_order_id", U64),
                ("venue_order_id", U64),
                ("exec_type", Text),
                ("ord_status", Text),
                ("side", Text),
                ("px", Price),
                ("last_px", Price),
                ("last_qty", Qty),
                ("cum_qty", Qty),
                ("leaves_qty", Qty),
                ("reject_reason", U32),
                ("recv_tsc", U64),
            ],
            RecordKind::FixSeqNums => &[("next_sender", U64), ("next_target", U64)],
            RecordKind::DaemonEvent => &[
                ("event", Text),
                ("event_code", U16),
                ("value", I64),
                ("source", Text),
                ("peer_uid", U32),
                ("event_unix_ns", UnixNs),
            ],
            RecordKind::ConfigText => &[("len", U64), ("text", Text)],
            RecordKind::FeatureSnapshot => &FEATURE_SNAPSHOT_COLUMNS,
            RecordKind::ModelInForce => &[
                ("instrument_id", U32),
                ("symbol", Text),
                ("model_id", Text),
                ("sha256", Text),
                ("path", Text),
                ("reload", U32),
                ("event_unix_ns", UnixNs),
            ],
        }
    }
}

/// A `--type` argument: a name from [`TYPE_NAMES_HELP`], or a record type number (`0x201`, for
/// types this tool does not know).
pub fn parse_record_type(arg: &str) -> Result<RecordType, String> {
    if let Some(kind) = RecordKind::from_name(arg) {
        return Ok(kind.record_type());
    }
    let arg = arg.trim();
    let number = match arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => arg.parse::<u16>().ok(),
    };
    number
        .filter(|&n| n >= RecordType::FIRST_USER)
        .map(RecordType)
        .ok_or_else(|| {
            format!("unknown record type {arg:?}; one of: {TYPE_NAMES_HELP}, or 0x100..0xffff")
        })
}

/// A writer id's name (the pipeline's stages), or `w<id>`.
pub fn writer_name(id: u16) -> String {
    writer_id::name(id).map_or_else(|| format!("w{id}"), str::to_owned)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_parse_and_match_the_help() {
        let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.join(", "), TYPE_NAMES_HELP);
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_record_type(kind.record_type()), Some(kind));
            assert_eq!(
                parse_record_type(&kind.name().to_ascii_uppercase()),
                Ok(kind.record_type())
            );
        }
        assert_eq!(parse_record_type("order-sent"), Ok(record_type::ORDER_SENT));
        assert_eq!(parse_record_type("0x999"), Ok(RecordType(0x999)));
        assert!(parse_record_type("0x10").is_err());
        assert!(parse_record_type("orders").is_err());
    }
}
