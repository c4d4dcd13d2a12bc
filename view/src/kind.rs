//! The journal's record types this crate decodes ([`RecordKind`]): their `--type` names, their
//! record type numbers, and the columns of their JSON objects and CSV rows.

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
}

/// Every kind, with its record type and its `--type` name.
const KINDS: [(RecordKind, RecordType, &str); 14] = [
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
];

/// The `--type` names, for `--help` (a unit test keeps it equal to the table).
pub const TYPE_NAMES_HELP: &str = "book_ticker, depth_diff, trade, agg_trade, raw_message, \
     instrument_def, order_request, order_sent, risk_reject, execution_report, fix_seq_nums, \
     daemon_event, config_text, feature_snapshot";

/// Fields every JSON object and CSV row starts with.
pub const COMMON_COLUMNS: [&str; 9] = [
    "pos",
    "ts",
    "ts_unix_ns",
    "type",
    "epoch",
    "writer",
    "writer_id",
    "seq",
    "tsc",
];

const ORDER_COLUMNS: [&str; 12] = [
    "instrument_id",
    "symbol",
    "kind",
    "side",
    "ord_type",
    "time_in_force",
    "post_only",
    "px",
    "qty",
    "client_order_id",
    "orig_client_order_id",
    "strategy_id",
];

const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N);
    let mut out = [""; N];
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

const ORDER_SENT_COLUMNS: [&str; 21] = concat(
    ORDER_COLUMNS,
    [
        "msg_seq_num",
        "encoded_len",
        "decode_ns",
        "strategy_ns",
        "risk_ns",
        "encode_ns",
        "between_stages_ns",
        "tick_to_trade_ns",
        "due_to_trade_ns",
    ],
);

const RISK_REJECT_COLUMNS: [&str; 16] =
    concat(ORDER_COLUMNS, ["check", "check_code", "limit", "value"]);

const FEATURE_SNAPSHOT_COLUMNS: [&str; 16] = concat(
    concat::<4, 7, 11>(
        ["instrument_id", "symbol", "strategy_id", "event_unix_ns"],
        FEATURE_NAMES,
    ),
    ["output", "model_id", "book_synced", "paused", "recv_tsc"],
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

    /// The fields of this kind after [`COMMON_COLUMNS`], in order: the CSV columns of an export
    /// of this type, and the JSON fields of a valid record.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            RecordKind::BookTicker => &[
                "instrument_id",
                "symbol",
                "update_id",
                "bid_px",
                "bid_qty",
                "ask_px",
                "ask_qty",
                "recv_tsc",
            ],
            RecordKind::DepthDiff => &[
                "instrument_id",
                "symbol",
                "first_update_id",
                "final_update_id",
                "event_time_ms",
                "chunk",
                "chunk_count",
                "bid_count",
                "ask_count",
                "bids",
                "asks",
                "recv_tsc",
            ],
            RecordKind::Trade => &[
                "instrument_id",
                "symbol",
                "trade_id",
                "px",
                "qty",
                "aggressor",
                "buyer_is_maker",
                "event_time_ms",
                "trade_time_ms",
                "recv_tsc",
            ],
            RecordKind::AggTrade => &[
                "instrument_id",
                "symbol",
                "agg_id",
                "first_trade_id",
                "last_trade_id",
                "px",
                "qty",
                "aggressor",
                "buyer_is_maker",
                "event_time_ms",
                "trade_time_ms",
                "recv_tsc",
            ],
            RecordKind::RawMessage => &["source_id", "len", "text", "recv_tsc"],
            RecordKind::InstrumentDef => &["instrument_id", "symbol", "price_unit", "qty_unit"],
            RecordKind::OrderRequest => &ORDER_COLUMNS,
            RecordKind::OrderSent => &ORDER_SENT_COLUMNS,
            RecordKind::RiskReject => &RISK_REJECT_COLUMNS,
            RecordKind::ExecutionReport => &[
                "instrument_id",
                "symbol",
                "client_order_id",
                "venue_order_id",
                "exec_type",
                "ord_status",
                "side",
                "px",
                "last_px",
                "last_qty",
                "cum_qty",
                "leaves_qty",
                "reject_reason",
                "recv_tsc",
            ],
            RecordKind::FixSeqNums => &["next_sender", "next_target"],
            RecordKind::DaemonEvent => &[
                "event",
                "event_code",
                "value",
                "source",
                "peer_uid",
                "event_unix_ns",
            ],
            RecordKind::ConfigText => &["len", "text"],
            RecordKind::FeatureSnapshot => &FEATURE_SNAPSHOT_COLUMNS,
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
