//! Why a FIX message could not be encoded: the one error of the field writer and the order
//! encoder. A leaf module, so that the writer (below the encoder) does not import the encoder.

use super::FIX_MESSAGE_LEN_MAX;

/// Why an order request could not be encoded. No message was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixEncodeError {
    #[error(
        "unknown order kind {kind} (expected 1 new, 2 cancel, 3 replace, 4 mass cancel, 5 mass status)"
    )]
    UnknownKind { kind: u8 },
    #[error("unknown instrument_id {instrument_id}")]
    UnknownInstrument { instrument_id: u32 },
    #[error("unknown side {side} (expected 1 buy or 2 sell)")]
    UnknownSide { side: u8 },
    #[error("unknown ord_type {ord_type} (expected 1 market or 2 limit)")]
    UnknownOrdType { ord_type: u8 },
    #[error(
        "unknown time_in_force {time_in_force} (expected 1 GTC, 3 IOC, 4 FOK, or 0 for none on a market order)"
    )]
    UnknownTimeInForce { time_in_force: u8 },
    #[error("order flags {flags:#x}: unknown bits, or post-only on a market order")]
    BadFlags { flags: u16 },
    #[error("quantity {qty} units is not positive")]
    NonPositiveQuantity { qty: i64 },
    #[error("quantity {qty} units is negative")]
    NegativeQuantity { qty: i64 },
    #[error("limit price {px} units is not positive")]
    NonPositivePrice { px: i64 },
    #[error("MsgSeqNum 0: FIX sequence numbers start at 1")]
    ZeroMsgSeqNum,
    #[error("tag {tag}: {units} units overflow a 64-bit decimal")]
    NumberTooLarge { tag: u32, units: i64 },
    #[error("tag {tag}: scale {mantissa}e-{exp} cannot be written")]
    BadScale { tag: u32, mantissa: u64, exp: u8 },
    #[error("tag {tag}: empty value")]
    EmptyValue { tag: u32 },
    #[error("tag {tag}: byte {byte:#04x} at offset {offset} of the value is not allowed")]
    InvalidValue { tag: u32, offset: usize, byte: u8 },
    #[error("tag {tag} does not fit: message longer than {FIX_MESSAGE_LEN_MAX} bytes")]
    MessageTooLong { tag: u32 },
}
