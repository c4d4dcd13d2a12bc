//! The decoding context and the decoded record: a [`FrameDecoder`] remembers the instruments of the
//! `INSTRUMENT_DEF`s it has seen and turns one frame into a [`View`]. The child modules render a
//! view: `human` as one line for people, `json` as flat JSON fields, `csv` as a CSV row; `names`
//! gives the records' codes their names for both.

use std::collections::HashMap;

use levibot_shm::records::{
    AggTrade, BookTicker, DaemonEvent, DepthDiff, ExecutionReport, FeatureSnapshot, FixSeqNums,
    InstrumentDef, ModelInForce, OrderRequest, RawMessageHeader, Record, RiskReject, SentOrder,
    Trade, record_type,
};
use levibot_shm::{RecordType, TscCalibration};

use crate::instrument::JournalInstrument;
use crate::kind::RecordKind;

mod csv;
mod human;
mod json;
mod names;

pub use csv::csv_columns;
pub use human::HUMAN_TEXT_CHARS_MAX;
pub use json::{Fields, LevelVal, Ordered, Val};
pub use names::trading_state_name;

/// Instruments a [`FrameDecoder`] remembers; defs beyond this are ignored (ids are the daemon's
/// instrument table, a few hundred at most).
pub const INSTRUMENTS_MAX: usize = 65_536;

/// Decodes frames into views, remembering the instrument defs it has seen (the latest def of an
/// id wins).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    instruments: HashMap<u32, JournalInstrument>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    pub fn instrument(&self, id: u32) -> Option<&JournalInstrument> {
        self.instruments.get(&id)
    }

    /// Takes note of an `INSTRUMENT_DEF` payload (anything else, or a corrupt def, is ignored).
    pub fn learn(&mut self, rt: RecordType, payload: &[u8]) {
        if rt != record_type::INSTRUMENT_DEF {
            return;
        }
        let Some(instrument) = InstrumentDef::from_payload(payload)
            .as_ref()
            .and_then(JournalInstrument::from_def)
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
            Body::InstrumentDef(def) => JournalInstrument::from_def(def),
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

fn decode_body(kind: RecordKind, payload: &[u8]) -> Option<Body> {
    Some(match kind {
        RecordKind::BookTicker => Body::BookTicker(Record::from_payload(payload)?),
        RecordKind::DepthDiff => {
            let diff: DepthDiff = Record::from_payload(payload)?;
            if !diff.counts_are_valid() {
                return None;
            }
            Body::DepthDiff(Box::new(diff))
        }
        RecordKind::Trade => Body::Trade(Record::from_payload(payload)?),
        RecordKind::AggTrade => Body::AggTrade(Record::from_payload(payload)?),
        RecordKind::RawMessage => {
            // Not a `Record` (it only heads a frame).
            let (header, bytes) = RawMessageHeader::split(payload)?;
            Body::RawMessage {
                header,
                bytes: bytes.to_vec(),
            }
        }
        RecordKind::InstrumentDef => {
            let def: InstrumentDef = Record::from_payload(payload)?;
            JournalInstrument::from_def(&def)?;
            Body::InstrumentDef(def)
        }
        RecordKind::OrderRequest => Body::OrderRequest(Record::from_payload(payload)?),
        RecordKind::OrderSent => Body::OrderSent(Record::from_payload(payload)?),
        RecordKind::RiskReject => Body::RiskReject(Record::from_payload(payload)?),
        RecordKind::ExecutionReport => Body::ExecutionReport(Record::from_payload(payload)?),
        RecordKind::FixSeqNums => Body::FixSeqNums(Record::from_payload(payload)?),
        RecordKind::DaemonEvent => Body::DaemonEvent(Record::from_payload(payload)?),
        RecordKind::ConfigText => Body::ConfigText(payload.to_vec()),
        RecordKind::FeatureSnapshot => Body::FeatureSnapshot(Record::from_payload(payload)?),
        RecordKind::ModelInForce => {
            // Not a `Record` (it heads the model's path).
            let (header, path) = ModelInForce::split(payload)?;
            Body::ModelInForce {
                header,
                path: path.to_owned(),
            }
        }
    })
}

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
    FeatureSnapshot(FeatureSnapshot),
    ModelInForce {
        header: ModelInForce,
        path: String,
    },
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
            Body::FeatureSnapshot(r) => r.instrument_id,
            Body::ModelInForce { header, .. } => header.instrument_id,
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
    instrument: Option<JournalInstrument>,
}

impl View {
    pub fn symbol(&self) -> Option<&str> {
        self.instrument.as_ref().map(|i| &*i.symbol)
    }

    /// The record's instrument as its def gives it (`None`: a record of no instrument, or of
    /// one whose def this decoder has not seen).
    pub fn instrument(&self) -> Option<&JournalInstrument> {
        self.instrument.as_ref()
    }

    /// The JSON `type`: the kind's name, or `unknown`.
    pub fn type_name(&self) -> &'static str {
        self.kind.map_or("unknown", RecordKind::name)
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self.body, Body::Invalid { .. })
    }

    /// Ns between two stamps of this frame's run; `None` if a stamp is missing or out of order.
    fn span_ns(&self, from: u64, to: u64) -> Option<u64> {
        (from != 0 && to >= from).then(|| self.cal.ticks_to_ns(to - from).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{COMMON_COLUMNS, ColumnType};
    use crate::{Val, csv_columns};
    use levibot_shm::codes::writer_id;
    use levibot_shm::records::{Level, ord_type, order_kind, side, time_in_force};

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

    fn decoder_with_nkn() -> FrameDecoder {
        let mut d = FrameDecoder::new();
        let def = InstrumentDef::new(3, "NKNUSDT", (1, 5), (1, 0)).unwrap();
        d.learn(record_type::INSTRUMENT_DEF, def.to_bytes());
        d
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
        assert_eq!(json["post_only"], false);

        // A post-only order says so, in the line and the object.
        let post_only = SentOrder {
            request: OrderRequest {
                flags: levibot_shm::records::order_flag::POST_ONLY,
                ..sent.request
            },
            ..sent
        };
        let view = d.decode(meta(record_type::ORDER_SENT), cal(), post_only.to_bytes());
        assert!(
            view.human().contains("@ 0.03512 GTC POST_ONLY"),
            "{}",
            view.human()
        );
        let json: serde_json::Value = serde_json::from_str(&view.to_json()).unwrap();
        assert_eq!(json["post_only"], true);
    }

    #[test]
    fn a_model_in_force_names_its_instrument_hash_and_path() {
        let mut d = decoder_with_nkn();
        let mut sha256 = [0u8; 32];
        sha256[..8].copy_from_slice(&0x3f1c_0a9e_5b7d_2c41u64.to_be_bytes());
        sha256[31] = 0xee;
        let record = ModelInForce {
            unix_ns: 1_795_654_923_000_000_000,
            model_id: 0x3f1c_0a9e_5b7d_2c41,
            sha256,
            instrument_id: 3,
            reload: 2,
        };
        let payload = record.payload("/etc/levibot/models/nkn.json");
        let view = d.decode(meta(record_type::MODEL_IN_FORCE), cal(), &payload);
        let hex = format!("3f1c0a9e5b7d2c41{}ee", "0".repeat(46));
        assert!(
            view.human().ends_with(&format!(
                "NKNUSDT model=3f1c0a9e5b7d2c41 sha256={hex} /etc/levibot/models/nkn.json  reload=2"
            )),
            "{}",
            view.human()
        );
        let json: serde_json::Value = serde_json::from_str(&view.to_json()).unwrap();
        assert_eq!(json["type"], "model_in_force");
        assert_eq!(json["symbol"], "NKNUSDT");
        assert_eq!(json["sha256"], hex.as_str());
        assert_eq!(json["model_id"], "3f1c0a9e5b7d2c41");
        assert_eq!(json["path"], "/etc/levibot/models/nkn.json");
        assert_eq!(json["reload"], 2);
        // The weights: no model, said so.
        let weights = ModelInForce {
            instrument_id: 3,
            ..ModelInForce::default()
        };
        let view = d.decode(
            meta(record_type::MODEL_IN_FORCE),
            cal(),
            &weights.payload(""),
        );
        assert!(
            view.human().ends_with("NKNUSDT weights (no model)"),
            "{}",
            view.human()
        );
        let json: serde_json::Value = serde_json::from_str(&view.to_json()).unwrap();
        assert_eq!(
            (&json["sha256"], &json["model_id"]),
            (&"".into(), &"0000000000000000".into())
        );
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
    fn depth_levels_render_as_pairs_of_exact_decimals() {
        let mut d = decoder_with_nkn();
        let mut diff: DepthDiff = Record::from_bytes(&[0; size_of::<DepthDiff>()]).unwrap();
        (diff.bid_count, diff.ask_count, diff.instrument_id) = (2, 1, 3);
        diff.levels[..3].copy_from_slice(&[
            Level { px: 12, qty: 3 },
            Level { px: 11, qty: 40 },
            Level { px: 13, qty: 0 },
        ]);
        let view = d.decode(meta(record_type::DEPTH_DIFF), cal(), diff.to_bytes());
        let json = view.to_json();
        assert!(
            json.contains(r#""bids":[["0.00012","3"],["0.00011","40"]],"asks":[["0.00013","0"]]"#),
            "{json}"
        );
        let mut row = String::new();
        view.csv_row(&["ts", "bids"], &mut row);
        assert_eq!(
            row,
            r#"2026-11-26T01:02:03.123456789Z,"[[""0.00012"",""3""],[""0.00011"",""40""]]""#
        );
        // Without the instrument's def: nulls, as for any decimal.
        diff.instrument_id = 4;
        let view = d.decode(meta(record_type::DEPTH_DIFF), cal(), diff.to_bytes());
        assert!(
            view.to_json().contains(r#""asks":[[null,null]]"#),
            "{}",
            view.to_json()
        );
    }

    /// Whether a value is what its column's type says (see [`ColumnType`]): the typed export
    /// relies on it.
    fn holds(ty: ColumnType, val: &Val) -> bool {
        use ColumnType::*;
        match (ty, val) {
            (_, Val::Null) => true,
            (U16, Val::U64(v)) => u16::try_from(*v).is_ok(),
            (U32, Val::U64(v)) => u32::try_from(*v).is_ok(),
            (U64 | UnixNs | UnixMs, Val::U64(_)) => true,
            (I64, Val::I64(_)) | (Bool, Val::Bool(_)) | (Text, Val::Str(_)) => true,
            (F64, Val::F64(_)) => true,
            (Price | Qty, Val::Decimal(_)) | (Time, Val::Time(_)) | (Levels, Val::Levels(_)) => {
                true
            }
            _ => false,
        }
    }

    #[test]
    fn every_value_is_of_its_columns_type() {
        let mut d = decoder_with_nkn();
        // Zeroed records name instrument 0: give it a def, so that their decimals are there.
        let zero = InstrumentDef::new(0, "ZERO", (5, 3), (1, 8)).unwrap();
        d.learn(record_type::INSTRUMENT_DEF, zero.to_bytes());
        let mut rng = fastrand::Rng::with_seed(levibot_testkit::seed());
        for kind in RecordKind::ALL {
            let columns: Vec<_> = COMMON_COLUMNS.iter().chain(kind.columns()).collect();
            let mut payloads = vec![match kind {
                RecordKind::InstrumentDef => zero.to_bytes().to_vec(),
                RecordKind::DepthDiff => {
                    let mut diff: DepthDiff =
                        Record::from_bytes(&[0; size_of::<DepthDiff>()]).unwrap();
                    (diff.bid_count, diff.ask_count) = (2, 1);
                    diff.levels[0].px = 7;
                    diff.to_bytes().to_vec()
                }
                RecordKind::RawMessage | RecordKind::ConfigText => vec![b'{'; 20],
                _ => vec![0; 136],
            }];
            let len = payloads[0].len();
            payloads.extend((0..200).map(|_| (0..len).map(|_| rng.u8(..)).collect::<Vec<u8>>()));
            for payload in &payloads {
                let view = d.decode(meta(kind.record_type()), cal(), payload);
                if view.is_invalid() {
                    continue;
                }
                let fields = view.fields();
                assert_eq!(fields.len(), columns.len(), "{kind:?}");
                for ((name, val), (column, ty)) in fields.iter().zip(&columns) {
                    assert_eq!(name, column);
                    assert!(holds(*ty, val), "{kind:?} {name}: {val:?} is not {ty:?}");
                }
            }
            // The first (a valid record of instrument 0) has its decimals.
            let view = d.decode(meta(kind.record_type()), cal(), &payloads[0]);
            for ((name, val), (_, ty)) in view.fields().iter().zip(&columns) {
                if matches!(ty, ColumnType::Price | ColumnType::Qty) && *name != "px" {
                    assert!(matches!(val, Val::Decimal(_)), "{kind:?} {name}: {val:?}");
                }
            }
        }
    }
}
