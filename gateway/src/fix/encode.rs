//! [`OrderEncoder`]: an [`OrderRequest`] that passed risk -> FIX 4.4 order message bytes.
//!
//! Fields written, after the standard header (`35`, `49`, `56`, `34`, `52`):
//!
//! | kind | MsgType | body |
//! | --- | --- | --- |
//! | `NEW` | `D` NewOrderSingle | 11 ClOrdID, 55 Symbol, 54 Side, 60 TransactTime, 38 OrderQty, 40 OrdType, 44 Price (limit only), 59 TimeInForce (when given), 18 ExecInst `6` (post-only) |
//! | `CANCEL` | `F` OrderCancelRequest | 41 OrigClOrdID, 11 ClOrdID, 55 Symbol, 54 Side, 60 TransactTime, 38 OrderQty (when `qty > 0`) |
//! | `REPLACE` | `G` OrderCancelReplaceRequest | 41, 11, 55, 54, 60, 38, 40, 44 (limit only), 59 (when given), 18 (post-only) |
//! | `MASS_CANCEL` | `q` OrderMassCancelRequest | 11 ClOrdID, 530 MassCancelRequestType (`1` by security, `7` all), 55 Symbol (by security only), 60 TransactTime |
//! | `MASS_STATUS` | `AF` OrderMassStatusRequest | 584 MassStatusReqID (the `client_order_id`), 585 MassStatusReqType (`1` by security, `7` all), 55 Symbol (by security only) |
//!
//! These are FIX 4.4's required fields of each message. Choices where FIX leaves one:
//!
//! - HandlInst (21) is optional in FIX 4.4 and not written.
//! - OrderCancelRequest: FIX 4.4 lists the OrderQtyData block, whose fields are all optional;
//!   OrderQty is written when the request carries a positive `qty` (the order's quantity), and
//!   left out when `qty == 0`. A negative `qty` is an error.
//! - Market orders (`ord_type::MARKET`) carry no Price (44); their `px` is ignored.
//! - TimeInForce: `time_in_force == 0` means "not given": 59 is left out (FIX's default is
//!   Day) for market orders, and is an error for limit orders, which must say GTC, IOC or FOK.
//! - OrderMassCancelRequest cancels regardless of side (the record's `side` is ignored, no 54):
//!   the record means "every open order of the instrument", or of all instruments when
//!   `instrument_id == u32::MAX`.
//! - OrderMassStatusRequest carries no ClOrdID (11) and no TransactTime (60): FIX 4.4 does not
//!   define them for it, and an acceptor that validates against its data dictionary refuses
//!   undefined fields. Its side and terms are ignored as for a mass cancel.
//! - Prices and quantities are exact decimals with trailing fraction zeros trimmed
//!   ([`FixWriter::field_units`]); timestamps have millisecond precision.
//!
//! Nothing in the record can make [`OrderEncoder::encode`] panic: every byte is checked and a
//! bad one is a [`FixEncodeError`] naming it.

use levibot_shm::records::{OrderRequest, ord_type, order_flag, order_kind, side, time_in_force};

use crate::decimal::Scale;
use crate::instrument::{InstrumentTable, SYMBOL_LEN_MAX};

pub use super::error::FixEncodeError;
use super::time::UtcTimestampCache;
use super::writer::FixWriter;
use super::{SOH, msg_type, tag};

/// Longest SenderCompID or TargetCompID, in bytes.
pub const COMP_ID_LEN_MAX: usize = 32;

/// `49=<sender>|56=<target>|`.
const COMP_ID_FIELDS_LEN_MAX: usize = 2 * (3 + COMP_ID_LEN_MAX + 1);
/// `55=<symbol>|`.
const SYMBOL_FIELD_LEN_MAX: usize = 3 + SYMBOL_LEN_MAX + 1;

/// Values of MassCancelRequestType (tag 530) that LeviBot sends.
pub mod mass_cancel_request_type {
    /// Cancel the orders of one security (Symbol, 55).
    pub const BY_SECURITY: u8 = b'1';
    /// Cancel all orders.
    pub const ALL: u8 = b'7';
}

/// Values of MassStatusReqType (tag 585) that LeviBot sends.
pub mod mass_status_request_type {
    /// The status of the orders of one security (Symbol, 55).
    pub const BY_SECURITY: u8 = b'1';
    /// The status of all orders.
    pub const ALL: u8 = b'7';
}

/// Why an [`OrderEncoder`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixConfigError {
    #[error("{field} is empty")]
    EmptyCompId { field: &'static str },
    #[error("{field} is {len} bytes long, more than {COMP_ID_LEN_MAX}")]
    CompIdTooLong { field: &'static str, len: usize },
    #[error(
        "{field} has byte {byte:#04x} at offset {offset}: comp ids are printable ASCII without '='"
    )]
    CompIdInvalidByte {
        field: &'static str,
        offset: usize,
        byte: u8,
    },
    #[error(
        "instrument {symbol} (id {instrument_id}): {which} {mantissa}e-{exp} cannot be written (mantissa 0 or more than 19 decimals)"
    )]
    BadScale {
        instrument_id: u32,
        symbol: String,
        which: &'static str,
        mantissa: u64,
        exp: u8,
    },
}

/// What the encoder needs of one instrument, prepared on the cold path.
#[derive(Clone, Copy, Debug)]
struct InstrumentCodec {
    /// `55=<symbol>|`.
    symbol_field: [u8; SYMBOL_FIELD_LEN_MAX],
    symbol_field_len: u8,
    price_scale: Scale,
    qty_scale: Scale,
}

impl InstrumentCodec {
    #[inline]
    fn symbol_field(&self) -> &[u8] {
        &self.symbol_field[..self.symbol_field_len as usize]
    }
}

/// Encodes order requests as FIX 4.4 messages into one reused buffer (see the module doc for
/// the fields of each message).
#[derive(Clone, Debug)]
pub struct OrderEncoder {
    writer: FixWriter,
    /// `49=<sender>|56=<target>|`.
    comp_id_fields: [u8; COMP_ID_FIELDS_LEN_MAX],
    comp_id_fields_len: u8,
    /// Indexed by instrument id.
    instruments: Box<[InstrumentCodec]>,
    clock: UtcTimestampCache,
}

fn check_comp_id(field: &'static str, id: &str) -> Result<(), FixConfigError> {
    if id.is_empty() {
        return Err(FixConfigError::EmptyCompId { field });
    }
    if id.len() > COMP_ID_LEN_MAX {
        return Err(FixConfigError::CompIdTooLong {
            field,
            len: id.len(),
        });
    }
    match id
        .bytes()
        .enumerate()
        .find(|&(_, b)| !b.is_ascii_graphic() || b == b'=')
    {
        Some((offset, byte)) => Err(FixConfigError::CompIdInvalidByte {
            field,
            offset,
            byte,
        }),
        None => Ok(()),
    }
}

/// Whether [`FixWriter::field_units`] can write numbers of `scale`.
fn scale_is_writable(scale: Scale) -> bool {
    scale.mantissa > 0 && scale.exp <= 19
}

impl OrderEncoder {
    /// Cold path: checks the comp ids and prepares, for every instrument of `instruments`, its
    /// Symbol field and its price and quantity scales.
    pub fn new(
        sender_comp_id: &str,
        target_comp_id: &str,
        instruments: &InstrumentTable,
    ) -> Result<OrderEncoder, FixConfigError> {
        check_comp_id("SenderCompID (49)", sender_comp_id)?;
        check_comp_id("TargetCompID (56)", target_comp_id)?;
        let mut comp_id_fields = [0u8; COMP_ID_FIELDS_LEN_MAX];
        let mut len = 0;
        for part in [
            tag::SENDER_COMP_ID.prefix(),
            sender_comp_id.as_bytes(),
            &[SOH],
            tag::TARGET_COMP_ID.prefix(),
            target_comp_id.as_bytes(),
            &[SOH],
        ] {
            comp_id_fields[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }

        let mut codecs = Vec::with_capacity(instruments.len());
        for (index, instrument) in instruments.iter().enumerate() {
            // The table numbers its instruments 0..n in order; ids index this vector.
            assert_eq!(
                instrument.id as usize, index,
                "InstrumentTable ids are 0..n"
            );
            for (which, scale) in [
                ("price scale", instrument.price_scale),
                ("quantity scale", instrument.qty_scale),
            ] {
                if !scale_is_writable(scale) {
                    return Err(FixConfigError::BadScale {
                        instrument_id: instrument.id,
                        symbol: instrument.symbol.to_string(),
                        which,
                        mantissa: scale.mantissa,
                        exp: scale.exp,
                    });
                }
            }
            // Symbols are 1..=SYMBOL_LEN_MAX ASCII letters and digits (instrument::Symbol).
            let symbol = instrument.symbol.as_str().as_bytes();
            let mut symbol_field = [0u8; SYMBOL_FIELD_LEN_MAX];
            let prefix = tag::SYMBOL.prefix();
            symbol_field[..prefix.len()].copy_from_slice(prefix);
            symbol_field[prefix.len()..prefix.len() + symbol.len()].copy_from_slice(symbol);
            symbol_field[prefix.len() + symbol.len()] = SOH;
            codecs.push(InstrumentCodec {
                symbol_field,
                symbol_field_len: (prefix.len() + symbol.len() + 1) as u8,
                price_scale: instrument.price_scale,
                qty_scale: instrument.qty_scale,
            });
        }
        Ok(OrderEncoder {
            writer: FixWriter::new(),
            comp_id_fields,
            comp_id_fields_len: len as u8,
            instruments: codecs.into_boxed_slice(),
            clock: UtcTimestampCache::new(),
        })
    }

    /// Encodes `order` by its kind: `order_kind::NEW` -> NewOrderSingle (35=D), `CANCEL` ->
    /// OrderCancelRequest (35=F), `REPLACE` -> OrderCancelReplaceRequest (35=G), `MASS_CANCEL`
    /// -> OrderMassCancelRequest (35=q), `MASS_STATUS` -> OrderMassStatusRequest (35=AF).
    /// `sending_time_unix_ns` gives SendingTime (52) and TransactTime (60), UTC with
    /// millisecond precision (`YYYYMMDD-HH:MM:SS.sss`).
    ///
    /// Returns the whole message (`8=FIX.4.4` .. `10=xxx` SOH), valid until the next call.
    /// Hot path: no allocation, lock or syscall.
    #[inline]
    pub fn encode(
        &mut self,
        order: &OrderRequest,
        msg_seq_num: u64,
        sending_time_unix_ns: u64,
    ) -> Result<&[u8], FixEncodeError> {
        if msg_seq_num == 0 {
            return Err(FixEncodeError::ZeroMsgSeqNum);
        }
        let msg_type = match order.kind {
            order_kind::NEW => msg_type::NEW_ORDER_SINGLE,
            order_kind::CANCEL => msg_type::ORDER_CANCEL_REQUEST,
            order_kind::REPLACE => msg_type::ORDER_CANCEL_REPLACE_REQUEST,
            order_kind::MASS_CANCEL => msg_type::ORDER_MASS_CANCEL_REQUEST,
            order_kind::MASS_STATUS => msg_type::ORDER_MASS_STATUS_REQUEST,
            kind => return Err(FixEncodeError::UnknownKind { kind }),
        };
        let instruments = &self.instruments;
        let instrument = |instrument_id: u32| {
            instruments
                .get(instrument_id as usize)
                .ok_or(FixEncodeError::UnknownInstrument { instrument_id })
        };
        let time = self.clock.format(sending_time_unix_ns);
        let w = &mut self.writer;
        w.begin(msg_type)?;
        w.encoded_fields(
            tag::SENDER_COMP_ID,
            &self.comp_id_fields[..self.comp_id_fields_len as usize],
        )?;
        w.field_u64(tag::MSG_SEQ_NUM, msg_seq_num)?;
        w.field_timestamp(tag::SENDING_TIME, &time)?;
        if order.kind == order_kind::MASS_CANCEL {
            w.field_u64(tag::CL_ORD_ID, order.client_order_id)?;
            // u32::MAX: every order of every instrument.
            if order.instrument_id == u32::MAX {
                w.field_char(tag::MASS_CANCEL_REQUEST_TYPE, mass_cancel_request_type::ALL)?;
            } else {
                let instrument = instrument(order.instrument_id)?;
                w.field_char(
                    tag::MASS_CANCEL_REQUEST_TYPE,
                    mass_cancel_request_type::BY_SECURITY,
                )?;
                w.encoded_fields(tag::SYMBOL, instrument.symbol_field())?;
            }
            w.field_timestamp(tag::TRANSACT_TIME, &time)?;
        } else if order.kind == order_kind::MASS_STATUS {
            w.field_u64(tag::MASS_STATUS_REQ_ID, order.client_order_id)?;
            // u32::MAX: every order of every instrument.
            if order.instrument_id == u32::MAX {
                w.field_char(tag::MASS_STATUS_REQ_TYPE, mass_status_request_type::ALL)?;
            } else {
                let instrument = instrument(order.instrument_id)?;
                w.field_char(
                    tag::MASS_STATUS_REQ_TYPE,
                    mass_status_request_type::BY_SECURITY,
                )?;
                w.encoded_fields(tag::SYMBOL, instrument.symbol_field())?;
            }
        } else {
            let instrument = instrument(order.instrument_id)?;
            let side = side_code(order.side)?;
            if order.kind != order_kind::NEW {
                w.field_u64(tag::ORIG_CL_ORD_ID, order.orig_client_order_id)?;
            }
            w.field_u64(tag::CL_ORD_ID, order.client_order_id)?;
            w.encoded_fields(tag::SYMBOL, instrument.symbol_field())?;
            w.field_char(tag::SIDE, side)?;
            w.field_timestamp(tag::TRANSACT_TIME, &time)?;
            if order.kind == order_kind::CANCEL {
                match order.qty {
                    0 => {}
                    qty if qty < 0 => return Err(FixEncodeError::NegativeQuantity { qty }),
                    qty => w.field_units(tag::ORDER_QTY, qty, instrument.qty_scale)?,
                }
            } else {
                write_order_terms(w, order, instrument)?;
            }
        }
        Ok(w.finish())
    }
}

/// FIX Side (54) of the record's side byte.
#[inline]
fn side_code(value: u8) -> Result<u8, FixEncodeError> {
    match value {
        side::BUY | side::SELL => Ok(b'0' + value),
        side => Err(FixEncodeError::UnknownSide { side }),
    }
}

/// OrderQty (38), OrdType (40), Price (44) and TimeInForce (59) of a new or replacing order.
#[inline]
fn write_order_terms(
    w: &mut FixWriter,
    order: &OrderRequest,
    instrument: &InstrumentCodec,
) -> Result<(), FixEncodeError> {
    if order.qty <= 0 {
        return Err(FixEncodeError::NonPositiveQuantity { qty: order.qty });
    }
    let limit = match order.ord_type {
        ord_type::LIMIT => true,
        ord_type::MARKET => false,
        ord_type => return Err(FixEncodeError::UnknownOrdType { ord_type }),
    };
    if limit && order.px <= 0 {
        return Err(FixEncodeError::NonPositivePrice { px: order.px });
    }
    let time_in_force = match order.time_in_force {
        time_in_force::GTC | time_in_force::IOC | time_in_force::FOK => {
            Some(b'0' + order.time_in_force)
        }
        0 if !limit => None,
        time_in_force => return Err(FixEncodeError::UnknownTimeInForce { time_in_force }),
    };
    let post_only = order.flags & order_flag::POST_ONLY != 0;
    if order.flags & !order_flag::KNOWN != 0 || (post_only && !limit) {
        return Err(FixEncodeError::BadFlags { flags: order.flags });
    }
    w.field_units(tag::ORDER_QTY, order.qty, instrument.qty_scale)?;
    w.field_char(tag::ORD_TYPE, b'0' + order.ord_type)?;
    if limit {
        w.field_units(tag::PRICE, order.px, instrument.price_scale)?;
    }
    if let Some(code) = time_in_force {
        w.field_char(tag::TIME_IN_FORCE, code)?;
    }
    if post_only {
        // ExecInst 6: participate, don't initiate.
        w.field_char(tag::EXEC_INST, b'6')?;
    }
    Ok(())
}
