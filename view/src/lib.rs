//! Journal records as people and DuckDB read them, shared by `levictl tail`, `stat` and
//! `export`.
//!
//! - [`Decoder`] turns one frame (record type, payload and frame metadata) into a [`View`]: the
//!   record decoded, its instrument resolved from the `INSTRUMENT_DEF`s seen so far, its time from
//!   the frame's TSC stamp and the segment's calibration. A short or corrupt payload becomes an
//!   `invalid` view and an unknown record type a generic one: decoding never fails or panics.
//! - A view renders as one human line ([`View::human`], like journalctl) or as a flat JSON
//!   object ([`View::fields`], [`View::to_json`]) whose field names are stable: the
//!   [`COMMON_COLUMNS`] of every record, then those of its type ([`RecordKind::columns`]).
//!   Prices and quantities are exact decimal strings (`units x mantissa x 10^-exp`).
//! - [`FrameReader`] and [`Cursor`] read frames one at a time (so each frame is paired with the
//!   calibration and epoch of its own segment), and [`open_cursor`] seeks to a position or a
//!   time without reading the whole journal: it probes segment headers instead.
//!
//! Positions are printed as the journal's [`Position`]: one integer (`segment_index x
//! segment_size + offset`), growing across segments and runs; `--since`/`--from` take it back.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use levibot_shm::codes::writer_id;
use levibot_shm::codes::{RiskCheck, TradingState, halt_reason};
use levibot_shm::records::{
    AggTrade, BookTicker, DaemonEvent, DepthDiff, ExecutionReport, FixSeqNums, InstrumentDef,
    Level, OrderRequest, RawMessageHeader, Record, RiskReject, SentOrder,
    TRADE_FLAG_BUYER_IS_MAKER, Trade, daemon_event, event_source, exec_type, ord_type, order_kind,
    record_type, side, time_in_force,
};
use levibot_shm::{
    Position, RecordType, ShmError, StartAt, Tailer, TscCalibration, WriterRestart, list_segments,
};
use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Instruments a [`Decoder`] remembers; defs beyond this are ignored (ids are the daemon's
/// instrument table, a few hundred at most).
pub const INSTRUMENTS_MAX: usize = 65_536;
/// Frames read from the start of a run to find its `INSTRUMENT_DEF`s (journaled at start-up).
pub const PRELOAD_FRAMES_MAX: usize = 65_536;
/// Characters of a raw message or config text shown on a human line.
pub const HUMAN_TEXT_CHARS_MAX: usize = 160;
/// A `--to` time stops a scan once frames are this much later: frames of different writers are
/// in claim order, which is time order give or take a scheduling hiccup.
pub const TO_TIME_SLACK_NS: u64 = 1_000_000_000;
/// Largest scale `rust_decimal` represents; a unit exponent beyond it is a corrupt def.
const DECIMAL_SCALE_MAX: u8 = 28;

// ---------------------------------------------------------------------------------------------
// Record kinds and their names
// ---------------------------------------------------------------------------------------------

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
}

/// Every kind, with its record type and its `--type` name.
const KINDS: [(RecordKind, RecordType, &str); 13] = [
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
];

/// The `--type` names, for `--help` (a unit test keeps it equal to the table).
pub const TYPE_NAMES_HELP: &str = "book_ticker, depth_diff, trade, agg_trade, raw_message, \
     instrument_def, order_request, order_sent, risk_reject, execution_report, fix_seq_nums, \
     daemon_event, config_text";

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

const ORDER_COLUMNS: [&str; 11] = [
    "instrument_id",
    "symbol",
    "kind",
    "side",
    "ord_type",
    "time_in_force",
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

const ORDER_SENT_COLUMNS: [&str; 20] = concat(
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

const RISK_REJECT_COLUMNS: [&str; 15] =
    concat(ORDER_COLUMNS, ["check", "check_code", "limit", "value"]);

impl RecordKind {
    pub const ALL: [RecordKind; 13] = {
        let mut all = [RecordKind::BookTicker; 13];
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

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// `2026-11-26T01:02:03.123456789Z` (RFC 3339, UTC, nanoseconds).
pub fn format_unix_ns(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 -> (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 (`2026-11-26T01:02:03.5Z`, `+02:00` offsets; a space for `T`; seconds and
/// the offset optional, no offset meaning UTC; or a bare date, its midnight UTC) into ns since
/// the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(i64::from(year), month, day) * 86_400;
    let mut nanos: i64 = 0;
    let mut rest = &b[10..];
    if !rest.is_empty() {
        if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
            return None;
        }
        let (hour, minute) = (num(&rest[1..3])?, num(&rest[4..6])?);
        if hour > 23 || minute > 59 {
            return None;
        }
        secs += i64::from(hour * 3600 + minute * 60);
        rest = &rest[6..];
        if rest.first() == Some(&b':') {
            let second = num(rest.get(1..3)?)?;
            if second > 60 {
                return None;
            }
            secs += i64::from(second);
            rest = &rest[3..];
            if rest.first() == Some(&b'.') {
                let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                let mut scale = 100_000_000;
                for &c in &rest[1..1 + digits.min(9)] {
                    nanos += i64::from(c - b'0') * scale;
                    scale /= 10;
                }
                rest = &rest[1 + digits..];
            }
        }
        match rest {
            [] | [b'Z' | b'z'] => {}
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let offset = i64::from(num(&[*h1, *h2])? * 3600 + num(&[*m1, *m2])? * 60);
                secs -= if *sign == b'+' { offset } else { -offset };
            }
            _ => return None,
        }
    }
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).ok()
}

/// `850ns`, `1.2us`, `3.4ms`, `1.2s`.
pub fn format_duration_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}

/// Where a `--since`, `--from` or `--to` points: a journal position or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A [`Position`] as printed in the `pos` field.
    Position(u64),
    /// Ns since the Unix epoch.
    Time(u64),
}

/// Longest relative time: a year.
const RELATIVE_SECS_MAX: u64 = 366 * 86_400;

/// Parses a position (an integer, as the `pos` field prints it), an RFC 3339 time, or a time
/// relative to now (`30s`, `10m`, `2h`, `1d`).
pub fn parse_bound(arg: &str) -> Result<Bound, String> {
    parse_bound_at(arg, levibot_shm::clock::unix_now_ns())
}

fn parse_bound_at(arg: &str, now_unix_ns: u64) -> Result<Bound, String> {
    let arg = arg.trim();
    if !arg.is_empty() && arg.bytes().all(|c| c.is_ascii_digit()) {
        return arg
            .parse()
            .map(Bound::Position)
            .map_err(|_| format!("position {arg} is out of range"));
    }
    let unit = arg
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, _)| i);
    if let Some(i) = unit.filter(|&i| i > 0) {
        let secs_per = match &arg[i..] {
            "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        if let Some(per) = secs_per {
            let n: u64 = arg[..i]
                .parse()
                .map_err(|_| format!("{arg:?}: bad number"))?;
            let secs = n.saturating_mul(per);
            if secs > RELATIVE_SECS_MAX {
                return Err(format!("{arg:?} is more than a year ago"));
            }
            return Ok(Bound::Time(
                now_unix_ns.saturating_sub(secs * 1_000_000_000),
            ));
        }
    }
    parse_rfc3339(arg).map(Bound::Time).ok_or_else(|| {
        format!(
            "{arg:?} is neither a journal position (an integer, the `pos` field), an RFC 3339 \
             time (2026-11-26T01:02:03Z) nor a relative time (30s, 10m, 2h, 1d)"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Instruments and decimals
// ---------------------------------------------------------------------------------------------

/// What one integer unit is worth: `mantissa x 10^-exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub mantissa: u64,
    pub exp: u8,
}

impl Unit {
    fn valid(self) -> bool {
        self.mantissa > 0 && self.exp <= DECIMAL_SCALE_MAX
    }

    /// `units x mantissa x 10^-exp`, exactly, without trailing zeros; `None` past Decimal's
    /// 96 bits (only a corrupt record gets there).
    pub fn decimal(self, units: i64) -> Option<Decimal> {
        let value = i128::from(units).checked_mul(i128::from(self.mantissa))?;
        Decimal::try_from_i128_with_scale(value, u32::from(self.exp))
            .ok()
            .map(|d| d.normalize())
    }
}

/// An instrument as a reader needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    pub id: u32,
    pub symbol: Arc<str>,
    pub price: Unit,
    pub qty: Unit,
}

impl Instrument {
    /// `None` for a def that is not what `InstrumentDef::new` writes, or whose symbol is not
    /// printable ASCII (venues' symbols are letters and digits): a corrupt or forged def must
    /// not put line breaks or terminal escapes into `levictl tail`'s lines.
    pub fn from_def(def: &InstrumentDef) -> Option<Instrument> {
        let symbol = def
            .symbol()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))?;
        let price = Unit {
            mantissa: def.price_mantissa,
            exp: def.price_exp,
        };
        let qty = Unit {
            mantissa: def.qty_mantissa,
            exp: def.qty_exp,
        };
        (price.valid() && qty.valid()).then(|| Instrument {
            id: def.instrument_id,
            symbol: symbol.into(),
            price,
            qty,
        })
    }
}

/// Decodes frames into views, remembering the instrument defs it has seen (the latest def of an
/// id wins).
#[derive(Debug, Default)]
pub struct Decoder {
    instruments: HashMap<u32, Instrument>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn instrument(&self, id: u32) -> Option<&Instrument> {
        self.instruments.get(&id)
    }

    /// Takes note of an `INSTRUMENT_DEF` payload (anything else, or a corrupt def, is ignored).
    pub fn learn(&mut self, rt: RecordType, payload: &[u8]) {
        if rt != record_type::INSTRUMENT_DEF {
            return;
        }
        let Some(instrument) = read_prefix::<InstrumentDef>(payload)
            .as_ref()
            .and_then(Instrument::from_def)
        else {
            return;
        };
        if self.instruments.len() < INSTRUMENTS_MAX || self.instruments.contains_key(&instrument.id)
        {
            self.instruments.insert(instrument.id, instrument);
        }
    }

    /// Decodes one frame. Never fails: see the module doc.
    pub fn decode(&mut self, meta: FrameMeta, cal: TscCalibration, payload: &[u8]) -> View {
        self.learn(meta.record_type, payload);
        let kind = RecordKind::from_record_type(meta.record_type);
        let body = match kind {
            None => Body::Unknown { len: payload.len() },
            Some(kind) => {
                decode_body(kind, payload).unwrap_or(Body::Invalid { len: payload.len() })
            }
        };
        let instrument = match &body {
            Body::InstrumentDef(def) => Instrument::from_def(def),
            body => body
                .instrument_id()
                .and_then(|id| self.instruments.get(&id).cloned()),
        };
        View {
            meta,
            cal,
            kind,
            body,
            instrument,
        }
    }
}

/// A fixed record from the start of a payload. Longer payloads are accepted: a newer minor
/// layout version may append fields that this reader ignores.
fn read_prefix<T: Record>(payload: &[u8]) -> Option<T> {
    T::from_bytes(payload.get(..size_of::<T>())?)
}

fn decode_body(kind: RecordKind, payload: &[u8]) -> Option<Body> {
    Some(match kind {
        RecordKind::BookTicker => Body::BookTicker(read_prefix(payload)?),
        RecordKind::DepthDiff => {
            let diff: DepthDiff = read_prefix(payload)?;
            if !diff.counts_are_valid() {
                return None;
            }
            Body::DepthDiff(Box::new(diff))
        }
        RecordKind::Trade => Body::Trade(read_prefix(payload)?),
        RecordKind::AggTrade => Body::AggTrade(read_prefix(payload)?),
        RecordKind::RawMessage => {
            // Not a `Record` (it only heads a frame): read by its drawn layout.
            let head = payload.get(..size_of::<RawMessageHeader>())?;
            let header = RawMessageHeader {
                recv_tsc: u64::from_le_bytes(head[0..8].try_into().ok()?),
                source_id: u32::from_le_bytes(head[8..12].try_into().ok()?),
                reserved: u32::from_le_bytes(head[12..16].try_into().ok()?),
            };
            Body::RawMessage {
                header,
                bytes: payload[head.len()..].to_vec(),
            }
        }
        RecordKind::InstrumentDef => {
            let def: InstrumentDef = read_prefix(payload)?;
            Instrument::from_def(&def)?;
            Body::InstrumentDef(def)
        }
        RecordKind::OrderRequest => Body::OrderRequest(read_prefix(payload)?),
        RecordKind::OrderSent => Body::OrderSent(read_prefix(payload)?),
        RecordKind::RiskReject => Body::RiskReject(read_prefix(payload)?),
        RecordKind::ExecutionReport => Body::ExecutionReport(read_prefix(payload)?),
        RecordKind::FixSeqNums => Body::FixSeqNums(read_prefix(payload)?),
        RecordKind::DaemonEvent => Body::DaemonEvent(read_prefix(payload)?),
        RecordKind::ConfigText => Body::ConfigText(payload.to_vec()),
    })
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// A frame's metadata, with its wall-clock time and the epoch of its writer run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    pub position: u64,
    pub record_type: RecordType,
    pub writer_id: u16,
    pub sequence: u64,
    pub tsc: u64,
    pub unix_ns: u64,
    pub epoch: u64,
}

#[derive(Clone, Debug)]
enum Body {
    BookTicker(BookTicker),
    DepthDiff(Box<DepthDiff>),
    Trade(Trade),
    AggTrade(AggTrade),
    RawMessage {
        header: RawMessageHeader,
        bytes: Vec<u8>,
    },
    InstrumentDef(InstrumentDef),
    OrderRequest(OrderRequest),
    OrderSent(SentOrder),
    RiskReject(RiskReject),
    ExecutionReport(ExecutionReport),
    FixSeqNums(FixSeqNums),
    DaemonEvent(DaemonEvent),
    ConfigText(Vec<u8>),
    /// A known type whose payload is too short or inconsistent.
    Invalid {
        len: usize,
    },
    Unknown {
        len: usize,
    },
}

impl Body {
    fn instrument_id(&self) -> Option<u32> {
        Some(match self {
            Body::BookTicker(r) => r.instrument_id,
            Body::DepthDiff(r) => r.instrument_id,
            Body::Trade(r) => r.instrument_id,
            Body::AggTrade(r) => r.instrument_id,
            Body::InstrumentDef(r) => r.instrument_id,
            Body::OrderRequest(r) => r.instrument_id,
            Body::OrderSent(r) => r.request.instrument_id,
            Body::RiskReject(r) => r.request.instrument_id,
            Body::ExecutionReport(r) => r.instrument_id,
            _ => return None,
        })
    }
}

/// One decoded record, ready to render.
#[derive(Clone, Debug)]
pub struct View {
    pub meta: FrameMeta,
    cal: TscCalibration,
    /// `None`: a record type this tool does not know.
    pub kind: Option<RecordKind>,
    body: Body,
    instrument: Option<Instrument>,
}

/// A JSON or CSV value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    Str(String),
    Json(serde_json::Value),
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_none(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::U64(n) => s.serialize_u64(*n),
            Val::I64(n) => s.serialize_i64(*n),
            Val::Str(t) => s.serialize_str(t),
            Val::Json(v) => v.serialize(s),
        }
    }
}

/// Named values in a fixed order: a JSON object or a CSV row.
pub type Fields = Vec<(&'static str, Val)>;

/// Serializes fields as a JSON object, in their order.
pub struct Ordered<'a>(pub &'a [(&'static str, Val)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn str_val(text: impl Into<String>) -> Val {
    Val::Str(text.into())
}

fn opt_u64(v: Option<u64>) -> Val {
    v.map_or(Val::Null, Val::U64)
}

fn side_name(code: u8) -> String {
    match code {
        side::BUY => "buy".into(),
        side::SELL => "sell".into(),
        other => other.to_string(),
    }
}

fn kind_name(code: u8) -> String {
    match code {
        order_kind::NEW => "new".into(),
        order_kind::CANCEL => "cancel".into(),
        order_kind::REPLACE => "replace".into(),
        order_kind::MASS_CANCEL => "mass_cancel".into(),
        order_kind::MASS_STATUS => "mass_status".into(),
        other => other.to_string(),
    }
}

fn ord_type_name(code: u8) -> String {
    match code {
        ord_type::MARKET => "market".into(),
        ord_type::LIMIT => "limit".into(),
        other => other.to_string(),
    }
}

fn tif_name(code: u8) -> String {
    match code {
        time_in_force::GTC => "gtc".into(),
        time_in_force::IOC => "ioc".into(),
        time_in_force::FOK => "fok".into(),
        other => other.to_string(),
    }
}

/// A FIX char field (`150`, `39`) as its enum name, or the character itself.
fn fix_char(code: u8) -> String {
    if code.is_ascii_graphic() {
        (code as char).to_string()
    } else {
        code.to_string()
    }
}

fn exec_type_name(code: u8) -> String {
    match code {
        exec_type::NEW => "new".into(),
        exec_type::CANCELED => "canceled".into(),
        exec_type::REPLACED => "replaced".into(),
        exec_type::REJECTED => "rejected".into(),
        exec_type::EXPIRED => "expired".into(),
        exec_type::TRADE => "trade".into(),
        exec_type::ORDER_STATUS => "order_status".into(),
        other => fix_char(other),
    }
}

/// FIX tag 39.
fn ord_status_name(code: u8) -> String {
    match code {
        b'0' => "new".into(),
        b'1' => "partially_filled".into(),
        b'2' => "filled".into(),
        b'3' => "done_for_day".into(),
        b'4' => "canceled".into(),
        b'5' => "replaced".into(),
        b'6' => "pending_cancel".into(),
        b'7' => "stopped".into(),
        b'8' => "rejected".into(),
        b'9' => "suspended".into(),
        b'A' => "pending_new".into(),
        b'B' => "calculated".into(),
        b'C' => "expired".into(),
        b'D' => "accepted_for_bidding".into(),
        b'E' => "pending_replace".into(),
        other => fix_char(other),
    }
}

fn event_name(code: u16) -> String {
    match code {
        daemon_event::STARTED => "started".into(),
        daemon_event::READY => "ready".into(),
        daemon_event::TRADING_STATE => "trading_state".into(),
        daemon_event::CANCEL_ALL => "cancel_all".into(),
        daemon_event::CANCEL_ALL_DONE => "cancel_all_done".into(),
        daemon_event::RELOADED => "reloaded".into(),
        daemon_event::RELOAD_REFUSED => "reload_refused".into(),
        daemon_event::LIMIT_SET => "limit_set".into(),
        daemon_event::RECOVERED => "recovered".into(),
        daemon_event::RECONCILED => "reconciled".into(),
        daemon_event::STOPPING => "stopping".into(),
        daemon_event::STOPPED => "stopped".into(),
        daemon_event::MASS_STATUS => "mass_status".into(),
        daemon_event::SELF_HALT => "self_halt".into(),
        daemon_event::JOURNAL_FAILED => "journal_failed".into(),
        other => format!("event_{other}"),
    }
}

fn source_name(code: u16) -> String {
    match code {
        event_source::DAEMON => "daemon".into(),
        event_source::SIGNAL => "signal".into(),
        event_source::CONTROL_SOCKET => "control_socket".into(),
        other => format!("source_{other}"),
    }
}

/// The name of a trading state code (`risk.trading_state`, `TRADING_STATE` events).
pub fn trading_state_name(value: i64) -> Option<&'static str> {
    TradingState::from_code(value).map(TradingState::name)
}

fn check_name(code: u16) -> String {
    RiskCheck::from_code(code).map_or_else(|| format!("check_{code}"), |c| c.name().to_owned())
}

/// Text for people: control characters escaped, at most `chars_max` characters.
fn clip(text: &str, chars_max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == chars_max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl View {
    pub fn symbol(&self) -> Option<&str> {
        self.instrument.as_ref().map(|i| &*i.symbol)
    }

    /// The JSON `type`: the kind's name, or `unknown`.
    pub fn type_name(&self) -> &'static str {
        self.kind.map_or("unknown", RecordKind::name)
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self.body, Body::Invalid { .. })
    }

    fn px(&self, units: i64) -> Val {
        self.instrument
            .as_ref()
            .and_then(|i| i.price.decimal(units))
            .map_or(Val::Null, |d| Val::Str(d.to_string()))
    }

    fn qty(&self, units: i64) -> Val {
        self.instrument
            .as_ref()
            .and_then(|i| i.qty.decimal(units))
            .map_or(Val::Null, |d| Val::Str(d.to_string()))
    }

    fn px_text(&self, units: i64) -> String {
        match self
            .instrument
            .as_ref()
            .and_then(|i| i.price.decimal(units))
        {
            Some(d) => d.to_string(),
            None => format!("{units}u"),
        }
    }

    fn qty_text(&self, units: i64) -> String {
        match self.instrument.as_ref().and_then(|i| i.qty.decimal(units)) {
            Some(d) => d.to_string(),
            None => format!("{units}u"),
        }
    }

    fn symbol_text(&self, instrument_id: u32) -> String {
        match &self.instrument {
            Some(i) => i.symbol.to_string(),
            None if instrument_id == u32::MAX => "ALL".into(),
            None => format!("#{instrument_id}"),
        }
    }

    /// Ns between two stamps of this frame's run; `None` if a stamp is missing or out of order.
    fn span_ns(&self, from: u64, to: u64) -> Option<u64> {
        (from != 0 && to >= from).then(|| self.cal.ticks_to_ns(to - from).round() as u64)
    }

    /// The JSON object / CSV row: [`COMMON_COLUMNS`], then the kind's
    /// [`columns`](RecordKind::columns) (an invalid record has `invalid` and `len` instead; an
    /// unknown one `record_type` and `len`).
    pub fn fields(&self) -> Fields {
        let m = &self.meta;
        let mut f: Fields = vec![
            ("pos", Val::U64(m.position)),
            ("ts", Val::Str(format_unix_ns(m.unix_ns))),
            ("ts_unix_ns", Val::U64(m.unix_ns)),
            ("type", Val::Str(self.type_name().into())),
            ("epoch", Val::U64(m.epoch)),
            ("writer", Val::Str(writer_name(m.writer_id))),
            ("writer_id", Val::U64(u64::from(m.writer_id))),
            ("seq", Val::U64(m.sequence)),
            ("tsc", Val::U64(m.tsc)),
        ];
        let symbol = || self.symbol().map_or(Val::Null, str_val);
        match &self.body {
            Body::BookTicker(r) => f.extend([
                ("instrument_id", Val::U64(r.instrument_id.into())),
                ("symbol", symbol()),
                ("update_id", Val::U64(r.update_id)),
                ("bid_px", self.px(r.bid_px)),
                ("bid_qty", self.qty(r.bid_qty)),
                ("ask_px", self.px(r.ask_px)),
                ("ask_qty", self.qty(r.ask_qty)),
                ("recv_tsc", Val::U64(r.recv_tsc)),
            ]),
            Body::DepthDiff(r) => {
                let levels = |levels: &[Level]| {
                    let pairs = levels
                        .iter()
                        .map(|l| {
                            serde_json::json!([
                                serde_json::to_value(self.px(l.px)).unwrap_or_default(),
                                serde_json::to_value(self.qty(l.qty)).unwrap_or_default(),
                            ])
                        })
                        .collect();
                    Val::Json(serde_json::Value::Array(pairs))
                };
                f.extend([
                    ("instrument_id", Val::U64(r.instrument_id.into())),
                    ("symbol", symbol()),
                    ("first_update_id", Val::U64(r.first_update_id)),
                    ("final_update_id", Val::U64(r.final_update_id)),
                    ("event_time_ms", Val::U64(r.event_time_ms)),
                    ("chunk", Val::U64(r.chunk.into())),
                    ("chunk_count", Val::U64(r.chunk_count.into())),
                    ("bid_count", Val::U64(r.bid_count.into())),
                    ("ask_count", Val::U64(r.ask_count.into())),
                    ("bids", levels(r.bids())),
                    ("asks", levels(r.asks())),
                    ("recv_tsc", Val::U64(r.recv_tsc)),
                ]);
            }
            Body::Trade(r) => f.extend([
                ("instrument_id", Val::U64(r.instrument_id.into())),
                ("symbol", symbol()),
                ("trade_id", Val::U64(r.trade_id)),
                ("px", self.px(r.px)),
                ("qty", self.qty(r.qty)),
                ("aggressor", str_val(aggressor(r.flags))),
                (
                    "buyer_is_maker",
                    Val::Bool(r.flags & TRADE_FLAG_BUYER_IS_MAKER != 0),
                ),
                ("event_time_ms", Val::U64(r.event_time_ms)),
                ("trade_time_ms", Val::U64(r.trade_time_ms)),
                ("recv_tsc", Val::U64(r.recv_tsc)),
            ]),
            Body::AggTrade(r) => f.extend([
                ("instrument_id", Val::U64(r.instrument_id.into())),
                ("symbol", symbol()),
                ("agg_id", Val::U64(r.agg_id)),
                ("first_trade_id", Val::U64(r.first_trade_id)),
                ("last_trade_id", Val::U64(r.last_trade_id)),
                ("px", self.px(r.px)),
                ("qty", self.qty(r.qty)),
                ("aggressor", str_val(aggressor(r.flags))),
                (
                    "buyer_is_maker",
                    Val::Bool(r.flags & TRADE_FLAG_BUYER_IS_MAKER != 0),
                ),
                ("event_time_ms", Val::U64(r.event_time_ms)),
                ("trade_time_ms", Val::U64(r.trade_time_ms)),
                ("recv_tsc", Val::U64(r.recv_tsc)),
            ]),
            Body::RawMessage { header, bytes } => f.extend([
                ("source_id", Val::U64(header.source_id.into())),
                ("len", Val::U64(bytes.len() as u64)),
                (
                    "text",
                    Val::Str(String::from_utf8_lossy(bytes).into_owned()),
                ),
                ("recv_tsc", Val::U64(header.recv_tsc)),
            ]),
            Body::InstrumentDef(r) => {
                let unit = |mantissa, exp| {
                    Unit { mantissa, exp }
                        .decimal(1)
                        .map_or(Val::Null, |d| Val::Str(d.to_string()))
                };
                f.extend([
                    ("instrument_id", Val::U64(r.instrument_id.into())),
                    ("symbol", symbol()),
                    ("price_unit", unit(r.price_mantissa, r.price_exp)),
                    ("qty_unit", unit(r.qty_mantissa, r.qty_exp)),
                ]);
            }
            Body::OrderRequest(r) => self.order_fields(&mut f, r),
            Body::OrderSent(r) => {
                self.order_fields(&mut f, &r.request);
                let decode = self.span_ns(r.recv_tsc, r.decoded_tsc);
                let strategy = self.span_ns(r.strategy_start_tsc, r.request.created_tsc);
                let risk = self.span_ns(r.risk_start_tsc, r.request.risk_tsc);
                let encode = self.span_ns(r.encode_start_tsc, r.encoded_tsc);
                let t2t = self.span_ns(r.recv_tsc, r.encoded_tsc);
                let between = match (t2t, decode, strategy, risk, encode) {
                    (Some(t), Some(a), Some(b), Some(c), Some(d)) => Some(
                        t.saturating_sub(a.saturating_add(b).saturating_add(c).saturating_add(d)),
                    ),
                    _ => None,
                };
                f.extend([
                    ("msg_seq_num", Val::U64(r.msg_seq_num)),
                    ("encoded_len", Val::U64(r.encoded_len.into())),
                    ("decode_ns", opt_u64(decode)),
                    ("strategy_ns", opt_u64(strategy)),
                    ("risk_ns", opt_u64(risk)),
                    ("encode_ns", opt_u64(encode)),
                    ("between_stages_ns", opt_u64(between)),
                    ("tick_to_trade_ns", opt_u64(t2t)),
                    (
                        "due_to_trade_ns",
                        opt_u64(self.span_ns(r.due_tsc, r.encoded_tsc)),
                    ),
                ]);
            }
            Body::RiskReject(r) => {
                self.order_fields(&mut f, &r.request);
                f.extend([
                    ("check", Val::Str(check_name(r.check))),
                    ("check_code", Val::U64(r.check.into())),
                    ("limit", Val::I64(r.limit)),
                    ("value", Val::I64(r.value)),
                ]);
            }
            Body::ExecutionReport(r) => f.extend([
                ("instrument_id", Val::U64(r.instrument_id.into())),
                ("symbol", symbol()),
                ("client_order_id", Val::U64(r.client_order_id)),
                ("venue_order_id", Val::U64(r.venue_order_id)),
                ("exec_type", Val::Str(exec_type_name(r.exec_type))),
                ("ord_status", Val::Str(ord_status_name(r.ord_status))),
                ("side", Val::Str(side_name(r.side))),
                ("px", self.px(r.px)),
                ("last_px", self.px(r.last_px)),
                ("last_qty", self.qty(r.last_qty)),
                ("cum_qty", self.qty(r.cum_qty)),
                ("leaves_qty", self.qty(r.leaves_qty)),
                ("reject_reason", Val::U64(r.reject_reason.into())),
                ("recv_tsc", Val::U64(r.recv_tsc)),
            ]),
            Body::FixSeqNums(r) => f.extend([
                ("next_sender", Val::U64(r.next_sender)),
                ("next_target", Val::U64(r.next_target)),
            ]),
            Body::DaemonEvent(r) => f.extend([
                ("event", Val::Str(event_name(r.kind))),
                ("event_code", Val::U64(r.kind.into())),
                ("value", Val::I64(r.value)),
                ("source", Val::Str(source_name(r.source))),
                ("peer_uid", Val::U64(r.peer_uid.into())),
                ("event_unix_ns", Val::U64(r.unix_ns)),
            ]),
            Body::ConfigText(bytes) => f.extend([
                ("len", Val::U64(bytes.len() as u64)),
                (
                    "text",
                    Val::Str(String::from_utf8_lossy(bytes).into_owned()),
                ),
            ]),
            Body::Invalid { len } => {
                f.extend([("invalid", Val::Bool(true)), ("len", Val::U64(*len as u64))])
            }
            Body::Unknown { len } => f.extend([
                (
                    "record_type",
                    Val::Str(format!("{:#06x}", self.meta.record_type.0)),
                ),
                ("len", Val::U64(*len as u64)),
            ]),
        }
        f
    }

    fn order_fields(&self, f: &mut Fields, r: &OrderRequest) {
        let px = if r.ord_type == ord_type::MARKET {
            Val::Null
        } else {
            self.px(r.px)
        };
        f.extend([
            ("instrument_id", Val::U64(r.instrument_id.into())),
            ("symbol", self.symbol().map_or(Val::Null, str_val)),
            ("kind", Val::Str(kind_name(r.kind))),
            ("side", Val::Str(side_name(r.side))),
            ("ord_type", Val::Str(ord_type_name(r.ord_type))),
            ("time_in_force", Val::Str(tif_name(r.time_in_force))),
            ("px", px),
            ("qty", self.qty(r.qty)),
            ("client_order_id", Val::U64(r.client_order_id)),
            ("orig_client_order_id", Val::U64(r.orig_client_order_id)),
            ("strategy_id", Val::U64(r.strategy_id.into())),
        ]);
    }

    /// One JSON object (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Ordered(&self.fields())).expect("fields serialize")
    }

    /// One line for people: time, type, what happened.
    pub fn human(&self) -> String {
        let label = match self.kind {
            Some(kind) => kind.name().to_ascii_uppercase(),
            None => format!("{:#06x}", self.meta.record_type.0),
        };
        let mut line = format!("{}  {label:<16}  ", format_unix_ns(self.meta.unix_ns));
        self.human_body(&mut line);
        line.truncate(line.trim_end().len());
        line
    }

    fn human_body(&self, out: &mut String) {
        // `write!` to a String cannot fail.
        let _ = match &self.body {
            Body::BookTicker(r) => write!(
                out,
                "{} bid {} @ {}  ask {} @ {}  update={}",
                self.symbol_text(r.instrument_id),
                self.qty_text(r.bid_qty),
                self.px_text(r.bid_px),
                self.qty_text(r.ask_qty),
                self.px_text(r.ask_px),
                r.update_id
            ),
            Body::DepthDiff(r) => {
                let top = |levels: &[Level]| {
                    levels.first().map_or("-".to_owned(), |l| {
                        format!("{} @ {}", self.qty_text(l.qty), self.px_text(l.px))
                    })
                };
                write!(
                    out,
                    "{} U={} u={} bids {} (first {})  asks {} (first {})  chunk {}/{}",
                    self.symbol_text(r.instrument_id),
                    r.first_update_id,
                    r.final_update_id,
                    r.bid_count,
                    top(r.bids()),
                    r.ask_count,
                    top(r.asks()),
                    u32::from(r.chunk) + 1,
                    r.chunk_count
                )
            }
            Body::Trade(r) => write!(
                out,
                "{} {} {} @ {}  id={}",
                self.symbol_text(r.instrument_id),
                aggressor(r.flags).to_ascii_uppercase(),
                self.qty_text(r.qty),
                self.px_text(r.px),
                r.trade_id
            ),
            Body::AggTrade(r) => write!(
                out,
                "{} {} {} @ {}  agg={} trades {}..{}",
                self.symbol_text(r.instrument_id),
                aggressor(r.flags).to_ascii_uppercase(),
                self.qty_text(r.qty),
                self.px_text(r.px),
                r.agg_id,
                r.first_trade_id,
                r.last_trade_id
            ),
            Body::RawMessage { header, bytes } => write!(
                out,
                "source={} {} bytes  {}",
                header.source_id,
                bytes.len(),
                clip(&String::from_utf8_lossy(bytes), HUMAN_TEXT_CHARS_MAX)
            ),
            Body::InstrumentDef(r) => {
                let unit = |mantissa, exp| {
                    Unit { mantissa, exp }
                        .decimal(1)
                        .map_or("?".to_owned(), |d| d.to_string())
                };
                write!(
                    out,
                    "{} id={} price_unit={} qty_unit={}",
                    self.symbol_text(r.instrument_id),
                    r.instrument_id,
                    unit(r.price_mantissa, r.price_exp),
                    unit(r.qty_mantissa, r.qty_exp)
                )
            }
            Body::OrderRequest(r) => {
                self.human_order(out, r);
                write!(out, "  clid={}", r.client_order_id)
            }
            Body::OrderSent(r) => {
                self.human_order(out, &r.request);
                let _ = write!(
                    out,
                    "  clid={} seq={}",
                    r.request.client_order_id, r.msg_seq_num
                );
                match self.span_ns(r.recv_tsc, r.encoded_tsc) {
                    Some(t2t) => write!(out, " t2t={}", format_duration_ns(t2t)),
                    None => Ok(()),
                }
            }
            Body::RiskReject(r) => {
                self.human_order(out, &r.request);
                write!(
                    out,
                    "  check={} limit={} value={} clid={}",
                    check_name(r.check),
                    r.limit,
                    r.value,
                    r.request.client_order_id
                )
            }
            Body::ExecutionReport(r) => {
                let _ = write!(
                    out,
                    "{} {} {}",
                    self.symbol_text(r.instrument_id),
                    exec_type_name(r.exec_type).to_ascii_uppercase(),
                    side_name(r.side).to_ascii_uppercase()
                );
                if r.exec_type == exec_type::TRADE || r.last_qty != 0 {
                    let _ = write!(
                        out,
                        " {} @ {}",
                        self.qty_text(r.last_qty),
                        self.px_text(r.last_px)
                    );
                }
                let _ = write!(
                    out,
                    "  px={} cum={} leaves={} status={} clid={} venue_id={}",
                    self.px_text(r.px),
                    self.qty_text(r.cum_qty),
                    self.qty_text(r.leaves_qty),
                    ord_status_name(r.ord_status).to_ascii_uppercase(),
                    r.client_order_id,
                    r.venue_order_id
                );
                if r.exec_type == exec_type::REJECTED || r.reject_reason != 0 {
                    let _ = write!(out, " reason={}", r.reject_reason);
                }
                Ok(())
            }
            Body::FixSeqNums(r) => write!(
                out,
                "next_sender={} next_target={}",
                r.next_sender, r.next_target
            ),
            Body::DaemonEvent(r) => {
                let _ = write!(out, "{}", event_name(r.kind).to_ascii_uppercase());
                match (r.kind, trading_state_name(r.value)) {
                    (daemon_event::TRADING_STATE, Some(state)) => {
                        let _ = write!(out, " {state}");
                    }
                    (daemon_event::SELF_HALT, _) if halt_reason::name(r.value).is_some() => {
                        let _ = write!(out, " {}", halt_reason::name(r.value).unwrap_or("?"));
                    }
                    _ => {
                        let _ = write!(out, " value={}", r.value);
                    }
                }
                if r.source != event_source::DAEMON {
                    let _ = write!(out, "  source={}", source_name(r.source));
                }
                if r.source == event_source::CONTROL_SOCKET {
                    let _ = write!(out, " uid={}", r.peer_uid);
                }
                Ok(())
            }
            Body::ConfigText(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let first = text.lines().map(str::trim).find(|l| !l.is_empty());
                write!(
                    out,
                    "{} bytes, {} lines  {}",
                    bytes.len(),
                    text.lines().count(),
                    clip(first.unwrap_or(""), HUMAN_TEXT_CHARS_MAX)
                )
            }
            Body::Invalid { len } => write!(out, "invalid ({len} bytes)"),
            Body::Unknown { len } => write!(out, "{len} bytes"),
        };
    }

    fn human_order(&self, out: &mut String, r: &OrderRequest) {
        let symbol = self.symbol_text(r.instrument_id);
        let side = side_name(r.side).to_ascii_uppercase();
        let _ = match r.kind {
            order_kind::NEW | order_kind::REPLACE => {
                let kind = if r.kind == order_kind::REPLACE {
                    "REPLACE "
                } else {
                    ""
                };
                let _ = write!(out, "{symbol} {kind}{side} {}", self.qty_text(r.qty));
                if r.ord_type == ord_type::MARKET {
                    write!(out, " MARKET")
                } else {
                    write!(
                        out,
                        " @ {} {}",
                        self.px_text(r.px),
                        tif_name(r.time_in_force).to_ascii_uppercase()
                    )
                }
            }
            order_kind::CANCEL => write!(out, "{symbol} CANCEL {side}"),
            order_kind::MASS_CANCEL => write!(out, "{symbol} MASS_CANCEL"),
            order_kind::MASS_STATUS => write!(out, "{symbol} MASS_STATUS"),
            other => write!(out, "{symbol} kind={other} {side}"),
        };
        if r.orig_client_order_id != 0 {
            let _ = write!(out, " orig={}", r.orig_client_order_id);
        }
    }

    /// One CSV row of `columns` (a field the view lacks is empty), without the line end.
    pub fn csv_row(&self, columns: &[&str], out: &mut String) {
        let fields = self.fields();
        for (n, column) in columns.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            match fields.iter().find(|(name, _)| name == column).map(|f| &f.1) {
                None | Some(Val::Null) => {}
                Some(Val::Bool(b)) => {
                    let _ = write!(out, "{b}");
                }
                Some(Val::U64(v)) => {
                    let _ = write!(out, "{v}");
                }
                Some(Val::I64(v)) => {
                    let _ = write!(out, "{v}");
                }
                Some(Val::Str(text)) => csv_text(text, out),
                Some(Val::Json(v)) => csv_text(&v.to_string(), out),
            }
        }
    }
}

fn aggressor(flags: u32) -> &'static str {
    // The buyer was the maker: the aggressor sold.
    if flags & TRADE_FLAG_BUYER_IS_MAKER != 0 {
        "sell"
    } else {
        "buy"
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
fn csv_text(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// The CSV header line for one kind: [`COMMON_COLUMNS`] then its columns.
pub fn csv_columns(kind: RecordKind) -> Vec<&'static str> {
    COMMON_COLUMNS
        .iter()
        .chain(kind.columns())
        .copied()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading frames
// ---------------------------------------------------------------------------------------------

/// What [`FrameReader::next_event`] found.
#[derive(Debug)]
pub enum Event {
    /// A frame; its payload is [`FrameReader::payload`] until the next call.
    Frame(FrameMeta, TscCalibration),
    /// The frames that follow are of a new writer run (or a new journal).
    Restart(WriterRestart),
    /// A segment was missing (pruned while we were behind); reading went on after it.
    Missing(ShmError),
    /// Nothing more for now.
    Idle,
}

/// Reads a journal one frame at a time, so that each frame comes with the calibration and the
/// epoch of its own segment (a batch could cross into a new writer run). The payload is copied
/// into a reused buffer (at most `PAYLOAD_LEN_MAX`).
pub struct FrameReader {
    tailer: Tailer,
    buf: Vec<u8>,
    last: Option<(FrameMeta, TscCalibration)>,
    /// The last frame, to be handed out again (see [`unread`](Self::unread)).
    replay: bool,
    /// A frame read in the same poll as a restart, handed out after the restart.
    pending: bool,
}

impl FrameReader {
    pub fn open(dir: &Path, start: StartAt) -> Result<FrameReader, ShmError> {
        Ok(FrameReader {
            tailer: Tailer::open(dir, start)?,
            buf: Vec::new(),
            last: None,
            replay: false,
            pending: false,
        })
    }

    pub fn tailer(&self) -> &Tailer {
        &self.tailer
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf
    }

    /// Hands the last frame out again on the next call (a scan that read one frame too far).
    pub fn unread(&mut self) {
        self.replay = self.last.is_some();
    }

    pub fn next_event(&mut self) -> Result<Event, ShmError> {
        if self.replay || self.pending {
            self.replay = false;
            self.pending = false;
            let (meta, cal) = self.last.expect("a frame was read");
            return Ok(Event::Frame(meta, cal));
        }
        let mut got = None;
        let buf = &mut self.buf;
        let polled = match self.tailer.poll(1, |frame| {
            buf.clear();
            buf.extend_from_slice(frame.payload);
            got = Some((
                frame.position,
                frame.record_type,
                frame.writer_id,
                frame.sequence,
                frame.tsc,
            ));
        }) {
            Ok(polled) => polled,
            Err(missing @ ShmError::SegmentMissing { .. }) => return Ok(Event::Missing(missing)),
            Err(e) => return Err(e),
        };
        if let Some((position, record_type, writer_id, sequence, tsc)) = got {
            // One frame per poll: the tailer is still on the frame's segment.
            let cal = self.tailer.calibration();
            let meta = FrameMeta {
                position: position.0,
                record_type,
                writer_id,
                sequence,
                tsc,
                unix_ns: cal.to_unix_ns(tsc),
                epoch: self.tailer.epoch(),
            };
            self.last = Some((meta, cal));
            if let Some(restart) = polled.writer_restart {
                self.pending = true;
                return Ok(Event::Restart(restart));
            }
            return Ok(Event::Frame(meta, cal));
        }
        Ok(match polled.writer_restart {
            Some(restart) => Event::Restart(restart),
            None => Event::Idle,
        })
    }
}

/// Which records a command wants.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Empty: every type.
    pub types: Vec<RecordType>,
    /// Compared case-insensitively.
    pub symbol: Option<String>,
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    /// Frames at or after this position are past the scan (the journal's end when a scan that
    /// does not follow began).
    pub end: Option<u64>,
}

impl Selection {
    fn wants_frame(&self, meta: &FrameMeta) -> bool {
        if !self.types.is_empty() && !self.types.contains(&meta.record_type) {
            return false;
        }
        if self.symbol.is_some()
            && !RecordKind::from_record_type(meta.record_type)
                .is_some_and(RecordKind::has_instrument)
        {
            return false;
        }
        let after_from = match self.from {
            None => true,
            Some(Bound::Position(p)) => meta.position >= p,
            Some(Bound::Time(t)) => meta.unix_ns >= t,
        };
        let before_to = match self.to {
            None => true,
            Some(Bound::Position(p)) => meta.position < p,
            Some(Bound::Time(t)) => meta.unix_ns < t,
        };
        after_from && before_to
    }

    fn wants_view(&self, view: &View) -> bool {
        match &self.symbol {
            None => true,
            Some(symbol) => view
                .symbol()
                .is_some_and(|s| s.eq_ignore_ascii_case(symbol)),
        }
    }

    /// Whether a frame is past `to`, so that nothing after it can match.
    fn is_past(&self, meta: &FrameMeta) -> bool {
        if self.end.is_some_and(|end| meta.position >= end) {
            return true;
        }
        match self.to {
            None => false,
            Some(Bound::Position(p)) => meta.position >= p,
            Some(Bound::Time(t)) => meta.unix_ns >= t.saturating_add(TO_TIME_SLACK_NS),
        }
    }
}

/// What [`Cursor::step`] found.
#[derive(Debug)]
pub enum Step {
    View(Box<View>),
    /// A frame the selection does not want.
    Skipped,
    Restart(WriterRestart),
    Missing(ShmError),
    Idle,
    /// A frame past the selection's `to` (left unread).
    Past,
}

/// A [`FrameReader`] with a selection.
pub struct Cursor {
    pub reader: FrameReader,
    pub selection: Selection,
}

impl Cursor {
    pub fn step(&mut self, decoder: &mut Decoder) -> Result<Step, ShmError> {
        let (meta, cal) = match self.reader.next_event()? {
            Event::Frame(meta, cal) => (meta, cal),
            Event::Restart(restart) => return Ok(Step::Restart(restart)),
            Event::Missing(e) => return Ok(Step::Missing(e)),
            Event::Idle => return Ok(Step::Idle),
        };
        if self.selection.is_past(&meta) {
            self.reader.unread();
            return Ok(Step::Past);
        }
        let payload = self.reader.payload();
        if !self.selection.wants_frame(&meta) {
            // Defs are learnt whatever is shown: later records need their symbols.
            decoder.learn(meta.record_type, payload);
            return Ok(Step::Skipped);
        }
        let view = decoder.decode(meta, cal, payload);
        Ok(if self.selection.wants_view(&view) {
            Step::View(Box::new(view))
        } else {
            Step::Skipped
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Seeking
// ---------------------------------------------------------------------------------------------

/// The journal's segments, to seek by probing their headers instead of reading every frame.
#[derive(Clone, Debug)]
pub struct Segments {
    pub dir: PathBuf,
    pub segment_size: u64,
    /// Indexes of the segment files present (raw or compressed), ascending.
    pub indexes: Vec<u64>,
    /// Which of them are compressed (same order).
    compressed: Vec<bool>,
}

/// Segment header fields read without mapping the file (see `levibot_shm::layout`).
const HEADER_OFF_SEGMENT_SIZE: usize = 16;
const HEADER_OFF_EPOCH: usize = 32;
const HEADER_PREFIX_LEN: usize = 40;

/// The start of a raw segment's header, magic checked.
fn read_header(path: &Path) -> Result<[u8; HEADER_PREFIX_LEN], ShmError> {
    let mut header = [0u8; HEADER_PREFIX_LEN];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| ShmError::Io {
            path: path.to_owned(),
            op: "read header",
            source: e,
        })?;
    let magic = le_u64(&header, 0);
    if magic != levibot_shm::layout::SEGMENT_MAGIC {
        return Err(ShmError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected: levibot_shm::layout::SEGMENT_MAGIC,
        });
    }
    Ok(header)
}

fn le_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

impl Segments {
    /// `Ok(None)` when no uncompressed segment is there to give the segment size (a journal
    /// wholly compressed: read it from its beginning).
    pub fn scan(dir: &Path) -> Result<Option<Segments>, ShmError> {
        let listing = list_segments(dir)?;
        let Some(raw) = listing.iter().find(|s| !s.compressed) else {
            return Ok(None);
        };
        let size = le_u64(&read_header(&raw.path)?, HEADER_OFF_SEGMENT_SIZE);
        let sizes = levibot_shm::layout::SEGMENT_SIZE_MIN as u64
            ..=levibot_shm::layout::SEGMENT_SIZE_MAX as u64;
        if !size.is_power_of_two() || !sizes.contains(&size) {
            // Tailer::open reports what is wrong with it, naming the offset.
            Tailer::open(dir, StartAt::Beginning)?;
            return Ok(None);
        }
        Ok(Some(Segments {
            dir: dir.to_owned(),
            segment_size: size,
            indexes: listing.iter().map(|s| s.index).collect(),
            compressed: listing.iter().map(|s| s.compressed).collect(),
        }))
    }

    pub fn start_of(&self, index: u64) -> Position {
        Position(index * self.segment_size + levibot_shm::layout::HEADER_LEN as u64)
    }

    pub fn index_of(&self, position: u64) -> u64 {
        position / self.segment_size
    }

    fn open_segment(&self, index: u64) -> Result<FrameReader, ShmError> {
        FrameReader::open(&self.dir, StartAt::Position(self.start_of(index)))
    }

    /// The end of the journal now: the position after the last committed frame.
    pub fn end(&self) -> Result<u64, ShmError> {
        Ok(Tailer::open(&self.dir, StartAt::End)?.position().0)
    }

    /// The writer run of a segment: read from a raw segment's header; a compressed one is
    /// opened (decompressed) by a tailer.
    fn epoch_of(&self, index: u64) -> Result<u64, ShmError> {
        let at = self.indexes.partition_point(|&i| i < index);
        if self.indexes.get(at) == Some(&index) && !self.compressed[at] {
            let path = self.dir.join(levibot_shm::layout::segment_file_name(index));
            return Ok(le_u64(&read_header(&path)?, HEADER_OFF_EPOCH));
        }
        Ok(self.open_segment(index)?.tailer().epoch())
    }

    /// Time of a segment's first frame (`None`: empty).
    fn first_time_of(&self, index: u64) -> Result<Option<u64>, ShmError> {
        let mut reader = self.open_segment(index)?;
        // A restart comes before the frame it was seen with; a missing segment is skipped.
        for _ in 0..4 {
            match reader.next_event()? {
                Event::Frame(meta, _) => {
                    return Ok((self.index_of(meta.position) == index).then_some(meta.unix_ns));
                }
                Event::Restart(_) | Event::Missing(_) => {}
                Event::Idle => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The first segment of the writer run that wrote segment `index`. A run's segments are
    /// contiguous, so this is a binary search (a few header reads).
    pub fn run_start(&self, index: u64) -> Result<u64, ShmError> {
        let upto = self.indexes.partition_point(|&i| i <= index);
        if upto == 0 {
            return Ok(index);
        }
        let epoch = self.epoch_of(self.indexes[upto - 1])?;
        // Invariant: indexes[hi] is of the run; indexes[..lo] are not.
        let (mut lo, mut hi) = (0, upto - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.epoch_of(self.indexes[mid])? == epoch {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(self.indexes[hi])
    }

    /// The last segment whose first frame is at or before `unix_ns` (the first segment if none
    /// is): where a scan for records from that time starts.
    pub fn segment_at_time(&self, unix_ns: u64) -> Result<u64, ShmError> {
        let Some(&first) = self.indexes.first() else {
            return Ok(0);
        };
        // Invariant: indexes[lo] starts at or before the time (or lo == 0); indexes[hi..] after.
        let (mut lo, mut hi) = (0, self.indexes.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.first_time_of(self.indexes[mid])? {
                Some(t) if t <= unix_ns => lo = mid,
                _ => hi = mid,
            }
        }
        Ok(if lo == 0 { first } else { self.indexes[lo] })
    }

    /// Learns the instrument defs journaled at the start of the run that wrote segment `index`.
    pub fn preload(&self, index: u64, decoder: &mut Decoder) -> Result<(), ShmError> {
        let first = self.run_start(index)?;
        let mut reader = self.open_segment(first)?;
        for _ in 0..PRELOAD_FRAMES_MAX {
            match reader.next_event()? {
                Event::Frame(meta, _) => {
                    if self.index_of(meta.position) != first {
                        break;
                    }
                    decoder.learn(meta.record_type, reader.payload());
                }
                Event::Restart(_) | Event::Missing(_) | Event::Idle => break,
            }
        }
        Ok(())
    }
}

/// Opens a cursor at `selection.from` (the journal's beginning without one), having learnt the
/// instrument defs of the newest run and of the run it starts in. The cursor's `selection.end`
/// is the journal's end at opening: clear it to follow.
pub fn open_cursor(
    dir: &Path,
    mut selection: Selection,
    decoder: &mut Decoder,
) -> Result<Cursor, ShmError> {
    let Some(segments) = Segments::scan(dir)? else {
        let reader = FrameReader::open(dir, StartAt::Beginning)?;
        return Ok(Cursor { reader, selection });
    };
    let end = segments.end()?;
    segments.preload(segments.index_of(end), decoder)?;
    let (start, start_segment) = match selection.from {
        None => (StartAt::Beginning, segments.indexes.first().copied()),
        Some(Bound::Position(p)) => (StartAt::Position(Position(p)), Some(segments.index_of(p))),
        Some(Bound::Time(t)) => {
            let index = segments.segment_at_time(t)?;
            (StartAt::Position(segments.start_of(index)), Some(index))
        }
    };
    if let Some(index) = start_segment.filter(|&i| i != segments.index_of(end)) {
        segments.preload(index, decoder)?;
    }
    let reader = FrameReader::open(dir, start)?;
    selection.end = Some(end);
    Ok(Cursor { reader, selection })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(rt: RecordType) -> FrameMeta {
        FrameMeta {
            position: 4096,
            record_type: rt,
            writer_id: writer_id::GATEWAY,
            sequence: 7,
            tsc: 1_000,
            unix_ns: 1_795_654_923_123_456_789,
            epoch: 9,
        }
    }

    fn cal() -> TscCalibration {
        TscCalibration {
            ticks_per_ns: 2.0,
            tsc_ref: 0,
            unix_ns_ref: 0,
        }
    }

    fn decoder_with_nkn() -> Decoder {
        let mut d = Decoder::new();
        let def = InstrumentDef::new(3, "NKNUSDT", (1, 5), (1, 0)).unwrap();
        d.learn(record_type::INSTRUMENT_DEF, def.to_bytes());
        d
    }

    #[test]
    fn times_format_and_parse_back() {
        let ns = 1_795_654_923_123_456_789;
        let text = format_unix_ns(ns);
        assert_eq!(text, "2026-11-26T01:02:03.123456789Z");
        assert_eq!(parse_rfc3339(&text), Some(ns));
        assert_eq!(format_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_rfc3339("2026-11-26T03:02:03.5+02:00"),
            Some(1_795_654_923_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26 01:02"),
            Some(1_795_654_920_000_000_000)
        );
        assert_eq!(parse_rfc3339("2026-11-26"), Some(1_795_651_200_000_000_000));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-11-25T25:00",
            "2026-11-25T01:02:03+1",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // Every day of a few centuries round-trips.
        for day in (0..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn bounds_parse_positions_times_and_relative_times() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(parse_bound_at("8192", now), Ok(Bound::Position(8192)));
        assert_eq!(
            parse_bound_at("10m", now),
            Ok(Bound::Time(now - 600_000_000_000))
        );
        assert_eq!(
            parse_bound_at("2h", now),
            Ok(Bound::Time(now.saturating_sub(7_200_000_000_000)))
        );
        assert_eq!(
            parse_bound_at("1970-01-01T00:00:01Z", now),
            Ok(Bound::Time(1_000_000_000))
        );
        assert!(parse_bound_at("10 parsecs", now).is_err());
        assert!(parse_bound_at("400d", now).is_err());
    }

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

    #[test]
    fn an_order_sent_renders_with_decimals_and_latencies() {
        let mut d = decoder_with_nkn();
        let sent = SentOrder {
            request: OrderRequest {
                created_tsc: 600,
                risk_tsc: 800,
                client_order_id: 42,
                px: 3512,
                qty: 100,
                instrument_id: 3,
                kind: order_kind::NEW,
                side: side::BUY,
                ord_type: ord_type::LIMIT,
                time_in_force: time_in_force::GTC,
                ..OrderRequest::default()
            },
            due_tsc: 100,
            recv_tsc: 200,
            decoded_tsc: 400,
            strategy_start_tsc: 500,
            risk_start_tsc: 700,
            encode_start_tsc: 900,
            encoded_tsc: 2_600,
            msg_seq_num: 7,
            encoded_len: 180,
            reserved: 0,
        };
        let view = d.decode(meta(record_type::ORDER_SENT), cal(), sent.to_bytes());
        assert_eq!(
            view.human(),
            "2026-11-26T01:02:03.123456789Z  ORDER_SENT        NKNUSDT BUY 100 @ 0.03512 GTC  \
             clid=42 seq=7 t2t=1.2us"
        );
        let json: serde_json::Value = serde_json::from_str(&view.to_json()).unwrap();
        assert_eq!(json["type"], "order_sent");
        assert_eq!(json["symbol"], "NKNUSDT");
        assert_eq!(json["px"], "0.03512");
        assert_eq!(json["qty"], "100");
        assert_eq!(json["side"], "buy");
        assert_eq!(json["writer"], "gateway");
        assert_eq!(json["decode_ns"], 100);
        assert_eq!(json["strategy_ns"], 50);
        assert_eq!(json["risk_ns"], 50);
        assert_eq!(json["encode_ns"], 850);
        assert_eq!(json["tick_to_trade_ns"], 1_200);
        assert_eq!(json["between_stages_ns"], 150);
        assert_eq!(json["due_to_trade_ns"], 1_250);
        assert_eq!(json["ts"], "2026-11-26T01:02:03.123456789Z");
    }

    #[test]
    fn every_kind_emits_its_columns_and_short_payloads_are_invalid() {
        let mut d = decoder_with_nkn();
        let mut rng = fastrand::Rng::with_seed(levibot_testkit::seed());
        for kind in RecordKind::ALL {
            // A valid payload: zeroes of the record's size (depth: counts 0; def: made by new).
            let payload: Vec<u8> = match kind {
                RecordKind::InstrumentDef => InstrumentDef::new(1, "X", (1, 2), (1, 0))
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
                RecordKind::DepthDiff => vec![0; size_of::<DepthDiff>()],
                RecordKind::RawMessage | RecordKind::ConfigText => vec![b'{'; 20],
                _ => vec![0; 136],
            };
            let view = d.decode(meta(kind.record_type()), cal(), &payload);
            let names: Vec<&str> = view.fields().iter().map(|f| f.0).collect();
            assert_eq!(names, csv_columns(kind), "{kind:?}");
            assert!(!view.is_invalid());
            // Any prefix and random bytes: never a panic.
            for len in [0, 1, 15, 23, 47, 55] {
                let v = d.decode(
                    meta(kind.record_type()),
                    cal(),
                    &payload[..len.min(payload.len())],
                );
                let _ = (v.human(), v.to_json());
            }
            for _ in 0..200 {
                let len = rng.usize(0..700);
                let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                let v = d.decode(meta(kind.record_type()), cal(), &bytes);
                let mut row = String::new();
                v.csv_row(&csv_columns(kind), &mut row);
                let _ = (v.human(), v.to_json());
            }
        }
        let short = d.decode(meta(record_type::BOOK_TICKER), cal(), &[1, 2, 3]);
        assert!(short.is_invalid());
        assert!(
            short
                .human()
                .ends_with("BOOK_TICKER       invalid (3 bytes)")
        );
        let unknown = d.decode(meta(RecordType(0x999)), cal(), &[0; 5]);
        assert_eq!(unknown.type_name(), "unknown");
        assert!(
            unknown
                .to_json()
                .contains(r#""record_type":"0x0999","len":5"#)
        );
    }

    #[test]
    fn units_are_exact_and_corrupt_scales_do_not_panic() {
        let unit = Unit {
            mantissa: 5,
            exp: 2,
        };
        assert_eq!(unit.decimal(7).unwrap().to_string(), "0.35");
        assert_eq!(unit.decimal(-20).unwrap().to_string(), "-1");
        assert_eq!(
            Unit {
                mantissa: u64::MAX,
                exp: 28
            }
            .decimal(i64::MAX),
            None
        );
        let mut def = InstrumentDef::new(1, "X", (1, 2), (1, 0)).unwrap();
        def.price_exp = 200;
        assert_eq!(Instrument::from_def(&def), None);
    }

    #[test]
    fn csv_text_is_quoted_when_needed() {
        let mut out = String::new();
        csv_text("a,\"b\"\nc", &mut out);
        assert_eq!(out, "\"a,\"\"b\"\"\nc\"");
    }
}
