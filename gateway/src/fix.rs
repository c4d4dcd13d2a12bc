//! FIX 4.4 order entry: the allocation-free order encoder, a zero-copy message reader, and the
//! initiator session (Logon, heartbeats, test requests, resend and gap fill, logout) on them.
//!
//! - [`OrderEncoder`] (`encode.rs`): an [`OrderRequest`](levibot_shm::records::OrderRequest)
//!   that passed risk -> NewOrderSingle (`D`), OrderCancelRequest (`F`),
//!   OrderCancelReplaceRequest (`G`), OrderMassCancelRequest (`q`) or
//!   OrderMassStatusRequest (`AF`), as wire bytes.
//! - [`FixWriter`] (`writer.rs`): the field writer under it: one fixed buffer, typed field
//!   writers (integers, exact decimals of integer units, timestamps), and `finish`, which puts
//!   BeginString, BodyLength and CheckSum around the body without moving it.
//! - [`UtcTimestamp`] and [`UtcTimestampCache`] (`time.rs`): `YYYYMMDD-HH:MM:SS.sss` from Unix
//!   nanoseconds by integer arithmetic.
//! - [`parse_message`] (`parse.rs`): finds one complete message in a byte buffer, checks its
//!   framing (BeginString, exact BodyLength, CheckSum) and field syntax, then iterates its
//!   `(tag, value)` fields without copying; a prefix of a message is
//!   [`FixParseError::Incomplete`], so a socket reader can wait for more bytes.
//! - [`FixSession`] and [`FixConnection`] (`session.rs`): the initiator session, sans-IO, and
//!   its mio transport.
//!
//! A message on the wire (`|` is SOH, byte 0x01):
//!
//! ```text
//! 8=FIX.4.4|9=<body length>|35=<type>|49=<sender>|56=<target>|34=<seq>|52=<time>|..body..|10=<sum>|
//!           ^ BodyLength counts from here ...                       ... to here ^
//! ```
//!
//! CheckSum is the sum of every byte before `10=`, modulo 256, as three digits.
//!
//! Nothing here allocates, locks, formats with `core::fmt` or makes a syscall once an
//! [`OrderEncoder`] is built (`gateway/tests/fix_no_alloc.rs` counts allocations).

mod digits;
mod encode;
mod error;
mod parse;
mod session;
mod time;
mod writer;

pub use encode::{
    COMP_ID_LEN_MAX, FixConfigError, FixEncodeError, OrderEncoder, mass_cancel_request_type,
    mass_status_request_type,
};
pub use parse::{
    FIX_INBOUND_LEN_MAX, Fields, FixMessage, FixParseError, data_tag_for_length_tag, parse_message,
    value_u64,
};
pub use session::{
    API_KEY_LEN_MAX, BinanceLogon, BinanceLogonError, CONNECTION_READ_BUF_LEN, ConnectionError,
    ConnectionStatus, DisconnectReason, FixConnection, FixSession, GAP_APP_WINDOW_LEN,
    GAP_FILL_TIMEOUT_HEART_BT_INTS, GapUnfilledReason, HEART_BT_INT_S_MAX, Handled,
    INSTRUMENT_UNKNOWN, MessageHandling, ORDER_SEQ_MAP_LEN, OUTBOUND_BUF_LEN, QUEUED_EVENTS_MAX,
    ReportError, SEQ_NUM_MAX, SIGNATURE_BASE64_LEN, SessionConfig, SessionConfigError,
    SessionError, SessionEvent, SessionSeqNums, SessionState, TEST_REQUEST_MARGIN_PERCENT,
    decode_execution_report, decode_order_cancel_reject, session_reject_reason,
};
pub use time::{UTC_TIMESTAMP_LEN, UtcTimestamp, UtcTimestampCache, civil_from_unix_days};
pub use writer::FixWriter;

/// Longest message the encoder writes, in bytes, from `8=` to the SOH after the checksum.
/// The longest order message (a replace with 32-byte comp ids, a 16-byte symbol, and the
/// largest ids, sequence number, price and quantity) is 307 bytes
/// (`gateway/tests/fix_encode.rs`).
pub const FIX_MESSAGE_LEN_MAX: usize = 512;

/// The field delimiter, SOH.
pub const SOH: u8 = 0x01;

/// The BeginString of FIX 4.4 (tag 8).
pub const BEGIN_STRING: &[u8] = b"FIX.4.4";

/// Largest tag number [`Tag`] takes: 7 digits keep `<tag>=` within 8 bytes.
pub const TAG_NUMBER_MAX: u32 = 9_999_999;

/// Length of the longest `<tag>=` prefix.
pub(crate) const TAG_PREFIX_LEN_MAX: usize = 8;

/// A FIX tag with its `<number>=` prefix pre-encoded (at compile time for the constants in
/// [`tag`]), so that writing a field costs no integer formatting for the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    number: u32,
    prefix: [u8; TAG_PREFIX_LEN_MAX],
    prefix_len: u8,
}

impl Tag {
    /// The tag `number`. Panics (at compile time in a `const`) unless it is in
    /// `1..=TAG_NUMBER_MAX`.
    pub const fn new(number: u32) -> Tag {
        assert!(
            number >= 1 && number <= TAG_NUMBER_MAX,
            "FIX tag numbers are 1..=9_999_999"
        );
        let mut digits = 1;
        while digits < 7 && number >= pow10_u32(digits) {
            digits += 1;
        }
        let mut prefix = [0u8; TAG_PREFIX_LEN_MAX];
        let mut rest = number;
        let mut i = digits;
        while i > 0 {
            i -= 1;
            prefix[i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        prefix[digits] = b'=';
        Tag {
            number,
            prefix,
            prefix_len: digits as u8 + 1,
        }
    }

    /// The tag number.
    #[inline]
    pub const fn number(self) -> u32 {
        self.number
    }

    /// `<number>=`, as written before the value.
    #[inline]
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..self.prefix_len as usize]
    }

    /// The prefix in its fixed-size array, zeros after it: copied whole by the writer.
    #[inline]
    pub(crate) fn prefix_padded(&self) -> &[u8; TAG_PREFIX_LEN_MAX] {
        &self.prefix
    }
}

const fn pow10_u32(exp: usize) -> u32 {
    let mut value = 1;
    let mut i = 0;
    while i < exp {
        value *= 10;
        i += 1;
    }
    value
}

/// The FIX 4.4 tags LeviBot writes or reads.
pub mod tag {
    use super::Tag;

    pub const AVG_PX: Tag = Tag::new(6);
    pub const BEGIN_SEQ_NO: Tag = Tag::new(7);
    pub const BEGIN_STRING: Tag = Tag::new(8);
    pub const BODY_LENGTH: Tag = Tag::new(9);
    pub const CHECK_SUM: Tag = Tag::new(10);
    pub const CL_ORD_ID: Tag = Tag::new(11);
    pub const CUM_QTY: Tag = Tag::new(14);
    pub const END_SEQ_NO: Tag = Tag::new(16);
    pub const EXEC_ID: Tag = Tag::new(17);
    pub const EXEC_INST: Tag = Tag::new(18);
    pub const LAST_PX: Tag = Tag::new(31);
    pub const LAST_QTY: Tag = Tag::new(32);
    pub const MSG_SEQ_NUM: Tag = Tag::new(34);
    pub const MSG_TYPE: Tag = Tag::new(35);
    pub const NEW_SEQ_NO: Tag = Tag::new(36);
    pub const ORDER_ID: Tag = Tag::new(37);
    pub const ORDER_QTY: Tag = Tag::new(38);
    pub const ORD_STATUS: Tag = Tag::new(39);
    pub const ORD_TYPE: Tag = Tag::new(40);
    pub const ORIG_CL_ORD_ID: Tag = Tag::new(41);
    pub const POSS_DUP_FLAG: Tag = Tag::new(43);
    pub const PRICE: Tag = Tag::new(44);
    pub const REF_SEQ_NUM: Tag = Tag::new(45);
    pub const SENDER_COMP_ID: Tag = Tag::new(49);
    pub const SENDING_TIME: Tag = Tag::new(52);
    pub const SIDE: Tag = Tag::new(54);
    pub const SYMBOL: Tag = Tag::new(55);
    pub const TARGET_COMP_ID: Tag = Tag::new(56);
    pub const TEXT: Tag = Tag::new(58);
    pub const TIME_IN_FORCE: Tag = Tag::new(59);
    pub const TRANSACT_TIME: Tag = Tag::new(60);
    pub const RAW_DATA_LENGTH: Tag = Tag::new(95);
    pub const RAW_DATA: Tag = Tag::new(96);
    pub const ENCRYPT_METHOD: Tag = Tag::new(98);
    pub const CXL_REJ_REASON: Tag = Tag::new(102);
    pub const ORD_REJ_REASON: Tag = Tag::new(103);
    pub const HEART_BT_INT: Tag = Tag::new(108);
    pub const TEST_REQ_ID: Tag = Tag::new(112);
    pub const ORIG_SENDING_TIME: Tag = Tag::new(122);
    pub const GAP_FILL_FLAG: Tag = Tag::new(123);
    pub const RESET_SEQ_NUM_FLAG: Tag = Tag::new(141);
    pub const EXEC_TYPE: Tag = Tag::new(150);
    pub const LEAVES_QTY: Tag = Tag::new(151);
    pub const REF_TAG_ID: Tag = Tag::new(371);
    pub const REF_MSG_TYPE: Tag = Tag::new(372);
    pub const SESSION_REJECT_REASON: Tag = Tag::new(373);
    pub const CXL_REJ_RESPONSE_TO: Tag = Tag::new(434);
    pub const USERNAME: Tag = Tag::new(553);
    pub const MASS_CANCEL_REQUEST_TYPE: Tag = Tag::new(530);
    pub const MASS_STATUS_REQ_ID: Tag = Tag::new(584);
    pub const MASS_STATUS_REQ_TYPE: Tag = Tag::new(585);
    pub const TOT_NUM_REPORTS: Tag = Tag::new(911);
    pub const LAST_RPT_REQUESTED: Tag = Tag::new(912);
    pub const MESSAGE_HANDLING: Tag = Tag::new(25_035);
}

/// FIX 4.4 message types (tag 35).
pub mod msg_type {
    pub const HEARTBEAT: &[u8] = b"0";
    pub const TEST_REQUEST: &[u8] = b"1";
    pub const RESEND_REQUEST: &[u8] = b"2";
    pub const REJECT: &[u8] = b"3";
    pub const SEQUENCE_RESET: &[u8] = b"4";
    pub const LOGOUT: &[u8] = b"5";
    pub const EXECUTION_REPORT: &[u8] = b"8";
    pub const ORDER_CANCEL_REJECT: &[u8] = b"9";
    pub const LOGON: &[u8] = b"A";
    pub const NEW_ORDER_SINGLE: &[u8] = b"D";
    pub const ORDER_CANCEL_REQUEST: &[u8] = b"F";
    pub const ORDER_CANCEL_REPLACE_REQUEST: &[u8] = b"G";
    pub const ORDER_MASS_CANCEL_REQUEST: &[u8] = b"q";
    pub const ORDER_MASS_CANCEL_REPORT: &[u8] = b"r";
    pub const ORDER_MASS_STATUS_REQUEST: &[u8] = b"AF";
}

/// The FIX CheckSum of `bytes`: their sum modulo 256.
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    // A wrapping u8 sum is the sum modulo 256, and vectorises.
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_carry_their_prefix() {
        assert_eq!(tag::PRICE.prefix(), b"44=");
        assert_eq!(tag::BEGIN_STRING.prefix(), b"8=");
        assert_eq!(tag::MASS_CANCEL_REQUEST_TYPE.prefix(), b"530=");
        assert_eq!(tag::LAST_RPT_REQUESTED.prefix(), b"912=");
        assert_eq!(Tag::new(10).prefix(), b"10=");
        assert_eq!(Tag::new(9_999_999).prefix(), b"9999999=");
        assert_eq!(Tag::new(1_000_000).prefix(), b"1000000=");
        assert_eq!(Tag::new(25_035).number(), 25_035);
    }

    #[test]
    #[should_panic(expected = "FIX tag numbers")]
    fn tag_zero_is_a_bug() {
        let _ = Tag::new(0);
    }
}
