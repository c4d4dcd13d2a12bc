//! A zero-copy, non-allocating FIX message reader.
//!
//! [`parse_message`] takes the bytes received so far and finds the message at their start:
//!
//! 1. BeginString `8=FIX.4.4|` first, then BodyLength `9=<n>|`;
//! 2. the body (from `35=`) is exactly `n` bytes: `10=` follows it, right after a SOH;
//! 3. CheckSum `10=ddd|` equals the sum of every byte before `10=`, modulo 256;
//! 4. the body is a sequence of `tag=value|` fields, tags without leading zeros, values
//!    non-empty, MsgType (35) first.
//!
//! A prefix of a possible message is [`FixParseError::Incomplete`] (wait for more bytes); a
//! message that cannot become valid is another error, with the byte offset of the problem from
//! the start of the buffer. Once parsed, [`FixMessage::fields`] iterates `(tag, value)` pairs
//! borrowed from the buffer.
//!
//! Data fields (FIX type `data`, such as RawData 96 in a Logon) may hold SOH bytes: their
//! length comes from the length field just before them (RawDataLength 95 and the other FIX 4.4
//! pairs in [`data_tag_for_length_tag`]), and the reader takes exactly that many bytes.

use super::{BEGIN_STRING, SOH, checksum, tag};

/// Longest body (the BodyLength value) the reader accepts, in bytes. A longer declared length
/// is an error at once rather than a wait for bytes that a venue would never send.
pub const FIX_INBOUND_LEN_MAX: usize = 16 * 1024;

/// Most digits of a BodyLength value.
const BODY_LENGTH_DIGITS_MAX: usize = 5;
const _: () = assert!(FIX_INBOUND_LEN_MAX < 100_000);
/// Most digits of a tag number (9 keep it within a `u32`).
const TAG_DIGITS_MAX: usize = 9;
/// `8=FIX.4.4|`.
const BEGIN_STRING_FIELD: &[u8] = b"8=FIX.4.4\x01";
const _: () = assert!(BEGIN_STRING_FIELD.len() == BEGIN_STRING.len() + 3);
/// `10=ddd|`.
const TRAILER_LEN: usize = 7;

/// Why the bytes at the start of a buffer are not (yet) a FIX 4.4 message. Offsets are from the
/// start of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixParseError {
    /// The bytes are the beginning of a message: read more and try again.
    #[error("incomplete message: {have} bytes, at least {need} needed")]
    Incomplete {
        have: usize,
        /// The least length that could complete it (the whole message once BodyLength is read).
        need: usize,
    },
    #[error("byte {offset}: the message does not start with 8=FIX.4.4 and SOH")]
    BadBeginString { offset: usize },
    #[error(
        "byte {offset}: BodyLength (9) must follow BeginString, as 1 to {BODY_LENGTH_DIGITS_MAX} digits and SOH"
    )]
    BadBodyLength { offset: usize },
    #[error("BodyLength {body_length} is more than {FIX_INBOUND_LEN_MAX}")]
    TooLong { body_length: usize },
    #[error(
        "BodyLength {declared} does not end where CheckSum (10) starts{}",
        describe_actual(.actual)
    )]
    BodyLengthMismatch {
        declared: usize,
        /// Where CheckSum actually starts, as a body length, if it was found.
        actual: Option<usize>,
    },
    #[error("CheckSum {found:03} in the message, {expected:03} computed")]
    BadChecksum {
        /// The sum of the bytes, modulo 256.
        expected: u8,
        /// What the message says (three digits, so up to 999).
        found: u16,
    },
    #[error("byte {offset}: the body must start with MsgType (35), not tag {tag}")]
    MissingMsgType { offset: usize, tag: u32 },
    #[error("byte {offset}: tag {tag} has an empty value")]
    EmptyValue { offset: usize, tag: u32 },
    #[error("byte {offset}: length field {tag} is not a length up to {FIX_INBOUND_LEN_MAX}")]
    BadDataLength { offset: usize, tag: u32 },
    #[error("byte {offset}: {reason}")]
    Garbled { offset: usize, reason: &'static str },
}

fn describe_actual(actual: &Option<usize>) -> String {
    match actual {
        Some(len) => format!(" (it starts after {len} body bytes)"),
        None => String::new(),
    }
}

/// The data field (type `data`) whose length the FIX 4.4 field `length_tag` gives.
pub const fn data_tag_for_length_tag(length_tag: u32) -> Option<u32> {
    Some(match length_tag {
        90 => 91,   // SecureDataLen -> SecureData
        93 => 89,   // SignatureLength -> Signature
        95 => 96,   // RawDataLength -> RawData
        212 => 213, // XmlDataLen -> XmlData
        348 => 349, // EncodedIssuerLen -> EncodedIssuer
        350 => 351, // EncodedSecurityDescLen -> EncodedSecurityDesc
        352 => 353, // EncodedListExecInstLen -> EncodedListExecInst
        354 => 355, // EncodedTextLen -> EncodedText
        356 => 357, // EncodedSubjectLen -> EncodedSubject
        358 => 359, // EncodedHeadlineLen -> EncodedHeadline
        360 => 361, // EncodedAllocTextLen -> EncodedAllocText
        362 => 363, // EncodedUnderlyingIssuerLen -> EncodedUnderlyingIssuer
        364 => 365, // EncodedUnderlyingSecurityDescLen -> EncodedUnderlyingSecurityDesc
        445 => 446, // EncodedListStatusTextLen -> EncodedListStatusText
        618 => 619, // EncodedLegIssuerLen -> EncodedLegIssuer
        621 => 622, // EncodedLegSecurityDescLen -> EncodedLegSecurityDesc
        _ => return None,
    })
}

/// A decimal value of 1 to 20 digits as a `u64` (`None` if it is not one, or overflows).
#[inline]
pub fn value_u64(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// One field found by [`Cursor::next`].
struct Field {
    start: usize,
    tag: u32,
    value_start: usize,
    value_end: usize,
}

/// Walks fields, remembering a length field's value for the data field after it.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    pos: usize,
    /// (data tag, its length) announced by the previous field.
    pending_data: Option<(u32, usize)>,
}

impl Cursor {
    fn at(pos: usize) -> Cursor {
        Cursor {
            pos,
            pending_data: None,
        }
    }

    /// The field at `self.pos` of `bytes` and the cursor moved past it; `Ok(None)` if `bytes`
    /// end before its SOH.
    #[inline]
    fn next(&mut self, bytes: &[u8]) -> Result<Option<Field>, FixParseError> {
        let start = self.pos;
        let mut at = start;
        let mut tag: u32 = 0;
        loop {
            let Some(&byte) = bytes.get(at) else {
                return Ok(None);
            };
            match byte {
                b'=' if at > start => break,
                b'0'..=b'9' if at - start < TAG_DIGITS_MAX && !(at == start && byte == b'0') => {
                    tag = tag * 10 + u32::from(byte - b'0');
                }
                _ => {
                    return Err(FixParseError::Garbled {
                        offset: at,
                        reason: "expected a tag (1 to 9 digits, no leading zero) and '='",
                    });
                }
            }
            at += 1;
        }
        let value_start = at + 1;
        let value_end = match self.pending_data {
            Some((data_tag, len)) if data_tag == tag => {
                let end = value_start + len;
                match bytes.get(end) {
                    None => return Ok(None),
                    Some(&SOH) => end,
                    Some(_) => {
                        return Err(FixParseError::Garbled {
                            offset: end,
                            reason: "a data field is longer than its length field says",
                        });
                    }
                }
            }
            _ => match bytes
                .get(value_start..)
                .and_then(|rest| rest.iter().position(|&b| b == SOH))
            {
                Some(len) => value_start + len,
                None => return Ok(None),
            },
        };
        if value_end == value_start {
            return Err(FixParseError::EmptyValue { offset: start, tag });
        }
        self.pending_data = match data_tag_for_length_tag(tag) {
            Some(data_tag) => {
                let len = value_u64(&bytes[value_start..value_end])
                    .filter(|&len| len <= FIX_INBOUND_LEN_MAX as u64)
                    .ok_or(FixParseError::BadDataLength { offset: start, tag })?;
                Some((data_tag, len as usize))
            }
            None => None,
        };
        self.pos = value_end + 1;
        Ok(Some(Field {
            start,
            tag,
            value_start,
            value_end,
        }))
    }
}

/// Walks the whole fields of `bytes` from `body_start`: the offset of the first CheckSum (10)
/// field, or `None` if the bytes end first.
fn find_checksum_field(bytes: &[u8], body_start: usize) -> Result<Option<usize>, FixParseError> {
    let mut cursor = Cursor::at(body_start);
    while let Some(field) = cursor.next(bytes)? {
        if field.tag == tag::CHECK_SUM.number() {
            return Ok(Some(field.start));
        }
    }
    Ok(None)
}

/// One complete, checked FIX message borrowed from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixMessage<'a> {
    /// The whole message, `8=` to the SOH after the checksum.
    bytes: &'a [u8],
    body_start: usize,
    checksum_at: usize,
    msg_type_end: usize,
}

/// Finds the message at the start of `buf` (which may hold more after it) and checks it.
/// The message is [`FixMessage::as_bytes`]`.len()` bytes long; the next one starts there.
pub fn parse_message(buf: &[u8]) -> Result<FixMessage<'_>, FixParseError> {
    let incomplete = |need: usize| FixParseError::Incomplete {
        have: buf.len(),
        need,
    };
    // 1. BeginString, then "9=".
    let header = BEGIN_STRING_FIELD.len() + 2;
    for (offset, (&have, &want)) in buf
        .iter()
        .zip(BEGIN_STRING_FIELD.iter().chain(b"9="))
        .enumerate()
    {
        if have != want {
            return Err(if offset < BEGIN_STRING_FIELD.len() {
                FixParseError::BadBeginString { offset }
            } else {
                FixParseError::BadBodyLength { offset }
            });
        }
    }
    if buf.len() < header {
        return Err(incomplete(header + 2));
    }
    // 2. BodyLength digits and SOH.
    let mut body_length = 0usize;
    let mut at = header;
    loop {
        match buf.get(at) {
            None => return Err(incomplete(at + 1)),
            Some(&SOH) if at > header => break,
            Some(&b) if b.is_ascii_digit() && at - header < BODY_LENGTH_DIGITS_MAX => {
                body_length = body_length * 10 + usize::from(b - b'0');
            }
            Some(_) => return Err(FixParseError::BadBodyLength { offset: at }),
        }
        at += 1;
    }
    if body_length > FIX_INBOUND_LEN_MAX {
        return Err(FixParseError::TooLong { body_length });
    }
    let body_start = at + 1;
    let checksum_at = body_start + body_length;
    let total = checksum_at + TRAILER_LEN;
    let mismatch = |actual_start: Option<usize>| FixParseError::BodyLengthMismatch {
        declared: body_length,
        actual: actual_start.map(|start| start - body_start),
    };

    if buf.len() < total {
        // Not all there yet; but if CheckSum already shows up elsewhere, it never will be.
        return match find_checksum_field(buf, body_start)? {
            Some(start) if start != checksum_at => Err(mismatch(Some(start))),
            Some(start) => Err(FixParseError::Garbled {
                offset: start + 3,
                reason: "CheckSum (10) must be three digits and SOH",
            }),
            None => Err(incomplete(total)),
        };
    }

    // 3. "10=" right after the body's last SOH, three digits, SOH; the sum.
    if buf[checksum_at - 1] != SOH || &buf[checksum_at..checksum_at + 3] != b"10=" {
        let found = find_checksum_field(buf, body_start).ok().flatten();
        return Err(mismatch(found));
    }
    let digits = &buf[checksum_at + 3..total - 1];
    if buf[total - 1] != SOH || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FixParseError::Garbled {
            offset: checksum_at + 3,
            reason: "CheckSum (10) must be three digits and SOH",
        });
    }
    let found = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let expected = checksum(&buf[..checksum_at]);
    if found != u16::from(expected) {
        return Err(FixParseError::BadChecksum { expected, found });
    }

    // 4. The body's fields, MsgType first.
    let body = &buf[..checksum_at];
    let mut cursor = Cursor::at(body_start);
    let mut msg_type_end = 0;
    while cursor.pos < checksum_at {
        let offset = cursor.pos;
        let field = cursor.next(body)?.ok_or(FixParseError::Garbled {
            offset,
            reason: "a data field runs past the end of the body",
        })?;
        if offset == body_start {
            if field.tag != tag::MSG_TYPE.number() {
                return Err(FixParseError::MissingMsgType {
                    offset,
                    tag: field.tag,
                });
            }
            msg_type_end = field.value_end;
        }
        match field.tag {
            10 => return Err(mismatch(Some(offset))),
            8 | 9 => {
                return Err(FixParseError::Garbled {
                    offset,
                    reason: "BeginString (8) or BodyLength (9) inside the body",
                });
            }
            _ => {}
        }
    }
    if msg_type_end == 0 {
        return Err(FixParseError::MissingMsgType {
            offset: body_start,
            tag: 0,
        });
    }
    Ok(FixMessage {
        bytes: &buf[..total],
        body_start,
        checksum_at,
        msg_type_end,
    })
}

impl<'a> FixMessage<'a> {
    /// The whole message, from `8=` to the SOH after the checksum.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// MsgType (35), such as `b"8"` for an ExecutionReport.
    #[inline]
    pub fn msg_type(&self) -> &'a [u8] {
        // The body starts with "35=".
        &self.bytes[self.body_start + 3..self.msg_type_end]
    }

    /// BodyLength (9).
    #[inline]
    pub fn body_length(&self) -> usize {
        self.checksum_at - self.body_start
    }

    /// The body, from `35=` to the SOH before `10=`.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[self.body_start..self.checksum_at]
    }

    /// CheckSum (10), as checked.
    #[inline]
    pub fn checksum(&self) -> u8 {
        checksum(&self.bytes[..self.checksum_at])
    }

    /// Every field in order, BeginString (8) to CheckSum (10).
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            bytes: self.bytes,
            cursor: Cursor::at(0),
        }
    }

    /// The body's fields in order, MsgType (35) first, CheckSum left out.
    #[inline]
    pub fn body_fields(&self) -> Fields<'a> {
        Fields {
            bytes: &self.bytes[..self.checksum_at],
            cursor: Cursor::at(self.body_start),
        }
    }

    /// The value of the first field with tag `tag`.
    #[inline]
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields().find(|&(t, _)| t == tag).map(|(_, v)| v)
    }
}

/// The `(tag, value)` fields of a [`FixMessage`], borrowed from its buffer.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    cursor: Cursor,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(u32, &'a [u8])> {
        // parse_message checked every field, so this finds each and ends at the end.
        let field = self.cursor.next(self.bytes).ok()??;
        Some((field.tag, &self.bytes[field.value_start..field.value_end]))
    }
}
