//! ExecutionReport (35=8) and OrderCancelReject (35=9) -> [`ExecutionReport`] records.
//!
//! One pass over the message's fields gathers the tags of interest into fixed slots (a
//! compile-time table maps a tag number to its slot), then each value is converted: prices and
//! quantities to the instrument's integer units with [`parse_units`], identifiers to `u64`.
//! Nothing allocates, and a bad field is a [`ReportError`] naming its tag and the byte offset
//! of its value in the message.
//!
//! Which id a report is filed under follows the pipeline's convention (the engine's
//! `AckVenue`): CANCELED under the cancelled order's id (OrigClOrdID 41, or ClOrdID 11 when the
//! venue leaves 41 out), REPLACED under the new id (ClOrdID 11), everything else under ClOrdID
//! 11; an OrderCancelReject is REJECTED under the refused request's id (ClOrdID 11).
//!
//! An Order Status report (ExecType I), one per working order in the answer to an
//! OrderMassStatusRequest, is filed under ClOrdID (11) too; its `last_px` is the order's AvgPx
//! (6) and the last report of the answer (LastRptRequested 912=Y) is flagged
//! [`report_flag::LAST_OF_MASS_STATUS`]. An answer without orders is one report that names no
//! order: no ClOrdID, no Symbol, TotNumReports (911) 0; it becomes a record with client order
//! id 0 and instrument [`INSTRUMENT_UNKNOWN`].

use levibot_shm::records::{ExecutionReport, exec_type, report_flag, side};

use crate::decimal::{DecimalError, Scale, parse_units};
use crate::instrument::InstrumentTable;

use crate::fix::{FixMessage, tag, value_u64};

/// `instrument_id` of a report whose instrument the message does not name (an
/// OrderCancelReject has no Symbol); the session fills it from its own order map when it can.
pub const INSTRUMENT_UNKNOWN: u32 = u32::MAX;

/// OrderID (37) value meaning "no order" (FIX's convention for a rejected order).
const ORDER_ID_NONE: &[u8] = b"NONE";

/// Why an ExecutionReport or OrderCancelReject could not become a record. `offset` is the byte
/// offset of the field's value from the start of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("required tag {tag} is missing")]
    MissingField { tag: u32 },
    #[error("tag {tag} at byte {offset}: {reason}")]
    BadValue {
        tag: u32,
        offset: usize,
        reason: &'static str,
    },
    #[error("tag {tag} at byte {offset}: {source}")]
    BadDecimal {
        tag: u32,
        offset: usize,
        source: DecimalError,
    },
    #[error("tag 55 at byte {offset}: unknown symbol")]
    UnknownSymbol { offset: usize },
}

impl ReportError {
    /// The tag at fault.
    pub fn tag(&self) -> u32 {
        match *self {
            ReportError::MissingField { tag }
            | ReportError::BadValue { tag, .. }
            | ReportError::BadDecimal { tag, .. } => tag,
            ReportError::UnknownSymbol { .. } => tag::SYMBOL.number(),
        }
    }
}

/// Tag numbers below this index the slot tables.
const SLOT_TABLE_LEN: usize = 1024;
/// "Not a tag we read" in a slot table.
const NO_SLOT: u8 = u8::MAX;

/// The slot of each tag of `tags` (tags below [`SLOT_TABLE_LEN`]), built at compile time.
const fn slot_table(tags: &[u32]) -> [u8; SLOT_TABLE_LEN] {
    let mut table = [NO_SLOT; SLOT_TABLE_LEN];
    let mut i = 0;
    while i < tags.len() {
        assert!((tags[i] as usize) < SLOT_TABLE_LEN && i < NO_SLOT as usize);
        table[tags[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// The tags read from an ExecutionReport or OrderCancelReject, in slot order.
const REPORT_TAGS: [u32; 18] = [
    11,  // 0 ClOrdID
    41,  // 1 OrigClOrdID
    37,  // 2 OrderID
    150, // 3 ExecType
    39,  // 4 OrdStatus
    54,  // 5 Side
    55,  // 6 Symbol
    31,  // 7 LastPx
    32,  // 8 LastQty
    14,  // 9 CumQty
    151, // 10 LeavesQty
    44,  // 11 Price
    103, // 12 OrdRejReason
    102, // 13 CxlRejReason
    434, // 14 CxlRejResponseTo
    6,   // 15 AvgPx
    911, // 16 TotNumReports
    912, // 17 LastRptRequested
];
const SLOTS: [u8; SLOT_TABLE_LEN] = slot_table(&REPORT_TAGS);
const CL_ORD_ID: usize = 0;
const ORIG_CL_ORD_ID: usize = 1;
const ORDER_ID: usize = 2;
const EXEC_TYPE: usize = 3;
const ORD_STATUS: usize = 4;
const SIDE: usize = 5;
const SYMBOL: usize = 6;
const LAST_PX: usize = 7;
const LAST_QTY: usize = 8;
const CUM_QTY: usize = 9;
const LEAVES_QTY: usize = 10;
const PRICE: usize = 11;
const ORD_REJ_REASON: usize = 12;
const CXL_REJ_REASON: usize = 13;
const CXL_REJ_RESPONSE_TO: usize = 14;
const AVG_PX: usize = 15;
const TOT_NUM_REPORTS: usize = 16;
const LAST_RPT_REQUESTED: usize = 17;

/// The scale of a report that names no instrument: its quantities must be zero, whatever the
/// unit, so any unit reads them.
const NO_INSTRUMENT_SCALE: Scale = Scale {
    mantissa: 1,
    exp: 0,
};

/// The values of [`REPORT_TAGS`] found in one message (the first occurrence of each).
struct Gathered<'a> {
    message: &'a [u8],
    values: [Option<&'a [u8]>; REPORT_TAGS.len()],
}

impl<'a> Gathered<'a> {
    fn of(msg: &FixMessage<'a>) -> Gathered<'a> {
        let mut values = [None; REPORT_TAGS.len()];
        for (tag, value) in msg.body_fields() {
            if let Some(&slot) = SLOTS.get(tag as usize)
                && slot != NO_SLOT
            {
                let entry = &mut values[slot as usize];
                if entry.is_none() {
                    *entry = Some(value);
                }
            }
        }
        Gathered {
            message: msg.as_bytes(),
            values,
        }
    }

    fn offset(&self, value: &[u8]) -> usize {
        value.as_ptr() as usize - self.message.as_ptr() as usize
    }

    fn optional(&self, slot: usize) -> Option<&'a [u8]> {
        self.values[slot]
    }

    fn required(&self, slot: usize) -> Result<&'a [u8], ReportError> {
        self.values[slot].ok_or(ReportError::MissingField {
            tag: REPORT_TAGS[slot],
        })
    }

    fn bad(&self, slot: usize, value: &[u8], reason: &'static str) -> ReportError {
        ReportError::BadValue {
            tag: REPORT_TAGS[slot],
            offset: self.offset(value),
            reason,
        }
    }

    fn id(&self, slot: usize, value: &[u8]) -> Result<u64, ReportError> {
        value_u64(value).ok_or_else(|| self.bad(slot, value, "not an unsigned integer id"))
    }

    fn char(&self, slot: usize) -> Result<u8, ReportError> {
        match self.required(slot)? {
            &[c] if c.is_ascii_alphanumeric() => Ok(c),
            value => Err(self.bad(slot, value, "not a one-character code")),
        }
    }

    fn side(&self) -> Result<u8, ReportError> {
        match self.optional(SIDE) {
            None => Ok(0),
            Some(b"1") => Ok(side::BUY),
            Some(b"2") => Ok(side::SELL),
            Some(value) => Err(self.bad(SIDE, value, "Side must be 1 (buy) or 2 (sell)")),
        }
    }

    fn venue_order_id(&self) -> Result<u64, ReportError> {
        match self.optional(ORDER_ID) {
            None => Ok(0),
            Some(ORDER_ID_NONE) => Ok(0),
            Some(value) => self.id(ORDER_ID, value),
        }
    }

    fn reason(&self, slot: usize) -> Result<u32, ReportError> {
        match self.optional(slot) {
            None => Ok(0),
            Some(value) => value_u64(value)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.bad(slot, value, "not a reason code")),
        }
    }

    fn units(&self, slot: usize, scale: Scale) -> Result<i64, ReportError> {
        match self.optional(slot) {
            None => Ok(0),
            Some(value) => parse_units(value, scale).map_err(|source| ReportError::BadDecimal {
                tag: REPORT_TAGS[slot],
                offset: self.offset(value),
                source,
            }),
        }
    }

    /// A quantity that must be absent or zero (in a report that names no instrument).
    fn zero(&self, slot: usize) -> Result<(), ReportError> {
        match (self.units(slot, NO_INSTRUMENT_SCALE)?, self.optional(slot)) {
            (0, _) | (_, None) => Ok(()),
            (_, Some(value)) => Err(self.bad(slot, value, "not zero in a report without Symbol")),
        }
    }

    /// LastRptRequested (912): `Y` is the last report of a mass status answer.
    fn last_report(&self) -> Result<bool, ReportError> {
        match self.optional(LAST_RPT_REQUESTED) {
            None | Some(b"N") => Ok(false),
            Some(b"Y") => Ok(true),
            Some(value) => {
                Err(self.bad(LAST_RPT_REQUESTED, value, "LastRptRequested must be Y or N"))
            }
        }
    }

    /// The instrument id and scales named by Symbol (55), if present.
    fn instrument(
        &self,
        instruments: &InstrumentTable,
    ) -> Result<Option<(u32, Scale, Scale)>, ReportError> {
        let Some(symbol) = self.optional(SYMBOL) else {
            return Ok(None);
        };
        let instrument = instruments.find(symbol).ok_or(ReportError::UnknownSymbol {
            offset: self.offset(symbol),
        })?;
        Ok(Some((
            instrument.id,
            instrument.price_scale,
            instrument.qty_scale,
        )))
    }
}

/// An ExecutionReport (35=8) as a record. Required: ClOrdID (11), ExecType (150), OrdStatus
/// (39), Symbol (55, for the units), CumQty (14), LeavesQty (151); the rest is 0 when absent.
/// `recv_tsc` is left 0 for the caller to stamp.
pub fn decode_execution_report(
    msg: &FixMessage<'_>,
    instruments: &InstrumentTable,
) -> Result<ExecutionReport, ReportError> {
    let g = Gathered::of(msg);
    if g.optional(EXEC_TYPE) == Some(&[exec_type::ORDER_STATUS]) {
        return decode_order_status(&g, instruments);
    }
    let cl_ord_id = g.required(CL_ORD_ID)?;
    let cl_ord_id = g.id(CL_ORD_ID, cl_ord_id)?;
    let exec = g.char(EXEC_TYPE)?;
    let ord_status = g.char(ORD_STATUS)?;
    let (instrument_id, price_scale, qty_scale) =
        g.instrument(instruments)?
            .ok_or(ReportError::MissingField {
                tag: tag::SYMBOL.number(),
            })?;
    g.required(CUM_QTY)?;
    g.required(LEAVES_QTY)?;
    let client_order_id = match (exec, g.optional(ORIG_CL_ORD_ID)) {
        (exec_type::CANCELED, Some(orig)) => g.id(ORIG_CL_ORD_ID, orig)?,
        _ => cl_ord_id,
    };
    Ok(ExecutionReport {
        recv_tsc: 0,
        client_order_id,
        venue_order_id: g.venue_order_id()?,
        px: g.units(PRICE, price_scale)?,
        last_px: g.units(LAST_PX, price_scale)?,
        last_qty: g.units(LAST_QTY, qty_scale)?,
        cum_qty: g.units(CUM_QTY, qty_scale)?,
        leaves_qty: g.units(LEAVES_QTY, qty_scale)?,
        instrument_id,
        exec_type: exec,
        ord_status,
        side: g.side()?,
        flags: 0,
        reject_reason: g.reason(ORD_REJ_REASON)?,
        reserved_b: 0,
    })
}

/// An Order Status report (ExecType I) as a record: ClOrdID (11, 0 if absent), OrderID (37),
/// Symbol (55), Side (54), Price (44), CumQty (14), LeavesQty (151), AvgPx (6) as `last_px`
/// (0 if absent), OrdStatus (39), and the flag of the last report (912=Y). Symbol, CumQty and
/// LeavesQty are required, except in the answer without orders (no ClOrdID, TotNumReports
/// 911=0), whose quantities must be absent or zero.
fn decode_order_status(
    g: &Gathered<'_>,
    instruments: &InstrumentTable,
) -> Result<ExecutionReport, ReportError> {
    let client_order_id = match g.optional(CL_ORD_ID) {
        Some(value) => g.id(CL_ORD_ID, value)?,
        None => 0,
    };
    let ord_status = g.char(ORD_STATUS)?;
    let flags = if g.last_report()? {
        report_flag::LAST_OF_MASS_STATUS
    } else {
        0
    };
    let tot_num_reports = match g.optional(TOT_NUM_REPORTS) {
        Some(value) => Some(
            value_u64(value).ok_or_else(|| g.bad(TOT_NUM_REPORTS, value, "not a report count"))?,
        ),
        None => None,
    };
    let Some((instrument_id, price_scale, qty_scale)) = g.instrument(instruments)? else {
        // Only the answer without orders may leave the instrument out.
        if g.optional(CL_ORD_ID).is_some() || tot_num_reports != Some(0) {
            return Err(ReportError::MissingField {
                tag: tag::SYMBOL.number(),
            });
        }
        for slot in [CUM_QTY, LEAVES_QTY, PRICE, AVG_PX] {
            g.zero(slot)?;
        }
        return Ok(ExecutionReport {
            client_order_id: 0,
            venue_order_id: g.venue_order_id()?,
            instrument_id: INSTRUMENT_UNKNOWN,
            exec_type: exec_type::ORDER_STATUS,
            ord_status,
            side: g.side()?,
            flags,
            ..ExecutionReport::default()
        });
    };
    g.required(CUM_QTY)?;
    g.required(LEAVES_QTY)?;
    Ok(ExecutionReport {
        recv_tsc: 0,
        client_order_id,
        venue_order_id: g.venue_order_id()?,
        px: g.units(PRICE, price_scale)?,
        last_px: g.units(AVG_PX, price_scale)?,
        last_qty: 0,
        cum_qty: g.units(CUM_QTY, qty_scale)?,
        leaves_qty: g.units(LEAVES_QTY, qty_scale)?,
        instrument_id,
        exec_type: exec_type::ORDER_STATUS,
        ord_status,
        side: g.side()?,
        flags,
        reject_reason: 0,
        reserved_b: 0,
    })
}

/// An OrderCancelReject (35=9) as a REJECTED record under the refused request's ClOrdID (11).
/// Required: ClOrdID (11), OrigClOrdID (41), OrdStatus (39), CxlRejResponseTo (434).
/// `reject_reason` is CxlRejReason (102). Without Symbol (55, not part of the message in FIX
/// 4.4) the instrument is [`INSTRUMENT_UNKNOWN`] and the side 0.
pub fn decode_order_cancel_reject(
    msg: &FixMessage<'_>,
    instruments: &InstrumentTable,
) -> Result<ExecutionReport, ReportError> {
    let g = Gathered::of(msg);
    let cl_ord_id = g.required(CL_ORD_ID)?;
    let client_order_id = g.id(CL_ORD_ID, cl_ord_id)?;
    let orig = g.required(ORIG_CL_ORD_ID)?;
    g.id(ORIG_CL_ORD_ID, orig)?;
    let ord_status = g.char(ORD_STATUS)?;
    let response_to = g.required(CXL_REJ_RESPONSE_TO)?;
    if !matches!(response_to, b"1" | b"2") {
        return Err(g.bad(
            CXL_REJ_RESPONSE_TO,
            response_to,
            "CxlRejResponseTo must be 1 (cancel) or 2 (replace)",
        ));
    }
    let instrument_id = g
        .instrument(instruments)?
        .map_or(INSTRUMENT_UNKNOWN, |(id, _, _)| id);
    Ok(ExecutionReport {
        client_order_id,
        venue_order_id: g.venue_order_id()?,
        instrument_id,
        exec_type: exec_type::REJECTED,
        ord_status,
        side: g.side()?,
        reject_reason: g.reason(CXL_REJ_REASON)?,
        ..ExecutionReport::default()
    })
}
