//! A view as a flat JSON object: [`View::fields`] names its values in a stable order
//! ([`COMMON_COLUMNS`](crate::COMMON_COLUMNS), then the kind's columns), [`View::to_json`]
//! serializes them. The values keep their types ([`Val`]: exact decimals, times, depth levels),
//! which JSON renders as exact decimal strings, RFC 3339 times and arrays of pairs, and a typed
//! format keeps.

use levibot_shm::records::{
    FEATURE_IS_PRICE, FEATURE_NAMES, Level, OrderRequest, TRADE_FLAG_BUYER_IS_MAKER, feature_flag,
    model_id_hex, ord_type, order_flag,
};
use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::names::{
    aggressor, check_name, event_name, exec_type_name, kind_name, ord_status_name, ord_type_name,
    side_name, source_name, tif_name,
};
use super::{Body, View};
use crate::instrument::Unit;
use crate::kind::writer_name;
use crate::time::format_unix_ns;

/// A field's value, typed as its column ([`ColumnType`](crate::ColumnType)) says.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    /// A measured value; not finite (a feature that does not exist yet) is null.
    F64(f64),
    Str(String),
    /// Exact, without trailing zeros; a string in JSON (`"0.03512"`).
    Decimal(Decimal),
    /// Ns since the Unix epoch; RFC 3339 in JSON (`"2026-11-26T01:02:03.123456789Z"`).
    Time(u64),
    /// Depth levels, (price, quantity) each; `[["0.1","25"],...]` in JSON.
    Levels(Vec<LevelVal>),
}

/// One depth level's price and quantity (`None` without the instrument's def).
pub type LevelVal = (Option<Decimal>, Option<Decimal>);

/// A decimal as JSON has it: its exact string.
struct DecimalText<'a>(&'a Option<Decimal>);

impl Serialize for DecimalText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_none(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::U64(n) => s.serialize_u64(*n),
            Val::I64(n) => s.serialize_i64(*n),
            Val::F64(x) if x.is_finite() => s.serialize_f64(*x),
            Val::F64(_) => s.serialize_none(),
            Val::Str(t) => s.serialize_str(t),
            Val::Decimal(d) => s.collect_str(d),
            Val::Time(ns) => s.serialize_str(&format_unix_ns(*ns)),
            Val::Levels(levels) => {
                let mut seq = s.serialize_seq(Some(levels.len()))?;
                for (px, qty) in levels {
                    seq.serialize_element(&[DecimalText(px), DecimalText(qty)])?;
                }
                seq.end()
            }
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

impl View {
    fn px_decimal(&self, units: i64) -> Option<Decimal> {
        self.instrument
            .as_ref()
            .and_then(|i| i.price.decimal(units))
    }

    fn qty_decimal(&self, units: i64) -> Option<Decimal> {
        self.instrument.as_ref().and_then(|i| i.qty.decimal(units))
    }

    fn px(&self, units: i64) -> Val {
        self.px_decimal(units).map_or(Val::Null, Val::Decimal)
    }

    /// A measured price in price units (a feature), as a price: `units x the price unit`.
    fn px_f64(&self, units: f64) -> Val {
        self.instrument
            .as_ref()
            .map_or(Val::Null, |i| Val::F64(i.price.float(units)))
    }

    fn qty(&self, units: i64) -> Val {
        self.qty_decimal(units).map_or(Val::Null, Val::Decimal)
    }

    /// The JSON object / CSV row: [`COMMON_COLUMNS`], then the kind's
    /// [`columns`](crate::RecordKind::columns) (an invalid record has `invalid` and `len`
    /// instead; an unknown one `record_type` and `len`).
    ///
    /// [`COMMON_COLUMNS`]: crate::COMMON_COLUMNS
    pub fn fields(&self) -> Fields {
        let m = &self.meta;
        let mut f: Fields = vec![
            ("pos", Val::U64(m.position)),
            ("ts", Val::Time(m.unix_ns)),
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
                    Val::Levels(
                        levels
                            .iter()
                            .map(|l| (self.px_decimal(l.px), self.qty_decimal(l.qty)))
                            .collect(),
                    )
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
                        .map_or(Val::Null, Val::Decimal)
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
            Body::FeatureSnapshot(r) => f.extend(
                [
                    ("instrument_id", Val::U64(r.instrument_id.into())),
                    ("symbol", symbol()),
                    ("strategy_id", Val::U64(r.strategy_id.into())),
                    ("event_unix_ns", Val::U64(r.ts_ns)),
                ]
                .into_iter()
                .chain(
                    FEATURE_NAMES
                        .into_iter()
                        .zip(FEATURE_IS_PRICE)
                        .zip(r.features())
                        .map(|((name, is_price), value)| {
                            (
                                name,
                                if is_price {
                                    self.px_f64(value)
                                } else {
                                    Val::F64(value)
                                },
                            )
                        }),
                )
                .chain([
                    ("output", Val::F64(r.output)),
                    ("model_id", Val::Str(model_id_hex(r.model_id))),
                    (
                        "book_synced",
                        Val::Bool(r.flags & feature_flag::BOOK_SYNCED != 0),
                    ),
                    ("paused", Val::Bool(r.flags & feature_flag::PAUSED != 0)),
                    ("recv_tsc", Val::U64(r.recv_tsc)),
                ]),
            ),
            Body::ModelInForce { header, path } => f.extend([
                ("instrument_id", Val::U64(header.instrument_id.into())),
                ("symbol", symbol()),
                ("model_id", Val::Str(model_id_hex(header.model_id))),
                ("sha256", Val::Str(header.sha256_hex())),
                ("path", Val::Str(path.clone())),
                ("reload", Val::U64(header.reload.into())),
                ("event_unix_ns", Val::U64(header.unix_ns)),
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
            ("post_only", Val::Bool(r.flags & order_flag::POST_ONLY != 0)),
            ("px", px),
            ("qty", self.qty(r.qty)),
            ("client_order_id", Val::U64(r.client_order_id)),
            ("orig_client_order_id", Val::U64(r.orig_client_order_id)),
            ("strategy_id", Val::U64(r.strategy_id.into())),
            (
                "model_tag",
                match r.model_tag {
                    0 => Val::Null,
                    tag => Val::Str(format!("{tag:08x}")),
                },
            ),
        ]);
    }

    /// One JSON object (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Ordered(&self.fields())).expect("fields serialize")
    }
}
